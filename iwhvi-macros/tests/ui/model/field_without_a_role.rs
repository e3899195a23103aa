use iwhvi::variational;

#[variational]
struct Model {
    x: Vec<f64>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
}

fn main() {}
