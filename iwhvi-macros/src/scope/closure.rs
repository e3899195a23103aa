//! Closures in attribute expressions: `|x| x * x` over scalars, bound by a
//! block's `let` (`{ let sq = |x| x * x; sq(mu) + sq(tau) }`) or called
//! where it is written (`(|x| x * x)(mu)`).
//!
//! A closure's parameters are scalars (`__T`; written bare or as
//! `x: f64`, the model language's word for a scalar) and its body is a
//! value lowered as any other, with the parameters bound like `let`s; it
//! captures the latents, data and `let`s around it. Its call lowers each
//! argument as a value. A vector or data argument needs a function
//! generic over `Scalar` instead, whose parameter types say what each
//! argument is.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Ident};

use super::Lower;

/// What a closure may be, for messages.
const CLOSURE: &str = "a closure in a model attribute takes scalars and returns one: `|x| x * x`, or `|x: f64, y: f64| x * y`; for vectors or data, write a function generic over `Scalar` (`fn f<T: Scalar>(v: &[T]) -> T`) and call it";

impl Lower<'_> {
    /// A closure as code (`|x: __T, …| -> __T { body }`) and its number of
    /// parameters; `None` with the mistake reported.
    pub(super) fn closure(&mut self, c: &syn::ExprClosure) -> Option<(TokenStream, usize)> {
        let span = c.span();
        if c.asyncness.is_some() || c.constness.is_some() || c.lifetimes.is_some() {
            self.cx.error_spanned_by(c, CLOSURE);
            return None;
        }
        if let syn::ReturnType::Type(_, ty) = &c.output {
            if !is_f64(ty) {
                self.cx.error_spanned_by(ty, CLOSURE);
                return None;
            }
        }
        let mut params = Vec::new();
        for input in &c.inputs {
            let (pat, ty) = match input {
                syn::Pat::Type(t) => (&*t.pat, Some(&*t.ty)),
                other => (other, None),
            };
            let ident = match pat {
                syn::Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => &p.ident,
                other => {
                    self.cx.error_spanned_by(other, CLOSURE);
                    return None;
                }
            };
            if let Some(ty) = ty.filter(|ty| !is_f64(ty)) {
                self.cx.error_spanned_by(ty, CLOSURE);
                return None;
            }
            params.push(ident.clone());
        }
        let depth = self.lets.len();
        self.lets.extend(params.iter().cloned());
        let body = self.value(&c.body);
        self.lets.truncate(depth);
        let body = body?;
        let arity = params.len();
        Some((
            quote_spanned!(span=> |#(#params: __T),*| -> __T { #body }),
            arity,
        ))
    }

    /// `let name = |…| …;` in a block: the statement, with `name` bound
    /// as a closure for the rest of the block.
    pub(super) fn let_closure(
        &mut self,
        name: &Ident,
        c: &syn::ExprClosure,
    ) -> Option<TokenStream> {
        let (closure, arity) = self.closure(c)?;
        self.closures.push((name.clone(), arity));
        Some(quote!(let #name = #closure;))
    }

    /// True when `call` calls a closure: one bound by `let`, or one
    /// written in place.
    pub(super) fn calls_closure(&self, call: &syn::ExprCall) -> bool {
        match strip(&call.func) {
            Expr::Closure(_) => true,
            func => super::single_ident(func)
                .is_some_and(|f| self.closures.iter().any(|(name, _)| name == f)),
        }
    }

    /// A closure's call: each argument a value.
    pub(super) fn closure_call(&mut self, call: &syn::ExprCall) -> Option<TokenStream> {
        let span = call.span();
        let (func, arity) = match strip(&call.func) {
            Expr::Closure(c) => {
                let (closure, arity) = self.closure(c)?;
                (quote!((#closure)), arity)
            }
            func => {
                let name = super::single_ident(func).expect("checked by `calls_closure`");
                let arity = self
                    .closures
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, a)| *a)
                    .expect("checked by `calls_closure`");
                (quote!(#name), arity)
            }
        };
        if call.args.len() != arity {
            self.cx.error_spanned_by(
                call,
                format!(
                    "this closure takes {arity} argument{}, but {} {} given",
                    if arity == 1 { "" } else { "s" },
                    call.args.len(),
                    if call.args.len() == 1 { "is" } else { "are" },
                ),
            );
            return None;
        }
        let args = self.all(call.args.iter(), Self::value)?;
        Some(quote_spanned!(span=> #func(#(#args),*)))
    }

    /// The message for a closure's name used as a value, if `ident` is one.
    pub(super) fn closure_misuse(&self, ident: &Ident) -> Option<String> {
        self.closures
            .iter()
            .any(|(name, _)| name == ident)
            .then(|| format!("`{ident}` is a closure: call it, e.g. `{ident}(x)`"))
    }
}

/// The expression inside parentheses and invisible groups.
fn strip(mut e: &Expr) -> &Expr {
    loop {
        match e {
            Expr::Paren(p) => e = &p.expr,
            Expr::Group(g) => e = &g.expr,
            other => return other,
        }
    }
}

fn is_f64(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Path(p) if p.qself.is_none() && p.path.is_ident("f64"))
}
