//! The inference engine against closed forms: a linear-Gaussian model with
//! exact evidence and posterior; the full objective's gradient against
//! finite differences on the same noise; the chained model gradient against
//! direct evaluation.

use iwhvi::Scalar;
use iwhvi::fit::{FitConfig, fit};
use iwhvi::gradient::{Differentiable, ForwardEngine, Parallelism};
use iwhvi::guide::{FullRank, HierarchicalGuide, MeanField, SemiImplicit};
use iwhvi::model::{LatentSpec, Layout, Model};
use iwhvi::objective::{
    ChainedModel, Diwhvi, DiwhviObjective, StepNoise, estimate_bound, log_evidence,
};
use iwhvi::optim::{Adam, LearningRate};
use iwhvi::posterior::{FittedGuide, Posterior};
use iwhvi::special::LN_SQRT_2PI;
use iwhvi::transforms::Transform;
use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

const PRIOR_SD: f64 = 2.0;
const NOISE_SD: f64 = 0.8;

/// y = X β + ε, β ~ N(0, 2² I), ε ~ N(0, 0.8² I).
struct LinearGaussian {
    x: DMatrix<f64>,
    y: DVector<f64>,
}

impl LinearGaussian {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let beta = DVector::from_vec(vec![1.5, -2.0, 0.8]);
        let x = DMatrix::from_fn(20, 3, |_, _| rng.sample::<f64, _>(StandardNormal));
        let noise = DVector::from_fn(20, |_, _| NOISE_SD * rng.sample::<f64, _>(StandardNormal));
        let y = &x * beta + noise;
        Self { x, y }
    }

    /// Exact posterior mean and covariance.
    fn posterior(&self) -> (DVector<f64>, DMatrix<f64>) {
        let precision = DMatrix::identity(3, 3) / PRIOR_SD.powi(2)
            + self.x.transpose() * &self.x / NOISE_SD.powi(2);
        let cov = precision.try_inverse().unwrap();
        let mean = &cov * self.x.transpose() * &self.y / NOISE_SD.powi(2);
        (mean, cov)
    }

    /// log p(y) = log N(y; 0, σ² I + s² X Xᵀ).
    fn log_evidence(&self) -> f64 {
        let n = self.y.len();
        let cov = DMatrix::identity(n, n) * NOISE_SD.powi(2)
            + &self.x * self.x.transpose() * PRIOR_SD.powi(2);
        let chol = cov.cholesky().unwrap();
        let z = chol.l().solve_lower_triangular(&self.y).unwrap();
        let log_det: f64 = chol.l().diagonal().iter().map(|d| d.ln()).sum();
        -0.5 * z.norm_squared() - log_det - n as f64 * LN_SQRT_2PI
    }
}

impl Model for LinearGaussian {
    fn layout(&self) -> Layout {
        Layout::new(vec![LatentSpec::vector("beta", 3, Transform::Identity)])
    }

    fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
        let mut lp = T::constant(-3.0 * (LN_SQRT_2PI + PRIOR_SD.ln()));
        for &b in u {
            lp -= (b * (1.0 / PRIOR_SD)).square() * 0.5;
        }
        let n = self.y.len();
        lp -= (LN_SQRT_2PI + NOISE_SD.ln()) * n as f64;
        for i in 0..n {
            let mut mean = T::constant(0.0);
            for (j, &b) in u.iter().enumerate() {
                mean += b * self.x[(i, j)];
            }
            lp -= ((mean - self.y[i]) * (1.0 / NOISE_SD)).square() * 0.5;
        }
        lp
    }
}

fn semi_implicit() -> SemiImplicit {
    SemiImplicit::new(3, 3)
}

fn fitted_semi_implicit(model: &LinearGaussian) -> Vec<f64> {
    let config = FitConfig::new(Diwhvi::new(1, 32))
        .max_steps(8000)
        .seed(7)
        .progress(false);
    let schedule = LearningRate::Exponential {
        initial: 0.02,
        decay: 0.5,
        every: 1500,
    };
    fit(
        model,
        &semi_implicit(),
        Adam::with_schedule(schedule),
        &config,
    )
    .unwrap()
    .params
}

#[test]
fn every_bound_is_below_the_evidence_and_rises_with_m_and_k() {
    let model = LinearGaussian::new(1);
    let truth = model.log_evidence();
    let guide = semi_implicit();
    let params = fitted_semi_implicit(&model);
    let mut rng = StdRng::seed_from_u64(2);
    let mut estimates = Vec::new();
    for (m, k) in [(1, 0), (1, 4), (1, 32), (8, 32)] {
        let e = estimate_bound(&model, &guide, &params, Diwhvi::new(m, k), 4000, &mut rng).unwrap();
        assert!(
            e.mean <= truth + 3.0 * e.std_error,
            "DIWHVI({m}, {k}) = {e} above log p(y) = {truth}"
        );
        estimates.push(e);
    }
    for pair in estimates.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let se = (a.std_error.powi(2) + b.std_error.powi(2)).sqrt();
        assert!(b.mean > a.mean - se, "the bound fell: {a} then {b}");
    }
    // Over the whole range the rise is clear.
    let (first, last) = (estimates[0], estimates[3]);
    assert!(
        last.mean - first.mean > 3.0 * (first.std_error.powi(2) + last.std_error.powi(2)).sqrt(),
        "{first} vs {last}"
    );

    // The non-hierarchical guides too, at a deliberately poor point.
    for (name, value) in [
        (
            "ELBO mean-field",
            estimate_bound(
                &model,
                &MeanField::new(3),
                &[0.5; 6],
                Diwhvi::elbo(),
                4000,
                &mut rng,
            )
            .unwrap(),
        ),
        (
            "IWAE mean-field",
            estimate_bound(
                &model,
                &MeanField::new(3),
                &[0.5; 6],
                Diwhvi::iwae(16),
                2000,
                &mut rng,
            )
            .unwrap(),
        ),
        (
            "ELBO full-rank",
            estimate_bound(
                &model,
                &FullRank::new(3),
                &[0.1; 9],
                Diwhvi::elbo(),
                4000,
                &mut rng,
            )
            .unwrap(),
        ),
    ] {
        assert!(
            value.mean <= truth + 3.0 * value.std_error,
            "{name} = {value} above {truth}"
        );
    }
}

#[test]
fn fitted_semi_implicit_guide_recovers_the_exact_posterior() {
    let model = LinearGaussian::new(1);
    let (mean, cov) = model.posterior();
    let guide = semi_implicit();
    let params = fitted_semi_implicit(&model);

    // Importance-resampled with the bound's own weights (K = 32), so that
    // the guide's remaining under- or over-dispersion is corrected.
    let mut rng = StdRng::seed_from_u64(3);
    let posterior = Posterior::new(&model, &guide, &params).unwrap();
    let resampled = posterior
        .sample_importance_resampled(100_000, 100_000, 32, &mut rng)
        .expect("the guide has finite importance weights");
    assert!(
        resampled.effective_sample_size > 20_000.0,
        "ESS {}",
        resampled.effective_sample_size
    );
    assert!(
        resampled.pareto_k < iwhvi::posterior::PARETO_K_GOOD,
        "k̂ {}",
        resampled.pareto_k
    );
    let summary = resampled.draws.summary();
    for i in 0..3 {
        let row = summary.get(&format!("beta[{i}]")).unwrap();
        let exact_sd = cov[(i, i)].sqrt();
        assert!(
            (row.mean - mean[i]).abs() <= 0.02 * mean[i].abs(),
            "beta[{i}]: mean {} vs exact {}",
            row.mean,
            mean[i]
        );
        assert!(
            (row.sd / exact_sd - 1.0).abs() <= 0.02,
            "beta[{i}]: sd {} vs exact {exact_sd}",
            row.sd
        );
    }

    let evidence = log_evidence(&model, &guide, &params, 500, 32, 40, &mut rng).unwrap();
    let truth = model.log_evidence();
    assert!(
        (evidence.mean - truth).abs() <= 3.0 * evidence.std_error,
        "log-evidence {evidence} vs exact {truth}"
    );
}

#[test]
fn objective_gradient_matches_finite_differences_on_the_same_noise() {
    let model = LinearGaussian::new(4);
    let guide = semi_implicit();
    let mut rng = StdRng::seed_from_u64(5);
    let params: Vec<f64> = guide
        .init_params(&mut rng)
        .iter()
        .map(|p| p + 0.1 * rng.random::<f64>())
        .collect();
    let noise = StepNoise::draw(&guide, Diwhvi::new(3, 5), &mut rng);
    let objective = DiwhviObjective::new(&model, &guide, &noise);
    let (value, gradient) = ForwardEngine::<16>::new().value_and_gradient(&objective, &params);
    assert_eq!(value, objective.eval(&params));
    for i in 0..params.len() {
        let h = 1e-5;
        let mut plus = params.clone();
        let mut minus = params.clone();
        plus[i] += h;
        minus[i] -= h;
        let fd = (objective.eval(&plus) - objective.eval(&minus)) / (2.0 * h);
        assert!(
            (gradient[i] - fd).abs() <= 1e-5 * (1.0 + fd.abs()),
            "∂/∂θ{i}: {} vs {fd}",
            gradient[i]
        );
    }
}

#[test]
fn chained_model_gradient_equals_direct_evaluation() {
    let model = LinearGaussian::new(6);
    let mut rng = StdRng::seed_from_u64(7);
    for guide in [
        semi_implicit(),
        SemiImplicit::new(3, 2).with_psi_dependent_scale(true),
    ] {
        let params: Vec<f64> = guide
            .init_params(&mut rng)
            .iter()
            .map(|p| p + 0.05 * rng.random::<f64>())
            .collect();
        let noise = StepNoise::draw(&guide, Diwhvi::new(4, 6), &mut rng);
        let engine = ForwardEngine::<8>::new();
        let direct =
            engine.value_and_gradient(&DiwhviObjective::new(&model, &guide, &noise), &params);
        let chained_model = ChainedModel::new(&model, &guide, &params, &noise, &engine);
        let chained = engine.value_and_gradient(
            &DiwhviObjective::chained(&model, &guide, &noise, &chained_model),
            &params,
        );
        assert!((direct.0 - chained.0).abs() <= 1e-12 * direct.0.abs());
        for (a, b) in direct.1.iter().zip(&chained.1) {
            assert!(
                (a - b).abs() <= 1e-10 * (1.0 + a.abs()),
                "direct {a} vs chained {b}"
            );
        }
    }
}

#[test]
fn a_seed_reproduces_a_fit_bit_for_bit_with_threads_on_or_off() {
    let model = LinearGaussian::new(8);
    let guide = SemiImplicit::new(3, 6);
    let config = FitConfig::new(Diwhvi::new(2, 4))
        .max_steps(300)
        .seed(11)
        .progress(false);
    let run = |parallelism| {
        fit(
            &model,
            &guide,
            Adam::new(0.01),
            &config.clone().parallelism(parallelism),
        )
        .unwrap()
    };
    let single = run(Parallelism::SingleThread);
    let all = run(Parallelism::AllCores);
    assert_eq!(
        single
            .params
            .iter()
            .map(|p| p.to_bits())
            .collect::<Vec<_>>(),
        all.params.iter().map(|p| p.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(
        single.trace.iter().map(|p| p.to_bits()).collect::<Vec<_>>(),
        all.trace.iter().map(|p| p.to_bits()).collect::<Vec<_>>()
    );
    let other = fit(&model, &guide, Adam::new(0.01), &config.clone().seed(12)).unwrap();
    assert_ne!(other.params, single.params);
}

#[test]
fn a_fitted_guide_saves_loads_and_samples_without_the_data() {
    let model = LinearGaussian::new(9);
    let guide = SemiImplicit::new(3, 2);
    let config = FitConfig::new(Diwhvi::new(1, 4))
        .max_steps(200)
        .progress(false);
    let fitted = fit(&model, &guide, Adam::new(0.02), &config).unwrap();
    let posterior = Posterior::new(&model, &guide, &fitted.params).unwrap();
    let path = std::env::temp_dir().join(format!("iwhvi-fit-{}.json", std::process::id()));
    posterior.fitted().save(&path).unwrap();
    let loaded = FittedGuide::<SemiImplicit>::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(&loaded, posterior.fitted());
    let a = loaded.sample(50, &mut StdRng::seed_from_u64(1)).unwrap();
    let b = posterior.sample(50, &mut StdRng::seed_from_u64(1)).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.names(), ["beta[0]", "beta[1]", "beta[2]"]);

    // Posterior predictive: a new observation at x = (1, 0, 0).
    let predictions = posterior
        .predictive(&a, &mut StdRng::seed_from_u64(2), |latents, rng| {
            latents.get("beta").unwrap()[0] + NOISE_SD * rng.sample::<f64, _>(StandardNormal)
        })
        .unwrap();
    assert_eq!(predictions.len(), 50);

    let broken = loaded
        .to_json()
        .unwrap()
        .replace("\"params\": [", "\"params\": [1.0, ");
    assert!(
        FittedGuide::<SemiImplicit>::from_json(&broken)
            .unwrap_err()
            .to_string()
            .contains("parameters")
    );
}

#[test]
fn the_reverse_engine_gives_the_forward_gradient_and_fits_alike() {
    use iwhvi::fit::Engine;
    use iwhvi::objective::{GradientEstimator, value_and_gradient_with};
    use iwhvi::tape::TapeEngine;
    let model = LinearGaussian::new(10);
    let guide = SemiImplicit::new(3, 4);
    let mut rng = StdRng::seed_from_u64(11);
    let params = guide.init_params(&mut rng);
    let noise = StepNoise::draw(&guide, Diwhvi::new(3, 7), &mut rng);
    for estimator in [
        GradientEstimator::Reparameterized,
        GradientEstimator::DoublyReparameterized,
    ] {
        let mut forward = vec![0.0; params.len()];
        let mut reverse = vec![0.0; params.len()];
        let a = value_and_gradient_with(
            &model,
            &guide,
            &params,
            &noise,
            &ForwardEngine::<16>::new(),
            estimator,
            &mut forward,
        )
        .unwrap();
        let b = value_and_gradient_with(
            &model,
            &guide,
            &params,
            &noise,
            &TapeEngine,
            estimator,
            &mut reverse,
        )
        .unwrap();
        assert!((a - b).abs() <= 1e-12 * a.abs());
        for (f, r) in forward.iter().zip(&reverse) {
            assert!(
                (f - r).abs() <= 1e-10 * (1.0 + f.abs()),
                "{estimator:?}: forward {f} vs reverse {r}"
            );
        }
    }
    let config = FitConfig::new(Diwhvi::new(2, 4))
        .max_steps(200)
        .seed(3)
        .progress(false);
    let by_forward = fit(&model, &guide, Adam::new(0.01), &config).unwrap();
    let by_reverse = fit(
        &model,
        &guide,
        Adam::new(0.01),
        &config.clone().engine(Engine::Tape),
    )
    .unwrap();
    let again = fit(
        &model,
        &guide,
        Adam::new(0.01),
        &config.clone().engine(Engine::Tape),
    )
    .unwrap();
    assert_eq!(
        by_reverse.params, again.params,
        "a seed reproduces a reverse-mode fit"
    );
    for (f, r) in by_forward.params.iter().zip(&by_reverse.params) {
        assert!(
            (f - r).abs() < 1e-6,
            "forward {f} vs reverse {r} after 200 steps"
        );
    }
}

#[test]
fn entropy_and_kl_brackets_match_the_closed_form_for_a_gaussian_guide() {
    use iwhvi::objective::guide_diagnostics;
    let model = LinearGaussian::new(12);
    let (mean, cov) = model.posterior();
    let truth = model.log_evidence();
    // A deliberately imperfect mean-field guide.
    let loc = [mean[0] + 0.1, mean[1] - 0.05, mean[2]];
    let log_scale = [-1.2f64, -1.5, -2.0];
    let params: Vec<f64> = loc.iter().chain(&log_scale).copied().collect();
    let mut rng = StdRng::seed_from_u64(13);
    let diagnostics =
        guide_diagnostics(&model, &MeanField::new(3), &params, 8, 20_000, &mut rng).unwrap();

    let entropy: f64 =
        log_scale.iter().sum::<f64>() + 1.5 * (1.0 + (2.0 * std::f64::consts::PI).ln());
    for e in [diagnostics.entropy_lower, diagnostics.entropy_upper] {
        assert!(
            (e.mean - entropy).abs() < 4.0 * e.std_error,
            "entropy {e} vs exact {entropy}"
        );
    }
    // KL(N(m, S) ‖ N(μ, Σ)) = ½ [tr(Σ⁻¹S) + (μ−m)ᵀΣ⁻¹(μ−m) − D + ln det Σ − ln det S]
    let precision = cov.clone().try_inverse().unwrap();
    let s = DMatrix::from_diagonal(&DVector::from_iterator(
        3,
        log_scale.iter().map(|l| (2.0 * l).exp()),
    ));
    let diff = &mean - DVector::from_row_slice(&loc);
    let kl = 0.5
        * ((&precision * &s).trace() + (diff.transpose() * &precision * &diff)[(0, 0)] - 3.0
            + cov.determinant().ln()
            - s.determinant().ln());
    let (kl_low, kl_high) = diagnostics.kl_bracket(truth);
    let se = diagnostics.elbo_lower.std_error;
    assert!(
        kl_low <= kl + 4.0 * se && kl <= kl_high + 4.0 * se,
        "KL {kl} outside [{kl_low}, {kl_high}] ± {se}"
    );
    assert!(
        (kl_low - kl).abs() < 4.0 * se,
        "non-hierarchical: the bracket is exact, {kl_low} vs {kl}"
    );

    // For a hierarchical guide the bracket has width, in the right order.
    let guide = semi_implicit();
    let params = guide.init_params(&mut rng);
    let d = guide_diagnostics(&model, &guide, &params, 16, 4000, &mut rng).unwrap();
    assert!(d.entropy_lower.mean <= d.entropy_upper.mean + 3.0 * d.entropy_upper.std_error);
}
