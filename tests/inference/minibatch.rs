//! Minibatches over a plate (`FitConfig::batch_size`, issue 16): the
//! generated `log_joint_subset` against a hand computation, the minibatch
//! estimator's mean (value and gradient) against the full-data value with a
//! power check, bit-for-bit reproduction, and a conjugate fit.

use iwhvi::Scalar;
use iwhvi::distributions::{Distribution, LogNormal, Normal};
use iwhvi::fit::{Engine, FitConfig, Parallelism, fit};
use iwhvi::guide::{HierarchicalGuide, MeanField, SemiImplicit};
use iwhvi::model::{Latents, Layout, Model};
use iwhvi::objective::{Diwhvi, GradientEstimator, StepNoise, value_and_gradient_with};
use iwhvi::optim::{Adam, LearningRate};
use iwhvi::rand::SeedableRng;
use iwhvi::rand::distr::Distribution as _;
use iwhvi::rand::rngs::StdRng;
use iwhvi::subsample::{Batch, SubsamplePlate};
use iwhvi::tape::TapeEngine;
use iwhvi::variational;

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

/// `mu ~ N(0, 10)`, `y_n ~ N(mu, 1)`: conjugate.
#[variational]
struct NormalMean {
    #[latent(Normal(0.0, 10.0))]
    mu: f64,
    #[observe(Normal(mu, 1.0), for i)]
    y: Vec<f64>,
}

/// A model seen through a fixed batch of its plate (the test's own
/// wrapper, so that the batch and its scale are the test's choice).
struct Batched<'a, M: Model> {
    model: &'a M,
    indices: Vec<usize>,
    /// The `N` the scale is computed from (`N / b`).
    n: usize,
}

impl<M: Model> Model for Batched<'_, M> {
    fn layout(&self) -> Layout {
        self.model.layout()
    }

    fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
        self.model
            .log_joint_subset(&[], u, &[], &Batch::new(&self.indices, self.n))
    }

    fn derived(&self, latents: &Latents) -> Latents {
        self.model.derived(latents)
    }
}

/// A model's log joint as a function to differentiate.
struct Joint<'a, M>(&'a M);

impl<M: Model> iwhvi::Differentiable for Joint<'_, M> {
    fn eval<T: Scalar>(&self, u: &[T]) -> T {
        self.0.log_joint(u)
    }
}

/// Data of the regression: `y = 0.7 x + noise`, `N = 50`.
fn regression(n: usize) -> Regression {
    let mut rng = StdRng::seed_from_u64(5);
    let normal = Normal::new(0.0, 1.0).unwrap();
    let x: Vec<f64> = (0..n).map(|_| normal.sample(&mut rng) * 2.0).collect();
    let y = x
        .iter()
        .map(|&x| 0.7 * x + 0.5 * normal.sample(&mut rng))
        .collect();
    Regression::new(x, y).unwrap()
}

#[test]
fn the_generated_subset_log_joint_is_the_global_terms_plus_the_scaled_batch_terms() {
    let model = Regression::new(vec![1.0, -2.0, 0.5, 3.0], vec![0.8, -1.1, 0.2, 2.5]).unwrap();
    assert_eq!(
        model.subsample_plate(),
        Ok(SubsamplePlate {
            observed: vec!["y".into()],
            len: 4
        })
    );
    let u = [0.6, -0.3];
    let (slope, sigma) = (u[0], u[1].exp());
    // By hand: the priors, sigma's log Jacobian (u₁), and 4 / 2 times the
    // terms of elements 1 and 3.
    let global = Normal::new(0.0, 5.0).unwrap().log_prob(slope)
        + LogNormal::new(0.0, 1.0).unwrap().log_prob(sigma)
        + u[1];
    let term = |x: f64, y: f64| Normal::new(slope * x, sigma).unwrap().log_prob(y);
    let expected = global + 2.0 * (term(-2.0, -1.1) + term(3.0, 2.5));
    let subset = model.log_joint_subset(&[], &u, &[], &Batch::new(&[1, 3], 4));
    assert!((subset - expected).abs() < 1e-12, "{subset} vs {expected}");
    // Every element with scale 1 is the full log joint.
    let all = model.log_joint_subset(&[], &u, &[], &Batch::new(&[0, 1, 2, 3], 4));
    assert!((all - model.log_joint(&u)).abs() < 1e-12);
    // On duals too (the gradient in u).
    let batched = Batched {
        model: &model,
        indices: vec![1, 3],
        n: 4,
    };
    let (value, gradient) = iwhvi::gradient(&Joint(&batched), &u);
    assert!((value - expected).abs() < 1e-12);
    let h = 1e-6;
    for d in 0..2 {
        let mut up = u;
        let mut down = u;
        up[d] += h;
        down[d] -= h;
        let fd = (batched.log_joint(&up) - batched.log_joint(&down)) / (2.0 * h);
        assert!(
            (gradient[d] - fd).abs() < 1e-6,
            "{d}: {} vs {fd}",
            gradient[d]
        );
    }
}

/// Mean and standard error.
fn mean_se(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// Over `draws` uniform subsets of size `b` (and one fixed step noise), the
/// minibatch bound and gradient minus the full-data ones, with the scale
/// computed from `scale_n` (`N` for the right scale).
fn minibatch_differences(b: usize, scale_n: usize, draws: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = 50;
    let model = regression(n);
    let guide = SemiImplicit::new(2, 2);
    let mut rng = StdRng::seed_from_u64(3);
    let params = guide.init_params(&mut rng);
    let objective = Diwhvi::iwhvi(4);
    let mut noise = StepNoise::new(&guide, objective);
    noise.redraw(&mut rng);
    let estimator = GradientEstimator::Reparameterized;
    let mut full_gradient = vec![0.0; params.len()];
    let full = value_and_gradient_with(
        &model,
        &guide,
        &params,
        &noise,
        &TapeEngine,
        estimator,
        &mut full_gradient,
    )
    .unwrap();
    let mut values = Vec::new();
    let mut gradients = vec![Vec::new(); params.len()];
    let mut subsets = StdRng::seed_from_u64(17);
    for _ in 0..draws {
        let indices = iwhvi::rand::seq::index::sample(&mut subsets, n, b).into_vec();
        let batched = Batched {
            model: &model,
            indices,
            n: scale_n,
        };
        let mut gradient = vec![0.0; params.len()];
        let value = value_and_gradient_with(
            &batched,
            &guide,
            &params,
            &noise,
            &TapeEngine,
            estimator,
            &mut gradient,
        )
        .unwrap();
        values.push(value - full);
        for (g, (mine, whole)) in gradients
            .iter_mut()
            .zip(gradient.iter().zip(&full_gradient))
        {
            g.push(mine - whole);
        }
    }
    (values, gradients)
}

#[test]
fn the_minibatch_estimator_is_unbiased_and_a_wrong_scale_is_detected() {
    // N = 50, b = 9: the right scale N / b, and the wrong N / (b + 1) = 45 / 9.
    let (b, draws) = (9, 400);
    let (values, gradients) = minibatch_differences(b, 50, draws);
    let (mean, se) = mean_se(&values);
    assert!(se > 0.0);
    assert!(mean.abs() < 3.0 * se, "value: mean {mean} se {se}");
    // The gradient's coordinates that move with the batch (the guide's
    // location and scale of the slope and of sigma).
    let mut tested = 0;
    for (d, g) in gradients.iter().enumerate() {
        let (mean, se) = mean_se(g);
        if se > 1e-9 {
            tested += 1;
            assert!(mean.abs() < 3.0 * se, "gradient {d}: mean {mean} se {se}");
        }
    }
    assert!(tested >= 2, "{tested}");

    let (wrong_values, wrong_gradients) = minibatch_differences(b, 45, draws);
    let (mean, se) = mean_se(&wrong_values);
    assert!(
        mean.abs() > 3.0 * se,
        "the wrong scale passed: mean {mean} se {se}"
    );
    let rejected = wrong_gradients
        .iter()
        .filter(|g| {
            let (mean, se) = mean_se(g);
            se > 1e-9 && mean.abs() > 3.0 * se
        })
        .count();
    assert!(rejected >= 1, "no gradient coordinate saw the wrong scale");
}

#[test]
fn the_first_step_of_a_minibatch_fit_is_unbiased_for_the_full_step() {
    // The same seed draws the same noise with or without batches, so that
    // the difference of the first steps' bounds is the batch's alone.
    let model = regression(50);
    let guide = MeanField::new(2);
    let one_step = |seed: u64, batch: Option<usize>| {
        let config = FitConfig::new(Diwhvi::elbo())
            .max_steps(1)
            .window(1)
            .seed(seed)
            .progress(false);
        let config = match batch {
            Some(b) => config.batch_size(b),
            None => config,
        };
        fit(&model, &guide, Adam::new(0.01), &config).unwrap().trace[0]
    };
    let differences: Vec<f64> = (0..300)
        .map(|seed| one_step(seed, Some(10)) - one_step(seed, None))
        .collect();
    let (mean, se) = mean_se(&differences);
    assert!(se > 0.0 && mean.abs() < 3.0 * se, "mean {mean} se {se}");
}

#[test]
fn a_seed_reproduces_a_minibatch_fit_bit_for_bit_with_one_or_two_threads() {
    let model = regression(50);
    let guide = SemiImplicit::new(2, 2);
    let run = |parallelism, engine, seed| {
        let config = FitConfig::new(Diwhvi::iwhvi(4))
            .max_steps(60)
            .window(10)
            .batch_size(7)
            .seed(seed)
            .engine(engine)
            .parallelism(parallelism)
            .progress(false);
        fit(&model, &guide, Adam::new(0.01), &config).unwrap()
    };
    let bits = |values: &[f64]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for engine in [Engine::Auto, Engine::Forward, Engine::Tape] {
        let one = run(Parallelism::SingleThread, engine, 4);
        let two = run(Parallelism::AllCores, engine, 4);
        assert_eq!(bits(&one.trace), bits(&two.trace), "{engine:?}");
        assert_eq!(bits(&one.params), bits(&two.params), "{engine:?}");
        let full = one
            .full_bound
            .expect("a minibatch fit reports the full bound");
        assert_eq!(full, two.full_bound.unwrap());
        assert!(full.mean.is_finite() && full.std_error.is_finite());
        let other = run(Parallelism::SingleThread, engine, 5);
        assert_ne!(bits(&one.trace), bits(&other.trace));
    }
    // A fit on the full data reports no separate full bound.
    let config = FitConfig::new(Diwhvi::elbo()).max_steps(2).progress(false);
    assert_eq!(
        fit(&model, &guide, Adam::new(0.01), &config)
            .unwrap()
            .full_bound,
        None
    );
}

#[test]
fn the_batch_reaches_every_engine_path() {
    // The fused path (SemiImplicit under Engine::Auto), forward and tape
    // each see the batch: their first step's bound differs from the
    // full-data step on the same noise, and agrees across the engines.
    let model = regression(50);
    let guide = SemiImplicit::new(2, 2);
    let first = |engine, batch: Option<usize>| {
        let config = FitConfig::new(Diwhvi::iwhvi(4))
            .max_steps(1)
            .window(1)
            .seed(9)
            .engine(engine)
            .progress(false);
        let config = match batch {
            Some(b) => config.batch_size(b),
            None => config,
        };
        fit(&model, &guide, Adam::new(0.01), &config).unwrap().trace[0]
    };
    let batched: Vec<f64> = [Engine::Auto, Engine::Forward, Engine::Tape]
        .into_iter()
        .map(|e| first(e, Some(5)))
        .collect();
    let full = first(Engine::Auto, None);
    for b in &batched {
        assert!(
            (b - batched[0]).abs() < 1e-9 * b.abs().max(1.0),
            "{batched:?}"
        );
        assert!((b - full).abs() > 1e-6, "{b} vs the full {full}");
    }
}

#[test]
fn a_minibatch_fit_of_a_normal_mean_lands_on_the_conjugate_posterior() {
    // mu ~ N(0, 10²), y_n ~ N(mu, 1), N = 1000: the posterior is
    // N(Σy / (N + 1/100), 1 / (N + 1/100)) and the mean-field guide holds it
    // exactly, so that the ELBO at the optimum is log p(y).
    let n = 1000;
    let mut rng = StdRng::seed_from_u64(21);
    let normal = Normal::new(1.5, 1.0).unwrap();
    let y: Vec<f64> = (0..n).map(|_| normal.sample(&mut rng)).collect();
    let precision = n as f64 + 0.01;
    let post_mean = y.iter().sum::<f64>() / precision;
    let post_sd = precision.sqrt().recip();
    // log p(y) = log N(y; 0, I + 100 11ᵀ) in closed form.
    let (sum, sum_sq) = (y.iter().sum::<f64>(), y.iter().map(|v| v * v).sum::<f64>());
    let log_evidence = -0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln()
        - 0.5 * (1.0 + 100.0 * n as f64).ln()
        - 0.5 * (sum_sq - 100.0 * sum * sum / (1.0 + 100.0 * n as f64));
    let model = NormalMean::new(y).unwrap();
    let config = FitConfig::new(Diwhvi::elbo())
        .max_steps(6000)
        .batch_size(50)
        .seed(1)
        .progress(false);
    let schedule = LearningRate::InverseTime {
        initial: 0.05,
        half_life: 500,
    };
    let fitted = fit(
        &model,
        &MeanField::new(1),
        Adam::with_schedule(schedule),
        &config,
    )
    .unwrap();
    let (loc, log_scale) = (fitted.params[0], fitted.params[1]);
    assert!(
        (loc - post_mean).abs() < 0.5 * post_sd,
        "location {loc} vs {post_mean} (sd {post_sd})"
    );
    assert!(
        (log_scale.exp() / post_sd - 1.0).abs() < 0.25,
        "scale {} vs {post_sd}",
        log_scale.exp()
    );
    let full = fitted.full_bound.unwrap();
    assert!(
        full.mean <= log_evidence + 3.0 * full.std_error + 1e-9,
        "{full:?} above log p(y) = {log_evidence}"
    );
    assert!(
        log_evidence - full.mean < 0.05,
        "{full:?} far below log p(y) = {log_evidence}"
    );
}
