//! Neal's funnel in 10 dimensions: v ~ N(0, 3), x_i | v ~ N(0, e^{v/2})
//! for i = 1..9. The density is normalised, so log Z = 0 exactly and every
//! bound's gap to 0 is a divergence; the marginal of v is N(0, 3).
//!
//! A mean-field Gaussian cannot follow the funnel's neck; a semi-implicit
//! guide (an MLP conditional with a ψ-dependent scale, trained on DIWHVI)
//! bends with it, and a guide written as a struct with
//! x_i | v ~ N(a_i, e^{v/2 + b_i}) contains the target. Each is scored by
//! the DIWHVI bound with M = 1, K = 64 (for the non-hierarchical guides,
//! the ELBO) and by its draws of v.
//!
//! Each fit's bound per step and each guide's draws of v and x[0] over the
//! funnel's own go to `target/funnel_<guide>_{trace,pairs}.svg`.
//!
//! ```sh
//! cargo run --release --example funnel            # the table
//! cargo run --release --example funnel -- --json  # the figures as one JSON object
//! ```

use iwhvi::fit::{FitConfig, fit};
use iwhvi::guide::{Conditioning, HierarchicalGuide, MeanField, SemiImplicit};
use iwhvi::model::Latents;
use iwhvi::objective::{Diwhvi, estimate_bound};
use iwhvi::optim::Adam;
use iwhvi::posterior::{Draws, Posterior};
use iwhvi::variational;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

use iwhvi_examples::{pictures, report};
use report::Report;

/// Draws of the funnel drawn under each guide's.
const PICTURED: usize = 20_000;

/// The funnel as a model with no data: its "posterior" is its prior.
#[variational]
struct Funnel {
    #[latent(Normal(0.0, 3.0))]
    v: f64,
    #[latent(Normal(0.0, (v / 2.0).exp()), len = 9)]
    x: Vec<f64>,
}

/// x_i conditioned on the sampled v.
#[variational(guide = Funnel)]
struct Neck {
    #[param(init = 0.0)]
    v_loc: f64,
    #[param(init = 0.0)]
    v_log_scale: f64,
    #[param(init = 0.0, len = x)]
    a: Vec<f64>,
    #[param(init = 0.0, len = x)]
    b: Vec<f64>,
    #[latent(Normal(v_loc, v_log_scale.exp()))]
    v: f64,
    #[latent(Normal(a[i], (v / 2.0 + b[i]).exp()), for i)]
    x: Vec<f64>,
}

fn score<G: HierarchicalGuide + Clone>(
    report: &mut Report,
    model: &Funnel,
    key: &str,
    name: &str,
    guide: &G,
    params: &[f64],
    rng: &mut StdRng,
) -> Draws {
    let bound = estimate_bound(model, guide, params, Diwhvi::new(1, 64), 2000, rng)
        .expect("the fitted parameters fit the guide");
    let posterior = Posterior::new(model, guide, params).expect("fitted parameters fit the guide");
    let draws = posterior
        .sample(50_000, rng)
        .expect("50,000 draws fit in memory");
    let summary = draws.summary();
    let v = summary.get("v").expect("a latent of the model");
    report.line(format!(
        "{name:<40} bound {:>8.3} ± {:.3}   v: mean {:>6.2}, sd {:.2}",
        bound.mean, bound.std_error, v.mean, v.sd
    ));
    report.figure(&format!("{key}.bound_m1_k64"), bound);
    report.figure(&format!("{key}.v_mean"), v.mean);
    report.figure(&format!("{key}.v_sd"), v.sd);
    draws
}

/// `PICTURED` draws of the funnel itself, from a generator of their own
/// (so that the figures do not depend on the pictures).
fn exact_draws() -> Draws {
    let mut rng = StdRng::seed_from_u64(7);
    let rows: Vec<Latents> = (0..PICTURED)
        .map(|_| {
            let v = 3.0 * rng.sample::<f64, _>(StandardNormal);
            let x: Vec<f64> = (0..9)
                .map(|_| (v / 2.0).exp() * rng.sample::<f64, _>(StandardNormal))
                .collect();
            Latents::from_pairs([("v".to_string(), vec![v]), ("x".to_string(), x)])
        })
        .collect();
    Draws::from_latents(&rows)
}

/// A guide's bound per step and its draws of v and x[0] over the funnel's.
fn pictures(report: &Report, key: &str, trace: &[f64], draws: &Draws, exact: &Draws) {
    let stem = format!("funnel_{key}");
    pictures::trace(report, &stem, trace);
    pictures::pairs(
        report,
        &stem,
        draws,
        Some((exact, "exact draws")),
        &["v", "x[0]"],
    );
}

fn main() {
    let model = Funnel::new().expect("no data to check");
    let mut report = Report::from_args();
    let progress = !report.is_json();
    let mut rng = StdRng::seed_from_u64(1);
    report.line("Neal's funnel, 10-D: log Z = 0 exactly; v ~ N(0, 3): mean 0, sd 3");
    report.line("bounds: DIWHVI M = 1, K = 64 (the ELBO for non-hierarchical guides)\n");
    report.figure("log_z", 0.0);

    let elbo = FitConfig::new(Diwhvi::elbo())
        .max_steps(10_000)
        .seed(1)
        .progress(progress);
    let mean_field = MeanField::new(10);
    let fitted = fit(&model, &mean_field, Adam::new(0.01), &elbo).expect("mean-field fit");
    let mean_field_draws = score(
        &mut report,
        &model,
        "mean_field",
        "mean-field Gaussian (ELBO)",
        &mean_field,
        &fitted.params,
        &mut rng,
    );
    let mean_field_trace = fitted.trace;

    let semi_implicit = SemiImplicit::new(10, 10)
        .with_conditioning(Conditioning::Mlp { hidden: 20 })
        .with_psi_dependent_scale(true);
    let config = FitConfig::new(Diwhvi::new(1, 16))
        .max_steps(10_000)
        .seed(1)
        .progress(progress);
    let fitted = fit(&model, &semi_implicit, Adam::new(0.01), &config).expect("semi-implicit fit");
    let semi_implicit_draws = score(
        &mut report,
        &model,
        "semi_implicit",
        "semi-implicit MLP (DIWHVI M = 1, K = 16)",
        &semi_implicit,
        &fitted.params,
        &mut rng,
    );
    let semi_implicit_trace = fitted.trace;

    let neck = Neck::new(&model).expect("the guide fits the model");
    let fitted = fit(&model, &neck, Adam::new(0.01), &elbo).expect("structured fit");
    let structured_draws = score(
        &mut report,
        &model,
        "structured",
        "structured x | v (ELBO)",
        &neck,
        &fitted.params,
        &mut rng,
    );
    let structured_trace = fitted.trace;

    let exact = exact_draws();
    report.line("");
    pictures(
        &report,
        "mean_field",
        &mean_field_trace,
        &mean_field_draws,
        &exact,
    );
    pictures(
        &report,
        "semi_implicit",
        &semi_implicit_trace,
        &semi_implicit_draws,
        &exact,
    );
    pictures(
        &report,
        "structured",
        &structured_trace,
        &structured_draws,
        &exact,
    );
    report.finish();
}
