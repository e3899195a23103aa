//! The inverse-gamma distribution.

use rand::Rng;

use super::supports::Positive;
use super::{Distribution, DistributionError, Support, check};
use crate::scalar::Scalar;

/// Inverse-gamma distribution with shape `α > 0` and scale `β > 0`
/// (`1/x ~ Gamma(α, rate β)`):
///
/// `log p(x) = α ln β - ln Γ(α) - (α + 1) ln x - β / x` for `x > 0`.
///
/// ```
/// use iwhvi_core::distributions::{Distribution, InverseGamma};
/// let d = InverseGamma::new(2.0, 1.0).unwrap();
/// assert!((d.log_prob(1.0) - (-1.0)).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InverseGamma<T: Scalar = f64> {
    shape: T,
    scale: T,
}

impl<T: Scalar> InverseGamma<T> {
    /// The inverse-gamma distribution of shape `shape` and scale `scale`.
    ///
    /// # Errors
    /// If `shape` or `scale` is not positive and finite.
    pub fn new(shape: T, scale: T) -> Result<Self, DistributionError> {
        Ok(Self {
            shape: check::positive("InverseGamma", "shape", shape)?,
            scale: check::positive("InverseGamma", "scale", scale)?,
        })
    }

    /// The shape `α`.
    pub fn shape(&self) -> T {
        self.shape
    }

    /// The scale `β`.
    pub fn scale(&self) -> T {
        self.scale
    }
}

impl<T: Scalar> Distribution<T> for InverseGamma<T> {
    type Value = T;
    type Support = Positive;

    fn log_prob(&self, x: T) -> T {
        if !(x.value() > 0.0) {
            return T::constant(f64::NEG_INFINITY);
        }
        self.shape * self.scale.ln()
            - self.shape.ln_gamma()
            - (self.shape + 1.0) * x.ln()
            - self.scale / x
    }

    fn support(&self) -> Support {
        Support::Positive
    }
}

impl rand::distr::Distribution<f64> for InverseGamma<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let g = rand_distr::Gamma::new(self.shape, 1.0)
            .expect("parameters were validated")
            .sample(rng);
        self.scale / g
    }
}
