//! Estimates from the bound: its Monte Carlo mean over replicates, the
//! sandwich on `log q(u)`, the guide's entropy and ELBO brackets, and
//! `log p(x)`.

use rand::Rng;

use super::weights::{Buffers, Stop};
use super::{Diwhvi, DiwhviObjective, StepNoise};
use crate::gradient::Differentiable;
use crate::guide::HierarchicalGuide;
use crate::input::{
    DEFAULT_MEMORY_BUDGET, InputError, check_dimensions, check_draws, check_params,
};
use crate::model::Model;

/// A Monte Carlo estimate with its standard error.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Estimate {
    /// The mean of the replicates.
    pub mean: f64,
    /// `sd / √n`.
    pub std_error: f64,
    /// The number of replicates `n`.
    pub replicates: usize,
}

impl Estimate {
    /// The mean and standard error of `values`. With one value the
    /// standard error is NaN, with none the mean too: the estimators of
    /// this crate refuse fewer than two replicates
    /// ([`InputError::TooFewDraws`]) before they get here.
    pub fn from_values(values: &[f64]) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = if values.len() > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            f64::NAN
        };
        Self {
            mean,
            std_error: (var / n).sqrt(),
            replicates: values.len(),
        }
    }
}

impl std::fmt::Display for Estimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.4} ± {:.4}", self.mean, self.std_error)
    }
}

/// The DIWHVI bound at `params`, averaged over `replicates` independent
/// draws of a step's noise, with its standard error.
///
/// # Errors
/// [`InputError`]: a guide for another `D` than the model's
/// ([`DimensionMismatch`](InputError::DimensionMismatch)), parameters of
/// the wrong length or not finite, fewer than two replicates
/// ([`TooFewDraws`](InputError::TooFewDraws)), or step noise over
/// [`DEFAULT_MEMORY_BUDGET`] ([`TooLarge`](InputError::TooLarge)).
///
/// Takes any generator of [`iwhvi::rand`](crate::rand) (the `rand` 0.10 that
/// this library re-exports, so that versions cannot clash), e.g.
/// `iwhvi::rand::rngs::StdRng`.
///
/// ```
/// use iwhvi_core::guide::MeanField;
/// use iwhvi_core::model::{Layout, LatentSpec, Model};
/// use iwhvi_core::objective::{estimate_bound, Diwhvi};
/// use iwhvi_core::transforms::Transform;
/// use iwhvi_core::Scalar;
/// use rand::SeedableRng;
///
/// /// A standard normal "posterior" with log p(x) = 0.
/// struct StdNormal;
/// impl Model for StdNormal {
///     fn layout(&self) -> Layout {
///         Layout::new(vec![LatentSpec::scalar("z", Transform::Identity)])
///     }
///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
///         iwhvi_core::guide::std_normal_log_density(u)
///     }
/// }
///
/// // The guide equal to the posterior: the ELBO is exactly 0 on every draw.
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let estimate = estimate_bound(&StdNormal, &MeanField::new(1), &[0.0, 0.0], Diwhvi::elbo(), 50, &mut rng)?;
/// assert!(estimate.mean.abs() < 1e-12 && estimate.std_error < 1e-12);
/// # Ok::<(), iwhvi_core::input::InputError>(())
/// ```
pub fn estimate_bound<Mo: Model, G: HierarchicalGuide, R: Rng + ?Sized>(
    model: &Mo,
    guide: &G,
    params: &[f64],
    objective: Diwhvi,
    replicates: usize,
    rng: &mut R,
) -> Result<Estimate, InputError> {
    estimate_bound_within(
        model,
        guide,
        params,
        (objective, replicates),
        DEFAULT_MEMORY_BUDGET,
        rng,
    )
}

/// [`estimate_bound`] with the step noise checked against `memory_budget`
/// bytes instead of [`DEFAULT_MEMORY_BUDGET`] (`fit`'s full-data bound uses
/// the fit's own budget).
pub(crate) fn estimate_bound_within<Mo: Model, G: HierarchicalGuide, R: Rng + ?Sized>(
    model: &Mo,
    guide: &G,
    params: &[f64],
    (objective, replicates): (Diwhvi, usize),
    memory_budget: u64,
    rng: &mut R,
) -> Result<Estimate, InputError> {
    check_dimensions(model, guide)?;
    check_params(guide, params)?;
    check_draws(replicates)?;
    let mut noise = StepNoise::try_for_model(model, guide, objective, memory_budget)?;
    let values: Vec<f64> = (0..replicates)
        .map(|_| {
            noise.redraw(rng);
            DiwhviObjective::new(model, guide, &noise).eval(params)
        })
        .collect();
    Ok(Estimate::from_values(&values))
}

/// The sandwich on `log q(u)` at one draw `u ~ q`: `U_K(u) ≥ log q(u)` and
/// `L_K(u) ≤ log q(u)` in expectation.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct LogQSandwich {
    /// `U_K(u)`.
    pub upper: f64,
    /// `L_K(u)`; `None` at `K = 0` for a hierarchical guide (the lower
    /// bound needs at least one draw from the reverse model); `U` itself
    /// for a guide without mixing variables, whose `log q` is exact.
    pub lower: Option<f64>,
}

/// `U_K(u)`: the upper bound on `log q(u)` from `ψ₀` (the draw that made
/// `u`) and `ψ₁ … ψ_K ~ τ(ψ | u)`, with the lower bound `L_K(u)` from
/// `ψ₁ … ψ_K` alone; `u` is drawn from the guide with the noise of outer
/// sample `m` of `noise`. Returns `u` too.
///
/// # Errors
/// [`InputError`]: parameters of the wrong length or not finite, noise
/// drawn for another guide ([`NoiseMismatch`](InputError::NoiseMismatch)),
/// or `m` past the noise's `M`
/// ([`OuterSampleOutOfRange`](InputError::OuterSampleOutOfRange)).
pub fn upper_bound_log_q<G: HierarchicalGuide>(
    guide: &G,
    params: &[f64],
    noise: &StepNoise,
    m: usize,
) -> Result<(LogQSandwich, Vec<f64>), InputError> {
    check_params(guide, params)?;
    noise.check_fits(guide, m)?;
    Ok(sandwich(guide, params, noise, m))
}

/// [`upper_bound_log_q`] for arguments already checked against each other.
pub(crate) fn sandwich<G: HierarchicalGuide>(
    guide: &G,
    params: &[f64],
    noise: &StepNoise,
    m: usize,
) -> (LogQSandwich, Vec<f64>) {
    let mut buffers = Buffers::new(guide, params, Stop::Nothing);
    buffers.draw_outer(guide, params, noise, m);
    buffers.inner_weights(guide, params, noise, m, Stop::Nothing);
    let upper = buffers.rows().upper();
    let lower = if guide.mixing_dim() == 0 {
        Some(upper)
    } else if noise.objective().k() > 0 {
        Some(buffers.rows().lower())
    } else {
        None
    };
    (LogQSandwich { upper, lower }, buffers.u)
}

/// Bounds on the guide's entropy `H[q] = −E log q(u)` and on the ELBO of
/// its exact marginal, `E[log p(x, u) − log q(u)] = log p(x) − KL(q ‖ p(·|x))`,
/// from the sandwich with `K` inner samples over `draws` draws of `u`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct GuideDiagnostics {
    /// `−E U_K ≤ H[q]` (in expectation).
    pub entropy_lower: Estimate,
    /// `−E L_K ≥ H[q]` (in expectation).
    pub entropy_upper: Estimate,
    /// `E[log p − U_K] ≤ ELBO of q`, so `KL(q ‖ posterior) ≤ log p(x) −
    /// elbo_lower`; the gap shrinks to the KL as `K` grows.
    pub elbo_lower: Estimate,
    /// `E[log p − L_K] ≥ ELBO of q`, so `KL ≥ log p(x) − elbo_upper`.
    pub elbo_upper: Estimate,
}

impl GuideDiagnostics {
    /// The bracket `[log_evidence − elbo_upper, log_evidence − elbo_lower]`
    /// on `KL(q ‖ p(·|x))` given an estimate of `log p(x)`. With the exact
    /// `log p(x)` both ends hold (in expectation). [`log_evidence`] is a
    /// lower bound on `log p(x)`: with it the lower end still holds, and
    /// the upper end falls short of a bound by the estimate's own gap
    /// (small when its `M` and `K` are large).
    pub fn kl_bracket(&self, log_evidence: f64) -> (f64, f64) {
        (
            log_evidence - self.elbo_upper.mean,
            log_evidence - self.elbo_lower.mean,
        )
    }
}

/// Estimates [`GuideDiagnostics`] with `k` inner samples over `draws`
/// draws of `u ~ q`.
///
/// # Errors
/// [`InputError`]: a guide for another `D` than the model's, parameters
/// of the wrong length or not finite, `k = 0`
/// ([`NoInnerSamples`](InputError::NoInnerSamples): the lower bound `L_K`
/// needs an inner sample; for `U_0`, HVM's bound, call
/// [`upper_bound_log_q`] with a `K = 0` [`StepNoise`]), fewer than two
/// draws, or noise over [`DEFAULT_MEMORY_BUDGET`].
///
/// Takes any generator of [`iwhvi::rand`](crate::rand) (the `rand` 0.10 that
/// this library re-exports, so that versions cannot clash), e.g.
/// `iwhvi::rand::rngs::StdRng`.
pub fn guide_diagnostics<Mo: Model, G: HierarchicalGuide, R: Rng + ?Sized>(
    model: &Mo,
    guide: &G,
    params: &[f64],
    k: usize,
    draws: usize,
    rng: &mut R,
) -> Result<GuideDiagnostics, InputError> {
    check_dimensions(model, guide)?;
    check_params(guide, params)?;
    if k == 0 {
        return Err(InputError::NoInnerSamples);
    }
    check_draws(draws)?;
    let mut noise =
        StepNoise::try_for_model(model, guide, Diwhvi::new(1, k), DEFAULT_MEMORY_BUDGET)?;
    let mut columns = [
        Vec::with_capacity(draws),
        Vec::with_capacity(draws),
        Vec::with_capacity(draws),
        Vec::with_capacity(draws),
    ];
    for _ in 0..draws {
        noise.redraw(rng);
        let (sandwich, u) = sandwich(guide, params, &noise, 0);
        // K ≥ 1 was checked above, and a guide without mixing variables
        // has its exact log q as the lower bound: never None here.
        let lower = sandwich.lower.unwrap_or(sandwich.upper);
        let log_p = model.log_joint_with_noise(&u, noise.prior_noise(0));
        columns[0].push(-sandwich.upper);
        columns[1].push(-lower);
        columns[2].push(log_p - sandwich.upper);
        columns[3].push(log_p - lower);
    }
    Ok(GuideDiagnostics {
        entropy_lower: Estimate::from_values(&columns[0]),
        entropy_upper: Estimate::from_values(&columns[1]),
        elbo_lower: Estimate::from_values(&columns[2]),
        elbo_upper: Estimate::from_values(&columns[3]),
    })
}

/// An estimate of `log p(x)`: the DIWHVI bound with many outer and inner
/// samples (it approaches `log p(x)` from below as both grow), averaged
/// over `replicates` draws.
///
/// # Errors
/// As [`estimate_bound`], and [`InputError::NoOuterSamples`] for `m = 0`.
///
/// Takes any generator of [`iwhvi::rand`](crate::rand) (the `rand` 0.10 that
/// this library re-exports, so that versions cannot clash), e.g.
/// `iwhvi::rand::rngs::StdRng`.
pub fn log_evidence<Mo: Model, G: HierarchicalGuide, R: Rng + ?Sized>(
    model: &Mo,
    guide: &G,
    params: &[f64],
    m: usize,
    k: usize,
    replicates: usize,
    rng: &mut R,
) -> Result<Estimate, InputError> {
    estimate_bound(
        model,
        guide,
        params,
        Diwhvi::try_new(m, k)?,
        replicates,
        rng,
    )
}

/// Why a diagnostic could not be computed from what it was given: the
/// one error type of the inference entry points, [`InputError`].
pub type DiagnosticsError = InputError;

/// Bounds on the mutual information `I(u; ψ) = E[log q(u | ψ) − log q(u)]`
/// between a hierarchical guide's latents and its mixing variable: how
/// much the mixing variable matters to the guide (0 for a guide that
/// ignores `ψ`, which is then a plain Gaussian).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct MutualInformation {
    /// `E[log q(u | ψ₀) − U_K(u)] ≤ I` (in expectation).
    pub lower: Estimate,
    /// `E[log q(u | ψ₀) − L_K(u)] ≥ I` (in expectation).
    pub upper: Estimate,
}

/// Bounds on `I(u; ψ)` from the sandwich on `log q(u)` (see
/// [`upper_bound_log_q`]): over `draws` joint draws `(ψ₀, u) ~ q(ψ) q(u | ψ)`
/// with `k` inner samples each, `log q(u | ψ₀) − U_K(u)` is below `I` and
/// `log q(u | ψ₀) − L_K(u)` above it, in expectation; both tighten as `k`
/// grows. A guide without mixing variables has `I = 0` exactly.
///
/// Takes any generator of [`iwhvi::rand`](crate::rand) (the `rand` 0.10 that
/// this library re-exports, so that versions cannot clash), e.g.
/// `iwhvi::rand::rngs::StdRng`.
///
/// # Errors
/// [`InputError`] for parameters of the wrong length or not finite,
/// `k = 0`, fewer than two draws, or noise over [`DEFAULT_MEMORY_BUDGET`].
///
/// ```
/// use iwhvi_core::guide::{HierarchicalGuide, SemiImplicit};
/// use iwhvi_core::objective::mutual_information;
/// use rand::SeedableRng;
///
/// // u = W ψ + b + σ ε with ψ ~ N(0, 1), W = (2), σ = 1: u ~ N(0, 5), and
/// // I(u; ψ) = ½ ln(1 + W²/σ²) = ½ ln 5.
/// let guide = SemiImplicit::new(1, 1);
/// let layout = guide.param_layout();
/// let mut params = vec![0.0; layout.len()];
/// params[layout.get("conditional.weight").unwrap().range.clone()].copy_from_slice(&[2.0]);
/// // The optimal reverse model τ(ψ | u) = N(2u/5, 1/5): V = 0.4, log r = ½ ln 0.2.
/// params[layout.get("reverse.weight").unwrap().range.clone()].copy_from_slice(&[0.4]);
/// params[layout.get("reverse.log_scale").unwrap().range.clone()].copy_from_slice(&[0.5 * 0.2f64.ln()]);
/// let mut rng = rand::rngs::StdRng::seed_from_u64(1);
/// let mi = mutual_information(&guide, &params, 4, 4000, &mut rng)?;
/// let exact = 0.5 * 5f64.ln();
/// // With the exact reverse model every weight is log q(u), so the two bounds
/// // meet; what is left is the Monte Carlo error of the mean over draws.
/// assert!((mi.upper.mean - mi.lower.mean).abs() < 1e-9);
/// assert!((mi.lower.mean - exact).abs() < 4.0 * mi.lower.std_error);
/// # Ok::<(), iwhvi_core::objective::DiagnosticsError>(())
/// ```
pub fn mutual_information<G: HierarchicalGuide, R: Rng + ?Sized>(
    guide: &G,
    params: &[f64],
    k: usize,
    draws: usize,
    rng: &mut R,
) -> Result<MutualInformation, DiagnosticsError> {
    check_params(guide, params)?;
    if k == 0 {
        return Err(InputError::NoInnerSamples);
    }
    check_draws(draws)?;
    let mut noise = StepNoise::try_new(guide, Diwhvi::new(1, k), DEFAULT_MEMORY_BUDGET)?;
    let mut buffers = Buffers::new(guide, params, Stop::Nothing);
    let (mut lower, mut upper_values) = (Vec::with_capacity(draws), Vec::with_capacity(draws));
    for _ in 0..draws {
        noise.redraw(rng);
        if guide.mixing_dim() == 0 {
            lower.push(0.0);
            upper_values.push(0.0);
            continue;
        }
        buffers.draw_outer(guide, params, &noise, 0);
        let log_conditional = buffers.log_conditional_at_psi0(guide, params);
        buffers.inner_weights(guide, params, &noise, 0, Stop::Nothing);
        let u_k = buffers.rows().upper();
        // L_K: the same mean over ψ₁ … ψ_K alone.
        let l_k = buffers.rows().lower();
        lower.push(log_conditional - u_k);
        upper_values.push(log_conditional - l_k);
    }
    Ok(MutualInformation {
        lower: Estimate::from_values(&lower),
        upper: Estimate::from_values(&upper_values),
    })
}
