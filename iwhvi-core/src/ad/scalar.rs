//! The one scalar trait all numeric code is generic over.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::special::Elementary;
use crate::vector::VectorFunction;

/// A real number that numeric code computes with: `f64` for plain values,
/// [`Dual<W>`](crate::Dual) for values with `W` directional derivatives.
///
/// Distributions, transforms, objectives and the code `#[variational]`
/// generates are written once, generic over `T: Scalar`; the
/// [gradient engine](mod@crate::gradient) runs them on duals. Mixed arithmetic
/// with `f64` on the right (`x * 2.0`, `x + 1.0`) is part of the trait; with
/// `f64` on the left it works for each concrete type, but generic code must
/// write the scalar first (Rust does not imply `f64: Mul<T>` from a trait).
///
/// Comparisons (`<`, `==`) look at the value only.
///
/// The trait asks nothing a tape-based reverse-mode variable (a `Copy`
/// index into a thread-local tape) cannot give: [`crate::tape::Var`]
/// runs the same generic code as a second gradient engine.
///
/// ```
/// use iwhvi_core::{Dual, Scalar};
///
/// // log N(x; mu, sigma), written once for every scalar.
/// fn normal_log_density<T: Scalar>(x: f64, mu: T, sigma: T) -> T {
///     let z = (-mu + x) / sigma;
///     -(z * z) * 0.5 - sigma.ln() - iwhvi_core::special::LN_SQRT_2PI
/// }
///
/// let plain = normal_log_density(1.0, 0.0, 2.0);
/// // d/dmu at mu = 0, sigma = 2 is (x - mu) / sigma² = 0.25.
/// let dual = normal_log_density(1.0, Dual::<2>::variable(0.0, 0), Dual::variable(2.0, 1));
/// assert_eq!(dual.value, plain);
/// assert!((dual.tangent()[0] - 0.25).abs() < 1e-15);
/// ```
pub trait Scalar:
    Copy
    + Send
    + Sync
    + 'static
    + Debug
    + Display
    + Default
    + PartialEq
    + PartialOrd
    + PartialEq<f64>
    + PartialOrd<f64>
    + From<f64>
    + Neg<Output = Self>
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Add<f64, Output = Self>
    + Sub<f64, Output = Self>
    + Mul<f64, Output = Self>
    + Div<f64, Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + AddAssign<f64>
    + SubAssign<f64>
    + MulAssign<f64>
    + DivAssign<f64>
    + Sum
    + num_traits::Zero
    + num_traits::One
{
    /// A constant: value `v`, every derivative zero.
    fn constant(v: f64) -> Self;

    /// The value, without derivatives.
    fn value(self) -> f64;

    /// Apply an elementary function of the [chain-rule
    /// table](crate::special::derivative).
    fn elementary(self, f: Elementary) -> Self;

    /// `xⁿ` for an integer `n`; `d/dx = n xⁿ⁻¹`.
    fn powi(self, n: i32) -> Self;

    /// `xʸ` with a scalar exponent; `∂/∂x = y xʸ⁻¹`, `∂/∂y = xʸ ln x`.
    fn powf(self, y: Self) -> Self;

    /// Stable `ln Σᵢ exp(xᵢ)`, with gradient the softmax weights
    /// `exp(xᵢ - lse)`; `-∞` for an empty slice.
    fn log_sum_exp(terms: &[Self]) -> Self;

    /// True when the value and every derivative it carries are finite
    /// (for the reverse tape's `Var`, whose derivatives are not known
    /// until the backward sweep, the value only).
    fn is_finite(self) -> bool;

    /// `Σᵢ aᵢ bᵢ` over the shorter of the two slices: the inner loop of
    /// matrix-vector products, fused so that dual and tape scalars record
    /// one result instead of one per multiply-add.
    #[inline]
    fn dot(a: &[Self], b: &[Self]) -> Self {
        a.iter()
            .zip(b)
            .fold(Self::constant(0.0), |acc, (&x, &y)| acc + x * y)
    }

    /// `Σᵢ ((xᵢ − meanᵢ) · inverse_scaleᵢ)²`: the quadratic form of a
    /// diagonal Gaussian, fused like [`Scalar::dot`].
    #[inline]
    fn scaled_squared_distance(x: &[Self], mean: &[Self], inverse_scale: &[Self]) -> Self {
        x.iter()
            .zip(mean)
            .zip(inverse_scale)
            .fold(Self::constant(0.0), |acc, ((&xi, &mi), &si)| {
                acc + ((xi - mi) * si).square()
            })
    }

    /// A value computed outside the scalar type (a kernel over plain `f64`
    /// arrays), with its partial derivatives `partials[i] = ∂value/∂operands[i]`:
    ///
    /// `y = value`, `ẏ = Σᵢ partials[i] · operands[i]̇`.
    ///
    /// One tape node for [`Var`](crate::tape::Var) (an edge for each operand
    /// that is not a constant), one chain-rule pass for
    /// [`Dual<W>`](crate::Dual) (constant operands skipped, summed in operand
    /// order), the value alone for `f64`. An operand may occur more than
    /// once: its partials add up. This is Stan Math's "operands and
    /// partials": a whole vectorised density becomes one node.
    ///
    /// The default, for scalar types outside this crate, is correct but
    /// slow: `value + Σᵢ (operandᵢ − value(operandᵢ)) · partialᵢ`.
    ///
    /// # Panics
    /// If `operands` and `partials` differ in length.
    ///
    /// ```
    /// use iwhvi_core::{Dual, Scalar};
    ///
    /// // x·y at (2, 3), computed in f64: ∂/∂x = y, ∂/∂y = x.
    /// let (x, y) = (Dual::<2>::variable(2.0, 0), Dual::<2>::variable(3.0, 1));
    /// let product = Dual::with_partials(6.0, &[x, y], &[3.0, 2.0]);
    /// assert_eq!(product.value, 6.0);
    /// assert_eq!(product.tangent(), [3.0, 2.0]);
    /// assert_eq!(f64::with_partials(6.0, &[2.0, 3.0], &[3.0, 2.0]), 6.0);
    /// ```
    #[inline]
    fn with_partials(value: f64, operands: &[Self], partials: &[f64]) -> Self {
        assert_eq!(
            operands.len(),
            partials.len(),
            "with_partials: one partial per operand"
        );
        let mut result = Self::constant(value);
        for (&operand, &partial) in operands.iter().zip(partials) {
            result += (operand - operand.value()) * partial;
        }
        result
    }

    /// [`Scalar::with_partials`] with the partials over a common divisor:
    /// `∂value/∂operands[i] = scaled[i] / divisor`,
    ///
    /// `y = value`, `ẏ = (Σᵢ scaled[i] · operands[i]̇) / divisor`.
    ///
    /// The quotient rule's form (`∂(a/b) = (∂a − (a/b) ∂b) / b`): forward
    /// duals divide the summed tangent once, by one reciprocal, and the
    /// tape stores `scaled[i] / divisor` on each edge, which are the bits
    /// the operators give `a / b`. Fused densities use it to keep those
    /// bits.
    ///
    /// The default, for scalar types outside this crate, is
    /// [`Scalar::with_partials`]'s: `value + Σᵢ (operandᵢ − value(operandᵢ)) · (scaledᵢ / divisor)`.
    /// An infinite `scaledᵢ / divisor` then makes the value NaN (`0 · ∞`)
    /// even for a constant operand; the crate's own scalars keep `value`
    /// as given.
    ///
    /// # Panics
    /// If `operands` and `scaled` differ in length.
    ///
    /// ```
    /// use iwhvi_core::{Dual, Scalar};
    ///
    /// // a / b at (3, 2), computed in f64: ∂/∂a = 1 / b, ∂/∂b = −(a/b) / b.
    /// let (a, b) = (Dual::<2>::variable(3.0, 0), Dual::<2>::variable(2.0, 1));
    /// let q = Dual::with_partials_over(1.5, &[a, b], &[1.0, -1.5], 2.0);
    /// assert_eq!(q.value, (a / b).value);
    /// assert_eq!(q.tangent(), (a / b).tangent());
    /// assert_eq!(q.tangent(), [0.5, -0.75]);
    /// ```
    #[inline]
    fn with_partials_over(value: f64, operands: &[Self], scaled: &[f64], divisor: f64) -> Self {
        assert_eq!(
            operands.len(),
            scaled.len(),
            "with_partials_over: one partial per operand"
        );
        let mut result = Self::constant(value);
        for (&operand, &partial) in operands.iter().zip(scaled) {
            result += (operand - operand.value()) * (partial / divisor);
        }
        result
    }

    /// `y = f(x₁, …, x_B)` for a [`VectorFunction`] `f` with `m` outputs,
    /// the blocks `x` of this scalar type: `out` is cleared and receives
    /// the `m` outputs, `ẏ = Σ_b (∂y/∂x_b) ẋ_b`.
    ///
    /// `f64` evaluates `f` alone (on the blocks as they stand); forward
    /// duals run `f`'s Jacobian–vector product once per direction; the
    /// reverse tape records the outputs as `m` nodes without edges and
    /// runs `f`'s vector–Jacobian product once, when its backward sweep
    /// reaches them (a block of consecutive tape nodes, such as a
    /// network's weights, is read once per recording and receives its
    /// adjoints in place). With every operand a constant, the outputs are
    /// constants.
    ///
    /// The default, for scalar types outside this crate, is correct but
    /// slow: the Jacobian by one vector–Jacobian product per output, each
    /// output a [`Scalar::with_partials`] over every operand.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, Dense};
    /// use iwhvi_core::{Dual, Scalar};
    ///
    /// // y = tanh(W x + b), W = [[1, 2]], b = [0], at x = (x₀, 0.5), x₀ = 1 varying.
    /// let w = [Dual::<1>::constant(1.0), Dual::constant(2.0)];
    /// let b = [Dual::constant(0.0)];
    /// let x = [Dual::variable(1.0, 0), Dual::constant(0.5)];
    /// let mut y = Vec::new();
    /// Dual::vector_op(Dense::new(2, 1, Some(Activation::Tanh)), &[&w, &b, &x], &mut y);
    /// // The layer's tanh is the batched networks' vectorised one, within
    /// // rounding of `std`'s.
    /// assert!((y[0].value - 2f64.tanh()).abs() < 1e-15);
    /// // dy/dx₀ = W₀₀ (1 − y²)
    /// assert!((y[0].tangent()[0] - (1.0 - 2f64.tanh().powi(2))).abs() < 1e-15);
    /// ```
    #[inline]
    fn vector_op<F: VectorFunction>(f: F, x: &[&[Self]], out: &mut Vec<Self>) {
        crate::ad::vector::through_partials(f, x, out);
    }

    /// `e^x`
    #[inline(always)]
    fn exp(self) -> Self {
        self.elementary(Elementary::Exp)
    }
    /// `ln x` (`-∞` at 0, NaN below)
    #[inline(always)]
    fn ln(self) -> Self {
        self.elementary(Elementary::Ln)
    }
    /// `ln(1 + x)`, accurate near 0
    #[inline(always)]
    fn ln_1p(self) -> Self {
        self.elementary(Elementary::Ln1p)
    }
    /// `e^x - 1`, accurate near 0
    #[inline(always)]
    fn exp_m1(self) -> Self {
        self.elementary(Elementary::ExpM1)
    }
    /// `√x`
    #[inline(always)]
    fn sqrt(self) -> Self {
        self.elementary(Elementary::Sqrt)
    }
    /// `sin x`
    #[inline(always)]
    fn sin(self) -> Self {
        self.elementary(Elementary::Sin)
    }
    /// `cos x`
    #[inline(always)]
    fn cos(self) -> Self {
        self.elementary(Elementary::Cos)
    }
    /// `tan x`
    #[inline(always)]
    fn tan(self) -> Self {
        self.elementary(Elementary::Tan)
    }
    /// `tanh x`
    #[inline(always)]
    fn tanh(self) -> Self {
        self.elementary(Elementary::Tanh)
    }
    /// `atan x`
    #[inline(always)]
    fn atan(self) -> Self {
        self.elementary(Elementary::Atan)
    }
    /// `sinh x`
    #[inline(always)]
    fn sinh(self) -> Self {
        self.elementary(Elementary::Sinh)
    }
    /// `cosh x`
    #[inline(always)]
    fn cosh(self) -> Self {
        self.elementary(Elementary::Cosh)
    }
    /// `|x|`; its derivative at 0 is taken as 0
    #[inline(always)]
    fn abs(self) -> Self {
        self.elementary(Elementary::Abs)
    }
    /// `1 / x`
    #[inline(always)]
    fn recip(self) -> Self {
        self.elementary(Elementary::Recip)
    }
    /// `x²`
    #[inline(always)]
    fn square(self) -> Self {
        self * self
    }
    /// Logistic sigmoid `1 / (1 + e^{-x})`
    #[inline(always)]
    fn sigmoid(self) -> Self {
        self.elementary(Elementary::Sigmoid)
    }
    /// Softplus `ln(1 + e^x)`
    #[inline(always)]
    fn softplus(self) -> Self {
        self.elementary(Elementary::Softplus)
    }
    /// `ln σ(x) = -softplus(-x)`
    #[inline(always)]
    fn log_sigmoid(self) -> Self {
        self.elementary(Elementary::LogSigmoid)
    }
    /// `ln Γ(x)`
    #[inline(always)]
    fn ln_gamma(self) -> Self {
        self.elementary(Elementary::LnGamma)
    }
    /// Digamma `ψ(x)`
    #[inline(always)]
    fn digamma(self) -> Self {
        self.elementary(Elementary::Digamma)
    }
    /// Trigamma `ψ₁(x)`
    #[inline(always)]
    fn trigamma(self) -> Self {
        self.elementary(Elementary::Trigamma)
    }
    /// Error function `erf x`
    #[inline(always)]
    fn erf(self) -> Self {
        self.elementary(Elementary::Erf)
    }
    /// Complementary error function `erfc x`
    #[inline(always)]
    fn erfc(self) -> Self {
        self.elementary(Elementary::Erfc)
    }
    /// `ln Φ(x)`, log of the standard normal CDF, stable in the lower tail
    #[inline(always)]
    fn std_normal_log_cdf(self) -> Self {
        self.elementary(Elementary::StdNormalLogCdf)
    }
}

impl Scalar for f64 {
    #[inline(always)]
    fn constant(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn value(self) -> f64 {
        self
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    /// `f` evaluated on the blocks as they stand.
    #[inline]
    fn vector_op<F: VectorFunction>(mut f: F, x: &[&[f64]], out: &mut Vec<f64>) {
        out.clear();
        out.resize(f.outputs(), 0.0);
        f.eval(x, out);
    }

    crate::ad::rules::rule_methods!();
}
