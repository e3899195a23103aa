//! Log densities and their partial derivatives against
//! `../shared/reference/log_prob.json` (mpmath at 50 digits, cross-checked
//! with scipy.stats), through the dual number: x is direction 0 and the
//! parameters follow in the order the reference names them.

use crate::common::{central_difference, relative_error, shared_reference};
use iwhvi::distributions::*;
use iwhvi::{Dual, Scalar};
use nalgebra::{DMatrix, DVector};
use serde_json::Value;

/// The tolerance for values and derivatives.
const RTOL: f64 = 1e-10;

type D = Dual<4>;

/// `log p(x)` with x and the named parameters as duals (or x as a count).
fn log_prob(case: &Value) -> D {
    let name = case["dist"].as_str().unwrap();
    let params = &case["params"];
    let names: Vec<&str> = params
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let p = |key: &str| -> D {
        let direction = 1 + names.iter().position(|n| *n == key).unwrap();
        D::variable(params[key].as_f64().unwrap(), direction)
    };
    let x_real = || D::variable(case["x"].as_f64().unwrap(), 0);
    let x_count = || case["x"].as_f64().unwrap() as u64;
    match name {
        "Normal" => Normal::new(p("loc"), p("scale"))
            .unwrap()
            .log_prob(x_real()),
        "LogNormal" => LogNormal::new(p("loc"), p("scale"))
            .unwrap()
            .log_prob(x_real()),
        "HalfNormal" => HalfNormal::new(p("scale")).unwrap().log_prob(x_real()),
        "Cauchy" => Cauchy::new(p("loc"), p("scale"))
            .unwrap()
            .log_prob(x_real()),
        "HalfCauchy" => HalfCauchy::new(p("scale")).unwrap().log_prob(x_real()),
        "StudentT" => StudentT::new(p("df"), p("loc"), p("scale"))
            .unwrap()
            .log_prob(x_real()),
        "Laplace" => Laplace::new(p("loc"), p("scale"))
            .unwrap()
            .log_prob(x_real()),
        "Logistic" => Logistic::new(p("loc"), p("scale"))
            .unwrap()
            .log_prob(x_real()),
        "Exponential" => Exponential::new(p("rate")).unwrap().log_prob(x_real()),
        "Gamma" => Gamma::new(p("shape"), p("rate"))
            .unwrap()
            .log_prob(x_real()),
        "InverseGamma" => InverseGamma::new(p("shape"), p("scale"))
            .unwrap()
            .log_prob(x_real()),
        "Beta" => Beta::new(p("alpha"), p("beta")).unwrap().log_prob(x_real()),
        "Uniform" => Uniform::new(p("low"), p("high"))
            .unwrap()
            .log_prob(x_real()),
        "Weibull" => Weibull::new(p("shape"), p("scale"))
            .unwrap()
            .log_prob(x_real()),
        "Bernoulli" => Bernoulli::new(p("prob")).unwrap().log_prob(x_count()),
        "BernoulliLogit" => BernoulliLogit::new(p("logit")).unwrap().log_prob(x_count()),
        "Binomial" => {
            let n = params["total_count"].as_f64().unwrap() as u64;
            Binomial::new(n, p("prob")).unwrap().log_prob(x_count())
        }
        "Poisson" => Poisson::new(p("rate")).unwrap().log_prob(x_count()),
        "PoissonLog" => PoissonLog::new(p("log_rate")).unwrap().log_prob(x_count()),
        "NegativeBinomial2" => NegativeBinomial2::new(p("mean"), p("concentration"))
            .unwrap()
            .log_prob(x_count()),
        other => panic!("the reference names a distribution the test does not know: {other}"),
    }
}

fn reals(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn univariate_values_and_derivatives_match_mpmath() {
    let reference = shared_reference("log_prob.json");
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in reference["cases"].as_array().unwrap() {
        let name = case["dist"].as_str().unwrap();
        if matches!(name, "MultivariateNormal" | "Dirichlet") {
            continue;
        }
        let got = log_prob(case);
        let want = case["log_prob"].as_f64().unwrap();
        if relative_error(got.value, want) > RTOL {
            failures.push(format!(
                "{name} {}: log_prob {} vs {want}",
                case["params"], got.value
            ));
        }
        let names: Vec<&String> = case["params"].as_object().unwrap().keys().collect();
        for (key, g) in case["grad"].as_object().unwrap() {
            let direction = if key == "x" {
                0
            } else {
                1 + names.iter().position(|n| *n == key).unwrap()
            };
            let want = g.as_f64().unwrap();
            let got = got.tangent()[direction];
            // A derivative that vanishes exactly (Uniform in x) is compared absolutely.
            let ok = if want == 0.0 {
                got == 0.0
            } else {
                relative_error(got, want) <= RTOL
            };
            if !ok {
                failures.push(format!(
                    "{name} {}: ∂/∂{key} {got} vs {want}",
                    case["params"]
                ));
            }
        }
        checked += 1;
    }
    assert!(checked >= 200, "only {checked} cases read");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn multivariate_normal_matches_mpmath_from_covariance_and_cholesky() {
    let reference = shared_reference("log_prob.json");
    let mut checked = 0;
    for case in reference["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["dist"] == "MultivariateNormal")
    {
        let loc = reals(&case["params"]["loc"]);
        let rows: Vec<Vec<f64>> = case["params"]["covariance"]
            .as_array()
            .unwrap()
            .iter()
            .map(reals)
            .collect();
        let d = loc.len();
        let cov = DMatrix::from_fn(d, d, |i, j| rows[i][j]);
        let x = reals(&case["x"]);
        let want = case["log_prob"].as_f64().unwrap();
        let mvn = MultivariateNormal::from_covariance(DVector::from_vec(loc.clone()), cov.clone())
            .unwrap();
        let got = mvn.log_prob(&x);
        assert!(
            relative_error(got, want) <= RTOL,
            "MVN {case}: {got} vs {want}"
        );
        let l = cov.cholesky().unwrap().l();
        let by_factor = MultivariateNormal::from_cholesky(DVector::from_vec(loc), l).unwrap();
        assert!(relative_error(by_factor.log_prob(&x), want) <= RTOL);
        checked += 1;
    }
    assert!(checked >= 9);
}

#[test]
fn dirichlet_matches_mpmath() {
    let reference = shared_reference("log_prob.json");
    let mut checked = 0;
    for case in reference["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["dist"] == "Dirichlet")
    {
        let d = Dirichlet::new(reals(&case["params"]["concentration"])).unwrap();
        let got = d.log_prob(&reals(&case["x"]));
        let want = case["log_prob"].as_f64().unwrap();
        assert!(
            relative_error(got, want) <= RTOL,
            "Dirichlet {case}: {got} vs {want}"
        );
        checked += 1;
    }
    assert!(checked >= 9);
}

/// The reference gives multivariate values only; their derivatives are
/// checked against central finite differences.
#[test]
fn multivariate_derivatives_match_finite_differences() {
    // θ = (loc[2], covariance entries a, b, c of [[a, b], [b, c]], x[2])
    let mvn = |t: &[D]| -> D {
        let loc = DVector::from_vec(vec![t[0], t[1]]);
        let cov = DMatrix::from_row_slice(2, 2, &[t[2], t[3], t[3], t[4]]);
        MultivariateNormal::from_covariance(loc, cov)
            .unwrap()
            .log_prob(&t[5..7])
    };
    let mvn_f64 = |t: &[f64]| -> f64 {
        let loc = DVector::from_vec(vec![t[0], t[1]]);
        let cov = DMatrix::from_row_slice(2, 2, &[t[2], t[3], t[3], t[4]]);
        MultivariateNormal::from_covariance(loc, cov)
            .unwrap()
            .log_prob(&t[5..7])
    };
    let theta = [0.3, -1.2, 2.0, 0.4, 1.1, 1.5, -0.2];
    check_gradient(mvn, mvn_f64, &theta);

    let dirichlet = |t: &[D]| -> D {
        Dirichlet::new(t[..3].to_vec())
            .unwrap()
            .log_prob(&[t[3], t[4], -t[3] - t[4] + 1.0])
    };
    let dirichlet_f64 = |t: &[f64]| -> f64 {
        Dirichlet::new(t[..3].to_vec())
            .unwrap()
            .log_prob(&[t[3], t[4], 1.0 - t[3] - t[4]])
    };
    check_gradient(dirichlet, dirichlet_f64, &[1.5, 0.7, 3.2, 0.2, 0.3]);
}

fn check_gradient(f: impl Fn(&[D]) -> D, f64_f: impl Fn(&[f64]) -> f64, theta: &[f64]) {
    for i in 0..theta.len() {
        let duals: Vec<D> = theta
            .iter()
            .enumerate()
            .map(|(j, &v)| {
                if j == i {
                    D::variable(v, 0)
                } else {
                    D::constant(v)
                }
            })
            .collect();
        let got = f(&duals);
        assert_eq!(got.value, f64_f(theta));
        let fd = central_difference(&f64_f, theta, i);
        assert!(
            (got.tangent()[0] - fd).abs() <= 1e-7 * (1.0 + fd.abs()),
            "∂/∂θ{i}: {} vs {fd}",
            got.tangent()[0]
        );
    }
}

#[test]
fn logit_forms_agree_with_probability_forms() {
    for logit in [-30.0, -2.5, 0.0, 0.7, 12.0] {
        let prob = iwhvi::special::sigmoid(logit);
        for k in 0..=7 {
            let a = BinomialLogit::new(7, logit).unwrap().log_prob(k);
            let b = Binomial::new(7, prob).unwrap().log_prob(k);
            assert!(
                (a - b).abs() <= 1e-12 * a.abs().max(1.0),
                "k = {k}, logit = {logit}: {a} vs {b}"
            );
        }
        let logits = vec![logit, 0.0, -1.0];
        let lse = iwhvi::special::log_sum_exp(&logits);
        let probs: Vec<f64> = logits.iter().map(|l| (l - lse).exp()).collect();
        let c = Categorical::new(probs).unwrap();
        let cl = CategoricalLogits::new(logits).unwrap();
        for k in 0..3 {
            assert!((c.log_prob(k) - cl.log_prob(k)).abs() < 1e-12 * c.log_prob(k).abs().max(1.0));
        }
    }
    // Stable where the probability form underflows.
    assert_eq!(BinomialLogit::new(3, -800.0).unwrap().log_prob(3), -2400.0);
}

#[test]
fn outside_the_support_is_minus_infinity_never_nan() {
    let neg = f64::NEG_INFINITY;
    assert_eq!(LogNormal::new(0.0, 1.0).unwrap().log_prob(0.0), neg);
    assert_eq!(Exponential::new(1.0).unwrap().log_prob(-1e-300), neg);
    assert_eq!(Gamma::new(2.0, 1.0).unwrap().log_prob(-1.0), neg);
    assert_eq!(Gamma::new(2.0, 1.0).unwrap().log_prob(0.0), neg);
    assert_eq!(Gamma::new(0.5, 1.0).unwrap().log_prob(0.0), f64::INFINITY);
    assert!((Gamma::new(1.0, 2.0).unwrap().log_prob(0.0) - 2f64.ln()).abs() < 1e-15);
    assert!((Beta::new(1.0, 3.0).unwrap().log_prob(0.0) - 3f64.ln()).abs() < 1e-15);
    assert_eq!(Beta::new(2.0, 3.0).unwrap().log_prob(1.0), neg);
    assert!((Weibull::new(1.0, 2.0).unwrap().log_prob(0.0) + 2f64.ln()).abs() < 1e-15);
    assert_eq!(InverseGamma::new(2.0, 1.0).unwrap().log_prob(0.0), neg);
    assert_eq!(Uniform::new(0.0, 1.0).unwrap().log_prob(1.5), neg);
    assert_eq!(Bernoulli::new(0.0).unwrap().log_prob(1), neg);
    assert_eq!(Bernoulli::new(0.0).unwrap().log_prob(0), 0.0);
    assert_eq!(Binomial::new(4, 1.0).unwrap().log_prob(4), 0.0);
    assert_eq!(Binomial::new(4, 1.0).unwrap().log_prob(3), neg);
    assert_eq!(Binomial::new(4, 0.5).unwrap().log_prob(5), neg);
    assert_eq!(Categorical::new(vec![1.0, 0.0]).unwrap().log_prob(1), neg);
    assert_eq!(
        Dirichlet::new(vec![2.0, 2.0])
            .unwrap()
            .log_prob(&[1.0, 0.0]),
        neg
    );
    assert_eq!(Poisson::new(3.0).unwrap().log_prob(0), -3.0);
    // Infinite values are outside every continuous support.
    let inf = f64::INFINITY;
    let at_infinity = [
        Normal::new(0.0, 1.0).unwrap().log_prob(inf),
        LogNormal::new(0.0, 1.0).unwrap().log_prob(inf),
        HalfNormal::new(1.0).unwrap().log_prob(inf),
        Cauchy::new(0.0, 1.0).unwrap().log_prob(inf),
        HalfCauchy::new(1.0).unwrap().log_prob(inf),
        StudentT::new(3.0, 0.0, 1.0).unwrap().log_prob(-inf),
        Laplace::new(0.0, 1.0).unwrap().log_prob(inf),
        Logistic::new(0.0, 1.0).unwrap().log_prob(inf),
        Exponential::new(1.0).unwrap().log_prob(inf),
        Gamma::new(2.0, 1.0).unwrap().log_prob(inf),
        InverseGamma::new(2.0, 1.0).unwrap().log_prob(inf),
        Weibull::new(2.0, 1.0).unwrap().log_prob(inf),
        Uniform::new(0.0, 1.0).unwrap().log_prob(inf),
    ];
    assert!(at_infinity.iter().all(|&v| v == neg), "{at_infinity:?}");
    // Far tails stay finite.
    assert!(Normal::new(0.0, 1.0).unwrap().log_prob(1e150).is_finite());
    assert!(Logistic::new(0.0, 1.0).unwrap().log_prob(-1e4).is_finite());
    assert!(PoissonLog::new(300.0).unwrap().log_prob(10).is_finite());
}

#[test]
fn invalid_parameters_are_typed_errors_naming_the_parameter() {
    let message = |e: DistributionError| e.to_string();
    assert_eq!(
        message(Normal::new(0.0, -1.0).unwrap_err()),
        "Normal: parameter `scale` must be positive and finite, got -1"
    );
    assert!(
        message(Normal::new(f64::NAN, 1.0).unwrap_err()).contains("`loc` must be finite, got NaN")
    );
    assert!(
        message(Bernoulli::new(1.5).unwrap_err())
            .contains("`prob` must be a probability in [0, 1], got 1.5")
    );
    assert!(
        message(Uniform::new(2.0, 1.0).unwrap_err()).contains("`high` must be greater than `low`")
    );
    assert!(message(StudentT::new(0.0, 0.0, 1.0).unwrap_err()).contains("`df`"));
    assert!(message(Gamma::new(1.0, f64::INFINITY).unwrap_err()).contains("`rate`"));
    assert!(
        message(Dirichlet::new(vec![1.0, -2.0]).unwrap_err())
            .contains("`concentration` must be positive")
    );
    assert!(message(Categorical::new(vec![0.5, 0.6]).unwrap_err()).contains("summing to 1"));
    let not_pd = MultivariateNormal::from_covariance(
        DVector::from_vec(vec![0.0, 0.0]),
        DMatrix::from_row_slice(2, 2, &[1.0, 2.0, 2.0, 1.0]),
    )
    .unwrap_err();
    assert!(matches!(
        not_pd,
        DistributionError::NotPositiveDefinite {
            parameter: "covariance",
            ..
        }
    ));
    assert!(message(not_pd).contains("not positive definite"));
    let asymmetric = MultivariateNormal::from_covariance(
        DVector::from_vec(vec![0.0, 0.0]),
        DMatrix::from_row_slice(2, 2, &[1.0, 0.5, 0.2, 1.0]),
    )
    .unwrap_err();
    assert!(message(asymmetric).contains("symmetric"));
    let wrong_len =
        MultivariateNormal::from_cholesky(DVector::from_vec(vec![0.0; 3]), DMatrix::identity(2, 2))
            .unwrap_err();
    assert!(matches!(
        wrong_len,
        DistributionError::DimensionMismatch {
            expected: 3,
            found: 2,
            ..
        }
    ));
    // Dual parameters are checked on their value.
    assert!(Normal::new(D::constant(0.0), D::variable(-1.0, 0)).is_err());
}

#[test]
fn supports_are_types_and_values() {
    use iwhvi::distributions::supports::{Positive, Real, SupportKind};
    use iwhvi::transforms::Transform;
    fn support_name<T: Scalar, Dist: Distribution<T>>(_: &Dist) -> &'static str {
        <Dist::Support as SupportKind>::NAME
    }
    fn requires_positive<Dist: Distribution<f64, Support = Positive>>(_: &Dist) {}
    fn requires_real<Dist: Distribution<f64, Support = Real>>(_: &Dist) {}
    requires_positive(&LogNormal::new(0.0, 1.0).unwrap());
    requires_positive(&Gamma::new(1.0, 1.0).unwrap());
    requires_real(&Normal::new(0.0, 1.0).unwrap());
    assert_eq!(support_name(&Beta::new(1.0, 1.0).unwrap()), "unit interval");
    assert_eq!(
        support_name(&Poisson::new(1.0).unwrap()),
        "non-negative integer"
    );
    let u = Uniform::new(-1.0, 2.0).unwrap();
    assert_eq!(
        u.support(),
        Support::Interval {
            low: -1.0,
            high: 2.0
        }
    );
    assert_eq!(
        u.support().default_transform(),
        Some(Transform::Interval {
            low: -1.0,
            high: 2.0
        })
    );
    assert_eq!(
        Dirichlet::new(vec![1.0, 1.0])
            .unwrap()
            .support()
            .default_transform(),
        Some(Transform::StickBreaking)
    );
    assert_eq!(
        Beta::new(1.0, 1.0).unwrap().support().default_transform(),
        Some(Transform::Interval {
            low: 0.0,
            high: 1.0
        })
    );
    assert_eq!(
        Poisson::new(1.0).unwrap().support().default_transform(),
        None
    );
}
