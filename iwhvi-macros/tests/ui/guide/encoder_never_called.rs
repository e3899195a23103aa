use iwhvi::variational;

#[variational]
struct Schools {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfCauchy(5.0))]
    tau: f64,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    theta: Vec<f64>,
    #[observe(Normal(mu + tau * theta[j], sigma[j]), for j)]
    y: Vec<f64>,
}

#[variational(guide = Schools)]
struct Guide {
    #[param(init = 0.0)]
    loc: f64,
    #[encoder(input = [y[j], sigma[j]], hidden = [], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[latent(Normal(loc, 1.0))]
    mu: f64,
    #[latent(LogNormal(loc, 1.0))]
    tau: f64,
    #[latent(Normal(loc, 1.0), for j)]
    theta: Vec<f64>,
}

fn main() {}
