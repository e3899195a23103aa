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
struct Guide {
    #[param(init = 0.5)]
    a: f64,
    #[encoder(input = [sigma[j]], hidden = [4], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[encoder(input = [sigma[j]], context = [thetas[j], psi[j], theta, mu[j]], hidden = [4], activation = tanh, outputs = 2)]
    rev: Mlp,
    #[mixing(len = theta, for j)]
    #[reverse(Normal(rev(j)[0], rev(j)[1].exp()), for j)]
    psi: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(Normal(mu + enc(j)[0] + a * psi[j], enc(j)[1].exp()), for j)]
    theta: Vec<f64>,
}

fn main() {}
