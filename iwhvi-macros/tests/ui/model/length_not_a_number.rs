use iwhvi::variational;

#[variational]
struct Model {
    #[data]
    n: usize,
    #[latent(Normal(0.0, 1.0), len = "3")]
    a: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = n > 2)]
    b: Vec<f64>,
}

fn main() {}
