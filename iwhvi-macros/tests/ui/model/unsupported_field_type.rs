use iwhvi::variational;

#[variational]
struct Model {
    #[data]
    name: String,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
}

fn main() {}
