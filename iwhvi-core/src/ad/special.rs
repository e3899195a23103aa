//! Special functions on `f64`, and the one chain-rule table that every
//! dual type applies.
//!
//! Every elementary function the [`Scalar`](crate::Scalar) trait offers has
//! a value function here (used by the `f64` implementation) and an entry in
//! the derivative table [`derivative`] (used by [`Dual`](crate::Dual)
//! through [`Dual::chain_rule`](crate::Dual::chain_rule)). Keeping the value
//! code in one place means a dual's value part is bit-identical to the
//! `f64` evaluation of the same expression.
//!
//! Accuracy: checked against 50-digit mpmath values
//! (`shared/reference/special.json`) to 1e-12 relative; see
//! `tests/special_reference.rs`.

use std::f64::consts::{FRAC_2_SQRT_PI, PI, SQRT_2};

/// `ln(√(2π))`, the normalising constant of the standard normal density.
pub const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// Logistic sigmoid `σ(x) = 1 / (1 + e^{-x})`, stable for all `x`.
///
/// ```
/// use iwhvi_core::special::sigmoid;
/// assert_eq!(sigmoid(0.0), 0.5);
/// assert_eq!(sigmoid(-800.0), 0.0);
/// ```
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Softplus `ln(1 + e^x)`, computed as `max(x, 0) + ln(1 + e^{-|x|})` so
/// that it neither overflows for large `x` nor loses digits for small `x`.
///
/// ```
/// use iwhvi_core::special::softplus;
/// assert_eq!(softplus(800.0), 800.0);
/// assert!((softplus(0.0) - 2f64.ln()).abs() < 1e-16);
/// ```
#[inline]
pub fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Log-sigmoid `ln σ(x) = -softplus(-x)`, stable for all `x`.
///
/// ```
/// use iwhvi_core::special::log_sigmoid;
/// assert_eq!(log_sigmoid(-800.0), -800.0);
/// ```
#[inline]
pub fn log_sigmoid(x: f64) -> f64 {
    -softplus(-x)
}

/// `ln k! = ln Γ(k + 1)`: the normaliser of counts (Poisson, binomial,
/// negative binomial).
///
/// ```
/// use iwhvi_core::special::ln_factorial;
/// assert!((ln_factorial(5) - 120f64.ln()).abs() < 1e-14);
/// assert!(ln_factorial(0).abs() < 1e-15);
/// ```
#[inline]
pub fn ln_factorial(k: u64) -> f64 {
    ln_gamma(k as f64 + 1.0)
}

/// Natural log of the gamma function, `ln Γ(x)` (of `|Γ(x)|` for negative
/// non-integer `x`); `+∞` at the poles `0, -1, -2, …`.
///
/// ```
/// use iwhvi_core::special::ln_gamma;
/// assert!((ln_gamma(10.0) - 362880f64.ln()).abs() < 1e-13);
/// ```
#[inline]
pub fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// Digamma `ψ(x) = d/dx ln Γ(x)`.
///
/// Recurrence `ψ(x) = ψ(x + 1) - 1/x` up to `x ≥ 10`, then the asymptotic
/// series `ln x - 1/(2x) - Σ B_{2n} / (2n x^{2n})`; reflection
/// `ψ(1 - x) - ψ(x) = π cot(πx)` for negative `x`. NaN at the poles.
///
/// ```
/// use iwhvi_core::special::digamma;
/// let euler_gamma = 0.577_215_664_901_532_9;
/// assert!((digamma(1.0) + euler_gamma).abs() < 1e-15);
/// ```
pub fn digamma(x: f64) -> f64 {
    if x.is_nan() || x == f64::NEG_INFINITY {
        return f64::NAN;
    }
    if x <= 0.0 {
        if x == x.floor() {
            return f64::NAN;
        }
        return digamma(1.0 - x) - PI / (PI * x).tan();
    }
    let mut x = x;
    let mut shift = 0.0;
    while x < 10.0 {
        shift += 1.0 / x;
        x += 1.0;
    }
    let inv2 = 1.0 / (x * x);
    // Bernoulli terms B_{2n} / (2n): 1/12, -1/120, 1/252, -1/240, 1/132, -691/32760, 1/12.
    let series = inv2
        * (1.0 / 12.0
            - inv2
                * (1.0 / 120.0
                    - inv2
                        * (1.0 / 252.0
                            - inv2
                                * (1.0 / 240.0
                                    - inv2
                                        * (1.0 / 132.0
                                            - inv2 * (691.0 / 32760.0 - inv2 / 12.0))))));
    x.ln() - 0.5 / x - series - shift
}

/// Trigamma `ψ₁(x) = d²/dx² ln Γ(x)`, the derivative of [`digamma`].
///
/// Recurrence `ψ₁(x) = ψ₁(x + 1) + 1/x²` up to `x ≥ 10`, then the
/// asymptotic series `1/x + 1/(2x²) + Σ B_{2n} / x^{2n+1}`; reflection
/// `ψ₁(1 - x) + ψ₁(x) = π² / sin²(πx)` for negative `x`.
///
/// ```
/// use iwhvi_core::special::trigamma;
/// let pi2_6 = std::f64::consts::PI.powi(2) / 6.0;
/// assert!((trigamma(1.0) - pi2_6).abs() < 1e-15);
/// ```
pub fn trigamma(x: f64) -> f64 {
    if x.is_nan() || x == f64::NEG_INFINITY {
        return f64::NAN;
    }
    if x <= 0.0 {
        if x == x.floor() {
            return f64::NAN;
        }
        let s = (PI * x).sin();
        return -trigamma(1.0 - x) + PI * PI / (s * s);
    }
    let mut x = x;
    let mut shift = 0.0;
    while x < 10.0 {
        shift += 1.0 / (x * x);
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    // B_{2n}: 1/6, -1/30, 1/42, -1/30, 5/66, -691/2730, 7/6.
    let series = inv2
        * inv
        * (1.0 / 6.0
            - inv2
                * (1.0 / 30.0
                    - inv2
                        * (1.0 / 42.0
                            - inv2
                                * (1.0 / 30.0
                                    - inv2
                                        * (5.0 / 66.0
                                            - inv2 * (691.0 / 2730.0 - inv2 * 7.0 / 6.0))))));
    inv + 0.5 * inv2 + series + shift
}

/// Error function `erf(x) = 2/√π ∫₀ˣ e^{-t²} dt`.
///
/// ```
/// use iwhvi_core::special::erf;
/// assert_eq!(erf(0.0), 0.0);
/// ```
#[inline]
pub fn erf(x: f64) -> f64 {
    libm::erf(x)
}

/// Complementary error function `erfc(x) = 1 - erf(x)`, accurate in the
/// upper tail where `1 - erf(x)` would cancel.
///
/// ```
/// use iwhvi_core::special::erfc;
/// assert!(erfc(10.0) > 0.0 && erfc(10.0) < 1e-40);
/// ```
#[inline]
pub fn erfc(x: f64) -> f64 {
    libm::erfc(x)
}

/// Below this point [`std_normal_log_cdf`] switches to its asymptotic series.
const LOG_CDF_TAIL: f64 = -20.0;

/// The asymptotic series of the Mills ratio in the lower tail:
/// `Φ(x) ≈ φ(x)/(-x) · S(x)` with `S = 1 - 1/x² + 3/x⁴ - 15/x⁶ + …`,
/// summed until the terms stop shrinking (for `x ≤ -20`, to round-off).
fn mills_series(x: f64) -> f64 {
    let inv2 = 1.0 / (x * x);
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 1..40 {
        let next = -term * (2 * n - 1) as f64 * inv2;
        if next.abs() >= term.abs() {
            break;
        }
        term = next;
        sum += term;
        if term.abs() < 1e-17 * sum.abs() {
            break;
        }
    }
    sum
}

/// Log of the standard normal CDF, `ln Φ(x)`, with `Φ(x) = ½ erfc(-x/√2)`.
///
/// Stable far into the lower tail: for `x ≤ -20` it uses the asymptotic
/// expansion `ln Φ(x) = -x²/2 - ln(-x) - ln√(2π) + ln S(x)`,
/// `S = 1 - 1/x² + 3/x⁴ - …`; for `x > -1` it uses `ln(1 - ½ erfc(x/√2))`.
///
/// ```
/// use iwhvi_core::special::std_normal_log_cdf;
/// assert!((std_normal_log_cdf(0.0) - 0.5f64.ln()).abs() < 1e-16);
/// assert!(std_normal_log_cdf(-40.0).is_finite());
/// ```
pub fn std_normal_log_cdf(x: f64) -> f64 {
    if x <= LOG_CDF_TAIL {
        if x == f64::NEG_INFINITY {
            return f64::NEG_INFINITY;
        }
        -0.5 * x * x - (-x).ln() - LN_SQRT_2PI + mills_series(x).ln()
    } else if x > -1.0 {
        (-0.5 * erfc(x / SQRT_2)).ln_1p()
    } else {
        (0.5 * erfc(-x / SQRT_2)).ln()
    }
}

/// `d/dx ln Φ(x) = φ(x) / Φ(x)` (the inverse Mills ratio), stable in both
/// tails.
fn std_normal_log_cdf_derivative(x: f64, log_cdf: f64) -> f64 {
    if x <= LOG_CDF_TAIL {
        if x == f64::NEG_INFINITY {
            return f64::INFINITY;
        }
        -x / mills_series(x)
    } else {
        (-0.5 * x * x - LN_SQRT_2PI - log_cdf).exp()
    }
}

/// Stable `ln Σ exp(xᵢ)`: `m + ln Σ exp(xᵢ - m)` with `m = max xᵢ`.
///
/// `-∞` for an empty slice or when every term is `-∞`; `+∞` when a term is
/// `+∞`; NaN propagates.
///
/// ```
/// use iwhvi_core::special::log_sum_exp;
/// let v = log_sum_exp(&[1000.0, 1000.0]);
/// assert!((v - (1000.0 + 2f64.ln())).abs() < 1e-12);
/// assert_eq!(log_sum_exp(&[]), f64::NEG_INFINITY);
/// ```
pub fn log_sum_exp(terms: &[f64]) -> f64 {
    crate::ad::rules::log_sum_exp(terms)
}

/// The largest of the terms (NaN ignored), `-∞` for none.
#[inline]
pub(crate) fn max_term(terms: impl Iterator<Item = f64>) -> f64 {
    terms.fold(f64::NEG_INFINITY, |m, t| if t > m { t } else { m })
}

/// An elementary function of one argument: the entries of the chain-rule
/// table [`derivative`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Elementary {
    /// `e^x`
    Exp,
    /// `ln x`
    Ln,
    /// `ln(1 + x)`
    Ln1p,
    /// `e^x - 1`
    ExpM1,
    /// `√x`
    Sqrt,
    /// `sin x`
    Sin,
    /// `cos x`
    Cos,
    /// `tan x`
    Tan,
    /// `tanh x`
    Tanh,
    /// `atan x`
    Atan,
    /// `sinh x`
    Sinh,
    /// `cosh x`
    Cosh,
    /// `|x|`
    Abs,
    /// `1 / x`
    Recip,
    /// [`sigmoid`]
    Sigmoid,
    /// [`softplus`]
    Softplus,
    /// [`log_sigmoid`]
    LogSigmoid,
    /// [`ln_gamma`]
    LnGamma,
    /// [`digamma`]
    Digamma,
    /// [`trigamma`]
    Trigamma,
    /// [`erf`]
    Erf,
    /// [`erfc`]
    Erfc,
    /// [`std_normal_log_cdf`]
    StdNormalLogCdf,
}

impl Elementary {
    /// The function's value at `x`: the code the `f64` scalar runs.
    ///
    /// ```
    /// use iwhvi_core::special::Elementary;
    /// assert_eq!(Elementary::Exp.value(0.0), 1.0);
    /// ```
    #[inline(always)]
    pub fn value(self, x: f64) -> f64 {
        match self {
            Self::Exp => x.exp(),
            Self::Ln => x.ln(),
            Self::Ln1p => x.ln_1p(),
            Self::ExpM1 => x.exp_m1(),
            Self::Sqrt => x.sqrt(),
            Self::Sin => x.sin(),
            Self::Cos => x.cos(),
            Self::Tan => x.tan(),
            Self::Tanh => x.tanh(),
            Self::Atan => x.atan(),
            Self::Sinh => x.sinh(),
            Self::Cosh => x.cosh(),
            Self::Abs => x.abs(),
            Self::Recip => 1.0 / x,
            Self::Sigmoid => sigmoid(x),
            Self::Softplus => softplus(x),
            Self::LogSigmoid => log_sigmoid(x),
            Self::LnGamma => ln_gamma(x),
            Self::Digamma => digamma(x),
            Self::Trigamma => trigamma(x),
            Self::Erf => erf(x),
            Self::Erfc => erfc(x),
            Self::StdNormalLogCdf => std_normal_log_cdf(x),
        }
    }
}

/// The chain-rule table: value `f(x)` and first derivative `f'(x)` of an
/// elementary function at `x`. Every dual type differentiates through this
/// one function, so each derivative formula is written once.
///
/// ```
/// use iwhvi_core::special::{derivative, Elementary};
/// let (v, d) = derivative(Elementary::Ln, 2.0);
/// assert_eq!((v, d), (2f64.ln(), 0.5));
/// ```
#[inline(always)]
pub fn derivative(f: Elementary, x: f64) -> (f64, f64) {
    let v = f.value(x);
    (v, derivative_at(f, x, v))
}

/// The table's derivative `f'(x)`, given the value `v = f(x)` (several
/// entries are written in terms of it).
#[inline(always)]
pub(crate) fn derivative_at(f: Elementary, x: f64, v: f64) -> f64 {
    match f {
        Elementary::Exp => v,
        Elementary::Ln => 1.0 / x,
        Elementary::Ln1p => 1.0 / (1.0 + x),
        Elementary::ExpM1 => x.exp(),
        Elementary::Sqrt => 0.5 / v,
        Elementary::Sin => x.cos(),
        Elementary::Cos => -x.sin(),
        Elementary::Tan => 1.0 + v * v,
        Elementary::Tanh => {
            // sech²(x) rather than 1 - tanh²(x), which cancels to 0 for |x| > 19.
            let c = x.cosh();
            1.0 / (c * c)
        }
        Elementary::Atan => 1.0 / (1.0 + x * x),
        Elementary::Sinh => x.cosh(),
        Elementary::Cosh => x.sinh(),
        Elementary::Abs => {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
        Elementary::Recip => -v * v,
        Elementary::Sigmoid => v * sigmoid(-x),
        Elementary::Softplus => sigmoid(x),
        Elementary::LogSigmoid => sigmoid(-x),
        Elementary::LnGamma => digamma(x),
        Elementary::Digamma => trigamma(x),
        Elementary::Trigamma => tetragamma(x),
        Elementary::Erf => FRAC_2_SQRT_PI * (-x * x).exp(),
        Elementary::Erfc => -FRAC_2_SQRT_PI * (-x * x).exp(),
        Elementary::StdNormalLogCdf => std_normal_log_cdf_derivative(x, v),
    }
}

/// Tetragamma `ψ₂(x)`, the derivative of [`trigamma`] (first-order
/// derivatives of trigamma need it).
fn tetragamma(x: f64) -> f64 {
    if x <= 0.0 {
        if x == x.floor() {
            return f64::NAN;
        }
        // Differentiating ψ₁(1 - x) + ψ₁(x) = π² / sin²(πx):
        // ψ₂(x) = ψ₂(1 - x) - 2π³ cos(πx) / sin³(πx).
        let s = (PI * x).sin();
        return tetragamma(1.0 - x) - 2.0 * PI.powi(3) * (PI * x).cos() / (s * s * s);
    }
    let mut x = x;
    let mut shift = 0.0;
    while x < 10.0 {
        shift -= 2.0 / (x * x * x);
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    // ψ₂(x) ~ -1/x² - 1/x³ - Σ (2n+1) B_{2n} / x^{2n+2}
    let series = inv2
        * inv2
        * (0.5 - inv2 * (1.0 / 6.0 - inv2 * (1.0 / 6.0 - inv2 * (3.0 / 10.0 - inv2 * 5.0 / 6.0))));
    -inv2 - inv2 * inv - series + shift
}

#[cfg(test)]
mod tests {
    use super::*;

    fn central_difference(f: impl Fn(f64) -> f64, x: f64) -> f64 {
        let h = 1e-5 * x.abs().max(1.0);
        (f(x - 2.0 * h) - 8.0 * f(x - h) + 8.0 * f(x + h) - f(x + 2.0 * h)) / (12.0 * h)
    }

    #[test]
    fn tetragamma_is_the_derivative_of_trigamma() {
        for &x in &[-2.5, -0.3, 0.2, 0.9, 1.0, 3.3, 9.9, 10.5, 40.0] {
            let fd = central_difference(trigamma, x);
            let an = tetragamma(x);
            assert!(
                (fd - an).abs() <= 1e-6 * an.abs().max(1.0),
                "x = {x}: {fd} vs {an}"
            );
        }
    }

    #[test]
    fn reflection_branches_match_their_derivatives() {
        for &x in &[-3.7, -1.5, -0.4] {
            let fd = central_difference(digamma, x);
            assert!(
                (fd - trigamma(x)).abs() <= 1e-6 * fd.abs().max(1.0),
                "x = {x}"
            );
            let fd = central_difference(ln_gamma, x);
            assert!(
                (fd - digamma(x)).abs() <= 1e-6 * fd.abs().max(1.0),
                "x = {x}"
            );
        }
    }

    #[test]
    fn log_cdf_branches_join_continuously() {
        for &b in &[LOG_CDF_TAIL, -1.0] {
            let left = std_normal_log_cdf(b - 1e-9);
            let right = std_normal_log_cdf(b + 1e-9);
            assert!(
                (left - right).abs() <= 1e-8 * left.abs().max(1.0),
                "at {b}: {left} vs {right}"
            );
        }
    }

    #[test]
    fn log_sum_exp_edge_cases() {
        assert_eq!(
            log_sum_exp(&[f64::NEG_INFINITY, f64::NEG_INFINITY]),
            f64::NEG_INFINITY
        );
        assert_eq!(log_sum_exp(&[f64::INFINITY, 0.0]), f64::INFINITY);
        assert!(log_sum_exp(&[f64::NAN, 0.0]).is_nan());
        assert!(log_sum_exp(&[f64::NAN, f64::NEG_INFINITY]).is_nan());
    }
}
