//! Bayesian logistic regression on synthetic data with known
//! coefficients: y_i ~ Bernoulli(σ((X beta)_i)), beta_j ~ N(0, 2.5).
//!
//! Fitted with a mean-field Gaussian on the ELBO and with a semi-implicit
//! guide on the DIWHVI bound. Each guide's draws are then
//! importance-resampled (weights p(x, u) / q(u), with q's density bounded
//! through the guide's reverse model) so that the reported means, sds and
//! 90% intervals correct what the guide misses; the output says whether
//! each interval covers the coefficient the data were simulated from, with
//! the ESS and Pareto k̂ of the weights, the bound at the fitted guide and
//! a log-evidence estimate.
//!
//! Measured with these seeds (n = 300, about 1.5 s): the mean-field guide's
//! own sds for the correlated pair are too small (0.142 and 0.129 against
//! 0.181 and 0.157 after resampling; ESS 4819 of 20000, k̂ 0.62); the
//! semi-implicit guide's are closer (0.165 and 0.164 against 0.182 and
//! 0.162; ESS 17321, k̂ 0.34) and its bound, −196.057 ± 0.005 (M = 1, K = 64), is above the ELBO,
//! −196.288 ± 0.014; the log-evidence estimates agree (−196.032 ± 0.002
//! and −196.039 ± 0.011). For these data x2's coefficient sits 2.6
//! posterior sds from its true −0.8, so both 90% intervals miss it: a
//! property of the simulated data, not of the fit (a 90% interval misses
//! one time in ten).
//!
//! Each fit's bound per step and each guide's draws over its
//! importance-resampled draws go to
//! `target/logistic_regression_<guide>_{trace,pairs}.svg` (`iwhvi::plot`).
//!
//! The model, `LogisticRegression`, is declared with `#[variational]` in
//! `examples/src/regression.rs`, shared with the benches and tests.
//!
//! ```sh
//! cargo run --release --example logistic_regression
//! cargo run --release --example logistic_regression -- --json
//! ```

use iwhvi::distributions::BernoulliLogit;
use iwhvi_examples::regression::LogisticRegression;
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

use iwhvi_examples::{regression, report};

/// The coefficients the data are simulated from: intercept, x1, x2, x3.
const TRUE_BETA: [f64; 4] = [-0.5, 1.2, -0.8, 0.4];

/// n rows: an intercept, x1, x2 (correlation 0.6 with x1) and x3, all
/// standard normal; y from `TRUE_BETA`.
fn simulate(n: usize, rng: &mut StdRng) -> (DMatrix<f64>, Vec<u64>) {
    let mut x = DMatrix::zeros(n, 4);
    for i in 0..n {
        let x1: f64 = rng.sample(StandardNormal);
        let x2 = 0.6 * x1 + 0.8 * rng.sample::<f64, _>(StandardNormal);
        x[(i, 0)] = 1.0;
        x[(i, 1)] = x1;
        x[(i, 2)] = x2;
        x[(i, 3)] = rng.sample(StandardNormal);
    }
    let y = (0..n)
        .map(|i| {
            let logit: f64 = (0..4).map(|j| x[(i, j)] * TRUE_BETA[j]).sum();
            rng.sample(BernoulliLogit::new(logit).expect("a finite logit"))
        })
        .collect();
    (x, y)
}

fn main() {
    let mut report = report::Report::from_args();
    let mut rng = StdRng::seed_from_u64(2019);
    let (x, y) = simulate(300, &mut rng);
    let positives = y.iter().filter(|&&v| v == 1).count();
    let model = LogisticRegression::new(x, y.clone()).expect("the data are valid");
    let assessments = regression::fit_and_assess(&model, &TRUE_BETA, !report.is_json(), &mut rng);

    report.line(format!(
        "Bayesian logistic regression: n = {}, {positives} ones; intercept, x1, x2 (corr 0.6 with x1), x3",
        y.len()
    ));
    report.line(format!(
        "priors beta_j ~ N(0, 2.5); true beta = {TRUE_BETA:?}"
    ));
    regression::report_both(&mut report, &TRUE_BETA, &assessments);
    regression::pictures(&report, "logistic_regression", &assessments);

    report.figure("n", y.len());
    report.figure("ones", positives);
    report.figure("true_beta", TRUE_BETA);
    report.finish();
}
