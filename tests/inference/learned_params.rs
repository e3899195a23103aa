//! Learned model parameters (`#[param]`): the bound's gradient in them
//! against finite differences, and maximum marginal likelihood recovered
//! in closed form where the guide family holds the exact posterior.

use iwhvi::fit::{Engine, FitConfig, fit};
use iwhvi::gradient::{ForwardEngine, GradientEngine};
use iwhvi::guide::{HierarchicalGuide, MeanField, SemiImplicit};
use iwhvi::model::Model;
use iwhvi::objective::{
    Diwhvi, GradientEstimator, StepNoise, estimate_bound, value_and_gradient_with_theta,
};
use iwhvi::optim::{Adam, LearningRate};
use iwhvi::posterior::{FittedGuide, Posterior};
use iwhvi::special::LN_SQRT_2PI;
use iwhvi::tape::TapeEngine;
use iwhvi::variational;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

/// `z ~ N(mu, tau)`, `y_n ~ N(z, 1)`; `mu` and `tau > 0` learned.
#[variational]
struct Hierarchical {
    #[param(init = 0.0)]
    mu: f64,
    #[param(init = 1.0, lower = 0.0)]
    tau: f64,
    #[latent(Normal(mu, tau))]
    z: f64,
    #[observe(Normal(z, 1.0), for i)]
    y: Vec<f64>,
}

/// `log p(y) = log N(y; mu 1, sigma² I + tau² 1 1ᵀ)` for `z ~ N(mu, tau)`,
/// `y_n ~ N(z, sigma)`: the covariance has determinant
/// `sigma^(2N) (1 + a)` with `a = N tau² / sigma²` and inverse
/// `(I − tau² 1 1ᵀ / (sigma² + N tau²)) / sigma²`, so with `S = Σ (y − mu)`
/// the quadratic form is `(Σ (y − mu)² − tau² S² / (sigma² + N tau²)) / sigma²`.
fn log_marginal(y: &[f64], mu: f64, tau: f64, sigma: f64) -> f64 {
    let n = y.len() as f64;
    let (t2, s2) = (tau * tau, sigma * sigma);
    let a = n * t2 / s2;
    let centred: f64 = y.iter().map(|v| (v - mu).powi(2)).sum();
    let s: f64 = y.iter().map(|v| v - mu).sum();
    let quadratic = (centred - t2 * s * s / (s2 + n * t2)) / s2;
    -0.5 * (1.0 + a).ln() - n * sigma.ln() - 0.5 * quadratic - n * LN_SQRT_2PI
}

fn data(n: usize, centre: f64, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| centre + rng.sample::<f64, _>(StandardNormal))
        .collect()
}

/// The observation noise of the closed-form fits: small, so that the
/// posterior of `z` is narrow (variance `1 / (1 + N / sigma²)`) and so is
/// the spread of the stochastic gradient in the learned parameter, which
/// sets how close a decaying-rate fit can settle.
const SIGMA: f64 = 0.1;

/// The generated log joint at the model's own parameters and at
/// `theta()` agree; `set_theta` moves the model.
#[test]
fn theta_round_trips_through_the_model() {
    let mut model = Hierarchical::new(vec![0.5, 1.5]).unwrap();
    assert_eq!((model.mu, model.tau), (0.0, 1.0));
    assert_eq!(model.theta_dim(), 2);
    assert_eq!(model.theta(), vec![0.0, 0.0]);
    let u = [0.7];
    let direct = model.log_joint(&u);
    let through = model.log_joint_theta(&[0.0, 0.0], &u);
    assert_eq!(direct, through);
    model.set_theta(&[1.5, 2f64.ln()]).unwrap();
    assert_eq!(model.mu, 1.5);
    assert!((model.tau - 2.0).abs() < 1e-15);
    let expected = -0.5 * ((0.7f64 - 1.5) / 2.0).powi(2)
        - LN_SQRT_2PI
        - 2f64.ln()
        - 0.5 * (0.5f64 - 0.7).powi(2)
        - 0.5 * (1.5f64 - 0.7).powi(2)
        - 2.0 * LN_SQRT_2PI;
    assert!((model.log_joint(&u) - expected).abs() < 1e-12);
    assert!(model.set_theta(&[1.0]).is_err());
    // A tau outside its domain has no unconstrained value.
    model.tau = -1.0;
    assert!(model.theta()[1].is_nan());
}

/// One engine's step: writes the gradient, returns the bound.
type Run<'a> = dyn Fn(&mut [f64]) -> f64 + 'a;

/// The bound's gradient in `(φ, ϑ)` against central differences on the
/// same noise, on a hierarchical guide, on both engines.
#[test]
fn theta_gradient_matches_finite_differences() {
    let model = Hierarchical::new(data(6, 1.0, 3)).unwrap();
    let guide = SemiImplicit::new(1, 2);
    let mut rng = StdRng::seed_from_u64(5);
    let params = guide.init_params(&mut rng);
    let noise = StepNoise::draw(&guide, Diwhvi::new(4, 3), &mut rng);
    let theta = [0.3, -0.2];
    let p = params.len();
    let value_at = |params: &[f64], theta: &[f64]| {
        let mut g = vec![0.0; p + 2];
        value_and_gradient_with_theta(
            &model,
            &guide,
            params,
            theta,
            &noise,
            &ForwardEngine::<4>::new(),
            GradientEstimator::Reparameterized,
            &mut g,
        )
        .unwrap()
    };
    let engines: [&Run<'_>; 2] = [
        &|g| {
            value_and_gradient_with_theta(
                &model,
                &guide,
                &params,
                &theta,
                &noise,
                &ForwardEngine::<4>::new(),
                GradientEstimator::Reparameterized,
                g,
            )
            .unwrap()
        },
        &|g| {
            value_and_gradient_with_theta(
                &model,
                &guide,
                &params,
                &theta,
                &noise,
                &TapeEngine,
                GradientEstimator::Reparameterized,
                g,
            )
            .unwrap()
        },
    ];
    let h = 1e-5;
    for run in engines {
        let mut gradient = vec![0.0; p + 2];
        let value = run(&mut gradient);
        assert!((value - value_at(&params, &theta)).abs() < 1e-12);
        for j in 0..2 {
            let (mut up, mut down) = (theta, theta);
            up[j] += h;
            down[j] -= h;
            let fd = (value_at(&params, &up) - value_at(&params, &down)) / (2.0 * h);
            let analytic = gradient[p + j];
            assert!(
                (fd - analytic).abs() < 1e-6 * (1.0 + fd.abs()),
                "theta[{j}]: finite differences {fd}, gradient {analytic}"
            );
            assert!(analytic.abs() > 1e-3, "a vanishing gradient tests nothing");
        }
        // The guide's entries are the bound's gradient as without θ.
        for j in [0, p / 2, p - 1] {
            let (mut up, mut down) = (params.clone(), params.clone());
            up[j] += h;
            down[j] -= h;
            let fd = (value_at(&up, &theta) - value_at(&down, &theta)) / (2.0 * h);
            assert!(
                (fd - gradient[j]).abs() < 1e-6 * (1.0 + fd.abs()),
                "param {j}: finite differences {fd}, gradient {}",
                gradient[j]
            );
        }
    }
    // A θ of the wrong length is a typed error.
    let mut g = vec![0.0; p + 1];
    assert!(
        value_and_gradient_with_theta(
            &model,
            &guide,
            &params,
            &[0.0],
            &noise,
            &TapeEngine,
            GradientEstimator::Reparameterized,
            &mut g,
        )
        .is_err()
    );
}

/// `y_n ~ N(z, sigma)`, `z ~ N(mu, 1)`: the marginal is
/// `N(y; mu 1, sigma² I + 1 1ᵀ)`, whose maximiser in `mu` is `mean(y)` (`1`
/// is an eigenvector of the covariance, so generalised least squares is
/// the plain mean). A Gaussian guide holds the exact
/// posterior, so the bound is tight at its optimum and the joint maximiser
/// of `(φ, mu)` is the marginal likelihood's.
#[variational]
struct Location {
    #[param(init = 0.0)]
    mu: f64,
    #[latent(Normal(mu, 1.0))]
    z: f64,
    #[data]
    sigma: f64,
    #[observe(Normal(z, sigma), for i)]
    y: Vec<f64>,
}

fn adam() -> Adam {
    Adam::with_schedule(LearningRate::Exponential {
        initial: 0.05,
        decay: 0.5,
        every: 1500,
    })
}

#[test]
fn location_is_the_maximum_marginal_likelihood() {
    let y = data(10, 2.5, 11);
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let model = Location::new(SIGMA, y.clone()).unwrap();
    let config = FitConfig::new(Diwhvi::iwae(16))
        .max_steps(24_000)
        .progress(false)
        .estimator(GradientEstimator::DoublyReparameterized);
    let fitted = fit(&model, &MeanField::new(1), adam(), &config).unwrap();
    let learned = fitted.learned().unwrap();
    let mu = learned.get("mu").unwrap()[0];
    assert!((mu - mean).abs() < 1e-3, "mu = {mu}, mean(y) = {mean}");
    assert_eq!(fitted.theta, vec![mu]);
    // The fitted model, its bound at the optimum is the marginal likelihood.
    let mut fitted_model = model;
    fitted_model.set_theta(&fitted.theta).unwrap();
    assert_eq!(fitted_model.mu, mu);
    let estimate = estimate_bound(
        &fitted_model,
        &MeanField::new(1),
        &fitted.params,
        Diwhvi::iwae(64),
        20,
        &mut StdRng::seed_from_u64(1),
    )
    .unwrap();
    // tau = 1 in the hierarchical form.
    let exact = log_marginal(&y, mu, 1.0, SIGMA);
    // A lower bound, tight to the estimate's error at the optimum.
    let se = estimate.std_error;
    assert!(
        se < 0.1 && estimate.mean < exact + 3.0 * se && estimate.mean > exact - 4.0 * se - 1e-3,
        "bound {estimate:?} vs log p(y) {exact}"
    );
}

/// `z ~ N(0, tau)`, `y_n ~ N(z, sigma)`, `tau > 0` learned: with
/// `a = N tau² / sigma²` and `S = Σ y`,
/// `log p(y) = −½ log(1 + a) + ½ tau² S² / (sigma² (sigma² + N tau²)) + c`,
/// whose derivative in `tau²` vanishes at `1 + a = S² / (N sigma²)`:
/// `tau² = mean(y)² − sigma² / N` (when positive).
#[variational]
struct Scale {
    #[param(init = 1.0, lower = 0.0)]
    tau: f64,
    #[latent(Normal(0.0, tau))]
    z: f64,
    #[data]
    sigma: f64,
    #[observe(Normal(z, sigma), for i)]
    y: Vec<f64>,
}

#[test]
fn scale_is_the_maximum_marginal_likelihood() {
    let y = data(10, 2.0, 7);
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let expected = (mean * mean - SIGMA * SIGMA / n).sqrt();
    let model = Scale::new(SIGMA, y.clone()).unwrap();
    let config = FitConfig::new(Diwhvi::iwae(16))
        .max_steps(24_000)
        .progress(false)
        .estimator(GradientEstimator::DoublyReparameterized);
    let fitted = fit(&model, &MeanField::new(1), adam(), &config).unwrap();
    let tau = fitted.learned().unwrap().get("tau").unwrap()[0];
    assert!(
        (tau - expected).abs() < 1e-3,
        "tau = {tau}, closed form {expected}"
    );
    // The closed form is the maximiser of the exact marginal likelihood.
    let at = |t: f64| log_marginal(&y, 0.0, t, SIGMA);
    assert!(at(expected) > at(expected * 1.01) && at(expected) > at(expected * 0.99));
}

/// A model with learned parameters on a semi-implicit guide: `Engine::Auto`
/// keeps the fused path (with the learned parameters' gradient from its
/// outer weights), the fit is reproducible bit for bit, and the fitted guide
/// saves and loads the learned parameters.
#[test]
fn semi_implicit_fit_learns_saves_and_reproduces() {
    let model = Hierarchical::new(data(8, 1.0, 2)).unwrap();
    let guide = SemiImplicit::new(1, 2);
    let config = FitConfig::new(Diwhvi::new(2, 2))
        .max_steps(300)
        .progress(false)
        .engine(Engine::Auto);
    let one = fit(&model, &guide, Adam::new(0.02), &config).unwrap();
    let two = fit(&model, &guide, Adam::new(0.02), &config).unwrap();
    assert_eq!(one.engines.guide, iwhvi::fit::EngineChoice::Fused);
    assert_eq!(one.theta.len(), 2);
    assert_eq!(one.params.len(), guide.param_layout().len());
    assert_eq!(
        (one.params.clone(), one.theta.clone()),
        (two.params.clone(), two.theta.clone())
    );
    assert_ne!(one.theta, model.theta(), "the fit moved the parameters");
    let mut fitted_model = model;
    fitted_model.set_theta(&one.theta).unwrap();
    let posterior = Posterior::new(&fitted_model, &guide, &one.params).unwrap();
    let json = posterior.fitted().to_json().unwrap();
    let loaded: FittedGuide<SemiImplicit> = FittedGuide::from_json(&json).unwrap();
    let learned = loaded.learned().unwrap();
    assert_eq!(learned.theta(), one.theta.as_slice());
    assert_eq!(
        learned.constrained().unwrap().get("tau").unwrap(),
        &[fitted_model.tau]
    );
    // Loaded back into a fresh model: the same log joint.
    let mut reloaded = Hierarchical::new(data(8, 1.0, 2)).unwrap();
    reloaded.set_theta(learned.theta()).unwrap();
    assert_eq!(reloaded.log_joint(&[0.4]), fitted_model.log_joint(&[0.4]));
}

/// The engines agree on a step with learned parameters (forward in every
/// width, and the tape to rounding).
#[test]
fn engines_agree_on_theta_gradients() {
    let model = Hierarchical::new(data(5, 0.5, 9)).unwrap();
    let guide = MeanField::new(1);
    let params = guide.init_params(&mut StdRng::seed_from_u64(0));
    let noise = StepNoise::draw(&guide, Diwhvi::new(3, 0), &mut StdRng::seed_from_u64(1));
    let theta = [0.1, 0.4];
    let run = |engine: &dyn Fn(&mut [f64]) -> f64| {
        let mut g = vec![0.0; params.len() + 2];
        let v = engine(&mut g);
        (v, g)
    };
    fn with<E: GradientEngine>(
        model: &Hierarchical,
        guide: &MeanField,
        params: &[f64],
        theta: &[f64],
        noise: &StepNoise,
        engine: &E,
        g: &mut [f64],
    ) -> f64 {
        value_and_gradient_with_theta(
            model,
            guide,
            params,
            theta,
            noise,
            engine,
            GradientEstimator::Reparameterized,
            g,
        )
        .unwrap()
    }
    let (v1, g1) = run(&|g| {
        with(
            &model,
            &guide,
            &params,
            &theta,
            &noise,
            &ForwardEngine::<1>::new(),
            g,
        )
    });
    let (v16, g16) = run(&|g| {
        with(
            &model,
            &guide,
            &params,
            &theta,
            &noise,
            &ForwardEngine::<16>::new(),
            g,
        )
    });
    let (vt, gt) = run(&|g| with(&model, &guide, &params, &theta, &noise, &TapeEngine, g));
    assert_eq!(v1.to_bits(), v16.to_bits());
    assert_eq!(g1, g16);
    assert!((v1 - vt).abs() < 1e-12);
    for (a, b) in g1.iter().zip(&gt) {
        assert!((a - b).abs() < 1e-10 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

/// The fused objective's gradient in the guide's and the learned
/// parameters agrees with the generic path's to 1e-10, on a semi-implicit
/// guide and its preconditioned form, in DIWHVI, IWHVI and SIVI settings.
#[test]
fn fused_and_generic_theta_gradients_agree() {
    use iwhvi::guide::{Preconditioned, Reverse};
    use iwhvi::objective::fused::FusedDiwhvi;
    let model = Hierarchical::new(data(7, 0.8, 4)).unwrap();
    let theta = [0.4, -0.3];
    let engine = ForwardEngine::<2>::new();
    let check = |fused: &mut FusedDiwhvi<'_>,
                 generic: &dyn Fn(&StepNoise, &mut [f64]) -> f64,
                 noise: &StepNoise,
                 params: &[f64],
                 what: &str| {
        let n = params.len() + theta.len();
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        let va =
            fused.value_and_gradient_with_theta(&model, params, &theta, noise, &engine, &mut a);
        let vb = generic(noise, &mut b);
        assert!((va - vb).abs() < 1e-10, "{what}: {va} vs {vb}");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() < 1e-10,
                "{what}: entry {i}: fused {x}, generic {y}"
            );
        }
        assert!(
            a[params.len()..].iter().any(|g| g.abs() > 1e-6),
            "{what}: {:?}",
            &a[params.len()..]
        );
    };
    for (m, k, reverse) in [(4, 3, false), (1, 5, false), (3, 4, true)] {
        let mut rng = StdRng::seed_from_u64(12 + m as u64);
        let guide = if reverse {
            SemiImplicit::new(1, 2).with_reverse(Reverse::Prior)
        } else {
            SemiImplicit::new(1, 2)
        };
        let params = guide.init_params(&mut rng);
        let noise = StepNoise::draw(&guide, Diwhvi::new(m, k), &mut rng);
        let generic = |noise: &StepNoise, g: &mut [f64]| {
            value_and_gradient_with_theta(
                &model,
                &guide,
                &params,
                &theta,
                noise,
                &engine,
                GradientEstimator::Reparameterized,
                g,
            )
            .unwrap()
        };
        check(
            &mut FusedDiwhvi::new(&guide),
            &generic,
            &noise,
            &params,
            &format!("M = {m}, K = {k}"),
        );
        let pre = Preconditioned::new(SemiImplicit::new(1, 2), vec![0.5], vec![0.7]).unwrap();
        let params = pre.init_params(&mut rng);
        let noise = StepNoise::draw(&pre, Diwhvi::new(m, k), &mut rng);
        let generic = |noise: &StepNoise, g: &mut [f64]| {
            value_and_gradient_with_theta(
                &model,
                &pre,
                &params,
                &theta,
                noise,
                &engine,
                GradientEstimator::Reparameterized,
                g,
            )
            .unwrap()
        };
        let mut fused = pre.fused().unwrap();
        check(
            &mut fused,
            &generic,
            &noise,
            &params,
            &format!("preconditioned M = {m}, K = {k}"),
        );
    }
}
