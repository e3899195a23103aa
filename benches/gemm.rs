//! Microseconds per product of the MLPs' matrix products at the VAE's
//! shapes (batch 100; encoder 64 → 64 → 4, decoder 2 → 64 → 64):
//! matrixmultiply's `dgemm` against the register-blocked kernels behind
//! `amortised`'s `gemm` (reached through the hidden `amortised::__gemm`),
//! the same bits. The products are the ones `Dense`/`DenseRows`/`Mlp` run:
//! forward `X W` (β = 1, rows preset to the bias), adjoint `G Wᵀ` (the
//! transposed B) and weight gradient `Xᵀ G` (the transposed A, β = 1).
//!
//! ```sh
//! cargo bench --no-run --bench gemm
//! taskset -c 1 target/release/deps/gemm-HASH --bench
//! ```

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use iwhvi::amortised::__gemm::{Kernel, best_kernel, product};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// A product: its name, `m, k, n`, `ta`, `tb`, β.
type Shape = (&'static str, usize, usize, usize, bool, bool, f64);

const SHAPES: [Shape; 7] = [
    ("forward 100x64.64x64", 100, 64, 64, false, false, 1.0),
    ("forward 100x64.64x4", 100, 64, 4, false, false, 1.0),
    ("adjoint 100x64.(64x64)T", 100, 64, 64, false, true, 0.0),
    ("adjoint 100x4.(64x4)T", 100, 4, 64, false, true, 0.0),
    ("weight (100x64)T.100x64", 64, 100, 64, true, false, 1.0),
    ("weight (100x64)T.100x4", 64, 100, 4, true, false, 1.0),
    ("weight (100x2)T.100x64", 2, 100, 64, true, false, 1.0),
];

fn bench(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    let mut kernels = vec![Kernel::Matrixmultiply];
    for k in [Kernel::Avx2Fma, Kernel::Avx512] {
        if k <= best_kernel() {
            kernels.push(k);
        }
    }
    let mut group = c.benchmark_group("gemm");
    for &(name, m, k, n, ta, tb, beta) in &SHAPES {
        let a: Vec<f64> = (0..m * k).map(|_| rng.random::<f64>() - 0.5).collect();
        let b: Vec<f64> = (0..k * n).map(|_| rng.random::<f64>() - 0.5).collect();
        let mut out = vec![0.0; m * n];
        for &kernel in &kernels {
            let id = BenchmarkId::new(format!("{kernel:?}"), name);
            group.bench_function(id, |bencher| {
                bencher.iter(|| {
                    product(kernel, m, k, n, &a, ta, &b, tb, beta, &mut out);
                    black_box(&mut out);
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_millis(1000))
        .sample_size(30);
    targets = bench
}
criterion_main!(benches);
