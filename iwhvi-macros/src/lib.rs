//! Procedural macros of [iwhvi](https://docs.rs/iwhvi): the `#[variational]`
//! attribute. See the facade crate's documentation for the attributes and
//! examples; this crate is reached through `iwhvi::variational`.
//!
//! Both macros run in three stages: parse the struct (`model::ast`,
//! `guide::ast`), lower it into a checked plan where every name is resolved
//! and every rule checked over a table of bindings (`scope`), then emit
//! code from the plan. On an error the struct is still emitted, its role
//! attributes stripped, beside the errors (`fallback`), so that later uses
//! of it add no errors of their own.
#![deny(missing_docs)]

mod ctxt;
mod fallback;
mod family;
mod guide;
mod handover;
mod model;
mod scope;

use proc_macro::TokenStream;

/// Turns a model struct into its log density and samplers, or, as
/// `#[variational(guide = Model)]`, a guide struct into a hierarchical
/// guide checked against the model. See `iwhvi::variational`.
#[proc_macro_attribute]
pub fn variational(args: TokenStream, input: TokenStream) -> TokenStream {
    let args = proc_macro2::TokenStream::from(args);
    if args.is_empty() {
        let input = syn::parse_macro_input!(input as syn::DeriveInput);
        return model::expand(&input)
            .unwrap_or_else(|e| fallback::model(&input, e))
            .into();
    }
    let input = proc_macro2::TokenStream::from(input);
    match guide_path(args) {
        Ok((model, forward)) => quote::quote!(#forward! { #model ; #input }).into(),
        Err(e) => match syn::parse2::<syn::DeriveInput>(input) {
            Ok(guide) => fallback::plain(&guide, Some(e)).into(),
            Err(_) => e.into_compile_error().into(),
        },
    }
}

/// `guide = path::to::Model`: the model's path and the path of its hidden
/// hand-over macro.
fn guide_path(args: proc_macro2::TokenStream) -> syn::Result<(syn::Path, syn::Path)> {
    let model = syn::parse::Parser::parse2(
        |input: syn::parse::ParseStream| {
            let key: syn::Ident = input.parse()?;
            if key != "guide" {
                return Err(syn::Error::new(
                    key.span(),
                    "write `#[variational]` on a model or `#[variational(guide = Model)]` on a guide",
                ));
            }
            input.parse::<syn::Token![=]>()?;
            input.parse::<syn::Path>()
        },
        args,
    )?;
    let forward = handover::macro_path(&model)
        .ok_or_else(|| syn::Error::new_spanned(&model, "name the model"))?;
    Ok((model, forward))
}

/// The guide expansion, called by a model's `__iwhvi_model_*!` macro with
/// the model's latents; not for direct use.
#[doc(hidden)]
#[proc_macro]
pub fn guide(input: TokenStream) -> TokenStream {
    guide::expand(input.into()).into()
}
