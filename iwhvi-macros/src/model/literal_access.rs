//! Reads of data at positions written as literals: `y[7]`, `x[2..5]`,
//! `x[..=3]`, `m.row(0)`, `m.column(2)`, `m[(0, 4)]`. Whether they are in
//! range depends only on the data, so the generated `new` checks each
//! against the data it is given (`DataError::OutOfRange`, naming the field,
//! the read and the term), before any check that evaluates an attribute.
//! Reads at positions computed from the data are `computed_access.rs`'s;
//! every read is also made safe where it is lowered (`scope.rs`: out of
//! range it gives NaN, no vector or an out-of-range index, and the term is
//! named by `Model::first_invalid_term`).

use std::collections::BTreeSet;

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::visit::Visit;
use syn::{Expr, Ident, Lit, RangeLimits};

use super::ast::{DistCall, Model, Role, Shape};

/// The checks, one per literal read of a data field, in declaration order.
pub fn checks(model: &Model) -> Vec<TokenStream> {
    let mut finder = Finder {
        data: data_fields(model)
            .into_iter()
            .map(|(ident, matrix)| (ident.to_string(), matrix))
            .collect(),
        shadowed: shadowing_names(model),
        term: String::new(),
        checks: Vec::new(),
    };
    for field in &model.fields {
        finder.term = field.ident.to_string();
        for expr in role_exprs(&field.role) {
            finder.visit_expr(expr);
        }
    }
    finder.checks
}

/// The non-scalar data (and observed) fields, each with whether it is a
/// matrix: what a position may read out of range.
pub(super) fn data_fields(model: &Model) -> Vec<(&Ident, bool)> {
    model
        .fields
        .iter()
        .filter(|f| matches!(f.role, Role::Data | Role::Observed { .. }))
        .filter_map(|f| Some((&f.ident, f.shape.as_ref()?)))
        .filter(|(_, shape)| !shape.is_scalar())
        .map(|(ident, shape)| (ident, matches!(shape, Shape::Matrix)))
        .collect()
}

/// A read as written in the model, without whitespace (`x[idx[i]]`): the
/// `access` an out-of-range error names.
pub(super) fn access_text(access: &dyn ToTokens) -> String {
    access
        .to_token_stream()
        .to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// Every expression of a field's attribute.
pub(super) fn role_exprs(role: &Role) -> Vec<&Expr> {
    fn call(d: &DistCall) -> Vec<&Expr> {
        d.args.iter().collect()
    }
    match role {
        Role::Data => Vec::new(),
        Role::Factor(f) => f.exprs(),
        Role::Derived { expr: e, .. } => vec![e],
        Role::Latent { prior, .. } => {
            let mut all = call(prior);
            all.extend(role.latent_options());
            all
        }
        Role::Observed { likelihood, .. } => call(likelihood),
        Role::Param(p) => [
            Some(&p.init),
            p.len.as_ref(),
            p.lower.as_ref(),
            p.rows.as_ref(),
            p.cols.as_ref(),
        ]
        .into_iter()
        .flatten()
        .collect(),
        Role::PriorMixing(m) => call(&m.prior),
        Role::Transformed(t) => [Some(&t.value), t.len.as_ref()]
            .into_iter()
            .flatten()
            .collect(),
    }
}

/// The names an attribute may bind over a data field's (`for` indices and
/// `let`s): a read through such a name is not a read of the data.
pub(super) fn shadowing_names(model: &Model) -> BTreeSet<String> {
    struct Lets(BTreeSet<String>);
    impl<'ast> Visit<'ast> for Lets {
        fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
            self.0.insert(p.ident.to_string());
        }
    }
    let mut lets = Lets(BTreeSet::new());
    for field in &model.fields {
        let index = match &field.role {
            Role::Derived { index, .. }
            | Role::Latent { index, .. }
            | Role::Observed { index, .. } => index.as_ref(),
            Role::Factor(f) => f.index.as_ref(),
            _ => None,
        };
        lets.0.extend(index.map(Ident::to_string));
        for expr in role_exprs(&field.role) {
            lets.visit_expr(expr);
        }
    }
    lets.0
}

struct Finder {
    /// The non-scalar data fields, and whether each is a matrix.
    data: Vec<(String, bool)>,
    shadowed: BTreeSet<String>,
    /// The field whose attribute is being read.
    term: String,
    checks: Vec<TokenStream>,
}

/// A literal non-negative integer.
pub(super) fn literal(expr: &Expr) -> Option<usize> {
    match expr {
        Expr::Lit(l) => match &l.lit {
            Lit::Int(i) => i.base10_parse().ok(),
            _ => None,
        },
        Expr::Paren(p) => literal(&p.expr),
        Expr::Group(g) => literal(&g.expr),
        _ => None,
    }
}

impl Finder {
    /// The data field an expression names, with whether it is a matrix.
    fn field(&self, expr: &Expr) -> Option<(Ident, bool)> {
        let ident = crate::scope::single_ident(expr)?;
        let name = ident.to_string();
        if self.shadowed.contains(&name) {
            return None;
        }
        let (_, matrix) = self.data.iter().find(|(n, _)| *n == name)?;
        Some((ident.clone(), *matrix))
    }

    /// `ok` must hold of the axis' size `__len`, else `new` fails.
    fn push(
        &mut self,
        field: &Ident,
        access: &dyn ToTokens,
        axis: TokenStream,
        unit: &str,
        ok: TokenStream,
    ) {
        let access = access_text(access);
        let (name, term) = (field.to_string(), &self.term);
        self.checks.push(quote! {
            {
                let __len: usize = self.#field.#axis();
                if !(#ok) {
                    return ::core::result::Result::Err(::iwhvi::__private::DataError::OutOfRange {
                        field: #name, access: #access, len: __len, unit: #unit, term: #term,
                    });
                }
            }
        });
    }
}

impl<'ast> Visit<'ast> for Finder {
    fn visit_expr_index(&mut self, node: &'ast syn::ExprIndex) {
        if let Some((field, matrix)) = self.field(&node.expr) {
            match (&*node.index, matrix) {
                (Expr::Tuple(t), true) if t.elems.len() == 2 => {
                    if let Some(r) = literal(&t.elems[0]) {
                        self.push(&field, node, quote!(nrows), "rows", quote!(#r < __len));
                    }
                    if let Some(c) = literal(&t.elems[1]) {
                        self.push(&field, node, quote!(ncols), "columns", quote!(#c < __len));
                    }
                }
                (Expr::Range(range), false) => {
                    let start = range.start.as_deref().map(literal);
                    let end = range.end.as_deref().map(literal);
                    // Only when every bound written is a literal.
                    if start.flatten().is_some() == range.start.is_some()
                        && end.flatten().is_some() == range.end.is_some()
                        && (range.start.is_some() || range.end.is_some())
                    {
                        let start = start.flatten().unwrap_or(0);
                        let end = match (end.flatten(), &range.limits) {
                            (Some(e), RangeLimits::Closed(_)) => {
                                let e = e.saturating_add(1);
                                quote!(#e)
                            }
                            (Some(e), RangeLimits::HalfOpen(_)) => quote!(#e),
                            (None, _) => quote!(__len),
                        };
                        // (No `0 <= …`: a comparison that always holds.)
                        let ok = if start == 0 {
                            quote!(#end <= __len)
                        } else {
                            quote!(#start <= #end && #end <= __len)
                        };
                        self.push(&field, node, quote!(len), "entries", ok);
                    }
                }
                (index, false) => {
                    if let Some(i) = literal(index) {
                        self.push(&field, node, quote!(len), "entries", quote!(#i < __len));
                    }
                }
                _ => {}
            }
        }
        syn::visit::visit_expr_index(self, node);
    }

    fn visit_expr_method_call(&mut self, node: &'ast syn::ExprMethodCall) {
        let axis = match node.method.to_string().as_str() {
            "row" => Some((quote!(nrows), "rows")),
            "column" => Some((quote!(ncols), "columns")),
            _ => None,
        };
        if let (Some((axis, unit)), Some((field, true)), true) =
            (axis, self.field(&node.receiver), node.args.len() == 1)
        {
            if let Some(k) = literal(&node.args[0]) {
                self.push(&field, node, axis, unit, quote!(#k < __len));
            }
        }
        syn::visit::visit_expr_method_call(self, node);
    }
}
