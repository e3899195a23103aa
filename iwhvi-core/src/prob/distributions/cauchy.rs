//! The Cauchy distribution.

use rand::distr::Open01;
use rand::{Rng, RngExt};
use std::f64::consts::PI;

use super::supports::Real;
use super::{Distribution, DistributionError, Reparameterized, Support, check};
use crate::scalar::Scalar;

/// Cauchy distribution with location `loc` and scale `scale > 0`:
///
/// `log p(x) = -ln π - ln scale - ln(1 + ((x - loc) / scale)²)`.
///
/// Reparameterized: `x = loc + scale · tan(π (u - ½))`, `u ~ U(0, 1)`.
///
/// ```
/// use iwhvi_core::distributions::{Cauchy, Distribution};
/// let d = Cauchy::new(0.0, 1.0).unwrap();
/// assert!((d.log_prob(0.0) + std::f64::consts::PI.ln()).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cauchy<T: Scalar = f64> {
    loc: T,
    scale: T,
}

impl<T: Scalar> Cauchy<T> {
    /// The Cauchy distribution centred at `loc` with half-width `scale`.
    ///
    /// # Errors
    /// If `loc` is not finite or `scale` is not positive and finite.
    pub fn new(loc: T, scale: T) -> Result<Self, DistributionError> {
        Ok(Self {
            loc: check::finite("Cauchy", "loc", loc)?,
            scale: check::positive("Cauchy", "scale", scale)?,
        })
    }

    /// The location (median).
    pub fn loc(&self) -> T {
        self.loc
    }

    /// The scale (half-width at half-maximum).
    pub fn scale(&self) -> T {
        self.scale
    }
}

impl<T: Scalar> Distribution<T> for Cauchy<T> {
    type Value = T;
    type Support = Real;

    fn log_prob(&self, x: T) -> T {
        let z = (x - self.loc) / self.scale;
        -(z * z).ln_1p() - self.scale.ln() - PI.ln()
    }

    fn support(&self) -> Support {
        Support::Real
    }
}

impl<T: Scalar> Reparameterized<T> for Cauchy<T> {
    fn sample_noise<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        rng.sample(Open01)
    }

    fn rsample(&self, noise: f64) -> T {
        self.loc + self.scale * (PI * (noise - 0.5)).tan()
    }
}

impl rand::distr::Distribution<f64> for Cauchy<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        self.rsample(self.sample_noise(rng))
    }
}
