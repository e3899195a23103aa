//! Distribution parameters that can never be valid: data used as a
//! parameter is checked by the generated `new` (`DataError::InvalidParameter`
//! naming the field, the entry, the term and the distribution).

use iwhvi::model::DataError;
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
