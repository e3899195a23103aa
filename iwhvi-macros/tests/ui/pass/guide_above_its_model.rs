// A guide declared above its model, in the same module.
use iwhvi::guide::HierarchicalGuide;
use iwhvi::variational;

#[variational(guide = Mean)]
struct MeanGuide {
    #[param(init = 0.0)]
    loc: f64,
    #[latent(Normal(loc, 1.0))]
    mu: f64,
}

#[variational]
struct Mean {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(mu, 1.0), for i)]
    y: Vec<f64>,
}

fn main() {
    let model = Mean::new(vec![0.5, 1.5]).unwrap();
    let guide = MeanGuide::new(&model).unwrap();
    assert_eq!(guide.latent_dim(), 1);
}
