use iwhvi::variational;

#[variational]
struct Model {
    #[data]
    n: usize,
    #[latent(Normal(0.0, 1.0), len = n)]
    theta: Vec<f64>,
}

#[variational(guide = Model)]
struct Guide {
    #[param(init = 0.0)]
    unsized_loc: Vec<f64>,
    #[param(init = 1.0, len = theta)]
    scale: f64,
    #[param(init = 0.0, len = thetaa)]
    loc: Vec<f64>,
    #[latent(Normal(loc[j] + unsized_loc[j], scale), for j)]
    theta: Vec<f64>,
}

fn main() {}
