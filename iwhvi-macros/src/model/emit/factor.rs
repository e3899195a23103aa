//! A `#[factor]` field's code: its term of the log joint (a loop over a
//! plate of factors), its checked step, and its plate terms on a batch.

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::factor::Factor;

/// Its term(s) of the log joint.
pub fn log_joint_step(f: &Factor<'_>) -> TokenStream {
    let value = &f.value;
    match &f.plate {
        None => quote!(__lp += #value;),
        Some((i, len)) => quote! {
            for #i in 0..#len {
                __lp += #value;
            }
        },
    }
}

/// Its step of `first_invalid_term` (`__T = f64`): each term checked, the
/// first that is not finite returned as an `InvalidTerm` naming the field
/// (and the element, in a plate).
pub fn checked_step(f: &Factor<'_>) -> TokenStream {
    let p = quote!(::iwhvi::__private);
    let (value, name) = (&f.value, f.field.ident.to_string());
    let term = |element: TokenStream| quote!(__lp += #p::checked_value(#value, || #p::Term::Factor { field: #name, element: #element })?;);
    match &f.plate {
        None => term(quote!(::core::option::Option::None)),
        Some((i, len)) => {
            let term = term(quote!(::core::option::Option::Some(#i)));
            quote!(for #i in 0..#len { #term })
        }
    }
}

/// Its plate terms on the batch's elements, into their points' sums
/// (`log_joint_points`); a factor outside a plate is global.
pub fn points_step(f: &Factor<'_>) -> TokenStream {
    let value = &f.value;
    match &f.plate {
        None => quote!(__lp += #value;),
        Some((i, _)) => quote! {
            for (__pos, &#i) in __batch.indices().iter().enumerate() {
                __points[__pos] += #value;
            }
        },
    }
}
