//! The last gaps of issue 13 (session 8), each a typed error naming the
//! culprit: draws indexed past their end, draws given to another model's
//! posterior, reads out of range in a condition under a branch, reads of
//! matrix latents and in `#[transformed]` loops, sizes from the data of
//! learned parameters and of the prior noise, and a point of the wrong
//! length; then misuses of the entry points added in sessions 6 and 7
//! (minibatches, encoders, learned parameters, semi-implicit priors,
//! `laplace_from`, the posterior's helpers), as a new user would try them.

use iwhvi::fit::{FitConfig, FitError, fit};
use iwhvi::guide::{HierarchicalGuide, MeanField};
use iwhvi::input::DEFAULT_MEMORY_BUDGET;
use iwhvi::laplace::{LaplaceOptions, laplace_from};
use iwhvi::model::{LatentSpec, Latents, Layout, Model};
use iwhvi::objective::{Diwhvi, StepNoise};
use iwhvi::optim::Adam;
use iwhvi::posterior::{Draws, FittedGuide, Posterior};
use iwhvi::rand::SeedableRng;
use iwhvi::rand::rngs::StdRng;
use iwhvi::transforms::Transform;
use iwhvi::{Scalar, variational};
use nalgebra::DMatrix;
use serde_json::Value;

use super::{Case, outcome, run_table};

fn case(name: &'static str, expected: &'static str, f: impl Fn() -> String + 'static) -> Case {
    (name, expected, Box::new(f))
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(3)
}

/// The fit's outcome, with the term `InvalidStart` names written out.
fn start<M: Model>(model: &M) -> String {
    let config = FitConfig::new(Diwhvi::elbo()).max_steps(5).progress(false);
    match fit(
        model,
        &MeanField::new(model.dim()),
        Adam::new(0.01),
        &config,
    ) {
        Err(FitError::InvalidStart {
            term: Some(invalid),
            ..
        }) => format!("InvalidStart({:?})", invalid.term),
        other => outcome(other),
    }
}

/// `u ~ N(0, I₂)`.
struct Two;

impl Model for Two {
    fn layout(&self) -> Layout {
        Layout::new(vec![LatentSpec::vector("u", 2, Transform::Identity)])
    }

    fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
        iwhvi::guide::std_normal_log_density(u)
    }
}

/// `Two` with `noise` values of semi-implicit prior noise per outer sample
/// (a size only; its log joint ignores the noise).
struct TwoWithPriorNoise {
    noise: usize,
}

impl Model for TwoWithPriorNoise {
    fn layout(&self) -> Layout {
        Two.layout()
    }

    fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
        Two.log_joint(u)
    }

    fn prior_noise_dim(&self) -> usize {
        self.noise
    }
}

/// Another model of the same dimension, with other latents.
struct OtherTwo;

impl Model for OtherTwo {
    fn layout(&self) -> Layout {
        Layout::new(vec![
            LatentSpec::scalar("a", Transform::Identity),
            LatentSpec::scalar("b", Transform::Exp),
        ])
    }

    fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
        iwhvi::guide::std_normal_log_density(u)
    }
}

fn draws_of<M: Model>(model: &M, n: usize) -> Draws {
    Posterior::new(model, &MeanField::new(2), &[0.0; 4])
        .unwrap()
        .sample(n, &mut rng())
        .unwrap()
}

/// A flag read through a data index, in a condition under a branch that
/// `new` cannot know runs.
#[variational]
struct FlagUnderBranch {
    #[data]
    flag: Vec<bool>,
    #[data]
    idx: Vec<usize>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(if mu > -1.0e300 { if flag[idx[i]] { mu } else { 0.0 } } else { mu }, 1.0), for i)]
    y: Vec<f64>,
}

/// An integer compared in a condition under a branch.
#[variational]
struct GroupUnderBranch {
    #[data]
    group: Vec<usize>,
    #[data]
    idx: Vec<usize>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(if mu > -1.0e300 { if group[idx[i]] == 1 { mu } else { 0.0 } } else { mu }, 1.0), for i)]
    y: Vec<f64>,
}

/// A data value compared with a latent in a condition under a branch.
#[variational]
struct CompareUnderBranch {
    #[data]
    x: Vec<f64>,
    #[data]
    idx: Vec<usize>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(if mu > -1.0e300 { if x[idx[i]] > mu { mu } else { 0.0 } } else { mu }, 1.0), for i)]
    y: Vec<f64>,
}

/// An `if` inside another `if`'s condition, under a branch, whose branch
/// reads the data at a position from the data.
#[variational]
struct NestedUnderBranch {
    #[data]
    flag: Vec<bool>,
    #[data]
    x: Vec<f64>,
    #[data]
    idx: Vec<usize>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(
        if mu > -1.0e300 { if (if flag[i] { x[idx[i]] } else { 0.0 }) > mu { mu } else { 0.0 } } else { mu },
        1.0,
    ), for i)]
    y: Vec<f64>,
}

/// A matrix latent read at a position from the data, and at a literal one.
#[variational]
struct MatrixLatentReads {
    #[data]
    k: usize,
    #[data]
    r: Vec<usize>,
    #[latent(LkjCholesky(2.0), dim = k)]
    l: DMatrix<f64>,
    #[observe(Normal(l[(r[i], 0)], 1.0), for i)]
    y: Vec<f64>,
    #[observe(Normal(l[(1, 2)], 1.0))]
    z: f64,
}

/// A `#[transformed]` loop reading data through an index, and a read of
/// the transformed vector at a position from the data.
#[variational]
struct TransformedReads {
    #[data]
    idx: Vec<usize>,
    #[data]
    x: Vec<f64>,
    #[data]
    g: Vec<usize>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[transformed(mu + x[idx[j]], for j, len = idx.len())]
    theta: Vec<f64>,
    #[observe(Normal(theta[g[i]], 1.0), for i)]
    y: Vec<f64>,
}

/// A learned vector whose length the data give.
#[variational]
struct LearnedFromData {
    #[data]
    n: usize,
    #[param(init = 0.0, len = n)]
    w: Vec<f64>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(mu, 1.0), for i)]
    y: Vec<f64>,
}

/// A learned matrix whose shape the data give.
#[variational]
struct LearnedMatrixFromData {
    #[data]
    n: usize,
    #[param(init = 0.0, rows = n, cols = n)]
    w: DMatrix<f64>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(mu, 1.0), for i)]
    y: Vec<f64>,
}

#[test]
fn gaps() {
    run_table(vec![
        // 1. Draws indexed past their end.
        case("Draws::get_latents past the end", "None", || {
            format!("{:?}", draws_of(&Two, 3).get_latents(3))
        }),
        case("Draws::get_row past the end", "None", || {
            format!("{:?}", draws_of(&Two, 3).get_row(3))
        }),
        case("Draws::get_row in range", "Some", || {
            format!("{:?}", draws_of(&Two, 3).get_row(2))
        }),
        // 2. Draws given to another model's posterior.
        case(
            "Posterior::derived: draws of another model",
            "DrawsMismatch { latent: 0, draws: \"`a` (1 values)\", model: \"`u` (2 values)\" }",
            || {
                let posterior = Posterior::new(&Two, &MeanField::new(2), &[0.0; 4]).unwrap();
                outcome(posterior.derived(&draws_of(&OtherTwo, 3)))
            },
        ),
        case(
            "Posterior::derived: derived values given back",
            "DrawsMismatch { latent: 0, draws: \"none\"",
            || {
                let posterior = Posterior::new(&Two, &MeanField::new(2), &[0.0; 4]).unwrap();
                let derived = posterior.derived(&draws_of(&Two, 3)).unwrap();
                outcome(posterior.derived(&derived))
            },
        ),
        case(
            "Posterior::predictive: draws of another model",
            "DrawsMismatch { latent: 0",
            || {
                let posterior = Posterior::new(&Two, &MeanField::new(2), &[0.0; 4]).unwrap();
                outcome(
                    posterior.predictive(&draws_of(&OtherTwo, 3), &mut rng(), |l, _| {
                        l.get("u").map(<[f64]>::len)
                    }),
                )
            },
        ),
        case("Posterior::predictive: its own draws", "ok", || {
            let posterior = Posterior::new(&Two, &MeanField::new(2), &[0.0; 4]).unwrap();
            outcome(
                posterior.predictive(&draws_of(&Two, 3), &mut rng(), |l, _| {
                    l.get("u").map(<[f64]>::len)
                }),
            )
        }),
        case(
            "Posterior::derived: draws read from a CSV of another model",
            "DrawsMismatch",
            || {
                let mut csv = Vec::new();
                draws_of(&OtherTwo, 2).write_cmdstan_csv(&mut csv).unwrap();
                let read = Draws::read_cmdstan_csv(csv.as_slice()).unwrap();
                let posterior = Posterior::new(&Two, &MeanField::new(2), &[0.0; 4]).unwrap();
                outcome(posterior.derived(&read))
            },
        ),
        // 3. Reads out of range in a condition under a branch.
        case(
            "flag[idx[i]] in a condition under a branch, past flag's end",
            "InvalidStart(Likelihood { field: \"y\", element: Some(1) })",
            || start(&FlagUnderBranch::new(vec![true, false], vec![0, 2], vec![0.1, 0.2]).unwrap()),
        ),
        case(
            "flag[idx[i]] in a condition under a branch, in range",
            "ok",
            || start(&FlagUnderBranch::new(vec![true, false], vec![0, 1], vec![0.1, 0.2]).unwrap()),
        ),
        case(
            "group[idx[i]] == 1 under a branch, past group's end",
            "InvalidStart(Likelihood { field: \"y\", element: Some(0) })",
            || start(&GroupUnderBranch::new(vec![1, 0], vec![5, 1], vec![0.1, 0.2]).unwrap()),
        ),
        case(
            "x[idx[i]] > mu under a branch, past x's end (NaN compares false)",
            "InvalidStart(Likelihood { field: \"y\", element: Some(1) })",
            || {
                start(
                    &CompareUnderBranch::new(vec![5.0, -5.0], vec![0, 2], vec![0.1, 0.2]).unwrap(),
                )
            },
        ),
        case("x[idx[i]] > mu under a branch, in range", "ok", || {
            start(&CompareUnderBranch::new(vec![5.0, -5.0], vec![0, 1], vec![0.1, 0.2]).unwrap())
        }),
        case(
            "x[idx[i]] past x's end in an if inside an if's condition, under a branch",
            "InvalidStart(Likelihood { field: \"y\", element: Some(1) })",
            || {
                let nested = NestedUnderBranch::new(
                    vec![true, true],
                    vec![5.0, -5.0],
                    vec![0, 2],
                    vec![0.1, 0.2],
                );
                start(&nested.unwrap())
            },
        ),
        case(
            "an if inside an if's condition, under a branch, in range",
            "ok",
            || {
                let nested = NestedUnderBranch::new(
                    vec![true, true],
                    vec![5.0, -5.0],
                    vec![0, 1],
                    vec![0.1, 0.2],
                );
                start(&nested.unwrap())
            },
        ),
        // 4. Matrix latents and `#[transformed]` loops, checked by `new`.
        case(
            "l[(r[i], 0)] of a matrix latent, r[i] past its rows",
            "OutOfRangeAt { field: \"l\", access: \"l[(r[i],0)]\", position: 3, element: Some(1), len: 3, unit: \"rows\", term: \"y\" }",
            || outcome(MatrixLatentReads::new(3, vec![0, 3], vec![0.1, 0.2], 0.0)),
        ),
        case(
            "l[(1, 2)] of a matrix latent of order 2",
            "OutOfRangeAt { field: \"l\", access: \"l[(1,2)]\", position: 2, element: None, len: 2, unit: \"columns\", term: \"z\" }",
            || outcome(MatrixLatentReads::new(2, vec![0, 1], vec![0.1, 0.2], 0.0)),
        ),
        case("matrix latent reads in range", "ok", || {
            outcome(MatrixLatentReads::new(3, vec![0, 2], vec![0.1, 0.2], 0.0))
        }),
        case(
            "x[idx[j]] in a #[transformed] loop, past x's end",
            "OutOfRangeAt { field: \"x\", access: \"x[idx[j]]\", position: 5, element: Some(1), len: 2, unit: \"entries\", term: \"theta\" }",
            || {
                outcome(TransformedReads::new(
                    vec![0, 5],
                    vec![1.0, 2.0],
                    vec![0],
                    vec![0.3],
                ))
            },
        ),
        case(
            "theta[g[i]] of a transformed vector, past its end",
            "OutOfRangeAt { field: \"theta\", access: \"theta[g[i]]\", position: 2, element: Some(0), len: 2, unit: \"entries\", term: \"y\" }",
            || {
                outcome(TransformedReads::new(
                    vec![0, 1],
                    vec![1.0, 2.0],
                    vec![2],
                    vec![0.3],
                ))
            },
        ),
        case("transformed reads in range", "ok", || {
            outcome(TransformedReads::new(
                vec![0, 1],
                vec![1.0, 2.0],
                vec![1],
                vec![0.3],
            ))
        }),
        // 5. Sizes from the data: learned parameters and prior noise.
        case(
            "a learned vector of usize::MAX / 2 entries",
            "TooLarge { field: \"w\"",
            || outcome(LearnedFromData::new(usize::MAX / 2, vec![0.1])),
        ),
        case(
            "a learned matrix of 10⁶ × 10⁶ entries",
            "TooLarge { field: \"w\", values: 1000000000000",
            || outcome(LearnedMatrixFromData::new(1_000_000, vec![0.1])),
        ),
        case("a learned vector of 3 entries", "ok", || {
            outcome(LearnedFromData::new(3, vec![0.1]))
        }),
        case(
            "StepNoise::try_with_prior_noise: usize::MAX / 2 per draw",
            "TooLarge",
            || {
                outcome(
                    StepNoise::new(&MeanField::new(2), Diwhvi::new(4, 0))
                        .try_with_prior_noise(usize::MAX / 2, DEFAULT_MEMORY_BUDGET),
                )
            },
        ),
        case(
            "StepNoise::try_for_model: usize::MAX / 2 prior noise per draw",
            "TooLarge { what: \"the bound with M = 4, K = 0 and the model's semi-implicit prior noise (9223372036854775807 per outer sample)\"",
            || {
                let model = TwoWithPriorNoise {
                    noise: usize::MAX / 2,
                };
                outcome(StepNoise::try_for_model(
                    &model,
                    &MeanField::new(2),
                    Diwhvi::new(4, 0),
                    DEFAULT_MEMORY_BUDGET,
                ))
            },
        ),
        case(
            "StepNoise::try_for_model: 3 prior noise values per draw",
            "ok",
            || {
                let model = TwoWithPriorNoise { noise: 3 };
                outcome(StepNoise::try_for_model(
                    &model,
                    &MeanField::new(2),
                    Diwhvi::new(4, 0),
                    DEFAULT_MEMORY_BUDGET,
                ))
            },
        ),
        // 6. A point of the wrong length.
        case(
            "Model::try_log_joint: a point of the wrong length",
            "WrongLength { expected: 2, found: 3 }",
            || outcome(Two.try_log_joint(&[0.0; 3])),
        ),
        case(
            "Model::try_log_joint of a generated model: a point of the wrong length",
            "WrongLength { expected: 1, found: 0 }",
            || {
                outcome(
                    LearnedFromData::new(3, vec![0.1])
                        .unwrap()
                        .try_log_joint(&[]),
                )
            },
        ),
        case("Model::try_log_joint: the right length", "ok", || {
            outcome(Two.try_log_joint(&[0.0; 2]))
        }),
        case(
            "laplace_from: a start of the wrong length",
            "WrongLength { expected: 2, found: 1 }",
            || outcome(laplace_from(&Two, &[0.0], LaplaceOptions::default())),
        ),
    ]);
}

/// Schools with an encoder over the points, as `tests/macros` has them.
#[variational]
struct Schools {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    theta: Vec<f64>,
    #[observe(Normal(mu + theta[j], sigma[j]), for j)]
    y: Vec<f64>,
}

#[variational(guide = Schools)]
struct Encoded {
    #[param(init = 0.0)]
    mu_loc: f64,
    #[encoder(input = [y[j], sigma[j]], hidden = [4], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[latent(Normal(mu_loc, 1.0))]
    mu: f64,
    #[latent(Normal(enc(j)[0], enc(j)[1].exp()), for j)]
    theta: Vec<f64>,
}

/// A learned prior mean.
#[variational]
struct LearnedMean {
    #[param(init = 0.0)]
    m: f64,
    #[latent(Normal(m, 1.0))]
    z: f64,
}

fn schools() -> Schools {
    Schools::new(vec![1.0, 2.0, 3.0], vec![0.5, -0.5, 1.0]).unwrap()
}

/// A saved encoder guide, as a JSON value.
fn saved_encoded() -> Value {
    let model = schools();
    let guide = Encoded::new(&model).unwrap();
    let params = guide.init_params(&mut rng());
    let fitted = FittedGuide::new(guide, params, model.layout()).unwrap();
    serde_json::from_str(&fitted.to_json().unwrap()).unwrap()
}

fn load_encoded(value: &Value) -> String {
    outcome(FittedGuide::<Encoded>::from_json(&value.to_string()))
}

#[test]
fn audit_of_sessions_6_and_7() {
    run_table(vec![
        case(
            "an encoder over empty data",
            "EncoderEmpty { encoder: \"enc\" }",
            || outcome(Encoded::new(&Schools::new(vec![], vec![]).unwrap())),
        ),
        case("an encoder guide round trip", "ok", || {
            load_encoded(&saved_encoded())
        }),
        case(
            "a saved encoder guide with one input value removed",
            "Field { field: \"guide\", message: \"encoder `enc`: the saved inputs (5 values for 3 points)",
            || {
                let mut value = saved_encoded();
                value["guide"][1][0].as_array_mut().unwrap().pop();
                load_encoded(&value)
            },
        ),
        case(
            "a saved encoder guide without its inputs",
            "Field { field: \"guide\", message: \"encoder `enc`: the saved inputs (0 values for 0 points)",
            || {
                let mut value = saved_encoded();
                value["guide"][1] = Value::Array(vec![]);
                value["guide"][2] = Value::Array(vec![]);
                load_encoded(&value)
            },
        ),
        case(
            "Posterior::from_fitted: learned parameters other than the model's",
            "LearnedMismatch { saved_len: 1, model_len: 1, first_difference: Some(0) }",
            || {
                let mut model = LearnedMean::new().unwrap();
                model.set_theta(&[1.0]).unwrap();
                let posterior = Posterior::new(&model, &MeanField::new(1), &[0.0, 0.0]).unwrap();
                let fitted = posterior.fitted().clone();
                let other = LearnedMean::new().unwrap();
                outcome(Posterior::from_fitted(&other, fitted))
            },
        ),
        case(
            "Posterior::from_fitted: the model's own learned parameters",
            "ok",
            || {
                let mut model = LearnedMean::new().unwrap();
                model.set_theta(&[1.0]).unwrap();
                let posterior = Posterior::new(&model, &MeanField::new(1), &[0.0, 0.0]).unwrap();
                let fitted = posterior.fitted().clone();
                outcome(Posterior::from_fitted(&model, fitted))
            },
        ),
        case(
            "set_theta: a NaN learned parameter",
            "NotFinite { index: 0, value: NaN }",
            || {
                let mut model = LearnedMean::new().unwrap();
                outcome(model.set_theta(&[f64::NAN]))
            },
        ),
        case(
            "laplace_from: a NaN start",
            "NotFinite { value: NaN }",
            || {
                outcome(laplace_from(
                    &Two,
                    &[f64::NAN, 0.0],
                    LaplaceOptions::default(),
                ))
            },
        ),
        case(
            "laplace_from: max_steps 0 away from the mode",
            "NoMode { steps: 0",
            || {
                outcome(laplace_from(
                    &Two,
                    &[1.0, 0.0],
                    LaplaceOptions {
                        max_steps: 0,
                        ..LaplaceOptions::default()
                    },
                ))
            },
        ),
        case(
            "FittedGuide::with_learned: theta of the wrong length",
            "Field { field: \"learned\"",
            || {
                let fitted =
                    FittedGuide::new(MeanField::new(2), vec![0.0; 4], Two.layout()).unwrap();
                outcome(fitted.with_learned(
                    Layout::new(vec![LatentSpec::scalar("m", Transform::Identity)]),
                    vec![0.0, 1.0],
                ))
            },
        ),
        case("Batch::try_new: an index past the plate", "None", || {
            format!("{:?}", iwhvi::subsample::Batch::try_new(&[7], 3))
        }),
        case("Batch::try_new: an index twice", "None", || {
            format!("{:?}", iwhvi::subsample::Batch::try_new(&[1, 1], 3))
        }),
        case("log_joint_subset of a checked batch", "ok", || {
            let model = schools();
            let batch = iwhvi::subsample::Batch::try_new(&[2, 0], 3).unwrap();
            let u = vec![0.0; model.dim()];
            let value = model.log_joint_subset::<f64>(&[], &u, &[], &batch);
            if value.is_finite() {
                "ok".into()
            } else {
                format!("{value}")
            }
        }),
        case(
            "a minibatch fit of the encoder guide with b = N",
            "ok",
            || {
                let model = schools();
                let guide = Encoded::new(&model).unwrap();
                let config = FitConfig::new(Diwhvi::elbo())
                    .max_steps(3)
                    .progress(false)
                    .batch_size(3);
                outcome(fit(&model, &guide, Adam::new(0.01), &config))
            },
        ),
        case(
            "Vae::new: no pixels",
            "InvalidSetting { setting: \"data_dim\"",
            || {
                use iwhvi::amortised::{Activation, EncoderKind, Vae};
                outcome(Vae::new(
                    0,
                    2,
                    EncoderKind::Gaussian,
                    &[4],
                    Activation::Tanh,
                ))
            },
        ),
        case(
            "Vae::new: no latents",
            "InvalidSetting { setting: \"latent\"",
            || {
                use iwhvi::amortised::{Activation, EncoderKind, Vae};
                outcome(Vae::new(
                    3,
                    0,
                    EncoderKind::Gaussian,
                    &[4],
                    Activation::Tanh,
                ))
            },
        ),
        case(
            "Fit::full_bound of a minibatch fit is reported",
            "Some(Estimate",
            || {
                let model = schools();
                let config = FitConfig::new(Diwhvi::elbo())
                    .max_steps(3)
                    .progress(false)
                    .batch_size(2);
                let fitted = fit(
                    &model,
                    &MeanField::new(model.dim()),
                    Adam::new(0.01),
                    &config,
                )
                .unwrap();
                format!("{:?}", fitted.full_bound)
            },
        ),
        case(
            "Draws::try_from_latents: rows of different names",
            "RowMismatch { row: 1, found: \"[`b` (2)]\", expected: \"[`a` (1)]\" }",
            || {
                let rows = [
                    Latents::from_pairs([("a".to_string(), vec![1.0])]),
                    Latents::from_pairs([("b".to_string(), vec![1.0, 2.0])]),
                ];
                outcome(Draws::try_from_latents(&rows))
            },
        ),
    ]);
}
