use iwhvi::variational;

#[variational]
struct Coin {
    #[latent(Beta(2.0, 2.0))]
    p: f64,
    #[observe(Bernoulli(p), for i)]
    flips: Vec<u64>,
}

#[variational(guide = Coin)]
struct Guide {
    #[param(init = 0.0)]
    loc: f64,
    #[latent(LogNormal(loc, 1.0))]
    #[unconstrained]
    p: f64,
}

fn main() {}
