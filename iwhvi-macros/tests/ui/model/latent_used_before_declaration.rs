use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Normal(mu, tau))]
    theta: f64,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfCauchy(5.0))]
    tau: f64,
}

fn main() {}
