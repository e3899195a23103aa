//! A `#[factor]` field's code: its term of the log joint (a loop over a
//! plate of factors, or one call over a batch's rows), its checked step,
//! and its plate terms on a batch.

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::factor::Factor;

/// A batch factor's terms over `rows` (bound before `body`) as `__terms:
/// &[__T]`, then `body`.
fn batch_terms(f: &Factor<'_>, rows_value: TokenStream, body: TokenStream) -> TokenStream {
    let value = &f.value;
    let (rows, _) = f.plate.as_ref().expect("a batch factor is a plate");
    quote! {{
        let #rows: &[usize] = #rows_value;
        let __terms = #value;
        let __terms: &[__T] = ::core::convert::AsRef::<[__T]>::as_ref(&__terms);
        #body
    }}
}

/// The whole plate's rows, `0..len`, built once per evaluation.
fn all_rows(len: &TokenStream) -> TokenStream {
    quote!(&(0..#len).collect::<::std::vec::Vec<usize>>())
}

/// Its term(s) of the log joint.
pub fn log_joint_step(f: &Factor<'_>) -> TokenStream {
    let value = &f.value;
    match &f.plate {
        None => quote!(__lp += #value;),
        Some((rows, len)) if f.batch => {
            // One term per row, summed in row order (as `for n`); a term
            // of another length makes the log joint NaN.
            let nan = quote!(<__T as ::iwhvi::__private::Scalar>::constant(f64::NAN));
            batch_terms(
                f,
                all_rows(len),
                quote! {
                    if __terms.len() == #rows.len() {
                        for &__term in __terms {
                            __lp += __term;
                        }
                    } else {
                        __lp += #nan;
                    }
                },
            )
        }
        Some((i, len)) => quote! {
            for #i in 0..#len {
                __lp += #value;
            }
        },
    }
}

/// Its step of `first_invalid_term` (`__T = f64`): each term checked, the
/// first that is not finite returned as an `InvalidTerm` naming the field
/// (and the element, in a plate; a batch's term of the wrong length as
/// `Term::FactorRows`).
pub fn checked_step(f: &Factor<'_>) -> TokenStream {
    let p = quote!(::iwhvi::__private);
    let (value, name) = (&f.value, f.field.ident.to_string());
    let term = |element: TokenStream| quote!(__lp += #p::checked_value(#value, || #p::Term::Factor { field: #name, element: #element })?;);
    match &f.plate {
        None => term(quote!(::core::option::Option::None)),
        Some((rows, len)) if f.batch => batch_terms(
            f,
            all_rows(len),
            quote! {
                if __terms.len() != #rows.len() {
                    return ::core::result::Result::Err(#p::InvalidTerm {
                        term: #p::Term::FactorRows { field: #name, terms: __terms.len(), rows: #rows.len() },
                        value: f64::NAN,
                        cause: ::core::option::Option::None,
                    });
                }
                for (&__row, &__term) in #rows.iter().zip(__terms) {
                    __lp += #p::checked_value(__term, || #p::Term::Factor { field: #name, element: ::core::option::Option::Some(__row) })?;
                }
            },
        ),
        Some((i, len)) => {
            let term = term(quote!(::core::option::Option::Some(#i)));
            quote!(for #i in 0..#len { #term })
        }
    }
}

/// Its plate terms on the batch's elements, into their points' sums
/// (`log_joint_points`); a factor outside a plate is global. A batch's
/// term of the wrong length makes the global sum NaN. A plate's term of
/// point `__pos` reads the local latents through `views` (their
/// `PointView`s); a batch's gathers them whole.
pub fn points_step(f: &Factor<'_>, views: &TokenStream) -> TokenStream {
    let value = &f.value;
    match &f.plate {
        None => quote!(__lp += #value;),
        Some((rows, _)) if f.batch => batch_terms(
            f,
            quote!(__batch.indices()),
            quote! {
                if __terms.len() == #rows.len() {
                    for (__pos, &__term) in __terms.iter().enumerate() {
                        __points[__pos] += __term;
                    }
                } else {
                    __lp += <__T as ::iwhvi::__private::Scalar>::constant(f64::NAN);
                }
            },
        ),
        Some((i, _)) => quote! {
            for (__pos, &#i) in __batch.indices().iter().enumerate() {
                #views
                __points[__pos] += #value;
            }
        },
    }
}
