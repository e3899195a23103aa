//! Expressions inside attributes, rewritten for the generated log joint.
//!
//! An expression is read in one of two contexts. In *value* context it
//! becomes a scalar `__T`: latents are the local scalars of the log joint,
//! data and literals are lifted with `Scalar::constant`, so that `f64` data
//! and dual-valued latents mix freely. In *raw* context (indices, counts,
//! lengths, fixed bounds) it stays plain Rust over the data: `county[i]`
//! inside `a[county[i]]` is an index, not a value.

use std::collections::BTreeSet;

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{BinOp, Expr, Ident, Lit, UnOp};

use super::ast::{Elem, Field, Model, Role, Shape};
use crate::ctxt::Ctxt;
use crate::distributions;

/// Where an expression is read.
pub struct Scope<'a> {
    pub model: &'a Model,
    /// Latents declared before this field are visible.
    pub current: usize,
    /// The index variable of an `#[observe(…, for i)]`.
    pub index: Option<&'a Ident>,
    /// Whether latents may appear (not in lengths or fixed bounds).
    pub latents_allowed: bool,
    pub cx: &'a Ctxt,
    /// Data vectors indexed directly by the index variable (their lengths
    /// must equal the observed field's).
    pub indexed_by_loop: std::cell::RefCell<BTreeSet<String>>,
    /// Every name resolved (to find unused guide parameters).
    pub used: std::cell::RefCell<BTreeSet<String>>,
    /// What names are looked up among, for messages.
    pub vocabulary: &'static str,
}

enum Name<'a> {
    Latent(&'a Field),
    Data(&'a Field),
    Index,
}

impl<'a> Scope<'a> {
    pub fn new(model: &'a Model, current: usize, index: Option<&'a Ident>, cx: &'a Ctxt) -> Self {
        Self {
            model,
            current,
            index,
            latents_allowed: true,
            cx,
            indexed_by_loop: Default::default(),
            used: Default::default(),
            vocabulary: "the model's data and latents",
        }
    }

    fn resolve(&self, ident: &Ident) -> Option<Name<'a>> {
        if self.index == Some(ident) {
            return Some(Name::Index);
        }
        let name = ident.to_string();
        self.used.borrow_mut().insert(name.clone());
        match self.model.field(&name) {
            Some((position, field)) => match &field.role {
                Role::Latent { .. } => {
                    if !self.latents_allowed {
                        self.cx.error_spanned_by(
                            ident,
                            format!("latent `{name}` cannot appear here: lengths and fixed bounds are computed from data alone"),
                        );
                        None
                    } else if position >= self.current {
                        self.cx.error_spanned_by(
                            ident,
                            format!("latent `{name}` is used before it is declared: move the field `{name}` above this one"),
                        );
                        None
                    } else {
                        Some(Name::Latent(field))
                    }
                }
                Role::Data | Role::Observed { .. } => Some(Name::Data(field)),
                Role::Factor(_) => {
                    self.cx.error_spanned_by(
                        ident,
                        format!("`{name}` is a #[factor] term, not a value"),
                    );
                    None
                }
                Role::Derived { .. } => {
                    self.cx.error_spanned_by(
                        ident,
                        format!("`{name}` is a derived quantity: compute it from the latents it is derived from"),
                    );
                    None
                }
            },
            None => {
                let mut candidates: Vec<String> = self
                    .model
                    .fields
                    .iter()
                    .map(|f| f.ident.to_string())
                    .collect();
                if let Some(i) = self.index {
                    candidates.push(i.to_string());
                }
                let message = if self.index.is_none() && name.len() == 1 {
                    format!(
                        "cannot find `{name}` among {}; an index such as `{name}` exists only with `for {name}` over a vector",
                        self.vocabulary
                    )
                } else {
                    let hint = distributions::closest(&name, candidates.iter().map(String::as_str))
                        .map_or_else(String::new, |c| format!("; did you mean `{c}`?"));
                    format!("cannot find `{name}` among {}{hint}", self.vocabulary)
                };
                self.cx.error_spanned_by(ident, message);
                None
            }
        }
    }

    fn single_ident(expr: &Expr) -> Option<&Ident> {
        match expr {
            Expr::Path(p) if p.qself.is_none() => p.path.get_ident(),
            _ => None,
        }
    }

    /// The expression as a `__T` scalar.
    pub fn value(&self, expr: &Expr) -> TokenStream {
        let span = expr.span();
        match expr {
            Expr::Lit(lit) if matches!(lit.lit, Lit::Float(_) | Lit::Int(_)) => {
                quote_spanned!(span=> <__T as ::iwhvi::__private::Scalar>::constant((#lit) as f64))
            }
            Expr::Path(_) => {
                let Some(ident) = Self::single_ident(expr) else {
                    return self.unsupported(expr);
                };
                match self.resolve(ident) {
                    Some(Name::Latent(field))
                        if field.shape.as_ref().is_some_and(Shape::is_scalar) =>
                    {
                        quote!(#ident)
                    }
                    Some(Name::Latent(_)) => {
                        self.cx.error_spanned_by(
                            ident,
                            format!("`{ident}` is a vector latent: index it, e.g. `{ident}[i]`"),
                        );
                        quote!(#ident[0])
                    }
                    Some(Name::Data(field)) => match &field.shape {
                        Some(Shape::Scalar(elem)) => lift(quote!(self.#ident), *elem, span),
                        _ => {
                            self.cx.error_spanned_by(
                                ident,
                                format!(
                                    "`{ident}` is a vector of data: index it, e.g. `{ident}[i]`"
                                ),
                            );
                            quote!(<__T as ::iwhvi::__private::Scalar>::constant(0.0))
                        }
                    },
                    Some(Name::Index) => lift(quote!(#ident), Elem::Integer, span),
                    None => quote!(<__T as ::iwhvi::__private::Scalar>::constant(0.0)),
                }
            }
            Expr::Index(index) => {
                let Some(base) = Self::single_ident(&index.expr) else {
                    return self.unsupported(expr);
                };
                let position = self.position(&index.index);
                match self.resolve(base) {
                    Some(Name::Latent(_)) => quote_spanned!(span=> #base[#position]),
                    Some(Name::Data(field)) => {
                        self.note_loop_index(base, &index.index);
                        lift(
                            quote!(self.#base[#position]),
                            field.shape.as_ref().map_or(Elem::Real, Shape::elem),
                            span,
                        )
                    }
                    Some(Name::Index) => {
                        self.cx.error_spanned_by(
                            base,
                            format!("the index `{base}` cannot be indexed"),
                        );
                        quote!(<__T as ::iwhvi::__private::Scalar>::constant(0.0))
                    }
                    None => quote!(<__T as ::iwhvi::__private::Scalar>::constant(0.0)),
                }
            }
            Expr::Binary(b)
                if matches!(
                    b.op,
                    BinOp::Add(_) | BinOp::Sub(_) | BinOp::Mul(_) | BinOp::Div(_)
                ) =>
            {
                let (left, op, right) = (self.value(&b.left), &b.op, self.value(&b.right));
                quote_spanned!(span=> #left #op #right)
            }
            Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => {
                let inner = self.value(&u.expr);
                quote_spanned!(span=> -#inner)
            }
            Expr::Paren(p) => {
                let inner = self.value(&p.expr);
                quote_spanned!(span=> (#inner))
            }
            Expr::Group(g) => self.value(&g.expr),
            Expr::MethodCall(call)
                if Self::single_ident(&call.receiver).is_some_and(|r| r == "self") =>
            {
                // A helper method of the model (`fn f<T: Scalar>(&self, …) -> T`):
                // latents pass as scalars or slices, data and indices as they are.
                let method = &call.method;
                let args = call.args.iter().map(|a| self.helper_argument(a));
                quote_spanned!(span=> self.#method(#(#args),*))
            }
            Expr::MethodCall(call) => {
                // `(a / b).exp()` becomes `Scalar::exp(a / b)`: the receiver's
                // parentheses would be unused in argument position.
                let receiver = match &*call.receiver {
                    Expr::Paren(p) => self.value(&p.expr),
                    other => self.value(other),
                };
                let method = &call.method;
                let args = call.args.iter().map(|a| match a {
                    // Integer literals are exponents (`powi(2)`), not values.
                    Expr::Lit(lit) if matches!(lit.lit, Lit::Int(_)) => quote!(#lit),
                    other => self.value(other),
                });
                quote_spanned!(span=> ::iwhvi::__private::Scalar::#method(#receiver #(, #args)*))
            }
            other => self.unsupported(other),
        }
    }

    /// A whole vector as a `Vec<__T>`: a vector latent, or a data vector
    /// lifted to the scalar.
    pub fn vector(&self, expr: &Expr) -> TokenStream {
        let span = expr.span();
        let Some(ident) = Self::single_ident(expr) else {
            self.cx.error_spanned_by(
                expr,
                "a vector parameter is the name of a vector latent or a data vector",
            );
            return quote!(::std::vec::Vec::new());
        };
        match self.resolve(ident) {
            Some(Name::Latent(field)) if !field.shape.as_ref().is_some_and(Shape::is_scalar) => {
                quote_spanned!(span=> #ident.to_vec())
            }
            Some(Name::Data(field)) if !field.shape.as_ref().is_some_and(Shape::is_scalar) => {
                let elem = field.shape.as_ref().map_or(Elem::Real, Shape::elem);
                let each = lift(quote!(*__v), elem, span);
                quote_spanned!(span=> self.#ident.iter().map(|__v| #each).collect::<::std::vec::Vec<__T>>())
            }
            Some(_) => {
                self.cx.error_spanned_by(
                    ident,
                    format!("`{ident}` is a scalar, where a vector is expected"),
                );
                quote!(::std::vec::Vec::new())
            }
            None => quote!(::std::vec::Vec::new()),
        }
    }

    /// A data matrix lifted to the scalar.
    pub fn matrix(&self, expr: &Expr) -> TokenStream {
        let span = expr.span();
        match Self::single_ident(expr).and_then(|i| self.resolve(i).map(|n| (i, n))) {
            Some((ident, Name::Data(field))) if matches!(field.shape, Some(Shape::Matrix)) => {
                quote_spanned!(span=> self.#ident.map(<__T as ::iwhvi::__private::Scalar>::constant))
            }
            _ => {
                self.cx.error_spanned_by(
                    expr,
                    "a matrix parameter is the name of a `DMatrix<f64>` data field",
                );
                quote!(::iwhvi::__private::nalgebra::DMatrix::<__T>::zeros(0, 0))
            }
        }
    }

    /// An argument of a helper method: a latent as itself (a vector as a
    /// slice), a data field by reference, an index or count as it is, any
    /// other expression as a `__T` value.
    fn helper_argument(&self, expr: &Expr) -> TokenStream {
        if let Some(ident) = Self::single_ident(expr) {
            return match self.resolve(ident) {
                Some(Name::Latent(field)) if field.shape.as_ref().is_some_and(Shape::is_scalar) => {
                    quote!(#ident)
                }
                Some(Name::Latent(_)) => quote!(&#ident[..]),
                Some(Name::Data(_)) => quote!(&self.#ident),
                Some(Name::Index) => quote!(#ident),
                None => quote!(()),
            };
        }
        match expr {
            Expr::Lit(lit) if matches!(lit.lit, Lit::Int(_)) => quote!(#lit),
            other => self.value(other),
        }
    }

    /// What goes inside `[…]`: a `usize`, or a `(row, column)` pair of
    /// them for a matrix.
    fn position(&self, expr: &Expr) -> TokenStream {
        match expr {
            Expr::Tuple(t) if t.elems.len() == 2 => {
                let (row, column) = (self.raw_index(&t.elems[0]), self.raw_index(&t.elems[1]));
                quote!((#row, #column))
            }
            other => self.raw_index(other),
        }
    }

    /// An index expression, as a `usize`.
    fn raw_index(&self, expr: &Expr) -> TokenStream {
        let raw = self.raw(expr);
        quote_spanned!(expr.span()=> ((#raw) as usize))
    }

    /// The expression as plain Rust over the data (indices, counts,
    /// lengths, fixed bounds).
    pub fn raw(&self, expr: &Expr) -> TokenStream {
        let span = expr.span();
        match expr {
            Expr::Lit(_) => quote!(#expr),
            Expr::Path(_) => {
                let Some(ident) = Self::single_ident(expr) else {
                    return self.unsupported(expr);
                };
                match self.resolve(ident) {
                    Some(Name::Data(_)) => quote_spanned!(span=> self.#ident),
                    Some(Name::Index) => quote!(#ident),
                    Some(Name::Latent(_)) => {
                        self.cx.error_spanned_by(
                            ident,
                            format!(
                                "latent `{ident}` cannot be an index, a count or a fixed bound"
                            ),
                        );
                        quote!(0)
                    }
                    None => quote!(0),
                }
            }
            Expr::Index(index) => {
                let Some(base) = Self::single_ident(&index.expr) else {
                    return self.unsupported(expr);
                };
                let position = self.position(&index.index);
                match self.resolve(base) {
                    Some(Name::Data(_)) => {
                        self.note_loop_index(base, &index.index);
                        quote_spanned!(span=> self.#base[#position])
                    }
                    Some(_) => {
                        self.cx.error_spanned_by(
                            base,
                            format!("`{base}` cannot be used inside an index or a count"),
                        );
                        quote!(0)
                    }
                    None => quote!(0),
                }
            }
            Expr::Binary(b) => {
                let (left, op, right) = (self.raw(&b.left), &b.op, self.raw(&b.right));
                quote_spanned!(span=> #left #op #right)
            }
            Expr::Unary(u) => {
                let (op, inner) = (&u.op, self.raw(&u.expr));
                quote_spanned!(span=> #op #inner)
            }
            Expr::Paren(p) => {
                let inner = self.raw(&p.expr);
                quote_spanned!(span=> (#inner))
            }
            Expr::MethodCall(call) => {
                let receiver = self.raw(&call.receiver);
                let method = &call.method;
                let args = call.args.iter().map(|a| self.raw(a));
                quote_spanned!(span=> #receiver.#method(#(#args),*))
            }
            other => self.unsupported(other),
        }
    }

    fn note_loop_index(&self, base: &Ident, index: &Expr) {
        if let (Some(i), Some(loop_index)) = (Self::single_ident(index), self.index) {
            if i == loop_index {
                self.indexed_by_loop.borrow_mut().insert(base.to_string());
            }
        }
    }

    fn unsupported(&self, expr: &Expr) -> TokenStream {
        self.cx.error_spanned_by(
            expr,
            "unsupported expression in a model attribute: use literals, data, latents, indexing, + - * /, and methods such as `.exp()`",
        );
        quote!(<__T as ::iwhvi::__private::Scalar>::constant(0.0))
    }
}

/// A data value of element type `elem` as a `__T` constant.
fn lift(value: TokenStream, elem: Elem, span: proc_macro2::Span) -> TokenStream {
    match elem {
        Elem::Real | Elem::Integer => {
            quote_spanned!(span=> <__T as ::iwhvi::__private::Scalar>::constant((#value) as f64))
        }
        Elem::Bool => {
            quote_spanned!(span=> <__T as ::iwhvi::__private::Scalar>::constant(if #value { 1.0 } else { 0.0 }))
        }
    }
}
