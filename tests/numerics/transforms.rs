//! Constraint transforms: round trips, log-Jacobians against finite
//! difference Jacobians, and a Monte Carlo check that a density pushed
//! through each transform keeps its normalisation.

use iwhvi::distributions::{
    Dirichlet, Distribution, Gamma, MultivariateDistribution, Normal, Uniform,
};
use iwhvi::transforms::{Transform, TransformError, forward_elementwise, inverse_elementwise};
use iwhvi::{Dual, Scalar};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::f64::consts::PI;

const ELEMENTWISE: [Transform; 7] = [
    Transform::Identity,
    Transform::Exp,
    Transform::Softplus,
    Transform::LowerBound { low: 1.5 },
    Transform::UpperBound { high: -0.5 },
    Transform::Interval {
        low: -1.0,
        high: 3.0,
    },
    Transform::Affine {
        offset: -0.7,
        multiplier: 2.5,
    },
];

fn forward(t: Transform, u: &[f64]) -> (Vec<f64>, f64) {
    let mut z = vec![0.0; t.constrained_len(u.len()).unwrap()];
    let log_det = t.forward(u, &mut z);
    (z, log_det)
}

/// The entries of the constrained value that the Jacobian is taken onto.
fn free_coordinates(t: Transform, z: &[f64]) -> Vec<f64> {
    match t {
        Transform::StickBreaking => z[..z.len() - 1].to_vec(),
        Transform::CholeskyCorrelation => {
            let k = z.len().isqrt();
            (0..k)
                .flat_map(|i| (0..i).map(move |j| (i, j)))
                .map(|(i, j)| z[i * k + j])
                .collect()
        }
        _ => z.to_vec(),
    }
}

fn random_u(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-2.0..2.0)).collect()
}

fn cases() -> Vec<(Transform, usize)> {
    let mut cases: Vec<(Transform, usize)> = ELEMENTWISE.iter().map(|&t| (t, 3)).collect();
    cases.extend([
        (Transform::StickBreaking, 1),
        (Transform::StickBreaking, 4),
        (Transform::Ordered, 4),
        (Transform::PositiveOrdered, 4),
        (Transform::CholeskyCorrelation, 1),
        (Transform::CholeskyCorrelation, 6),
    ]);
    cases
}

#[test]
fn round_trips() {
    let mut rng = StdRng::seed_from_u64(1);
    for (t, n) in cases() {
        for _ in 0..50 {
            let u = random_u(&mut rng, n);
            let (z, _) = forward(t, &u);
            let mut back = vec![0.0; n];
            t.inverse(&z, &mut back)
                .unwrap_or_else(|e| panic!("{t:?}: {e}"));
            for (a, b) in u.iter().zip(&back) {
                assert!(
                    (a - b).abs() < 1e-10,
                    "{t:?}: u {u:?} came back as {back:?}"
                );
            }
            let (again, _) = forward(t, &back);
            for (a, b) in z.iter().zip(&again) {
                assert!((a - b).abs() < 1e-12, "{t:?}: z {z:?} vs {again:?}");
            }
        }
    }
}

#[test]
fn log_det_matches_finite_difference_jacobian() {
    let mut rng = StdRng::seed_from_u64(2);
    for (t, n) in cases() {
        for _ in 0..20 {
            let u = random_u(&mut rng, n);
            let (z, log_det) = forward(t, &u);
            let free = free_coordinates(t, &z);
            assert_eq!(free.len(), n, "{t:?}: free coordinates");
            let h = 1e-6;
            let jacobian = DMatrix::from_fn(n, n, |row, col| {
                let mut plus = u.clone();
                let mut minus = u.clone();
                plus[col] += h;
                minus[col] -= h;
                let zp = free_coordinates(t, &forward(t, &plus).0);
                let zm = free_coordinates(t, &forward(t, &minus).0);
                (zp[row] - zm[row]) / (2.0 * h)
            });
            let fd = jacobian.determinant().abs().ln();
            assert!(
                (fd - log_det).abs() < 1e-6 * (1.0 + fd.abs()),
                "{t:?} at {u:?}: log|det J| {log_det} vs {fd}"
            );
        }
    }
}

#[test]
fn forward_differentiates_on_duals() {
    // The dual forward agrees with the f64 forward, and its tangent along u₀
    // is the first column of the Jacobian.
    let mut rng = StdRng::seed_from_u64(3);
    for (t, n) in cases() {
        let u = random_u(&mut rng, n);
        let (z, log_det) = forward(t, &u);
        let duals: Vec<Dual<1>> = u
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if i == 0 {
                    Dual::variable(v, 0)
                } else {
                    Dual::constant(v)
                }
            })
            .collect();
        let mut zd = vec![Dual::<1>::constant(0.0); z.len()];
        let log_det_dual = t.forward(&duals, &mut zd);
        assert_eq!(log_det_dual.value, log_det);
        let h = 1e-6;
        let mut plus = u.clone();
        let mut minus = u.clone();
        plus[0] += h;
        minus[0] -= h;
        let (zp, ldp) = forward(t, &plus);
        let (zm, ldm) = forward(t, &minus);
        for i in 0..z.len() {
            assert_eq!(zd[i].value, z[i]);
            let fd = (zp[i] - zm[i]) / (2.0 * h);
            assert!(
                (zd[i].tangent()[0] - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                "{t:?}: ∂z{i}/∂u0"
            );
        }
        let fd = (ldp - ldm) / (2.0 * h);
        assert!(
            (log_det_dual.tangent()[0] - fd).abs() < 1e-6 * (1.0 + fd.abs()),
            "{t:?}: ∂log|J|/∂u0"
        );
    }
}

/// `∫ p(T(u)) |det J_T(u)| du` by importance sampling from a Cauchy(0, 2)
/// proposal per coordinate (heavier-tailed than every pushed density here,
/// so the weights have finite variance). Returns (estimate, standard error).
fn pushed_mass(
    t: Transform,
    n: usize,
    log_density: impl Fn(&[f64]) -> f64,
    seed: u64,
) -> (f64, f64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let draws = 200_000;
    let scale = 2.0;
    let weights: Vec<f64> = (0..draws)
        .map(|_| {
            let mut log_q = 0.0;
            let u: Vec<f64> = (0..n)
                .map(|_| {
                    let c: f64 = scale * (PI * (rng.random::<f64>() - 0.5)).tan();
                    log_q += -(PI * scale).ln() - (c / scale).powi(2).ln_1p();
                    c
                })
                .collect();
            let (z, log_det) = forward(t, &u);
            (log_density(&z) + log_det - log_q).exp()
        })
        .collect();
    let mean = weights.iter().sum::<f64>() / draws as f64;
    let var = weights.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / (draws as f64 - 1.0);
    (mean, (var / draws as f64).sqrt())
}

/// The product density `Π f(zᵢ)` as a log density.
fn sum_of<'a>(f: &'a dyn Fn(f64) -> f64) -> impl Fn(&[f64]) -> f64 + 'a {
    move |z: &[f64]| z.iter().map(|&x| f(x)).sum::<f64>()
}

fn assert_normalised(name: &str, (mass, se): (f64, f64)) {
    assert!(
        ((mass - 1.0) / se).abs() < 4.5 && se < 0.02,
        "{name}: pushed mass {mass} ± {se}"
    );
}

#[test]
fn pushed_densities_keep_their_normalisation() {
    let gamma = Gamma::new(2.0, 1.5).unwrap();
    let normal = Normal::new(0.5, 1.2).unwrap();
    assert_normalised(
        "Identity",
        pushed_mass(Transform::Identity, 2, sum_of(&|x| normal.log_prob(x)), 10),
    );
    assert_normalised(
        "Exp",
        pushed_mass(Transform::Exp, 2, sum_of(&|x| gamma.log_prob(x)), 11),
    );
    assert_normalised(
        "Softplus",
        pushed_mass(Transform::Softplus, 2, sum_of(&|x| gamma.log_prob(x)), 12),
    );
    assert_normalised(
        "LowerBound",
        pushed_mass(
            Transform::LowerBound { low: 1.5 },
            1,
            sum_of(&|x| gamma.log_prob(x - 1.5)),
            13,
        ),
    );
    assert_normalised(
        "UpperBound",
        pushed_mass(
            Transform::UpperBound { high: -0.5 },
            1,
            sum_of(&|x| gamma.log_prob(-0.5 - x)),
            14,
        ),
    );
    let uniform = Uniform::new(-1.0, 3.0).unwrap();
    assert_normalised(
        "Interval",
        pushed_mass(
            Transform::Interval {
                low: -1.0,
                high: 3.0,
            },
            2,
            sum_of(&|x| uniform.log_prob(x)),
            15,
        ),
    );
    let shifted = Normal::new(4.0, 3.0).unwrap();
    assert_normalised(
        "Affine",
        pushed_mass(
            Transform::Affine {
                offset: 4.0,
                multiplier: 3.0,
            },
            2,
            sum_of(&|x| shifted.log_prob(x)),
            20,
        ),
    );
    let dirichlet = Dirichlet::new(vec![2.0, 1.5, 3.0, 1.2]).unwrap();
    assert_normalised(
        "StickBreaking",
        pushed_mass(Transform::StickBreaking, 3, |z| dirichlet.log_prob(z), 16),
    );
    // Three iid normals sorted: density 3! Π φ(xᵢ) on increasing vectors.
    let std_normal = Normal::new(0.0, 1.0).unwrap();
    assert_normalised(
        "Ordered",
        pushed_mass(
            Transform::Ordered,
            3,
            |z| 6f64.ln() + z.iter().map(|&x| std_normal.log_prob(x)).sum::<f64>(),
            17,
        ),
    );
    // Three iid Exponential(1.5) sorted: 3! Π p(xᵢ) on positive increasing vectors.
    let exponential = iwhvi::distributions::Exponential::new(1.5).unwrap();
    assert_normalised(
        "PositiveOrdered",
        pushed_mass(
            Transform::PositiveOrdered,
            3,
            |z| 6f64.ln() + z.iter().map(|&x| exponential.log_prob(x)).sum::<f64>(),
            19,
        ),
    );
    // A uniform 3×3 correlation matrix has density 2/π² (their volume is
    // π²/2); on its Cholesky factor's free coordinates that is
    // (2/π²) Π_{k≥2} L_kk^{K-k} (1-based), here (2/π²) L₂₂.
    assert_normalised(
        "CholeskyCorrelation",
        pushed_mass(
            Transform::CholeskyCorrelation,
            3,
            |l| (2.0 / (PI * PI)).ln() + l[4].ln(),
            18,
        ),
    );
}

#[test]
fn inverse_errors_name_the_entry() {
    let mut u = [0.0; 2];
    let err = Transform::Exp.inverse(&[1.0, -2.0], &mut u).unwrap_err();
    assert_eq!(
        err,
        TransformError::OutsideSupport {
            transform: "Exp",
            index: 1,
            value: -2.0,
            requirement: "positive"
        }
    );
    assert!(err.to_string().contains("entry 1 is -2"));
    let mut u = [0.0; 2];
    assert!(matches!(
        Transform::StickBreaking.inverse(&[0.2, 0.2, 0.2], &mut u),
        Err(TransformError::OutsideSupport {
            requirement: "entries summing to 1",
            ..
        })
    ));
    let mut u = [0.0; 3];
    assert!(matches!(
        Transform::Ordered.inverse(&[0.0, 1.0, 1.0], &mut u),
        Err(TransformError::OutsideSupport { index: 2, .. })
    ));
    assert!(matches!(
        Transform::StickBreaking.inverse(&[0.5, 0.5], &mut [0.0; 2]),
        Err(TransformError::DimensionMismatch {
            constrained: 2,
            unconstrained: 2,
            ..
        })
    ));
    assert!(matches!(
        Transform::Interval {
            low: 0.0,
            high: 1.0
        }
        .inverse(&[1.0], &mut [0.0]),
        Err(TransformError::OutsideSupport { .. })
    ));
}

#[test]
fn dimension_changes() {
    assert_eq!(Transform::StickBreaking.unconstrained_len(0), None);
    assert_eq!(Transform::CholeskyCorrelation.constrained_len(2), None);
    assert_eq!(Transform::CholeskyCorrelation.constrained_len(6), Some(16));
    assert_eq!(Transform::Ordered.constrained_len(5), Some(5));
    assert!(Transform::Exp.is_elementwise() && !Transform::Ordered.is_elementwise());
    let (l, _) = forward(Transform::CholeskyCorrelation, &[0.3, -0.2, 0.9]);
    let l = DMatrix::from_row_slice(3, 3, &l);
    let c = &l * l.transpose();
    for i in 0..3 {
        assert!((c[(i, i)] - 1.0).abs() < 1e-14, "unit diagonal");
    }
    assert!(Scalar::is_finite(c[(1, 0)]));
}

/// Per-element transforms (a vector latent's bounds or offsets given per
/// element): the log-Jacobian against the finite-difference Jacobian, the
/// round trip, duals, and the inverse's errors.
#[test]
fn per_element_transforms() {
    let each: Vec<Transform> = ELEMENTWISE.to_vec();
    let n = each.len();
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..20 {
        let u = random_u(&mut rng, n);
        let mut z = vec![0.0; n];
        let log_det = forward_elementwise(&each, &u, &mut z);
        let h = 1e-6;
        let jacobian = DMatrix::from_fn(n, n, |row, col| {
            let (mut plus, mut minus) = (u.clone(), u.clone());
            plus[col] += h;
            minus[col] -= h;
            let (mut zp, mut zm) = (vec![0.0; n], vec![0.0; n]);
            forward_elementwise(&each, &plus, &mut zp);
            forward_elementwise(&each, &minus, &mut zm);
            (zp[row] - zm[row]) / (2.0 * h)
        });
        let fd = jacobian.determinant().abs().ln();
        assert!(
            (fd - log_det).abs() < 1e-6 * (1.0 + fd.abs()),
            "log|det J| {log_det} vs {fd}"
        );
        // Entry k is transform k's.
        for (k, t) in each.iter().enumerate() {
            assert_eq!(z[k], t.forward_scalar(u[k]).0);
        }
        let mut back = vec![0.0; n];
        inverse_elementwise(&each, &z, &mut back).unwrap();
        for (a, b) in u.iter().zip(&back) {
            assert!((a - b).abs() < 1e-10, "{u:?} came back as {back:?}");
        }
        let duals: Vec<Dual<1>> = u.iter().map(|&v| Dual::variable(v, 0)).collect();
        let mut zd = vec![Dual::<1>::constant(0.0); n];
        assert_eq!(forward_elementwise(&each, &duals, &mut zd).value, log_det);
    }
    let mut u = [0.0; 2];
    let bounds = [
        Transform::LowerBound { low: 0.0 },
        Transform::UpperBound { high: 1.0 },
    ];
    assert_eq!(
        inverse_elementwise(&bounds, &[0.5, 2.0], &mut u),
        Err(TransformError::OutsideSupport {
            transform: "UpperBound",
            index: 1,
            value: 2.0,
            requirement: "below the upper bound"
        })
    );
    assert!(matches!(
        inverse_elementwise(&bounds, &[0.5], &mut u),
        Err(TransformError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        inverse_elementwise(&[Transform::Ordered, Transform::Exp], &[0.5, 1.0], &mut u),
        Err(TransformError::DimensionMismatch { .. })
    ));
    assert_eq!(
        Transform::Affine {
            offset: 1.0,
            multiplier: 0.0
        }
        .inverse_scalar(1.0),
        None,
        "a zero multiplier has no inverse"
    );
}
