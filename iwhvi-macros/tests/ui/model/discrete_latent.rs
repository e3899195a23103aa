use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Poisson(3.0))]
    count: f64,
}

fn main() {}
