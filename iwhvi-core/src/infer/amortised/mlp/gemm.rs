//! `C = β C + op(A) op(B)` for the MLPs' small row-major products, with
//! matrixmultiply's bits and without its packing.
//!
//! matrixmultiply 0.3's `dgemm` splits the inner dimension into blocks of
//! [`KC`] = 256 terms and, per block, computes each entry of `op(A) op(B)`
//! as a chain of fused multiply-adds from `+0` in the order of `l`
//! (`acc ← fma(a_il, b_lj, acc)`, its AVX2/FMA and AVX-512 kernels alike),
//! then writes `c ← acc + β c` (β the caller's for the first block, 1 for
//! the later ones; `c ← acc` when β is zero: C is not read). The AVX2/FMA
//! kernel applies α = 1 as `fma(1, acc, 0)` when β is zero, i.e. `acc + 0`,
//! which turns a `−0` into `+0`; the AVX-512 kernel as `1 · acc`.
//!
//! At the MLPs' shapes (a batch of 100 rows, 64 and 4 wide layers) every
//! operand sits in L1/L2, and packing both operands costs a quarter of
//! matrixmultiply's time. The kernels here read the row-major operands in
//! place instead: per tile of `R` rows and `V` vectors of columns, `A`'s
//! element is broadcast and `op(B)`'s row segment loaded as vectors (a
//! transposed `B` is first copied into a kept buffer, `k × n`), with the
//! same per-entry arithmetic as matrixmultiply's kernel for this CPU
//! (AVX-512 where it has AVX-512 F, else AVX2 with FMA); without either,
//! or off x86-64, or above [`MAX_ELEMS`] per operand, `gemm` calls
//! matrixmultiply. NaN payloads aside, the blocked kernels give
//! matrixmultiply's bits (the tests compare them on random shapes,
//! transposes and β, and each kernel against a scalar model of its
//! matrixmultiply kernel's arithmetic, signed zeros included): on the
//! AVX2/FMA kernel that includes its edge tiles (the rows past the last
//! multiple of 8 and the columns past the last multiple of 4), which
//! matrixmultiply finishes as `β c + (acc + 0)`, a `−0` chain becoming
//! `+0` there. `gemm`'s own direct loop for inner dimensions up to four
//! (`C = β C`, then `+= a b` without FMA) and its `k = 0` path
//! (`C = β C`) are not matrixmultiply's arithmetic; they predate the
//! kernels and keep their own bits.

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, Ordering};

/// Inner dimensions up to this take [`gemm`]'s direct loop.
const SMALL_K: usize = 4;

/// matrixmultiply's block of the inner dimension (`D_KC`): each entry's
/// FMA chain restarts from 0 every `KC` terms.
const KC: usize = 256;

/// The largest operand (elements of `A`, `B` or `C`) the blocked kernels
/// take; larger products go to matrixmultiply, whose packing pays off
/// once the operands leave L2.
const MAX_ELEMS: usize = 1 << 16;

/// The implementation of a product: matrixmultiply's `dgemm`, or the
/// register-blocked kernel for AVX2 with FMA or for AVX-512 (the same
/// bits as matrixmultiply's kernel on that instruction set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kernel {
    /// `matrixmultiply::dgemm` (packing and its micro-kernel).
    Matrixmultiply,
    /// Tiles of 6 rows × 8 columns in 256-bit registers.
    Avx2Fma,
    /// Tiles of 6 rows × 32 columns in 512-bit registers.
    Avx512,
}

/// 0: not yet detected; else 1 + the [`Kernel`]'s index.
static DETECTED: AtomicU8 = AtomicU8::new(0);

/// The kernel this CPU runs, detected once and cached: the one whose
/// arithmetic matches the kernel matrixmultiply picks here (AVX-512 F,
/// else AVX2 + FMA, else matrixmultiply itself).
///
/// ```
/// use iwhvi_core::amortised::__gemm::{Kernel, best_kernel};
/// assert!(best_kernel() >= Kernel::Matrixmultiply);
/// ```
pub fn best_kernel() -> Kernel {
    match DETECTED.load(Ordering::Relaxed) {
        1 => Kernel::Matrixmultiply,
        2 => Kernel::Avx2Fma,
        3 => Kernel::Avx512,
        _ => {
            let kernel = detect();
            DETECTED.store(kernel as u8 + 1, Ordering::Relaxed);
            kernel
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Kernel {
    use std::arch::is_x86_feature_detected as has;
    // matrixmultiply's own order (its `dgemm_kernel::detect`); the AVX-512
    // kernel also runs AVX2/FMA tiles (its last four columns or fewer), so
    // it needs those too (a CPU with AVX-512 F has them; a masked VM might
    // not, and then matrixmultiply runs its AVX-512 kernel alone).
    if has!("avx512f") && has!("avx2") && has!("fma") {
        Kernel::Avx512
    } else if has!("avx512f") {
        Kernel::Matrixmultiply
    } else if has!("avx2") && has!("fma") {
        Kernel::Avx2Fma
    } else {
        Kernel::Matrixmultiply
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Kernel {
    Kernel::Matrixmultiply
}

/// `C = β C + op(A) op(B)`, all row-major: `op(A)` is `m × k` (`A` stored
/// `k × m` when `ta`), `op(B)` is `k × n` (`B` stored `n × k` when `tb`),
/// `C` is `m × n`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
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
    // A buffer or slice of the wrong length is a programming error of the
    // caller, as a slice index out of range is (not input to validate): the
    // library's own callers (`fit`, the evaluation functions, the generated
    // models) size every buffer from the layout they checked first.
    let [mk, kn, mn] = lengths(m, k, n, a, b, c);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for x in &mut c[..m * n] {
            *x *= beta;
        }
        return;
    }
    if k <= SMALL_K && !ta && !tb {
        // A thin product (a first layer from ψ or z): row by row, each
        // row of C a sum of k rows of B, without matrixmultiply's packing.
        for (i, crow) in c[..m * n].chunks_exact_mut(n).enumerate() {
            if beta == 0.0 {
                crow.fill(0.0);
            } else if beta != 1.0 {
                for v in crow.iter_mut() {
                    *v *= beta;
                }
            }
            for (l, &aik) in a[i * k..(i + 1) * k].iter().enumerate() {
                for (v, &bv) in crow.iter_mut().zip(&b[l * n..(l + 1) * n]) {
                    *v += aik * bv;
                }
            }
        }
        return;
    }
    let kernel = if mk <= MAX_ELEMS && kn <= MAX_ELEMS && mn <= MAX_ELEMS {
        best_kernel()
    } else {
        Kernel::Matrixmultiply
    };
    product(kernel, m, k, n, a, ta, b, tb, beta, c);
}

/// The operands' sizes `[m k, k n, m n]`, asserting that none overflows
/// and that `a`, `b` and `c` hold them. A buffer or slice of the wrong
/// length is a programming error of the caller, as a slice index out of
/// range is (not input to validate); an overflowing product would let
/// short slices through to the unchecked kernels, so it is refused too.
fn lengths(m: usize, k: usize, n: usize, a: &[f64], b: &[f64], c: &[f64]) -> [usize; 3] {
    let sizes = [m.checked_mul(k), k.checked_mul(n), m.checked_mul(n)];
    let [Some(mk), Some(kn), Some(mn)] = sizes else {
        panic!("gemm: the operands' sizes {m} × {k} × {n} overflow usize");
    };
    assert!(
        a.len() >= mk && b.len() >= kn && c.len() >= mn,
        "gemm: op(A) {m} × {k}, op(B) {k} × {n} and C {m} × {n} need \
         {mk}, {kn} and {mn} values; got {}, {} and {}",
        a.len(),
        b.len(),
        c.len()
    );
    [mk, kn, mn]
}

/// [`gemm`]'s product on a given kernel (clamped to what this CPU has;
/// `k = 0` on matrixmultiply, which sets `C = β C`, 0 if β = 0).
#[allow(clippy::too_many_arguments)]
fn product(
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
    lengths(m, k, n, a, b, c);
    if m == 0 || n == 0 {
        return;
    }
    let kernel = kernel.min(best_kernel());
    if kernel == Kernel::Matrixmultiply || k == 0 {
        return matrixmultiply(m, k, n, a, ta, b, tb, beta, c);
    }
    if tb {
        // op(B) = Bᵀ: copied once into a kept buffer, `k × n` row-major.
        let mut buf = TRANSPOSED.take();
        buf.clear();
        buf.resize(k * n, 0.0);
        for (j, col) in b[..n * k].chunks_exact(k).enumerate() {
            for (l, &x) in col.iter().enumerate() {
                buf[l * n + j] = x;
            }
        }
        blocked(kernel, m, k, n, a, ta, &buf, beta, c);
        TRANSPOSED.set(buf);
    } else {
        blocked(kernel, m, k, n, a, ta, b, beta, c);
    }
}

thread_local! {
    /// The transposed `B` of the last product with `tb` (kept to reuse its
    /// allocation).
    static TRANSPOSED: Cell<Vec<f64>> = const { Cell::new(Vec::new()) };
}

/// matrixmultiply's `dgemm` on the row-major operands.
#[allow(clippy::too_many_arguments)]
fn matrixmultiply(
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
    let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
    let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
    // SAFETY: the strides address `A[..m k]`, `B[..k n]` and `C[..m n]`,
    // whose lengths the callers checked; `C` does not alias `A` or `B`
    // (a `&mut` borrow).
    unsafe {
        matrixmultiply::dgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// The operands of one blocked product (read by the x86-64 tiles only): `op(A)[i][l] = a[i rsa + l csa]`,
/// `op(B)[l][j] = b[l n + j]`, `C[i][j] = c[i n + j]`.
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Operands {
    a: *const f64,
    rsa: usize,
    csa: usize,
    b: *const f64,
    c: *mut f64,
    n: usize,
}

/// The blocked product on an AVX2/FMA or AVX-512 kernel (`kernel` is one
/// this CPU has); `b` is `op(B)`, `k × n` row-major.
#[allow(clippy::too_many_arguments)]
fn blocked(
    kernel: Kernel,
    m: usize,
    k: usize,
    n: usize,
    a: &[f64],
    ta: bool,
    b: &[f64],
    beta: f64,
    c: &mut [f64],
) {
    lengths(m, k, n, a, b, c);
    let (rsa, csa) = if ta { (1, m) } else { (k, 1) };
    let ops = Operands {
        a: a.as_ptr(),
        rsa,
        csa,
        b: b.as_ptr(),
        c: c.as_mut_ptr(),
        n,
    };
    #[cfg(target_arch = "x86_64")]
    match kernel {
        // SAFETY: the CPU has AVX-512 F (`product` clamps `kernel` to
        // `best_kernel`); every address the tiles form lies in
        // `A[..m k]`, `op(B)[..k n]` and `C[..m n]` (lengths asserted
        // above; masked lanes are not accessed), and `C` is a unique
        // borrow.
        Kernel::Avx512 => unsafe { x86::blocked_avx512(m, k, ops, beta) },
        // SAFETY: as above, for AVX2 and FMA.
        Kernel::Avx2Fma => unsafe { x86::blocked_avx2(m, k, ops, beta) },
        Kernel::Matrixmultiply => unreachable!("`product` runs matrixmultiply itself"),
    }
    let _ = (kernel, m, k, ops, beta);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The tiles: `R` rows × `V` vectors of columns of `C`, accumulators
    //! in registers, the last vector masked to the columns left.

    use std::arch::x86_64::*;

    use super::{KC, Operands};

    /// Rows per tile (both instruction sets): `6 × V` accumulators, `V`
    /// rows of `B` and one broadcast fit the registers.
    const R: usize = 6;

    /// Calls `$f::<r, v>` for runtime `r ≤ 6`, `v ≤ 4`.
    macro_rules! tile512 {
        ($f:ident, $r:expr, $v:expr, ($($arg:expr),*)) => {
            match ($r, $v) {
                (1, 1) => $f::<1, 1>($($arg),*),
                (1, 2) => $f::<1, 2>($($arg),*),
                (1, 3) => $f::<1, 3>($($arg),*),
                (1, 4) => $f::<1, 4>($($arg),*),
                (2, 1) => $f::<2, 1>($($arg),*),
                (2, 2) => $f::<2, 2>($($arg),*),
                (2, 3) => $f::<2, 3>($($arg),*),
                (2, 4) => $f::<2, 4>($($arg),*),
                (3, 1) => $f::<3, 1>($($arg),*),
                (3, 2) => $f::<3, 2>($($arg),*),
                (3, 3) => $f::<3, 3>($($arg),*),
                (3, 4) => $f::<3, 4>($($arg),*),
                (4, 1) => $f::<4, 1>($($arg),*),
                (4, 2) => $f::<4, 2>($($arg),*),
                (4, 3) => $f::<4, 3>($($arg),*),
                (4, 4) => $f::<4, 4>($($arg),*),
                (5, 1) => $f::<5, 1>($($arg),*),
                (5, 2) => $f::<5, 2>($($arg),*),
                (5, 3) => $f::<5, 3>($($arg),*),
                (5, 4) => $f::<5, 4>($($arg),*),
                (6, 1) => $f::<6, 1>($($arg),*),
                (6, 2) => $f::<6, 2>($($arg),*),
                (6, 3) => $f::<6, 3>($($arg),*),
                (6, 4) => $f::<6, 4>($($arg),*),
                _ => unreachable!("tile shapes are at most 6 × 4"),
            }
        };
    }

    /// As `tile512!`, with `v ≤ 2` and whether the last vector is masked.
    macro_rules! tile256 {
        ($f:ident, $r:expr, $v:expr, $masked:expr, $plus_zero:tt, ($($arg:expr),*)) => {
            match ($r, $v, $masked) {
                (1, 1, false) => $f::<1, 1, false, $plus_zero>($($arg),*),
                (1, 1, true) => $f::<1, 1, true, $plus_zero>($($arg),*),
                (1, 2, false) => $f::<1, 2, false, $plus_zero>($($arg),*),
                (1, 2, true) => $f::<1, 2, true, $plus_zero>($($arg),*),
                (2, 1, false) => $f::<2, 1, false, $plus_zero>($($arg),*),
                (2, 1, true) => $f::<2, 1, true, $plus_zero>($($arg),*),
                (2, 2, false) => $f::<2, 2, false, $plus_zero>($($arg),*),
                (2, 2, true) => $f::<2, 2, true, $plus_zero>($($arg),*),
                (3, 1, false) => $f::<3, 1, false, $plus_zero>($($arg),*),
                (3, 1, true) => $f::<3, 1, true, $plus_zero>($($arg),*),
                (3, 2, false) => $f::<3, 2, false, $plus_zero>($($arg),*),
                (3, 2, true) => $f::<3, 2, true, $plus_zero>($($arg),*),
                (4, 1, false) => $f::<4, 1, false, $plus_zero>($($arg),*),
                (4, 1, true) => $f::<4, 1, true, $plus_zero>($($arg),*),
                (4, 2, false) => $f::<4, 2, false, $plus_zero>($($arg),*),
                (4, 2, true) => $f::<4, 2, true, $plus_zero>($($arg),*),
                (5, 1, false) => $f::<5, 1, false, $plus_zero>($($arg),*),
                (5, 1, true) => $f::<5, 1, true, $plus_zero>($($arg),*),
                (5, 2, false) => $f::<5, 2, false, $plus_zero>($($arg),*),
                (5, 2, true) => $f::<5, 2, true, $plus_zero>($($arg),*),
                (6, 1, false) => $f::<6, 1, false, $plus_zero>($($arg),*),
                (6, 1, true) => $f::<6, 1, true, $plus_zero>($($arg),*),
                (6, 2, false) => $f::<6, 2, false, $plus_zero>($($arg),*),
                (6, 2, true) => $f::<6, 2, true, $plus_zero>($($arg),*),
                _ => unreachable!("tile shapes are at most 6 × 2"),
            }
        };
    }

    /// The tiles of `C` (`m × n`) and the blocks of `k`, in the order:
    /// rows, columns, blocks of [`KC`] (each tile's entries finished before
    /// the next tile).
    ///
    /// # Safety
    /// The CPU has AVX-512 F; `ops` addresses `op(A)` `m × k`, `op(B)`
    /// `k × n` and `C` `m × n`, `C` aliasing neither.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn blocked_avx512(m: usize, k: usize, ops: Operands, beta: f64) {
        const W: usize = 8 * 4;
        for i0 in (0..m).step_by(R) {
            let r = R.min(m - i0);
            for j0 in (0..ops.n).step_by(W) {
                let w = W.min(ops.n - j0);
                let mut l0 = 0;
                let mut b = beta;
                while l0 < k {
                    let kc = KC.min(k - l0);
                    // SAFETY: the tile's rows `i0..i0 + r`, columns
                    // `j0..j0 + w` and terms `l0..l0 + kc` lie inside the
                    // operands (the caller's contract).
                    unsafe {
                        let t = tile_of(ops, i0, j0, l0);
                        if w <= 4 {
                            // A half-empty 512-bit vector costs a full one.
                            tile256!(tile_avx2, r, 1, w < 4, false, (t, kc, w, b, NO_EDGE));
                        } else {
                            tile512!(tile_avx512, r, w.div_ceil(8), (t, kc, w, b));
                        }
                    }
                    l0 += kc;
                    b = 1.0;
                }
            }
        }
    }

    /// As [`blocked_avx512`], in 256-bit registers.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `ops` as in [`blocked_avx512`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn blocked_avx2(m: usize, k: usize, ops: Operands, beta: f64) {
        const W: usize = 4 * 2;
        for i0 in (0..m).step_by(R) {
            let r = R.min(m - i0);
            for j0 in (0..ops.n).step_by(W) {
                let w = W.min(ops.n - j0);
                // matrixmultiply's FMA kernel's edge tiles (8 × 4): from
                // which of this tile's rows and columns on.
                let edge = [
                    (m - m % 8).saturating_sub(i0),
                    (ops.n - ops.n % 4).saturating_sub(j0),
                ];
                let mut l0 = 0;
                let mut b = beta;
                while l0 < k {
                    let kc = KC.min(k - l0);
                    // SAFETY: as in `blocked_avx512`.
                    unsafe {
                        let t = tile_of(ops, i0, j0, l0);
                        tile256!(
                            tile_avx2,
                            r,
                            w.div_ceil(4),
                            !w.is_multiple_of(4),
                            true,
                            (t, kc, w, b, edge)
                        );
                    }
                    l0 += kc;
                    b = 1.0;
                }
            }
        }
    }

    /// The operands offset to the tile at row `i0`, column `j0`, term `l0`.
    ///
    /// # Safety
    /// The offsets lie inside the operands.
    #[inline(always)]
    unsafe fn tile_of(ops: Operands, i0: usize, j0: usize, l0: usize) -> Operands {
        // SAFETY: the caller's contract.
        unsafe {
            Operands {
                a: ops.a.add(i0 * ops.rsa + l0 * ops.csa),
                b: ops.b.add(l0 * ops.n + j0),
                c: ops.c.add(i0 * ops.n + j0),
                ..ops
            }
        }
    }

    /// One tile: `RT` rows, `VT` vectors of 8 columns (the last masked to
    /// `w − 8 (VT − 1)`), `kc` terms; `C ← acc + β C` (`acc` if β = 0).
    ///
    /// # Safety
    /// The CPU has AVX-512 F; `t` addresses the tile's `RT × kc` terms of
    /// `op(A)`, `kc × w` of `op(B)` and `RT × w` of `C`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile_avx512<const RT: usize, const VT: usize>(
        t: Operands,
        kc: usize,
        w: usize,
        beta: f64,
    ) {
        let mask: __mmask8 = (0xffu16 >> (8 - (w - 8 * (VT - 1)))) as u8;
        let mut acc = [[_mm512_setzero_pd(); VT]; RT];
        // SAFETY: every load lies in the tile (the caller's contract);
        // the masked load and store do not touch the masked-off lanes.
        unsafe {
            for l in 0..kc {
                let brow = t.b.add(l * t.n);
                let mut bv = [_mm512_setzero_pd(); VT];
                for (v, x) in bv.iter_mut().enumerate() {
                    *x = if v + 1 < VT {
                        _mm512_loadu_pd(brow.add(8 * v))
                    } else {
                        _mm512_maskz_loadu_pd(mask, brow.add(8 * v))
                    };
                }
                let arow = t.a.add(l * t.csa);
                for (r, row) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_pd(*arow.add(r * t.rsa));
                    for (s, &y) in row.iter_mut().zip(&bv) {
                        *s = _mm512_fmadd_pd(x, y, *s);
                    }
                }
            }
            let betav = _mm512_set1_pd(beta);
            for (r, row) in acc.iter().enumerate() {
                let crow = t.c.add(r * t.n);
                for (v, &s) in row.iter().enumerate() {
                    let m = if v + 1 < VT { 0xff } else { mask };
                    let p = crow.add(8 * v);
                    let out = if beta == 0.0 {
                        s
                    } else {
                        _mm512_add_pd(s, _mm512_mul_pd(_mm512_maskz_loadu_pd(m, p), betav))
                    };
                    _mm512_mask_storeu_pd(p, m, out);
                }
            }
        }
    }

    /// No entry of the tile on an edge of matrixmultiply's FMA kernel
    /// (for the AVX-512 kernel's tiles, whose edges are its full tiles'
    /// arithmetic).
    const NO_EDGE: [usize; 2] = [usize::MAX; 2];

    /// As [`tile_avx512`], vectors of 4 columns, the last one masked only
    /// when `MASKED` (`vmaskmovpd` is slower than a plain load, and the
    /// mask would take a register). When `PLUS_ZERO`, matrixmultiply's FMA
    /// kernel's arithmetic: `C ← acc + 0` if β = 0 (its `fma(1, acc, 0)`),
    /// else `C ← acc + β C`, or `C ← (acc + 0) + β C` for the entries on
    /// its edge tiles (from tile row `edge[0]` or tile column `edge[1]`
    /// on), which it finishes through a buffer as `β c + (acc + 0)`. Else
    /// its AVX-512 kernel's: `C ← acc` if β = 0 (`1 · acc`), else
    /// `acc + β C` (for the AVX-512 kernel's last four columns or fewer).
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `t` as in [`tile_avx512`].
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile_avx2<
        const RT: usize,
        const VT: usize,
        const MASKED: bool,
        const PLUS_ZERO: bool,
    >(
        t: Operands,
        kc: usize,
        w: usize,
        beta: f64,
        edge: [usize; 2],
    ) {
        let left = (w - 4 * (VT - 1)) as i64;
        let mask = _mm256_set_epi64x(
            -i64::from(left > 3),
            -i64::from(left > 2),
            -i64::from(left > 1),
            -1,
        );
        let mut acc = [[_mm256_setzero_pd(); VT]; RT];
        // SAFETY: as in `tile_avx512` (`maskload`/`maskstore` do not touch
        // the masked-off lanes).
        unsafe {
            for l in 0..kc {
                let brow = t.b.add(l * t.n);
                let mut bv = [_mm256_setzero_pd(); VT];
                for (v, x) in bv.iter_mut().enumerate() {
                    *x = if v + 1 < VT || !MASKED {
                        _mm256_loadu_pd(brow.add(4 * v))
                    } else {
                        _mm256_maskload_pd(brow.add(4 * v), mask)
                    };
                }
                let arow = t.a.add(l * t.csa);
                for (r, row) in acc.iter_mut().enumerate() {
                    let x = _mm256_set1_pd(*arow.add(r * t.rsa));
                    for (s, &y) in row.iter_mut().zip(&bv) {
                        *s = _mm256_fmadd_pd(x, y, *s);
                    }
                }
            }
            let betav = _mm256_set1_pd(beta);
            // Added to `acc` before `β C`: `+0` on the edge entries (a
            // `−0` becomes `+0`), `−0` elsewhere (`x + −0 = x` for every
            // x, signed zeros included).
            let zero = |col: usize| if col >= edge[1] { 0.0 } else { -0.0 };
            let mut off_edge_row = [_mm256_set1_pd(-0.0); VT];
            for (v, z) in off_edge_row.iter_mut().enumerate() {
                let c = 4 * v;
                *z = _mm256_set_pd(zero(c + 3), zero(c + 2), zero(c + 1), zero(c));
            }
            for (r, row) in acc.iter().enumerate() {
                let crow = t.c.add(r * t.n);
                for (v, &s) in row.iter().enumerate() {
                    let p = crow.add(4 * v);
                    let full = v + 1 < VT || !MASKED;
                    let out = if beta == 0.0 {
                        if PLUS_ZERO {
                            _mm256_add_pd(s, _mm256_setzero_pd())
                        } else {
                            s
                        }
                    } else {
                        let old = if full {
                            _mm256_loadu_pd(p)
                        } else {
                            _mm256_maskload_pd(p, mask)
                        };
                        let s = if !PLUS_ZERO {
                            s
                        } else if r >= edge[0] {
                            _mm256_add_pd(s, _mm256_setzero_pd())
                        } else {
                            _mm256_add_pd(s, off_edge_row[v])
                        };
                        _mm256_add_pd(s, _mm256_mul_pd(old, betav))
                    };
                    if full {
                        _mm256_storeu_pd(p, out);
                    } else {
                        _mm256_maskstore_pd(p, mask, out);
                    }
                }
            }
        }
    }
}

/// The products for benchmarks and tests: [`Kernel`], [`best_kernel`] and
/// `product` (`C = β C + op(A) op(B)` on a given kernel, clamped to this
/// CPU's). Not part of the API.
#[doc(hidden)]
pub mod bench {
    pub use super::{Kernel, best_kernel};

    /// `C = β C + op(A) op(B)` (row-major, as `gemm`) on `kernel`, or on
    /// the best one this CPU has below it.
    ///
    /// ```
    /// use iwhvi_core::amortised::__gemm::{Kernel, product};
    /// let (a, b) = ([1.0, 2.0, 3.0, 4.0], [1.0, 0.0, 0.0, 1.0]);
    /// let mut c = [0.0; 4];
    /// product(Kernel::Avx512, 2, 2, 2, &a, false, &b, false, 0.0, &mut c);
    /// assert_eq!(c, a);
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn product(
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
        super::product(kernel, m, k, n, a, ta, b, tb, beta, c);
    }
}

#[cfg(test)]
mod tests;
