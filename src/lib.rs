//! # iwhvi
//!
//! Bayesian inference with *hierarchical* variational families, trained with
//! the doubly importance weighted hierarchical bound (DIWHVI) of Sobolev &
//! Vetrov, "Importance Weighted Hierarchical Variational Inference"
//! (NeurIPS 2019). Gradients come from hand-written forward-mode dual
//! numbers.
//!
//! This facade re-exports the runtime ([`iwhvi_core`]) and, as they land,
//! the procedural macros (`iwhvi_macros`). What is here today is the
//! numeric foundation: the [`Scalar`] trait, the stack-allocated [`Dual`]
//! number, the chunked [`gradient()`](mod@gradient) engine and dual-aware [`linalg`].
//!
//! ```
//! use iwhvi::{gradient, Differentiable, Scalar};
//!
//! struct Quadratic;
//! impl Differentiable for Quadratic {
//!     fn eval<T: Scalar>(&self, x: &[T]) -> T {
//!         x.iter().map(|&xi| xi.square()).sum::<T>() * 0.5
//!     }
//! }
//!
//! let (value, grad) = gradient(&Quadratic, &[1.0, -2.0, 3.0]);
//! assert_eq!(value, 7.0);
//! assert_eq!(grad, vec![1.0, -2.0, 3.0]);
//! ```
#![deny(missing_docs)]

pub use iwhvi_core::*;

#[doc(hidden)]
pub mod __private {
    //! Paths for generated code: `::iwhvi::__private::…` reaches the runtime
    //! and the crates it builds on whatever the user's crate imports or
    //! shadows. Not a public API.
    pub use iwhvi_core;
    pub use nalgebra;
    pub use rand;
}

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
