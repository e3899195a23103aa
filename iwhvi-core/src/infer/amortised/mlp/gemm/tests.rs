//! The blocked kernels against a direct `matrixmultiply::dgemm` call: the
//! same bits on random shapes (1 to 300, across the block of 256 inner
//! terms), all four transposes and β ∈ {0, 1, other}; and each kernel
//! against a scalar model of its matrixmultiply kernel's arithmetic
//! (signed zeros and edge tiles included), the model of this CPU's kernel
//! against `dgemm` itself, so that a kernel this CPU does not pick (AVX2
//! on an AVX-512 machine) is still held to matrixmultiply's bits.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::{KC, Kernel, best_kernel, gemm, matrixmultiply, product};

/// matrixmultiply 0.3.11's arithmetic on `kernel`'s instruction set, entry
/// by entry: per block of [`KC`] inner terms an FMA chain from `+0`, then
/// (β the caller's for the first block, 1 after) on AVX-512 `acc` if
/// β = 0 else `acc + β c` (full and edge tiles alike); on AVX2/FMA (tiles
/// of 8 × 4) `acc + 0` if β = 0, else `acc + β c` on a full tile and
/// `β c + (acc + 0)` on an edge tile (one past the last multiple of 8
/// rows or 4 columns), finished through a buffer.
#[allow(clippy::too_many_arguments)]
fn model(
    kernel: Kernel,
    m: usize,
    k: usize,
    n: usize,
    a: &[f64],
    ta: bool,
    b: &[f64],
    tb: bool,
    beta: f64,
    c: &mut [f64],
) {
    let at = |i: usize, l: usize| if ta { a[l * m + i] } else { a[i * k + l] };
    let bt = |l: usize, j: usize| if tb { b[j * k + l] } else { b[l * n + j] };
    let edge = |i: usize, j: usize| i >= m - m % 8 || j >= n - n % 4;
    for i in 0..m {
        for j in 0..n {
            let mut cij = c[i * n + j];
            for (block, l0) in (0..k).step_by(KC).enumerate() {
                let mut acc = 0.0f64;
                for l in l0..k.min(l0 + KC) {
                    acc = at(i, l).mul_add(bt(l, j), acc);
                }
                let be = if block == 0 { beta } else { 1.0 };
                cij = match (kernel, be == 0.0) {
                    (Kernel::Avx512, true) => acc,
                    (Kernel::Avx2Fma, true) => acc + 0.0,
                    (Kernel::Avx2Fma, false) if edge(i, j) => cij * be + (acc + 0.0),
                    (_, false) => acc + cij * be,
                    (Kernel::Matrixmultiply, true) => unreachable!("a model of a kernel"),
                };
            }
            c[i * n + j] = cij;
        }
    }
}

/// Entries that often underflow to `±0` (products of `±1e-300`) or are
/// zeros of either sign, with ordinary ones among them.
fn tiny(rng: &mut StdRng, len: usize) -> Vec<f64> {
    (0..len)
        .map(|_| match rng.random_range(0..6) {
            0 => 1e-300,
            1 => -1e-300,
            2 => 2e-300,
            3 => -0.0,
            4 => 0.0,
            _ => rng.random::<f64>() - 0.5,
        })
        .collect()
}

#[test]
fn each_kernel_is_its_model_and_this_cpus_model_is_matrixmultiply() {
    let mut rng = StdRng::seed_from_u64(19);
    let mut shapes = vec![
        (1, 5, 1),
        (7, 6, 3),
        (6, 9, 4),
        (13, 5, 5),
        (8, 7, 33),
        (9, 300, 6),
    ];
    for _ in 0..40 {
        let m = rng.random_range(1..=40);
        shapes.push((m, rng.random_range(1..=300), rng.random_range(1..=40)));
    }
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for &(m, k, n) in &shapes {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            for beta in [0.0, 1.0, -0.7] {
                let (a, b) = (tiny(&mut rng, m * k), tiny(&mut rng, k * n));
                let c0 = tiny(&mut rng, m * n);
                for kernel in kernels() {
                    let (mut got, mut want) = (c0.clone(), c0.clone());
                    product(kernel, m, k, n, &a, ta, &b, tb, beta, &mut got);
                    model(kernel, m, k, n, &a, ta, &b, tb, beta, &mut want);
                    let what = format!("{kernel:?} m={m} k={k} n={n} ta={ta} tb={tb} β={beta}");
                    assert_eq!(bits(&got), bits(&want), "kernel against its model: {what}");
                }
                let best = best_kernel();
                if best != Kernel::Matrixmultiply {
                    let (mut got, mut want) = (c0.clone(), c0.clone());
                    model(best, m, k, n, &a, ta, &b, tb, beta, &mut got);
                    matrixmultiply(m, k, n, &a, ta, &b, tb, beta, &mut want);
                    let what = format!("{best:?} m={m} k={k} n={n} ta={ta} tb={tb} β={beta}");
                    assert_eq!(bits(&got), bits(&want), "model against dgemm: {what}");
                }
            }
        }
    }
}

/// Random entries of mixed signs and magnitudes (so that the order of the
/// sums shows in the bits).
fn random(rng: &mut StdRng, len: usize) -> Vec<f64> {
    (0..len)
        .map(|_| {
            let x: f64 = rng.random::<f64>() - 0.5;
            x * 10f64.powi(rng.random_range(-3..4))
        })
        .collect()
}

/// Every kernel this CPU has beyond matrixmultiply.
fn kernels() -> Vec<Kernel> {
    [Kernel::Avx2Fma, Kernel::Avx512]
        .into_iter()
        .filter(|&k| k <= best_kernel())
        .collect()
}

/// Runs `kernel` and matrixmultiply on one product and compares the bits.
#[allow(clippy::too_many_arguments)]
fn check(
    kernel: Kernel,
    rng: &mut StdRng,
    m: usize,
    k: usize,
    n: usize,
    ta: bool,
    tb: bool,
    beta: f64,
) {
    let a = random(rng, m * k);
    let b = random(rng, k * n);
    let c0 = random(rng, m * n);
    let mut want = if beta == 0.0 {
        vec![f64::NAN; m * n]
    } else {
        c0.clone()
    };
    let mut got = want.clone();
    matrixmultiply(m, k, n, &a, ta, &b, tb, beta, &mut want);
    product(kernel, m, k, n, &a, ta, &b, tb, beta, &mut got);
    for (idx, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            g.to_bits(),
            w.to_bits(),
            "{kernel:?} m={m} k={k} n={n} ta={ta} tb={tb} beta={beta} entry {idx}: {g} vs {w}"
        );
    }
}

#[test]
fn blocked_kernels_give_matrixmultiplys_bits_on_random_shapes() {
    let mut rng = StdRng::seed_from_u64(15);
    for kernel in kernels() {
        for _ in 0..150 {
            let m = rng.random_range(1..=300);
            let k = rng.random_range(1..=300);
            let n = rng.random_range(1..=80);
            let (ta, tb) = (rng.random::<bool>(), rng.random::<bool>());
            let beta = [0.0, 1.0, -0.7][rng.random_range(0..3)];
            check(kernel, &mut rng, m, k, n, ta, tb, beta);
        }
    }
}

#[test]
fn blocked_kernels_give_matrixmultiplys_bits_at_the_vae_shapes_and_edges() {
    let mut rng = StdRng::seed_from_u64(16);
    let shapes = [
        (100, 64, 64),
        (64, 100, 64),
        (100, 64, 4),
        (100, 4, 64),
        (4, 100, 64),
        (64, 100, 4),
        (1, 1, 1),
        (7, 257, 33),
        (300, 300, 300),
        (5, 513, 1),
        (13, 256, 9),
    ];
    for kernel in kernels() {
        for &(m, k, n) in &shapes {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                for beta in [0.0, 1.0, 0.3] {
                    check(kernel, &mut rng, m, k, n, ta, tb, beta);
                }
            }
        }
    }
}

#[test]
fn gemm_matches_matrixmultiply_through_its_dispatch() {
    // `gemm` itself (size limits and the best kernel): large shapes go to
    // matrixmultiply, small ones to the blocked kernel, the same bits.
    let mut rng = StdRng::seed_from_u64(17);
    for (m, k, n) in [(100, 64, 64), (300, 300, 300), (9, 5, 3)] {
        let a = random(&mut rng, m * k);
        let b = random(&mut rng, k * n);
        let mut want = random(&mut rng, m * n);
        let mut got = want.clone();
        matrixmultiply(m, k, n, &a, true, &b, true, 0.5, &mut want);
        gemm(m, k, n, &a, true, &b, true, 0.5, &mut got);
        let same = got
            .iter()
            .zip(&want)
            .all(|(g, w)| g.to_bits() == w.to_bits());
        assert!(same, "m={m} k={k} n={n}");
    }
}

#[test]
fn a_kernel_the_cpu_lacks_falls_back() {
    // Asking for AVX-512 on any CPU gives matrixmultiply's bits (the best
    // kernel it has).
    let mut rng = StdRng::seed_from_u64(18);
    check(Kernel::Avx512, &mut rng, 17, 40, 19, false, true, 1.0);
}

#[test]
fn the_cpus_kernel_keeps_matrixmultiplys_signed_zeros() {
    // Products that underflow to −0 (1e-300 · −1e-300): matrixmultiply's
    // AVX-512 kernel stores `1 · acc = −0` when β = 0, its FMA kernel
    // `acc + 0 = +0`, and with β C = −0 added its FMA kernel keeps `−0` on
    // full tiles and gives `+0` on edge tiles; the kernel this CPU runs
    // does as matrixmultiply does here.
    let kernel = best_kernel();
    for (m, k, n) in [
        (1, 5, 1),
        (7, 6, 3),
        (6, 9, 4),
        (13, 5, 5),
        (7, 300, 8),
        (8, 7, 33),
    ] {
        for (ta, tb) in [(false, false), (true, true)] {
            for beta in [0.0, 1.0] {
                let a: Vec<f64> = (0..m * k).map(|i| -1e-300 * (1 + i % 3) as f64).collect();
                let b: Vec<f64> = (0..k * n)
                    .map(|i| if i % 2 == 0 { 1e-300 } else { 2e-300 })
                    .collect();
                let mut want = vec![-0.0; m * n];
                let mut got = want.clone();
                matrixmultiply(m, k, n, &a, ta, &b, tb, beta, &mut want);
                product(kernel, m, k, n, &a, ta, &b, tb, beta, &mut got);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "{kernel:?} m={m} k={k} n={n} beta={beta}"
                );
                assert!(want.iter().any(|x| x.is_sign_negative()) || kernel != Kernel::Avx512);
            }
        }
    }
}
