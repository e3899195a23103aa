use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(mu, 1.0), for i)]
    y: Vec<u64>,
    #[observe(Poisson(mu.exp()), for i)]
    z: Vec<f64>,
}

fn main() {}
