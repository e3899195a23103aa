//! The gamma distribution.

use rand::Rng;

use super::supports::Positive;
use super::{Distribution, DistributionError, Support, check};
use crate::scalar::Scalar;

/// Gamma distribution with shape `α > 0` and rate `β > 0` (mean `α / β`):
///
/// `log p(x) = α ln β - ln Γ(α) + (α - 1) ln x - β x` for `x > 0`.
///
/// ```
/// use iwhvi_core::distributions::{Distribution, Exponential, Gamma};
/// // Shape 1 is the exponential distribution.
/// let g = Gamma::new(1.0, 3.0).unwrap();
/// let e = Exponential::new(3.0).unwrap();
/// assert!((g.log_prob(0.7) - e.log_prob(0.7)).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gamma<T: Scalar = f64> {
    shape: T,
    rate: T,
}

impl<T: Scalar> Gamma<T> {
    /// The gamma distribution of shape `shape` and rate `rate`.
    ///
    /// # Errors
    /// If `shape` or `rate` is not positive and finite.
    pub fn new(shape: T, rate: T) -> Result<Self, DistributionError> {
        Ok(Self {
            shape: check::positive("Gamma", "shape", shape)?,
            rate: check::positive("Gamma", "rate", rate)?,
        })
    }

    /// The shape `α`.
    pub fn shape(&self) -> T {
        self.shape
    }

    /// The rate `β`.
    pub fn rate(&self) -> T {
        self.rate
    }
}

impl<T: Scalar> Distribution<T> for Gamma<T> {
    type Value = T;
    type Support = Positive;

    fn log_prob(&self, x: T) -> T {
        let normaliser = self.shape * self.rate.ln() - self.shape.ln_gamma();
        match x.value() {
            v if v > 0.0 && v < f64::INFINITY => {
                normaliser + (self.shape - 1.0) * x.ln() - self.rate * x
            }
            // The density at 0: finite only for shape 1.
            0.0 => boundary(self.shape, normaliser),
            _ => T::constant(f64::NEG_INFINITY),
        }
    }

    fn support(&self) -> Support {
        Support::Positive
    }
}

/// `lim_{x→0⁺} log p(x)` for a density whose only singular term is
/// `(shape - 1) ln x`: `+∞` below shape 1, `-∞` above, the rest at 1.
pub(crate) fn boundary<T: Scalar>(shape: T, rest: T) -> T {
    match shape.value() {
        s if s < 1.0 => T::constant(f64::INFINITY),
        s if s > 1.0 => T::constant(f64::NEG_INFINITY),
        _ => rest,
    }
}

impl rand::distr::Distribution<f64> for Gamma<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        rand_distr::Gamma::new(self.shape, 1.0 / self.rate)
            .expect("parameters were validated")
            .sample(rng)
    }
}
