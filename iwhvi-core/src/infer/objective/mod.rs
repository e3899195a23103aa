//! The DIWHVI family of bounds on `log p(x)` and on `log q(u)`.
//!
//! For a hierarchical guide with mixing variable `ψ`, conditional
//! `q(u | ψ)` and reverse model `τ(ψ | u)`, a draw `ψ₀ ~ q(ψ)`,
//! `u ~ q(u | ψ₀)` and `ψ₁ … ψ_K ~ τ(ψ | u)` give the weights
//! `w_k = log q(u|ψ_k) + log q(ψ_k) − log τ(ψ_k|u)` and the sandwich
//!
//! - `U_K(u) = logsumexp_{k=0..K} w_k − log(K+1)`, with `E U_K ≥ log q(u)`
//!   ([`upper_bound_log_q`]);
//! - `L_K(u) = logsumexp_{k=1..K} w_k − log K`, with `E L_K ≤ log q(u)`.
//!
//! DIWHVI with `M` outer samples is
//! `logsumexp_m [log p(x, u_m) − U_K(u_m)] − log M ≤ log p(x)` in
//! expectation. ELBO (non-hierarchical guide, `M = 1`), IWAE
//! (non-hierarchical, `M > 1`), HVM (`K = 0`), SIVI (no reverse model) and
//! IWHVI (`M = 1`) are settings of this one function; see [`Diwhvi`].
//!
//! All randomness of a step is drawn first ([`StepNoise`]); the bound is
//! then a deterministic function of the guide's parameters, which
//! [`DiwhviObjective`] exposes to the [gradient engine](mod@crate::gradient).
//!
//! One routine computes the weights; the bound and every gradient
//! estimator ([`GradientEstimator`]) read it, differing only in which
//! densities see the parameters stopped (constants), and
//! [`value_and_gradient_with`] picks the estimator's function, so the rest
//! of the crate never needs to know which one runs.

mod bound;
mod chained;
mod diagnostics;
mod estimators;
#[cfg(test)]
mod factorised_tests;
pub mod fused;
mod noise;
mod per_point;
#[cfg(test)]
mod per_point_tests;
mod weights;

pub use bound::{Diwhvi, DiwhviObjective};
pub(crate) use chained::LogJoint;
pub use chained::{CHAINED_PARALLEL_THRESHOLD, ChainedModel};
pub use diagnostics::{
    DiagnosticsError, Estimate, GuideDiagnostics, LogQSandwich, MutualInformation, estimate_bound,
    guide_diagnostics, log_evidence, mutual_information, upper_bound_log_q,
};
pub(crate) use diagnostics::{estimate_bound_within, sandwich};
pub(crate) use estimators::{GenericEngines, split_engines_value_and_gradient_theta};
pub use estimators::{
    GradientEstimator, ObjectiveError, value_and_gradient, value_and_gradient_with,
    value_and_gradient_with_theta,
};
pub(crate) use noise::NoiseEntries;
pub use noise::StepNoise;
pub use per_point::per_point_bound;
pub(crate) use per_point::{PerPointObjective, PointGroups, PointNoise};
