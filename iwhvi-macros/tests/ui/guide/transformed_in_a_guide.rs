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
    #[transformed(tau * tau)]
    var: f64,
    #[observe(Normal(theta[j], sigma[j]), for j)]
    y: Vec<f64>,
}

// A guide approximates the latents: a transformed value is no latent of
// the model, and no name a conditional can read.
#[variational(guide = Schools)]
struct Guide {
    #[param(init = 0.0)]
    loc: f64,
    #[latent(Normal(loc, 1.0))]
    mu: f64,
    #[latent(LogNormal(loc, 1.0))]
    tau: f64,
    #[latent(Normal(theta[0], 1.0), for j)]
    theta_tilde: Vec<f64>,
    #[latent(LogNormal(loc, 1.0))]
    var: f64,
}

fn main() {}
