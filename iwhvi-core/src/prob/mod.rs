//! The probability layer: distributions (densities generic over
//! `Scalar`, samplers, supports), the transforms between a
//! support and unconstrained space, and the `Model` trait
//! (a log joint over unconstrained latents, Jacobians included) with its
//! layout of named latents; and plates, a density summed over many
//! observations as one kernel over `f64` arrays.
//!
//! Written over the AD layer's `Scalar`; knows nothing of guides or
//! objectives. Every module is re-exported at the crate root.

pub mod data;
pub mod distributions;
pub mod generated;
pub mod model;
pub mod plate;
pub mod semi_implicit_prior;
pub mod subsample;
pub mod transforms;
