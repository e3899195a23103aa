//! The binomial distribution, by probability and by logit.

use rand::Rng;

use super::supports::BoundedCount;
use super::{Distribution, DistributionError, Support, check, times};
use crate::scalar::Scalar;
use crate::special::ln_factorial;

/// `ln C(n, k)`.
pub(crate) fn ln_choose(n: u64, k: u64) -> f64 {
    ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k)
}

/// Binomial distribution: successes in `total_count` trials of probability
/// `prob`:
///
/// `log p(k) = ln C(n, k) + k ln prob + (n - k) ln(1 - prob)` for `0 ≤ k ≤ n`.
///
/// ```
/// use iwhvi_core::distributions::{Binomial, Distribution};
/// let d = Binomial::new(2, 0.5).unwrap();
/// assert!((d.log_prob(1) - 0.5f64.ln()).abs() < 1e-15);
/// assert_eq!(d.log_prob(3), f64::NEG_INFINITY);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Binomial<T: Scalar = f64> {
    total_count: u64,
    prob: T,
}

impl<T: Scalar> Binomial<T> {
    /// `total_count` trials of success probability `prob`.
    ///
    /// # Errors
    /// If `prob` is not in `[0, 1]`.
    pub fn new(total_count: u64, prob: T) -> Result<Self, DistributionError> {
        Ok(Self {
            total_count,
            prob: check::probability("Binomial", "prob", prob)?,
        })
    }

    /// The number of trials `n`.
    pub fn total_count(&self) -> u64 {
        self.total_count
    }

    /// The success probability.
    pub fn prob(&self) -> T {
        self.prob
    }
}

impl<T: Scalar> Distribution<T> for Binomial<T> {
    type Value = u64;
    type Support = BoundedCount;

    fn log_prob(&self, k: u64) -> T {
        let n = self.total_count;
        if k > n {
            return T::constant(f64::NEG_INFINITY);
        }
        times(k, || self.prob.ln()) + times(n - k, || (-self.prob).ln_1p()) + ln_choose(n, k)
    }

    fn support(&self) -> Support {
        Support::BoundedCount {
            max: self.total_count,
        }
    }
}

impl rand::distr::Distribution<u64> for Binomial<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        rand_distr::Binomial::new(self.total_count, self.prob)
            .expect("parameters were validated")
            .sample(rng)
    }
}

/// Binomial distribution with the success log-odds `logit`
/// (`prob = σ(logit)`), stable for any logit:
///
/// `log p(k) = ln C(n, k) + k ln σ(logit) + (n - k) ln σ(-logit)`.
///
/// ```
/// use iwhvi_core::distributions::{Binomial, BinomialLogit, Distribution};
/// let by_logit = BinomialLogit::new(10, 0.3).unwrap();
/// let by_prob = Binomial::new(10, iwhvi_core::special::sigmoid(0.3)).unwrap();
/// assert!((by_logit.log_prob(4) - by_prob.log_prob(4)).abs() < 1e-14);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BinomialLogit<T: Scalar = f64> {
    total_count: u64,
    logit: T,
}

impl<T: Scalar> BinomialLogit<T> {
    /// `total_count` trials with success log-odds `logit`.
    ///
    /// # Errors
    /// If `logit` is NaN.
    pub fn new(total_count: u64, logit: T) -> Result<Self, DistributionError> {
        if logit.value().is_nan() {
            return Err(DistributionError::InvalidParameter {
                distribution: "BinomialLogit",
                parameter: "logit",
                value: logit.value(),
                requirement: "a number",
            });
        }
        Ok(Self { total_count, logit })
    }

    /// The number of trials `n`.
    pub fn total_count(&self) -> u64 {
        self.total_count
    }

    /// The success log-odds.
    pub fn logit(&self) -> T {
        self.logit
    }
}

impl<T: Scalar> Distribution<T> for BinomialLogit<T> {
    type Value = u64;
    type Support = BoundedCount;

    fn log_prob(&self, k: u64) -> T {
        let n = self.total_count;
        if k > n {
            return T::constant(f64::NEG_INFINITY);
        }
        times(k, || self.logit.log_sigmoid())
            + times(n - k, || (-self.logit).log_sigmoid())
            + ln_choose(n, k)
    }

    fn support(&self) -> Support {
        Support::BoundedCount {
            max: self.total_count,
        }
    }
}

impl rand::distr::Distribution<u64> for BinomialLogit<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        rand_distr::Binomial::new(self.total_count, crate::special::sigmoid(self.logit))
            .expect("a sigmoid is a probability")
            .sample(rng)
    }
}
