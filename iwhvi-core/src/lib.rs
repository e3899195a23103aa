//! Runtime of [iwhvi](https://docs.rs/iwhvi): dual numbers and the gradient
//! engines, special functions, linear algebra, distributions and
//! transforms, models and hierarchical guides, the DIWHVI objectives, the
//! fitting loop and posterior summaries. The facade crate `iwhvi`
//! re-exports all of it beside the `#[variational]` macro.
//!
//! Everything numeric is generic over one trait, [`Scalar`], implemented by
//! `f64` (values) and by [`Dual<W>`] (values with `W` directional
//! derivatives on the stack). Write a function once over `T: Scalar`, wrap it
//! in a [`Differentiable`], and [`gradient()`] returns its value and gradient
//! in `⌈P / W⌉` forward passes spread over the cores.
//!
//! ```
//! use iwhvi_core::{gradient, Differentiable, Scalar};
//!
//! /// Unnormalised log density of N(μ, e^{2s}) at fixed data: θ = (μ, s).
//! struct NormalLogLikelihood<'a> {
//!     data: &'a [f64],
//! }
//!
//! impl Differentiable for NormalLogLikelihood<'_> {
//!     fn eval<T: Scalar>(&self, theta: &[T]) -> T {
//!         let (mu, log_sigma) = (theta[0], theta[1]);
//!         let inv_sigma = (-log_sigma).exp();
//!         self.data
//!             .iter()
//!             .map(|&y| -((mu - y) * inv_sigma).square() * 0.5 - log_sigma)
//!             .sum()
//!     }
//! }
//!
//! let f = NormalLogLikelihood { data: &[1.0, 2.0, 3.0] };
//! let (_, grad) = gradient(&f, &[2.0, 0.0]);
//! // At the sample mean the μ-derivative vanishes; ∂/∂s = Σ(y-μ)² e^{-2s} - n = 2 - 3.
//! assert_eq!(grad, vec![0.0, -1.0]);
//! ```
#![deny(missing_docs)]
// `!(x > 0.0)` rejects NaN together with out-of-range values, on purpose.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

// The crate is built in three layers, each a folder: `ad` (scalars, dual
// numbers, the tape, the engines, special functions, linear algebra),
// `prob` (distributions, transforms, models) and `infer` (guides,
// objectives, optimizers, fitting, Laplace, posteriors). Each layer uses
// only the ones before it. The layers are private: every module is
// re-exported here, so user paths stay one level deep.
mod ad;
mod infer;
mod prob;

pub use ad::{dual, gradient, linalg, ode, scalar, special, tape, vector};
pub use infer::{amortised, fit, guide, input, laplace, objective, optim, posterior};
#[doc(hidden)]
pub use prob::generated;
pub use prob::plate;
pub use prob::semi_implicit_prior;
pub use prob::subsample;
pub use prob::{data, distributions, model, transforms};

/// The `rand` crate (0.10) whose generators the API takes; the facade
/// re-exports it as `iwhvi::rand`, so that a user's crate need not add a
/// `rand` of its own (whose `Rng` trait, in another version, would not
/// match).
///
/// ```
/// use iwhvi_core::rand::SeedableRng;
/// let mut rng = iwhvi_core::rand::rngs::StdRng::seed_from_u64(0);
/// let draws = iwhvi_core::guide::HierarchicalGuide::init_params(&iwhvi_core::guide::MeanField::new(1), &mut rng);
/// assert_eq!(draws.len(), 2);
/// ```
pub use rand;

pub use dual::Dual;
pub use gradient::{Differentiable, ForwardEngine, GradientEngine, Parallelism, gradient};
pub use linalg::LinalgError;
pub use scalar::Scalar;

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
