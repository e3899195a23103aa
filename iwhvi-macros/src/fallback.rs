//! What a macro emits when the user's struct has a mistake: the errors,
//! and the items a correct struct would have given, in the same shape
//! (the data struct without its latents, `new`, the typed latents, the
//! samplers, `impl Model`), with bodies that are never run, so that later
//! uses of the struct add no errors of their own (as clap_derive's
//! dummies). A guide's are [`crate::guide::stubs`].

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The attributes the macros read on fields.
const ROLES: &[&str] = &[
    "data",
    "latent",
    "observe",
    "factor",
    "derived",
    "param",
    "mixing",
    "reverse",
    "prior_mixing",
    "transformed",
];

/// The role a field's attributes name first, if any.
fn role_of(field: &syn::Field) -> Option<&'static str> {
    field
        .attrs
        .iter()
        .find_map(|a| ROLES.iter().find(|r| a.path().is_ident(r)).copied())
}

/// The struct's fields with their roles, as [`fields`] gives them.
type Fields = [(syn::Field, Option<&'static str>)];

/// The struct's named fields, each name once (a second one is reported
/// already), with their role.
fn fields(input: &syn::DeriveInput) -> Option<Vec<(syn::Field, Option<&'static str>)>> {
    let syn::Data::Struct(syn::DataStruct {
        fields: syn::Fields::Named(named),
        ..
    }) = &input.data
    else {
        return None;
    };
    let mut seen = std::collections::BTreeSet::new();
    Some(
        named
            .named
            .iter()
            .filter(|f| seen.insert(f.ident.as_ref().map(ToString::to_string)))
            .map(|f| {
                let role = role_of(f);
                let mut f = f.clone();
                f.attrs
                    .retain(|a| !ROLES.iter().any(|r| a.path().is_ident(r)));
                (f, role)
            })
            .collect(),
    )
}

/// A model with a mistake: the errors, its items as a correct model would
/// have them, and a hand-over macro that tells its guides the model
/// failed (so they add no errors).
pub fn model(input: &syn::DeriveInput, errors: syn::Error) -> TokenStream {
    let handover = crate::handover::failed_model(&input.ident);
    let errors = errors.into_compile_error();
    let (Some(fields), true) = (fields(input), input.generics.params.is_empty()) else {
        let input = without_roles(input);
        return quote!(#handover #[allow(dead_code)] #input #errors);
    };
    let structs = structs(input, &fields);
    let methods = inherent_methods(input, &fields);
    let model_impl = model_impl(&input.ident);
    quote! {
        #handover

        #structs

        #methods

        #model_impl

        #errors
    }
}

/// Not a plain struct: declared as it is, without `#[variational]` and
/// its fields' roles.
fn without_roles(input: &syn::DeriveInput) -> syn::DeriveInput {
    let mut input = input.clone();
    input.attrs.retain(|a| !a.path().is_ident("variational"));
    if let syn::Data::Struct(s) = &mut input.data {
        for f in &mut s.fields {
            f.attrs
                .retain(|a| !ROLES.iter().any(|r| a.path().is_ident(r)));
        }
    }
    input
}

/// The fields whose role is one of `roles` (`None`: no role, plain data).
fn with<'f>(fields: &'f Fields, roles: &[Option<&str>]) -> Vec<&'f syn::Field> {
    fields
        .iter()
        .filter(|(_, r)| roles.contains(r))
        .map(|(f, _)| f)
        .collect()
}

/// The fields as `pub name: Type`, as the typed latents, observations and
/// derived quantities have them.
fn public(fs: Vec<&syn::Field>) -> Vec<TokenStream> {
    fs.into_iter()
        .map(|f| {
            let (name, ty) = (&f.ident, &f.ty);
            quote!(pub #name: #ty)
        })
        .collect()
}

/// A body emitted only beside `compile_error!`, so the build fails and it
/// never runs.
fn never() -> TokenStream {
    quote!(::core::unreachable!(
        "never run: the struct has a compile error"
    ))
}

/// The data struct (its data and learned parameters' fields, private) and
/// the typed `…Latents`, `…Observations` and `…Derived` structs.
fn structs(input: &syn::DeriveInput, fields: &Fields) -> TokenStream {
    let (ident, vis) = (&input.ident, &input.vis);
    let attrs = input
        .attrs
        .iter()
        .filter(|a| !a.path().is_ident("variational"));
    let data_defs = with(fields, &[None, Some("data"), Some("observe")])
        .into_iter()
        .map(|f| {
            let (attrs, name, ty) = (&f.attrs, &f.ident, &f.ty);
            quote!(#(#attrs)* #name: #ty)
        });
    // The struct keeps its learned parameters' fields too.
    let learned = with(fields, &[Some("param")]);
    let latents = public(with(fields, &[Some("latent")]));
    let observations = public(with(fields, &[Some("observe")]));
    let derived = public(with(fields, &[Some("derived"), Some("transformed")]));
    let (latents_ident, observations_ident, derived_ident) = (
        format_ident!("{}Latents", ident),
        format_ident!("{}Observations", ident),
        format_ident!("{}Derived", ident),
    );
    quote! {
        #(#attrs)*
        #[allow(dead_code)]
        #vis struct #ident {
            #(#data_defs,)*
            #(#learned,)*
        }

        #[allow(missing_docs, dead_code)]
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq)]
        #vis struct #latents_ident {
            #(#latents,)*
        }

        #[allow(missing_docs, dead_code)]
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq)]
        #vis struct #observations_ident {
            #(#observations,)*
        }

        #[allow(missing_docs, dead_code)]
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq)]
        #vis struct #derived_ident {
            #(#derived,)*
        }
    }
}

/// The model's inherent methods, as a correct model has them (the data
/// accessors, `new`, the typed latents, the samplers, the JSON readers),
/// with bodies that never run.
fn inherent_methods(input: &syn::DeriveInput, fields: &Fields) -> TokenStream {
    let (ident, vis) = (&input.ident, &input.vis);
    let data = with(fields, &[None, Some("data"), Some("observe")]);
    // Private fields' accessors, as a correct model has them.
    let accessors: Vec<TokenStream> = data
        .iter()
        .filter_map(|f| {
            let scalar = crate::model::ast::shape(&f.ty).is_some_and(|s| s.is_scalar());
            Some(crate::model::emit::data_accessor(
                &f.attrs,
                &f.vis,
                f.ident.as_ref()?,
                &f.ty,
                scalar,
                false,
            ))
        })
        .collect();
    let params = data.iter().map(|f| {
        let (name, ty) = (&f.ident, &f.ty);
        quote!(#name: #ty)
    });
    let (latents_ident, observations_ident, derived_ident) = (
        format_ident!("{}Latents", ident),
        format_ident!("{}Observations", ident),
        format_ident!("{}Derived", ident),
    );
    let core_model = quote!(::iwhvi::__private::iwhvi_core::model);
    let rng = quote!(__R: ::iwhvi::__private::rand::Rng + ?::core::marker::Sized);
    let distribution_error = quote!(::iwhvi::__private::distributions::DistributionError);
    let never = never();
    quote! {
        #[allow(missing_docs, dead_code, unused_variables, clippy::all)]
        impl #ident {
            #(#accessors)*
            #vis fn new(#(#params),*) -> ::core::result::Result<Self, ::iwhvi::__private::DataError> {
                #never
            }
            #vis fn typed_latents(&self, __latents: &#core_model::Latents) -> ::core::option::Option<#latents_ident> {
                #never
            }
            #vis fn unconstrain(&self, __latents: &#latents_ident) -> ::core::result::Result<::std::vec::Vec<f64>, #core_model::LayoutError> {
                #never
            }
            #vis fn latents(&self, u: &[f64]) -> ::core::result::Result<#latents_ident, #core_model::LayoutError> {
                #never
            }
            #vis fn sample_prior<#rng>(&self, __rng: &mut __R) -> ::core::result::Result<#latents_ident, #distribution_error> {
                #never
            }
            #vis fn simulate<#rng>(&self, __latents: &#latents_ident, __rng: &mut __R) -> ::core::result::Result<#observations_ident, #distribution_error> {
                #never
            }
            #vis fn derived_quantities(&self, __latents: &#latents_ident) -> #derived_ident {
                #never
            }
            #vis fn from_json(json: &str) -> ::core::result::Result<Self, ::iwhvi::data::StanDataError> {
                #never
            }
            #vis fn load_json(path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<Self, ::iwhvi::data::StanDataError> {
                #never
            }
            #vis fn from_stan_data(__data: &::iwhvi::data::StanData) -> ::core::result::Result<Self, ::iwhvi::data::StanDataError> {
                #never
            }
        }
    }
}

/// `impl Model`: `layout` and `log_joint`, with bodies that never run.
fn model_impl(ident: &syn::Ident) -> TokenStream {
    let never = never();
    quote! {
        #[allow(unused_variables, clippy::all)]
        impl ::iwhvi::__private::Model for #ident {
            fn layout(&self) -> ::iwhvi::__private::Layout {
                #never
            }
            fn log_joint<__T: ::iwhvi::__private::Scalar>(&self, __u: &[__T]) -> __T {
                #never
            }
        }
    }
}
