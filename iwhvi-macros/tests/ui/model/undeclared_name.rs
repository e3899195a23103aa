use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(muu, 1.0), for i)]
    y: Vec<f64>,
}

fn main() {}
