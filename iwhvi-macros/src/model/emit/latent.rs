//! A latent's code: its transform and layout entry, its step of the log
//! joint, and its ancestral draw.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use crate::model::ast::{Constraint, Shape};
use crate::model::plan::{Affine, Bounds, Dependent, DependentAffine, Latent, Transform};

/// The transform as an expression.
pub fn transform(transform: &Transform) -> TokenStream {
    let t = quote!(::iwhvi::__private::Transform);
    match transform {
        Transform::CoreSupport(name) => {
            let name = syn::Ident::new(name, proc_macro2::Span::call_site());
            let supports = quote!(::iwhvi::__private::distributions::supports);
            quote!(const { <#supports::#name as #supports::SupportKind>::DEFAULT_TRANSFORM.unwrap() })
        }
        // The support type fixes the transform; a support without one (an
        // interval given by parameters, a discrete set) fails to compile.
        Transform::UserSupport(path, span) => {
            quote_spanned!(*span=> const { ::iwhvi::__private::default_transform::<#path<f64>>() })
        }
        Transform::Interval(low, high) => quote!(#t::Interval { low: #low, high: #high }),
        Transform::LowerBound(low) => quote!(#t::LowerBound { low: #low }),
        Transform::UpperBound(high) => quote!(#t::UpperBound { high: #high }),
        Transform::Affine(offset, multiplier) => {
            quote!(#t::Affine { offset: #offset, multiplier: #multiplier })
        }
    }
}

/// The per-element transforms of a vector latent as a `Vec<Transform>`
/// over the data (in `layout`), when they differ by element.
fn per_element(l: &Latent<'_>) -> TokenStream {
    let Some(each) = &l.per_element else {
        return quote!(::core::option::Option::None);
    };
    let len = &l.len;
    let bind_index = l
        .index
        .map(|i| quote!(#[allow(unused_variables)] let #i: usize = __k;));
    quote!(::core::option::Option::Some((0..#len).map(|__k: usize| { #bind_index #each }).collect()))
}

/// The model's checks of the data vectors a latent's options read at each
/// element: their lengths are the latent's.
pub fn length_checks(l: &Latent<'_>) -> TokenStream {
    let (name, len) = (l.field.ident.to_string(), &l.len);
    let checks = l.same_length.iter().map(|other| {
        let other_ident = syn::Ident::new(other, proc_macro2::Span::call_site());
        quote! {
            if self.#other_ident.len() != __len {
                return ::core::result::Result::Err(::iwhvi::__private::DataError::LengthMismatch {
                    field: #other, found: self.#other_ident.len(), other: #name, expected: __len,
                });
            }
        }
    });
    if l.same_length.is_empty() {
        return quote!();
    }
    quote!({ let __len: usize = #len; #(#checks)* })
}

fn affine(a: &Affine) -> TokenStream {
    let constant = a.constant;
    let terms = a
        .terms
        .iter()
        .map(|(n, c)| quote!((::std::string::String::from(#n), #c)));
    quote!(::iwhvi::__private::iwhvi_core::model::AffineBound { constant: #constant, terms: ::std::vec![#(#terms),*] })
}

/// Its entry of the model's layout.
pub fn spec(l: &Latent<'_>) -> TokenStream {
    let (name, transform, len) = (l.field.ident.to_string(), transform(&l.transform), &l.len);
    let shape = match (&l.order, l.shape.is_scalar()) {
        (Some(order), _) => quote!({ let __k: usize = #order; ::std::vec![__k, __k] }),
        (None, true) => quote!(::std::vec::Vec::new()),
        (None, false) => quote!(::std::vec![#len]),
    };
    let dependent = match l.bounds.as_ref().and_then(|b| b.dependent.as_ref()) {
        Some(d) => {
            let (low, high) = (affine(&d.low_affine), affine(&d.high_affine));
            quote!(::core::option::Option::Some(::iwhvi::__private::iwhvi_core::model::DependentBounds { low: #low, high: #high }))
        }
        None => quote!(::core::option::Option::None),
    };
    let dependent_affine = match &l.affine {
        Some(a) => {
            let (offset, multiplier) = (affine(&a.offset_affine), affine(&a.multiplier_affine));
            quote!(::core::option::Option::Some(::iwhvi::__private::iwhvi_core::model::DependentAffine { offset: #offset, multiplier: #multiplier }))
        }
        None => quote!(::core::option::Option::None),
    };
    let per_element = per_element(l);
    quote! {
        ::iwhvi::__private::LatentSpec {
            name: ::std::string::String::from(#name),
            shape: #shape,
            transform: #transform,
            dependent_bounds: #dependent,
            per_element: #per_element,
            dependent_affine: #dependent_affine,
        }
    }
}

/// Its step of the log joint: constrain its block of `__u`, add the log
/// Jacobian and the prior's log density, and bind its name.
pub fn log_joint_step(l: &Latent<'_>) -> TokenStream {
    step(l, false)
}

/// Its step of `first_invalid_term` (`__T = f64`): as
/// [`log_joint_step`], each term checked, the first that is not finite
/// returned (`?`) as an `InvalidTerm` naming it.
pub fn checked_step(l: &Latent<'_>) -> TokenStream {
    step(l, true)
}

/// How a step adds its terms to `__lp`: as they are (`log_joint`), or each
/// checked and the first that is not finite returned as an `InvalidTerm`
/// naming it (`first_invalid_term`).
struct Terms {
    /// The latent's name, as the `InvalidTerm` gives it.
    name: String,
    checked: bool,
}

impl Terms {
    /// The `Term::Prior` of this latent at `element` (an `Option<usize>`).
    fn prior(&self, element: TokenStream) -> TokenStream {
        let name = &self.name;
        quote!(|| ::iwhvi::__private::Term::Prior { latent: #name, element: #element })
    }

    /// The log Jacobian `value` (checked, its `Term::Transform`).
    fn jacobian(&self, value: TokenStream) -> TokenStream {
        let name = &self.name;
        if self.checked {
            quote!(::iwhvi::__private::checked_value(#value, || ::iwhvi::__private::Term::Transform { latent: #name })?)
        } else {
            value
        }
    }

    /// `__lp += log p(value)` under the univariate prior `new`.
    fn density(&self, new: &TokenStream, value: TokenStream, element: TokenStream) -> TokenStream {
        if self.checked {
            let term = self.prior(element);
            quote!(__lp += ::iwhvi::__private::checked_log_prob(#new, #value, #term)?;)
        } else {
            quote!(__lp += ::iwhvi::__private::log_prob_or_neg_inf(#new, #value);)
        }
    }
}

/// Its step of the log joint, plain or `checked`: bind `__transform`,
/// constrain the latent's block of `__u` by the kind of its constraint
/// (affine, per element, bounds depending on other latents, a scalar or a
/// vector under a transform), add the log Jacobian and the prior's log
/// density, and rebind a matrix latent as a `DMatrix`.
fn step(l: &Latent<'_>, checked: bool) -> TokenStream {
    let terms = Terms {
        name: l.field.ident.to_string(),
        checked,
    };
    let transform = transform(&l.transform);
    let as_matrix = as_matrix(l);
    let scalar_density = scalar_density(l, &terms);
    let vector_density = vector_density(l, &terms);
    let body = if let Some(a) = &l.affine {
        if l.shape.is_scalar() {
            affine_scalar_step(l, a, &terms, scalar_density)
        } else {
            affine_vector_step(l, a, &terms, vector_density)
        }
    } else if let Some(each) = &l.per_element {
        per_element_step(l, each, &terms, vector_density)
    } else if let Some(d) = l.bounds.as_ref().and_then(|b| b.dependent.as_ref()) {
        dependent_bounds_step(l, d, &terms, scalar_density)
    } else if l.shape.is_scalar() {
        scalar_step(l, &terms, scalar_density)
    } else {
        vector_step(l, &terms, vector_density)
    };
    quote!(let __transform = #transform; #body #as_matrix)
}

/// A scalar latent's prior term: its semi-implicit prior's estimate, or
/// its prior's log density (none for an improper flat prior).
fn scalar_density(l: &Latent<'_>, terms: &Terms) -> Option<TokenStream> {
    let ident = &l.field.ident;
    match &l.mixing {
        Some(m) => Some(crate::model::semi_implicit_prior::density(
            l,
            m,
            terms.checked,
        )),
        None => l
            .prior
            .as_ref()
            .map(|new| terms.density(new, quote!(#ident), quote!(::core::option::Option::None))),
    }
}

/// A vector latent's prior term: a multivariate prior's log density, or a
/// loop over the elements (binding the loop index the user named).
fn vector_density(l: &Latent<'_>, terms: &Terms) -> Option<TokenStream> {
    let ident = &l.field.ident;
    let none = quote!(::core::option::Option::None);
    let bind_index = l.index.map(|i| quote!(let #i: usize = __k;));
    l.prior.as_ref().map(|new| {
        if l.family.multivariate() {
            if terms.checked {
                let term = terms.prior(none.clone());
                quote!(__lp += ::iwhvi::__private::checked_log_prob_multi(#new, &#ident, #term)?;)
            } else {
                quote!(__lp += ::iwhvi::__private::log_prob_multi_or_neg_inf(#new, &#ident);)
            }
        } else {
            let element = terms.density(
                new,
                quote!(#ident[__k]),
                quote!(::core::option::Option::Some(__k)),
            );
            quote! {
                for __k in 0..__n {
                    #bind_index
                    #element
                }
            }
        }
    })
}

/// A scalar with an offset and multiplier depending on other latents:
/// `z = offset + multiplier·u`, log Jacobian `ln multiplier`.
fn affine_scalar_step(
    l: &Latent<'_>,
    a: &DependentAffine,
    terms: &Terms,
    density: Option<TokenStream>,
) -> TokenStream {
    let ident = &l.field.ident;
    let (offset, multiplier) = (&a.offset, &a.multiplier);
    let log_jacobian = terms.jacobian(quote!(::iwhvi::__private::Scalar::ln(__multiplier)));
    quote! {
        let (__offset, __multiplier) = (#offset, #multiplier);
        let #ident = __offset + __multiplier * __u[__at];
        __at += 1;
        __lp += #log_jacobian;
        #density
    }
}

/// A vector with an offset and multiplier depending on other latents:
/// `z_k = offset + multiplier·u_k`, log Jacobian `n ln multiplier`.
fn affine_vector_step(
    l: &Latent<'_>,
    a: &DependentAffine,
    terms: &Terms,
    density: Option<TokenStream>,
) -> TokenStream {
    let (ident, len) = (&l.field.ident, &l.len);
    let (offset, multiplier) = (&a.offset, &a.multiplier);
    let log_jacobian = terms.jacobian(quote!(
        ::iwhvi::__private::Scalar::ln(__multiplier) * (__n as f64)
    ));
    quote! {
        let (__offset, __multiplier) = (#offset, #multiplier);
        let __n = #len;
        let #ident: ::std::vec::Vec<__T> = (0..__n)
            .map(|__k| __offset + __multiplier * __u[__at + __k])
            .collect();
        __at += __n;
        __lp += #log_jacobian;
        #density
    }
}

/// A vector whose elements each have their own transform (`each`, an
/// expression of the element index): constrained one by one.
fn per_element_step(
    l: &Latent<'_>,
    each: &TokenStream,
    terms: &Terms,
    density: Option<TokenStream>,
) -> TokenStream {
    let (ident, len) = (&l.field.ident, &l.len);
    let bind_index = l.index.map(|i| quote!(let #i: usize = __k;));
    let log_jacobian = terms.jacobian(quote!(__log_jacobian));
    quote! {
        let __n = #len;
        let mut #ident: ::std::vec::Vec<__T> =
            ::std::vec![<__T as ::iwhvi::__private::Scalar>::constant(0.0); __n];
        for __k in 0..__n {
            #bind_index
            let (__z, __log_jacobian) = (#each).forward_scalar(__u[__at + __k]);
            #ident[__k] = __z;
            __lp += #log_jacobian;
        }
        __at += __n;
        #density
    }
}

/// A scalar between bounds depending on other latents:
/// `z = low + (high − low)·σ(u)`, log Jacobian
/// `ln(high − low) + ln σ(u) + ln σ(−u)`.
fn dependent_bounds_step(
    l: &Latent<'_>,
    d: &Dependent,
    terms: &Terms,
    density: Option<TokenStream>,
) -> TokenStream {
    let ident = &l.field.ident;
    let (low, high) = (&d.low, &d.high);
    let log_jacobian = terms.jacobian(quote! {
        ::iwhvi::__private::Scalar::ln(__width)
            + ::iwhvi::__private::Scalar::log_sigmoid(__s)
            + ::iwhvi::__private::Scalar::log_sigmoid(-__s)
    });
    quote! {
        let (__low, __high) = (#low, #high);
        let __s = __u[__at];
        __at += 1;
        let __width = __high - __low;
        let #ident = __low + __width * ::iwhvi::__private::Scalar::sigmoid(__s);
        __lp += #log_jacobian;
        #density
    }
}

/// A scalar under its fixed transform (`__transform.forward_scalar`).
fn scalar_step(l: &Latent<'_>, terms: &Terms, density: Option<TokenStream>) -> TokenStream {
    let ident = &l.field.ident;
    let log_jacobian = terms.jacobian(quote!(__log_jacobian));
    quote! {
        let (#ident, __log_jacobian) = __transform.forward_scalar(__u[__at]);
        __at += 1;
        __lp += #log_jacobian;
        #density
    }
}

/// A vector (a simplex, ordered, …) under its fixed transform
/// (`__transform.forward` over its `m` unconstrained coordinates).
fn vector_step(l: &Latent<'_>, terms: &Terms, density: Option<TokenStream>) -> TokenStream {
    let (ident, len) = (&l.field.ident, &l.len);
    let log_jacobian =
        terms.jacobian(quote!(__transform.forward(&__u[__at..__at + __m], &mut #ident)));
    quote! {
        let __n = #len;
        let __m = __transform.unconstrained_len(__n).unwrap_or(0);
        let mut #ident: ::std::vec::Vec<__T> =
            ::std::vec![<__T as ::iwhvi::__private::Scalar>::constant(0.0); __n];
        __lp += #log_jacobian;
        __at += __m;
        #density
    }
}

/// A matrix latent's rebinding from its row-major entries (read by the
/// density) to a `DMatrix` (read by the later steps).
fn as_matrix(l: &Latent<'_>) -> TokenStream {
    let Some(order) = &l.order else {
        return quote!();
    };
    let ident = &l.field.ident;
    quote! {
        let #ident = {
            let __k: usize = #order;
            ::iwhvi::__private::nalgebra::DMatrix::from_row_slice(__k, __k, &#ident)
        };
    }
}

fn rejection_failed(l: &Latent<'_>) -> TokenStream {
    let latent_name = l.field.ident.to_string();
    quote!(::iwhvi::__private::distributions::DistributionError::RejectionFailed { latent: #latent_name, tries: __tries })
}

/// Its ancestral draw (in `sample_prior`, where `__T = f64`).
pub fn draw(l: &Latent<'_>) -> TokenStream {
    let draw = draw_flat(l);
    let as_matrix = as_matrix(l);
    let mixing = l
        .mixing
        .as_ref()
        .map(crate::model::semi_implicit_prior::draw);
    quote!(#mixing #draw #as_matrix)
}

/// The draw, a matrix latent's as its row-major entries.
fn draw_flat(l: &Latent<'_>) -> TokenStream {
    let sample = quote!(::iwhvi::__private::rand::distr::Distribution::<f64>::sample);
    let ident = &l.field.ident;
    let Some(bounds) = &l.bounds else {
        return draw_unbounded(l);
    };
    if !l.shape.is_scalar() {
        return draw_bounded_vector(l, bounds);
    }
    let low = bounds
        .low
        .clone()
        .unwrap_or(quote!(::core::primitive::f64::NEG_INFINITY));
    let high = bounds
        .high
        .clone()
        .unwrap_or(quote!(::core::primitive::f64::INFINITY));
    match (&l.prior, bounds.low.is_some() && bounds.high.is_some()) {
        // Both bounds (dependent bounds always have both): a flat prior
        // is uniform between them.
        (None, true) => quote! {
            let (__low, __high): (f64, f64) = (#low, #high);
            let #ident: f64 = #sample(&::iwhvi::__private::distributions::Uniform::new(__low, __high)?, __rng);
        },
        (None, false) => draw_unbounded(l),
        (Some(new), _) => {
            let rejection_failed = rejection_failed(l);
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
    }
}

/// A bounded vector latent's draw: each element from its prior restricted
/// to its bounds (uniform between them under a flat prior), by rejection;
/// under a multivariate prior, whole vectors until every element is inside.
fn draw_bounded_vector(l: &Latent<'_>, bounds: &Bounds) -> TokenStream {
    let sample = quote!(::iwhvi::__private::rand::distr::Distribution::<f64>::sample);
    let (ident, len) = (&l.field.ident, &l.len);
    let bind_index = l.index.map(|i| quote!(let #i: usize = __k;));
    let low = bounds
        .low
        .clone()
        .unwrap_or(quote!(::core::primitive::f64::NEG_INFINITY));
    let high = bounds
        .high
        .clone()
        .unwrap_or(quote!(::core::primitive::f64::INFINITY));
    let rejection_failed = rejection_failed(l);
    let element = match (&l.prior, bounds.low.is_some() && bounds.high.is_some()) {
        (None, true) => {
            quote!(#sample(&::iwhvi::__private::distributions::Uniform::new(__low, __high)?, __rng))
        }
        (None, false) => return draw_unbounded(l),
        (Some(_), _) if l.family.multivariate() => {
            let new = l.prior.as_ref().expect("matched");
            return quote! {
                let __n = #len;
                let __bounds: ::std::vec::Vec<(f64, f64)> = (0..__n)
                    .map(|__k| { #bind_index (#low, #high) })
                    .collect();
                let mut __tries = 0usize;
                let #ident: ::std::vec::Vec<f64> = loop {
                    let __v: ::std::vec::Vec<f64> = ::iwhvi::__private::DrawVector::draw_vector(&#new?, __rng);
                    if __v.iter().zip(&__bounds).all(|(&__x, &(__low, __high))| __x > __low && __x < __high) {
                        break __v;
                    }
                    __tries += 1;
                    if __tries == 100_000 {
                        return ::core::result::Result::Err(#rejection_failed);
                    }
                };
            };
        }
        (Some(new), _) => quote! {{
            let mut __tries = 0usize;
            loop {
                let __x: f64 = #sample(&#new?, __rng);
                if __x > __low && __x < __high {
                    break __x;
                }
                __tries += 1;
                if __tries == 100_000 {
                    return ::core::result::Result::Err(#rejection_failed);
                }
            }
        }},
    };
    quote! {
        let __n = #len;
        let mut #ident: ::std::vec::Vec<f64> = ::std::vec::Vec::with_capacity(__n);
        for __k in 0..__n {
            #bind_index
            let (__low, __high): (f64, f64) = (#low, #high);
            let __x: f64 = #element;
            #ident.push(__x);
        }
    }
}

fn draw_unbounded(l: &Latent<'_>) -> TokenStream {
    let sample = quote!(::iwhvi::__private::rand::distr::Distribution::<f64>::sample);
    let (ident, len) = (&l.field.ident, &l.len);
    let family_name = l.family.name;
    let improper = quote!(::iwhvi::__private::distributions::DistributionError::Improper { distribution: #family_name });
    match (&l.prior, l.shape.is_scalar(), l.constraint) {
        (None, _, Some(Constraint::Simplex)) => quote! {
            // Flat on the simplex is Dirichlet(1, …, 1): normalised exponentials.
            let __n = #len;
            let __exponential = ::iwhvi::__private::distributions::Exponential::new(1.0)?;
            let mut #ident: ::std::vec::Vec<f64> = (0..__n).map(|_| #sample(&__exponential, __rng)).collect();
            let __total: f64 = #ident.iter().sum();
            for __x in &mut #ident {
                *__x /= __total;
            }
        },
        (None, true, _) => {
            quote!(let #ident: f64 = return ::core::result::Result::Err(#improper);)
        }
        (None, false, _) => {
            quote!(let #ident: ::std::vec::Vec<f64> = return ::core::result::Result::Err(#improper);)
        }
        (Some(new), true, _) => quote!(let #ident: f64 = #sample(&#new?, __rng);),
        (Some(new), false, _) if l.family.multivariate() => quote! {
            let #ident: ::std::vec::Vec<f64> = ::iwhvi::__private::DrawVector::draw_vector(&#new?, __rng);
        },
        (Some(new), false, constraint) => draw_elementwise(l, new, constraint),
    }
}

/// Elementwise draws, rejected until they satisfy the constraint (the
/// prior is the elementwise density restricted to it).
fn draw_elementwise(
    l: &Latent<'_>,
    new: &TokenStream,
    constraint: Option<Constraint>,
) -> TokenStream {
    let sample = quote!(::iwhvi::__private::rand::distr::Distribution::<f64>::sample);
    let (ident, len) = (&l.field.ident, &l.len);
    let bind_index = l.index.map(|i| quote!(let #i: usize = __k;));
    let rejection_failed = rejection_failed(l);
    let accept = match constraint {
        Some(Constraint::Ordered) => quote!(#ident.windows(2).all(|w| w[0] < w[1])),
        Some(Constraint::PositiveOrdered) => {
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

/// The typed latents' field.
pub fn typed_field(l: &Latent<'_>) -> TokenStream {
    let (ident, ty) = (&l.field.ident, &l.field.ty);
    let doc = format!("The latent `{ident}`, constrained.");
    quote!(#[doc = #doc] pub #ident: #ty)
}

/// Binds the latent's name to its value in `__latents` (typed).
pub fn binding(l: &Latent<'_>) -> TokenStream {
    let ident = &l.field.ident;
    match l.shape {
        Shape::Scalar(_) => quote!(let #ident: f64 = __latents.#ident;),
        Shape::Matrix => {
            quote!(let #ident: &::iwhvi::__private::nalgebra::DMatrix<f64> = &__latents.#ident;)
        }
        _ => quote!(let #ident: &[f64] = &__latents.#ident[..];),
    }
}
