use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[latent(Normal(0.0, 2.0))]
    mu: f64,
}

fn main() {}
