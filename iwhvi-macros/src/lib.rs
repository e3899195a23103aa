//! Procedural macros of [iwhvi](https://docs.rs/iwhvi): the `#[variational]`
//! attribute. See the facade crate's documentation for the attributes and
//! examples; this crate is reached through `iwhvi::variational`.
#![deny(missing_docs)]

mod ctxt;
mod distributions;
mod guide;
mod model;

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
            .unwrap_or_else(syn::Error::into_compile_error)
            .into();
    }
    // `#[variational(guide = Model)]`: hand the guide to the model's
    // expansion, which knows the model's latents.
    let parsed = syn::parse::Parser::parse2(
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
    );
    let model = match parsed {
        Ok(path) => path,
        Err(e) => return e.into_compile_error().into(),
    };
    let Some(last) = model.segments.last() else {
        return syn::Error::new_spanned(&model, "name the model")
            .into_compile_error()
            .into();
    };
    let forward = quote::format_ident!("__iwhvi_model_{}", last.ident, span = last.ident.span());
    let input = proc_macro2::TokenStream::from(input);
    quote::quote!(#forward! { #model ; #input }).into()
}

/// The guide expansion, called by a model's `__iwhvi_model_*!` macro with
/// the model's latents; not for direct use.
#[doc(hidden)]
#[proc_macro]
pub fn guide(input: TokenStream) -> TokenStream {
    guide::expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
