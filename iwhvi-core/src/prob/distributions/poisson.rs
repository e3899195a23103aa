//! The Poisson distribution, by rate and by log-rate.

use rand::Rng;
use rand::distr::Distribution as _;

use super::supports::NonNegativeInteger;
use super::{Distribution, DistributionError, Support, check, times};
use crate::scalar::Scalar;
use crate::special::ln_factorial;

/// Poisson distribution with rate `rate > 0`:
///
/// `log p(k) = k ln rate - rate - ln k!`.
///
/// ```
/// use iwhvi_core::distributions::{Distribution, Poisson};
/// let d = Poisson::new(2.0).unwrap();
/// assert!((d.log_prob(0) + 2.0).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Poisson<T: Scalar = f64> {
    rate: T,
}

impl<T: Scalar> Poisson<T> {
    /// The Poisson distribution of rate `rate`.
    ///
    /// # Errors
    /// If `rate` is not positive and finite.
    pub fn new(rate: T) -> Result<Self, DistributionError> {
        Ok(Self {
            rate: check::positive("Poisson", "rate", rate)?,
        })
    }

    /// The rate (mean).
    pub fn rate(&self) -> T {
        self.rate
    }
}

impl<T: Scalar> Distribution<T> for Poisson<T> {
    type Value = u64;
    type Support = NonNegativeInteger;

    fn log_prob(&self, k: u64) -> T {
        times(k, || self.rate.ln()) - self.rate - ln_factorial(k)
    }

    fn support(&self) -> Support {
        Support::NonNegativeInteger
    }
}

impl rand::distr::Distribution<u64> for Poisson<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        sample_poisson(self.rate, rng)
    }
}

/// A Poisson draw of rate `rate > 0`.
pub(crate) fn sample_poisson<R: Rng + ?Sized>(rate: f64, rng: &mut R) -> u64 {
    let draw: f64 = rand_distr::Poisson::new(rate)
        .expect("rate is positive and finite")
        .sample(rng);
    draw as u64
}

/// Poisson distribution with log-rate `log_rate` (`rate = exp(log_rate)`),
/// stable for large log-rates:
///
/// `log p(k) = k · log_rate - exp(log_rate) - ln k!`.
///
/// ```
/// use iwhvi_core::distributions::{Distribution, Poisson, PoissonLog};
/// let a = PoissonLog::new(1.5).unwrap();
/// let b = Poisson::new(1.5f64.exp()).unwrap();
/// assert!((a.log_prob(3) - b.log_prob(3)).abs() < 1e-14);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoissonLog<T: Scalar = f64> {
    log_rate: T,
}

impl<T: Scalar> PoissonLog<T> {
    /// The Poisson distribution of rate `exp(log_rate)`.
    ///
    /// # Errors
    /// If `log_rate` is not finite.
    pub fn new(log_rate: T) -> Result<Self, DistributionError> {
        Ok(Self {
            log_rate: check::finite("PoissonLog", "log_rate", log_rate)?,
        })
    }

    /// The log of the rate.
    pub fn log_rate(&self) -> T {
        self.log_rate
    }
}

impl<T: Scalar> Distribution<T> for PoissonLog<T> {
    type Value = u64;
    type Support = NonNegativeInteger;

    fn log_prob(&self, k: u64) -> T {
        self.log_rate * k as f64 - self.log_rate.exp() - ln_factorial(k)
    }

    fn support(&self) -> Support {
        Support::NonNegativeInteger
    }
}

impl rand::distr::Distribution<u64> for PoissonLog<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        sample_poisson(self.log_rate.exp(), rng)
    }
}
