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
//! Measured with these seeds (n = 200, 446 events, about 2 s): the
//! mean-field guide's own sds are too small (0.047 to 0.075 against 0.060
//! to 0.098 after resampling; ESS 2420 of 20000, k̂ 0.61), while the
//! semi-implicit guide's already match (ESS 12904, k̂ 0.36) and its bound,
//! −348.502 ± 0.008 (M = 1, K = 64), is above the ELBO, −348.854 ± 0.018;
//! the log-evidence estimates agree (−348.444 ± 0.003 and
//! −348.453 ± 0.015). For these data x1's coefficient sits 2.2 posterior
//! sds from its true 0.4, so both 90% intervals miss it: a property of the
//! simulated data, not of the fit (a 90% interval misses one time in ten).
//!
//! ```sh
//! cargo run --release --example poisson_regression
//! cargo run --release --example poisson_regression -- --json
//! ```

use iwhvi::distributions::PoissonLog;
use iwhvi::fit::{Engine, FitConfig, fit};
use iwhvi::guide::{HierarchicalGuide, MeanField, SemiImplicit};
use iwhvi::objective::{Diwhvi, Estimate, estimate_bound, log_evidence};
use iwhvi::optim::{Adam, LearningRate};
use iwhvi::posterior::{Posterior, Summary};
use iwhvi::variational;
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

#[path = "common/report.rs"]
mod report;

/// The coefficients the data are simulated from: intercept, x1, x2 and
/// a 0/1 treatment indicator.
const TRUE_BETA: [f64; 4] = [0.5, 0.4, -0.3, -0.5];
const NAMES: [&str; 4] = ["beta[0]", "beta[1]", "beta[2]", "beta[3]"];

/// counts_i ~ Poisson(exposure_i · exp((X beta)_i)), beta_j ~ N(0, 2).
#[variational]
struct PoissonRegression {
    #[data]
    x: DMatrix<f64>,
    #[data]
    exposure: Vec<f64>,
    #[latent(Normal(0.0, 2.0), len = x.ncols())]
    beta: Vec<f64>,
    #[observe(PoissonLog(self.linear_predictor(i, beta) + exposure[i].ln()), for i)]
    counts: Vec<u64>,
}

impl PoissonRegression {
    /// (X beta)_i.
    fn linear_predictor<T: iwhvi::Scalar>(&self, i: usize, beta: &[T]) -> T {
        beta.iter()
            .enumerate()
            .map(|(j, &b)| b * self.x[(i, j)])
            .sum()
    }
}

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

/// What is reported of one fitted guide.
struct Assessment {
    plain: Summary,
    resampled: Summary,
    covers: Vec<bool>,
    ess: f64,
    pareto_k: f64,
    bound: Estimate,
    log_evidence: Estimate,
}

fn assess<G: HierarchicalGuide + Clone>(
    model: &PoissonRegression,
    guide: &G,
    params: &[f64],
    bound: Diwhvi,
    rng: &mut StdRng,
) -> Assessment {
    let posterior = Posterior::new(model, guide, params).expect("fitted parameters fit the guide");
    let plain = posterior.sample(20_000, rng).summary();
    let resampled = posterior
        .sample_importance_resampled(20_000, 20_000, 16, rng)
        .expect("the guide has finite importance weights");
    let summary = resampled.draws.summary();
    let covers = NAMES
        .iter()
        .zip(TRUE_BETA)
        .map(|(name, truth)| {
            let row = summary.get(name).expect("a latent of the model");
            row.q05 <= truth && truth <= row.q95
        })
        .collect();
    Assessment {
        plain,
        resampled: summary,
        covers,
        ess: resampled.effective_sample_size,
        pareto_k: resampled.pareto_k,
        bound: estimate_bound(model, guide, params, bound, 2000, rng),
        log_evidence: log_evidence(model, guide, params, 1000, 64, 20, rng),
    }
}

fn print(report: &report::Report, title: &str, bound_name: &str, a: &Assessment) {
    report.line(format!("\n{title}"));
    report.line(format!(
        "{:<9} {:>6}  {:>15}  {:>15}  {:>17}  {}",
        "", "true", "guide", "resampled", "90% interval", "covers"
    ));
    for ((name, truth), covers) in NAMES.iter().zip(TRUE_BETA).zip(&a.covers) {
        let plain = a.plain.get(name).expect("a latent of the model");
        let row = a.resampled.get(name).expect("a latent of the model");
        report.line(format!(
            "{name:<9} {truth:>6.2}  {:>15}  {:>15}  {:>17}  {}",
            format!("{:.3} ± {:.3}", plain.mean, plain.sd),
            format!("{:.3} ± {:.3}", row.mean, row.sd),
            format!("[{:.3}, {:.3}]", row.q05, row.q95),
            if *covers { "yes" } else { "no" }
        ));
    }
    report.line(format!(
        "importance weights: ESS {:.0} of 20000, Pareto k-hat {:.2}",
        a.ess, a.pareto_k
    ));
    report.line(format!(
        "bound ({bound_name}): {}; log-evidence estimate (M = 1000, K = 64): {}",
        a.bound, a.log_evidence
    ));
}

fn main() {
    let mut report = report::Report::from_args();
    let mut rng = StdRng::seed_from_u64(2019);
    let (x, exposure, counts) = simulate(200, &mut rng);
    let total: u64 = counts.iter().sum();
    let total_exposure: f64 = exposure.iter().sum();
    let n = counts.len();
    let model = PoissonRegression::new(x, exposure, counts).expect("the data are valid");
    let p = NAMES.len();

    // Adam's rate decays from 0.05 to 5e-4 over the 20,000 steps, so that
    // the fitted parameters settle despite the noise of the gradient.
    let adam = || {
        Adam::with_schedule(LearningRate::Exponential {
            initial: 0.05,
            decay: 0.1,
            every: 10_000,
        })
    };
    let progress = !report.is_json();

    let mean_field = MeanField::new(p);
    let config = FitConfig::new(Diwhvi::elbo())
        .max_steps(20_000)
        .seed(1)
        .progress(progress);
    let fitted = fit(&model, &mean_field, adam(), &config).expect("mean-field fit");
    let mf = assess(
        &model,
        &mean_field,
        &fitted.params,
        Diwhvi::elbo(),
        &mut rng,
    );

    let semi_implicit = SemiImplicit::new(p, p);
    let config = FitConfig::new(Diwhvi::new(1, 32))
        .max_steps(20_000)
        .seed(1)
        .engine(Engine::Reverse)
        .progress(progress);
    let fitted = fit(&model, &semi_implicit, adam(), &config).expect("semi-implicit fit");
    let si = assess(
        &model,
        &semi_implicit,
        &fitted.params,
        Diwhvi::new(1, 64),
        &mut rng,
    );

    report.line(format!(
        "Bayesian Poisson regression: n = {n}, {total} events over exposure {total_exposure:.1}; \
         intercept, x1, x2 (corr 0.5), treatment"
    ));
    report.line(format!(
        "log link with offset ln(exposure); priors beta_j ~ N(0, 2); true beta = {TRUE_BETA:?}"
    ));
    report.line(
        "guide: mean ± sd of 20000 guide draws; resampled: 20000 draws importance-resampled from 20000",
    );
    print(&report, "mean-field Gaussian, ELBO", "ELBO", &mf);
    print(
        &report,
        "semi-implicit guide (d = 4), DIWHVI M = 1, K = 32",
        "DIWHVI M = 1, K = 64",
        &si,
    );

    report.figure("n", n);
    report.figure("events", total);
    report.figure("exposure", total_exposure);
    report.figure("true_beta", TRUE_BETA);
    for (key, a) in [("mean_field", &mf), ("semi_implicit", &si)] {
        report.figure(&format!("{key}.guide"), &a.plain);
        report.figure(&format!("{key}.resampled"), &a.resampled);
        report.figure(&format!("{key}.covers_90"), &a.covers);
        report.figure(&format!("{key}.ess"), a.ess);
        report.figure(&format!("{key}.pareto_k"), a.pareto_k);
        report.figure(&format!("{key}.bound"), a.bound);
        report.figure(&format!("{key}.log_evidence"), a.log_evidence);
    }
    report.finish();
}
