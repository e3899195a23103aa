use iwhvi::variational;

#[variational]
struct Model {
    #[param]
    mu: f64,
    #[param(len = 3)]
    w: Vec<f64>,
    #[latent(Normal(mu, 1.0))]
    z: f64,
}

fn main() {}
