//! The doubly-reparameterized estimator. For guides without mixing
//! variables (sticking the landing on the ELBO): zero variance at the exact
//! posterior, and the same expectation as the plain reparameterization
//! gradient everywhere. For hierarchical guides: the plain gradient's
//! expectation when the guide reports its reverse model's parameters, and
//! a typed error, never a silent fallback, when it does not.

use iwhvi::ForwardEngine;
use iwhvi::Scalar;
use iwhvi::fit::{FitConfig, FitError, fit};
use iwhvi::guide::{
    FullRank, HierarchicalGuide, ParamLayout, SemiImplicit, Workspace, std_normal_log_density,
};
use iwhvi::model::{LatentSpec, Layout, Model};
use iwhvi::objective::{
    Diwhvi, GradientEstimator, ObjectiveError, StepNoise, value_and_gradient_with,
};
use iwhvi::optim::Adam;
use iwhvi::transforms::Transform;
use iwhvi::variational;
use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// log p(u) = −½ (u − μ)ᵀ Λ (u − μ): a Gaussian posterior N(μ, Λ⁻¹)
/// (unnormalised; the constant does not matter to gradients).
struct Gaussian {
    mean: Vec<f64>,
    precision: DMatrix<f64>,
}

impl Model for Gaussian {
    fn layout(&self) -> Layout {
        Layout::new(vec![LatentSpec::vector(
            "u",
            self.mean.len(),
            Transform::Identity,
        )])
    }

    fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
        let d = self.mean.len();
        let mut total = T::constant(0.0);
        for i in 0..d {
            for j in 0..d {
                total += (u[i] - self.mean[i]) * (u[j] - self.mean[j]) * self.precision[(i, j)];
            }
        }
        total * -0.5
    }
}

fn gaussian() -> Gaussian {
    let a = DMatrix::from_row_slice(3, 3, &[2.0, 0.3, 0.0, 0.3, 1.0, -0.4, 0.0, -0.4, 0.5]);
    Gaussian {
        mean: vec![1.0, -2.0, 0.5],
        precision: &a * a.transpose() + DMatrix::identity(3, 3) * 0.1,
    }
}

/// FullRank parameters (loc, log_diag, lower by rows) for N(μ, Σ).
fn exact_params(model: &Gaussian) -> Vec<f64> {
    let d = model.mean.len();
    let covariance = model.precision.clone().try_inverse().unwrap();
    let l = covariance.cholesky().unwrap().l();
    let mut params = model.mean.clone();
    params.extend((0..d).map(|i| l[(i, i)].ln()));
    for i in 0..d {
        for j in 0..i {
            params.push(l[(i, j)]);
        }
    }
    params
}

fn gradient<Mo: Model, G: HierarchicalGuide>(
    model: &Mo,
    guide: &G,
    params: &[f64],
    objective: Diwhvi,
    estimator: GradientEstimator,
    rng: &mut StdRng,
) -> Vec<f64> {
    let noise = StepNoise::draw(guide, objective, rng);
    let mut g = vec![0.0; params.len()];
    value_and_gradient_with(
        model,
        guide,
        params,
        &noise,
        &ForwardEngine::<16>::new(),
        estimator,
        &mut g,
    )
    .expect("the estimator serves the guide");
    g
}

#[test]
fn at_the_exact_posterior_every_draws_gradient_is_zero() {
    let model = gaussian();
    let guide = FullRank::new(3);
    let params = exact_params(&model);
    for m in [1, 4] {
        let objective = Diwhvi::new(m, 0);
        let mut rng = StdRng::seed_from_u64(m as u64);
        for _ in 0..20 {
            let pathwise = gradient(
                &model,
                &guide,
                &params,
                objective,
                GradientEstimator::DoublyReparameterized,
                &mut rng,
            );
            let norm = DVector::from_vec(pathwise).amax();
            assert!(
                norm < 1e-9,
                "M = {m}: doubly-reparameterized gradient {norm}"
            );
        }
        let plain = gradient(
            &model,
            &guide,
            &params,
            objective,
            GradientEstimator::Reparameterized,
            &mut rng,
        );
        assert!(
            DVector::from_vec(plain).amax() > 1e-3,
            "the plain gradient is noisy at the optimum"
        );
    }
}

#[test]
fn it_has_the_plain_gradients_expectation() {
    let model = gaussian();
    let guide = FullRank::new(3);
    let mut rng = StdRng::seed_from_u64(7);
    let params: Vec<f64> = exact_params(&model)
        .iter()
        .map(|p| p + rng.random_range(-0.3..0.3))
        .collect();
    for m in [1, 3] {
        let objective = Diwhvi::new(m, 0);
        let n = 4000;
        let mut draws = [Vec::new(), Vec::new()];
        for (draws, estimator) in draws.iter_mut().zip([
            GradientEstimator::Reparameterized,
            GradientEstimator::DoublyReparameterized,
        ]) {
            let mut rng = StdRng::seed_from_u64(100 + m as u64);
            for _ in 0..n {
                draws.push(gradient(
                    &model, &guide, &params, objective, estimator, &mut rng,
                ));
            }
        }
        for p in 0..params.len() {
            let stats = |d: &Vec<Vec<f64>>| {
                let mean = d.iter().map(|g| g[p]).sum::<f64>() / n as f64;
                let var = d.iter().map(|g| (g[p] - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
                (mean, var / n as f64)
            };
            let ((a, va), (b, vb)) = (stats(&draws[0]), stats(&draws[1]));
            assert!(
                (a - b).abs() < 4.5 * (va + vb).sqrt() + 1e-12,
                "M = {m}, parameter {p}: plain {a} ± {} vs doubly-reparameterized {b} ± {}",
                va.sqrt(),
                vb.sqrt()
            );
        }
    }
}

/// Asserts that the two estimators' mean gradients agree within `z`
/// standard errors in every parameter, over `n` draws each (the same noise
/// for both).
fn assert_same_expectation<Mo: Model, G: HierarchicalGuide>(
    model: &Mo,
    guide: &G,
    params: &[f64],
    objective: Diwhvi,
    n: usize,
    z: f64,
) {
    let mut draws = [Vec::new(), Vec::new()];
    for (draws, estimator) in draws.iter_mut().zip([
        GradientEstimator::Reparameterized,
        GradientEstimator::DoublyReparameterized,
    ]) {
        let mut rng = StdRng::seed_from_u64(17);
        for _ in 0..n {
            draws.push(gradient(
                model, guide, params, objective, estimator, &mut rng,
            ));
        }
    }
    assert_ne!(draws[0], draws[1], "the estimators differ draw by draw");
    for p in 0..params.len() {
        let stats = |d: &Vec<Vec<f64>>| {
            let mean = d.iter().map(|g| g[p]).sum::<f64>() / n as f64;
            let var = d.iter().map(|g| (g[p] - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            (mean, var / n as f64)
        };
        let ((a, va), (b, vb)) = (stats(&draws[0]), stats(&draws[1]));
        assert!(
            (a - b).abs() < z * (va + vb).sqrt() + 1e-12,
            "{objective:?}, parameter {p}: plain {a} ± {} vs doubly-reparameterized {b} ± {}",
            va.sqrt(),
            vb.sqrt()
        );
    }
}

#[test]
fn for_a_semi_implicit_guide_it_has_the_plain_gradients_expectation() {
    let model = gaussian();
    let guide = SemiImplicit::new(3, 2);
    let mut rng = StdRng::seed_from_u64(3);
    // Away from the initialisation's zero reverse weights, so that τ's
    // parameters (where the estimators differ) have a gradient to estimate.
    let params: Vec<f64> = guide
        .init_params(&mut rng)
        .iter()
        .map(|p| p + rng.random_range(-0.5..0.5))
        .collect();
    assert_same_expectation(&model, &guide, &params, Diwhvi::new(2, 5), 3000, 4.5);
}

/// A hand-written hierarchical guide with a learned reverse model:
/// `ψ ~ N(0, 1)`, `u | ψ ~ N(loc + ψ · weight, I)`,
/// `τ(ψ | u) = N(slope · u₀ + intercept, 1)`. With `report` false it does
/// not override [`HierarchicalGuide::reverse_params`], as struct guides
/// did before the macro reported them.
struct Hand {
    dim: usize,
    report: bool,
}

impl Hand {
    fn reverse_mean<T: Scalar>(&self, params: &[T], u: &[T]) -> T {
        params[2 * self.dim] * u[0] + params[2 * self.dim + 1]
    }
}

impl HierarchicalGuide for Hand {
    fn latent_dim(&self) -> usize {
        self.dim
    }

    fn mixing_dim(&self) -> usize {
        1
    }

    fn has_reverse_model(&self) -> bool {
        true
    }

    fn param_layout(&self) -> ParamLayout {
        let mut layout = ParamLayout::default();
        layout.push("loc", &[self.dim]);
        layout.push("weight", &[self.dim]);
        layout.push("reverse.slope", &[1]);
        layout.push("reverse.intercept", &[1]);
        layout
    }

    fn init_params<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Vec<f64> {
        (0..2 * self.dim + 2)
            .map(|_| rng.random_range(-0.5..0.5))
            .collect()
    }

    fn reverse_params(&self) -> std::ops::Range<usize> {
        if self.report {
            2 * self.dim..2 * self.dim + 2
        } else {
            0..0
        }
    }

    fn sample_conditional<T: Scalar>(
        &self,
        params: &[T],
        psi: &[T],
        noise: &[f64],
        u: &mut [T],
        _: &mut Workspace<T>,
    ) {
        for i in 0..self.dim {
            u[i] = params[i] + psi[0] * params[self.dim + i] + noise[i];
        }
    }

    fn log_conditional<T: Scalar>(
        &self,
        params: &[T],
        psi: &[T],
        u: &[T],
        _: &mut Workspace<T>,
    ) -> T {
        let z: Vec<T> = (0..self.dim)
            .map(|i| u[i] - params[i] - psi[0] * params[self.dim + i])
            .collect();
        std_normal_log_density(&z)
    }

    fn sample_reverse<T: Scalar>(
        &self,
        params: &[T],
        u: &[T],
        noise: &[f64],
        psi: &mut [T],
        _: &mut Workspace<T>,
    ) {
        psi[0] = self.reverse_mean(params, u) + noise[0];
    }

    fn log_reverse<T: Scalar>(&self, params: &[T], u: &[T], psi: &[T], _: &mut Workspace<T>) -> T {
        std_normal_log_density(&[psi[0] - self.reverse_mean(params, u)])
    }
}

#[test]
fn a_hierarchical_guide_without_reported_reverse_params_is_a_typed_error() {
    let model = gaussian();
    let guide = Hand {
        dim: 3,
        report: false,
    };
    let params = guide.init_params(&mut StdRng::seed_from_u64(0));
    let noise = StepNoise::draw(&guide, Diwhvi::iwhvi(4), &mut StdRng::seed_from_u64(1));
    let mut g = vec![0.0; params.len()];
    let expected = ObjectiveError::NoReverseParams { mixing_dim: 1 };
    let engine = ForwardEngine::<16>::new();
    let dreg = GradientEstimator::DoublyReparameterized;
    let result = value_and_gradient_with(&model, &guide, &params, &noise, &engine, dreg, &mut g);
    assert_eq!(result, Err(expected.clone()));
    assert!(expected.to_string().contains("reverse_params"));
    // The plain estimator still serves it.
    let plain = GradientEstimator::Reparameterized;
    assert!(
        value_and_gradient_with(&model, &guide, &params, &noise, &engine, plain, &mut g).is_ok()
    );

    let config = FitConfig::new(Diwhvi::iwhvi(4))
        .max_steps(10)
        .estimator(dreg)
        .progress(false);
    match fit(&model, &guide, Adam::new(0.01), &config) {
        Err(FitError::Objective(error)) => assert_eq!(error, expected),
        other => panic!("expected the typed error, got {other:?}"),
    }
}

#[test]
fn once_it_reports_them_the_hand_written_guide_has_the_plain_expectation() {
    let model = gaussian();
    let guide = Hand {
        dim: 3,
        report: true,
    };
    let params = guide.init_params(&mut StdRng::seed_from_u64(2));
    assert_same_expectation(&model, &guide, &params, Diwhvi::new(2, 5), 3000, 4.5);
    let config = FitConfig::new(Diwhvi::iwhvi(4))
        .max_steps(50)
        .estimator(GradientEstimator::DoublyReparameterized)
        .progress(false);
    assert!(fit(&model, &guide, Adam::new(0.01), &config).is_ok());
}

/// A location observed with unit noise.
#[variational]
struct Shift {
    #[latent(Normal(0.0, 2.0))]
    x: f64,
    #[observe(Normal(x, 1.0), for j)]
    y: Vec<f64>,
}

/// A struct guide with a learned reverse model whose parameters (`v`, `c`,
/// `r`) only `τ` reads.
#[variational(guide = Shift)]
struct ShiftGuide {
    #[param(init = 0.0)]
    w: f64,
    #[param(init = 0.0)]
    b: f64,
    #[param(init = 0.0)]
    l: f64,
    #[param(init = 0.0)]
    v: f64,
    #[param(init = 0.0)]
    c: f64,
    #[param(init = 0.0)]
    r: f64,
    #[mixing]
    #[reverse(Normal(v * x + c, r.exp()))]
    psi: f64,
    #[latent(Normal(w * psi + b, l.exp()))]
    x: f64,
}

/// A struct guide reports its reverse model's parameters (the macro knows
/// which parameters only τ reads), so the doubly-reparameterized gradient
/// runs, and has the plain one's expectation, instead of being rejected
/// with `ObjectiveError::NoReverseParams` (a guide that reports nothing,
/// above, gets that error; neither is ever silently replaced by the plain
/// estimator).
#[test]
fn a_struct_guide_takes_the_doubly_reparameterized_estimator() {
    let model = Shift::new(vec![0.8, 1.5, 1.1]).unwrap();
    let guide = ShiftGuide::new(&model).unwrap();
    let params = [0.3, -0.2, -0.4, 0.5, 0.1, -0.3];
    let dreg = GradientEstimator::DoublyReparameterized;
    let config = FitConfig::new(Diwhvi::iwhvi(4))
        .max_steps(20)
        .estimator(dreg)
        .progress(false);
    assert_eq!(guide.reverse_params(), 3..6, "τ's parameters are v, c, r");
    assert_same_expectation(&model, &guide, &params, Diwhvi::new(2, 5), 3000, 4.5);
    assert!(fit(&model, &guide, Adam::new(0.01), &config).is_ok());
}
