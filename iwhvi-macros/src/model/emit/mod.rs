//! Code generation from a checked [`Plan`]: the data struct and its
//! validating constructor, the typed latents, the samplers, the derived
//! quantities, the `Model` implementation and the hand-over to guides.
//! Nothing here reports an error.

mod f64_data;
mod factor;
mod latent;
mod observed;
mod param;
mod subset;
mod transformed;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::ast::{Elem, Shape};
use super::plan::{Data, DataParam, Plan, Step};

/// Everything the model expands to.
pub fn model(plan: &Plan<'_>) -> TokenStream {
    let parts = [
        data_struct(plan),
        latents_struct(plan),
        samplers(plan),
        crate::handover::model_side(plan),
        derived_struct(plan),
        model_impl(plan),
        f64_data::method(plan),
    ];
    quote!(#(#parts)*)
}

/// The data struct, its constructor and its validation: the private data
/// fields (and the learned parameters'), then one `impl` with `new`, the
/// JSON readers, the accessors, `__init_params`, `__check_reads` and
/// `__validate`.
fn data_struct(plan: &Plan<'_>) -> TokenStream {
    let (ident, vis, attrs) = (&plan.model.ident, &plan.model.vis, &plan.model.attrs);
    // The data fields are private, so that no value reaches the model
    // without `new`'s checks (and the plate record's copies of the data
    // stay the data); each is read through an accessor of its name, with
    // the field's visibility and docs.
    let data_defs = plan.data.iter().map(|d| {
        let (attrs, ident, ty) = (&d.field.attrs, &d.field.ident, &d.field.ty);
        quote!(#(#attrs)* #ident: #ty)
    });
    let accessors = plan.data.iter().map(|d| {
        let ident = &d.field.ident;
        data_accessor(
            &d.field.attrs,
            &d.field.vis,
            ident,
            &d.field.ty,
            d.shape.is_some_and(Shape::is_scalar),
            true,
        )
    });
    let data_defs = data_defs.chain(plan.params.iter().map(param::field_def));
    let init_params = (!plan.params.is_empty()).then(|| param::init_method(plan));
    let (new, from_json) = (constructor(plan), from_json(plan));
    let (check_reads, validate) = (check_reads_method(plan), validate_method(plan));
    quote! {
        #(#attrs)*
        #vis struct #ident {
            #(#data_defs,)*
        }

        impl #ident {
            #new

            #from_json

            #(#accessors)*

            #init_params

            #check_reads

            #validate
        }
    }
}

/// `new(x, y, ..)`: the struct from its data fields (the learned
/// parameters at their initial values), checked by `__check_reads` and
/// `__validate`.
fn constructor(plan: &Plan<'_>) -> TokenStream {
    let (ident, vis) = (&plan.model.ident, &plan.model.vis);
    let data_params = plan.data.iter().map(|d| {
        let (ident, ty) = (&d.field.ident, &d.field.ty);
        quote!(#ident: #ty)
    });
    let data_names = plan.data.iter().map(|d| &d.field.ident);
    // Reads at positions the data may not have are checked first
    // (`__check_reads`): the learned parameters' initial values and every
    // check of `__validate` evaluate the attributes that make them.
    let construct = if plan.params.is_empty() {
        quote! {
            let __model = Self { #(#data_names),* };
            __model.__check_reads()?;
        }
    } else {
        let param_names = plan.params.iter().map(|p| &p.field.ident);
        quote! {
            let mut __model = Self {
                #(#data_names,)*
                #(#param_names: ::core::default::Default::default(),)*
            };
            __model.__check_reads()?;
            __model.__init_params()?;
        }
    };
    let doc_new = format!(
        "The model `{ident}` with its data, checked: finite reals, matching lengths, observations inside their likelihood's support, data used as distribution parameters inside their domains."
    );
    quote! {
        #[doc = #doc_new]
        ///
        /// # Errors
        /// A `DataError` naming the field.
        #[allow(clippy::too_many_arguments)]
        #vis fn new(#(#data_params),*) -> ::core::result::Result<Self, ::iwhvi::__private::DataError> {
            #construct
            __model.__validate()?;
            ::core::result::Result::Ok(__model)
        }
    }
}

/// `__check_reads`: every read of data or latents at a position they may
/// not have (literal positions, lengths read at the loop index, latent
/// lengths, computed positions) is in range.
fn check_reads_method(plan: &Plan<'_>) -> TokenStream {
    // Reads of data at literal positions, first: the checks below
    // evaluate the attributes that make them.
    let literal_checks = super::literal_access::checks(plan.model);
    let computed_checks = super::computed_access::checks(plan);
    let length_checks = plan.observations().flat_map(observed::length_checks);
    let latent_checks = plan.latents().map(latent::length_checks);
    quote! {
        // Literal positions first, then the lengths of the data read
        // at the loop index and of the latents, then computed positions
        // (which may read data at those). `new` runs it before
        // `__validate`, which therefore does not repeat them.
        #[allow(unused_parens, non_snake_case, clippy::all)]
        fn __check_reads(&self) -> ::core::result::Result<(), ::iwhvi::__private::DataError> {
            #(#literal_checks)*
            #(#length_checks)*
            #(#latent_checks)*
            #(#computed_checks)*
            ::core::result::Result::Ok(())
        }
    }
}

/// `__validate`: finite reals, observations inside their likelihood's
/// support, data used as distribution parameters inside their domains,
/// and a latent layout `Model::layout` can build.
fn validate_method(plan: &Plan<'_>) -> TokenStream {
    let finite_checks = plan
        .data
        .iter()
        .filter(|d| d.shape.is_some_and(|s| s.elem() == Elem::Real))
        .map(finite_check);
    let support_checks = plan.observations().filter_map(observed::support_check);
    let parameter_checks = plan.steps.iter().flat_map(|step| match step {
        Step::Latent(l) => parameter_checks(&l.data_params, &l.field.ident, l.family.name, &l.len),
        Step::Observed(o) => {
            let ident = &o.field.ident;
            parameter_checks(
                &o.data_params,
                ident,
                o.family.name,
                &quote!(self.#ident.len()),
            )
        }
        _ => Vec::new(),
    });
    // The layout `Model::layout` builds from the data (a simplex of
    // `len = k` entries with `k = 0` has none): rejected here, so that
    // `layout` cannot fail later.
    let layout_specs = plan.latents().map(latent::spec);
    quote! {
        fn __validate(&self) -> ::core::result::Result<(), ::iwhvi::__private::DataError> {
            #(#finite_checks)*
            #(#support_checks)*
            #(#parameter_checks)*
            // The specs as `layout` writes them (its lints allowed likewise).
            #[allow(clippy::all)]
            let __layout = ::iwhvi::__private::Layout::try_new(::std::vec![#(#layout_specs),*]);
            if let ::core::result::Result::Err(__e) = __layout {
                return ::core::result::Result::Err(::iwhvi::__private::DataError::LatentShape(__e));
            }
            ::core::result::Result::Ok(())
        }
    }
}

/// The check that a real data field is finite: a `DataError::NotFinite`
/// naming the field and the first index that is not.
fn finite_check(d: &Data<'_>) -> TokenStream {
    let (ident, name) = (&d.field.ident, d.field.ident.to_string());
    let values = if d.shape.is_some_and(Shape::is_scalar) {
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
}

/// The read accessor of a data field: `fn x(&self) -> &T` (a scalar by
/// value), with the field's visibility and doc comments; its body reads
/// the field, or never runs (`read = false`, the fallback's).
pub(crate) fn data_accessor(
    attrs: &[syn::Attribute],
    vis: &syn::Visibility,
    ident: &syn::Ident,
    ty: &syn::Type,
    scalar: bool,
    read: bool,
) -> TokenStream {
    let docs: Vec<&syn::Attribute> = attrs.iter().filter(|a| a.path().is_ident("doc")).collect();
    let note = format!(
        "The data `{ident}`, read-only: a model's data are set once, by `new` (which checks them) or `from_json`."
    );
    let (ret, body) = match (scalar, read) {
        (_, false) => (
            if scalar { quote!(#ty) } else { quote!(&#ty) },
            quote!(::core::unreachable!(
                "never run: the struct has a compile error"
            )),
        ),
        (true, true) => (quote!(#ty), quote!(self.#ident)),
        (false, true) => (quote!(&#ty), quote!(&self.#ident)),
    };
    let docs = if docs.is_empty() {
        quote!(#[doc = #note])
    } else {
        quote!(#(#docs)* #[doc = ""] #[doc = #note])
    };
    quote! {
        #docs
        #[allow(dead_code)]
        #[inline]
        #vis fn #ident(&self) -> #ret {
            #body
        }
    }
}

/// The checks that data used as parameters of `term`'s distribution lie in
/// their domains: a scalar, or the elements the term reads (the first
/// `len`).
fn parameter_checks(
    params: &[DataParam],
    term: &syn::Ident,
    distribution: &str,
    len: &TokenStream,
) -> Vec<TokenStream> {
    let term = term.to_string();
    params
        .iter()
        .filter_map(|p| {
            let test = p.domain.data_check()?;
            let (data, parameter, requirement) = (&p.data, p.parameter, p.domain.requirement());
            let name = data.to_string();
            let values = if p.scalar {
                quote!(::core::iter::once(&self.#data))
            } else {
                quote!(self.#data.iter().take(#len))
            };
            Some(quote! {
                for (__index, __value) in #values.enumerate() {
                    let __value = *__value as f64;
                    if !(#test) {
                        return ::core::result::Result::Err(::iwhvi::__private::DataError::InvalidParameter {
                            field: #name, index: __index, value: __value, term: #term,
                            distribution: #distribution, parameter: #parameter, requirement: #requirement,
                        });
                    }
                }
            })
        })
        .collect()
}

/// `from_json`, `load_json` and `from_stan_data`: the data fields read by
/// name from Stan-format JSON, then `new`. Every data field has a type the
/// reader knows (reals, integers, booleans, their arrays and `Vec`s,
/// nalgebra's `DVector<f64>` and `DMatrix<f64>`): any other type is a
/// compile error before emission.
fn from_json(plan: &Plan<'_>) -> TokenStream {
    let vis = &plan.model.vis;
    let reads = plan.data.iter().map(|d| {
        let (ty, name) = (&d.field.ty, d.field.ident.to_string());
        quote!(__data.get_field::<#ty>(#name)?)
    });
    quote! {
        /// The model with its data read from Stan-format JSON text (as
        /// CmdStan and posteriordb write it): each data field by its name
        /// (or the one variable that differs from it only in case, as `K`
        /// for a field `k`), then checked as [`new`](Self::new) checks it.
        ///
        /// # Errors
        /// A `StanDataError` naming the variable (and element) that is
        /// missing or of the wrong type or length, or wrapping the
        /// constructor's `DataError`.
        #[allow(dead_code)]
        #vis fn from_json(json: &str) -> ::core::result::Result<Self, ::iwhvi::data::StanDataError> {
            Self::from_stan_data(&::iwhvi::data::StanData::from_json_str(json)?)
        }

        /// [`from_json`](Self::from_json) on the file at `path`.
        ///
        /// # Errors
        /// As [`from_json`](Self::from_json), or the file cannot be read.
        #[allow(dead_code)]
        #vis fn load_json(
            path: impl ::core::convert::AsRef<::std::path::Path>,
        ) -> ::core::result::Result<Self, ::iwhvi::data::StanDataError> {
            Self::from_stan_data(&::iwhvi::data::StanData::load(path)?)
        }

        /// The model with its data taken by name from parsed Stan data.
        ///
        /// # Errors
        /// As [`from_json`](Self::from_json).
        #[allow(dead_code)]
        #vis fn from_stan_data(
            __data: &::iwhvi::data::StanData,
        ) -> ::core::result::Result<Self, ::iwhvi::data::StanDataError> {
            ::core::result::Result::Ok(Self::new(#(#reads),*)?)
        }
    }
}

/// The typed latents and the conversions to and from named latents and
/// unconstrained points.
fn latents_struct(plan: &Plan<'_>) -> TokenStream {
    let (ident, vis) = (&plan.model.ident, &plan.model.vis);
    let latents_ident = format_ident!("{}Latents", ident);
    let latent_defs = plan.latents().map(latent::typed_field);
    let typed_checks = plan.latents().map(|l| {
        let (name, len) = (l.field.ident.to_string(), &l.len);
        quote! {
            if __latents.get(#name)?.len() != #len {
                return ::core::option::Option::None;
            }
        }
    });
    let latent_reads = plan.latents().map(|l| {
        let ident = &l.field.ident;
        let name = ident.to_string();
        let read = quote!(__latents.get(#name)?);
        match l.shape {
            Shape::Scalar(_) => quote!(#ident: #read[0]),
            Shape::Array(..) => quote!(#ident: ::core::convert::TryInto::try_into(#read).ok()?),
            Shape::Matrix => {
                let order = &l.order;
                quote!(#ident: { let __k: usize = #order; ::iwhvi::__private::nalgebra::DMatrix::from_row_slice(__k, __k, #read) })
            }
            _ => quote!(#ident: #read.to_vec()),
        }
    });
    let latent_named = plan.latents().map(|l| {
        let (ident, name) = (&l.field.ident, l.field.ident.to_string());
        match l.shape {
            Shape::Scalar(_) => {
                quote!((::std::string::String::from(#name), ::std::vec![__latents.#ident]))
            }
            // Row-major, as the layout stores it.
            Shape::Matrix => quote!((
                ::std::string::String::from(#name),
                __latents.#ident.transpose().as_slice().to_vec()
            )),
            _ => quote!((::std::string::String::from(#name), __latents.#ident.to_vec())),
        }
    });
    let doc_latents = format!("The constrained latents of [`{ident}`], one field per latent.");
    let core_model = quote!(::iwhvi::__private::iwhvi_core::model);
    quote! {
        #[doc = #doc_latents]
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq)]
        #vis struct #latents_ident {
            #(#latent_defs,)*
        }

        impl #ident {
            /// Typed latents from named ones (a row of posterior `Draws`);
            /// `None` if one is missing or has the wrong length.
            #vis fn typed_latents(&self, __latents: &#core_model::Latents) -> ::core::option::Option<#latents_ident> {
                #(#typed_checks)*
                ::core::option::Option::Some(#latents_ident { #(#latent_reads,)* })
            }

            /// The unconstrained point of typed latents (the inverse of
            /// `latents`).
            ///
            /// # Errors
            /// If a latent lies outside its support.
            #vis fn unconstrain(&self, __latents: &#latents_ident) -> ::core::result::Result<::std::vec::Vec<f64>, #core_model::LayoutError> {
                let __named = #core_model::Latents::from_pairs([#(#latent_named),*]);
                ::iwhvi::__private::Model::layout(self).unconstrain(&__named)
            }

            /// The named, constrained latents of an unconstrained point.
            ///
            /// # Errors
            /// If `u` does not have the model's dimension.
            #vis fn latents(&self, u: &[f64]) -> ::core::result::Result<#latents_ident, #core_model::LayoutError> {
                let __latents = ::iwhvi::__private::Model::layout(self).constrain(u)?;
                ::core::result::Result::Ok(self.typed_latents(&__latents).expect("the layout has every latent at its length"))
            }
        }
    }
}

/// The simulated observations' struct, `sample_prior` and `simulate`.
fn samplers(plan: &Plan<'_>) -> TokenStream {
    let (ident, vis) = (&plan.model.ident, &plan.model.vis);
    let latents_ident = format_ident!("{}Latents", ident);
    let observations_ident = format_ident!("{}Observations", ident);
    // Transformed values between the draws, where the priors after them
    // read them.
    let draws = plan.steps.iter().filter_map(|step| match step {
        Step::Latent(l) => Some(latent::draw(l)),
        Step::Transformed(t) => Some(transformed::binding(t)),
        _ => None,
    });
    let latent_values = plan.latents().map(|l| {
        let ident = &l.field.ident;
        match l.shape {
            Shape::Array(..) => quote!(#ident: ::core::convert::TryInto::try_into(#ident).expect("the draw has the array's length")),
            _ => quote!(#ident),
        }
    });
    let param_bindings = param::bindings_from_self(plan);
    let bindings = plan
        .latents()
        .map(latent::binding)
        .chain(plan.transformed().map(transformed::binding));
    let simulations = plan.observations().map(observed::simulation);
    let observation_defs = plan.observations().map(observed::simulated_field);
    let observation_values = plan.observations().map(observed::simulated_value);
    let doc_observations = format!("Observations of [`{ident}`] simulated from given latents.");
    let rng = quote!(__R: ::iwhvi::__private::rand::Rng + ?::core::marker::Sized);
    let distribution_error = quote!(::iwhvi::__private::distributions::DistributionError);
    quote! {
        #[doc = #doc_observations]
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq)]
        #vis struct #observations_ident {
            #(#observation_defs,)*
        }

        impl #ident {
            /// Draws every latent from its prior, in declaration order
            /// (ancestral sampling).
            ///
            /// Takes any generator of `iwhvi::rand` (the `rand` 0.10 that
            /// `iwhvi` re-exports, so that versions cannot clash), e.g.
            /// `iwhvi::rand::rngs::StdRng`.
            ///
            /// # Errors
            /// A `DistributionError` if a prior's parameters, computed from
            /// the latents drawn before it, are invalid.
            #[allow(unused_variables, unreachable_code, non_camel_case_types, clippy::all)]
            #vis fn sample_prior<#rng>(
                &self,
                __rng: &mut __R,
            ) -> ::core::result::Result<#latents_ident, #distribution_error> {
                type __T = f64;
                #(#param_bindings)*
                #(#draws)*
                ::core::result::Result::Ok(#latents_ident { #(#latent_values,)* })
            }

            /// Simulates the observed fields (the shapes of the model's own
            /// data) given latents: with `sample_prior`, the prior
            /// predictive; with posterior draws, the posterior predictive.
            ///
            /// Takes any generator of `iwhvi::rand`, as `sample_prior` does.
            ///
            /// # Errors
            /// A `DistributionError` if a likelihood's parameters are invalid.
            #[allow(unused_variables, non_camel_case_types, clippy::all)]
            #vis fn simulate<#rng>(
                &self,
                __latents: &#latents_ident,
                __rng: &mut __R,
            ) -> ::core::result::Result<#observations_ident, #distribution_error> {
                type __T = f64;
                #(#param_bindings)*
                #(#bindings)*
                #(#simulations)*
                ::core::result::Result::Ok(#observations_ident { #(#observation_values,)* })
            }
        }
    }
}

/// The derived quantities' struct and `derived_quantities`.
fn derived_struct(plan: &Plan<'_>) -> TokenStream {
    let (ident, vis) = (&plan.model.ident, &plan.model.vis);
    let latents_ident = format_ident!("{}Latents", ident);
    let derived_ident = format_ident!("{}Derived", ident);
    let derived_defs = plan.derived().map(|d| {
        let (ident, ty) = (&d.field.ident, &d.field.ty);
        let doc = format!("The derived quantity `{ident}`.");
        quote!(#[doc = #doc] pub #ident: #ty)
    });
    let derived_defs = derived_defs.chain(plan.transformed().map(transformed::derived_field));
    let computations = plan.derived().map(|d| {
        let (ident, value) = (&d.field.ident, &d.value);
        match d.over {
            None => quote!(let #ident: f64 = #value;),
            Some((i, n)) => quote! {
                let #ident: ::std::vec::Vec<f64> = (0..(#n) as usize).map(|#i| #value).collect();
            },
        }
    });
    let derived_values = plan.derived().map(|d| {
        let ident = &d.field.ident;
        match d.shape {
            Shape::Array(..) => quote!(#ident: ::core::convert::TryInto::try_into(#ident).expect("one value per element")),
            _ => quote!(#ident),
        }
    });
    let derived_values = derived_values.chain(plan.transformed().map(transformed::derived_value));
    let bindings = plan
        .latents()
        .map(latent::binding)
        .chain(plan.transformed().map(transformed::binding));
    let param_bindings = param::bindings_from_self(plan);
    let doc_derived = format!("The derived quantities of [`{ident}`] at given latents.");
    quote! {
        #[doc = #doc_derived]
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq)]
        #vis struct #derived_ident {
            #(#derived_defs,)*
        }

        impl #ident {
            /// The derived quantities at the given latents.
            #[allow(unused_variables, non_camel_case_types, clippy::all)]
            #vis fn derived_quantities(&self, __latents: &#latents_ident) -> #derived_ident {
                type __T = f64;
                #(#param_bindings)*
                #(#bindings)*
                #(#computations)*
                #derived_ident { #(#derived_values,)* }
            }
        }
    }
}

/// A step of `first_invalid_term`: each term checked (`__T = f64`).
fn checked_step(step: &Step<'_>) -> TokenStream {
    match step {
        Step::Latent(l) => latent::checked_step(l),
        Step::Observed(o) => observed::checked_step(o),
        Step::Factor(f) => factor::checked_step(f),
        Step::Derived(_) => quote!(),
        Step::Transformed(t) => transformed::binding(t),
    }
}

/// `impl Model`: the derived quantities by name, the layout and the log
/// joint, fields in declaration order. A latent's step binds its name for
/// the steps after it, so steps are not wrapped in braces.
fn model_impl(plan: &Plan<'_>) -> TokenStream {
    let ident = &plan.model.ident;
    let specs = plan.latents().map(latent::spec);
    // The log joint with plates as kernel calls, and the reference: the
    // scalar loops.
    let step = |step: &Step<'_>, plates: bool| match step {
        Step::Latent(l) => latent::log_joint_step(l),
        Step::Observed(o) => plates
            .then(|| observed::plate_step(o, ident))
            .flatten()
            .unwrap_or_else(|| observed::log_joint_step(o)),
        Step::Factor(f) => factor::log_joint_step(f),
        Step::Derived(_) => quote!(),
        Step::Transformed(t) => transformed::binding(t),
    };
    let steps: Vec<TokenStream> = plan.steps.iter().map(|s| step(s, true)).collect();
    let param_methods = param::model_methods(plan, &steps);
    let mixing_methods = crate::model::semi_implicit_prior::model_methods(plan);
    let subset_methods = subset::model_methods(plan);
    let param_bindings = param::bindings_from_self(plan);
    let reference_steps = plan.steps.iter().map(|s| step(s, false));
    let plate_methods = plan.observations().filter_map(observed::plate_methods);
    let checked_steps = plan.steps.iter().map(checked_step);
    let derived_named = plan.derived().map(|d| {
        let (ident, name) = (&d.field.ident, d.field.ident.to_string());
        match d.shape {
            Shape::Scalar(_) => {
                quote!((::std::string::String::from(#name), ::std::vec![__derived.#ident]))
            }
            _ => quote!((::std::string::String::from(#name), __derived.#ident.to_vec())),
        }
    });
    let derived_named = derived_named.chain(plan.transformed().map(transformed::named));
    let core_model = quote!(::iwhvi::__private::iwhvi_core::model);
    quote! {
        impl ::iwhvi::__private::Model for #ident {
            fn derived(&self, __latents: &#core_model::Latents) -> #core_model::Latents {
                match self.typed_latents(__latents) {
                    ::core::option::Option::Some(__typed) => {
                        let __derived = self.derived_quantities(&__typed);
                        #core_model::Latents::from_pairs([#(#derived_named),*])
                    }
                    ::core::option::Option::None => ::core::default::Default::default(),
                }
            }

            #[allow(clippy::all)]
            fn layout(&self) -> ::iwhvi::__private::Layout {
                // Cannot panic: `new` built this layout once with
                // `try_new` (`DataError::LatentShape`), and the private
                // data cannot change after it.
                ::iwhvi::__private::Layout::new(::std::vec![#(#specs),*])
            }

            #[allow(unused_mut, unused_variables, unused_assignments, clippy::all)]
            fn log_joint<__T: ::iwhvi::__private::Scalar>(&self, __u: &[__T]) -> __T {
                #(#param_bindings)*
                let mut __lp = <__T as ::iwhvi::__private::Scalar>::constant(0.0);
                let mut __at = 0usize;
                #(#steps)*
                __lp
            }

            #param_methods

            #mixing_methods

            #subset_methods

            #[allow(unused_mut, unused_variables, unused_assignments, non_camel_case_types, clippy::all)]
            fn first_invalid_term(&self, __u: &[f64]) -> ::core::option::Option<::iwhvi::__private::InvalidTerm> {
                type __T = f64;
                #(#param_bindings)*
                let __walk = || -> ::core::result::Result<(), ::iwhvi::__private::InvalidTerm> {
                    let mut __lp = 0.0f64;
                    let mut __at = 0usize;
                    #(#checked_steps)*
                    ::core::result::Result::Ok(())
                };
                __walk().err()
            }
        }

        impl ::iwhvi::__private::ReferenceLogJoint for #ident {
            #[allow(unused_mut, unused_variables, unused_assignments, clippy::all)]
            fn log_joint_reference<__T: ::iwhvi::__private::Scalar>(&self, __u: &[__T]) -> __T {
                #(#param_bindings)*
                let mut __lp = <__T as ::iwhvi::__private::Scalar>::constant(0.0);
                let mut __at = 0usize;
                #(#reference_steps)*
                __lp
            }
        }

        impl #ident {
            #(#plate_methods)*
        }
    }
}
