//! Procedural macros of [iwhvi](https://docs.rs/iwhvi): the `#[variational]`
//! attribute. See the facade crate's documentation for the attributes and
//! examples; this crate is reached through `iwhvi::variational`.
#![deny(missing_docs)]

mod ctxt;
mod distributions;
mod model;

use proc_macro::TokenStream;

/// Turns a model struct into its log density and samplers. See
/// `iwhvi::variational` for the attributes.
#[proc_macro_attribute]
pub fn variational(args: TokenStream, input: TokenStream) -> TokenStream {
    let args = proc_macro2::TokenStream::from(args);
    if !args.is_empty() {
        return syn::Error::new_spanned(
            args,
            "#[variational] takes no arguments on a model struct",
        )
        .into_compile_error()
        .into();
    }
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    model::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
