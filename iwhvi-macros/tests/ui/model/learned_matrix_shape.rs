use iwhvi::variational;
use nalgebra::DMatrix;

#[variational]
struct Model {
    #[data]
    k: usize,
    #[param(init = 0.0)]
    a: DMatrix<f64>,
    #[param(init = 0.0, len = 4)]
    b: DMatrix<f64>,
    #[param(init = 0.0, rows = 2)]
    c: f64,
    #[param(init = 0.0, rows = k, cols = 2)]
    w: DMatrix<f64>,
    #[latent(Normal(w[0] + c, 1.0))]
    z: f64,
    #[latent(Normal(0.0, 1.0), len = w.nrows())]
    zs: Vec<f64>,
}

fn main() {}
