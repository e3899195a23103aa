//! Student-t conditionals in struct guides: `#[latent(StudentT(ν, loc, scale))]`
//! on a real latent (or `#[unconstrained]`), with `ν` a whole-number
//! literal from 1 to 255. Each element's draw is exact and reparameterised
//! in `loc` and `scale`: `x = loc + scale · t`, `t = ε₀ / √(Σⱼ εⱼ² / ν)`
//! from `1 + ν` standard normals (`iwhvi_core::generated::student_t_noise`,
//! the draw of `SemiImplicit`'s Student-t conditionals).
//!
//! The noise is laid out as `SemiImplicit` lays it out: the first
//! `latent_dim` normals are every element's `ε₀` (at the element's
//! unconstrained offset, as for a Gaussian conditional), then each
//! Student-t conditional's `ν` normals per element, in the guide's order.
//! A guide whose conditionals are all `StudentT(ν, …)` with one `ν` thus
//! reads element `i`'s `εⱼ` at `latent_dim + i·ν + j`, as `SemiImplicit`
//! does, and gives the same draws on the same noise.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Expr, Lit};

use super::lower::Plan;
use crate::ctxt::Ctxt;
use crate::model::ast::DistCall;

/// The degrees of freedom of a `StudentT` conditional: `Ok(Some(ν))`;
/// `Ok(None)` for another family; `Err(())` with the mistake reported.
pub fn degrees(cx: &Ctxt, call: &DistCall) -> Result<Option<u8>, ()> {
    if call.user.is_some() || call.name != "StudentT" {
        return Ok(None);
    }
    let Some(arg) = call.args.first() else {
        // The argument count is reported by the family check.
        return Err(());
    };
    let value = match arg {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Int(i) => i.base10_parse::<f64>().ok(),
            Lit::Float(f) => f.base10_parse::<f64>().ok(),
            _ => None,
        },
        _ => None,
    };
    match value {
        Some(v) if v.fract() == 0.0 && (1.0..=255.0).contains(&v) => Ok(Some(v as u8)),
        _ => {
            cx.error_spanned_by(
                arg,
                "a guide's Student-t conditional takes its degrees of freedom as a whole-number literal from 1 to 255 (its exact draw uses 1 + ν standard normals), e.g. `StudentT(4.0, loc, scale)`",
            );
            Err(())
        }
    }
}

/// The offset in the conditional noise of conditional `ci`'s chi-square
/// normals: after every element's numerator and the earlier Student-t
/// conditionals' normals.
fn tail_offset(plan: &Plan<'_>, ci: usize) -> TokenStream {
    let earlier = plan.conditionals[..ci]
        .iter()
        .enumerate()
        .filter_map(|(c, cond)| {
            let df = usize::from(cond.df?);
            Some(quote!(+ self.__lens[#c] * #df))
        });
    quote!((self.__latent_dim #(#earlier)*))
}

/// The standard noise of element `__k` of conditional `ci` (at unconstrained
/// offset `__off`): its normal, or for a Student-t conditional its t variate.
pub fn noise(plan: &Plan<'_>, ci: usize) -> TokenStream {
    let Some(df) = plan.conditionals[ci].df else {
        return quote!(__noise[__off + __k]);
    };
    let tail = tail_offset(plan, ci);
    let df = usize::from(df);
    quote! {{
        let __tail: usize = #tail + __k * #df;
        ::iwhvi::__private::student_t_noise(__noise[__off + __k], &__noise[__tail..__tail + #df])
    }}
}

/// `group_noise`'s entries of the Student-t conditionals: for each of the
/// group's latents `__g.latents` that is element `k` of Student-t
/// conditional `c`, its `ν` chi-square normals (nothing without one).
pub fn group_tails(plan: &Plan<'_>) -> TokenStream {
    let steps = plan.conditionals.iter().enumerate().filter_map(|(ci, c)| {
        let df = usize::from(c.df?);
        let tail = tail_offset(plan, ci);
        Some(quote! {{
            let (__off, __len, __tail) = (self.__offsets[#ci], self.__lens[#ci], #tail);
            for &__i in &__g.latents {
                if (__off..__off + __len).contains(&__i) {
                    let __at = __tail + (__i - __off) * #df;
                    __conditional.extend(__at..__at + #df);
                }
            }
        }})
    });
    quote!(#(#steps)*)
}

/// `conditional_noise_dim`, when a conditional is a Student-t (else the
/// default, `latent_dim`).
pub fn noise_dim(plan: &Plan<'_>) -> Option<TokenStream> {
    let n = plan.conditionals.len();
    plan.conditionals.iter().any(|c| c.df.is_some()).then(|| {
        let end = tail_offset(plan, n);
        quote! {
            fn conditional_noise_dim(&self) -> usize {
                #end
            }
        }
    })
}
