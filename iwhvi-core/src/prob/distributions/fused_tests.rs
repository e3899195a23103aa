//! Checks shared by the fused scalar densities (a `log_prob` written as
//! [`Scalar::with_partials`] nodes instead of a chain of operators): the
//! fused form against the operator form it replaces, bit for bit, on every
//! scalar (`f64`, `Dual`, `Sparse`, the tape under several upstream
//! adjoints) and for every choice of which operands vary, and against
//! central finite differences.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::ad::sparse::Sparse;
use crate::dual::Dual;
use crate::gradient::Differentiable;
use crate::scalar::Scalar;
use crate::tape::TapeEngine;

/// A density of `N` scalars (the point and the parameters), fused and in
/// the operator form it replaces.
pub(super) trait Fused<const N: usize>: Sync {
    /// The fused `log_prob`.
    fn fused<T: Scalar>(&self, v: [T; N]) -> T;
    /// The operator form.
    fn operators<T: Scalar>(&self, v: [T; N]) -> T;
}

/// The same derivative: the same bits (the sign of a zero aside: `==`),
/// both NaN, or one NaN where the other is infinite (an overflowed
/// intermediate, `∞ − ∞` in one form where the other keeps `∞`); never
/// `+∞` against `−∞` or a number against a non-number.
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && !b.is_finite()) || (b.is_nan() && !a.is_finite())
}

/// The same bits, NaN payloads aside.
fn same_value(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Entry `i` of `v`: a variable through `variable` when bit `i` of `mask`
/// is set, else a constant.
fn operands<T: Scalar, const N: usize>(
    v: [f64; N],
    mask: u32,
    variable: impl Fn(f64, usize) -> T,
) -> [T; N] {
    std::array::from_fn(|i| {
        if mask >> i & 1 == 1 {
            variable(v[i], i)
        } else {
            T::constant(v[i])
        }
    })
}

/// `upstream · log p(v)`, the operands outside `mask` held constant, on the
/// tape: its gradient is the adjoints `upstream · ∂` the sweep forms.
struct Taped<'a, D, const N: usize> {
    density: &'a D,
    fused: bool,
    mask: u32,
    upstream: f64,
}

impl<D: Fused<N>, const N: usize> Differentiable for Taped<'_, D, N> {
    fn eval<T: Scalar>(&self, x: &[T]) -> T {
        let v: [T; N] = std::array::from_fn(|i| {
            if self.mask >> i & 1 == 1 {
                x[i]
            } else {
                T::constant(x[i].value())
            }
        });
        let lp = if self.fused {
            self.density.fused(v)
        } else {
            self.density.operators(v)
        };
        lp * self.upstream
    }
}

/// The fused and operator forms agree at `v` on every scalar: the value
/// bit for bit, each derivative bit for bit too (up to the sign of a zero)
/// or, past overflow, not finite in both.
pub(super) fn assert_same_bits<D: Fused<N>, const N: usize>(d: &D, v: [f64; N]) {
    let (a, b) = (d.fused(v), d.operators(v));
    assert!(same_value(a, b), "f64 at {v:?}: {a:e} vs {b:e}");
    for mask in 0..1u32 << N {
        let a: Dual<N> = d.fused(operands(v, mask, Dual::variable));
        let b: Dual<N> = d.operators(operands(v, mask, Dual::variable));
        assert!(same_value(a.value, b.value), "Dual value at {v:?}");
        assert_eq!(a.is_constant(), b.is_constant(), "Dual at {v:?}, {mask:b}");
        for (i, (s, t)) in a.tangent().iter().zip(b.tangent()).enumerate() {
            assert!(same(*s, t), "Dual ∂{i} at {v:?}, {mask:b}: {s:e} vs {t:e}");
        }
        let dense = |s: Sparse<4>| {
            let mut out = [0.0; N];
            s.entries().for_each(|(i, p)| out[i] = p);
            (s.value, out)
        };
        let (sa, pa) = dense(d.fused(operands(v, mask, Sparse::variable)));
        let (sb, pb) = dense(d.operators(operands(v, mask, Sparse::variable)));
        assert!(same_value(sa, sb), "Sparse value at {v:?}");
        for (i, (s, t)) in pa.iter().zip(pb).enumerate() {
            assert!(
                same(*s, t),
                "Sparse ∂{i} at {v:?}, {mask:b}: {s:e} vs {t:e}"
            );
        }
        for upstream in [1.0, 15.0, 0.1, -3.7, 1.0 / 3.0, 6.02e23] {
            let taped = |fused| Taped {
                density: d,
                fused,
                mask,
                upstream,
            };
            let (va, ga) = TapeEngine.value_and_gradient(&taped(true), &v);
            let (vb, gb) = TapeEngine.value_and_gradient(&taped(false), &v);
            assert!(same_value(va, vb), "tape value at {v:?}");
            for (i, (s, t)) in ga.iter().zip(gb).enumerate() {
                assert!(
                    same(*s, t),
                    "tape ∂{i} at {v:?}, {mask:b}, ḡ = {upstream}: {s:e} vs {t:e}"
                );
            }
        }
    }
}

/// The fused form's derivatives (a forward pass) match central finite
/// differences of its value at `v`, to `tolerance` relative to the
/// larger of the derivative and `scale`.
pub(super) fn assert_finite_differences<D: Fused<N>, const N: usize>(
    d: &D,
    v: [f64; N],
    scale: f64,
    tolerance: f64,
) {
    let exact: Dual<N> = d.fused(operands(v, u32::MAX, Dual::variable));
    for i in 0..N {
        let h = 1e-6 * v[i].abs().max(1.0);
        let at = |x: f64| {
            let mut w = v;
            w[i] = x;
            d.fused(w)
        };
        let fd = (at(v[i] + h) - at(v[i] - h)) / (2.0 * h);
        let t = exact.tangent()[i];
        assert!(
            (fd - t).abs() <= tolerance * t.abs().max(scale),
            "∂{i} at {v:?}: {t:e} vs finite differences {fd:e}"
        );
    }
}

/// `count` points for a density of `N` scalars: entry `i` drawn by
/// `draw[i]` from a seeded generator.
pub(super) fn points<const N: usize>(
    seed: u64,
    count: usize,
    draw: [fn(&mut StdRng) -> f64; N],
) -> Vec<[f64; N]> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| std::array::from_fn(|i| draw[i](&mut rng)))
        .collect()
}

/// A real of moderate size, `U(-10, 10)`.
pub(super) fn moderate(rng: &mut StdRng) -> f64 {
    rng.random::<f64>() * 20.0 - 10.0
}

/// A positive of moderate size, `e^U(-5, 5)`.
pub(super) fn moderate_positive(rng: &mut StdRng) -> f64 {
    (rng.random::<f64>() * 10.0 - 5.0).exp()
}

/// A real of any size, `±10^U(-300, 300)`.
pub(super) fn extreme(rng: &mut StdRng) -> f64 {
    let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
    sign * extreme_positive(rng)
}

/// A positive of any size, `10^U(-300, 300)`.
pub(super) fn extreme_positive(rng: &mut StdRng) -> f64 {
    10f64.powf(rng.random::<f64>() * 600.0 - 300.0)
}
