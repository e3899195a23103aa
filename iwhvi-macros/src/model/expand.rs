//! Code generation for a model struct: the data struct and its validating
//! constructor, the typed latents, and the `Model` implementation.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::ast::{Constraint, DistCall, Elem, Field, Model, Role, Shape};
use super::check;
use super::rewrite::Scope;
use crate::ctxt::Ctxt;
use crate::distributions::{Family, Param, Support};

/// Everything `#[variational]` emits for a model struct.
pub fn expand(input: &syn::DeriveInput) -> syn::Result<TokenStream> {
    let cx = Ctxt::default();
    let Some(model) = Model::from_ast(&cx, input) else {
        cx.check()?;
        unreachable!("from_ast reports why it returns None");
    };
    check::names(&cx, &model);
    let generated = generate(&cx, &model);
    cx.check()?;
    Ok(generated)
}

/// The default transform of a family's support, as an expression.
fn transform(scope: &Scope<'_>, family: &Family, call: &DistCall) -> TokenStream {
    let t = quote!(::iwhvi::__private::Transform);
    if let Some(path) = &call.user {
        // The support type fixes the transform; a support without one (an
        // interval given by parameters, a discrete set) fails to compile.
        return quote_spanned!(call.tokens.span()=> const { ::iwhvi::__private::default_transform::<#path<f64>>() });
    }
    match family.support {
        Support::Real | Support::Discrete | Support::User | Support::RealVector => {
            quote!(#t::Identity)
        }
        Support::Simplex => quote!(#t::StickBreaking),
        Support::Positive => quote!(#t::Exp),
        Support::UnitInterval => quote!(#t::Interval { low: 0.0, high: 1.0 }),
        Support::Interval => {
            let fixed = Scope {
                latents_allowed: false,
                ..Scope::new(scope.model, scope.current, None, scope.cx)
            };
            let (low, high) = (fixed.raw(&call.args[0]), fixed.raw(&call.args[1]));
            quote!(#t::Interval { low: (#low) as f64, high: (#high) as f64 })
        }
    }
}

/// `Family::new(args…)` with each argument in its context.
fn constructor(scope: &Scope<'_>, family: &Family, call: &DistCall) -> TokenStream {
    let name = &call.name;
    if let Some(path) = &call.user {
        let args = call.args.iter().map(|arg| scope.value(arg));
        return quote_spanned!(call.tokens.span()=> #path::new(#(#args),*));
    }
    if crate::distributions::is_flat(family.name) {
        return quote!(());
    }
    let (type_name, method) = family.constructor();
    let (type_name, method) = (
        syn::Ident::new(type_name, name.span()),
        syn::Ident::new(method, name.span()),
    );
    let nalgebra_vector = family.name.starts_with("MultivariateNormal");
    let args = call
        .args
        .iter()
        .zip(family.params)
        .map(|(arg, (_, kind))| match kind {
            Param::Real => scope.value(arg),
            Param::Count => {
                let raw = scope.raw(arg);
                quote_spanned!(arg.span()=> ((#raw) as u64))
            }
            Param::Vector => {
                let vector = scope.vector(arg);
                if nalgebra_vector {
                    quote_spanned!(arg.span()=> ::iwhvi::__private::nalgebra::DVector::from_vec(#vector))
                } else {
                    vector
                }
            }
            Param::Matrix => scope.matrix(arg),
        });
    quote_spanned!(call.tokens.span()=> ::iwhvi::__private::distributions::#type_name::#method(#(#args),*))
}

/// A latent's `lower = …`, `upper = …` options.
enum Bounds {
    /// Bounds from data and literals: an ordinary transform.
    Fixed(TokenStream),
    /// Bounds that move with earlier latents: values for the log joint
    /// and an affine description for the layout.
    Dependent {
        low: TokenStream,
        high: TokenStream,
        layout: TokenStream,
    },
}

/// The bounds as `f64` expressions (∓∞ where absent) for the samplers.
fn bound_values(
    scope: &Scope<'_>,
    lower: Option<&syn::Expr>,
    upper: Option<&syn::Expr>,
) -> (TokenStream, TokenStream) {
    let side = |e: Option<&syn::Expr>, infinite: TokenStream| match e {
        Some(e) => scope.value(e),
        None => infinite,
    };
    (
        side(lower, quote!(f64::NEG_INFINITY)),
        side(upper, quote!(f64::INFINITY)),
    )
}

/// True when an expression mentions a latent.
fn mentions_latent(model: &Model, expr: &syn::Expr) -> bool {
    struct Finder<'a> {
        model: &'a Model,
        found: bool,
    }
    impl<'ast> syn::visit::Visit<'ast> for Finder<'_> {
        fn visit_expr_path(&mut self, p: &'ast syn::ExprPath) {
            if let Some(ident) = p.path.get_ident() {
                if let Some((_, field)) = self.model.field(&ident.to_string()) {
                    self.found |= matches!(field.role, Role::Latent { .. });
                }
            }
        }
    }
    let mut finder = Finder {
        model,
        found: false,
    };
    syn::visit::Visit::visit_expr(&mut finder, expr);
    finder.found
}

/// `constant + Σ coefficient · latent` with literal numbers, if the
/// expression has that form.
fn affine(model: &Model, expr: &syn::Expr) -> Option<(f64, Vec<(String, f64)>)> {
    use syn::{BinOp, Expr, Lit, UnOp};
    let scale = |(c, terms): (f64, Vec<(String, f64)>), k: f64| {
        (c * k, terms.into_iter().map(|(n, v)| (n, v * k)).collect())
    };
    match expr {
        Expr::Lit(l) => match &l.lit {
            Lit::Float(f) => f.base10_parse().ok().map(|v| (v, Vec::new())),
            Lit::Int(i) => i.base10_parse::<i64>().ok().map(|v| (v as f64, Vec::new())),
            _ => None,
        },
        Expr::Path(p) => {
            let name = p.path.get_ident()?.to_string();
            let (_, field) = model.field(&name)?;
            matches!(field.role, Role::Latent { .. }).then(|| (0.0, vec![(name, 1.0)]))
        }
        Expr::Paren(p) => affine(model, &p.expr),
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => {
            affine(model, &u.expr).map(|a| scale(a, -1.0))
        }
        Expr::Binary(b) => {
            let (left, right) = (affine(model, &b.left)?, affine(model, &b.right)?);
            match b.op {
                BinOp::Add(_) => Some((left.0 + right.0, [left.1, right.1].concat())),
                BinOp::Sub(_) => {
                    let right = scale(right, -1.0);
                    Some((left.0 + right.0, [left.1, right.1].concat()))
                }
                BinOp::Mul(_) if left.1.is_empty() => Some(scale(right, left.0)),
                BinOp::Mul(_) if right.1.is_empty() => Some(scale(left, right.0)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Reads `lower = …`, `upper = …`.
fn bounds(
    cx: &Ctxt,
    scope: &Scope<'_>,
    ident: &syn::Ident,
    shape: &Shape,
    lower: Option<&syn::Expr>,
    upper: Option<&syn::Expr>,
) -> Option<Bounds> {
    if lower.is_none() && upper.is_none() {
        return None;
    }
    if !shape.is_scalar() {
        cx.error_spanned_by(
            ident,
            format!("`lower`/`upper` bounds are for scalar latents; `{ident}` is a vector"),
        );
        return None;
    }
    let dependent = [lower, upper]
        .into_iter()
        .flatten()
        .any(|e| mentions_latent(scope.model, e));
    let t = quote!(::iwhvi::__private::Transform);
    if !dependent {
        let fixed = Scope {
            latents_allowed: false,
            ..Scope::new(scope.model, scope.current, None, scope.cx)
        };
        let raw = |e: &syn::Expr| {
            let r = fixed.raw(e);
            quote!((#r) as f64)
        };
        return Some(Bounds::Fixed(match (lower, upper) {
            (Some(l), Some(h)) => {
                let (l, h) = (raw(l), raw(h));
                quote!(#t::Interval { low: #l, high: #h })
            }
            (Some(l), None) => {
                let l = raw(l);
                quote!(#t::LowerBound { low: #l })
            }
            (None, Some(h)) => {
                let h = raw(h);
                quote!(#t::UpperBound { high: #h })
            }
            (None, None) => unreachable!("checked above"),
        }));
    }
    let (Some(lower), Some(upper)) = (lower, upper) else {
        cx.error_spanned_by(
            ident,
            format!(
                "bounds of `{ident}` that depend on other latents need both `lower` and `upper`"
            ),
        );
        return None;
    };
    let describe = |e: &syn::Expr| match affine(scope.model, e) {
        Some((constant, terms)) => {
            let terms = terms
                .iter()
                .map(|(n, c)| quote!((::std::string::String::from(#n), #c)));
            Some(
                quote!(::iwhvi::__private::iwhvi_core::model::AffineBound { constant: #constant, terms: ::std::vec![#(#terms),*] }),
            )
        }
        None => {
            cx.error_spanned_by(
                e,
                "a bound that depends on other latents must be affine in them with literal coefficients, e.g. `1.0 - alpha1`",
            );
            None
        }
    };
    let (low_layout, high_layout) = (describe(lower)?, describe(upper)?);
    Some(Bounds::Dependent {
        low: scope.value(lower),
        high: scope.value(upper),
        layout: quote!(::iwhvi::__private::iwhvi_core::model::DependentBounds { low: #low_layout, high: #high_layout }),
    })
}

struct Latent<'a> {
    field: &'a Field,
    /// The support's word for guides: `real`, `positive`, `unit`,
    /// `bounded`, `simplex`, `ordered`, `positive_ordered`, `user`.
    support: &'static str,
    transform: TokenStream,
    /// `Option<DependentBounds>` for the layout.
    dependent: TokenStream,
    len: TokenStream,
    /// Its part of the log joint.
    body: TokenStream,
    /// Its ancestral draw (in `sample_prior`, where `__T = f64`).
    draw: TokenStream,
}

/// The element type of a field's type (`Vec<T>` → `T`, `[T; N]` → `T`).
fn element_type(ty: &syn::Type) -> syn::Type {
    match ty {
        syn::Type::Array(a) => (*a.elem).clone(),
        syn::Type::Path(p) => match &p.path.segments.last().expect("a path").arguments {
            syn::PathArguments::AngleBracketed(args) => match args.args.first() {
                Some(syn::GenericArgument::Type(inner)) => inner.clone(),
                _ => ty.clone(),
            },
            _ => ty.clone(),
        },
        other => other.clone(),
    }
}

/// One draw of an observation of element type `elem` from distribution `d`.
fn draw_observation(d: &TokenStream, elem: Elem, ty: &syn::Type) -> TokenStream {
    let sample = quote!(::iwhvi::__private::rand::distr::Distribution::sample);
    match elem {
        Elem::Real => quote!(#sample(&#d, __rng)),
        Elem::Integer => quote!({ let __k: u64 = #sample(&#d, __rng); __k as #ty }),
        Elem::Bool => quote!({ let __k: u64 = #sample(&#d, __rng); __k != 0 }),
    }
}

fn generate(cx: &Ctxt, model: &Model) -> TokenStream {
    let lp = quote!(::iwhvi::__private::log_prob_or_neg_inf);
    let mut latents = Vec::new();
    let mut observations = Vec::new();
    let mut length_checks = Vec::new();
    let mut simulations: Vec<(usize, TokenStream)> = Vec::new();
    let mut observed_fields: Vec<&Field> = Vec::new();
    let mut support_checks = Vec::new();
    let mut factors: Vec<(usize, TokenStream)> = Vec::new();
    let mut derived: Vec<(&Field, TokenStream)> = Vec::new();
    for (position, field) in model.fields.iter().enumerate() {
        if let Role::Factor(expr) = &field.role {
            let value = Scope::new(model, position, None, cx).value(expr);
            factors.push((position, quote!(__lp += #value;)));
            continue;
        }
        let Some(shape) = &field.shape else { continue };
        let ident = &field.ident;
        match &field.role {
            Role::Data | Role::Factor(_) => {}
            Role::Derived { expr, index } => {
                let scope = Scope::new(model, position, index.as_ref(), cx);
                let value = scope.value(expr);
                let computation = match (shape, index) {
                    (Shape::Scalar(Elem::Real), None) => quote!(let #ident: f64 = #value;),
                    (Shape::Vec(Elem::Real) | Shape::Array(Elem::Real, _), Some(i)) => {
                        let len = match shape {
                            Shape::Array(_, n) => quote!((#n) as usize),
                            _ => {
                                cx.error_spanned_by(ident, format!("a derived Vec needs a fixed length: declare `{ident}` as `[f64; N]`"));
                                quote!(0usize)
                            }
                        };
                        quote! {
                            let #ident: ::std::vec::Vec<f64> = (0..#len).map(|#i| #value).collect();
                        }
                    }
                    _ => {
                        cx.error_spanned_by(
                            ident,
                            format!("derived `{ident}` is an f64 (`#[derived(expr)]`) or an [f64; N] over an index (`#[derived(expr, for i)]`)"),
                        );
                        quote!()
                    }
                };
                derived.push((field, computation));
            }
            Role::Latent {
                prior,
                len,
                index,
                constraint,
                lower,
                upper,
            } => {
                let Some(family) = check::distribution(cx, prior) else {
                    continue;
                };
                check::latent(cx, ident, shape, family, len.as_ref());
                check::latent_options(
                    cx,
                    ident,
                    shape,
                    family,
                    index.as_ref(),
                    constraint.as_ref(),
                );
                let scope = Scope::new(model, position, index.as_ref(), cx);
                let new = constructor(&scope, family, prior);
                let transform = match constraint {
                    Some((Constraint::Ordered, _)) => {
                        quote!(::iwhvi::__private::Transform::Ordered)
                    }
                    Some((Constraint::PositiveOrdered, _)) => {
                        quote!(::iwhvi::__private::Transform::PositiveOrdered)
                    }
                    Some((Constraint::Simplex, _)) => {
                        quote!(::iwhvi::__private::Transform::StickBreaking)
                    }
                    None => transform(&scope, family, prior),
                };
                let bounds = bounds(cx, &scope, ident, shape, lower.as_ref(), upper.as_ref());
                let transform = match &bounds {
                    Some(Bounds::Fixed(t)) => t.clone(),
                    _ => transform,
                };
                let dependent = match &bounds {
                    Some(Bounds::Dependent { layout, .. }) => {
                        quote!(::core::option::Option::Some(#layout))
                    }
                    _ => quote!(::core::option::Option::None),
                };
                let len = match (shape, len) {
                    (Shape::Scalar(_), _) => quote!(1usize),
                    (Shape::Array(_, n), _) => quote!((#n) as usize),
                    (Shape::Vec(_), Some(len)) => {
                        let data_only = Scope {
                            latents_allowed: false,
                            ..Scope::new(model, position, None, cx)
                        };
                        let raw = data_only.raw(len);
                        quote!((#raw) as usize)
                    }
                    (Shape::Vec(_), None) | (Shape::Matrix, _) => quote!(0usize),
                };
                let bind_index = index.as_ref().map(|i| quote!(let #i: usize = __k;));
                let flat = crate::distributions::is_flat(family.name);
                let body = if let Some(Bounds::Dependent { low, high, .. }) = &bounds {
                    let density = (!flat).then(|| quote!(__lp += #lp(#new, #ident);));
                    quote! {
                        let (__low, __high) = (#low, #high);
                        let __s = __u[__at];
                        __at += 1;
                        let __width = __high - __low;
                        let #ident = __low + __width * ::iwhvi::__private::Scalar::sigmoid(__s);
                        __lp += ::iwhvi::__private::Scalar::ln(__width)
                            + ::iwhvi::__private::Scalar::log_sigmoid(__s)
                            + ::iwhvi::__private::Scalar::log_sigmoid(-__s);
                        #density
                    }
                } else if shape.is_scalar() {
                    let density = (!flat).then(|| quote!(__lp += #lp(#new, #ident);));
                    quote! {
                        let (#ident, __log_jacobian) = __transform.forward_scalar(__u[__at]);
                        __at += 1;
                        __lp += __log_jacobian;
                        #density
                    }
                } else {
                    let density = (!flat).then(|| {
                        if family.multivariate() {
                            quote!(__lp += ::iwhvi::__private::log_prob_multi_or_neg_inf(#new, &#ident);)
                        } else {
                            quote! {
                                for __k in 0..__n {
                                    #bind_index
                                    __lp += #lp(#new, #ident[__k]);
                                }
                            }
                        }
                    });
                    quote! {
                        let __n = #len;
                        let __m = __transform.unconstrained_len(__n).unwrap_or(0);
                        let mut #ident: ::std::vec::Vec<__T> =
                            ::std::vec![<__T as ::iwhvi::__private::Scalar>::constant(0.0); __n];
                        __lp += __transform.forward(&__u[__at..__at + __m], &mut #ident);
                        __at += __m;
                        #density
                    }
                };
                let sample = quote!(::iwhvi::__private::rand::distr::Distribution::<f64>::sample);
                let family_name = family.name;
                let improper = quote!(::iwhvi::__private::distributions::DistributionError::Improper { distribution: #family_name });
                let latent_name = ident.to_string();
                let rejection_failed = quote!(::iwhvi::__private::distributions::DistributionError::RejectionFailed { latent: #latent_name, tries: __tries });
                let draw_unbounded = match (flat, shape.is_scalar(), constraint) {
                    (true, _, Some((Constraint::Simplex, _))) => quote! {
                        // Flat on the simplex is Dirichlet(1, …, 1): normalised exponentials.
                        let __n = #len;
                        let __exponential = ::iwhvi::__private::distributions::Exponential::new(1.0)?;
                        let mut #ident: ::std::vec::Vec<f64> = (0..__n).map(|_| #sample(&__exponential, __rng)).collect();
                        let __total: f64 = #ident.iter().sum();
                        for __x in &mut #ident {
                            *__x /= __total;
                        }
                    },
                    (true, true, _) => {
                        quote!(let #ident: f64 = return ::core::result::Result::Err(#improper);)
                    }
                    (true, false, _) => {
                        quote!(let #ident: ::std::vec::Vec<f64> = return ::core::result::Result::Err(#improper);)
                    }
                    (false, true, _) => quote!(let #ident: f64 = #sample(&#new?, __rng);),
                    (false, false, _) if family.multivariate() => quote! {
                        let #ident: ::std::vec::Vec<f64> = ::iwhvi::__private::DrawVector::draw_vector(&#new?, __rng);
                    },
                    (false, false, constraint) => {
                        let accept = match constraint {
                            Some((Constraint::Ordered, _)) => {
                                quote!(#ident.windows(2).all(|w| w[0] < w[1]))
                            }
                            Some((Constraint::PositiveOrdered, _)) => {
                                quote!(#ident.first().is_none_or(|&x| x > 0.0) && #ident.windows(2).all(|w| w[0] < w[1]))
                            }
                            _ => quote!(true),
                        };
                        quote! {
                            let __n = #len;
                            // Elementwise draws, rejected until they satisfy the constraint
                            // (the prior is the elementwise density restricted to it).
                            let mut #ident: ::std::vec::Vec<f64> = ::std::vec::Vec::with_capacity(__n);
                            let mut __tries = 0usize;
                            loop {
                                #ident.clear();
                                for __k in 0..__n {
                                    #bind_index
                                    #ident.push(#sample(&#new?, __rng));
                                }
                                if #accept {
                                    break;
                                }
                                __tries += 1;
                                if __tries == 100_000 {
                                    return ::core::result::Result::Err(#rejection_failed);
                                }
                            }
                        }
                    }
                };
                let draw = match (&bounds, flat) {
                    // Both bounds (dependent bounds always have both): a
                    // flat prior is uniform between them.
                    (Some(_), true) if lower.is_some() && upper.is_some() => {
                        let (low, high) = bound_values(&scope, lower.as_ref(), upper.as_ref());
                        quote! {
                            let (__low, __high): (f64, f64) = (#low, #high);
                            let #ident: f64 = #sample(&::iwhvi::__private::distributions::Uniform::new(__low, __high)?, __rng);
                        }
                    }
                    (Some(_), false) => {
                        let (low, high) = bound_values(&scope, lower.as_ref(), upper.as_ref());
                        quote! {
                            // The prior restricted to the bounds, by rejection.
                            let (__low, __high): (f64, f64) = (#low, #high);
                            let mut __tries = 0usize;
                            let #ident: f64 = loop {
                                let __x: f64 = #sample(&#new?, __rng);
                                if __x > __low && __x < __high {
                                    break __x;
                                }
                                __tries += 1;
                                if __tries == 100_000 {
                                    return ::core::result::Result::Err(#rejection_failed);
                                }
                            };
                        }
                    }
                    _ => draw_unbounded,
                };

                let support = match (constraint, &bounds) {
                    (Some((Constraint::Simplex, _)), _) => "simplex",
                    (Some((Constraint::Ordered, _)), _) => "ordered",
                    (Some((Constraint::PositiveOrdered, _)), _) => "positive_ordered",
                    (None, Some(_)) => "bounded",
                    (None, None) => match family.support {
                        Support::Positive => "positive",
                        Support::UnitInterval => "unit",
                        Support::Interval => "bounded",
                        Support::Simplex => "simplex",
                        Support::User => "user",
                        Support::Real | Support::RealVector | Support::Discrete => "real",
                    },
                };
                latents.push(Latent {
                    field,
                    support,
                    transform,
                    dependent,
                    len,
                    body,
                    draw,
                });
            }
            Role::Observed { likelihood, index } => {
                let Some(family) = check::distribution(cx, likelihood) else {
                    continue;
                };
                check::observed(cx, ident, shape, family, index.as_ref());
                let scope = Scope::new(model, position, index.as_ref(), cx);
                let new = constructor(&scope, family, likelihood);
                let element = match index {
                    Some(i) => quote!(self.#ident[#i]),
                    None => quote!(self.#ident),
                };
                let value = match shape.elem() {
                    Elem::Real => quote!(<__T as ::iwhvi::__private::Scalar>::constant(#element)),
                    Elem::Integer => quote!((#element) as u64),
                    Elem::Bool => quote!(u64::from(#element)),
                };
                let elem_ty = element_type(&field.ty);
                if family.multivariate() {
                    // One draw of the whole vector.
                    observations.push((position, quote! {
                        let __values: ::std::vec::Vec<__T> =
                            self.#ident.iter().map(|__v| <__T as ::iwhvi::__private::Scalar>::constant(*__v)).collect();
                        __lp += ::iwhvi::__private::log_prob_multi_or_neg_inf(#new, &__values);
                    }));
                    simulations.push((position, quote! {
                        let #ident: ::std::vec::Vec<f64> = ::iwhvi::__private::DrawVector::draw_vector(&#new?, __rng);
                    }));
                    observed_fields.push(field);
                    continue;
                }
                let term = quote!(__lp += #lp(#new, #value););
                let one = draw_observation(&quote!(#new?), shape.elem(), &elem_ty);
                simulations.push((position, match index {
                    Some(i) if !shape.is_scalar() => quote! {
                        let mut #ident: ::std::vec::Vec<#elem_ty> = ::std::vec::Vec::with_capacity(self.#ident.len());
                        for #i in 0..self.#ident.len() {
                            #ident.push(#one);
                        }
                    },
                    _ => quote!(let #ident: #elem_ty = #one;),
                }));
                observed_fields.push(field);
                observations.push((
                    position,
                    match index {
                        Some(i) if !shape.is_scalar() => {
                            quote!(for #i in 0..self.#ident.len() { #term })
                        }
                        _ => term,
                    },
                ));
                let name = ident.to_string();
                for other in scope.indexed_by_loop.borrow().iter() {
                    if *other == name {
                        continue;
                    }
                    let other_ident = format_ident!("{}", other);
                    length_checks.push(quote! {
                        if self.#other_ident.len() != self.#ident.len() {
                            return ::core::result::Result::Err(::iwhvi::__private::DataError::LengthMismatch {
                                field: #other, found: self.#other_ident.len(), other: #name, expected: self.#ident.len(),
                            });
                        }
                    });
                }
                if let Some(check) = observation_support(ident, shape, family) {
                    support_checks.push(check);
                }
            }
        }
    }

    let ident = &model.ident;
    let vis = &model.vis;
    let attrs = &model.attrs;
    let latents_ident = format_ident!("{}Latents", ident);
    let data_fields: Vec<&Field> = model
        .fields
        .iter()
        .filter(|f| matches!(f.role, Role::Data | Role::Observed { .. }))
        .collect();
    let data_defs = data_fields.iter().map(|f| {
        let (attrs, vis, ident, ty) = (&f.attrs, &f.vis, &f.ident, &f.ty);
        quote!(#(#attrs)* #vis #ident: #ty)
    });
    let data_params = data_fields.iter().map(|f| {
        let (ident, ty) = (&f.ident, &f.ty);
        quote!(#ident: #ty)
    });
    let data_names: Vec<_> = data_fields.iter().map(|f| &f.ident).collect();
    let finite_checks = data_fields.iter().filter(|f| f.shape.as_ref().is_some_and(|s| s.elem() == Elem::Real)).map(|f| {
        let (ident, name) = (&f.ident, f.ident.to_string());
        let values = if f.shape.as_ref().is_some_and(Shape::is_scalar) {
            quote!(::core::iter::once(&self.#ident))
        } else {
            quote!(self.#ident.iter())
        };
        quote! {
            for (__index, __value) in #values.enumerate() {
                if !__value.is_finite() {
                    return ::core::result::Result::Err(::iwhvi::__private::DataError::NotFinite {
                        field: #name, index: __index, value: *__value,
                    });
                }
            }
        }
    });

    // The log joint, fields in declaration order. A latent's step binds
    // its name for the steps after it, so steps are not wrapped in braces.
    let mut steps: Vec<(usize, TokenStream)> = Vec::new();
    for l in &latents {
        let position = model
            .fields
            .iter()
            .position(|f| std::ptr::eq(f, l.field))
            .expect("a field");
        let (transform, body) = (&l.transform, &l.body);
        steps.push((position, quote!(let __transform = #transform; #body)));
    }
    steps.extend(observations);
    steps.extend(factors);
    steps.sort_by_key(|(position, _)| *position);
    let steps = steps.into_iter().map(|(_, s)| s);

    let specs = latents.iter().map(|l| {
        let (name, transform, len, dependent) = (
            l.field.ident.to_string(),
            &l.transform,
            &l.len,
            &l.dependent,
        );
        let shape = if l.field.shape.as_ref().is_some_and(Shape::is_scalar) {
            quote!(::std::vec::Vec::new())
        } else {
            quote!(::std::vec![#len])
        };
        quote! {
            ::iwhvi::__private::LatentSpec {
                name: ::std::string::String::from(#name),
                shape: #shape,
                transform: #transform,
                dependent_bounds: #dependent,
            }
        }
    });
    let latent_defs = latents.iter().map(|l| {
        let (ident, ty) = (&l.field.ident, &l.field.ty);
        let doc = format!("The latent `{ident}`, constrained.");
        quote!(#[doc = #doc] pub #ident: #ty)
    });
    let typed_checks = latents.iter().map(|l| {
        let name = l.field.ident.to_string();
        let len = &l.len;
        quote! {
            if __latents.get(#name)?.len() != #len {
                return ::core::option::Option::None;
            }
        }
    });
    let latent_reads_named: Vec<TokenStream> = latents
        .iter()
        .map(|l| {
            let ident = &l.field.ident;
            let name = ident.to_string();
            let read = quote!(__latents.get(#name)?);
            match l.field.shape {
                Some(Shape::Scalar(_)) => quote!(#ident: #read[0]),
                Some(Shape::Array(..)) => {
                    quote!(#ident: ::core::convert::TryInto::try_into(#read).ok()?)
                }
                _ => quote!(#ident: #read.to_vec()),
            }
        })
        .collect();
    let latent_named: Vec<TokenStream> = latents
        .iter()
        .map(|l| {
            let (ident, name) = (&l.field.ident, l.field.ident.to_string());
            match l.field.shape {
                Some(Shape::Scalar(_)) => {
                    quote!((::std::string::String::from(#name), ::std::vec![__latents.#ident]))
                }
                _ => quote!((::std::string::String::from(#name), __latents.#ident.to_vec())),
            }
        })
        .collect();
    let draws = latents.iter().map(|l| &l.draw);
    let latent_values = latents.iter().map(|l| {
        let ident = &l.field.ident;
        match l.field.shape {
            Some(Shape::Array(..)) => quote!(#ident: ::core::convert::TryInto::try_into(#ident).expect("the draw has the array's length")),
            _ => quote!(#ident),
        }
    });
    let latent_bindings: Vec<TokenStream> = latents
        .iter()
        .map(|l| {
            let ident = &l.field.ident;
            match l.field.shape {
                Some(Shape::Scalar(_)) => quote!(let #ident: f64 = __latents.#ident;),
                _ => quote!(let #ident: &[f64] = &__latents.#ident[..];),
            }
        })
        .collect();
    let mut simulations = simulations;
    simulations.sort_by_key(|(position, _)| *position);
    let simulations = simulations.into_iter().map(|(_, s)| s);
    let observations_ident = format_ident!("{}Observations", ident);
    let observation_defs = observed_fields.iter().map(|f| {
        let (ident, ty) = (&f.ident, &f.ty);
        let doc = format!("Simulated `{ident}`.");
        quote!(#[doc = #doc] pub #ident: #ty)
    });
    let observation_names = observed_fields.iter().map(|f| {
        let ident = &f.ident;
        match f.shape {
            Some(Shape::Scalar(_)) => quote!(#ident),
            Some(Shape::Array(..)) => quote!(#ident: ::core::convert::TryInto::try_into(#ident).expect("one draw per observation")),
            _ => quote!(#ident: ::core::convert::From::from(#ident)),
        }
    });
    let derived_ident = format_ident!("{}Derived", ident);
    let derived_defs = derived.iter().map(|(f, _)| {
        let (ident, ty) = (&f.ident, &f.ty);
        let doc = format!("The derived quantity `{ident}`.");
        quote!(#[doc = #doc] pub #ident: #ty)
    });
    let derived_computations = derived.iter().map(|(_, c)| c);
    let derived_values = derived.iter().map(|(f, _)| {
        let ident = &f.ident;
        match f.shape {
            Some(Shape::Array(..)) => quote!(#ident: ::core::convert::TryInto::try_into(#ident).expect("one value per element")),
            _ => quote!(#ident),
        }
    });
    let derived_named = derived.iter().map(|(f, _)| {
        let (ident, name) = (&f.ident, f.ident.to_string());
        match f.shape {
            Some(Shape::Scalar(_)) => {
                quote!((::std::string::String::from(#name), ::std::vec![__derived.#ident]))
            }
            _ => quote!((::std::string::String::from(#name), __derived.#ident.to_vec())),
        }
    });
    let guide_macro = format_ident!("__iwhvi_model_{}", ident);
    let latent_info = latents.iter().map(|l| {
        let name = &l.field.ident;
        let shape = if l.field.shape.as_ref().is_some_and(Shape::is_scalar) {
            quote!(scalar)
        } else {
            quote!(vector)
        };
        let support = format_ident!("{}", l.support);
        quote!(#name: #shape #support)
    });
    let doc_derived = format!("The derived quantities of [`{ident}`] at given latents.");
    let doc_observations = format!("Observations of [`{ident}`] simulated from given latents.");
    let doc_latents = format!("The constrained latents of [`{ident}`], one field per latent.");
    let doc_new = format!(
        "The model `{ident}` with its data, checked: finite reals, matching lengths, observations inside their likelihood's support."
    );

    quote! {
        #(#attrs)*
        #vis struct #ident {
            #(#data_defs,)*
        }

        #[doc = #doc_latents]
        #[derive(Clone, Debug, PartialEq)]
        #vis struct #latents_ident {
            #(#latent_defs,)*
        }

        impl #ident {
            #[doc = #doc_new]
            ///
            /// # Errors
            /// A `DataError` naming the field.
            #[allow(clippy::too_many_arguments)]
            #vis fn new(#(#data_params),*) -> ::core::result::Result<Self, ::iwhvi::__private::DataError> {
                let __model = Self { #(#data_names),* };
                __model.__validate()?;
                ::core::result::Result::Ok(__model)
            }

            fn __validate(&self) -> ::core::result::Result<(), ::iwhvi::__private::DataError> {
                #(#finite_checks)*
                #(#length_checks)*
                #(#support_checks)*
                ::core::result::Result::Ok(())
            }

            /// Typed latents from named ones (a row of posterior `Draws`);
            /// `None` if one is missing or has the wrong length.
            #vis fn typed_latents(&self, __latents: &::iwhvi::__private::iwhvi_core::model::Latents) -> ::core::option::Option<#latents_ident> {
                #(#typed_checks)*
                ::core::option::Option::Some(#latents_ident { #(#latent_reads_named,)* })
            }

            /// The unconstrained point of typed latents (the inverse of
            /// `latents`).
            ///
            /// # Errors
            /// If a latent lies outside its support.
            #vis fn unconstrain(&self, __latents: &#latents_ident) -> ::core::result::Result<::std::vec::Vec<f64>, ::iwhvi::__private::iwhvi_core::model::LayoutError> {
                let __named = ::iwhvi::__private::iwhvi_core::model::Latents::from_pairs([#(#latent_named),*]);
                ::iwhvi::__private::Model::layout(self).unconstrain(&__named)
            }

            /// The named, constrained latents of an unconstrained point.
            ///
            /// # Errors
            /// If `u` does not have the model's dimension.
            #vis fn latents(&self, u: &[f64]) -> ::core::result::Result<#latents_ident, ::iwhvi::__private::iwhvi_core::model::LayoutError> {
                let __latents = ::iwhvi::__private::Model::layout(self).constrain(u)?;
                ::core::result::Result::Ok(self.typed_latents(&__latents).expect("the layout has every latent at its length"))
            }
        }

        #[doc = #doc_observations]
        #[derive(Clone, Debug, PartialEq)]
        #vis struct #observations_ident {
            #(#observation_defs,)*
        }

        impl #ident {
            /// Draws every latent from its prior, in declaration order
            /// (ancestral sampling).
            ///
            /// # Errors
            /// A `DistributionError` if a prior's parameters, computed from
            /// the latents drawn before it, are invalid.
            #[allow(unused_variables, unreachable_code, non_camel_case_types, clippy::all)]
            #vis fn sample_prior<__R: ::iwhvi::__private::rand::Rng + ?::core::marker::Sized>(
                &self,
                __rng: &mut __R,
            ) -> ::core::result::Result<#latents_ident, ::iwhvi::__private::distributions::DistributionError> {
                type __T = f64;
                #(#draws)*
                ::core::result::Result::Ok(#latents_ident { #(#latent_values,)* })
            }

            /// Simulates the observed fields (the shapes of the model's own
            /// data) given latents: with `sample_prior`, the prior
            /// predictive; with posterior draws, the posterior predictive.
            ///
            /// # Errors
            /// A `DistributionError` if a likelihood's parameters are invalid.
            #[allow(unused_variables, non_camel_case_types, clippy::all)]
            #vis fn simulate<__R: ::iwhvi::__private::rand::Rng + ?::core::marker::Sized>(
                &self,
                __latents: &#latents_ident,
                __rng: &mut __R,
            ) -> ::core::result::Result<#observations_ident, ::iwhvi::__private::distributions::DistributionError> {
                type __T = f64;
                #(#latent_bindings)*
                #(#simulations)*
                ::core::result::Result::Ok(#observations_ident { #(#observation_names,)* })
            }
        }

        /// Hands a guide declared for this model (`#[variational(guide = ...)]`)
        /// the model's latents, so that the guide is checked against them.
        #[doc(hidden)]
        #[allow(unused_macros)]
        macro_rules! #guide_macro {
            ($($guide:tt)*) => {
                ::iwhvi::__private::guide! { [#(#latent_info),*] $($guide)* }
            };
        }

        #[doc = #doc_derived]
        #[derive(Clone, Debug, PartialEq)]
        #vis struct #derived_ident {
            #(#derived_defs,)*
        }

        impl #ident {
            /// The derived quantities at the given latents.
            #[allow(unused_variables, non_camel_case_types, clippy::all)]
            #vis fn derived_quantities(&self, __latents: &#latents_ident) -> #derived_ident {
                type __T = f64;
                #(#latent_bindings)*
                #(#derived_computations)*
                #derived_ident { #(#derived_values,)* }
            }
        }

        impl ::iwhvi::__private::Model for #ident {
            fn derived(&self, __latents: &::iwhvi::__private::iwhvi_core::model::Latents) -> ::iwhvi::__private::iwhvi_core::model::Latents {
                match self.typed_latents(__latents) {
                    ::core::option::Option::Some(__typed) => {
                        let __derived = self.derived_quantities(&__typed);
                        ::iwhvi::__private::iwhvi_core::model::Latents::from_pairs([#(#derived_named),*])
                    }
                    ::core::option::Option::None => ::core::default::Default::default(),
                }
            }

            fn layout(&self) -> ::iwhvi::__private::Layout {
                ::iwhvi::__private::Layout::new(::std::vec![#(#specs),*])
            }

            #[allow(unused_mut, unused_variables, unused_assignments, clippy::all)]
            fn log_joint<__T: ::iwhvi::__private::Scalar>(&self, __u: &[__T]) -> __T {
                let mut __lp = <__T as ::iwhvi::__private::Scalar>::constant(0.0);
                let mut __at = 0usize;
                #(#steps)*
                __lp
            }
        }
    }
}

/// A check that every observation lies in its likelihood's support, for
/// the families whose support does not depend on parameters.
fn observation_support(ident: &syn::Ident, shape: &Shape, family: &Family) -> Option<TokenStream> {
    let name = ident.to_string();
    let distribution = family.name;
    let (test, support) = match (family.name, shape.elem()) {
        ("Bernoulli" | "BernoulliLogit", Elem::Integer) => {
            (quote!((0..=1).contains(&(__value as i128))), "0 or 1")
        }
        (
            "Poisson" | "PoissonLog" | "NegativeBinomial2" | "Binomial" | "BinomialLogit",
            Elem::Integer,
        ) => (quote!((__value as i128) >= 0), "non-negative counts"),
        (_, Elem::Real) => match family.support {
            Support::Positive => (quote!(__value > 0.0), "positive reals"),
            Support::UnitInterval => (quote!(__value >= 0.0 && __value <= 1.0), "[0, 1]"),
            _ => return None,
        },
        _ => return None,
    };
    let values = if shape.is_scalar() {
        quote!(::core::iter::once(self.#ident))
    } else {
        quote!(self.#ident.iter().copied())
    };
    Some(quote! {
        for (__index, __value) in #values.enumerate() {
            if !(#test) {
                return ::core::result::Result::Err(::iwhvi::__private::DataError::OutsideSupport {
                    field: #name, index: __index, value: __value as f64, distribution: #distribution, support: #support,
                });
            }
        }
    })
}
