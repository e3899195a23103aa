use iwhvi::variational;

#[variational]
struct Model {
    #[prior_mixing(Normal(0.0, 1.0))]
    a: f64,
    #[prior_mixing(Normal(0.0, 1.0), of = z, k = 0)]
    b: f64,
    #[prior_mixing(Normal(0.0, 1.0), of = y, k = 8)]
    c: f64,
    #[prior_mixing(Normal(0.0, 1.0), of = w, k = 8)]
    d: f64,
    #[prior_mixing(Normal(0.0, 1.0), of = z, k = 8)]
    e: Vec<f64>,
    #[prior_mixing(Normal(0.0, 1.0), of = z, k = 8, scale = 2.0)]
    f: f64,
    #[latent(Normal(0.0, 1.0))]
    z: f64,
    #[observe(Normal(z, 1.0))]
    y: f64,
}

fn main() {}
