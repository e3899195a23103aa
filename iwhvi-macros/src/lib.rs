//! Procedural macros of [iwhvi](https://docs.rs/iwhvi).
//!
//! This crate will hold the `#[variational]` attribute, which turns a model
//! struct into its log density and samplers and checks a guide struct
//! against its model at compile time. The attribute arrives with the
//! model-macro work; until then the crate exports no macro, so that nothing
//! pretends to work that does not.
#![deny(missing_docs)]
