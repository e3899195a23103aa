//! Gradient estimators of the bound, each a small function over the one
//! weight routine ([`super::weights`]).
//!
//! An estimator is the bound's own gradient on some parameters and the
//! gradient of a surrogate (the same weights with some densities reading
//! stopped parameters) on the others:
//!
//! - [`GradientEstimator::Reparameterized`]: the bound everywhere;
//! - sticking the landing, for a guide without mixing variables: the
//!   surrogate [`sticking_the_landing`] on all the parameters;
//! - DReG, for a hierarchical guide: [`doubly_reparameterized`] on the
//!   reverse model's parameters, the bound on the others.
//!
//! [`value_and_gradient_with`] picks the surrogate from the estimator and
//! the guide; the fitting loop never needs to know which one runs.

use std::ops::Range;

use super::weights::{Stop, for_each_outer_draw};
use super::{ChainedModel, DiwhviObjective, StepNoise};
use crate::gradient::{Differentiable, GradientEngine, Parallelism};
use crate::guide::HierarchicalGuide;
use crate::input::{InputError, check_dimensions, check_params};
use crate::model::Model;
use crate::scalar::Scalar;

/// How the gradient of the bound is estimated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GradientEstimator {
    /// The plain reparameterization gradient of the bound.
    #[default]
    Reparameterized,
    /// The doubly-reparameterized estimator (Tucker, Lawson, Gu & Maddison,
    /// "Doubly reparameterized gradient estimators for Monte Carlo
    /// objectives", 2018) for the reverse model's parameters `φ`
    /// ([`HierarchicalGuide::reverse_params`]): the score terms of the
    /// inner importance weights are replaced by path terms weighted by the
    /// squared normalised weights,
    /// `∂U/∂φ ≈ Σ_{k≥1} w̃_k² ∂w_k/∂ψ_k · ∂ψ_k/∂φ + w̃₀ ∂w₀/∂φ`
    /// (`ψ₀` is drawn from `q(ψ)`, not `τ`, so its term stays direct). Same
    /// expectation, lower variance; the other parameters keep the plain
    /// gradient. With `K = 0` only `ψ₀`'s direct term is left, and the
    /// estimate is the plain one.
    ///
    /// A guide with mixing variables must report its reverse model's
    /// parameters: when [`HierarchicalGuide::reverse_params`] is empty the
    /// estimator is rejected with [`ObjectiveError::NoReverseParams`]
    /// rather than replaced by the plain one.
    ///
    /// For a guide without mixing variables (mean-field, full-rank,
    /// structured), where `log q` is exact, it applies to all the
    /// parameters: the gradient of
    /// `Σ_m ŵ_m² [log p(x, u_m) − log q(u_m; φ stopped)]` through
    /// `u_m = g(ε_m; φ)`, with `ŵ = softmax(log p − log q)` held constant.
    /// With `M = 1` (the ELBO) this is "sticking the landing" (Roeder, Wu &
    /// Duvenaud, 2017): the score term, whose expectation is zero, is
    /// dropped, and at the exact posterior every draw's gradient is zero.
    DoublyReparameterized,
}

/// Why an estimator cannot serve a guide, or the arguments of a step do
/// not fit together.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectiveError {
    /// The parameters, the gradient buffer, the noise, the guide or the
    /// model do not fit together ([`value_and_gradient_with`] checks them).
    #[error(transparent)]
    Input(#[from] InputError),
    /// The doubly-reparameterized estimator was asked of a guide with
    /// mixing variables whose [`HierarchicalGuide::reverse_params`] is
    /// empty.
    #[error(
        "GradientEstimator::DoublyReparameterized acts on the reverse model's parameters, but this guide \
         (with {mixing_dim} mixing dimensions) reports none: implement `HierarchicalGuide::reverse_params` \
         to return the range of τ's parameters, or use GradientEstimator::Reparameterized (the same \
         estimator when τ has no parameters)"
    )]
    NoReverseParams {
        /// The guide's `d`.
        mixing_dim: usize,
    },
    /// A guide's [`HierarchicalGuide::group_noise`] (or a group's
    /// [`MixingGroup::reverse_noise`](crate::guide::MixingGroup::reverse_noise))
    /// named a noise entry past the end of its draw's noise.
    #[error(
        "the guide reports {which} noise entry {entry} for group {group}, but one draw's {which} noise \
         has {len} entries: `HierarchicalGuide::group_noise` (or the group's `reverse_noise`) must name \
         entries below {len}, or return false to draw all of the step's noise"
    )]
    GroupNoiseOutOfRange {
        /// The group.
        group: usize,
        /// `"mixing"`, `"conditional"` or `"reverse"`.
        which: &'static str,
        /// The entry reported.
        entry: usize,
        /// The draw's noise length of that kind.
        len: usize,
    },
}

/// A surrogate whose gradient replaces the bound's on some parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Surrogate {
    /// [`sticking_the_landing`].
    StickingTheLanding,
    /// [`doubly_reparameterized`].
    DoublyReparameterized,
}

impl GradientEstimator {
    /// Checks that the estimator can serve `guide`.
    ///
    /// # Errors
    /// [`ObjectiveError::NoReverseParams`] for the doubly-reparameterized
    /// estimator and a guide with mixing variables but no reported reverse
    /// parameters.
    pub fn check<G: HierarchicalGuide>(self, guide: &G) -> Result<(), ObjectiveError> {
        let unreported = guide.mixing_dim() > 0 && guide.reverse_params().is_empty();
        if self == Self::DoublyReparameterized && unreported {
            return Err(ObjectiveError::NoReverseParams {
                mixing_dim: guide.mixing_dim(),
            });
        }
        Ok(())
    }

    /// The surrogate and the parameters it covers, for a guide that passed
    /// [`GradientEstimator::check`] with `k` inner and `p` parameters;
    /// `None`: the bound's own gradient everywhere.
    fn surrogate<G: HierarchicalGuide>(
        self,
        guide: &G,
        k: usize,
        p: usize,
    ) -> Option<(Surrogate, Range<usize>)> {
        match self {
            Self::Reparameterized => None,
            Self::DoublyReparameterized if guide.mixing_dim() == 0 => {
                Some((Surrogate::StickingTheLanding, 0..p))
            }
            // Without reverse draws only ψ₀'s direct term is left: the
            // plain gradient.
            Self::DoublyReparameterized if k == 0 => None,
            Self::DoublyReparameterized => {
                Some((Surrogate::DoublyReparameterized, guide.reverse_params()))
            }
        }
    }
}

/// Sticking the landing, for a guide without mixing variables: the
/// surrogate `Σ_m ŵ_m² [log p(x, u_m) − log q(u_m; φ stopped)]`, with
/// `ŵ = softmax(log p − log q)` held constant, whose gradient in all of
/// `φ` is the doubly-reparameterized (for `M = 1`, sticking-the-landing)
/// estimate of the bound's.
fn sticking_the_landing<G: HierarchicalGuide, T: Scalar>(
    guide: &G,
    chained: &ChainedModel,
    noise: &StepNoise,
    params: &[T],
) -> T {
    let mut terms = Vec::with_capacity(noise.objective().m());
    for_each_outer_draw(guide, params, noise, Stop::Everything, |m, u, weights| {
        terms.push(chained.log_joint(m, u) - weights.values[0]);
    });
    let values: Vec<f64> = terms.iter().map(|t| t.value()).collect();
    let normaliser = f64::log_sum_exp(&values);
    let mut total = T::constant(0.0);
    for (term, v) in terms.into_iter().zip(&values) {
        let normalised = (v - normaliser).exp();
        total += term * (normalised * normalised);
    }
    total
}

/// DReG, for a hierarchical guide: the surrogate
/// `−Σ_m a_m [Σ_{k≥1} w̃_k² w_k|_{φ stopped in τ} + w̃₀ w₀]`, with
/// `a = softmax(log ŵ)` and `w̃ = softmax(w)` held constant, whose gradient
/// in the reverse model's parameters `φ` is the doubly-reparameterized
/// estimate of the bound's. The model enters through its values alone.
fn doubly_reparameterized<G: HierarchicalGuide, T: Scalar>(
    guide: &G,
    chained: &ChainedModel,
    noise: &StepNoise,
    params: &[T],
) -> T {
    let objective = noise.objective();
    let mut surrogates = Vec::with_capacity(objective.m());
    let mut log_w = Vec::with_capacity(objective.m());
    let mut values = Vec::with_capacity(objective.k() + 1);
    for_each_outer_draw(guide, params, noise, Stop::InnerReverse, |m, _, weights| {
        values.clear();
        values.extend(weights.values.iter().map(|w| w.value()));
        let value_rows = weights.with_values(&values);
        // Per row (per mixing group when the guide reports groups): the
        // inner bound of each group is a sum over its own draws.
        let mut surrogate = T::constant(0.0);
        for (row, row_values) in weights.iter().zip(value_rows.iter()) {
            let normaliser = f64::log_sum_exp(row_values);
            for (i, (&w, &v)) in row.iter().zip(row_values).enumerate() {
                let normalised = (v - normaliser).exp();
                surrogate += w * if i == 0 {
                    normalised
                } else {
                    normalised * normalised
                };
            }
        }
        surrogates.push(surrogate);
        // The outer log weight `log p(x, u_m) − U_K(u_m)`, as the bound's.
        log_w.push(chained.value(m) - value_rows.upper());
    });
    let normaliser = f64::log_sum_exp(&log_w);
    let mut total = T::constant(0.0);
    for (s, lw) in surrogates.into_iter().zip(&log_w) {
        total -= s * (lw - normaliser).exp();
    }
    total
}

/// A [`Surrogate`] as a function of the guide's parameters for one step.
struct SurrogateObjective<'a, G> {
    surrogate: Surrogate,
    guide: &'a G,
    chained: &'a ChainedModel,
    noise: &'a StepNoise,
}

impl<G: HierarchicalGuide> Differentiable for SurrogateObjective<'_, G> {
    fn eval<T: Scalar>(&self, params: &[T]) -> T {
        let Self {
            guide,
            chained,
            noise,
            ..
        } = *self;
        match self.surrogate {
            Surrogate::StickingTheLanding => sticking_the_landing(guide, chained, noise, params),
            Surrogate::DoublyReparameterized => {
                doubly_reparameterized(guide, chained, noise, params)
            }
        }
    }
}

/// One step's bound and its gradient in the guide's parameters, with the
/// model's gradient in `u` chained into the parameter tangents.
///
/// # Panics
/// When the arguments do not fit together (parameters or gradient of
/// another length than the guide's, noise drawn for another guide, a
/// guide for another `D` than the model): this is the unchecked inner
/// step, for loops that checked once. [`value_and_gradient_with`] checks
/// them and returns [`ObjectiveError::Input`] instead.
pub fn value_and_gradient<Mo: Model, G: HierarchicalGuide, E: GradientEngine>(
    model: &Mo,
    guide: &G,
    params: &[f64],
    noise: &StepNoise,
    engine: &E,
    gradient: &mut [f64],
) -> f64 {
    let chained = ChainedModel::new(model, guide, params, noise, engine);
    let bound = DiwhviObjective::chained(model, guide, noise, &chained);
    engine.value_and_gradient_into(&bound, params, gradient)
}

/// [`value_and_gradient`] with the given estimator, after checking the
/// arguments against each other.
///
/// # Errors
/// [`ObjectiveError::Input`] when the model and the guide disagree on
/// `D`, the parameters do not fit the guide (length, finiteness), the
/// gradient buffer has another length, or the noise was drawn for another
/// guide; [`ObjectiveError::NoReverseParams`] when the estimator cannot
/// serve the guide (see [`GradientEstimator::check`]).
pub fn value_and_gradient_with<Mo: Model, G: HierarchicalGuide, E: GradientEngine>(
    model: &Mo,
    guide: &G,
    params: &[f64],
    noise: &StepNoise,
    engine: &E,
    estimator: GradientEstimator,
    gradient: &mut [f64],
) -> Result<f64, ObjectiveError> {
    check_dimensions(model, guide)?;
    check_params(guide, params)?;
    if gradient.len() != params.len() {
        return Err(InputError::InvalidSetting {
            setting: "gradient",
            value: format!("a buffer of {} entries", gradient.len()),
            requirement: "the gradient buffer has one entry per parameter",
        }
        .into());
    }
    noise.check_fits(guide, 0)?;
    let engines = GenericEngines {
        model: engine,
        guide: engine,
        parallelism: Parallelism::SingleThread,
    };
    split_engines_value_and_gradient(model, guide, params, noise, engines, estimator, gradient)
}

/// The engines of one generic step: `model` for `∇ᵤ log p` (the
/// [`ChainedModel`], its outer samples spread by `parallelism`), `guide`
/// for the bound's gradient in the parameters.
#[derive(Clone, Copy)]
pub(crate) struct GenericEngines<'a, EM, EG> {
    pub(crate) model: &'a EM,
    pub(crate) guide: &'a EG,
    pub(crate) parallelism: Parallelism,
}

/// [`value_and_gradient_with`] with one engine for the model and another
/// for the guide.
pub(crate) fn split_engines_value_and_gradient<
    Mo: Model,
    G: HierarchicalGuide,
    EM: GradientEngine,
    EG: GradientEngine,
>(
    model: &Mo,
    guide: &G,
    params: &[f64],
    noise: &StepNoise,
    engines: GenericEngines<'_, EM, EG>,
    estimator: GradientEstimator,
    gradient: &mut [f64],
) -> Result<f64, ObjectiveError> {
    split_engines_value_and_gradient_theta(
        model,
        guide,
        params,
        &[],
        noise,
        engines,
        estimator,
        gradient,
    )
}

/// The bound's value and its gradient (or the estimator's) in the guide's
/// parameters, the model entering through `chained`.
#[allow(clippy::too_many_arguments)]
fn guide_value_and_gradient<Mo: Model, G: HierarchicalGuide, EG: GradientEngine>(
    model: &Mo,
    guide: &G,
    params: &[f64],
    noise: &StepNoise,
    engine: &EG,
    estimator: GradientEstimator,
    chained: &ChainedModel,
    gradient: &mut [f64],
) -> f64 {
    let bound = DiwhviObjective::chained(model, guide, noise, chained);
    let Some((surrogate, range)) = estimator.surrogate(guide, noise.objective().k(), params.len())
    else {
        return engine.value_and_gradient_into(&bound, params, gradient);
    };
    let surrogate = SurrogateObjective {
        surrogate,
        guide,
        chained,
        noise,
    };
    split_value_and_gradient(engine, &bound, &surrogate, range, params, gradient)
}

/// [`split_engines_value_and_gradient`] for a model with learned
/// parameters at unconstrained `theta`: `gradient` holds the guide's
/// parameters' entries, then `D_θ` entries for `ϑ`
/// ([`theta_gradient_into`]). With `theta` empty, the guide's gradient
/// alone (what [`split_engines_value_and_gradient`] returns).
#[allow(clippy::too_many_arguments)]
pub(crate) fn split_engines_value_and_gradient_theta<
    Mo: Model,
    G: HierarchicalGuide,
    EM: GradientEngine,
    EG: GradientEngine,
>(
    model: &Mo,
    guide: &G,
    params: &[f64],
    theta: &[f64],
    noise: &StepNoise,
    engines: GenericEngines<'_, EM, EG>,
    estimator: GradientEstimator,
    gradient: &mut [f64],
) -> Result<f64, ObjectiveError> {
    estimator.check(guide)?;
    let chained = ChainedModel::new_with_theta(
        model,
        guide,
        params,
        theta,
        noise,
        engines.model,
        engines.parallelism,
    );
    let (guide_gradient, theta_gradient) = gradient.split_at_mut(params.len());
    let value = guide_value_and_gradient(
        model,
        guide,
        params,
        noise,
        engines.guide,
        estimator,
        &chained,
        guide_gradient,
    );
    if !theta.is_empty() {
        theta_gradient_into(guide, params, noise, &chained, value, theta_gradient);
    }
    Ok(value)
}

/// The bound's gradient in the learned parameters' unconstrained
/// coordinates `ϑ`: the guide does not depend on `ϑ`, so
/// `∇_ϑ bound = Σ_m a_m ∇_ϑ log p_θ(x, u_m)` with
/// `a = softmax_m(log p(x, u_m) − U_K(u_m))`, the normalised outer
/// importance weights of the same draws. Written into `out`.
///
/// With `M = 1` the one weight is `a = 1` whenever the step's `bound` is
/// finite (`exp(w − w)`, exactly): the weights' pass, which runs the
/// guide's preparation (its encoders) once more, is skipped, with the
/// same bits. A non-finite bound gives `a = NaN` (the step is rejected).
fn theta_gradient_into<G: HierarchicalGuide>(
    guide: &G,
    params: &[f64],
    noise: &StepNoise,
    chained: &ChainedModel,
    bound: f64,
    out: &mut [f64],
) {
    if noise.objective().m() == 1 {
        let a = if bound.is_finite() { 1.0 } else { f64::NAN };
        out.fill(0.0);
        for (o, g) in out.iter_mut().zip(chained.theta_gradient(0)) {
            *o += a * g;
        }
        return;
    }
    let mut log_w = Vec::with_capacity(noise.objective().m());
    for_each_outer_draw(guide, params, noise, Stop::Nothing, |m, _, weights| {
        log_w.push(chained.value(m) - weights.upper());
    });
    let normaliser = f64::log_sum_exp(&log_w);
    out.fill(0.0);
    for (m, lw) in log_w.iter().enumerate() {
        let a = (lw - normaliser).exp();
        for (o, g) in out.iter_mut().zip(chained.theta_gradient(m)) {
            *o += a * g;
        }
    }
}

/// [`value_and_gradient_with`] for a model with learned parameters
/// ([`Model::theta_layout`]) at the unconstrained values `theta`: the
/// bound `L(φ, ϑ)` on `log p_θ(x)` and its gradient, the guide's
/// parameters' entries first, then `ϑ`'s,
///
/// `∇_ϑ L = Σ_m a_m ∇_ϑ log p_θ(x, u_m)`,
/// `a = softmax_m(log p_θ(x, u_m) − U_K(u_m))`
///
/// (the guide does not depend on `θ`, so only the log joint carries it;
/// `∇ᵤ` and `∇_ϑ` of each draw come from one engine call). `gradient` has
/// `params.len() + theta.len()` entries. With `theta` empty it is
/// [`value_and_gradient_with`].
///
/// # Errors
/// As [`value_and_gradient_with`], and [`ObjectiveError::Input`] when
/// `theta` does not have [`Model::theta_dim`] finite entries.
///
/// ```
/// use iwhvi_core::Scalar;
/// use iwhvi_core::gradient::ForwardEngine;
/// use iwhvi_core::guide::{HierarchicalGuide, MeanField};
/// use iwhvi_core::model::{LatentSpec, Layout, Model};
/// use iwhvi_core::objective::{Diwhvi, GradientEstimator, StepNoise, value_and_gradient_with_theta};
/// use iwhvi_core::transforms::Transform;
/// use rand::SeedableRng;
///
/// /// z ~ N(mu, 1), mu learned (no data).
/// struct Prior;
/// impl Model for Prior {
///     fn layout(&self) -> Layout {
///         Layout::new(vec![LatentSpec::scalar("z", Transform::Identity)])
///     }
///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
///         self.log_joint_theta(&[T::constant(0.0)], u)
///     }
///     fn theta_layout(&self) -> Layout {
///         Layout::new(vec![LatentSpec::scalar("mu", Transform::Identity)])
///     }
///     fn log_joint_theta<T: Scalar>(&self, theta: &[T], u: &[T]) -> T {
///         -(u[0] - theta[0]).square() * 0.5
///     }
/// }
///
/// let guide = MeanField::new(1);
/// let params = guide.init_params(&mut rand::rngs::StdRng::seed_from_u64(0));
/// let noise = StepNoise::draw(&guide, Diwhvi::elbo(), &mut rand::rngs::StdRng::seed_from_u64(1));
/// let mut gradient = vec![0.0; params.len() + 1];
/// let engine = ForwardEngine::<4>::new();
/// let value = value_and_gradient_with_theta(
///     &Prior, &guide, &params, &[0.5], &noise, &engine, GradientEstimator::Reparameterized, &mut gradient,
/// ).unwrap();
/// assert!(value.is_finite());
/// // One draw z: ∂/∂mu = z − mu, and ∂/∂(guide's mean) = −(z − mu).
/// assert!((gradient[2] + gradient[0]).abs() < 1e-12);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn value_and_gradient_with_theta<Mo: Model, G: HierarchicalGuide, E: GradientEngine>(
    model: &Mo,
    guide: &G,
    params: &[f64],
    theta: &[f64],
    noise: &StepNoise,
    engine: &E,
    estimator: GradientEstimator,
    gradient: &mut [f64],
) -> Result<f64, ObjectiveError> {
    check_dimensions(model, guide)?;
    check_params(guide, params)?;
    if theta.len() != model.theta_dim() || theta.iter().any(|t| !t.is_finite()) {
        return Err(InputError::InvalidSetting {
            setting: "theta",
            value: format!("{} values", theta.len()),
            requirement: "the learned parameters have the model's theta_dim() finite values",
        }
        .into());
    }
    if gradient.len() != params.len() + theta.len() {
        return Err(InputError::InvalidSetting {
            setting: "gradient",
            value: format!("a buffer of {} entries", gradient.len()),
            requirement: "the gradient buffer has one entry per guide parameter and per learned parameter",
        }
        .into());
    }
    noise.check_fits(guide, 0)?;
    let engines = GenericEngines {
        model: engine,
        guide: engine,
        parallelism: Parallelism::SingleThread,
    };
    split_engines_value_and_gradient_theta(
        model, guide, params, theta, noise, engines, estimator, gradient,
    )
}

/// `bound`'s value, with its gradient on the parameters outside `range`
/// and `surrogate`'s gradient on those inside.
fn split_value_and_gradient<E: GradientEngine, B: Differentiable, S: Differentiable>(
    engine: &E,
    bound: &B,
    surrogate: &S,
    range: Range<usize>,
    params: &[f64],
    gradient: &mut [f64],
) -> f64 {
    let p = params.len();
    let value = if range.start > 0 {
        engine.value_and_partial_gradient_into(
            bound,
            params,
            0..range.start,
            &mut gradient[..range.start],
        )
    } else {
        bound.eval(params)
    };
    if range.end < p {
        engine.value_and_partial_gradient_into(
            bound,
            params,
            range.end..p,
            &mut gradient[range.end..],
        );
    }
    engine.value_and_partial_gradient_into(surrogate, params, range.clone(), &mut gradient[range]);
    value
}
