//! A guide given a name of its model's `#[transformed]` values (Stan's
//! transformed parameters): they are computed from the latents, so a guide
//! has no conditional for one and cannot read one. The messages say what
//! to write instead: nothing for a conditional (the value follows from the
//! latents it is computed from), the value's expression for a read.

use crate::handover::TransformedInfo;
use crate::scope::{Binding, Meaning};

/// Why a guide field cannot be a conditional for `info`, a transformed
/// value of `model`.
pub fn as_conditional(model: &str, info: &TransformedInfo) -> String {
    format!(
        "`{}` is a #[transformed] value of model `{model}` ({}), not a latent: a guide has conditionals for the latents only, and the value follows from theirs; remove this field",
        info.name,
        described(info)
    )
}

/// Why a guide expression cannot read `info`, and what to write instead.
fn as_read(model: &str, info: &TransformedInfo) -> String {
    let element = info
        .index
        .as_ref()
        .map_or_else(String::new, |j| format!(" (element `{j}`)"));
    format!(
        "`{}` is a #[transformed] value of model `{model}`, which a guide cannot read: write its expression with the guide's latents instead, `{}`{element}",
        info.name,
        info.written()
    )
}

fn described(info: &TransformedInfo) -> String {
    match &info.index {
        Some(j) => format!("element `{j}` is `{}`", info.written()),
        None => format!("`{}`", info.written()),
    }
}

/// A binding for each transformed value the guide does not declare a field
/// of its own under the same name: reading it is an error saying what to
/// write instead.
pub fn unreadable<'a>(
    model: &'a str,
    transformed: &'a [TransformedInfo],
    declared: impl Fn(&syn::Ident) -> bool + 'a,
) -> impl Iterator<Item = Binding> + 'a {
    transformed
        .iter()
        .filter(move |t| !declared(&t.name))
        .map(move |t| Binding {
            ident: t.name.clone(),
            meaning: Meaning::Unreadable(as_read(model, t)),
        })
}
