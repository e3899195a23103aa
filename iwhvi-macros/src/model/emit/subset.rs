//! Minibatches over the model's plate (issue 16): `Model::subsample_plate`
//! and `Model::log_joint_subset`, the log joint with the plate's terms on a
//! batch of its elements scaled by `N / b`.
//!
//! The plate is every observed vector over `for i` (element-wise, not a
//! multivariate draw); they must have one length, checked at run time. Every
//! other term (latents' priors and Jacobians, factors, scalar or
//! multivariate observations) is global and counted whole. A model with
//! learned parameters or semi-implicit priors keeps the trait's defaults (it
//! cannot be subsampled), and says why.

use proc_macro2::TokenStream;
use quote::quote;

use super::super::ast::Elem;
use super::super::plan::{Observed, Plan, Step};
use super::{latent, transformed};

/// True for an observed field whose terms are one per element of a plate.
fn in_plate(o: &Observed<'_>) -> bool {
    o.index.is_some() && !o.shape.is_scalar() && !o.family.multivariate()
}

/// The two `Model` methods (inside `impl Model`).
pub fn model_methods(plan: &Plan<'_>) -> TokenStream {
    let p = quote!(::iwhvi::__private);
    let sub = quote!(::iwhvi::__private::iwhvi_core::subsample);
    let refuse = |reason: &str| {
        quote! {
            fn subsample_plate(&self) -> ::core::result::Result<#sub::SubsamplePlate, &'static str> {
                ::core::result::Result::Err(#reason)
            }
        }
    };
    if !plan.params.is_empty() {
        return refuse(
            "minibatches of a model with learned parameters (#[param]) are not supported yet",
        );
    }
    if plan.latents().any(|l| l.mixing.is_some()) {
        return refuse(
            "minibatches of a model with semi-implicit priors (#[prior_mixing]) are not supported yet",
        );
    }
    let plate: Vec<&Observed<'_>> = plan.observations().filter(|o| in_plate(o)).collect();
    if plate.is_empty() {
        return refuse(
            "this model has no plate to subsample: no observed vector with an element-wise \
             likelihood (#[observe(…, for i)])",
        );
    }
    let names = plate.iter().map(|o| o.field.ident.to_string());
    let lens = plate.iter().map(|o| {
        let ident = &o.field.ident;
        quote!(self.#ident.len())
    });
    let steps = plan.steps.iter().map(|step| match step {
        Step::Latent(l) => latent::log_joint_step(l),
        Step::Observed(o) if in_plate(o) => plate_step(o),
        Step::Observed(o) => super::observed::log_joint_step(o),
        Step::Factor(value, _) => quote!(__lp += #value;),
        Step::Derived(_) => quote!(),
        Step::Transformed(t) => transformed::binding(t),
    });
    quote! {
        #[allow(clippy::all)]
        fn subsample_plate(&self) -> ::core::result::Result<#sub::SubsamplePlate, &'static str> {
            let __lens: &[usize] = &[#(#lens),*];
            if __lens.iter().any(|__n| *__n != __lens[0]) {
                return ::core::result::Result::Err(
                    "this model has plates of different lengths (observed vectors over `for i` \
                     of different lengths): which one a minibatch subsamples is not defined",
                );
            }
            ::core::result::Result::Ok(#sub::SubsamplePlate {
                observed: ::std::vec![#(::std::string::String::from(#names)),*],
                len: __lens[0],
            })
        }

        #[allow(unused_mut, unused_variables, unused_assignments, clippy::all)]
        fn log_joint_subset<__T: #p::Scalar>(
            &self,
            __theta: &[__T],
            __u: &[__T],
            __noise: &[f64],
            __batch: &#sub::Batch<'_>,
        ) -> __T {
            let mut __lp = <__T as #p::Scalar>::constant(0.0);
            let mut __plate = <__T as #p::Scalar>::constant(0.0);
            let mut __at = 0usize;
            #(#steps)*
            __lp + __plate * <__T as #p::Scalar>::constant(__batch.scale())
        }
    }
}

/// An observed vector's terms on the batch's elements, into `__plate`.
fn plate_step(o: &Observed<'_>) -> TokenStream {
    let (ident, new) = (&o.field.ident, &o.likelihood);
    let i = o.index.expect("a plate's observation has an index");
    let element = quote!(self.#ident[#i]);
    let value = match o.shape.elem() {
        Elem::Real => quote!(<__T as ::iwhvi::__private::Scalar>::constant(#element)),
        Elem::Integer => quote!((#element) as u64),
        Elem::Bool => {
            quote!(<::core::primitive::u64 as ::core::convert::From<bool>>::from(#element))
        }
    };
    quote! {
        for &#i in __batch.indices() {
            __plate += ::iwhvi::__private::log_prob_or_neg_inf(#new, #value);
        }
    }
}
