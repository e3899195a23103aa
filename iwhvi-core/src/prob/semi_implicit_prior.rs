//! Semi-implicit priors (doubly semi-implicit VI, DSIVI): a prior
//! `p(z) = ∫ p(z | ζ) p(ζ) dζ` whose density has no closed form, bounded
//! below by importance sampling over its mixing variable `ζ`.
//!
//! # The bound
//!
//! With a proposal `ν(ζ | z)` and `ζ_1 … ζ_K ~ ν(· | z)` independent,
//!
//! ```text
//! p̂_K(z) = (1/K) Σ_k p(z | ζ_k) p(ζ_k) / ν(ζ_k | z)
//! ```
//!
//! is an unbiased estimate of `p(z)` (`E p̂_K(z) = p(z)` whatever `ν` is,
//! as long as it covers where `p(z | ζ) p(ζ)` is positive), so by Jensen's
//! inequality `E log p̂_K(z) ≤ log E p̂_K(z) = log p(z)`: a lower bound that
//! tightens as `K` grows (it is IWAE's bound with `ζ` in the place of the
//! latent, monotone in `K`), and equal to `log p(z)` for every `K` when
//! `ν(ζ | z) = p(ζ | z)`, the mixing variable's posterior given `z`.
//!
//! In a model `p(x, z) = p(x | z) p(z)` the estimate stays unbiased for
//! the joint, `E p(x | z) p̂_K(z) = p(x, z)`, and the DIWHVI bound
//! `E log (1/M) Σ_m p̂(x, u_m) / q̂(u_m)` is concave in each `p̂` term, so
//! replacing `p(x, u_m)` by its unbiased estimate (fresh `ζ` noise for each
//! outer sample `m`) only lowers it: the objective, `estimate_bound` and
//! `log_evidence` all remain lower bounds on `log p(x)`, looser by at most
//! the prior's own gap `log p(z) − E log p̂_K(z)`, which `ν` is trained to
//! close (its parameters are learned jointly with the guide's, as model
//! parameters).
//!
//! The proposal here is a Gaussian on `ζ`'s unconstrained coordinate
//! `η` (`ζ = T(η)`) whose mean and log-scale are affine in `z`'s
//! unconstrained coordinate `u`:
//! `η = (a + b u) + exp(c + d u) ε`, `ε ~ N(0, 1)`, with proposal
//! parameters `[a, b, c, d]`.
//!
//! # Choosing `K`
//!
//! The gap shrinks like `Var[p̂_1 / p] / (2K)` for large `K`: with a good
//! (learned) `ν` a K of 8–32 leaves a gap of hundredths of a nat per
//! latent; a prior whose mixing posterior `p(ζ | z)` is far from Gaussian in
//! `η` needs more. Each evaluation of the log joint costs `K` evaluations of
//! `p(z | ζ) p(ζ)`.

use std::cell::RefCell;

use crate::scalar::Scalar;
use crate::special;

/// `ln √(2π)`.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// The number of proposal parameters per mixed latent: `[a, b, c, d]`,
/// the mean `a + b u` and the log-scale `c + d u` of `ν(η | u)`.
pub const PROPOSAL_PARAMS: usize = 4;

/// `log p̂_K(z) = log (1/K) Σ_k exp(joint(η_k) − log ν(η_k | u))`, the
/// importance-sampled log prior of a semi-implicit prior (see the
/// [module](self) for why it is a lower bound in expectation on
/// `log p(z)`): `η_k = (a + b u) + exp(c + d u) ε_k` for the standard
/// normal `noise` `ε_1 … ε_K` (`K = noise.len()`), `proposal = [a, b, c, d]`,
/// and `joint(η)` the caller's `log p(z | ζ) + log p(ζ) + log|dζ/dη|` at
/// `ζ = T(η)` (the mixing variable's density on its unconstrained
/// coordinate).
///
/// Generic over the scalar, so its derivatives in `u`, the proposal's
/// parameters and whatever `joint` reads come from any engine; the noise
/// is fixed (a reparameterised draw).
///
/// # Panics
/// When `proposal` has fewer than [`PROPOSAL_PARAMS`] entries or `noise` is
/// empty (generated code passes neither).
///
/// ```
/// use iwhvi_core::semi_implicit_prior::{log_density, reference_noise};
/// use iwhvi_core::distributions::{Distribution, Normal};
///
/// // z | ζ ~ N(ζ, 1), ζ ~ N(0, 1): p(z) = N(z | 0, 2), and p(ζ | z) =
/// // N(z/2, 1/2): with that proposal every weight is p(z) exactly.
/// let (z, half_var) = (0.7_f64, 0.5_f64);
/// let proposal = [0.0, 0.5, 0.5 * half_var.ln(), 0.0];
/// let joint = |eta: f64| {
///     Normal::new(eta, 1.0).unwrap().log_prob(z) + Normal::new(0.0, 1.0).unwrap().log_prob(eta)
/// };
/// let estimate = log_density(z, &proposal, &reference_noise(8), joint);
/// let exact = Normal::new(0.0, 2f64.sqrt()).unwrap().log_prob(z);
/// assert!((estimate - exact).abs() < 1e-12);
/// ```
pub fn log_density<T: Scalar>(
    u: T,
    proposal: &[T],
    noise: &[f64],
    mut joint: impl FnMut(T) -> T,
) -> T {
    let (a, b, c, d) = (proposal[0], proposal[1], proposal[2], proposal[3]);
    let mean = a + b * u;
    let log_scale = c + d * u;
    let scale = log_scale.exp();
    let terms: Vec<T> = noise
        .iter()
        .map(|&e| {
            let eta = mean + scale * e;
            // log ν(η | u) = −ε²/2 − log σ − ln √(2π).
            let log_nu = -log_scale - (0.5 * e * e + LN_SQRT_2PI);
            joint(eta) - log_nu
        })
        .collect();
    T::log_sum_exp(&terms) - (noise.len() as f64).ln()
}

/// `K` fixed standard normal values, the quantiles `Φ⁻¹((k + ½)/K)`: the
/// noise a model with a semi-implicit prior uses where no step noise is
/// given (`Model::log_joint`, and what is built on it: Laplace, the start
/// check, resampling weights). With it the estimate is a deterministic
/// function of `z`, close to `log p(z)` for a good proposal but not a
/// bound; `fit`, `estimate_bound` and `log_evidence` draw fresh noise.
///
/// ```
/// let e = iwhvi_core::semi_implicit_prior::reference_noise(4);
/// assert_eq!(e.len(), 4);
/// assert!((e[0] + e[3]).abs() < 1e-12 && e[0] < e[1]);
/// ```
pub fn reference_noise(k: usize) -> Vec<f64> {
    (0..k)
        .map(|i| std_normal_quantile((i as f64 + 0.5) / k as f64))
        .collect()
}

/// `Φ⁻¹(p)` for `p ∈ (0, 1)` by bisection on `Φ` (to the last bits; only
/// reference noise uses it).
fn std_normal_quantile(p: f64) -> f64 {
    let cdf = |x: f64| 0.5 * special::erfc(-x / std::f64::consts::SQRT_2);
    let (mut low, mut high) = (-40.0_f64, 40.0_f64);
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if mid == low || mid == high {
            break;
        }
        if cdf(mid) < p {
            low = mid;
        } else {
            high = mid;
        }
    }
    0.5 * (low + high)
}

thread_local! {
    /// The step noise of the evaluation under way (`with_noise`), read by
    /// the generated log joint's semi-implicit prior terms.
    static NOISE: RefCell<Option<Vec<f64>>> = const { RefCell::new(None) };
    /// The last reference noise computed, by `K`.
    static REFERENCE: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `noise` as the step noise that [`term`] reads (on this
/// thread; restored afterwards, also on unwinding). What the generated
/// `Model::log_joint_with_noise` does.
#[doc(hidden)]
pub fn with_noise<R>(noise: &[f64], f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Vec<f64>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            NOISE.with(|n| *n.borrow_mut() = previous);
        }
    }
    let previous = NOISE.with(|n| n.borrow_mut().replace(noise.to_vec()));
    let _restore = Restore(previous);
    f()
}

/// The generated code's semi-implicit prior term: [`log_density`] with the
/// `k` values of the step noise at `offset` when an evaluation under
/// [`with_noise`] supplied them, else with [`reference_noise`]`(k)`.
#[doc(hidden)]
pub fn term<T: Scalar>(
    u: T,
    proposal: &[T],
    offset: usize,
    k: usize,
    joint: impl FnMut(T) -> T,
) -> T {
    let mut joint = Some(joint);
    let given = NOISE.with(|n| {
        let n = n.borrow();
        match n.as_deref() {
            Some(noise) if noise.len() >= offset + k => {
                let joint = joint.take().expect("called once");
                Some(log_density(u, proposal, &noise[offset..offset + k], joint))
            }
            _ => None,
        }
    });
    if let Some(value) = given {
        return value;
    }
    let joint = joint.take().expect("not called above");
    REFERENCE.with(|r| {
        let mut r = r.borrow_mut();
        if r.len() != k {
            *r = reference_noise(k);
        }
        log_density(u, proposal, &r, joint)
    })
}
