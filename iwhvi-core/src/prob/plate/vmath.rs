//! Vectorisable transcendentals over `f64`: `exp`, `ln`, `ln_1p`, softplus
//! and log-sigmoid as branch-free polynomials in plain `f64` arithmetic.
//!
//! Each function is written for one element, with selects instead of
//! branches and no calls, so that a loop over a slice of them is
//! auto-vectorised by LLVM. There is no `mul_add` anywhere, and Rust never
//! contracts `a * b + c` into a fused multiply-add, so an element's result
//! is the same bits whatever the vector width: the loops are compiled
//! three times, as a portable function (SSE2 on x86-64), as an
//! `#[target_feature(enable = "avx2")]` clone and as an AVX-512 (F and DQ)
//! clone, the best chosen at run time ([`dispatch`]), and all give
//! identical bits. A fit therefore reproduces across machines with and
//! without AVX2 or AVX-512.
//!
//! The methods are the classical ones (Cody–Waite reduction and a
//! polynomial for `exp`, as in Cephes and SLEEF; the `s = f / (2 + f)`
//! series of fdlibm for `ln` and `ln_1p`, with the rounding error of
//! `1 + x` carried as a correction); the code and the Taylor coefficients
//! are our own. Accuracy against `std`: at most 1 ulp for `exp`, `ln` and
//! `ln_1p` on the tests' 10⁶ points, including subnormal results and
//! arguments (see the tests at the bottom).

use std::sync::atomic::{AtomicU8, Ordering};

/// `ln 2` split for Cody–Waite reduction: `LN2_HI` has 32 significant
/// bits, so `k · LN2_HI` is exact for `|k| < 2²¹`.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
/// `ln 2 − LN2_HI`.
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
/// `1 / ln 2`.
const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// `1.5 · 2⁵²`: adding and subtracting it rounds to the nearest integer
/// (ties to even) for `|v| < 2⁵¹`, and the low bits of the sum hold it.
const ROUND_MAGIC: f64 = 6_755_399_441_055_744.0;
/// Above this, `eˣ` overflows (it is `ln f64::MAX ≈ 709.78` rounded up).
const EXP_HI: f64 = 710.0;
/// Below this, `eˣ` rounds to `0` (`ln(2⁻¹⁰⁷⁵) ≈ −745.13`).
const EXP_LO: f64 = -746.0;

/// `eʳ − 1 − r` as `r² · (1/2! + r/3! + … + r¹¹/13!)`: the Taylor series,
/// whose remainder for `|r| ≤ ln2 / 2` is below `2⁻⁵⁸`, summed by Estrin's
/// scheme.
#[inline(always)]
fn expm1_tail(r: f64) -> f64 {
    const C: [f64; 12] = [
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5_040.0,
        1.0 / 40_320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
        1.0 / 6_227_020_800.0,
    ];
    // Estrin's scheme: a dependency chain of depth ~8 rather than Horner's
    // 24, so that the out-of-order core overlaps neighbouring vectors.
    let r2 = r * r;
    let r4 = r2 * r2;
    let s0 = lin(C[0], C[1], r) + lin(C[2], C[3], r) * r2;
    let s1 = lin(C[4], C[5], r) + lin(C[6], C[7], r) * r2;
    let s2 = lin(C[8], C[9], r) + lin(C[10], C[11], r) * r2;
    r2 * (s0 + r4 * (s1 + r4 * s2))
}

/// `a + b x`.
#[inline(always)]
fn lin(a: f64, b: f64, x: f64) -> f64 {
    a + b * x
}

/// `2ᵏ` for `k` in `[−1022, 1023]`, from its bits.
#[inline(always)]
fn pow2(k: i64) -> f64 {
    f64::from_bits((k.wrapping_add(1023) as u64) << 52)
}

/// `eˣ`: `x = k ln2 + r` with `|r| ≤ ln2 / 2`, `eʳ` by its Taylor series
/// summed as `1 + (r + r²·P(r))`, then scaled by `2ᵏ` in two exact halves
/// so that a subnormal result is rounded once. `+∞` above ≈ 709.78, `0`
/// below ≈ −745.13, NaN for NaN.
#[inline(always)]
pub(crate) fn exp(x: f64) -> f64 {
    // Clamping keeps k in range; NaN passes through (the comparisons fail).
    let xc = if x > EXP_HI { EXP_HI } else { x };
    let xc = if xc < EXP_LO { EXP_LO } else { xc };
    let shifted = xc * LOG2_E + ROUND_MAGIC;
    let kf = shifted - ROUND_MAGIC;
    let k = (shifted.to_bits() as i64).wrapping_sub(ROUND_MAGIC.to_bits() as i64);
    let r = (xc - kf * LN2_HI) - kf * LN2_LO;
    let p = 1.0 + (r + expm1_tail(r));
    let k1 = k >> 1;
    p * pow2(k1) * pow2(k.wrapping_sub(k1))
}

/// `ln(1 + f)` for `f = m − 1`, `m ∈ [√½, √2)`, minus `f`'s leading part:
/// given `s = f / (2 + f)`, returns `(hfsq, s · (hfsq + R))` with
/// `hfsq = f²/2` and `R = 2s²/3 + 2s⁴/5 + …`, so that
/// `ln(1 + f) = f − (hfsq − s(hfsq + R))`.
#[inline(always)]
fn log1p_core(f: f64, s: f64) -> (f64, f64) {
    // 2 / (2n + 1) for n = 1..=10; s² ≤ 0.0295, remainder below 2⁻⁵⁸.
    const C: [f64; 10] = [
        2.0 / 3.0,
        2.0 / 5.0,
        2.0 / 7.0,
        2.0 / 9.0,
        2.0 / 11.0,
        2.0 / 13.0,
        2.0 / 15.0,
        2.0 / 17.0,
        2.0 / 19.0,
        2.0 / 21.0,
    ];
    let z = s * s;
    // Estrin's scheme, as in `expm1_tail`.
    let z2 = z * z;
    let z4 = z2 * z2;
    let s0 = lin(C[0], C[1], z) + lin(C[2], C[3], z) * z2;
    let s1 = lin(C[4], C[5], z) + lin(C[6], C[7], z) * z2;
    let p = s0 + z4 * (s1 + z4 * lin(C[8], C[9], z));
    let r = z * p;
    let hfsq = 0.5 * f * f;
    (hfsq, s * (hfsq + r))
}

/// Splits a positive normal `u` as `2ᵉ · m`, `m ∈ [√½, √2)`: returns
/// `(e, m − 1)` (the subtraction is exact).
#[inline(always)]
fn split(u: f64) -> (i64, f64) {
    // Adding 1.0's bits minus √½'s bits carries into the exponent exactly
    // when m ≥ √2; the mantissa plus √½'s bits gives m back in [√½, √2).
    const SQRT_HALF_BITS: i64 = 0x3fe6_a09e_667f_3bcd;
    const ONE_BITS: i64 = 0x3ff0_0000_0000_0000;
    const MANTISSA: i64 = 0x000f_ffff_ffff_ffff;
    let ix = (u.to_bits() as i64).wrapping_add(ONE_BITS - SQRT_HALF_BITS);
    let e = (ix >> 52) - 1023;
    let m = f64::from_bits(((ix & MANTISSA) + SQRT_HALF_BITS) as u64);
    (e, m - 1.0)
}

/// `ln x`: `x = 2ᵉ m`, `ln x = e ln2 + ln m` (fdlibm's form); subnormal
/// `x` is scaled by `2⁵⁴` first. `−∞` at `±0`, NaN below 0, `+∞` at `+∞`,
/// NaN for NaN.
#[inline(always)]
pub(crate) fn ln(x: f64) -> f64 {
    let sub = x < f64::MIN_POSITIVE;
    let xs = if sub { x * 18_014_398_509_481_984.0 } else { x };
    let (e, f) = split(xs);
    let e = e as f64;
    let e = if sub { e - 54.0 } else { e };
    let (hfsq, t) = log1p_core(f, f / (2.0 + f));
    let core = e * LN2_HI - ((hfsq - (t + e * LN2_LO)) - f);
    let special = if x == 0.0 {
        f64::NEG_INFINITY
    } else if x < 0.0 {
        f64::NAN
    } else {
        x
    };
    if x > 0.0 && x < f64::INFINITY {
        core
    } else {
        special
    }
}

/// `ln(1 + x)`: `u = 1 + x` rounded, `c` the rounding error (exact),
/// `ln(1 + x) = ln u + c / u` with `ln u` as in [`ln`]. `x` itself for
/// `|x| < 2⁻⁵⁴` (keeps `−0`), `−∞` at `−1`, NaN below `−1`, `+∞` at `+∞`.
#[inline(always)]
pub(crate) fn ln_1p(x: f64) -> f64 {
    let u = 1.0 + x;
    // u − 1 is exact for u < 2 (Sterbenz), u − x for x ≥ 1.
    let c = if x < 1.0 {
        x - (u - 1.0)
    } else {
        1.0 - (u - x)
    };
    // One division for both s = f / (2 + f) and c / u = c / (2ᵉ m):
    // 1 / ((2 + f) m), with m = 1 + f in [√½, √2) so that it cannot
    // overflow; 2⁻ᵉ in two halves (e reaches 1024).
    let (e, f) = split(u);
    let (m, two_f) = (1.0 + f, 2.0 + f);
    let inv = 1.0 / (two_f * m);
    let s = f * m * inv;
    let e1 = e >> 1;
    let c = c * two_f * inv * pow2(-e1) * pow2(e1 - e);
    let e = e as f64;
    let (hfsq, t) = log1p_core(f, s);
    let core = e * LN2_HI - ((hfsq - (t + (e * LN2_LO + c))) - f);
    let special = if x == -1.0 {
        f64::NEG_INFINITY
    } else if x < -1.0 {
        f64::NAN
    } else {
        x
    };
    let tiny = x.abs() < 5.551_115_123_125_783e-17;
    if tiny {
        x
    } else if x > -1.0 && x < f64::INFINITY {
        core
    } else {
        special
    }
}

/// `ln(1 + x)` for `x ∈ [−0, 1]`: the same operations on the same
/// values as [`ln_1p`], so the same bits, without what only arguments
/// outside `[−0, 1]` need. There `u = 1 + x ∈ [1, 2]`, so `split(u)`'s
/// biased exponent `b = e + 1023` is 1023 or 1024: a logical shift gives
/// it (AVX2 has no 64-bit arithmetic shift), `e` as `f64` is exact by the
/// `ROUND_MAGIC` trick (AVX2 has no 64-bit conversion), and `2⁻ᵉ` (for
/// `ln_1p`'s `pow2(−e₁) · pow2(e₁ − e)`, `e₁ = 0`) is built from bits.
/// Integer operations rather than selects on `e`, which LLVM would turn
/// into both arms of the division. NaN for NaN; other arguments give
/// unspecified values.
#[inline(always)]
pub(crate) fn ln_1p_unit(x: f64) -> f64 {
    const SQRT_HALF_BITS: u64 = 0x3fe6_a09e_667f_3bcd;
    const ONE_BITS: u64 = 0x3ff0_0000_0000_0000;
    const MANTISSA: u64 = 0x000f_ffff_ffff_ffff;
    let u = 1.0 + x;
    // `ln_1p`'s correction for x < 1; at x = 1 both of its forms are 0.
    let c = x - (u - 1.0);
    // `split(u)`, its shift logical (the same for a positive `ix`).
    let ix = u.to_bits().wrapping_add(ONE_BITS - SQRT_HALF_BITS);
    let biased = ix >> 52;
    let f = f64::from_bits((ix & MANTISSA).wrapping_add(SQRT_HALF_BITS)) - 1.0;
    // `e as f64`, exact: the low bits of ROUND_MAGIC hold `biased`.
    let e = f64::from_bits(ROUND_MAGIC.to_bits().wrapping_add(biased)) - (ROUND_MAGIC + 1023.0);
    // 2⁻ᵉ = 2^(1023 − e) / 2¹⁰²³: biased exponent 2046 − biased.
    let scale = f64::from_bits(2046u64.wrapping_sub(biased) << 52);
    let (m, two_f) = (1.0 + f, 2.0 + f);
    let inv = 1.0 / (two_f * m);
    let s = f * m * inv;
    let c = c * two_f * inv * scale;
    let (hfsq, t) = log1p_core(f, s);
    let core = e * LN2_HI - ((hfsq - (t + (e * LN2_LO + c))) - f);
    if x < 5.551_115_123_125_783e-17 {
        x
    } else {
        core
    }
}

/// Softplus `ln(1 + eˣ) = max(x, 0) + ln(1 + e^{−|x|})`: never overflows,
/// `+∞` at `+∞`, `0` at `−∞`, NaN for NaN.
#[inline(always)]
pub(crate) fn softplus(x: f64) -> f64 {
    let pos = if x > 0.0 { x } else { 0.0 };
    pos + ln_1p(exp(-x.abs()))
}

/// Log-sigmoid `ln σ(x) = −softplus(−x)`.
#[inline(always)]
pub(crate) fn log_sigmoid(x: f64) -> f64 {
    -softplus(-x)
}

/// Instruction sets the kernels can run on, each a superset of the one
/// before (the order of the variants).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// The portable build (SSE2 on x86-64).
    Portable,
    /// AVX2 (x86-64 only, when the CPU has it).
    Avx2,
    /// AVX-512 F and DQ (x86-64 only, when the CPU has them): twice the
    /// lanes of AVX2, 64-bit integer shifts and conversions.
    Avx512,
}

impl Isa {
    /// Every instruction set, in order.
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2, Isa::Avx512];
}

/// 0: not yet detected; 1: portable; 2: AVX2; 3: AVX-512.
static DETECTED: AtomicU8 = AtomicU8::new(0);

/// The best instruction set of this CPU, detected once and cached.
pub fn best_isa() -> Isa {
    match DETECTED.load(Ordering::Relaxed) {
        1 => Isa::Portable,
        2 => Isa::Avx2,
        3 => Isa::Avx512,
        _ => {
            let isa = detect();
            let code = match isa {
                Isa::Portable => 1,
                Isa::Avx2 => 2,
                Isa::Avx512 => 3,
            };
            DETECTED.store(code, Ordering::Relaxed);
            isa
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Isa {
    use std::arch::is_x86_feature_detected as has;
    if has!("avx512f") && has!("avx512dq") {
        Isa::Avx512
    } else if has!("avx2") {
        Isa::Avx2
    } else {
        Isa::Portable
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Isa {
    Isa::Portable
}

/// A computation to run under [`dispatch`]: `run` and everything it calls
/// must be `#[inline(always)]` (closures are not: LLVM may leave a closure
/// called from both clones out of line, compiled without AVX2).
pub(crate) trait Simd {
    /// What the computation returns.
    type Output;
    /// The computation; implementations are `#[inline(always)]`.
    fn run(self) -> Self::Output;
}

/// Runs `work` compiled for the best instruction set of this CPU: `work`
/// and everything it inlines (the functions of this module, the kernels'
/// loops) is compiled twice more, in an AVX2 and an AVX-512 clone. All
/// give the same bits.
#[inline(always)]
pub(crate) fn dispatch<S: Simd>(work: S) -> S::Output {
    #[cfg(test)]
    if let Some(isa) = FORCED.get() {
        return dispatch_on(isa, work);
    }
    dispatch_on(best_isa(), work)
}

#[cfg(test)]
thread_local! {
    /// The instruction set [`dispatch`] uses on this thread, in tests.
    static FORCED: std::cell::Cell<Option<Isa>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with every [`dispatch`] on this thread on `isa` (tests only).
#[cfg(test)]
pub(crate) fn with_isa<R>(isa: Isa, f: impl FnOnce() -> R) -> R {
    FORCED.set(Some(isa));
    let result = f();
    FORCED.set(None);
    result
}

/// [`dispatch`] on a given instruction set (falls back to the best one
/// this CPU has below `isa` when `isa` is not available).
#[inline(always)]
pub(crate) fn dispatch_on<S: Simd>(isa: Isa, work: S) -> S::Output {
    #[cfg(target_arch = "x86_64")]
    match isa.min(best_isa()) {
        // SAFETY: the CPU has AVX-512 F and DQ (checked by `best_isa`).
        Isa::Avx512 => return unsafe { run_avx512(work) },
        // SAFETY: the CPU has AVX2 (checked by `best_isa`).
        Isa::Avx2 => return unsafe { run_avx2(work) },
        Isa::Portable => {}
    }
    let _ = isa;
    run_portable(work)
}

#[inline(never)]
fn run_portable<S: Simd>(work: S) -> S::Output {
    work.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline(never)]
unsafe fn run_avx2<S: Simd>(work: S) -> S::Output {
    work.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
#[inline(never)]
unsafe fn run_avx512<S: Simd>(work: S) -> S::Output {
    work.run()
}

/// Slice versions of the functions, for benchmarks and tests: `out[i] =
/// f(xs[i])` on the given instruction set. Not part of the API.
#[doc(hidden)]
pub mod slices {
    pub use super::{Isa, best_isa};

    /// The slices of one call.
    struct Map<'a> {
        xs: &'a [f64],
        out: &'a mut [f64],
    }

    macro_rules! slice_fn {
        ($($name:ident),+) => {$(
            #[doc = concat!("`out[i] = ", stringify!($name), "(xs[i])`, on `isa`.")]
            ///
            /// # Panics
            /// If the lengths differ.
            pub fn $name(isa: Isa, xs: &[f64], out: &mut [f64]) {
                assert_eq!(xs.len(), out.len(), "vmath: lengths differ");
                // One type per function, so that `run` calls it directly.
                struct Run<'a>(Map<'a>);
                impl super::Simd for Run<'_> {
                    type Output = ();
                    #[inline(always)]
                    fn run(self) {
                        for (o, &x) in self.0.out.iter_mut().zip(self.0.xs) {
                            *o = super::$name(x);
                        }
                    }
                }
                super::dispatch_on(isa, Run(Map { xs, out }))
            }
        )+};
    }

    slice_fn!(exp, ln, ln_1p, softplus, log_sigmoid);
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    use super::slices::{self, Isa};
    use super::*;

    /// The distance in ulps between two floats of the same sign (NaN with
    /// NaN is 0, NaN with a number is `u64::MAX`).
    fn ulps(a: f64, b: f64) -> u64 {
        if a.is_nan() || b.is_nan() {
            return if a.is_nan() && b.is_nan() {
                0
            } else {
                u64::MAX
            };
        }
        if a == b {
            return 0;
        }
        // Map to a monotone integer line.
        let key = |x: f64| {
            let bits = x.to_bits() as i64;
            if bits < 0 { i64::MIN - bits } else { bits }
        };
        key(a).abs_diff(key(b))
    }

    type Ours = fn(Isa, &[f64], &mut [f64]);

    /// `ours` on every ISA against `reference` over `xs`: max ulps, and
    /// the ISAs' bits equal.
    fn max_ulps(ours: Ours, reference: fn(f64) -> f64, xs: &[f64]) -> (u64, f64) {
        let mut portable = vec![0.0; xs.len()];
        let mut other = vec![0.0; xs.len()];
        ours(Isa::Portable, xs, &mut portable);
        for isa in [Isa::Avx2, Isa::Avx512] {
            ours(isa, xs, &mut other);
            for (i, (a, b)) in portable.iter().zip(&other).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "{isa:?} differs at {}", xs[i]);
            }
        }
        let mut worst = (0, 0.0);
        for (&x, &y) in xs.iter().zip(&portable) {
            let u = ulps(y, reference(x));
            if u > worst.0 {
                worst = (u, x);
            }
        }
        eprintln!(
            "max {} ulps at x = {:e} over {} points",
            worst.0,
            worst.1,
            xs.len()
        );
        worst
    }

    /// `n` points uniform in `[lo, hi]`, plus the given edges.
    fn points(seed: u64, n: usize, lo: f64, hi: f64, edges: &[f64]) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut xs: Vec<f64> = (0..n)
            .map(|_| lo + (hi - lo) * rng.random::<f64>())
            .collect();
        xs.extend_from_slice(edges);
        xs
    }

    /// `n` points log-uniform in magnitude over `[2^lo, 2^hi]`, both signs
    /// if `signed`.
    fn log_points(seed: u64, n: usize, lo: f64, hi: f64, signed: bool) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let m = (lo + (hi - lo) * rng.random::<f64>()).exp2();
                if signed && rng.random::<bool>() {
                    -m
                } else {
                    m
                }
            })
            .collect()
    }

    const SPECIALS: [f64; 8] = [
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        f64::MIN_POSITIVE,
        5e-324,
        f64::MAX,
    ];

    #[test]
    fn isa_detection_is_cached() {
        let isa = best_isa();
        assert_eq!(best_isa(), isa);
    }

    #[test]
    fn exp_is_within_one_ulp() {
        let mut edges = SPECIALS.to_vec();
        edges.extend([
            709.78,
            709.782_712_893_384,
            709.79,
            -745.13,
            -745.14,
            -708.4,
            -708.39,
        ]);
        edges.extend([
            -744.44,
            -740.0,
            -730.5,
            1e-300,
            -1e-300,
            0.346_573_590_279_972_6,
        ]);
        let xs = points(1, 1_000_000, -746.0, 710.0, &edges);
        let (u, at) = max_ulps(slices::exp, f64::exp, &xs);
        assert!(u <= 1, "exp: {u} ulps at {at}");
        // Subnormal results: [-745.13, -708.4].
        let xs = points(2, 200_000, -745.2, -708.0, &[]);
        let (u, at) = max_ulps(slices::exp, f64::exp, &xs);
        assert!(u <= 1, "exp (subnormal results): {u} ulps at {at}");
        // Near zero.
        let xs = log_points(3, 200_000, -80.0, 0.0, true);
        let (u, at) = max_ulps(slices::exp, f64::exp, &xs);
        assert!(u <= 1, "exp (small x): {u} ulps at {at}");
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp(710.0), f64::INFINITY);
        assert!(exp(f64::NAN).is_nan());
    }

    #[test]
    fn ln_is_within_one_ulp() {
        let mut xs = log_points(4, 1_000_000, -1074.0, 1024.0, false);
        xs.extend(SPECIALS);
        xs.extend([
            -1.0,
            -5e-324,
            1.0,
            1.0 + f64::EPSILON,
            1.0 - f64::EPSILON / 2.0,
        ]);
        xs.extend([
            std::f64::consts::SQRT_2,
            std::f64::consts::FRAC_1_SQRT_2,
            2.0,
            0.5,
        ]);
        let (u, at) = max_ulps(slices::ln, f64::ln, &xs);
        assert!(u <= 1, "ln: {u} ulps at {at}");
        // Around 1, where the result is small.
        let xs = points(5, 200_000, 0.5, 2.0, &[]);
        let (u, at) = max_ulps(slices::ln, f64::ln, &xs);
        assert!(u <= 1, "ln near 1: {u} ulps at {at}");
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert_eq!(ln(-0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan() && ln(f64::NAN).is_nan());
        assert_eq!(ln(f64::INFINITY), f64::INFINITY);
    }

    #[test]
    fn ln_1p_is_within_one_ulp() {
        let mut xs = log_points(6, 1_000_000, -1074.0, 1024.0, false);
        xs.extend(log_points(7, 300_000, -60.0, 0.0, true));
        xs.extend(points(8, 200_000, -1.0, 1.0, &[]));
        xs.extend(SPECIALS);
        xs.extend([
            -1.0,
            -1.5,
            -0.5,
            -1.0 + f64::EPSILON / 2.0,
            1.0,
            2f64.powi(53),
        ]);
        let (u, at) = max_ulps(slices::ln_1p, f64::ln_1p, &xs);
        assert!(u <= 1, "ln_1p: {u} ulps at {at}");
        assert_eq!(ln_1p(-1.0), f64::NEG_INFINITY);
        assert!(ln_1p(-2.0).is_nan() && ln_1p(f64::NAN).is_nan());
        assert_eq!(ln_1p(f64::INFINITY), f64::INFINITY);
        assert_eq!(ln_1p(-0.0).to_bits(), (-0.0f64).to_bits());
    }

    /// `out[i] = ln_1p_unit(xs[i])` on `isa`.
    fn ln_1p_unit_slice(isa: Isa, xs: &[f64], out: &mut [f64]) {
        struct Run<'a>(&'a [f64], &'a mut [f64]);
        impl Simd for Run<'_> {
            type Output = ();
            #[inline(always)]
            fn run(self) {
                for (o, &x) in self.1.iter_mut().zip(self.0) {
                    *o = ln_1p_unit(x);
                }
            }
        }
        dispatch_on(isa, Run(xs, out))
    }

    #[test]
    fn ln_1p_unit_is_ln_1p_on_the_unit_interval() {
        // Uniform and log-uniform points of [0, 1], the edges of `tiny`,
        // of the exponent's switch at √2 and of the interval.
        let mut xs = points(12, 300_000, 0.0, 1.0, &[]);
        xs.extend(log_points(13, 300_000, -1074.0, 0.0, false));
        // u = 1 + x from √2 on has the exponent 1.
        let switch = std::f64::consts::SQRT_2 - 1.0;
        let tiny = 5.551_115_123_125_783e-17;
        for x in [switch, tiny, 1.0, f64::MIN_POSITIVE] {
            for k in -8i64..=8 {
                let y = f64::from_bits((x.to_bits() as i64 + k) as u64);
                if (0.0..=1.0).contains(&y) {
                    xs.push(y);
                }
            }
        }
        xs.extend([0.0, -0.0, 5e-324, 0.5, 0.25, f64::EPSILON]);
        let (mut unit, mut general) = (vec![0.0; xs.len()], vec![0.0; xs.len()]);
        for isa in Isa::ALL {
            ln_1p_unit_slice(isa, &xs, &mut unit);
            slices::ln_1p(isa, &xs, &mut general);
            for ((&x, a), b) in xs.iter().zip(&unit).zip(&general) {
                assert_eq!(a.to_bits(), b.to_bits(), "{isa:?} at {x:e}: {a} vs {b}");
            }
        }
        assert_eq!(split(std::f64::consts::SQRT_2).0, 1);
        assert_eq!(split(std::f64::consts::SQRT_2.next_down()).0, 0);
        assert!(ln_1p_unit(f64::NAN).is_nan());
    }

    #[test]
    fn softplus_and_log_sigmoid_match_the_scalar_forms() {
        // The references compose libm's exp and ln_1p (each ≤ 1 ulp from
        // exact), so ours may differ from them by the sum of both errors.
        let mut xs = points(9, 1_000_000, -800.0, 800.0, &SPECIALS);
        xs.extend(points(10, 200_000, -40.0, 40.0, &[]));
        xs.extend(log_points(11, 200_000, -60.0, 3.0, true));
        let (u, at) = max_ulps(slices::softplus, crate::special::softplus, &xs);
        assert!(u <= 2, "softplus: {u} ulps at {at}");
        let (u, at) = max_ulps(slices::log_sigmoid, crate::special::log_sigmoid, &xs);
        assert!(u <= 2, "log_sigmoid: {u} ulps at {at}");
        assert_eq!(softplus(f64::INFINITY), f64::INFINITY);
        assert_eq!(softplus(f64::NEG_INFINITY), 0.0);
        assert_eq!(log_sigmoid(f64::NEG_INFINITY), f64::NEG_INFINITY);
        assert_eq!(log_sigmoid(f64::INFINITY), 0.0);
        assert!(softplus(f64::NAN).is_nan() && log_sigmoid(f64::NAN).is_nan());
    }
}
