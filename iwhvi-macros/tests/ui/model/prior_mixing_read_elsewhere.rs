use iwhvi::variational;

#[variational]
struct Model {
    #[prior_mixing(Gamma(2.0, 2.0), of = z, k = 8)]
    lambda: f64,
    #[latent(Normal(0.0, 1.0 / lambda.sqrt()))]
    z: f64,
    #[observe(Normal(z, lambda), for i)]
    y: Vec<f64>,
    #[prior_mixing(Normal(0.0, 1.0), of = w, k = 8)]
    zeta: f64,
    #[latent(Normal(0.0, 1.0))]
    w: f64,
    #[prior_mixing(Normal(v, 1.0), of = v, k = 8)]
    xi: f64,
    #[latent(Normal(xi, 1.0))]
    v: f64,
    #[prior_mixing(Normal(0.0, 1.0), of = t, k = 8)]
    nu: f64,
    #[latent(Normal(nu, 1.0), lower = 0.0)]
    t: f64,
    #[prior_mixing(Normal(0.0, 1.0), of = s, k = 8)]
    eta: f64,
    #[latent(Normal(eta, 1.0), len = 3)]
    s: Vec<f64>,
}

fn main() {}
