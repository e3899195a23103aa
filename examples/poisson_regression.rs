//! Bayesian Poisson regression with an exposure offset on synthetic
//! counts with known coefficients: counts_i ~ Poisson(exposure_i ·
//! exp((X beta)_i)), i.e. a log link with offset ln exposure_i, and
//! beta_j ~ N(0, 2).
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
//! Measured with these seeds (n = 200, 446 events, about 1.5 s): the
//! mean-field guide's own sds are too small (0.047 to 0.075 against 0.060
//! to 0.098 after resampling; ESS 2420 of 20000, k̂ 0.61), while the
//! semi-implicit guide's are close (0.054 to 0.101 against 0.060 to 0.095;
//! ESS 3382, k̂ 0.49) and its bound, −348.527 ± 0.008 (M = 1, K = 64), is
//! above the ELBO, −348.854 ± 0.018; the log-evidence estimates agree
//! (−348.442 ± 0.004 and −348.453 ± 0.015). For these data x1's coefficient sits 2.2 posterior
//! sds from its true 0.4, so both 90% intervals miss it: a property of the
//! simulated data, not of the fit (a 90% interval misses one time in ten).
//!
//! Each fit's bound per step and each guide's draws over its
//! importance-resampled draws go to
//! `target/poisson_regression_<guide>_{trace,pairs}.svg` (`iwhvi::plot`).
//!
//! The model, `PoissonRegression`, is declared with `#[variational]` in
//! `examples/src/regression.rs`, shared with the benches and tests.
//!
//! ```sh
//! cargo run --release --example poisson_regression
//! cargo run --release --example poisson_regression -- --json
//! ```

use iwhvi::distributions::PoissonLog;
use iwhvi_examples::regression::PoissonRegression;
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

use iwhvi_examples::{regression, report};

/// The coefficients the data are simulated from: intercept, x1, x2 and
/// a 0/1 treatment indicator.
const TRUE_BETA: [f64; 4] = [0.5, 0.4, -0.3, -0.5];

/// n rows: an intercept, x1, x2 (standard normal, correlation 0.5) and a
/// treatment indicator (every other row); exposures uniform on [0.5, 3];
/// counts from `TRUE_BETA`.
fn simulate(n: usize, rng: &mut StdRng) -> (DMatrix<f64>, Vec<f64>, Vec<u64>) {
    let mut x = DMatrix::zeros(n, 4);
    for i in 0..n {
        let x1: f64 = rng.sample(StandardNormal);
        let x2 = 0.5 * x1 + 0.75f64.sqrt() * rng.sample::<f64, _>(StandardNormal);
        x[(i, 0)] = 1.0;
        x[(i, 1)] = x1;
        x[(i, 2)] = x2;
        x[(i, 3)] = (i % 2) as f64;
    }
    let exposure: Vec<f64> = (0..n).map(|_| rng.random_range(0.5..3.0)).collect();
    let counts = (0..n)
        .map(|i| {
            let eta: f64 = (0..4).map(|j| x[(i, j)] * TRUE_BETA[j]).sum();
            rng.sample(PoissonLog::new(eta + exposure[i].ln()).expect("a finite log-rate"))
        })
        .collect();
    (x, exposure, counts)
}

fn main() {
    let mut report = report::Report::from_args();
    let mut rng = StdRng::seed_from_u64(2019);
    let (x, exposure, counts) = simulate(200, &mut rng);
    let total: u64 = counts.iter().sum();
    let total_exposure: f64 = exposure.iter().sum();
    let n = counts.len();
    let model = PoissonRegression::new(x, exposure, counts).expect("the data are valid");
    let assessments = regression::fit_and_assess(&model, &TRUE_BETA, !report.is_json(), &mut rng);

    report.line(format!(
        "Bayesian Poisson regression: n = {n}, {total} events over exposure {total_exposure:.1}; \
         intercept, x1, x2 (corr 0.5), treatment"
    ));
    report.line(format!(
        "log link with offset ln(exposure); priors beta_j ~ N(0, 2); true beta = {TRUE_BETA:?}"
    ));
    regression::report_both(&mut report, &TRUE_BETA, &assessments);
    regression::pictures(&report, "poisson_regression", &assessments);

    report.figure("n", n);
    report.figure("events", total);
    report.figure("exposure", total_exposure);
    report.figure("true_beta", TRUE_BETA);
    report.finish();
}
