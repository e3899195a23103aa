//! Hand-written closed-form kernels (Stan's `*_lpdf`, constant terms kept).
//!
//! Each kernel works through its block in chunks of [`CHUNK`] elements, in
//! passes that the compiler vectorises: a scalar pre-pass for what has no
//! vector form (`ln k!` from a table, `ln Γ` and `ψ` of per-element
//! shapes), one branch-free loop computing every element's term and
//! partials with the polynomials of [`vmath`] (invalid arguments give the
//! term `−∞` and zero partials by selects, not branches), then the
//! reductions. Everything runs under [`vmath::dispatch`], so the whole
//! kernel is compiled once portably, once for AVX2 and once for AVX-512;
//! all give the same bits.
//!
//! Summation order is fixed: element `i` of a call goes to lane `i mod 4`,
//! the lanes are combined as `(l₀ + l₁) + (l₂ + l₃)`, and that total is
//! added to `acc`. The partial of a broadcast argument is summed the same
//! way. So `block` and `block_value` give the same value bits, on every
//! CPU, and the values agree with [`ScalarKernel`](super::ScalarKernel) to
//! about 1e-15 relative (not bit for bit: the sums are in another order
//! and `vmath`'s `exp`/`ln` are within 1 ulp of `std`'s).
//!
//! A kernel's body is generic over how each argument is read ([`Source`]:
//! a broadcast `f64` or a slice) and where its partials go ([`Sink`]: one
//! sum, one slot per element, or nowhere for the value alone), so each
//! combination compiles to its own loop, with the work that depends only
//! on a broadcast argument hoisted out of it.

use std::f64::consts::PI;
use std::sync::OnceLock;

use super::vmath;
use super::{Arg, PlateKernel, check_shapes};
use crate::special::{LN_SQRT_2PI, digamma, ln_factorial, ln_gamma};

/// The elements a kernel computes in one pass (its scratch arrays, zeroed
/// once per call: small, since the driver calls a kernel per block of 256).
const CHUNK: usize = 64;

/// How a kernel reads an argument.
trait Source: Copy {
    /// One value for every element.
    const BROADCAST: bool;
    /// Element `i`'s value.
    fn at(self, i: usize) -> f64;
    /// The elements `start..start + len`.
    fn sub(self, start: usize, len: usize) -> Self;
}

impl Source for f64 {
    const BROADCAST: bool = true;
    #[inline(always)]
    fn at(self, _: usize) -> f64 {
        self
    }
    #[inline(always)]
    fn sub(self, _: usize, _: usize) -> Self {
        self
    }
}

impl Source for &[f64] {
    const BROADCAST: bool = false;
    #[inline(always)]
    fn at(self, i: usize) -> f64 {
        self[i]
    }
    #[inline(always)]
    fn sub(self, start: usize, len: usize) -> Self {
        &self[start..start + len]
    }
}

/// Four lane accumulators: element `i` goes to lane `i mod 4`, the total
/// is `(l₀ + l₁) + (l₂ + l₃)`.
#[derive(Clone, Copy, Default)]
struct Lanes([f64; 4]);

impl Lanes {
    /// Adds `xs`, whose first element is lane 0 (every chunk but the last
    /// has a multiple of 4 elements).
    #[inline(always)]
    fn add(&mut self, xs: &[f64]) {
        let l = &mut self.0;
        let mut quads = xs.chunks_exact(4);
        for q in &mut quads {
            l[0] += q[0];
            l[1] += q[1];
            l[2] += q[2];
            l[3] += q[3];
        }
        for (lane, &x) in l.iter_mut().zip(quads.remainder()) {
            *lane += x;
        }
    }

    #[inline(always)]
    fn total(self) -> f64 {
        let [l0, l1, l2, l3] = self.0;
        (l0 + l1) + (l2 + l3)
    }
}

/// Where a kernel puts an argument's partials.
trait Sink {
    /// False when the partials are not wanted.
    const ACTIVE: bool;
    /// Adds the partials of elements `start..start + partials.len()`.
    fn absorb(&mut self, start: usize, partials: &[f64]);
    /// Adds what is pending (a broadcast's sum) to the output.
    fn finish(self);
}

/// A broadcast argument's partial: the sum over the block, in lanes.
struct Sum<'a> {
    out: &'a mut f64,
    lanes: Lanes,
}

impl Sink for Sum<'_> {
    const ACTIVE: bool = true;
    #[inline(always)]
    fn absorb(&mut self, _: usize, partials: &[f64]) {
        self.lanes.add(partials);
    }
    #[inline(always)]
    fn finish(self) {
        *self.out += self.lanes.total();
    }
}

impl Sink for &mut [f64] {
    const ACTIVE: bool = true;
    #[inline(always)]
    fn absorb(&mut self, start: usize, partials: &[f64]) {
        for (g, &p) in self[start..start + partials.len()].iter_mut().zip(partials) {
            *g += p;
        }
    }
    #[inline(always)]
    fn finish(self) {}
}

/// No partials: the value alone.
struct Nowhere;

impl Sink for Nowhere {
    const ACTIVE: bool = false;
    #[inline(always)]
    fn absorb(&mut self, _: usize, _: &[f64]) {}
    #[inline(always)]
    fn finish(self) {}
}

/// Scratch of one chunk: the terms and up to three arguments' partials.
struct Scratch {
    term: [f64; CHUNK],
    d: [[f64; CHUNK]; 3],
}

/// `acc + Σ terms` over `n` elements in chunks: `$body` runs with
/// `$start`, `$len` and `$out: &mut Scratch` bound, and writes the chunk's
/// terms into `$out.term[..$len]` (and passes its partials on to the
/// sinks). A macro rather than a function taking a closure, so that the
/// body is compiled inside each instruction-set clone (see
/// [`vmath::Simd`]).
macro_rules! drive {
    ($acc:expr, $n:expr, |$start:ident, $len:ident, $out:ident| $body:block) => {{
        let mut scratch = Scratch {
            term: [0.0; CHUNK],
            d: [[0.0; CHUNK]; 3],
        };
        let mut lanes = Lanes::default();
        let n: usize = $n;
        let mut $start = 0;
        while $start < n {
            let $len = (n - $start).min(CHUNK);
            {
                let $out = &mut scratch;
                $body
            }
            lanes.add(&scratch.term[..$len]);
            $start += $len;
        }
        $acc + lanes.total()
    }};
}

/// `ln k!`, from a table for `k < 256` (the same bits as
/// [`ln_factorial`], computed once).
#[inline(always)]
fn ln_fact(table: &[f64; 256], k: u64) -> f64 {
    if k < 256 {
        table[k as usize]
    } else {
        ln_factorial(k)
    }
}

fn ln_fact_table() -> &'static [f64; 256] {
    static TABLE: OnceLock<[f64; 256]> = OnceLock::new();
    TABLE.get_or_init(|| std::array::from_fn(|k| ln_factorial(k as u64)))
}

/// True for a finite, positive value.
#[inline(always)]
fn positive(x: f64) -> bool {
    x.is_finite() & (x > 0.0)
}

/// `if c { a } else { b }`, written to stay a select.
#[inline(always)]
fn pick(c: bool, a: f64, b: f64) -> f64 {
    if c { a } else { b }
}

/// Binds `$s` to the argument as a [`Source`] and `$g` to its partials as
/// a [`Sink`], each combination its own copy of `$body`.
macro_rules! with_arg {
    ($arg:expr, $grad:expr, |$s:ident, $g:ident| $body:expr) => {
        match $arg {
            Arg::Const(value) => {
                let $s: f64 = value;
                let $g = Sum {
                    out: &mut $grad[0],
                    lanes: Lanes::default(),
                };
                $body
            }
            Arg::Slice(values) => {
                let $s: &[f64] = values;
                let $g: &mut [f64] = &mut *$grad;
                $body
            }
        }
    };
}

/// Binds `$s` to the argument as a [`Source`].
macro_rules! with_source {
    ($arg:expr, |$s:ident| $body:expr) => {
        match $arg {
            Arg::Const(value) => {
                let $s: f64 = value;
                $body
            }
            Arg::Slice(values) => {
                let $s: &[f64] = values;
                $body
            }
        }
    };
}

/// Implements [`PlateKernel`] for `$kernel` by its generic body `$body`
/// (arguments as [`Source`]s, then their [`Sink`]s), under
/// [`vmath::dispatch`]: `block` and `block_value` wrap their arguments in
/// a local [`vmath::Simd`] whose `run` matches each argument's form.
macro_rules! kernel {
    ($kernel:ident, $obs:ty, $body:ident, [$($a:ident $s:ident $g:ident $i:tt),+]) => {
        impl PlateKernel for $kernel {
            const ARGS: usize = [$($i),+].len();
            type Obs = $obs;

            fn block(&self, acc: f64, obs: &[$obs], args: &[Arg<'_>], grad: &mut [&mut [f64]]) -> f64 {
                check_shapes(Self::ARGS, obs.len(), args, Some(grad));
                struct Run<'a, 'b, 'c> {
                    acc: f64,
                    obs: &'a [$obs],
                    args: &'a [Arg<'b>],
                    grad: &'a mut [&'c mut [f64]],
                }
                impl vmath::Simd for Run<'_, '_, '_> {
                    type Output = f64;
                    #[inline(always)]
                    fn run(self) -> f64 {
                        let Run { acc, obs, args, grad } = self;
                        let [$($g),+] = grad else { unreachable!("shapes checked") };
                        kernel!(@grad acc, obs, args, $body, [$($a $s $g $i),+], [])
                    }
                }
                vmath::dispatch(Run { acc, obs, args, grad })
            }

            fn block_value(&self, acc: f64, obs: &[$obs], args: &[Arg<'_>]) -> f64 {
                check_shapes(Self::ARGS, obs.len(), args, None);
                struct Run<'a, 'b> {
                    acc: f64,
                    obs: &'a [$obs],
                    args: &'a [Arg<'b>],
                }
                impl vmath::Simd for Run<'_, '_> {
                    type Output = f64;
                    #[inline(always)]
                    fn run(self) -> f64 {
                        let Run { acc, obs, args } = self;
                        kernel!(@value acc, obs, args, $body, [$($a $i),+], [])
                    }
                }
                vmath::dispatch(Run { acc, obs, args })
            }
        }
    };
    // Binds each argument in turn, then calls the body.
    (@grad $acc:ident, $obs:ident, $args:ident, $body:ident, [], [$($a:ident $s:ident)*]) => {
        $body($acc, $obs, $($a),*, $($s),*)
    };
    (@grad $acc:ident, $obs:ident, $args:ident, $body:ident,
        [$a0:ident $s0:ident $g0:ident $i0:tt $(, $a:ident $s:ident $g:ident $i:tt)*], [$($done:tt)*]) => {
        with_arg!($args[$i0], $g0, |$a0, $s0| kernel!(
            @grad $acc, $obs, $args, $body, [$($a $s $g $i),*], [$($done)* $a0 $s0]
        ))
    };
    (@value $acc:ident, $obs:ident, $args:ident, $body:ident, [], [$($a:ident)*]) => {
        $body($acc, $obs, $($a),*, $({ let _ = stringify!($a); Nowhere }),*)
    };
    (@value $acc:ident, $obs:ident, $args:ident, $body:ident,
        [$a0:ident $i0:tt $(, $a:ident $i:tt)*], [$($done:ident)*]) => {
        with_source!($args[$i0], |$a0| kernel!(
            @value $acc, $obs, $args, $body, [$($a $i),*], [$($done)* $a0]
        ))
    };
}

/// The normal family `N(loc, scale²)` over real observations:
///
/// `log f(y | μ, σ) = −½ z² − ln σ − ½ ln 2π`, `z = (y − μ) / σ`;
/// `∂/∂μ = z / σ`, `∂/∂σ = (z² − 1) / σ`.
///
/// Arguments `[loc, scale]`; `−∞` and no partials where `loc` is not
/// finite or `scale` is not positive and finite. With a broadcast scale,
/// `ln σ` and `1 / σ` are computed once.
///
/// ```
/// use iwhvi_core::plate::{Arg, NormalKernel, PlateKernel};
/// let (mut d_loc, mut d_scale) = ([0.0; 2], [0.0]);
/// let lp = NormalKernel.block(
///     0.0,
///     &[1.0, 3.0],
///     &[Arg::Slice(&[1.0, 1.0][..]), Arg::Const(2.0)],
///     &mut [&mut d_loc[..], &mut d_scale[..]],
/// );
/// assert_eq!(d_loc, [0.0, 0.5]);
/// assert_eq!(d_scale, [-0.5 + 0.0]);
/// assert!((lp - NormalKernel.block_value(0.0, &[1.0, 3.0], &[Arg::Const(1.0), Arg::Const(2.0)])).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NormalKernel;

#[inline(always)]
fn normal<L: Source, S: Source, GL: Sink, GS: Sink>(
    acc: f64,
    obs: &[f64],
    loc: L,
    scale: S,
    mut g_loc: GL,
    mut g_scale: GS,
) -> f64 {
    let partials = GL::ACTIVE || GS::ACTIVE;
    // Hoisted for a broadcast scale (unused otherwise).
    let (ln_s0, inv_s0) = if S::BROADCAST {
        let s = scale.at(0);
        (vmath::ln(s), 1.0 / s)
    } else {
        (0.0, 0.0)
    };
    let value = drive!(acc, obs.len(), |start, len, out| {
        let (y, loc, scale) = (
            &obs[start..start + len],
            loc.sub(start, len),
            scale.sub(start, len),
        );
        let (term, [d_loc, d_scale, _]) = (&mut out.term, &mut out.d);
        for i in 0..len {
            let (mu, s) = (loc.at(i), scale.at(i));
            let valid = mu.is_finite() & positive(s);
            let ln_s = if S::BROADCAST { ln_s0 } else { vmath::ln(s) };
            let z = (y[i] - mu) / s;
            term[i] = pick(
                valid,
                -(z * z) * 0.5 - ln_s - LN_SQRT_2PI,
                f64::NEG_INFINITY,
            );
            if partials {
                let inv = if S::BROADCAST { inv_s0 } else { 1.0 / s };
                let z_over_s = z * inv;
                d_loc[i] = pick(valid, z_over_s, 0.0);
                d_scale[i] = pick(valid, z * z_over_s - inv, 0.0);
            }
        }
        g_loc.absorb(start, &d_loc[..len]);
        g_scale.absorb(start, &d_scale[..len]);
    });
    g_loc.finish();
    g_scale.finish();
    value
}

kernel!(NormalKernel, f64, normal, [a0 s0 g0 0, a1 s1 g1 1]);

/// The Bernoulli family by log-odds `η` over outcomes `y ∈ {0, 1}`:
///
/// `log f(y | η) = ln σ(sη)` with `s = 2y − 1`, as `−(max(−sη, 0) +
/// ln(1 + e^{−|η|}))`; `∂/∂η = y − σ(η)`, computed as `σ(−η)` for `y = 1`
/// and `−σ(η)` for `y = 0`, from `t = e^{−|η|}` (`σ(|η|) = 1 / (1 + t)`,
/// `σ(−|η|) = t / (1 + t)`), which keeps its precision for large `|η|`.
///
/// Argument `[logit]`; `−∞` and no partials for a NaN logit or an outcome
/// other than 0 and 1 (infinite logits are certain outcomes).
///
/// ```
/// use iwhvi_core::plate::{Arg, BernoulliLogitKernel, PlateKernel};
/// let mut d = [0.0];
/// let lp = BernoulliLogitKernel.block(0.0, &[1, 0], &[Arg::Const(0.0)], &mut [&mut d[..]]);
/// assert!((lp - 2.0 * 0.5f64.ln()).abs() < 1e-15);
/// assert_eq!(d[0], 0.0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BernoulliLogitKernel;

/// `t[i] = e^{−|η_i|}`: the first pass of the logistic kernels (two short
/// loops overlap better in the core than one long one).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // indexed on purpose: see below
fn exp_neg_abs<E: Source>(logit: E, t: &mut [f64]) {
    // Indexed on a re-sliced source, so that every index is provably in
    // bounds (with `enumerate`, LLVM kept a scalar tail of up to 4).
    let n = t.len();
    let logit = logit.sub(0, n);
    for i in 0..n {
        t[i] = vmath::exp(-logit.at(i).abs());
    }
}

/// `(ln σ(η), ln σ(−η), σ(η), σ(−η))` from `η` and `t = e^{−|η|}`,
/// branch-free.
#[inline(always)]
fn logistic_parts(eta: f64, t: f64) -> (f64, f64, f64, f64) {
    // t = e^{−|η|} ∈ [0, 1] (NaN for a NaN η, masked by the kernels).
    let soft = vmath::ln_1p_unit(t);
    let q = 1.0 / (1.0 + t);
    let nonneg = eta >= 0.0;
    let (pos_part, neg_part) = (pick(nonneg, eta, 0.0), pick(nonneg, 0.0, -eta));
    (
        -(neg_part + soft),
        -(pos_part + soft),
        pick(nonneg, q, t * q),
        pick(nonneg, t * q, q),
    )
}

/// [`BernoulliLogitReal`]: the same family over outcomes stored as reals
/// `y ∈ {0.0, 1.0}` (e.g. binary images kept as `f64` pixels, read in
/// place by [`log_density_gathered_rows`](super::log_density_gathered_rows)
/// without converting them to integers): the same values and partials
/// as [`BernoulliLogitKernel`] at the same outcomes, bit for bit; `−∞`
/// and no partials for a NaN logit or an outcome other than 0 and 1.
///
/// ```
/// use iwhvi_core::plate::{Arg, BernoulliLogitKernel, BernoulliLogitReal, PlateKernel};
/// let logits = [0.5, -3.0, 2.0];
/// let args = [Arg::Slice(&logits[..])];
/// let real = BernoulliLogitReal.block_value(0.0, &[1.0, 0.0, 1.0], &args);
/// assert_eq!(real, BernoulliLogitKernel.block_value(0.0, &[1, 0, 1], &args));
/// let half = BernoulliLogitReal.block_value(0.0, &[0.5], &[Arg::Const(0.0)]);
/// assert_eq!(half, f64::NEG_INFINITY);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BernoulliLogitReal;

/// A Bernoulli outcome as a plate stores it: an integer (0 or 1) or a
/// real (0.0 or 1.0).
trait Outcome: Copy {
    /// 0 or 1.
    fn valid(self) -> bool;
    /// 1.
    fn one(self) -> bool;
}

impl Outcome for u64 {
    #[inline(always)]
    fn valid(self) -> bool {
        self <= 1
    }

    #[inline(always)]
    fn one(self) -> bool {
        self == 1
    }
}

impl Outcome for f64 {
    #[inline(always)]
    fn valid(self) -> bool {
        (self == 0.0) | (self == 1.0)
    }

    #[inline(always)]
    fn one(self) -> bool {
        self == 1.0
    }
}

#[inline(always)]
fn bernoulli_logit<O: Outcome, E: Source, G: Sink>(acc: f64, obs: &[O], logit: E, mut g: G) -> f64 {
    let value = drive!(acc, obs.len(), |start, len, out| {
        let (y, logit) = (&obs[start..start + len], logit.sub(start, len));
        let (term, [d, t, _]) = (&mut out.term, &mut out.d);
        exp_neg_abs(logit, &mut t[..len]);
        for i in 0..len {
            let eta = logit.at(i);
            let valid = !eta.is_nan() & y[i].valid();
            let one = y[i].one();
            let (ls_pos, ls_neg, s_pos, s_neg) = logistic_parts(eta, t[i]);
            term[i] = pick(valid, pick(one, ls_pos, ls_neg), f64::NEG_INFINITY);
            if G::ACTIVE {
                d[i] = pick(valid, pick(one, s_neg, -s_pos), 0.0);
            }
        }
        g.absorb(start, &d[..len]);
    });
    g.finish();
    value
}

kernel!(BernoulliLogitKernel, u64, bernoulli_logit, [a0 s0 g0 0]);
kernel!(BernoulliLogitReal, f64, bernoulli_logit, [a0 s0 g0 0]);

/// The binomial family by log-odds `η` over `(n, k)`, `k` successes in `n`
/// trials:
///
/// `log f(k | n, η) = k ln σ(η) + (n − k) ln σ(−η) + ln C(n, k)` (a term
/// with a zero count is 0); `∂/∂η = k σ(−η) − (n − k) σ(η)`.
///
/// Argument `[logit]`; `−∞` and no partials for a NaN logit or `k > n`.
///
/// ```
/// use iwhvi_core::plate::{Arg, BinomialLogitKernel, PlateKernel};
/// let mut d = [0.0];
/// let lp = BinomialLogitKernel.block(0.0, &[(4, 1)], &[Arg::Const(0.0)], &mut [&mut d[..]]);
/// assert!((lp - (4.0f64.ln() - 4.0 * 2f64.ln())).abs() < 1e-14);
/// assert!((d[0] - (0.5 - 1.5)).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BinomialLogitKernel;

#[inline(always)]
fn binomial_logit<E: Source, G: Sink>(acc: f64, obs: &[(u64, u64)], logit: E, mut g: G) -> f64 {
    let table = ln_fact_table();
    let mut ln_choose = [0.0; CHUNK];
    let value = drive!(acc, obs.len(), |start, len, out| {
        let (y, logit) = (&obs[start..start + len], logit.sub(start, len));
        let (term, [d, t, _]) = (&mut out.term, &mut out.d);
        exp_neg_abs(logit, &mut t[..len]);
        let ln_choose = &mut ln_choose[..len];
        for (c, &(n, k)) in ln_choose.iter_mut().zip(y) {
            *c = if k <= n {
                ln_fact(table, n) - ln_fact(table, k) - ln_fact(table, n - k)
            } else {
                0.0
            };
        }
        for i in 0..len {
            let eta = logit.at(i);
            let (n, k) = y[i];
            let valid = !eta.is_nan() & (k <= n);
            let (successes, failures) = (k as f64, n.wrapping_sub(k) as f64);
            let (ls_pos, ls_neg, s_pos, s_neg) = logistic_parts(eta, t[i]);
            let a = pick(k == 0, 0.0, ls_pos * successes);
            let b = pick(n == k, 0.0, ls_neg * failures);
            term[i] = pick(valid, a + b + ln_choose[i], f64::NEG_INFINITY);
            if G::ACTIVE {
                d[i] = pick(valid, successes * s_neg - failures * s_pos, 0.0);
            }
        }
        g.absorb(start, &d[..len]);
    });
    g.finish();
    value
}

kernel!(BinomialLogitKernel, (u64, u64), binomial_logit, [a0 s0 g0 0]);

/// The Poisson family by log-rate `η` over counts `k`:
///
/// `log f(k | η) = k η − e^η − ln k!`; `∂/∂η = k − e^η`.
///
/// Argument `[log_rate]`; `−∞` and no partials for a log-rate that is not
/// finite. With a broadcast log-rate, `e^η` is computed once. Above
/// `η ≈ 709.78`, `e^η` overflows: the term and the partial are `−∞`, as on
/// the scalar path.
///
/// ```
/// use iwhvi_core::plate::{Arg, PlateKernel, PoissonLogKernel};
/// let mut d = [0.0; 2];
/// let lp = PoissonLogKernel.block(0.0, &[2, 0], &[Arg::Slice(&[0.0, 0.0][..])], &mut [&mut d[..]]);
/// assert_eq!(d, [1.0, -1.0]);
/// assert!((lp - (-2.0 - 2f64.ln())).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoissonLogKernel;

#[inline(always)]
fn poisson_log<E: Source, G: Sink>(acc: f64, obs: &[u64], log_rate: E, mut g: G) -> f64 {
    let table = ln_fact_table();
    let rate0 = if E::BROADCAST {
        vmath::exp(log_rate.at(0))
    } else {
        0.0
    };
    let mut ln_k_fact = [0.0; CHUNK];
    let value = drive!(acc, obs.len(), |start, len, out| {
        let (y, log_rate) = (&obs[start..start + len], log_rate.sub(start, len));
        let (term, [d, _, _]) = (&mut out.term, &mut out.d);
        let ln_k_fact = &mut ln_k_fact[..len];
        for (l, &k) in ln_k_fact.iter_mut().zip(y) {
            *l = ln_fact(table, k);
        }
        for i in 0..len {
            let eta = log_rate.at(i);
            let valid = eta.is_finite();
            let rate = if E::BROADCAST { rate0 } else { vmath::exp(eta) };
            let count = y[i] as f64;
            term[i] = pick(valid, eta * count - rate - ln_k_fact[i], f64::NEG_INFINITY);
            if G::ACTIVE {
                d[i] = pick(valid, count - rate, 0.0);
            }
        }
        g.absorb(start, &d[..len]);
    });
    g.finish();
    value
}

kernel!(PoissonLogKernel, u64, poisson_log, [a0 s0 g0 0]);

/// The Poisson family by rate `λ` over counts `k`:
///
/// `log f(k | λ) = k ln λ − λ − ln k!` (the first term is 0 for `k = 0`);
/// `∂/∂λ = k / λ − 1`.
///
/// Argument `[rate]`; `−∞` and no partials for a rate that is not positive
/// and finite. With a broadcast rate, `ln λ` and `1 / λ` are computed once.
///
/// ```
/// use iwhvi_core::plate::{Arg, PlateKernel, PoissonKernel};
/// let mut d = [0.0];
/// let lp = PoissonKernel.block(0.0, &[2, 0], &[Arg::Const(2.0)], &mut [&mut d[..]]);
/// assert!((lp - (2.0 * 2f64.ln() - 4.0 - 2f64.ln())).abs() < 1e-14);
/// assert!((d[0] - (1.0 - 2.0)).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoissonKernel;

#[inline(always)]
fn poisson<E: Source, G: Sink>(acc: f64, obs: &[u64], rate: E, mut g: G) -> f64 {
    let table = ln_fact_table();
    let (ln_rate0, inv0) = if E::BROADCAST {
        let r = rate.at(0);
        (vmath::ln(r), 1.0 / r)
    } else {
        (0.0, 0.0)
    };
    let mut ln_k_fact = [0.0; CHUNK];
    let value = drive!(acc, obs.len(), |start, len, out| {
        let (y, rate) = (&obs[start..start + len], rate.sub(start, len));
        let (term, [d, _, _]) = (&mut out.term, &mut out.d);
        let ln_k_fact = &mut ln_k_fact[..len];
        for (l, &k) in ln_k_fact.iter_mut().zip(y) {
            *l = ln_fact(table, k);
        }
        for i in 0..len {
            let lambda = rate.at(i);
            let valid = positive(lambda);
            let ln_rate = if E::BROADCAST {
                ln_rate0
            } else {
                vmath::ln(lambda)
            };
            let count = y[i] as f64;
            let first = pick(y[i] == 0, 0.0, ln_rate * count);
            term[i] = pick(valid, first - lambda - ln_k_fact[i], f64::NEG_INFINITY);
            if G::ACTIVE {
                let inv = if E::BROADCAST { inv0 } else { 1.0 / lambda };
                d[i] = pick(valid, count * inv - 1.0, 0.0);
            }
        }
        g.absorb(start, &d[..len]);
    });
    g.finish();
    value
}

kernel!(PoissonKernel, u64, poisson, [a0 s0 g0 0]);

/// The log-normal family over positive observations:
///
/// `log f(x | μ, σ) = −½ z² − ln σ − ½ ln 2π − ln x`, `z = (ln x − μ) / σ`;
/// `∂/∂μ = z / σ`, `∂/∂σ = (z² − 1) / σ`.
///
/// Arguments `[loc, scale]`; `−∞` and no partials where `loc` is not
/// finite, `scale` is not positive and finite, or `x ≤ 0`.
///
/// ```
/// use iwhvi_core::plate::{Arg, LogNormalKernel, PlateKernel};
/// let (mut d_loc, mut d_scale) = ([0.0], [0.0]);
/// let lp = LogNormalKernel.block(
///     0.0,
///     &[1.0],
///     &[Arg::Const(0.0), Arg::Const(1.0)],
///     &mut [&mut d_loc[..], &mut d_scale[..]],
/// );
/// assert!((lp + 0.918_938_533_204_672_8).abs() < 1e-15);
/// assert_eq!((d_loc[0], d_scale[0]), (0.0, -1.0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogNormalKernel;

#[inline(always)]
fn log_normal<L: Source, S: Source, GL: Sink, GS: Sink>(
    acc: f64,
    obs: &[f64],
    loc: L,
    scale: S,
    mut g_loc: GL,
    mut g_scale: GS,
) -> f64 {
    let partials = GL::ACTIVE || GS::ACTIVE;
    let (ln_s0, inv_s0) = if S::BROADCAST {
        let s = scale.at(0);
        (vmath::ln(s), 1.0 / s)
    } else {
        (0.0, 0.0)
    };
    let value = drive!(acc, obs.len(), |start, len, out| {
        let (x, loc, scale) = (
            &obs[start..start + len],
            loc.sub(start, len),
            scale.sub(start, len),
        );
        let (term, [d_loc, d_scale, _]) = (&mut out.term, &mut out.d);
        for i in 0..len {
            let (mu, s) = (loc.at(i), scale.at(i));
            let valid = mu.is_finite() & positive(s) & (x[i] > 0.0);
            let ln_s = if S::BROADCAST { ln_s0 } else { vmath::ln(s) };
            let ln_x = vmath::ln(x[i]);
            let z = (ln_x - mu) / s;
            term[i] = pick(
                valid,
                -(z * z) * 0.5 - ln_s - LN_SQRT_2PI - ln_x,
                f64::NEG_INFINITY,
            );
            if partials {
                let inv = if S::BROADCAST { inv_s0 } else { 1.0 / s };
                let z_over_s = z * inv;
                d_loc[i] = pick(valid, z_over_s, 0.0);
                d_scale[i] = pick(valid, z * z_over_s - inv, 0.0);
            }
        }
        g_loc.absorb(start, &d_loc[..len]);
        g_scale.absorb(start, &d_scale[..len]);
    });
    g_loc.finish();
    g_scale.finish();
    value
}

kernel!(LogNormalKernel, f64, log_normal, [a0 s0 g0 0, a1 s1 g1 1]);

/// Student's t family over real observations:
///
/// `log f(y | ν, μ, σ) = ln Γ((ν+1)/2) − ln Γ(ν/2) − ½ ln(νπ) − ln σ
/// − (ν+1)/2 · ln(1 + z²/ν)`, `z = (y − μ) / σ`; with `w = (ν + 1) / (ν + z²)`:
/// `∂/∂μ = w z / σ`, `∂/∂σ = (w z² − 1) / σ`,
/// `∂/∂ν = ½ (ψ((ν+1)/2) − ψ(ν/2) − 1/ν − ln(1 + z²/ν) + w z²/ν)`.
///
/// Arguments `[df, loc, scale]`; `−∞` and no partials where `df` or
/// `scale` is not positive and finite or `loc` is not finite. `ln Γ` and
/// `ψ` of the degrees of freedom are computed once when `df` is broadcast,
/// per element (scalar, libm) otherwise.
///
/// ```
/// use iwhvi_core::plate::{Arg, PlateKernel, StudentTKernel};
/// let mut d = [[0.0], [0.0], [0.0]];
/// let [d0, d1, d2] = &mut d;
/// let lp = StudentTKernel.block(
///     0.0,
///     &[0.0],
///     &[Arg::Const(1.0), Arg::Const(0.0), Arg::Const(1.0)],
///     &mut [&mut d0[..], &mut d1[..], &mut d2[..]],
/// );
/// // ν = 1 is the Cauchy density: 1 / π at 0.
/// assert!((lp + std::f64::consts::PI.ln()).abs() < 1e-14);
/// assert_eq!((d[1][0], d[2][0]), (0.0, -1.0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StudentTKernel;

/// `(ln Γ((ν+1)/2) − ln Γ(ν/2), ψ((ν+1)/2) − ψ(ν/2))` (the second only if
/// `partials`), zeros for an invalid `ν`.
#[inline(always)]
fn student_t_gammas(nu: f64, partials: bool) -> (f64, f64) {
    if !positive(nu) {
        return (0.0, 0.0);
    }
    let (half, half_plus) = (nu * 0.5, nu * 0.5 + 0.5);
    let lg = ln_gamma(half_plus) - ln_gamma(half);
    let psi = if partials {
        digamma(half_plus) - digamma(half)
    } else {
        0.0
    };
    (lg, psi)
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn student_t<N: Source, L: Source, S: Source, GN: Sink, GL: Sink, GS: Sink>(
    acc: f64,
    obs: &[f64],
    df: N,
    loc: L,
    scale: S,
    mut g_df: GN,
    mut g_loc: GL,
    mut g_scale: GS,
) -> f64 {
    let partials = GN::ACTIVE || GL::ACTIVE || GS::ACTIVE;
    let (lg0, psi0, ln_nu_pi0) = if N::BROADCAST {
        let nu = df.at(0);
        let (lg, psi) = student_t_gammas(nu, GN::ACTIVE);
        (lg, psi, vmath::ln(nu * PI))
    } else {
        (0.0, 0.0, 0.0)
    };
    let (ln_s0, inv_s0) = if S::BROADCAST {
        let s = scale.at(0);
        (vmath::ln(s), 1.0 / s)
    } else {
        (0.0, 0.0)
    };
    let (mut lgs, mut psis) = ([0.0; CHUNK], [0.0; CHUNK]);
    let value = drive!(acc, obs.len(), |start, len, out| {
        let (y, df, loc, scale) = (
            &obs[start..start + len],
            df.sub(start, len),
            loc.sub(start, len),
            scale.sub(start, len),
        );
        let (lgs, psis) = (&mut lgs[..len], &mut psis[..len]);
        if !N::BROADCAST {
            for i in 0..len {
                (lgs[i], psis[i]) = student_t_gammas(df.at(i), GN::ACTIVE);
            }
        }
        let (term, [d_df, d_loc, d_scale]) = (&mut out.term, &mut out.d);
        for i in 0..len {
            let (nu, mu, s) = (df.at(i), loc.at(i), scale.at(i));
            let valid = positive(nu) & mu.is_finite() & positive(s);
            let lg = if N::BROADCAST { lg0 } else { lgs[i] };
            let ln_nu_pi = if N::BROADCAST {
                ln_nu_pi0
            } else {
                vmath::ln(nu * PI)
            };
            let ln_s = if S::BROADCAST { ln_s0 } else { vmath::ln(s) };
            let z = (y[i] - mu) / s;
            let r = z * z / nu;
            let log1p_r = vmath::ln_1p(r);
            let half_plus = nu * 0.5 + 0.5;
            let t = lg - ln_nu_pi * 0.5 - ln_s - half_plus * log1p_r;
            term[i] = pick(valid, t, f64::NEG_INFINITY);
            if partials {
                let inv = if S::BROADCAST { inv_s0 } else { 1.0 / s };
                let w = (nu + 1.0) / (nu + z * z);
                let psi = if N::BROADCAST { psi0 } else { psis[i] };
                d_df[i] = pick(valid, 0.5 * (psi - 1.0 / nu - log1p_r + w * r), 0.0);
                d_loc[i] = pick(valid, w * z * inv, 0.0);
                d_scale[i] = pick(valid, (w * z * z - 1.0) * inv, 0.0);
            }
        }
        g_df.absorb(start, &d_df[..len]);
        g_loc.absorb(start, &d_loc[..len]);
        g_scale.absorb(start, &d_scale[..len]);
    });
    g_df.finish();
    g_loc.finish();
    g_scale.finish();
    value
}

kernel!(StudentTKernel, f64, student_t, [a0 s0 g0 0, a1 s1 g1 1, a2 s2 g2 2]);

/// The gamma family by shape `α` and rate `β` over positive observations:
///
/// `log f(x | α, β) = α ln β − ln Γ(α) + (α − 1) ln x − β x`;
/// `∂/∂α = ln β − ψ(α) + ln x`, `∂/∂β = α / β − x`.
///
/// Arguments `[shape, rate]`; `−∞` and no partials where either is not
/// positive and finite, or `x < 0` or not finite. At `x = 0` the density
/// is `+∞` for `α < 1` (no partials), `−∞` for `α > 1`, and `β` (its
/// `α ln β − ln Γ(α)` term, with partials) for `α = 1`, as on the scalar
/// path. `ln Γ(α)` and `ψ(α)` are computed once when `α` is broadcast.
///
/// ```
/// use iwhvi_core::plate::{Arg, GammaKernel, PlateKernel};
/// let (mut d_shape, mut d_rate) = ([0.0], [0.0]);
/// let lp = GammaKernel.block(
///     0.0,
///     &[0.5],
///     &[Arg::Const(1.0), Arg::Const(2.0)],
///     &mut [&mut d_shape[..], &mut d_rate[..]],
/// );
/// // Exponential(2) at 0.5: ln 2 − 1.
/// assert!((lp - (2f64.ln() - 1.0)).abs() < 1e-15);
/// assert!((d_rate[0] - 0.0).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GammaKernel;

/// `(ln Γ(α), ψ(α))` (the second only if `partials`), zeros for an invalid
/// `α`.
#[inline(always)]
fn gamma_shape(alpha: f64, partials: bool) -> (f64, f64) {
    if !positive(alpha) {
        return (0.0, 0.0);
    }
    (ln_gamma(alpha), if partials { digamma(alpha) } else { 0.0 })
}

#[inline(always)]
fn gamma<A: Source, B: Source, GA: Sink, GB: Sink>(
    acc: f64,
    obs: &[f64],
    shape: A,
    rate: B,
    mut g_shape: GA,
    mut g_rate: GB,
) -> f64 {
    let partials = GA::ACTIVE || GB::ACTIVE;
    let (lg0, psi0) = if A::BROADCAST {
        gamma_shape(shape.at(0), GA::ACTIVE)
    } else {
        (0.0, 0.0)
    };
    let ln_b0 = if B::BROADCAST {
        vmath::ln(rate.at(0))
    } else {
        0.0
    };
    let (mut lgs, mut psis) = ([0.0; CHUNK], [0.0; CHUNK]);
    let value = drive!(acc, obs.len(), |start, len, out| {
        let (x, shape, rate) = (
            &obs[start..start + len],
            shape.sub(start, len),
            rate.sub(start, len),
        );
        let (lgs, psis) = (&mut lgs[..len], &mut psis[..len]);
        if !A::BROADCAST {
            for i in 0..len {
                (lgs[i], psis[i]) = gamma_shape(shape.at(i), GA::ACTIVE);
            }
        }
        let (term, [d_shape, d_rate, _]) = (&mut out.term, &mut out.d);
        for i in 0..len {
            let (a, b, xi) = (shape.at(i), rate.at(i), x[i]);
            let valid = positive(a) & positive(b);
            let interior = (xi > 0.0) & (xi < f64::INFINITY);
            let at_zero = xi == 0.0;
            // Terms with partials: x in (0, ∞), or x = 0 with α = 1.
            let has = valid & (interior | (at_zero & (a == 1.0)));
            let lg = if A::BROADCAST { lg0 } else { lgs[i] };
            let ln_b = if B::BROADCAST { ln_b0 } else { vmath::ln(b) };
            let ln_x = vmath::ln(xi);
            let normaliser = a * ln_b - lg;
            let t = pick(interior, normaliser + (a - 1.0) * ln_x - b * xi, normaliser);
            let outside = pick(
                valid & at_zero & (a < 1.0),
                f64::INFINITY,
                f64::NEG_INFINITY,
            );
            term[i] = pick(has, t, outside);
            if partials {
                let psi = if A::BROADCAST { psi0 } else { psis[i] };
                d_shape[i] = pick(has, ln_b - psi + pick(interior, ln_x, 0.0), 0.0);
                d_rate[i] = pick(has, a / b - pick(interior, xi, 0.0), 0.0);
            }
        }
        g_shape.absorb(start, &d_shape[..len]);
        g_rate.absorb(start, &d_rate[..len]);
    });
    g_shape.finish();
    g_rate.finish();
    value
}

kernel!(GammaKernel, f64, gamma, [a0 s0 g0 0, a1 s1 g1 1]);

/// The negative binomial family by mean `μ` and concentration `φ` over
/// counts `k` (Stan's `neg_binomial_2`):
///
/// `log f(k | μ, φ) = ln Γ(φ + k) − ln Γ(φ) − ln k! + φ (ln φ − ln(μ + φ))
/// + k (ln μ − ln(μ + φ))` (the last term is 0 for `k = 0`);
/// `∂/∂μ = k / μ − (k + φ) / (μ + φ)`,
/// `∂/∂φ = ψ(φ + k) − ψ(φ) + ln φ − ln(μ + φ) + (μ − k) / (μ + φ)`.
///
/// Arguments `[mean, concentration]`; `−∞` and no partials where either is
/// not positive and finite. `ln Γ(φ + k)` and `ψ(φ + k)` are computed per
/// element (scalar, libm), so this kernel gains less than the others.
///
/// ```
/// use iwhvi_core::plate::{Arg, NegativeBinomial2Kernel, PlateKernel};
/// let (mut d_mean, mut d_conc) = ([0.0], [0.0]);
/// let lp = NegativeBinomial2Kernel.block(
///     0.0,
///     &[0],
///     &[Arg::Const(1.0), Arg::Const(1.0)],
///     &mut [&mut d_mean[..], &mut d_conc[..]],
/// );
/// // φ = 1 is geometric: P(0) = φ / (μ + φ) = ½.
/// assert!((lp - 0.5f64.ln()).abs() < 1e-15);
/// assert!((d_mean[0] + 0.5).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NegativeBinomial2Kernel;

#[inline(always)]
fn negative_binomial_2<M: Source, P: Source, GM: Sink, GP: Sink>(
    acc: f64,
    obs: &[u64],
    mean: M,
    concentration: P,
    mut g_mean: GM,
    mut g_conc: GP,
) -> f64 {
    let partials = GM::ACTIVE || GP::ACTIVE;
    let table = ln_fact_table();
    let (lg_phi0, psi_phi0, ln_phi0) = if P::BROADCAST {
        let phi = concentration.at(0);
        let (lg, psi) = gamma_shape(phi, GP::ACTIVE);
        (lg, psi, vmath::ln(phi))
    } else {
        (0.0, 0.0, 0.0)
    };
    // Per element: ln Γ(φ + k) − ln Γ(φ) − ln k!, and ψ(φ + k) − ψ(φ).
    let (mut gammas, mut psis) = ([0.0; CHUNK], [0.0; CHUNK]);
    let value = drive!(acc, obs.len(), |start, len, out| {
        let (y, mean, concentration) = (
            &obs[start..start + len],
            mean.sub(start, len),
            concentration.sub(start, len),
        );
        let (gammas, psis) = (&mut gammas[..len], &mut psis[..len]);
        for i in 0..len {
            let (phi, k) = (concentration.at(i), y[i]);
            if !(positive(phi) & positive(mean.at(i))) {
                (gammas[i], psis[i]) = (0.0, 0.0);
                continue;
            }
            let (lg_phi, psi_phi) = if P::BROADCAST {
                (lg_phi0, psi_phi0)
            } else {
                gamma_shape(phi, GP::ACTIVE)
            };
            let phi_k = phi + k as f64;
            gammas[i] = ln_gamma(phi_k) - lg_phi - ln_fact(table, k);
            psis[i] = if GP::ACTIVE {
                digamma(phi_k) - psi_phi
            } else {
                0.0
            };
        }
        let (term, [d_mean, d_conc, _]) = (&mut out.term, &mut out.d);
        for i in 0..len {
            let (mu, phi, k) = (mean.at(i), concentration.at(i), y[i]);
            let valid = positive(mu) & positive(phi);
            let count = k as f64;
            let ln_phi = if P::BROADCAST {
                ln_phi0
            } else {
                vmath::ln(phi)
            };
            let total = mu + phi;
            let log_total = vmath::ln(total);
            let last = pick(k == 0, 0.0, (vmath::ln(mu) - log_total) * count);
            term[i] = pick(
                valid,
                gammas[i] + phi * (ln_phi - log_total) + last,
                f64::NEG_INFINITY,
            );
            if partials {
                let inv_total = 1.0 / total;
                d_mean[i] = pick(valid, count / mu - (count + phi) * inv_total, 0.0);
                d_conc[i] = pick(
                    valid,
                    psis[i] + (ln_phi - log_total) + (mu - count) * inv_total,
                    0.0,
                );
            }
        }
        g_mean.absorb(start, &d_mean[..len]);
        g_conc.absorb(start, &d_conc[..len]);
    });
    g_mean.finish();
    g_conc.finish();
    value
}

kernel!(NegativeBinomial2Kernel, u64, negative_binomial_2, [a0 s0 g0 0, a1 s1 g1 1]);
