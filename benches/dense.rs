//! The dense products of the fused DIWHVI objective
//! (`iwhvi-core/src/infer/objective/fused.rs`), each timed with three
//! implementations: nalgebra's `gemm`/`gemm_tr` (matrixmultiply above
//! nalgebra's small-size threshold, what the library uses today), faer's
//! `matmul` with `Par::Seq`, and the gemm crate with `Parallelism::None`:
//! all single-threaded, on the same column-major buffers and strided views
//! as the library.
//!
//! For one outer sample with `K` reverse draws, mixing dimension `d` and
//! `D` outputs of the conditional network (the latent dimension, or `2D`
//! with a `ψ`-dependent scale), the affine conditional runs:
//!
//! - `forward`: the conditional means of the inner draws, rows `1..=K` of
//!   the `(K+1) × D` matrix `M`: `M[1..] = Ψ[1..] Wᵀ` (`K × d` times
//!   `d × D`; `Wᵀ` is the row-major `D × d` weight read column-major);
//! - `adjoint`: `Ψ̄[1..] = M̄[1..] W` (`K × D` times `D × d`), with a
//!   reverse model;
//! - `weight`: the weight's adjoint `W̄ᵀ = Ψᵀ M̄` (`d × (K+1)` times
//!   `(K+1) × D`, nalgebra's `gemm_tr`), written into the gradient slot.
//!
//! With `K = 0` the library skips the first two (no inner draws), so only
//! `weight` is timed there. An MLP conditional with `H` hidden units runs
//! the same three products once per layer, with `(d, H)` and `(H, D)` in
//! place of `(d, D)`: the square shapes below bracket them.
//!
//! For each shape `(K, d = D)`, `K ∈ {0, 8, 64, 256}`, `d ∈ {10, 50, 200}`,
//! the three implementations are benchmarked one after the other (so that
//! a change in the machine's load meets all three), after an assert that
//! faer's and gemm's results equal nalgebra's to `1e-12` relative to
//! `Σ_l |a_il| |b_lj|` in every element.
//!
//! nalgebra's `gemm_tr` (the library's `weight` before 2026-11-30) is a
//! loop of `gemv_tr` over the output's columns and never reaches
//! matrixmultiply; the fourth variant of `weight`, `strided`, is
//! matrixmultiply's `dgemm` reading `Ψᵀ` through the strides of `Ψ`'s
//! storage (row stride `K+1`), which is what the library runs now
//! (`fused.rs::transposed_product`). An earlier version of this bench
//! called nalgebra's `gemm` on a strided view instead; below nalgebra's
//! size threshold of 5 (K = 0) that falls back to a `gemv` which
//! iterates over the view's whole storage span, out of bounds.
//!
//! ```sh
//! cargo bench -p iwhvi-benches --features compare-dense --bench dense --no-run
//! taskset -c 1 target/release/deps/dense-HASH --bench
//! python3 benches/dense_table.py
//! ```

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use gemm::Parallelism;
use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const KS: [usize; 4] = [0, 8, 64, 256];
const DIMS: [usize; 3] = [10, 50, 200];

/// The buffers of one outer sample, laid out as in `fused.rs`.
struct Buffers {
    k1: usize,
    d: usize,
    big_d: usize,
    /// `Ψ`, `(K+1) × d`.
    psi: DMatrix<f64>,
    /// The conditional's weight, row-major `D × d` (the parameter slice).
    weight_params: Vec<f64>,
    /// The same weight column-major `D × d` (`copy_weight`).
    weight: DMatrix<f64>,
    /// `M̄`, `(K+1) × D`.
    mean_bar: DMatrix<f64>,
    /// Outputs: `M` `(K+1) × D`, `Ψ̄` `(K+1) × d`, `W̄ᵀ` `d × D` column-major.
    mean: DMatrix<f64>,
    psi_bar: DMatrix<f64>,
    weight_bar: Vec<f64>,
}

impl Buffers {
    fn new(k: usize, d: usize, big_d: usize, rng: &mut StdRng) -> Self {
        let k1 = k + 1;
        let mut normal = || rng.random::<f64>() * 2.0 - 1.0;
        let psi = DMatrix::from_fn(k1, d, |_, _| normal());
        let weight_params: Vec<f64> = (0..big_d * d).map(|_| normal()).collect();
        let weight = DMatrix::from_fn(big_d, d, |i, j| weight_params[i * d + j]);
        let mean_bar = DMatrix::from_fn(k1, big_d, |_, _| normal());
        Buffers {
            k1,
            d,
            big_d,
            psi,
            weight_params,
            weight,
            mean_bar,
            mean: DMatrix::zeros(k1, big_d),
            psi_bar: DMatrix::zeros(k1, d),
            weight_bar: vec![0.0; d * big_d],
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Imp {
    Nalgebra,
    /// `weight` only: matrixmultiply's `dgemm` on `Ψᵀ` read through
    /// strides (the library's `weight`).
    Strided,
    Faer,
    Gemm,
}

/// The implementations of `product`, in the order they are timed.
fn imps(product: &str) -> &'static [Imp] {
    if product == "weight" {
        &[Imp::Nalgebra, Imp::Strided, Imp::Faer, Imp::Gemm]
    } else {
        &[Imp::Nalgebra, Imp::Faer, Imp::Gemm]
    }
}

impl Imp {
    fn name(self) -> &'static str {
        match self {
            Imp::Nalgebra => "nalgebra",
            Imp::Strided => "strided",
            Imp::Faer => "faer",
            Imp::Gemm => "gemm",
        }
    }
}

/// `C = A B` with `A` `m × k`, `B` `k × n`, `C` `m × n`, all three given by
/// a slice, a row stride and a column stride; gemm crate, one thread.
#[allow(clippy::too_many_arguments)]
fn gemm_crate(
    (m, n, k): (usize, usize, usize),
    c: &mut [f64],
    (c_rs, c_cs): (usize, usize),
    a: &[f64],
    (a_rs, a_cs): (usize, usize),
    b: &[f64],
    (b_rs, b_cs): (usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    // Bounds: the last element each operand touches is inside its slice.
    assert!((m - 1) * c_rs + (n - 1) * c_cs < c.len());
    assert!(k == 0 || (m - 1) * a_rs + (k - 1) * a_cs < a.len());
    assert!(k == 0 || (k - 1) * b_rs + (n - 1) * b_cs < b.len());
    // SAFETY: the asserts above keep every access inside the slices; `c`
    // is borrowed mutably and does not alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs as isize,
            c_rs as isize,
            false,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// `forward`: `M[1..] = Ψ[1..] Wᵀ`.
fn forward(imp: Imp, s: &mut Buffers) {
    let (k1, d, big_d) = (s.k1, s.d, s.big_d);
    let inner = k1 - 1;
    match imp {
        Imp::Nalgebra | Imp::Strided => {
            let weight_t = DMatrixView::from_slice(&s.weight_params, d, big_d);
            s.mean
                .rows_mut(1, inner)
                .gemm(1.0, &s.psi.rows(1, inner), &weight_t, 0.0);
        }
        Imp::Faer => {
            let dst = MatMut::from_column_major_slice_with_stride_mut(
                &mut s.mean.as_mut_slice()[1..],
                inner,
                big_d,
                k1,
            );
            let lhs =
                MatRef::from_column_major_slice_with_stride(&s.psi.as_slice()[1..], inner, d, k1);
            let rhs = MatRef::from_column_major_slice(&s.weight_params, d, big_d);
            matmul(dst, Accum::Replace, lhs, rhs, 1.0, Par::Seq);
        }
        Imp::Gemm => gemm_crate(
            (inner, big_d, d),
            &mut s.mean.as_mut_slice()[1..],
            (1, k1),
            &s.psi.as_slice()[1..],
            (1, k1),
            &s.weight_params,
            (1, d),
        ),
    }
}

/// `adjoint`: `Ψ̄[1..] = M̄[1..] W`.
fn adjoint(imp: Imp, s: &mut Buffers) {
    let (k1, d, big_d) = (s.k1, s.d, s.big_d);
    let inner = k1 - 1;
    match imp {
        Imp::Nalgebra | Imp::Strided => {
            s.psi_bar
                .rows_mut(1, inner)
                .gemm(1.0, &s.mean_bar.rows(1, inner), &s.weight, 0.0);
        }
        Imp::Faer => {
            let dst = MatMut::from_column_major_slice_with_stride_mut(
                &mut s.psi_bar.as_mut_slice()[1..],
                inner,
                d,
                k1,
            );
            let lhs = MatRef::from_column_major_slice_with_stride(
                &s.mean_bar.as_slice()[1..],
                inner,
                big_d,
                k1,
            );
            let rhs = MatRef::from_column_major_slice(s.weight.as_slice(), big_d, d);
            matmul(dst, Accum::Replace, lhs, rhs, 1.0, Par::Seq);
        }
        Imp::Gemm => gemm_crate(
            (inner, d, big_d),
            &mut s.psi_bar.as_mut_slice()[1..],
            (1, k1),
            &s.mean_bar.as_slice()[1..],
            (1, k1),
            s.weight.as_slice(),
            (1, big_d),
        ),
    }
}

/// `weight`: `W̄ᵀ = Ψᵀ M̄` into the slot.
fn weight(imp: Imp, s: &mut Buffers) {
    let (k1, d, big_d) = (s.k1, s.d, s.big_d);
    match imp {
        Imp::Nalgebra => {
            DMatrixViewMut::from_slice(&mut s.weight_bar, d, big_d).gemm_tr(
                1.0,
                &s.psi,
                &s.mean_bar,
                0.0,
            );
        }
        Imp::Strided => {
            assert_eq!(s.psi.shape(), (k1, d));
            assert_eq!(s.mean_bar.shape(), (k1, big_d));
            assert_eq!(s.weight_bar.len(), d * big_d);
            // SAFETY: `psi` is `k1 × d` and `mean_bar` `k1 × big_d`, both
            // contiguous column-major; `weight_bar` holds `d × big_d`
            // (asserted above); every index dgemm forms lies inside its
            // slice, and the output is a unique borrow.
            unsafe {
                matrixmultiply::dgemm(
                    d,
                    k1,
                    big_d,
                    1.0,
                    s.psi.as_ptr(),
                    k1 as isize,
                    1,
                    s.mean_bar.as_ptr(),
                    1,
                    k1 as isize,
                    0.0,
                    s.weight_bar.as_mut_ptr(),
                    1,
                    d as isize,
                );
            }
        }
        Imp::Faer => {
            let dst = MatMut::from_column_major_slice_mut(&mut s.weight_bar, d, big_d);
            let lhs = MatRef::from_column_major_slice(s.psi.as_slice(), k1, d).transpose();
            let rhs = MatRef::from_column_major_slice(s.mean_bar.as_slice(), k1, big_d);
            matmul(dst, Accum::Replace, lhs, rhs, 1.0, Par::Seq);
        }
        Imp::Gemm => gemm_crate(
            (d, big_d, k1),
            &mut s.weight_bar,
            (1, d),
            s.psi.as_slice(),
            (k1, 1),
            s.mean_bar.as_slice(),
            (1, k1),
        ),
    }
}

type Product = fn(Imp, &mut Buffers);

/// The reference scale of each element of `A B`: `Σ_l |a_il| |b_lj|`.
fn abs_product(a: &DMatrix<f64>, b: &DMatrix<f64>) -> DMatrix<f64> {
    a.abs() * b.abs()
}

/// Asserts that faer's and gemm's `product` equal nalgebra's to 1e-12
/// relative (element by element, against `Σ_l |a_il| |b_lj|`), and that
/// nalgebra's equals a plain triple loop to the same tolerance.
fn check(name: &str, product: Product, s: &mut Buffers) {
    let (k1, inner) = (s.k1, s.k1 - 1);
    // The exact operands and the output of each product.
    let (a, b): (DMatrix<f64>, DMatrix<f64>) = match name {
        "forward" => (
            s.psi.rows(1, inner).into_owned(),
            s.weight.transpose().clone_owned(),
        ),
        "adjoint" => (s.mean_bar.rows(1, inner).into_owned(), s.weight.clone()),
        _ => (s.psi.transpose(), s.mean_bar.clone()),
    };
    let output = |s: &Buffers| -> DMatrix<f64> {
        match name {
            "forward" => s.mean.rows(1, inner).into_owned(),
            "adjoint" => s.psi_bar.rows(1, inner).into_owned(),
            _ => DMatrix::from_column_slice(s.d, s.big_d, &s.weight_bar),
        }
    };
    let scale = abs_product(&a, &b);
    let mut naive = DMatrix::zeros(a.nrows(), b.ncols());
    for i in 0..a.nrows() {
        for j in 0..b.ncols() {
            naive[(i, j)] = (0..a.ncols()).map(|l| a[(i, l)] * b[(l, j)]).sum();
        }
    }
    let close = |x: &DMatrix<f64>, y: &DMatrix<f64>, what: &str| {
        for ((x, y), s) in x.iter().zip(y.iter()).zip(scale.iter()) {
            assert!(
                (x - y).abs() <= 1e-12 * s,
                "{name} K+1 = {k1}: {what}: {x} vs {y} (scale {s})"
            );
        }
    };
    product(Imp::Nalgebra, s);
    let reference = output(s);
    close(&reference, &naive, "nalgebra against the triple loop");
    for &imp in &imps(name)[1..] {
        // Poison the output so that a product writing nothing fails.
        s.mean.fill(f64::NAN);
        s.psi_bar.fill(f64::NAN);
        s.weight_bar.fill(f64::NAN);
        product(imp, s);
        close(&output(s), &reference, imp.name());
    }
}

fn bench(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(12);
    let products: [(&str, Product); 3] = [
        ("forward", forward),
        ("adjoint", adjoint),
        ("weight", weight),
    ];
    for (name, product) in products {
        let mut group = c.benchmark_group(format!("dense_{name}"));
        for k in KS {
            if k == 0 && name != "weight" {
                continue;
            }
            for d in DIMS {
                let mut s = Buffers::new(k, d, d, &mut rng);
                check(name, product, &mut s);
                for &imp in imps(name) {
                    let id = BenchmarkId::new(imp.name(), format!("K{k}_d{d}"));
                    group.bench_function(id, |bencher| {
                        bencher.iter(|| {
                            product(imp, black_box(&mut s));
                        })
                    });
                }
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_millis(1500))
        .sample_size(30);
    targets = bench
}
criterion_main!(benches);
