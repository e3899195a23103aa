//! Vector-mode forward dual numbers with a stack-allocated tangent.

use std::fmt;
use std::iter::{Product, Sum};
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::scalar::Scalar;
use crate::special::{self, Elementary};

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

impl<const W: usize> Default for Dual<W> {
    #[inline(always)]
    fn default() -> Self {
        Self::constant(0.0)
    }
}

impl<const W: usize> From<f64> for Dual<W> {
    #[inline(always)]
    fn from(value: f64) -> Self {
        Self::constant(value)
    }
}

impl<const W: usize> fmt::Display for Dual<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} + {:?}ε", self.value, self.tangent)
    }
}

impl<const W: usize> PartialEq for Dual<W> {
    #[inline(always)]
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<const W: usize> PartialOrd for Dual<W> {
    #[inline(always)]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.value.partial_cmp(&other.value)
    }
}

impl<const W: usize> PartialEq<f64> for Dual<W> {
    #[inline(always)]
    fn eq(&self, other: &f64) -> bool {
        self.value == *other
    }
}

impl<const W: usize> PartialOrd<f64> for Dual<W> {
    #[inline(always)]
    fn partial_cmp(&self, other: &f64) -> Option<std::cmp::Ordering> {
        self.value.partial_cmp(other)
    }
}

impl<const W: usize> Neg for Dual<W> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        Self {
            value: -self.value,
            tangent: map(&self.tangent, |t| -t),
            active: self.active,
        }
    }
}

/// One binary operation on duals, from its value and its tangent:
/// `(a, b)` are the operands' values, `r` the result's, `(ta, tb)` tangent
/// entries. Mul and Div also give the one-sided tangents (one operand a
/// constant), which save the multiplications by zero; for Add and Sub the
/// dense formula with a zero tangent measured faster than a fourth branch
/// (`docs/PERFORMANCE.md`). The `f64` forms go through the `Dual ∘ Dual`
/// one with a constant, which the compiler folds.
macro_rules! impl_binary_op {
    ($Op:ident, $op:ident, $OpAssign:ident, $op_assign:ident,
     |$a:ident, $b:ident| $value:expr,
     both: |$r:ident, $ta:ident, $tb:ident| $both:expr
     $(, left: |$ta2:ident| $left:expr, right: |$tb3:ident| $right:expr)?) => {
        impl<const W: usize> $Op for Dual<W> {
            type Output = Self;
            #[inline(always)]
            #[allow(unused_variables, clippy::suspicious_arithmetic_impl)]
            fn $op(self, rhs: Self) -> Self {
                let ($a, $b) = (self.value, rhs.value);
                let $r = $value;
                match (self.active, rhs.active) {
                    (true, true) => Self::new($r, zip(&self.tangent, &rhs.tangent, |$ta, $tb| $both)),
                    $(
                        (true, false) => Self::new($r, map(&self.tangent, |$ta2| $left)),
                        (false, true) => Self::new($r, map(&rhs.tangent, |$tb3| $right)),
                    )?
                    (false, false) => Self::constant($r),
                    #[allow(unreachable_patterns)]
                    _ => Self::new($r, zip(&self.tangent, &rhs.tangent, |$ta, $tb| $both)),
                }
            }
        }

        impl<const W: usize> $Op<f64> for Dual<W> {
            type Output = Self;
            #[inline(always)]
            fn $op(self, rhs: f64) -> Self {
                $Op::$op(self, Self::constant(rhs))
            }
        }

        impl<const W: usize> $Op<Dual<W>> for f64 {
            type Output = Dual<W>;
            #[inline(always)]
            fn $op(self, rhs: Dual<W>) -> Dual<W> {
                $Op::$op(Dual::constant(self), rhs)
            }
        }

        impl<const W: usize> $OpAssign for Dual<W> {
            #[inline(always)]
            fn $op_assign(&mut self, rhs: Self) {
                *self = $Op::$op(*self, rhs);
            }
        }

        impl<const W: usize> $OpAssign<f64> for Dual<W> {
            #[inline(always)]
            fn $op_assign(&mut self, rhs: f64) {
                *self = $Op::$op(*self, rhs);
            }
        }
    };
}

impl_binary_op!(Add, add, AddAssign, add_assign, |a, b| a + b, both: |r, ta, tb| ta + tb);

impl_binary_op!(Sub, sub, SubAssign, sub_assign, |a, b| a - b, both: |r, ta, tb| ta - tb);

impl_binary_op!(Mul, mul, MulAssign, mul_assign, |a, b| a * b,
    both: |r, ta, tb| ta * b + a * tb,
    left: |ta| ta * b,
    right: |tb| a * tb);

impl_binary_op!(Div, div, DivAssign, div_assign, |a, b| a / b,
    both: |r, ta, tb| (ta - r * tb) * (1.0 / b),
    left: |ta| ta * (1.0 / b),
    right: |tb| -r * tb * (1.0 / b));

impl<const W: usize> Sum for Dual<W> {
    #[inline]
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::constant(0.0), |acc, x| acc + x)
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
    #[inline(always)]
    fn constant(v: f64) -> Self {
        Self::constant(v)
    }

    #[inline(always)]
    fn value(self) -> f64 {
        self.value
    }

    #[inline(always)]
    fn elementary(self, f: Elementary) -> Self {
        if self.active {
            let (value, derivative) = special::derivative(f, self.value);
            self.chain_rule(value, derivative)
        } else {
            Self::constant(f.value(self.value))
        }
    }

    #[inline]
    fn powi(self, n: i32) -> Self {
        let value = self.value.powi(n);
        if n == 0 || !self.active {
            return Self::constant(value);
        }
        self.chain_rule(value, f64::from(n) * self.value.powi(n - 1))
    }

    #[inline]
    fn powf(self, y: Self) -> Self {
        let value = self.value.powf(y.value);
        if !self.active && !y.active {
            return Self::constant(value);
        }
        let d_base = if y.value == 0.0 {
            0.0
        } else {
            y.value * self.value.powf(y.value - 1.0)
        };
        if !y.active {
            // A constant exponent has no derivative term: `x.powf(c)` is
            // defined for negative `x` (integer `c`) though `ln x` is not.
            return self.chain_rule(value, d_base);
        }
        // xʸ ln x → 0 as x → 0⁺ for y > 0; at x = 0 take the exponent's
        // derivative as 0 rather than 0 · (-∞) = NaN.
        let d_exponent = if value == 0.0 || self.value == 0.0 {
            0.0
        } else {
            value * self.value.ln()
        };
        Self::new(
            value,
            zip(&self.tangent, &y.tangent, |dx, dy| {
                d_base * dx + d_exponent * dy
            }),
        )
    }

    fn log_sum_exp(terms: &[Self]) -> Self {
        let max = special::max_term(terms.iter().map(|t| t.value));
        if !max.is_finite() {
            let value = if terms.iter().any(|t| t.value.is_nan()) {
                f64::NAN
            } else {
                max
            };
            return Self::constant(value);
        }
        let mut sum = 0.0;
        let mut weighted = [0.0; W];
        let mut active = false;
        for term in terms {
            let w = (term.value - max).exp();
            sum += w;
            if term.active {
                active = true;
                for (acc, t) in weighted.iter_mut().zip(&term.tangent) {
                    *acc += w * t;
                }
            }
        }
        let value = max + sum.ln();
        if !active {
            return Self::constant(value);
        }
        let inv = 1.0 / sum;
        Self::new(value, map(&weighted, |t| t * inv))
    }

    #[inline]
    fn is_finite(self) -> bool {
        self.value.is_finite() && self.tangent.iter().all(|t| t.is_finite())
    }

    #[inline]
    fn dot(a: &[Self], b: &[Self]) -> Self {
        let mut value = 0.0;
        let mut tangent = [0.0; W];
        let mut active = false;
        for (x, y) in a.iter().zip(b) {
            value += x.value * y.value;
            if x.active {
                active = true;
                for (t, &xt) in tangent.iter_mut().zip(&x.tangent) {
                    *t += xt * y.value;
                }
            }
            if y.active {
                active = true;
                for (t, &yt) in tangent.iter_mut().zip(&y.tangent) {
                    *t += x.value * yt;
                }
            }
        }
        if active {
            Self::new(value, tangent)
        } else {
            Self::constant(value)
        }
    }

    #[inline]
    fn scaled_squared_distance(x: &[Self], mean: &[Self], inverse_scale: &[Self]) -> Self {
        let mut value = 0.0;
        let mut tangent = [0.0; W];
        let mut active = false;
        for ((xi, mi), si) in x.iter().zip(mean).zip(inverse_scale) {
            let d = xi.value - mi.value;
            let z = d * si.value;
            value += z * z;
            // ∂z² = 2z (s (ẋ − ṁ) + d ṡ)
            let (along_d, along_s) = (2.0 * z * si.value, 2.0 * z * d);
            if xi.active {
                active = true;
                for (t, &v) in tangent.iter_mut().zip(&xi.tangent) {
                    *t += along_d * v;
                }
            }
            if mi.active {
                active = true;
                for (t, &v) in tangent.iter_mut().zip(&mi.tangent) {
                    *t -= along_d * v;
                }
            }
            if si.active {
                active = true;
                for (t, &v) in tangent.iter_mut().zip(&si.tangent) {
                    *t += along_s * v;
                }
            }
        }
        if active {
            Self::new(value, tangent)
        } else {
            Self::constant(value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
