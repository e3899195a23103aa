//! Microseconds per DIWHVI training step on eight schools, the same work as
//! the JAX peer's `us/step scan` column (`../shared/peers/RESULTS.md`):
//! the affine semi-implicit guide with d = 10 (240 parameters), Adam at
//! lr 0.01, one step = fresh noise + bound + gradient + Adam update.
//!
//! ```sh
//! cargo bench --bench diwhvi_step
//! ```

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use iwhvi::gradient::{ForwardEngine, GradientEngine, Parallelism};
use iwhvi::guide::{HierarchicalGuide, SemiImplicit};
use iwhvi::objective::fused::FusedDiwhvi;
use iwhvi::objective::{self, Diwhvi, StepNoise};
use iwhvi::optim::{Adam, Optimizer};
use iwhvi::tape::TapeEngine;
use rand::SeedableRng;
use rand::rngs::StdRng;

use iwhvi_examples::hand_written::EightSchools;

pub const SETTINGS: [(usize, usize); 6] = [(1, 0), (1, 8), (1, 64), (8, 0), (8, 8), (8, 64)];

/// One timed training step on `engine`.
fn bench_engine<E: GradientEngine>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    label: &str,
    (m, k): (usize, usize),
    engine: &E,
) {
    let guide = SemiImplicit::new(10, 10);
    let mut rng = StdRng::seed_from_u64(1);
    let mut params = guide.init_params(&mut rng);
    let mut gradient = vec![0.0; params.len()];
    let mut noise = StepNoise::new(&guide, Diwhvi::new(m, k));
    let mut adam = Adam::new(0.01);
    group.bench_function(BenchmarkId::new(label, format!("M{m}_K{k}")), |b| {
        b.iter(|| {
            noise.redraw(&mut rng);
            let bound = objective::value_and_gradient(
                &EightSchools,
                &guide,
                &params,
                &noise,
                engine,
                &mut gradient,
            );
            adam.step(&mut params, &gradient);
            black_box(bound)
        })
    });
}

/// One timed training step on the fused objective
/// ([`FusedDiwhvi`]: the guide's gradient by a hand-written adjoint over
/// `f64` matrices), with `∇ᵤ log p` from `model_engine`; same work as
/// [`bench_engine`], for comparison with its `tape` variant.
fn bench_fused<E: GradientEngine>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    label: &str,
    (m, k): (usize, usize),
    model_engine: &E,
) {
    let guide = SemiImplicit::new(10, 10);
    let mut fused = FusedDiwhvi::new(&guide);
    let mut rng = StdRng::seed_from_u64(1);
    let mut params = guide.init_params(&mut rng);
    let mut gradient = vec![0.0; params.len()];
    let mut noise = StepNoise::new(&guide, Diwhvi::new(m, k));
    let mut adam = Adam::new(0.01);
    group.bench_function(BenchmarkId::new(label, format!("M{m}_K{k}")), |b| {
        b.iter(|| {
            noise.redraw(&mut rng);
            let bound = fused.value_and_gradient(
                &EightSchools,
                &params,
                &noise,
                model_engine,
                &mut gradient,
            );
            adam.step(&mut params, &gradient);
            black_box(bound)
        })
    });
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("diwhvi_step");
    for setting in SETTINGS {
        let single = ForwardEngine::<16>::new().with_parallelism(Parallelism::SingleThread);
        bench_engine(&mut group, "forward-single", setting, &single);
        bench_engine(
            &mut group,
            "forward-multi",
            setting,
            &ForwardEngine::<16>::new().with_parallelism(Parallelism::AllCores),
        );
        bench_engine(&mut group, "tape", setting, &TapeEngine);
        bench_fused(&mut group, "fused", setting, &single);
    }
    group.finish();
}

criterion_group! {
    name = diwhvi_step;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(20);
    targets = benches
}
criterion_main!(diwhvi_step);
