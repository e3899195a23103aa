//! The preaccumulated plate: a plate whose arguments are arbitrary
//! expressions of a few latent values, evaluated element by element on
//! small dual numbers seeded on those values, with the family's density
//! computed by a [`PlateKernel`] over plain `f64` blocks and the whole
//! plate returned as one [`Scalar::with_partials`].
//!
//! For element `i` with arguments `argₐ,ᵢ = fₐ(i, θ)` of the operands
//! `θ = (θ₁ … θ_m)` (scalar latents and whole latent vectors), the plate is
//!
//! `lp + Σᵢ log f(obsᵢ | arg₁,ᵢ, …)`, with
//! `∂/∂θⱼ = Σᵢ Σₐ ḡₐ,ᵢ · ∂argₐ,ᵢ/∂θⱼ`, `ḡₐ,ᵢ = ∂ log f(obsᵢ | …)/∂argₐ,ᵢ`,
//!
//! `ḡ` from the kernel, `∂arg/∂θ` from the tangents of a forward pass of
//! width `W ∈ {1, 2, 4, 8, 16}` (the smallest `≥ m`; several passes of 16
//! above 16 operands). Whatever the scalar type, this is one tape node
//! (or one chain rule for a dual) with `1 + m` operands, and scratch memory
//! of `O(BLOCK)`, independent of the number of elements.

use std::any::TypeId;

use super::{
    Arg, BLOCK, BernoulliLogitKernel, BinomialLogitKernel, Family, GammaKernel, LogNormalKernel,
    NegativeBinomial2Kernel, NormalKernel, PlateKernel, PoissonKernel, PoissonLogKernel,
    ScalarKernel, StudentTKernel, affine,
};
use crate::ad::sparse::Sparse;
use crate::distributions::{
    Bernoulli, BernoulliLogit, Beta, Binomial, BinomialLogit, Cauchy, Exponential, Gamma,
    HalfCauchy, HalfNormal, InverseGamma, Laplace, LogNormal, Logistic, NegativeBinomial2, Normal,
    Poisson, PoissonLog, StudentT, Uniform, Weibull,
};
use crate::dual::Dual;
use crate::scalar::Scalar;

/// The most real arguments a plate's family may have.
pub const MAX_ARGS: usize = 3;

/// A plate for [`preaccumulate`]: its length, its observations, its
/// kernel and, for each element, its arguments as a function of the
/// operands (generic over the scalar type, so that the same code gives the
/// `f64` values and the dual tangents).
///
/// `#[variational]` implements it for every observed vector whose family
/// has a kernel; the element evaluator is a hidden generic method of the
/// model, so that data fields and helper methods keep working.
///
/// ```
/// use iwhvi_core::plate::{NormalKernel, Plate};
/// use iwhvi_core::Scalar;
///
/// // yᵢ ~ N(a + b·xᵢ, 1): operands `[a, b]` as two one-element groups.
/// struct Line<'a> { x: &'a [f64], y: &'a [f64] }
/// impl Plate for Line<'_> {
///     type Kernel = NormalKernel;
///     fn kernel(&self) -> NormalKernel { NormalKernel }
///     fn len(&self) -> usize { self.y.len() }
///     fn obs(&self, i: usize) -> f64 { self.y[i] }
///     fn args<S: Scalar>(&self, i: usize, operands: &[&[S]], out: &mut [S]) {
///         out[0] = operands[0][0] + operands[1][0] * self.x[i];
///         out[1] = S::constant(1.0);
///     }
/// }
/// let line = Line { x: &[0.0, 1.0], y: &[0.5, 1.5] };
/// assert_eq!(line.len(), 2);
/// ```
pub trait Plate {
    /// The family's kernel.
    type Kernel: PlateKernel;

    /// The kernel.
    fn kernel(&self) -> Self::Kernel;

    /// The number of elements.
    fn len(&self) -> usize;

    /// True for a plate of no element.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i`'s observation.
    fn obs(&self, i: usize) -> <Self::Kernel as PlateKernel>::Obs;

    /// Element `i`'s `Kernel::ARGS` arguments, written into `out`, from the
    /// operand groups (one slice per latent the arguments read: a scalar
    /// latent as a one-element slice, a vector latent whole).
    fn args<S: Scalar>(&self, i: usize, operands: &[&[S]], out: &mut [S]);

    /// True when every argument is affine in the operands with
    /// coefficients that are data (`c + a₁·r₁ + …`): [`Plate::linear_terms`]
    /// then gives the derivatives, and [`preaccumulate`] needs no dual
    /// numbers.
    const LINEAR: bool = false;

    /// For element `i` of a [`Plate::LINEAR`] plate: pushes
    /// `(argument a, operand j, ∂argₐ,ᵢ/∂θⱼ)` for every operand an argument
    /// depends on, `j` the operand's position in the flat list (group `k`'s
    /// elements start at `offsets[k]`). Called after [`Plate::args`] for
    /// the same element. The default pushes nothing.
    fn linear_terms(&self, i: usize, offsets: &[usize], terms: &mut Vec<(usize, usize, f64)>) {
        let _ = (i, offsets, terms);
    }

    /// The plate's identity for the coefficients [`preaccumulate`] records
    /// when its arguments turn out affine in the operands (see
    /// [`with_plate_cache`](super::with_plate_cache)); `None`, the default,
    /// records nothing. `#[variational]` gives every plate its model's
    /// address and field.
    fn cache_key(&self) -> Option<super::PlateKey> {
        None
    }

    /// The plate's `k`-th contiguous array of `f64` data (`k = 0, 1, …`;
    /// `None` past the last), for the record of
    /// [`with_plate_cache`](super::with_plate_cache) to refer to instead
    /// of copying: a column of coefficients `(C₀ⱼ, …, C_{N−1,j})` that is
    /// bit for bit a run `data[o..o + N]` of one of them (a column of an
    /// `nalgebra` `DMatrix`, which is column-major) is read from there at
    /// every evaluation. The slices must be the same (address and length)
    /// at every call while the plate's data are unchanged; a record whose
    /// slices moved is recorded again. `#[variational]` lists the model's
    /// real `Vec`, array, `DVector` and `DMatrix` fields. The default has
    /// none (every recorded column is a copy).
    ///
    /// ```
    /// use iwhvi_core::plate::{NormalKernel, Plate};
    /// use iwhvi_core::Scalar;
    ///
    /// struct Line { x: Vec<f64>, y: Vec<f64> }
    /// impl Plate for Line {
    ///     type Kernel = NormalKernel;
    ///     fn kernel(&self) -> NormalKernel { NormalKernel }
    ///     fn len(&self) -> usize { self.y.len() }
    ///     fn obs(&self, i: usize) -> f64 { self.y[i] }
    ///     fn args<S: Scalar>(&self, i: usize, operands: &[&[S]], out: &mut [S]) {
    ///         out[0] = operands[0][0] * self.x[i];
    ///         out[1] = S::constant(1.0);
    ///     }
    ///     fn f64_data(&self, k: usize) -> Option<&[f64]> {
    ///         [&self.x, &self.y].get(k).map(|v| v.as_slice())
    ///     }
    /// }
    /// let line = Line { x: vec![0.0, 1.0], y: vec![0.5, 1.5] };
    /// assert_eq!(line.f64_data(0), Some(&[0.0, 1.0][..]));
    /// assert_eq!(line.f64_data(2), None);
    /// ```
    fn f64_data(&self, k: usize) -> Option<&[f64]> {
        let _ = k;
        None
    }
}

/// `lp + Σᵢ log f(obsᵢ | argsᵢ(θ))` for a [`Plate`], with `θ` the operand
/// groups, as one scalar (module docs for the formula).
///
/// - `T = f64`: the arguments are evaluated in `f64` and the kernel's
///   `block_value` adds the terms to `lp` in the kernel's order (element
///   order for [`ScalarKernel`](super::ScalarKernel), which is then bit for
///   bit the scalar loop `lp += log_prob_or_neg_inf(F::new(args…), obsᵢ)`;
///   four lanes for the hand-written kernels).
/// - any other `T`: the arguments are evaluated on `Dual<W>` seeded on the
///   operands, the kernel's `block` gives the value (the same bits as the
///   `f64` path) and `ḡ`, and the partials `Σᵢ Σₐ ḡₐ,ᵢ ∂argₐ,ᵢ/∂θⱼ` are
///   summed in element order; the result is
///   `T::with_partials(value, [lp, θ…], [1, ∂/∂θ…])`.
///
/// # Panics
/// If `Kernel::ARGS > MAX_ARGS`.
///
/// ```
/// use iwhvi_core::plate::{preaccumulate, NormalKernel, Plate};
/// use iwhvi_core::{Dual, Scalar};
///
/// struct Line<'a> { x: &'a [f64], y: &'a [f64] }
/// impl Plate for Line<'_> {
///     type Kernel = NormalKernel;
///     fn kernel(&self) -> NormalKernel { NormalKernel }
///     fn len(&self) -> usize { self.y.len() }
///     fn obs(&self, i: usize) -> f64 { self.y[i] }
///     fn args<S: Scalar>(&self, i: usize, operands: &[&[S]], out: &mut [S]) {
///         out[0] = operands[0][0] + operands[1][0] * self.x[i];
///         out[1] = S::constant(1.0);
///     }
/// }
/// let line = Line { x: &[0.0, 1.0], y: &[0.5, 1.5] };
/// let (a, b) = (Dual::<2>::variable(0.0, 0), Dual::<2>::variable(1.0, 1));
/// let lp = preaccumulate(&line, Dual::constant(0.0), &[&[a][..], &[b][..]]);
/// // Residuals 0.5 and 0.5: ∂/∂a = Σ rᵢ = 1, ∂/∂b = Σ rᵢ xᵢ = 0.5.
/// assert_eq!(lp.tangent(), [1.0, 0.5]);
/// let value = preaccumulate(&line, 0.0, &[&[0.0][..], &[1.0][..]]);
/// assert_eq!(value, lp.value);
/// ```
pub fn preaccumulate<T: Scalar, P: Plate>(plate: &P, lp: T, operands: &[&[T]]) -> T {
    let arity = P::Kernel::ARGS;
    assert!(
        arity <= MAX_ARGS,
        "preaccumulate: at most {MAX_ARGS} arguments"
    );
    let m: usize = operands.iter().map(|g| g.len()).sum();
    if TypeId::of::<T>() == TypeId::of::<f64>() || m == 0 {
        let values = plain(operands);
        let groups: Vec<&[f64]> = values.iter().map(Vec::as_slice).collect();
        let value = value_only(plate, lp.value(), &groups);
        return T::with_partials(value, &[lp], &[1.0]);
    }
    let mut partials = vec![0.0; 1 + m];
    partials[0] = 1.0;
    let recorded = if P::LINEAR {
        None
    } else {
        affine::lookup(plate, operands)
    };
    // The record's runs of the data, read through this borrow of the plate.
    let data = if recorded.is_some() {
        affine::plate_data(plate)
    } else {
        Vec::new()
    };
    let view = recorded.as_deref().and_then(|cache| cache.view(&data));
    let value =
        match m {
            _ if P::LINEAR => linear(plate, lp.value(), operands, &mut partials[1..]),
            _ if view.is_some() => {
                let view = view.as_ref().expect("checked above");
                recorded_affine(plate, lp.value(), operands, view, &mut partials[1..])
            }
            1 => tangents::<T, P, 1>(plate, lp.value(), operands, &mut partials[1..]),
            2 => tangents::<T, P, 2>(plate, lp.value(), operands, &mut partials[1..]),
            3 | 4 => tangents::<T, P, 4>(plate, lp.value(), operands, &mut partials[1..]),
            5..=8 => tangents::<T, P, 8>(plate, lp.value(), operands, &mut partials[1..]),
            9..=16 => tangents::<T, P, 16>(plate, lp.value(), operands, &mut partials[1..]),
            // More operands than one dense pass holds: each element's own
            // inputs only, unless an element touches too many of them.
            _ => sparse_tangents(plate, lp.value(), operands, &mut partials[1..]).unwrap_or_else(
                || tangents::<T, P, 16>(plate, lp.value(), operands, &mut partials[1..]),
            ),
        };
    let mut flat = Vec::with_capacity(1 + m);
    flat.push(lp);
    for group in operands {
        flat.extend_from_slice(group);
    }
    T::with_partials(value, &flat, &partials)
}

/// The elements of the block starting at `start`.
fn block_end(start: usize, n: usize) -> usize {
    (start + BLOCK).min(n)
}

/// The operand groups' values.
fn plain<T: Scalar>(operands: &[&[T]]) -> Vec<Vec<f64>> {
    operands
        .iter()
        .map(|g| g.iter().map(|v| v.value()).collect())
        .collect()
}

/// Evaluates the arguments of elements `start..end` on `S` into `columns`
/// (argument `a` of element `start + b` at `a · width + b`, as `f64`) and
/// their observations into `obs`; `keep(position, argument)` sees each
/// argument in its own type (the dual path keeps the tangents).
#[inline(always)]
fn fill_block<S: Scalar, P: Plate>(
    plate: &P,
    (start, end, width): (usize, usize, usize),
    groups: &[&[S]],
    columns: &mut [f64],
    obs: &mut Vec<<P::Kernel as PlateKernel>::Obs>,
    mut keep: impl FnMut(usize, S),
) {
    let arity = P::Kernel::ARGS;
    let mut out = [S::constant(0.0); MAX_ARGS];
    obs.clear();
    for i in start..end {
        plate.args::<S>(i, groups, &mut out[..arity]);
        for (a, &v) in out[..arity].iter().enumerate() {
            let position = a * width + (i - start);
            columns[position] = v.value();
            keep(position, v);
        }
        obs.push(plate.obs(i));
    }
}

/// The kernel's view of a block's arguments: slices of `columns`, on the
/// stack (no allocation per block).
fn block_args(columns: &[f64], width: usize, len: usize) -> [Arg<'_>; MAX_ARGS] {
    std::array::from_fn(|a| Arg::Slice(columns.get(a * width..a * width + len).unwrap_or(&[])))
}

/// Zeroes `grad` and returns the kernel's partial slices for a block of
/// `len` elements (one per argument, `width` apart), on the stack.
fn block_grads(grad: &mut [f64], width: usize, len: usize) -> [&mut [f64]; MAX_ARGS] {
    grad.iter_mut().for_each(|g| *g = 0.0);
    let mut chunks = grad.chunks_mut(width.max(1));
    std::array::from_fn(|_| {
        chunks
            .next()
            .map_or(<&mut [f64]>::default(), |g| &mut g[..len])
    })
}

/// The `f64` path: `acc + Σᵢ log f(obsᵢ | argsᵢ)`, block by block.
fn value_only<P: Plate>(plate: &P, mut acc: f64, groups: &[&[f64]]) -> f64 {
    let (n, arity, kernel) = (plate.len(), P::Kernel::ARGS, plate.kernel());
    let width = n.min(BLOCK);
    let mut columns = vec![0.0; arity * width];
    let mut obs = Vec::with_capacity(width);
    for start in (0..n).step_by(BLOCK) {
        let end = block_end(start, n);
        fill_block(
            plate,
            (start, end, width),
            groups,
            &mut columns,
            &mut obs,
            |_, _: f64| {},
        );
        let args = block_args(&columns, width, end - start);
        acc = kernel.block_value(acc, &obs, &args[..arity]);
    }
    acc
}

/// The `f64` gradient paths' block loop: for each block, `fill` writes the
/// arguments (argument `a` of element `start + b` at `a · width + b`) and
/// the observations, the kernel gives the value and `ḡ`, and
/// `add(start, len, ḡ, width)` adds the block's partials. Returns
/// `acc + Σᵢ log f(obsᵢ | argsᵢ)`.
fn f64_blocks<P: Plate>(
    plate: &P,
    mut acc: f64,
    mut fill: impl FnMut(usize, usize, usize, &mut [f64], &mut Vec<<P::Kernel as PlateKernel>::Obs>),
    mut add: impl FnMut(usize, usize, &[f64], usize),
) -> f64 {
    let (n, arity, kernel) = (plate.len(), P::Kernel::ARGS, plate.kernel());
    let width = n.min(BLOCK);
    let mut columns = vec![0.0; arity * width];
    let mut grad = vec![0.0; arity * width];
    let mut obs = Vec::with_capacity(width);
    for start in (0..n).step_by(BLOCK) {
        let end = block_end(start, n);
        let len = end - start;
        fill(start, end, width, &mut columns, &mut obs);
        let args = block_args(&columns, width, len);
        let mut views = block_grads(&mut grad, width, len);
        acc = kernel.block(acc, &obs, &args[..arity], &mut views[..arity]);
        add(start, len, &grad, width);
    }
    acc
}

/// The gradient path of a [`Plate::LINEAR`] plate: the arguments in
/// `f64`, the derivatives `∂arg/∂θ` from `linear_terms`, so that
/// `∂/∂θⱼ = Σᵢ Σ_terms ḡₐ,ᵢ · coefficient` is a plain `f64` accumulation,
/// in element order.
fn linear<T: Scalar, P: Plate>(
    plate: &P,
    acc: f64,
    operands: &[&[T]],
    partials: &mut [f64],
) -> f64 {
    let values = plain(operands);
    let groups: Vec<&[f64]> = values.iter().map(Vec::as_slice).collect();
    let mut offsets = Vec::with_capacity(groups.len());
    let mut total = 0;
    for g in &groups {
        offsets.push(total);
        total += g.len();
    }
    let mut terms = Vec::new();
    f64_blocks(
        plate,
        acc,
        |start, end, width, columns, obs| {
            fill_block(
                plate,
                (start, end, width),
                &groups,
                columns,
                obs,
                |_, _: f64| {},
            );
        },
        |start, len, grad, width| {
            for i in start..start + len {
                terms.clear();
                plate.linear_terms(i, &offsets, &mut terms);
                for &(a, j, coefficient) in &terms {
                    let g = grad[a * width + (i - start)];
                    // A rejected element has no partials (as in `tangents`).
                    if g != 0.0 {
                        partials[j] += g * coefficient;
                    }
                }
            }
        },
    )
}

/// The gradient path of a plate whose arguments were found affine
/// ([`affine`]): the arguments in `f64` (the same bits as
/// [`value_only`]: the plate's own code, or its recorded left fold
/// replayed, the same operations), their recorded derivatives times the
/// kernel's partials added in element order, the order of [`tangents`] (so
/// the same bits as it gives, whenever the kernel's partials are finite).
fn recorded_affine<T: Scalar, P: Plate>(
    plate: &P,
    acc: f64,
    operands: &[&[T]],
    cache: &affine::View<'_>,
    partials: &mut [f64],
) -> f64 {
    let values = plain(operands);
    let groups: Vec<&[f64]> = values.iter().map(Vec::as_slice).collect();
    let theta: Vec<f64> = values.concat();
    f64_blocks(
        plate,
        acc,
        |start, end, width, columns, obs| {
            if cache.replays() {
                cache.replay(start, end - start, &theta, columns, width);
                obs.clear();
                obs.extend((start..end).map(|i| plate.obs(i)));
            } else {
                fill_block(
                    plate,
                    (start, end, width),
                    &groups,
                    columns,
                    obs,
                    |_, _: f64| {},
                );
            }
        },
        |start, len, grad, width| cache.accumulate(start, len, grad, width, partials),
    )
}

/// The gradient path with `W` lanes: returns the value and adds
/// `∂/∂θⱼ` into `partials[j]`, in passes of `W` operands.
fn tangents<T: Scalar, P: Plate, const W: usize>(
    plate: &P,
    lp: f64,
    operands: &[&[T]],
    partials: &mut [f64],
) -> f64 {
    let (n, arity, kernel) = (plate.len(), P::Kernel::ARGS, plate.kernel());
    let m = partials.len();
    let width = n.min(BLOCK);
    let mut duals = vec![Dual::<W>::constant(0.0); arity * width];
    let mut columns = vec![0.0; arity * width];
    let mut grad = vec![0.0; arity * width];
    let mut obs = Vec::with_capacity(width);
    let mut value = lp;
    for first in (0..m).step_by(W) {
        let lanes = W.min(m - first);
        // The operands as duals, those of this pass seeded.
        let mut position = 0;
        let seeded: Vec<Vec<Dual<W>>> = operands
            .iter()
            .map(|g| {
                g.iter()
                    .map(|v| {
                        let j = position;
                        position += 1;
                        if (first..first + lanes).contains(&j) {
                            Dual::variable(v.value(), j - first)
                        } else {
                            Dual::constant(v.value())
                        }
                    })
                    .collect()
            })
            .collect();
        let groups: Vec<&[Dual<W>]> = seeded.iter().map(Vec::as_slice).collect();
        let mut acc = lp;
        for start in (0..n).step_by(BLOCK) {
            let end = block_end(start, n);
            let len = end - start;
            fill_block(
                plate,
                (start, end, width),
                &groups,
                &mut columns,
                &mut obs,
                |at, d| {
                    duals[at] = d;
                },
            );
            let args = block_args(&columns, width, len);
            let mut views = block_grads(&mut grad, width, len);
            acc = kernel.block(acc, &obs, &args[..arity], &mut views[..arity]);
            // Σ_b Σ_a ḡ_{a,b} · ∂arg_{a,b}/∂θ, elements in order.
            let lanes_out = &mut partials[first..first + lanes];
            for b in 0..len {
                for a in 0..arity {
                    let g = grad[a * width + b];
                    let d = &duals[a * width + b];
                    // An element the family rejects has no partials (its
                    // tangents may be non-finite): skip it, as the scalar
                    // path's constant −∞ does.
                    if g == 0.0 || d.is_constant() {
                        continue;
                    }
                    let t = d.tangent();
                    for (p, &tl) in lanes_out.iter_mut().zip(&t[..lanes]) {
                        *p += g * tl;
                    }
                }
            }
        }
        if first == 0 {
            value = acc;
        }
    }
    value
}

/// The inputs one element's arguments may touch on the sparse pass
/// ([`sparse_tangents`]); beyond it the plate takes the dense passes.
const SPARSE_INPUTS: usize = 8;

/// The partials of a plate whose operands number more than one dense pass
/// holds, by one pass over the elements on [`Sparse`] duals: element `i`'s
/// arguments carry partials in the inputs they read only (a gather
/// `theta[group[i]]` one, not all of `theta`), so the pass costs `O(N)`
/// where the dense passes cost `O(N m / 16)`. The same sums as
/// [`tangents`] (each input's partial accumulated over the elements in
/// order), so the same bits; `None`, with `partials` zeroed, as soon as an
/// element's arguments touch more than [`SPARSE_INPUTS`] inputs.
fn sparse_tangents<T: Scalar, P: Plate>(
    plate: &P,
    lp: f64,
    operands: &[&[T]],
    partials: &mut [f64],
) -> Option<f64> {
    let (n, arity, kernel) = (plate.len(), P::Kernel::ARGS, plate.kernel());
    let width = n.min(BLOCK);
    let mut position = 0;
    let seeded: Vec<Vec<Sparse<SPARSE_INPUTS>>> = operands
        .iter()
        .map(|g| {
            g.iter()
                .map(|v| {
                    position += 1;
                    Sparse::variable(v.value(), position - 1)
                })
                .collect()
        })
        .collect();
    let groups: Vec<&[Sparse<SPARSE_INPUTS>]> = seeded.iter().map(Vec::as_slice).collect();
    let mut sparse = vec![Sparse::<SPARSE_INPUTS>::constant(0.0); arity * width];
    let mut columns = vec![0.0; arity * width];
    let mut grad = vec![0.0; arity * width];
    let mut obs = Vec::with_capacity(width);
    let mut acc = lp;
    for start in (0..n).step_by(BLOCK) {
        let end = block_end(start, n);
        let len = end - start;
        let mut overflow = false;
        fill_block(
            plate,
            (start, end, width),
            &groups,
            &mut columns,
            &mut obs,
            |at, d: Sparse<SPARSE_INPUTS>| {
                overflow |= d.overflowed();
                sparse[at] = d;
            },
        );
        if overflow {
            partials.iter_mut().for_each(|p| *p = 0.0);
            return None;
        }
        let args = block_args(&columns, width, len);
        let mut views = block_grads(&mut grad, width, len);
        acc = kernel.block(acc, &obs, &args[..arity], &mut views[..arity]);
        for b in 0..len {
            for a in 0..arity {
                let g = grad[a * width + b];
                let d = &sparse[a * width + b];
                // As in `tangents`: a rejected element has no partials.
                if g == 0.0 || d.is_constant() {
                    continue;
                }
                for (input, t) in d.entries() {
                    partials[input] += g * t;
                }
            }
        }
    }
    Some(acc)
}

/// The kernel a plate of family `Self` runs: a hand-written closed form
/// where one exists, [`ScalarKernel<Self>`] otherwise. `#[variational]`
/// names it as `<distributions::Family as FamilyKernel>::Kernel`, so that a
/// new hand-written kernel only changes this mapping.
///
/// ```
/// use iwhvi_core::distributions::{Gamma, Normal, Weibull};
/// use iwhvi_core::plate::{FamilyKernel, GammaKernel, NormalKernel, ScalarKernel};
///
/// let _: NormalKernel = <Normal as FamilyKernel>::Kernel::default();
/// let _: GammaKernel = <Gamma as FamilyKernel>::Kernel::default();
/// let _: ScalarKernel<Weibull> = <Weibull as FamilyKernel>::Kernel::default();
/// ```
pub trait FamilyKernel: Family {
    /// The kernel.
    type Kernel: PlateKernel<Obs = Self::Obs> + Default;
}

macro_rules! family_kernels {
    (hand: [$($family:ident => $kernel:ident,)+] scalar: [$($other:ident,)+]) => {
        $(impl FamilyKernel for $family { type Kernel = $kernel; })+
        $(impl FamilyKernel for $other { type Kernel = ScalarKernel<$other>; })+
    };
}

family_kernels! {
    hand: [
        Normal => NormalKernel,
        BernoulliLogit => BernoulliLogitKernel,
        PoissonLog => PoissonLogKernel,
        Poisson => PoissonKernel,
        BinomialLogit => BinomialLogitKernel,
        StudentT => StudentTKernel,
        LogNormal => LogNormalKernel,
        Gamma => GammaKernel,
        NegativeBinomial2 => NegativeBinomial2Kernel,
    ]
    scalar: [
        HalfNormal, Cauchy, HalfCauchy, Laplace, Logistic, Exponential,
        InverseGamma, Beta, Uniform, Weibull, Bernoulli, Binomial,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// yᵢ ~ N(Σⱼ βⱼ xᵢⱼ + a, e^s) with `d` coefficients: operands
    /// `[a], [s], β`.
    struct Regression {
        x: Vec<f64>,
        y: Vec<f64>,
        d: usize,
    }

    impl Plate for Regression {
        type Kernel = NormalKernel;
        fn kernel(&self) -> NormalKernel {
            NormalKernel
        }
        fn len(&self) -> usize {
            self.y.len()
        }
        fn obs(&self, i: usize) -> f64 {
            self.y[i]
        }
        fn args<S: Scalar>(&self, i: usize, operands: &[&[S]], out: &mut [S]) {
            let beta = operands[2];
            let mut eta = operands[0][0];
            for (&b, &x) in beta.iter().zip(&self.x[i * self.d..(i + 1) * self.d]) {
                eta += b * x;
            }
            out[0] = eta;
            out[1] = operands[1][0].exp();
        }
    }

    impl Regression {
        fn new(n: usize, d: usize) -> Self {
            let x: Vec<f64> = (0..n * d)
                .map(|k| ((k * 37 % 101) as f64) / 50.0 - 1.0)
                .collect();
            let y = (0..n).map(|i| ((i * 13 % 29) as f64) / 7.0 - 2.0).collect();
            Self { x, y, d }
        }

        /// The scalar loop.
        fn reference<T: Scalar>(&self, lp: T, a: T, s: T, beta: &[T]) -> T {
            let mut lp = lp;
            let ops: [&[T]; 3] = [&[a], &[s], beta];
            let mut out = [T::constant(0.0); 2];
            for i in 0..self.len() {
                self.args(i, &ops, &mut out);
                lp += <Normal as crate::plate::Family>::log_prob(&out, self.y[i]);
            }
            lp
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
    }

    fn check<const W: usize>(n: usize, d: usize) {
        let plate = Regression::new(n, d);
        let p: Vec<f64> = (0..d + 2).map(|k| 0.1 * k as f64 - 0.3).collect();
        // f64: the loop to rounding (the hand-written Normal kernel sums in
        // four lanes); the duals' value below is this value, bit for bit.
        let value = preaccumulate(&plate, 0.5, &[&p[0..1], &p[1..2], &p[2..]]);
        let reference = plate.reference(0.5, p[0], p[1], &p[2..]);
        assert!(
            close(value, reference),
            "n {n} d {d}: {value} vs {reference}"
        );
        // Duals: every direction, W at a time.
        for first in (0..d + 2).step_by(W) {
            let duals: Vec<Dual<W>> = p
                .iter()
                .enumerate()
                .map(|(k, &v)| {
                    if (first..first + W).contains(&k) {
                        Dual::variable(v, k - first)
                    } else {
                        Dual::constant(v)
                    }
                })
                .collect();
            let lp = Dual::<W>::variable(0.5, 0);
            let got = preaccumulate(&plate, lp, &[&duals[0..1], &duals[1..2], &duals[2..]]);
            let want = plate.reference(lp, duals[0], duals[1], &duals[2..]);
            assert_eq!(got.value.to_bits(), value.to_bits());
            for (g, w) in got.tangent().iter().zip(want.tangent()) {
                assert!(close(*g, w), "n {n} d {d}: {g} vs {w}");
            }
        }
    }

    #[test]
    fn matches_the_scalar_loop_at_every_width_and_over_blocks() {
        for (n, d) in [
            (0, 1),
            (1, 0),
            (5, 1),
            (7, 2),
            (BLOCK + 3, 6),
            (2 * BLOCK + 1, 14),
            (300, 20),
            (40, 33),
        ] {
            check::<4>(n, d);
            check::<16>(n, d);
        }
    }

    /// yᵢ ~ N(a + 2b·xᵢ − θ[i mod 3], s/2 + 1): affine in the operands
    /// `[a], [b], θ, [s]`; `LIN` says whether the driver is told so.
    struct Affine<const LIN: bool> {
        x: Vec<f64>,
        y: Vec<f64>,
    }

    impl<const LIN: bool> Plate for Affine<LIN> {
        type Kernel = NormalKernel;
        const LINEAR: bool = LIN;
        fn kernel(&self) -> NormalKernel {
            NormalKernel
        }
        fn len(&self) -> usize {
            self.y.len()
        }
        fn obs(&self, i: usize) -> f64 {
            self.y[i]
        }
        fn args<S: Scalar>(&self, i: usize, ops: &[&[S]], out: &mut [S]) {
            out[0] = ops[0][0] + ops[1][0] * (2.0 * self.x[i]) - ops[2][i % 3];
            out[1] = ops[3][0] * 0.5 + 1.0;
        }
        fn linear_terms(&self, i: usize, offsets: &[usize], terms: &mut Vec<(usize, usize, f64)>) {
            terms.push((0, offsets[0], 1.0));
            terms.push((0, offsets[1], 2.0 * self.x[i]));
            terms.push((0, offsets[2] + i % 3, -1.0));
            terms.push((1, offsets[3], 0.5));
        }
    }

    #[test]
    fn the_linear_path_matches_the_dual_path() {
        for n in [0, 1, 5, BLOCK + 9] {
            let x: Vec<f64> = (0..n).map(|i| (i % 7) as f64 * 0.3 - 1.0).collect();
            let y: Vec<f64> = (0..n).map(|i| (i % 5) as f64 * 0.7 - 1.2).collect();
            let (lin, dual) = (
                Affine::<true> {
                    x: x.clone(),
                    y: y.clone(),
                },
                Affine::<false> { x, y },
            );
            let p = [0.3, -0.2, 0.1, 0.5, -0.4, 0.8];
            let d: Vec<Dual<8>> = p
                .iter()
                .enumerate()
                .map(|(k, &v)| Dual::variable(v, k))
                .collect();
            let groups = [&d[0..1], &d[1..2], &d[2..5], &d[5..6]];
            let (a, b) = (
                preaccumulate(&lin, Dual::constant(0.0), &groups),
                preaccumulate(&dual, Dual::constant(0.0), &groups),
            );
            assert_eq!(a.value.to_bits(), b.value.to_bits());
            let f = preaccumulate(&lin, 0.0, &[&p[0..1], &p[1..2], &p[2..5], &p[5..6]]);
            assert_eq!(a.value.to_bits(), f.to_bits());
            for (g, h) in a.tangent().iter().zip(b.tangent()) {
                assert!(close(*g, h), "{g} vs {h}");
            }
        }
    }

    /// yᵢ ~ N(μ + τ·θ[i mod J], σᵢ): each element reads three of the
    /// `J + 2` operands `[μ], [τ], θ` (eight schools with many schools).
    struct Gather {
        y: Vec<f64>,
        sigma: Vec<f64>,
        schools: usize,
    }

    impl Plate for Gather {
        type Kernel = NormalKernel;
        fn kernel(&self) -> NormalKernel {
            NormalKernel
        }
        fn len(&self) -> usize {
            self.y.len()
        }
        fn obs(&self, i: usize) -> f64 {
            self.y[i]
        }
        fn args<S: Scalar>(&self, i: usize, ops: &[&[S]], out: &mut [S]) {
            out[0] = ops[0][0] + ops[1][0] * ops[2][i % self.schools];
            out[1] = S::constant(self.sigma[i]);
        }
    }

    #[test]
    fn the_sparse_pass_gives_the_dense_passes_bits_and_the_scalar_loops_gradient() {
        for (n, schools) in [(20, 20), (BLOCK + 7, 40), (3 * BLOCK, 300)] {
            let plate = Gather {
                y: (0..n).map(|i| (i as f64 * 0.7).sin() * 5.0).collect(),
                sigma: (0..n).map(|i| 1.0 + (i % 4) as f64).collect(),
                schools,
            };
            let p: Vec<f64> = (0..schools + 2).map(|k| (k as f64 * 0.37).cos()).collect();
            let groups = [&p[0..1], &p[1..2], &p[2..]];
            let mut dense = vec![0.0; p.len()];
            let mut sparse = vec![0.0; p.len()];
            let a = tangents::<f64, Gather, 16>(&plate, 0.25, &groups, &mut dense);
            let b = sparse_tangents::<f64, Gather>(&plate, 0.25, &groups, &mut sparse)
                .expect("three inputs per element");
            assert_eq!(a.to_bits(), b.to_bits());
            for (k, (x, y)) in dense.iter().zip(&sparse).enumerate() {
                assert!(
                    x.to_bits() == y.to_bits() || (*x == 0.0 && *y == 0.0),
                    "{k}: {x} vs {y}"
                );
            }
            // The scalar loop on duals, one direction per operand.
            for (k, &want) in sparse.iter().enumerate() {
                let d: Vec<Dual<1>> = p
                    .iter()
                    .enumerate()
                    .map(|(j, &v)| {
                        if j == k {
                            Dual::variable(v, 0)
                        } else {
                            Dual::constant(v)
                        }
                    })
                    .collect();
                let mut lp = Dual::<1>::constant(0.25);
                let ops: [&[Dual<1>]; 3] = [&d[0..1], &d[1..2], &d[2..]];
                let mut out = [Dual::constant(0.0); 2];
                for i in 0..n {
                    plate.args(i, &ops, &mut out);
                    lp += <Normal as crate::plate::Family>::log_prob(&out, plate.y[i]);
                }
                assert!(
                    close(lp.tangent()[0], want),
                    "{k}: {} vs {}",
                    lp.tangent()[0],
                    want
                );
            }
            // The `f64` value `preaccumulate` gives is the same.
            let value = preaccumulate(&plate, 0.25, &groups);
            assert_eq!(value.to_bits(), b.to_bits());
        }
        // An element that reads more inputs than the sparse duals hold.
        let wide = Regression::new(10, 12);
        let p = [0.1; 14];
        let mut partials = vec![1.0; 14];
        let none = sparse_tangents::<f64, Regression>(
            &wide,
            0.0,
            &[&p[0..1], &p[1..2], &p[2..]],
            &mut partials,
        );
        assert!(none.is_none() && partials.iter().all(|&q| q == 0.0));
    }

    /// A family the kernel rejects at some elements: −∞, no NaN partials.
    struct Rejecting;
    impl Plate for Rejecting {
        type Kernel = ScalarKernel<Gamma>;
        fn kernel(&self) -> Self::Kernel {
            ScalarKernel::new()
        }
        fn len(&self) -> usize {
            3
        }
        fn obs(&self, _: usize) -> f64 {
            1.0
        }
        fn args<S: Scalar>(&self, i: usize, operands: &[&[S]], out: &mut [S]) {
            out[0] = S::constant(2.0);
            out[1] = operands[0][0] * (i as f64 - 1.0);
        }
    }

    #[test]
    fn a_rejected_element_is_minus_infinity_without_partials() {
        let rate = Dual::<1>::variable(1.0, 0);
        let lp = preaccumulate(&Rejecting, Dual::constant(0.0), &[&[rate][..]]);
        assert_eq!(lp.value, f64::NEG_INFINITY);
        assert!(!lp.tangent()[0].is_nan());
    }
}
