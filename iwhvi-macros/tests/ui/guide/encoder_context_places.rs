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


/// A conditional calls an encoder with a context; another encoder is
/// called by a conditional and a reverse model.
#[variational(guide = Schools)]
struct Places {
    #[encoder(input = [sigma[j]], context = [theta[j]], hidden = [4], activation = tanh, outputs = 2)]
    own: Mlp,
    #[encoder(input = [sigma[j]], hidden = [4], activation = tanh, outputs = 2)]
    shared: Mlp,
    #[mixing(len = theta, for j)]
    #[reverse(Normal(shared(j)[0], 1.0), for j)]
    psi: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(Normal(own(j)[0] + shared(j)[1] + psi[j], 1.0), for j)]
    theta: Vec<f64>,
}

/// The reverse model's parameter is not the last one, and its encoder's
/// weights follow all parameters.
#[variational(guide = Schools)]
struct Order {
    #[param(init = 0.0)]
    r: f64,
    #[param(init = 0.0)]
    m: f64,
    #[encoder(input = [sigma[j]], context = [theta[j]], hidden = [4], activation = tanh, outputs = 2)]
    rev: Mlp,
    #[mixing(len = theta, for j)]
    #[reverse(Normal(rev(j)[0] + r, 1.0), for j)]
    psi: Vec<f64>,
    #[latent(Normal(m, 5.0))]
    mu: f64,
    #[latent(Normal(mu + psi[j], 1.0), for j)]
    theta: Vec<f64>,
}

fn main() {}
