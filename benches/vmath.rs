//! Nanoseconds per element of the plate kernels' vector transcendentals
//! (`iwhvi_core::plate`'s private `vmath`, reached through the hidden
//! `plate::__vmath`) against `std`/libm, at N = 10⁴: `exp`, `ln`, `ln_1p`,
//! softplus and log-sigmoid, ours on the portable build and on the AVX2
//! clone (the same bits), std in a plain loop. Criterion reports the time
//! per call of N elements; divide by 10⁴ (or read the `thrpt` line, in
//! elements per second).
//!
//! ```sh
//! cargo bench --no-run --bench vmath
//! taskset -c 1 target/release/deps/vmath-HASH --bench
//! ```

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use iwhvi::plate::__vmath::{self, Isa};
use iwhvi::special;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const N: usize = 10_000;

type Ours = fn(Isa, &[f64], &mut [f64]);

/// A function's name, its arguments, `std`'s version and ours.
type Case = (&'static str, Vec<f64>, fn(f64) -> f64, Ours);

fn bench(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    // Arguments where each function is used: exp over [−30, 5] (e^{−|η|}
    // and rates), ln over (0, 10⁴), ln_1p over [0, 1] (of e^{−|η|}),
    // softplus and log-sigmoid over [−20, 20] (logits).
    let uniform = |rng: &mut StdRng, lo: f64, hi: f64| -> Vec<f64> {
        (0..N)
            .map(|_| lo + (hi - lo) * rng.random::<f64>())
            .collect()
    };
    let cases: [Case; 5] = [
        ("exp", uniform(&mut rng, -30.0, 5.0), f64::exp, __vmath::exp),
        ("ln", uniform(&mut rng, 1e-3, 1e4), f64::ln, __vmath::ln),
        (
            "ln_1p",
            uniform(&mut rng, 0.0, 1.0),
            f64::ln_1p,
            __vmath::ln_1p,
        ),
        (
            "softplus",
            uniform(&mut rng, -20.0, 20.0),
            special::softplus,
            __vmath::softplus,
        ),
        (
            "log_sigmoid",
            uniform(&mut rng, -20.0, 20.0),
            special::log_sigmoid,
            __vmath::log_sigmoid,
        ),
    ];
    let mut out = vec![0.0; N];
    let mut group = c.benchmark_group("vmath");
    group.throughput(Throughput::Elements(N as u64));
    for (name, xs, std_fn, ours) in &cases {
        group.bench_function(BenchmarkId::new(*name, "std"), |b| {
            b.iter(|| {
                for (o, &x) in out.iter_mut().zip(black_box(&xs[..])) {
                    *o = std_fn(x);
                }
                black_box(&out);
            })
        });
        let isas = [
            ("portable", Isa::Portable),
            ("avx2", Isa::Avx2),
            ("avx512", Isa::Avx512),
        ]
        .into_iter()
        .filter(|&(_, isa)| isa <= __vmath::best_isa());
        for (label, isa) in isas {
            group.bench_function(BenchmarkId::new(*name, label), |b| {
                b.iter(|| {
                    ours(isa, black_box(&xs[..]), &mut out);
                    black_box(&out);
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
