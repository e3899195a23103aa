//! `#[transformed(…)]`, Stan's transformed parameters: a model field
//! computed once per evaluation from the data, the latents, the learned
//! parameters and the transformed values above it, and read by name in
//! every attribute below it.
//!
//! ```text
//! #[transformed(mu + tau * theta_tilde[j], for j, len = sigma.len())]
//! theta: Vec<f64>,                         // vector[J] theta = mu + tau * theta_tilde;
//! #[transformed(tau * tau)] var: f64,      // real var = tau^2;
//! #[transformed(mu + theta_tilde * tau)] theta: Vec<f64>,  // the same, as a whole vector
//! ```
//!
//! In the generated code it is a local like a latent (a `__T`, or a
//! `Vec<__T>`), bound at its place among the log joint's steps, so the
//! value is computed once per evaluation and carries the derivatives of
//! what it reads; a plate that reads it takes it as an operand, and the
//! plate's partials in it chain into the latents through the scalar type.
//! It is also reported with the derived quantities (`NameDerived`,
//! `Model::derived`, `Posterior::derived`), as Stan reports transformed
//! parameters in its output.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::ParseStream;
use syn::{Attribute, Expr, Ident};

use super::ast::{Elem, Field, Role, Shape, ValueIndexLen};
use crate::ctxt::Ctxt;
use crate::scope::{Bindings, Lower, Meaning};

/// The contents of `#[transformed(…)]`: the value, then optionally
/// `for i` (the index over a vector's elements) and `len = expr` (a
/// `Vec<f64>`'s length over `for i`), each at most once.
pub type Args = ValueIndexLen;

/// Parses `#[transformed(…)]`'s contents.
fn parse_args(input: ParseStream) -> syn::Result<Args> {
    ValueIndexLen::parse_with(input, |key| {
        format!(
            "unknown option `{key}` of #[transformed]: write `for <index>` and, for a Vec, `len = <length>`"
        )
    })
}

/// The role of a `#[transformed(…)]` attribute (`None` with the mistake
/// reported).
pub fn role(cx: &Ctxt, attr: &Attribute) -> Option<Role> {
    if matches!(attr.meta, syn::Meta::Path(_)) {
        cx.error_spanned_by(
            attr,
            "a transformed value needs its expression: write `#[transformed(expression)]`, e.g. `#[transformed(mu + tau * z[j], for j, len = n)]`",
        );
        return None;
    }
    let args = cx.ok(attr.parse_args_with(parse_args))?;
    if let Some(over) = &args.over {
        cx.error_spanned_by(
            over,
            "a transformed value is computed element by element: write `for i` without `in …` (`for rows in batch` is a plate of factors')",
        );
        return None;
    }
    Some(Role::Transformed(args))
}

/// What its name means in the table of bindings.
pub fn meaning(shape: Option<&Shape>) -> Meaning {
    match shape {
        Some(Shape::Scalar(Elem::Real)) => Meaning::Transformed { scalar: true },
        Some(Shape::Array(Elem::Real, _) | Shape::Vec(Elem::Real)) => {
            Meaning::Transformed { scalar: false }
        }
        // Reported by `lower`.
        _ => Meaning::Failed,
    }
}

/// Why a transformed value cannot be read where it is (`None` when it can):
/// in a length or fixed bound, or above its own field.
pub fn misuse(name: &str, position: usize, visible: usize, locals_allowed: bool) -> Option<String> {
    if !locals_allowed {
        return Some(in_raw(name));
    }
    (position >= visible).then(|| {
        format!(
            "transformed `{name}` is used before it is defined: a transformed value is computed from the fields above it and read by the fields below it; move the field `{name}` above this one"
        )
    })
}

/// Why a transformed value cannot be an index, a count, a length or a bound.
pub fn in_raw(name: &str) -> String {
    format!(
        "transformed `{name}` cannot be an index, a count, a length or a fixed bound: these are computed from data alone"
    )
}

/// The first transformed value that `lower`, `upper`, `offset` or
/// `multiplier` of latent `latent` reads, with the error saying why it
/// cannot: a bound is part of the layout, which constrains draws without
/// the model (saved layouts, `Layout::constrain`), so it is data or
/// affine in earlier latents with literal coefficients, and a transformed
/// value is neither in general.
pub fn in_bound(
    table: &Bindings,
    latent: &Ident,
    options: [(&str, Option<&Expr>); 4],
) -> Option<(Ident, String)> {
    options.into_iter().find_map(|(option, expr)| {
        let read = crate::scope::first_mention(expr?, |i| is_transformed(table, i))?;
        let message = format!(
            "`{option}` of `{latent}` reads the transformed value `{read}`: bounds, offsets and multipliers are part of the layout, which constrains draws without the model, so they are computed from data, or are affine in earlier latents with literal coefficients; write `{read}`'s expression here instead if it is one of those (e.g. `upper = 1.0 - alpha`)"
        );
        Some((read, message))
    })
}

/// True when `ident` names a transformed value.
pub fn is_transformed(table: &Bindings, ident: &Ident) -> bool {
    table
        .entries
        .iter()
        .any(|b| b.ident == *ident && matches!(b.meaning, Meaning::Transformed { .. }))
}

/// How a transformed value is computed.
pub enum Kind<'a> {
    /// An `f64`: one value.
    Scalar,
    /// A vector element by element over `for i`: `len` elements (a
    /// `usize` expression over the data).
    Each { index: &'a Ident, len: TokenStream },
    /// A `Vec<f64>` from a vector expression (`mu + tau * z`).
    Whole,
}

/// A transformed value, lowered.
pub struct Transformed<'a> {
    pub field: &'a Field,
    pub shape: &'a Shape,
    pub kind: Kind<'a>,
    /// Its value (`__T`), or an element's (`__T`, over the index), or the
    /// whole vector (`Vec<__T>`).
    pub value: TokenStream,
}

/// Lowers a `#[transformed]` field at `position`; `None` with its mistakes
/// reported.
pub fn lower<'a>(
    cx: &Ctxt,
    table: &Bindings,
    position: usize,
    field: &'a Field,
    shape: &'a Shape,
    args: &'a Args,
) -> Option<Transformed<'a>> {
    let ident = &field.ident;
    let index = args.index.as_ref();
    if let Some(i) = index {
        if table.is_field(i) {
            cx.error_spanned_by(
                i,
                format!("the index `{i}` shadows a field; choose another name"),
            );
            return None;
        }
    }
    let kind = match (shape, index, &args.len) {
        (Shape::Scalar(Elem::Real), None, None) => Kind::Scalar,
        (Shape::Scalar(Elem::Real), Some(i), _) => {
            cx.error_spanned_by(i, format!("`{ident}` is a scalar: remove `for {i}`"));
            return None;
        }
        (Shape::Array(Elem::Real, n), Some(i), None) => Kind::Each {
            index: i,
            len: quote!(((#n) as usize)),
        },
        (Shape::Vec(Elem::Real), Some(i), Some(len)) => {
            let raw = Lower::new(table.data_scope(), cx).raw(len)?;
            Kind::Each {
                index: i,
                len: quote!(((#raw) as usize)),
            }
        }
        (Shape::Vec(Elem::Real), Some(i), None) => {
            cx.error_spanned_by(
                i,
                format!("a transformed Vec over `for {i}` needs its length: add `len = <length>`, e.g. `len = y.len()`"),
            );
            return None;
        }
        (Shape::Vec(Elem::Real), None, None) => Kind::Whole,
        (Shape::Array(Elem::Real, _) | Shape::Vec(Elem::Real), _, Some(len)) => {
            cx.error_spanned_by(
                len,
                "`len` is for a transformed Vec computed element by element (`for i`); an array has its length in its type, a vector expression its own",
            );
            return None;
        }
        (Shape::Array(Elem::Real, _), None, None) => {
            cx.error_spanned_by(
                ident,
                format!("a transformed array is computed element by element: add `for i` and write element `i`, or declare `{ident}` as a `Vec<f64>` for a vector expression"),
            );
            return None;
        }
        _ => {
            cx.error_spanned_by(
                &field.ty,
                format!("transformed `{ident}` is an f64 (`#[transformed(expr)]`), an [f64; N] over an index (`#[transformed(expr, for i)]`) or a Vec<f64> (`#[transformed(expr, for i, len = n)]`, or a vector expression such as `mu + tau * z`)"),
            );
            return None;
        }
    };
    let mut values = Lower::new(table.scope(position, index), cx);
    let value = match kind {
        Kind::Whole => values.vector(&args.value)?,
        _ => values.value(&args.value)?,
    };
    Some(Transformed {
        field,
        shape,
        kind,
        value,
    })
}

#[cfg(test)]
mod tests {
    use crate::ctxt::Ctxt;
    use crate::model::ast::Model;
    use crate::model::lower;

    #[test]
    fn a_plate_takes_transformed_values_as_operands_and_stays_affine_in_them() {
        let input: syn::DeriveInput = syn::parse_quote! {
            struct M {
                #[data]
                sigma: Vec<f64>,
                #[latent(Normal(0.0, 1.0))]
                mu: f64,
                #[latent(HalfNormal(1.0))]
                tau: f64,
                #[latent(Normal(0.0, 1.0), len = sigma.len())]
                z: Vec<f64>,
                #[transformed(mu + tau * z[j], for j, len = sigma.len())]
                theta: Vec<f64>,
                #[transformed(tau * tau)]
                var: f64,
                #[observe(Normal(theta[j] + 2.0 * var, sigma[j]), for j)]
                y: Vec<f64>,
            }
        };
        let cx = Ctxt::default();
        let model = Model::from_ast(&cx, &input).expect("a model");
        let table = lower::bindings(&model);
        let plan = lower::plan(&cx, &model, &table);
        cx.check().expect("no errors");
        assert_eq!(plan.transformed().count(), 2);
        let observed = plan.observations().next().expect("an observation");
        let plate = observed.plate.as_ref().expect("a plate");
        let operands: Vec<(String, bool)> = plate
            .operands
            .iter()
            .map(|(name, scalar)| (name.to_string(), *scalar))
            .collect();
        assert_eq!(
            operands,
            [("theta".to_string(), false), ("var".to_string(), true)]
        );
        let linear = plate.linear.as_ref().expect("affine in theta and var");
        assert_eq!(linear[0].len(), 2, "theta[j] and 2·var");
    }
}
