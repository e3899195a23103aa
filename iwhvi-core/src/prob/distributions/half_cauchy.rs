//! The half-Cauchy distribution.

use rand::distr::Open01;
use rand::{Rng, RngExt};
use std::f64::consts::{LN_2, PI};

use super::supports::Positive;
use super::{Distribution, DistributionError, Support, check};
use crate::scalar::Scalar;

/// Half-Cauchy distribution: `|y|` for `y ~ Cauchy(0, scale)`, `scale > 0`:
///
/// `log p(x) = ln 2 - ln π - ln scale - ln(1 + (x / scale)²)` for `x ≥ 0`.
///
/// ```
/// use iwhvi_core::distributions::{Distribution, HalfCauchy};
/// let d = HalfCauchy::new(5.0).unwrap();
/// assert_eq!(d.log_prob(-1.0), f64::NEG_INFINITY);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HalfCauchy<T: Scalar = f64> {
    scale: T,
}

impl<T: Scalar> HalfCauchy<T> {
    /// The half-Cauchy of scale `scale`.
    ///
    /// # Errors
    /// If `scale` is not positive and finite.
    pub fn new(scale: T) -> Result<Self, DistributionError> {
        Ok(Self {
            scale: check::positive("HalfCauchy", "scale", scale)?,
        })
    }

    /// The scale.
    pub fn scale(&self) -> T {
        self.scale
    }
}

impl<T: Scalar> Distribution<T> for HalfCauchy<T> {
    type Value = T;
    type Support = Positive;

    fn log_prob(&self, x: T) -> T {
        if !(x.value() >= 0.0) {
            return T::constant(f64::NEG_INFINITY);
        }
        let z = x / self.scale;
        -(z * z).ln_1p() - self.scale.ln() + (LN_2 - PI.ln())
    }

    fn support(&self) -> Support {
        Support::Positive
    }
}

impl rand::distr::Distribution<f64> for HalfCauchy<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let u: f64 = rng.sample(Open01);
        self.scale * (PI * (u - 0.5)).tan().abs()
    }
}
