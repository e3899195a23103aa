//! Code for a guide with per-point mixing variables (`per_point.rs`): its
//! mixing groups, built by `__from_layout` (one group for the global
//! latents and mixing variables, if any, then one per point `j` holding
//! `ψ_j` (one coordinate per per-point variable, `__psi[q]` for the
//! `q`-th) and element `j` of each local latent), and the per-group
//! densities of `HierarchicalGuide` (`log_conditional_group`,
//! `sample_reverse_group`, `log_reverse_group`; `log q(ψ_j)` is the
//! default standard normal, or `mixing_emit.rs`'s for a learned one);
//! for a guide that draws by group (`per_point::by_group`), its draws by
//! group (`samples_by_group`, `sample_mixing_group`,
//! `sample_conditional_group`, and `encoder_emit.rs`'s `prepare_groups`),
//! so that a minibatch step draws and evaluates its batch's points alone.
//! The group methods read the encoders' outputs from a workspace
//! `prepare` or `prepare_groups` filled. Nothing here reports an error.

use proc_macro2::TokenStream;
use quote::quote;

use super::emit::{Bindings, constrained_latents_with, workspace};
use super::encoder_emit::cached_latents;
use super::lower::{Conditional, Plan};

/// `__from_layout`'s `__groups`: `None` without a per-point mixing
/// variable (unless the guide is amortised, `amortised_emit.rs`).
pub fn groups(plan: &Plan<'_>) -> TokenStream {
    let Some(pp) = plan.per_point else {
        if plan.amortised {
            return super::amortised_emit::groups();
        }
        return quote!(::core::option::Option::None);
    };
    let guide = quote!(::iwhvi::__private::iwhvi_core::guide);
    let name = plan.mixing[pp].ident.to_string();
    let local = plan.conditionals.iter().map(|c| c.local);
    let names = plan.conditionals.iter().map(|c| c.ident.to_string());
    // `ψ_j`'s dimension: one coordinate per per-point variable.
    let width = plan.per_point_count();
    quote! {{
        let __points = __mixing_lens[#pp];
        let __local: &[bool] = &[#(#local),*];
        let __names: &[&'static str] = &[#(#names),*];
        for __c in 0..__local.len() {
            if __local[__c] && __lens[__c] != __points {
                return ::core::result::Result::Err(::iwhvi::__private::GuideError::PointRows {
                    mixing: #name,
                    latent: __names[__c],
                    rows: __lens[__c],
                    points: __points,
                });
            }
        }
        // The global mixing variables' coordinates come first.
        let __global_psi = __mixing_offsets[#pp];
        let mut __list = ::std::vec::Vec::new();
        let __global_latents: ::std::vec::Vec<usize> = (0..__local.len())
            .filter(|&__c| !__local[__c])
            .flat_map(|__c| __offsets[__c]..__offsets[__c] + __lens[__c])
            .collect();
        if __global_psi > 0 || !__global_latents.is_empty() {
            __list.push(#guide::MixingGroup {
                psi: 0..__global_psi,
                latents: __global_latents,
                reverse_noise: 0..__global_psi,
            });
        }
        for __j in 0..__points {
            let __at = __global_psi + __j * #width;
            __list.push(#guide::MixingGroup {
                psi: __at..__at + #width,
                latents: (0..__local.len())
                    .filter(|&__c| __local[__c])
                    .map(|__c| __offsets[__c] + __j)
                    .collect(),
                reverse_noise: __at..__at + #width,
            });
        }
        let __mixing_dim: usize = __mixing_lens.iter().sum();
        ::core::option::Option::Some(#guide::MixingGroups::new(
            __layout.dim(),
            __mixing_dim,
            __mixing_dim,
            __list,
        )?)
    }}
}

/// The per-group methods of `impl HierarchicalGuide` (nothing without a
/// per-point mixing variable): `mixing_groups`, then
/// `log_conditional_group`, `sample_reverse_group` and
/// `log_reverse_group`, one function here each, and the draws by group.
pub fn methods(plan: &Plan<'_>, bindings: &Bindings) -> TokenStream {
    let encoder_outputs = super::encoder_emit::group_outputs(plan);
    let context_outputs = super::encoder_emit::group_context_outputs(plan);
    let mixing_context = super::encoder_emit::mixing_context_point(plan);
    let Some(pp) = plan.per_point else {
        if plan.amortised {
            return super::amortised_emit::methods(plan, bindings);
        }
        return quote!();
    };
    let guide = quote!(::iwhvi::__private::iwhvi_core::guide);
    let bind_params = &bindings.params;
    let shared = Shared {
        prologue: quote! {
            let mut __p = 0usize;
            #(#bind_params)*
            #encoder_outputs
        },
        // A point's group reads the latents `prepare_reverse` constrained
        // once per draw (O(1) per group), and adds its own elements' Jacobian.
        point_latents: cached_latents(plan, &bindings.latents),
        context_outputs,
        first_point: quote! {
            let __points = self.__mixing_lens[#pp];
            let __first = self.__groups.as_ref().map_or(0, |__g| __g.len()).saturating_sub(__points);
        },
    };
    let conditional = log_conditional_group(plan, bindings, &shared, &mixing_context);
    let reverse = ReverseSteps::of(plan);
    let sample = sample_reverse_group(&shared, &reverse);
    let log_reverse = log_reverse_group(&shared, &reverse);
    let log_mixing = super::mixing_emit::log_mixing_group(plan, bindings, &shared.first_point);
    let draws = draws_by_group(plan, bindings, &shared);
    quote! {
        #draws

        fn mixing_groups(&self) -> ::core::option::Option<&#guide::MixingGroups> {
            self.__groups.as_ref()
        }

        #log_mixing

        #conditional

        #sample

        #log_reverse
    }
}

/// The statements every group method starts from.
struct Shared {
    /// `__p` and the parameters bound, then the encoders' outputs.
    prologue: TokenStream,
    /// The latents, from `workspace.reverse` or constrained here.
    point_latents: TokenStream,
    /// The reverse methods' context-encoder outputs.
    context_outputs: TokenStream,
    /// `__points` and `__first`, the first point's group.
    first_point: TokenStream,
}

/// `log_conditional_group`: `log q(z_g | ψ_g)` for the global group
/// (the conditionals reading no per-point mixing variable, with their
/// latents' Jacobians) or point `j`'s group (element `j` of each local
/// latent at `ψ_j = __psi[0]`).
fn log_conditional_group(
    plan: &Plan<'_>,
    bindings: &Bindings,
    shared: &Shared,
    mixing_context: &TokenStream,
) -> TokenStream {
    let workspace = workspace();
    let p = quote!(::iwhvi::__private);
    let Shared {
        prologue,
        point_latents,
        first_point,
        ..
    } = shared;
    let bind_global_mixing = bindings
        .mixing
        .iter()
        .zip(&plan.mixing)
        .filter(|(_, m)| !m.per_point)
        .map(|(b, _)| b);
    // Each per-point variable at its coordinate of `ψ_j = __psi`.
    let bind_point_mixing = plan.mixing.iter().enumerate().filter_map(|(mi, m)| {
        let (name, q) = (m.ident, plan.point_slot(mi)?);
        Some(quote!(let #name = #p::iwhvi_core::generated::PointView::new(__psi[#q], __j);))
    });
    // The global group: the conditionals that read no per-point mixing
    // variable, with the Jacobians of their latents.
    let global_jacobian: Vec<bool> = plan
        .conditionals
        .iter()
        .map(|c| !c.unconstrained && !c.local)
        .collect();
    let global_latents =
        constrained_latents_with(bindings, &global_jacobian, quote!(let mut __lp =));
    let (global_density, point_density) = densities(plan);
    quote! {
        fn log_conditional_group<__T: #p::Scalar>(
            &self,
            __params: &[__T],
            __group: usize,
            __psi: &[__T],
            __u: &[__T],
            __workspace: &mut #workspace,
        ) -> __T {
            #prologue
            #first_point
            if __group < __first {
                #(#bind_global_mixing)*
                #global_latents
                #(#global_density)*
                return __lp;
            }
            let __j = __group - __first;
            #(#bind_point_mixing)*
            #mixing_context
            #point_latents
            let mut __lp = <__T as #p::Scalar>::constant(0.0);
            #(#point_density)*
            __lp
        }
    }
}

/// The conditionals' densities added to `__lp`: the global group's (whole
/// latents, a loop over the elements of a vector one) and a point's
/// (element `__j` of each local latent, with its log Jacobian).
fn densities(plan: &Plan<'_>) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let p = quote!(::iwhvi::__private);
    let mut global_density = Vec::new();
    let mut point_density = Vec::new();
    for (ci, c) in plan.conditionals.iter().enumerate() {
        let name = c.ident;
        let step = density_step(ci, c);
        if c.local {
            // Element j, with its own log Jacobian when the conditional is
            // over the constrained latent.
            let jacobian = (!c.unconstrained).then(|| {
                quote! {
                    #p::accumulate(
                        &mut __lp,
                        self.__transforms[#ci].forward_scalar(__u[self.__offsets[#ci] + __k]).1,
                    );
                }
            });
            point_density.push(quote! {{
                let __k = __j;
                #jacobian
                #step
            }});
        } else if c.scalar {
            global_density.push(step);
        } else {
            let len = if c.unconstrained {
                quote!(self.__lens[#ci])
            } else {
                quote!(#name.len())
            };
            global_density.push(quote! {
                for __k in 0..#len {
                    #step
                }
            });
        }
    }
    (global_density, point_density)
}

/// Conditional `ci`'s density at element `__k` (the whole latent when
/// scalar) added to `__lp`.
fn density_step(ci: usize, c: &Conditional<'_>) -> TokenStream {
    let p = quote!(::iwhvi::__private);
    let (name, new) = (c.ident, &c.new);
    let bind_index = c.index.map(|i| quote!(let #i: usize = __k;));
    let value = if c.unconstrained {
        quote!(__u[self.__offsets[#ci] + __k])
    } else if c.scalar {
        quote!(#name)
    } else {
        quote!(#name[__k])
    };
    let bind_index = bind_index.filter(|_| c.unconstrained || !c.scalar);
    quote! {
        #bind_index
        #p::accumulate(&mut __lp, #p::log_prob_or_neg_inf(#new, #value));
    }
}

/// The reverse models' steps: drawing `ψ` and adding `log τ(ψ | z)`, for
/// the global group (its global mixing variables, at the same offsets as
/// in the whole `ψ`) and for a point (`ψ_j = __psi[0]`).
struct ReverseSteps {
    global_sample: Vec<TokenStream>,
    global_reverse: Vec<TokenStream>,
    point_sample: TokenStream,
    point_reverse: TokenStream,
}

impl ReverseSteps {
    /// The steps of `plan`'s mixing variables with a reverse model.
    fn of(plan: &Plan<'_>) -> Self {
        let p = quote!(::iwhvi::__private);
        let mut steps = ReverseSteps {
            global_sample: Vec::new(),
            global_reverse: Vec::new(),
            point_sample: quote!(),
            point_reverse: quote!(),
        };
        for (mi, m) in plan.mixing.iter().enumerate() {
            let Some((new, index)) = &m.reverse else {
                continue;
            };
            let bind_index = index.map(|i| quote!(let #i: usize = __k;));
            if let Some(q) = plan.point_slot(mi) {
                let (sample, reverse) = (&steps.point_sample, &steps.point_reverse);
                steps.point_sample = quote! {
                    #sample
                    let __k = __j;
                    #bind_index
                    __psi[#q] = #p::rsample_or_nan(#new, __noise[#q]);
                };
                steps.point_reverse = quote! {
                    #reverse
                    let __k = __j;
                    #bind_index
                    __lp += #p::log_prob_or_neg_inf(#new, __psi[#q]);
                };
                continue;
            }
            // The global group's ψ and noise are the first coordinates of the
            // whole ones: the same offsets.
            steps.global_sample.push(quote! {
                let (__off, __n) = (self.__mixing_offsets[#mi], self.__mixing_lens[#mi]);
                for __k in 0..__n {
                    #bind_index
                    __psi[__off + __k] = #p::rsample_or_nan(#new, __noise[__off + __k]);
                }
            });
            steps.global_reverse.push(quote! {
                let (__off, __n) = (self.__mixing_offsets[#mi], self.__mixing_lens[#mi]);
                for __k in 0..__n {
                    #bind_index
                    __lp += #p::log_prob_or_neg_inf(#new, __psi[__off + __k]);
                }
            });
        }
        steps
    }
}

/// `sample_reverse_group`: draws group `g`'s `ψ_g ~ τ(ψ_g | z)` from its
/// noise.
fn sample_reverse_group(shared: &Shared, reverse: &ReverseSteps) -> TokenStream {
    let workspace = workspace();
    let p = quote!(::iwhvi::__private);
    let Shared {
        prologue,
        point_latents,
        context_outputs,
        first_point,
    } = shared;
    let (global_sample, point_sample) = (&reverse.global_sample, &reverse.point_sample);
    quote! {
        fn sample_reverse_group<__T: #p::Scalar>(
            &self,
            __params: &[__T],
            __group: usize,
            __u: &[__T],
            __noise: &[f64],
            __psi: &mut [__T],
            __workspace: &mut #workspace,
        ) {
            #prologue
            #point_latents
            #context_outputs
            #first_point
            if __group < __first {
                #(#global_sample)*
                return;
            }
            let __j = __group - __first;
            #point_sample
        }
    }
}

/// `log_reverse_group`: `log τ(ψ_g | z)` for group `g`.
fn log_reverse_group(shared: &Shared, reverse: &ReverseSteps) -> TokenStream {
    let workspace = workspace();
    let p = quote!(::iwhvi::__private);
    let Shared {
        prologue,
        point_latents,
        context_outputs,
        first_point,
    } = shared;
    let (global_reverse, point_reverse) = (&reverse.global_reverse, &reverse.point_reverse);
    quote! {
        fn log_reverse_group<__T: #p::Scalar>(
            &self,
            __params: &[__T],
            __group: usize,
            __u: &[__T],
            __psi: &[__T],
            __workspace: &mut #workspace,
        ) -> __T {
            #prologue
            #point_latents
            #context_outputs
            let mut __lp = <__T as #p::Scalar>::constant(0.0);
            #first_point
            if __group < __first {
                #(#global_reverse)*
                return __lp;
            }
            let __j = __group - __first;
            #point_reverse
            __lp
        }
    }
}

/// `samples_by_group`, `sample_mixing_group`, `sample_conditional_group`
/// and `prepare_groups` of a guide that draws by group (nothing for
/// another): point `j`'s `ψ_j`, then its elements of the local latents at
/// `ψ_j = __psi` (each per-point variable and mixing-context encoder output
/// a `PointView` answering at `j`) from the noise entries
/// `sample_conditional` gives them: the same bits.
fn draws_by_group(plan: &Plan<'_>, bindings: &Bindings, shared: &Shared) -> TokenStream {
    if !plan.by_group {
        return quote!();
    }
    let p = quote!(::iwhvi::__private);
    let Shared {
        prologue,
        first_point,
        ..
    } = shared;
    let bind_point_mixing = plan.mixing.iter().enumerate().filter_map(|(mi, m)| {
        let (name, q) = (m.ident, plan.point_slot(mi)?);
        Some(quote!(let #name = #p::iwhvi_core::generated::PointView::new(__psi[#q], __j);))
    });
    let mixing_context = super::encoder_emit::mixing_context_point(plan);
    let invalidate = super::encoder_emit::invalidate_draw(plan);
    let steps = super::amortised_emit::element_draws(plan, &quote!(__j));
    let sample_mixing = super::mixing_emit::sample_mixing_group(plan, bindings);
    let prepare_groups = super::encoder_emit::prepare_groups(plan);
    let sampler = super::amortised_emit::group_sampler(
        plan,
        &quote! {
            #invalidate
            #prologue
            #first_point
            let __j = __group - __first;
            #(#bind_point_mixing)*
            #mixing_context
            #(#steps)*
        },
    );
    quote! {
        #prepare_groups
        #sample_mixing
        #sampler
    }
}
