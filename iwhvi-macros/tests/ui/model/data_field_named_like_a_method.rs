use iwhvi::variational;

#[variational]
struct Model {
    #[data]
    dim: usize,
    #[latent(Normal(0.0, 1.0), len = dim)]
    beta: Vec<f64>,
}

fn main() {}
