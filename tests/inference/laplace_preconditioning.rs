//! The Laplace approximation against closed forms, the `Preconditioned`
//! guide's density against the affine image it claims to be, and
//! preconditioning against posteriordb's reference on a posterior that
//! plain Gaussian guides do not fit (kilpisjarvi: intercept and slope on
//! calendar years, correlated at about −0.9999).

use iwhvi::distributions::{MultivariateDistribution, MultivariateNormal};
use iwhvi::fit::{FitConfig, fit};
use iwhvi::guide::{
    HierarchicalGuide, MeanField, PreconditionError, Preconditioned, SemiImplicit, Workspace,
};
use iwhvi::laplace::{LaplaceError, laplace};
use iwhvi::model::Model;
use iwhvi::objective::{Diwhvi, estimate_bound};
use iwhvi::optim::{Adam, LearningRate};
use iwhvi::posterior::Posterior;
use iwhvi::variational;
use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

use iwhvi_examples::posteriordb as models;

/// Known noise sd 1, prior beta_j ~ N(0, 2): the posterior is Gaussian.
#[variational]
struct Linear {
    #[data]
    x: DMatrix<f64>,
    #[latent(Normal(0.0, 2.0), len = x.ncols())]
    beta: Vec<f64>,
    #[observe(Normal(self.predictor(n, beta), 1.0), for n)]
    y: DVector<f64>,
}

impl Linear {
    fn predictor<T: iwhvi::Scalar>(&self, n: usize, beta: &[T]) -> T {
        beta.iter()
            .enumerate()
            .map(|(j, &b)| b * self.x[(n, j)])
            .sum()
    }
}

fn linear_data(seed: u64) -> (DMatrix<f64>, DVector<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (n, d) = (40, 3);
    let mut x = DMatrix::from_fn(n, d, |_, _| rng.sample::<f64, _>(StandardNormal));
    for i in 0..n {
        // Correlated columns, so the posterior is not axis-aligned.
        x[(i, 1)] = 0.9 * x[(i, 0)] + 0.3 * x[(i, 1)];
    }
    let beta = DVector::from_vec(vec![1.0, -0.5, 2.0]);
    let noise = DVector::from_fn(n, |_, _| rng.sample::<f64, _>(StandardNormal));
    let y = &x * beta + noise;
    (x, y)
}

#[test]
fn laplace_is_exact_on_a_gaussian_posterior() {
    let (x, y) = linear_data(1);
    let model = Linear::new(x.clone(), y.clone()).unwrap();
    let fit = laplace(&model).unwrap();

    // Closed form: Λ = XᵀX + I/4, mean = Λ⁻¹ Xᵀ y, y ~ N(0, I + 4 X Xᵀ).
    let d = x.ncols();
    let precision = x.transpose() * &x + DMatrix::identity(d, d) / 4.0;
    let covariance = precision.clone().try_inverse().unwrap();
    let mean = &covariance * x.transpose() * &y;
    let marginal = DMatrix::identity(y.len(), y.len()) + &x * x.transpose() * 4.0;
    let chol = marginal.cholesky().unwrap();
    let log_evidence = -0.5 * y.dot(&chol.solve(&y))
        - chol.l().diagonal().iter().map(|v| v.ln()).sum::<f64>()
        - 0.5 * y.len() as f64 * (2.0 * std::f64::consts::PI).ln();

    for j in 0..d {
        assert!(
            (fit.mode[j] - mean[j]).abs() < 1e-8,
            "mode {:?} vs {mean}",
            fit.mode
        );
    }
    let l = DMatrix::from_row_slice(d, d, &fit.scale_tril);
    let fitted = &l * l.transpose();
    for (a, b) in fitted.iter().zip(covariance.iter()) {
        assert!(
            (a - b).abs() < 1e-6 * b.abs().max(1e-3),
            "{fitted} vs {covariance}"
        );
    }
    assert!(
        (fit.log_evidence() - log_evidence).abs() < 1e-6,
        "Laplace {} vs exact {log_evidence}",
        fit.log_evidence()
    );
}

#[test]
fn a_funnel_has_no_mode() {
    let model = models::EightSchoolsCentered::posteriordb();
    let err = laplace(&model).unwrap_err();
    assert!(matches!(err, LaplaceError::NoMode { .. }), "{err:?}");
}

/// A preconditioned mean-field guide is `N(shift + L loc, (L S)(L S)ᵀ)`.
#[test]
fn the_preconditioned_density_is_the_affine_image() {
    let mut rng = StdRng::seed_from_u64(3);
    let d = 4;
    let shift: Vec<f64> = (0..d).map(|i| i as f64 - 1.5).collect();
    let mut scale = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..i {
            scale[i * d + j] = rng.random_range(-1.0..1.0);
        }
        scale[i * d + i] = rng.random_range(0.5..2.0);
    }
    let guide = Preconditioned::new(MeanField::new(d), shift.clone(), scale.clone()).unwrap();
    let params: Vec<f64> = (0..2 * d).map(|_| rng.random_range(-1.0..1.0)).collect();
    let (loc, log_scale) = params.split_at(d);

    let l = DMatrix::from_row_slice(d, d, &scale);
    let reference = MultivariateNormal::from_cholesky(
        DVector::from_column_slice(&shift) + &l * DVector::from_column_slice(loc),
        &l * DMatrix::from_diagonal(&DVector::from_iterator(
            d,
            log_scale.iter().map(|s| s.exp()),
        )),
    )
    .unwrap();
    let mut workspace = Workspace::new(&guide);
    for _ in 0..20 {
        let noise: Vec<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
        let mut u = vec![0.0; d];
        guide.sample_conditional(&params, &[], &noise, &mut u, &mut workspace);
        let ours = guide.log_conditional(&params, &[], &u, &mut workspace);
        let theirs = reference.log_prob(&u);
        assert!((ours - theirs).abs() < 1e-10, "{ours} vs {theirs} at {u:?}");
    }
}

/// With `shift = 0` and `L = I` the wrapper changes nothing: the same
/// bound, draw for draw, for a hierarchical guide with a reverse model.
#[test]
fn the_identity_preconditioner_changes_nothing() {
    let model = models::EightSchoolsNoncentered::posteriordb();
    let d = model.dim();
    let inner = SemiImplicit::new(d, 3);
    let mut identity = vec![0.0; d * d];
    for i in 0..d {
        identity[i * d + i] = 1.0;
    }
    let wrapped = Preconditioned::new(inner.clone(), vec![0.0; d], identity).unwrap();
    let params = inner.init_params(&mut StdRng::seed_from_u64(4));
    let objective = Diwhvi::new(2, 5);
    let a = estimate_bound(
        &model,
        &inner,
        &params,
        objective,
        20,
        &mut StdRng::seed_from_u64(5),
    )
    .unwrap();
    let b = estimate_bound(
        &model,
        &wrapped,
        &params,
        objective,
        20,
        &mut StdRng::seed_from_u64(5),
    )
    .unwrap();
    assert!((a.mean - b.mean).abs() < 1e-12, "{a} vs {b}");
}

#[test]
fn bad_preconditioners_are_typed_errors() {
    let guide = MeanField::new(2);
    let err = Preconditioned::new(guide.clone(), vec![0.0; 3], vec![1.0, 0.0, 0.0, 1.0]);
    assert!(matches!(
        err,
        Err(PreconditionError::DimensionMismatch {
            guide: 2,
            shift: 3,
            factor: 4
        })
    ));
    let err = Preconditioned::new(guide.clone(), vec![0.0; 2], vec![1.0, 0.5, 0.0, 1.0]);
    assert!(matches!(
        err,
        Err(PreconditionError::InvalidFactor {
            row: 0,
            column: 1,
            ..
        })
    ));
    let err = Preconditioned::new(guide.clone(), vec![0.0; 2], vec![1.0, 0.0, 0.3, -1.0]);
    assert!(matches!(
        err,
        Err(PreconditionError::InvalidFactor {
            row: 1,
            column: 1,
            ..
        })
    ));
    let err = Preconditioned::new(guide.clone(), vec![f64::NAN, 0.0], vec![1.0, 0.0, 0.0, 1.0]);
    assert!(matches!(
        err,
        Err(PreconditionError::InvalidShift { index: 0, .. })
    ));
    let once = Preconditioned::new(guide, vec![0.0; 2], vec![1.0, 0.0, 0.0, 1.0]).unwrap();
    let err = Preconditioned::new(once, vec![0.0; 2], vec![1.0, 0.0, 0.0, 1.0]);
    assert!(matches!(err, Err(PreconditionError::Nested)));
}

/// posteriordb's kilpisjarvi: with the same budget, mean-field in the
/// model's coordinates misses the posterior; preconditioned by the
/// Laplace approximation it matches NUTS's means to 0.1 sd and its sds to
/// 10 %.
#[test]
fn preconditioning_fits_an_ill_conditioned_posterior() {
    let model = models::Kilpisjarvi::posteriordb();
    let reference = reference("kilpisjarvi_mod-kilpisjarvi", &["alpha", "beta", "sigma"]);
    let config = FitConfig::new(Diwhvi::elbo())
        .max_steps(3000)
        .seed(1)
        .progress(false);
    let adam = || {
        Adam::with_schedule(LearningRate::Exponential {
            initial: 0.05,
            decay: 0.02,
            every: 3000,
        })
    };
    let plain = MeanField::new(3);
    let fitted = fit(&model, &plain, adam(), &config).unwrap();
    let posterior = Posterior::new(&model, &plain, &fitted.params).unwrap();
    let plain_errors = errors(&moments(&posterior), &reference);
    assert!(
        plain_errors[0].0 > 0.5,
        "plain mean-field was expected to miss alpha: {plain_errors:?}"
    );

    let preconditioned = laplace(&model)
        .unwrap()
        .precondition(MeanField::new(3))
        .unwrap();
    let fitted = fit(&model, &preconditioned, adam(), &config).unwrap();
    let posterior = Posterior::new(&model, &preconditioned, &fitted.params).unwrap();
    for (i, (mean_error, sd_ratio)) in errors(&moments(&posterior), &reference)
        .into_iter()
        .enumerate()
    {
        assert!(
            mean_error < 0.1,
            "parameter {i}: mean off by {mean_error} sd"
        );
        assert!(
            (sd_ratio - 1.0).abs() < 0.1,
            "parameter {i}: sd ratio {sd_ratio}"
        );
    }
}

/// (mean, sd) of alpha, beta and sigma from guide draws.
fn moments<G: HierarchicalGuide + Clone>(
    posterior: &Posterior<'_, models::Kilpisjarvi, G>,
) -> Vec<(f64, f64)> {
    let summary = posterior
        .sample(20_000, &mut StdRng::seed_from_u64(2))
        .unwrap()
        .summary();
    ["alpha", "beta", "sigma"]
        .iter()
        .map(|name| {
            let row = summary.get(name).unwrap();
            (row.mean, row.sd)
        })
        .collect()
}

/// (|mean − reference mean| / reference sd, sd / reference sd) per parameter.
fn errors(ours: &[(f64, f64)], reference: &[(f64, f64)]) -> Vec<(f64, f64)> {
    ours.iter()
        .zip(reference)
        .map(|((m, s), (rm, rs))| ((m - rm).abs() / rs, s / rs))
        .collect()
}

/// The reference (mean, sd) of each named parameter.
fn reference(posterior: &str, names: &[&str]) -> Vec<(f64, f64)> {
    let path = format!(
        "{}/../shared/posteriordb/{posterior}/reference.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    names
        .iter()
        .map(|name| {
            let p = &json["parameters"][*name];
            (p["mean"].as_f64().unwrap(), p["sd"].as_f64().unwrap())
        })
        .collect()
}

/// A model with no latents has a trivial approximation; a starting point
/// of the wrong length is a typed error.
#[test]
fn degenerate_inputs_are_handled() {
    use iwhvi::laplace::{LaplaceOptions, laplace_from};
    use iwhvi::model::{Layout, Model};
    struct Empty;
    impl Model for Empty {
        fn layout(&self) -> Layout {
            Layout::new(vec![])
        }
        fn log_joint<T: iwhvi::Scalar>(&self, _u: &[T]) -> T {
            T::constant(-1.5)
        }
    }
    let fit = laplace(&Empty).unwrap();
    assert!(fit.mode.is_empty() && fit.scale_tril.is_empty());
    assert_eq!(fit.log_evidence(), -1.5);

    let model = Linear::new(linear_data(2).0, linear_data(2).1).unwrap();
    let err = laplace_from(&model, &[0.0; 2], LaplaceOptions::default()).unwrap_err();
    assert_eq!(
        err,
        LaplaceError::WrongLength {
            expected: 3,
            found: 2
        }
    );
}

/// A saved preconditioned guide loads only through the constructor's
/// checks.
#[test]
fn a_saved_preconditioned_guide_is_validated_on_load() {
    let guide =
        Preconditioned::new(MeanField::new(2), vec![1.0, 2.0], vec![2.0, 0.0, 1.0, 1.0]).unwrap();
    let json = serde_json::to_string(&guide).unwrap();
    let loaded: Preconditioned<MeanField> = serde_json::from_str(&json).unwrap();
    assert_eq!(loaded, guide);
    let broken = json.replace("[2.0,0.0,1.0,1.0]", "[2.0,0.0,1.0,-1.0]");
    assert_ne!(broken, json);
    let err = serde_json::from_str::<Preconditioned<MeanField>>(&broken).unwrap_err();
    assert!(err.to_string().contains("positive diagonal"), "{err}");
}
