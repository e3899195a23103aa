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
    #[encoder(input = [y[j]], hidden = [4], activation = tahn, outputs = 2)]
    enc: Mlp,
    #[encoder(input = [y[j]], hidden = [4], outputs = 2, outputs = 3)]
    dec: Mlp,
    #[latent(Normal(enc(j)[0], 1.0))]
    mu: f64,
    #[latent(LogNormal(dec(j)[0], 1.0))]
    tau: f64,
    #[latent(Normal(enc(j)[0], dec(j)[1].exp()), for j)]
    theta: Vec<f64>,
}

fn main() {}
