//! A `#[transformed]` value's code: its binding (the same tokens in the
//! log joint over `__T`, in `first_invalid_term`, the samplers and the
//! derived quantities over `__T = f64`), and its place among the derived
//! quantities.

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::ast::Shape;
use crate::model::transformed::{Kind, Transformed};

/// Binds its name to its value, computed once, for the code after it.
pub fn binding(t: &Transformed<'_>) -> TokenStream {
    let (ident, value) = (&t.field.ident, &t.value);
    match &t.kind {
        Kind::Scalar => quote!(let #ident: __T = #value;),
        Kind::Each { index, len } => quote! {
            let #ident: ::std::vec::Vec<__T> = (0..#len).map(|#index: usize| #value).collect();
        },
        Kind::Whole => quote!(let #ident: ::std::vec::Vec<__T> = #value;),
    }
}

/// Its field of the derived quantities' struct.
pub fn derived_field(t: &Transformed<'_>) -> TokenStream {
    let (ident, ty) = (&t.field.ident, &t.field.ty);
    let doc = format!("The transformed value `{ident}`.");
    quote!(#[doc = #doc] pub #ident: #ty)
}

/// Its value in the derived quantities' struct (after [`binding`]).
pub fn derived_value(t: &Transformed<'_>) -> TokenStream {
    let ident = &t.field.ident;
    match t.shape {
        Shape::Array(..) => {
            quote!(#ident: ::core::convert::TryInto::try_into(#ident).expect("one value per element"))
        }
        _ => quote!(#ident),
    }
}

/// Its named entry in `Model::derived`.
pub fn named(t: &Transformed<'_>) -> TokenStream {
    let (ident, name) = (&t.field.ident, t.field.ident.to_string());
    match t.shape {
        Shape::Scalar(_) => {
            quote!((::std::string::String::from(#name), ::std::vec![__derived.#ident]))
        }
        _ => quote!((::std::string::String::from(#name), __derived.#ident.to_vec())),
    }
}
