//! Minibatches over the model's plate (issue 16): `Model::subsample_plate`,
//! `Model::local_latents`, `Model::log_joint_points` and
//! `Model::log_joint_subset`, the log joint with the plate's terms on a
//! batch of its elements scaled by `N / b`.
//!
//! The plate is every observed vector over `for i` (element-wise, not a
//! multivariate draw) and every plate of factors (`#[factor(…, for i,
//! len = n)]`, or over a batch, `for rows in batch`, whose `z[rows]` is a
//! read at its own index); they must have one length, checked at run
//! time. A vector latent is local to the plate when it is element-wise (no
//! constraint, bounds or affine transform that move with other latents,
//! no semi-implicit prior), the plate reads it, and every mention of it,
//! in the plate's likelihoods and in other local latents' priors, is
//! `z[i]` at that attribute's own index (so element `n` of it enters
//! element `n`'s terms alone); its length must be the plate's (checked at
//! run time). A local latent's prior and log Jacobian at element `n` are
//! plate terms of `n`, evaluated on the batch only. Every other term
//! (global latents' priors and Jacobians, factors outside a plate, scalar or multivariate
//! observations) is global and counted whole. Learned parameters are
//! bound from `theta` as in `log_joint_theta`. A model with semi-implicit
//! priors keeps the trait's defaults (it cannot be subsampled), and says
//! why.

use proc_macro2::{Delimiter, Ident, TokenStream, TokenTree};
use quote::{ToTokens, quote};

use super::super::ast::{Field, Role};
use super::super::factor::Factor;
use super::super::plan::{Latent, Observed, Plan, Step};
use super::{latent, param, transformed};

/// True for an observed field whose terms are one per element of a plate.
fn in_plate(o: &Observed<'_>) -> bool {
    o.index.is_some() && !o.shape.is_scalar() && !o.family.multivariate()
}

/// The plates of factors (`#[factor(…, for i, len = n)]`), in order.
fn plate_factors<'p, 'a>(plan: &'p Plan<'a>) -> impl Iterator<Item = &'p Factor<'a>> {
    plan.steps.iter().filter_map(|s| match s {
        Step::Factor(f) if f.plate.is_some() => Some(f),
        _ => None,
    })
}

/// The minibatch `Model` methods (inside `impl Model`).
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
    if plan.latents().any(|l| l.mixing.is_some()) {
        return refuse(
            "minibatches of a model with semi-implicit priors (#[prior_mixing]) are not supported yet",
        );
    }
    let plate: Vec<&Observed<'_>> = plan.observations().filter(|o| in_plate(o)).collect();
    let factors: Vec<&Factor<'_>> = plate_factors(plan).collect();
    if plate.is_empty() && factors.is_empty() {
        return refuse(
            "this model has no plate to subsample: no observed vector with an element-wise \
             likelihood (#[observe(…, for i)]) and no plate of factors (#[factor(…, for i, len = n)] \
             or #[factor(…, for rows in batch, len = n)])",
        );
    }
    let names = plate
        .iter()
        .map(|o| o.field.ident.to_string())
        .chain(factors.iter().map(|f| f.field.ident.to_string()));
    let lens = plate
        .iter()
        .map(|o| {
            let ident = &o.field.ident;
            quote!(self.#ident.len())
        })
        .chain(factors.iter().filter_map(|f| {
            let (_, len) = f.plate.as_ref()?;
            Some(quote!(#len))
        }));
    let local = local_latents(plan);
    let local_names: Vec<String> = local.iter().map(|l| l.field.ident.to_string()).collect();
    let local_checks = local.iter().map(|l| local_check(l));
    let steps = points_steps(plan, &local);
    let theta_bindings = param::bindings_from_theta(plan);
    quote! {
        #[allow(clippy::all)]
        fn subsample_plate(&self) -> ::core::result::Result<#sub::SubsamplePlate, &'static str> {
            let __lens: &[usize] = &[#(#lens),*];
            if __lens.iter().any(|__n| *__n != __lens[0]) {
                return ::core::result::Result::Err(
                    "this model has plates of different lengths (observed vectors over `for i`, \
                     or plates of factors, of different lengths): which one a minibatch \
                     subsamples is not defined",
                );
            }
            #(#local_checks)*
            ::core::result::Result::Ok(#sub::SubsamplePlate {
                observed: ::std::vec![#(::std::string::String::from(#names)),*],
                len: __lens[0],
            })
        }

        fn local_latents(&self) -> ::std::vec::Vec<::std::string::String> {
            ::std::vec![#(::std::string::String::from(#local_names)),*]
        }

        #[allow(unused_mut, unused_variables, unused_assignments, clippy::all)]
        fn log_joint_points<__T: #p::Scalar>(
            &self,
            __theta: &[__T],
            __u: &[__T],
            __noise: &[f64],
            __batch: &#sub::Batch<'_>,
            __points: &mut [__T],
        ) -> __T {
            let mut __at_theta = 0usize;
            #(#theta_bindings)*
            let mut __lp = <__T as #p::Scalar>::constant(0.0);
            for __point in __points.iter_mut() {
                *__point = <__T as #p::Scalar>::constant(0.0);
            }
            let mut __at = 0usize;
            #(#steps)*
            __lp
        }

        #[allow(clippy::all)]
        fn log_joint_subset<__T: #p::Scalar>(
            &self,
            __theta: &[__T],
            __u: &[__T],
            __noise: &[f64],
            __batch: &#sub::Batch<'_>,
        ) -> __T {
            let __zero = <__T as #p::Scalar>::constant(0.0);
            let mut __points = ::std::vec![__zero; __batch.len()];
            let __global = #p::Model::log_joint_points(self, __theta, __u, __noise, __batch, &mut __points);
            let mut __plate = __zero;
            for __point in __points {
                __plate += __point;
            }
            __global + __plate * <__T as #p::Scalar>::constant(__batch.scale())
        }
    }
}

/// `log_joint_points`'s steps, in order: a local latent's on the batch
/// alone (a `BatchLocal`), and the plate's terms of point `__pos` reading
/// the local latents declared before them through its `PointView`s.
fn points_steps(plan: &Plan<'_>, local: &[&Latent<'_>]) -> Vec<TokenStream> {
    let mut declared: Vec<&Ident> = Vec::new();
    let mut steps = Vec::with_capacity(plan.steps.len());
    for step in &plan.steps {
        let views = point_views(&declared);
        steps.push(match step {
            Step::Latent(l) if local.iter().any(|m| std::ptr::eq(*m, &**l)) => {
                declared.push(&l.field.ident);
                local_step(l, &views)
            }
            Step::Latent(l) => latent::log_joint_step(l),
            Step::Observed(o) if in_plate(o) => plate_step(o, &views),
            Step::Observed(o) => super::observed::log_joint_step(o),
            Step::Factor(f) => super::factor::points_step(f, &views),
            Step::Derived(_) => quote!(),
            Step::Transformed(t) => transformed::binding(t),
        });
    }
    steps
}

/// Rebinds each declared local latent, inside the loop over the batch's
/// points, as point `__pos` sees it (`z[i]` at its own element `i`).
fn point_views(declared: &[&Ident]) -> TokenStream {
    quote!(#(let #declared = #declared.at(__pos);)*)
}

/// `subsample_plate`'s check of a local latent: its length is the plate's
/// (`__lens[0]`) and its transform element-wise.
fn local_check(l: &Latent<'_>) -> TokenStream {
    let (transform, len) = (latent::transform(&l.transform), &l.len);
    let message = format!(
        "the latent `{}` is local to the plate (read as `{0}[i]`, or `{0}[rows]` by a plate of factors over the batch, by its likelihood terms) \
         but its length is not the plate's, or its transform is not element-wise: \
         a minibatch cannot take its elements with the plate's",
        l.field.ident
    );
    quote! {
        if #len != __lens[0] || !(#transform).is_elementwise() {
            return ::core::result::Result::Err(#message);
        }
    }
}

/// A local latent's step: its elements on the batch alone (a
/// `BatchLocal`, one value per point, in the batch's order), their log
/// Jacobians and prior terms into their points' sums (the prior reading
/// the local latents before it through `views`); `accumulate` records no
/// node for an identity's log Jacobian or a point's first term.
fn local_step(l: &Latent<'_>, views: &TokenStream) -> TokenStream {
    let p = quote!(::iwhvi::__private);
    let (ident, len) = (&l.field.ident, &l.len);
    let transform = latent::transform(&l.transform);
    let bind_index = l.index.map(|i| quote!(let #i: usize = __k;));
    let density = l.prior.as_ref().map(
        |new| quote!(#p::accumulate(&mut __points[__pos], #p::log_prob_or_neg_inf(#new, __z));),
    );
    let scalar = quote! {
        for (__pos, &__k) in __batch.indices().iter().enumerate() {
            #views
            #bind_index
            let (__z, __log_jacobian) = __transform.forward_scalar(__u[__at + __k]);
            __values.push(__z);
            #p::accumulate(&mut __points[__pos], __log_jacobian);
            #density
        }
    };
    let terms = match &l.constant_normal {
        Some((loc, scale)) => quote! {
            match #p::ConstantNormal::new(#loc, #scale) {
                ::core::result::Result::Ok(__prior) => {
                    // The values and their log Jacobians point by point,
                    // then the prior terms as one operation, each into its
                    // point's sum after its Jacobian (the scalar order).
                    for (__pos, &__k) in __batch.indices().iter().enumerate() {
                        let (__z, __log_jacobian) = __transform.forward_scalar(__u[__at + __k]);
                        __values.push(__z);
                        #p::accumulate(&mut __points[__pos], __log_jacobian);
                    }
                    let mut __terms: ::std::vec::Vec<__T> = ::std::vec::Vec::new();
                    __prior.log_probs(&__values, &mut __terms);
                    for (__point, __term) in __points.iter_mut().zip(__terms) {
                        #p::accumulate(__point, __term);
                    }
                }
                ::core::result::Result::Err(_) => { #scalar }
            }
        },
        None => scalar,
    };
    quote! {
        let __transform = #transform;
        let __n = #len;
        let mut __values: ::std::vec::Vec<__T> = ::std::vec::Vec::with_capacity(__batch.len());
        #terms
        let #ident = #p::BatchLocal::new(__values, __batch.indices());
        __at += __n;
    }
}

/// How an attribute mentions a name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mention {
    None,
    /// Only as `name[index]`.
    Indexed,
    /// Some other way (whole, at another index, in a method call).
    Stray,
}

/// How the tokens mention `name`: only as `name[index]` (with `index`
/// the attribute's own `for` index), or otherwise.
fn mention(tokens: TokenStream, name: &Ident, index: Option<&Ident>) -> Mention {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut found = Mention::None;
    for (at, tree) in trees.iter().enumerate() {
        let inner = match tree {
            TokenTree::Ident(ident) if ident == name => {
                let indexed = match (trees.get(at + 1), index) {
                    (Some(TokenTree::Group(g)), Some(index))
                        if g.delimiter() == Delimiter::Bracket =>
                    {
                        let inside: Vec<TokenTree> = g.stream().into_iter().collect();
                        matches!(inside.as_slice(), [TokenTree::Ident(i)] if i == index)
                    }
                    _ => false,
                };
                if indexed {
                    Mention::Indexed
                } else {
                    Mention::Stray
                }
            }
            TokenTree::Group(g) => mention(g.stream(), name, index),
            _ => Mention::None,
        };
        found = match (found, inner) {
            (Mention::Stray, _) | (_, Mention::Stray) => return Mention::Stray,
            (Mention::Indexed, _) | (_, Mention::Indexed) => Mention::Indexed,
            _ => Mention::None,
        };
    }
    found
}

/// How a field's role attribute (its parsed expressions) mentions `name`.
fn field_mention(field: &Field, name: &Ident, index: Option<&Ident>) -> Mention {
    let mut tokens = TokenStream::new();
    let mut add = |expr: Option<&syn::Expr>| {
        if let Some(expr) = expr {
            expr.to_tokens(&mut tokens);
        }
    };
    match &field.role {
        Role::Data => {}
        Role::Factor(args) => tokens.extend(args.tokens()),
        Role::Derived { expr, .. } => add(Some(expr)),
        Role::Latent { prior, .. } => {
            add(Some(&prior.tokens));
            for option in field.role.latent_options() {
                add(Some(option));
            }
        }
        Role::Observed { likelihood, .. } => add(Some(&likelihood.tokens)),
        Role::Param(args) => {
            add(Some(&args.init));
            for option in [&args.len, &args.lower, &args.rows, &args.cols] {
                add(option.as_ref());
            }
        }
        Role::PriorMixing(args) => {
            add(Some(&args.prior.tokens));
            add(Some(&args.k));
            args.of.to_tokens(&mut tokens);
        }
        Role::Transformed(args) => {
            add(Some(&args.value));
            add(args.len.as_ref());
        }
    }
    mention(tokens, name, index)
}

/// True for a vector latent whose elements could be the plate's: element-wise
/// prior and transform, nothing moving with other latents.
fn candidate(l: &Latent<'_>) -> bool {
    let dependent = l.bounds.as_ref().is_some_and(|b| b.dependent.is_some());
    !l.shape.is_scalar()
        && l.order.is_none()
        && !l.family.multivariate()
        && l.per_element.is_none()
        && l.affine.is_none()
        && !dependent
        && l.mixing.is_none()
        && l.constraint.is_none()
}

/// The latents local to the plate: the candidates that the plate (or
/// another local latent's prior) reads and that every attribute mentions
/// only at its own index (a fixed point:
/// a candidate mentioned whole by another drops out, and with it what it
/// alone made local).
fn local_latents<'p, 'a>(plan: &'p Plan<'a>) -> Vec<&'p Latent<'a>> {
    let mut local: Vec<&Latent<'_>> = plan.latents().filter(|l| candidate(l)).collect();
    loop {
        let before = local.len();
        let kept: Vec<bool> = local.iter().map(|c| stays_local(plan, c, &local)).collect();
        let mut flags = kept.into_iter();
        local.retain(|_| flags.next().unwrap_or(false));
        if local.len() == before {
            return local;
        }
    }
}

/// Whether candidate `c` stays local given the current `local` set.
fn stays_local(plan: &Plan<'_>, c: &Latent<'_>, local: &[&Latent<'_>]) -> bool {
    let name = &c.field.ident;
    let mut read_by_plate = false;
    for field in &plan.model.fields {
        if std::ptr::eq(field, c.field) {
            // Its own prior reads other local latents at its index only.
            let own = |other: &&&Latent<'_>| !std::ptr::eq(other.field, c.field);
            if local
                .iter()
                .filter(own)
                .any(|o| field_mention(field, &o.field.ident, c.index) == Mention::Stray)
            {
                return false;
            }
            continue;
        }
        if let Some(other) = local.iter().find(|o| std::ptr::eq(o.field, field)) {
            match field_mention(field, name, other.index) {
                Mention::Stray => return false,
                // Read at its point by a latent the plate reads.
                Mention::Indexed => read_by_plate = true,
                Mention::None => {}
            }
            continue;
        }
        let plate_index = plan
            .observations()
            .find(|o| std::ptr::eq(o.field, field) && in_plate(o))
            .and_then(|o| o.index)
            .or_else(|| {
                plate_factors(plan)
                    .find(|f| std::ptr::eq(f.field, field))
                    .and_then(|f| f.plate.as_ref().map(|(i, _)| *i))
            });
        if let Some(index) = plate_index {
            match field_mention(field, name, Some(index)) {
                Mention::Stray => return false,
                Mention::Indexed => read_by_plate = true,
                Mention::None => {}
            }
            continue;
        }
        if matches!(field.role, Role::Derived { .. } | Role::Data) {
            continue;
        }
        if field_mention(field, name, None) != Mention::None {
            return false;
        }
    }
    read_by_plate
}

/// An observed vector's terms on the batch's elements, into their points'
/// sums (reading the local latents through `views`).
fn plate_step(o: &Observed<'_>, views: &TokenStream) -> TokenStream {
    let (ident, new) = (&o.field.ident, &o.likelihood);
    let i = o.index.expect("a plate's observation has an index");
    let value = super::observed::scalar_value(o, &quote!(self.#ident[#i]));
    quote! {
        for (__pos, &#i) in __batch.indices().iter().enumerate() {
            #views
            __points[__pos] += ::iwhvi::__private::log_prob_or_neg_inf(#new, #value);
        }
    }
}
