use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Uniform(1.0, 0.0))]
    a: f64,
    #[latent(Uniform(2.0, 2.0))]
    b: f64,
}

fn main() {}
