//! Procedural macros of [iwhvi](https://docs.rs/iwhvi): the `#[variational]`
//! attribute. See the facade crate's documentation for the attributes and
//! examples; this crate is reached through `iwhvi::variational`.
//!
//! Both macros run in three stages: parse the struct (`model::ast`,
//! `guide::ast`), lower it into a checked plan where every name is resolved
//! and every rule checked over a table of bindings (`scope`), then emit
//! code from the plan. On an error the items a correct struct gives are
//! still emitted in the same shape, with bodies that never run, beside the
//! errors (`fallback`, `guide::stubs`), so that later uses of them add no
//! errors of their own.
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
    let Ok(guide) = syn::parse2::<syn::DeriveInput>(input.clone()) else {
        // Not a struct: the guide expansion says so once the model hands
        // it over; without a model path, the parse error is the error.
        return match guide_path(args) {
            Ok(model) => quote::quote!(#model! { #model ; #input }).into(),
            Err(e) => e.into_compile_error().into(),
        };
    };
    match guide_path(args) {
        // The struct is declared here, whether or not the model's path
        // resolves; its impls come from the model's hand-over macro.
        Ok(model) => {
            let shell = guide::shell(&guide, Some(&model));
            quote::quote!(#shell #model! { #model ; #input }).into()
        }
        Err(e) => {
            let shell = guide::shell(&guide, None);
            let stubs = guide::stubs(&guide, None);
            let e = e.into_compile_error();
            quote::quote!(#shell #stubs #e).into()
        }
    }
}

/// `guide = path::to::Model`: the model's path, which is also the path of
/// its hand-over macro (see [`handover`]).
fn guide_path(args: proc_macro2::TokenStream) -> syn::Result<syn::Path> {
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
            let model = input.parse::<syn::Path>()?;
            if let Ok(again) = input.fork().parse::<syn::Token![,]>() {
                return Err(syn::Error::new(
                    again.span,
                    "a guide names one model: write `#[variational(guide = Model)]`",
                ));
            }
            Ok(model)
        },
        args,
    )?;
    if model
        .segments
        .iter()
        .any(|s| !matches!(s.arguments, syn::PathArguments::None))
    {
        return Err(syn::Error::new_spanned(
            &model,
            "name the model by its path, without generic arguments",
        ));
    }
    Ok(model)
}

/// The guide expansion, called by a model's hand-over macro with
/// the model's latents; not for direct use.
#[doc(hidden)]
#[proc_macro]
pub fn guide(input: TokenStream) -> TokenStream {
    guide::expand(input.into()).into()
}
