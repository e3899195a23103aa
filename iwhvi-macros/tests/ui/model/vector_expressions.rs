use iwhvi::variational;
use nalgebra::DMatrix;

#[variational]
struct Model {
    #[data]
    x: DMatrix<f64>,
    #[data]
    alpha: Vec<f64>,
    #[data]
    scale: f64,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[latent(Dirichlet(x), len = 2)]
    whole_matrix: Vec<f64>,
    #[latent(Dirichlet(alpha.row(0)), len = 2)]
    row_of_a_vector: Vec<f64>,
    #[latent(Dirichlet(scale[1..]), len = 2)]
    slice_of_a_scalar: Vec<f64>,
    #[latent(Dirichlet(mu), len = 2)]
    scalar: Vec<f64>,
    #[latent(Dirichlet(alpha.iter().rev().collect()), len = 2)]
    iterator: Vec<f64>,
}

fn main() {}
