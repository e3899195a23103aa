use iwhvi::variational;

#[variational]
struct Model {
    #[param(init = 3.0)]
    k: f64,
    #[param(init = k, lower = k)]
    s: f64,
    #[latent(Normal(0.0, s), len = k)]
    theta: Vec<f64>,
    #[data]
    group: Vec<usize>,
    #[observe(Normal(theta[group[i] + k], 1.0), for i)]
    y: Vec<f64>,
}

fn main() {}
