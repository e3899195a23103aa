use iwhvi::variational;

#[variational]
struct Schools {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    // Used before its definition: `var` is below.
    #[latent(HalfCauchy(var))]
    tau: f64,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    theta_tilde: Vec<f64>,
    // A cycle: `a` reads `b`, which reads `a`.
    #[transformed(b + 1.0)]
    a: f64,
    #[transformed(a * 2.0)]
    b: f64,
    #[transformed(tau * tau)]
    var: f64,
    // The index clashes with a field's name.
    #[transformed(mu + tau * theta_tilde[mu], for mu, len = sigma.len())]
    theta: Vec<f64>,
    // A Vec over an index needs its length.
    #[transformed(mu + tau * theta_tilde[j], for j)]
    no_length: Vec<f64>,
    // A length is data alone.
    #[latent(Normal(0.0, 1.0), len = var)]
    sized: Vec<f64>,
    #[transformed(mu > 0.0)]
    flag: bool,
    #[observe(Normal(mu, sigma[j]), for j)]
    y: Vec<f64>,
}

fn main() {}
