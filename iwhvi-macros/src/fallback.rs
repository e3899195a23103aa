//! What a macro emits when the user's struct has a mistake: the errors,
//! and the struct itself with its role attributes stripped, so that later
//! uses of the struct (a type in a signature, a struct literal) add no
//! errors of their own (as thiserror's `fallback.rs` does).

use proc_macro2::TokenStream;
use quote::quote;

/// The attributes the macros read on fields.
const ROLES: &[&str] = &[
    "data", "latent", "observe", "factor", "derived", "param", "mixing", "reverse",
];

/// The struct without role attributes (and without `#[variational]`),
/// and without a second field of the same name (reported already).
fn stripped(input: &syn::DeriveInput) -> syn::DeriveInput {
    let mut input = input.clone();
    input.attrs.retain(|a| !a.path().is_ident("variational"));
    if let syn::Data::Struct(syn::DataStruct {
        fields: syn::Fields::Named(named),
        ..
    }) = &mut input.data
    {
        let mut seen = std::collections::BTreeSet::new();
        named.named = std::mem::take(&mut named.named)
            .into_iter()
            .filter(|f| seen.insert(f.ident.as_ref().map(ToString::to_string)))
            .map(|mut f| {
                f.attrs
                    .retain(|a| !ROLES.iter().any(|r| a.path().is_ident(r)));
                f
            })
            .collect();
    }
    input
}

/// A model with a mistake: the errors, the plain struct, and a hand-over
/// macro that tells its guides the model failed (so they add no errors).
pub fn model(input: &syn::DeriveInput, errors: syn::Error) -> TokenStream {
    let handover = crate::handover::failed_model(&input.ident);
    let plain = plain(input, Some(errors));
    quote! {
        #handover
        #plain
    }
}

/// The struct stripped of its roles, beside the errors.
pub fn plain(input: &syn::DeriveInput, errors: Option<syn::Error>) -> TokenStream {
    let input = stripped(input);
    let errors = errors.map(syn::Error::into_compile_error);
    quote! {
        #[allow(dead_code)]
        #input
        #errors
    }
}
