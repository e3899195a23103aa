//! The Laplace distribution.

use rand::distr::Open01;
use rand::{Rng, RngExt};
use std::f64::consts::LN_2;

use super::supports::Real;
use super::{Distribution, DistributionError, Reparameterized, Support, check};
use crate::scalar::Scalar;

/// Laplace (double exponential) distribution with location `loc` and scale
/// `scale > 0`:
///
/// `log p(x) = -ln(2 scale) - |x - loc| / scale`.
///
/// Reparameterized: `x = loc - scale · sign(u) ln(1 - 2|u|)`, `u ~ U(-½, ½)`.
///
/// ```
/// use iwhvi_core::distributions::{Distribution, Laplace};
/// let d = Laplace::new(0.0, 1.0).unwrap();
/// assert!((d.log_prob(1.0) - (-2f64.ln() - 1.0)).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Laplace<T: Scalar = f64> {
    loc: T,
    scale: T,
}

impl<T: Scalar> Laplace<T> {
    /// The Laplace distribution at `loc` with scale `scale`.
    ///
    /// # Errors
    /// If `loc` is not finite or `scale` is not positive and finite.
    pub fn new(loc: T, scale: T) -> Result<Self, DistributionError> {
        Ok(Self {
            loc: check::finite("Laplace", "loc", loc)?,
            scale: check::positive("Laplace", "scale", scale)?,
        })
    }

    /// The location (median).
    pub fn loc(&self) -> T {
        self.loc
    }

    /// The scale.
    pub fn scale(&self) -> T {
        self.scale
    }
}

impl<T: Scalar> Distribution<T> for Laplace<T> {
    type Value = T;
    type Support = Real;

    fn log_prob(&self, x: T) -> T {
        -(x - self.loc).abs() / self.scale - self.scale.ln() - LN_2
    }

    fn support(&self) -> Support {
        Support::Real
    }
}

impl<T: Scalar> Reparameterized<T> for Laplace<T> {
    fn sample_noise<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        rng.sample::<f64, _>(Open01) - 0.5
    }

    fn rsample(&self, noise: f64) -> T {
        self.loc - self.scale * (noise.signum() * (-2.0 * noise.abs()).ln_1p())
    }
}

impl rand::distr::Distribution<f64> for Laplace<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        self.rsample(self.sample_noise(rng))
    }
}
