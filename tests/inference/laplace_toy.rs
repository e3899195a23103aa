//! The paper's toy: a 30-dimensional Laplace written as a Gaussian scale
//! mixture, whose `E log q(z) = −30 (1 + ln 2)` is known, so the sandwich
//! on `log q(z)` can be checked against the truth.

use iwhvi::Scalar;
use iwhvi::fit::{FitConfig, fit};
use iwhvi::guide::{LaplaceMixture, LaplaceReverse};
use iwhvi::model::{LatentSpec, Layout, Model};
use iwhvi::objective::{Diwhvi, Estimate, StepNoise, upper_bound_log_q};
use iwhvi::optim::Adam;
use iwhvi::transforms::Transform;
use rand::SeedableRng;
use rand::rngs::StdRng;

const D: usize = 30;

/// Means (with standard errors) of `U_K` and `L_K` over `draws` draws.
fn sandwich(
    guide: &LaplaceMixture,
    params: &[f64],
    k: usize,
    draws: usize,
    seed: u64,
) -> (Estimate, Estimate) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut noise = StepNoise::new(guide, Diwhvi::new(1, k));
    let (mut upper, mut lower) = (Vec::new(), Vec::new());
    for _ in 0..draws {
        noise.redraw(&mut rng);
        let (s, _) = upper_bound_log_q(guide, params, &noise, 0).unwrap();
        upper.push(s.upper);
        lower.push(s.lower.expect("K ≥ 1 inner samples give a lower bound"));
    }
    (Estimate::from_values(&upper), Estimate::from_values(&lower))
}

#[test]
fn with_the_exact_reverse_model_every_weight_is_log_q() {
    let guide = LaplaceMixture::new(D, LaplaceReverse::Exact);
    let mut rng = StdRng::seed_from_u64(1);
    let mut noise = StepNoise::new(&guide, Diwhvi::new(1, 20));
    for _ in 0..50 {
        noise.redraw(&mut rng);
        let (s, z) = upper_bound_log_q(&guide, &[], &noise, 0).unwrap();
        let truth = guide.log_density(&z);
        // U and L are log-mean-exps of the weights: equal to log q(z) exactly
        // when every weight is.
        assert!(
            (s.upper - truth).abs() < 1e-9,
            "U = {} vs log q(z) = {truth}",
            s.upper
        );
        let lower = s.lower.expect("K ≥ 1 inner samples give a lower bound");
        assert!(
            (lower - truth).abs() < 1e-9,
            "L = {lower} vs log q(z) = {truth}"
        );
    }
}

#[test]
fn sivi_bounds_close_in_on_the_truth_as_k_grows() {
    let guide = LaplaceMixture::new(D, LaplaceReverse::Prior);
    let truth = guide.expected_log_density();
    let mut previous: Option<(Estimate, Estimate)> = None;
    for k in [1, 10, 100] {
        let (upper, lower) = sandwich(&guide, &[], k, 2000, 2);
        assert!(
            upper.mean > truth && lower.mean < truth,
            "K = {k}: L = {lower} ≤ {truth} ≤ U = {upper}"
        );
        if let Some((u0, l0)) = previous {
            assert!(
                upper.mean < u0.mean - 2.0 * u0.std_error,
                "U did not fall with K: {u0} then {upper}"
            );
            assert!(
                lower.mean > l0.mean + 2.0 * l0.std_error,
                "L did not rise with K: {l0} then {lower}"
            );
        }
        previous = Some((upper, lower));
    }
}

/// A "model" with `log p = 0`: the DIWHVI bound at `M = 1` is then
/// `−U_K(z)`, and maximizing it trains τ to tighten the upper bound.
struct Flat;

impl Model for Flat {
    fn layout(&self) -> Layout {
        Layout::new(vec![LatentSpec::vector("z", D, Transform::Identity)])
    }

    fn log_joint<T: Scalar>(&self, _u: &[T]) -> T {
        T::constant(0.0)
    }
}

#[test]
fn a_trained_reverse_model_beats_sivi_at_k_50() {
    let truth = LaplaceMixture::new(D, LaplaceReverse::Prior).expected_log_density();
    let learned = LaplaceMixture::new(D, LaplaceReverse::Learned);
    let config = FitConfig::new(Diwhvi::iwhvi(10))
        .max_steps(1500)
        .seed(3)
        .progress(false);
    let trained = fit(&Flat, &learned, Adam::new(0.02), &config).unwrap();

    let (upper_trained, lower_trained) = sandwich(&learned, &trained.params, 50, 2000, 4);
    let (upper_sivi, _) = sandwich(
        &LaplaceMixture::new(D, LaplaceReverse::Prior),
        &[],
        50,
        2000,
        4,
    );
    assert!(
        upper_trained.mean > truth - 3.0 * upper_trained.std_error,
        "U must stay above the truth: {upper_trained}"
    );
    assert!(
        lower_trained.mean < truth + 3.0 * lower_trained.std_error,
        "L must stay below the truth: {lower_trained}"
    );
    let (gap_trained, gap_sivi) = (upper_trained.mean - truth, upper_sivi.mean - truth);
    assert!(
        gap_trained
            < gap_sivi
                - 3.0 * (upper_trained.std_error.powi(2) + upper_sivi.std_error.powi(2)).sqrt(),
        "IWHVI U_50 − truth = {gap_trained:.3} is not below SIVI's {gap_sivi:.3}"
    );
}

/// The doubly-reparameterized estimator has the plain estimator's
/// expectation for τ's parameters and a smaller variance.
#[test]
fn doubly_reparameterized_gradient_is_unbiased_with_lower_variance() {
    use iwhvi::gradient::ForwardEngine;
    use iwhvi::objective::{GradientEstimator, value_and_gradient_with};
    // In two dimensions the inner weights are not dominated by ψ₀, so the
    // estimators' k ≥ 1 terms (where they differ) matter.
    // At a trained τ the inner weights are balanced, so ψ₀'s direct term
    // (which both estimators share) does not swamp the rest.
    let guide = LaplaceMixture::new(2, LaplaceReverse::Learned);
    let config = FitConfig::new(Diwhvi::iwhvi(10))
        .max_steps(1500)
        .seed(5)
        .progress(false);
    let params = fit(&Flat2, &guide, Adam::new(0.02), &config)
        .unwrap()
        .params;
    let engine = ForwardEngine::<4>::new();
    let mut rng = StdRng::seed_from_u64(6);
    let mut noise = StepNoise::new(&guide, Diwhvi::iwhvi(50));
    let draws = 3000;
    let mut plain: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let mut dreg: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let mut g = [0.0; 4];
    for _ in 0..draws {
        noise.redraw(&mut rng);
        for (estimator, out) in [
            (GradientEstimator::Reparameterized, &mut plain),
            (GradientEstimator::DoublyReparameterized, &mut dreg),
        ] {
            value_and_gradient_with(&Flat2, &guide, &params, &noise, &engine, estimator, &mut g)
                .unwrap();
            for (column, &gi) in out.iter_mut().zip(&g) {
                column.push(gi);
            }
        }
    }
    for i in 0..4 {
        let (a, b) = (
            Estimate::from_values(&plain[i]),
            Estimate::from_values(&dreg[i]),
        );
        let se = (a.std_error.powi(2) + b.std_error.powi(2)).sqrt();
        assert!(
            (a.mean - b.mean).abs() < 4.0 * se,
            "∂/∂φ{i}: plain {a} vs DReG {b}"
        );
        assert!(
            b.std_error < a.std_error,
            "∂/∂φ{i}: DReG {b} is not less variable than plain {a}"
        );
    }
}

/// [`Flat`] in two dimensions.
struct Flat2;

impl Model for Flat2 {
    fn layout(&self) -> Layout {
        Layout::new(vec![LatentSpec::vector("z", 2, Transform::Identity)])
    }

    fn log_joint<T: Scalar>(&self, _u: &[T]) -> T {
        T::constant(0.0)
    }
}

/// `u = 2ψ + ε`: `I(u; ψ) = ½ ln 5`, bracketed by the sandwich with a
/// reverse model that is not the exact `q(ψ | u)`, more tightly as `K`
/// grows; at `K = 0` there is no lower bound on `log q` to bracket with.
#[test]
fn mutual_information_is_bracketed_and_the_bracket_tightens() {
    use iwhvi::guide::{HierarchicalGuide, Reverse, SemiImplicit};
    use iwhvi::objective::{DiagnosticsError, mutual_information};
    let exact = 0.5 * 5f64.ln();
    for reverse in [
        Reverse::Learned(iwhvi::guide::Conditioning::Linear),
        Reverse::Prior,
    ] {
        let guide = SemiImplicit::new(1, 1).with_reverse(reverse);
        let layout = guide.param_layout();
        let mut params = vec![0.0; layout.len()];
        params[layout.get("conditional.weight").unwrap().range.clone()].copy_from_slice(&[2.0]);
        if let Some(block) = layout.get("reverse.weight") {
            // A reverse mean of 0.2 u where the exact one is 0.4 u.
            params[block.range.clone()].copy_from_slice(&[0.2]);
        }
        let mut widths = Vec::new();
        for k in [1, 16, 256] {
            let mut rng = StdRng::seed_from_u64(3);
            let mi = mutual_information(&guide, &params, k, 4000, &mut rng).expect("valid");
            let slack = 4.0 * mi.lower.std_error.max(mi.upper.std_error);
            assert!(
                mi.lower.mean < exact + slack && exact - slack < mi.upper.mean,
                "{reverse:?}, K = {k}: {} ≤ {exact} ≤ {}",
                mi.lower.mean,
                mi.upper.mean
            );
            widths.push(mi.upper.mean - mi.lower.mean);
        }
        assert!(widths[2] < widths[0], "{reverse:?}: {widths:?}");
        let mut rng = StdRng::seed_from_u64(3);
        assert_eq!(
            mutual_information(&guide, &params, 0, 100, &mut rng),
            Err(DiagnosticsError::NoInnerSamples)
        );
        assert_eq!(
            mutual_information(&guide, &params[1..], 4, 100, &mut rng),
            Err(DiagnosticsError::WrongParameterCount {
                expected: params.len(),
                found: params.len() - 1
            })
        );
        let mut noise = StepNoise::new(&guide, Diwhvi::new(1, 0));
        noise.redraw(&mut rng);
        let (sandwich, _) = upper_bound_log_q(&guide, &params, &noise, 0).unwrap();
        assert_eq!(sandwich.lower, None, "K = 0 has no lower bound");
    }
}
