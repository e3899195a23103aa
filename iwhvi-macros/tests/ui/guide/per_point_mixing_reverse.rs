use iwhvi::variational;

#[variational]
struct Schools {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(Normal(mu, 1.0), len = sigma.len())]
    theta: Vec<f64>,
    #[observe(Normal(theta[j], sigma[j]), for j)]
    y: Vec<f64>,
}

#[variational(guide = Schools)]
struct NoReverse {
    #[mixing(len = theta, for j)]
    psi: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(Normal(mu + psi[j], 1.0), for j)]
    theta: Vec<f64>,
}

#[variational(guide = Schools)]
struct OneReverse {
    #[mixing(len = theta, for j)]
    #[reverse(Normal(0.5 * theta[0], 1.0))]
    psi: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(Normal(mu + psi[j], 1.0), for j)]
    theta: Vec<f64>,
}

#[variational(guide = Schools)]
struct FixedLength {
    #[mixing(len = 8, for j)]
    #[reverse(Normal(0.5 * theta[j], 1.0), for j)]
    psi: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(Normal(mu + psi[j], 1.0), for j)]
    theta: Vec<f64>,
}

fn main() {}
