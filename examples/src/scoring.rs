//! What `eight_schools` and `varying_slopes` print and record of a fitted
//! guide: summaries of latents and derived quantities looked up by name,
//! and the figures of the guide's own and importance-reweighted draws.
//!
//! ```ignore
//! let plain = summaries(&model, &posterior.sample(20_000, rng)?);
//! let mu = row(&plain, "mu");
//! report.figure("fit.posterior.mu", guide_figures(mu, row(&weighted, "mu")));
//! record_weights(&mut report, "fit", bound, &resampled);
//! ```

use iwhvi::model::Model;
use iwhvi::posterior::{Draws, ResampledDraws, Summary, SummaryRow};

use crate::report::Report;

/// The summaries of `draws`' latents and of `model`'s derived quantities
/// at each draw ([`Model::derived`]), in that order.
pub fn summaries<Mo: Model>(model: &Mo, draws: &Draws) -> [Summary; 2] {
    let derived: Vec<_> = draws
        .iter_latents()
        .map(|latents| model.derived(&latents))
        .collect();
    [draws.summary(), Draws::from_latents(&derived).summary()]
}

/// The row of `name` (`mu`, `theta[0]`) in the first of `summaries` that
/// has it.
///
/// # Panics
/// When none has it: the examples name their models' own quantities.
pub fn row<'a>(summaries: &'a [Summary], name: &str) -> &'a SummaryRow {
    summaries
        .iter()
        .find_map(|s| s.get(name))
        .expect("a latent or derived quantity of the model")
}

/// One quantity's figures: the mean and sd of the guide's own draws
/// (`plain`) and of the importance-reweighted ones (`weighted`).
pub fn guide_figures(plain: &SummaryRow, weighted: &SummaryRow) -> serde_json::Value {
    serde_json::json!({
        "guide_mean": plain.mean, "guide_sd": plain.sd,
        "reweighted_mean": weighted.mean, "reweighted_sd": weighted.sd,
    })
}

/// Records under `key` the bound at `M = 1, K = 64` and the importance
/// weights' effective sample size and Pareto `k̂`.
pub fn record_weights(
    report: &mut Report,
    key: &str,
    bound: impl serde::Serialize,
    resampled: &ResampledDraws,
) {
    report.figure(&format!("{key}.bound_m1_k64"), bound);
    report.figure(
        &format!("{key}.effective_sample_size"),
        resampled.effective_sample_size,
    );
    report.figure(&format!("{key}.pareto_k"), resampled.pareto_k);
}
