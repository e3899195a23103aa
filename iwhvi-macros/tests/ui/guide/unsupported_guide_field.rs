use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[latent(Normal(0.0, 1.0))]
    nu: f64,
}

#[variational(guide = Model)]
struct Guide {
    #[param(init = 0.0)]
    __p: f64,
    #[latent(Normal(__p, 1.0))]
    mu: f32,
    #[latent(my::Skewed(0.0, 1.0))]
    nu: f64,
}

fn main() {}
