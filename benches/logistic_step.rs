//! Microseconds per training step of Bayesian logistic regression, D = 10,
//! N ∈ {10², 10³, 10⁴, 10⁵}: the workload of the NumPyro peer
//! (`peers/turn2/logreg_numpyro.py`: `beta_j ~ N(0, 2.5)`,
//! `y_i ~ Bernoulli(logits = x_i · beta)`, `AutoNormal` + `Trace_ELBO` with
//! one particle, Adam 0.01).
//!
//! One step is what NumPyro's `scan_us` column times per step (200 fused
//! `svi.update` calls, divided by 200): fresh noise, the bound and its
//! gradient (`objective::value_and_gradient_with`), and the Adam update.
//! The fit loop's bookkeeping (trace, smoothing) is left out on both sides.
//! Variants, on one thread:
//! - `mf_forward`, `mf_tape`: mean-field Gaussian, ELBO, on
//!   `Engine::Forward`'s engine (`ForwardEngine<16>`) and `Engine::Tape`'s;
//! - `si_forward`, `si_tape`: semi-implicit guide (10 mixing dimensions),
//!   DIWHVI with M = 1, K = 16;
//! - `si_fused`: the same on the fused objective, the model's gradient in
//!   forward mode (16 lanes, D = 10): what `fit` runs under the default
//!   `Engine::Auto`. For the mean-field guide `Engine::Auto` runs the
//!   generic path on 16 forward lanes for both gradients, which is
//!   `mf_forward`.
//!
//! The model is the `#[variational]` struct of
//! `examples/logistic_regression.rs`, with its `linear_predictor` helper.
//! Data: the first N rows of `benches/peers/turn2/data/{x_f64.bin,y_u8.bin}`
//! written by `make_data.py` (NumPy's generator, seed 2024; the peer reads
//! the same files) when present, else the same design generated here with
//! `StdRng` seed 2024 (same distribution, other draws); the bench prints
//! which.
//!
//! ```sh
//! benches/peers/setup.sh          # once: the venv and the data files
//! cargo bench --no-run --bench logistic_step
//! taskset -c 1 target/release/deps/logistic_step-HASH --bench 'logistic_step/.*/10000'
//! ```

use iwhvi_examples::regression::LogisticRegression;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use iwhvi::distributions::BernoulliLogit;
use iwhvi::gradient::{ForwardEngine, GradientEngine, Parallelism};
use iwhvi::guide::{HierarchicalGuide, MeanField, SemiImplicit};
use iwhvi::objective::fused::FusedDiwhvi;
use iwhvi::objective::{self, Diwhvi, GradientEstimator, StepNoise};
use iwhvi::optim::{Adam, Optimizer};
use iwhvi::tape::TapeEngine;
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Predictors, intercept included.
const D: usize = 10;
/// The sizes timed.
const SIZES: [usize; 4] = [100, 1_000, 10_000, 100_000];
/// `make_data.py`'s coefficients.
const BETA_TRUE: [f64; D] = [-0.5, 1.2, -0.8, 0.4, 0.0, 0.3, -0.2, 0.6, -1.0, 0.1];

/// The first `n` rows of the peers' data files, if present.
fn read_peer_data(n: usize) -> Option<(DMatrix<f64>, Vec<u64>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/turn2/data");
    let x_bytes = std::fs::read(dir.join("x_f64.bin")).ok()?;
    let y_bytes = std::fs::read(dir.join("y_u8.bin")).ok()?;
    if x_bytes.len() < n * D * 8 || y_bytes.len() < n {
        return None;
    }
    // Row-major little-endian f64.
    let x = DMatrix::from_fn(n, D, |i, j| {
        let at = (i * D + j) * 8;
        f64::from_le_bytes(x_bytes[at..at + 8].try_into().expect("8 bytes"))
    });
    let y = y_bytes[..n].iter().map(|&b| u64::from(b)).collect();
    Some((x, y))
}

/// `make_data.py`'s design drawn with `StdRng` (seed 2024): column 0 = 1,
/// the others standard normal, y ~ Bernoulli(σ(x · BETA_TRUE)).
fn generate(n: usize) -> (DMatrix<f64>, Vec<u64>) {
    let mut rng = StdRng::seed_from_u64(2024);
    let x = DMatrix::from_fn(n, D, |_, j| {
        if j == 0 {
            1.0
        } else {
            rng.sample(rand_distr::StandardNormal)
        }
    });
    let y = (0..n)
        .map(|i| {
            let eta: f64 = (0..D).map(|j| x[(i, j)] * BETA_TRUE[j]).sum();
            rng.sample(BernoulliLogit::new(eta).expect("a finite logit"))
        })
        .collect();
    (x, y)
}

/// One timed step of `guide` on `objective` with `engine`.
#[allow(clippy::too_many_arguments)]
fn bench_step<G: HierarchicalGuide, E: GradientEngine>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    label: &str,
    n: usize,
    model: &LogisticRegression,
    guide: &G,
    diwhvi: Diwhvi,
    engine: &E,
) {
    let mut rng = StdRng::seed_from_u64(1);
    let mut params = guide.init_params(&mut rng);
    let mut gradient = vec![0.0; params.len()];
    let mut noise = StepNoise::new(guide, diwhvi);
    let mut adam = Adam::new(0.01);
    group.bench_function(BenchmarkId::new(label, n), |b| {
        b.iter(|| {
            noise.redraw(&mut rng);
            let bound = objective::value_and_gradient_with(
                model,
                guide,
                &params,
                &noise,
                engine,
                GradientEstimator::Reparameterized,
                &mut gradient,
            )
            .expect("the plain estimator serves every guide");
            adam.step(&mut params, &gradient);
            black_box(bound)
        })
    });
}

/// Every step in one [`with_plate_cache`](iwhvi::plate::with_plate_cache)
/// scope, as `fit` runs them: the model's plate is affine in `beta`, so its
/// derivatives are recorded at the first step and reused after.
fn bench(c: &mut Criterion) {
    iwhvi::plate::with_plate_cache(|| bench_in_scope(c));
}

fn bench_in_scope(c: &mut Criterion) {
    let mut group = c.benchmark_group("logistic_step");
    let forward = ForwardEngine::<16>::new().with_parallelism(Parallelism::SingleThread);
    let (mean_field, semi_implicit) = (MeanField::new(D), SemiImplicit::new(D, D));
    let si = Diwhvi::new(1, 16);
    for n in SIZES {
        let (x, y) = match read_peer_data(n) {
            Some(data) => {
                eprintln!("logistic_step: N = {n}, the peers' data (make_data.py)");
                data
            }
            None => {
                eprintln!("logistic_step: N = {n}, generated here (StdRng seed 2024)");
                generate(n)
            }
        };
        let model = LogisticRegression::new(x, y).expect("the data are valid");
        group.sample_size(if n >= 10_000 { 10 } else { 30 });
        group.measurement_time(Duration::from_secs(if n >= 100_000 { 8 } else { 3 }));
        let elbo = Diwhvi::elbo();
        bench_step(
            &mut group,
            "mf_forward",
            n,
            &model,
            &mean_field,
            elbo,
            &forward,
        );
        bench_step(
            &mut group,
            "mf_tape",
            n,
            &model,
            &mean_field,
            elbo,
            &TapeEngine,
        );
        bench_step(
            &mut group,
            "si_forward",
            n,
            &model,
            &semi_implicit,
            si,
            &forward,
        );
        bench_step(
            &mut group,
            "si_tape",
            n,
            &model,
            &semi_implicit,
            si,
            &TapeEngine,
        );
        bench_fused(&mut group, n, &model, &semi_implicit, si);
    }
    group.finish();
}

/// One timed step of the semi-implicit guide on the fused objective.
fn bench_fused(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    n: usize,
    model: &LogisticRegression,
    guide: &SemiImplicit,
    diwhvi: Diwhvi,
) {
    let engine = ForwardEngine::<16>::new().with_parallelism(Parallelism::SingleThread);
    let mut fused = FusedDiwhvi::new(guide).with_parallelism(Parallelism::SingleThread);
    let mut rng = StdRng::seed_from_u64(1);
    let mut params = guide.init_params(&mut rng);
    let mut gradient = vec![0.0; params.len()];
    let mut noise = StepNoise::new(guide, diwhvi);
    let mut adam = Adam::new(0.01);
    group.bench_function(BenchmarkId::new("si_fused", n), |b| {
        b.iter(|| {
            noise.redraw(&mut rng);
            let bound = fused.value_and_gradient(model, &params, &noise, &engine, &mut gradient);
            adam.step(&mut params, &gradient);
            black_box(bound)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
