//! The expansion is lint-clean and uses absolute paths only: this file
//! denies warnings and shadows the prelude names generated code could
//! otherwise pick up.
#![deny(warnings, missing_docs, unused_qualifications)]
#![allow(dead_code)]

#[allow(unused_imports)]
mod shadowing {
    /// Shadows `Option`.
    pub struct Option;
    /// Shadows `Result`.
    pub struct Result;
    /// Shadows `Box`.
    pub struct Box;
    /// Shadows `Vec`.
    pub struct Vec;
    /// Shadows `f64` helpers.
    pub fn exp() {}
}
#[allow(unused_imports)]
use shadowing::*;

use iwhvi::variational;

/// A hierarchical regression with an index into a latent vector.
#[variational]
pub struct Radon {
    /// Predictor.
    #[data]
    pub x: std::vec::Vec<f64>,
    /// County of each house.
    #[data]
    pub county: std::vec::Vec<usize>,
    /// Number of counties.
    #[data]
    pub counties: usize,
    #[latent(Normal(0.0, 10.0))]
    mu_a: f64,
    #[latent(HalfNormal(5.0))]
    sigma_a: f64,
    #[latent(Normal(mu_a, sigma_a), len = counties)]
    a: std::vec::Vec<f64>,
    #[latent(Normal(0.0, 10.0))]
    b: f64,
    #[latent(Exponential(1.0))]
    sigma_y: f64,
    /// A parenthesised method receiver.
    #[latent(Normal(0.0, (sigma_y / 2.0).exp()))]
    c: f64,
    /// Log radon.
    #[observe(Normal(a[county[i]] + b * x[i], sigma_y), for i)]
    pub y: std::vec::Vec<f64>,
}

#[test]
fn expands_without_warnings() {
    use iwhvi::model::Model;
    let model = Radon::new(vec![0.0, 1.0, 0.0], vec![0, 1, 1], 2, vec![1.2, 0.4, 0.9]).unwrap();
    assert_eq!(model.dim(), 7);
    assert!(model.log_joint(&[0.1; 7]).is_finite());
}

/// A hierarchical guide for `Radon`: the county effects conditioned on the
/// sampled population mean, one mixing vector with a reverse model.
#[variational(guide = Radon)]
pub struct RadonGuide {
    #[param(init = 0.0)]
    mu_loc: f64,
    #[param(init = normal(0.1), len = 2)]
    mix: std::vec::Vec<f64>,
    #[param(init = 0.0, len = a)]
    a_offset: std::vec::Vec<f64>,
    #[param(init = 0.0)]
    back: f64,
    #[mixing(len = 2)]
    #[reverse(Normal(back * mu_a, 1.0), for k)]
    psi: std::vec::Vec<f64>,
    #[latent(Normal(mu_loc + mix[0] * psi[0] + mix[1] * psi[1], 1.0))]
    mu_a: f64,
    #[latent(LogNormal(0.0, 1.0))]
    sigma_a: f64,
    #[latent(Normal(mu_a + a_offset[j], sigma_a), for j)]
    a: std::vec::Vec<f64>,
    #[latent(Normal(0.0, 1.0))]
    b: f64,
    #[latent(LogNormal(0.0, 0.5))]
    sigma_y: f64,
    #[latent(Normal(0.0, (sigma_y / 2.0).exp()))]
    c: f64,
}

#[test]
fn a_guide_expands_without_warnings() {
    use iwhvi::Differentiable;
    use iwhvi::guide::HierarchicalGuide;
    use iwhvi::objective::{Diwhvi, DiwhviObjective, StepNoise};
    use rand::SeedableRng;
    let model = Radon::new(vec![0.0, 1.0, 0.0], vec![0, 1, 1], 2, vec![1.2, 0.4, 0.9]).unwrap();
    let guide = RadonGuide::new(&model).unwrap();
    assert_eq!((guide.latent_dim(), guide.mixing_dim()), (7, 2));
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let params = guide.init_params(&mut rng);
    assert_eq!(params.len(), 1 + 2 + 2 + 1);
    let noise = StepNoise::draw(&guide, Diwhvi::new(2, 3), &mut rng);
    assert!(
        DiwhviObjective::new(&model, &guide, &noise)
            .eval(&params)
            .is_finite()
    );
}

/// Bounds (fixed, one-sided and moving with another latent), bool data, an
/// ordered constraint, a factor and derived quantities.
#[variational]
pub struct Bounded {
    /// Whether each trial had the treatment.
    #[data]
    pub treated: std::vec::Vec<bool>,
    #[latent(Flat(), lower = 0.0, upper = 1.0)]
    p: f64,
    #[latent(Normal(0.0, 1.0), lower = 0.0)]
    scale: f64,
    #[latent(Uniform(0.0, 0.5))]
    low: f64,
    #[latent(Flat(), lower = low, upper = 1.0)]
    high: f64,
    #[latent(Normal(0.0, 1.0), constraint = ordered)]
    cuts: [f64; 2],
    #[factor(-0.5 * scale * scale + 0.1 * treated[0])]
    penalty: (),
    /// Successes.
    #[observe(Bernoulli(p), for i)]
    pub hits: std::vec::Vec<bool>,
    /// A scalar derived quantity.
    #[derived(p * scale + high)]
    pub product: f64,
    /// A derived quantity per cut.
    #[derived(cuts[i] + low, for i)]
    pub shifted: [f64; 2],
}

#[test]
fn bounds_bool_data_constraints_and_derived_quantities_expand_without_warnings() {
    use iwhvi::model::Model;
    use rand::SeedableRng;
    let model = Bounded::new(vec![true, false, true], vec![true, true, false]).unwrap();
    assert_eq!(model.dim(), 6);
    assert!(model.log_joint(&[0.1; 6]).is_finite());
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let latents = model.sample_prior(&mut rng).unwrap();
    assert!(latents.low < latents.high && latents.cuts[0] < latents.cuts[1]);
    assert_eq!(model.simulate(&latents, &mut rng).unwrap().hits.len(), 3);
    let derived = model.derived_quantities(&latents);
    assert_eq!(derived.shifted[1], latents.cuts[1] + latents.low);
}

/// Learned parameters: a vector (nalgebra's `DVector`) read in a plate and
/// a derived quantity, a scale kept positive in a prior, and a guide.
#[variational]
pub struct Learned {
    /// Predictor.
    #[data]
    pub x: std::vec::Vec<f64>,
    /// Number of weights.
    #[data]
    pub k: usize,
    /// Learned weights.
    #[param(init = 0.5, len = k)]
    pub w: nalgebra::DVector<f64>,
    /// Learned prior scale.
    #[param(init = 1.0, lower = 0.0)]
    pub scale: f64,
    #[latent(Normal(0.0, scale))]
    b: f64,
    /// Outcome.
    #[observe(Normal(b + w[i % k] * x[i], 1.0), for i)]
    pub y: std::vec::Vec<f64>,
    /// The intercept beside the first weight.
    #[derived(b + w[0])]
    pub shifted: f64,
}

/// A guide for `Learned`.
#[variational(guide = Learned)]
pub struct LearnedGuide {
    #[param(init = 0.0)]
    loc: f64,
    #[latent(Normal(loc, 1.0))]
    b: f64,
}

#[test]
fn learned_parameters_expand_without_warnings() {
    use iwhvi::model::Model;
    use rand::SeedableRng;
    let mut model = Learned::new(vec![1.0, 2.0, 3.0], 2, vec![0.5, 1.5, 2.0]).unwrap();
    assert_eq!(model.w.len(), 2);
    assert_eq!((model.theta_dim(), model.dim()), (3, 1));
    assert_eq!(
        model.log_joint(&[0.2]),
        model.log_joint_theta(&model.theta(), &[0.2])
    );
    model.set_theta(&[1.0, -1.0, 0.0]).unwrap();
    assert_eq!((model.w[0], model.w[1], model.scale), (1.0, -1.0, 1.0));
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let latents = model.sample_prior(&mut rng).unwrap();
    assert_eq!(model.simulate(&latents, &mut rng).unwrap().y.len(), 3);
    assert_eq!(model.derived_quantities(&latents).shifted, latents.b + 1.0);
    let guide = LearnedGuide::new(&model).unwrap();
    let _ = guide;
}
