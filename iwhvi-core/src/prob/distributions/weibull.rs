//! The Weibull distribution.

use rand::{Rng, RngExt};
use rand_distr::Exp1;

use super::gamma::boundary;
use super::supports::Positive;
use super::{Distribution, DistributionError, Reparameterized, Support, check};
use crate::scalar::Scalar;

/// Weibull distribution with shape `k > 0` and scale `λ > 0`:
///
/// `log p(x) = ln k - ln λ + (k - 1)(ln x - ln λ) - (x / λ)^k` for `x ≥ 0`.
///
/// Reparameterized: `x = λ e^{1/k}`, `e ~ Exponential(1)`.
///
/// ```
/// use iwhvi_core::distributions::{Distribution, Exponential, Weibull};
/// // Shape 1 is the exponential distribution of rate 1/λ.
/// let w = Weibull::new(1.0, 2.0).unwrap();
/// let e = Exponential::new(0.5).unwrap();
/// assert!((w.log_prob(1.3) - e.log_prob(1.3)).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weibull<T: Scalar = f64> {
    shape: T,
    scale: T,
}

impl<T: Scalar> Weibull<T> {
    /// The Weibull distribution of shape `shape` and scale `scale`.
    ///
    /// # Errors
    /// If `shape` or `scale` is not positive and finite.
    pub fn new(shape: T, scale: T) -> Result<Self, DistributionError> {
        Ok(Self {
            shape: check::positive("Weibull", "shape", shape)?,
            scale: check::positive("Weibull", "scale", scale)?,
        })
    }

    /// The shape `k`.
    pub fn shape(&self) -> T {
        self.shape
    }

    /// The scale `λ`.
    pub fn scale(&self) -> T {
        self.scale
    }
}

impl<T: Scalar> Distribution<T> for Weibull<T> {
    type Value = T;
    type Support = Positive;

    fn log_prob(&self, x: T) -> T {
        let ln_scale = self.scale.ln();
        let normaliser = self.shape.ln() - ln_scale;
        match x.value() {
            v if v > 0.0 && v < f64::INFINITY => {
                let log_ratio = x.ln() - ln_scale;
                normaliser + (self.shape - 1.0) * log_ratio - (log_ratio * self.shape).exp()
            }
            0.0 => boundary(self.shape, normaliser),
            _ => T::constant(f64::NEG_INFINITY),
        }
    }

    fn support(&self) -> Support {
        Support::Positive
    }
}

impl<T: Scalar> Reparameterized<T> for Weibull<T> {
    fn sample_noise<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        rng.sample(Exp1)
    }

    fn rsample(&self, noise: f64) -> T {
        self.scale * T::constant(noise).powf(self.shape.recip())
    }
}

impl rand::distr::Distribution<f64> for Weibull<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        self.rsample(self.sample_noise(rng))
    }
}
