use iwhvi::variational;

#[variational]
struct Garch {
    #[data]
    floor: Vec<f64>,
    #[latent(Flat(), lower = 0.0, upper = 1.0)]
    alpha: f64,
    #[transformed(1.0 - alpha)]
    rest: f64,
    // A bound is part of the layout, which constrains draws without the
    // model: it cannot read a transformed value (`upper = 1.0 - alpha`
    // can be written out).
    #[latent(Flat(), lower = 0.0, upper = rest)]
    beta: f64,
    #[latent(Normal(0.0, 1.0), len = floor.len(), lower = rest)]
    above: Vec<f64>,
    #[latent(Normal(0.0, 1.0), multiplier = rest)]
    scaled: f64,
    #[observe(Normal(alpha + beta + scaled, 1.0), for i)]
    y: Vec<f64>,
}

fn main() {}
