//! Nanoseconds per element of each hand-written plate kernel against
//! `ScalarKernel<F>` (the family's own `log_prob` on dual numbers, element
//! by element), value alone (`block_value`, the `f64` path) and value with
//! every partial (`block`), over N = 10⁴ observations in one call. The
//! first argument is a slice (a linear predictor), the others broadcast,
//! as in a regression. The kernels are called on blocks of 256 elements, as
//! `plate::log_density` calls them; criterion's time is per 10⁴ elements.
//!
//! ```sh
//! cargo bench --no-run --bench plate_kernels
//! taskset -c 1 target/release/deps/plate_kernels-HASH --bench
//! ```

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use iwhvi::distributions::{
    BernoulliLogit, BinomialLogit, Gamma, LogNormal, NegativeBinomial2, Normal, Poisson,
    PoissonLog, StudentT,
};
use iwhvi::plate::{
    Arg, BLOCK, BernoulliLogitKernel, BinomialLogitKernel, Family, GammaKernel, LogNormalKernel,
    NegativeBinomial2Kernel, NormalKernel, PlateKernel, PoissonKernel, PoissonLogKernel,
    ScalarKernel, StudentTKernel,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const N: usize = 10_000;

/// Benchmarks `kernel` as `family/label/{value,grad}`, called on blocks of
/// [`BLOCK`] elements as `plate::log_density` calls it.
fn one<K: PlateKernel>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    family: &str,
    label: &str,
    kernel: &K,
    obs: &[K::Obs],
    args: &[Arg<'_>],
) {
    let n = obs.len();
    let blocks: Vec<(usize, usize, Vec<Arg<'_>>)> = (0..n)
        .step_by(BLOCK)
        .map(|start| {
            let end = (start + BLOCK).min(n);
            let sub = args
                .iter()
                .map(|a| match *a {
                    Arg::Const(v) => Arg::Const(v),
                    Arg::Slice(v) => Arg::Slice(&v[start..end]),
                })
                .collect();
            (start, end, sub)
        })
        .collect();
    group.bench_function(
        BenchmarkId::new(format!("{family}/{label}"), "value"),
        |b| {
            b.iter(|| {
                let mut acc = 0.0;
                for (start, end, sub) in &blocks {
                    acc = kernel.block_value(acc, black_box(&obs[*start..*end]), sub);
                }
                black_box(acc)
            })
        },
    );
    let mut grads: Vec<Vec<f64>> = args.iter().map(|a| vec![0.0; a.partials(n)]).collect();
    group.bench_function(BenchmarkId::new(format!("{family}/{label}"), "grad"), |b| {
        b.iter(|| {
            for g in &mut grads {
                g.fill(0.0);
            }
            let mut acc = 0.0;
            for (start, end, sub) in &blocks {
                let mut views: Vec<&mut [f64]> = grads
                    .iter_mut()
                    .zip(args)
                    .map(|(g, a)| {
                        if a.is_const() {
                            &mut g[..]
                        } else {
                            &mut g[*start..*end]
                        }
                    })
                    .collect();
                acc = kernel.block(acc, black_box(&obs[*start..*end]), sub, &mut views);
            }
            black_box(acc)
        })
    });
}

/// The hand-written kernel and `ScalarKernel<F>` on the same block.
fn pair<K: PlateKernel, F: Family<Obs = K::Obs>>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    family: &str,
    kernel: K,
    obs: &[K::Obs],
    args: &[Arg<'_>],
) {
    one(group, family, "hand", &kernel, obs, args);
    one(
        group,
        family,
        "scalar",
        &ScalarKernel::<F>::new(),
        obs,
        args,
    );
}

fn bench(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    let eta: Vec<f64> = (0..N).map(|_| rng.random::<f64>() * 6.0 - 3.0).collect();
    let rates: Vec<f64> = eta.iter().map(|e| e.exp()).collect();
    let real: Vec<f64> = eta.iter().map(|e| e + rng.random::<f64>() - 0.5).collect();
    let positive: Vec<f64> = real.iter().map(|r| r.exp()).collect();
    let bits: Vec<u64> = (0..N).map(|_| rng.random_range(0..2)).collect();
    let counts: Vec<u64> = (0..N).map(|_| rng.random_range(0..20)).collect();
    let trials: Vec<(u64, u64)> = (0..N)
        .map(|_| {
            let n = rng.random_range(1..20);
            (n, rng.random_range(0..=n))
        })
        .collect();

    let mut group = c.benchmark_group("plate_kernels");
    group.throughput(Throughput::Elements(N as u64));
    let (eta, rates) = (&eta[..], &rates[..]);
    pair::<_, Normal>(
        &mut group,
        "normal",
        NormalKernel,
        &real,
        &[Arg::Slice(eta), Arg::Const(0.7)],
    );
    pair::<_, BernoulliLogit>(
        &mut group,
        "bernoulli_logit",
        BernoulliLogitKernel,
        &bits,
        &[Arg::Slice(eta)],
    );
    pair::<_, BinomialLogit>(
        &mut group,
        "binomial_logit",
        BinomialLogitKernel,
        &trials,
        &[Arg::Slice(eta)],
    );
    pair::<_, PoissonLog>(
        &mut group,
        "poisson_log",
        PoissonLogKernel,
        &counts,
        &[Arg::Slice(eta)],
    );
    pair::<_, Poisson>(
        &mut group,
        "poisson",
        PoissonKernel,
        &counts,
        &[Arg::Slice(rates)],
    );
    pair::<_, LogNormal>(
        &mut group,
        "log_normal",
        LogNormalKernel,
        &positive,
        &[Arg::Slice(eta), Arg::Const(0.7)],
    );
    pair::<_, StudentT>(
        &mut group,
        "student_t",
        StudentTKernel,
        &real,
        &[Arg::Const(4.0), Arg::Slice(eta), Arg::Const(0.7)],
    );
    pair::<_, Gamma>(
        &mut group,
        "gamma",
        GammaKernel,
        &positive,
        &[Arg::Const(2.0), Arg::Slice(rates)],
    );
    pair::<_, NegativeBinomial2>(
        &mut group,
        "negative_binomial_2",
        NegativeBinomial2Kernel,
        &counts,
        &[Arg::Slice(rates), Arg::Const(3.0)],
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
