//! Microseconds per DIWHVI training step on eight schools, the same work as
//! the JAX peer's `us/step scan` column (`../shared/peers/RESULTS.md`):
//! the affine semi-implicit guide with d = 10 (240 parameters), Adam at
//! lr 0.01, one step = fresh noise + bound + gradient + Adam update.
//!
//! Variants: `forward-single`, `forward-multi` and `tape` run the generic
//! objective on one engine; `fused` is [`FusedDiwhvi`] on one thread (the
//! model's `∇ᵤ log p` by forward mode, 16 lanes); `auto` is what
//! `fit` runs under the default `Engine::Auto` (the same fused path with
//! `Parallelism::Auto`); `fused-2threads` spreads the outer samples over
//! rayon's pool whatever their size (`Parallelism::AllCores`; run it on two
//! cores). The `generic-forward` and `generic-tape` variants, on guides
//! the fused path does not serve or on the generic path of small ones,
//! calibrate `fit::GUIDE_FORWARD_MAX_PARAMS`.
//!
//! ```sh
//! cargo bench -p iwhvi-benches --bench diwhvi_step --no-run
//! B=$(ls -t target/release/deps/diwhvi_step-* | grep -v '\.d$' | head -1)
//! taskset -c 1 $B --bench 'diwhvi_step/(tape|fused|auto)/'
//! taskset -c 0,1 $B --bench 'diwhvi_step/fused-2threads/'
//! taskset -c 1 $B --bench 'diwhvi_step/generic-'
//! ```

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use iwhvi::fit::{Engine, EngineChoice, StepEngines};
use iwhvi::gradient::{ForwardEngine, GradientEngine, Parallelism};
use iwhvi::guide::{FullRank, HierarchicalGuide, MeanField, Reverse, SemiImplicit};
use iwhvi::objective::fused::FusedDiwhvi;
use iwhvi::objective::{self, Diwhvi, StepNoise};
use iwhvi::optim::{Adam, Optimizer};
use iwhvi::tape::TapeEngine;
use rand::SeedableRng;
use rand::rngs::StdRng;

use iwhvi_examples::hand_written::EightSchools;

pub const SETTINGS: [(usize, usize); 6] = [(1, 0), (1, 8), (1, 64), (8, 0), (8, 8), (8, 64)];

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// One timed training step on `engine`.
fn bench_engine<E: GradientEngine>(
    group: &mut Group<'_>,
    label: &str,
    setting: (usize, usize),
    engine: &E,
) {
    bench_generic(
        group,
        label,
        &SemiImplicit::new(10, 10),
        setting,
        &format!("M{}_K{}", setting.0, setting.1),
        engine,
    );
}

/// One timed training step of `guide` on the generic objective with
/// `engine`, named `id`.
fn bench_generic<G: HierarchicalGuide, E: GradientEngine>(
    group: &mut Group<'_>,
    label: &str,
    guide: &G,
    (m, k): (usize, usize),
    id: &str,
    engine: &E,
) {
    let mut rng = StdRng::seed_from_u64(1);
    let mut params = guide.init_params(&mut rng);
    let mut gradient = vec![0.0; params.len()];
    let mut noise = StepNoise::new(guide, Diwhvi::new(m, k));
    let mut adam = Adam::new(0.01);
    group.bench_function(BenchmarkId::new(label, id), |b| {
        b.iter(|| {
            noise.redraw(&mut rng);
            let bound = objective::value_and_gradient(
                &EightSchools,
                guide,
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
    group: &mut Group<'_>,
    label: &str,
    (m, k): (usize, usize),
    model_engine: &E,
    parallelism: Parallelism,
) {
    let guide = SemiImplicit::new(10, 10);
    let mut fused = FusedDiwhvi::new(&guide).with_parallelism(parallelism);
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
    // What `fit` runs by default on this guide: the fused path, the model
    // by forward mode with 16 lanes (D = 10), threads under
    // `Parallelism::Auto`; the `auto` variant below is exactly that.
    assert_eq!(
        Engine::Auto.step_engines(&SemiImplicit::new(10, 10)),
        StepEngines {
            model: EngineChoice::Forward { lanes: 16 },
            guide: EngineChoice::Fused,
        }
    );
    let mut group = c.benchmark_group("diwhvi_step");
    let single = ForwardEngine::<16>::new().with_parallelism(Parallelism::SingleThread);
    for setting in SETTINGS {
        bench_engine(&mut group, "forward-single", setting, &single);
        bench_engine(
            &mut group,
            "forward-multi",
            setting,
            &ForwardEngine::<16>::new().with_parallelism(Parallelism::AllCores),
        );
        bench_engine(&mut group, "tape", setting, &TapeEngine);
        bench_fused(
            &mut group,
            "fused",
            setting,
            &single,
            Parallelism::SingleThread,
        );
        bench_fused(
            &mut group,
            "auto",
            setting,
            &ForwardEngine::<16>::new(),
            Parallelism::Auto,
        );
        bench_fused(
            &mut group,
            "fused-2threads",
            setting,
            &ForwardEngine::<16>::new().with_parallelism(Parallelism::AllCores),
            Parallelism::AllCores,
        );
    }
    // The generic path's forward/tape cut-off, by parameter count: guides
    // with P = 20 to 120 (and 240 above), the ELBO/IWAE settings and
    // one with inner draws.
    let sivi = |d| SemiImplicit::new(10, d).with_reverse(Reverse::Prior);
    for (m, k) in [(1, 0), (8, 0)] {
        let id = |name: &str| format!("{name}/M{m}_K{k}");
        calibrate(
            &mut group,
            &MeanField::new(10),
            (m, k),
            &id("MeanField_P20"),
        );
        calibrate(&mut group, &FullRank::new(10), (m, k), &id("FullRank_P65"));
    }
    for (m, k) in [(1, 0), (8, 0), (8, 8)] {
        let id = |name: &str| format!("{name}/M{m}_K{k}");
        calibrate(&mut group, &sivi(1), (m, k), &id("Sivi1_P30"));
        calibrate(&mut group, &sivi(2), (m, k), &id("Sivi2_P40"));
        calibrate(&mut group, &sivi(4), (m, k), &id("Sivi4_P60"));
        calibrate(&mut group, &sivi(6), (m, k), &id("Sivi6_P80"));
        calibrate(&mut group, &sivi(10), (m, k), &id("Sivi10_P120"));
    }
    group.finish();
}

/// The `generic-forward` (16 lanes, one thread) and `generic-tape` steps of
/// `guide`.
fn calibrate<G: HierarchicalGuide>(
    group: &mut Group<'_>,
    guide: &G,
    setting: (usize, usize),
    id: &str,
) {
    let single = ForwardEngine::<16>::new().with_parallelism(Parallelism::SingleThread);
    bench_generic(group, "generic-forward", guide, setting, id, &single);
    bench_generic(group, "generic-tape", guide, setting, id, &TapeEngine);
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
