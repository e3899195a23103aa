//! Code for the learned mixing distributions (`mixing_family.rs`):
//! `sample_mixing` (`ψ = loc + scale·ε` from the standard normal noise),
//! `log_mixing` (`log q(ψ)`, the family's density; `N(0, 1)` for a
//! coordinate without a family), their `_prepared` forms (the same values,
//! the encoders' outputs read from the workspace `prepare` filled, so
//! that an objective's outer draw does not run `q(ψ | x)`'s network
//! again) and, for a guide with per-point mixing
//! variables, `log_mixing_group` (the global group's or point `j`'s
//! `log q(ψ_j | x_j)`, its encoders' outputs read from the prepared
//! workspace). A guide whose
//! mixing variables are all `N(0, I)` gets none of them: the trait's
//! defaults, as before. A per-point guide that draws by group gets
//! `sample_mixing_group` (point `j`'s `ψ_j`, learned or `N(0, I)`).
//! Nothing here reports an error.

use proc_macro2::TokenStream;
use quote::quote;

use super::emit::Bindings;
use super::encoder::output_name;
use super::encoder_emit::evaluate_encoder;
use super::lower::{Mixing, Plan};

/// Whether some mixing variable has a learned distribution.
pub fn learned(plan: &Plan<'_>) -> bool {
    plan.mixing.iter().any(|m| m.family.is_some())
}

/// The encoders (their positions among `plan.encoders`) the mixing
/// distributions call.
fn family_encoders(plan: &Plan<'_>) -> Vec<usize> {
    (0..plan.encoders.len())
        .filter(|&ei| {
            let name = plan.encoders[ei].ident.to_string();
            plan.mixing.iter().any(|m| m.family_calls.contains(&name))
        })
        .collect()
}

/// The outputs `__enc_<name>_<o>` of the encoders the mixing
/// distributions call, each a slice over the points (the whole-`ψ`
/// methods have no workspace: computed here, once per call, by
/// [`evaluate_encoder`]).
fn encoder_outputs(plan: &Plan<'_>) -> TokenStream {
    let steps = family_encoders(plan).into_iter().map(|ei| {
        let e = &plan.encoders[ei];
        let one = evaluate_encoder(plan, ei);
        let names = (0..e.outputs).map(|o| {
            let name = output_name(e.ident, o);
            quote!(let #name: &[__T] = &__one[#o * __rows..(#o + 1) * __rows];)
        });
        // Not in a block of their own: the outputs stay bound (`__one`
        // shadowed by the next encoder's).
        quote! {
            #one
            let __one = __one;
            let __rows = self.__encoder_rows[#ei];
            #(#names)*
        }
    });
    quote!(#(#steps)*)
}

/// Mixing variable `mi`'s coordinate `__k` of the whole `ψ` (`stride`
/// apart: the number of per-point variables for a per-point one).
fn at(mi: usize, stride: usize) -> TokenStream {
    match stride {
        1 => quote!(self.__mixing_offsets[#mi] + __k),
        _ => quote!(self.__mixing_offsets[#mi] + __k * #stride),
    }
}

/// `ψ`'s coordinates of mixing variable `mi` drawn from `__noise`.
fn sample_step(plan: &Plan<'_>, mi: usize, m: &Mixing<'_>) -> TokenStream {
    let draw = draw_coordinate(plan, mi, m);
    quote! {
        for __k in 0..self.__mixing_lens[#mi] {
            #draw
        }
    }
}

/// Coordinate `__k` of mixing variable `mi` drawn from `__noise` into
/// `__psi` (both whole): `loc + scale·ε` of its learned family, or `ε`.
fn draw_coordinate(plan: &Plan<'_>, mi: usize, m: &Mixing<'_>) -> TokenStream {
    let p = quote!(::iwhvi::__private);
    let at = at(mi, plan.mixing_stride(mi));
    match &m.family {
        Some((new, index)) => {
            let bind = index.map(|i| quote!(let #i: usize = __k;));
            quote!(#bind __psi[#at] = #p::rsample_or_nan(#new, __noise[#at]);)
        }
        None => quote!(__psi[#at] = <__T as #p::Scalar>::constant(__noise[#at]);),
    }
}

/// `sample_mixing_group` of a per-point guide that draws by group (no
/// global group: group `j` is point `j`): each per-point variable's
/// coordinate at point `j` drawn as `sample_mixing_prepared` draws it
/// (the same noise entry and offset in the whole `ψ`, the encoders'
/// outputs read from the workspace `prepare_groups` filled): the same
/// bits.
pub fn sample_mixing_group(plan: &Plan<'_>, bindings: &Bindings) -> TokenStream {
    let p = quote!(::iwhvi::__private);
    let bind_params = &bindings.params;
    let outputs = super::encoder_emit::group_outputs(plan);
    let steps = plan
        .mixing
        .iter()
        .enumerate()
        .filter(|(_, m)| m.per_point)
        .map(|(mi, m)| {
            let draw = draw_coordinate(plan, mi, m);
            quote! {{
                let __k = __group;
                #draw
            }}
        });
    quote! {
        fn sample_mixing_group<__T: #p::Scalar>(
            &self,
            __params: &[__T],
            __group: usize,
            __noise: &[f64],
            __psi: &mut [__T],
            __workspace: &mut #p::Workspace<__T>,
        ) {
            let mut __p = 0usize;
            #(#bind_params)*
            #outputs
            #(#steps)*
        }
    }
}

/// `log q(x)` of one coordinate `x` of mixing variable `m` (`__k` its
/// position within the variable) added to `__lp`.
fn density_step(m: &Mixing<'_>, x: &TokenStream) -> TokenStream {
    let p = quote!(::iwhvi::__private);
    match &m.family {
        Some((new, index)) => {
            let bind = index.map(|i| quote!(let #i: usize = __k;));
            quote! {{
                #bind
                __lp += #p::log_prob_or_neg_inf(#new, #x);
            }}
        }
        None => quote! {
            __lp += #p::iwhvi_core::guide::std_normal_log_density(&[#x]);
        },
    }
}

/// Mixing variable `mi`'s terms of `log q(ψ)` at its coordinates of the
/// whole `ψ` (`__psi`), added to `__lp`.
fn whole_density(plan: &Plan<'_>, mi: usize, m: &Mixing<'_>) -> TokenStream {
    let at = at(mi, plan.mixing_stride(mi));
    let step = density_step(m, &quote!(__psi[#at]));
    quote! {
        for __k in 0..self.__mixing_lens[#mi] {
            #step
        }
    }
}

/// `sample_mixing` and `log_mixing` over the whole `ψ`, and their
/// `_prepared` forms that read the encoders' outputs from the prepared
/// workspace (nothing when every mixing variable is `N(0, I)`: the trait's
/// defaults).
pub fn methods(plan: &Plan<'_>, bindings: &Bindings) -> TokenStream {
    if !learned(plan) {
        return quote!();
    }
    let p = quote!(::iwhvi::__private);
    let bind_params = &bindings.params;
    let outputs = encoder_outputs(plan);
    let samples: Vec<TokenStream> = plan
        .mixing
        .iter()
        .enumerate()
        .map(|(mi, m)| sample_step(plan, mi, m))
        .collect();
    let densities: Vec<TokenStream> = plan
        .mixing
        .iter()
        .enumerate()
        .map(|(mi, m)| whole_density(plan, mi, m))
        .collect();
    // The `_prepared` methods read the encoders' outputs from the
    // workspace `prepare` filled (computed there when it was not).
    let prepared = super::encoder_emit::outputs(plan);
    quote! {
        fn sample_mixing<__T: #p::Scalar>(&self, __params: &[__T], __noise: &[f64], __psi: &mut [__T]) {
            let mut __p = 0usize;
            #(#bind_params)*
            #outputs
            #(#samples)*
        }

        fn log_mixing<__T: #p::Scalar>(&self, __params: &[__T], __psi: &[__T]) -> __T {
            let mut __p = 0usize;
            #(#bind_params)*
            #outputs
            let mut __lp = <__T as #p::Scalar>::constant(0.0);
            #(#densities)*
            __lp
        }

        fn sample_mixing_prepared<__T: #p::Scalar>(
            &self,
            __params: &[__T],
            __noise: &[f64],
            __psi: &mut [__T],
            __workspace: &mut #p::Workspace<__T>,
        ) {
            let mut __p = 0usize;
            #(#bind_params)*
            #prepared
            #(#samples)*
        }

        fn log_mixing_prepared<__T: #p::Scalar>(
            &self,
            __params: &[__T],
            __psi: &[__T],
            __workspace: &mut #p::Workspace<__T>,
        ) -> __T {
            let mut __p = 0usize;
            #(#bind_params)*
            #prepared
            let mut __lp = <__T as #p::Scalar>::constant(0.0);
            #(#densities)*
            __lp
        }
    }
}

/// `log_mixing_group` of a guide with per-point mixing variables and a
/// learned distribution: the global group's `log q(ψ)` over its
/// coordinates (the same offsets as in the whole `ψ`), or point `j`'s
/// `log q(ψ_j | x_j)` at `ψ_j = __psi[0]`.
pub fn log_mixing_group(
    plan: &Plan<'_>,
    bindings: &Bindings,
    first_point: &TokenStream,
) -> TokenStream {
    if !learned(plan) {
        return quote!();
    }
    let p = quote!(::iwhvi::__private);
    let bind_params = &bindings.params;
    let global = plan
        .mixing
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.per_point)
        .map(|(mi, m)| whole_density(plan, mi, m));
    let point = plan
        .mixing
        .iter()
        .filter(|m| m.per_point)
        .enumerate()
        .map(|(q, m)| {
            let step = density_step(m, &quote!(__psi[#q]));
            quote! {
                let __k = __j;
                #step
            }
        });
    // The encoders' outputs at every point, as `prepare` (or
    // `prepare_groups`) left them in the workspace: O(1) per group.
    let outputs = super::encoder_emit::group_outputs(plan);
    quote! {
        fn log_mixing_group<__T: #p::Scalar>(
            &self,
            __params: &[__T],
            __group: usize,
            __psi: &[__T],
            __workspace: &mut #p::Workspace<__T>,
        ) -> __T {
            let mut __p = 0usize;
            #(#bind_params)*
            #outputs
            #first_point
            let mut __lp = <__T as #p::Scalar>::constant(0.0);
            if __group < __first {
                #(#global)*
                return __lp;
            }
            let __j = __group - __first;
            #(#point)*
            __lp
        }
    }
}
