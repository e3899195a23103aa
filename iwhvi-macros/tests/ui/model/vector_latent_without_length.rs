use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Normal(0.0, 1.0))]
    theta: Vec<f64>,
}

fn main() {}
