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
//!
//! A plate of factors over a batch computes the terms of all the batch's
//! rows in one call (NumPyro's `with plate("data", N, subsample_size=b)`,
//! whose body sees the batch's rows at once):
//!
//! ```text
//! #[factor(self.lik(rows, z[rows], w), for rows in batch, len = x.nrows())] lik: (),
//! ```
//!
//! `rows` is the batch's element indices (`&[usize]`: a minibatch's, or
//! `0..len` for the whole data), `z[rows]` the gathered `&[__T]`
//! (`z[rows[0]], z[rows[1]], …`), and the term one value per row (any
//! `AsRef<[__T]>`), entry `k` for row `rows[k]`: the same plate as
//! `for n` with term `n` the entry of row `n`. A term of another length
//! makes the log joint NaN, and `first_invalid_term` names the factor
//! (`Term::FactorRows`). Entry `k` must depend on row `rows[k]`'s local
//! values alone (the conditional independence of a plate); the macro
//! cannot check what the function does inside.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{Attribute, Expr, Ident};

use super::ast::{Field, Model, Role, Shape, ValueIndexLen};
use crate::ctxt::Ctxt;
use crate::scope::{Binding, Bindings, Lower, Meaning, lift, single_ident};

/// The contents of `#[factor(…)]`: the term, then optionally `for i` (the
/// index of a plate of terms) and `len = expr` (the plate's length), each
/// at most once.
pub type Args = ValueIndexLen;

/// Parses `#[factor(…)]`'s contents.
fn parse_args(input: ParseStream) -> syn::Result<Args> {
    ValueIndexLen::parse_with(input, |key| {
        format!(
            "unknown option `{key}` of #[factor]: write `#[factor(term)]`, for one term per element `#[factor(term, for i, len = <length>)]`, or for a batch's terms at once `#[factor(terms, for rows in batch, len = <length>)]`"
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
    /// A plate over a batch's rows at once (`for rows in batch`): the
    /// index is then the rows (`&[usize]`) and `value` one term per row
    /// (an `AsRef<[__T]>`).
    pub batch: bool,
}

/// The name of a batch's rows (`for rows in batch`) in every attribute
/// but its own factor's term, where it is not a value: read, it reports
/// what to write.
pub fn batch_bindings(model: &Model) -> Vec<Binding> {
    let mut names: Vec<&Ident> = model
        .fields
        .iter()
        .filter_map(|f| match &f.role {
            Role::Factor(Args {
                index: Some(rows),
                over: Some(_),
                ..
            }) => Some(rows),
            _ => None,
        })
        .collect();
    let mut seen = Vec::new();
    names.retain(|rows| {
        let new = !seen.contains(rows);
        seen.push(*rows);
        new
    });
    names
        .into_iter()
        .map(|rows| Binding {
            ident: rows.clone(),
            meaning: Meaning::Unreadable(format!(
                "`{rows}` is a batch's rows (`for {rows} in batch`, a `&[usize]`): in that factor's term pass it whole, `{rows}`, or gather a vector by it, `z[{rows}]`; elsewhere index by the attribute's own `for i`"
            )),
        })
        .collect()
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
    if args.over.is_some() {
        return lower_batch(cx, table, position, field, args);
    }
    let plate = match (&args.index, &args.len) {
        (None, None) => None,
        (Some(i), _) if table.is_field(i) => {
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
        batch: false,
    })
}

/// Lowers a plate of factors over a batch (`for rows in batch, len = n`).
fn lower_batch<'a>(
    cx: &Ctxt,
    table: &Bindings,
    position: usize,
    field: &'a Field,
    args: &'a Args,
) -> Option<Factor<'a>> {
    let (rows, over) = (args.index.as_ref()?, args.over.as_ref()?);
    if single_ident(over).is_none_or(|b| b != "batch") {
        cx.error_spanned_by(
            over,
            format!("a plate of factors runs over `batch`, the batch's rows at once: write `for {rows} in batch`, or `for i` (without `in`) for one term per element"),
        );
        return None;
    }
    if table.is_field(rows) {
        cx.error_spanned_by(
            rows,
            format!("the batch's rows `{rows}` shadow a field; choose another name, e.g. `for rows in batch`"),
        );
        return None;
    }
    let Some(len) = &args.len else {
        cx.error_spanned_by(
            rows,
            format!("a plate of factors over `for {rows} in batch` needs the plate's length: add `len = <length>` over the data, e.g. `len = y.len()`"),
        );
        return None;
    };
    let raw = Lower::new(table.data_scope(), cx).raw(len);
    let value = batch_term(cx, table, position, rows, &args.value);
    let (raw, value) = (raw?, value?);
    Some(Factor {
        field,
        value,
        plate: Some((rows, quote!(((#raw) as usize)))),
        batch: true,
    })
}

/// A batch's term: a call of a model method or a function, its arguments
/// lowered as a helper's, with `rows` passed whole and `z[rows]` gathered.
fn batch_term(
    cx: &Ctxt,
    table: &Bindings,
    position: usize,
    rows: &Ident,
    term: &Expr,
) -> Option<TokenStream> {
    let span = term.span();
    let (head, call_args) = match term {
        Expr::MethodCall(c) if single_ident(&c.receiver).is_some_and(|r| r == "self") => {
            let (method, turbofish) = (&c.method, &c.turbofish);
            (quote_spanned!(span=> self.#method #turbofish), &c.args)
        }
        Expr::Call(c) if matches!(&*c.func, Expr::Path(p) if p.qself.is_none()) => {
            let func = &c.func;
            (quote!(#func), &c.args)
        }
        other => {
            cx.error_spanned_by(
                other,
                format!("the term of a plate of factors over a batch is a call returning one term per row: write a model method `self.f({rows}, z[{rows}], …)` or a function `f({rows}, z[{rows}], …)`"),
            );
            return None;
        }
    };
    let mut lower = Lower::new(table.scope(position, None), cx);
    let lowered: Vec<Option<TokenStream>> = call_args
        .iter()
        .map(|a| batch_argument(&mut lower, table, rows, a))
        .collect();
    let lowered: Vec<TokenStream> = lowered.into_iter().collect::<Option<_>>()?;
    Some(quote_spanned!(span=> #head(#(#lowered),*)))
}

/// One argument of a batch's term: `rows` itself, `z[rows]` gathered as a
/// `&[__T]`, anything else as a helper method's argument.
fn batch_argument(
    lower: &mut Lower<'_>,
    table: &Bindings,
    rows: &Ident,
    arg: &Expr,
) -> Option<TokenStream> {
    let nan = quote!(<__T as ::iwhvi::__private::Scalar>::constant(f64::NAN));
    if single_ident(arg).is_some_and(|a| a == rows) {
        return Some(quote!(#rows));
    }
    // `z[rows]`, also written `&z[rows]` or `(z[rows])`: the gathered
    // slice; anything else is a helper's argument (unless it indexes by
    // one row).
    let index = match peel(arg) {
        Expr::Index(index) if single_ident(&index.index).is_some_and(|i| i == rows) => index,
        _ => {
            return per_row_index(lower.cx, table, rows, arg)
                .map_or_else(|| lower.helper_argument(arg), |_| None);
        }
    };
    let base = single_ident(&index.expr);
    let meaning = base.and_then(|b| {
        table
            .entries
            .iter()
            .find(|e| e.ident == *b)
            .map(|e| &e.meaning)
    });
    // Through `gather_rows`: a copy of a whole vector's rows, or in
    // `log_joint_points` a local latent's batch values as they are.
    let gather = |vector: TokenStream| quote!(&*::iwhvi::__private::gather_rows(&#vector, #rows));
    match (base, meaning) {
        (
            Some(base),
            Some(
                Meaning::Local { scalar: false }
                | Meaning::Param { scalar: false }
                | Meaning::Transformed { scalar: false },
            ),
        ) => {
            // Checks that `base` is visible here.
            lower.vector(&index.expr)?;
            Some(gather(quote!(#base)))
        }
        (Some(base), Some(Meaning::Data(shape @ (Shape::Array(..) | Shape::Vec(_))))) => {
            // Checks the name; the rows' entries alone are lifted.
            lower.vector(&index.expr)?;
            let each = lift(quote!(*__v), shape.elem(), base.span());
            Some(quote! {
                &(#rows.iter().map(|&__r| match self.#base.get(__r) {
                    ::core::option::Option::Some(__v) => #each,
                    ::core::option::Option::None => #nan,
                }).collect::<::std::vec::Vec<__T>>())[..]
            })
        }
        _ => {
            lower.cx.error_spanned_by(
                &index.expr,
                format!("`…[{rows}]` gathers a vector over the batch's rows: index a vector latent, a learned or transformed vector, or a data vector by name, e.g. `z[{rows}]`"),
            );
            None
        }
    }
}

/// `arg` without its outer parentheses and shared borrows (`&z[rows]`,
/// `(z[rows])` are `z[rows]`).
fn peel(arg: &Expr) -> &Expr {
    match arg {
        Expr::Paren(p) => peel(&p.expr),
        Expr::Reference(r) if r.mutability.is_none() => peel(&r.expr),
        _ => arg,
    }
}

/// Reports (and returns) a per-element index in a batch's term: `z[n]`
/// where `n` is no field (a batch's term has no index of one row).
fn per_row_index(cx: &Ctxt, table: &Bindings, rows: &Ident, arg: &Expr) -> Option<()> {
    struct Finder<'t> {
        table: &'t Bindings,
        rows: &'t Ident,
        found: Option<(Expr, Ident)>,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_expr_index(&mut self, node: &'ast syn::ExprIndex) {
            if let Some(i) = single_ident(&node.index) {
                if self.found.is_none()
                    && i != self.rows
                    && !self.table.entries.iter().any(|b| b.ident == *i)
                {
                    self.found = Some(((*node.expr).clone(), i.clone()));
                }
            }
            syn::visit::visit_expr_index(self, node);
        }
    }
    let mut finder = Finder {
        table,
        rows,
        found: None,
    };
    finder.visit_expr(arg);
    let (base, i) = finder.found?;
    let base = quote!(#base).to_string();
    cx.error_spanned_by(
        &i,
        format!("a plate of factors over a batch has no index `{i}` of one row: its term sees all the batch's rows at once; write `{base}[{rows}]` for `{base}` at every row of the batch"),
    );
    Some(())
}
