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
    theta_tilde: Vec<f64>,
    #[transformed(mu + tau * theta_tilde[j], for j, len = sigma.len())]
    theta: Vec<f64>,
    #[transformed(tau.ln())]
    log_tau: f64,
    #[observe(Normal(theta[j], sigma[j]), for j)]
    y: Vec<f64>,
}

// The model's transformed values are computed from its latents: a guide
// reads the latents, so it writes the values' expressions in them.
#[variational(guide = Schools)]
struct Guide {
    #[param(init = 0.0)]
    loc: f64,
    #[latent(Normal(loc, 1.0))]
    mu: f64,
    #[latent(LogNormal(loc, 1.0))]
    tau: f64,
    #[latent(Normal(loc - log_tau, 1.0), for j)]
    theta_tilde: Vec<f64>,
}

fn main() {}
