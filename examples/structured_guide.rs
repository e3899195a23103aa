//! A guide written by hand for the *centred* eight schools model, checked
//! against the model at compile time by `#[variational(guide = ...)]`.
//!
//! In its own coordinates the centred posterior is Neal's funnel: theta_j
//! collapses onto mu as tau shrinks. A mean-field Gaussian cannot bend
//! with it; the structured guide below draws mu and tau first and then
//! theta_j | mu, tau ~ Normal(mu + tau a_j, tau exp(b_j)), so it follows
//! the funnel by construction (`common/centred.rs`). Both are fitted on
//! the same IWAE-type DIWHVI bound (M = 8, K = 0); their bounds and
//! posterior summaries (raw and importance-resampled) are printed beside
//! posteriordb's reference (NUTS, 10,000 draws).
//!
//! ```sh
//! cargo run --release --example structured_guide
//! ```
//!
//! Data: Rubin (1981), as stored in posteriordb
//! (`eight_schools-eight_schools_centered`, BSD-3).

use iwhvi::fit::{FitConfig, fit};
use iwhvi::guide::{HierarchicalGuide, MeanField};
use iwhvi::objective::{Diwhvi, estimate_bound};
use iwhvi::optim::Adam;
use iwhvi::posterior::{Draws, Posterior};
use rand::SeedableRng;
use rand::rngs::StdRng;

#[path = "common/centred.rs"]
mod centred;
#[path = "common/reference.rs"]
mod reference;

use centred::{Centred, FunnelGuide};

/// Mean and sd of mu, tau and theta[0].
fn moments(draws: &Draws) -> Vec<(f64, f64)> {
    let summary = draws.summary();
    ["mu", "tau", "theta[0]"]
        .iter()
        .map(|name| {
            let row = summary.get(name).expect("a latent of the model");
            (row.mean, row.sd)
        })
        .collect()
}

fn report<G: HierarchicalGuide + Clone>(
    model: &Centred,
    name: &str,
    guide: &G,
    params: &[f64],
    rng: &mut StdRng,
) {
    let posterior =
        Posterior::new(model, guide, params).expect("the fitted parameters fit the guide");
    let summary = moments(&posterior.sample(50_000, rng));
    let resampled = posterior.sample_importance_resampled(20_000, 20_000, 16, rng);
    let weighted = moments(&resampled.draws);
    let reference = reference::posteriordb(
        "eight_schools-eight_schools_centered",
        &["mu", "tau", "theta[1]"],
    );
    let bound = estimate_bound(model, guide, params, Diwhvi::new(8, 0), 1000, rng);
    println!("\n{name}: bound (M = 8, K = 0) {bound}");
    reference::print_comparison(
        &["mu", "tau", "theta[0]"],
        &summary,
        &weighted,
        reference.as_deref(),
    );
    println!(
        "  importance weights: ESS {:.0} of 20000, Pareto k-hat {:.2}",
        resampled.effective_sample_size, resampled.pareto_k
    );
}

fn main() {
    let model = Centred::new(
        vec![15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0],
        vec![28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0],
    )
    .expect("the data are valid");
    let mut rng = StdRng::seed_from_u64(2019);
    println!("eight schools, centred; exact log p(y) = -31.311 (quadrature, ../shared/peers)");
    let config = FitConfig::new(Diwhvi::new(8, 0)).max_steps(10_000).seed(1);

    let mean_field = MeanField::new(10);
    let fitted = fit(&model, &mean_field, Adam::new(0.01), &config).expect("mean-field fit");
    report(
        &model,
        "mean-field Gaussian",
        &mean_field,
        &fitted.params,
        &mut rng,
    );

    let guide = FunnelGuide::new(&model).expect("the guide fits the model");
    let fitted = fit(&model, &guide, Adam::new(0.01), &config).expect("structured fit");
    report(
        &model,
        "structured guide (theta | mu, tau)",
        &guide,
        &fitted.params,
        &mut rng,
    );
}
