//! Code generation for a checked guide: the guide struct, its constructor
//! from a model instance, and its `HierarchicalGuide` implementation.
//! Nothing here reports an error.

use proc_macro2::TokenStream;
use quote::quote;

use super::encoder::{InputForm, InputItem};
use super::lower::Plan;
use super::model_name;

/// Everything the guide's hand-over expands to: `new` and the
/// `HierarchicalGuide` implementation (the struct is declared by the
/// attribute itself, see [`shell`]).
pub fn guide(plan: &Plan<'_>) -> TokenStream {
    let parts = [guide_new(plan), guide_impl(plan)];
    quote!(#(#parts)*)
}

/// The path as rustdoc reads a link target: `super::models::Mean`.
fn doc_path(model: &syn::Path) -> String {
    let segments: Vec<String> = model.segments.iter().map(|s| s.ident.to_string()).collect();
    let lead = if model.leading_colon.is_some() {
        "::"
    } else {
        ""
    };
    format!("{lead}{}", segments.join("::"))
}

/// The guide struct, declared by the attribute whatever becomes of the
/// model's hand-over (its fields are the same for every guide): a path
/// that does not resolve is then one error, not the guide's disappearance.
pub fn shell(guide: &syn::DeriveInput, model: Option<&syn::Path>) -> TokenStream {
    let (guide_ident, vis) = (&guide.ident, &guide.vis);
    let attrs = guide
        .attrs
        .iter()
        .filter(|a| !a.path().is_ident("variational"));
    let doc = match model {
        Some(model) => format!(
            "A hierarchical guide for [`{}`]({}), checked against its latents at compile time.",
            model_name(model),
            doc_path(model)
        ),
        None => "A hierarchical guide.".to_string(),
    };
    quote! {
        #(#attrs)*
        #[doc = #doc]
        #[derive(
            ::core::clone::Clone,
            ::core::fmt::Debug,
            ::core::cmp::PartialEq,
        )]
        #vis struct #guide_ident {
            // The model instance's layout: the guide's configuration, and
            // all that it saves; the fields after it derive from it.
            __layout: ::iwhvi::__private::Layout,
            __latent_dim: usize,
            __offsets: ::std::vec::Vec<usize>,
            __lens: ::std::vec::Vec<usize>,
            __transforms: ::std::vec::Vec<::iwhvi::__private::Transform>,
            __z_offsets: ::std::vec::Vec<usize>,
            __z_dim: usize,
            __param_lens: ::std::vec::Vec<usize>,
            __mixing_offsets: ::std::vec::Vec<usize>,
            __mixing_lens: ::std::vec::Vec<usize>,
            // The encoders (`#[encoder]`): each one's network, its points'
            // inputs (rows × width, row-major, copied from the model's
            // data by `new`) and its number of points.
            __encoder_nets: ::std::vec::Vec<::iwhvi::__private::iwhvi_core::amortised::Mlp>,
            __encoder_inputs: ::std::vec::Vec<::std::vec::Vec<f64>>,
            __encoder_rows: ::std::vec::Vec<usize>,
            // The mixing groups of a guide with a per-point mixing
            // variable (`#[mixing(len = …, for j)]`), else `None`.
            __groups: ::core::option::Option<::iwhvi::__private::iwhvi_core::guide::MixingGroups>,
        }
    }
}

/// `new` and `HierarchicalGuide` for a guide with a mistake (or of a
/// model with one): the success signatures with bodies that are never
/// run, so that uses of the guide add no errors of their own (as
/// clap_derive's dummies).
pub fn stubs(guide: &syn::DeriveInput, model: Option<&syn::Path>) -> TokenStream {
    let (guide_ident, vis) = (&guide.ident, &guide.vis);
    let new = model.map(|model| {
        quote! {
            impl #guide_ident {
                #[allow(missing_docs, dead_code)]
                #vis fn new(__model: &#model) -> ::core::result::Result<Self, ::iwhvi::__private::GuideError> {
                    ::core::unreachable!("never run: the struct has a compile error")
                }
            }
        }
    });
    let workspace = quote!(::iwhvi::__private::Workspace<__T>);
    let serde = quote!(::iwhvi::__private::serde);
    quote! {
        #new

        #[allow(unused_variables, clippy::all)]
        impl #serde::Serialize for #guide_ident {
            fn serialize<__S: #serde::Serializer>(&self, __s: __S) -> ::core::result::Result<__S::Ok, __S::Error> {
                ::core::unreachable!("never run: the struct has a compile error")
            }
        }

        #[allow(unused_variables, clippy::all)]
        impl<'de> #serde::Deserialize<'de> for #guide_ident {
            fn deserialize<__D: #serde::Deserializer<'de>>(__d: __D) -> ::core::result::Result<Self, __D::Error> {
                ::core::unreachable!("never run: the struct has a compile error")
            }
        }

        #[allow(unused_variables, clippy::all)]
        impl ::iwhvi::__private::HierarchicalGuide for #guide_ident {
            fn latent_dim(&self) -> usize {
                ::core::unreachable!("never run: the struct has a compile error")
            }
            fn mixing_dim(&self) -> usize {
                ::core::unreachable!("never run: the struct has a compile error")
            }
            fn has_reverse_model(&self) -> bool {
                ::core::unreachable!("never run: the struct has a compile error")
            }
            fn param_layout(&self) -> ::iwhvi::__private::ParamLayout {
                ::core::unreachable!("never run: the struct has a compile error")
            }
            fn init_params<__R: ::iwhvi::__private::rand::Rng + ?::core::marker::Sized>(&self, __rng: &mut __R) -> ::std::vec::Vec<f64> {
                ::core::unreachable!("never run: the struct has a compile error")
            }
            fn sample_conditional<__T: ::iwhvi::__private::Scalar>(
                &self,
                __params: &[__T],
                __psi: &[__T],
                __noise: &[f64],
                __u: &mut [__T],
                __workspace: &mut #workspace,
            ) {
                ::core::unreachable!("never run: the struct has a compile error")
            }
            fn log_conditional<__T: ::iwhvi::__private::Scalar>(
                &self,
                __params: &[__T],
                __psi: &[__T],
                __u: &[__T],
                __workspace: &mut #workspace,
            ) -> __T {
                ::core::unreachable!("never run: the struct has a compile error")
            }
        }
    }
}

/// `new`, the guide for a model instance, with `__from_layout` (which
/// loading shares), and the guide's `Serialize` and `Deserialize`.
fn guide_new(plan: &Plan<'_>) -> TokenStream {
    let guide_ident = &plan.input.guide.ident;
    let (encoder_inputs, encoder_nets) = encoder_setup(plan);
    let new = new_method(plan, &encoder_inputs);
    let from_layout = from_layout_method(plan, &encoder_nets);
    let serde = serde_impls(plan);
    quote! {
        impl #guide_ident {
            #new

            #from_layout
        }

        #serde
    }
}

/// `new(&model)`: copies the encoders' inputs from the model's data, then
/// builds the guide from the model's layout through `__from_layout`.
fn new_method(plan: &Plan<'_>, encoder_inputs: &[TokenStream]) -> TokenStream {
    let guide = &plan.input.guide;
    let (vis, model_path) = (&guide.vis, &plan.input.model);
    let new_doc = format!(
        "The guide for this instance of `{}` (vector lengths come from its data).",
        model_name(model_path)
    );
    let guide_error = quote!(::iwhvi::__private::GuideError);
    quote! {
        #[doc = #new_doc]
        ///
        /// # Errors
        /// [`GuideError::UnknownLatent`](::iwhvi::guide::GuideError) if the model
        /// instance lacks a latent the guide targets, and
        /// `GuideError::Unsupported` if a latent's transform is not elementwise.
        #[allow(clippy::unnecessary_cast)]
        #vis fn new(__model: &#model_path) -> ::core::result::Result<Self, #guide_error> {
            let mut __encoder_inputs: ::std::vec::Vec<::std::vec::Vec<f64>> = ::std::vec::Vec::new();
            let mut __encoder_rows: ::std::vec::Vec<usize> = ::std::vec::Vec::new();
            #(#encoder_inputs)*
            Self::__from_layout(::iwhvi::__private::Model::layout(__model), (__encoder_inputs, __encoder_rows))
        }
    }
}

/// `__from_layout(layout, encoder inputs)`: the guide's latents found in
/// the model's layout ([`latent_places`]), its encoder networks, the
/// lengths of its parameters and the offsets of its mixing variables
/// (the per-point ones last), and its per-point groups.
fn from_layout_method(plan: &Plan<'_>, encoder_nets: &[TokenStream]) -> TokenStream {
    let guide_error = quote!(::iwhvi::__private::GuideError);
    let latent_places = latent_places(plan);
    let param_lens = plan.params.iter().map(|p| &p.len);
    let mixing_lens = plan.mixing.iter().map(|m| &m.len);
    let per_point_flags = plan.mixing.iter().map(|m| m.per_point);
    let groups = super::per_point_emit::groups(plan);
    quote! {
        /// The guide for a model instance of this layout and these
        /// encoder inputs (`new`, and loading a saved guide).
        fn __from_layout(
            __layout: ::iwhvi::__private::Layout,
            (__encoder_inputs, __encoder_rows): (::std::vec::Vec<::std::vec::Vec<f64>>, ::std::vec::Vec<usize>),
        ) -> ::core::result::Result<Self, #guide_error> {
            #latent_places
            #[allow(unused_variables)]
            let __latent_len = |__name: &str| __layout.blocks().iter().find(|__b| __b.spec.name == __name).map_or(0, |__b| __b.unconstrained.len());
            let mut __encoder_nets = ::std::vec::Vec::new();
            #(#encoder_nets)*
            let mut __param_lens: ::std::vec::Vec<usize> = ::std::vec![#(#param_lens),*];
            __param_lens.extend(__encoder_nets.iter().map(::iwhvi::__private::iwhvi_core::amortised::Mlp::len));
            let __mixing_lens: ::std::vec::Vec<usize> = ::std::vec![#(#mixing_lens),*];
            // The per-point mixing variables' coordinates come last, point
            // after point (`ψ_j = (psi0_j, psi1_j, …)`), so that each
            // point's group is one range of ψ: variable `q`'s coordinate
            // `j` at its offset `+ j × (number of per-point variables)`.
            let __per_point: &[bool] = &[#(#per_point_flags),*];
            let mut __mixing_offsets = ::std::vec![0usize; __mixing_lens.len()];
            let mut __at = 0usize;
            for (__i, __n) in __mixing_lens.iter().enumerate() {
                if !__per_point[__i] {
                    __mixing_offsets[__i] = __at;
                    __at += *__n;
                }
            }
            let mut __slot = 0usize;
            for __i in 0..__mixing_lens.len() {
                if __per_point[__i] {
                    __mixing_offsets[__i] = __at + __slot;
                    __slot += 1;
                }
            }
            let __groups = #groups;
            ::core::result::Result::Ok(Self {
                __latent_dim: __layout.dim(),
                __offsets,
                __lens,
                __transforms,
                __z_offsets,
                __z_dim,
                __param_lens,
                __mixing_offsets,
                __mixing_lens,
                __layout,
                __encoder_nets,
                __encoder_inputs,
                __encoder_rows,
                __groups,
            })
        }
    }
}

/// `__from_layout`'s first statements: each latent the guide targets found
/// by name in `__layout` (`GuideError::UnknownLatent` if absent), its
/// unconstrained offset, length and transform (`GuideError::Unsupported`
/// unless elementwise and fixed by the data), and its constrained offset
/// in the workspace (`__z_offsets`, `__z_dim`).
fn latent_places(plan: &Plan<'_>) -> TokenStream {
    let guide_error = quote!(::iwhvi::__private::GuideError);
    let model_latent_names = plan.conditionals.iter().map(|c| c.ident.to_string());
    let unconstrained = plan.conditionals.iter().map(|c| c.unconstrained);
    quote! {
        let mut __offsets = ::std::vec::Vec::new();
        let mut __lens = ::std::vec::Vec::new();
        let mut __transforms = ::std::vec::Vec::new();
        // The constrained latents' places in the workspace, in the
        // guide's order (a simplex has one entry more than its
        // unconstrained coordinates).
        let mut __z_offsets = ::std::vec::Vec::new();
        let mut __z_dim = 0usize;
        for (__name, __unconstrained) in [#(#model_latent_names),*].into_iter().zip([#(#unconstrained),*]) {
            let __block = __layout
                .blocks()
                .iter()
                .find(|__b| __b.spec.name == __name)
                .ok_or(#guide_error::UnknownLatent { latent: __name })?;
            // One transform shared by the elements and fixed by the
            // data (or the latent's own unconstrained coordinates):
            // transforms per element or moving with other latents
            // are not supported yet.
            let __transform = __block.spec.transform;
            if (!__unconstrained && !__transform.is_elementwise())
                || __block.spec.dependent_bounds.is_some()
                || __block.spec.per_element.is_some()
                || __block.spec.dependent_affine.is_some()
            {
                return ::core::result::Result::Err(#guide_error::Unsupported { latent: __name });
            }
            __offsets.push(__block.unconstrained.start);
            __lens.push(__block.unconstrained.len());
            __transforms.push(__transform);
            __z_offsets.push(__z_dim);
            __z_dim += __transform
                .constrained_len(__block.unconstrained.len())
                .ok_or(#guide_error::Unsupported { latent: __name })?;
        }
    }
}

/// The guide's `Serialize` (its layout as a `SavedStructGuide`, with the
/// encoders' inputs if it has encoders) and `Deserialize` (through
/// `__from_layout`, so a layout `new` would reject is an error).
fn serde_impls(plan: &Plan<'_>) -> TokenStream {
    let guide_ident = &plan.input.guide.ident;
    let saved = quote!(::iwhvi::__private::SavedStructGuide);
    let serde = quote!(::iwhvi::__private::serde);
    let (save, load) = if plan.encoders.is_empty() {
        (
            quote!(#serde::Serialize::serialize(&__saved, __s)),
            quote! {
                let __saved = <#saved as #serde::Deserialize<'de>>::deserialize(__d)?;
                Self::__from_layout(__saved.layout, (::std::vec::Vec::new(), ::std::vec::Vec::new()))
                    .map_err(<__D::Error as #serde::de::Error>::custom)
            },
        )
    } else {
        (
            quote!(#serde::Serialize::serialize(&(__saved, &self.__encoder_inputs, &self.__encoder_rows), __s)),
            quote! {
                let (__saved, __inputs, __rows) = <(#saved, ::std::vec::Vec<::std::vec::Vec<f64>>, ::std::vec::Vec<usize>) as #serde::Deserialize<'de>>::deserialize(__d)?;
                Self::__from_layout(__saved.layout, (__inputs, __rows))
                    .map_err(<__D::Error as #serde::de::Error>::custom)
            },
        )
    };
    quote! {
        /// Saved as the layout alone (`SavedStructGuide`); the rest is
        /// derived again on loading.
        impl #serde::Serialize for #guide_ident {
            fn serialize<__S: #serde::Serializer>(&self, __s: __S) -> ::core::result::Result<__S::Ok, __S::Error> {
                let __saved = #saved { layout: ::core::clone::Clone::clone(&self.__layout) };
                #save
            }
        }

        /// Loading rebuilds the guide through `new`'s code, so a layout
        /// that `new` would reject is an error, not a guide that panics.
        impl<'de> #serde::Deserialize<'de> for #guide_ident {
            fn deserialize<__D: #serde::Deserializer<'de>>(__d: __D) -> ::core::result::Result<Self, __D::Error> {
                #load
            }
        }
    }
}

/// The number of points of an encoder's input item: the data vector's
/// length, the data matrix's rows (`x.row(j)`) or columns (`x.column(j)`).
fn input_points(item: &InputItem) -> TokenStream {
    let data = &item.data;
    match item.form {
        InputForm::Element => quote!(__model.#data().len()),
        InputForm::Row => quote!(__model.#data().nrows()),
        InputForm::Column => quote!(__model.#data().ncols()),
    }
}

/// `new`'s copy of each encoder's inputs from the model's data (through
/// its accessors), and `__from_layout`'s networks, checked against the
/// lengths of the latents that call them.
fn encoder_setup(plan: &Plan<'_>) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let guide_error = quote!(::iwhvi::__private::GuideError);
    let inputs = plan.encoders.iter().map(|e| {
        let name = e.ident.to_string();
        let rows = e.inputs.iter().map(|i| {
            let (n, label) = (input_points(i), i.data.to_string());
            quote! {
                let __n = #n;
                if __n != __rows {
                    return ::core::result::Result::Err(#guide_error::EncoderRows { encoder: #name, what: #label, rows: __n, expected: __rows });
                }
            }
        });
        let first = e.inputs.first().map(input_points);
        let push = e.inputs.iter().map(|i| {
            let data = &i.data;
            match i.form {
                InputForm::Row => quote! {
                    let __x = __model.#data();
                    for __c in 0..__x.ncols() {
                        __m.push(__x[(__r, __c)]);
                    }
                },
                InputForm::Column => quote! {
                    let __x = __model.#data();
                    for __c in 0..__x.nrows() {
                        __m.push(__x[(__c, __r)]);
                    }
                },
                InputForm::Element => quote!(__m.push(__model.#data()[__r] as f64);),
            }
        });
        quote! {
            {
                let __rows: usize = #first;
                #(#rows)*
                let mut __m: ::std::vec::Vec<f64> = ::std::vec::Vec::new();
                for __r in 0..__rows {
                    #(#push)*
                }
                __encoder_inputs.push(__m);
                __encoder_rows.push(__rows);
            }
        }
    });
    let nets = plan.encoders.iter().enumerate().map(|(ei, e)| {
        let name = e.ident.to_string();
        let (hidden, outputs, activation) = (&e.hidden, e.outputs, &e.activation);
        let latents = &e.latents;
        let context = e.context.len();
        quote! {
            {
                let (__inputs, __rows) = match (__encoder_inputs.get(#ei), __encoder_rows.get(#ei)) {
                    (::core::option::Option::Some(__i), ::core::option::Option::Some(__r)) => (__i, *__r),
                    _ => return ::core::result::Result::Err(#guide_error::EncoderSavedInputs { encoder: #name, values: 0, rows: 0 }),
                };
                if __rows == 0 || __inputs.is_empty() {
                    return ::core::result::Result::Err(#guide_error::EncoderEmpty { encoder: #name });
                }
                let __width = __inputs.len() / __rows;
                if __width * __rows != __inputs.len() {
                    return ::core::result::Result::Err(#guide_error::EncoderSavedInputs { encoder: #name, values: __inputs.len(), rows: __rows });
                }
                for __latent in [#(#latents),*] {
                    let __len = __latent_len(__latent);
                    if __len != __rows {
                        return ::core::result::Result::Err(#guide_error::EncoderRows { encoder: #name, what: __latent, rows: __len, expected: __rows });
                    }
                }
                __encoder_nets.push(::iwhvi::__private::iwhvi_core::amortised::Mlp::new(
                    __width,
                    #context,
                    &[#(#hidden),*],
                    #outputs,
                    ::iwhvi::__private::iwhvi_core::amortised::Activation::#activation,
                    0,
                ));
            }
        }
    });
    (inputs.collect(), nets.collect())
}

/// The code each method shares: names bound to parameters, mixing
/// variables and latents.
pub(super) struct Bindings {
    pub(super) params: Vec<TokenStream>,
    pub(super) mixing: Vec<TokenStream>,
    pub(super) latents: Vec<TokenStream>,
}

fn bindings(plan: &Plan<'_>) -> Bindings {
    let params = plan.params.iter().enumerate().map(|(pi, p)| {
        let name = p.ident;
        if p.scalar {
            quote!(let #name: __T = __params[__p]; __p += 1;)
        } else {
            quote! {
                let #name: &[__T] = &__params[__p..__p + self.__param_lens[#pi]];
                __p += self.__param_lens[#pi];
            }
        }
    });
    let mixing = plan.mixing.iter().enumerate().map(|(mi, m)| {
        let name = m.ident;
        let stride = plan.mixing_stride(mi);
        if stride > 1 {
            return quote! {
                let #name = ::iwhvi::__private::iwhvi_core::generated::Strided::new(
                    __psi, self.__mixing_offsets[#mi], #stride, self.__mixing_lens[#mi],
                );
            };
        }
        if m.scalar {
            quote!(let #name: __T = __psi[self.__mixing_offsets[#mi]];)
        } else {
            quote!(let #name: &[__T] = &__psi[self.__mixing_offsets[#mi]..self.__mixing_offsets[#mi] + self.__mixing_lens[#mi]];)
        }
    });
    // The constrained latents live in `workspace.scratch[..Z]` (`Z` their
    // entries; the guide's `workspace_lens` asks for `Z + D`: the rest
    // holds the draw in progress), so that no method allocates on a
    // workspace of those lengths; on a minibatch step's workspace
    // (`group_workspace_lens`, no scratch) a method that uses it grows it
    // once (`__private::scratch`).
    let latents = plan.conditionals.iter().enumerate().map(|(ci, c)| {
        let name = c.ident;
        if c.scalar {
            quote!(let #name: __T = __z[self.__z_offsets[#ci]];)
        } else {
            quote!(let #name: &[__T] = &__z[self.__z_offsets[#ci]..self.__z_offsets[#ci + 1..].first().copied().unwrap_or(self.__z_dim)];)
        }
    });
    Bindings {
        params: params.collect(),
        mixing: mixing.collect(),
        latents: latents.collect(),
    }
}

/// The workspace type of the methods.
pub(super) fn workspace() -> TokenStream {
    quote!(::iwhvi::__private::Workspace<__T>)
}

/// Whether the guide has a reverse model (else `τ = q(ψ)`, SIVI).
fn has_reverse(plan: &Plan<'_>) -> bool {
    plan.mixing.iter().any(|m| m.reverse.is_some())
}

/// The latents `z = T(u)` constrained into the workspace, their log
/// Jacobian bound by `bind` (`let mut __lp =`, or discarded), and their
/// names bound for the expressions after it.
fn constrained_latents(plan: &Plan<'_>, bindings: &Bindings, bind: TokenStream) -> TokenStream {
    // The Jacobian enters log q(u) for a conditional over the constrained
    // latent, not for one over its unconstrained coordinates.
    let jacobian: Vec<bool> = plan.conditionals.iter().map(|c| !c.unconstrained).collect();
    constrained_latents_with(bindings, &jacobian, bind)
}

/// [`constrained_latents`] with the blocks whose Jacobian enters `bind`
/// given as `jacobian` (one flag per conditional).
pub(super) fn constrained_latents_with(
    bindings: &Bindings,
    jacobian: &[bool],
    bind: TokenStream,
) -> TokenStream {
    let bind_latents = &bindings.latents;
    quote! {
        let __z = ::iwhvi::__private::scratch(&mut __workspace.scratch, self.__z_dim);
        #bind ::iwhvi::__private::constrain_blocks(
            (&self.__offsets, &self.__lens, &self.__z_offsets),
            &self.__transforms,
            &[#(#jacobian),*],
            __u,
            __z
        );
        let __z: &[__T] = __z;
        #(#bind_latents)*
    }
}

/// Each conditional's draw and its density.
pub(super) fn conditional_steps(
    plan: &Plan<'_>,
    latents: &[TokenStream],
) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let mut sample_steps = Vec::new();
    let mut density_steps = Vec::new();
    for (ci, c) in plan.conditionals.iter().enumerate() {
        let (name, new) = (c.ident, &c.new);
        let bind_index = c.index.map(|i| quote!(let #i: usize = __k;));
        let earlier = &latents[..ci];
        let noise = super::student_t::noise(plan, ci);
        // Draw into `__draw` while the earlier latents are borrowed from
        // `__z`, then store the draw and its unconstrained image (or, for
        // a conditional over `u`, the draw and its constrained image).
        let store = if c.unconstrained {
            quote! {
                for __k in 0..__n {
                    __u[__off + __k] = __draw[__k];
                }
                let __zn = __t.constrained_len(__n).unwrap_or(__n);
                let _ = __t.forward(&__u[__off..__off + __n], &mut __z[__zoff..__zoff + __zn]);
            }
        } else {
            quote! {
                for __k in 0..__n {
                    __z[__zoff + __k] = __draw[__k];
                    __u[__off + __k] = ::iwhvi::__private::inverse_scalar(__t, __draw[__k]);
                }
            }
        };
        sample_steps.push(quote! {
            let (__off, __n, __t) = (self.__offsets[#ci], self.__lens[#ci], self.__transforms[#ci]);
            let __zoff = self.__z_offsets[#ci];
            {
                let __z: &[__T] = __z;
                #(#earlier)*
                for __k in 0..__n {
                    #bind_index
                    __draw[__k] = ::iwhvi::__private::rsample_or_nan(#new, #noise);
                }
            }
            #store
        });
        density_steps.push(if c.unconstrained {
            quote! {
                for __k in 0..self.__lens[#ci] {
                    #bind_index
                    __lp += ::iwhvi::__private::log_prob_or_neg_inf(#new, __u[self.__offsets[#ci] + __k]);
                }
            }
        } else if c.scalar {
            quote!(__lp += ::iwhvi::__private::log_prob_or_neg_inf(#new, #name);)
        } else {
            quote! {
                for __k in 0..#name.len() {
                    #bind_index
                    __lp += ::iwhvi::__private::log_prob_or_neg_inf(#new, #name[__k]);
                }
            }
        });
    }
    (sample_steps, density_steps)
}

/// Each reverse model's draw and its density.
pub(super) fn reverse_steps(plan: &Plan<'_>) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let mut reverse_sample = Vec::new();
    let mut reverse_density = Vec::new();
    for (mi, m) in plan.mixing.iter().enumerate() {
        let Some((new, index)) = &m.reverse else {
            continue;
        };
        let bind_index = index.map(|i| quote!(let #i: usize = __k;));
        // Coordinate `k` of a per-point variable among several: `k × stride`
        // past its offset.
        let step = match plan.mixing_stride(mi) {
            1 => quote!(__k),
            stride => quote!(__k * #stride),
        };
        reverse_sample.push(quote! {
            let (__off, __n) = (self.__mixing_offsets[#mi], self.__mixing_lens[#mi]);
            for __k in 0..__n {
                #bind_index
                __psi[__off + #step] = ::iwhvi::__private::rsample_or_nan(#new, __noise[__off + #step]);
            }
        });
        reverse_density.push(quote! {
            let (__off, __n) = (self.__mixing_offsets[#mi], self.__mixing_lens[#mi]);
            for __k in 0..__n {
                #bind_index
                __lp += ::iwhvi::__private::log_prob_or_neg_inf(#new, __psi[__off + #step]);
            }
        });
    }
    (reverse_sample, reverse_density)
}

/// `reverse_params`: the parameter range of the reverse model τ.
fn reverse_params(plan: &Plan<'_>) -> TokenStream {
    let Some((first, end)) = plan.reverse_params else {
        return quote!();
    };
    quote! {
        fn reverse_params(&self) -> ::core::ops::Range<usize> {
            let __start: usize = self.__param_lens[..#first].iter().sum();
            let __len: usize = self.__param_lens[#first..#end].iter().sum();
            __start..__start + __len
        }
    }
}

/// The layout and initial values of the parameters.
fn param_methods(plan: &Plan<'_>) -> TokenStream {
    let blocks = plan.params.iter().enumerate().map(|(pi, p)| {
        let name = p.ident.to_string();
        let shape = if p.scalar {
            quote!(&[])
        } else {
            quote!(&[self.__param_lens[#pi]])
        };
        quote!(__layout.push(#name, #shape);)
    });
    let inits = plan.params.iter().enumerate().map(|(pi, p)| {
        let value = &p.init;
        quote! {
            for _ in 0..self.__param_lens[#pi] {
                __init.push(#value);
            }
        }
    });
    let encoder_blocks = plan.encoders.iter().enumerate().map(|(ei, e)| {
        let name = e.ident.to_string();
        let (hidden, outputs, context) = (&e.hidden, e.outputs, e.context.len());
        quote! {
            let mut __in = self.__encoder_inputs[#ei].len() / self.__encoder_rows[#ei].max(1);
            for (__l, __out) in [#(#hidden,)* #outputs].into_iter().enumerate() {
                __layout.push(&::std::format!("{}.w{}", #name, __l), &[__in, __out]);
                if __l == 0 && #context > 0 {
                    __layout.push(&::std::format!("{}.c0", #name), &[#context, __out]);
                }
                __layout.push(&::std::format!("{}.b{}", #name, __l), &[__out]);
                __in = __out;
            }
        }
    });
    let encoder_inits = (0..plan.encoders.len()).map(|ei| {
        // The amortised encoders' rule: the output layer starts small.
        quote!(__init.extend(self.__encoder_nets[#ei].initial_params(__rng, 0.1));)
    });
    quote! {
        fn param_layout(&self) -> ::iwhvi::__private::ParamLayout {
            let mut __layout = ::iwhvi::__private::ParamLayout::default();
            #(#blocks)*
            #(#encoder_blocks)*
            __layout
        }

        fn init_params<__R: ::iwhvi::__private::rand::Rng + ?::core::marker::Sized>(&self, __rng: &mut __R) -> ::std::vec::Vec<f64> {
            let mut __init = ::std::vec::Vec::new();
            #(#inits)*
            #(#encoder_inits)*
            __init
        }
    }
}

/// `impl HierarchicalGuide`.
fn guide_impl(plan: &Plan<'_>) -> TokenStream {
    let guide_ident = &plan.input.guide.ident;
    let bindings = bindings(plan);
    let (sample_steps, density_steps) = conditional_steps(plan, &bindings.latents);
    let reverse_methods = reverse_methods(plan, &bindings);
    let has_reverse = has_reverse(plan);
    let param_methods = param_methods(plan);
    let reverse_params = reverse_params(plan);
    let workspace = workspace();
    let bind_params = &bindings.params;
    let bind_mixing = &bindings.mixing;
    let latents_with_jacobian = constrained_latents(plan, &bindings, quote!(let mut __lp =));
    let noise_dim = super::student_t::noise_dim(plan);
    let encoder_outputs = super::encoder_emit::outputs(plan);
    let prepare = super::encoder_emit::prepare(plan);
    let mixing_context = super::encoder_emit::mixing_context_outputs(plan);
    let invalidate_draw = super::encoder_emit::invalidate_draw(plan);
    let prepare_reverse = super::encoder_emit::prepare_reverse(plan, &bindings.latents);
    let params_len = super::encoder_emit::params_len(plan);
    let reverse_len = super::encoder_emit::reverse_len(plan);
    let group_methods = super::per_point_emit::methods(plan, &bindings);
    let mixing_methods = super::mixing_emit::methods(plan, &bindings);
    quote! {
        #[allow(unused_variables, unused_mut, clippy::all)]
        impl ::iwhvi::__private::HierarchicalGuide for #guide_ident {
            fn latent_dim(&self) -> usize {
                self.__latent_dim
            }

            fn mixing_dim(&self) -> usize {
                self.__mixing_lens.iter().sum()
            }

            fn workspace_lens(&self) -> ::iwhvi::__private::WorkspaceLens {
                ::iwhvi::__private::WorkspaceLens {
                    params: #params_len,
                    reverse: #reverse_len,
                    scratch: self.__z_dim + self.__latent_dim,
                    ..::core::default::Default::default()
                }
            }

            // The group methods grow `scratch` when they use it
            // (`__private::scratch`): a step's workspace leaves it empty.
            fn group_workspace_lens(&self) -> ::iwhvi::__private::WorkspaceLens {
                ::iwhvi::__private::WorkspaceLens {
                    scratch: 0,
                    ..::iwhvi::__private::HierarchicalGuide::workspace_lens(self)
                }
            }

            #prepare

            #prepare_reverse

            fn has_reverse_model(&self) -> bool {
                #has_reverse
            }

            #reverse_params

            #param_methods

            #noise_dim

            fn sample_conditional<__T: ::iwhvi::__private::Scalar>(
                &self,
                __params: &[__T],
                __psi: &[__T],
                __noise: &[f64],
                __u: &mut [__T],
                __workspace: &mut #workspace,
            ) {
                let mut __p = 0usize;
                #(#bind_params)*
                #invalidate_draw
                #encoder_outputs
                #(#bind_mixing)*
                #mixing_context
                let (__z, __draw) = ::iwhvi::__private::scratch(
                    &mut __workspace.scratch,
                    self.__z_dim + self.__latent_dim,
                )
                .split_at_mut(self.__z_dim);
                #(#sample_steps)*
            }

            fn log_conditional<__T: ::iwhvi::__private::Scalar>(
                &self,
                __params: &[__T],
                __psi: &[__T],
                __u: &[__T],
                __workspace: &mut #workspace,
            ) -> __T {
                let mut __p = 0usize;
                #(#bind_params)*
                #encoder_outputs
                #(#bind_mixing)*
                #mixing_context
                #latents_with_jacobian
                #(#density_steps)*
                __lp
            }

            #mixing_methods

            #reverse_methods

            #group_methods
        }
    }
}

/// `sample_reverse` and `log_reverse`: the reverse model τ(ψ | z), or the
/// mixing distribution without one (SIVI).
fn reverse_methods(plan: &Plan<'_>, bindings: &Bindings) -> TokenStream {
    let (reverse_sample, reverse_density) = reverse_steps(plan);
    let has_reverse = has_reverse(plan);
    let workspace = workspace();
    let bind_params = &bindings.params;
    let latents = constrained_latents(plan, bindings, quote!());
    let encoder_outputs = super::encoder_emit::outputs(plan);
    let context_outputs = super::encoder_emit::context_outputs(plan);
    quote! {
        fn sample_reverse<__T: ::iwhvi::__private::Scalar>(
            &self,
            __params: &[__T],
            __u: &[__T],
            __noise: &[f64],
            __psi: &mut [__T],
            __workspace: &mut #workspace,
        ) {
            if !#has_reverse {
                return self.sample_mixing(__params, __noise, __psi);
            }
            let mut __p = 0usize;
            #(#bind_params)*
            #encoder_outputs
            #latents
            #context_outputs
            #(#reverse_sample)*
        }

        fn log_reverse<__T: ::iwhvi::__private::Scalar>(
            &self,
            __params: &[__T],
            __u: &[__T],
            __psi: &[__T],
            __workspace: &mut #workspace,
        ) -> __T {
            if !#has_reverse {
                return self.log_mixing(__params, __psi);
            }
            let mut __p = 0usize;
            #(#bind_params)*
            #encoder_outputs
            #latents
            #context_outputs
            let mut __lp = <__T as ::iwhvi::__private::Scalar>::constant(0.0);
            #(#reverse_density)*
            __lp
        }
    }
}
