//! Plates as kernels: a density summed over `N` observations, evaluated as
//! one pass over plain `f64` arrays that returns the value and the partial
//! derivatives with respect to every argument, and put on the tape as one
//! node (or through one chain rule for forward mode) by
//! [`Scalar::with_partials`].
//!
//! A [`PlateKernel`] computes, over a block of observations,
//! `Σᵢ log f(obsᵢ | args[0]ᵢ, …)` and `∂/∂args[a]ᵢ` for every argument. An
//! argument is either one value for every element ([`Arg::Const`], a
//! broadcast) or one value per element ([`Arg::Slice`]). Two kinds of kernel
//! exist:
//!
//! - [`ScalarKernel<F>`], for every univariate [`Family`]: each element's
//!   term is the family's own `log_prob` on dual numbers seeded on the
//!   arguments, so its value is bit-identical to the scalar path;
//! - hand-written closed forms (Stan's `*_lpdf`, constant terms kept),
//!   written as branch-free passes over a block that the compiler
//!   vectorises, with `exp`/`ln`/`ln_1p` from this module's own
//!   polynomials (a portable build, an AVX2 and an AVX-512 build chosen at
//!   run time, all giving the same bits) and sums over four lanes (element `i` in
//!   lane `i mod 4`, combined as `(l₀ + l₁) + (l₂ + l₃)`): [`NormalKernel`],
//!   [`BernoulliLogitKernel`] (and [`BernoulliLogitReal`], its outcomes
//!   stored as reals), [`BinomialLogitKernel`], [`PoissonLogKernel`],
//!   [`PoissonKernel`], [`LogNormalKernel`], [`StudentTKernel`],
//!   [`GammaKernel`], [`NegativeBinomial2Kernel`]. They agree with
//!   [`ScalarKernel`] to about 1e-15 relative, not bit for bit; each gives
//!   the same bits from `block` and `block_value`, on every CPU.
//!
//! [`FamilyKernel`] maps each family to its kernel, and [`preaccumulate`]
//! (what `#[variational]` emits for an observed vector) runs a plate whose
//! arguments are expressions of the latents.
//!
//! [`log_density`] turns a kernel over `N` elements into one scalar of any
//! [`Scalar`] type; [`log_density_rows`] a kernel over a `rows × cols`
//! block into one value per row (one op), [`log_density_gathered_rows`]
//! over some rows of a table (a minibatch's rows of the data).
//!
//! ```
//! use iwhvi_core::plate::{self, Arg, NormalKernel};
//! use iwhvi_core::{Dual, Scalar};
//!
//! // Σᵢ log N(yᵢ; μ, σ) with μ, σ the two directions of a dual pass.
//! let y = [0.5, -1.0, 2.0];
//! let (mu, sigma) = (Dual::<2>::variable(0.25, 0), Dual::<2>::variable(1.5, 1));
//! let lp = plate::log_density(
//!     &NormalKernel,
//!     Dual::constant(0.0),
//!     &y,
//!     &[Arg::Const(mu), Arg::Const(sigma)],
//! );
//! // ∂/∂μ = Σ (yᵢ − μ) / σ².
//! let expected: f64 = y.iter().map(|yi| (yi - 0.25) / 2.25).sum();
//! assert!((lp.tangent()[0] - expected).abs() < 1e-14);
//! ```

mod affine;
mod driver;
mod families;
mod kernels;
mod rows;
pub(crate) mod vmath;

use std::any::TypeId;
use std::marker::PhantomData;

use crate::dual::Dual;
use crate::scalar::Scalar;

pub use affine::{MAX_CACHE_BYTES, PlateKey, with_plate_cache};
pub(crate) use affine::{current as affine_scope, within as within_scope};
pub use driver::{FamilyKernel, MAX_ARGS, Plate, preaccumulate};
pub use families::Family;
pub use kernels::{
    BernoulliLogitKernel, BernoulliLogitReal, BinomialLogitKernel, GammaKernel, LogNormalKernel,
    NegativeBinomial2Kernel, NormalKernel, PoissonKernel, PoissonLogKernel, StudentTKernel,
};
pub(crate) use rows::gather_table_rows;
pub use rows::{log_density_gathered_rows, log_density_rows, log_density_rows_owned};
#[doc(hidden)]
pub use vmath::slices as __vmath;

/// The elements a kernel handles in one call of [`log_density`]'s loop.
pub const BLOCK: usize = 256;

/// An argument of a plate: one value for every element (a broadcast), or
/// one per element.
///
/// ```
/// use iwhvi_core::plate::Arg;
/// let loc = [1.0, 2.0];
/// assert_eq!(Arg::Slice(&loc[..]).at(1), 2.0);
/// assert_eq!(Arg::Const(0.5).at(7), 0.5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arg<'a, T = f64> {
    /// The same value for every element.
    Const(T),
    /// Element `i` takes `values[i]`.
    Slice(&'a [T]),
}

impl<T: Copy> Arg<'_, T> {
    /// The value for element `i`.
    ///
    /// # Panics
    /// If the argument is a slice shorter than `i + 1`.
    #[inline(always)]
    pub fn at(&self, i: usize) -> T {
        match *self {
            Arg::Const(v) => v,
            Arg::Slice(values) => values[i],
        }
    }

    /// True for a broadcast value.
    ///
    /// ```
    /// assert!(iwhvi_core::plate::Arg::Const(1.0).is_const());
    /// ```
    #[inline(always)]
    pub fn is_const(&self) -> bool {
        matches!(self, Arg::Const(_))
    }

    /// The number of partials the argument has over `n` elements: 1 for a
    /// broadcast, `n` for a slice.
    ///
    /// ```
    /// use iwhvi_core::plate::Arg;
    /// assert_eq!(Arg::Const(1.0).partials(10), 1);
    /// assert_eq!(Arg::Slice(&[1.0, 2.0][..]).partials(2), 2);
    /// ```
    #[inline(always)]
    pub fn partials(&self, n: usize) -> usize {
        if self.is_const() { 1 } else { n }
    }
}

/// A family's log density summed over a block of observations, in plain
/// `f64`: `acc + Σᵢ log f(obsᵢ | args[0]ᵢ, …, args[ARGS−1]ᵢ)`, and its
/// partial derivatives `∂/∂args[a]ᵢ`.
///
/// The shapes: `args.len() == ARGS`; a [`Arg::Slice`] argument has
/// `obs.len()` values and `grad[a].len() == obs.len()`; a [`Arg::Const`]
/// argument has `grad[a].len() == 1`, the sum of its elements' partials.
/// Partials are *added* into `grad` (the caller zeroes it), so a broadcast
/// argument's partial accumulates over blocks.
///
/// An element whose arguments the family rejects (a scale ≤ 0, a NaN)
/// contributes `−∞` and no partials, as
/// [`log_prob_or_neg_inf`](crate::distributions::log_prob_or_neg_inf) does
/// on the scalar path. Observations are data: finite, and in the family's
/// support or else (for discrete families) `−∞` with no partials.
///
/// ```
/// use iwhvi_core::plate::{Arg, PlateKernel, PoissonLogKernel};
///
/// // Σᵢ [kᵢ η − e^η − ln kᵢ!] and ∂/∂η = Σᵢ (kᵢ − e^η), η broadcast.
/// let counts = [0, 3, 1];
/// let mut d_eta = [0.0];
/// let lp = PoissonLogKernel.block(0.0, &counts, &[Arg::Const(0.0)], &mut [&mut d_eta[..]]);
/// assert!((lp - (-3.0 - 6f64.ln())).abs() < 1e-14);
/// assert_eq!(d_eta[0], 1.0);
/// ```
pub trait PlateKernel {
    /// The number of real arguments of the family (Normal: loc, scale).
    const ARGS: usize;
    /// The type of one observation: `f64`, or `u64` for counts and
    /// binary outcomes.
    type Obs: Copy;

    /// `acc + Σᵢ log f(obsᵢ | args…ᵢ)`, with each partial added into
    /// `grad` (shapes above). The order of the sum is the kernel's own and
    /// fixed ([`ScalarKernel`]: element order; the hand-written kernels:
    /// four lanes, see the module docs), the same in
    /// [`block_value`](PlateKernel::block_value).
    ///
    /// # Panics
    /// If the shapes of `args` or `grad` do not match `obs`.
    fn block(&self, acc: f64, obs: &[Self::Obs], args: &[Arg<'_>], grad: &mut [&mut [f64]]) -> f64;

    /// The value alone, `acc + Σᵢ log f(obsᵢ | args…ᵢ)`: the `f64` path.
    ///
    /// # Panics
    /// If the shapes of `args` do not match `obs`.
    fn block_value(&self, acc: f64, obs: &[Self::Obs], args: &[Arg<'_>]) -> f64;
}

/// Panics unless `args` (and `grad`, if given) fit `n` observations and
/// `arity` arguments.
pub(crate) fn check_shapes(arity: usize, n: usize, args: &[Arg<'_>], grad: Option<&[&mut [f64]]>) {
    // A buffer or slice of the wrong length is a programming error of the
    // caller, as a slice index out of range is (not input to validate): the
    // library's own callers (`fit`, the evaluation functions, the generated
    // models) size every buffer from the layout they checked first.
    assert_eq!(
        args.len(),
        arity,
        "plate kernel: {arity} arguments expected"
    );
    for (a, arg) in args.iter().enumerate() {
        if let Arg::Slice(values) = arg {
            assert_eq!(
                values.len(),
                n,
                "plate kernel: argument {a} has the wrong length"
            );
        }
    }
    if let Some(grad) = grad {
        assert_eq!(
            grad.len(),
            arity,
            "plate kernel: one partial slice per argument"
        );
        for (a, (arg, g)) in args.iter().zip(grad).enumerate() {
            assert_eq!(
                g.len(),
                arg.partials(n),
                "plate kernel: partials of argument {a} have the wrong length"
            );
        }
    }
}

/// The kernel of any univariate [`Family`], element by element: each term
/// is the family's `log_prob` on [`Dual<ARGS>`] numbers seeded on the
/// element's arguments, so the value is bit-identical to the scalar path
/// (`lp += log_prob_or_neg_inf(F::new(args…), obsᵢ)`) and the partials are
/// the dual's tangent. The reference the hand-written kernels are tested
/// against, and the kernel of every family that has no hand-written one.
///
/// ```
/// use iwhvi_core::distributions::Normal;
/// use iwhvi_core::plate::{Arg, NormalKernel, PlateKernel, ScalarKernel};
///
/// let y = [0.1, 0.2];
/// let args = [Arg::Slice(&[0.0, 1.0][..]), Arg::Const(2.0)];
/// let (mut g_loc, mut g_scale) = ([0.0; 2], [0.0]);
/// let (mut h_loc, mut h_scale) = ([0.0; 2], [0.0]);
/// let a = ScalarKernel::<Normal>::new().block(0.0, &y, &args, &mut [&mut g_loc[..], &mut g_scale[..]]);
/// let b = NormalKernel.block(0.0, &y, &args, &mut [&mut h_loc[..], &mut h_scale[..]]);
/// assert_eq!(a, b);
/// assert!((g_scale[0] - h_scale[0]).abs() < 1e-15);
/// ```
pub struct ScalarKernel<F>(PhantomData<fn() -> F>);

impl<F> ScalarKernel<F> {
    /// The kernel of family `F`.
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<F> Default for ScalarKernel<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F> Clone for ScalarKernel<F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F> Copy for ScalarKernel<F> {}

impl<F> std::fmt::Debug for ScalarKernel<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScalarKernel<{}>", std::any::type_name::<F>())
    }
}

/// [`ScalarKernel::block`] with `W = F::ARGS` lanes.
fn scalar_block<F: Family, const W: usize>(
    mut acc: f64,
    obs: &[F::Obs],
    args: &[Arg<'_>],
    grad: &mut [&mut [f64]],
) -> f64 {
    for (i, &y) in obs.iter().enumerate() {
        let mut duals = [Dual::<W>::constant(0.0); W];
        for (a, d) in duals.iter_mut().enumerate() {
            *d = Dual::variable(args[a].at(i), a);
        }
        let term = F::log_prob(&duals, y);
        acc += term.value;
        if !term.is_constant() {
            for (a, (&t, g)) in term.tangent().iter().zip(grad.iter_mut()).enumerate() {
                let slot = if args[a].is_const() { 0 } else { i };
                g[slot] += t;
            }
        }
    }
    acc
}

impl<F: Family> PlateKernel for ScalarKernel<F> {
    const ARGS: usize = F::ARGS;
    type Obs = F::Obs;

    fn block(&self, acc: f64, obs: &[Self::Obs], args: &[Arg<'_>], grad: &mut [&mut [f64]]) -> f64 {
        check_shapes(F::ARGS, obs.len(), args, Some(grad));
        match F::ARGS {
            1 => scalar_block::<F, 1>(acc, obs, args, grad),
            2 => scalar_block::<F, 2>(acc, obs, args, grad),
            3 => scalar_block::<F, 3>(acc, obs, args, grad),
            // Unreachable: `check_shapes` above and the families' `ARGS` (1 to 3,
            // fixed in this crate) rule it out.
            n => panic!("ScalarKernel: families of 1 to {MAX_ARGS} real arguments, not {n}"),
        }
    }

    fn block_value(&self, mut acc: f64, obs: &[Self::Obs], args: &[Arg<'_>]) -> f64 {
        check_shapes(F::ARGS, obs.len(), args, None);
        let mut values = [0.0; MAX_ARGS];
        for (i, &y) in obs.iter().enumerate() {
            for (a, v) in values.iter_mut().take(F::ARGS).enumerate() {
                *v = args[a].at(i);
            }
            acc += F::log_prob(&values[..F::ARGS], y);
        }
        acc
    }
}

/// `lp + Σᵢ log f(obsᵢ | args…ᵢ)` for the family of `kernel`, as one
/// scalar: the kernel runs over plain `f64` copies of the arguments' values
/// in blocks of [`BLOCK`] elements, and the result is one
/// [`Scalar::with_partials`] with operands `lp`, then the broadcast
/// arguments, then every element of every slice argument (one tape node,
/// one chain rule). For `T = f64` the kernel computes the value alone.
///
/// The value is the kernel's terms added to `lp.value()` block by block,
/// so with [`ScalarKernel`] (element order) it is bit-identical to the
/// scalar loop
/// `lp += log_prob_or_neg_inf(F::new(args…), obs[i])`.
///
/// # Panics
/// If `args.len() != K::ARGS`, or a slice argument's length is not
/// `obs.len()`.
///
/// ```
/// use iwhvi_core::plate::{self, Arg, BernoulliLogitKernel};
/// use iwhvi_core::tape::TapeEngine;
/// use iwhvi_core::{Differentiable, Scalar};
///
/// // Σᵢ log Bernoulli(yᵢ | σ(a + b xᵢ)): the predictor in scalars, the
/// // density as one node.
/// struct Logistic;
/// impl Differentiable for Logistic {
///     fn eval<T: Scalar>(&self, p: &[T]) -> T {
///         let (x, y) = ([-1.0, 0.5, 2.0], [0, 1, 1]);
///         let eta: Vec<T> = x.iter().map(|&xi| p[0] + p[1] * xi).collect();
///         plate::log_density(&BernoulliLogitKernel, T::constant(0.0), &y, &[Arg::Slice(&eta)])
///     }
/// }
/// let (_, grad) = TapeEngine.value_and_gradient(&Logistic, &[0.0, 0.0]);
/// // ∂/∂a = Σ (yᵢ − ½) = ½, ∂/∂b = Σ (yᵢ − ½) xᵢ = 1.75.
/// assert_eq!(grad, vec![0.5, 1.75]);
/// ```
pub fn log_density<T: Scalar, K: PlateKernel>(
    kernel: &K,
    lp: T,
    obs: &[K::Obs],
    args: &[Arg<'_, T>],
) -> T {
    let n = obs.len();
    // A buffer or slice of the wrong length is a programming error of the
    // caller, as a slice index out of range is (not input to validate): the
    // library's own callers (`fit`, the evaluation functions, the generated
    // models) size every buffer from the layout they checked first.
    assert_eq!(
        args.len(),
        K::ARGS,
        "log_density: {} arguments expected",
        K::ARGS
    );
    // Plain values: a broadcast stays one value, a slice is copied once.
    let copies: Vec<Vec<f64>> = args
        .iter()
        .map(|arg| match arg {
            Arg::Const(_) => Vec::new(),
            Arg::Slice(values) => {
                assert_eq!(
                    values.len(),
                    n,
                    "log_density: a slice argument of the wrong length"
                );
                values.iter().map(|v| v.value()).collect()
            }
        })
        .collect();
    let plain = |range: std::ops::Range<usize>| -> Vec<Arg<'_>> {
        args.iter()
            .zip(&copies)
            .map(|(arg, copy)| match arg {
                Arg::Const(v) => Arg::Const(v.value()),
                Arg::Slice(_) => Arg::Slice(&copy[range.clone()]),
            })
            .collect()
    };
    let mut acc = lp.value();
    if TypeId::of::<T>() == TypeId::of::<f64>() {
        for start in (0..n).step_by(BLOCK) {
            let end = (start + BLOCK).min(n);
            acc = kernel.block_value(acc, &obs[start..end], &plain(start..end));
        }
        return T::constant(acc);
    }
    let mut grads: Vec<Vec<f64>> = args.iter().map(|arg| vec![0.0; arg.partials(n)]).collect();
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        let mut grad: Vec<&mut [f64]> = grads
            .iter_mut()
            .zip(args)
            .map(|(g, arg)| {
                if arg.is_const() {
                    &mut g[..]
                } else {
                    &mut g[start..end]
                }
            })
            .collect();
        acc = kernel.block(acc, &obs[start..end], &plain(start..end), &mut grad);
    }
    let mut operands = Vec::with_capacity(1 + grads.iter().map(Vec::len).sum::<usize>());
    let mut partials = Vec::with_capacity(operands.capacity());
    operands.push(lp);
    partials.push(1.0);
    for (arg, g) in args.iter().zip(&grads) {
        match arg {
            Arg::Const(v) => operands.push(*v),
            Arg::Slice(values) => operands.extend_from_slice(values),
        }
        partials.extend_from_slice(g);
    }
    T::with_partials(acc, &operands, &partials)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    use super::*;
    use crate::ForwardEngine;
    use crate::distributions::{
        BernoulliLogit, BinomialLogit, Gamma, LogNormal, NegativeBinomial2, Normal, Poisson,
        PoissonLog, StudentT,
    };
    use crate::gradient::{Differentiable, Parallelism};
    use crate::tape::TapeEngine;

    /// `a` and `b` agree to 1e-12 relative to `scale` (the larger of their
    /// magnitudes and that of the terms summed into them); infinities and
    /// NaNs must match exactly.
    fn close(a: f64, b: f64, scale: f64) -> bool {
        if !(a.is_finite() && b.is_finite()) {
            return a == b || (a.is_nan() && b.is_nan());
        }
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(scale)
    }

    /// One random argument value: mostly valid, sometimes not.
    fn value(rng: &mut StdRng, positive: bool, invalid_rate: f64) -> f64 {
        if rng.random::<f64>() < invalid_rate {
            let bad = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -1.5];
            let k = if positive { bad.len() } else { 3 };
            return bad[rng.random_range(0..k)];
        }
        if positive {
            (rng.random::<f64>() * 4.0 - 2.0).exp()
        } else {
            rng.random::<f64>() * 8.0 - 4.0
        }
    }

    /// A kernel's block and its partials, `grad` shaped for `args`.
    fn run<K: PlateKernel>(kernel: &K, obs: &[K::Obs], args: &[Arg<'_>]) -> (f64, Vec<Vec<f64>>) {
        let mut grad: Vec<Vec<f64>> = args
            .iter()
            .map(|a| vec![0.0; a.partials(obs.len())])
            .collect();
        let mut views: Vec<&mut [f64]> = grad.iter_mut().map(|g| &mut g[..]).collect();
        let value = kernel.block(0.0, obs, args, &mut views);
        assert_eq!(
            value.to_bits(),
            kernel.block_value(0.0, obs, args).to_bits(),
            "block_value is block's value"
        );
        // The portable build and the AVX2 and AVX-512 clones: the same bits.
        for isa in vmath::Isa::ALL {
            let (v, g) = vmath::with_isa(isa, || {
                let mut g: Vec<Vec<f64>> = args
                    .iter()
                    .map(|a| vec![0.0; a.partials(obs.len())])
                    .collect();
                let mut views: Vec<&mut [f64]> = g.iter_mut().map(|g| &mut g[..]).collect();
                (kernel.block(0.0, obs, args, &mut views), g)
            });
            let w = vmath::with_isa(isa, || kernel.block_value(0.0, obs, args));
            assert_eq!(
                (v.to_bits(), w.to_bits()),
                (value.to_bits(), value.to_bits()),
                "{isa:?}"
            );
            let bits = |g: &[Vec<f64>]| -> Vec<Vec<u64>> {
                g.iter()
                    .map(|g| g.iter().map(|x| x.to_bits()).collect())
                    .collect()
            };
            assert_eq!(bits(&g), bits(&grad), "{isa:?}");
        }
        (value, grad)
    }

    /// `kernel` against `ScalarKernel<F>` on random blocks: value and every
    /// partial to 1e-12, broadcast and slice arguments, valid and invalid.
    fn matches_scalar_kernel<K, F>(
        kernel: K,
        positive: &[bool],
        obs: impl Fn(&mut StdRng) -> K::Obs,
        seed: u64,
    ) where
        K: PlateKernel,
        F: Family<Obs = K::Obs>,
    {
        let reference = ScalarKernel::<F>::new();
        let mut rng = StdRng::seed_from_u64(seed);
        for trial in 0..400 {
            // Mostly short blocks; some over several of the kernels' chunks.
            let n = if trial % 40 == 0 {
                rng.random_range(250..700)
            } else {
                rng.random_range(0..40)
            };
            let invalid_rate = if trial % 4 == 0 { 0.1 } else { 0.0 };
            let ys: Vec<K::Obs> = (0..n).map(|_| obs(&mut rng)).collect();
            let columns: Vec<Vec<f64>> = positive
                .iter()
                .map(|&p| (0..n).map(|_| value(&mut rng, p, invalid_rate)).collect())
                .collect();
            let broadcast: Vec<bool> = positive.iter().map(|_| rng.random::<bool>()).collect();
            let args: Vec<Arg<'_>> = columns
                .iter()
                .zip(&broadcast)
                .map(|(c, &b)| match (b, c.first()) {
                    (true, Some(&v)) => Arg::Const(v),
                    (true, None) => Arg::Const(1.0),
                    (false, _) => Arg::Slice(c),
                })
                .collect();
            // The same arguments as slices: the per-element partials, whose
            // magnitudes scale the broadcast ones' tolerance.
            let expanded: Vec<Vec<f64>> = args
                .iter()
                .map(|a| (0..n).map(|i| a.at(i)).collect())
                .collect();
            let expanded_args: Vec<Arg<'_>> = expanded.iter().map(|c| Arg::Slice(c)).collect();
            let (value, grad) = run(&kernel, &ys, &args);
            let (ref_value, ref_grad) = run(&reference, &ys, &args);
            let (_, per_element) = run(&reference, &ys, &expanded_args);
            let value_scale: f64 = (0..n)
                .map(|i| {
                    let one: Vec<Arg<'_>> = expanded.iter().map(|c| Arg::Const(c[i])).collect();
                    reference.block_value(0.0, &ys[i..=i], &one).abs()
                })
                .sum();
            assert!(
                close(value, ref_value, value_scale),
                "trial {trial}: value {value} vs {ref_value}"
            );
            for (a, (g, r)) in grad.iter().zip(&ref_grad).enumerate() {
                let scale: f64 = per_element[a].iter().map(|p| p.abs()).sum();
                for (j, (&x, &y)) in g.iter().zip(r).enumerate() {
                    assert!(
                        close(x, y, scale),
                        "trial {trial}: ∂/∂arg{a}[{j}] {x} vs {y} (args {args:?})"
                    );
                }
            }
        }
    }

    #[test]
    fn normal_kernel_matches_the_scalar_kernel() {
        matches_scalar_kernel::<NormalKernel, Normal>(
            NormalKernel,
            &[false, true],
            |rng| rng.random::<f64>() * 10.0 - 5.0,
            1,
        );
    }

    #[test]
    fn bernoulli_logit_kernel_matches_the_scalar_kernel() {
        matches_scalar_kernel::<BernoulliLogitKernel, BernoulliLogit>(
            BernoulliLogitKernel,
            &[false],
            |rng| {
                if rng.random::<f64>() < 0.05 {
                    2
                } else {
                    rng.random_range(0..2)
                }
            },
            2,
        );
    }

    #[test]
    fn poisson_log_kernel_matches_the_scalar_kernel() {
        matches_scalar_kernel::<PoissonLogKernel, PoissonLog>(
            PoissonLogKernel,
            &[false],
            |rng| rng.random_range(0..30),
            3,
        );
    }

    /// A count in 0..30, sometimes in the hundreds (past `ln k!`'s table).
    fn count(rng: &mut StdRng) -> u64 {
        if rng.random::<f64>() < 0.05 {
            rng.random_range(200..400)
        } else {
            rng.random_range(0..30)
        }
    }

    /// A positive observation, sometimes 0 or negative.
    fn positive_obs(rng: &mut StdRng) -> f64 {
        match rng.random::<f64>() {
            u if u < 0.03 => 0.0,
            u if u < 0.06 => -0.5,
            _ => (rng.random::<f64>() * 6.0 - 3.0).exp(),
        }
    }

    #[test]
    fn poisson_kernel_matches_the_scalar_kernel() {
        matches_scalar_kernel::<PoissonKernel, Poisson>(PoissonKernel, &[true], count, 5);
    }

    #[test]
    fn binomial_logit_kernel_matches_the_scalar_kernel() {
        matches_scalar_kernel::<BinomialLogitKernel, BinomialLogit>(
            BinomialLogitKernel,
            &[false],
            |rng| {
                let n = rng.random_range(0..20);
                match rng.random::<f64>() {
                    u if u < 0.05 => (n, n + 1),
                    u if u < 0.15 => (n, 0),
                    u if u < 0.25 => (n, n),
                    _ => (n, rng.random_range(0..=n)),
                }
            },
            6,
        );
    }

    #[test]
    fn student_t_kernel_matches_the_scalar_kernel() {
        matches_scalar_kernel::<StudentTKernel, StudentT>(
            StudentTKernel,
            &[true, false, true],
            |rng| rng.random::<f64>() * 20.0 - 10.0,
            7,
        );
    }

    #[test]
    fn log_normal_kernel_matches_the_scalar_kernel() {
        matches_scalar_kernel::<LogNormalKernel, LogNormal>(
            LogNormalKernel,
            &[false, true],
            positive_obs,
            8,
        );
    }

    #[test]
    fn gamma_kernel_matches_the_scalar_kernel() {
        matches_scalar_kernel::<GammaKernel, Gamma>(GammaKernel, &[true, true], positive_obs, 9);
    }

    #[test]
    fn negative_binomial_2_kernel_matches_the_scalar_kernel() {
        matches_scalar_kernel::<NegativeBinomial2Kernel, NegativeBinomial2>(
            NegativeBinomial2Kernel,
            &[true, true],
            count,
            10,
        );
    }

    /// Block and partials of `kernel` and `ScalarKernel<F>` on one block of
    /// slice arguments: infinities exactly, and the partials exactly where
    /// the term is infinite (zero for invalid arguments); the rest to 1e-12
    /// relative to the larger of the two and `scale`.
    fn edges_match<K, F>(kernel: K, obs: &[K::Obs], columns: &[&[f64]], scale: f64)
    where
        K: PlateKernel,
        F: Family<Obs = K::Obs>,
        K::Obs: std::fmt::Debug,
    {
        let args: Vec<Arg<'_>> = columns.iter().map(|c| Arg::Slice(c)).collect();
        let (value, grad) = run(&kernel, obs, &args);
        let (ref_value, ref_grad) = run(&ScalarKernel::<F>::new(), obs, &args);
        assert!(
            close(value, ref_value, 0.0),
            "{obs:?} {columns:?}: {value} vs {ref_value}"
        );
        for (i, _) in obs.iter().enumerate() {
            let one: Vec<Arg<'_>> = columns.iter().map(|c| Arg::Slice(&c[i..=i])).collect();
            let (v, _) = run(&kernel, &obs[i..=i], &one);
            let (w, _) = run(&ScalarKernel::<F>::new(), &obs[i..=i], &one);
            assert!(close(v, w, 0.0), "element {i} ({:?}): {v} vs {w}", obs[i]);
            for (g, h) in grad.iter().zip(&ref_grad) {
                assert!(
                    close(g[i], h[i], scale) && (w.is_finite() || g[i] == h[i]),
                    "element {i} ({:?}): {} vs {}",
                    obs[i],
                    g[i],
                    h[i]
                );
            }
        }
    }

    #[test]
    fn kernels_match_at_the_edges() {
        let inf = f64::INFINITY;
        // Logits: certain outcomes, saturated sigmoids, subnormal e^{−|η|}.
        let logits = [
            inf, -inf, inf, -inf, 40.0, -40.0, 745.0, -745.0, 30.0, 1e-300,
        ];
        edges_match::<_, BinomialLogit>(
            BinomialLogitKernel,
            &[
                (3, 3),
                (3, 0),
                (3, 0),
                (3, 3),
                (5, 2),
                (5, 5),
                (2, 1),
                (2, 1),
                (0, 0),
                (7, 3),
            ],
            &[&logits],
            0.0,
        );
        edges_match::<_, BernoulliLogit>(
            BernoulliLogitKernel,
            &[1, 0, 0, 1, 0, 1, 0, 1, 1, 0],
            &[&logits],
            0.0,
        );
        // Log-rates past e^η's overflow, and rates near 0 and huge.
        edges_match::<_, PoissonLog>(
            PoissonLogKernel,
            &[3, 0, 0, 5, 1],
            &[&[709.0, 709.9, 800.0, -745.0, -1e-300]],
            0.0,
        );
        edges_match::<_, Poisson>(
            PoissonKernel,
            &[3, 0, 0, 5, 400],
            &[&[1e-300, 1e-300, 1e300, 5e-324, 400.0]],
            0.0,
        );
        // Gamma at x = 0: +∞ (α < 1), −∞ (α > 1), finite with partials (α = 1).
        edges_match::<_, Gamma>(
            GammaKernel,
            &[0.0, 0.0, 0.0, 1e-300, 1e300, inf],
            &[
                &[0.5, 2.0, 1.0, 0.5, 3.0, 1.0],
                &[1.0, 1.0, 3.0, 2.0, 1e-300, 1.0],
            ],
            0.0,
        );
        edges_match::<_, LogNormal>(
            LogNormalKernel,
            &[0.0, -1.0, 5e-324, 1e300],
            &[&[0.0, 0.0, 1.0, -2.0], &[1.0, 1.0, 30.0, 1e-3]],
            0.0,
        );
        // Heavy and nearly normal tails. At ν = 10⁶, ∂/∂ν is a difference
        // of terms of order 1/ν in both kernels: compared to 1e-12 · 1e-6.
        edges_match::<_, StudentT>(
            StudentTKernel,
            &[1e10, -3.0, 0.0, 2.5],
            &[
                &[0.5, 1e6, 1e-3, 2.0],
                &[0.0, 1.0, 0.0, 2.5],
                &[1.0, 2.0, 1e-10, 1.0],
            ],
            1e-6,
        );
        // With μ ≪ φ, ∂/∂φ = ln φ − ln(μ + φ) + μ / (μ + φ) is a difference
        // of terms of order ln φ ≈ 11.5 in both kernels: compared to 1e-12 · 20.
        edges_match::<_, NegativeBinomial2>(
            NegativeBinomial2Kernel,
            &[0, 1000, 3, 0],
            &[&[1e-8, 900.0, 3.0, 1e8], &[1e5, 0.5, 1e-6, 2.0]],
            20.0,
        );
    }

    #[test]
    fn real_outcomes_give_the_integer_outcomes_bits() {
        // Blocks past one chunk, every logit shape, valid and invalid
        // outcomes (2 and 0.5 are −∞ in both), on every ISA (`run`).
        let mut rng = StdRng::seed_from_u64(7);
        let n = 300;
        let codes: Vec<u64> = (0..n).map(|_| rng.random_range(0..7u64).min(2)).collect();
        let ints: Vec<u64> = codes
            .iter()
            .map(|&c| if c == 2 && rng.random() { 7 } else { c })
            .collect();
        let reals: Vec<f64> = ints
            .iter()
            .map(|&y| if y > 1 { 0.5 } else { y as f64 })
            .collect();
        let logits: Vec<f64> = (0..n)
            .map(|i| {
                if i % 97 == 5 {
                    f64::NAN
                } else {
                    rng.random::<f64>() * 80.0 - 40.0
                }
            })
            .collect();
        for args in [[Arg::Slice(&logits[..])], [Arg::Const(-1.25)]] {
            let (a, ga) = run(&BernoulliLogitKernel, &ints, &args);
            let (b, gb) = run(&BernoulliLogitReal, &reals, &args);
            assert_eq!(a.to_bits(), b.to_bits());
            assert_eq!(ga, gb);
            // Valid outcomes alone: a finite value.
            let valid: Vec<usize> = (0..n).filter(|&i| ints[i] <= 1).collect();
            let (i2, r2): (Vec<u64>, Vec<f64>) = valid.iter().map(|&i| (ints[i], reals[i])).unzip();
            let c = [Arg::Const(0.75)];
            let (a, _) = run(&BernoulliLogitKernel, &i2, &c);
            let (b, _) = run(&BernoulliLogitReal, &r2, &c);
            assert!(a.is_finite() && a.to_bits() == b.to_bits());
        }
    }

    #[test]
    fn extreme_logits_and_log_rates_match() {
        let mut d = [[0.0; 4], [0.0; 4]];
        let logits = [f64::INFINITY, f64::NEG_INFINITY, 40.0, -745.0];
        let [d0, d1] = &mut d;
        let a = BernoulliLogitKernel.block(
            0.0,
            &[1, 1, 0, 0],
            &[Arg::Slice(&logits)],
            &mut [&mut d0[..]],
        );
        let b = ScalarKernel::<BernoulliLogit>::new().block(
            0.0,
            &[1, 1, 0, 0],
            &[Arg::Slice(&logits)],
            &mut [&mut d1[..]],
        );
        assert_eq!(a.to_bits(), b.to_bits());
        assert_eq!(d[0], d[1]);
        let rates = [700.0, -700.0];
        let (mut g, mut h) = ([0.0; 2], [0.0; 2]);
        let a = PoissonLogKernel.block(0.0, &[3, 0], &[Arg::Slice(&rates)], &mut [&mut g[..]]);
        let b = ScalarKernel::<PoissonLog>::new().block(
            0.0,
            &[3, 0],
            &[Arg::Slice(&rates)],
            &mut [&mut h[..]],
        );
        assert_eq!((a.to_bits(), g), (b.to_bits(), h));
    }

    /// A regression on `x` with a prior on its parameters: the plate by a
    /// kernel through `log_density`, or (`kernel: None`) the scalar loop
    /// the macro emits, `lp += log_prob_or_neg_inf(F::new(args…), obs[i])`.
    struct Regression<'a, K: PlateKernel, F> {
        x: &'a [f64],
        obs: &'a [K::Obs],
        kernel: Option<K>,
        family: PhantomData<F>,
    }

    impl<K, F> Differentiable for Regression<'_, K, F>
    where
        K: PlateKernel + Sync,
        K::Obs: Sync,
        F: Family<Obs = K::Obs> + Sync,
    {
        fn eval<T: Scalar>(&self, p: &[T]) -> T {
            let mut lp = -(p[0] * p[0]) * 0.5 - p[1].square() * 0.125;
            let eta: Vec<T> = self.x.iter().map(|&xi| p[0] + p[1] * xi).collect();
            let scale = if K::ARGS == 2 {
                p[2].exp()
            } else {
                T::constant(0.0)
            };
            match &self.kernel {
                Some(kernel) => {
                    let mut args = vec![Arg::Slice(&eta[..])];
                    if K::ARGS == 2 {
                        args.push(Arg::Const(scale));
                    }
                    log_density(kernel, lp, self.obs, &args)
                }
                None => {
                    for (&e, &y) in eta.iter().zip(self.obs) {
                        lp += F::log_prob(&[e, scale][..K::ARGS], y);
                    }
                    lp
                }
            }
        }
    }

    /// An engine run: the value and gradient of an objective.
    type Run<'a, O> = dyn Fn(&O) -> (f64, Vec<f64>) + 'a;

    /// The plate by `kernel` against the scalar loop on every engine: the
    /// gradients to 1e-12; the values bit for bit if `bitwise` (the
    /// `ScalarKernel`), else to 1e-12 (a hand-written kernel sums in
    /// lanes, with `vmath`'s `exp`/`ln`). Either way the plate's value is
    /// the same bits on every engine as on the `f64` path.
    fn engines_agree<K, F>(kernel: K, x: &[f64], obs: &[K::Obs], p: &[f64], bitwise: bool)
    where
        K: PlateKernel + Sync,
        K::Obs: Sync,
        F: Family<Obs = K::Obs> + Sync,
    {
        let plate = Regression::<K, F> {
            x,
            obs,
            kernel: Some(kernel),
            family: PhantomData,
        };
        let scalar = Regression::<K, F> {
            x,
            obs,
            kernel: None,
            family: PhantomData,
        };
        let (plate_value, scalar_value) = (plate.eval(p), scalar.eval(p));
        if bitwise {
            assert_eq!(plate_value.to_bits(), scalar_value.to_bits());
        } else {
            assert!(
                close(plate_value, scalar_value, 1.0),
                "{plate_value} vs {scalar_value}"
            );
        }
        let single = Parallelism::SingleThread;
        let runs: [&Run<'_, Regression<'_, K, F>>; 3] = [
            &|f| TapeEngine.value_and_gradient(f, p),
            &|f| {
                ForwardEngine::<2>::new()
                    .with_parallelism(single)
                    .value_and_gradient(f, p)
            },
            &|f| {
                ForwardEngine::<8>::new()
                    .with_parallelism(single)
                    .value_and_gradient(f, p)
            },
        ];
        for run in runs {
            let (v, g) = run(&plate);
            let (w, h) = run(&scalar);
            assert_eq!(v.to_bits(), plate_value.to_bits());
            assert_eq!(w.to_bits(), scalar_value.to_bits());
            // Gradients of O(10²): relative to at least 1.
            for (a, b) in g.iter().zip(&h) {
                assert!(close(*a, *b, 1.0), "{g:?} vs {h:?}");
            }
        }
    }

    #[test]
    fn log_density_gradient_matches_the_scalar_loop() {
        let mut rng = StdRng::seed_from_u64(4);
        let n = 3 * BLOCK + 17;
        let x: Vec<f64> = (0..n).map(|_| rng.random::<f64>() * 4.0 - 2.0).collect();
        let y: Vec<f64> = x.iter().map(|xi| 0.5 - xi + rng.random::<f64>()).collect();
        let b: Vec<u64> = x
            .iter()
            .map(|xi| u64::from(rng.random::<f64>() < 0.5 + 0.2 * xi))
            .collect();
        let k: Vec<u64> = x.iter().map(|_| rng.random_range(0..12)).collect();
        let p = [0.3, -0.8, 0.2];
        engines_agree::<_, Normal>(NormalKernel, &x, &y, &p, false);
        engines_agree::<_, Normal>(ScalarKernel::<Normal>::new(), &x, &y, &p, true);
        engines_agree::<_, BernoulliLogit>(BernoulliLogitKernel, &x, &b, &p[..2], false);
        engines_agree::<_, BernoulliLogit>(
            ScalarKernel::<BernoulliLogit>::new(),
            &x,
            &b,
            &p[..2],
            true,
        );
        engines_agree::<_, PoissonLog>(PoissonLogKernel, &x, &k, &p[..2], false);
        engines_agree::<_, PoissonLog>(ScalarKernel::<PoissonLog>::new(), &x, &k, &p[..2], true);
    }
}
