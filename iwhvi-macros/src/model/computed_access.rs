//! Reads at positions computed from the data and the loop index:
//! `x[idx[k]]`, `len = n[k]`, `a[group[i]]`, `x[i + 1]`, `m.row(k)`,
//! `alpha[from..from + 3]`, `m[(r[i], c[i])]`, of data, of vector and
//! matrix latents (`L[(r[i], 0)]`, and at literal positions too), of
//! learned vectors and matrices (`w.row(k)`), and of transformed vectors
//! computed element by element, including the reads inside a
//! `#[transformed(…, for j, len = n)]` loop. Whether such a read is in
//! range depends only on the data (a position in an attribute never reads
//! a latent), so the generated `new` evaluates each one that every
//! evaluation of the model makes, at every element of its loop, and
//! rejects the data when one falls outside
//! (`DataError::OutOfRangeAt`, naming the field or latent read, the read as
//! written, the position, the element and the term).
//!
//! A read under an `if` branch, after `&&` or `||`, or in a closure's body
//! may never run, so `new` does not evaluate it; there, and in the model's
//! own code, a read out of range is never a panic: a data read in an index,
//! a count, a length or a bound gives an out-of-range value
//! (`iwhvi::__private::raw_at`: NaN, the integer type's maximum, `false`;
//! in the condition of an `if`, the `if`'s value is NaN instead of a
//! branch chosen on that value, `scope.rs`'s `value_if`),
//! integer arithmetic there is checked (`raw_sub`: `i - 1` at `i = 0` is
//! out of range), and a read in a value gives NaN or no vector (`scope.rs`),
//! which `fit` names (`FitError::InvalidStart`). Literal positions into data
//! are `literal_access.rs`'s.

use std::collections::BTreeSet;

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::visit::Visit;
use syn::{BinOp, Expr, Ident, RangeLimits};

use super::ast::Role;
use super::plan::Plan;
use super::transformed::Kind;
use crate::ctxt::Ctxt;
use crate::scope::{Bindings, Lower, first_mention, single_ident};

/// What can be read at a position: a data field, a vector or matrix
/// latent, a learned parameter or a transformed vector, with the size of
/// each axis as a `usize` expression over `self`.
enum Base {
    /// A vector: its length (`self.x.len()`, a latent's `len`).
    Vector(TokenStream),
    /// A matrix: its rows and its columns.
    Matrix(TokenStream, TokenStream),
}

/// A base by name, and whether it is data (whose literal positions are
/// `literal_access.rs`'s) or a local of the model (checked here at
/// literal positions too).
struct Named {
    name: String,
    base: Base,
    data: bool,
}

/// Every base of the model: the non-scalar data and observed fields, the
/// vector and matrix latents, the learned vectors and matrices, and the
/// transformed vectors computed element by element (`for i, len = n`).
fn bases(plan: &Plan<'_>) -> Vec<Named> {
    let mut bases = Vec::new();
    for (ident, matrix) in super::literal_access::data_fields(plan.model) {
        let base = if matrix {
            Base::Matrix(quote!(self.#ident.nrows()), quote!(self.#ident.ncols()))
        } else {
            Base::Vector(quote!(self.#ident.len()))
        };
        bases.push(Named {
            name: ident.to_string(),
            base,
            data: true,
        });
    }
    let mut local = |ident: &Ident, base: Base| {
        bases.push(Named {
            name: ident.to_string(),
            base,
            data: false,
        });
    };
    for latent in plan.latents() {
        match &latent.order {
            // A K × K matrix latent (`len` is K²).
            Some(order) => local(
                &latent.field.ident,
                Base::Matrix(quote!(#order), quote!(#order)),
            ),
            None if !latent.shape.is_scalar() => {
                let len = &latent.len;
                local(&latent.field.ident, Base::Vector(quote!(#len)));
            }
            None => {}
        }
    }
    for p in &plan.params {
        match &p.matrix {
            Some((rows, cols)) => local(&p.field.ident, Base::Matrix(quote!(#rows), quote!(#cols))),
            None if !p.scalar => {
                let len = &p.len;
                local(&p.field.ident, Base::Vector(quote!(#len)));
            }
            None => {}
        }
    }
    for t in plan.transformed() {
        if let Kind::Each { len, .. } = &t.kind {
            local(&t.field.ident, Base::Vector(quote!(#len)));
        }
    }
    bases
}

/// The checks, one per read at a computed position that every evaluation
/// makes, in declaration order; those of a field's loop run inside it.
pub fn checks(plan: &Plan<'_>) -> Vec<TokenStream> {
    let model = plan.model;
    let table = super::lower::bindings(model);
    let bases = bases(plan);
    let shadowed = super::literal_access::shadowing_names(model);
    let mut out = Vec::new();
    for field in &model.fields {
        // The loop of the field's attribute, and its number of elements.
        let (index, range) = match &field.role {
            Role::Observed { index: Some(i), .. }
                if field.shape.as_ref().is_some_and(|s| !s.is_scalar()) =>
            {
                let ident = &field.ident;
                (Some(i), Some(quote!(self.#ident.len())))
            }
            Role::Latent { index: Some(i), .. } => {
                let len = plan
                    .latents()
                    .find(|l| l.field.ident == field.ident && l.order.is_none())
                    .map(|l| l.len.clone());
                (Some(i), len)
            }
            Role::Derived { index: Some(i), .. } => {
                let len = plan
                    .derived()
                    .find(|d| d.field.ident == field.ident)
                    .and_then(|d| d.over)
                    .map(|(_, n)| quote!((#n) as usize));
                (Some(i), len)
            }
            Role::Factor(f) => {
                let len = plan.steps.iter().find_map(|s| match s {
                    super::plan::Step::Factor(lowered) if lowered.field.ident == field.ident => {
                        lowered.plate.as_ref().map(|(_, len)| len.clone())
                    }
                    _ => None,
                });
                (f.index.as_ref(), len)
            }
            Role::Transformed(t) => {
                let len = plan.transformed().find_map(|tr| match &tr.kind {
                    Kind::Each { len, .. } if tr.field.ident == field.ident => Some(len.clone()),
                    _ => None,
                });
                (t.index.as_ref(), len)
            }
            Role::Derived { index, .. }
            | Role::Latent { index, .. }
            | Role::Observed { index, .. } => (index.as_ref(), None),
            _ => (None, None),
        };
        let mut finder = Finder {
            table: &table,
            bases: &bases,
            shadowed: &shadowed,
            index,
            term: field.ident.to_string(),
            // A plate of factors has no vector of its own whose length
            // `new` checks against its data's: its reads at its index are
            // checked here.
            at_loop_checked: matches!(field.role, Role::Factor(_)),
            conditional: 0,
            outside: Vec::new(),
            inside: Vec::new(),
        };
        for expr in super::literal_access::role_exprs(&field.role) {
            finder.visit_expr(expr);
        }
        out.extend(finder.outside);
        // Reads at the loop index: only where the loop's length is known
        // (a `#[transformed]` loop's is when it reads element by element,
        // `for i, len = n`).
        if let (Some(i), Some(range), false) = (index, range, finder.inside.is_empty()) {
            let inside = finder.inside;
            out.push(quote! {
                for #i in 0..#range {
                    #(#inside)*
                }
            });
        }
    }
    out
}

struct Finder<'a> {
    table: &'a Bindings,
    bases: &'a [Named],
    /// Names bound inside attributes (`let`s, closure parameters, `for`
    /// indices): a position mentioning one (other than this field's own
    /// index) is not evaluated here.
    shadowed: &'a BTreeSet<String>,
    index: Option<&'a Ident>,
    term: String,
    /// Whether data reads at the loop index itself (`x[i]`) are checked
    /// here (a plate of factors) or by the loop's length check.
    at_loop_checked: bool,
    /// Inside an `if` branch, after `&&`/`||` or in a closure: reads that
    /// may not run.
    conditional: usize,
    /// The checks of reads that do not mention the loop index.
    outside: Vec<TokenStream>,
    /// The checks of reads at the loop index, run at every element.
    inside: Vec<TokenStream>,
}

/// A literal non-negative integer (`literal_access.rs` checks those reads
/// of data).
fn is_literal(expr: &Expr) -> bool {
    super::literal_access::literal(expr).is_some()
}

impl Finder<'_> {
    /// The base an expression names, when it is not shadowed.
    fn base(&self, expr: &Expr) -> Option<&Named> {
        let name = single_ident(expr)?.to_string();
        if self.shadowed.contains(&name) && self.index.is_none_or(|i| *i != name) {
            return None;
        }
        self.bases.iter().find(|b| b.name == name)
    }

    /// The positions as `usize` expressions over the data and the loop
    /// index, or `None` when one reads anything else (a `let`, a latent)
    /// or the read may not run (`push` would drop it: not lowered).
    fn positions(&self, exprs: &[&Expr]) -> Option<Vec<TokenStream>> {
        if self.conditional > 0 {
            return None;
        }
        let index = self.index;
        let reads_shadowed = exprs.iter().any(|e| {
            first_mention(e, |x| {
                self.shadowed.contains(&x.to_string()) && index.is_none_or(|i| i != x)
            })
            .is_some()
        });
        if reads_shadowed {
            return None;
        }
        // A context of its own: a position that is not data-only is
        // reported there and dropped, never to the user.
        let cx = Ctxt::default();
        let raw: Vec<Option<TokenStream>> = {
            let mut lower = Lower::new(self.table.data_scope_at(index), &cx);
            exprs.iter().map(|e| lower.raw(e)).collect()
        };
        let ok = cx.check().is_ok();
        let raw: Option<Vec<TokenStream>> = raw.into_iter().collect();
        raw.filter(|_| ok).map(|r| {
            r.into_iter()
                .map(|r| quote!(::iwhvi::__private::as_index(#r)))
                .collect()
        })
    }

    /// Adds the check that `ok` holds of `__at` (the position) and
    /// `__len` (the axis' size).
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        name: &str,
        access: &dyn ToTokens,
        position: &TokenStream,
        len: TokenStream,
        unit: &str,
        ok: TokenStream,
        mentions_index: bool,
    ) {
        if self.conditional > 0 {
            return;
        }
        let access = super::literal_access::access_text(access);
        let term = &self.term;
        let element = match (mentions_index, self.index) {
            (true, Some(i)) => quote!(::core::option::Option::Some(#i)),
            _ => quote!(::core::option::Option::None),
        };
        let check = quote! {
            {
                let __len: usize = #len;
                let __at: usize = #position;
                if !(#ok) {
                    return ::core::result::Result::Err(::iwhvi::__private::DataError::OutOfRangeAt {
                        field: #name, access: #access, position: __at, element: #element,
                        len: __len, unit: #unit, term: #term,
                    });
                }
            }
        };
        if mentions_index {
            self.inside.push(check);
        } else {
            self.outside.push(check);
        }
    }

    fn mentions_index(&self, exprs: &[&Expr]) -> bool {
        self.index
            .is_some_and(|i| exprs.iter().any(|e| first_mention(e, |x| x == i).is_some()))
    }
}

impl<'ast> Visit<'ast> for Finder<'_> {
    fn visit_expr_index(&mut self, node: &'ast syn::ExprIndex) {
        // Inner reads first: the position of this one reads them.
        syn::visit::visit_expr_index(self, node);
        let Some(named) = self.base(&node.expr) else {
            return;
        };
        let (name, local) = (named.name.clone(), !named.data);
        match (&*node.index, &named.base) {
            (Expr::Tuple(t), Base::Matrix(rows, cols)) if t.elems.len() == 2 => {
                let axes = [
                    (&t.elems[0], rows.clone(), "rows"),
                    (&t.elems[1], cols.clone(), "columns"),
                ];
                for (e, len, unit) in axes {
                    if !local && is_literal(e) {
                        continue;
                    }
                    if let Some(p) = self.positions(&[e]).and_then(|p| p.into_iter().next()) {
                        let at = self.mentions_index(&[e]);
                        self.push(&name, node, &p, len, unit, quote!(__at < __len), at);
                    }
                }
            }
            (Expr::Range(range), Base::Vector(len)) => {
                let written: Vec<&Expr> = [&range.start, &range.end]
                    .into_iter()
                    .flatten()
                    .map(|e| &**e)
                    .collect();
                if written.is_empty() || (!local && written.iter().all(|e| is_literal(e))) {
                    return;
                }
                let len = len.clone();
                let Some(p) = self.positions(&written) else {
                    return;
                };
                let at = self.mentions_index(&written);
                let mut p = p.into_iter();
                let start = range
                    .start
                    .as_ref()
                    .map(|_| p.next().expect("one per bound"));
                let end = range.end.as_ref().map(|_| p.next().expect("one per bound"));
                // The position reported is the end read (one past it for
                // `..=`), or the start when there is no end.
                let (position, ok) = match (start, end) {
                    (Some(s), Some(e)) => {
                        let e = match range.limits {
                            RangeLimits::Closed(_) => quote!(#e.saturating_add(1)),
                            RangeLimits::HalfOpen(_) => e,
                        };
                        (e, quote!(#s <= __at && __at <= __len))
                    }
                    (None, Some(e)) => {
                        let e = match range.limits {
                            RangeLimits::Closed(_) => quote!(#e.saturating_add(1)),
                            RangeLimits::HalfOpen(_) => e,
                        };
                        (e, quote!(__at <= __len))
                    }
                    (Some(s), None) => (s, quote!(__at <= __len)),
                    (None, None) => return,
                };
                self.push(&name, node, &position, len, "entries", ok, at);
            }
            (Expr::Range(_) | Expr::Tuple(_), _) => {}
            (index, Base::Vector(len)) => {
                // A data vector at the loop index itself (`x[i]`): its
                // length is checked against the loop's (`LengthMismatch`).
                let at_loop = single_ident(index).is_some_and(|i| self.index == Some(i));
                if !local && (is_literal(index) || (at_loop && !self.at_loop_checked)) {
                    return;
                }
                let len = len.clone();
                if let Some(p) = self.positions(&[index]).and_then(|p| p.into_iter().next()) {
                    let at = self.mentions_index(&[index]);
                    self.push(&name, node, &p, len, "entries", quote!(__at < __len), at);
                }
            }
            (_, Base::Matrix(..)) => {}
        }
    }

    fn visit_expr_method_call(&mut self, node: &'ast syn::ExprMethodCall) {
        syn::visit::visit_expr_method_call(self, node);
        let Some(named) = self.base(&node.receiver) else {
            return;
        };
        let Base::Matrix(rows, cols) = &named.base else {
            return;
        };
        let (len, unit) = match node.method.to_string().as_str() {
            "row" => (rows.clone(), "rows"),
            "column" => (cols.clone(), "columns"),
            _ => return,
        };
        let (name, local) = (named.name.clone(), !named.data);
        if node.args.len() != 1 || (!local && is_literal(&node.args[0])) {
            return;
        }
        let arg = &node.args[0];
        if let Some(p) = self.positions(&[arg]).and_then(|p| p.into_iter().next()) {
            let at = self.mentions_index(&[arg]);
            self.push(&name, node, &p, len, unit, quote!(__at < __len), at);
        }
    }

    fn visit_expr_if(&mut self, node: &'ast syn::ExprIf) {
        self.visit_expr(&node.cond);
        self.conditional += 1;
        self.visit_block(&node.then_branch);
        if let Some((_, e)) = &node.else_branch {
            self.visit_expr(e);
        }
        self.conditional -= 1;
    }

    fn visit_expr_binary(&mut self, node: &'ast syn::ExprBinary) {
        if matches!(node.op, BinOp::And(_) | BinOp::Or(_)) {
            self.visit_expr(&node.left);
            self.conditional += 1;
            self.visit_expr(&node.right);
            self.conditional -= 1;
        } else {
            syn::visit::visit_expr_binary(self, node);
        }
    }

    fn visit_expr_closure(&mut self, node: &'ast syn::ExprClosure) {
        self.conditional += 1;
        syn::visit::visit_expr_closure(self, node);
        self.conditional -= 1;
    }
}
