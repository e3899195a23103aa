//! Hand-written closed-form kernels (Stan's `*_lpdf`, constant terms kept).
//!
//! Each kernel's body is generic over how each argument is read
//! ([`Source`]: a broadcast `f64` or a slice) and where its partials go
//! ([`Sink`]: one sum, one slot per element, or nowhere for the value
//! alone), so that every combination compiles to its own loop, with the
//! work that depends only on a broadcast argument hoisted out of it. Each
//! term is the same `f64` expression the family's `log_prob` evaluates, so
//! values are bit-identical to the scalar path.

use super::{Arg, PlateKernel, check_shapes};
use crate::special::{LN_SQRT_2PI, ln_factorial, log_sigmoid, sigmoid};

/// How a kernel reads an argument.
trait Source: Copy {
    /// One value for every element.
    const BROADCAST: bool;
    /// Element `i`'s value.
    fn at(self, i: usize) -> f64;
}

impl Source for f64 {
    const BROADCAST: bool = true;
    #[inline(always)]
    fn at(self, _: usize) -> f64 {
        self
    }
}

impl Source for &[f64] {
    const BROADCAST: bool = false;
    #[inline(always)]
    fn at(self, i: usize) -> f64 {
        self[i]
    }
}

/// Where a kernel puts an argument's partials.
trait Sink {
    /// False when the partials are not wanted.
    const ACTIVE: bool;
    /// Adds element `i`'s partial.
    fn add(&mut self, i: usize, partial: f64);
}

impl Sink for &mut f64 {
    const ACTIVE: bool = true;
    #[inline(always)]
    fn add(&mut self, _: usize, partial: f64) {
        **self += partial;
    }
}

impl Sink for &mut [f64] {
    const ACTIVE: bool = true;
    #[inline(always)]
    fn add(&mut self, i: usize, partial: f64) {
        self[i] += partial;
    }
}

/// No partials: the value alone.
struct Nowhere;

impl Sink for Nowhere {
    const ACTIVE: bool = false;
    #[inline(always)]
    fn add(&mut self, _: usize, _: f64) {}
}

/// Binds `$s` to the argument as a [`Source`] and `$g` to its partials as
/// a [`Sink`], each combination its own copy of `$body`.
macro_rules! with_arg {
    ($arg:expr, $grad:expr, |$s:ident, $g:ident| $body:expr) => {
        match $arg {
            Arg::Const(value) => {
                let $s: f64 = value;
                let $g: &mut f64 = &mut $grad[0];
                $body
            }
            Arg::Slice(values) => {
                let $s: &[f64] = values;
                let $g: &mut [f64] = &mut *$grad;
                $body
            }
        }
    };
}

/// Binds `$s` to the argument as a [`Source`].
macro_rules! with_source {
    ($arg:expr, |$s:ident| $body:expr) => {
        match $arg {
            Arg::Const(value) => {
                let $s: f64 = value;
                $body
            }
            Arg::Slice(values) => {
                let $s: &[f64] = values;
                $body
            }
        }
    };
}

/// The normal family `N(loc, scale²)` over real observations:
///
/// `log f(y | μ, σ) = −½ z² − ln σ − ½ ln 2π`, `z = (y − μ) / σ`;
/// `∂/∂μ = z / σ`, `∂/∂σ = (z² − 1) / σ`.
///
/// Arguments `[loc, scale]`; `−∞` and no partials where `loc` is not
/// finite or `scale` is not positive and finite. With a broadcast scale,
/// `ln σ` and `1 / σ` are computed once.
///
/// ```
/// use iwhvi_core::plate::{Arg, NormalKernel, PlateKernel};
/// let (mut d_loc, mut d_scale) = ([0.0; 2], [0.0]);
/// let lp = NormalKernel.block(
///     0.0,
///     &[1.0, 3.0],
///     &[Arg::Slice(&[1.0, 1.0][..]), Arg::Const(2.0)],
///     &mut [&mut d_loc[..], &mut d_scale[..]],
/// );
/// assert_eq!(d_loc, [0.0, 0.5]);
/// assert_eq!(d_scale, [-0.5 + 0.0]);
/// assert!((lp - NormalKernel.block_value(0.0, &[1.0, 3.0], &[Arg::Const(1.0), Arg::Const(2.0)])).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NormalKernel;

#[inline(always)]
fn normal<L: Source, S: Source, GL: Sink, GS: Sink>(
    mut acc: f64,
    obs: &[f64],
    loc: L,
    scale: S,
    mut d_loc: GL,
    mut d_scale: GS,
) -> f64 {
    // Hoisted for a broadcast scale (unused otherwise).
    let (ln_s0, inv_s0) = if S::BROADCAST {
        let s = scale.at(0);
        (s.ln(), 1.0 / s)
    } else {
        (0.0, 0.0)
    };
    for (i, &y) in obs.iter().enumerate() {
        let (mu, s) = (loc.at(i), scale.at(i));
        if !(mu.is_finite() && s.is_finite() && s > 0.0) {
            acc += f64::NEG_INFINITY;
            continue;
        }
        let ln_s = if S::BROADCAST { ln_s0 } else { s.ln() };
        let z = (y - mu) / s;
        acc += -(z * z) * 0.5 - ln_s - LN_SQRT_2PI;
        if GL::ACTIVE || GS::ACTIVE {
            let inv = if S::BROADCAST { inv_s0 } else { 1.0 / s };
            let z_over_s = z * inv;
            d_loc.add(i, z_over_s);
            d_scale.add(i, z * z_over_s - inv);
        }
    }
    acc
}

impl PlateKernel for NormalKernel {
    const ARGS: usize = 2;
    type Obs = f64;

    fn block(&self, acc: f64, obs: &[f64], args: &[Arg<'_>], grad: &mut [&mut [f64]]) -> f64 {
        check_shapes(2, obs.len(), args, Some(grad));
        let [d_loc, d_scale] = grad else {
            unreachable!("shapes checked")
        };
        with_arg!(args[0], d_loc, |loc, gl| with_arg!(
            args[1],
            d_scale,
            |scale, gs| normal(acc, obs, loc, scale, gl, gs)
        ))
    }

    fn block_value(&self, acc: f64, obs: &[f64], args: &[Arg<'_>]) -> f64 {
        check_shapes(2, obs.len(), args, None);
        with_source!(args[0], |loc| with_source!(args[1], |scale| normal(
            acc, obs, loc, scale, Nowhere, Nowhere
        )))
    }
}

/// The Bernoulli family by log-odds `η` over outcomes `y ∈ {0, 1}`:
///
/// `log f(y | η) = ln σ(sη)` with `s = 2y − 1`; `∂/∂η = s σ(−sη) = y − σ(η)`,
/// computed in the first form, which keeps its precision for large `|η|`.
///
/// Argument `[logit]`; `−∞` and no partials for a NaN logit or an outcome
/// other than 0 and 1 (infinite logits are certain outcomes).
///
/// ```
/// use iwhvi_core::plate::{Arg, BernoulliLogitKernel, PlateKernel};
/// let mut d = [0.0];
/// let lp = BernoulliLogitKernel.block(0.0, &[1, 0], &[Arg::Const(0.0)], &mut [&mut d[..]]);
/// assert_eq!((lp, d[0]), (2.0 * 0.5f64.ln(), 0.0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BernoulliLogitKernel;

#[inline(always)]
fn bernoulli_logit<E: Source, G: Sink>(mut acc: f64, obs: &[u64], logit: E, mut d: G) -> f64 {
    for (i, &y) in obs.iter().enumerate() {
        let eta = logit.at(i);
        if eta.is_nan() || y > 1 {
            acc += f64::NEG_INFINITY;
            continue;
        }
        if y == 1 {
            acc += log_sigmoid(eta);
            if G::ACTIVE {
                d.add(i, sigmoid(-eta));
            }
        } else {
            acc += log_sigmoid(-eta);
            if G::ACTIVE {
                d.add(i, -sigmoid(eta));
            }
        }
    }
    acc
}

impl PlateKernel for BernoulliLogitKernel {
    const ARGS: usize = 1;
    type Obs = u64;

    fn block(&self, acc: f64, obs: &[u64], args: &[Arg<'_>], grad: &mut [&mut [f64]]) -> f64 {
        check_shapes(1, obs.len(), args, Some(grad));
        with_arg!(args[0], grad[0], |logit, g| bernoulli_logit(
            acc, obs, logit, g
        ))
    }

    fn block_value(&self, acc: f64, obs: &[u64], args: &[Arg<'_>]) -> f64 {
        check_shapes(1, obs.len(), args, None);
        with_source!(args[0], |logit| bernoulli_logit(acc, obs, logit, Nowhere))
    }
}

/// The Poisson family by log-rate `η` over counts `k`:
///
/// `log f(k | η) = k η − e^η − ln k!`; `∂/∂η = k − e^η`.
///
/// Argument `[log_rate]`; `−∞` and no partials for a log-rate that is not
/// finite. With a broadcast log-rate, `e^η` is computed once.
///
/// ```
/// use iwhvi_core::plate::{Arg, PlateKernel, PoissonLogKernel};
/// let mut d = [0.0; 2];
/// let lp = PoissonLogKernel.block(0.0, &[2, 0], &[Arg::Slice(&[0.0, 0.0][..])], &mut [&mut d[..]]);
/// assert_eq!(d, [1.0, -1.0]);
/// assert!((lp - (-2.0 - 2f64.ln())).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoissonLogKernel;

#[inline(always)]
fn poisson_log<E: Source, G: Sink>(mut acc: f64, obs: &[u64], log_rate: E, mut d: G) -> f64 {
    let rate0 = if E::BROADCAST {
        log_rate.at(0).exp()
    } else {
        0.0
    };
    for (i, &k) in obs.iter().enumerate() {
        let eta = log_rate.at(i);
        if !eta.is_finite() {
            acc += f64::NEG_INFINITY;
            continue;
        }
        let rate = if E::BROADCAST { rate0 } else { eta.exp() };
        let count = k as f64;
        acc += eta * count - rate - ln_factorial(k);
        if G::ACTIVE {
            d.add(i, count - rate);
        }
    }
    acc
}

impl PlateKernel for PoissonLogKernel {
    const ARGS: usize = 1;
    type Obs = u64;

    fn block(&self, acc: f64, obs: &[u64], args: &[Arg<'_>], grad: &mut [&mut [f64]]) -> f64 {
        check_shapes(1, obs.len(), args, Some(grad));
        with_arg!(args[0], grad[0], |log_rate, g| poisson_log(
            acc, obs, log_rate, g
        ))
    }

    fn block_value(&self, acc: f64, obs: &[u64], args: &[Arg<'_>]) -> f64 {
        check_shapes(1, obs.len(), args, None);
        with_source!(args[0], |log_rate| poisson_log(acc, obs, log_rate, Nowhere))
    }
}
