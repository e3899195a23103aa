//! The multivariate normal distribution.

use nalgebra::{DMatrix, DVector};
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

use super::supports::RealVector;
use super::{
    DistributionError, MultivariateDistribution, MultivariateReparameterized, Support, check,
};
use crate::linalg::cholesky;
use crate::scalar::Scalar;
use crate::special::LN_SQRT_2PI;

const NAME: &str = "MultivariateNormal";

/// Multivariate normal distribution `N(loc, Σ)` in `d` dimensions,
/// parameterized by the lower-triangular Cholesky factor `L` of the
/// covariance, `Σ = L Lᵀ` (or built from `Σ` itself); with
/// `z = L⁻¹(x - loc)`:
///
/// `log p(x) = -½ |z|² - Σᵢ ln Lᵢᵢ - d/2 ln 2π`.
///
/// Reparameterized: `x = loc + L ε`, `ε ~ N(0, I_d)`.
///
/// ```
/// use iwhvi_core::distributions::{MultivariateDistribution, MultivariateNormal};
/// use nalgebra::{dmatrix, dvector};
/// let d = MultivariateNormal::from_covariance(dvector![0.0, 0.0], dmatrix![4.0, 0.0; 0.0, 1.0]).unwrap();
/// let expected = -2f64.ln() - (2.0 * std::f64::consts::PI).ln();
/// assert!((d.log_prob(&[0.0, 0.0]) - expected).abs() < 1e-15);
/// assert!(MultivariateNormal::from_covariance(dvector![0.0, 0.0], dmatrix![1.0, 2.0; 2.0, 1.0]).is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MultivariateNormal<T: Scalar = f64> {
    loc: DVector<T>,
    scale_tril: DMatrix<T>,
    half_log_det: T,
}

impl<T: Scalar> MultivariateNormal<T> {
    /// `N(loc, L Lᵀ)` from the Cholesky factor `L` (its lower triangle is
    /// read; entries above the diagonal are ignored).
    ///
    /// # Errors
    /// If `L` is not square of `loc`'s length, an entry is not finite, or a
    /// diagonal entry is not positive.
    pub fn from_cholesky(
        loc: DVector<T>,
        scale_tril: DMatrix<T>,
    ) -> Result<Self, DistributionError> {
        let d = loc.len();
        for (parameter, found) in [
            ("scale_tril rows", scale_tril.nrows()),
            ("scale_tril columns", scale_tril.ncols()),
        ] {
            if found != d {
                return Err(DistributionError::DimensionMismatch {
                    distribution: NAME,
                    parameter,
                    expected: d,
                    found,
                });
            }
        }
        for &l in loc.iter() {
            check::finite(NAME, "loc", l)?;
        }
        for i in 0..d {
            for j in 0..i {
                check::finite(NAME, "scale_tril", scale_tril[(i, j)])?;
            }
            check::positive(NAME, "scale_tril diagonal", scale_tril[(i, i)])?;
        }
        let half_log_det = crate::linalg::log_det_from_cholesky(&scale_tril) * 0.5;
        Ok(Self {
            loc,
            scale_tril,
            half_log_det,
        })
    }

    /// `N(loc, covariance)`, factorising the covariance.
    ///
    /// # Errors
    /// If the shapes disagree, the covariance is not symmetric (within
    /// `1e-10` relative) or not positive definite.
    pub fn from_covariance(
        loc: DVector<T>,
        covariance: DMatrix<T>,
    ) -> Result<Self, DistributionError> {
        let d = loc.len();
        if covariance.nrows() != d || covariance.ncols() != d {
            return Err(DistributionError::DimensionMismatch {
                distribution: NAME,
                parameter: "covariance",
                expected: d,
                found: if covariance.nrows() != d {
                    covariance.nrows()
                } else {
                    covariance.ncols()
                },
            });
        }
        for i in 0..d {
            for j in 0..i {
                let (a, b) = (covariance[(i, j)].value(), covariance[(j, i)].value());
                if (a - b).abs() > 1e-10 * a.abs().max(b.abs()).max(f64::MIN_POSITIVE) {
                    return Err(DistributionError::InvalidParameter {
                        distribution: NAME,
                        parameter: "covariance",
                        value: a - b,
                        requirement: "symmetric (the value shown is Σᵢⱼ - Σⱼᵢ at the first asymmetric pair)",
                    });
                }
            }
        }
        let scale_tril =
            cholesky(&covariance).map_err(|source| DistributionError::NotPositiveDefinite {
                distribution: NAME,
                parameter: "covariance",
                source,
            })?;
        Self::from_cholesky(loc, scale_tril)
    }

    /// The mean.
    pub fn loc(&self) -> &DVector<T> {
        &self.loc
    }

    /// The lower-triangular Cholesky factor of the covariance.
    pub fn scale_tril(&self) -> &DMatrix<T> {
        &self.scale_tril
    }
}

impl<T: Scalar> MultivariateDistribution<T> for MultivariateNormal<T> {
    type Support = RealVector;

    fn dim(&self) -> usize {
        self.loc.len()
    }

    fn log_prob(&self, x: &[T]) -> T {
        let d = self.dim();
        // A buffer or slice of the wrong length is a programming error of the
        // caller, as a slice index out of range is (not input to validate): the
        // library's own callers (`fit`, the evaluation functions, the generated
        // models) size every buffer from the layout they checked first.
        assert_eq!(
            x.len(),
            d,
            "{NAME}: a value of length {} for a {d}-dimensional distribution",
            x.len()
        );
        // z = L⁻¹ (x - loc) by forward substitution, then |z|².
        let centred =
            DVector::from_iterator(d, x.iter().zip(self.loc.iter()).map(|(&xi, &l)| xi - l));
        let z = crate::linalg::substitute(&centred, false, |i, k| self.scale_tril[(i, k)]);
        let quad = z.iter().fold(T::constant(0.0), |quad, &zi| quad + zi * zi);
        -quad * 0.5 - self.half_log_det - LN_SQRT_2PI * d as f64
    }

    fn support(&self) -> Support {
        Support::RealVector
    }
}

impl<T: Scalar> MultivariateReparameterized<T> for MultivariateNormal<T> {
    fn noise_dim(&self) -> usize {
        self.dim()
    }

    fn sample_noise<R: Rng + ?Sized>(&self, rng: &mut R, noise: &mut [f64]) {
        for e in noise {
            *e = rng.sample(StandardNormal);
        }
    }

    fn rsample(&self, noise: &[f64], out: &mut [T]) {
        for (i, o) in out.iter_mut().enumerate() {
            let mut x = self.loc[i];
            for (j, &e) in noise.iter().enumerate().take(i + 1) {
                x += self.scale_tril[(i, j)] * e;
            }
            *o = x;
        }
    }
}

impl rand::distr::Distribution<DVector<f64>> for MultivariateNormal<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> DVector<f64> {
        let mut noise = vec![0.0; self.dim()];
        MultivariateReparameterized::sample_noise(self, rng, &mut noise);
        let mut out = DVector::zeros(self.dim());
        self.rsample(&noise, out.as_mut_slice());
        out
    }
}
