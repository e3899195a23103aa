use iwhvi::variational;

#[variational]
struct Shares {
    #[data]
    alpha: Vec<f64>,
    #[latent(Uniform(0.0, 1.0))]
    p: f64,
    #[latent(Dirichlet(alpha), len = alpha.len())]
    theta: Vec<f64>,
    #[observe(Bernoulli(p * theta[0]), for i)]
    flips: Vec<u64>,
}

#[variational(guide = Shares)]
struct Guide {
    #[param(init = 0.0)]
    loc: f64,
    #[param(init = 0.0, len = theta)]
    theta_loc: Vec<f64>,
    #[latent(Normal(loc, 1.0))]
    #[unconstrained]
    p: f64,
    #[latent(Normal(theta_loc[j] + p, 1.0), for j)]
    #[unconstrained]
    theta: Vec<f64>,
}

fn main() {
    let model = Shares::new(vec![1.0, 1.0, 1.0], vec![1, 0, 1]).unwrap();
    let guide = Guide::new(&model).unwrap();
    assert_eq!(iwhvi::guide::HierarchicalGuide::latent_dim(&guide), 3);
}
