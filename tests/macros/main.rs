//! `#[variational]` on models and guides: generated code against
//! hand-written equivalents, and a lint-clean expansion (one test binary,
//! one module per former test file, and `fixtures`, what several of them
//! share; the compile-fail cases are `iwhvi-macros/tests/ui.rs`).

mod amortised_groups;
mod batch_factor;
mod batch_groups;
mod batch_locals;
mod constant_prior;
mod encoder_guide;
mod fixtures;
mod guide_macro;
mod guide_unconstrained;
mod invalid_parameters;
mod learned_mixing;
mod learned_params;
mod macro_vae;
mod model_language;
mod model_macro;
mod per_point_groups;
mod per_point_mixing;
mod reverse_encoder;
// `pub`, so that its `#![deny(missing_docs)]` sees the generated items as
// exported, as it did when the file was a crate of its own.
mod closures;
pub mod model_macro_lints;
mod plates;
mod transformed;
