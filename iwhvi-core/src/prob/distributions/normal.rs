//! The normal distribution.

use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

use super::supports::Real;
use super::{Distribution, DistributionError, Reparameterized, Support, check};
use crate::scalar::Scalar;
use crate::special::LN_SQRT_2PI;

/// Normal (Gaussian) distribution `N(loc, scale²)`, parameterized by mean
/// `loc` and standard deviation `scale > 0`:
///
/// `log p(x) = -½ ((x - loc) / scale)² - ln scale - ½ ln 2π`.
///
/// Reparameterized: `x = loc + scale · ε`, `ε ~ N(0, 1)`.
///
/// ```
/// use iwhvi_core::distributions::{Distribution, Normal};
/// let d = Normal::new(0.0, 1.0).unwrap();
/// assert!((d.log_prob(0.0) + 0.5 * (2.0 * std::f64::consts::PI).ln()).abs() < 1e-15);
/// assert!(Normal::new(0.0, -1.0).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normal<T: Scalar = f64> {
    loc: T,
    scale: T,
}

impl<T: Scalar> Normal<T> {
    /// `N(loc, scale²)`.
    ///
    /// # Errors
    /// If `loc` is not finite or `scale` is not positive and finite.
    pub fn new(loc: T, scale: T) -> Result<Self, DistributionError> {
        Ok(Self {
            loc: check::finite("Normal", "loc", loc)?,
            scale: check::positive("Normal", "scale", scale)?,
        })
    }

    /// The mean.
    pub fn loc(&self) -> T {
        self.loc
    }

    /// The standard deviation.
    pub fn scale(&self) -> T {
        self.scale
    }
}

impl<T: Scalar> Distribution<T> for Normal<T> {
    type Value = T;
    type Support = Real;

    fn log_prob(&self, x: T) -> T {
        let z = (x - self.loc) / self.scale;
        -(z * z) * 0.5 - self.scale.ln() - LN_SQRT_2PI
    }

    fn support(&self) -> Support {
        Support::Real
    }
}

impl<T: Scalar> Reparameterized<T> for Normal<T> {
    fn sample_noise<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        rng.sample(StandardNormal)
    }

    fn rsample(&self, noise: f64) -> T {
        self.loc + self.scale * noise
    }
}

impl rand::distr::Distribution<f64> for Normal<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        self.rsample(self.sample_noise(rng))
    }
}
