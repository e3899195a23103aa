//! Learned model parameters (`#[param(init = …, len = …, lower = …)]`):
//! what their names mean in attributes, and their part of the plan.
//!
//! A learned parameter `θ` is a point, not a random variable: it has no
//! prior and no Jacobian term, and is fitted jointly with the guide on the
//! same bound. In attributes it is a value like a latent (a scalar `__T`,
//! or a vector of them, in the log joint generic over the scalar), visible
//! to every field whatever the order; lengths, counts, bounds and initial
//! values are data-only (raw context), so it cannot appear there.

use std::collections::BTreeSet;

use quote::quote;

use proc_macro2::TokenStream;

use super::ast::{Elem, Field, Model, ParamArgs, Role, Shape};
use super::plan::Param;
use crate::ctxt::Ctxt;
use crate::scope::{Bindings, Lower, Meaning};

/// What a `#[param]` field's name stands for: a local scalar or vector,
/// or nothing (its shape is reported by [`plan`]).
pub fn meaning(shape: Option<&Shape>) -> Meaning {
    match shape {
        Some(Shape::Scalar(Elem::Real)) => Meaning::Param { scalar: true },
        Some(Shape::Vec(Elem::Real)) => Meaning::Param { scalar: false },
        Some(Shape::Matrix) => Meaning::ParamMatrix,
        _ => Meaning::Failed,
    }
}

/// True when `uses` names a learned parameter.
pub fn reads_param(table: &Bindings, uses: &BTreeSet<String>) -> bool {
    table.entries.iter().any(|b| {
        matches!(b.meaning, Meaning::Param { .. } | Meaning::ParamMatrix)
            && uses.contains(&b.ident.to_string())
    })
}

/// The learned parameters of the model, checked; a field with a mistake
/// (reported in `cx`) is left out.
pub fn plan<'a>(cx: &Ctxt, model: &'a Model, table: &Bindings) -> Vec<Param<'a>> {
    let mut params = Vec::new();
    for field in &model.fields {
        let Role::Param(args) = &field.role else {
            continue;
        };
        let ident = &field.ident;
        let scalar = match &field.shape {
            // Reported by `ast` (an unsupported type).
            None => continue,
            Some(Shape::Scalar(Elem::Real)) => true,
            Some(Shape::Vec(Elem::Real)) => false,
            Some(Shape::Matrix) => {
                let shape = super::param_matrix::shape(cx, field, args, table);
                let len = shape.as_ref().map(|(rows, cols)| quote!((#rows) * (#cols)));
                if let (Some(param), Some(shape)) =
                    (finish(cx, field, args, table, false, len), shape)
                {
                    params.push(Param {
                        matrix: Some(shape),
                        ..param
                    });
                }
                continue;
            }
            Some(_) => {
                cx.error_spanned_by(
                    &field.ty,
                    format!(
                        "a learned parameter is real-valued: declare `{ident}: f64`, or `{ident}: Vec<f64>` (or `DVector<f64>`) with `len = <length>`"
                    ),
                );
                continue;
            }
        };
        super::param_matrix::no_shape_outside_a_matrix(cx, args);
        let len = match (&args.len, scalar) {
            (None, true) => Some(quote!(1usize)),
            (Some(len), false) => Lower::new(table.data_scope(), cx)
                .raw(len)
                .map(|raw| quote!((#raw) as usize)),
            (Some(len), true) => {
                cx.error_spanned_by(
                    len,
                    format!("`{ident}` is a scalar: remove `len`, or declare it `Vec<f64>`"),
                );
                None
            }
            (None, false) => {
                cx.error_spanned_by(
                    ident,
                    format!(
                        "learned vector `{ident}` needs its length: write `#[param(init = …, len = <length from data>)]`"
                    ),
                );
                None
            }
        };
        if let Some(param) = finish(cx, field, args, table, scalar, len) {
            params.push(param);
        }
    }
    params
}

/// A parameter's initial value and transform, with its length.
fn finish<'a>(
    cx: &Ctxt,
    field: &'a Field,
    args: &ParamArgs,
    table: &Bindings,
    scalar: bool,
    len: Option<TokenStream>,
) -> Option<Param<'a>> {
    let init = Lower::new(table.data_scope(), cx)
        .raw(&args.init)
        .map(|raw| quote!(((#raw) as f64)));
    let t = quote!(::iwhvi::__private::Transform);
    let transform = match &args.lower {
        None => Some(quote!(#t::Identity)),
        Some(lower) => Lower::new(table.data_scope(), cx)
            .raw(lower)
            .map(|raw| quote!(#t::LowerBound { low: (#raw) as f64 })),
    };
    Some(Param {
        field,
        scalar,
        init: init?,
        len: len?,
        transform: transform?,
        matrix: None,
    })
}
