//! The derivative rules, written once for every scalar.
//!
//! A rule is an operation's value and the partial derivatives of that value
//! in each operand, computed on `f64`. The one-argument table is
//! [`special::derivative`]; here are the rest: the arithmetic operators,
//! the powers with their guards ([`Rule`] implementations), and the fused
//! reductions `log_sum_exp`, `dot`, `scaled_squared_distance`,
//! `with_partials` and `with_partials_over` (generic functions that give [`ChainRule::combine`] their
//! partials).
//!
//! Each scalar applies the rules its own way, through [`ChainRule`]:
//! [`Dual`](crate::Dual) by the chain rule on its tangent,
//! `ẏ = Σᵢ ∂ᵢ ẋᵢ`; [`Var`](crate::tape::Var) as one tape node whose edges are
//! the `∂ᵢ`; `f64` by taking the value alone. The operator impls and the
//! [`Scalar`] methods that route to the rules are generated once, by
//! [`scalar_operators!`] and [`rule_methods!`].

use crate::scalar::Scalar;
use crate::special::{self, Elementary};

/// The partial derivatives of a value in its `N` operands, kept over a
/// common denominator: `∂y/∂xᵢ = scaled[i] / divisor`.
///
/// Most rules have divisor 1. The quotient keeps `b` apart
/// (`∂(a/b) = (∂a − r ∂b) / b`) so that forward mode divides a tangent
/// once, by one reciprocal, as its arithmetic always has.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Partials<const N: usize> {
    /// `∂y/∂xᵢ · divisor`.
    pub scaled: [f64; N],
    /// The common denominator.
    pub divisor: f64,
}

impl<const N: usize> Partials<N> {
    /// Partials with divisor 1.
    #[inline(always)]
    pub const fn new(partials: [f64; N]) -> Self {
        Self {
            scaled: partials,
            divisor: 1.0,
        }
    }

    /// `scaled[i] / divisor`.
    #[inline(always)]
    pub const fn over(scaled: [f64; N], divisor: f64) -> Self {
        Self { scaled, divisor }
    }
}

/// An operation on `N` scalars: its value, and its partial derivatives given
/// the operands' values and the result's.
pub(crate) trait Rule<const N: usize>: Copy {
    /// The partials are constants (the operation is linear): forward mode
    /// then adds a constant operand's zero tangent rather than branching on
    /// it, which measured faster (`docs/PERFORMANCE.md`).
    const LINEAR: bool = false;

    /// The operation's value: the code the `f64` scalar runs.
    fn value(self, x: [f64; N]) -> f64;

    /// The partial derivatives at `x`, where the value is `y`.
    fn partials(self, x: [f64; N], y: f64) -> Partials<N>;

    /// True when the result is a constant whatever the operands (`x⁰`).
    #[inline(always)]
    fn constant_result(self) -> bool {
        false
    }

    /// True when the result is affine in the operands with constant
    /// coefficients, given which operands vary (`active`): always for sums
    /// and negation, for a product with at most one varying factor, for a
    /// quotient by a constant, and otherwise only when nothing varies. The
    /// plate driver's affine probe reads it.
    #[inline(always)]
    fn affine(self, active: [bool; N]) -> bool {
        !active.contains(&true)
    }
}

/// `-x`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Negate;

impl Rule<1> for Negate {
    const LINEAR: bool = true;
    #[inline(always)]
    fn affine(self, _: [bool; 1]) -> bool {
        true
    }
    #[inline(always)]
    fn value(self, [x]: [f64; 1]) -> f64 {
        -x
    }
    #[inline(always)]
    fn partials(self, _: [f64; 1], _: f64) -> Partials<1> {
        Partials::new([-1.0])
    }
}

/// `a + b`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plus;

impl Rule<2> for Plus {
    const LINEAR: bool = true;
    #[inline(always)]
    fn affine(self, _: [bool; 2]) -> bool {
        true
    }
    #[inline(always)]
    fn value(self, [a, b]: [f64; 2]) -> f64 {
        a + b
    }
    #[inline(always)]
    fn partials(self, _: [f64; 2], _: f64) -> Partials<2> {
        Partials::new([1.0, 1.0])
    }
}

/// `a - b`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Minus;

impl Rule<2> for Minus {
    const LINEAR: bool = true;
    #[inline(always)]
    fn affine(self, _: [bool; 2]) -> bool {
        true
    }
    #[inline(always)]
    fn value(self, [a, b]: [f64; 2]) -> f64 {
        a - b
    }
    #[inline(always)]
    fn partials(self, _: [f64; 2], _: f64) -> Partials<2> {
        Partials::new([1.0, -1.0])
    }
}

/// `a · b`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Times;

impl Rule<2> for Times {
    #[inline(always)]
    fn affine(self, [a, b]: [bool; 2]) -> bool {
        !(a && b)
    }
    #[inline(always)]
    fn value(self, [a, b]: [f64; 2]) -> f64 {
        a * b
    }
    #[inline(always)]
    fn partials(self, [a, b]: [f64; 2], _: f64) -> Partials<2> {
        Partials::new([b, a])
    }
}

/// `a / b`: `∂/∂a = 1 / b`, `∂/∂b = −r / b` with `r = a / b`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Quotient;

impl Rule<2> for Quotient {
    #[inline(always)]
    fn affine(self, [_, b]: [bool; 2]) -> bool {
        !b
    }
    #[inline(always)]
    fn value(self, [a, b]: [f64; 2]) -> f64 {
        a / b
    }
    #[inline(always)]
    fn partials(self, [_, b]: [f64; 2], r: f64) -> Partials<2> {
        Partials::over([1.0, -r], b)
    }
}

/// `xⁿ` for an integer `n`: `n xⁿ⁻¹`, and a constant for `n = 0`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IntegerPower(pub i32);

impl Rule<1> for IntegerPower {
    #[inline(always)]
    fn value(self, [x]: [f64; 1]) -> f64 {
        x.powi(self.0)
    }
    #[inline(always)]
    fn partials(self, [x]: [f64; 1], _: f64) -> Partials<1> {
        Partials::new([f64::from(self.0) * x.powi(self.0 - 1)])
    }
    #[inline(always)]
    fn constant_result(self) -> bool {
        self.0 == 0
    }
}

/// `xʸ`: `∂/∂x = y xʸ⁻¹`, `∂/∂y = xʸ ln x`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Power;

impl Rule<2> for Power {
    #[inline(always)]
    fn value(self, [x, y]: [f64; 2]) -> f64 {
        x.powf(y)
    }
    #[inline(always)]
    fn partials(self, [x, y]: [f64; 2], value: f64) -> Partials<2> {
        let d_base = if y == 0.0 { 0.0 } else { y * x.powf(y - 1.0) };
        // xʸ ln x → 0 as x → 0⁺ for y > 0; at x = 0 take the exponent's
        // derivative as 0 rather than 0 · (-∞) = NaN. (At a negative base
        // it is NaN, and used only when the exponent is not a constant:
        // `x.powf(c)` is defined there for integer `c`, `ln x` is not.)
        let d_exponent = if value == 0.0 || x == 0.0 {
            0.0
        } else {
            value * x.ln()
        };
        Partials::new([d_base, d_exponent])
    }
}

/// The elementary functions, through the chain-rule table.
impl Rule<1> for Elementary {
    #[inline(always)]
    fn value(self, [x]: [f64; 1]) -> f64 {
        Elementary::value(self, x)
    }
    #[inline(always)]
    fn partials(self, [x]: [f64; 1], value: f64) -> Partials<1> {
        Partials::new([special::derivative_at(self, x, value)])
    }
}

/// How a scalar applies a rule: a dual by the chain rule on its tangent, a
/// tape variable by recording a node, `f64` by taking the value. Each
/// implementation skips the partials when every operand is a constant.
pub(crate) trait ChainRule: Scalar {
    /// Partials over a common divisor cost this scalar less than each
    /// partial on its own: true for forward mode (one reciprocal for the
    /// whole tangent), false for the tape (which stores each partial).
    const SHARES_DIVISOR: bool;

    /// `rule(x)`.
    fn unary<R: Rule<1>>(rule: R, x: Self) -> Self;

    /// `rule(a, b)`.
    fn binary<R: Rule<2>>(rule: R, a: Self, b: Self) -> Self;

    /// A value with the partial derivative `partial / divisor` in each
    /// `(operand, partial)` of `terms` (an operand may come more than once:
    /// its partials add up).
    fn combine(value: f64, terms: impl Iterator<Item = (Self, f64)>, divisor: f64) -> Self;

    /// [`combine`](ChainRule::combine) over terms that come in groups of
    /// `C` (the operands of one element of an n-ary rule), in order: the
    /// same result, without the cost of flattening the groups into one
    /// iterator on the hot path of `dot` and `scaled_squared_distance`.
    #[inline(always)]
    fn combine_grouped<const C: usize>(
        value: f64,
        groups: impl Iterator<Item = [(Self, f64); C]>,
        divisor: f64,
    ) -> Self {
        Self::combine(value, groups.flatten(), divisor)
    }
}

impl ChainRule for f64 {
    const SHARES_DIVISOR: bool = true;
    #[inline(always)]
    fn unary<R: Rule<1>>(rule: R, x: Self) -> Self {
        rule.value([x])
    }
    #[inline(always)]
    fn binary<R: Rule<2>>(rule: R, a: Self, b: Self) -> Self {
        rule.value([a, b])
    }
    #[inline(always)]
    fn combine(value: f64, _: impl Iterator<Item = (Self, f64)>, _: f64) -> Self {
        value
    }
}

/// Stable `ln Σᵢ exp(xᵢ)`: `max + ln Σᵢ exp(xᵢ − max)`, with partials the
/// softmax weights `exp(xᵢ − max) / Σⱼ exp(xⱼ − max) = exp(xᵢ − lse)`. A constant `-∞` for
/// no terms or no mass, `+∞` for an infinite term, NaN for a NaN one.
#[inline]
pub(crate) fn log_sum_exp<T: ChainRule>(terms: &[T]) -> T {
    let values = || terms.iter().map(|t| t.value());
    let max = special::max_term(values());
    if !max.is_finite() {
        let value = if values().any(f64::is_nan) {
            f64::NAN
        } else {
            max
        };
        return T::constant(value);
    }
    let sum = values().fold(0.0, |sum, v| sum + (v - max).exp());
    let value = max + sum.ln();
    // Term i's weight exp(xᵢ − max) / sum equals exp(xᵢ − value) to within
    // an ulp. Forward mode takes the first (one reciprocal for the whole
    // tangent), the tape the second (no division per edge): each keeps the
    // bits it has always had, which the examples' tape-engine fits print.
    if T::SHARES_DIVISOR {
        let weights = terms.iter().map(|&t| (t, (t.value() - max).exp()));
        T::combine(value, weights, sum)
    } else {
        let weights = terms.iter().map(|&t| (t, (t.value() - value).exp()));
        T::combine(value, weights, 1.0)
    }
}

/// `Σᵢ aᵢ bᵢ` over the shorter slice: `∂/∂aᵢ = bᵢ`, `∂/∂bᵢ = aᵢ`.
#[inline]
pub(crate) fn dot<T: ChainRule>(a: &[T], b: &[T]) -> T {
    let pairs = || a.iter().zip(b);
    let value = pairs().fold(0.0, |sum, (x, y)| sum + x.value() * y.value());
    let partials = pairs().map(|(&x, &y)| [(x, y.value()), (y, x.value())]);
    T::combine_grouped(value, partials, 1.0)
}

/// `Σᵢ zᵢ²` with `zᵢ = (xᵢ − meanᵢ) · inverse_scaleᵢ`:
/// `∂/∂xᵢ = −∂/∂meanᵢ = 2 zᵢ inverse_scaleᵢ`,
/// `∂/∂inverse_scaleᵢ = 2 zᵢ (xᵢ − meanᵢ)`.
#[inline]
pub(crate) fn scaled_squared_distance<T: ChainRule>(x: &[T], mean: &[T], inverse_scale: &[T]) -> T {
    let triples = || {
        x.iter()
            .zip(mean)
            .zip(inverse_scale)
            .map(|((&x, &m), &s)| (x, m, s))
    };
    let value = triples().fold(0.0, |sum, (x, m, s)| {
        let z = (x.value() - m.value()) * s.value();
        sum + z * z
    });
    let partials = triples().map(|(x, m, s)| {
        let d = x.value() - m.value();
        let z = d * s.value();
        let along_d = 2.0 * z * s.value();
        [(x, along_d), (m, -along_d), (s, 2.0 * z * d)]
    });
    T::combine_grouped(value, partials, 1.0)
}

/// A value with precomputed partials `∂value/∂operandᵢ = partialsᵢ`:
/// one [`ChainRule::combine`] over the operands, in order.
#[inline]
pub(crate) fn with_partials<T: ChainRule>(value: f64, operands: &[T], partials: &[f64]) -> T {
    assert_eq!(
        operands.len(),
        partials.len(),
        "with_partials: one partial per operand"
    );
    T::combine(
        value,
        operands.iter().copied().zip(partials.iter().copied()),
        1.0,
    )
}

/// A value with precomputed partials over a common divisor,
/// `∂value/∂operandᵢ = scaledᵢ / divisor`: one [`ChainRule::combine`] over
/// the operands, in order.
#[inline]
pub(crate) fn with_partials_over<T: ChainRule>(
    value: f64,
    operands: &[T],
    scaled: &[f64],
    divisor: f64,
) -> T {
    assert_eq!(
        operands.len(),
        scaled.len(),
        "with_partials_over: one partial per operand"
    );
    T::combine(
        value,
        operands.iter().copied().zip(scaled.iter().copied()),
        divisor,
    )
}

/// The [`Scalar`] methods that are rules, for a [`ChainRule`] scalar:
/// expands to items of an `impl Scalar` block. With `value_field`, also
/// `constant` and `value` for a type with a `value: f64` field and a
/// `constant` constructor.
macro_rules! rule_methods {
    (value_field) => {
        #[inline(always)]
        fn constant(v: f64) -> Self {
            Self::constant(v)
        }
        #[inline(always)]
        fn value(self) -> f64 {
            self.value
        }
        $crate::ad::rules::rule_methods!();
    };
    () => {
        #[inline(always)]
        fn elementary(self, f: $crate::special::Elementary) -> Self {
            $crate::ad::rules::ChainRule::unary(f, self)
        }
        #[inline]
        fn powi(self, n: i32) -> Self {
            $crate::ad::rules::ChainRule::unary($crate::ad::rules::IntegerPower(n), self)
        }
        #[inline]
        fn powf(self, y: Self) -> Self {
            $crate::ad::rules::ChainRule::binary($crate::ad::rules::Power, self, y)
        }
        #[inline]
        fn log_sum_exp(terms: &[Self]) -> Self {
            $crate::ad::rules::log_sum_exp(terms)
        }
        #[inline]
        fn dot(a: &[Self], b: &[Self]) -> Self {
            $crate::ad::rules::dot(a, b)
        }
        #[inline]
        fn scaled_squared_distance(x: &[Self], mean: &[Self], inverse_scale: &[Self]) -> Self {
            $crate::ad::rules::scaled_squared_distance(x, mean, inverse_scale)
        }
        #[inline]
        fn with_partials(value: f64, operands: &[Self], partials: &[f64]) -> Self {
            $crate::ad::rules::with_partials(value, operands, partials)
        }
        #[inline]
        fn with_partials_over(value: f64, operands: &[Self], scaled: &[f64], divisor: f64) -> Self {
            $crate::ad::rules::with_partials_over(value, operands, scaled, divisor)
        }
    };
}
pub(crate) use rule_methods;

/// The operators, comparisons and conversions of a [`ChainRule`] scalar
/// type with a `value: f64` field and a `constant` constructor:
/// `scalar_operators!([const W: usize] Dual<W>)`. Arithmetic goes through
/// the rules; an `f64` operand is a constant; comparisons look at the value.
macro_rules! scalar_operators {
    ([$($g:tt)*] $T:ty) => {
        impl<$($g)*> ::std::ops::Neg for $T {
            type Output = Self;
            #[inline(always)]
            fn neg(self) -> Self {
                $crate::ad::rules::ChainRule::unary($crate::ad::rules::Negate, self)
            }
        }

        $crate::ad::rules::scalar_operators!(@binary [$($g)*] $T, Add, add, AddAssign, add_assign, Plus);
        $crate::ad::rules::scalar_operators!(@binary [$($g)*] $T, Sub, sub, SubAssign, sub_assign, Minus);
        $crate::ad::rules::scalar_operators!(@binary [$($g)*] $T, Mul, mul, MulAssign, mul_assign, Times);
        $crate::ad::rules::scalar_operators!(@binary [$($g)*] $T, Div, div, DivAssign, div_assign, Quotient);

        impl<$($g)*> ::std::iter::Sum for $T {
            #[inline]
            fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
                iter.fold(Self::constant(0.0), |acc, x| acc + x)
            }
        }

        impl<$($g)*> Default for $T {
            #[inline(always)]
            fn default() -> Self {
                Self::constant(0.0)
            }
        }

        impl<$($g)*> From<f64> for $T {
            #[inline(always)]
            fn from(value: f64) -> Self {
                Self::constant(value)
            }
        }

        impl<$($g)*> PartialEq for $T {
            #[inline(always)]
            fn eq(&self, other: &Self) -> bool {
                self.value == other.value
            }
        }

        impl<$($g)*> PartialOrd for $T {
            #[inline(always)]
            fn partial_cmp(&self, other: &Self) -> Option<::std::cmp::Ordering> {
                self.value.partial_cmp(&other.value)
            }
        }

        impl<$($g)*> PartialEq<f64> for $T {
            #[inline(always)]
            fn eq(&self, other: &f64) -> bool {
                self.value == *other
            }
        }

        impl<$($g)*> PartialOrd<f64> for $T {
            #[inline(always)]
            fn partial_cmp(&self, other: &f64) -> Option<::std::cmp::Ordering> {
                self.value.partial_cmp(other)
            }
        }
    };

    (@binary [$($g:tt)*] $T:ty, $Op:ident, $op:ident, $OpAssign:ident, $op_assign:ident, $Rule:ident) => {
        impl<$($g)*> ::std::ops::$Op for $T {
            type Output = Self;
            #[inline(always)]
            fn $op(self, rhs: Self) -> Self {
                $crate::ad::rules::ChainRule::binary($crate::ad::rules::$Rule, self, rhs)
            }
        }

        impl<$($g)*> ::std::ops::$Op<f64> for $T {
            type Output = Self;
            #[inline(always)]
            fn $op(self, rhs: f64) -> Self {
                ::std::ops::$Op::$op(self, Self::constant(rhs))
            }
        }

        impl<$($g)*> ::std::ops::$Op<$T> for f64 {
            type Output = $T;
            #[inline(always)]
            fn $op(self, rhs: $T) -> $T {
                ::std::ops::$Op::$op(<$T>::constant(self), rhs)
            }
        }

        impl<$($g)*> ::std::ops::$OpAssign for $T {
            #[inline(always)]
            fn $op_assign(&mut self, rhs: Self) {
                *self = ::std::ops::$Op::$op(*self, rhs);
            }
        }

        impl<$($g)*> ::std::ops::$OpAssign<f64> for $T {
            #[inline(always)]
            fn $op_assign(&mut self, rhs: f64) {
                *self = ::std::ops::$Op::$op(*self, rhs);
            }
        }
    };
}
pub(crate) use scalar_operators;
