//! `#[transformed]` (Stan's transformed parameters, issue 14): scalar,
//! element-by-element and whole-vector values read by later priors,
//! observations (plates, affine and not), factors and derived quantities;
//! the log joint and its gradient against a hand-written one to 1e-12,
//! prior draws, and the values reported with the derived quantities.

use iwhvi::distributions::{Distribution, HalfCauchy, Normal};
use iwhvi::model::Model;
use iwhvi::tape::TapeEngine;
use iwhvi::{Differentiable, ForwardEngine, Scalar, variational};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Non-centred eight schools written with transformed values, line by
/// line as the Stan program's `transformed parameters` block.
#[variational]
pub(crate) struct TransformedSchools {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfCauchy(5.0))]
    tau: f64,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    theta_tilde: Vec<f64>,
    // real tau_sq = square(tau);
    #[transformed(tau * tau)]
    tau_sq: f64,
    // vector[J] theta = mu + tau * theta_tilde;
    #[transformed(mu + tau * theta_tilde[j], for j, len = sigma.len())]
    theta: Vec<f64>,
    // vector[J] shifted = theta + tau_sq;
    #[transformed(theta + tau_sq)]
    shifted: Vec<f64>,
    // array[2] real pair = { shifted[1] / 2, shifted[2] / 2 };
    #[transformed({ let half = 0.5; shifted[k] * half }, for k)]
    pair: [f64; 2],
    // extra ~ normal(pair[1], tau_sq + 1);
    #[latent(Normal(pair[0], tau_sq + 1.0))]
    extra: f64,
    // y ~ normal(theta, sigma);
    #[observe(Normal(theta[j], sigma[j]), for j)]
    y: Vec<f64>,
    // z ~ normal(shifted .* theta + extra, 2);
    #[observe(Normal(shifted[j] * theta[j] + extra, 2.0), for j)]
    z: Vec<f64>,
    // target += -0.5 * tau_sq;
    #[factor(-0.5 * tau_sq)]
    shrink: (),
    #[derived(theta[0] - pair[1])]
    gap: f64,
}

pub(crate) const SIGMA: [f64; 4] = [15.0, 10.0, 16.0, 11.0];
pub(crate) const Y: [f64; 4] = [28.0, 8.0, -3.0, 7.0];
pub(crate) const Z: [f64; 4] = [1.0, -0.5, 2.0, 0.3];

pub(crate) fn transformed_schools() -> TransformedSchools {
    TransformedSchools::new(SIGMA.to_vec(), Y.to_vec(), Z.to_vec()).unwrap()
}

/// The same log joint by hand, over any scalar: u = (mu, ln tau,
/// theta_tilde[4], extra).
struct ByHand;

fn normal<T: Scalar>(x: T, loc: T, scale: T) -> T {
    Normal::new(loc, scale).unwrap().log_prob(x)
}

impl Differentiable for ByHand {
    fn eval<T: Scalar>(&self, u: &[T]) -> T {
        let c = T::constant;
        let mu = u[0];
        let tau = u[1].exp();
        let theta_tilde = &u[2..6];
        let extra = u[6];
        let mut lp = normal(mu, c(0.0), c(5.0));
        lp += u[1] + HalfCauchy::new(c(5.0)).unwrap().log_prob(tau);
        for &t in theta_tilde {
            lp += normal(t, c(0.0), c(1.0));
        }
        let tau_sq = tau * tau;
        let theta: Vec<T> = theta_tilde.iter().map(|&t| mu + tau * t).collect();
        let shifted: Vec<T> = theta.iter().map(|&t| t + tau_sq).collect();
        let pair = [shifted[0] * 0.5, shifted[1] * 0.5];
        lp += normal(extra, pair[0], tau_sq + 1.0);
        for j in 0..4 {
            lp += normal(c(Y[j]), theta[j], c(SIGMA[j]));
        }
        for j in 0..4 {
            lp += normal(c(Z[j]), shifted[j] * theta[j] + extra, c(2.0));
        }
        lp + tau_sq * -0.5
    }
}

struct Joint<'a>(&'a TransformedSchools);

impl Differentiable for Joint<'_> {
    fn eval<T: Scalar>(&self, u: &[T]) -> T {
        self.0.log_joint(u)
    }
}

fn points(count: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| (0..7).map(|_| rng.random_range(-1.5..1.5)).collect())
        .collect()
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0),
        "{what}: {a} vs {b}"
    );
}

#[test]
fn transformed_values_match_the_hand_written_log_joint_and_gradient() {
    let model = transformed_schools();
    assert_eq!(model.dim(), 7, "transformed values add no coordinates");
    for u in points(20, 1) {
        close(model.log_joint(&u[..]), ByHand.eval(&u[..]), "log joint");
        let runs = [
            (
                "tape",
                TapeEngine.value_and_gradient(&Joint(&model), &u),
                TapeEngine.value_and_gradient(&ByHand, &u),
            ),
            (
                "forward<8>",
                ForwardEngine::<8>::new().value_and_gradient(&Joint(&model), &u),
                ForwardEngine::<8>::new().value_and_gradient(&ByHand, &u),
            ),
            (
                "forward<2>",
                ForwardEngine::<2>::new().value_and_gradient(&Joint(&model), &u),
                ForwardEngine::<2>::new().value_and_gradient(&ByHand, &u),
            ),
        ];
        for (engine, (v, g), (w, h)) in runs {
            close(v, w, engine);
            for (k, (a, b)) in g.iter().zip(&h).enumerate() {
                close(*a, *b, &format!("{engine}: ∂/∂u[{k}]"));
            }
        }
    }
}

#[test]
fn transformed_values_are_reported_with_the_derived_quantities() {
    let model = transformed_schools();
    let u = &points(1, 2)[0];
    let latents = model.latents(u).unwrap();
    let derived = model.derived_quantities(&latents);
    let tau = latents.tau;
    assert_eq!(derived.tau_sq, tau * tau);
    for j in 0..4 {
        assert_eq!(derived.theta[j], latents.mu + tau * latents.theta_tilde[j]);
        assert_eq!(derived.shifted[j], derived.theta[j] + tau * tau);
    }
    assert_eq!(
        derived.pair,
        [derived.shifted[0] * 0.5, derived.shifted[1] * 0.5]
    );
    assert_eq!(derived.gap, derived.theta[0] - derived.pair[1]);
    // By name, as `Posterior::derived` reads them.
    let named = model.derived(&model.layout().constrain(u).unwrap());
    assert_eq!(named.get("theta").unwrap(), &derived.theta[..]);
    assert_eq!(named.get("tau_sq").unwrap(), &[tau * tau]);
    assert_eq!(named.get("pair").unwrap(), &derived.pair[..]);
    assert_eq!(named.get("gap").unwrap(), &[derived.gap]);
}

#[test]
fn transformed_values_feed_the_prior_draws_and_simulations() {
    let model = transformed_schools();
    let mut rng = StdRng::seed_from_u64(3);
    let n = 4000;
    // extra ~ N(pair[0], tau² + 1): its standardised draws are N(0, 1).
    let mut standardised = Vec::with_capacity(n);
    for _ in 0..n {
        let prior = model.sample_prior(&mut rng).unwrap();
        let tau_sq = prior.tau * prior.tau;
        let pair0 = (prior.mu + prior.tau * prior.theta_tilde[0] + tau_sq) * 0.5;
        standardised.push((prior.extra - pair0) / (tau_sq + 1.0));
        let simulated = model.simulate(&prior, &mut rng).unwrap();
        assert_eq!(simulated.z.len(), 4);
    }
    let mean = standardised.iter().sum::<f64>() / n as f64;
    let var = standardised.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
    assert!(mean.abs() < 0.06, "mean {mean}");
    assert!((var - 1.0).abs() < 0.08, "variance {var}");
    // The checked walk finds nothing wrong at a finite point.
    assert!(model.first_invalid_term(&points(1, 4)[0]).is_none());
}
