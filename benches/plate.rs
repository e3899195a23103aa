//! Plates as kernel calls (issue 12, stage 5): the gradient of a logistic
//! regression's log joint, D = 10 coefficients, written as the example
//! writes it (`BernoulliLogit(self.linear_predictor(i, beta))`, a helper
//! method generic over the scalar), for N ∈ {10², 10³, 10⁴, 10⁵}
//! observations.
//!
//! - `loops`: the scalar loops (`ReferenceLogJoint`, the code the macro
//!   emitted before plates): one density and 2·D operations per element
//!   on the engine's scalar (N·(2D + k) tape nodes, or 16-lane duals);
//! - `plate`: `Model::log_joint`, the observed vector as one call of the
//!   plate driver: the predictor evaluated per element on `Dual<16>` seeded
//!   on β, the density by the `BernoulliLogit` kernel, one tape node;
//! - `recorded`: the same inside a `plate::with_plate_cache` scope, as
//!   `fit` runs it: the predictor, found affine in β at the first call, is
//!   replayed from its recorded coefficients and the gradient is their
//!   transposed product with the kernel's partials (the same bits).
//!
//! Each under `ForwardEngine<16>` (one thread; D = 10 is one pass) and
//! `TapeEngine`, plus the `f64` value alone. `plate_kidiq`: the same
//! comparison on posteriordb's kidiq, whose affine predictor takes the
//! plate path without dual numbers. Data: fixed seeded synthetic
//! data laid out as `../shared/peers/turn2/make_data.py` lays them out
//! (column 0 = 1, nine standard normal columns, y from a fixed β).
//!
//! ```sh
//! cargo bench -p iwhvi-benches --bench plate --no-run
//! taskset -c 1 target/release/deps/plate-* --bench
//! ```

use iwhvi_examples::regression::LogisticRegression;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use iwhvi::__private::ReferenceLogJoint;
use iwhvi::model::Model;
use iwhvi::tape::TapeEngine;
use iwhvi::{Differentiable, ForwardEngine, Parallelism, Scalar};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const D: usize = 10;
const SIZES: [usize; 4] = [100, 1_000, 10_000, 100_000];
const BETA_TRUE: [f64; D] = [-0.5, 1.2, -0.8, 0.4, 0.0, 0.3, -0.2, 0.6, -1.0, 0.1];

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let (u, v): (f64, f64) = (rng.random(), rng.random());
    (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn data(n: usize) -> LogisticRegression {
    let mut rng = StdRng::seed_from_u64(2024);
    let x = DMatrix::from_fn(n, D, |_, j| if j == 0 { 1.0 } else { normal(&mut rng) });
    let y = (0..n)
        .map(|i| {
            let eta: f64 = (0..D).map(|j| x[(i, j)] * BETA_TRUE[j]).sum();
            u64::from(rng.random::<f64>() < 1.0 / (1.0 + (-eta).exp()))
        })
        .collect();
    LogisticRegression::new(x, y).expect("valid data")
}

/// The log joint by the plates.
struct Plate<'a>(&'a LogisticRegression);

impl Differentiable for Plate<'_> {
    fn eval<T: Scalar>(&self, u: &[T]) -> T {
        self.0.log_joint(u)
    }
}

/// The log joint by the scalar loops.
struct Loops<'a>(&'a LogisticRegression);

impl Differentiable for Loops<'_> {
    fn eval<T: Scalar>(&self, u: &[T]) -> T {
        self.0.log_joint_reference(u)
    }
}

fn bench(c: &mut Criterion) {
    let forward = ForwardEngine::<16>::new().with_parallelism(Parallelism::SingleThread);
    let mut group = c.benchmark_group("plate_logistic");
    group.sample_size(10);
    group.warm_up_time(std::time::Duration::from_millis(500));
    group.measurement_time(std::time::Duration::from_secs(2));
    for n in SIZES {
        let model = data(n);
        let u: Vec<f64> = (0..D).map(|j| 0.1 * j as f64 - 0.4).collect();
        // Same value, same gradient (to 1e-12): the bench compares like with like.
        let (a, g) = TapeEngine.value_and_gradient(&Plate(&model), &u);
        let (b, h) = TapeEngine.value_and_gradient(&Loops(&model), &u);
        assert_eq!(a.to_bits(), b.to_bits());
        assert!(
            g.iter()
                .zip(&h)
                .all(|(x, y)| (x - y).abs() <= 1e-12 * x.abs().max(1.0))
        );
        for (path, plate, scoped) in [
            ("loops", false, false),
            ("plate", true, false),
            ("recorded", true, true),
        ] {
            let id = |what: &str| BenchmarkId::new(format!("{what}/{path}"), n);
            let mut timed = || {
                group.bench_function(id("value"), |bench| {
                    bench.iter(|| {
                        if plate {
                            black_box(model.log_joint(black_box(&u)))
                        } else {
                            black_box(model.log_joint_reference(black_box(&u)))
                        }
                    })
                });
                group.bench_function(id("forward16"), |bench| {
                    bench.iter(|| {
                        if plate {
                            black_box(forward.value_and_gradient(&Plate(&model), black_box(&u)))
                        } else {
                            black_box(forward.value_and_gradient(&Loops(&model), black_box(&u)))
                        }
                    })
                });
                group.bench_function(id("tape"), |bench| {
                    bench.iter(|| {
                        if plate {
                            black_box(TapeEngine.value_and_gradient(&Plate(&model), black_box(&u)))
                        } else {
                            black_box(TapeEngine.value_and_gradient(&Loops(&model), black_box(&u)))
                        }
                    })
                });
            };
            if scoped {
                iwhvi::plate::with_plate_cache(timed);
            } else {
                timed();
            }
        }
    }
    group.finish();
}

/// A model's log joint by the plates or by the scalar loops.
struct Path<'a, M>(&'a M, bool);

impl<M: Model + ReferenceLogJoint> Differentiable for Path<'_, M> {
    fn eval<T: Scalar>(&self, u: &[T]) -> T {
        if self.1 {
            self.0.log_joint(u)
        } else {
            self.0.log_joint_reference(u)
        }
    }
}

/// posteriordb's kidiq (N = 434), whose predictor
/// `beta[0] + beta[1] * mom_hs[n] + beta[2] * mom_iq[n]` is affine: the
/// plate takes the path without dual numbers.
fn bench_affine(c: &mut Criterion) {
    let forward = ForwardEngine::<16>::new().with_parallelism(Parallelism::SingleThread);
    let model = iwhvi_examples::posteriordb::KidIq::posteriordb();
    let u: Vec<f64> = (0..model.dim()).map(|j| 0.1 * j as f64 - 0.1).collect();
    let mut group = c.benchmark_group("plate_kidiq");
    group.sample_size(20);
    group.warm_up_time(std::time::Duration::from_millis(500));
    group.measurement_time(std::time::Duration::from_secs(2));
    for (path, plate) in [("loops", false), ("plate", true)] {
        let f = Path(&model, plate);
        group.bench_function(format!("forward16/{path}"), |bench| {
            bench.iter(|| black_box(forward.value_and_gradient(&f, black_box(&u))))
        });
        group.bench_function(format!("tape/{path}"), |bench| {
            bench.iter(|| black_box(TapeEngine.value_and_gradient(&f, black_box(&u))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench, bench_affine);
criterion_main!(benches);
