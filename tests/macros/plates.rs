//! Plates as kernel calls: for every example and posteriordb model, and a
//! generated model per family with a kernel, `Model::log_joint` (each
//! observed vector one call of the plate driver, one tape node) against
//! the scalar loops it replaces (`ReferenceLogJoint`, kept by the macro):
//! the value to 1e-12 relative (the hand-written kernels sum in four lanes
//! with vectorised `exp`/`ln`, so not bit for bit), the plate's own value
//! the same bits on every engine and on `f64` (what `ChainedModel` relies
//! on), and the gradient under the forward and tape engines to 1e-12
//! relative.

// Every family model carries the counts `n`; only the binomials read them.
#![allow(dead_code)]

use iwhvi::__private::ReferenceLogJoint;
use iwhvi::model::Model;
use iwhvi::tape::TapeEngine;
use iwhvi::{Differentiable, ForwardEngine, Parallelism, Scalar, variational};
use iwhvi_examples::regression::{LinearRegression, LogisticRegression, PoissonRegression};
use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use iwhvi_examples::posteriordb as pdb;

/// The log joint, by the plates.
struct Joint<'a, M>(&'a M);

impl<M: Model> Differentiable for Joint<'_, M> {
    fn eval<T: Scalar>(&self, u: &[T]) -> T {
        self.0.log_joint(u)
    }
}

/// The log joint, by the scalar loops.
struct Loops<'a, M>(&'a M);

impl<M: Model + ReferenceLogJoint> Differentiable for Loops<'_, M> {
    fn eval<T: Scalar>(&self, u: &[T]) -> T {
        self.0.log_joint_reference(u)
    }
}

/// A value and its gradient.
type Gradient = (f64, Vec<f64>);

fn same_bits(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Equal to 1e-12 relative to the larger magnitude and 1 (infinities and
/// NaNs equal only to themselves).
fn close(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

/// Values and gradients to 1e-12 relative (to the larger of the two
/// and 1), and the plate's value the same bits on every engine, at four
/// random unconstrained points in `[-spread, spread]`.
fn check_plates<M: Model + ReferenceLogJoint>(model: &M, seed: u64, spread: f64) {
    check_recorded(model, seed, spread);
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..4 {
        let u: Vec<f64> = (0..model.dim())
            .map(|_| rng.random_range(-spread..spread))
            .collect();
        let (value, reference) = (model.log_joint(&u), model.log_joint_reference(&u));
        assert!(
            close(value, reference),
            "value {value} vs the loops' {reference} at {u:?}"
        );
        let runs: [(&str, Gradient, Gradient); 3] = [
            (
                "tape",
                TapeEngine.value_and_gradient(&Joint(model), &u),
                TapeEngine.value_and_gradient(&Loops(model), &u),
            ),
            (
                "forward<16>",
                ForwardEngine::<16>::new().value_and_gradient(&Joint(model), &u),
                ForwardEngine::<16>::new().value_and_gradient(&Loops(model), &u),
            ),
            (
                "forward<4>, one thread",
                ForwardEngine::<4>::new()
                    .with_parallelism(Parallelism::SingleThread)
                    .value_and_gradient(&Joint(model), &u),
                ForwardEngine::<4>::new()
                    .with_parallelism(Parallelism::SingleThread)
                    .value_and_gradient(&Loops(model), &u),
            ),
        ];
        for (engine, (v, g), (w, h)) in runs {
            assert!(same_bits(v, value), "{engine}: value {v} vs f64 {value}");
            assert!(
                same_bits(w, reference),
                "{engine}: loops' value {w} vs {reference}"
            );
            assert_eq!(g.len(), h.len());
            for (k, (a, b)) in g.iter().zip(&h).enumerate() {
                assert!(
                    close(*a, *b),
                    "{engine}: ∂/∂u[{k}] {a} vs the loops' {b} at {u:?}"
                );
            }
        }
    }
}

/// In a plate-cache scope (what `fit` runs in), plates whose arguments are
/// affine in the latents record their derivatives at the first point and
/// reuse them at the others: every value and partial is the same bits as
/// outside the scope, on the tape and on forward lanes (passes on one
/// thread and spread over the pool).
fn check_recorded<M: Model>(model: &M, seed: u64, spread: f64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let points: Vec<Vec<f64>> = (0..3)
        .map(|_| {
            (0..model.dim())
                .map(|_| rng.random_range(-spread..spread))
                .collect()
        })
        .collect();
    let gradients = || -> Vec<Gradient> {
        points
            .iter()
            .flat_map(|u| {
                [
                    TapeEngine.value_and_gradient(&Joint(model), u),
                    ForwardEngine::<16>::new().value_and_gradient(&Joint(model), u),
                    ForwardEngine::<4>::new()
                        .with_parallelism(Parallelism::SingleThread)
                        .value_and_gradient(&Joint(model), u),
                    ForwardEngine::<2>::new()
                        .with_parallelism(Parallelism::AllCores)
                        .value_and_gradient(&Joint(model), u),
                ]
            })
            .collect()
    };
    let outside = gradients();
    let inside = iwhvi::plate::with_plate_cache(gradients);
    for (k, ((v, g), (w, h))) in outside.iter().zip(&inside).enumerate() {
        assert!(same_bits(*v, *w), "run {k}: value {v} vs {w} in the scope");
        for (j, (a, b)) in g.iter().zip(h).enumerate() {
            assert!(
                same_bits(*a, *b),
                "run {k}: ∂/∂u[{j}] {a} vs {b} in the scope"
            );
        }
    }
}

#[test]
fn eight_schools_fixtures() {
    use iwhvi_examples::hand_written::{SIGMA, Y};
    let non = iwhvi_examples::noncentred::EightSchools::new(SIGMA.to_vec(), Y.to_vec()).unwrap();
    check_plates(&non, 1, 2.0);
    let centred = iwhvi_examples::centred::Centred::new(SIGMA.to_vec(), Y.to_vec()).unwrap();
    check_plates(&centred, 2, 2.0);
}

#[test]
fn posteriordb_models() {
    check_plates(&pdb::EightSchoolsCentered::posteriordb(), 3, 2.0);
    check_plates(&pdb::EightSchoolsNoncentered::posteriordb(), 4, 2.0);
    check_plates(&pdb::KidIq::posteriordb(), 5, 2.0);
    check_plates(&pdb::Kilpisjarvi::posteriordb(), 6, 2.0);
    check_plates(&pdb::ArK::posteriordb(), 7, 1.0);
    check_plates(&pdb::GpPoisRegr::posteriordb(), 8, 1.0);
    check_plates(&pdb::HmmExample::posteriordb(), 9, 1.0);
    check_plates(&pdb::LowDimGaussMix::posteriordb(), 10, 1.0);
    check_plates(&pdb::Sblrc::posteriordb(), 11, 1.0);
    check_plates(&pdb::Garch11::posteriordb(), 12, 1.0);
}

/// A deterministic design: `n` rows, an intercept and `d − 1` columns.
fn design(n: usize, d: usize, seed: u64) -> DMatrix<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    DMatrix::from_fn(n, d, |_, j| {
        if j == 0 {
            1.0
        } else {
            rng.random_range(-2.0..2.0)
        }
    })
}

#[test]
fn regression_examples() {
    // Over a block boundary, with 4 and with 20 coefficients (two passes).
    for (n, d) in [(300, 4), (70, 20)] {
        let x = design(n, d, 1);
        let ones: Vec<u64> = (0..n).map(|i| u64::from(i % 3 == 0)).collect();
        let counts: Vec<u64> = (0..n).map(|i| (i % 7) as u64).collect();
        let y = DVector::from_fn(n, |i, _| (i % 11) as f64 * 0.3 - 1.5);
        let exposure: Vec<f64> = (0..n).map(|i| 0.5 + (i % 5) as f64 * 0.5).collect();
        check_plates(&LogisticRegression::new(x.clone(), ones).unwrap(), 20, 0.5);
        check_plates(
            &LinearRegression::new(x.clone(), 1.0, 2.0, y).unwrap(),
            21,
            0.5,
        );
        check_plates(
            &PoissonRegression::new(x, exposure, counts).unwrap(),
            22,
            0.3,
        );
    }
}

/// Radon: a gather `a[county[i]]`, and a parenthesised method receiver.
#[variational]
struct Radon {
    #[data]
    x: Vec<f64>,
    #[data]
    county: Vec<usize>,
    #[data]
    counties: usize,
    #[latent(Normal(0.0, 10.0))]
    mu_a: f64,
    #[latent(HalfNormal(5.0))]
    sigma_a: f64,
    #[latent(Normal(mu_a, sigma_a), len = counties)]
    a: Vec<f64>,
    #[latent(Normal(0.0, 10.0))]
    b: f64,
    #[latent(Exponential(1.0))]
    sigma_y: f64,
    #[observe(Normal(a[county[i]] + b * x[i], (sigma_y / 2.0).exp()), for i)]
    y: Vec<f64>,
}

/// Radon as the lint test writes it: every argument affine (a gather, a
/// data coefficient, a scalar), so the plate needs no dual numbers.
#[variational]
struct RadonAffine {
    #[data]
    x: Vec<f64>,
    #[data]
    county: Vec<usize>,
    #[data]
    counties: usize,
    #[latent(Normal(0.0, 10.0))]
    mu_a: f64,
    #[latent(HalfNormal(5.0))]
    sigma_a: f64,
    #[latent(Normal(mu_a, sigma_a), len = counties)]
    a: Vec<f64>,
    #[latent(Normal(0.0, 10.0))]
    b: f64,
    #[latent(Exponential(1.0))]
    sigma_y: f64,
    #[observe(Normal(a[county[i]] + b * x[i] / 2.0 - (-(b - 1.5 * mu_a)), sigma_y), for i)]
    y: Vec<f64>,
}

/// Arguments that do not depend on the index, a data-only scalar
/// observation beside a plate, booleans, arrays.
#[variational]
struct Mixed {
    #[data]
    exposure: f64,
    #[data]
    x: [f64; 5],
    #[latent(Normal(0.0, 1.0), len = 2)]
    beta: Vec<f64>,
    #[latent(Beta(2.0, 2.0))]
    p: f64,
    #[latent(Uniform(0.0, 3.0))]
    dispersion: f64,
    #[observe(PoissonLog(beta[0] + beta[1] * x[i] + exposure.ln()), for i)]
    counts: [u64; 5],
    #[observe(Bernoulli(p), for j)]
    flips: Vec<bool>,
    #[observe(Normal(beta[0], 1.0), for k)]
    same: Vec<f64>,
    #[observe(Gamma(dispersion, 1.0))]
    scalar: f64,
    #[observe(Normal(1.0, 2.0), for m)]
    data_only: Vec<f64>,
}

#[test]
fn gathers_broadcasts_booleans_and_arrays() {
    let n = 40;
    let county: Vec<usize> = (0..n).map(|i| (i * 7) % 9).collect();
    let x: Vec<f64> = (0..n).map(|i| (i % 4) as f64 * 0.5).collect();
    let y: Vec<f64> = (0..n).map(|i| (i % 6) as f64 * 0.4 - 1.0).collect();
    check_plates(
        &Radon::new(x.clone(), county.clone(), 9, y.clone()).unwrap(),
        30,
        1.0,
    );
    check_plates(&RadonAffine::new(x, county, 9, y).unwrap(), 32, 1.0);
    let mixed = Mixed::new(
        2.0,
        [0.1, -0.4, 1.2, 0.0, 2.0],
        [0, 3, 1, 0, 7],
        vec![true, false, true, true],
        vec![0.2, -0.3, 1.4],
        1.5,
        vec![0.0, 1.0],
    );
    check_plates(&mixed.unwrap(), 31, 1.0);
}

/// One model per family with a kernel: latents `a` (real), `b` (positive)
/// and `c` (a vector, one element per observation: 42 operands, three
/// passes of 16 lanes), over data `x` (and counts `n`).
fn data(len: usize) -> (Vec<f64>, Vec<u64>) {
    let x = (0..len)
        .map(|i| ((i * 17) % 13) as f64 / 6.5 - 1.0)
        .collect();
    let n = (0..len).map(|i| 3 + (i % 4) as u64).collect();
    (x, n)
}

/// In (0, 1): inside every continuous family's support.
fn unit(i: usize) -> f64 {
    0.05 + ((i * 7) % 19) as f64 / 20.0
}

#[variational]
struct FNormal {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(Normal(a + c[i] * x[i], b), for i)]
    y: Vec<f64>,
}

#[test]
fn normal() {
    let (x, n) = data(40);
    let obs: fn(usize) -> f64 = unit;
    let model = FNormal::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FLogNormal {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(LogNormal(a + x[i], b), for i)]
    y: Vec<f64>,
}

#[test]
fn log_normal() {
    let (x, n) = data(40);
    let obs: fn(usize) -> f64 = unit;
    let model = FLogNormal::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FHalfNormal {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(HalfNormal(b * c[i].exp()), for i)]
    y: Vec<f64>,
}

#[test]
fn half_normal() {
    let (x, n) = data(40);
    let obs: fn(usize) -> f64 = unit;
    let model = FHalfNormal::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FCauchy {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(Cauchy(a + b * x[i], b), for i)]
    y: Vec<f64>,
}

#[test]
fn cauchy() {
    let (x, n) = data(40);
    let obs: fn(usize) -> f64 = unit;
    let model = FCauchy::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FHalfCauchy {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(HalfCauchy(b + c[i].exp()), for i)]
    y: Vec<f64>,
}

#[test]
fn half_cauchy() {
    let (x, n) = data(40);
    let obs: fn(usize) -> f64 = unit;
    let model = FHalfCauchy::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FStudentT {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(StudentT(b + 2.0, a + c[i], b), for i)]
    y: Vec<f64>,
}

#[test]
fn student_t() {
    let (x, n) = data(40);
    let obs: fn(usize) -> f64 = unit;
    let model = FStudentT::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FLaplace {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(Laplace(a * x[i], b), for i)]
    y: Vec<f64>,
}

#[test]
fn laplace() {
    let (x, n) = data(40);
    let obs: fn(usize) -> f64 = unit;
    let model = FLaplace::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FLogistic {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(Logistic(a, b + c[i].exp()), for i)]
    y: Vec<f64>,
}

#[test]
fn logistic() {
    let (x, n) = data(40);
    let obs: fn(usize) -> f64 = unit;
    let model = FLogistic::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FExponential {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(Exponential(b * (c[i] + x[i]).exp()), for i)]
    y: Vec<f64>,
}

#[test]
fn exponential() {
    let (x, n) = data(40);
    let obs: fn(usize) -> f64 = unit;
    let model = FExponential::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FGamma {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(Gamma(b, (a + c[i]).exp()), for i)]
    y: Vec<f64>,
}

#[test]
fn gamma() {
    let (x, n) = data(40);
    let obs: fn(usize) -> f64 = unit;
    let model = FGamma::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FInverseGamma {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(InverseGamma(b + 1.0, (a * x[i]).exp()), for i)]
    y: Vec<f64>,
}

#[test]
fn inverse_gamma() {
    let (x, n) = data(40);
    let obs: fn(usize) -> f64 = unit;
    let model = FInverseGamma::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FBeta {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(Beta(b, (a + c[i]).exp()), for i)]
    y: Vec<f64>,
}

#[test]
fn beta() {
    let (x, n) = data(40);
    let obs: fn(usize) -> f64 = unit;
    let model = FBeta::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FUniform {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(Uniform(a - 2.0 + c[i], b + 1.0), for i)]
    y: Vec<f64>,
}

#[test]
fn uniform() {
    let (x, n) = data(40);
    let obs: fn(usize) -> f64 = unit;
    let model = FUniform::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FWeibull {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(Weibull(b, (a + c[i]).exp()), for i)]
    y: Vec<f64>,
}

#[test]
fn weibull() {
    let (x, n) = data(40);
    let obs: fn(usize) -> f64 = unit;
    let model = FWeibull::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FBernoulli {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(Bernoulli((a + c[i] * x[i]).sigmoid()), for i)]
    y: Vec<u64>,
}

#[test]
fn bernoulli() {
    let (x, n) = data(40);
    let obs: fn(usize) -> u64 = |i| (i % 3 == 0) as u64;
    let model = FBernoulli::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FBernoulliLogit {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(BernoulliLogit(a + b * x[i] + c[i]), for i)]
    y: Vec<bool>,
}

#[test]
fn bernoulli_logit() {
    let (x, n) = data(40);
    let obs: fn(usize) -> bool = |i| i % 3 == 1;
    let model = FBernoulliLogit::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FBinomial {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(Binomial(n[i], (a + c[i]).sigmoid()), for i)]
    y: Vec<u64>,
}

#[test]
fn binomial() {
    let (x, n) = data(40);
    let obs: fn(usize) -> u64 = |i| (i % 4) as u64;
    let model = FBinomial::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FBinomialLogit {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(BinomialLogit(n[i], a + b * x[i]), for i)]
    y: Vec<u64>,
}

#[test]
fn binomial_logit() {
    let (x, n) = data(40);
    let obs: fn(usize) -> u64 = |i| (i % 3) as u64;
    let model = FBinomialLogit::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FPoisson {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(Poisson(b * c[i].exp()), for i)]
    y: Vec<u64>,
}

#[test]
fn poisson() {
    let (x, n) = data(40);
    let obs: fn(usize) -> u64 = |i| (i % 5) as u64;
    let model = FPoisson::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FPoissonLog {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(PoissonLog(a + c[i] + x[i]), for i)]
    y: Vec<i64>,
}

#[test]
fn poisson_log() {
    let (x, n) = data(40);
    let obs: fn(usize) -> i64 = |i| (i % 6) as i64;
    let model = FPoissonLog::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[variational]
struct FNegativeBinomial2 {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(NegativeBinomial2((a + c[i]).exp(), b), for i)]
    y: Vec<u64>,
}

#[test]
fn negative_binomial_2() {
    let (x, n) = data(40);
    let obs: fn(usize) -> u64 = |i| (i % 7) as u64;
    let model = FNegativeBinomial2::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 40, 1.0);
}

#[test]
fn plates_are_emitted_where_a_kernel_applies() {
    // The hidden evaluators exist (this compiles) and compute the arguments:
    // element 1 of the radon plate, loc = a[county[1]] + b·x[1], scale = e^(σ/2).
    let radon = Radon::new(vec![0.0, 2.0], vec![0, 1], 2, vec![0.1, 0.2]).unwrap();
    let (a, b, sigma) = ([0.5, -1.0], [3.0], [0.4]);
    let mut out = [0.0; 2];
    radon.__plate_args_y::<f64>(1, &[&a, &b, &sigma], &mut out);
    assert_eq!(out, [-1.0 + 3.0 * 2.0, 0.2f64.exp()]);
    assert_eq!(radon.__plate_obs_y(1), 0.2);
    // An affine plate's derivative terms: Normal(a + c[i]·x[i], b), operands
    // a, b, c at offsets 0, 1, 2: (argument, operand, ∂arg/∂operand).
    let (x, n) = data(4);
    let model = FNormal::new(x.clone(), n, vec![0.5; 4]).unwrap();
    let mut terms = Vec::new();
    model.__plate_linear_y(3, &[0, 1, 2], &mut terms);
    assert_eq!(terms, [(0, 0, 1.0), (0, 2 + 3, 1.0 * x[3]), (1, 1, 1.0)]);
}

/// A free function generic over the scalar.
fn softened<T: Scalar>(x: T, floor: T) -> T {
    (x.square() + floor * floor).sqrt()
}

/// `if`/`else` on data and on latents, a block with `let` and a free
/// function call inside a plate's arguments.
#[variational]
struct FExpressions {
    #[data]
    x: Vec<f64>,
    #[data]
    n: Vec<u64>,
    #[latent(Normal(0.0, 1.0))]
    a: f64,
    #[latent(LogNormal(0.0, 0.5))]
    b: f64,
    #[latent(Normal(0.0, 0.3), len = x.len())]
    c: Vec<f64>,
    #[observe(Normal(if n[i] > 4 { a } else { { let t = c[i] * x[i]; a + t } }, if b > 1.0 { softened(b, 0.5) } else { b }), for i)]
    y: Vec<f64>,
}

#[test]
fn if_else_blocks_and_free_functions() {
    let (x, n) = data(40);
    let obs: fn(usize) -> f64 = unit;
    let model = FExpressions::new(x, n, (0..40).map(obs).collect()).expect("valid data");
    check_plates(&model, 41, 1.0);
}

/// Plates that read `#[transformed]` values (Stan's transformed
/// parameters) take them as operands: an affine predictor (`theta[j]`,
/// recognised and recorded) and a bilinear one (`shifted[j] * theta[j]`,
/// dual lanes), each chained into the latents through the transformed
/// value's own derivatives.
#[test]
fn plates_reading_transformed_values() {
    check_plates(&super::transformed::transformed_schools(), 13, 1.5);
}

/// A plate whose predictor calls a closure (`(|t| t * t)(nu) + mu * x[i]`):
/// not affine, so dual lanes, the same value and gradient as the loops.
#[test]
fn plates_calling_closures() {
    check_plates(&super::closures::closures(), 14, 1.5);
}
