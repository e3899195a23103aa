use iwhvi::variational;

#[variational]
struct Model {
    #[param(init = 1)]
    k: usize,
    #[param(init = 0.0)]
    w: Vec<f64>,
    #[param(init = 0.0, len = 2)]
    b: f64,
    #[param(init = 0.0)]
    m: nalgebra::DMatrix<f64>,
    #[latent(Normal(0.0, 1.0))]
    z: f64,
}

fn main() {}
