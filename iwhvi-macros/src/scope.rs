//! Names inside attributes and the expressions they appear in, shared by
//! both macros: a table of bindings (what each name of the struct stands
//! for), and the lowering of an expression over that table into the code
//! of the generated log density.
//!
//! An expression is read in one of two contexts. In *value* context it
//! becomes a scalar `__T`: locals (a model's latents, a guide's parameters,
//! mixing variables and latents) are scalars of the generated code, data
//! and literals are lifted with `Scalar::constant`, so that `f64` data and
//! dual-valued latents mix freely. In *raw* context (indices, counts,
//! lengths, fixed bounds) it stays plain Rust over the data: `county[i]`
//! inside `a[county[i]]` is an index, not a value.
//!
//! Lowering resolves every name and reports every mistake; an expression
//! with a mistake lowers to `None` (no placeholder code). What it learns on
//! the way (the names used, the data indexed by the loop index) is returned
//! in [`Uses`].

use std::collections::BTreeSet;

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{BinOp, Expr, Ident, Lit, UnOp};

use crate::ctxt::Ctxt;
use crate::family;

mod closure;
use crate::model::ast::{Elem, Shape};

/// What a name of the struct stands for.
#[derive(Clone)]
pub enum Meaning {
    /// A local of the generated code: a scalar `__T` or a vector of them.
    Local { scalar: bool },
    /// A matrix local (`DMatrix<__T>`): a correlation Cholesky factor
    /// latent, indexed `L[(i, j)]`.
    LocalMatrix,
    /// A field of `self` holding data.
    Data(Shape),
    /// A `#[factor]` term: not a value.
    Factor,
    /// A derived quantity: not a value inside the model.
    Derived,
    /// A field whose role attribute has a mistake (reported already): its
    /// name resolves to nothing, silently.
    Failed,
    /// A model's learned parameter (`#[param]`): a local of the generated
    /// code like a latent (a scalar `__T` or a vector of them), visible in
    /// every attribute whatever its position, never in raw context.
    Param { scalar: bool },
    /// A model's learned matrix (`#[param(rows = …, cols = …)]`): a
    /// `DMatrix<__T>` local like a matrix latent, visible whatever its
    /// position, never in raw context.
    ParamMatrix,
    /// A transformed value (`#[transformed]`, Stan's transformed
    /// parameters): a local of the generated code like a latent, computed
    /// from the fields above it, visible to the attributes below it.
    Transformed { scalar: bool },
    /// A name the struct knows of but cannot read (a guide given a name of
    /// its model's `#[transformed]` values): the message says what to
    /// write instead.
    Unreadable(String),
}

/// One name and its meaning; its place in the table is its position in
/// declaration order.
pub struct Binding {
    pub ident: Ident,
    pub meaning: Meaning,
}

/// The names of one struct.
pub struct Bindings {
    pub entries: Vec<Binding>,
    /// What names are looked up among, for messages.
    pub vocabulary: &'static str,
}

impl Bindings {
    /// True for a name of a field (not a batch's rows, which are bound
    /// as [`Meaning::Unreadable`] only to explain their misuse): what an
    /// attribute's own index must not shadow.
    pub fn is_field(&self, ident: &Ident) -> bool {
        self.entries
            .iter()
            .any(|b| b.ident == *ident && !matches!(b.meaning, Meaning::Unreadable(_)))
    }

    fn find(&self, name: &str) -> Option<(usize, &Binding)> {
        self.entries
            .iter()
            .enumerate()
            .find(|(_, b)| b.ident == name)
    }

    /// A scope over these names with locals before `visible` declared.
    pub fn scope<'a>(&'a self, visible: usize, index: Option<&'a Ident>) -> Scope<'a> {
        Scope {
            bindings: self,
            visible,
            index,
            locals_allowed: true,
        }
    }

    /// A scope over the data alone (lengths and fixed bounds).
    pub fn data_scope(&self) -> Scope<'_> {
        self.data_scope_at(None)
    }

    /// A scope over the data alone and an element's index (per-element
    /// bounds of a vector latent).
    pub fn data_scope_at<'a>(&'a self, index: Option<&'a Ident>) -> Scope<'a> {
        Scope {
            bindings: self,
            visible: 0,
            index,
            locals_allowed: false,
        }
    }
}

/// Where an expression is read.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    bindings: &'a Bindings,
    /// Locals declared before this position are visible.
    visible: usize,
    /// The index variable of a `for i`.
    index: Option<&'a Ident>,
    /// Whether locals may appear (not in lengths or fixed bounds).
    locals_allowed: bool,
}

/// What lowering learned about the names in an expression.
#[derive(Default)]
pub struct Uses {
    /// Every name resolved.
    pub names: BTreeSet<String>,
    /// Data vectors indexed directly by the loop index (their lengths must
    /// equal the observed field's).
    pub indexed_by_loop: BTreeSet<String>,
}

/// A name, resolved.
enum Name<'a> {
    Local { scalar: bool },
    LocalMatrix,
    Data(&'a Shape),
    Index,
}

/// Lowers expressions in one scope, reporting into `cx` and recording
/// what it resolves in `uses`.
pub struct Lower<'a> {
    pub scope: Scope<'a>,
    pub cx: &'a Ctxt,
    pub uses: Uses,
    /// The names bound by `let` in the blocks being lowered (scalars),
    /// innermost last.
    lets: Vec<Ident>,
    /// The closures bound by `let` in the blocks being lowered, with
    /// their numbers of parameters, innermost last (`closure.rs`).
    closures: Vec<(Ident, usize)>,
    /// Lowering the condition of an `if` in value context: its data reads
    /// record an out-of-range position in the `if`'s flag (`value_if`),
    /// and `true` once one has.
    guarded: Option<bool>,
}

/// Why a learned parameter cannot appear in raw context.
fn param_in_raw(name: &str) -> String {
    format!(
        "learned parameter `{name}` cannot be an index, a count, a length, a bound or an initial value: these are fixed by the data, and `{name}` changes during the fit; use a #[data] field here"
    )
}

const UNSUPPORTED_RAW: &str = "unsupported expression in an index, a count, a length or a fixed bound: use numbers, data, indexing, + - * / %, and methods such as `.len()`";

const UNSUPPORTED: &str = "unsupported expression in a model attribute: use literals, data, latents, indexing, + - * /, methods such as `.exp()`, `if`/`else`, blocks with `let`, closures over scalars, and calls of functions generic over `Scalar`";

impl<'a> Lower<'a> {
    pub fn new(scope: Scope<'a>, cx: &'a Ctxt) -> Self {
        Self {
            scope,
            cx,
            uses: Uses::default(),
            lets: Vec::new(),
            closures: Vec::new(),
            guarded: None,
        }
    }

    fn resolve(&mut self, ident: &Ident) -> Option<Name<'a>> {
        if self.lets.iter().any(|l| l == ident) {
            return Some(Name::Local { scalar: true });
        }
        if let Some(message) = self.closure_misuse(ident) {
            self.cx.error_spanned_by(ident, message);
            return None;
        }
        if self.scope.index == Some(ident) {
            return Some(Name::Index);
        }
        let name = ident.to_string();
        self.uses.names.insert(name.clone());
        let Some((position, binding)) = self.scope.bindings.find(&name) else {
            self.not_found(ident, &name);
            return None;
        };
        let message = match &binding.meaning {
            Meaning::Data(shape) => return Some(Name::Data(shape)),
            Meaning::Failed => return None,
            Meaning::Local { .. } | Meaning::LocalMatrix if !self.scope.locals_allowed => format!(
                "latent `{name}` cannot appear here: lengths and fixed bounds are computed from data alone"
            ),
            Meaning::Local { .. } | Meaning::LocalMatrix if position >= self.scope.visible => {
                format!(
                    "latent `{name}` is used before it is declared: move the field `{name}` above this one"
                )
            }
            Meaning::Local { scalar } => return Some(Name::Local { scalar: *scalar }),
            Meaning::Param { .. } if !self.scope.locals_allowed => param_in_raw(&name),
            Meaning::Param { scalar } => return Some(Name::Local { scalar: *scalar }),
            Meaning::LocalMatrix => return Some(Name::LocalMatrix),
            Meaning::ParamMatrix if !self.scope.locals_allowed => param_in_raw(&name),
            Meaning::ParamMatrix => return Some(Name::LocalMatrix),
            Meaning::Factor => format!("`{name}` is a #[factor] term, not a value"),
            Meaning::Unreadable(message) => message.clone(),
            Meaning::Derived => format!(
                "`{name}` is a derived quantity: compute it from the latents it is derived from"
            ),
            Meaning::Transformed { scalar } => {
                let (visible, allowed) = (self.scope.visible, self.scope.locals_allowed);
                match crate::model::transformed::misuse(&name, position, visible, allowed) {
                    Some(message) => message,
                    None => return Some(Name::Local { scalar: *scalar }),
                }
            }
        };
        self.cx.error_spanned_by(ident, message);
        None
    }

    fn not_found(&self, ident: &Ident, name: &str) {
        let vocabulary = self.scope.bindings.vocabulary;
        let message = if self.scope.index.is_none() && name.len() == 1 {
            format!(
                "cannot find `{name}` among {vocabulary}; an index such as `{name}` exists only with `for {name}` over a vector"
            )
        } else {
            let mut candidates: Vec<String> = self
                .scope
                .bindings
                .entries
                .iter()
                .map(|b| b.ident.to_string())
                .collect();
            candidates.extend(self.scope.index.map(Ident::to_string));
            let hint = family::closest(name, candidates.iter().map(String::as_str))
                .map_or_else(String::new, |c| format!("; did you mean `{c}`?"));
            format!("cannot find `{name}` among {vocabulary}{hint}")
        };
        self.cx.error_spanned_by(ident, message);
    }

    fn unsupported(&self, expr: &Expr) -> Option<TokenStream> {
        self.cx.error_spanned_by(expr, UNSUPPORTED);
        None
    }

    /// The expression as a `__T` scalar.
    pub fn value(&mut self, expr: &Expr) -> Option<TokenStream> {
        let span = expr.span();
        match expr {
            Expr::Lit(lit) if matches!(lit.lit, Lit::Float(_) | Lit::Int(_)) => Some(
                quote_spanned!(span=> <__T as ::iwhvi::__private::Scalar>::constant((#lit) as f64)),
            ),
            Expr::Path(_) => match single_ident(expr) {
                Some(ident) => self.value_name(ident, span),
                None => self.unsupported(expr),
            },
            Expr::Index(index) => self.value_index(expr, index),
            Expr::Binary(b)
                if matches!(
                    b.op,
                    BinOp::Add(_) | BinOp::Sub(_) | BinOp::Mul(_) | BinOp::Div(_)
                ) =>
            {
                let (left, right) = (self.value(&b.left), self.value(&b.right));
                let (left, op, right) = (left?, &b.op, right?);
                Some(quote_spanned!(span=> #left #op #right))
            }
            Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => {
                let inner = self.value(&u.expr)?;
                Some(quote_spanned!(span=> -#inner))
            }
            Expr::Paren(p) => {
                let inner = self.value(&p.expr)?;
                Some(quote_spanned!(span=> (#inner)))
            }
            Expr::Group(g) => self.value(&g.expr),
            Expr::MethodCall(call) if single_ident(&call.receiver).is_some_and(|r| r == "self") => {
                // A helper method of the model (`fn f<T: Scalar>(&self, …) -> T`):
                // latents pass as scalars or slices, data and indices as they are.
                let method = &call.method;
                let args = self.all(call.args.iter(), Self::helper_argument)?;
                Some(quote_spanned!(span=> self.#method(#(#args),*)))
            }
            Expr::MethodCall(call) => {
                // `(a / b).exp()` becomes `Scalar::exp(a / b)`: the receiver's
                // parentheses would be unused in argument position.
                let receiver = match &*call.receiver {
                    Expr::Paren(p) => self.value(&p.expr),
                    other => self.value(other),
                };
                let method = &call.method;
                let args = self.all(call.args.iter(), |this, a| match a {
                    // Integer literals are exponents (`powi(2)`), not values.
                    Expr::Lit(lit) if matches!(lit.lit, Lit::Int(_)) => Some(quote!(#lit)),
                    other => this.value(other),
                });
                let (receiver, args) = (receiver?, args?);
                Some(
                    quote_spanned!(span=> ::iwhvi::__private::Scalar::#method(#receiver #(, #args)*)),
                )
            }
            Expr::If(e) => self.value_if(e),
            Expr::Block(b) if b.label.is_none() => self.value_block(&b.block),
            Expr::Call(call) if self.calls_closure(call) => self.closure_call(call),
            Expr::Call(call) if matches!(&*call.func, Expr::Path(p) if p.qself.is_none()) => {
                // A free function generic over the scalar
                // (`fn f<T: Scalar>(…) -> T`): arguments as a helper
                // method's.
                let func = &call.func;
                let args = self.all(call.args.iter(), Self::helper_argument)?;
                Some(quote_spanned!(span=> #func(#(#args),*)))
            }
            other => self.unsupported(other),
        }
    }

    /// `if condition { a } else { b }` (and `else if`): both branches are
    /// values; the condition compares values (on their `f64` parts) or data.
    fn value_if(&mut self, e: &syn::ExprIf) -> Option<TokenStream> {
        let span = e.if_token.span;
        let Some((_, otherwise)) = &e.else_branch else {
            self.cx.error_spanned_by(
                e.if_token,
                "an `if` in a model attribute is a value: give it an `else` branch",
            );
            return None;
        };
        // A data read out of range in the condition (`flag[idx[i]]` past
        // `flag`'s end, under another branch, where `new` cannot check
        // it) would read `false` or the integer maximum and choose a
        // branch silently: it makes the `if` NaN instead, so that the term
        // is not finite and `fit` names it (`FitError::InvalidStart`).
        // An `if` inside another `if`'s condition shares that condition's
        // flag (its reads flag the outer `if` too), so only the outermost
        // condition declares it.
        let outer = self.guarded.replace(false);
        let condition = self.condition(&e.cond);
        let guarded = std::mem::replace(&mut self.guarded, outer) == Some(true);
        if let (true, Some(outer_guarded)) = (guarded, self.guarded.as_mut()) {
            *outer_guarded = true;
        }
        let then = self.value_block(&e.then_branch);
        let otherwise = self.value(otherwise);
        let (condition, then, otherwise) = (condition?, then?, otherwise?);
        if !guarded {
            return Some(quote_spanned!(span=> if #condition { #then } else { #otherwise }));
        }
        let flag = outer
            .is_none()
            .then(|| quote!(let __iwhvi_out_of_range = ::core::cell::Cell::new(false);));
        Some(quote_spanned!(span=> {
            #flag
            let __iwhvi_condition: bool = #condition;
            if __iwhvi_out_of_range.get() {
                <__T as ::iwhvi::__private::Scalar>::constant(f64::NAN)
            } else if __iwhvi_condition {
                #then
            } else {
                #otherwise
            }
        }))
    }

    /// A block: `let name = value;` statements, then the block's value.
    fn value_block(&mut self, block: &syn::Block) -> Option<TokenStream> {
        let (depth, closures) = (self.lets.len(), self.closures.len());
        let mut statements = Vec::new();
        let mut result = None;
        let mut failed = false;
        for (k, stmt) in block.stmts.iter().enumerate() {
            let last = k + 1 == block.stmts.len();
            match stmt {
                syn::Stmt::Local(local) => {
                    let name = match &local.pat {
                        syn::Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
                            p.ident.clone()
                        }
                        other => {
                            // The rest of the block would only repeat the
                            // mistake (names it never bound).
                            self.cx.error_spanned_by(
                                other,
                                "a `let` in a model attribute binds one name: `let name = value;`",
                            );
                            failed = true;
                            break;
                        }
                    };
                    let Some(init) = &local.init else {
                        self.cx.error_spanned_by(
                            local,
                            "a `let` in a model attribute needs a value: `let name = value;`",
                        );
                        failed = true;
                        break;
                    };
                    if let Expr::Closure(c) = &*init.expr {
                        match self.let_closure(&name, c) {
                            Some(statement) => statements.push(statement),
                            None => failed = true,
                        }
                        continue;
                    }
                    match self.value(&init.expr) {
                        Some(value) => {
                            statements.push(quote!(let #name: __T = #value;));
                            self.lets.push(name);
                        }
                        None => failed = true,
                    }
                }
                syn::Stmt::Expr(e, None) if last => {
                    // A last expression with a mistake (reported) is still
                    // the block's value: no second error.
                    result = self.value(e);
                    failed |= result.is_none();
                }
                other => {
                    self.cx.error_spanned_by(
                        other,
                        "a block in a model attribute holds `let name = value;` statements, then its value",
                    );
                    failed = true;
                }
            }
        }
        self.lets.truncate(depth);
        self.closures.truncate(closures);
        if failed {
            return None;
        }
        let Some(result) = result else {
            self.cx
                .error_spanned_by(block, "a block in a model attribute ends with its value");
            return None;
        };
        Some(quote!({ #(#statements)* #result }))
    }

    /// The condition of an `if`: comparisons of values (on their `f64`
    /// parts) joined by `&&`, `||` and `!`, or data-only booleans.
    fn condition(&mut self, expr: &Expr) -> Option<TokenStream> {
        let span = expr.span();
        match expr {
            Expr::Paren(p) => {
                let inner = self.condition(&p.expr)?;
                Some(quote_spanned!(span=> (#inner)))
            }
            Expr::Unary(u) if matches!(u.op, UnOp::Not(_)) => {
                let inner = self.condition(&u.expr)?;
                Some(quote_spanned!(span=> !#inner))
            }
            Expr::Binary(b) if matches!(b.op, BinOp::And(_) | BinOp::Or(_)) => {
                let (left, right) = (self.condition(&b.left), self.condition(&b.right));
                let (left, op, right) = (left?, &b.op, right?);
                Some(quote_spanned!(span=> #left #op #right))
            }
            Expr::Binary(b)
                if matches!(
                    b.op,
                    BinOp::Lt(_)
                        | BinOp::Le(_)
                        | BinOp::Gt(_)
                        | BinOp::Ge(_)
                        | BinOp::Eq(_)
                        | BinOp::Ne(_)
                ) =>
            {
                if !self.reads_local(&b.left) && !self.reads_local(&b.right) {
                    // Data and the index: plain Rust (`group[i] == 1`).
                    let (left, right) = (self.raw(&b.left), self.raw(&b.right));
                    let (left, op, right) = (left?, &b.op, right?);
                    return Some(quote_spanned!(span=> #left #op #right));
                }
                // Each side is a function's argument: its parentheses would
                // only draw `unused_parens` on the user's tokens.
                fn unparen(mut e: &Expr) -> &Expr {
                    while let Expr::Paren(p) = e {
                        e = &p.expr;
                    }
                    e
                }
                let (left, right) = (self.value(unparen(&b.left)), self.value(unparen(&b.right)));
                let (left, op, right) = (left?, &b.op, right?);
                Some(
                    quote_spanned!(span=> ::iwhvi::__private::Scalar::value(#left) #op ::iwhvi::__private::Scalar::value(#right)),
                )
            }
            other => self.raw(other),
        }
    }

    /// True when an expression reads a local (a latent or a `let`).
    fn reads_local(&self, expr: &Expr) -> bool {
        first_mention(expr, |ident| {
            self.lets.iter().any(|l| l == ident)
                || (self.scope.index != Some(ident)
                    && matches!(
                        self.scope.bindings.find(&ident.to_string()),
                        Some((
                            _,
                            Binding {
                                meaning: Meaning::Local { .. }
                                    | Meaning::Param { .. }
                                    | Meaning::Transformed { .. }
                                    | Meaning::LocalMatrix
                                    | Meaning::ParamMatrix,
                                ..
                            }
                        ))
                    ))
        })
        .is_some()
    }

    /// Lowers every item, reporting the mistakes of all of them.
    fn all<'e>(
        &mut self,
        items: impl Iterator<Item = &'e Expr>,
        mut each: impl FnMut(&mut Self, &'e Expr) -> Option<TokenStream>,
    ) -> Option<Vec<TokenStream>> {
        let lowered: Vec<Option<TokenStream>> = items.map(|e| each(self, e)).collect();
        lowered.into_iter().collect()
    }

    fn value_name(&mut self, ident: &Ident, span: proc_macro2::Span) -> Option<TokenStream> {
        let message = match self.resolve(ident)? {
            Name::Local { scalar: true } => return Some(quote!(#ident)),
            Name::Local { scalar: false } => {
                format!("`{ident}` is a vector latent: index it, e.g. `{ident}[i]`")
            }
            Name::LocalMatrix => {
                let what = self.matrix_kind(ident);
                format!("`{ident}` is {what}: index it, e.g. `{ident}[(i, j)]`")
            }
            Name::Data(Shape::Scalar(elem)) => return Some(lift(quote!(self.#ident), *elem, span)),
            Name::Data(_) => format!("`{ident}` is a vector of data: index it, e.g. `{ident}[i]`"),
            Name::Index => return Some(lift(quote!(#ident), Elem::Integer, span)),
        };
        self.cx.error_spanned_by(ident, message);
        None
    }

    fn value_index(&mut self, expr: &Expr, index: &syn::ExprIndex) -> Option<TokenStream> {
        let span = expr.span();
        let Some(base) = single_ident(&index.expr) else {
            return self.unsupported(expr);
        };
        let position = self.position(&index.index);
        // A position out of range (from data, `a[group[i]]`) reads NaN
        // rather than panicking: the term is then NaN and
        // `first_invalid_term` names it. (Literal positions into data are
        // checked by `new`, `model/literal_access.rs`.)
        let nan = match self.guarded.as_mut() {
            // In an `if`'s condition a NaN would compare `false` and
            // choose a branch silently: it also flags the `if` as NaN.
            Some(guarded) => {
                *guarded = true;
                quote!({
                    __iwhvi_out_of_range.set(true);
                    <__T as ::iwhvi::__private::Scalar>::constant(f64::NAN)
                })
            }
            None => quote!(<__T as ::iwhvi::__private::Scalar>::constant(f64::NAN)),
        };
        match self.resolve(base)? {
            Name::Local { .. } => {
                let position = position?;
                Some(quote_spanned!(span=> #base.get(#position).copied().unwrap_or_else(|| #nan)))
            }
            Name::LocalMatrix if matches!(&*index.index, Expr::Tuple(t) if t.elems.len() == 2) => {
                let position = position?;
                Some(quote_spanned!(span=> #base.get(#position).copied().unwrap_or_else(|| #nan)))
            }
            Name::LocalMatrix => {
                let what = self.matrix_kind(base);
                self.cx.error_spanned_by(
                    &index.index,
                    format!(
                        "`{base}` is {what}: index it by row and column, e.g. `{base}[(i, j)]`"
                    ),
                );
                None
            }
            Name::Data(shape) => {
                let position = position?;
                self.note_loop_index(base, &index.index);
                let each = lift(quote!(*__v), shape.elem(), span);
                Some(quote_spanned!(span=> match self.#base.get(#position) {
                    ::core::option::Option::Some(__v) => #each,
                    ::core::option::Option::None => #nan,
                }))
            }
            Name::Index => {
                self.cx
                    .error_spanned_by(base, format!("the index `{base}` cannot be indexed"));
                None
            }
        }
    }

    /// A whole vector as a `Vec<__T>`: a vector local, a data vector
    /// lifted to the scalar, a row or column of a data matrix
    /// (`x.row(0)`, `x.column(j)`), a slice of one of these (`&beta[1..]`,
    /// `y[..n]`), a vector written out (`[a, 2.0 * b]`), or elementwise
    /// `+ - * /` of vectors and scalars (`x.row(1) * 0.5 + mu`). Two
    /// vectors of different lengths combine to an empty vector, which no
    /// vector family accepts (its log density is then -∞).
    pub fn vector(&mut self, expr: &Expr) -> Option<TokenStream> {
        let span = expr.span();
        match expr {
            Expr::Reference(r) if r.mutability.is_none() => return self.vector(&r.expr),
            Expr::Paren(p) => return self.vector(&p.expr),
            Expr::Group(g) => return self.vector(&g.expr),
            Expr::Array(a) => {
                let items = self.all(a.elems.iter(), Self::value)?;
                return Some(quote_spanned!(span=> ::std::vec![#(#items),*]));
            }
            Expr::Index(index) if matches!(&*index.index, Expr::Range(_)) => {
                return self.vector_slice(expr, index);
            }
            Expr::MethodCall(call)
                if (call.method == "row" || call.method == "column") && call.args.len() == 1 =>
            {
                return self.matrix_line(expr, call);
            }
            Expr::Binary(b)
                if matches!(
                    b.op,
                    BinOp::Add(_) | BinOp::Sub(_) | BinOp::Mul(_) | BinOp::Div(_)
                ) && (self.is_vector(&b.left) || self.is_vector(&b.right)) =>
            {
                return self.vector_arithmetic(b);
            }
            _ => {}
        }
        let Some(ident) = single_ident(expr) else {
            self.cx.error_spanned_by(
                expr,
                "a vector parameter is a vector latent, a data vector, a row or column of a data matrix (`x.row(i)`, `x.column(j)`), a slice of one (`&v[1..]`), a vector written out (`[a, b]`) or + - * / of these and scalars",
            );
            return None;
        };
        match self.resolve(ident)? {
            Name::Local { scalar: false } => Some(quote_spanned!(span=> #ident.to_vec())),
            Name::Data(shape) if !shape.is_scalar() && !matches!(shape, Shape::Matrix) => {
                let each = lift(quote!(*__v), shape.elem(), span);
                Some(
                    quote_spanned!(span=> self.#ident.iter().map(|__v| #each).collect::<::std::vec::Vec<__T>>()),
                )
            }
            Name::Data(Shape::Matrix) => {
                self.cx.error_spanned_by(
                    ident,
                    format!("`{ident}` is a matrix, where a vector is expected: take a row or a column, e.g. `{ident}.row(0)`"),
                );
                None
            }
            Name::LocalMatrix => {
                let what = self.matrix_kind(ident);
                self.cx.error_spanned_by(
                    ident,
                    format!("`{ident}` is {what}, where a vector is expected"),
                );
                None
            }
            _ => {
                self.cx.error_spanned_by(
                    ident,
                    format!("`{ident}` is a scalar, where a vector is expected"),
                );
                None
            }
        }
    }

    /// True when an expression is vector-valued in a vector argument (by
    /// its form and the names it reads; nothing is reported).
    fn is_vector(&self, expr: &Expr) -> bool {
        match expr {
            Expr::Reference(r) => self.is_vector(&r.expr),
            Expr::Paren(p) => self.is_vector(&p.expr),
            Expr::Group(g) => self.is_vector(&g.expr),
            Expr::Array(_) => true,
            Expr::Index(index) => matches!(&*index.index, Expr::Range(_)),
            Expr::MethodCall(call) => call.method == "row" || call.method == "column",
            Expr::Binary(b) => self.is_vector(&b.left) || self.is_vector(&b.right),
            _ => single_ident(expr).is_some_and(|ident| {
                self.scope.index != Some(ident)
                    && matches!(
                        self.scope.bindings.find(&ident.to_string()),
                        Some((
                            _,
                            Binding {
                                meaning: Meaning::Local { scalar: false }
                                    | Meaning::Param { scalar: false }
                                    | Meaning::Transformed { scalar: false }
                                    | Meaning::Data(Shape::Array(..) | Shape::Vec(_)),
                                ..
                            }
                        ))
                    )
            }),
        }
    }

    /// `left op right` elementwise, with a scalar side broadcast.
    fn vector_arithmetic(&mut self, b: &syn::ExprBinary) -> Option<TokenStream> {
        let (left_vector, right_vector) = (self.is_vector(&b.left), self.is_vector(&b.right));
        let side = |this: &mut Self, e: &Expr, vector: bool| {
            if vector {
                this.vector(e)
            } else {
                this.value(e)
            }
        };
        let left = side(self, &b.left, left_vector);
        let right = side(self, &b.right, right_vector);
        let (left, op, right) = (left?, &b.op, right?);
        let collect = quote!(.collect::<::std::vec::Vec<__T>>());
        Some(match (left_vector, right_vector) {
            (true, true) => quote! {{
                let (__a, __b): (::std::vec::Vec<__T>, ::std::vec::Vec<__T>) = (#left, #right);
                if __a.len() == __b.len() {
                    __a.iter().zip(&__b).map(|(&__x, &__y)| __x #op __y)#collect
                } else {
                    ::std::vec::Vec::new()
                }
            }},
            (true, false) => quote! {{
                let __s: __T = #right;
                (#left).into_iter().map(|__x| __x #op __s)#collect
            }},
            _ => quote! {{
                let __s: __T = #left;
                (#right).into_iter().map(|__x| __s #op __x)#collect
            }},
        })
    }

    /// `v[a..b]` (and `..=`, open ends) of a vector latent or a data vector.
    fn vector_slice(&mut self, expr: &Expr, index: &syn::ExprIndex) -> Option<TokenStream> {
        let span = expr.span();
        let Expr::Range(range) = &*index.index else {
            unreachable!("checked by the caller")
        };
        let Some(base) = single_ident(&index.expr) else {
            self.cx.error_spanned_by(
                &index.expr,
                "slice a vector latent or a data vector by name, e.g. `beta[1..]`",
            );
            return None;
        };
        let start = range.start.as_ref().map(|e| self.raw_index(e));
        let end = range.end.as_ref().map(|e| self.raw_index(e));
        let limits = &range.limits;
        let resolved = self.resolve(base);
        let (start, end) = (
            start.map_or(Some(None), |s| s.map(Some))?,
            end.map_or(Some(None), |e| e.map(Some))?,
        );
        let range = quote!(#start #limits #end);
        // A slice past the end (or a start after its end) is no vector
        // rather than a panic: the family that takes it rejects it, so the
        // term is -inf and `first_invalid_term` names it.
        match resolved? {
            Name::Local { scalar: false } => Some(
                quote_spanned!(span=> #base.get(#range).map_or_else(::std::vec::Vec::new, |__s| __s.to_vec())),
            ),
            Name::Data(shape) if matches!(shape, Shape::Array(..) | Shape::Vec(_)) => {
                let each = lift(quote!(*__v), shape.elem(), span);
                Some(
                    quote_spanned!(span=> self.#base.get(#range).unwrap_or(&[]).iter().map(|__v| #each).collect::<::std::vec::Vec<__T>>()),
                )
            }
            _ => {
                self.cx.error_spanned_by(
                    base,
                    format!("`{base}` cannot be sliced: slice a vector latent or a data vector"),
                );
                None
            }
        }
    }

    /// `x.row(i)` or `x.column(j)` of a data matrix, lifted to the scalar.
    fn matrix_line(&mut self, expr: &Expr, call: &syn::ExprMethodCall) -> Option<TokenStream> {
        let span = expr.span();
        let at = self.raw_index(&call.args[0]);
        let base = single_ident(&call.receiver);
        if let Some(line) = self.param_matrix_line(expr, call) {
            return line;
        }
        let is_matrix = base.is_some_and(|b| {
            self.scope.index != Some(b)
                && matches!(
                    self.scope.bindings.find(&b.to_string()),
                    Some((
                        _,
                        Binding {
                            meaning: Meaning::Data(Shape::Matrix),
                            ..
                        }
                    ))
                )
        });
        let Some(base) = base.filter(|_| is_matrix) else {
            self.cx.error_spanned_by(
                &call.receiver,
                format!(
                    "`.{}(…)` takes a row or a column of a `DMatrix<f64>` data field",
                    call.method
                ),
            );
            return None;
        };
        self.uses.names.insert(base.to_string());
        let at = at?;
        let constant = quote!(<__T as ::iwhvi::__private::Scalar>::constant);
        // A row or column past the end is no vector (as a slice past the
        // end), which the family that takes it rejects.
        Some(if call.method == "row" {
            quote_spanned!(span=> { let __r = #at; let __n = if __r < self.#base.nrows() { self.#base.ncols() } else { 0 }; (0..__n).map(|__c| #constant(self.#base[(__r, __c)])).collect::<::std::vec::Vec<__T>>() })
        } else {
            quote_spanned!(span=> { let __c = #at; let __n = if __c < self.#base.ncols() { self.#base.nrows() } else { 0 }; (0..__n).map(|__r| #constant(self.#base[(__r, __c)])).collect::<::std::vec::Vec<__T>>() })
        })
    }

    /// "a learned matrix" or "a matrix latent", for messages.
    fn matrix_kind(&self, ident: &Ident) -> &'static str {
        match self.scope.bindings.find(&ident.to_string()) {
            Some((_, b)) if matches!(b.meaning, Meaning::ParamMatrix) => "a learned matrix",
            _ => "a matrix latent",
        }
    }

    /// `w.row(i)` or `w.column(j)` of a learned matrix (a `DMatrix<__T>`
    /// local), or `None` when the receiver is not one.
    fn param_matrix_line(
        &mut self,
        expr: &Expr,
        call: &syn::ExprMethodCall,
    ) -> Option<Option<TokenStream>> {
        let base = single_ident(&call.receiver)?;
        if self.scope.index == Some(base)
            || !matches!(
                self.scope.bindings.find(&base.to_string()),
                Some((
                    _,
                    Binding {
                        meaning: Meaning::ParamMatrix,
                        ..
                    }
                ))
            )
        {
            return None;
        }
        let span = expr.span();
        let at = self.raw_index(&call.args[0]);
        let resolved = self.resolve(base);
        let (Some(at), Some(_)) = (at, resolved) else {
            return Some(None);
        };
        // A row or column past the end is no vector, as a data matrix's.
        Some(Some(if call.method == "row" {
            quote_spanned!(span=> { let __r = #at; let __n = if __r < #base.nrows() { #base.ncols() } else { 0 }; (0..__n).map(|__c| #base[(__r, __c)]).collect::<::std::vec::Vec<__T>>() })
        } else {
            quote_spanned!(span=> { let __c = #at; let __n = if __c < #base.ncols() { #base.nrows() } else { 0 }; (0..__n).map(|__r| #base[(__r, __c)]).collect::<::std::vec::Vec<__T>>() })
        }))
    }

    /// A matrix as a `DMatrix<__T>`: a data matrix lifted to the scalar, a
    /// matrix latent, or Stan's `diag_pre_multiply(v, M)` (`diag(v) · M`,
    /// the Cholesky factor of a covariance from scales `v` and a
    /// correlation factor `M`). A vector whose length is not `M`'s number
    /// of rows gives an empty matrix, which no family accepts (its log
    /// density is then -∞).
    pub fn matrix(&mut self, expr: &Expr) -> Option<TokenStream> {
        let span = expr.span();
        match expr {
            Expr::Paren(p) => return self.matrix(&p.expr),
            Expr::Group(g) => return self.matrix(&g.expr),
            Expr::Call(call)
                if single_ident(&call.func).is_some_and(|f| f == "diag_pre_multiply")
                    && call.args.len() == 2 =>
            {
                let (scales, factor) = (self.vector(&call.args[0]), self.matrix(&call.args[1]));
                let (scales, factor) = (scales?, factor?);
                return Some(quote_spanned!(span=> {
                    let __v: ::std::vec::Vec<__T> = #scales;
                    let mut __m: ::iwhvi::__private::nalgebra::DMatrix<__T> = #factor;
                    if __v.len() == __m.nrows() {
                        for __r in 0..__m.nrows() {
                            for __c in 0..__m.ncols() {
                                __m[(__r, __c)] = __v[__r] * __m[(__r, __c)];
                            }
                        }
                        __m
                    } else {
                        ::iwhvi::__private::nalgebra::DMatrix::from_element(0, 0, <__T as ::iwhvi::__private::Scalar>::constant(0.0))
                    }
                }));
            }
            _ => {}
        }
        if let Some(ident) = single_ident(expr) {
            let is_local_matrix = self.scope.index != Some(ident)
                && matches!(
                    self.scope.bindings.find(&ident.to_string()),
                    Some((
                        _,
                        Binding {
                            meaning: Meaning::LocalMatrix | Meaning::ParamMatrix,
                            ..
                        }
                    ))
                );
            if is_local_matrix {
                self.resolve(ident)?;
                return Some(quote_spanned!(span=> #ident.clone()));
            }
            let scope_has_matrix = matches!(
                self.scope.bindings.find(&ident.to_string()),
                Some((
                    _,
                    Binding {
                        meaning: Meaning::Data(Shape::Matrix),
                        ..
                    }
                ))
            );
            if scope_has_matrix && self.scope.index != Some(ident) {
                self.uses.names.insert(ident.to_string());
                return Some(
                    quote_spanned!(span=> self.#ident.map(<__T as ::iwhvi::__private::Scalar>::constant)),
                );
            }
        }
        self.cx.error_spanned_by(
            expr,
            "a matrix parameter is a `DMatrix<f64>` data field, a matrix latent, a learned matrix or `diag_pre_multiply(scales, matrix)`",
        );
        None
    }

    /// An argument of a helper method: a local as itself (a vector as a
    /// slice), a data field by reference, an index or count as it is, any
    /// other expression as a `__T` value.
    pub(crate) fn helper_argument(&mut self, expr: &Expr) -> Option<TokenStream> {
        if let Some(ident) = single_ident(expr) {
            return Some(match self.resolve(ident)? {
                Name::Local { scalar: true } | Name::Index => quote!(#ident),
                Name::Local { scalar: false } => quote!(&#ident[..]),
                Name::LocalMatrix => quote!(&#ident),
                Name::Data(_) => quote!(&self.#ident),
            });
        }
        match expr {
            Expr::Lit(lit) if matches!(lit.lit, Lit::Int(_)) => Some(quote!(#lit)),
            other => self.value(other),
        }
    }

    /// What goes inside `[…]`: a `usize`, or a `(row, column)` pair of
    /// them for a matrix.
    fn position(&mut self, expr: &Expr) -> Option<TokenStream> {
        match expr {
            Expr::Tuple(t) if t.elems.len() == 2 => {
                let (row, column) = (self.raw_index(&t.elems[0]), self.raw_index(&t.elems[1]));
                let (row, column) = (row?, column?);
                Some(quote!((#row, #column)))
            }
            other => self.raw_index(other),
        }
    }

    /// An index expression, as a `usize`.
    fn raw_index(&mut self, expr: &Expr) -> Option<TokenStream> {
        let raw = self.raw(expr)?;
        // Not `as usize`: a negative or NaN position is past every end.
        Some(quote_spanned!(expr.span()=> ::iwhvi::__private::as_index(#raw)))
    }

    /// The expression as plain Rust over the data (indices, counts,
    /// lengths, fixed bounds).
    pub fn raw(&mut self, expr: &Expr) -> Option<TokenStream> {
        let span = expr.span();
        match expr {
            Expr::Lit(lit) if matches!(lit.lit, Lit::Float(_) | Lit::Int(_)) => Some(quote!(#expr)),
            Expr::Path(_) => match single_ident(expr) {
                Some(ident) => self.raw_name(ident, span),
                None => self.unsupported(expr),
            },
            Expr::Index(index) => self.raw_indexed(expr, index),
            Expr::Binary(b)
                if matches!(
                    b.op,
                    BinOp::Add(_) | BinOp::Sub(_) | BinOp::Mul(_) | BinOp::Div(_) | BinOp::Rem(_)
                ) =>
            {
                let (left, right) = (self.raw(&b.left), self.raw(&b.right));
                let (left, right) = (left?, right?);
                // Checked integer arithmetic: an overflow (`i - 1` at
                // `i = 0`) or a division by zero is an out-of-range value
                // (`OutOfRange`), never a panic.
                let op = match b.op {
                    BinOp::Add(_) => quote!(raw_add),
                    BinOp::Sub(_) => quote!(raw_sub),
                    BinOp::Mul(_) => quote!(raw_mul),
                    BinOp::Div(_) => quote!(raw_div),
                    _ => quote!(raw_rem),
                };
                Some(quote_spanned!(span=> ::iwhvi::__private::#op(#left, #right)))
            }
            Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => {
                let (op, inner) = (&u.op, self.raw(&u.expr)?);
                Some(quote_spanned!(span=> #op #inner))
            }
            Expr::Paren(p) => {
                let inner = self.raw(&p.expr)?;
                Some(quote_spanned!(span=> (#inner)))
            }
            Expr::MethodCall(call) => {
                let receiver = self.raw(&call.receiver);
                let args = self.all(call.args.iter(), Self::raw);
                let (receiver, method, args) = (receiver?, &call.method, args?);
                Some(quote_spanned!(span=> #receiver.#method(#(#args),*)))
            }
            other => {
                self.cx.error_spanned_by(other, UNSUPPORTED_RAW);
                None
            }
        }
    }

    fn raw_name(&mut self, ident: &Ident, span: proc_macro2::Span) -> Option<TokenStream> {
        match self.resolve(ident)? {
            Name::Data(_) => Some(quote_spanned!(span=> self.#ident)),
            Name::Index => Some(quote!(#ident)),
            Name::Local { .. } | Name::LocalMatrix => {
                let name = ident.to_string();
                let message = match self.scope.bindings.find(&name) {
                    Some((_, b))
                        if matches!(b.meaning, Meaning::Param { .. } | Meaning::ParamMatrix) =>
                    {
                        param_in_raw(&name)
                    }
                    Some((_, b)) if matches!(b.meaning, Meaning::Transformed { .. }) => {
                        crate::model::transformed::in_raw(&name)
                    }
                    _ => format!("latent `{ident}` cannot be an index, a count or a fixed bound"),
                };
                self.cx.error_spanned_by(ident, message);
                None
            }
        }
    }

    fn raw_indexed(&mut self, expr: &Expr, index: &syn::ExprIndex) -> Option<TokenStream> {
        let Some(base) = single_ident(&index.expr) else {
            return self.unsupported(expr);
        };
        let position = self.position(&index.index);
        match self.resolve(base)? {
            Name::Data(shape) => {
                let position = position?;
                self.note_loop_index(base, &index.index);
                // Out of range, an out-of-range value (NaN, the integer
                // type's maximum, `false`) rather than a panic; `new`
                // rejects every such read it can evaluate
                // (`model/computed_access.rs`).
                if let Some(guarded) = self.guarded.as_mut() {
                    // In an `if`'s condition: the read records an
                    // out-of-range position in the `if`'s flag.
                    *guarded = true;
                    return Some(if matches!(shape, Shape::Matrix) {
                        quote_spanned!(expr.span()=> ::iwhvi::__private::raw_at_matrix_flagged(&self.#base, #position, &__iwhvi_out_of_range))
                    } else {
                        quote_spanned!(expr.span()=> ::iwhvi::__private::raw_at_flagged(self.#base.as_slice(), #position, &__iwhvi_out_of_range))
                    });
                }
                Some(if matches!(shape, Shape::Matrix) {
                    quote_spanned!(expr.span()=> ::iwhvi::__private::raw_at_matrix(&self.#base, #position))
                } else {
                    quote_spanned!(expr.span()=> ::iwhvi::__private::raw_at(self.#base.as_slice(), #position))
                })
            }
            _ => {
                self.cx.error_spanned_by(
                    base,
                    format!("`{base}` cannot be used inside an index or a count"),
                );
                None
            }
        }
    }

    fn note_loop_index(&mut self, base: &Ident, index: &Expr) {
        if let (Some(i), Some(loop_index)) = (single_ident(index), self.scope.index) {
            if i == loop_index {
                self.uses.indexed_by_loop.insert(base.to_string());
            }
        }
    }
}

/// The first identifier in `expr` (a single-segment path) for which
/// `wanted` holds.
pub fn first_mention(expr: &Expr, wanted: impl Fn(&Ident) -> bool) -> Option<Ident> {
    struct Finder<F> {
        wanted: F,
        found: Option<Ident>,
    }
    impl<'ast, F: Fn(&Ident) -> bool> syn::visit::Visit<'ast> for Finder<F> {
        fn visit_expr_path(&mut self, p: &'ast syn::ExprPath) {
            if let Some(ident) = p.path.get_ident() {
                if self.found.is_none() && (self.wanted)(ident) {
                    self.found = Some(ident.clone());
                }
            }
        }
    }
    let mut finder = Finder {
        wanted,
        found: None,
    };
    syn::visit::Visit::visit_expr(&mut finder, expr);
    finder.found
}

/// The identifier an expression is, if it is one.
pub fn single_ident(expr: &Expr) -> Option<&Ident> {
    match expr {
        Expr::Path(p) if p.qself.is_none() => p.path.get_ident(),
        _ => None,
    }
}

/// A data value of element type `elem` as a `__T` constant.
pub(crate) fn lift(value: TokenStream, elem: Elem, span: proc_macro2::Span) -> TokenStream {
    match elem {
        Elem::Real | Elem::Integer => {
            quote_spanned!(span=> <__T as ::iwhvi::__private::Scalar>::constant((#value) as f64))
        }
        Elem::Bool => {
            quote_spanned!(span=> <__T as ::iwhvi::__private::Scalar>::constant(if #value { 1.0 } else { 0.0 }))
        }
    }
}
