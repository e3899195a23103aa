//! The beta distribution.

use rand::Rng;

use super::gamma::boundary;
use super::supports::UnitInterval;
use super::{Distribution, DistributionError, Support, check};
use crate::scalar::Scalar;

/// Beta distribution with concentrations `α > 0` and `β > 0`:
///
/// `log p(x) = (α - 1) ln x + (β - 1) ln(1 - x) - ln B(α, β)` for `0 ≤ x ≤ 1`,
/// `B(α, β) = Γ(α) Γ(β) / Γ(α + β)`.
///
/// ```
/// use iwhvi_core::distributions::{Beta, Distribution};
/// let d = Beta::new(2.0, 2.0).unwrap();
/// assert!((d.log_prob(0.5) - 1.5f64.ln()).abs() < 1e-15);
/// assert_eq!(d.log_prob(1.5), f64::NEG_INFINITY);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Beta<T: Scalar = f64> {
    alpha: T,
    beta: T,
}

impl<T: Scalar> Beta<T> {
    /// The beta distribution `Beta(alpha, beta)`.
    ///
    /// # Errors
    /// If `alpha` or `beta` is not positive and finite.
    pub fn new(alpha: T, beta: T) -> Result<Self, DistributionError> {
        Ok(Self {
            alpha: check::positive("Beta", "alpha", alpha)?,
            beta: check::positive("Beta", "beta", beta)?,
        })
    }

    /// `α`, the concentration of `x`.
    pub fn alpha(&self) -> T {
        self.alpha
    }

    /// `β`, the concentration of `1 - x`.
    pub fn beta(&self) -> T {
        self.beta
    }
}

impl<T: Scalar> Distribution<T> for Beta<T> {
    type Value = T;
    type Support = UnitInterval;

    fn log_prob(&self, x: T) -> T {
        let log_beta =
            self.alpha.ln_gamma() + self.beta.ln_gamma() - (self.alpha + self.beta).ln_gamma();
        match x.value() {
            v if v > 0.0 && v < 1.0 => {
                (self.alpha - 1.0) * x.ln() + (self.beta - 1.0) * (-x).ln_1p() - log_beta
            }
            0.0 => boundary(self.alpha, -log_beta),
            1.0 => boundary(self.beta, -log_beta),
            _ => T::constant(f64::NEG_INFINITY),
        }
    }

    fn support(&self) -> Support {
        Support::UnitInterval
    }
}

impl rand::distr::Distribution<f64> for Beta<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        rand_distr::Beta::new(self.alpha, self.beta)
            .expect("parameters were validated")
            .sample(rng)
    }
}
