//! `#[variational]` on model structs: the generated log joint against a
//! hand-written one, data validation, and the generated latents.

use iwhvi::model::{DataError, Model};
use iwhvi::variational;
use iwhvi::{Dual, Scalar};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use iwhvi_examples::hand_written;
use iwhvi_examples::noncentred::{EightSchools, EightSchoolsLatents};

fn eight_schools() -> EightSchools {
    EightSchools::new(hand_written::SIGMA.to_vec(), hand_written::Y.to_vec()).unwrap()
}

#[test]
fn generated_log_joint_equals_the_hand_written_one() {
    let generated = eight_schools();
    assert_eq!(generated.dim(), hand_written::EightSchools.dim());
    assert_eq!(generated.layout(), hand_written::EightSchools.layout());
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..100 {
        let u: Vec<f64> = (0..10).map(|_| rng.random_range(-3.0..3.0)).collect();
        let (a, b) = (
            generated.log_joint(&u),
            hand_written::EightSchools.log_joint(&u),
        );
        assert!(
            (a - b).abs() <= 1e-12 * b.abs(),
            "generated {a} vs hand-written {b} at {u:?}"
        );
        let duals: Vec<Dual<10>> = u
            .iter()
            .enumerate()
            .map(|(i, &v)| Dual::variable(v, i))
            .collect();
        let (ga, gb) = (
            generated.log_joint(&duals),
            hand_written::EightSchools.log_joint(&duals),
        );
        for (x, y) in ga.tangent().iter().zip(gb.tangent()) {
            assert!(
                (x - y).abs() <= 1e-12 * (1.0 + y.abs()),
                "gradients differ: {x} vs {y}"
            );
        }
    }
}

#[test]
fn latents_are_named_and_constrained() {
    let model = eight_schools();
    let mut u = vec![0.0; 10];
    u[0] = 1.5;
    u[1] = 2f64.ln();
    u[2] = -0.25;
    let latents = model.latents(&u).unwrap();
    assert_eq!(latents.mu, 1.5);
    assert!((latents.tau - 2.0).abs() < 1e-15);
    assert_eq!(latents.theta_tilde.len(), 8);
    assert_eq!(latents.theta_tilde[0], -0.25);
    assert!(model.latents(&[0.0; 3]).is_err());
    let back = model.unconstrain(&latents).unwrap();
    for (a, b) in back.iter().zip(&u) {
        assert!((a - b).abs() < 1e-15);
    }
    let negative = EightSchoolsLatents {
        tau: -1.0,
        ..latents
    };
    assert!(
        model
            .unconstrain(&negative)
            .unwrap_err()
            .to_string()
            .contains("tau")
    );
}

#[test]
fn data_are_validated_with_errors_naming_the_field() {
    let err = EightSchools::new(vec![1.0; 8], vec![0.0; 7]).err().unwrap();
    assert_eq!(
        err,
        DataError::LengthMismatch {
            field: "sigma",
            found: 8,
            other: "y",
            expected: 7
        }
    );
    assert!(err.to_string().contains("`sigma` has length 8"));
    let mut y = hand_written::Y.to_vec();
    y[3] = f64::NAN;
    let err = EightSchools::new(hand_written::SIGMA.to_vec(), y)
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            DataError::NotFinite {
                field: "y",
                index: 3,
                ..
            }
        ),
        "{err:?}"
    );
}

/// Counts with a log-link, an array latent, a fixed-bound prior and a
/// data scalar.
#[variational]
struct PoissonRegression {
    #[data]
    x: Vec<f64>,
    #[data]
    exposure: f64,
    #[latent(Normal(0.0, 2.0))]
    beta: [f64; 2],
    #[latent(Uniform(0.0, 3.0))]
    dispersion: f64,
    #[observe(PoissonLog(beta[0] + beta[1] * x[i] + exposure.ln()), for i)]
    counts: Vec<u64>,
    #[observe(Gamma(dispersion, 1.0))]
    waiting: f64,
}

#[test]
fn discrete_likelihoods_arrays_and_bounded_latents() {
    use iwhvi::distributions::{Distribution, Gamma, Normal, PoissonLog, Uniform};
    use iwhvi::transforms::Transform;
    let x = vec![0.0, 0.5, 1.0, 1.5];
    let counts = vec![1, 3, 2, 7];
    let model = PoissonRegression::new(x.clone(), 2.0, counts.clone(), 0.7).unwrap();
    assert_eq!(model.dim(), 3);
    let u = [0.3, -0.2, 0.4];
    let (dispersion, log_jacobian) = Transform::Interval {
        low: 0.0,
        high: 3.0,
    }
    .forward_scalar(u[2]);
    let mut expected = log_jacobian
        + Normal::new(0.0, 2.0).unwrap().log_prob(u[0])
        + Normal::new(0.0, 2.0).unwrap().log_prob(u[1])
        + Uniform::new(0.0, 3.0).unwrap().log_prob(dispersion);
    for (xi, &k) in x.iter().zip(&counts) {
        expected += PoissonLog::new(u[0] + u[1] * xi + 2f64.ln())
            .unwrap()
            .log_prob(k);
    }
    expected += Gamma::new(dispersion, 1.0).unwrap().log_prob(0.7);
    let got = model.log_joint(&u);
    assert!(
        (got - expected).abs() <= 1e-12 * expected.abs(),
        "{got} vs {expected}"
    );
    assert_eq!(model.latents(&u).unwrap().beta, [0.3, -0.2]);

    let err = PoissonRegression::new(x, 2.0, counts, -1.0).err().unwrap();
    assert!(
        matches!(
            err,
            DataError::OutsideSupport {
                field: "waiting",
                distribution: "Gamma",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn the_generated_model_fits() {
    use iwhvi::fit::{FitConfig, fit};
    use iwhvi::guide::MeanField;
    use iwhvi::objective::Diwhvi;
    use iwhvi::optim::Adam;
    let model = eight_schools();
    let config = FitConfig::new(Diwhvi::elbo())
        .max_steps(300)
        .progress(false);
    let fitted = fit(&model, &MeanField::new(10), Adam::new(0.02), &config).unwrap();
    assert!(fitted.trace.iter().all(|b| b.is_finite()));
    assert!(fitted.smoothed.last().unwrap() > fitted.smoothed.first().unwrap());
}

/// Mean and variance.
fn moments(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (
        mean,
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0),
    )
}

#[test]
fn prior_draws_match_the_priors_moments() {
    let model = eight_schools();
    let mut rng = StdRng::seed_from_u64(3);
    let n = 20_000;
    let draws: Vec<EightSchoolsLatents> = (0..n)
        .map(|_| model.sample_prior(&mut rng).unwrap())
        .collect();
    let (mu_mean, mu_var) = moments(&draws.iter().map(|d| d.mu).collect::<Vec<_>>());
    // mu ~ N(0, 5): |z| < 4.5 for the mean, the variance within 5 %.
    assert!(
        mu_mean.abs() < 4.5 * 5.0 / (n as f64).sqrt(),
        "prior mean of mu {mu_mean}"
    );
    assert!(
        (mu_var / 25.0 - 1.0).abs() < 0.05,
        "prior variance of mu {mu_var}"
    );
    // tau ~ HalfCauchy(5): median 5.
    let mut tau: Vec<f64> = draws.iter().map(|d| d.tau).collect();
    tau.sort_by(f64::total_cmp);
    assert!(
        (tau[n / 2] / 5.0 - 1.0).abs() < 0.05,
        "prior median of tau {}",
        tau[n / 2]
    );
    let (t_mean, t_var) = moments(&draws.iter().map(|d| d.theta_tilde[3]).collect::<Vec<_>>());
    assert!(t_mean.abs() < 0.04 && (t_var - 1.0).abs() < 0.05);
    assert!(draws.iter().all(|d| d.theta_tilde.len() == 8));
}

#[test]
fn simulated_observations_follow_the_likelihood() {
    let model = eight_schools();
    let latents = EightSchoolsLatents {
        mu: 2.0,
        tau: 3.0,
        theta_tilde: vec![1.0; 8],
    };
    let mut rng = StdRng::seed_from_u64(4);
    let n = 20_000;
    let first: Vec<f64> = (0..n)
        .map(|_| model.simulate(&latents, &mut rng).unwrap().y[0])
        .collect();
    let (mean, var) = moments(&first);
    // y₀ ~ N(mu + tau θ₀, σ₀ = 15)
    assert!(
        (mean - 5.0).abs() < 4.5 * 15.0 / (n as f64).sqrt(),
        "simulated mean {mean}"
    );
    assert!((var / 225.0 - 1.0).abs() < 0.05, "simulated variance {var}");

    // Counts, with the predictive of a draw read back from named latents.
    let model = PoissonRegression::new(vec![0.0, 1.0], 1.0, vec![0, 0], 1.0).unwrap();
    let named = model.layout().constrain(&[1.0, 0.5, 0.0]).unwrap();
    let typed = model.typed_latents(&named).unwrap();
    assert_eq!(typed.beta, [1.0, 0.5]);
    let sims: Vec<f64> = (0..n)
        .map(|_| model.simulate(&typed, &mut rng).unwrap().counts[1] as f64)
        .collect();
    let (mean, _) = moments(&sims);
    let rate = 1.5f64.exp();
    assert!(
        (mean - rate).abs() < 4.5 * (rate / n as f64).sqrt(),
        "simulated count mean {mean} vs {rate}"
    );
}

mod user {
    //! A family the runtime does not have, declared by the user through
    //! the core's `Distribution` trait.
    use iwhvi::Scalar;
    use iwhvi::distributions::supports::{Positive, Real};
    use iwhvi::distributions::{Distribution, DistributionError, Support};
    use rand::{Rng, RngExt};

    /// Gumbel(loc, scale): `log p(x) = −z − e^{−z} − ln scale`, `z = (x − loc)/scale`.
    pub struct Gumbel<T: Scalar> {
        loc: T,
        scale: T,
    }

    impl<T: Scalar> Gumbel<T> {
        pub fn new(loc: T, scale: T) -> Result<Self, DistributionError> {
            if scale.value().is_nan() || scale.value() <= 0.0 {
                return Err(DistributionError::InvalidParameter {
                    distribution: "Gumbel",
                    parameter: "scale",
                    value: scale.value(),
                    requirement: "positive",
                });
            }
            Ok(Self { loc, scale })
        }
    }

    impl<T: Scalar> Distribution<T> for Gumbel<T> {
        type Value = T;
        type Support = Real;
        fn log_prob(&self, x: T) -> T {
            let z = (x - self.loc) / self.scale;
            -z - (-z).exp() - self.scale.ln()
        }
        fn support(&self) -> Support {
            Support::Real
        }
    }

    impl rand::distr::Distribution<f64> for Gumbel<f64> {
        fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
            let u: f64 = rng.random_range(f64::EPSILON..1.0);
            self.loc - self.scale * (-u.ln()).ln()
        }
    }

    /// The Rayleigh distribution with scale σ, on the positive reals.
    pub struct Rayleigh<T: Scalar> {
        scale: T,
    }

    impl<T: Scalar> Rayleigh<T> {
        pub fn new(scale: T) -> Result<Self, DistributionError> {
            Ok(Self { scale })
        }
    }

    impl<T: Scalar> Distribution<T> for Rayleigh<T> {
        type Value = T;
        type Support = Positive;
        fn log_prob(&self, x: T) -> T {
            let s2 = self.scale.square();
            x.ln() - s2.ln() - x.square() / (s2 * 2.0)
        }
        fn support(&self) -> Support {
            Support::Positive
        }
    }

    impl rand::distr::Distribution<f64> for Rayleigh<f64> {
        fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
            let u: f64 = rng.random_range(f64::EPSILON..1.0);
            self.scale * (-2.0 * u.ln()).sqrt()
        }
    }
}

#[variational]
struct WithUserFamilies {
    #[latent(user::Gumbel(0.0, 2.0))]
    location: f64,
    #[latent(user::Rayleigh(1.5))]
    spread: f64,
    #[observe(user::Gumbel(location, spread), for i)]
    y: Vec<f64>,
}

#[test]
fn user_defined_distributions_enter_through_the_trait() {
    use iwhvi::distributions::Distribution;
    let y = vec![0.3, 1.7, -0.4];
    let model = WithUserFamilies::new(y.clone()).unwrap();
    // The Rayleigh's positive support gives `spread` the exp transform.
    assert_eq!(
        model.layout().blocks()[1].spec.transform,
        iwhvi::transforms::Transform::Exp
    );
    let u = [0.4, -0.2];
    let spread = u[1].exp();
    let mut expected = user::Gumbel::new(0.0, 2.0).unwrap().log_prob(u[0])
        + user::Rayleigh::new(1.5).unwrap().log_prob(spread)
        + u[1];
    for &yi in &y {
        expected += user::Gumbel::new(u[0], spread).unwrap().log_prob(yi);
    }
    let got = model.log_joint(&u);
    assert!(
        (got - expected).abs() <= 1e-12 * expected.abs(),
        "{got} vs {expected}"
    );
    let draw = model.sample_prior(&mut StdRng::seed_from_u64(9)).unwrap();
    assert!(draw.spread > 0.0);
}

#[variational]
struct WithDerived {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfCauchy(5.0))]
    tau: f64,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    theta_tilde: Vec<f64>,
    #[observe(Normal(mu + tau * theta_tilde[j], sigma[j]), for j)]
    y: Vec<f64>,
    #[derived(mu + tau * theta_tilde[j], for j)]
    theta: [f64; 8],
    #[derived(tau.ln())]
    log_tau: f64,
}

#[test]
fn derived_quantities_are_reported_with_the_posterior() {
    use iwhvi::guide::MeanField;
    use iwhvi::posterior::Posterior;
    let model = WithDerived::new(hand_written::SIGMA.to_vec(), hand_written::Y.to_vec()).unwrap();
    let latents = WithDerivedLatents {
        mu: 1.0,
        tau: 2.0,
        theta_tilde: vec![0.5; 8],
    };
    let derived = model.derived_quantities(&latents);
    assert_eq!(derived.theta, [2.0; 8]);
    assert!((derived.log_tau - 2f64.ln()).abs() < 1e-15);

    let guide = MeanField::new(10);
    let params: Vec<f64> = (0..20)
        .map(|i| if i < 10 { 0.1 * i as f64 } else { -1.0 })
        .collect();
    let posterior = Posterior::new(&model, &guide, &params).unwrap();
    let draws = posterior
        .sample(200, &mut StdRng::seed_from_u64(2))
        .unwrap();
    let derived = posterior.derived(&draws).unwrap();
    assert_eq!(derived.len(), 200);
    assert_eq!(derived.names()[0], "theta[0]");
    assert_eq!(derived.names()[8], "log_tau");
    for i in 0..200 {
        let row = draws.latents(i);
        let (mu, tau, t0) = (
            row.get("mu").unwrap()[0],
            row.get("tau").unwrap()[0],
            row.get("theta_tilde").unwrap()[0],
        );
        assert!((derived.row(i)[0] - (mu + tau * t0)).abs() < 1e-12);
    }
    assert!(derived.summary().get("log_tau").is_some());
}

/// Families over whole vectors: a Dirichlet prior on a simplex latent and
/// a multivariate normal observation.
#[variational]
struct WithVectors {
    #[data]
    alpha: Vec<f64>,
    #[data]
    cov: nalgebra::DMatrix<f64>,
    #[latent(Dirichlet(alpha), len = alpha.len())]
    weights: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = 2)]
    center: Vec<f64>,
    #[observe(MultivariateNormal(center, cov))]
    point: Vec<f64>,
}

#[test]
fn vector_families_as_priors_and_likelihoods() {
    use iwhvi::distributions::{
        Dirichlet, Distribution, MultivariateDistribution, MultivariateNormal, Normal,
    };
    use iwhvi::transforms::Transform;
    use nalgebra::{DMatrix, DVector};
    let alpha = vec![2.0, 1.0, 3.0];
    let cov = DMatrix::from_row_slice(2, 2, &[1.0, 0.3, 0.3, 2.0]);
    let point = vec![0.4, -1.1];
    let model = WithVectors::new(alpha.clone(), cov.clone(), point.clone()).unwrap();
    assert_eq!(model.dim(), 4);
    assert_eq!(
        model.layout().blocks()[0].spec.transform,
        Transform::StickBreaking
    );
    let u = [0.2, -0.5, 0.3, 0.7];
    let mut weights = vec![0.0; 3];
    let log_jacobian = Transform::StickBreaking.forward(&u[..2], &mut weights);
    let center = [u[2], u[3]];
    let expected = log_jacobian
        + Dirichlet::new(alpha).unwrap().log_prob(&weights)
        + Normal::new(0.0, 1.0).unwrap().log_prob(center[0])
        + Normal::new(0.0, 1.0).unwrap().log_prob(center[1])
        + MultivariateNormal::from_covariance(DVector::from_column_slice(&center), cov)
            .unwrap()
            .log_prob(&point);
    let got = model.log_joint(&u);
    assert!(
        (got - expected).abs() <= 1e-12 * expected.abs(),
        "{got} vs {expected}"
    );

    let mut rng = StdRng::seed_from_u64(5);
    let prior = model.sample_prior(&mut rng).unwrap();
    assert!((prior.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    let simulated = model.simulate(&prior, &mut rng).unwrap();
    assert_eq!(simulated.point.len(), 2);
}

/// A hand-built layout whose bound uses a later or a vector latent: the
/// error names both latents.
#[test]
fn a_bound_on_an_unavailable_latent_is_a_named_error() {
    use iwhvi::model::{AffineBound, DependentBounds, LatentSpec, Layout, LayoutError};
    use iwhvi::transforms::Transform;
    let bounded = |on: &str| LatentSpec {
        dependent_bounds: Some(DependentBounds {
            low: AffineBound::constant(0.0),
            high: AffineBound {
                constant: 1.0,
                terms: vec![(on.to_string(), -1.0)],
            },
        }),
        ..LatentSpec::scalar("beta", Transform::Identity)
    };
    for layout in [
        // `alpha` comes after `beta`.
        Layout::new(vec![
            bounded("alpha"),
            LatentSpec::scalar("alpha", Transform::Identity),
        ]),
        // `alpha` is a vector.
        Layout::new(vec![
            LatentSpec::vector("alpha", 2, Transform::Identity),
            bounded("alpha"),
        ]),
    ] {
        let u = vec![0.1; layout.dim()];
        assert_eq!(
            layout.constrain(&u).unwrap_err(),
            LayoutError::BoundOnUnavailableLatent {
                latent: "beta".into(),
                depends_on: "alpha".into(),
            }
        );
    }
}

/// One latent per kind of support: the transforms come from iwhvi-core's
/// description of the supports, whatever the family.
#[variational]
struct EverySupport {
    #[data]
    alpha: Vec<f64>,
    #[latent(Normal(0.0, 1.0))]
    real: f64,
    #[latent(HalfNormal(1.0))]
    positive: f64,
    #[latent(Beta(2.0, 2.0))]
    unit: f64,
    #[latent(Uniform(-1.0, 3.0))]
    interval: f64,
    #[latent(Flat())]
    flat: f64,
    #[latent(FlatPositive())]
    flat_positive: f64,
    #[latent(Dirichlet(alpha), len = alpha.len())]
    simplex: Vec<f64>,
}

#[test]
fn each_latents_transform_is_its_supports_default_in_core() {
    use iwhvi::distributions::{
        Beta, Dirichlet, Distribution, HalfNormal, MultivariateDistribution, Normal, Support,
        Uniform,
    };
    let model = EverySupport::new(vec![1.0, 2.0, 3.0]).unwrap();
    let transforms: Vec<_> = model
        .layout()
        .blocks()
        .iter()
        .map(|b| Some(b.spec.transform))
        .collect();
    let supports = [
        Distribution::<f64>::support(&Normal::new(0.0, 1.0).unwrap()),
        Distribution::<f64>::support(&HalfNormal::new(1.0).unwrap()),
        Distribution::<f64>::support(&Beta::new(2.0, 2.0).unwrap()),
        Distribution::<f64>::support(&Uniform::new(-1.0, 3.0).unwrap()),
        Support::Real,
        Support::Positive,
        MultivariateDistribution::<f64>::support(&Dirichlet::new(vec![1.0, 2.0, 3.0]).unwrap()),
    ];
    let expected: Vec<_> = supports.iter().map(Support::default_transform).collect();
    assert_eq!(transforms, expected);
}

/// `from_json`: the data fields by name, with typed errors naming the
/// variable; the constructor's checks still apply.
#[test]
fn from_json_reads_stan_data_and_names_what_is_wrong() {
    use iwhvi::data::StanDataError;
    #[variational]
    #[derive(Debug)]
    struct Counts {
        #[data]
        exposure: Vec<f64>,
        #[latent(Normal(0.0, 1.0))]
        rate: f64,
        #[observe(PoissonLog(rate + exposure[i].ln()), for i)]
        y: Vec<u64>,
    }
    let model = Counts::from_json(r#"{"N": 2, "exposure": [1.0, 2.5], "y": [3, 0]}"#).unwrap();
    assert_eq!(
        (model.exposure.clone(), model.y.clone()),
        (vec![1.0, 2.5], vec![3, 0])
    );
    let err = Counts::from_json(r#"{"exposure": [1.0, 2.5], "y": [3, -1]}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`y[1]` should be a non-negative integer, but is the number -1"
    );
    let err = Counts::from_json(r#"{"exposure": [1.0, 2.5]}"#).unwrap_err();
    assert!(
        matches!(err, StanDataError::Missing { ref name, .. } if name == "y"),
        "{err}"
    );
    // Read, but rejected by the constructor: lengths differ.
    let err = Counts::from_json(r#"{"exposure": [1.0], "y": [3, 0]}"#).unwrap_err();
    assert!(matches!(err, StanDataError::Invalid(_)), "{err}");
}
