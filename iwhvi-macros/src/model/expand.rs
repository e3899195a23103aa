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
    match family.support {
        Support::Real | Support::Discrete => quote!(#t::Identity),
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
    if crate::distributions::is_flat(family.name) {
        return quote!(());
    }
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
        });
    quote_spanned!(call.tokens.span()=> ::iwhvi::__private::distributions::#name::new(#(#args),*))
}

struct Latent<'a> {
    field: &'a Field,
    transform: TokenStream,
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
            Role::Latent {
                prior,
                len,
                index,
                constraint,
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
                let body = if shape.is_scalar() {
                    let density = (!flat).then(|| quote!(__lp += #lp(#new, #ident);));
                    quote! {
                        let (#ident, __log_jacobian) = __transform.forward_scalar(__u[__at]);
                        __at += 1;
                        __lp += __log_jacobian;
                        #density
                    }
                } else {
                    let density = (!flat).then(|| {
                        quote! {
                            for __k in 0..__n {
                                #bind_index
                                __lp += #lp(#new, #ident[__k]);
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
                let draw = match (flat, shape.is_scalar(), constraint) {
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
                                    return ::core::result::Result::Err(#improper);
                                }
                            }
                        }
                    }
                };
                latents.push(Latent {
                    field,
                    transform,
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
                let term = quote!(__lp += #lp(#new, #value););
                let elem_ty = element_type(&field.ty);
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
        let (name, transform, len) = (l.field.ident.to_string(), &l.transform, &l.len);
        let shape = if l.field.shape.as_ref().is_some_and(Shape::is_scalar) {
            quote!(::std::vec::Vec::new())
        } else {
            quote!(::std::vec![#len])
        };
        quote! {
            ::iwhvi::__private::LatentSpec { name: ::std::string::String::from(#name), shape: #shape, transform: #transform }
        }
    });
    let latent_defs = latents.iter().map(|l| {
        let (ident, ty) = (&l.field.ident, &l.field.ty);
        let doc = format!("The latent `{ident}`, constrained.");
        quote!(#[doc = #doc] pub #ident: #ty)
    });
    let latent_reads = latents.iter().map(|l| {
        let ident = &l.field.ident;
        let name = ident.to_string();
        let read = quote!(__latents.get(#name).expect("every latent is in the layout"));
        match l.field.shape {
            Some(Shape::Scalar(_)) => quote!(#ident: #read[0]),
            Some(Shape::Array(..)) => quote!(#ident: ::core::convert::TryInto::try_into(#read).expect("the layout has the array's length")),
            _ => quote!(#ident: #read.to_vec()),
        }
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
    let draws = latents.iter().map(|l| &l.draw);
    let latent_values = latents.iter().map(|l| {
        let ident = &l.field.ident;
        match l.field.shape {
            Some(Shape::Array(..)) => quote!(#ident: ::core::convert::TryInto::try_into(#ident).expect("the draw has the array's length")),
            _ => quote!(#ident),
        }
    });
    let latent_bindings = latents.iter().map(|l| {
        let ident = &l.field.ident;
        match l.field.shape {
            Some(Shape::Scalar(_)) => quote!(let #ident: f64 = __latents.#ident;),
            _ => quote!(let #ident: &[f64] = &__latents.#ident[..];),
        }
    });
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

            /// The named, constrained latents of an unconstrained point.
            ///
            /// # Errors
            /// If `u` does not have the model's dimension.
            #vis fn latents(&self, u: &[f64]) -> ::core::result::Result<#latents_ident, ::iwhvi::__private::iwhvi_core::model::LayoutError> {
                let __latents = ::iwhvi::__private::Model::layout(self).constrain(u)?;
                ::core::result::Result::Ok(#latents_ident { #(#latent_reads,)* })
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

        impl ::iwhvi::__private::Model for #ident {
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
