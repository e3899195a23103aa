//! The model's real arrays as contiguous `f64` slices, for the plate
//! record to borrow instead of copying (`Plate::f64_data`): a hidden
//! method `__plate_f64_data(k)` over the data fields of type `Vec<f64>`,
//! `[f64; N]`, `DVector<f64>` and `DMatrix<f64>` (column-major), in
//! declaration order, that each plate's adapter forwards to.

use proc_macro2::TokenStream;
use quote::quote;

use super::super::ast::{Elem, Shape};
use super::super::plan::Plan;

/// The name of the hidden method.
pub fn method_name() -> syn::Ident {
    syn::Ident::new("__plate_f64_data", proc_macro2::Span::call_site())
}

/// `impl Model { fn __plate_f64_data(&self, k: usize) -> Option<&[f64]> }`:
/// the `k`-th real array field, `None` past the last.
pub fn method(plan: &Plan<'_>) -> TokenStream {
    let ident = &plan.model.ident;
    let name = method_name();
    let arms = plan
        .data
        .iter()
        .filter(|d| {
            matches!(
                d.shape,
                Some(Shape::Vec(Elem::Real) | Shape::Array(Elem::Real, _) | Shape::Matrix)
            )
        })
        .enumerate()
        .map(|(k, d)| {
            let field = &d.field.ident;
            quote!(#k => ::core::option::Option::Some(self.#field.as_slice()),)
        });
    quote! {
        impl #ident {
            #[doc(hidden)]
            #[allow(dead_code, clippy::all)]
            fn #name(&self, __k: usize) -> ::core::option::Option<&[f64]> {
                match __k {
                    #(#arms)*
                    _ => ::core::option::Option::None,
                }
            }
        }
    }
}
