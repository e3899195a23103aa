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
//! Measured with these seeds (n = 300, about 3 s): the mean-field guide's
//! own sds for the correlated pair are too small (0.142 and 0.129 against
//! 0.181 and 0.157 after resampling; ESS 4819 of 20000, k̂ 0.62); the
//! semi-implicit guide's are closer (0.164 and 0.162 against 0.183 and
//! 0.162; ESS 17475, k̂ 0.34) and its bound, −196.058 ± 0.005 (M = 1, K = 64), is above the ELBO,
//! −196.288 ± 0.014; the log-evidence estimates agree (−196.032 ± 0.002
//! and −196.039 ± 0.011). For these data x2's coefficient sits 2.6
//! posterior sds from its true −0.8, so both 90% intervals miss it: a
//! property of the simulated data, not of the fit (a 90% interval misses
//! one time in ten).
//!
//! ```sh
//! cargo run --release --example logistic_regression
//! cargo run --release --example logistic_regression -- --json
//! ```

use iwhvi::distributions::BernoulliLogit;
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

/// The coefficients the data are simulated from: intercept, x1, x2, x3.
const TRUE_BETA: [f64; 4] = [-0.5, 1.2, -0.8, 0.4];
const NAMES: [&str; 4] = ["beta[0]", "beta[1]", "beta[2]", "beta[3]"];

/// y_i ~ BernoulliLogit((X beta)_i), beta_j ~ N(0, 2.5).
#[variational]
struct LogisticRegression {
    #[data]
    x: DMatrix<f64>,
    #[latent(Normal(0.0, 2.5), len = x.ncols())]
    beta: Vec<f64>,
    #[observe(BernoulliLogit(self.linear_predictor(i, beta)), for i)]
    y: Vec<u64>,
}

impl LogisticRegression {
    /// (X beta)_i.
    fn linear_predictor<T: iwhvi::Scalar>(&self, i: usize, beta: &[T]) -> T {
        beta.iter()
            .enumerate()
            .map(|(j, &b)| b * self.x[(i, j)])
            .sum()
    }
}

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
    model: &LogisticRegression,
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
    let (x, y) = simulate(300, &mut rng);
    let positives = y.iter().filter(|&&v| v == 1).count();
    let model = LogisticRegression::new(x, y.clone()).expect("the data are valid");
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
        "Bayesian logistic regression: n = {}, {positives} ones; intercept, x1, x2 (corr 0.6 with x1), x3",
        y.len()
    ));
    report.line(format!(
        "priors beta_j ~ N(0, 2.5); true beta = {TRUE_BETA:?}"
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

    report.figure("n", y.len());
    report.figure("ones", positives);
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
