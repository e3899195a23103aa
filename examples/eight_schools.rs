//! Eight schools (non-centred) fitted two ways: a mean-field Gaussian on
//! the ELBO, and a semi-implicit (hierarchical) guide on the DIWHVI bound.
//! Prints each posterior beside posteriordb's reference (NUTS, 10,000
//! draws), the bounds, and a log-evidence estimate.
//!
//! ```sh
//! cargo run --release --example eight_schools
//! ```
//!
//! Data: Rubin (1981), as stored in posteriordb
//! (`eight_schools-eight_schools_noncentered`, BSD-3).

use iwhvi::fit::{Engine, FitConfig, fit};
use iwhvi::guide::{HierarchicalGuide, MeanField, SemiImplicit};
use iwhvi::objective::{Diwhvi, estimate_bound, log_evidence};
use iwhvi::optim::Adam;
use iwhvi::posterior::{Draws, Posterior};
use iwhvi::variational;
use rand::SeedableRng;
use rand::rngs::StdRng;

#[path = "common/reference.rs"]
mod reference;

/// Eight schools, non-centred: mu ~ N(0, 5), tau ~ HalfCauchy(5),
/// theta_tilde_j ~ N(0, 1), y_j ~ N(mu + tau theta_tilde_j, sigma_j).
#[variational]
struct EightSchools {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfCauchy(5.0))]
    tau: f64,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    theta_tilde: Vec<f64>,
    #[observe(Normal(mu + tau * theta_tilde[j], sigma[j]), for j)]
    y: Vec<f64>,
}

/// Mean and sd of mu, tau and theta[0] = mu + tau theta_tilde[0].
fn moments(draws: &Draws) -> Vec<(f64, f64)> {
    let mu = draws.column("mu").expect("a latent of the model");
    let tau = draws.column("tau").expect("a latent of the model");
    let theta0: Vec<f64> = draws
        .column("theta_tilde[0]")
        .expect("a latent of the model")
        .iter()
        .zip(mu.iter().zip(&tau))
        .map(|(t, (m, s))| m + s * t)
        .collect();
    [mu, tau, theta0]
        .iter()
        .map(|x| {
            let n = x.len() as f64;
            let mean = x.iter().sum::<f64>() / n;
            (
                mean,
                (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt(),
            )
        })
        .collect()
}

fn report<G: HierarchicalGuide + Clone>(
    model: &EightSchools,
    name: &str,
    guide: &G,
    params: &[f64],
    rng: &mut StdRng,
) {
    let posterior =
        Posterior::new(model, guide, params).expect("the fitted parameters fit the guide");
    let plain = moments(&posterior.sample(50_000, rng));
    let resampled = posterior.sample_importance_resampled(20_000, 20_000, 16, rng);
    let weighted = moments(&resampled.draws);
    let reference = reference::posteriordb(
        "eight_schools-eight_schools_noncentered",
        &["mu", "tau", "theta[1]"],
    );
    println!("\n{name}");
    reference::print_comparison(
        &["mu", "tau", "theta[0]"],
        &plain,
        &weighted,
        reference.as_deref(),
    );
    println!(
        "  importance weights: ESS {:.0} of 20000, Pareto k-hat {:.2}",
        resampled.effective_sample_size, resampled.pareto_k
    );
    let bound = estimate_bound(model, guide, params, Diwhvi::new(1, 64), 400, rng);
    let evidence = log_evidence(model, guide, params, 1000, 64, 20, rng);
    println!(
        "  bound (M = 1, K = 64): {bound}; log-evidence estimate (M = 1000, K = 64): {evidence}"
    );
}

fn main() {
    let model = EightSchools::new(
        vec![15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0],
        vec![28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0],
    )
    .expect("the data are valid");
    let mut rng = StdRng::seed_from_u64(2019);
    println!("eight schools, non-centred; exact log p(y) = -31.311 (quadrature, ../shared/peers)");

    let mean_field = MeanField::new(10);
    let config = FitConfig::new(Diwhvi::elbo()).max_steps(10_000).seed(1);
    let fitted = fit(&model, &mean_field, Adam::new(0.01), &config).expect("mean-field fit");
    report(
        &model,
        "mean-field Gaussian, ELBO",
        &mean_field,
        &fitted.params,
        &mut rng,
    );

    let semi_implicit = SemiImplicit::new(10, 10);
    let config = FitConfig::new(Diwhvi::new(4, 16))
        .max_steps(10_000)
        .seed(1)
        .engine(Engine::Reverse);
    let fitted = fit(&model, &semi_implicit, Adam::new(0.01), &config).expect("semi-implicit fit");
    report(
        &model,
        "semi-implicit guide (d = 10), DIWHVI M = 4, K = 16",
        &semi_implicit,
        &fitted.params,
        &mut rng,
    );
}
