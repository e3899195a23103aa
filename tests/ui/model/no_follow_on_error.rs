// A model with a mistake is still declared (without its roles), and its
// guide says nothing more: the mistake is the only error, although both
// structs are used below.
use iwhvi::variational;

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

fn shift(model: &Model, guide: &Guide) -> f64 {
    model.x + model.mu + guide.mu
}

fn main() {
    let model = Model { x: 1.0, mu: 0.0 };
    let guide = Guide { mu: 0.5 };
    assert_eq!(shift(&model, &guide), 1.5);
}
