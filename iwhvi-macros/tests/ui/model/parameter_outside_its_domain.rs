use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Normal(0.0, 0.0))]
    mu: f64,
    #[latent(Gamma(-1.0, 1.0))]
    sigma: f64,
    #[latent(Beta(0.0, 1.0))]
    p: f64,
    #[latent(StudentT(0.0, mu, sigma))]
    nu: f64,
    #[observe(Normal(mu, -1.0), for i)]
    y: Vec<f64>,
}

fn main() {}
