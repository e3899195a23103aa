use iwhvi::variational;

#[variational]
struct Schools {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfCauchy(5.0))]
    tau: f64,
    #[latent(Normal(mu, tau), len = sigma.len())]
    theta: Vec<f64>,
    #[observe(Normal(theta[j], sigma[j]), for j)]
    y: Vec<f64>,
}

#[variational(guide = Schools)]
struct Guide {
    #[mixing]
    #[reverse(Normal(0.5 * mu, 1.0))]
    g: f64,
    #[mixing(len = theta, for j)]
    #[reverse(Normal(0.5 * theta[j], 1.0), for j)]
    psi: Vec<f64>,
    #[latent(Normal(psi[0] + g, 1.0))]
    mu: f64,
    #[latent(LogNormal(0.0, 1.0))]
    tau: f64,
    #[latent(Normal(mu + psi[0] + g, 1.0), for j)]
    theta: Vec<f64>,
}

fn main() {}
