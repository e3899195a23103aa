//! `#[factor(…)]`, a free term of the log density (Stan's `target +=`,
//! Pyro's `factor`), and a plate of them, one term per element (Stan's
//! `for (i in 1:N) target += f(i);`):
//!
//! ```text
//! #[factor(-0.5 * mu * mu)] prior: (),                      // target += -0.5 * mu^2;
//! #[factor(self.lik(i, z[i], w), for i, len = x.nrows())] lik: (),  // for (i in 1:N) target += lik(i, z[i], w);
//! ```
//!
//! A plate of factors is a plate of the model like an observed vector over
//! `for i`: under minibatches element `i`'s term is a plate term of point
//! `i` (scaled `N / b`), a vector latent read only as `z[i]` in it is
//! local, and its length must be that of the model's other plates. Its
//! length is never guessed: `len = <length>` over the data is required.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::ParseStream;
use syn::{Attribute, Ident};

use super::ast::{Field, Role, ValueIndexLen};
use crate::ctxt::Ctxt;
use crate::scope::{Bindings, Lower};

/// The contents of `#[factor(…)]`: the term, then optionally `for i` (the
/// index of a plate of terms) and `len = expr` (the plate's length), each
/// at most once.
pub type Args = ValueIndexLen;

/// Parses `#[factor(…)]`'s contents.
fn parse_args(input: ParseStream) -> syn::Result<Args> {
    ValueIndexLen::parse_with(input, |key| {
        format!(
            "unknown option `{key}` of #[factor]: write `#[factor(term)]`, or for one term per element `#[factor(term, for i, len = <length>)]`"
        )
    })
}

/// The role of a `#[factor(…)]` attribute (`None` with the mistake
/// reported).
pub fn role(cx: &Ctxt, attr: &Attribute) -> Option<Role> {
    if matches!(attr.meta, syn::Meta::Path(_)) {
        cx.error_spanned_by(
            attr,
            "a #[factor] needs the term to add to the log density: write `#[factor(expression)]`, e.g. `#[factor(-0.5 * mu * mu)]`",
        );
        return None;
    }
    cx.ok(attr.parse_args_with(parse_args)).map(Role::Factor)
}

/// A factor, lowered.
pub struct Factor<'a> {
    pub field: &'a Field,
    /// Its term (`__T`), over the plate's index for a plate.
    pub value: TokenStream,
    /// A plate of terms: its index, and its length (a `usize` expression
    /// over the data).
    pub plate: Option<(&'a Ident, TokenStream)>,
}

/// Lowers a `#[factor]` field at `position`; `None` with its mistakes
/// reported.
pub fn lower<'a>(
    cx: &Ctxt,
    table: &Bindings,
    position: usize,
    field: &'a Field,
    args: &'a Args,
) -> Option<Factor<'a>> {
    let plate = match (&args.index, &args.len) {
        (None, None) => None,
        (Some(i), _) if table.entries.iter().any(|b| b.ident == *i) => {
            cx.error_spanned_by(
                i,
                format!("the index `{i}` shadows a field; choose another name"),
            );
            return None;
        }
        (Some(i), Some(len)) => {
            let raw = Lower::new(table.data_scope(), cx).raw(len)?;
            Some((i, quote!(((#raw) as usize))))
        }
        (Some(i), None) => {
            cx.error_spanned_by(
                i,
                format!("a plate of factors over `for {i}` needs its length: add `len = <length>` over the data, e.g. `len = y.len()`"),
            );
            return None;
        }
        (None, Some(len)) => {
            cx.error_spanned_by(
                len,
                "`len` is the length of a plate of factors, one term per element: add its index, `#[factor(term, for i, len = n)]`, or remove `len`",
            );
            return None;
        }
    };
    let index = plate.as_ref().map(|(i, _)| *i);
    let value = Lower::new(table.scope(position, index), cx).value(&args.value)?;
    Some(Factor {
        field,
        value,
        plate,
    })
}
