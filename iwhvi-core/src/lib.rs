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

pub mod distributions;
pub mod dual;
pub mod fit;
pub mod gradient;
pub mod guide;
pub mod laplace;
pub mod linalg;
pub mod model;
pub mod objective;
pub mod optim;
pub mod posterior;
pub mod reverse;
pub mod scalar;
pub mod special;
pub mod transforms;

pub use dual::Dual;
pub use gradient::{Differentiable, GradientBackend, GradientEngine, Parallelism, gradient};
pub use linalg::LinalgError;
pub use scalar::Scalar;
