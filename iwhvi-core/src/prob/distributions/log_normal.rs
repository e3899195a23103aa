//! The log-normal distribution.

use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

use super::supports::Positive;
use super::{Distribution, DistributionError, Reparameterized, Support, check};
use crate::scalar::Scalar;
use crate::special::LN_SQRT_2PI;

/// Log-normal distribution: `ln x ~ N(loc, scale²)`, `scale > 0`:
///
/// `log p(x) = -½ ((ln x - loc) / scale)² - ln scale - ½ ln 2π - ln x` for `x > 0`.
///
/// Reparameterized: `x = exp(loc + scale · ε)`, `ε ~ N(0, 1)`.
///
/// ```
/// use iwhvi_core::distributions::{Distribution, LogNormal};
/// let d = LogNormal::new(0.0, 1.0).unwrap();
/// assert_eq!(d.log_prob(-1.0), f64::NEG_INFINITY);
/// assert!((d.log_prob(1.0) + 0.5 * (2.0 * std::f64::consts::PI).ln()).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogNormal<T: Scalar = f64> {
    loc: T,
    scale: T,
}

impl<T: Scalar> LogNormal<T> {
    /// The log-normal with `ln x ~ N(loc, scale²)`.
    ///
    /// # Errors
    /// If `loc` is not finite or `scale` is not positive and finite.
    pub fn new(loc: T, scale: T) -> Result<Self, DistributionError> {
        Ok(Self {
            loc: check::finite("LogNormal", "loc", loc)?,
            scale: check::positive("LogNormal", "scale", scale)?,
        })
    }

    /// The mean of `ln x`.
    pub fn loc(&self) -> T {
        self.loc
    }

    /// The standard deviation of `ln x`.
    pub fn scale(&self) -> T {
        self.scale
    }
}

impl<T: Scalar> Distribution<T> for LogNormal<T> {
    type Value = T;
    type Support = Positive;

    fn log_prob(&self, x: T) -> T {
        if !(x.value() > 0.0) {
            return T::constant(f64::NEG_INFINITY);
        }
        let ln_x = x.ln();
        let z = (ln_x - self.loc) / self.scale;
        -(z * z) * 0.5 - self.scale.ln() - LN_SQRT_2PI - ln_x
    }

    fn support(&self) -> Support {
        Support::Positive
    }
}

impl<T: Scalar> Reparameterized<T> for LogNormal<T> {
    fn sample_noise<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        rng.sample(StandardNormal)
    }

    fn rsample(&self, noise: f64) -> T {
        (self.loc + self.scale * noise).exp()
    }
}

impl rand::distr::Distribution<f64> for LogNormal<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        self.rsample(self.sample_noise(rng))
    }
}
