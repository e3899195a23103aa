use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(mu, 1.0))]
    y: Vec<f64>,
}

fn main() {}
