use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Normal(0.0))]
    mu: f64,
    #[latent(Gamma(2.0, 1.0, 3.0))]
    sigma: f64,
}

fn main() {}
