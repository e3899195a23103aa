//! The negative binomial distribution in its mean-concentration form.

use rand::Rng;

use super::poisson::sample_poisson;
use super::supports::NonNegativeInteger;
use super::{Distribution, DistributionError, Support, check, times};
use crate::scalar::Scalar;
use crate::special::ln_factorial;

/// Negative binomial distribution with mean `μ > 0` and concentration
/// `φ > 0` (variance `μ + μ²/φ`; Stan's `neg_binomial_2`), a gamma-Poisson
/// mixture:
///
/// `log p(k) = ln Γ(k + φ) - ln k! - ln Γ(φ) + φ ln(φ / (μ + φ)) + k ln(μ / (μ + φ))`.
///
/// ```
/// use iwhvi_core::distributions::{Distribution, NegativeBinomial2};
/// let d = NegativeBinomial2::new(3.0, 1.0).unwrap();
/// // φ = 1 is geometric: p(0) = φ / (μ + φ).
/// assert!((d.log_prob(0) - 0.25f64.ln()).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NegativeBinomial2<T: Scalar = f64> {
    mean: T,
    concentration: T,
}

impl<T: Scalar> NegativeBinomial2<T> {
    /// The negative binomial with mean `mean` and concentration `concentration`.
    ///
    /// # Errors
    /// If either is not positive and finite.
    pub fn new(mean: T, concentration: T) -> Result<Self, DistributionError> {
        Ok(Self {
            mean: check::positive("NegativeBinomial2", "mean", mean)?,
            concentration: check::positive("NegativeBinomial2", "concentration", concentration)?,
        })
    }

    /// The mean `μ`.
    pub fn mean(&self) -> T {
        self.mean
    }

    /// The concentration `φ`.
    pub fn concentration(&self) -> T {
        self.concentration
    }
}

impl<T: Scalar> Distribution<T> for NegativeBinomial2<T> {
    type Value = u64;
    type Support = NonNegativeInteger;

    fn log_prob(&self, k: u64) -> T {
        let (mu, phi) = (self.mean, self.concentration);
        let log_total = (mu + phi).ln();
        (phi + k as f64).ln_gamma() - phi.ln_gamma() - ln_factorial(k)
            + phi * (phi.ln() - log_total)
            + times(k, || mu.ln() - log_total)
    }

    fn support(&self) -> Support {
        Support::NonNegativeInteger
    }
}

impl rand::distr::Distribution<u64> for NegativeBinomial2<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        let rate = rand_distr::Gamma::new(self.concentration, self.mean / self.concentration)
            .expect("parameters were validated")
            .sample(rng);
        if rate > 0.0 {
            sample_poisson(rate, rng)
        } else {
            0
        }
    }
}
