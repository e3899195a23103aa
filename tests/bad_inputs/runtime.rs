//! The runtime side: data given to a model's `new`, the evaluation
//! functions, the objective's and the fit's settings, the optimizers, the
//! posterior's constructors and samplers, sizes, and saved files
//! truncated, edited and mismatched.

use iwhvi::fit::{Engine, FitConfig, Init, Pilots, fit, fit_from};
use iwhvi::guide::{FullRank, HierarchicalGuide, MeanField, Preconditioned, SemiImplicit};
use iwhvi::laplace::{MultiStart, laplace_multistart};
use iwhvi::model::{LatentSpec, Layout, Model};
use iwhvi::objective::{
    Diwhvi, GradientEstimator, StepNoise, estimate_bound, guide_diagnostics, log_evidence,
    mutual_information, upper_bound_log_q, value_and_gradient_with,
};
use iwhvi::optim::{Adam, LearningRate, Sgd};
use iwhvi::posterior::{FittedGuide, Posterior};
use iwhvi::rand::SeedableRng;
use iwhvi::rand::rngs::StdRng;
use iwhvi::tape::TapeEngine;
use iwhvi::transforms::Transform;
use iwhvi::{Scalar, variational};
use serde_json::{Value, json};

use super::{Case, outcome, run_table};

/// `u ~ N(0, I₂)`, `log p(x) = 0`.
struct StdNormal2;

impl Model for StdNormal2 {
    fn layout(&self) -> Layout {
        Layout::new(vec![LatentSpec::vector("u", 2, Transform::Identity)])
    }

    fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
        iwhvi::guide::std_normal_log_density(u)
    }
}

/// One positive latent, for a layout that differs from `StdNormal2`'s.
struct Positive2;

impl Model for Positive2 {
    fn layout(&self) -> Layout {
        Layout::new(vec![LatentSpec::vector("s", 2, Transform::Exp)])
    }

    fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
        iwhvi::guide::std_normal_log_density(u)
    }
}

#[variational]
struct Regression {
    #[latent(Normal(0.0, 5.0))]
    slope: f64,
    #[latent(LogNormal(0.0, 1.0))]
    sigma: f64,
    #[data]
    x: Vec<f64>,
    #[observe(Normal(slope * x[i], sigma), for i)]
    y: Vec<f64>,
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn quiet(objective: Diwhvi) -> FitConfig {
    FitConfig::new(objective).max_steps(5).progress(false)
}

/// A mean-field guide's parameters for `StdNormal2`: N(0, I).
fn mf_params() -> Vec<f64> {
    vec![0.0; 4]
}

/// A hierarchical VAE on 3 pixels with 2 latents.
fn hierarchical_vae() -> iwhvi::amortised::Vae {
    use iwhvi::amortised::{Activation, EncoderKind, Vae};
    Vae::new(
        3,
        2,
        EncoderKind::Hierarchical { mixing_dim: 2 },
        &[4],
        Activation::Tanh,
    )
    .expect("a valid architecture")
}

fn si() -> SemiImplicit {
    SemiImplicit::new(2, 2)
}

fn si_params() -> Vec<f64> {
    si().init_params(&mut rng())
}

/// A saved mean-field guide of `StdNormal2`, as a JSON value.
fn saved_mf() -> Value {
    let fitted = FittedGuide::new(
        MeanField::new(2),
        vec![0.1, -0.2, 0.0, -0.5],
        StdNormal2.layout(),
    )
    .unwrap();
    serde_json::from_str(&fitted.to_json().unwrap()).unwrap()
}

/// A saved semi-implicit guide of `StdNormal2`, as a JSON value.
fn saved_si() -> Value {
    let fitted = FittedGuide::new(si(), si_params(), StdNormal2.layout()).unwrap();
    serde_json::from_str(&fitted.to_json().unwrap()).unwrap()
}

fn load_mf(value: Value) -> String {
    outcome(FittedGuide::<MeanField>::from_json(&value.to_string()))
}

fn load_si(value: Value) -> String {
    outcome(FittedGuide::<SemiImplicit>::from_json(&value.to_string()))
}

fn edited(mut value: Value, edit: impl FnOnce(&mut Value)) -> Value {
    edit(&mut value);
    value
}

fn case(name: &'static str, expected: &'static str, f: impl Fn() -> String + 'static) -> Case {
    (name, expected, Box::new(f))
}

/// A simplex whose length the data give.
#[variational]
struct Shares {
    #[data]
    k: usize,
    #[latent(Flat(), len = k, constraint = simplex)]
    theta: Vec<f64>,
}

/// Data used as a likelihood's scale.
#[variational]
struct DataScale {
    #[data]
    s: Vec<f64>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(mu, s[i]), for i)]
    y: Vec<f64>,
}

/// A Dirichlet over a slice of a data vector.
#[variational]
struct SliceOfData {
    #[data]
    alpha: Vec<f64>,
    #[latent(Dirichlet(alpha[1..4]))]
    theta: [f64; 3],
}

#[test]
fn data_given_to_a_model() {
    run_table(vec![
        case(
            "a simplex of no entries (len = k, k = 0)",
            "LatentShape(ShapeDoesNotFitTransform",
            || outcome(Shares::new(0)),
        ),
        case("a simplex of three entries", "ok", || {
            outcome(Shares::new(3))
        }),
        case(
            "a literal slice past a data vector's end: new names the field and the read",
            "OutOfRange { field: \"alpha\", access: \"alpha[1..4]\", len: 3",
            || outcome(SliceOfData::new(vec![1.0, 2.0, 3.0])),
        ),
        case("a slice inside a data vector", "ok", || {
            let model = SliceOfData::new(vec![1.0, 2.0, 3.0, 4.0]).unwrap();
            outcome(fit(
                &model,
                &MeanField::new(model.dim()),
                Adam::new(0.01),
                &quiet(Diwhvi::elbo()),
            ))
        }),
        case("NaN in the data", "NotFinite", || {
            outcome(Regression::new(vec![1.0, f64::NAN], vec![1.0, 2.0]))
        }),
        case("infinite data", "NotFinite", || {
            outcome(Regression::new(vec![1.0, 2.0], vec![f64::INFINITY, 2.0]))
        }),
        case(
            "data vectors of different lengths",
            "LengthMismatch",
            || outcome(Regression::new(vec![1.0, 2.0, 3.0], vec![1.0, 2.0])),
        ),
        case(
            "a data scale of 0",
            "InvalidParameter { field: \"s\", index: 1, value: 0.0, term: \"y\", distribution: \"Normal\", parameter: \"scale\"",
            || outcome(DataScale::new(vec![1.0, 0.0], vec![0.1, 0.2])),
        ),
        case(
            "a data scale of -1",
            "InvalidParameter { field: \"s\", index: 0, value: -1.0",
            || outcome(DataScale::new(vec![-1.0, 1.0], vec![0.1, 0.2])),
        ),
        case("valid data", "ok", || {
            outcome(Regression::new(vec![1.0, 2.0], vec![1.0, 2.0]))
        }),
    ]);
}

#[test]
fn evaluation_functions() {
    run_table(vec![
        case(
            "estimate_bound: parameters of the wrong length",
            "WrongParameterCount { expected: 4, found: 3 }",
            || {
                outcome(estimate_bound(
                    &StdNormal2,
                    &MeanField::new(2),
                    &[0.0; 3],
                    Diwhvi::elbo(),
                    10,
                    &mut rng(),
                ))
            },
        ),
        case(
            "estimate_bound: a guide for another D",
            "DimensionMismatch { model: 2, guide: 3 }",
            || {
                outcome(estimate_bound(
                    &StdNormal2,
                    &MeanField::new(3),
                    &[0.0; 6],
                    Diwhvi::elbo(),
                    10,
                    &mut rng(),
                ))
            },
        ),
        case("estimate_bound: 0 replicates", "TooFewDraws(0)", || {
            outcome(estimate_bound(
                &StdNormal2,
                &MeanField::new(2),
                &mf_params(),
                Diwhvi::elbo(),
                0,
                &mut rng(),
            ))
        }),
        case(
            "estimate_bound: 1 replicate (no standard error)",
            "TooFewDraws(1)",
            || {
                outcome(estimate_bound(
                    &StdNormal2,
                    &MeanField::new(2),
                    &mf_params(),
                    Diwhvi::elbo(),
                    1,
                    &mut rng(),
                ))
            },
        ),
        case(
            "estimate_bound: a NaN parameter",
            "NonFiniteParameter { index: 2",
            || {
                outcome(estimate_bound(
                    &StdNormal2,
                    &MeanField::new(2),
                    &[0.0, 0.0, f64::NAN, 0.0],
                    Diwhvi::elbo(),
                    10,
                    &mut rng(),
                ))
            },
        ),
        case("estimate_bound: K = usize::MAX / 2", "TooLarge", || {
            outcome(estimate_bound(
                &StdNormal2,
                &si(),
                &si_params(),
                Diwhvi::new(1, usize::MAX / 2),
                10,
                &mut rng(),
            ))
        }),
        case("estimate_bound: valid", "ok", || {
            outcome(estimate_bound(
                &StdNormal2,
                &MeanField::new(2),
                &mf_params(),
                Diwhvi::elbo(),
                10,
                &mut rng(),
            ))
        }),
        case("log_evidence: M = 0", "NoOuterSamples", || {
            outcome(log_evidence(
                &StdNormal2,
                &si(),
                &si_params(),
                0,
                4,
                10,
                &mut rng(),
            ))
        }),
        case(
            "log_evidence: parameters of the wrong length",
            "WrongParameterCount",
            || {
                outcome(log_evidence(
                    &StdNormal2,
                    &si(),
                    &[0.0; 5],
                    4,
                    4,
                    10,
                    &mut rng(),
                ))
            },
        ),
        case(
            "log_evidence: a guide for another D",
            "DimensionMismatch",
            || {
                let guide = SemiImplicit::new(3, 2);
                let params = guide.init_params(&mut rng());
                outcome(log_evidence(
                    &StdNormal2,
                    &guide,
                    &params,
                    4,
                    4,
                    10,
                    &mut rng(),
                ))
            },
        ),
        case("guide_diagnostics: K = 0", "NoInnerSamples", || {
            outcome(guide_diagnostics(
                &StdNormal2,
                &si(),
                &si_params(),
                0,
                10,
                &mut rng(),
            ))
        }),
        case("guide_diagnostics: one draw", "TooFewDraws(1)", || {
            outcome(guide_diagnostics(
                &StdNormal2,
                &si(),
                &si_params(),
                4,
                1,
                &mut rng(),
            ))
        }),
        case(
            "guide_diagnostics: parameters of the wrong length",
            "WrongParameterCount",
            || {
                outcome(guide_diagnostics(
                    &StdNormal2,
                    &si(),
                    &[0.0; 2],
                    4,
                    10,
                    &mut rng(),
                ))
            },
        ),
        case(
            "guide_diagnostics: a guide for another D",
            "DimensionMismatch",
            || {
                outcome(guide_diagnostics(
                    &StdNormal2,
                    &MeanField::new(1),
                    &[0.0; 2],
                    4,
                    10,
                    &mut rng(),
                ))
            },
        ),
        case(
            "upper_bound_log_q: parameters of the wrong length",
            "WrongParameterCount",
            || {
                let noise = StepNoise::draw(&si(), Diwhvi::iwhvi(4), &mut rng());
                outcome(upper_bound_log_q(&si(), &[0.0; 3], &noise, 0))
            },
        ),
        case(
            "upper_bound_log_q: noise of another guide",
            "NoiseMismatch",
            || {
                let noise = StepNoise::draw(&SemiImplicit::new(5, 3), Diwhvi::iwhvi(4), &mut rng());
                outcome(upper_bound_log_q(&si(), &si_params(), &noise, 0))
            },
        ),
        case(
            "upper_bound_log_q: outer sample past M",
            "OuterSampleOutOfRange { index: 3, m: 2 }",
            || {
                let noise = StepNoise::draw(&si(), Diwhvi::new(2, 4), &mut rng());
                outcome(upper_bound_log_q(&si(), &si_params(), &noise, 3))
            },
        ),
        case(
            "upper_bound_log_q: K = 0 has no lower bound",
            "None",
            || {
                let noise = StepNoise::draw(&si(), Diwhvi::hvm(1), &mut rng());
                let (sandwich, _) = upper_bound_log_q(&si(), &si_params(), &noise, 0).unwrap();
                format!("{:?}", sandwich.lower)
            },
        ),
        case(
            "value_and_gradient_with: a gradient buffer of another length",
            "Input(InvalidSetting { setting: \"gradient\"",
            || {
                let noise = StepNoise::draw(&si(), Diwhvi::iwhvi(2), &mut rng());
                let mut gradient = vec![0.0; 3];
                outcome(value_and_gradient_with(
                    &StdNormal2,
                    &si(),
                    &si_params(),
                    &noise,
                    &TapeEngine,
                    GradientEstimator::Reparameterized,
                    &mut gradient,
                ))
            },
        ),
        case(
            "value_and_gradient_with: noise of another guide",
            "Input(NoiseMismatch",
            || {
                let noise = StepNoise::draw(&MeanField::new(2), Diwhvi::elbo(), &mut rng());
                let mut gradient = vec![0.0; si_params().len()];
                outcome(value_and_gradient_with(
                    &StdNormal2,
                    &si(),
                    &si_params(),
                    &noise,
                    &TapeEngine,
                    GradientEstimator::Reparameterized,
                    &mut gradient,
                ))
            },
        ),
        case(
            "value_and_gradient_with: a guide for another D",
            "Input(DimensionMismatch",
            || {
                let guide = MeanField::new(3);
                let noise = StepNoise::draw(&guide, Diwhvi::elbo(), &mut rng());
                let mut gradient = vec![0.0; 6];
                outcome(value_and_gradient_with(
                    &StdNormal2,
                    &guide,
                    &[0.0; 6],
                    &noise,
                    &TapeEngine,
                    GradientEstimator::Reparameterized,
                    &mut gradient,
                ))
            },
        ),
        case(
            "laplace_multistart: no starts",
            "Input(InvalidSetting { setting: \"starts\"",
            || {
                outcome(laplace_multistart(
                    &StdNormal2,
                    MultiStart {
                        starts: 0,
                        ..MultiStart::default()
                    },
                ))
            },
        ),
        case(
            "laplace_multistart: a negative radius",
            "Input(InvalidSetting { setting: \"radius\"",
            || {
                outcome(laplace_multistart(
                    &StdNormal2,
                    MultiStart {
                        radius: -1.0,
                        ..MultiStart::default()
                    },
                ))
            },
        ),
        case(
            "laplace_from: a NaN tolerance",
            "Input(InvalidSetting { setting: \"tolerance\"",
            || {
                outcome(iwhvi::laplace::laplace_from(
                    &StdNormal2,
                    &[0.0, 0.0],
                    iwhvi::laplace::LaplaceOptions {
                        tolerance: f64::NAN,
                        ..Default::default()
                    },
                ))
            },
        ),
        case(
            "laplace_from: a negative tolerance",
            "Input(InvalidSetting { setting: \"tolerance\"",
            || {
                outcome(iwhvi::laplace::laplace_from(
                    &StdNormal2,
                    &[0.0, 0.0],
                    iwhvi::laplace::LaplaceOptions {
                        tolerance: -1.0,
                        ..Default::default()
                    },
                ))
            },
        ),
        case(
            "DiwhviObjective::try_new: a guide for another D",
            "DimensionMismatch { model: 2, guide: 3 }",
            || {
                let guide = MeanField::new(3);
                let noise = StepNoise::new(&guide, Diwhvi::elbo());
                outcome(iwhvi::objective::DiwhviObjective::try_new(
                    &StdNormal2,
                    &guide,
                    &noise,
                ))
            },
        ),
        case(
            "DiwhviObjective::try_new: noise drawn for another guide",
            "NoiseMismatch",
            || {
                let noise = StepNoise::new(&si(), Diwhvi::new(1, 4));
                outcome(iwhvi::objective::DiwhviObjective::try_new(
                    &StdNormal2,
                    &MeanField::new(2),
                    &noise,
                ))
            },
        ),
        case("DiwhviObjective::try_new: all fit", "ok", || {
            let guide = MeanField::new(2);
            let noise = StepNoise::new(&guide, Diwhvi::elbo());
            outcome(iwhvi::objective::DiwhviObjective::try_new(
                &StdNormal2,
                &guide,
                &noise,
            ))
        }),
        case(
            "Vae::encode_means: zero draws",
            "InvalidSetting { setting: \"draws\"",
            || {
                outcome(hierarchical_vae().encode_means(
                    &vec![0.0; hierarchical_vae().len()],
                    &[1.0, 0.0, 1.0],
                    0,
                    &mut rng(),
                ))
            },
        ),
        case(
            "Vae::encode_means: draws past the memory budget",
            "InvalidSetting { setting: \"draws\", value: \"9223372036854775807 (about ",
            || {
                outcome(hierarchical_vae().encode_means(
                    &vec![0.0; hierarchical_vae().len()],
                    &[1.0, 0.0, 1.0],
                    usize::MAX / 2,
                    &mut rng(),
                ))
            },
        ),
        case("Vae::encode_means: a few draws", "ok", || {
            outcome(hierarchical_vae().encode_means(
                &vec![0.0; hierarchical_vae().len()],
                &[1.0, 0.0, 1.0],
                4,
                &mut rng(),
            ))
        }),
        case("mutual_information: K = 0", "NoInnerSamples", || {
            outcome(mutual_information(&si(), &si_params(), 0, 10, &mut rng()))
        }),
        case(
            "mutual_information: a NaN parameter",
            "NonFiniteParameter",
            || {
                let mut params = si_params();
                params[0] = f64::NEG_INFINITY;
                outcome(mutual_information(&si(), &params, 4, 10, &mut rng()))
            },
        ),
    ]);
}

#[test]
fn objective_and_fit_settings() {
    run_table(vec![
        case("Diwhvi::try_new(0, 4)", "NoOuterSamples", || {
            outcome(Diwhvi::try_new(0, 4))
        }),
        case("StepNoise with K = usize::MAX / 2", "TooLarge", || {
            outcome(StepNoise::try_new(
                &si(),
                Diwhvi::new(1, usize::MAX / 2),
                1 << 32,
            ))
        }),
        case(
            "fit: a guide for another D",
            "Input(DimensionMismatch { model: 2, guide: 3 })",
            || {
                outcome(fit(
                    &StdNormal2,
                    &MeanField::new(3),
                    Adam::new(0.01),
                    &quiet(Diwhvi::elbo()),
                ))
            },
        ),
        case(
            "fit_from: initial values of the wrong length",
            "Input(WrongParameterCount { expected: 4, found: 5 })",
            || {
                outcome(fit_from(
                    &StdNormal2,
                    &MeanField::new(2),
                    Adam::new(0.01),
                    &quiet(Diwhvi::elbo()),
                    vec![0.0; 5],
                ))
            },
        ),
        case(
            "fit_from: a NaN initial value",
            "Input(NonFiniteParameter { index: 1",
            || {
                outcome(fit_from(
                    &StdNormal2,
                    &MeanField::new(2),
                    Adam::new(0.01),
                    &quiet(Diwhvi::elbo()),
                    vec![0.0, f64::NAN, 0.0, 0.0],
                ))
            },
        ),
        case(
            "fit: window(0)",
            "Input(InvalidSetting { setting: \"window\"",
            || {
                outcome(fit(
                    &StdNormal2,
                    &MeanField::new(2),
                    Adam::new(0.01),
                    &quiet(Diwhvi::elbo()).window(0),
                ))
            },
        ),
        case(
            "fit: max_consecutive_rejections(0)",
            "Input(InvalidSetting { setting: \"max_consecutive_rejections\"",
            || {
                outcome(fit(
                    &StdNormal2,
                    &MeanField::new(2),
                    Adam::new(0.01),
                    &quiet(Diwhvi::elbo()).max_consecutive_rejections(0),
                ))
            },
        ),
        case(
            "fit: a negative tol_rel_obj",
            "Input(InvalidSetting { setting: \"tol_rel_obj\"",
            || {
                outcome(fit(
                    &StdNormal2,
                    &MeanField::new(2),
                    Adam::new(0.01),
                    &quiet(Diwhvi::elbo()).tol_rel_obj(-1e-3),
                ))
            },
        ),
        case(
            "fit: a NaN tol_rel_obj",
            "Input(InvalidSetting { setting: \"tol_rel_obj\"",
            || {
                outcome(fit(
                    &StdNormal2,
                    &MeanField::new(2),
                    Adam::new(0.01),
                    &quiet(Diwhvi::elbo()).tol_rel_obj(f64::NAN),
                ))
            },
        ),
        case("fit: K = usize::MAX / 2", "Input(TooLarge", || {
            outcome(fit(
                &StdNormal2,
                &si(),
                Adam::new(0.01),
                &quiet(Diwhvi::new(1, usize::MAX / 2)),
            ))
        }),
        case("fit: M = usize::MAX / 2", "Input(TooLarge", || {
            outcome(fit(
                &StdNormal2,
                &MeanField::new(2),
                Adam::new(0.01),
                &quiet(Diwhvi::new(usize::MAX / 2, 0)),
            ))
        }),
        case(
            "fit: K = 10^7 on the reverse-mode tape",
            "Input(TooLarge",
            || {
                outcome(fit(
                    &StdNormal2,
                    &si(),
                    Adam::new(0.01),
                    &quiet(Diwhvi::new(1, 10_000_000)).engine(Engine::Tape),
                ))
            },
        ),
        case("fit: a memory budget of 0 bytes", "Input(TooLarge", || {
            outcome(fit(
                &StdNormal2,
                &si(),
                Adam::new(0.01),
                &quiet(Diwhvi::iwhvi(4)).memory_budget(0),
            ))
        }),
        case("fit: valid", "ok", || {
            outcome(fit(
                &StdNormal2,
                &si(),
                Adam::new(0.01),
                &quiet(Diwhvi::iwhvi(4)),
            ))
        }),
    ]);
}

/// Two plates of different lengths: which one a batch takes is not
/// defined.
/// Every latent local to the plate (`z[i]` read at its point alone).
#[variational]
struct AllLocal {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    z: Vec<f64>,
    #[observe(Normal(z[i], sigma[i]), for i)]
    y: Vec<f64>,
}

#[variational]
struct TwoPlates {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(mu, 1.0), for i)]
    a: Vec<f64>,
    #[observe(Normal(mu, 2.0), for j)]
    b: Vec<f64>,
}

/// A learned parameter: not subsampled (yet).
#[variational]
struct LearnedMean {
    #[param(init = 0.0)]
    m: f64,
    #[latent(Normal(m, 1.0))]
    mu: f64,
    #[observe(Normal(mu, 1.0), for i)]
    y: Vec<f64>,
}

/// No plate: one scalar observation.
#[variational]
struct OnePoint {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(mu, 1.0))]
    y: f64,
}

fn regression4() -> Regression {
    Regression::new(vec![1.0, 2.0, 3.0, 4.0], vec![0.9, 2.1, 2.8, 4.2]).unwrap()
}

fn fit_batched<M: Model>(model: &M, objective: Diwhvi, b: usize) -> String {
    outcome(fit(
        model,
        &MeanField::new(model.dim()),
        Adam::new(0.01),
        &quiet(objective).batch_size(b),
    ))
}

#[test]
fn minibatch_settings() {
    const BATCH: &str = "Input(InvalidSetting { setting: \"batch_size\"";
    let refused = |value: &str, why: &str| -> &'static str {
        format!("{BATCH}, value: \"{value}\", requirement: \"{why}").leak()
    };
    run_table(vec![
        case(
            "fit: batch_size(0)",
            refused("0", "a minibatch has at least one element"),
            || fit_batched(&regression4(), Diwhvi::elbo(), 0),
        ),
        case(
            "fit: a batch larger than the plate",
            refused("5", "a minibatch has at most as many elements"),
            || fit_batched(&regression4(), Diwhvi::elbo(), 5),
        ),
        case(
            "fit: a batch with M > 1 and global latents",
            refused(
                "2",
                "the per-point bound (minibatches with M > 1) needs every latent local",
            ),
            || fit_batched(&regression4(), Diwhvi::iwae(3), 2),
        ),
        case(
            "fit: a batch with M > 1, every latent local, a guide without per-point groups",
            refused(
                "2",
                "the per-point bound (minibatches with M > 1) needs a guide that factorises per point",
            ),
            || {
                let model = AllLocal::new(vec![1.0; 4], vec![0.1, 0.2, 0.3, 0.4]).unwrap();
                fit_batched(&model, Diwhvi::iwae(3), 2)
            },
        ),
        case(
            "fit: a batch of a hand-written model without log_joint_subset",
            refused("1", "this model cannot be subsampled"),
            || fit_batched(&StdNormal2, Diwhvi::elbo(), 1),
        ),
        case(
            "fit: a batch of a model with two plates of different lengths",
            refused("1", "this model has plates of different lengths"),
            || {
                let model = TwoPlates::new(vec![0.1, 0.2], vec![0.3, 0.4, 0.5]).unwrap();
                fit_batched(&model, Diwhvi::elbo(), 1)
            },
        ),
        case(
            "fit: a batch of a model with learned parameters",
            "ok",
            || {
                fit_batched(
                    &LearnedMean::new(vec![0.1, 0.2]).unwrap(),
                    Diwhvi::elbo(),
                    1,
                )
            },
        ),
        case(
            "fit: a batch of a model without a plate",
            refused("1", "this model has no plate to subsample"),
            || fit_batched(&OnePoint::new(0.5).unwrap(), Diwhvi::elbo(), 1),
        ),
        case("fit: a batch of the whole plate with M > 1", "ok", || {
            fit_batched(&regression4(), Diwhvi::iwae(3), 4)
        }),
        case("fit: a batch with two plates of one length", "ok", || {
            let model = TwoPlates::new(vec![0.1, 0.2], vec![0.3, 0.4]).unwrap();
            fit_batched(&model, Diwhvi::elbo(), 1)
        }),
        case("fit: a batch of one element", "ok", || {
            fit_batched(&regression4(), Diwhvi::elbo(), 1)
        }),
    ]);
}

fn fit_with(optimizer: impl iwhvi::optim::Optimizer + Clone) -> String {
    outcome(fit(
        &StdNormal2,
        &MeanField::new(2),
        optimizer,
        &quiet(Diwhvi::elbo()),
    ))
}

#[test]
fn optimizer_settings() {
    run_table(vec![
        case(
            "Adam: a negative learning rate",
            "Input(InvalidSetting { setting: \"learning_rate\"",
            || fit_with(Adam::new(-0.01)),
        ),
        case(
            "Adam: a zero learning rate",
            "Input(InvalidSetting { setting: \"learning_rate\"",
            || fit_with(Adam::new(0.0)),
        ),
        case(
            "Adam: a NaN learning rate",
            "Input(InvalidSetting { setting: \"learning_rate\"",
            || fit_with(Adam::new(f64::NAN)),
        ),
        case(
            "Adam: an infinite learning rate",
            "Input(InvalidSetting { setting: \"learning_rate\"",
            || fit_with(Adam::new(f64::INFINITY)),
        ),
        case(
            "Adam: a zero clipping norm",
            "Input(InvalidSetting { setting: \"clip_norm\"",
            || fit_with(Adam::new(0.01).with_clip_norm(0.0)),
        ),
        case(
            "Adam: beta1 = 1",
            "Input(InvalidSetting { setting: \"beta1\"",
            || fit_with(Adam::new(0.01).with_betas(1.0, 0.999)),
        ),
        case(
            "Adam: epsilon = 0",
            "Input(InvalidSetting { setting: \"epsilon\"",
            || fit_with(Adam::new(0.01).with_epsilon(0.0)),
        ),
        case(
            "Adam: beta2 = -0.5",
            "Input(InvalidSetting { setting: \"beta2\"",
            || fit_with(Adam::new(0.01).with_betas(0.9, -0.5)),
        ),
        case(
            "pilot fits from a negative radius (a panic in the sampler before)",
            "Input(InvalidSetting { setting: \"pilots.radius\"",
            || {
                let rule = Pilots {
                    radius: -1.0,
                    ..Pilots::default()
                };
                outcome(fit(
                    &StdNormal2,
                    &MeanField::new(2),
                    Adam::new(0.01),
                    &quiet(Diwhvi::elbo()).init(Init::Pilots(rule)),
                ))
            },
        ),
        case(
            "zero pilot fits",
            "Input(InvalidSetting { setting: \"pilots.starts\"",
            || {
                let rule = Pilots {
                    starts: 0,
                    ..Pilots::default()
                };
                outcome(fit(
                    &StdNormal2,
                    &MeanField::new(2),
                    Adam::new(0.01),
                    &quiet(Diwhvi::elbo()).init(Init::Pilots(rule)),
                ))
            },
        ),
        case(
            "SGD: momentum 1.5",
            "Input(InvalidSetting { setting: \"momentum\"",
            || fit_with(Sgd::new(0.01, 1.5)),
        ),
        case(
            "SGD: a negative learning rate",
            "Input(InvalidSetting { setting: \"learning_rate\"",
            || fit_with(Sgd::new(-0.01, 0.0)),
        ),
        case(
            "exponential schedule: decay 1.5 (grows)",
            "Input(InvalidSetting { setting: \"learning_rate.decay\"",
            || {
                fit_with(Adam::with_schedule(LearningRate::Exponential {
                    initial: 0.01,
                    decay: 1.5,
                    every: 10,
                }))
            },
        ),
        case(
            "exponential schedule: every 0",
            "Input(InvalidSetting { setting: \"learning_rate.every\"",
            || {
                fit_with(Adam::with_schedule(LearningRate::Exponential {
                    initial: 0.01,
                    decay: 0.5,
                    every: 0,
                }))
            },
        ),
        case(
            "inverse-time schedule: half-life 0",
            "Input(InvalidSetting { setting: \"learning_rate.half_life\"",
            || {
                fit_with(Adam::with_schedule(LearningRate::InverseTime {
                    initial: 0.01,
                    half_life: 0,
                }))
            },
        ),
        case(
            "inverse-time schedule: negative initial rate",
            "Input(InvalidSetting { setting: \"learning_rate.initial\"",
            || {
                fit_with(Sgd::with_schedule(
                    LearningRate::InverseTime {
                        initial: -1.0,
                        half_life: 10,
                    },
                    0.0,
                ))
            },
        ),
    ]);
}

#[test]
fn posterior_constructors_and_samplers() {
    run_table(vec![
        case(
            "Posterior::new: parameters of the wrong length",
            "Input(WrongParameterCount",
            || outcome(Posterior::new(&StdNormal2, &MeanField::new(2), &[0.0; 3])),
        ),
        case(
            "Posterior::new: a guide for another D",
            "Input(DimensionMismatch { model: 2, guide: 1 })",
            || outcome(Posterior::new(&StdNormal2, &MeanField::new(1), &[0.0; 2])),
        ),
        case(
            "Posterior::new: a NaN parameter",
            "Input(NonFiniteParameter",
            || {
                outcome(Posterior::new(
                    &StdNormal2,
                    &MeanField::new(2),
                    &[0.0, 0.0, 0.0, f64::NAN],
                ))
            },
        ),
        case(
            "FittedGuide::new: parameters of the wrong length",
            "Input(WrongParameterCount",
            || {
                outcome(FittedGuide::new(
                    MeanField::new(2),
                    vec![0.0; 5],
                    StdNormal2.layout(),
                ))
            },
        ),
        case(
            "Posterior::from_fitted: another model's layout",
            "LayoutMismatch",
            || {
                let fitted =
                    FittedGuide::new(MeanField::new(2), mf_params(), StdNormal2.layout()).unwrap();
                outcome(Posterior::from_fitted(&Positive2, fitted))
            },
        ),
        case(
            "importance resampling: n = 0",
            "Input(InvalidSetting { setting: \"n\"",
            || {
                let posterior =
                    Posterior::new(&StdNormal2, &MeanField::new(2), &mf_params()).unwrap();
                outcome(posterior.sample_importance_resampled(0, 10, 0, &mut rng()))
            },
        ),
        case(
            "pareto_k_hat: a NaN log weight (unreliable, not NaN)",
            "inf",
            || {
                let mut log_weights: Vec<f64> = (0..100).map(|i| f64::from(i) / 100.0).collect();
                log_weights[7] = f64::NAN;
                iwhvi::posterior::pareto_k_hat(&log_weights).to_string()
            },
        ),
        case("importance resampling: no proposals", "NoProposals", || {
            let posterior = Posterior::new(&StdNormal2, &MeanField::new(2), &mf_params()).unwrap();
            outcome(posterior.sample_importance_resampled(10, 0, 0, &mut rng()))
        }),
        case(
            "importance resampling: K = usize::MAX / 2",
            "Input(TooLarge",
            || {
                let posterior = Posterior::new(&StdNormal2, &si(), &si_params()).unwrap();
                outcome(posterior.sample_importance_resampled(10, 10, usize::MAX / 2, &mut rng()))
            },
        ),
        case(
            "importance resampling: usize::MAX draws",
            "Input(TooLarge",
            || {
                let posterior =
                    Posterior::new(&StdNormal2, &MeanField::new(2), &mf_params()).unwrap();
                outcome(posterior.sample_importance_resampled(usize::MAX, 10, 0, &mut rng()))
            },
        ),
        case("log weights: usize::MAX proposals", "TooLarge", || {
            let posterior = Posterior::new(&StdNormal2, &MeanField::new(2), &mf_params()).unwrap();
            outcome(posterior.log_weights(usize::MAX, 0, &mut rng()))
        }),
        case("a summary of zero draws has no rows", "None", || {
            let posterior = Posterior::new(&StdNormal2, &MeanField::new(2), &mf_params()).unwrap();
            format!(
                "{:?}",
                posterior
                    .sample(0, &mut rng())
                    .unwrap()
                    .summary()
                    .get("u[0]")
            )
        }),
        case(
            "Posterior::sample: usize::MAX / 2 draws",
            "TooLarge",
            || {
                let posterior =
                    Posterior::new(&StdNormal2, &MeanField::new(2), &mf_params()).unwrap();
                outcome(posterior.sample(usize::MAX / 2, &mut rng()))
            },
        ),
        case(
            "FittedGuide::sample: 10^9 draws of 2 elements (40 GB)",
            "TooLarge",
            || {
                let fitted =
                    FittedGuide::new(MeanField::new(2), mf_params(), StdNormal2.layout()).unwrap();
                outcome(fitted.sample(1_000_000_000, &mut rng()))
            },
        ),
        case("FittedGuide::sample: a few draws", "ok", || {
            let fitted =
                FittedGuide::new(MeanField::new(2), mf_params(), StdNormal2.layout()).unwrap();
            outcome(fitted.sample(3, &mut rng()))
        }),
    ]);
}

#[test]
fn saved_files() {
    run_table(vec![
        case("round trip", "ok", || load_mf(saved_mf())),
        case("truncated file", "Json(", || {
            let text = saved_mf().to_string();
            outcome(FittedGuide::<MeanField>::from_json(&text[..text.len() / 2]))
        }),
        case("empty file", "Json(", || {
            outcome(FittedGuide::<MeanField>::from_json(""))
        }),
        case("not an object", "Field { field: \"guide_type\"", || {
            load_mf(json!([1, 2, 3]))
        }),
        case(
            "no guide_type",
            "Field { field: \"guide_type\", message: \"missing\"",
            || {
                load_mf(edited(saved_mf(), |v| {
                    v.as_object_mut().unwrap().remove("guide_type");
                }))
            },
        ),
        case(
            "a mean-field file loaded as full-rank",
            "GuideType { expected: \"FullRank\", found: \"MeanField\" }",
            || outcome(FittedGuide::<FullRank>::from_json(&saved_mf().to_string())),
        ),
        case(
            "a semi-implicit file loaded as mean-field",
            "GuideType { expected: \"MeanField\", found: \"SemiImplicit\" }",
            || load_mf(saved_si()),
        ),
        case(
            "a parameter removed",
            "Input(WrongParameterCount { expected: 4, found: 3 })",
            || {
                load_mf(edited(saved_mf(), |v| {
                    v["params"].as_array_mut().unwrap().pop();
                }))
            },
        ),
        case(
            "a parameter written as null (NaN)",
            "Field { field: \"params\"",
            || load_mf(edited(saved_mf(), |v| v["params"][1] = Value::Null)),
        ),
        case(
            "a parameter written as a string",
            "Field { field: \"params\"",
            || load_mf(edited(saved_mf(), |v| v["params"][0] = json!("0.5"))),
        ),
        case(
            "no params",
            "Field { field: \"params\", message: \"missing\"",
            || {
                load_mf(edited(saved_mf(), |v| {
                    v.as_object_mut().unwrap().remove("params");
                }))
            },
        ),
        case(
            "an unknown top-level field",
            "Field { field: \"extra\"",
            || load_mf(edited(saved_mf(), |v| v["extra"] = json!(1))),
        ),
        case("the guide's D edited", "Input(", || {
            load_mf(edited(saved_mf(), |v| v["guide"]["latent_dim"] = json!(3)))
        }),
        case(
            "the guide's D made huge",
            "Field { field: \"guide\"",
            || {
                load_mf(edited(saved_mf(), |v| {
                    v["guide"]["latent_dim"] = json!(u64::MAX)
                }))
            },
        ),
        case(
            "a semi-implicit file with derived state (the old format)",
            "Field { field: \"guide\"",
            || {
                load_si(edited(saved_si(), |v| {
                    v["guide"]["prepared_reverse"] = json!(7)
                }))
            },
        ),
        case(
            "semi-implicit mixing_dim edited",
            "Input(WrongParameterCount",
            || load_si(edited(saved_si(), |v| v["guide"]["mixing_dim"] = json!(3))),
        ),
        case(
            "semi-implicit hidden units made huge",
            "Field { field: \"guide\"",
            || {
                load_si(edited(saved_si(), |v| {
                    v["guide"]["conditioning"] = json!({"Mlp": {"hidden": 1u64 << 40}})
                }))
            },
        ),
        case("semi-implicit round trip", "ok", || load_si(saved_si())),
        case(
            "layout: an interval with low > high",
            "Field { field: \"layout\"",
            || {
                load_mf(edited(saved_mf(), |v| {
                    v["layout"]["latents"][0]["transform"] =
                        json!({"Interval": {"low": 1.0, "high": -1.0}})
                }))
            },
        ),
        case("layout: a huge shape", "Field { field: \"layout\"", || {
            load_mf(edited(saved_mf(), |v| {
                v["layout"]["latents"][0]["shape"] = json!([u64::MAX, 2])
            }))
        }),
        case(
            "layout: another D",
            "Input(DimensionMismatch { model: 3, guide: 2 })",
            || {
                load_mf(edited(saved_mf(), |v| {
                    v["layout"]["latents"][0]["shape"] = json!([3])
                }))
            },
        ),
        case(
            "layout: a bound on an unknown latent",
            "Field { field: \"layout\"",
            || {
                load_mf(edited(saved_mf(), |v| {
                    v["layout"]["latents"][0]["dependent_bounds"] = json!({
                        "low": {"constant": 0.0, "terms": [["nope", 1.0]]},
                        "high": {"constant": 1.0, "terms": []}
                    })
                }))
            },
        ),
        case(
            "preconditioned: a shift of the wrong length",
            "Field { field: \"guide\"",
            || {
                let guide = Preconditioned::new(
                    MeanField::new(2),
                    vec![0.0, 0.0],
                    vec![1.0, 0.0, 0.0, 1.0],
                )
                .unwrap();
                let fitted = FittedGuide::new(guide, mf_params(), StdNormal2.layout()).unwrap();
                let mut value: Value = serde_json::from_str(&fitted.to_json().unwrap()).unwrap();
                value["guide"]["shift"].as_array_mut().unwrap().pop();
                outcome(FittedGuide::<Preconditioned<MeanField>>::from_json(
                    &value.to_string(),
                ))
            },
        ),
        case("a file that does not exist", "Io {", || {
            outcome(FittedGuide::<MeanField>::load(
                "/nonexistent/iwhvi/guide.json",
            ))
        }),
    ]);
}
