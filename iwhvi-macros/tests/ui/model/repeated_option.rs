use iwhvi::variational;

#[variational]
struct Model {
    #[data]
    n: usize,
    #[latent(Normal(0.0, 1.0), len = n, len = 2 * n)]
    theta: Vec<f64>,
    #[latent(Normal(0.0, 1.0), lower = 0.0, lower = 1.0)]
    sigma: f64,
}

fn main() {}
