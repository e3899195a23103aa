// A model with a mistake is still declared in its success shape (`new`,
// its samplers, `impl Model`), and its guide too (`new`,
// `impl HierarchicalGuide`): the mistake is the only error, although both
// are used below.
use iwhvi::guide::HierarchicalGuide;
use iwhvi::model::Model as _;
use iwhvi::variational;
use rand::SeedableRng;

#[variational]
struct Model {
    #[data]
    x: f64,
    #[latent(Normall(0.0, 1.0))]
    mu: f64,
}

#[variational(guide = Model)]
struct Guide {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
}

fn dims(model: &Model, guide: &Guide) -> (usize, usize) {
    (model.dim(), guide.latent_dim())
}

fn main() {
    let model = Model::new(1.0).unwrap();
    let guide = Guide::new(&model).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mu: f64 = model.sample_prior(&mut rng).unwrap().mu;
    assert_eq!(dims(&model, &guide), (1, 1));
    assert!(mu.is_finite() && model.x() == 1.0);
}
