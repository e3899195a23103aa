use iwhvi::variational;

#[variational]
struct Two {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    theta: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    eta: Vec<f64>,
    #[observe(Normal(theta[j] + eta[j], sigma[j]), for j)]
    y: Vec<f64>,
}

#[variational(guide = Two)]
struct Unread {
    #[mixing(len = theta, for j)]
    #[reverse(Normal(0.5 * theta[j], 1.0), for j)]
    psi: Vec<f64>,
    #[mixing(len = theta, for j)]
    #[reverse(Normal(0.5 * eta[j], 1.0), for j)]
    chi: Vec<f64>,
    #[latent(Normal(psi[j], 1.0), for j)]
    theta: Vec<f64>,
    #[latent(Normal(psi[j], 1.0), for j)]
    eta: Vec<f64>,
}

#[variational(guide = Two)]
struct Apart {
    #[mixing(len = theta, for j)]
    #[reverse(Normal(0.5 * theta[j], 1.0), for j)]
    psi: Vec<f64>,
    #[mixing(len = eta, for j)]
    #[reverse(Normal(0.5 * eta[j], 1.0), for j)]
    chi: Vec<f64>,
    #[latent(Normal(psi[j] + chi[j], 1.0), for j)]
    theta: Vec<f64>,
    #[latent(Normal(chi[j], 1.0), for j)]
    eta: Vec<f64>,
}

fn main() {}
