//! The categorical distribution, by probabilities and by logits.

use rand::{Rng, RngExt};

use super::supports::CategoryIndex;
use super::{Distribution, DistributionError, Support, check};
use crate::scalar::Scalar;

/// Categorical distribution over `{0, …, K - 1}` with probabilities
/// `probs` (non-negative, summing to 1 within `1e-8`):
///
/// `log p(k) = ln probs[k]`.
///
/// ```
/// use iwhvi_core::distributions::{Categorical, Distribution};
/// let d = Categorical::new(vec![0.2, 0.3, 0.5]).unwrap();
/// assert_eq!(d.log_prob(2), 0.5f64.ln());
/// assert_eq!(d.log_prob(3), f64::NEG_INFINITY);
/// assert!(Categorical::new(vec![0.2, 0.3]).is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Categorical<T: Scalar = f64> {
    probs: Vec<T>,
}

impl<T: Scalar> Categorical<T> {
    /// The categorical distribution with probabilities `probs`.
    ///
    /// # Errors
    /// If there are no categories, an entry is not in `[0, 1]`, or they do
    /// not sum to 1 (within `1e-8`).
    pub fn new(probs: Vec<T>) -> Result<Self, DistributionError> {
        if probs.is_empty() {
            return Err(DistributionError::DimensionMismatch {
                distribution: "Categorical",
                parameter: "probs",
                expected: 1,
                found: 0,
            });
        }
        for &p in &probs {
            check::probability("Categorical", "probs", p)?;
        }
        let total: f64 = probs.iter().map(|p| p.value()).sum();
        if (total - 1.0).abs() > 1e-8 {
            return Err(DistributionError::InvalidParameter {
                distribution: "Categorical",
                parameter: "probs",
                value: total,
                requirement: "a vector summing to 1 (the value shown is its sum)",
            });
        }
        Ok(Self { probs })
    }

    /// The probabilities.
    pub fn probs(&self) -> &[T] {
        &self.probs
    }
}

impl<T: Scalar> Distribution<T> for Categorical<T> {
    type Value = usize;
    type Support = CategoryIndex;

    fn log_prob(&self, k: usize) -> T {
        self.probs
            .get(k)
            .map_or(T::constant(f64::NEG_INFINITY), |p| p.ln())
    }

    fn support(&self) -> Support {
        Support::CategoryIndex {
            categories: self.probs.len(),
        }
    }
}

/// Inverse-CDF draw of an index with the given (normalised) weights.
fn sample_index<R: Rng + ?Sized>(weights: impl Iterator<Item = f64>, rng: &mut R) -> usize {
    let u: f64 = rng.random();
    let mut cumulative = 0.0;
    let mut last = 0;
    for (k, w) in weights.enumerate() {
        cumulative += w;
        last = k;
        if u < cumulative {
            return k;
        }
    }
    last
}

impl rand::distr::Distribution<usize> for Categorical<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        sample_index(self.probs.iter().copied(), rng)
    }
}

/// Categorical distribution parameterized by unnormalised log-probabilities
/// `logits`:
///
/// `log p(k) = logits[k] - ln Σⱼ exp(logits[j])`.
///
/// ```
/// use iwhvi_core::distributions::{CategoricalLogits, Distribution};
/// let d = CategoricalLogits::new(vec![0.0, 0.0]).unwrap();
/// assert!((d.log_prob(1) - 0.5f64.ln()).abs() < 1e-15);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct CategoricalLogits<T: Scalar = f64> {
    log_probs: Vec<T>,
}

impl<T: Scalar> CategoricalLogits<T> {
    /// The categorical distribution with log-probabilities `logits` up to a
    /// constant.
    ///
    /// # Errors
    /// If there are no categories, or a logit is NaN or `+∞`.
    pub fn new(logits: Vec<T>) -> Result<Self, DistributionError> {
        if logits.is_empty() {
            return Err(DistributionError::DimensionMismatch {
                distribution: "CategoricalLogits",
                parameter: "logits",
                expected: 1,
                found: 0,
            });
        }
        if let Some(bad) = logits
            .iter()
            .find(|l| l.value().is_nan() || l.value() == f64::INFINITY)
        {
            return Err(DistributionError::InvalidParameter {
                distribution: "CategoricalLogits",
                parameter: "logits",
                value: bad.value(),
                requirement: "below +∞ and not NaN",
            });
        }
        let normaliser = T::log_sum_exp(&logits);
        if normaliser.value() == f64::NEG_INFINITY {
            return Err(DistributionError::InvalidParameter {
                distribution: "CategoricalLogits",
                parameter: "logits",
                value: f64::NEG_INFINITY,
                requirement: "not all -∞",
            });
        }
        Ok(Self {
            log_probs: logits.into_iter().map(|l| l - normaliser).collect(),
        })
    }

    /// The normalised log-probabilities.
    pub fn log_probs(&self) -> &[T] {
        &self.log_probs
    }
}

impl<T: Scalar> Distribution<T> for CategoricalLogits<T> {
    type Value = usize;
    type Support = CategoryIndex;

    fn log_prob(&self, k: usize) -> T {
        self.log_probs
            .get(k)
            .copied()
            .unwrap_or(T::constant(f64::NEG_INFINITY))
    }

    fn support(&self) -> Support {
        Support::CategoryIndex {
            categories: self.log_probs.len(),
        }
    }
}

impl rand::distr::Distribution<usize> for CategoricalLogits<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        sample_index(self.log_probs.iter().map(|l| l.exp()), rng)
    }
}
