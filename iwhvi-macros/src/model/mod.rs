//! `#[variational]` on a model struct: parse the fields' roles (`ast`),
//! lower them into a checked plan (`lower`, with the rules of `check`),
//! then emit the data struct, its typed latents and its `Model`
//! implementation from the plan (`emit`).

pub(crate) mod ast;
mod check;
mod computed_access;
pub(crate) mod emit;
pub(crate) mod factor;
mod literal_access;
mod lower;
mod param;
mod param_matrix;
pub(crate) mod plan;
pub(crate) mod semi_implicit_prior;
pub(crate) mod transformed;

use proc_macro2::TokenStream;

use crate::ctxt::Ctxt;

pub(crate) use check::{distribution as check_distribution, unique as check_unique};
pub(crate) use lower::constructor;

/// Everything `#[variational]` emits for a model struct.
pub fn expand(input: &syn::DeriveInput) -> syn::Result<TokenStream> {
    let cx = Ctxt::default();
    let Some(model) = ast::Model::from_ast(&cx, input) else {
        return Err(cx
            .check()
            .expect_err("from_ast reports why it returns None"));
    };
    let table = lower::bindings(&model);
    let plan = lower::plan(&cx, &model, &table);
    cx.check()?;
    Ok(emit::model(&plan))
}
