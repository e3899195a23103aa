//! Eight schools (Rubin 1981) in both of its forms, each fitted with a
//! mean-field Gaussian on the ELBO and a semi-implicit (hierarchical) guide
//! on the DIWHVI bound; the centred form also with a guide written as a
//! struct (`iwhvi_examples::centred`). For every fit: the posterior of mu, tau
//! and theta[0] from the guide's draws and importance-resampled with the
//! bound's weights, beside posteriordb's reference (NUTS, 10,000 draws);
//! the bound; and a log-evidence estimate against the exact -31.311. The
//! centred semi-implicit fit's bound per step and its draws go to
//! `target/eight_schools_trace.svg` and `target/eight_schools_pairs.svg`
//! (`iwhvi::plot`).
//!
//! The non-centred form (theta_j = mu + tau theta_tilde_j) is nearly
//! Gaussian in its coordinates. The centred form (theta_j ~ N(mu, tau)) is
//! Neal's funnel: theta_j collapses onto mu as tau shrinks, which a
//! mean-field Gaussian cannot follow.
//!
//! ```sh
//! cargo run --release --example eight_schools            # the tables
//! cargo run --release --example eight_schools -- --json  # the figures as one JSON object
//! ```
//!
//! Data: Rubin (1981), as stored in posteriordb
//! (`eight_schools-eight_schools_noncentered`, BSD-3).

use iwhvi::fit::{FitConfig, fit};
use iwhvi::guide::{Conditioning, HierarchicalGuide, MeanField, SemiImplicit};
use iwhvi::model::Model;
use iwhvi::objective::{Diwhvi, estimate_bound, log_evidence};
use iwhvi::optim::{Adam, LearningRate};
use iwhvi::posterior::{Posterior, Summary};
use rand::SeedableRng;
use rand::rngs::StdRng;

use iwhvi_examples::centred::{Centred, FunnelGuide};
use iwhvi_examples::hand_written::{SIGMA, Y};
use iwhvi_examples::noncentred::{EXACT_LOG_EVIDENCE, EightSchools};
use iwhvi_examples::reference;
use iwhvi_examples::report::Report;
use iwhvi_examples::scoring::{guide_figures, record_weights, row, summaries};
/// The quantities shown: our names and posteriordb's.
const SHOWN: [(&str, &str); 3] = [("mu", "mu"), ("tau", "tau"), ("theta[0]", "theta[1]")];

/// Mean and sd of the shown quantities (latents or derived).
fn moments(summaries: &[Summary]) -> Vec<(f64, f64)> {
    SHOWN
        .iter()
        .map(|(name, _)| {
            let row = row(summaries, name);
            (row.mean, row.sd)
        })
        .collect()
}

/// Prints and records one fitted guide under `key`.
#[allow(clippy::too_many_arguments)]
fn score<Mo: Model, G: HierarchicalGuide + Clone>(
    report: &mut Report,
    key: &str,
    title: &str,
    model: &Mo,
    guide: &G,
    params: &[f64],
    posteriordb_name: &str,
    rng: &mut StdRng,
) {
    let posterior =
        Posterior::new(model, guide, params).expect("the fitted parameters fit the guide");
    let plain = summaries(
        model,
        &posterior
            .sample(50_000, rng)
            .expect("50,000 draws fit in memory"),
    );
    let resampled = posterior
        .sample_importance_resampled(20_000, 20_000, 16, rng)
        .expect("the guide has finite importance weights");
    let weighted = summaries(model, &resampled.draws);
    let names: Vec<&str> = SHOWN.iter().map(|(_, theirs)| *theirs).collect();
    let nuts = reference::posteriordb(posteriordb_name, &names);
    let bound = estimate_bound(model, guide, params, Diwhvi::new(1, 64), 400, rng)
        .expect("the fitted parameters fit the guide");
    let evidence = log_evidence(model, guide, params, 1000, 64, 20, rng)
        .expect("the fitted parameters fit the guide");

    report.line(format!("\n{title}"));
    if !report.is_json() {
        let labels: Vec<&str> = SHOWN.iter().map(|(ours, _)| *ours).collect();
        reference::print_comparison(
            &labels,
            &moments(&plain),
            &moments(&weighted),
            nuts.as_deref(),
        );
    }
    report.line(format!(
        "  importance weights: ESS {:.0} of 20000, Pareto k-hat {:.2}",
        resampled.effective_sample_size, resampled.pareto_k
    ));
    report.line(format!(
        "  bound (M = 1, K = 64): {bound}; log-evidence (M = 1000, K = 64): {evidence} (exact {EXACT_LOG_EVIDENCE})"
    ));

    for (i, (name, _)) in SHOWN.iter().enumerate() {
        let mut figures = guide_figures(row(&plain, name), row(&weighted, name));
        if let Some(nuts) = &nuts {
            figures["reference_mean"] = nuts[i].0.into();
            figures["reference_sd"] = nuts[i].1.into();
        }
        report.figure(&format!("{key}.posterior.{name}"), figures);
    }
    record_weights(report, key, bound, &resampled);
    report.figure(&format!("{key}.log_evidence"), evidence);
}

/// The centred semi-implicit fit's bound per step and its draws of mu,
/// tau and theta[0], as SVGs in `target/` (`iwhvi::plot`; a generator of
/// their own, so the printed figures do not depend on them).
fn pictures<G: HierarchicalGuide + Clone>(
    model: &Centred,
    guide: &G,
    fitted: &iwhvi::fit::Fit,
    report: &Report,
) {
    let target = iwhvi_examples::repo_root().join("target");
    let trace = target.join("eight_schools_trace.svg");
    let pairs = target.join("eight_schools_pairs.svg");
    let posterior =
        Posterior::new(model, guide, &fitted.params).expect("the fitted parameters fit the guide");
    let draws = posterior
        .sample(2000, &mut StdRng::seed_from_u64(7))
        .expect("2000 draws fit in memory");
    let drawn = iwhvi::plot::trace(&fitted.trace, 100, &trace)
        .and_then(|()| iwhvi::plot::pairs(&draws, None, &["mu", "tau", "theta[0]"], &pairs));
    match drawn {
        Ok(()) => report.line(format!(
            "plots: {} (bound per step), {} (draws)",
            trace.display(),
            pairs.display()
        )),
        Err(e) => eprintln!("plots not drawn: {e}"),
    }
}

fn main() {
    let mut report = Report::from_args();
    let progress = !report.is_json();
    let mut rng = StdRng::seed_from_u64(2019);
    report.figure("exact_log_evidence", EXACT_LOG_EVIDENCE);
    let adam = || Adam::new(0.01);
    let elbo = FitConfig::new(Diwhvi::elbo())
        .max_steps(10_000)
        .seed(1)
        .progress(progress);
    let diwhvi = FitConfig::new(Diwhvi::new(4, 16))
        .max_steps(10_000)
        .seed(1)
        .progress(progress);

    report.line("eight schools, non-centred");
    let model = EightSchools::new(SIGMA.to_vec(), Y.to_vec()).expect("the data are valid");
    let noncentred = "eight_schools-eight_schools_noncentered";
    let mean_field = MeanField::new(model.dim());
    let fitted = fit(&model, &mean_field, adam(), &elbo).expect("mean-field fit");
    score(
        &mut report,
        "noncentred.mean_field",
        "mean-field Gaussian, ELBO",
        &model,
        &mean_field,
        &fitted.params,
        noncentred,
        &mut rng,
    );
    let semi_implicit = SemiImplicit::new(model.dim(), model.dim());
    let fitted = fit(&model, &semi_implicit, adam(), &diwhvi).expect("semi-implicit fit");
    score(
        &mut report,
        "noncentred.semi_implicit",
        "semi-implicit guide (d = 10), DIWHVI M = 4, K = 16",
        &model,
        &semi_implicit,
        &fitted.params,
        noncentred,
        &mut rng,
    );

    report.line("\n\neight schools, centred (the funnel)");
    let model = Centred::new(SIGMA.to_vec(), Y.to_vec()).expect("the data are valid");
    let centred = "eight_schools-eight_schools_centered";
    let fitted = fit(&model, &mean_field, adam(), &elbo).expect("mean-field fit");
    score(
        &mut report,
        "centred.mean_field",
        "mean-field Gaussian, ELBO",
        &model,
        &mean_field,
        &fitted.params,
        centred,
        &mut rng,
    );
    // The funnel needs a conditional whose scale depends on psi, and a
    // longer fit with a decaying learning rate.
    let semi_implicit = semi_implicit
        .with_conditioning(Conditioning::Mlp { hidden: 24 })
        .with_psi_dependent_scale(true);
    let decaying = Adam::with_schedule(LearningRate::Exponential {
        initial: 0.01,
        decay: 0.1,
        every: 30_000,
    });
    let config = diwhvi.clone().max_steps(30_000);
    let fitted = fit(&model, &semi_implicit, decaying, &config).expect("semi-implicit fit");
    score(
        &mut report,
        "centred.semi_implicit",
        "semi-implicit guide (d = 10, MLP conditional, psi-dependent scale), DIWHVI M = 4, K = 16, 30k steps",
        &model,
        &semi_implicit,
        &fitted.params,
        centred,
        &mut rng,
    );
    pictures(&model, &semi_implicit, &fitted, &report);
    let structured = FunnelGuide::new(&model).expect("the guide fits the model");
    let fitted = fit(&model, &structured, adam(), &elbo).expect("structured fit");
    score(
        &mut report,
        "centred.structured",
        "structured guide theta | mu, tau (#[variational(guide = Centred)]), ELBO",
        &model,
        &structured,
        &fitted.params,
        centred,
        &mut rng,
    );
    report.finish();
}
