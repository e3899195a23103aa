//! `#[variational]` on a model struct: parse the fields' roles, check the
//! rules that cross fields, and expand into the data struct, its typed
//! latents and its `Model` implementation.

pub(crate) mod ast;
mod check;
mod expand;
pub(crate) mod rewrite;

pub use expand::expand;

pub(crate) use check::distribution as check_distribution;
