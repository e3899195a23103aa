// A field of an unsupported type is one error: its uses add none.
use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Normal(0.0, 1.0))]
    mu: f32,
    #[observe(Normal(mu, 1.0))]
    y: f64,
}

fn main() {}
