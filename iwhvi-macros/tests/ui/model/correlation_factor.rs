use iwhvi::variational;
use nalgebra::DMatrix;

#[variational]
struct Model {
    #[data]
    k: usize,
    #[latent(LkjCholesky(2.0))]
    no_order: DMatrix<f64>,
    #[latent(LkjCholesky(2.0), len = 3)]
    flat_vector: Vec<f64>,
    #[latent(Normal(0.0, 1.0), constraint = cholesky_corr, dim = 2)]
    normal_factor: DMatrix<f64>,
    #[latent(Normal(0.0, 1.0), dim = 2)]
    scalar: f64,
    #[latent(LkjCholesky(2.0), dim = k)]
    l: DMatrix<f64>,
    #[observe(Normal(l[1], 1.0))]
    y: f64,
}

fn main() {}
