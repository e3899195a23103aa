//! The LKJ distribution over Cholesky factors of correlation matrices.

use rand::Rng;

use super::supports::CorrelationCholesky;
use super::{DistributionError, MultivariateDistribution, Support, check};
use crate::scalar::Scalar;

/// How far from 1 a row's squared norm may be in a correlation Cholesky
/// factor.
const ROW_TOLERANCE: f64 = 1e-8;

/// The LKJ distribution (Lewandowski, Kurowicka & Joe 2009) over the
/// Cholesky factor `L` of a `K × K` correlation matrix `R = L Lᵀ`, with
/// shape `η > 0` (Stan's `lkj_corr_cholesky`): `p(R) ∝ det(R)^{η−1}`, so
/// `η = 1` is uniform over correlation matrices and larger `η` favours the
/// identity. On `L` (lower triangular, positive diagonal, rows of unit
/// norm; row-major `K²` values):
///
/// `log p(L) = Σ_{i=2}^{K} (K − i + 2η − 2) ln Lᵢᵢ − ln c_K(η)`,
///
/// `ln c_K(η) = Σ_{k=1}^{K−1} [(2η − 2 + K − k)(K − k) ln 2 + (K − k) ln B(η + (K−k−1)/2, η + (K−k−1)/2)]`,
///
/// the normalising constant of `det(R)^{η−1}` (for `K = 2`,
/// `∫₋₁¹ (1 − r²)^{η−1} dr = 2^{2η−1} B(η, η)`), with `Π Lᵢᵢ^{K−i}` the
/// Jacobian from `R` to `L`.
///
/// ```
/// use iwhvi_core::distributions::{LkjCholesky, MultivariateDistribution};
/// // K = 2: L = [[1, 0], [r, √(1 − r²)]], p(r) = (1 − r²)^{η−1} / (2^{2η−1} B(η, η)).
/// let lkj = LkjCholesky::new(2, 2.0).unwrap();
/// let r: f64 = 0.6;
/// let l = [1.0, 0.0, r, (1.0 - r * r).sqrt()];
/// // η = 2: 2^3 B(2, 2) = 8 / 6.
/// assert!((lkj.log_prob(&l) - ((1.0 - r * r) * 6.0 / 8.0).ln()).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LkjCholesky<T: Scalar = f64> {
    dim: usize,
    shape: T,
    log_normaliser: T,
}

impl<T: Scalar> LkjCholesky<T> {
    /// The LKJ distribution over `dim × dim` correlation Cholesky factors
    /// with shape `η`.
    ///
    /// # Errors
    /// If `dim < 2` or `η` is not positive and finite.
    pub fn new(dim: usize, shape: T) -> Result<Self, DistributionError> {
        if dim < 2 {
            return Err(DistributionError::InvalidParameter {
                distribution: "LkjCholesky",
                parameter: "dim",
                value: dim as f64,
                requirement: "at least 2 (a correlation matrix of one variable is the constant 1)",
            });
        }
        check::positive("LkjCholesky", "shape", shape)?;
        let mut log_normaliser = T::constant(0.0);
        for k in 1..dim {
            let m = (dim - k) as f64;
            let a = shape + 0.5 * (m - 1.0);
            let log_beta = a.ln_gamma() * 2.0 - (a * 2.0).ln_gamma();
            log_normaliser += (shape * 2.0 - 2.0 + m) * (m * std::f64::consts::LN_2) + log_beta * m;
        }
        Ok(Self {
            dim,
            shape,
            log_normaliser,
        })
    }

    /// The shape `η`.
    pub fn shape(&self) -> T {
        self.shape
    }
}

impl<T: Scalar> MultivariateDistribution<T> for LkjCholesky<T> {
    type Support = CorrelationCholesky;

    /// `K²`: the factor's entries, row-major.
    fn dim(&self) -> usize {
        self.dim * self.dim
    }

    fn log_prob(&self, l: &[T]) -> T {
        let k = self.dim;
        // A buffer or slice of the wrong length is a programming error of the
        // caller, as a slice index out of range is (not input to validate): the
        // library's own callers (`fit`, the evaluation functions, the generated
        // models) size every buffer from the layout they checked first.
        assert_eq!(
            l.len(),
            k * k,
            "LkjCholesky: a value of length {} for a {k}×{k} factor",
            l.len()
        );
        for i in 0..k {
            let row = &l[i * k..(i + 1) * k];
            let norm: f64 = row.iter().map(|x| x.value() * x.value()).sum();
            if !(row[i].value() > 0.0)
                || row[i + 1..].iter().any(|x| x.value() != 0.0)
                || (norm - 1.0).abs() > ROW_TOLERANCE
            {
                return T::constant(f64::NEG_INFINITY);
            }
        }
        let mut lp = -self.log_normaliser;
        for i in 1..k {
            // Row i (0-based) is row i + 1 of the formula.
            let power = self.shape * 2.0 + (k - i - 1) as f64 - 2.0;
            lp += power * l[i * k + i].ln();
        }
        lp
    }

    fn support(&self) -> Support {
        Support::CorrelationCholesky
    }
}

impl rand::distr::Distribution<Vec<f64>> for LkjCholesky<f64> {
    /// A draw by the onion method's canonical partial correlations (as
    /// Stan's `lkj_corr_cholesky_rng`): for row block `i`, the partial
    /// correlations are `2 Beta(α_i, α_i) − 1` with
    /// `α_i = η + (K − 2 − i)/2`, assembled into `L` row by row.
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<f64> {
        let k = self.dim;
        let mut l = vec![0.0; k * k];
        // remaining[j]: 1 − Σ of the squares already placed in row j.
        let mut remaining = vec![1.0; k];
        l[0] = 1.0;
        let mut alpha = self.shape + 0.5 * (k as f64 - 1.0);
        for i in 0..k - 1 {
            alpha -= 0.5;
            let beta = rand_distr::Beta::new(alpha, alpha).expect("α > 0 for η > 0");
            if i > 0 {
                l[i * k + i] = remaining[i].sqrt();
            }
            for j in i + 1..k {
                let cpc = 2.0 * rand_distr::Distribution::sample(&beta, rng) - 1.0;
                l[j * k + i] = cpc * remaining[j].sqrt();
                remaining[j] *= 1.0 - cpc * cpc;
            }
        }
        l[k * k - 1] = remaining[k - 1].sqrt();
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::Transform;
    use rand::SeedableRng;

    /// ∫ p(L(u)) |J(u)| du over the unconstrained space, by the midpoint
    /// rule on `[−w, w]³` (K = 3): 1 for a normalised density.
    fn total_mass(shape: f64) -> f64 {
        let lkj = LkjCholesky::new(3, shape).expect("valid");
        let (n, w) = (90, 9.0);
        let h = 2.0 * w / n as f64;
        let mut total = 0.0;
        let mut l = vec![0.0; 9];
        for a in 0..n {
            for b in 0..n {
                for c in 0..n {
                    let u = [
                        -w + (a as f64 + 0.5) * h,
                        -w + (b as f64 + 0.5) * h,
                        -w + (c as f64 + 0.5) * h,
                    ];
                    let log_jacobian = Transform::CholeskyCorrelation.forward(&u, &mut l);
                    total += (lkj.log_prob(&l) + log_jacobian).exp();
                }
            }
        }
        total * h * h * h
    }

    #[test]
    fn the_density_integrates_to_one_over_three_by_three_factors() {
        for shape in [1.0, 2.5] {
            let mass = total_mass(shape);
            assert!((mass - 1.0).abs() < 2e-3, "η = {shape}: {mass}");
        }
    }

    #[test]
    fn draws_are_factors_with_the_right_correlation_spread() {
        // For LKJ(η) in K dimensions each correlation is
        // 2 Beta(η − 1 + K/2, η − 1 + K/2) − 1: variance 1 / (2(η − 1 + K/2) + 1).
        let (k, shape) = (4, 1.5);
        let lkj = LkjCholesky::new(k, shape).expect("valid");
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let n = 20_000;
        let mut sum_sq = 0.0;
        for _ in 0..n {
            let l: Vec<f64> = rand::distr::Distribution::sample(&lkj, &mut rng);
            assert!(lkj.log_prob(&l).is_finite());
            // r₀₃ = row 0 · row 3 = L₃₀.
            let r: f64 = (0..k).map(|j| l[j] * l[3 * k + j]).sum();
            sum_sq += r * r;
        }
        let expected = 1.0 / (2.0 * (shape - 1.0 + k as f64 / 2.0) + 1.0);
        let sd = expected * (2.0f64 / n as f64).sqrt() * 1.5;
        assert!(
            (sum_sq / n as f64 - expected).abs() < 4.0 * sd,
            "{} vs {expected}",
            sum_sq / n as f64
        );
    }

    #[test]
    fn not_a_factor_has_no_density_and_bad_shapes_are_errors() {
        let lkj = LkjCholesky::new(2, 1.0).expect("valid");
        assert_eq!(lkj.log_prob(&[1.0, 0.0, 0.6, 0.6]), f64::NEG_INFINITY);
        assert_eq!(lkj.log_prob(&[1.0, 0.1, 0.6, 0.8]), f64::NEG_INFINITY);
        assert!(LkjCholesky::new(1, 1.0).is_err());
        assert!(LkjCholesky::new(3, 0.0).is_err());
        assert!(LkjCholesky::new(3, f64::NAN).is_err());
    }
}
