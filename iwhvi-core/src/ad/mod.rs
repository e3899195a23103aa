//! The automatic-differentiation layer: the `Scalar`
//! trait that all numeric code is written over, forward-mode dual numbers,
//! the reverse-mode tape, the engines that turn a
//! `Differentiable` function into its gradient,
//! and the numeric kernels written once over `Scalar` (special functions,
//! linear algebra, an adaptive ODE solver).
//!
//! Nothing here knows about probability: the layers above (`prob`,
//! `infer`) are written over `Scalar` and differentiated by these engines. Every module is re-exported
//! at the crate root, so `iwhvi_core::dual::Dual` is the path to use.

#[cfg(test)]
pub(crate) mod checks;
pub mod dual;
pub mod gradient;
pub mod linalg;
pub mod ode;
pub(crate) mod rules;
pub mod scalar;
pub(crate) mod sparse;
pub mod special;
pub mod tape;
pub mod vector;
