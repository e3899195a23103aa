//! Minibatches of models with local latents (issue 16, step 3): which
//! latents the macro makes local, their prior terms scaled with their
//! points (against a hand computation, and the mean over every subset
//! against the full log joint, value and gradient, with a wrong scale
//! rejected), learned parameters under batches, and a fit on the
//! per-point bound (`M > 1`) with a per-point guide.

use iwhvi::distributions::{Distribution, HalfNormal, Normal};
use iwhvi::fit::{FitConfig, FitError, InputError, Parallelism, fit};
use iwhvi::guide::MeanField;
use iwhvi::model::Model;
use iwhvi::objective::Diwhvi;
use iwhvi::optim::Adam;
use iwhvi::subsample::Batch;
use iwhvi::variational;

use super::fixtures::{SIGMA, Y, hier, point, subset_mean_error};

/// `theta[0]` read by every point: `theta` is not local.
#[variational]
struct Shared {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    theta: Vec<f64>,
    #[observe(Normal(theta[j] + theta[0], sigma[j]), for j)]
    y: Vec<f64>,
}

/// A local latent under a local latent, and a learned mean.
#[variational]
struct Chain {
    #[param(init = 0.3)]
    m: f64,
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(m, 1.0), len = sigma.len())]
    a: Vec<f64>,
    #[latent(Normal(a[i], 0.5), len = sigma.len(), for i)]
    b: Vec<f64>,
    #[observe(Normal(b[j], sigma[j]), for j)]
    y: Vec<f64>,
}

#[test]
fn the_macro_finds_the_local_latents() {
    assert_eq!(hier().local_latents(), ["theta"]);
    let shared = Shared::new(SIGMA.to_vec(), Y.to_vec()).unwrap();
    assert!(shared.local_latents().is_empty());
    let chain = Chain::new(SIGMA.to_vec(), Y.to_vec()).unwrap();
    assert_eq!(chain.local_latents(), ["a", "b"]);
    assert!(chain.subsample_plate().is_ok());
}

#[test]
fn a_local_latents_prior_is_scaled_with_its_point() {
    let model = hier();
    let u = point(model.dim());
    let (mu, tau) = (u[0], u[1].exp());
    let theta = &u[2..];
    let global = Normal::new(0.0, 5.0).unwrap().log_prob(mu)
        + HalfNormal::new(5.0).unwrap().log_prob(tau)
        + u[1];
    let term = |j: usize| {
        Normal::new(mu, tau).unwrap().log_prob(theta[j])
            + Normal::new(theta[j], SIGMA[j]).unwrap().log_prob(Y[j])
    };
    let subset = model.log_joint_subset(&[], &u, &[], &Batch::new(&[1, 3], 5));
    let expected = global + 2.5 * (term(1) + term(3));
    assert!((subset - expected).abs() < 1e-12, "{subset} vs {expected}");
    let mut points = [0.0; 2];
    let split = model.log_joint_points(&[], &u, &[], &Batch::new(&[1, 3], 5), &mut points);
    assert!((split - global).abs() < 1e-12);
    assert!((points[0] - term(1)).abs() < 1e-12 && (points[1] - term(3)).abs() < 1e-12);
    let all = model.log_joint_subset(&[], &u, &[], &Batch::new(&[0, 1, 2, 3, 4], 5));
    assert!((all - model.log_joint(&u)).abs() < 1e-12);
}

#[test]
fn over_every_subset_the_scaled_log_joint_averages_to_the_full_one() {
    let chain = Chain::new(SIGMA.to_vec(), Y.to_vec()).unwrap();
    for (b, right) in [(2, 2.5), (3, 5.0 / 3.0)] {
        let (value, gradient) = subset_mean_error(&hier(), b, right);
        assert!(value.abs() < 1e-10, "b = {b}: {value}");
        assert!(gradient.iter().all(|g| g.abs() < 1e-10), "{gradient:?}");
        let (value, gradient) = subset_mean_error(&chain, b, right);
        assert!(value.abs() < 1e-10, "b = {b}: {value}");
        assert!(gradient.iter().all(|g| g.abs() < 1e-10), "{gradient:?}");
        // Power: the scale N / (b + 1) misses, in value and in the local
        // latents' and the learned mean's gradients.
        let wrong = 5.0 / (b + 1) as f64;
        let (value, gradient) = subset_mean_error(&chain, b, wrong);
        assert!(value.abs() > 0.1, "b = {b}: {value}");
        assert!(gradient[0].abs() > 1e-3 && gradient[gradient.len() - 1].abs() > 1e-3);
    }
}

#[test]
fn learned_parameters_are_fitted_under_minibatches() {
    let model = Chain::new(SIGMA.to_vec(), Y.to_vec()).unwrap();
    let guide = MeanField::new(model.dim());
    let config = FitConfig::new(Diwhvi::elbo())
        .batch_size(2)
        .max_steps(40)
        .seed(2)
        .progress(false);
    let fitted = fit(&model, &guide, Adam::new(0.05), &config).unwrap();
    assert_eq!(fitted.theta.len(), 1);
    assert_ne!(fitted.theta[0], 0.3);
    assert!(fitted.full_bound.unwrap().mean.is_finite());
    // M > 1 with a guide that reports no per-point groups: refused.
    let iwae = FitConfig::new(Diwhvi::iwae(3))
        .batch_size(2)
        .progress(false);
    let result = fit(&model, &guide, Adam::new(0.05), &iwae);
    assert!(
        matches!(
            &result,
            Err(FitError::Input(InputError::InvalidSetting { setting: "batch_size", requirement, .. }))
                if requirement.contains("factorises per point")
        ),
        "{result:?}"
    );
}

/// `z_j ~ N(0, 1)`, `y_j ~ N(z_j, sigma_j)`: every latent local, with
/// `log p(y) = Σ_j log N(y_j; 0, 1 + sigma_j²)` (as in the macro tests'
/// per-point mixing).
#[variational]
struct AllLocal {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    z: Vec<f64>,
    #[observe(Normal(z[j], sigma[j]), for j)]
    y: Vec<f64>,
}

/// A per-point guide: `ψ_j ~ N(0, 1)`, `z_j | ψ_j ~ N(h_j(0) + a ψ_j,
/// exp h_j(1))` with `h_j = enc(y_j, sigma_j)`, `τ(ψ_j | z) = N(r z_j + t,
/// exp log_rho)`.
#[variational(guide = AllLocal)]
struct PerPoint {
    #[param(init = 0.5)]
    a: f64,
    #[param(init = 0.0)]
    r: f64,
    #[param(init = 0.0)]
    t: f64,
    #[param(init = 0.0)]
    log_rho: f64,
    #[encoder(input = [y[j], sigma[j]], hidden = [8], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[mixing(len = z, for j)]
    #[reverse(Normal(r * z[j] + t, log_rho.exp()), for j)]
    psi: Vec<f64>,
    #[latent(Normal(enc(j)[0] + a * psi[j], enc(j)[1].exp()), for j)]
    z: Vec<f64>,
}

const Y8: [f64; 8] = [1.2, -0.4, 2.5, 0.3, -1.8, 0.9, 0.1, -0.7];
const SIGMA8: [f64; 8] = [0.5, 1.0, 0.8, 1.5, 0.6, 1.2, 0.9, 0.7];

fn all_local_evidence() -> f64 {
    let normal = |y: f64, s: f64| Normal::new(0.0, (1.0 + s * s).sqrt()).unwrap().log_prob(y);
    Y8.iter().zip(SIGMA8).map(|(y, s)| normal(*y, s)).sum()
}

#[test]
fn a_per_point_guide_fits_on_minibatches_with_m_above_one() {
    let model = AllLocal::new(SIGMA8.to_vec(), Y8.to_vec()).unwrap();
    assert_eq!(model.local_latents(), ["z"]);
    let guide = PerPoint::new(&model).unwrap();
    let run = |parallelism, steps| {
        let config = FitConfig::new(Diwhvi::new(4, 4))
            .batch_size(4)
            .max_steps(steps)
            .seed(7)
            .parallelism(parallelism)
            .progress(false);
        fit(&model, &guide, Adam::new(0.02), &config).unwrap()
    };
    let start = run(Parallelism::SingleThread, 1).full_bound.unwrap();
    let fitted = run(Parallelism::SingleThread, 2000);
    let full = fitted
        .full_bound
        .expect("a minibatch fit reports the full bound");
    let exact = all_local_evidence();
    eprintln!(
        "per-point bound {full:?} (start {:.3}), exact log p(y) {exact:.4}",
        start.mean
    );
    // Below log p(y), and within 0.1 nats per point of it after the fit.
    assert!(
        full.mean < exact + 3.0 * full.std_error,
        "{full:?} vs {exact}"
    );
    assert!(full.mean > exact - 0.8, "{full:?} vs {exact}");
    assert!(full.mean > start.mean + 1.0, "{full:?} vs {start:?}");
    let (one, two) = (
        run(Parallelism::SingleThread, 200),
        run(Parallelism::AllCores, 200),
    );
    assert_eq!(one.params, two.params);
    assert_eq!(one.trace, two.trace);
}
