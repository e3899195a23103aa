//! Semi-implicit priors (DSIVI): `#[prior_mixing(Family(…), of = z, k = K)]`
//! on a field `zeta: f64` declares `zeta` the mixing variable of latent
//! `z`'s prior, `p(z) = ∫ p(z | ζ) p(ζ) dζ`, with `ζ ~ Family(…)` and
//! `z`'s own `#[latent(…)]` prior read as `p(z | ζ)`. The log joint then
//! holds, in place of `log p(z | ζ)`, the importance-sampled estimate of
//! `log p(z)` with `K` draws of a learned Gaussian proposal (core's
//! `semi_implicit_prior`), whose four parameters are a learned vector
//! `<zeta>_proposal` of the model (a `#[param]` made here).
//!
//! `zeta` is a value only inside `z`'s prior: it is no latent (the guide
//! never sees it), and any other field that reads it is an error.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, Ident};

use super::ast::{DistCall, Elem, Field, Model, Once, ParamArgs, Role, Shape, dist_call};
use super::plan::{Latent, Step};
use crate::ctxt::Ctxt;
use crate::scope::{Bindings, Lower, Meaning};

/// The contents of `#[prior_mixing(…)]`: the mixing variable's
/// distribution, `of = <latent>` and `k = <number of importance draws>`.
pub struct MixingArgs {
    pub prior: DistCall,
    pub of: Ident,
    pub k: Expr,
}

struct RawArgs {
    call: Expr,
    of: Option<Ident>,
    k: Option<Expr>,
}

impl Parse for RawArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let call: Expr = input.parse()?;
        let (mut of, mut k) = (Once::default(), Once::default());
        while input.parse::<Option<syn::Token![,]>>()?.is_some() && !input.is_empty() {
            let key: Ident = input.parse()?;
            input.parse::<syn::Token![=]>()?;
            match key.to_string().as_str() {
                "of" => of.set(&key, input.parse()?)?,
                "k" => k.set(&key, input.parse()?)?,
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown option `{other}`: write `of = <the latent whose prior it mixes>` and `k = <importance draws>`"
                        ),
                    ));
                }
            }
        }
        Ok(Self {
            call,
            of: of.get(),
            k: k.get(),
        })
    }
}

/// The role of a `#[prior_mixing(…)]` attribute, `None` with its mistake
/// reported.
pub fn role(cx: &Ctxt, attr: &syn::Attribute) -> Option<Role> {
    let args = cx.ok(attr.parse_args::<RawArgs>())?;
    let (Some(of), Some(k)) = (args.of, args.k) else {
        cx.error_spanned_by(
            attr,
            "a prior's mixing variable names the latent it mixes and the number of importance draws: write `#[prior_mixing(Normal(0.0, 1.0), of = z, k = 16)]`",
        );
        return None;
    };
    let prior = dist_call(cx, args.call)?;
    Some(Role::PriorMixing(MixingArgs { prior, of, k }))
}

/// The name of the learned proposal of mixing variable `ident`.
fn proposal_ident(ident: &Ident) -> Ident {
    format_ident!("{}_proposal", ident)
}

/// The learned proposal parameters `[a, b, c, d]` of each mixing
/// variable, as `#[param(init = 0.0, len = 4)] <zeta>_proposal: Vec<f64>`
/// fields (appended after the user's fields).
pub fn proposal_fields(fields: &[Field]) -> Vec<Field> {
    fields
        .iter()
        .filter(|f| matches!(f.role, Role::PriorMixing(_)))
        .map(|f| {
            let ident = proposal_ident(&f.ident);
            let doc = format!(
                "The learned proposal `ν(ζ | z)` of the semi-implicit prior mixed by `{}`: `[a, b, c, d]`, mean `a + b·u` and log-scale `c + d·u` of a Gaussian on the mixing variable's unconstrained coordinate, `u` the mixed latent's.",
                f.ident
            );
            let span = f.ident.span();
            Field {
                ident,
                ty: syn::parse_quote_spanned!(span=> ::std::vec::Vec<f64>),
                vis: syn::Visibility::Inherited,
                attrs: vec![syn::parse_quote!(#[doc = #doc])],
                shape: Some(Shape::Vec(Elem::Real)),
                role: Role::Param(ParamArgs {
                    init: syn::parse_quote!(0.0),
                    len: Some(syn::parse_quote!(4)),
                    lower: None,
                    rows: None,
                    cols: None,
                }),
            }
        })
        .collect()
}

/// What a mixing variable's name stands for in attributes: a local scalar
/// (bound inside its latent's prior term), like a learned scalar.
pub fn meaning(shape: Option<&Shape>) -> Meaning {
    match shape {
        Some(Shape::Scalar(Elem::Real)) => Meaning::Param { scalar: true },
        _ => Meaning::Failed,
    }
}

/// A mixed latent's semi-implicit prior, attached to its plan.
pub struct Mixing {
    /// The mixing variable's name, bound inside the prior term.
    pub ident: Ident,
    /// The learned proposal's name (a vector of four).
    pub proposal: Ident,
    /// The mixing variable's distribution, constructor tokens.
    pub prior: TokenStream,
    /// The transform onto its support, a core `Transform` expression.
    pub transform: TokenStream,
    /// Importance draws.
    pub k: usize,
    /// Where its draws start in the model's prior noise.
    pub offset: usize,
}

/// True when the expression's tokens mention `ident`.
fn mentions(tokens: TokenStream, ident: &Ident) -> bool {
    tokens.into_iter().any(|t| match t {
        proc_macro2::TokenTree::Ident(i) => i == *ident,
        proc_macro2::TokenTree::Group(g) => mentions(g.stream(), ident),
        _ => false,
    })
}

/// The expressions of a field's role, for [`mentions`].
fn role_tokens(role: &Role) -> TokenStream {
    use quote::ToTokens;
    let opt = |e: &Option<Expr>| e.as_ref().map(ToTokens::to_token_stream);
    match role {
        Role::Data => quote!(),
        Role::Factor(f) => f.tokens(),
        Role::Derived { expr, .. } => expr.to_token_stream(),
        Role::Latent { prior, .. } => {
            let (t, rest) = (&prior.tokens, role.latent_options());
            quote!(#t #(#rest)*)
        }
        Role::Observed { likelihood, .. } => likelihood.tokens.to_token_stream(),
        Role::Param(p) => {
            let (init, len, lower) = (&p.init, opt(&p.len), opt(&p.lower));
            quote!(#init #len #lower)
        }
        Role::PriorMixing(m) => {
            let (t, k) = (&m.prior.tokens, &m.k);
            quote!(#t #k)
        }
        Role::Transformed(t) => {
            let (value, len) = (&t.value, opt(&t.len));
            quote!(#value #len)
        }
    }
}

/// Checks each `#[prior_mixing]` field against the model and attaches it
/// to the latent it mixes (a mistake is reported in `cx`).
pub fn attach(cx: &Ctxt, model: &Model, table: &Bindings, steps: &mut [Step<'_>]) {
    let mut offset = 0usize;
    for field in &model.fields {
        let Role::PriorMixing(args) = &field.role else {
            continue;
        };
        let ident = &field.ident;
        if !matches!(field.shape, Some(Shape::Scalar(Elem::Real))) {
            cx.error_spanned_by(
                &field.ty,
                format!("a prior's mixing variable is a real scalar: declare `{ident}: f64`"),
            );
            continue;
        }
        let k = match &args.k {
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(i),
                ..
            }) => i.base10_parse::<usize>().ok().filter(|&k| k > 0),
            _ => None,
        };
        let Some(k) = k else {
            cx.error_spanned_by(
                &args.k,
                "`k`, the number of importance draws, is a positive integer literal, e.g. `k = 16`",
            );
            continue;
        };
        // Every other field must leave the mixing variable alone.
        for other in &model.fields {
            if other.ident == *ident || other.ident == args.of {
                continue;
            }
            if mentions(role_tokens(&other.role), ident) {
                cx.error_spanned_by(
                    &other.ident,
                    format!(
                        "`{ident}` mixes the prior of `{}` only, so only that prior may read it; `{}` reads it",
                        args.of, other.ident
                    ),
                );
            }
        }
        let position = model.fields.iter().position(|f| f.ident == args.of);
        let step = steps.iter_mut().find_map(|s| match s {
            Step::Latent(l) if l.field.ident == args.of => Some(l),
            _ => None,
        });
        let (Some(position), Some(latent)) = (position, step) else {
            let is_latent = model
                .fields
                .iter()
                .any(|f| f.ident == args.of && matches!(f.role, Role::Latent { .. }));
            if !is_latent {
                cx.error_spanned_by(
                    &args.of,
                    format!(
                        "`of = {}` names no latent of this model: a prior's mixing variable mixes the prior of a `#[latent(…)]` field",
                        args.of
                    ),
                );
            }
            continue;
        };
        if !check_latent(cx, ident, &model.fields[position], latent) {
            continue;
        }
        if latent.mixing.is_some() {
            cx.error_spanned_by(
                ident,
                format!(
                    "the prior of `{}` has a mixing variable already: keep one",
                    args.of
                ),
            );
            continue;
        }
        let Some(family) = super::check_distribution(cx, &args.prior) else {
            continue;
        };
        let mut values = Lower::new(table.scope(position, None), cx);
        let Some(prior) = super::constructor(&mut values, family, &args.prior) else {
            continue;
        };
        if values.uses.names.contains(&args.of.to_string())
            || values.uses.names.contains(&ident.to_string())
        {
            cx.error_spanned_by(
                &args.prior.tokens,
                format!(
                    "the distribution of `{ident}` cannot read `{}` or `{ident}`: it is the mixing variable's own prior",
                    args.of
                ),
            );
            continue;
        }
        let Some(transform) = transform(cx, family, &args.prior) else {
            continue;
        };
        latent.mixing = Some(Mixing {
            ident: ident.clone(),
            proposal: proposal_ident(ident),
            prior,
            transform,
            k,
            offset,
        });
        offset += k;
    }
}

/// The mixed latent is a plain real scalar with a density that reads the
/// mixing variable.
fn check_latent(cx: &Ctxt, ident: &Ident, field: &Field, latent: &Latent<'_>) -> bool {
    let of = &field.ident;
    let Role::Latent {
        prior,
        constraint,
        lower,
        upper,
        offset,
        multiplier,
        ..
    } = &field.role
    else {
        return false;
    };
    if !latent.shape.is_scalar() {
        cx.error_spanned_by(
            &field.ty,
            format!("a semi-implicit prior mixes a scalar latent: `{of}` must be `f64`"),
        );
        return false;
    }
    if constraint.is_some()
        || lower.is_some()
        || upper.is_some()
        || offset.is_some()
        || multiplier.is_some()
    {
        cx.error_spanned_by(
            of,
            format!(
                "a latent with a semi-implicit prior takes its transform from its family's support: remove `lower`, `upper`, `offset`, `multiplier` and `constraint` from `{of}`"
            ),
        );
        return false;
    }
    if latent.prior.is_none() {
        cx.error_spanned_by(
            &prior.tokens,
            format!("the prior of `{of}` is flat: a semi-implicit prior needs a density `p({of} | {ident})`"),
        );
        return false;
    }
    if !mentions(quote::ToTokens::to_token_stream(&prior.tokens), ident) {
        cx.error_spanned_by(
            &prior.tokens,
            format!(
                "`{ident}` mixes the prior of `{of}`, which does not read it: write `{of}`'s prior in terms of `{ident}`, e.g. `#[latent(Normal(0.0, {ident}.exp()))]`"
            ),
        );
        return false;
    }
    true
}

/// The transform from the mixing variable's unconstrained coordinate.
fn transform(cx: &Ctxt, family: &crate::family::Family, call: &DistCall) -> Option<TokenStream> {
    if let Some(path) = &call.user {
        let span = call.tokens.span();
        return Some(
            quote::quote_spanned!(span=> const { ::iwhvi::__private::default_transform::<#path<f64>>() }),
        );
    }
    let Some(name) = family.support.core_type() else {
        cx.error_spanned_by(
            &call.tokens,
            format!(
                "`{}` has no fixed support to transform from: a prior's mixing variable takes a family on the real line or a half-line",
                call.name
            ),
        );
        return None;
    };
    let name = Ident::new(name, proc_macro2::Span::call_site());
    let supports = quote!(::iwhvi::__private::distributions::supports);
    Some(quote!(const { <#supports::#name as #supports::SupportKind>::DEFAULT_TRANSFORM.unwrap() }))
}

/// The mixed latent's prior term (after its transform bound it and
/// advanced `__at`): the importance-sampled `log p(z)`.
pub fn density(l: &Latent<'_>, m: &Mixing, checked: bool) -> TokenStream {
    let (ident, name) = (&l.field.ident, l.field.ident.to_string());
    let new = l.prior.as_ref().expect("checked: the prior has a density");
    let (zeta, proposal, zeta_new, transform, k, offset) =
        (&m.ident, &m.proposal, &m.prior, &m.transform, m.k, m.offset);
    let p = quote!(::iwhvi::__private);
    let value = quote! {
        #p::iwhvi_core::semi_implicit_prior::term(
            __u[__at - 1],
            &#proposal,
            #offset,
            #k,
            |__eta: __T| -> __T {
                let (#zeta, __log_jacobian_mixing) = (#transform).forward_scalar(__eta);
                #p::log_prob_or_neg_inf(#new, #ident)
                    + #p::log_prob_or_neg_inf(#zeta_new, #zeta)
                    + __log_jacobian_mixing
            },
        )
    };
    if checked {
        quote!(__lp += #p::checked_value(#value, || #p::Term::Prior { latent: #name, element: ::core::option::Option::None })?;)
    } else {
        quote!(__lp += #value;)
    }
}

/// The mixing variable's ancestral draw, before its latent's (in
/// `sample_prior`, where `__T = f64`).
pub fn draw(m: &Mixing) -> TokenStream {
    let (zeta, new) = (&m.ident, &m.prior);
    let sample = quote!(::iwhvi::__private::rand::distr::Distribution::<f64>::sample);
    quote!(let #zeta: f64 = #sample(&#new?, __rng);)
}

/// The `Model` methods of a model with semi-implicit priors:
/// `prior_noise_dim` and the log joints driven by given noise.
pub fn model_methods(plan: &super::plan::Plan<'_>) -> TokenStream {
    let total: usize = plan
        .latents()
        .filter_map(|l| l.mixing.as_ref())
        .map(|m| m.k)
        .sum();
    if total == 0 {
        return quote!();
    }
    let p = quote!(::iwhvi::__private);
    quote! {
        fn prior_noise_dim(&self) -> usize {
            #total
        }

        fn log_joint_with_noise<__T: #p::Scalar>(&self, __u: &[__T], __noise: &[f64]) -> __T {
            #p::iwhvi_core::semi_implicit_prior::with_noise(__noise, || #p::Model::log_joint(self, __u))
        }

        fn log_joint_theta_with_noise<__T: #p::Scalar>(
            &self,
            __theta: &[__T],
            __u: &[__T],
            __noise: &[f64],
        ) -> __T {
            #p::iwhvi_core::semi_implicit_prior::with_noise(__noise, || #p::Model::log_joint_theta(self, __theta, __u))
        }
    }
}
