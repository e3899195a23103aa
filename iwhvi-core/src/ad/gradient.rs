//! The chunked forward-mode gradient engine.
//!
//! A gradient of `f: Rᴾ → R` by forward mode takes `⌈P / W⌉` passes of
//! [`Dual<W>`]: pass `c` seeds the unit tangents of parameters
//! `cW … cW + W - 1` and reads `W` partial derivatives off the result. The
//! passes are independent, so they run on all cores; each pass computes the
//! same thing whichever thread runs it, so the gradient is bit-identical
//! with threads on or off.
//!
//! Every pass must see the *same* function. A [`Differentiable`] therefore
//! holds everything random (a step's noise draws) as data and evaluates
//! through `&self`: draw the noise, build the function, then differentiate.

use std::ops::Range;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::dual::Dual;
use crate::scalar::Scalar;

/// A scalar function of a parameter vector, generic over the scalar so that
/// it evaluates on `f64` (value) and on duals (derivatives).
///
/// `eval` takes `&self`: the function is fixed for the duration of a
/// gradient, and any noise it uses is drawn beforehand and stored in
/// `self`. It must be deterministic: the engine evaluates it once per
/// chunk of `W` directions, possibly on different threads.
///
/// ```
/// use iwhvi_core::{gradient, Differentiable, Scalar};
///
/// /// f(θ) = Σᵢ (θᵢ - εᵢ)², with the noise ε drawn before differentiating.
/// struct SquaredDistance {
///     noise: Vec<f64>,
/// }
///
/// impl Differentiable for SquaredDistance {
///     fn eval<T: Scalar>(&self, theta: &[T]) -> T {
///         theta.iter().zip(&self.noise).map(|(&t, &e)| (t - e).square()).sum()
///     }
/// }
///
/// let f = SquaredDistance { noise: vec![0.5, -1.0, 2.0] };
/// let (value, grad) = gradient(&f, &[1.0, 1.0, 1.0]);
/// assert_eq!(value, 0.25 + 4.0 + 1.0);
/// assert_eq!(grad, vec![1.0, 4.0, -2.0]);
/// ```
pub trait Differentiable: Sync {
    /// `f(x)`.
    fn eval<T: Scalar>(&self, x: &[T]) -> T;
}

/// A way to compute gradients of a [`Differentiable`]: chunked forward
/// mode ([`ForwardEngine`]) or a reverse-mode tape
/// ([`TapeEngine`](crate::tape::TapeEngine)). Objectives and the
/// fit loop are generic over it.
///
/// An engine implements [`GradientEngine::partials`]; the other
/// methods check their arguments and call it. Both engines also have them
/// as inherent methods, so a caller need not import the trait.
///
/// ```
/// use iwhvi_core::{Differentiable, ForwardEngine, GradientEngine, Scalar};
/// use iwhvi_core::tape::TapeEngine;
///
/// struct Product;
/// impl Differentiable for Product {
///     fn eval<T: Scalar>(&self, x: &[T]) -> T {
///         x[0] * x[1] * x[2]
///     }
/// }
///
/// fn partials<E: GradientEngine>(engine: &E) -> [f64; 2] {
///     let mut out = [0.0; 2];
///     let value = engine.value_and_partial_gradient_into(&Product, &[2.0, 3.0, 5.0], 1..3, &mut out);
///     assert_eq!(value, 30.0);
///     out
/// }
/// assert_eq!(partials(&ForwardEngine::<4>::new()), [10.0, 6.0]);
/// assert_eq!(partials(&TapeEngine), [10.0, 6.0]);
/// ```
pub trait GradientEngine: Sync {
    /// The engine's work: `f(x)`, writing `∂f/∂x_{first + j}` into
    /// `out[j]`. The other methods call it with `first + out.len()` at most
    /// `x.len()`; implement it, call them.
    fn partials<F: Differentiable>(&self, f: &F, x: &[f64], first: usize, out: &mut [f64]) -> f64;

    /// `f(x)` and `∇f(x)`.
    fn value_and_gradient<F: Differentiable>(&self, f: &F, x: &[f64]) -> (f64, Vec<f64>) {
        let mut gradient = vec![0.0; x.len()];
        let value = self.value_and_gradient_into(f, x, &mut gradient);
        (value, gradient)
    }

    /// `f(x)`, writing `∇f(x)` into `gradient`.
    ///
    /// # Panics
    /// If `gradient.len() != x.len()`.
    fn value_and_gradient_into<F: Differentiable>(
        &self,
        f: &F,
        x: &[f64],
        gradient: &mut [f64],
    ) -> f64 {
        // A buffer or slice of the wrong length is a programming error of the
        // caller, as a slice index out of range is (not input to validate): the
        // library's own callers (`fit`, the evaluation functions, the generated
        // models) size every buffer from the layout they checked first.
        assert_eq!(
            gradient.len(),
            x.len(),
            "the gradient buffer must have one entry per parameter"
        );
        self.partials(f, x, 0, gradient)
    }

    /// `f(x)`, writing `∂f/∂xᵢ` for `i` in `directions` into `out` (the
    /// other parameters held constant, so the engine spends nothing on
    /// their derivatives).
    ///
    /// # Panics
    /// If `directions` reaches past `x` or `out.len() != directions.len()`.
    fn value_and_partial_gradient_into<F: Differentiable>(
        &self,
        f: &F,
        x: &[f64],
        directions: Range<usize>,
        out: &mut [f64],
    ) -> f64 {
        // A buffer or slice of the wrong length is a programming error of the
        // caller, as a slice index out of range is (not input to validate): the
        // library's own callers (`fit`, the evaluation functions, the generated
        // models) size every buffer from the layout they checked first.
        assert!(
            directions.end <= x.len(),
            "the directions {directions:?} must be parameters of x (it has {})",
            x.len()
        );
        assert_eq!(
            out.len(),
            directions.len(),
            "the gradient buffer must have one entry per direction"
        );
        self.partials(f, x, directions.start, out)
    }
}

/// The provided [`GradientEngine`] methods as inherent methods of an engine
/// type, `[generics] Type`, so that callers need not import the trait.
macro_rules! inherent_engine_methods {
    ([$($g:tt)*] $T:ty) => {
        impl<$($g)*> $T {
            /// `f(x)` and `∇f(x)`: see
            /// [`GradientEngine::value_and_gradient`](crate::GradientEngine::value_and_gradient).
            pub fn value_and_gradient<F: $crate::Differentiable>(
                &self,
                f: &F,
                x: &[f64],
            ) -> (f64, Vec<f64>) {
                $crate::GradientEngine::value_and_gradient(self, f, x)
            }

            /// `f(x)`, writing `∇f(x)` into `gradient`: see
            /// [`GradientEngine::value_and_gradient_into`](crate::GradientEngine::value_and_gradient_into).
            ///
            /// # Panics
            /// If `gradient.len() != x.len()`.
            pub fn value_and_gradient_into<F: $crate::Differentiable>(
                &self,
                f: &F,
                x: &[f64],
                gradient: &mut [f64],
            ) -> f64 {
                $crate::GradientEngine::value_and_gradient_into(self, f, x, gradient)
            }

            /// `f(x)`, writing `∂f/∂xᵢ` for `i` in `directions` into `out`: see
            /// [`GradientEngine::value_and_partial_gradient_into`](crate::GradientEngine::value_and_partial_gradient_into).
            ///
            /// # Panics
            /// If `directions` reaches past `x` or `out.len() != directions.len()`.
            pub fn value_and_partial_gradient_into<F: $crate::Differentiable>(
                &self,
                f: &F,
                x: &[f64],
                directions: ::std::ops::Range<usize>,
                out: &mut [f64],
            ) -> f64 {
                $crate::GradientEngine::value_and_partial_gradient_into(self, f, x, directions, out)
            }
        }
    };
}
pub(crate) use inherent_engine_methods;

impl<const W: usize> GradientEngine for ForwardEngine<W> {
    fn partials<F: Differentiable>(&self, f: &F, x: &[f64], first: usize, out: &mut [f64]) -> f64 {
        self.directional_passes(f, x, out, Seed::Unit(first))
    }
}

inherent_engine_methods!([const W: usize] ForwardEngine<W>);

/// Whether the engine runs its passes on all cores or on the calling thread.
/// The gradient is the same, bit for bit, under every setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Parallelism {
    /// Time the first pass on the calling thread; run the rest on rayon's
    /// pool only if they would take longer than waking the pool costs
    /// (about 100 µs of remaining work), else inline.
    #[default]
    Auto,
    /// Every pass after the first on rayon's global pool (as many threads
    /// as cores, or `RAYON_NUM_THREADS`), however small the function.
    AllCores,
    /// Every pass on the calling thread.
    SingleThread,
}

/// The chunked forward-mode engine with `W` directions per pass.
///
/// `W` trades passes against width: a pass costs about one evaluation of
/// `f` plus `W` multiply-adds per arithmetic operation, and the gradient
/// costs `⌈P / W⌉` passes. `docs/PERFORMANCE.md` measures the choice; 16
/// is the default of [`gradient`].
///
/// ```
/// use iwhvi_core::{Differentiable, ForwardEngine, Parallelism, Scalar};
///
/// struct Rosenbrock;
/// impl Differentiable for Rosenbrock {
///     fn eval<T: Scalar>(&self, x: &[T]) -> T {
///         (-x[0] + 1.0).square() + (x[1] - x[0].square()).square() * 100.0
///     }
/// }
///
/// let engine = ForwardEngine::<4>::new().with_parallelism(Parallelism::SingleThread);
/// let (value, grad) = engine.value_and_gradient(&Rosenbrock, &[1.0, 1.0]);
/// assert_eq!((value, grad), (0.0, vec![0.0, 0.0]));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForwardEngine<const W: usize> {
    parallelism: Parallelism,
}

impl<const W: usize> ForwardEngine<W> {
    /// An engine with [`Parallelism::Auto`], the same as `Default`.
    pub const fn new() -> Self {
        const {
            assert!(
                W > 0,
                "a gradient engine needs at least one direction per pass"
            )
        };
        Self {
            parallelism: Parallelism::Auto,
        }
    }

    /// The same engine with the given parallelism.
    pub const fn with_parallelism(self, parallelism: Parallelism) -> Self {
        Self { parallelism }
    }

    /// Its parallelism.
    pub const fn parallelism(&self) -> Parallelism {
        self.parallelism
    }

    /// The number of passes a gradient in `p` parameters takes: `⌈p / W⌉`.
    ///
    /// ```
    /// assert_eq!(iwhvi_core::ForwardEngine::<8>::new().passes(17), 3);
    /// ```
    pub const fn passes(&self, p: usize) -> usize {
        p.div_ceil(W)
    }

    /// `f(x)` and the directional derivative `∇f(x) · v` (a Jacobian-vector
    /// product), in one pass.
    ///
    /// # Panics
    /// If `v.len() != x.len()`.
    ///
    /// ```
    /// use iwhvi_core::{Differentiable, ForwardEngine, Scalar};
    /// struct Product;
    /// impl Differentiable for Product {
    ///     fn eval<T: Scalar>(&self, x: &[T]) -> T {
    ///         x[0] * x[1]
    ///     }
    /// }
    /// let (value, slope) = ForwardEngine::<8>::new().jvp(&Product, &[2.0, 3.0], &[1.0, 1.0]);
    /// assert_eq!((value, slope), (6.0, 5.0));
    /// ```
    pub fn jvp<F: Differentiable>(&self, f: &F, x: &[f64], v: &[f64]) -> (f64, f64) {
        assert_eq!(
            v.len(),
            x.len(),
            "the direction must have one entry per parameter"
        );
        let duals: Vec<Dual<1>> = x
            .iter()
            .zip(v)
            .map(|(&x, &v)| {
                if v == 0.0 {
                    Dual::constant(x)
                } else {
                    Dual::new(x, [v])
                }
            })
            .collect();
        let y = f.eval(&duals);
        (y.value, y.tangent()[0])
    }

    /// `f(x)` and the directional derivatives `∇f(x) · vⱼ` for each of the
    /// given directions, `W` directions per pass.
    ///
    /// # Panics
    /// If a direction's length is not `x.len()`.
    pub fn jvps<F: Differentiable>(
        &self,
        f: &F,
        x: &[f64],
        directions: &[&[f64]],
    ) -> (f64, Vec<f64>) {
        for d in directions {
            // A buffer or slice of the wrong length is a programming error of the
            // caller, as a slice index out of range is (not input to validate): the
            // library's own callers (`fit`, the evaluation functions, the generated
            // models) size every buffer from the layout they checked first.
            assert_eq!(
                d.len(),
                x.len(),
                "each direction must have one entry per parameter"
            );
        }
        let mut out = vec![0.0; directions.len()];
        let value = self.directional_passes(f, x, &mut out, Seed::Directions(directions));
        (value, out)
    }

    /// The passes behind every derivative: output `j` is the derivative
    /// along direction `j` of `seed`.
    fn directional_passes<F: Differentiable>(
        &self,
        f: &F,
        x: &[f64],
        out: &mut [f64],
        seed: Seed<'_>,
    ) -> f64 {
        if out.is_empty() {
            return f.eval(x);
        }
        let run = |buffer: &mut Vec<Dual<W>>, chunk: usize, out: &mut [f64]| -> f64 {
            seed.fill(buffer, x, chunk * W, out.len());
            let y = f.eval(buffer);
            out.copy_from_slice(&y.tangent()[..out.len()]);
            y.value
        };
        let passes = out.len().div_ceil(W);
        let mut buffer = Vec::with_capacity(x.len());
        let (first, rest) = out.split_at_mut(W.min(out.len()));
        let started = Instant::now();
        let value = run(&mut buffer, 0, first);
        let inline = self
            .parallelism
            .runs_inline(started.elapsed(), passes.saturating_sub(1));
        if inline {
            for (chunk, out) in rest.chunks_mut(W).enumerate() {
                run(&mut buffer, chunk + 1, out);
            }
        } else {
            parallel_chunks(
                rest,
                W,
                &|| Vec::with_capacity(x.len()),
                &|buffer, chunk, out| {
                    run(buffer, chunk + 1, out);
                },
            );
        }
        value
    }
}

/// Runs `job(buffer, i, chunk)` for each `width`-wide chunk of `out` (the
/// last one shorter) on rayon's pool, every worker with a buffer made by
/// `init` (reused across its chunks) and in the caller's plate-cache scope.
///
/// Generic only in the buffer (one copy per lane width), not in the
/// function, so rayon's splitting and job machinery is compiled once per
/// width here rather than once per function and engine in every crate
/// that takes gradients. Which thread runs a chunk changes nothing it
/// computes: each pass rewrites the buffer it reads.
fn parallel_chunks<S: Send>(
    out: &mut [f64],
    width: usize,
    init: &(dyn Fn() -> S + Sync),
    job: &(dyn Fn(&mut S, usize, &mut [f64]) + Sync),
) {
    let scope = crate::plate::affine_scope();
    out.par_chunks_mut(width)
        .enumerate()
        .for_each_init(init, |buffer, (i, chunk)| {
            crate::plate::within_scope(scope.clone(), || job(buffer, i, chunk));
        });
}

/// Below this much estimated single-core work the passes stay on the
/// calling thread (the result is the same bits either way).
pub(crate) const PARALLEL_THRESHOLD: Duration = Duration::from_micros(100);

impl Parallelism {
    /// Whether `remaining` more pieces of work like the first, which took
    /// `first`, stay on the calling thread: always for `SingleThread`,
    /// never for `AllCores`, and under `Auto` when they would take less
    /// than [`PARALLEL_THRESHOLD`] on one core (waking rayon's pool costs
    /// tens of microseconds). It decides where work runs, never what it
    /// computes.
    pub(crate) fn runs_inline(self, first: Duration, remaining: usize) -> bool {
        remaining == 0
            || match self {
                Parallelism::SingleThread => true,
                Parallelism::AllCores => false,
                Parallelism::Auto => first * (remaining as u32) < PARALLEL_THRESHOLD,
            }
    }
}

/// The tangent directions of a set of passes.
#[derive(Clone, Copy)]
enum Seed<'a> {
    /// The unit vectors from `start`: output `j` is `∂f/∂x_{start+j}`.
    Unit(usize),
    /// Given directions: output `j` is `∇f · directions[j]`.
    Directions(&'a [&'a [f64]]),
}

impl Seed<'_> {
    /// Fills `buffer` with the duals of `x` for the directions
    /// `first .. first + count`; a parameter none of them moves is a
    /// constant, so the pass skips its derivative arithmetic.
    fn fill<const W: usize>(
        self,
        buffer: &mut Vec<Dual<W>>,
        x: &[f64],
        first: usize,
        count: usize,
    ) {
        buffer.clear();
        match self {
            Seed::Unit(start) => {
                buffer.extend(x.iter().map(|&v| Dual::constant(v)));
                for k in 0..count {
                    let i = start + first + k;
                    buffer[i] = Dual::variable(x[i], k);
                }
            }
            Seed::Directions(directions) => {
                buffer.extend(x.iter().enumerate().map(|(i, &v)| {
                    let mut tangent = [0.0; W];
                    for (t, d) in tangent.iter_mut().zip(&directions[first..first + count]) {
                        *t = d[i];
                    }
                    if tangent.iter().all(|&t| t == 0.0) {
                        Dual::constant(v)
                    } else {
                        Dual::new(v, tangent)
                    }
                }));
            }
        }
    }
}

/// `f(x)` and `∇f(x)` with the default engine: 16 directions per pass
/// (the fastest width measured in `docs/PERFORMANCE.md`),
/// [`Parallelism::Auto`].
///
/// ```
/// use iwhvi_core::{gradient, Differentiable, Scalar};
/// struct LogSumExp;
/// impl Differentiable for LogSumExp {
///     fn eval<T: Scalar>(&self, x: &[T]) -> T {
///         T::log_sum_exp(x)
///     }
/// }
/// let (value, grad) = gradient(&LogSumExp, &[0.0, 0.0]);
/// assert_eq!(value, 2f64.ln());
/// assert_eq!(grad, vec![0.5, 0.5]);
/// ```
pub fn gradient<F: Differentiable>(f: &F, x: &[f64]) -> (f64, Vec<f64>) {
    ForwardEngine::<16>::new()
        .with_parallelism(Parallelism::Auto)
        .value_and_gradient(f, x)
}
