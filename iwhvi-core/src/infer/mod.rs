//! The inference layer: hierarchical guides q(z) = ∫ q(z | ψ) q(ψ) dψ with
//! their reverse models τ(ψ | z), the DIWHVI objective and its estimators,
//! optimizers, the fitting loop, the Laplace approximation, and what a fit
//! leaves behind (posterior draws, importance weights, summaries, saved
//! guides).
//!
//! Built on the probability layer's `Model` and the
//! AD layer's engines. Every module is re-exported at the crate root.

pub mod amortised;
pub mod fit;
pub mod guide;
pub mod input;
pub mod laplace;
pub(crate) mod minibatch;
pub mod objective;
pub mod optim;
pub mod posterior;
