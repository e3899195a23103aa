//! The exponential distribution.

use rand::{Rng, RngExt};
use rand_distr::Exp1;

use super::supports::Positive;
use super::{Distribution, DistributionError, Reparameterized, Support, check};
use crate::scalar::Scalar;

/// Exponential distribution with rate `rate > 0` (mean `1 / rate`):
///
/// `log p(x) = ln rate - rate · x` for `x ≥ 0`.
///
/// Reparameterized: `x = e / rate`, `e ~ Exponential(1)`.
///
/// ```
/// use iwhvi_core::distributions::{Distribution, Exponential};
/// let d = Exponential::new(2.0).unwrap();
/// assert!((d.log_prob(1.0) - (2f64.ln() - 2.0)).abs() < 1e-15);
/// assert_eq!(d.log_prob(-1.0), f64::NEG_INFINITY);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exponential<T: Scalar = f64> {
    rate: T,
}

impl<T: Scalar> Exponential<T> {
    /// The exponential distribution of rate `rate`.
    ///
    /// # Errors
    /// If `rate` is not positive and finite.
    pub fn new(rate: T) -> Result<Self, DistributionError> {
        Ok(Self {
            rate: check::positive("Exponential", "rate", rate)?,
        })
    }

    /// The rate.
    pub fn rate(&self) -> T {
        self.rate
    }
}

impl<T: Scalar> Distribution<T> for Exponential<T> {
    type Value = T;
    type Support = Positive;

    fn log_prob(&self, x: T) -> T {
        if !(x.value() >= 0.0) {
            return T::constant(f64::NEG_INFINITY);
        }
        self.rate.ln() - self.rate * x
    }

    fn support(&self) -> Support {
        Support::Positive
    }
}

impl<T: Scalar> Reparameterized<T> for Exponential<T> {
    fn sample_noise<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        rng.sample(Exp1)
    }

    fn rsample(&self, noise: f64) -> T {
        T::constant(noise) / self.rate
    }
}

impl rand::distr::Distribution<f64> for Exponential<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        self.rsample(self.sample_noise(rng))
    }
}
