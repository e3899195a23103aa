use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[factor(mu * 2.0)]
    extra: f64,
}

fn main() {}
