//! The continuous uniform distribution.

use rand::{Rng, RngExt};

use super::supports::Interval;
use super::{Distribution, DistributionError, Reparameterized, Support, check};
use crate::scalar::Scalar;

/// Continuous uniform distribution on `[low, high]`, `low < high`:
///
/// `log p(x) = -ln(high - low)` for `low ≤ x ≤ high`.
///
/// Reparameterized: `x = low + (high - low) u`, `u ~ U(0, 1)`.
///
/// ```
/// use iwhvi_core::distributions::{Distribution, Uniform};
/// let d = Uniform::new(-1.0, 3.0).unwrap();
/// assert_eq!(d.log_prob(0.0), -4f64.ln());
/// assert_eq!(d.log_prob(4.0), f64::NEG_INFINITY);
/// assert!(Uniform::new(1.0, 1.0).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Uniform<T: Scalar = f64> {
    low: T,
    high: T,
}

impl<T: Scalar> Uniform<T> {
    /// The uniform distribution on `[low, high]`.
    ///
    /// # Errors
    /// If a bound is not finite or `high ≤ low`.
    pub fn new(low: T, high: T) -> Result<Self, DistributionError> {
        let low = check::finite("Uniform", "low", low)?;
        let high = check::finite("Uniform", "high", high)?;
        if high.value() <= low.value() {
            return Err(DistributionError::InvalidParameter {
                distribution: "Uniform",
                parameter: "high",
                value: high.value(),
                requirement: "greater than `low`",
            });
        }
        Ok(Self { low, high })
    }

    /// The lower bound.
    pub fn low(&self) -> T {
        self.low
    }

    /// The upper bound.
    pub fn high(&self) -> T {
        self.high
    }
}

impl<T: Scalar> Distribution<T> for Uniform<T> {
    type Value = T;
    type Support = Interval;

    fn log_prob(&self, x: T) -> T {
        if x.value() >= self.low.value() && x.value() <= self.high.value() {
            -(self.high - self.low).ln()
        } else {
            T::constant(f64::NEG_INFINITY)
        }
    }

    fn support(&self) -> Support {
        Support::Interval {
            low: self.low.value(),
            high: self.high.value(),
        }
    }
}

impl<T: Scalar> Reparameterized<T> for Uniform<T> {
    fn sample_noise<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        rng.random::<f64>()
    }

    fn rsample(&self, noise: f64) -> T {
        self.low + (self.high - self.low) * noise
    }
}

impl rand::distr::Distribution<f64> for Uniform<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        self.rsample(self.sample_noise(rng))
    }
}
