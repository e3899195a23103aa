//! `#[variational]` on model structs: the generated log joint against a
//! hand-written one, data validation, and the generated latents.

use iwhvi::model::{DataError, Model};
use iwhvi::variational;
use iwhvi::{Dual, Scalar};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

#[path = "../examples/common/eight_schools.rs"]
mod hand_written;

#[variational]
struct EightSchools {
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
}

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
    let _ = Scalar::value(1.0);
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
