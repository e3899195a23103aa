use iwhvi::variational;

#[variational]
struct Model {
    #[data]
    x: Vec<f64>,
    #[latent(Normal(x[i], 1.0))]
    mu: f64,
}

fn main() {}
