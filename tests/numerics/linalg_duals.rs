//! Dual numbers inside nalgebra matrices: products, dot products, Cholesky
//! and triangular solves, differentiated through the gradient engine and
//! checked against central finite differences.

use crate::common::central_difference;
use iwhvi::linalg::{
    cholesky, cholesky_solve, log_det_from_cholesky, solve_lower_triangular,
    solve_lower_triangular_transpose, solve_upper_triangular,
};
use iwhvi::{Differentiable, ForwardEngine, LinalgError, Scalar};
use nalgebra::{DMatrix, DVector, SMatrix, SVector};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const N: usize = 4;

/// `A(θ) = B Bᵀ + I` with `B` the first `N²` parameters, `b` the next `N`:
/// f(θ) = bᵀ A⁻¹ b + ln det A + ‖U⁻¹ b‖² + bᵀ B b, using every operation.
struct GaussianQuadratic;

impl GaussianQuadratic {
    fn parts<T: Scalar>(theta: &[T]) -> (DMatrix<T>, DVector<T>) {
        let b_matrix = DMatrix::from_iterator(N, N, theta[..N * N].iter().copied());
        let b = DVector::from_iterator(N, theta[N * N..].iter().copied());
        (b_matrix, b)
    }
}

impl Differentiable for GaussianQuadratic {
    fn eval<T: Scalar>(&self, theta: &[T]) -> T {
        let (bm, b) = Self::parts(theta);
        let a = &bm * bm.transpose() + DMatrix::<T>::identity(N, N);
        let l = cholesky(&a).expect("B Bᵀ + I is positive definite");
        let quadratic = b.dot(&cholesky_solve(&l, &b).unwrap());
        let log_det = log_det_from_cholesky(&l);
        let upper = l.transpose();
        let back = solve_upper_triangular(&upper, &b).unwrap();
        let forward = solve_lower_triangular(&l, &b).unwrap();
        let transposed = solve_lower_triangular_transpose(&l, &forward).unwrap();
        let bilinear = b.dot(&(&bm * &b));
        quadratic + log_det + back.dot(&back) + transposed.sum() + bilinear
    }
}

/// The same on statically sized matrices.
struct StaticGaussianQuadratic;

impl Differentiable for StaticGaussianQuadratic {
    fn eval<T: Scalar>(&self, theta: &[T]) -> T {
        let bm = SMatrix::<T, N, N>::from_iterator(theta[..N * N].iter().copied());
        let b = SVector::<T, N>::from_iterator(theta[N * N..].iter().copied());
        let a = bm * bm.transpose() + SMatrix::<T, N, N>::identity();
        let l = cholesky(&a).unwrap();
        b.dot(&cholesky_solve(&l, &b).unwrap()) + log_det_from_cholesky(&l) + b.dot(&(bm * b))
    }
}

fn random_point(seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..N * N + N)
        .map(|_| rng.random_range(-1.5..1.5))
        .collect()
}

fn assert_matches_finite_differences<F: Differentiable>(f: &F, x: &[f64]) {
    let (value, grad) = ForwardEngine::<8>::new().value_and_gradient(f, x);
    assert_eq!(value, f.eval(x), "dual value differs from the f64 value");
    for (i, g) in grad.iter().enumerate() {
        let fd = central_difference(|y| f.eval(y), x, i);
        assert!(
            (g - fd).abs() <= 1e-7 * (1.0 + fd.abs()),
            "∂f/∂θ{i}: dual {g}, finite difference {fd}"
        );
    }
}

#[test]
fn dynamic_matrices_differentiate_correctly() {
    for seed in 0..20 {
        assert_matches_finite_differences(&GaussianQuadratic, &random_point(seed));
    }
}

#[test]
fn static_matrices_differentiate_correctly() {
    for seed in 0..20 {
        let x = random_point(seed);
        assert_matches_finite_differences(&StaticGaussianQuadratic, &x);
    }
}

#[test]
fn cholesky_reconstructs_the_matrix() {
    let x = random_point(7);
    let (bm, _) = GaussianQuadratic::parts(&x);
    let a = &bm * bm.transpose() + DMatrix::<f64>::identity(N, N);
    let l = cholesky(&a).unwrap();
    assert!((&l * l.transpose() - &a).norm() < 1e-13);
    for i in 0..N {
        for j in i + 1..N {
            assert_eq!(l[(i, j)], 0.0, "the factor is lower triangular");
        }
    }
}

#[test]
fn errors_name_the_culprit() {
    let indefinite = DMatrix::from_row_slice(3, 3, &[1.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 2.0, 1.0]);
    match cholesky(&indefinite) {
        Err(LinalgError::NotPositiveDefinite { column, pivot }) => {
            assert_eq!(column, 2);
            assert_eq!(pivot, -3.0);
        }
        other => panic!("expected NotPositiveDefinite, got {other:?}"),
    }
    let with_nan = DMatrix::from_row_slice(2, 2, &[f64::NAN, 0.0, 0.0, 1.0]);
    assert!(matches!(
        cholesky(&with_nan),
        Err(LinalgError::NotPositiveDefinite { column: 0, .. })
    ));

    let singular = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 3.0, 0.0]);
    let b = DVector::from_vec(vec![1.0, 1.0]);
    assert_eq!(
        solve_lower_triangular(&singular, &b),
        Err(LinalgError::Singular {
            index: 1,
            value: 0.0
        })
    );
    let short = DVector::from_vec(vec![1.0]);
    let message = solve_lower_triangular(&DMatrix::<f64>::identity(2, 2), &short)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("2 rows") && message.contains("1 entries"),
        "{message}"
    );
}
