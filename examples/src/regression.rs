//! What the logistic and Poisson regression examples share: fit a
//! mean-field Gaussian (ELBO) and a semi-implicit guide (DIWHVI M = 1,
//! K = 32) to a model with coefficients `beta`, then report each guide's
//! draws, its importance-resampled draws, 90 % interval coverage of the
//! true coefficients, the weights' ESS and Pareto k̂, the bound and a
//! log-evidence estimate.

use iwhvi::fit::{FitConfig, fit};
use iwhvi::guide::{HierarchicalGuide, MeanField, SemiImplicit};
use iwhvi::model::Model;
use iwhvi::objective::{Diwhvi, Estimate, estimate_bound, log_evidence};
use iwhvi::optim::{Adam, LearningRate};
use iwhvi::posterior::{Draws, Posterior, Summary};
use rand::rngs::StdRng;

use crate::report::Report;
use iwhvi::{Scalar, variational};
use nalgebra::{DMatrix, DVector};

/// One fitted guide, assessed.
pub struct Assessment {
    /// The bound at every step of the fit.
    trace: Vec<f64>,
    /// The guide's own draws and the importance-resampled ones.
    draws: Draws,
    resampled_draws: Draws,
    plain: Summary,
    resampled: Summary,
    covers: Vec<bool>,
    ess: f64,
    pareto_k: f64,
    bound: Estimate,
    log_evidence: Estimate,
}

fn name(j: usize) -> String {
    format!("beta[{j}]")
}

/// Mean-field on the ELBO, then semi-implicit on DIWHVI (M = 1, K = 32),
/// each for 20,000 steps with Adam's rate decaying from 0.05 to 5e-4, so
/// that the fitted parameters settle despite the noise of the gradient.
pub fn fit_and_assess<Mo: Model>(
    model: &Mo,
    truth: &[f64],
    progress: bool,
    rng: &mut StdRng,
) -> [Assessment; 2] {
    let p = truth.len();
    let adam = || {
        Adam::with_schedule(LearningRate::Exponential {
            initial: 0.05,
            decay: 0.1,
            every: 10_000,
        })
    };
    let mean_field = MeanField::new(p);
    let config = FitConfig::new(Diwhvi::elbo())
        .max_steps(20_000)
        .seed(1)
        .progress(progress);
    let fitted = fit(model, &mean_field, adam(), &config).expect("mean-field fit");
    let mf = assess(
        model,
        &mean_field,
        &fitted.params,
        Diwhvi::elbo(),
        truth,
        rng,
    );
    let mf = Assessment {
        trace: fitted.trace,
        ..mf
    };

    let semi_implicit = SemiImplicit::new(p, p);
    let config = FitConfig::new(Diwhvi::new(1, 32))
        .max_steps(20_000)
        .seed(1)
        .progress(progress);
    let fitted = fit(model, &semi_implicit, adam(), &config).expect("semi-implicit fit");
    let si = assess(
        model,
        &semi_implicit,
        &fitted.params,
        Diwhvi::new(1, 64),
        truth,
        rng,
    );
    let si = Assessment {
        trace: fitted.trace,
        ..si
    };
    [mf, si]
}

fn assess<Mo: Model, G: HierarchicalGuide + Clone>(
    model: &Mo,
    guide: &G,
    params: &[f64],
    bound: Diwhvi,
    truth: &[f64],
    rng: &mut StdRng,
) -> Assessment {
    let posterior = Posterior::new(model, guide, params).expect("fitted parameters fit the guide");
    let draws = posterior
        .sample(20_000, rng)
        .expect("20,000 draws fit in memory");
    let plain = draws.summary();
    let resampled = posterior
        .sample_importance_resampled(20_000, 20_000, 16, rng)
        .expect("the guide has finite importance weights");
    let summary = resampled.draws.summary();
    let covers = truth
        .iter()
        .enumerate()
        .map(|(j, &truth)| {
            let row = summary.get(&name(j)).expect("a latent of the model");
            row.q05 <= truth && truth <= row.q95
        })
        .collect();
    Assessment {
        trace: Vec::new(),
        draws,
        resampled_draws: resampled.draws,
        plain,
        resampled: summary,
        covers,
        ess: resampled.effective_sample_size,
        pareto_k: resampled.pareto_k,
        bound: estimate_bound(model, guide, params, bound, 2000, rng)
            .expect("the fitted parameters fit the guide"),
        log_evidence: log_evidence(model, guide, params, 1000, 64, 20, rng)
            .expect("the fitted parameters fit the guide"),
    }
}

/// Prints both assessments' tables and records their figures under
/// `mean_field` and `semi_implicit`.
pub fn report_both(report: &mut Report, truth: &[f64], [mf, si]: &[Assessment; 2]) {
    report.line(
        "guide: mean ± sd of 20000 guide draws; resampled: 20000 draws importance-resampled from 20000",
    );
    print(report, truth, "mean-field Gaussian, ELBO", "ELBO", mf);
    print(
        report,
        truth,
        &format!(
            "semi-implicit guide (d = {}), DIWHVI M = 1, K = 32",
            truth.len()
        ),
        "DIWHVI M = 1, K = 64",
        si,
    );
    for (key, a) in [("mean_field", mf), ("semi_implicit", si)] {
        report.figure(&format!("{key}.guide"), &a.plain);
        report.figure(&format!("{key}.resampled"), &a.resampled);
        report.figure(&format!("{key}.covers_90"), &a.covers);
        report.figure(&format!("{key}.ess"), a.ess);
        report.figure(&format!("{key}.pareto_k"), a.pareto_k);
        report.figure(&format!("{key}.bound"), a.bound);
        report.figure(&format!("{key}.log_evidence"), a.log_evidence);
    }
}

/// Each guide's bound per step and its draws over the importance-resampled
/// ones (what the weights make of them), as SVGs named after `example`
/// (see [`pictures`](crate::pictures)).
pub fn pictures(report: &Report, example: &str, [mf, si]: &[Assessment; 2]) {
    for (key, a) in [("mean_field", mf), ("semi_implicit", si)] {
        let stem = format!("{example}_{key}");
        crate::pictures::trace(report, &stem, &a.trace);
        crate::pictures::pairs(
            report,
            &stem,
            &a.draws,
            Some((&a.resampled_draws, "importance-resampled draws")),
            &[],
        );
    }
}

fn print(report: &Report, truth: &[f64], title: &str, bound_name: &str, a: &Assessment) {
    report.line(format!("\n{title}"));
    report.line(format!(
        "{:<9} {:>6}  {:>15}  {:>15}  {:>17}  {}",
        "", "true", "guide", "resampled", "90% interval", "covers"
    ));
    for (j, (truth, covers)) in truth.iter().zip(&a.covers).enumerate() {
        let name = name(j);
        let plain = a.plain.get(&name).expect("a latent of the model");
        let row = a.resampled.get(&name).expect("a latent of the model");
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

/// Logistic regression, the model of `examples/logistic_regression.rs`
/// (also timed by `benches/logistic_step.rs` and `benches/plate.rs`, and
/// checked by `tests/macros/plates.rs`): y_i ~ BernoulliLogit((X beta)_i),
/// beta_j ~ N(0, 2.5).
#[variational]
pub struct LogisticRegression {
    #[data]
    pub x: DMatrix<f64>,
    #[latent(Normal(0.0, 2.5), len = x.ncols())]
    beta: Vec<f64>,
    #[observe(BernoulliLogit(self.linear_predictor(i, beta)), for i)]
    pub y: Vec<u64>,
}

impl LogisticRegression {
    /// (X beta)_i.
    fn linear_predictor<T: Scalar>(&self, i: usize, beta: &[T]) -> T {
        row_dot(&self.x, i, beta)
    }
}

/// Linear regression with known noise, the model of
/// `examples/linear_regression.rs`: y_i ~ N((X beta)_i, noise_sd),
/// beta_j ~ N(0, prior_sd).
#[variational]
pub struct LinearRegression {
    #[data]
    pub x: DMatrix<f64>,
    #[data]
    pub noise_sd: f64,
    #[data]
    pub prior_sd: f64,
    #[latent(Normal(0.0, prior_sd), len = x.ncols())]
    beta: Vec<f64>,
    #[observe(Normal(self.linear_predictor(i, beta), noise_sd), for i)]
    pub y: DVector<f64>,
}

impl LinearRegression {
    /// (X beta)_i.
    fn linear_predictor<T: Scalar>(&self, i: usize, beta: &[T]) -> T {
        row_dot(&self.x, i, beta)
    }
}

/// Poisson regression with an exposure offset, the model of
/// `examples/poisson_regression.rs`:
/// counts_i ~ Poisson(exposure_i · exp((X beta)_i)), beta_j ~ N(0, 2).
#[variational]
pub struct PoissonRegression {
    #[data]
    pub x: DMatrix<f64>,
    #[data]
    pub exposure: Vec<f64>,
    #[latent(Normal(0.0, 2.0), len = x.ncols())]
    beta: Vec<f64>,
    #[observe(PoissonLog(self.linear_predictor(i, beta) + exposure[i].ln()), for i)]
    pub counts: Vec<u64>,
}

impl PoissonRegression {
    /// (X beta)_i.
    fn linear_predictor<T: Scalar>(&self, i: usize, beta: &[T]) -> T {
        row_dot(&self.x, i, beta)
    }
}

/// `Σⱼ beta_j x_ij`: a linear predictor as a helper method writes it, over
/// any `Scalar` (opaque to the macro, so the plate evaluates it on dual
/// numbers).
fn row_dot<T: Scalar>(x: &DMatrix<f64>, i: usize, beta: &[T]) -> T {
    beta.iter().enumerate().map(|(j, &b)| b * x[(i, j)]).sum()
}
