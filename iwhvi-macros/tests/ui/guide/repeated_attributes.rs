// Each option, attribute and model is given once.
use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Normal(0.0, 1.0), len = 2)]
    theta: Vec<f64>,
}

#[variational(guide = Model)]
struct Guide {
    #[param(init = 0.0)]
    back: f64,
    #[mixing(len = 2, len = 3)]
    psi: Vec<f64>,
    #[mixing]
    #[reverse(Normal(back, 1.0))]
    #[reverse(Normal(0.0, 1.0))]
    phi: f64,
    #[latent(Normal(0.0, 1.0), for j, for k)]
    theta: Vec<f64>,
}

#[variational(guide = Model, guide = Model)]
struct Twice {
    #[latent(Normal(0.0, 1.0), for j)]
    theta: Vec<f64>,
}

fn main() {}
