use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Normal(0.0 / 0.0, 1.0))]
    mu: f64,
    #[latent(HalfCauchy(1.0 / 0.0))]
    tau: f64,
    #[observe(BernoulliLogit(0.0 / 0.0))]
    y: bool,
}

fn main() {}
