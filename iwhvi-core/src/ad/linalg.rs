//! Dense linear algebra on nalgebra matrices of any [`Scalar`].
//!
//! nalgebra stores duals like any other scalar, and its own products work
//! on them (`&a * &v`, `a.dot(&b)`, `a.transpose()`): [`Dual`](crate::Dual)
//! implements the `num_traits` identities those need. Its factorisations,
//! however, ask for `ComplexField`; the Cholesky factorisation and the
//! triangular solves that full-rank Gaussians need are written here, generic
//! over the scalar and over static or dynamic dimensions.
//!
//! ```
//! use iwhvi_core::linalg::{cholesky, solve_lower_triangular};
//! use iwhvi_core::Dual;
//! use nalgebra::{Matrix2, Vector2};
//!
//! // Σ = L Lᵀ, then L⁻¹ b, with derivatives in Σ₀₀.
//! let sigma = Matrix2::new(Dual::<1>::variable(4.0, 0), 2.0.into(), 2.0.into(), 5.0.into());
//! let l = cholesky(&sigma).unwrap();
//! assert_eq!(l[(0, 0)].value, 2.0);
//! assert_eq!(l[(0, 0)].tangent(), [0.25]); // d√Σ₀₀ / dΣ₀₀
//! let y = solve_lower_triangular(&l, &Vector2::new(2.0.into(), 4.0.into())).unwrap();
//! assert_eq!((y[0].value, y[1].value), (1.0, 1.5));
//! ```

use nalgebra::allocator::Allocator;
use nalgebra::{DefaultAllocator, Dim, OMatrix, OVector};

use crate::scalar::Scalar;

/// Why a factorisation or solve could not be done.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LinalgError {
    /// The matrix is not positive definite: the pivot of column `column`
    /// was `pivot` (zero, negative or NaN) where a positive one was needed.
    #[error(
        "matrix is not positive definite: Cholesky pivot {column} is {pivot} (it must be > 0); check that the matrix is symmetric positive definite and finite"
    )]
    NotPositiveDefinite {
        /// The column whose pivot failed.
        column: usize,
        /// The failed pivot `Aⱼⱼ - Σₖ Lⱼₖ²`.
        pivot: f64,
    },
    /// A triangular matrix has a zero (or NaN) on its diagonal.
    #[error("triangular matrix is singular: diagonal entry {index} is {value}")]
    Singular {
        /// The index of the offending diagonal entry.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// The operands' dimensions do not agree.
    #[error("dimension mismatch: the matrix has {matrix} rows but the vector has {vector} entries")]
    DimensionMismatch {
        /// Rows of the matrix.
        matrix: usize,
        /// Entries of the vector.
        vector: usize,
    },
}

/// The lower-triangular Cholesky factor `L` of a symmetric positive-definite
/// `A = L Lᵀ`, reading the lower triangle of `A` only.
///
/// `Lⱼⱼ = √(Aⱼⱼ - Σ_{k<j} Lⱼₖ²)`, `Lᵢⱼ = (Aᵢⱼ - Σ_{k<j} Lᵢₖ Lⱼₖ) / Lⱼⱼ`
/// (Cholesky–Banachiewicz, `n³/3` multiply-adds). Differentiable: on duals
/// the factor carries the derivative of `L` along each direction of `A`.
///
/// # Errors
/// [`LinalgError::NotPositiveDefinite`] naming the first failing column when
/// a pivot is not positive (or is NaN).
///
/// ```
/// use iwhvi_core::linalg::cholesky;
/// use nalgebra::Matrix2;
/// let l = cholesky(&Matrix2::new(4.0, 2.0, 2.0, 2.0)).unwrap();
/// assert_eq!(l, Matrix2::new(2.0, 0.0, 1.0, 1.0));
/// assert!(cholesky(&Matrix2::new(1.0, 2.0, 2.0, 1.0)).is_err());
/// ```
pub fn cholesky<T: Scalar, D: Dim>(a: &OMatrix<T, D, D>) -> Result<OMatrix<T, D, D>, LinalgError>
where
    DefaultAllocator: Allocator<D, D>,
{
    let (rows, cols) = a.shape_generic();
    let n = a.nrows();
    let mut l = OMatrix::<T, D, D>::zeros_generic(rows, cols);
    for j in 0..n {
        let mut pivot = a[(j, j)];
        for k in 0..j {
            pivot -= l[(j, k)].square();
        }
        if pivot.value().is_nan() || pivot.value() <= 0.0 {
            return Err(LinalgError::NotPositiveDefinite {
                column: j,
                pivot: pivot.value(),
            });
        }
        let diagonal = pivot.sqrt();
        l[(j, j)] = diagonal;
        for i in j + 1..n {
            let mut s = a[(i, j)];
            for k in 0..j {
                s -= l[(i, k)] * l[(j, k)];
            }
            l[(i, j)] = s / diagonal;
        }
    }
    Ok(l)
}

/// `ln det A = 2 Σⱼ ln Lⱼⱼ` from the Cholesky factor `L` of `A`.
///
/// ```
/// use iwhvi_core::linalg::{cholesky, log_det_from_cholesky};
/// use nalgebra::Matrix2;
/// let a = Matrix2::new(4.0, 2.0, 2.0, 2.0);
/// let l = cholesky(&a).unwrap();
/// assert!((log_det_from_cholesky(&l) - 4f64.ln()).abs() < 1e-15);
/// ```
pub fn log_det_from_cholesky<T: Scalar, D: Dim>(l: &OMatrix<T, D, D>) -> T
where
    DefaultAllocator: Allocator<D, D>,
{
    (0..l.nrows()).map(|j| l[(j, j)].ln()).sum::<T>() * 2.0
}

/// Checks that a square triangular system has a vector of matching length
/// and a diagonal without zeros.
fn check_triangular<T: Scalar, D: Dim>(
    t: &OMatrix<T, D, D>,
    b: &OVector<T, D>,
) -> Result<(), LinalgError>
where
    DefaultAllocator: Allocator<D, D> + Allocator<D>,
{
    if t.nrows() != b.nrows() {
        return Err(LinalgError::DimensionMismatch {
            matrix: t.nrows(),
            vector: b.nrows(),
        });
    }
    for j in 0..t.nrows() {
        let d = t[(j, j)].value();
        if d == 0.0 || d.is_nan() {
            return Err(LinalgError::Singular { index: j, value: d });
        }
    }
    Ok(())
}

/// `x = L⁻¹ b` for lower-triangular `L` (forward substitution, reading the
/// lower triangle only): `xᵢ = (bᵢ - Σ_{k<i} Lᵢₖ xₖ) / Lᵢᵢ`.
///
/// # Errors
/// [`LinalgError::DimensionMismatch`] or [`LinalgError::Singular`].
///
/// ```
/// use iwhvi_core::linalg::solve_lower_triangular;
/// use nalgebra::{Matrix2, Vector2};
/// let x = solve_lower_triangular(&Matrix2::new(2.0, 0.0, 1.0, 1.0), &Vector2::new(2.0, 3.0)).unwrap();
/// assert_eq!(x, Vector2::new(1.0, 2.0));
/// ```
pub fn solve_lower_triangular<T: Scalar, D: Dim>(
    l: &OMatrix<T, D, D>,
    b: &OVector<T, D>,
) -> Result<OVector<T, D>, LinalgError>
where
    DefaultAllocator: Allocator<D, D> + Allocator<D>,
{
    check_triangular(l, b)?;
    Ok(substitute(b, false, |i, k| l[(i, k)]))
}

/// Forward (`backward = false`) or back substitution with the triangular
/// matrix read through `entry(i, k)`: `xᵢ = (bᵢ − Σₖ entry(i, k) xₖ) / entry(i, i)`
/// over the already-solved `k`.
pub(crate) fn substitute<T: Scalar, D: Dim>(
    b: &OVector<T, D>,
    backward: bool,
    entry: impl Fn(usize, usize) -> T,
) -> OVector<T, D>
where
    DefaultAllocator: Allocator<D>,
{
    let n = b.nrows();
    let mut x = b.clone();
    for step in 0..n {
        let i = if backward { n - 1 - step } else { step };
        let solved = if backward { i + 1..n } else { 0..i };
        let mut s = x[i];
        for k in solved {
            s -= entry(i, k) * x[k];
        }
        x[i] = s / entry(i, i);
    }
    x
}

/// `x = U⁻¹ b` for upper-triangular `U` (back substitution, reading the
/// upper triangle only): `xᵢ = (bᵢ - Σ_{k>i} Uᵢₖ xₖ) / Uᵢᵢ`.
///
/// # Errors
/// [`LinalgError::DimensionMismatch`] or [`LinalgError::Singular`].
///
/// ```
/// use iwhvi_core::linalg::solve_upper_triangular;
/// use nalgebra::{Matrix2, Vector2};
/// let x = solve_upper_triangular(&Matrix2::new(2.0, 1.0, 0.0, 1.0), &Vector2::new(4.0, 2.0)).unwrap();
/// assert_eq!(x, Vector2::new(1.0, 2.0));
/// ```
pub fn solve_upper_triangular<T: Scalar, D: Dim>(
    u: &OMatrix<T, D, D>,
    b: &OVector<T, D>,
) -> Result<OVector<T, D>, LinalgError>
where
    DefaultAllocator: Allocator<D, D> + Allocator<D>,
{
    check_triangular(u, b)?;
    Ok(substitute(b, true, |i, k| u[(i, k)]))
}

/// `x = L⁻ᵀ b` for lower-triangular `L`, without forming `Lᵀ`: with
/// [`solve_lower_triangular`] this solves `A x = b` from `A`'s Cholesky
/// factor.
///
/// # Errors
/// [`LinalgError::DimensionMismatch`] or [`LinalgError::Singular`].
///
/// ```
/// use iwhvi_core::linalg::solve_lower_triangular_transpose;
/// use nalgebra::{Matrix2, Vector2};
/// let x = solve_lower_triangular_transpose(&Matrix2::new(2.0, 0.0, 1.0, 1.0), &Vector2::new(4.0, 2.0))
///     .unwrap();
/// assert_eq!(x, Vector2::new(1.0, 2.0));
/// ```
pub fn solve_lower_triangular_transpose<T: Scalar, D: Dim>(
    l: &OMatrix<T, D, D>,
    b: &OVector<T, D>,
) -> Result<OVector<T, D>, LinalgError>
where
    DefaultAllocator: Allocator<D, D> + Allocator<D>,
{
    check_triangular(l, b)?;
    Ok(substitute(b, true, |i, k| l[(k, i)]))
}

/// `x = A⁻¹ b` from the Cholesky factor `L` of `A = L Lᵀ`.
///
/// # Errors
/// [`LinalgError::DimensionMismatch`] or [`LinalgError::Singular`].
///
/// ```
/// use iwhvi_core::linalg::{cholesky, cholesky_solve};
/// use nalgebra::{Matrix2, Vector2};
/// let a = Matrix2::new(4.0, 2.0, 2.0, 2.0);
/// let x = cholesky_solve(&cholesky(&a).unwrap(), &Vector2::new(6.0, 4.0)).unwrap();
/// assert!((a * x - Vector2::new(6.0, 4.0)).norm() < 1e-14);
/// ```
pub fn cholesky_solve<T: Scalar, D: Dim>(
    l: &OMatrix<T, D, D>,
    b: &OVector<T, D>,
) -> Result<OVector<T, D>, LinalgError>
where
    DefaultAllocator: Allocator<D, D> + Allocator<D>,
{
    solve_lower_triangular_transpose(l, &solve_lower_triangular(l, b)?)
}
