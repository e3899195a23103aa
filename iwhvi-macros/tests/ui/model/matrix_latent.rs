use iwhvi::variational;
use nalgebra::DMatrix;

#[variational]
struct Model {
    #[latent(Normal(0.0, 1.0))]
    w: DMatrix<f64>,
    #[observe(Normal(w[(0, 0)], 1.0))]
    y: f64,
}

fn main() {}
