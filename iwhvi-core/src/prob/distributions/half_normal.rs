//! The half-normal distribution.

use rand::{Rng, RngExt};
use rand_distr::StandardNormal;
use std::f64::consts::LN_2;

use super::supports::Positive;
use super::{Distribution, DistributionError, Support, check};
use crate::scalar::Scalar;
use crate::special::LN_SQRT_2PI;

/// Half-normal distribution: `|y|` for `y ~ N(0, scale²)`, `scale > 0`:
///
/// `log p(x) = ln 2 - ½ (x / scale)² - ln scale - ½ ln 2π` for `x ≥ 0`.
///
/// ```
/// use iwhvi_core::distributions::{Distribution, HalfNormal};
/// let d = HalfNormal::new(2.0).unwrap();
/// assert_eq!(d.log_prob(-0.1), f64::NEG_INFINITY);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HalfNormal<T: Scalar = f64> {
    scale: T,
}

impl<T: Scalar> HalfNormal<T> {
    /// The half-normal of scale `scale`.
    ///
    /// # Errors
    /// If `scale` is not positive and finite.
    pub fn new(scale: T) -> Result<Self, DistributionError> {
        Ok(Self {
            scale: check::positive("HalfNormal", "scale", scale)?,
        })
    }

    /// The scale of the underlying normal.
    pub fn scale(&self) -> T {
        self.scale
    }
}

impl<T: Scalar> Distribution<T> for HalfNormal<T> {
    type Value = T;
    type Support = Positive;

    fn log_prob(&self, x: T) -> T {
        if !(x.value() >= 0.0) {
            return T::constant(f64::NEG_INFINITY);
        }
        let z = x / self.scale;
        -(z * z) * 0.5 - self.scale.ln() + (LN_2 - LN_SQRT_2PI)
    }

    fn support(&self) -> Support {
        Support::Positive
    }
}

impl rand::distr::Distribution<f64> for HalfNormal<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        self.scale * rng.sample::<f64, _>(StandardNormal).abs()
    }
}
