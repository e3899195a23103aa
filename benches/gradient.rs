//! Gradient engine benchmark (issue: foundation).
//!
//! Two realistic functions of `P ∈ {10, 100, 1000}` parameters:
//! - `hier_normal`: the log density of a 10-dimensional hierarchical normal
//!   model (μ, log τ, eight non-centred group effects) with 1,000
//!   observations, at latents `z = A θ + c` (a fixed dense 10×P map, as a
//!   guide's reparameterisation would give);
//! - `lse_gauss`: `log_sum_exp` over M×K = 8×64 Gaussian log densities
//!   `log N(x_mk; μ, diag e^{2s})` in `P/2` dimensions, `θ = (μ, s)`.
//!
//! Each is timed as one `f64` evaluation and as a full gradient through
//! `ForwardEngine<W>` (W ∈ {4, 8, 16}, single- and multi-threaded), and
//! through num-dual's `DualSVec64<W>` with the same chunked loop on one
//! thread (the outside anchor). `benches/perf_table.py` turns criterion's
//! output into the ratio `t_gradient / (P · t_f64)` of `docs/PERFORMANCE.md`.
//!
//! ```sh
//! cargo bench --bench gradient && python3 benches/perf_table.py
//! ```

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use iwhvi::{Differentiable, ForwardEngine, Parallelism, Scalar};
use nalgebra::{Const, U1};
use num_dual::{Derivative, DualNum, DualSVec64, DualStruct};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const LATENTS: usize = 10;
const GROUPS: usize = 8;
const OBSERVATIONS: usize = 1000;
const M: usize = 8;
const K: usize = 64;
const SIZES: [usize; 3] = [10, 100, 1000];

/// Data and parameter map of the hierarchical normal model.
struct HierNormal {
    p: usize,
    map: Vec<f64>,
    offset: [f64; LATENTS],
    y: Vec<f64>,
    inv_sigma: Vec<f64>,
    group: Vec<usize>,
    log_norm: f64,
}

impl HierNormal {
    fn new(p: usize, rng: &mut StdRng) -> Self {
        let scale = 1.0 / (p as f64).sqrt();
        let map = (0..LATENTS * p)
            .map(|_| rng.random_range(-1.0..1.0) * scale)
            .collect();
        let mut offset = [0.0; LATENTS];
        for o in &mut offset {
            *o = rng.random_range(-0.5..0.5);
        }
        let sigma: Vec<f64> = (0..OBSERVATIONS)
            .map(|_| rng.random_range(0.5..2.0))
            .collect();
        let log_norm = sigma
            .iter()
            .map(|s| s.ln() + iwhvi::special::LN_SQRT_2PI)
            .sum();
        Self {
            p,
            map,
            offset,
            y: (0..OBSERVATIONS)
                .map(|_| rng.random_range(-3.0..3.0))
                .collect(),
            inv_sigma: sigma.iter().map(|s| 1.0 / s).collect(),
            group: (0..OBSERVATIONS).map(|i| i % GROUPS).collect(),
            log_norm,
        }
    }
}

/// Gaussian log densities under a log-sum-exp. Every evaluation (f64,
/// iwhvi and num-dual alike) allocates its `M·K` terms and `P/2` inverse
/// scales, as straightforward user code would.
struct LseGauss {
    d: usize,
    x: Vec<f64>,
}

impl LseGauss {
    fn new(p: usize, rng: &mut StdRng) -> Self {
        let d = p / 2;
        Self {
            d,
            x: (0..M * K * d)
                .map(|_| rng.random_range(-2.0..2.0))
                .collect(),
        }
    }
}

/// The two function bodies, written once and expanded for iwhvi's scalar
/// and for num-dual's, so both libraries run the same arithmetic.
macro_rules! bench_functions {
    ($hier:ident, $lse:ident, $T:ident: $($bound:tt)+) => {
        pub(crate) fn $hier<$T: $($bound)+>(f: &HierNormal, theta: &[$T]) -> $T {
            let mut z = [$T::from(0.0); LATENTS];
            for (r, zr) in z.iter_mut().enumerate() {
                let row = &f.map[r * f.p..(r + 1) * f.p];
                let mut acc = $T::from(f.offset[r]);
                for (t, w) in theta.iter().zip(row) {
                    acc += *t * *w;
                }
                *zr = acc;
            }
            let (mu, log_tau) = (z[0], z[1]);
            let tau = log_tau.exp();
            // mu ~ N(0, 5), tau ~ HalfNormal(5) with the log-Jacobian of exp.
            let mut lp = -(mu * mu) * (0.5 / 25.0) - (tau * tau) * (0.5 / 25.0) + log_tau;
            let mut theta_g = [$T::from(0.0); GROUPS];
            for (j, tg) in theta_g.iter_mut().enumerate() {
                let eta = z[2 + j];
                lp -= eta * eta * 0.5;
                *tg = mu + tau * eta;
            }
            for i in 0..OBSERVATIONS {
                let r = (theta_g[f.group[i]] - f.y[i]) * f.inv_sigma[i];
                lp -= r * r * 0.5;
            }
            lp - f.log_norm
        }

        pub(crate) fn $lse<$T: $($bound)+>(f: &LseGauss, theta: &[$T], terms: &mut Vec<$T>) -> $T {
            let (mu, log_sigma) = theta.split_at(f.d);
            let inv_sigma: Vec<$T> = log_sigma.iter().map(|s| (-*s).exp()).collect();
            let log_det: $T = log_sigma.iter().copied().sum();
            terms.clear();
            for x in f.x.chunks_exact(f.d) {
                let mut quad = $T::from(0.0);
                for ((xj, m), is) in x.iter().zip(mu).zip(&inv_sigma) {
                    let r = (*m - *xj) * *is;
                    quad += r * r;
                }
                terms.push(-quad * 0.5 - log_det);
            }
            log_sum_exp(terms) - (f.d as f64) * iwhvi::special::LN_SQRT_2PI
        }
    };
}

fn log_sum_exp<T: Scalar>(terms: &[T]) -> T {
    T::log_sum_exp(terms)
}

bench_functions!(hier_normal, lse_gauss, T: Scalar);

mod nd {
    //! The same bodies on num-dual's types.
    use super::*;

    pub trait Nd: DualNum<Primitive = f64> + DualStruct<Real = f64> + Copy {}
    impl<const W: usize> Nd for DualSVec64<W> {}

    /// num-dual has no log-sum-exp: the stable formula a user would write.
    fn log_sum_exp<T: Nd>(terms: &[T]) -> T {
        let max = terms
            .iter()
            .map(|t| t.re())
            .fold(f64::NEG_INFINITY, f64::max);
        let sum: T = terms.iter().map(|t| (*t - max).exp()).sum();
        sum.ln() + max
    }

    bench_functions!(hier_normal, lse_gauss, T: Nd);
}

impl Differentiable for HierNormal {
    fn eval<T: Scalar>(&self, theta: &[T]) -> T {
        hier_normal(self, theta)
    }
}

impl Differentiable for LseGauss {
    fn eval<T: Scalar>(&self, theta: &[T]) -> T {
        lse_gauss(self, theta, &mut Vec::with_capacity(M * K))
    }
}

/// The chunked gradient loop of `ForwardEngine`, single-threaded, on
/// num-dual's vector dual (constants without a derivative, as num-dual
/// intends).
fn num_dual_gradient<const W: usize>(
    x: &[f64],
    f: impl Fn(&[DualSVec64<W>]) -> DualSVec64<W>,
) -> Vec<f64> {
    let mut gradient = vec![0.0; x.len()];
    let mut buffer = Vec::with_capacity(x.len());
    for (chunk, out) in gradient.chunks_mut(W).enumerate() {
        buffer.clear();
        buffer.extend(x.iter().enumerate().map(|(i, &v)| {
            let k = i.wrapping_sub(chunk * W);
            if k < out.len() {
                DualSVec64::new(v, Derivative::derivative_generic(Const::<W>, U1, k))
            } else {
                DualSVec64::new(v, Derivative::none())
            }
        }));
        let y = f(&buffer);
        let eps = y.eps.unwrap_generic(Const::<W>, U1);
        out.copy_from_slice(&eps.as_slice()[..out.len()]);
    }
    gradient
}

fn parameters(p: usize, rng: &mut StdRng) -> Vec<f64> {
    (0..p).map(|_| rng.random_range(-0.5..0.5)).collect()
}

fn bench_engine<F: Differentiable, const W: usize>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    f: &F,
    x: &[f64],
) {
    let p = x.len();
    for (label, parallelism) in [
        ("single", Parallelism::SingleThread),
        ("multi", Parallelism::Auto),
    ] {
        let engine = ForwardEngine::<W>::new().with_parallelism(parallelism);
        let mut gradient = vec![0.0; p];
        c.bench_with_input(
            BenchmarkId::new(format!("iwhvi-W{W}-{label}"), p),
            &p,
            |b, _| b.iter(|| engine.value_and_gradient_into(f, black_box(x), &mut gradient)),
        );
    }
}

fn check_num_dual_agrees(ours: &[f64], theirs: &[f64]) {
    for (a, b) in ours.iter().zip(theirs) {
        assert!(
            (a - b).abs() <= 1e-9 * (1.0 + a.abs()),
            "num-dual gradient {b} differs from ours {a}"
        );
    }
}

fn benches(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(2019);
    let mut group = c.benchmark_group("hier_normal");
    for p in SIZES {
        let f = HierNormal::new(p, &mut rng);
        let x = parameters(p, &mut rng);
        group.bench_with_input(BenchmarkId::new("f64", p), &p, |b, _| {
            b.iter(|| f.eval(black_box(&x)))
        });
        bench_engine::<_, 4>(&mut group, &f, &x);
        bench_engine::<_, 8>(&mut group, &f, &x);
        bench_engine::<_, 16>(&mut group, &f, &x);
        let ours = iwhvi::gradient(&f, &x).1;
        check_num_dual_agrees(
            &ours,
            &num_dual_gradient::<8>(&x, |t| nd::hier_normal(&f, t)),
        );
        macro_rules! num_dual_width {
            ($($W:literal),*) => {$(
                group.bench_with_input(BenchmarkId::new(concat!("num-dual-W", $W, "-single"), p), &p, |b, _| {
                    b.iter(|| num_dual_gradient::<$W>(black_box(&x), |t| nd::hier_normal(&f, t)))
                });
            )*};
        }
        num_dual_width!(4, 8, 16);
    }
    group.finish();

    let mut group = c.benchmark_group("lse_gauss");
    for p in SIZES {
        let f = LseGauss::new(p, &mut rng);
        let x = parameters(p, &mut rng);
        group.bench_with_input(BenchmarkId::new("f64", p), &p, |b, _| {
            b.iter(|| f.eval(black_box(&x)))
        });
        bench_engine::<_, 4>(&mut group, &f, &x);
        bench_engine::<_, 8>(&mut group, &f, &x);
        bench_engine::<_, 16>(&mut group, &f, &x);
        let ours = iwhvi::gradient(&f, &x).1;
        check_num_dual_agrees(
            &ours,
            &num_dual_gradient::<8>(&x, |t| nd::lse_gauss(&f, t, &mut Vec::with_capacity(M * K))),
        );
        macro_rules! num_dual_width {
            ($($W:literal),*) => {$(
                group.bench_with_input(BenchmarkId::new(concat!("num-dual-W", $W, "-single"), p), &p, |b, _| {
                    b.iter(|| num_dual_gradient::<$W>(black_box(&x), |t| nd::lse_gauss(&f, t, &mut Vec::with_capacity(M * K))))
                });
            )*};
        }
        num_dual_width!(4, 8, 16);
    }
    group.finish();
}

criterion_group! {
    name = gradient;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(20);
    targets = benches
}
criterion_main!(gradient);
