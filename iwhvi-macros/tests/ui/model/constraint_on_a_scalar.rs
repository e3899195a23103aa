use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Normal(0.0, 1.0), constraint = ordered)]
    mu: f64,
    #[latent(Normal(0.0, 1.0), len = 3, constraint = simplex)]
    weights: Vec<f64>,
    #[latent(Normal(0.0, 1.0), constraint = sorted)]
    other: [f64; 2],
}

fn main() {}
