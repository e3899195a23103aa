//! `#[variational]` on a model struct: parse the fields' roles, check the
//! rules that cross fields, and expand into the data struct, its typed
//! latents and its `Model` implementation.

mod ast;
mod check;
mod expand;
mod rewrite;

pub use expand::expand;
