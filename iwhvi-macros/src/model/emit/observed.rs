//! An observed field's code: its term of the log joint, its simulation,
//! and the checks of its data.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::model::ast::{Elem, Shape};
use crate::model::plan::Observed;

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

/// Its term of the log joint.
pub fn log_joint_step(o: &Observed<'_>) -> TokenStream {
    let (ident, new) = (&o.field.ident, &o.likelihood);
    if o.family.multivariate() {
        // One draw of the whole vector.
        return quote! {
            let __values: ::std::vec::Vec<__T> =
                self.#ident.iter().map(|__v| <__T as ::iwhvi::__private::Scalar>::constant(*__v)).collect();
            __lp += ::iwhvi::__private::log_prob_multi_or_neg_inf(#new, &__values);
        };
    }
    let element = match o.index {
        Some(i) => quote!(self.#ident[#i]),
        None => quote!(self.#ident),
    };
    let value = scalar_value(o, &element);
    let term = quote!(__lp += ::iwhvi::__private::log_prob_or_neg_inf(#new, #value););
    match o.index {
        Some(i) if !o.shape.is_scalar() => quote!(for #i in 0..self.#ident.len() { #term }),
        _ => term,
    }
}

/// One observed value, `element`, as its likelihood's argument at the
/// log joint's scalar type `__T`: a real as a constant, a count or a
/// bool as a `u64`.
pub(super) fn scalar_value(o: &Observed<'_>, element: &TokenStream) -> TokenStream {
    let real = quote!(<__T as ::iwhvi::__private::Scalar>::constant(#element));
    value_as(o, element, real)
}

/// `element` as its likelihood's argument: a real as `real` writes it, an
/// integer `(element) as u64`, a bool its `u64` (0 or 1).
fn value_as(o: &Observed<'_>, element: &TokenStream, real: TokenStream) -> TokenStream {
    match o.shape.elem() {
        Elem::Real => real,
        Elem::Integer => quote!((#element) as u64),
        Elem::Bool => {
            quote!(<::core::primitive::u64 as ::core::convert::From<bool>>::from(#element))
        }
    }
}

/// Its step of `first_invalid_term` (`__T = f64`): the scalar loop of
/// [`log_joint_step`], each element's term checked, the first that is not
/// finite returned (`?`) as an `InvalidTerm` naming the field and element.
pub fn checked_step(o: &Observed<'_>) -> TokenStream {
    let p = quote!(::iwhvi::__private);
    let (ident, new) = (&o.field.ident, &o.likelihood);
    let name = ident.to_string();
    if o.family.multivariate() {
        return quote! {
            let __values: ::std::vec::Vec<f64> = self.#ident.iter().copied().collect();
            __lp += #p::checked_log_prob_multi(#new, &__values, || #p::Term::Likelihood { field: #name, element: ::core::option::Option::None })?;
        };
    }
    let (element, at) = match o.index {
        Some(i) if !o.shape.is_scalar() => (
            quote!(self.#ident[#i]),
            quote!(::core::option::Option::Some(#i)),
        ),
        // An index comes with a vector (`check::observed`).
        _ => (quote!(self.#ident), quote!(::core::option::Option::None)),
    };
    let value = value_as(o, &element, quote!((#element) as f64));
    let term = quote! {
        __lp += #p::checked_log_prob(#new, #value, || #p::Term::Likelihood { field: #name, element: #at })?;
    };
    match o.index {
        Some(i) if !o.shape.is_scalar() => quote!(for #i in 0..self.#ident.len() { #term }),
        _ => term,
    }
}

/// The names of its plate's hidden methods: element `i`'s arguments and
/// observation.
fn plate_methods_names(o: &Observed<'_>) -> (syn::Ident, syn::Ident, syn::Ident) {
    let ident = &o.field.ident;
    (
        format_ident!("__plate_args_{}", ident),
        format_ident!("__plate_obs_{}", ident),
        format_ident!("__plate_linear_{}", ident),
    )
}

/// Its term of the log joint as one call of the plate driver (one tape
/// node), when the plan has a plate: an adapter implementing `Plate` over
/// the model's hidden methods, and the operands (the latents the arguments
/// read, a scalar as a one-element slice).
pub fn plate_step(o: &Observed<'_>, model: &syn::Ident) -> Option<TokenStream> {
    let plate = o.plate.as_ref()?;
    let (ident, family, obs_ty) = (&o.field.ident, &plate.family, &plate.obs_ty);
    let (args, obs, method) = plate_methods_names(o);
    let name = ident.to_string();
    let linear = plate.linear.as_ref().map(|_| {
        quote! {
            const LINEAR: bool = true;
            fn linear_terms(&self, __i: usize, __offsets: &[usize], __terms: &mut ::std::vec::Vec<(usize, usize, f64)>) {
                self.0.#method(__i, __offsets, __terms)
            }
        }
    });
    let f64_data = super::f64_data::method_name();
    let p = quote!(::iwhvi::__private::plate);
    let kernel = quote!(<::iwhvi::__private::distributions::#family as #p::FamilyKernel>::Kernel);
    let operands = plate.operands.iter().map(|(name, scalar)| {
        if *scalar {
            quote!(::core::slice::from_ref(&#name))
        } else {
            quote!(&#name[..])
        }
    });
    Some(quote! {
        {
            struct __Plate<'__m>(&'__m #model);
            impl #p::Plate for __Plate<'_> {
                type Kernel = #kernel;
                fn kernel(&self) -> Self::Kernel {
                    ::core::default::Default::default()
                }
                fn len(&self) -> usize {
                    self.0.#ident.len()
                }
                fn obs(&self, __i: usize) -> #obs_ty {
                    self.0.#obs(__i)
                }
                fn args<__S: ::iwhvi::__private::Scalar>(&self, __i: usize, __operands: &[&[__S]], __out: &mut [__S]) {
                    self.0.#args::<__S>(__i, __operands, __out)
                }
                fn cache_key(&self) -> ::core::option::Option<#p::PlateKey> {
                    ::core::option::Option::Some(#p::PlateKey::new::<#model>(self.0, #name))
                }
                fn f64_data(&self, __k: usize) -> ::core::option::Option<&[f64]> {
                    self.0.#f64_data(__k)
                }
                #linear
            }
            __lp = #p::preaccumulate(&__Plate(self), __lp, &[#(#operands),*]);
        }
    })
}

/// Its plate's hidden methods on the model: element `i`'s arguments,
/// generic over the scalar (so that `self.x[…]` and helper methods work),
/// and its observation.
pub fn plate_methods(o: &Observed<'_>) -> Option<TokenStream> {
    let plate = o.plate.as_ref()?;
    let index = o.index?;
    let (args_name, obs_name, linear_name) = plate_methods_names(o);
    let (obs, obs_ty) = (&plate.obs, &plate.obs_ty);
    let bindings = plate
        .operands
        .iter()
        .enumerate()
        .map(|(k, (name, scalar))| {
            if *scalar {
                quote!(let #name: __T = __operands[#k][0];)
            } else {
                quote!(let #name: &[__T] = __operands[#k];)
            }
        });
    let outputs = plate
        .args
        .iter()
        .enumerate()
        .map(|(a, value)| quote!(__out[#a] = #value;));
    let linear = plate.linear.as_ref().map(|arguments| {
        let method = &linear_name;
        let pushes = arguments.iter().enumerate().flat_map(|(a, terms)| {
            terms.iter().map(move |t| {
                let (k, c) = (t.operand, &t.coefficient);
                let element = t.element.clone().unwrap_or_else(|| quote!(0usize));
                quote!(__terms.push((#a, __offsets[#k] + #element, #c));)
            })
        });
        quote! {
            #[doc(hidden)]
            #[allow(unused_variables, unused_parens, non_snake_case, non_camel_case_types, clippy::all)]
            #[inline]
            fn #method(&self, __i: usize, __offsets: &[usize], __terms: &mut ::std::vec::Vec<(usize, usize, f64)>) {
                type __T = f64;
                let #index: usize = __i;
                #(#pushes)*
            }
        }
    });
    Some(quote! {
        #linear

        #[doc(hidden)]
        #[allow(unused_variables, unused_parens, non_snake_case, clippy::all)]
        #[inline]
        fn #args_name<__T: ::iwhvi::__private::Scalar>(&self, __i: usize, __operands: &[&[__T]], __out: &mut [__T]) {
            let #index: usize = __i;
            #(#bindings)*
            #(#outputs)*
        }

        #[doc(hidden)]
        #[allow(unused_variables, unused_parens, non_snake_case, clippy::all)]
        #[inline]
        fn #obs_name(&self, __i: usize) -> #obs_ty {
            let #index: usize = __i;
            #obs
        }
    })
}

/// Its simulation given the latents (`__T = f64`).
pub fn simulation(o: &Observed<'_>) -> TokenStream {
    let (ident, new) = (&o.field.ident, &o.likelihood);
    if o.family.multivariate() {
        return quote! {
            let #ident: ::std::vec::Vec<f64> = ::iwhvi::__private::DrawVector::draw_vector(&#new?, __rng);
        };
    }
    let elem_ty = element_type(&o.field.ty);
    let sample = quote!(::iwhvi::__private::rand::distr::Distribution::sample);
    let one = match o.shape.elem() {
        Elem::Real => quote!(#sample(&#new?, __rng)),
        Elem::Integer => quote!({ let __k: u64 = #sample(&#new?, __rng); __k as #elem_ty }),
        Elem::Bool => quote!({ let __k: u64 = #sample(&#new?, __rng); __k != 0 }),
    };
    match o.index {
        Some(i) if !o.shape.is_scalar() => quote! {
            let mut #ident: ::std::vec::Vec<#elem_ty> = ::std::vec::Vec::with_capacity(self.#ident.len());
            for #i in 0..self.#ident.len() {
                #ident.push(#one);
            }
        },
        _ => quote!(let #ident: #elem_ty = #one;),
    }
}

/// The field of the simulated observations' struct.
pub fn simulated_field(o: &Observed<'_>) -> TokenStream {
    let (ident, ty) = (&o.field.ident, &o.field.ty);
    let doc = format!("Simulated `{ident}`.");
    quote!(#[doc = #doc] pub #ident: #ty)
}

/// Its value in the simulated observations' struct literal.
pub fn simulated_value(o: &Observed<'_>) -> TokenStream {
    let ident = &o.field.ident;
    match o.shape {
        Shape::Scalar(_) => quote!(#ident),
        Shape::Array(..) => {
            quote!(#ident: ::core::convert::TryInto::try_into(#ident).expect("one draw per observation"))
        }
        _ => quote!(#ident: ::core::convert::From::from(#ident)),
    }
}

/// The data indexed by the same loop have its length.
pub fn length_checks<'p>(o: &'p Observed<'_>) -> impl Iterator<Item = TokenStream> + 'p {
    let (ident, name) = (&o.field.ident, o.field.ident.to_string());
    o.same_length.iter().map(move |other| {
        let other_ident = format_ident!("{}", other);
        quote! {
            if self.#other_ident.len() != self.#ident.len() {
                return ::core::result::Result::Err(::iwhvi::__private::DataError::LengthMismatch {
                    field: #other, found: self.#other_ident.len(), other: #name, expected: self.#ident.len(),
                });
            }
        }
    })
}

/// A check that every observation lies in its likelihood's support, for
/// the families whose support does not depend on parameters.
pub fn support_check(o: &Observed<'_>) -> Option<TokenStream> {
    let (ident, shape, family) = (&o.field.ident, o.shape, o.family);
    if family.multivariate() {
        return None;
    }
    let name = ident.to_string();
    let distribution = family.name;
    let (test, support) = family.support.data_check(shape.elem())?;
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
