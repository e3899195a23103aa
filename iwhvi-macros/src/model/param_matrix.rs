//! Learned matrices (`#[param(init = …, rows = …, cols = …)] w: DMatrix<f64>`):
//! the shape options, checked.
//!
//! In attributes a learned matrix is a matrix value like a correlation
//! factor latent (`DMatrix<__T>`): `w[(i, j)]`, a row or column as a vector
//! (`w.row(i)`, `w.column(j)`), a matrix argument, or `&DMatrix<T>` to a
//! helper method (a matrix-vector product written once in Rust). Its
//! unconstrained coordinates in θ are the matrix column by column
//! (nalgebra's storage order), each through the parameter's transform.

use proc_macro2::TokenStream;
use quote::quote;

use super::ast::{Field, ParamArgs};
use crate::ctxt::Ctxt;
use crate::scope::{Bindings, Lower};

/// The `(rows, cols)` of a learned matrix as `usize` expressions over the
/// data; `None` (reported) when an option is missing, misplaced or not
/// data-only.
pub fn shape(
    cx: &Ctxt,
    field: &Field,
    args: &ParamArgs,
    table: &Bindings,
) -> Option<(TokenStream, TokenStream)> {
    let ident = &field.ident;
    if let Some(len) = &args.len {
        cx.error_spanned_by(
            len,
            format!(
                "`{ident}` is a matrix: give its shape as `rows = <rows>, cols = <columns>`, not `len`"
            ),
        );
        return None;
    }
    let (Some(rows), Some(cols)) = (&args.rows, &args.cols) else {
        cx.error_spanned_by(
            ident,
            format!(
                "learned matrix `{ident}` needs its shape: write `#[param(init = …, rows = <rows from data>, cols = <columns from data>)]`"
            ),
        );
        return None;
    };
    let rows = Lower::new(table.data_scope(), cx).raw(rows);
    let cols = Lower::new(table.data_scope(), cx).raw(cols);
    let (rows, cols) = (rows?, cols?);
    Some((quote!(((#rows) as usize)), quote!(((#cols) as usize))))
}

/// `rows`/`cols` given on a scalar or vector parameter: an error on each.
pub fn no_shape_outside_a_matrix(cx: &Ctxt, args: &ParamArgs) {
    for option in [&args.rows, &args.cols].into_iter().flatten() {
        cx.error_spanned_by(
            option,
            "`rows` and `cols` give the shape of a learned matrix: declare the field `DMatrix<f64>`, or remove them",
        );
    }
}
