//! The fit loop's guarantees: non-finite steps are rejected and reported,
//! too many in a row end the fit with a typed error that keeps the best
//! parameters, the relative-tolerance rule stops a converged fit, and bad
//! input is a typed error.

use iwhvi::Scalar;
use iwhvi::fit::{FitConfig, FitError, InputError, fit, fit_from};
use iwhvi::guide::{HierarchicalGuide, MeanField, SemiImplicit};
use iwhvi::model::{LatentSpec, Layout, Model};
use iwhvi::objective::Diwhvi;
use iwhvi::optim::Adam;
use iwhvi::transforms::Transform;

/// `u ~ N(1, 0.5²)` in two dimensions, except that the log joint is NaN
/// wherever `u₀ > threshold`.
struct Fragile {
    threshold: f64,
}

impl Model for Fragile {
    fn layout(&self) -> Layout {
        Layout::new(vec![LatentSpec::vector("u", 2, Transform::Identity)])
    }

    fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
        if u[0].value() > self.threshold {
            return T::constant(f64::NAN);
        }
        // The constant keeps the bound away from 0, where a relative change
        // (Stan's rule) is not meaningful.
        u.iter()
            .map(|&x| -((x - 1.0) * 2.0).square() * 0.5)
            .sum::<T>()
            - 10.0
    }
}

#[test]
fn occasional_non_finite_steps_are_rejected_and_counted() {
    // With the initial guide N(0, 0.1²) a draw beyond 0.15 happens in ~7 % of steps.
    let model = Fragile { threshold: 0.15 };
    let config = FitConfig::new(Diwhvi::elbo())
        .max_steps(300)
        .progress(false);
    let result = fit(&model, &MeanField::new(2), Adam::new(0.001), &config).unwrap();
    assert!(result.rejected_steps > 0, "no step was rejected");
    assert_eq!(
        result.trace.iter().filter(|b| !b.is_finite()).count(),
        result.rejected_steps
    );
    assert!(result.params.iter().all(|p| p.is_finite()));
}

/// NaN everywhere except at `u₀ = start` exactly, where the fit starts
/// (the guide's centre): every draw of the fit is NaN.
struct FiniteOnlyAtTheStart {
    start: f64,
}

impl Model for FiniteOnlyAtTheStart {
    fn layout(&self) -> Layout {
        Fragile { threshold: 0.0 }.layout()
    }

    fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
        if u[0].value() == self.start {
            Fragile {
                threshold: f64::INFINITY,
            }
            .log_joint(u)
        } else {
            T::constant(f64::NAN)
        }
    }
}

#[test]
fn a_log_joint_not_finite_at_the_start_ends_the_fit_before_the_first_step() {
    let model = Fragile {
        threshold: f64::NEG_INFINITY,
    };
    let config = FitConfig::new(Diwhvi::elbo()).progress(false);
    match fit(&model, &MeanField::new(2), Adam::new(0.01), &config) {
        // A hand-written model does not name its terms.
        Err(FitError::InvalidStart { value, term: None }) => assert!(value.is_nan()),
        other => panic!("expected InvalidStart, got {other:?}"),
    }
}

#[test]
fn persistent_non_finite_steps_end_the_fit_with_the_best_parameters() {
    let model = FiniteOnlyAtTheStart { start: 0.25 };
    let guide = MeanField::new(2);
    let initial = vec![0.25, 0.5, -1.0, -1.0];
    let config = FitConfig::new(Diwhvi::elbo())
        .max_steps(1000)
        .progress(false);
    match fit_from(&model, &guide, Adam::new(0.01), &config, initial.clone()) {
        Err(FitError::Diverged {
            step,
            consecutive,
            partial,
        }) => {
            assert_eq!((step, consecutive), (20, 20));
            assert_eq!(partial.best_params, initial);
            assert_eq!(partial.rejected_steps, 20);
        }
        other => panic!("expected Diverged, got {other:?}"),
    }
    let message = fit_from(&model, &guide, Adam::new(0.01), &config, initial)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("not finite for 20 steps in a row"),
        "{message}"
    );
}

#[test]
fn the_relative_tolerance_rule_stops_a_converged_fit() {
    let model = Fragile {
        threshold: f64::INFINITY,
    };
    let config = FitConfig::new(Diwhvi::elbo())
        .max_steps(20_000)
        .tol_rel_obj(0.01)
        .progress(false);
    let result = fit(&model, &MeanField::new(2), Adam::new(0.05), &config).unwrap();
    assert!(
        result.converged && result.steps < 20_000,
        "ran {} steps",
        result.steps
    );
    // The mean-field guide is exact here: loc → 1, scale → 0.5.
    assert!(
        result.best_params[..2]
            .iter()
            .all(|m| (m - 1.0).abs() < 0.1),
        "{:?}",
        result.best_params
    );
}

#[test]
fn the_stopping_rule_waits_for_min_steps() {
    let model = Fragile {
        threshold: f64::INFINITY,
    };
    let config = FitConfig::new(Diwhvi::elbo())
        .max_steps(20_000)
        .tol_rel_obj(0.01)
        .progress(false);
    let early = fit(&model, &MeanField::new(2), Adam::new(0.05), &config).unwrap();
    assert!(early.converged && early.steps < 5_000, "{}", early.steps);
    let waited = fit(
        &model,
        &MeanField::new(2),
        Adam::new(0.05),
        &config.clone().min_steps(5_000),
    )
    .unwrap();
    assert!(
        waited.converged && (5_000..20_000).contains(&waited.steps),
        "{}",
        waited.steps
    );
    // The same seed: the fit that waited took the same first steps.
    assert_eq!(waited.trace[..early.steps], early.trace[..]);
}

#[test]
fn mismatched_guides_and_parameters_are_typed_errors() {
    let model = Fragile {
        threshold: f64::INFINITY,
    };
    let config = FitConfig::default().max_steps(10).progress(false);
    assert_eq!(
        fit(&model, &MeanField::new(3), Adam::new(0.01), &config).unwrap_err(),
        FitError::Input(InputError::DimensionMismatch { model: 2, guide: 3 })
    );
    let guide = SemiImplicit::new(2, 2);
    let err = fit_from(&model, &guide, Adam::new(0.01), &config, vec![0.0; 3]).unwrap_err();
    assert_eq!(
        err,
        FitError::Input(InputError::WrongParameterCount {
            expected: guide.param_layout().len(),
            found: 3
        })
    );
    assert!(err.to_string().contains("but 3 were given"));
}

/// `log p = c` everywhere: NaN, ±∞ or a finite constant.
struct Constant(f64);

impl Model for Constant {
    fn layout(&self) -> Layout {
        Layout::new(vec![LatentSpec::scalar("x", Transform::Identity)])
    }

    fn log_joint<T: Scalar>(&self, _u: &[T]) -> T {
        T::constant(self.0)
    }
}

#[test]
fn importance_resampling_with_nothing_to_resample_is_a_typed_error() {
    use iwhvi::posterior::{Posterior, ResampleError};
    use rand::SeedableRng;
    let guide = MeanField::new(1);
    let params = [0.0, 0.0];
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let finite = Constant(0.0);
    let posterior = Posterior::new(&finite, &guide, &params).unwrap();
    assert_eq!(
        posterior
            .sample_importance_resampled(10, 0, 0, &mut rng)
            .unwrap_err(),
        ResampleError::NoProposals
    );
    let resampled = posterior
        .sample_importance_resampled(10, 5, 0, &mut rng)
        .unwrap();
    assert_eq!(resampled.draws.len(), 10);

    let nan = Constant(f64::NAN);
    let posterior = Posterior::new(&nan, &guide, &params).unwrap();
    assert_eq!(
        posterior
            .sample_importance_resampled(10, 5, 0, &mut rng)
            .unwrap_err(),
        ResampleError::NanWeight { proposal: 0 }
    );

    let infinite = Constant(f64::INFINITY);
    let posterior = Posterior::new(&infinite, &guide, &params).unwrap();
    assert_eq!(
        posterior
            .sample_importance_resampled(10, 5, 0, &mut rng)
            .unwrap_err(),
        ResampleError::InfiniteWeight { proposal: 0 }
    );

    let zero = Constant(f64::NEG_INFINITY);
    let posterior = Posterior::new(&zero, &guide, &params).unwrap();
    assert_eq!(
        posterior
            .sample_importance_resampled(10, 5, 0, &mut rng)
            .unwrap_err(),
        ResampleError::NoFiniteWeights { proposals: 5 }
    );
}

/// A fitted guide goes back beside the model it was fitted to, and only
/// that one.
#[test]
fn a_fitted_guide_rejoins_only_its_own_model() {
    use iwhvi::posterior::{FittedGuide, PersistError, Posterior};
    struct Positive;
    impl Model for Positive {
        fn layout(&self) -> Layout {
            Layout::new(vec![LatentSpec::scalar("x", Transform::Exp)])
        }
        fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
            -u[0].square()
        }
    }
    let guide = MeanField::new(1);
    let fitted = FittedGuide::new(guide, vec![0.0, 0.0], Constant(0.0).layout()).unwrap();
    let json = fitted.to_json().unwrap();
    let loaded = FittedGuide::<MeanField>::from_json(&json).unwrap();
    assert!(Posterior::from_fitted(&Constant(0.0), loaded.clone()).is_ok());
    assert!(matches!(
        Posterior::from_fitted(&Positive, loaded),
        Err(PersistError::LayoutMismatch)
    ));
}
