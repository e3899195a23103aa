use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Normall(0.0, 1.0))]
    mu: f64,
}

fn main() {}
