//! The Bernoulli distribution, by probability and by logit.

use rand::{Rng, RngExt};

use super::supports::Binary;
use super::{Distribution, DistributionError, Support, check};
use crate::scalar::Scalar;

/// Bernoulli distribution over `{0, 1}` with success probability `prob`:
///
/// `log p(1) = ln prob`, `log p(0) = ln(1 - prob)`.
///
/// ```
/// use iwhvi_core::distributions::{Bernoulli, Distribution};
/// let d = Bernoulli::new(0.25).unwrap();
/// assert_eq!(d.log_prob(1), 0.25f64.ln());
/// assert_eq!(d.log_prob(2), f64::NEG_INFINITY);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bernoulli<T: Scalar = f64> {
    prob: T,
}

impl<T: Scalar> Bernoulli<T> {
    /// The Bernoulli distribution with success probability `prob`.
    ///
    /// # Errors
    /// If `prob` is not in `[0, 1]`.
    pub fn new(prob: T) -> Result<Self, DistributionError> {
        Ok(Self {
            prob: check::probability("Bernoulli", "prob", prob)?,
        })
    }

    /// The success probability.
    pub fn prob(&self) -> T {
        self.prob
    }
}

impl<T: Scalar> Distribution<T> for Bernoulli<T> {
    type Value = u64;
    type Support = Binary;

    fn log_prob(&self, x: u64) -> T {
        match x {
            1 => self.prob.ln(),
            0 => (-self.prob).ln_1p(),
            _ => T::constant(f64::NEG_INFINITY),
        }
    }

    fn support(&self) -> Support {
        Support::Binary
    }
}

impl rand::distr::Distribution<u64> for Bernoulli<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        u64::from(rng.random::<f64>() < self.prob)
    }
}

/// Bernoulli distribution parameterized by the log-odds `logit`
/// (`prob = σ(logit)`), stable for any logit:
///
/// `log p(1) = ln σ(logit)`, `log p(0) = ln σ(-logit)`.
///
/// ```
/// use iwhvi_core::distributions::{BernoulliLogit, Distribution};
/// let d = BernoulliLogit::new(-800.0).unwrap();
/// assert_eq!(d.log_prob(1), -800.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BernoulliLogit<T: Scalar = f64> {
    logit: T,
}

impl<T: Scalar> BernoulliLogit<T> {
    /// The Bernoulli distribution with log-odds `logit`.
    ///
    /// # Errors
    /// If `logit` is NaN (infinite logits are certain outcomes).
    pub fn new(logit: T) -> Result<Self, DistributionError> {
        if logit.value().is_nan() {
            return Err(DistributionError::InvalidParameter {
                distribution: "BernoulliLogit",
                parameter: "logit",
                value: logit.value(),
                requirement: "a number",
            });
        }
        Ok(Self { logit })
    }

    /// The log-odds.
    pub fn logit(&self) -> T {
        self.logit
    }
}

impl<T: Scalar> Distribution<T> for BernoulliLogit<T> {
    type Value = u64;
    type Support = Binary;

    fn log_prob(&self, x: u64) -> T {
        match x {
            1 => self.logit.log_sigmoid(),
            0 => (-self.logit).log_sigmoid(),
            _ => T::constant(f64::NEG_INFINITY),
        }
    }

    fn support(&self) -> Support {
        Support::Binary
    }
}

impl rand::distr::Distribution<u64> for BernoulliLogit<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        u64::from(rng.random::<f64>() < crate::special::sigmoid(self.logit))
    }
}
