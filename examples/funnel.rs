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
//! ```sh
//! cargo run --release --example funnel            # the table
//! cargo run --release --example funnel -- --json  # the figures as one JSON object
//! ```

use iwhvi::fit::{FitConfig, fit};
use iwhvi::guide::{Conditioning, HierarchicalGuide, MeanField, SemiImplicit};
use iwhvi::objective::{Diwhvi, estimate_bound};
use iwhvi::optim::Adam;
use iwhvi::posterior::Posterior;
use iwhvi::variational;
use rand::SeedableRng;
use rand::rngs::StdRng;

use iwhvi_examples::report;
use report::Report;

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
) {
    let bound = estimate_bound(model, guide, params, Diwhvi::new(1, 64), 2000, rng)
        .expect("the fitted parameters fit the guide");
    let posterior = Posterior::new(model, guide, params).expect("fitted parameters fit the guide");
    let summary = posterior.sample(50_000, rng).summary();
    let v = summary.get("v").expect("a latent of the model");
    report.line(format!(
        "{name:<40} bound {:>8.3} ± {:.3}   v: mean {:>6.2}, sd {:.2}",
        bound.mean, bound.std_error, v.mean, v.sd
    ));
    report.figure(&format!("{key}.bound_m1_k64"), bound);
    report.figure(&format!("{key}.v_mean"), v.mean);
    report.figure(&format!("{key}.v_sd"), v.sd);
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
    score(
        &mut report,
        &model,
        "mean_field",
        "mean-field Gaussian (ELBO)",
        &mean_field,
        &fitted.params,
        &mut rng,
    );

    let semi_implicit = SemiImplicit::new(10, 10)
        .with_conditioning(Conditioning::Mlp { hidden: 20 })
        .with_psi_dependent_scale(true);
    let config = FitConfig::new(Diwhvi::new(1, 16))
        .max_steps(10_000)
        .seed(1)
        .progress(progress);
    let fitted = fit(&model, &semi_implicit, Adam::new(0.01), &config).expect("semi-implicit fit");
    score(
        &mut report,
        &model,
        "semi_implicit",
        "semi-implicit MLP (DIWHVI M = 1, K = 16)",
        &semi_implicit,
        &fitted.params,
        &mut rng,
    );

    let neck = Neck::new(&model).expect("the guide fits the model");
    let fitted = fit(&model, &neck, Adam::new(0.01), &elbo).expect("structured fit");
    score(
        &mut report,
        &model,
        "structured",
        "structured x | v (ELBO)",
        &neck,
        &fitted.params,
        &mut rng,
    );
    report.finish();
}
