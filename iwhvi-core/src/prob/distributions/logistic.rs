//! The logistic distribution.

use rand::distr::Open01;
use rand::{Rng, RngExt};

use super::supports::Real;
use super::{Distribution, DistributionError, Reparameterized, Support, check};
use crate::scalar::Scalar;

/// Logistic distribution with location `loc` and scale `scale > 0`; with
/// `z = (x - loc) / scale`:
///
/// `log p(x) = -ln scale + ln σ(z) + ln σ(-z)`, `σ` the logistic sigmoid.
///
/// Reparameterized: `x = loc + scale · (ln u - ln(1 - u))`, `u ~ U(0, 1)`.
///
/// ```
/// use iwhvi_core::distributions::{Distribution, Logistic};
/// let d = Logistic::new(0.0, 1.0).unwrap();
/// assert!((d.log_prob(0.0) - 0.25f64.ln()).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Logistic<T: Scalar = f64> {
    loc: T,
    scale: T,
}

impl<T: Scalar> Logistic<T> {
    /// The logistic distribution at `loc` with scale `scale`.
    ///
    /// # Errors
    /// If `loc` is not finite or `scale` is not positive and finite.
    pub fn new(loc: T, scale: T) -> Result<Self, DistributionError> {
        Ok(Self {
            loc: check::finite("Logistic", "loc", loc)?,
            scale: check::positive("Logistic", "scale", scale)?,
        })
    }

    /// The location (mean).
    pub fn loc(&self) -> T {
        self.loc
    }

    /// The scale.
    pub fn scale(&self) -> T {
        self.scale
    }
}

impl<T: Scalar> Distribution<T> for Logistic<T> {
    type Value = T;
    type Support = Real;

    fn log_prob(&self, x: T) -> T {
        let z = (x - self.loc) / self.scale;
        z.log_sigmoid() + (-z).log_sigmoid() - self.scale.ln()
    }

    fn support(&self) -> Support {
        Support::Real
    }
}

impl<T: Scalar> Reparameterized<T> for Logistic<T> {
    fn sample_noise<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        rng.sample(Open01)
    }

    fn rsample(&self, noise: f64) -> T {
        self.loc + self.scale * (noise.ln() - (-noise).ln_1p())
    }
}

impl rand::distr::Distribution<f64> for Logistic<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        self.rsample(self.sample_noise(rng))
    }
}
