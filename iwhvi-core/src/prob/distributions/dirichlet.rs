//! The Dirichlet distribution.

use rand::Rng;

use super::supports::Simplex;
use super::{DistributionError, MultivariateDistribution, Support, check};
use crate::scalar::Scalar;

/// How far from 1 the entries of a simplex value may sum.
pub(crate) const SIMPLEX_TOLERANCE: f64 = 1e-9;

/// Dirichlet distribution on the simplex of `K ≥ 2` entries with
/// concentrations `α > 0`:
///
/// `log p(x) = ln Γ(Σ α) - Σ ln Γ(αᵢ) + Σ (αᵢ - 1) ln xᵢ` for `xᵢ > 0`,
/// `Σ xᵢ = 1` (within `1e-9`).
///
/// ```
/// use iwhvi_core::distributions::{Dirichlet, MultivariateDistribution};
/// let d = Dirichlet::new(vec![1.0, 1.0, 1.0]).unwrap();
/// // Uniform on the 2-simplex: density Γ(3) = 2.
/// assert!((d.log_prob(&[0.2, 0.3, 0.5]) - 2f64.ln()).abs() < 1e-15);
/// assert_eq!(d.log_prob(&[0.2, 0.3, 0.6]), f64::NEG_INFINITY);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Dirichlet<T: Scalar = f64> {
    concentration: Vec<T>,
    log_normaliser: T,
}

impl<T: Scalar> Dirichlet<T> {
    /// The Dirichlet distribution with concentrations `concentration`.
    ///
    /// # Errors
    /// If there are fewer than 2 entries or one is not positive and finite.
    pub fn new(concentration: Vec<T>) -> Result<Self, DistributionError> {
        if concentration.len() < 2 {
            return Err(DistributionError::DimensionMismatch {
                distribution: "Dirichlet",
                parameter: "concentration",
                expected: 2,
                found: concentration.len(),
            });
        }
        for &a in &concentration {
            check::positive("Dirichlet", "concentration", a)?;
        }
        let total: T = concentration.iter().copied().sum();
        let log_normaliser =
            total.ln_gamma() - concentration.iter().map(|a| a.ln_gamma()).sum::<T>();
        Ok(Self {
            concentration,
            log_normaliser,
        })
    }

    /// The concentrations.
    pub fn concentration(&self) -> &[T] {
        &self.concentration
    }
}

impl<T: Scalar> MultivariateDistribution<T> for Dirichlet<T> {
    type Support = Simplex;

    fn dim(&self) -> usize {
        self.concentration.len()
    }

    fn log_prob(&self, x: &[T]) -> T {
        // A buffer or slice of the wrong length is a programming error of the
        // caller, as a slice index out of range is (not input to validate): the
        // library's own callers (`fit`, the evaluation functions, the generated
        // models) size every buffer from the layout they checked first.
        assert_eq!(
            x.len(),
            self.dim(),
            "Dirichlet: a value of length {} for {} categories",
            x.len(),
            self.dim()
        );
        let total: f64 = x.iter().map(|xi| xi.value()).sum();
        if x.iter().any(|xi| !(xi.value() > 0.0)) || (total - 1.0).abs() > SIMPLEX_TOLERANCE {
            return T::constant(f64::NEG_INFINITY);
        }
        self.concentration
            .iter()
            .zip(x)
            .fold(self.log_normaliser, |acc, (&a, &xi)| {
                acc + (a - 1.0) * xi.ln()
            })
    }

    fn support(&self) -> Support {
        Support::Simplex
    }
}

impl rand::distr::Distribution<Vec<f64>> for Dirichlet<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<f64> {
        let mut draws: Vec<f64> = self
            .concentration
            .iter()
            .map(|&a| {
                rand_distr::Gamma::new(a, 1.0)
                    .expect("validated")
                    .sample(rng)
            })
            .collect();
        let total: f64 = draws.iter().sum();
        for d in &mut draws {
            *d /= total;
        }
        draws
    }
}
