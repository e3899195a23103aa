//! `#[variational(guide = Model)]` on a guide struct, checked against the
//! model's latents.
//!
//! The model's expansion defines `__iwhvi_model_<Model>!`, which receives
//! the guide struct and calls `guide!` with the model's latents (name,
//! shape, support) in front of it: so the guide's expansion knows the
//! model it is for, and every error points at the guide's own tokens.

use std::collections::BTreeSet;

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, Ident, Token};

use crate::ctxt::Ctxt;
use crate::distributions::{self, Family, Support};
use crate::model::ast::{DistCall, Field, Model, ObserveArgs, Role, Shape, shape};
use crate::model::rewrite::Scope;

/// One model latent as the model's expansion describes it.
struct LatentInfo {
    name: Ident,
    vector: bool,
    support: Ident,
}

/// `[name: scalar real, …] Model ; struct Guide { … }`.
struct GuideInput {
    latents: Vec<LatentInfo>,
    model: syn::Path,
    guide: syn::DeriveInput,
}

impl Parse for GuideInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let content;
        syn::bracketed!(content in input);
        let mut latents = Vec::new();
        while !content.is_empty() {
            let name: Ident = content.parse()?;
            content.parse::<Token![:]>()?;
            let kind: Ident = content.parse()?;
            let support: Ident = content.parse()?;
            latents.push(LatentInfo {
                name,
                vector: kind == "vector",
                support,
            });
            if content.parse::<Option<Token![,]>>()?.is_none() {
                break;
            }
        }
        let model = input.parse()?;
        input.parse::<Token![;]>()?;
        Ok(Self {
            latents,
            model,
            guide: input.parse()?,
        })
    }
}

/// What a guide field is.
enum Part {
    Param {
        init: Expr,
        len: Option<Expr>,
    },
    Mixing {
        len: Expr,
        reverse: Option<(DistCall, Option<Ident>)>,
    },
    Conditional {
        call: DistCall,
        index: Option<Ident>,
    },
}

struct GuideField {
    ident: Ident,
    ty: syn::Type,
    part: Part,
}

struct ParamArgs {
    init: Expr,
    len: Option<Expr>,
}

impl Parse for ParamArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let (mut init, mut len) = (None, None);
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            match key.to_string().as_str() {
                "init" => init = Some(input.parse()?),
                "len" => len = Some(input.parse()?),
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown option `{other}`: write `init = <value or normal(sd)>` and, for vectors, `len = <length>`"
                        ),
                    ));
                }
            }
            if input.parse::<Option<Token![,]>>()?.is_none() {
                break;
            }
        }
        let init = init.ok_or_else(|| {
            input.error("give the parameter's initial value: `#[param(init = 0.0)]`")
        })?;
        Ok(Self { init, len })
    }
}

fn dist_call(cx: &Ctxt, call: &Expr) -> Option<DistCall> {
    if let Expr::Call(c) = call {
        if let Expr::Path(p) = &*c.func {
            if let Some(name) = p.path.get_ident() {
                return Some(DistCall {
                    user: None,
                    name: name.clone(),
                    args: c.args.iter().cloned().collect(),
                    tokens: call.clone(),
                });
            }
        }
    }
    cx.error_spanned_by(
        call,
        "expected a distribution call such as `Normal(loc, scale)`",
    );
    None
}

fn parse_fields(cx: &Ctxt, input: &syn::DeriveInput) -> Vec<GuideField> {
    let syn::Data::Struct(syn::DataStruct {
        fields: syn::Fields::Named(named),
        ..
    }) = &input.data
    else {
        cx.error_spanned_by(&input.ident, "a guide is a struct with named fields");
        return Vec::new();
    };
    let mut fields = Vec::new();
    for field in &named.named {
        let ident = field.ident.clone().expect("named");
        let (mut part, mut reverse) = (None, None);
        let mut role: Option<&syn::Attribute> = None;
        for attr in &field.attrs {
            let name = attr.path().get_ident().map(Ident::to_string);
            if matches!(name.as_deref(), Some("param" | "mixing" | "latent")) {
                if role.is_some() {
                    cx.error_spanned_by(
                        attr,
                        format!("guide field `{ident}` has more than one of #[param], #[mixing], #[latent]; keep one"),
                    );
                }
                role = Some(attr);
            }
            match name.as_deref() {
                Some("param") => match attr.parse_args::<ParamArgs>() {
                    Ok(a) => {
                        part = Some(Part::Param {
                            init: a.init,
                            len: a.len,
                        })
                    }
                    Err(e) => cx.syn_error(e),
                },
                Some("mixing") if matches!(attr.meta, syn::Meta::Path(_)) => {
                    if shape(&field.ty).is_some_and(|s| s.is_scalar()) {
                        part = Some(Part::Mixing {
                            len: syn::parse_quote!(1),
                            reverse: None,
                        });
                    } else {
                        cx.error_spanned_by(attr, format!("mixing vector `{ident}` needs its dimension: write `#[mixing(len = <dimension>)]`"));
                    }
                }
                Some("mixing") => {
                    let len = attr.parse_args_with(|input: ParseStream| {
                        let key: Ident = input.parse()?;
                        if key != "len" {
                            return Err(syn::Error::new(
                                key.span(),
                                "write `#[mixing(len = <dimension>)]`",
                            ));
                        }
                        input.parse::<Token![=]>()?;
                        input.parse::<Expr>()
                    });
                    match len {
                        Ok(len) => part = Some(Part::Mixing { len, reverse: None }),
                        Err(e) => cx.syn_error(e),
                    }
                }
                Some("reverse") => match attr.parse_args::<ObserveArgs>() {
                    Ok(a) => reverse = dist_call(cx, &a.call).map(|c| (c, a.index)),
                    Err(e) => cx.syn_error(e),
                },
                Some("latent") => match attr.parse_args::<ObserveArgs>() {
                    Ok(a) => {
                        part = dist_call(cx, &a.call).map(|call| Part::Conditional {
                            call,
                            index: a.index,
                        });
                    }
                    Err(e) => cx.syn_error(e),
                },
                _ => {}
            }
        }
        let part = match (part, reverse) {
            (Some(Part::Mixing { len, .. }), reverse) => Part::Mixing { len, reverse },
            (Some(p), None) => p,
            (Some(p), Some((call, _))) => {
                cx.error_spanned_by(&call.tokens, "#[reverse] belongs on a #[mixing] field");
                p
            }
            (None, _) => {
                cx.error_spanned_by(
                    &ident,
                    format!("guide field `{ident}` needs a role: `#[param(init = ...)]`, `#[mixing(len = ...)]` or `#[latent(Family(...))]`"),
                );
                continue;
            }
        };
        fields.push(GuideField {
            ident,
            ty: field.ty.clone(),
            part,
        });
    }
    fields
}

/// The families a guide can draw with standard normal noise, and their support.
fn guide_family(cx: &Ctxt, call: &DistCall) -> Option<&'static Family> {
    let family = crate::model::check_distribution(cx, call)?;
    if !matches!(family.name, "Normal" | "LogNormal") {
        cx.error_spanned_by(
            &call.name,
            format!("`{}` cannot serve in a guide yet: guide conditionals are `Normal` (real latents) or `LogNormal` (positive latents)", family.name),
        );
        return None;
    }
    Some(family)
}

/// Expands `guide!`.
pub fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let GuideInput {
        latents,
        model: model_path,
        guide,
    } = syn::parse2(input)?;
    let cx = Ctxt::default();
    let fields = parse_fields(&cx, &guide);
    let guide_ident = &guide.ident;
    let model_name = model_path
        .segments
        .last()
        .map_or_else(String::new, |s| s.ident.to_string());

    // Every field name once.
    let mut seen = BTreeSet::new();
    for f in &fields {
        if !seen.insert(f.ident.to_string()) {
            cx.error_spanned_by(
                &f.ident,
                format!(
                    "`{}` is declared twice in guide `{guide_ident}`: rename or remove one",
                    f.ident
                ),
            );
        }
    }

    // Every model latent has exactly one conditional; none is extra.
    let conditionals: Vec<&GuideField> = fields
        .iter()
        .filter(|f| matches!(f.part, Part::Conditional { .. }))
        .collect();
    for info in &latents {
        if !conditionals.iter().any(|c| c.ident == info.name) {
            let ty = if info.vector { "Vec<f64>" } else { "f64" };
            let family = if info.support == "positive" {
                "LogNormal"
            } else {
                "Normal"
            };
            let index = if info.vector { ", for j" } else { "" };
            cx.error_spanned_by(
                guide_ident,
                format!(
                    "guide `{guide_ident}` has no conditional for latent `{}` of model `{model_name}`: add `#[latent({family}(...){index})] {}: {ty}`",
                    info.name, info.name
                ),
            );
        }
    }
    for c in &conditionals {
        let Some(info) = latents.iter().find(|l| l.name == c.ident) else {
            // Prefer the latents the guide has not covered yet.
            let uncovered: Vec<String> = latents
                .iter()
                .filter(|l| !conditionals.iter().any(|c| c.ident == l.name))
                .map(|l| l.name.to_string())
                .collect();
            let all: Vec<String> = latents.iter().map(|l| l.name.to_string()).collect();
            let hint =
                distributions::closest(&c.ident.to_string(), uncovered.iter().map(String::as_str))
                    .or_else(|| {
                        distributions::closest(&c.ident.to_string(), all.iter().map(String::as_str))
                    })
                    .map_or_else(String::new, |n| format!("; did you mean `{n}`?"));
            cx.error_spanned_by(
                &c.ident,
                format!("model `{model_name}` has no latent `{}`{hint}", c.ident),
            );
            continue;
        };
        // Shapes agree.
        let is_vector = !shape(&c.ty).is_some_and(|s| s.is_scalar());
        if is_vector != info.vector {
            let want = if info.vector {
                "a vector: write `Vec<f64>` and index the conditional with `for j`"
            } else {
                "a scalar: write `f64`"
            };
            cx.error_spanned_by(
                &c.ty,
                format!("latent `{}` of model `{model_name}` is {want}", c.ident),
            );
        }
        // Supports agree.
        if let Part::Conditional { call, index } = &c.part {
            if let Some(family) = guide_family(&cx, call) {
                let support = info.support.to_string();
                match (family.support, support.as_str()) {
                    (Support::Real, "real") | (Support::Positive, "positive") => {}
                    (Support::Real, "positive") => cx.error_spanned_by(
                        &call.name,
                        format!("`{}` puts mass on negative values but latent `{}` is positive: use `LogNormal(...)`", family.name, c.ident),
                    ),
                    (Support::Positive, "real") => cx.error_spanned_by(
                        &call.name,
                        format!("`{}` is positive but latent `{}` is real-valued: use `Normal(...)`", family.name, c.ident),
                    ),
                    (_, other) => cx.error_spanned_by(
                        &call.name,
                        format!("latent `{}` has support `{other}`, which guides cannot target yet", c.ident),
                    ),
                }
            }
            if let (Some(i), false) = (index, is_vector) {
                cx.error_spanned_by(i, format!("`{}` is a scalar: remove `for {i}`", c.ident));
            }
        }
    }

    // A reverse model for every mixing variable, or for none (SIVI).
    let mixing: Vec<&GuideField> = fields
        .iter()
        .filter(|f| matches!(f.part, Part::Mixing { .. }))
        .collect();
    let reversed = mixing
        .iter()
        .filter(|m| {
            matches!(
                &m.part,
                Part::Mixing {
                    reverse: Some(_),
                    ..
                }
            )
        })
        .count();
    if reversed != 0 && reversed != mixing.len() {
        for m in &mixing {
            if matches!(&m.part, Part::Mixing { reverse: None, .. }) {
                cx.error_spanned_by(&m.ident, format!("mixing variable `{}` has no #[reverse(...)]: give every mixing variable a reverse model, or none (SIVI)", m.ident));
            }
        }
    }

    // A synthetic model for the expression rewriter: parameters and mixing
    // variables first, then the conditionals in the guide's order, all as
    // latents (locals of the scalar type).
    let dummy = |ident: &Ident| DistCall {
        user: None,
        name: ident.clone(),
        args: Vec::new(),
        tokens: syn::parse_quote!(#ident()),
    };
    let ordered: Vec<&GuideField> = fields
        .iter()
        .filter(|f| !matches!(f.part, Part::Conditional { .. }))
        .chain(conditionals.iter().copied())
        .collect();
    let synthetic = Model {
        ident: guide_ident.clone(),
        vis: guide.vis.clone(),
        attrs: Vec::new(),
        fields: ordered
            .iter()
            .map(|f| Field {
                ident: f.ident.clone(),
                ty: f.ty.clone(),
                vis: syn::Visibility::Inherited,
                attrs: Vec::new(),
                shape: shape(&f.ty).or(Some(Shape::Vec(crate::model::ast::Elem::Real))),
                role: Role::Latent {
                    prior: dummy(&f.ident),
                    len: None,
                    index: None,
                    constraint: None,
                    lower: None,
                    upper: None,
                },
            })
            .collect(),
    };
    let mut used = BTreeSet::new();
    fn scope_at<'a>(
        synthetic: &'a Model,
        cx: &'a Ctxt,
        position: usize,
        index: Option<&'a Ident>,
    ) -> Scope<'a> {
        Scope {
            vocabulary: "the guide's parameters, mixing variables and latents",
            ..Scope::new(synthetic, position, index, cx)
        }
    }

    // Code for each conditional: sampling and density. The constrained
    // latents live in `workspace.scratch[..D]` (the guide's `workspace_lens`
    // asks for `2 D`: the second half holds the draw in progress), so no
    // method allocates; each latent is bound as a scalar or a slice of it.
    let first_conditional = ordered.len() - conditionals.len();
    let bind_latent = |ci: usize, c: &GuideField| {
        let name = &c.ident;
        if shape(&c.ty).is_some_and(|s| s.is_scalar()) {
            quote!(let #name: __T = __z[self.__offsets[#ci]];)
        } else {
            quote!(let #name: &[__T] = &__z[self.__offsets[#ci]..self.__offsets[#ci] + self.__lens[#ci]];)
        }
    };
    let bind_latents: Vec<TokenStream> = conditionals
        .iter()
        .enumerate()
        .map(|(ci, c)| bind_latent(ci, c))
        .collect();
    let mut sample_steps = Vec::new();
    let mut density_steps = Vec::new();
    for (ci, c) in conditionals.iter().enumerate() {
        let Part::Conditional { call, index } = &c.part else {
            continue;
        };
        if distributions::family(&call.name.to_string()).is_none() {
            continue;
        }
        let scope = scope_at(&synthetic, &cx, first_conditional + ci, index.as_ref());
        let new = constructor(&scope, call);
        used.extend(scope.used.borrow().iter().cloned());
        let name = &c.ident;
        let bind_index = index.as_ref().map(|i| quote!(let #i: usize = __k;));
        let earlier = &bind_latents[..ci];
        // Draw into `__draw` while the earlier latents are borrowed from
        // `__z`, then store the draw and its unconstrained image.
        sample_steps.push(quote! {
            let (__off, __n, __t) = (self.__offsets[#ci], self.__lens[#ci], self.__transforms[#ci]);
            {
                let __z: &[__T] = __z;
                #(#earlier)*
                for __k in 0..__n {
                    #bind_index
                    __draw[__k] = ::iwhvi::__private::rsample_or_nan(#new, __noise[__off + __k]);
                }
            }
            for __k in 0..__n {
                __z[__off + __k] = __draw[__k];
                __u[__off + __k] = ::iwhvi::__private::inverse_scalar(__t, __draw[__k]);
            }
        });
        density_steps.push(if shape(&c.ty).is_some_and(|s| s.is_scalar()) {
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

    // Reverse model for each mixing variable.
    let mut reverse_sample = Vec::new();
    let mut reverse_density = Vec::new();
    let mixing_names: BTreeSet<String> = mixing.iter().map(|m| m.ident.to_string()).collect();
    for (mi, m) in mixing.iter().enumerate() {
        let Part::Mixing {
            reverse: Some((call, index)),
            ..
        } = &m.part
        else {
            continue;
        };
        if let Some(bad) = mentions(&call.tokens, &mixing_names) {
            cx.error_spanned_by(
                &bad,
                "the reverse model conditions on the latents, not on the mixing variables",
            );
        }
        if let (Some(i), true) = (index, shape(&m.ty).is_some_and(|s| s.is_scalar())) {
            cx.error_spanned_by(
                i,
                format!(
                    "mixing variable `{}` is a scalar: remove `for {i}` from its reverse model",
                    m.ident
                ),
            );
        }
        // Names the family and checks its arity, as for conditionals.
        let Some(family) = crate::model::check_distribution(&cx, call) else {
            continue;
        };
        if family.name != "Normal" {
            cx.error_spanned_by(&call.name, "reverse models are `Normal(...)` for now");
            continue;
        }
        let scope = scope_at(&synthetic, &cx, ordered.len(), index.as_ref());
        let new = constructor(&scope, call);
        used.extend(scope.used.borrow().iter().cloned());
        let bind_index = index.as_ref().map(|i| quote!(let #i: usize = __k;));
        reverse_sample.push(quote! {
            let (__off, __n) = (self.__mixing_offsets[#mi], self.__mixing_lens[#mi]);
            for __k in 0..__n {
                #bind_index
                __psi[__off + __k] = ::iwhvi::__private::rsample_or_nan(#new, __noise[__off + __k]);
            }
        });
        reverse_density.push(quote! {
            let (__off, __n) = (self.__mixing_offsets[#mi], self.__mixing_lens[#mi]);
            for __k in 0..__n {
                #bind_index
                __lp += ::iwhvi::__private::log_prob_or_neg_inf(#new, __psi[__off + __k]);
            }
        });
    }

    // Parameters: declared ones are used, used ones are declared.
    let params: Vec<&GuideField> = fields
        .iter()
        .filter(|f| matches!(f.part, Part::Param { .. }))
        .collect();
    for p in &params {
        if !used.contains(&p.ident.to_string()) {
            cx.error_spanned_by(&p.ident, format!("parameter `{}` is declared but never used: remove it or use it in a conditional", p.ident));
        }
    }
    for p in &params {
        if let Part::Param {
            init: Expr::Call(c),
            ..
        } = &p.part
            && matches!(&*c.func, Expr::Path(path) if path.path.is_ident("normal"))
            && c.args.len() != 1
        {
            cx.error_spanned_by(
                c,
                "`normal(sd)` takes one argument, the standard deviation of the initial draws: write e.g. `init = normal(0.1)`",
            );
        }
    }
    cx.check()?;

    let model_latent_names: Vec<String> =
        conditionals.iter().map(|c| c.ident.to_string()).collect();
    let param_len = |p: &GuideField| -> TokenStream {
        match (&p.part, shape(&p.ty)) {
            (_, Some(Shape::Scalar(_))) => quote!(1usize),
            (_, Some(Shape::Array(_, n))) => quote!((#n) as usize),
            (Part::Param { len: Some(len), .. } | Part::Mixing { len, .. }, _) => {
                length(len, &latents)
            }
            _ => quote!(0usize),
        }
    };
    let param_lens: Vec<TokenStream> = params.iter().map(|p| param_len(p)).collect();
    let mixing_lens: Vec<TokenStream> = mixing.iter().map(|m| param_len(m)).collect();
    let param_blocks = params.iter().enumerate().map(|(pi, p)| {
        let name = p.ident.to_string();
        let shape = if shape(&p.ty).is_some_and(|s| s.is_scalar()) {
            quote!(&[])
        } else {
            quote!(&[self.__param_lens[#pi]])
        };
        quote!(__layout.push(#name, #shape);)
    });
    let bind_params: Vec<TokenStream> = params
        .iter()
        .enumerate()
        .map(|(pi, p)| {
            let name = &p.ident;
            if shape(&p.ty).is_some_and(|s| s.is_scalar()) {
                quote!(let #name: __T = __params[__p]; __p += 1;)
            } else {
                quote! {
                    let #name: &[__T] = &__params[__p..__p + self.__param_lens[#pi]];
                    __p += self.__param_lens[#pi];
                }
            }
        })
        .collect();
    let bind_mixing: Vec<TokenStream> = mixing
        .iter()
        .enumerate()
        .map(|(mi, m)| {
            let name = &m.ident;
            if shape(&m.ty).is_some_and(|s| s.is_scalar()) {
                quote!(let #name: __T = __psi[self.__mixing_offsets[#mi]];)
            } else {
                quote!(let #name: &[__T] = &__psi[self.__mixing_offsets[#mi]..self.__mixing_offsets[#mi] + self.__mixing_lens[#mi]];)
            }
        })
        .collect();
    let inits = params.iter().enumerate().map(|(pi, p)| {
        let Part::Param { init, .. } = &p.part else {
            unreachable!("a parameter")
        };
        let value = match init {
            Expr::Call(c) if matches!(&*c.func, Expr::Path(path) if path.path.is_ident("normal")) =>
            {
                // One argument: checked before `cx.check()` above.
                let sd = &c.args[0];
                quote!(::iwhvi::__private::normal_init(__rng, (#sd) as f64))
            }
            other => quote_spanned!(other.span()=> (#other) as f64),
        };
        quote! {
            for _ in 0..self.__param_lens[#pi] {
                __init.push(#value);
            }
        }
    });
    let has_reverse = reversed != 0;
    let vis = &guide.vis;
    let attrs = guide
        .attrs
        .iter()
        .filter(|a| !a.path().is_ident("variational"));
    let doc = format!(
        "A hierarchical guide for [`{model_name}`], checked against its latents at compile time."
    );
    let new_doc = format!(
        "The guide for this instance of `{model_name}` (vector lengths come from its data)."
    );

    Ok(quote! {
        #(#attrs)*
        #[doc = #doc]
        #[derive(
            Clone,
            Debug,
            PartialEq,
            ::iwhvi::__private::serde::Serialize,
            ::iwhvi::__private::serde::Deserialize,
        )]
        #[serde(crate = "::iwhvi::__private::serde")]
        #vis struct #guide_ident {
            __latent_dim: usize,
            __offsets: ::std::vec::Vec<usize>,
            __lens: ::std::vec::Vec<usize>,
            __transforms: ::std::vec::Vec<::iwhvi::__private::Transform>,
            __param_lens: ::std::vec::Vec<usize>,
            __mixing_offsets: ::std::vec::Vec<usize>,
            __mixing_lens: ::std::vec::Vec<usize>,
        }

        impl #guide_ident {
            #[doc = #new_doc]
            ///
            /// # Errors
            /// [`GuideError::UnknownLatent`](::iwhvi::guide::GuideError) if the model
            /// instance lacks a latent the guide targets, and
            /// `GuideError::Unsupported` if a latent's transform is not elementwise.
            #vis fn new(__model: &#model_path) -> ::core::result::Result<Self, ::iwhvi::__private::GuideError> {
                let __layout = ::iwhvi::__private::Model::layout(__model);
                let mut __offsets = ::std::vec::Vec::new();
                let mut __lens = ::std::vec::Vec::new();
                let mut __transforms = ::std::vec::Vec::new();
                for __name in [#(#model_latent_names),*] {
                    let __block = __layout
                        .blocks()
                        .iter()
                        .find(|__b| __b.spec.name == __name)
                        .ok_or(::iwhvi::__private::GuideError::UnknownLatent { latent: __name })?;
                    if !__block.spec.transform.is_elementwise() || __block.spec.dependent_bounds.is_some() {
                        return ::core::result::Result::Err(::iwhvi::__private::GuideError::Unsupported { latent: __name });
                    }
                    __offsets.push(__block.unconstrained.start);
                    __lens.push(__block.unconstrained.len());
                    __transforms.push(__block.spec.transform);
                }
                #[allow(unused_variables)]
                let __latent_len = |__name: &str| __layout.blocks().iter().find(|__b| __b.spec.name == __name).map_or(0, |__b| __b.unconstrained.len());
                let __param_lens = ::std::vec![#(#param_lens),*];
                let __mixing_lens: ::std::vec::Vec<usize> = ::std::vec![#(#mixing_lens),*];
                let mut __mixing_offsets = ::std::vec::Vec::new();
                let mut __at = 0usize;
                for __n in &__mixing_lens {
                    __mixing_offsets.push(__at);
                    __at += *__n;
                }
                ::core::result::Result::Ok(Self {
                    __latent_dim: __layout.dim(),
                    __offsets,
                    __lens,
                    __transforms,
                    __param_lens,
                    __mixing_offsets,
                    __mixing_lens,
                })
            }
        }

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
                    scratch: 2 * self.__latent_dim,
                    ..::core::default::Default::default()
                }
            }

            fn has_reverse_model(&self) -> bool {
                #has_reverse
            }

            fn param_layout(&self) -> ::iwhvi::__private::ParamLayout {
                let mut __layout = ::iwhvi::__private::ParamLayout::default();
                #(#param_blocks)*
                __layout
            }

            fn init_params<__R: ::iwhvi::__private::rand::Rng + ?::core::marker::Sized>(&self, __rng: &mut __R) -> ::std::vec::Vec<f64> {
                let mut __init = ::std::vec::Vec::new();
                #(#inits)*
                __init
            }

            fn sample_conditional<__T: ::iwhvi::__private::Scalar>(
                &self,
                __params: &[__T],
                __psi: &[__T],
                __noise: &[f64],
                __u: &mut [__T],
                __workspace: &mut ::iwhvi::__private::Workspace<__T>,
            ) {
                let mut __p = 0usize;
                #(#bind_params)*
                #(#bind_mixing)*
                let (__z, __draw) = __workspace.scratch.split_at_mut(self.__latent_dim);
                #(#sample_steps)*
            }

            fn log_conditional<__T: ::iwhvi::__private::Scalar>(
                &self,
                __params: &[__T],
                __psi: &[__T],
                __u: &[__T],
                __workspace: &mut ::iwhvi::__private::Workspace<__T>,
            ) -> __T {
                let mut __p = 0usize;
                #(#bind_params)*
                #(#bind_mixing)*
                let __z = &mut __workspace.scratch[..self.__latent_dim];
                let mut __lp = ::iwhvi::__private::constrain_elementwise(&self.__offsets, &self.__lens, &self.__transforms, __u, __z);
                let __z: &[__T] = __z;
                #(#bind_latents)*
                #(#density_steps)*
                __lp
            }

            fn sample_reverse<__T: ::iwhvi::__private::Scalar>(
                &self,
                __params: &[__T],
                __u: &[__T],
                __noise: &[f64],
                __psi: &mut [__T],
                __workspace: &mut ::iwhvi::__private::Workspace<__T>,
            ) {
                if !#has_reverse {
                    return self.sample_mixing(__params, __noise, __psi);
                }
                let mut __p = 0usize;
                #(#bind_params)*
                let __z = &mut __workspace.scratch[..self.__latent_dim];
                ::iwhvi::__private::constrain_elementwise(&self.__offsets, &self.__lens, &self.__transforms, __u, __z);
                let __z: &[__T] = __z;
                #(#bind_latents)*
                #(#reverse_sample)*
            }

            fn log_reverse<__T: ::iwhvi::__private::Scalar>(
                &self,
                __params: &[__T],
                __u: &[__T],
                __psi: &[__T],
                __workspace: &mut ::iwhvi::__private::Workspace<__T>,
            ) -> __T {
                if !#has_reverse {
                    return self.log_mixing(__params, __psi);
                }
                let mut __p = 0usize;
                #(#bind_params)*
                let __z = &mut __workspace.scratch[..self.__latent_dim];
                ::iwhvi::__private::constrain_elementwise(&self.__offsets, &self.__lens, &self.__transforms, __u, __z);
                let __z: &[__T] = __z;
                #(#bind_latents)*
                let mut __lp = <__T as ::iwhvi::__private::Scalar>::constant(0.0);
                #(#reverse_density)*
                __lp
            }
        }
    })
}

/// A length: a model latent's name (its length), or an expression.
fn length(len: &Expr, latents: &[LatentInfo]) -> TokenStream {
    if let Expr::Path(p) = len {
        if let Some(ident) = p.path.get_ident() {
            if latents.iter().any(|l| l.name == *ident) {
                let name = ident.to_string();
                return quote!(__latent_len(#name));
            }
        }
    }
    quote!((#len) as usize)
}

/// The first mention of one of `names` in an expression.
fn mentions(expr: &Expr, names: &BTreeSet<String>) -> Option<Ident> {
    struct Finder<'a> {
        names: &'a BTreeSet<String>,
        found: Option<Ident>,
    }
    impl<'ast> syn::visit::Visit<'ast> for Finder<'_> {
        fn visit_expr_path(&mut self, p: &'ast syn::ExprPath) {
            if let Some(ident) = p.path.get_ident() {
                if self.found.is_none() && self.names.contains(&ident.to_string()) {
                    self.found = Some(ident.clone());
                }
            }
        }
    }
    let mut finder = Finder { names, found: None };
    syn::visit::Visit::visit_expr(&mut finder, expr);
    finder.found
}

/// `Family::new(args…)` with every argument a scalar value.
fn constructor(scope: &Scope<'_>, call: &DistCall) -> TokenStream {
    let name = &call.name;
    let args = call.args.iter().map(|a| scope.value(a));
    quote_spanned!(call.tokens.span()=> ::iwhvi::__private::distributions::#name::new(#(#args),*))
}
