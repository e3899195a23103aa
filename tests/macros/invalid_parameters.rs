//! Distribution parameters that can never be valid: data used as a
//! parameter is checked by the generated `new` (`DataError::InvalidParameter`
//! naming the field, the entry, the term and the distribution); a log joint
//! that is not finite where the fit starts is `FitError::InvalidStart`,
//! naming the first invalid term, before the first step.

use iwhvi::distributions::DistributionError;
use iwhvi::fit::{FitConfig, FitError, fit};
use iwhvi::guide::MeanField;
use iwhvi::model::{DataError, InvalidTerm, Model, Term};
use iwhvi::objective::Diwhvi;
use iwhvi::optim::Adam;
use iwhvi::variational;

#[variational]
struct Scales {
    #[data]
    prior_scale: f64,
    #[data]
    sigma: Vec<f64>,
    #[data]
    tau_scale: Vec<f64>,
    #[data]
    n: Vec<i64>,
    #[data]
    p: Vec<f64>,
    #[latent(Normal(0.0, prior_scale))]
    mu: f64,
    #[latent(HalfNormal(tau_scale[j]), len = 2, for j)]
    tau: Vec<f64>,
    #[observe(Normal(mu + tau[0], sigma[i]), for i)]
    y: Vec<f64>,
    #[observe(Binomial(n[i], p[i]), for i)]
    k: Vec<u64>,
}

struct Data {
    prior_scale: f64,
    sigma: Vec<f64>,
    tau_scale: Vec<f64>,
    n: Vec<i64>,
    p: Vec<f64>,
}

impl Data {
    fn valid() -> Self {
        Self {
            prior_scale: 5.0,
            sigma: vec![1.0, 2.0, 0.5],
            // The prior reads the first two: the third is never used.
            tau_scale: vec![1.0, 3.0, -1.0],
            n: vec![10, 4],
            p: vec![0.25, 1.0],
        }
    }

    fn model(self) -> Result<Scales, DataError> {
        Scales::new(
            self.prior_scale,
            self.sigma,
            self.tau_scale,
            self.n,
            self.p,
            vec![0.1, -0.3, 2.0],
            vec![3, 4],
        )
    }
}

/// An edit of valid data and the error it must give: the field, the
/// entry, its value, the term, the distribution, the parameter and its
/// requirement.
type Case = (
    fn(&mut Data),
    (&'static str, usize, f64),
    (&'static str, &'static str, &'static str, &'static str),
);

#[test]
fn valid_data_parameters_construct() {
    assert!(Data::valid().model().is_ok());
}

#[test]
fn data_parameters_outside_their_domain_are_rejected_by_new() {
    let positive = "positive and finite";
    let cases: Vec<Case> = vec![
        (
            |d| d.prior_scale = 0.0,
            ("prior_scale", 0, 0.0),
            ("mu", "Normal", "scale", positive),
        ),
        (
            |d| d.tau_scale[1] = -2.0,
            ("tau_scale", 1, -2.0),
            ("tau", "HalfNormal", "scale", positive),
        ),
        (
            |d| d.sigma[2] = -1.0,
            ("sigma", 2, -1.0),
            ("y", "Normal", "scale", positive),
        ),
        (
            |d| d.sigma[0] = 0.0,
            ("sigma", 0, 0.0),
            ("y", "Normal", "scale", positive),
        ),
        (
            |d| d.p[1] = 1.5,
            ("p", 1, 1.5),
            ("k", "Binomial", "prob", "a probability in [0, 1]"),
        ),
        (
            |d| d.n[0] = -1,
            ("n", 0, -1.0),
            (
                "k",
                "Binomial",
                "total_count",
                "a non-negative whole number",
            ),
        ),
    ];
    for (edit, (field, index, value), (term, distribution, parameter, requirement)) in cases {
        let mut data = Data::valid();
        edit(&mut data);
        let expected = DataError::InvalidParameter {
            field,
            index,
            value,
            term,
            distribution,
            parameter,
            requirement,
        };
        assert_eq!(data.model().err(), Some(expected.clone()));
        let message = expected.to_string();
        assert!(
            message.contains(field) && message.contains(distribution),
            "{message}"
        );
    }
}

/// The scale of `theta`'s prior is `mu²`: 0 where the guides start
/// (`mu = 0`), which `new` cannot see.
#[variational]
struct ZeroScaleAtStart {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[latent(Normal(0.0, mu * mu), len = 3, for j)]
    theta: Vec<f64>,
    #[observe(Normal(theta[i], 1.0), for i)]
    y: Vec<f64>,
}

/// `y` under `Uniform(0, theta)`: `theta = e⁰ = 1` at the start, below the
/// second observation.
#[variational]
struct ObservationAboveTheBound {
    #[latent(Gamma(2.0, 1.0))]
    theta: f64,
    #[observe(Uniform(0.0, theta), for i)]
    y: Vec<f64>,
}

/// A factor that is `−∞` at the start (`ln 0`).
#[variational]
struct FactorAtStart {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[factor((mu * mu).ln())]
    penalty: (),
}

fn fit_error<M: Model>(model: &M) -> FitError {
    let config = FitConfig::new(Diwhvi::elbo()).max_steps(50).progress(false);
    fit(
        model,
        &MeanField::new(model.dim()),
        Adam::new(0.01),
        &config,
    )
    .expect_err("the fit cannot start")
}

fn invalid_start(error: FitError) -> InvalidTerm {
    match error {
        FitError::InvalidStart {
            value,
            term: Some(term),
        } => {
            assert!(!value.is_finite());
            term
        }
        other => panic!("expected InvalidStart naming a term, got {other:?}"),
    }
}

#[test]
fn a_prior_with_a_zero_scale_at_the_start_is_named_before_the_first_step() {
    let model = ZeroScaleAtStart::new(vec![0.1, -0.4, 0.3]).unwrap();
    let start = vec![0.0; model.dim()];
    assert_eq!(model.log_joint(&start), f64::NEG_INFINITY);
    let error = fit_error(&model);
    let message = error.to_string();
    let term = invalid_start(error);
    assert_eq!(
        term.term,
        Term::Prior {
            latent: "theta",
            element: Some(0)
        }
    );
    assert_eq!(
        term.cause,
        Some(DistributionError::InvalidParameter {
            distribution: "Normal",
            parameter: "scale",
            value: 0.0,
            requirement: "positive and finite",
        })
    );
    assert!(
        message.contains("the prior of `theta[0]`") && message.contains("`scale`"),
        "{message}"
    );
    // Away from the start every term is finite, and nothing is named.
    let elsewhere = [0.5, 0.1, 0.2, -0.3];
    assert!(model.log_joint(&elsewhere[..]).is_finite());
    assert_eq!(model.first_invalid_term(&elsewhere), None);
}

#[test]
fn an_observation_outside_a_parameter_dependent_support_is_named() {
    let model = ObservationAboveTheBound::new(vec![0.5, 3.0, 0.2]).unwrap();
    let term = invalid_start(fit_error(&model));
    assert_eq!(
        term.term,
        Term::Likelihood {
            field: "y",
            element: Some(1)
        }
    );
    assert_eq!((term.value, term.cause), (f64::NEG_INFINITY, None));
    // With theta = e² every observation lies inside (0, theta).
    assert_eq!(model.first_invalid_term(&[2.0]), None);
}

#[test]
fn a_factor_that_is_not_finite_at_the_start_is_named() {
    let model = FactorAtStart::new().unwrap();
    let term = invalid_start(fit_error(&model));
    assert_eq!(
        term.term,
        Term::Factor {
            field: "penalty",
            element: None
        }
    );
    assert_eq!(term.value, f64::NEG_INFINITY);
}

#[test]
fn a_model_finite_at_the_start_fits_as_before() {
    let model = ObservationAboveTheBound::new(vec![0.5, 0.9, 0.2]).unwrap();
    assert_eq!(model.first_invalid_term(&[0.0]), None);
    let config = FitConfig::new(Diwhvi::elbo()).max_steps(20).progress(false);
    assert!(fit(&model, &MeanField::new(1), Adam::new(0.01), &config).is_ok());
}
