//! Code for a guide whose conditionals are all per point and which has no
//! mixing variable (`per_point::amortised`, e.g. an amortised Gaussian
//! encoder `#[latent(Normal(enc(j)[0], enc(j)[1].exp()), for j)]`): one
//! mixing group per point `j`, holding element `j` of each latent and no
//! mixing coordinates, and its density `log_conditional_group` (element `j`
//! of each conditional, with its log Jacobian), so that the per-point bound
//! (minibatches with `M > 1`) accepts the guide; and its draws by group
//! (`samples_by_group`, `sample_conditional_group`, `prepare_groups`: the
//! encoders at the batch's points only), so that a minibatch step costs
//! `O(b)` in the number of points. The whole-vector methods are untouched.
//! Nothing here reports an error.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::emit::{Bindings, workspace};
use super::lower::{Conditional, Plan};

/// `__from_layout`'s `__groups`: one group per point when every
/// conditional has as many elements as the first, else `None` (the guide
/// then does not factorise per point).
pub fn groups() -> TokenStream {
    let guide = quote!(::iwhvi::__private::iwhvi_core::guide);
    quote! {{
        let __points = __lens.first().copied().unwrap_or(0);
        if __lens.iter().all(|&__n| __n == __points) {
            let __list = (0..__points)
                .map(|__j| #guide::MixingGroup {
                    psi: 0..0,
                    latents: __offsets.iter().map(|&__o| __o + __j).collect(),
                    reverse_noise: 0..0,
                })
                .collect();
            ::core::option::Option::Some(#guide::MixingGroups::new(__layout.dim(), 0, 0, __list)?)
        } else {
            ::core::option::Option::None
        }
    }}
}

/// `mixing_groups` and `log_conditional_group` of `impl HierarchicalGuide`:
/// group `j`'s density is `Σ_c log q_c(z_c[j])` (plus `log |T_c'(u)|` for a
/// conditional over the constrained latent), each element constrained on
/// its own (O(1) per group).
pub fn methods(plan: &Plan<'_>, bindings: &Bindings) -> TokenStream {
    let encoder_outputs = super::encoder_emit::group_outputs(plan);
    let workspace = workspace();
    let guide = quote!(::iwhvi::__private::iwhvi_core::guide);
    let p = quote!(::iwhvi::__private);
    let bind_params = &bindings.params;
    let density = plan.conditionals.iter().enumerate().map(|(ci, c)| {
        let new = &c.new;
        let bind_index = c.index.map(|i| quote!(let #i: usize = __j;));
        let value = if c.unconstrained {
            quote!(__u[self.__offsets[#ci] + __j])
        } else {
            quote! {{
                let (__z, __log_jacobian) =
                    self.__transforms[#ci].forward_scalar(__u[self.__offsets[#ci] + __j]);
                #p::accumulate(&mut __lp, __log_jacobian);
                __z
            }}
        };
        quote! {{
            #bind_index
            let __value = #value;
            #p::accumulate(&mut __lp, #p::log_prob_or_neg_inf(#new, __value));
        }}
    });
    let sample = sample_group(plan, bindings, &encoder_outputs);
    let prepare_groups = super::encoder_emit::prepare_groups(plan);
    let batch = batch_methods(plan, bindings, &encoder_outputs);
    quote! {
        #sample

        #batch

        #prepare_groups

        fn mixing_groups(&self) -> ::core::option::Option<&#guide::MixingGroups> {
            self.__groups.as_ref()
        }

        fn log_conditional_group<__T: #p::Scalar>(
            &self,
            __params: &[__T],
            __group: usize,
            __psi: &[__T],
            __u: &[__T],
            __workspace: &mut #workspace,
        ) -> __T {
            let mut __p = 0usize;
            #(#bind_params)*
            #encoder_outputs
            let __j = __group;
            let mut __lp = <__T as #p::Scalar>::constant(0.0);
            #(#density)*
            __lp
        }
    }
}

/// `samples_by_group` and `sample_conditional_group`: element `j` of each
/// conditional drawn from the noise entry `sample_conditional` gives it
/// ([`element_draws`]).
fn sample_group(
    plan: &Plan<'_>,
    bindings: &Bindings,
    encoder_outputs: &TokenStream,
) -> TokenStream {
    let bind_params = &bindings.params;
    let steps = element_draws(plan, &quote!(__group));
    group_sampler(
        plan,
        &quote! {
            let mut __p = 0usize;
            #(#bind_params)*
            #encoder_outputs
            #(#steps)*
        },
    )
}

/// `samples_by_group` (true when the guide has its per-point groups),
/// `sample_conditional_group` with `body`, which draws group `__group`'s
/// latents into `__u` at its mixing coordinates `__psi` from `__noise`,
/// and `group_noise`: a group's `ψ` coordinates are drawn from the mixing
/// noise at the same positions, each latent `u_i` from the conditional
/// noise's entry `i` (and a Student-t element from its `ν` normals too).
pub fn group_sampler(plan: &Plan<'_>, body: &TokenStream) -> TokenStream {
    let workspace = workspace();
    let p = quote!(::iwhvi::__private);
    let tails = super::student_t::group_tails(plan);
    quote! {
        fn group_noise(
            &self,
            __group: usize,
            __mixing: &mut ::std::vec::Vec<usize>,
            __conditional: &mut ::std::vec::Vec<usize>,
        ) -> bool {
            let ::core::option::Option::Some(__groups) = self.__groups.as_ref() else {
                return false;
            };
            let __g = &__groups.groups()[__group];
            __mixing.extend(__g.psi.clone());
            __conditional.extend_from_slice(&__g.latents);
            #tails
            true
        }

        fn samples_by_group(&self) -> bool {
            self.__groups.is_some()
        }

        fn sample_conditional_group<__T: #p::Scalar>(
            &self,
            __params: &[__T],
            __group: usize,
            __psi: &[__T],
            __noise: &[f64],
            __u: &mut [__T],
            __workspace: &mut #workspace,
        ) {
            #body
        }
    }
}

/// Element `point` of each conditional drawn into `__u` from the noise
/// entry `sample_conditional` gives it (`rsample` then the inverse
/// transform, or the draw itself over `u`), as `sample_conditional` draws
/// it: the same bits.
pub fn element_draws(plan: &Plan<'_>, point: &TokenStream) -> Vec<TokenStream> {
    let p = quote!(::iwhvi::__private);
    plan.conditionals
        .iter()
        .enumerate()
        .map(|(ci, c)| {
            let new = &c.new;
            let bind_index = c.index.map(|i| quote!(let #i: usize = __k;));
            let noise = super::student_t::noise(plan, ci);
            let store = if c.unconstrained {
                quote!(__draw)
            } else {
                quote!(#p::inverse_scalar(__t, __draw))
            };
            quote! {{
                let (__off, __t, __k) = (self.__offsets[#ci], self.__transforms[#ci], #point);
                #bind_index
                let __draw = #p::rsample_or_nan(#new, #noise);
                __u[__off + __k] = #store;
            }}
        })
        .collect()
}

/// `sample_conditional_groups` and `log_conditional_groups` of a guide
/// whose conditionals are all `Normal` (nothing for another: the trait's
/// loops over the groups): a batch's draws as one vector operation, its
/// densities as another (one value per point), through `NormalBatch`,
/// conditional after conditional over the batch's points. Each
/// conditional's distribution is built per point as the per-group methods
/// build it (the same scalar operations for its parameters). A
/// conditional over a constrained latent whose transform is not the
/// identity (at run time) takes the per-group loop.
fn batch_methods(
    plan: &Plan<'_>,
    bindings: &Bindings,
    encoder_outputs: &TokenStream,
) -> TokenStream {
    if !plan.conditionals.iter().all(|c| c.normal && c.df.is_none()) {
        return quote!();
    }
    let workspace = workspace();
    let p = quote!(::iwhvi::__private);
    let bind_params = &bindings.params;
    let count = plan.conditionals.len();
    // Identity transforms only: the draw is the latent, no Jacobian.
    let identity = plan
        .conditionals
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.unconstrained)
        .map(|(ci, _)| quote!(&& self.__transforms[#ci] == #p::Transform::Identity));
    let identity = quote!(true #(#identity)*);
    // Each conditional's pushes over the batch's points (bound to
    // `index`), conditional after conditional; a scale written `….exp()`
    // goes in as its log, the exponential taken inside the operation (no
    // scalar `exp` node per element).
    let per_conditional = |index: &str, push: &dyn Fn(&Conditional<'_>) -> TokenStream| {
        let index = format_ident!("{index}");
        let pushes = plan.conditionals.iter().enumerate().map(|(ci, c)| {
            let bind_index = c.index.map(|i| quote!(let #i: usize = #index;));
            let push = push(c);
            quote! {{
                let __off = self.__offsets[#ci];
                for &#index in __groups {
                    #bind_index
                    #push
                }
            }}
        });
        quote!(#(#pushes)*)
    };
    let draws = per_conditional("__k", &|c| match &c.log_scale {
        Some((loc, log_scale)) => quote! {
            __batch.push_draw_log_scale(#loc, #log_scale, __noise[__off + __k], __off + __k);
        },
        None => {
            let new = &c.new;
            quote!(__batch.push_draw(#new, __noise[__off + __k], __off + __k);)
        }
    });
    let densities = per_conditional("__j", &|c| match &c.log_scale {
        Some((loc, log_scale)) => quote! {
            __batch.push_density_log_scale(#loc, #log_scale, __u[__off + __j]);
        },
        None => {
            let new = &c.new;
            quote!(__batch.push_density(#new, __u[__off + __j]);)
        }
    });
    // The encoder's outputs for the batch, and an empty batch of `count`
    // terms per point.
    let prologue = quote! {
        let mut __p = 0usize;
        #(#bind_params)*
        #encoder_outputs
        let mut __batch = #p::NormalBatch::<__T>::with_capacity(#count * __groups.len());
    };
    quote! {
        fn sample_conditional_groups<__T: #p::Scalar>(
            &self,
            __params: &[__T],
            __groups: &[usize],
            __noise: &[f64],
            __u: &mut [__T],
            __workspace: &mut #workspace,
        ) {
            if !(#identity) {
                for &__group in __groups {
                    self.sample_conditional_group(__params, __group, &[], __noise, __u, __workspace);
                }
                return;
            }
            #prologue
            #draws
            __batch.draw_into(__u);
        }

        fn log_conditional_groups<__T: #p::Scalar>(
            &self,
            __params: &[__T],
            __groups: &[usize],
            __u: &[__T],
            __workspace: &mut #workspace,
            __out: &mut ::std::vec::Vec<__T>,
        ) {
            if !(#identity) {
                for &__group in __groups {
                    __out.push(self.log_conditional_group(__params, __group, &[], __u, __workspace));
                }
                return;
            }
            #prologue
            #densities
            __batch.log_densities_into(__groups.len(), __out);
        }
    }
}
