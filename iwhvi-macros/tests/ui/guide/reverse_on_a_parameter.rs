use iwhvi::variational;

#[variational]
struct Schools {
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[observe(Normal(mu, 1.0), for j)]
    y: Vec<f64>,
}

#[variational(guide = Schools)]
struct Guide {
    #[param(init = 0.0)]
    #[reverse(Normal(mu, 1.0))]
    loc: f64,
    #[latent(Normal(loc, 1.0))]
    mu: f64,
}

fn main() {}
