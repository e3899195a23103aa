//! Semi-implicit priors (DSIVI, `#[prior_mixing]`): the importance-sampled
//! log prior against closed forms (a bound below the exact value that
//! tightens with K, exact with the optimal proposal), gradients against
//! finite differences, a fit whose evidence is known, and reproduction.

use iwhvi::distributions::{Distribution, Gamma, Normal, StudentT};
use iwhvi::fit::{FitConfig, fit};
use iwhvi::gradient::{ForwardEngine, Parallelism};
use iwhvi::guide::{HierarchicalGuide, MeanField, SemiImplicit};
use iwhvi::model::Model;
use iwhvi::objective::{
    Diwhvi, GradientEstimator, StepNoise, log_evidence, value_and_gradient_with_theta,
};
use iwhvi::optim::Adam;
use iwhvi::semi_implicit_prior::{log_density, reference_noise};
use iwhvi::special::LN_SQRT_2PI;
use iwhvi::tape::TapeEngine;
use iwhvi::variational;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

/// `z | ζ ~ N(ζ, 0.5)`, `ζ ~ N(0, 1)`: `p(z) = N(z | 0, √1.25)`, and
/// `p(ζ | z) = N(z / 1.25, √(0.25 / 1.25))`, affine in `z`.
#[variational]
struct GaussianMixing {
    #[prior_mixing(Normal(0.0, 1.0), of = z, k = 8)]
    zeta: f64,
    #[latent(Normal(zeta, 0.5))]
    z: f64,
}

/// The Student-t prior with 4 degrees of freedom as a Gaussian scale
/// mixture: `z | λ ~ N(0, 1/√λ)`, `λ ~ Gamma(2, 2)`.
#[variational]
struct StudentMixture {
    #[prior_mixing(Gamma(2.0, 2.0), of = z, k = 16)]
    lambda: f64,
    #[latent(Normal(0.0, 1.0 / lambda.sqrt()))]
    z: f64,
}

/// The Student-t scale mixture with observations `y_n ~ N(z, 1)`.
#[variational]
struct StudentRegression {
    #[prior_mixing(Gamma(2.0, 2.0), of = z, k = 6)]
    lambda: f64,
    #[latent(Normal(0.0, 1.0 / lambda.sqrt()))]
    z: f64,
    #[observe(Normal(z, 1.0), for i)]
    y: Vec<f64>,
}

/// [`GaussianMixing`] with observations `y_n ~ N(z, 1)`: `y ~ N(0, I +
/// 1.25 · 1 1ᵀ)`.
#[variational]
struct GaussianMixingObserved {
    #[prior_mixing(Normal(0.0, 1.0), of = z, k = 8)]
    zeta: f64,
    #[latent(Normal(zeta, 0.5))]
    z: f64,
    #[observe(Normal(z, 1.0), for i)]
    y: Vec<f64>,
}

/// `log p(y)` for `z ~ N(0, tau)`, `y_n ~ N(z, 1)`: covariance `I + tau²
/// 1 1ᵀ` with determinant `1 + N tau²` and inverse `I − tau² 1 1ᵀ / (1 + N
/// tau²)`.
fn log_marginal(y: &[f64], tau: f64) -> f64 {
    let n = y.len() as f64;
    let t2 = tau * tau;
    let squares: f64 = y.iter().map(|v| v * v).sum();
    let s: f64 = y.iter().sum();
    -0.5 * (1.0 + n * t2).ln() - 0.5 * (squares - t2 * s * s / (1.0 + n * t2)) - n * LN_SQRT_2PI
}

/// `log p(z | λ) + log p(λ) + log λ` at `λ = exp(η)`: the Student
/// mixture's joint on the mixing variable's unconstrained coordinate.
fn student_joint(z: f64, eta: f64) -> f64 {
    let lambda = eta.exp();
    Normal::new(0.0, 1.0 / lambda.sqrt()).unwrap().log_prob(z)
        + Gamma::new(2.0, 2.0).unwrap().log_prob(lambda)
        + eta
}

fn normal_noise(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.sample(StandardNormal)).collect()
}

/// Mean and standard error.
fn mean_se(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// On the Student-t prior (exact log density known), the estimate with
/// the untrained proposal `η ~ N(0, 1)` is below `log p(z)` in
/// expectation, tightens as K grows, and is within standard errors of it
/// at large K.
#[test]
fn bound_is_below_the_exact_log_prior_and_tightens_with_k() {
    let z = 2.5;
    let exact = StudentT::new(4.0, 0.0, 1.0).unwrap().log_prob(z);
    let mut rng = StdRng::seed_from_u64(7);
    let replicates = 8000;
    let mut gaps = Vec::new();
    for k in [1usize, 4, 16, 64, 1024] {
        let values: Vec<f64> = (0..replicates)
            .map(|_| {
                let noise = normal_noise(&mut rng, k);
                log_density(z, &[0.0; 4], &noise, |eta| student_joint(z, eta))
            })
            .collect();
        let (mean, se) = mean_se(&values);
        assert!(
            mean < exact + 3.0 * se,
            "K = {k}: mean {mean} ± {se} above log p(z) = {exact}"
        );
        gaps.push((k, exact - mean, se));
    }
    // Each fourfold K closes the gap by clearly more than the errors.
    for pair in gaps.windows(2) {
        let ((k0, g0, s0), (k1, g1, s1)) = (pair[0], pair[1]);
        assert!(
            g1 < g0 - 3.0 * (s0 * s0 + s1 * s1).sqrt() || g0 < 1e-3,
            "gap at K = {k1}: {g1} ± {s1}, at K = {k0}: {g0} ± {s0}"
        );
    }
    let (_, gap, se) = gaps[gaps.len() - 1];
    assert!(gaps[0].1 > 0.05, "K = 1 leaves a visible gap: {gaps:?}");
    assert!(gap.abs() < 3.0 * se + 1e-3, "K = 1024: gap {gap} ± {se}");
}

/// The generated log joint is the importance-sampled estimate with the
/// model's learned proposal and the given noise (the reference quantiles
/// without); with the optimal proposal it is `log p(z)` exactly.
#[test]
fn generated_prior_term_is_the_estimate_and_exact_at_the_optimal_proposal() {
    let mut model = GaussianMixing::new().unwrap();
    assert_eq!(model.prior_noise_dim(), 8);
    assert_eq!(model.theta_dim(), 4);
    assert_eq!(
        model.theta_layout().element_names(),
        [
            "zeta_proposal[0]",
            "zeta_proposal[1]",
            "zeta_proposal[2]",
            "zeta_proposal[3]"
        ]
    );
    let mut rng = StdRng::seed_from_u64(3);
    let noise = normal_noise(&mut rng, 8);
    let z = 0.9;
    let joint = |eta: f64| {
        Normal::new(eta, 0.5).unwrap().log_prob(z) + Normal::new(0.0, 1.0).unwrap().log_prob(eta)
    };
    let with_noise = model.log_joint_with_noise(&[z], &noise);
    let by_hand = log_density(z, &[0.0; 4], &noise, joint);
    assert!(
        (with_noise - by_hand).abs() < 1e-12,
        "{with_noise} vs {by_hand}"
    );
    let reference = log_density(z, &[0.0; 4], &reference_noise(8), joint);
    assert!((model.log_joint(&[z]) - reference).abs() < 1e-12);
    assert_ne!(with_noise, model.log_joint(&[z]), "the noise is used");
    // A short slice falls back to the reference noise.
    assert_eq!(
        model.log_joint_with_noise(&[z], &noise[..3]),
        model.log_joint(&[z])
    );
    // The optimal proposal: every weight is p(z).
    let optimal = [0.0, 1.0 / 1.25, 0.5 * (0.25f64 / 1.25).ln(), 0.0];
    model.set_theta(&optimal).unwrap();
    let exact = Normal::new(0.0, 1.25f64.sqrt()).unwrap().log_prob(z);
    for _ in 0..5 {
        let noise = normal_noise(&mut rng, 8);
        let value = model.log_joint_with_noise(&[z], &noise);
        assert!((value - exact).abs() < 1e-12, "{value} vs {exact}");
        let through_theta = model.log_joint_theta_with_noise(&optimal, &[z], &noise);
        assert!((through_theta - exact).abs() < 1e-12);
    }
    // A positive mixing variable: its log transform and Jacobian.
    let student = StudentMixture::new().unwrap();
    let noise = normal_noise(&mut rng, 16);
    let value = student.log_joint_with_noise(&[z], &noise);
    let by_hand = log_density(z, &[0.0; 4], &noise, |eta| student_joint(z, eta));
    assert!((value - by_hand).abs() < 1e-12, "{value} vs {by_hand}");
    // The prior draws ζ then z.
    let draw = student.sample_prior(&mut rng).unwrap();
    assert!(draw.z.is_finite());
}

/// One engine's step: writes the gradient, returns the bound.
type Run<'a> = dyn Fn(&mut [f64]) -> f64 + 'a;

/// The bound's gradient in the guide's parameters and in the learned
/// proposal against central differences on the same noise, forward and
/// tape, on a hierarchical guide.
#[test]
fn gradients_match_finite_differences() {
    let y = vec![0.3, 1.9, 1.2, 2.4];
    let model = StudentRegression::new(y).unwrap();
    let guide = SemiImplicit::new(1, 2);
    let mut rng = StdRng::seed_from_u64(11);
    let params = guide.init_params(&mut rng);
    let mut noise =
        StepNoise::new(&guide, Diwhvi::new(3, 4)).with_prior_noise(model.prior_noise_dim());
    noise.redraw(&mut rng);
    let theta = [0.2, -0.3, -0.4, 0.1];
    let p = params.len();
    let value_at = |params: &[f64], theta: &[f64]| {
        let mut g = vec![0.0; p + 4];
        value_and_gradient_with_theta(
            &model,
            &guide,
            params,
            theta,
            &noise,
            &ForwardEngine::<4>::new(),
            GradientEstimator::Reparameterized,
            &mut g,
        )
        .unwrap()
    };
    let step = |engine: &dyn Fn(&mut [f64]) -> f64, g: &mut [f64]| engine(g);
    let forward = |g: &mut [f64]| {
        value_and_gradient_with_theta(
            &model,
            &guide,
            &params,
            &theta,
            &noise,
            &ForwardEngine::<4>::new(),
            GradientEstimator::Reparameterized,
            g,
        )
        .unwrap()
    };
    let tape = |g: &mut [f64]| {
        value_and_gradient_with_theta(
            &model,
            &guide,
            &params,
            &theta,
            &noise,
            &TapeEngine,
            GradientEstimator::Reparameterized,
            g,
        )
        .unwrap()
    };
    let engines: [&Run<'_>; 2] = [&forward, &tape];
    let h = 1e-5;
    for engine in engines {
        let mut g = vec![0.0; p + 4];
        let value = step(engine, &mut g);
        assert!((value - value_at(&params, &theta)).abs() < 1e-10);
        for j in 0..4 {
            let (mut up, mut down) = (theta, theta);
            up[j] += h;
            down[j] -= h;
            let fd = (value_at(&params, &up) - value_at(&params, &down)) / (2.0 * h);
            let analytic = g[p + j];
            assert!(
                (fd - analytic).abs() < 1e-6 * (1.0 + fd.abs()),
                "theta[{j}]: finite differences {fd}, gradient {analytic}"
            );
        }
        for i in 0..p {
            let (mut up, mut down) = (params.clone(), params.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (value_at(&up, &theta) - value_at(&down, &theta)) / (2.0 * h);
            assert!(
                (fd - g[i]).abs() < 1e-6 * (1.0 + fd.abs()),
                "param {i}: finite differences {fd}, gradient {}",
                g[i]
            );
        }
    }
    // The proposal's parameters do move the bound.
    let mut g = vec![0.0; p + 4];
    forward(&mut g);
    assert!(g[p..].iter().any(|v| v.abs() > 1e-3), "{:?}", &g[p..]);
}

fn observations(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let z = 1.25f64.sqrt() * rng.sample::<f64, _>(StandardNormal);
    (0..n)
        .map(|_| z + rng.sample::<f64, _>(StandardNormal))
        .collect()
}

/// A fit of a model whose evidence is known (the Gaussian mixing prior is
/// `N(0, √1.25)` in closed form): the guide and the proposal learned
/// jointly, the evidence estimate a lower bound within a few hundredths of
/// `log p(y)`, and tighter than with the untrained proposal.
#[test]
fn fit_with_a_semi_implicit_prior_bounds_the_known_evidence() {
    let y = observations(5, 21);
    let exact = log_marginal(&y, 1.25f64.sqrt());
    let model = GaussianMixingObserved::new(y.clone()).unwrap();
    let guide = MeanField::new(1);
    let config = FitConfig::new(Diwhvi::iwae(8))
        .max_steps(3000)
        .progress(false)
        .seed(4);
    let fitted = fit(&model, &guide, Adam::new(0.02), &config).unwrap();
    let learned = fitted.learned().unwrap();
    let proposal = learned.get("zeta_proposal").unwrap();
    assert_eq!(proposal.len(), 4);
    let mut fitted_model = GaussianMixingObserved::new(y.clone()).unwrap();
    fitted_model.set_theta(&fitted.theta).unwrap();
    let mut rng = StdRng::seed_from_u64(9);
    let trained = log_evidence(&fitted_model, &guide, &fitted.params, 64, 0, 40, &mut rng).unwrap();
    let se = trained.std_error;
    eprintln!("exact {exact}, trained {trained:?}, proposal {proposal:?}");
    assert!(
        trained.mean < exact + 3.0 * se,
        "bound {trained:?} above log p(y) = {exact}"
    );
    assert!(
        trained.mean > exact - 0.03,
        "bound {trained:?} far below log p(y) = {exact}"
    );
    // One outer sample (the ELBO with the prior's K = 8 draws): here the
    // outer average does not hide the prior's gap, and the learned
    // proposal closes most of it.
    let elbo = |model: &GaussianMixingObserved, rng: &mut StdRng| {
        log_evidence(model, &guide, &fitted.params, 1, 0, 4000, rng).unwrap()
    };
    let (trained, untrained) = (elbo(&fitted_model, &mut rng), elbo(&model, &mut rng));
    eprintln!("ELBO: trained {trained:?}, untrained {untrained:?}");
    assert!(
        trained.mean
            > untrained.mean
                + 3.0 * (trained.std_error.powi(2) + untrained.std_error.powi(2)).sqrt(),
        "trained {trained:?}, untrained {untrained:?}"
    );
}

/// A seed reproduces a fit bit for bit, on one thread or all.
#[test]
fn fits_reproduce_bit_for_bit() {
    let model = StudentRegression::new(vec![0.5, 1.5, -0.2]).unwrap();
    let guide = SemiImplicit::new(1, 2);
    let run = |parallelism| {
        let config = FitConfig::new(Diwhvi::new(3, 2))
            .max_steps(150)
            .progress(false)
            .parallelism(parallelism);
        fit(&model, &guide, Adam::new(0.02), &config).unwrap()
    };
    let one = run(Parallelism::SingleThread);
    let two = run(Parallelism::SingleThread);
    let all = run(Parallelism::AllCores);
    assert_eq!(
        (&one.params, &one.theta, &one.trace),
        (&two.params, &two.theta, &two.trace)
    );
    assert_eq!((&one.params, &one.theta), (&all.params, &all.theta));
    assert_ne!(one.theta, model.theta(), "the proposal was learned");
}
