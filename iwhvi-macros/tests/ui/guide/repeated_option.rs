use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
}

#[variational(guide = Model)]
struct Guide {
    #[param(init = 0.0, init = 1.0)]
    loc: f64,
    #[latent(Normal(loc, 1.0))]
    mu: f64,
}

fn main() {}
