//! Learned mixing distributions (issue 16): `#[mixing(Normal(loc, scale),
//! len = d)]` for a global `ψ ~ N(loc, scale)` (each coordinate, `loc`
//! and `scale` expressions of the guide's parameters) and, per point,
//! `#[mixing(Normal(mix(j)[0], mix(j)[1].exp()), len = z, for j)]` for
//! `ψ_j ~ q(ψ_j | x_j)` with `mix` an encoder of the point's data. The
//! draw is reparameterised, `ψ = loc + scale·ε` with the standard normal
//! noise of the `N(0, I)` default, and `log q(ψ)` is the family's density
//! (`emit_mixing.rs`).
//!
//! Checked here: the family is `Normal` (the one a mixing variable can
//! draw from its standard normal noise), and its arguments read neither a
//! latent nor a mixing variable (`q(ψ | x)` comes before both).

use std::collections::BTreeSet;

use proc_macro2::TokenStream;
use syn::Ident;

use super::ast::{GuideField, Part};
use super::encoder::{self, Callable};
use crate::ctxt::Ctxt;
use crate::handover::LatentInfo;
use crate::model::ast::DistCall;
use crate::model::{check_distribution, constructor};
use crate::scope::{self, Bindings, Lower};

/// What lowering a family needs from the guide.
pub struct Context<'c> {
    pub table: &'c Bindings,
    /// The bindings visible to it: the encoders' outputs, parameters and
    /// mixing variables (the latents come after).
    pub visible: usize,
    pub fields: &'c [&'c GuideField],
    pub latents: &'c [LatentInfo],
    pub encoders: &'c [Callable<'c>],
}

/// The lowered family of mixing variable `m` (`None` without one, or
/// with a mistake, reported in `cx`); the names it reads go to `uses`, the
/// encoders it calls to `called`.
pub fn lower(
    cx: &Ctxt,
    at: &Context<'_>,
    m: &GuideField,
    (uses, called): (&mut BTreeSet<String>, &mut BTreeSet<String>),
) -> Option<TokenStream> {
    let Part::Mixing {
        family: Some(call),
        per_point,
        ..
    } = &m.part
    else {
        return None;
    };
    let name = &m.ident;
    let family = check_distribution(cx, call)?;
    if call.user.is_some() || family.name != "Normal" {
        let written = call.name.to_string();
        cx.error_spanned_by(
            &call.name,
            format!(
                "mixing variable `{name}` is drawn as `{name} = loc + scale·ε` from standard normal noise: \
                 write `Normal(<loc>, <scale>)` (`{written}` has no such reparameterisation here), or \
                 `#[mixing(len = …)]` alone for N(0, 1)"
            ),
        );
        return None;
    }
    if !reads_nothing_drawn(cx, at, name, call) {
        return None;
    }
    let index = per_point.as_ref();
    let rewritten = encoder::rewrite_call(cx, at.encoders, call, index, name, called).ok()?;
    let call = rewritten.as_ref().unwrap_or(call);
    let mut lower = Lower::new(at.table.scope(at.visible, index), cx);
    let new = constructor(&mut lower, family, call);
    uses.extend(lower.uses.names);
    new
}

/// The family reads no latent and no mixing variable (`false`, reported,
/// when it does).
fn reads_nothing_drawn(cx: &Ctxt, at: &Context<'_>, name: &Ident, call: &DistCall) -> bool {
    let what = |i: &Ident| -> Option<&'static str> {
        if at.latents.iter().any(|l| l.name == *i) {
            return Some("a latent");
        }
        at.fields
            .iter()
            .find(|f| f.ident == *i)
            .and_then(|f| match f.part {
                Part::Mixing { .. } => Some("a mixing variable"),
                Part::Conditional { .. } => Some("a latent"),
                _ => None,
            })
    };
    let Some(bad) = scope::first_mention(&call.tokens, |i| what(i).is_some()) else {
        return true;
    };
    let kind = what(&bad).unwrap_or("a latent");
    cx.error_spanned_by(
        &bad,
        format!(
            "the distribution of mixing variable `{name}` comes before the latents and the mixing \
             variables, and cannot read `{bad}` ({kind}): give it the guide's parameters or, per point, \
             an encoder of the point's data, e.g. `Normal(mix(j)[0], mix(j)[1].exp())`"
        ),
    );
    false
}
