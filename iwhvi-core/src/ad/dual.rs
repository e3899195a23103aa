//! Vector-mode forward dual numbers with a stack-allocated tangent.

use std::fmt;
use std::iter::Product;

use super::rules::{self, ChainRule, Partials, Rule};
use crate::scalar::Scalar;
use crate::vector::{self, VectorFunction};

/// A value with `W` directional derivatives: `x + Σⱼ ẋⱼ εⱼ` with `εⱼ εₖ = 0`.
///
/// Each arithmetic operation and elementary function propagates the tangent
/// by the chain rule, so evaluating a function on duals seeded with unit
/// tangents yields the function's value and `W` partial derivatives in one
/// pass. The tangent is a `[f64; W]` on the stack: `Dual` is `Copy`, and no
/// operation allocates. Loops over the tangent have a compile-time length,
/// which the compiler unrolls and vectorizes.
///
/// A dual also knows whether it is a *constant* (all derivatives zero by
/// construction). Operations on constants skip the tangent arithmetic and,
/// for elementary functions, the derivative itself: in a gradient pass that
/// seeds `W` of `P` parameters, everything that depends only on the other
/// `P - W` costs no more than `f64` arithmetic.
///
/// ```
/// use iwhvi_core::{Dual, Scalar};
///
/// // f(x, y) = x·y + sin x at (2, 3): ∂f/∂x = y + cos x, ∂f/∂y = x.
/// let x = Dual::<2>::variable(2.0, 0);
/// let y = Dual::<2>::variable(3.0, 1);
/// let f = x * y + x.sin();
/// assert_eq!(f.value, 6.0 + 2f64.sin());
/// assert_eq!(f.tangent(), [3.0 + 2f64.cos(), 2.0]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Dual<const W: usize> {
    /// The real part `x`.
    pub value: f64,
    /// The `W` directional derivatives `ẋ₁ … ẋ_W`; all zero when `!active`.
    tangent: [f64; W],
    /// False for a constant, whose tangent is known to be zero.
    active: bool,
}

/// `[f(t) for t in a]`, a loop of compile-time length.
#[inline(always)]
fn map<const W: usize>(a: &[f64; W], f: impl Fn(f64) -> f64) -> [f64; W] {
    let mut out = [0.0; W];
    for (o, &x) in out.iter_mut().zip(a) {
        *o = f(x);
    }
    out
}

/// `[f(s, t) for s, t in zip(a, b)]`.
#[inline(always)]
fn zip<const W: usize>(a: &[f64; W], b: &[f64; W], f: impl Fn(f64, f64) -> f64) -> [f64; W] {
    let mut out = [0.0; W];
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = f(x, y);
    }
    out
}

impl<const W: usize> Dual<W> {
    /// The constant `value`: every derivative zero.
    ///
    /// ```
    /// let c = iwhvi_core::Dual::<4>::constant(1.5);
    /// assert_eq!(c.tangent(), [0.0; 4]);
    /// assert!(c.is_constant());
    /// ```
    #[inline(always)]
    pub const fn constant(value: f64) -> Self {
        Self {
            value,
            tangent: [0.0; W],
            active: false,
        }
    }

    /// The independent variable of direction `direction`: tangent `e_direction`.
    ///
    /// # Panics
    /// If `direction >= W` (a programming error, not a data error).
    ///
    /// ```
    /// let x = iwhvi_core::Dual::<3>::variable(0.5, 1);
    /// assert_eq!(x.tangent(), [0.0, 1.0, 0.0]);
    /// ```
    #[inline]
    pub fn variable(value: f64, direction: usize) -> Self {
        let mut tangent = [0.0; W];
        tangent[direction] = 1.0;
        Self::new(value, tangent)
    }

    /// A dual with the given value and tangent.
    ///
    /// ```
    /// let x = iwhvi_core::Dual::new(1.0, [0.5, 2.0]);
    /// assert_eq!(x.tangent()[1], 2.0);
    /// ```
    #[inline(always)]
    pub const fn new(value: f64, tangent: [f64; W]) -> Self {
        Self {
            value,
            tangent,
            active: true,
        }
    }

    /// The `W` directional derivatives.
    #[inline(always)]
    pub const fn tangent(&self) -> [f64; W] {
        self.tangent
    }

    /// True when the dual is a constant: built by [`Dual::constant`] (or
    /// from an `f64`) or computed from constants only, so that its
    /// derivatives are zero without being computed.
    #[inline(always)]
    pub const fn is_constant(&self) -> bool {
        !self.active
    }

    /// The chain rule: the dual of `f(self)` given `f(x) = value` and
    /// `f'(x) = derivative` at `x = self.value`; tangent `f'(x)·ẋ`.
    ///
    /// ```
    /// use iwhvi_core::Dual;
    /// let x = Dual::<1>::variable(3.0, 0);
    /// let cube = x.chain_rule(27.0, 27.0); // x³ and 3x²
    /// assert_eq!(cube.tangent(), [27.0]);
    /// ```
    #[inline(always)]
    pub fn chain_rule(self, value: f64, derivative: f64) -> Self {
        if self.active {
            Self::new(value, map(&self.tangent, |t| t * derivative))
        } else {
            Self::constant(value)
        }
    }
}

impl<const W: usize> fmt::Display for Dual<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} + {:?}ε", self.value, self.tangent)
    }
}

rules::scalar_operators!([const W: usize] Dual<W>);

/// `tangent / divisor`, as one reciprocal and `W` multiplications.
#[inline(always)]
fn divide<const W: usize>(tangent: [f64; W], divisor: f64) -> [f64; W] {
    if divisor == 1.0 {
        return tangent;
    }
    let inverse = 1.0 / divisor;
    map(&tangent, |t| t * inverse)
}

/// The chain rule: the result's tangent is `Σᵢ ∂ᵢ ẋᵢ` over the operands
/// that are not constants.
impl<const W: usize> ChainRule for Dual<W> {
    const SHARES_DIVISOR: bool = true;

    #[inline(always)]
    fn unary<R: Rule<1>>(rule: R, x: Self) -> Self {
        let value = rule.value([x.value]);
        if !x.active || rule.constant_result() {
            return Self::constant(value);
        }
        let Partials {
            scaled: [d],
            divisor,
        } = rule.partials([x.value], value);
        Self::new(value, divide(map(&x.tangent, |t| d * t), divisor))
    }

    #[inline(always)]
    fn binary<R: Rule<2>>(rule: R, a: Self, b: Self) -> Self {
        let value = rule.value([a.value, b.value]);
        if !(a.active || b.active) || rule.constant_result() {
            return Self::constant(value);
        }
        let Partials {
            scaled: [da, db],
            divisor,
        } = rule.partials([a.value, b.value], value);
        // One operand a constant saves its `W` multiplications, except for
        // a linear rule, whose dense sum measured faster than the branch.
        let tangent = match (a.active || R::LINEAR, b.active || R::LINEAR) {
            (true, true) => zip(&a.tangent, &b.tangent, |ta, tb| da * ta + db * tb),
            (true, false) => map(&a.tangent, |ta| da * ta),
            _ => map(&b.tangent, |tb| db * tb),
        };
        Self::new(value, divide(tangent, divisor))
    }

    #[inline]
    fn combine(value: f64, terms: impl Iterator<Item = (Self, f64)>, divisor: f64) -> Self {
        Self::combine_grouped(value, terms.map(|term| [term]), divisor)
    }

    #[inline(always)]
    fn combine_grouped<const C: usize>(
        value: f64,
        groups: impl Iterator<Item = [(Self, f64); C]>,
        divisor: f64,
    ) -> Self {
        let mut tangent = [0.0; W];
        let mut active = false;
        for group in groups {
            for (operand, partial) in group {
                if operand.active {
                    active = true;
                    for (t, &v) in tangent.iter_mut().zip(&operand.tangent) {
                        *t += partial * v;
                    }
                }
            }
        }
        if active {
            Self::new(value, divide(tangent, divisor))
        } else {
            Self::constant(value)
        }
    }
}

impl<const W: usize> Product for Dual<W> {
    #[inline]
    fn product<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::constant(1.0), |acc, x| acc * x)
    }
}

impl<const W: usize> num_traits::Zero for Dual<W> {
    #[inline(always)]
    fn zero() -> Self {
        Self::constant(0.0)
    }
    /// Zero value *and* zero tangent: a term that is zero but carries a
    /// derivative must not be skipped.
    #[inline]
    fn is_zero(&self) -> bool {
        self.value == 0.0 && self.tangent.iter().all(|t| *t == 0.0)
    }
}

impl<const W: usize> num_traits::One for Dual<W> {
    #[inline(always)]
    fn one() -> Self {
        Self::constant(1.0)
    }
}

impl<const W: usize> Scalar for Dual<W> {
    #[inline]
    fn is_finite(self) -> bool {
        self.value.is_finite() && self.tangent.iter().all(|t| t.is_finite())
    }

    /// `f` in `f64`, then its Jacobian–vector product once per direction
    /// (constant blocks passed as `None`); constants when every operand
    /// is one.
    fn vector_op<F: VectorFunction>(mut f: F, x: &[&[Self]], out: &mut Vec<Self>) {
        let owned = vector::values(x);
        let xv: Vec<&[f64]> = owned.iter().map(Vec::as_slice).collect();
        out.clear();
        let active: Vec<bool> = x.iter().map(|b| b.iter().any(|v| v.active)).collect();
        if !active.contains(&true) {
            // No derivatives will follow: the plain value, as on the tape.
            let mut y = vec![0.0; f.outputs()];
            f.eval(&xv, &mut y);
            out.extend(y.iter().map(|&v| Self::constant(v)));
            return;
        }
        let y = vector::eval_values(&mut f, &xv);
        let mut tangents = vec![[0.0; W]; y.len()];
        let mut xdot: Vec<Vec<f64>> = x.iter().map(|b| vec![0.0; b.len()]).collect();
        let mut ydot = vec![0.0; y.len()];
        for d in 0..W {
            let mut moves = false;
            for ((buf, block), _) in xdot.iter_mut().zip(x).zip(&active).filter(|(_, a)| **a) {
                for (t, v) in buf.iter_mut().zip(block.iter()) {
                    *t = v.tangent[d];
                    moves |= *t != 0.0;
                }
            }
            if !moves {
                // The product is linear in ẋ: no direction, no work.
                continue;
            }
            let dots: Vec<Option<&[f64]>> = xdot
                .iter()
                .zip(&active)
                .map(|(b, &a)| a.then_some(b.as_slice()))
                .collect();
            f.jvp(&xv, &y, &dots, &mut ydot);
            for (t, &v) in tangents.iter_mut().zip(&ydot) {
                t[d] = v;
            }
        }
        out.extend(y.iter().zip(tangents).map(|(&v, t)| Self::new(v, t)));
    }

    rules::rule_methods!(value_field);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::special;

    #[test]
    fn log_sum_exp_value_is_the_f64_value() {
        let terms = [0.3, -2.0, 5.5, 5.4];
        let duals: Vec<Dual<4>> = terms
            .iter()
            .enumerate()
            .map(|(i, &t)| Dual::variable(t, i))
            .collect();
        let lse = Dual::log_sum_exp(&duals);
        assert_eq!(lse.value, special::log_sum_exp(&terms));
        let sum: f64 = lse.tangent.iter().sum();
        assert!((sum - 1.0).abs() < 1e-15);
    }

    #[test]
    fn log_sum_exp_of_no_mass_has_zero_tangent() {
        let lse = Dual::log_sum_exp(&[Dual::<2>::variable(f64::NEG_INFINITY, 0)]);
        assert_eq!(lse.value, f64::NEG_INFINITY);
        assert_eq!(lse.tangent, [0.0; 2]);
        assert_eq!(Dual::<2>::log_sum_exp(&[]).value, f64::NEG_INFINITY);
    }

    #[test]
    fn powf_at_zero_base_is_not_nan() {
        let x = Dual::<2>::variable(0.0, 0);
        let y = Dual::<2>::variable(2.0, 1);
        let p = x.powf(y);
        assert_eq!(p.value, 0.0);
        assert_eq!(p.tangent, [0.0, 0.0]);
        let p0 = x.powf(Dual::constant(0.0));
        assert_eq!((p0.value, p0.tangent), (1.0, [0.0, 0.0]));
    }

    #[test]
    fn powi_zero_is_constant_one() {
        let x = Dual::<1>::variable(0.0, 0);
        let p = x.powi(0);
        assert_eq!((p.value, p.tangent), (1.0, [0.0]));
        let p = Dual::<1>::variable(2.0, 0).powi(-2);
        assert_eq!((p.value, p.tangent), (0.25, [-0.25]));
    }

    #[test]
    fn comparisons_look_at_the_value() {
        let a = Dual::<1>::new(1.0, [5.0]);
        let b = Dual::<1>::new(1.0, [-5.0]);
        assert_eq!(a, b);
        assert!(a < 2.0 && a > Dual::constant(0.5));
    }

    #[test]
    fn zero_with_tangent_is_not_zero() {
        use num_traits::Zero;
        assert!(Dual::<2>::zero().is_zero());
        assert!(!Dual::<2>::variable(0.0, 1).is_zero());
    }

    #[test]
    fn constants_stay_constant_and_variables_do_not() {
        let c = Dual::<2>::constant(2.0);
        let x = Dual::<2>::variable(3.0, 0);
        assert!((c * c + c.exp() - c / 3.0).is_constant());
        assert!(Dual::log_sum_exp(&[c, c]).is_constant());
        for y in [
            c * x,
            x * c,
            c + x,
            x - c,
            c / x,
            x / c,
            x.powf(c),
            c.powf(x),
            (x * 0.0).exp(),
        ] {
            assert!(!y.is_constant());
        }
    }

    #[test]
    fn with_partials_is_the_chain_rule_over_the_variable_operands() {
        let x = Dual::<2>::new(1.0, [0.5, -2.0]);
        let y = Dual::<2>::new(2.0, [1.0, 3.0]);
        let c = Dual::<2>::constant(9.0);
        let r = Dual::with_partials(4.0, &[x, c, y, x], &[2.0, 7.0, -1.0, 0.5]);
        assert_eq!(r.value, 4.0);
        assert_eq!(
            r.tangent,
            [2.0 * 0.5 - 1.0 + 0.5 * 0.5, 2.0 * -2.0 - 3.0 + 0.5 * -2.0]
        );
        assert!(!r.is_constant());
        assert!(Dual::with_partials(4.0, &[c, c], &[1.0, 2.0]).is_constant());
        assert!(Dual::<2>::with_partials(4.0, &[], &[]).is_constant());
    }

    #[test]
    fn one_sided_cases_agree_with_the_two_sided_formula() {
        let x = Dual::<3>::new(1.7, [0.3, -1.1, 2.0]);
        let c = Dual::<3>::constant(-0.6);
        let c_active = Dual::<3>::new(-0.6, [0.0; 3]);
        let ops: [fn(Dual<3>, Dual<3>) -> Dual<3>; 4] =
            [|a, b| a + b, |a, b| a - b, |a, b| a * b, |a, b| a / b];
        for op in ops {
            let (one_sided, two_sided) = (op(x, c), op(x, c_active));
            assert_eq!(one_sided.value, two_sided.value);
            assert_eq!(one_sided.tangent, two_sided.tangent);
            let (one_sided, two_sided) = (op(c, x), op(c_active, x));
            for (a, b) in one_sided.tangent.iter().zip(&two_sided.tangent) {
                assert!((a - b).abs() <= 1e-15 * b.abs(), "{a} vs {b}");
            }
        }
    }
}
