//! Lowering of a guide: every rule checked against the model's latents,
//! every name resolved over the guide's bindings (parameters and mixing
//! variables, then the conditionals in order), into a [`Plan`].

use std::collections::BTreeSet;

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Ident};

use super::ast::{GuideField, Part};
use super::encoder::{self, Callable, Encoder};
use crate::ctxt::Ctxt;
use crate::family::{self, Family, Support};
use crate::handover::{GuideInput, LatentInfo};
use crate::model::ast::DistCall;
use crate::model::plan::LatentSupport;
use crate::model::{check_distribution, constructor};
use crate::scope::{self, Binding, Bindings, Lower, Meaning};

/// A parameter.
pub struct Param<'a> {
    pub ident: &'a Ident,
    pub scalar: bool,
    /// Its length, a `usize` expression in `new`.
    pub len: TokenStream,
    /// One initial value.
    pub init: TokenStream,
}

/// A mixing variable and its reverse model.
pub struct Mixing<'a> {
    pub ident: &'a Ident,
    pub scalar: bool,
    pub len: TokenStream,
    /// The reverse model's constructor and index.
    pub reverse: Option<(TokenStream, Option<&'a Ident>)>,
    /// `#[mixing(len = z, for j)]`: one coordinate per point (`per_point.rs`).
    pub per_point: bool,
    /// A learned `q(ψ)`'s constructor (`mixing_family.rs`; `None`:
    /// `N(0, I)`) and the point's index (`for j`) it reads.
    pub family: Option<(TokenStream, Option<&'a Ident>)>,
    /// The encoders `family` calls (by name).
    pub family_calls: BTreeSet<String>,
}

/// A conditional of one model latent.
pub struct Conditional<'a> {
    pub ident: &'a Ident,
    pub scalar: bool,
    pub new: TokenStream,
    pub index: Option<&'a Ident>,
    /// Over the latent's unconstrained coordinates (`#[unconstrained]`).
    pub unconstrained: bool,
    /// A `StudentT` conditional's degrees of freedom (`student_t.rs`).
    pub df: Option<u8>,
    /// It reads the per-point mixing variable (`per_point.rs`): a local
    /// latent, one mixing group per element.
    pub local: bool,
    /// Its family is the runtime's `Normal` (a batch of its elements is
    /// drawn and evaluated as vector operations, `amortised_emit.rs`).
    pub normal: bool,
    /// A `Normal` whose scale is written `….exp()`: its location and the
    /// log-scale (the receiver of `exp`), lowered, for a batch that takes
    /// the exponential into its vector operations.
    pub log_scale: Option<(TokenStream, TokenStream)>,
}

/// The checked guide.
pub struct Plan<'a> {
    pub input: &'a GuideInput,
    pub params: Vec<Param<'a>>,
    pub mixing: Vec<Mixing<'a>>,
    pub conditionals: Vec<Conditional<'a>>,
    /// The reverse model's parameters: `params[first..end]`.
    pub reverse_params: Option<(usize, usize)>,
    /// The encoders (`encoder.rs`); their weights follow `params`.
    pub encoders: Vec<Encoder<'a>>,
    /// The position in `mixing` of the per-point mixing variable, if any.
    pub per_point: Option<usize>,
    /// No mixing variable and every conditional per point
    /// (`per_point::amortised`): one group per point without mixing
    /// coordinates.
    pub amortised: bool,
    /// A guide with per-point mixing variables that draws by group
    /// (`per_point::by_group`).
    pub by_group: bool,
}

impl Plan<'_> {
    /// The number of per-point mixing variables (`ψ_j`'s dimension).
    pub fn per_point_count(&self) -> usize {
        self.mixing.iter().filter(|m| m.per_point).count()
    }

    /// Mixing variable `mi`'s coordinate `q` of a point's `ψ_j` (`None`
    /// for a global one).
    pub fn point_slot(&self, mi: usize) -> Option<usize> {
        self.mixing[mi]
            .per_point
            .then(|| self.mixing[..mi].iter().filter(|m| m.per_point).count())
    }

    /// The step between mixing variable `mi`'s coordinates in the whole
    /// `ψ`: the number of per-point variables for a per-point one (laid
    /// out point after point), else 1.
    pub fn mixing_stride(&self, mi: usize) -> usize {
        if self.mixing[mi].per_point {
            self.per_point_count()
        } else {
            1
        }
    }
}

/// What the guide is checked against.
struct Target<'a> {
    guide: &'a Ident,
    model: String,
    latents: &'a [LatentInfo],
    /// The model's `#[transformed]` values (`model_transformed.rs`).
    transformed: &'a [crate::handover::TransformedInfo],
}

/// The guide's names: parameters and mixing variables first, then the
/// conditionals in the guide's order, all locals of the scalar type.
fn bindings(fields: &[&GuideField], failed: &[Ident], encoders: &[Callable<'_>]) -> Bindings {
    let failed = failed.iter().map(|ident| Binding {
        ident: ident.clone(),
        meaning: Meaning::Failed,
    });
    // Each encoder output, a vector over the points (`encoder.rs`).
    let outputs = encoders.iter().flat_map(|e| {
        (0..e.outputs).map(|o| Binding {
            ident: encoder::output_name(e.ident, o),
            meaning: Meaning::Local { scalar: false },
        })
    });
    Bindings {
        entries: outputs
            .chain(fields.iter().map(|f| Binding {
                ident: f.ident.clone(),
                meaning: Meaning::Local {
                    scalar: f.is_scalar(),
                },
            }))
            .chain(failed)
            .collect(),
        vocabulary: "the guide's parameters, mixing variables and latents",
    }
}

/// The plan of a guide; what could not be lowered is reported in `cx`.
pub fn plan<'a>(
    cx: &Ctxt,
    guide_input: &'a GuideInput,
    latents: &'a [LatentInfo],
    (fields, failed): (&'a [GuideField], &[Ident]),
) -> Plan<'a> {
    let target = Target {
        guide: &guide_input.guide.ident,
        model: super::model_name(&guide_input.model),
        latents,
        transformed: &guide_input.transformed,
    };
    let input = &target;
    let conditional_fields: Vec<&GuideField> = fields
        .iter()
        .filter(|f| matches!(f.part, Part::Conditional { .. }))
        .collect();
    check_fields(cx, input, (fields, &conditional_fields), failed);
    let per_point = super::per_point::check(cx, fields, latents);
    let by_group = super::per_point::by_group(fields, latents, per_point.as_ref());
    let local: Vec<&Ident> = per_point
        .as_ref()
        .map_or_else(Vec::new, |p| p.local.clone());
    let encoder_fields: Vec<&GuideField> = fields
        .iter()
        .filter(|f| matches!(f.part, Part::Encoder(_)))
        .collect();
    let callables = callables(&encoder_fields, failed);
    let ordered: Vec<&GuideField> = fields
        .iter()
        .filter(|f| !matches!(f.part, Part::Conditional { .. } | Part::Encoder(_)))
        .chain(conditional_fields.iter().copied())
        .collect();
    let table = table(input, fields, &ordered, failed, &callables);
    let outputs: usize = callables.iter().map(|c| c.outputs).sum();
    let first_conditional = outputs + ordered.len() - conditional_fields.len();
    let lowered = conditionals(
        cx,
        (&table, first_conditional),
        &conditional_fields,
        &callables,
        &local,
    );
    let mut reverse_uses = BTreeSet::new();
    let mixing_fields: Vec<&GuideField> = fields
        .iter()
        .filter(|f| matches!(f.part, Part::Mixing { .. }))
        .collect();
    let all_fields: Vec<&GuideField> = fields.iter().collect();
    let family_at = super::mixing_family::Context {
        table: &table,
        visible: outputs + ordered.len(),
        fields: &all_fields,
        latents,
        encoders: &callables,
    };
    let mut forward_uses = lowered.uses.clone();
    let (mixing, reverse_callers, family_callers) = mixing_all(
        cx,
        (input, &family_at),
        &mixing_fields,
        (&mut reverse_uses, &mut forward_uses),
    );
    let callers = encoder::Callers {
        conditionals: &lowered.callers,
        reverse: &reverse_callers,
        mixing: &family_callers,
    };
    let uses = (&forward_uses, &reverse_uses);
    let (params, reverse_params, encoders) = params_and_encoders(
        cx,
        (guide_input, input, &table),
        (fields, &encoder_fields, failed),
        uses,
        &callers,
    );
    let per_point = mixing.iter().position(|m| m.per_point);
    Plan {
        input: guide_input,
        params,
        mixing,
        conditionals: lowered.conditionals,
        reverse_params,
        encoders,
        per_point,
        amortised: super::per_point::amortised(fields, latents),
        by_group,
    }
}

/// The parameters, the reverse model's own ones (`params[first..end]`,
/// [`reverse_params`]) and the encoders ([`encoders`]), checked against
/// the names the conditionals and the reverse models use (`uses`) and the
/// encoders they call (`callers`).
fn params_and_encoders<'a>(
    cx: &Ctxt,
    (guide_input, input, table): (&GuideInput, &Target<'_>, &Bindings),
    (fields, encoder_fields, failed): (&'a [GuideField], &[&'a GuideField], &[Ident]),
    (conditional_uses, reverse_uses): (&BTreeSet<String>, &BTreeSet<String>),
    callers: &encoder::Callers<'_>,
) -> (Vec<Param<'a>>, Option<(usize, usize)>, Vec<Encoder<'a>>) {
    let params: Vec<Param<'a>> = fields
        .iter()
        .filter(|f| matches!(f.part, Part::Param { .. }))
        .filter_map(|p| param(cx, (input, table), p))
        .collect();
    // A field with a mistake may use parameters nobody can see.
    if failed.is_empty() {
        check_params_used(cx, &params, conditional_uses, reverse_uses);
    }
    let reverse_params = reverse_params(cx, &params, conditional_uses, reverse_uses);
    let encoders = encoders(cx, (guide_input, fields), encoder_fields, callers, failed);
    let reverse_params = super::encoder::reverse_params(cx, &params, reverse_params, &encoders);
    (params, reverse_params, encoders)
}

/// The checks on the fields before lowering: names ([`check_names`]),
/// every latent given a conditional ([`check_latents_covered`]), each
/// conditional ([`check_conditional`]), reverse models on all mixing
/// variables or none ([`check_reverse_all_or_none`]).
fn check_fields(
    cx: &Ctxt,
    input: &Target<'_>,
    (fields, conditional_fields): (&[GuideField], &[&GuideField]),
    failed: &[Ident],
) {
    check_names(cx, input.guide, fields);
    check_latents_covered(cx, input, conditional_fields, failed);
    for c in conditional_fields {
        check_conditional(cx, input, c, conditional_fields);
    }
    check_reverse_all_or_none(cx, fields);
}

/// The guide's field names are unique and none starts with `__`
/// (reserved for generated code).
fn check_names(cx: &Ctxt, guide: &Ident, fields: &[GuideField]) {
    crate::model::check_unique(cx, fields.iter().map(|f| &f.ident), |name| {
        format!("`{name}` is declared twice in guide `{guide}`: rename or remove one")
    });
    for f in fields {
        if f.ident.to_string().starts_with("__") {
            cx.error_spanned_by(
                &f.ident,
                "names starting with `__` are reserved for generated code",
            );
        }
    }
}

/// The names a guide's expressions may read: [`bindings`] of the `ordered`
/// fields, then the model's transformed data the guide cannot read.
fn table(
    input: &Target<'_>,
    fields: &[GuideField],
    ordered: &[&GuideField],
    failed: &[Ident],
    callables: &[Callable<'_>],
) -> Bindings {
    let mut table = bindings(ordered, failed, callables);
    let unreadable =
        super::model_transformed::unreadable(&input.model, input.transformed, |name| {
            fields.iter().any(|f| f.ident == *name)
        });
    table.entries.extend(unreadable);
    table
}

/// The lowered conditionals, with what they read.
struct Lowered<'a> {
    /// The conditionals lowered without a mistake.
    conditionals: Vec<Conditional<'a>>,
    /// The names the conditionals use.
    uses: BTreeSet<String>,
    /// Each conditional's name and the encoders it calls.
    callers: Vec<(String, BTreeSet<String>)>,
}

/// Every conditional ([`conditional`]), the first at binding position
/// `first`; `local` names those reading the per-point mixing variable.
fn conditionals<'a>(
    cx: &Ctxt,
    (table, first): (&Bindings, usize),
    conditional_fields: &[&'a GuideField],
    callables: &[Callable<'_>],
    local: &[&Ident],
) -> Lowered<'a> {
    let mut uses = BTreeSet::new();
    let mut callers: Vec<(String, BTreeSet<String>)> = Vec::new();
    let conditionals = conditional_fields
        .iter()
        .enumerate()
        .filter_map(|(ci, c)| {
            let mut called = BTreeSet::new();
            let lowered = conditional(cx, table, first + ci, c, (callables, &[], &mut called));
            callers.push((c.ident.to_string(), called));
            let (new, used, log_scale) = lowered?;
            uses.extend(used);
            let Part::Conditional {
                index,
                unconstrained,
                call,
            } = &c.part
            else {
                unreachable!("a conditional")
            };
            let df = super::student_t::degrees(cx, call).ok()?;
            Some(Conditional {
                ident: &c.ident,
                scalar: c.is_scalar(),
                new,
                index: index.as_ref(),
                unconstrained: *unconstrained,
                df,
                local: local.contains(&&c.ident),
                normal: is_runtime_normal(call),
                log_scale,
            })
        })
        .collect();
    Lowered {
        conditionals,
        uses,
        callers,
    }
}

/// What a conditional or reverse model may call: the encoders, and the
/// fields with a mistake (which may be encoders: their calls are not
/// errors, and they have no outputs).
fn callables<'f>(encoder_fields: &[&'f GuideField], failed: &'f [Ident]) -> Vec<Callable<'f>> {
    let encoders = encoder_fields.iter().filter_map(|f| match &f.part {
        Part::Encoder(args) => Some(Callable {
            ident: &f.ident,
            outputs: args.outputs,
            failed: false,
        }),
        _ => None,
    });
    let failed = failed.iter().map(|ident| Callable {
        ident,
        outputs: 0,
        failed: true,
    });
    encoders.chain(failed).collect()
}

/// The encoders: inputs checked against the model's data, each called by
/// some conditional.
fn encoders<'a>(
    cx: &Ctxt,
    (input, fields): (&GuideInput, &[GuideField]),
    encoder_fields: &[&'a GuideField],
    callers: &encoder::Callers<'_>,
    failed: &[Ident],
) -> Vec<Encoder<'a>> {
    let guide_latents: Vec<(&Ident, bool)> = fields
        .iter()
        .filter(|f| matches!(f.part, Part::Conditional { .. }))
        .map(|f| (&f.ident, !f.is_scalar()))
        .collect();
    let mixing: Vec<&Ident> = fields
        .iter()
        .filter(|f| matches!(f.part, Part::Mixing { .. }))
        .map(|f| &f.ident)
        .collect();
    let per_point: Vec<&Ident> = fields
        .iter()
        .filter(|f| {
            matches!(
                f.part,
                Part::Mixing {
                    per_point: Some(_),
                    ..
                }
            )
        })
        .map(|f| &f.ident)
        .collect();
    let mut others: Vec<(&Ident, &'static str)> = fields
        .iter()
        .map(|f| match f.part {
            Part::Param { .. } => (&f.ident, "a parameter of the guide"),
            Part::Mixing { .. } => (&f.ident, "a mixing variable"),
            Part::Conditional { .. } => (&f.ident, "a latent"),
            Part::Encoder(_) => (&f.ident, "an encoder"),
        })
        .collect();
    if let Some(latents) = &input.latents {
        others.extend(latents.iter().map(|l| (&l.name, "a latent")));
    }
    let mut encoders: Vec<Encoder<'a>> = encoder_fields
        .iter()
        .filter_map(|f| {
            let Part::Encoder(args) = &f.part else {
                return None;
            };
            let name = f.ident.to_string();
            let context = encoder::context(cx, &guide_latents, (&mixing, &per_point), &args.context);
            let (mut latents, reverse) = callers.check(cx, f, &context);
            if latents.is_empty() && !reverse && failed.is_empty() {
                cx.error_spanned_by(
                    &f.ident,
                    format!("encoder `{name}` is declared but never called: call it in a conditional with `for j`, e.g. `Normal({name}(j)[0], {name}(j)[1].exp())`, or remove it"),
                );
            }
            let inputs = encoder::inputs(cx, &input.data, &others, &args.input);
            latents.extend(
                context
                    .iter()
                    .filter(|c| c.indexed && !c.mixing)
                    .map(|c| c.name.to_string()),
            );
            latents.sort();
            latents.dedup();
            Some(Encoder {
                ident: &f.ident,
                inputs,
                hidden: args.hidden.clone(),
                activation: args.activation.clone(),
                outputs: args.outputs,
                latents,
                context,
                reverse,
            })
        })
        .collect();
    // The reverse model's encoders first: their weights follow the
    // reverse model's parameters (`reverse_params`, one range).
    encoders.sort_by_key(|e| !e.reverse);
    encoders
}

// Every model latent has exactly one conditional.
fn check_latents_covered(
    cx: &Ctxt,
    input: &Target<'_>,
    conditionals: &[&GuideField],
    failed: &[Ident],
) {
    let (guide, model) = (input.guide, &input.model);
    for info in input.latents {
        let declared = |i: &Ident| *i == info.name;
        if conditionals.iter().any(|c| declared(&c.ident)) || failed.iter().any(declared) {
            continue;
        }
        let ty = if info.vector { "Vec<f64>" } else { "f64" };
        let family = if info.support == LatentSupport::Positive {
            "LogNormal"
        } else {
            "Normal"
        };
        let index = if info.vector { ", for j" } else { "" };
        cx.error_spanned_by(
            guide,
            format!(
                "guide `{guide}` has no conditional for latent `{}` of model `{model}`: add `#[latent({family}(...){index})] {}: {ty}`",
                info.name, info.name
            ),
        );
    }
}

/// The model latent a conditional is for, or an error naming the closest.
fn latent_of<'i>(
    cx: &Ctxt,
    input: &'i Target<'i>,
    c: &GuideField,
    conditionals: &[&GuideField],
) -> Option<&'i LatentInfo> {
    if let Some(info) = input.latents.iter().find(|l| l.name == c.ident) {
        return Some(info);
    }
    if let Some(t) = input.transformed.iter().find(|t| t.name == c.ident) {
        let message = super::model_transformed::as_conditional(&input.model, t);
        cx.error_spanned_by(&c.ident, message);
        return None;
    }
    // Prefer the latents the guide has not covered yet.
    let uncovered: Vec<String> = input
        .latents
        .iter()
        .filter(|l| !conditionals.iter().any(|c| c.ident == l.name))
        .map(|l| l.name.to_string())
        .collect();
    let all: Vec<String> = input.latents.iter().map(|l| l.name.to_string()).collect();
    let name = c.ident.to_string();
    let hint = family::closest(&name, uncovered.iter().map(String::as_str))
        .or_else(|| family::closest(&name, all.iter().map(String::as_str)))
        .map_or_else(String::new, |n| format!("; did you mean `{n}`?"));
    cx.error_spanned_by(
        &c.ident,
        format!("model `{}` has no latent `{name}`{hint}", input.model),
    );
    None
}

// A conditional matches its latent's shape and support.
fn check_conditional(cx: &Ctxt, input: &Target<'_>, c: &GuideField, all: &[&GuideField]) {
    let Part::Conditional {
        call,
        index,
        unconstrained,
    } = &c.part
    else {
        return;
    };
    let family = guide_family(cx, call);
    let Some(info) = latent_of(cx, input, c, all) else {
        return;
    };
    let model = &input.model;
    let is_vector = !c.is_scalar();
    if is_vector != info.vector {
        let want = if info.vector {
            "a vector: write `Vec<f64>` and index the conditional with `for j`"
        } else {
            "a scalar: write `f64`"
        };
        cx.error_spanned_by(
            &c.ty,
            format!("latent `{}` of model `{model}` is {want}", c.ident),
        );
    }
    match family {
        Some(family) if *unconstrained && family.support != Support::Real => {
            cx.error_spanned_by(
                &call.name,
                format!(
                    "an #[unconstrained] conditional is over the real line (latent `{}`'s unconstrained coordinates): use `Normal(...)`",
                    c.ident
                ),
            );
        }
        Some(_) if *unconstrained => {}
        Some(family) => check_support(cx, family, info, call, &c.ident),
        None => {}
    }
    if let (Some(i), false) = (index, is_vector) {
        cx.error_spanned_by(i, format!("`{}` is a scalar: remove `for {i}`", c.ident));
    }
}

/// The families a guide can draw with standard normal noise.
fn guide_family(cx: &Ctxt, call: &DistCall) -> Option<&'static Family> {
    let family = check_distribution(cx, call)?;
    if call.user.is_some() || !matches!(family.name, "Normal" | "LogNormal" | "StudentT") {
        let name = match &call.user {
            Some(path) => quote!(#path).to_string().replace(' ', ""),
            None => family.name.to_string(),
        };
        cx.error_spanned_by(
            &call.name,
            format!("`{name}` cannot serve in a guide yet: guide conditionals are `Normal` or `StudentT` (real latents) or `LogNormal` (positive latents)"),
        );
        return None;
    }
    Some(family)
}

// The conditional's family has its latent's support.
fn check_support(cx: &Ctxt, family: &Family, info: &LatentInfo, call: &DistCall, ident: &Ident) {
    let message = match (family.support, info.support) {
        (Support::Real, LatentSupport::Real) | (Support::Positive, LatentSupport::Positive) => {
            return;
        }
        (Support::Real, LatentSupport::Positive) => format!(
            "`{}` puts mass on negative values but latent `{ident}` is positive: use `LogNormal(...)`",
            family.name
        ),
        (Support::Positive, LatentSupport::Real) => format!(
            "`{}` is positive but latent `{ident}` is real-valued: use `Normal(...)`",
            family.name
        ),
        (_, other) => format!(
            "latent `{ident}` has support `{}`, which a `{}` conditional cannot target: add `#[unconstrained]` \
             and give the conditional over its unconstrained coordinates, `Normal(...)` (the latent's own \
             transform maps the draws onto its support)",
            other.word(),
            family.name
        ),
    };
    cx.error_spanned_by(&call.name, message);
}

// A reverse model for every mixing variable, or for none (SIVI).
fn check_reverse_all_or_none(cx: &Ctxt, fields: &[GuideField]) {
    let mixing = || {
        fields.iter().filter_map(|f| match &f.part {
            Part::Mixing { reverse, .. } => Some((f, reverse.is_some())),
            _ => None,
        })
    };
    let reversed = mixing().filter(|(_, r)| *r).count();
    if reversed == 0 || reversed == mixing().count() {
        return;
    }
    for (m, _) in mixing().filter(|(_, r)| !*r) {
        cx.error_spanned_by(&m.ident, format!("mixing variable `{}` has no #[reverse(...)]: give every mixing variable a reverse model, or none (SIVI)", m.ident));
    }
}

/// A conditional's constructor and the names it uses.
fn conditional(
    cx: &Ctxt,
    table: &Bindings,
    position: usize,
    c: &GuideField,
    (encoders, failed, called): (&[Callable<'_>], &[Callable<'_>], &mut BTreeSet<String>),
) -> Option<LoweredConditional> {
    let Part::Conditional { call, index, .. } = &c.part else {
        return None;
    };
    let all: Vec<Callable<'_>> = encoders
        .iter()
        .chain(failed)
        .map(|e| Callable {
            ident: e.ident,
            outputs: e.outputs,
            failed: e.failed,
        })
        .collect();
    let rewritten = encoder::rewrite_call(cx, &all, call, index.as_ref(), &c.ident, called).ok()?;
    let call = rewritten.as_ref().unwrap_or(call);
    let family = family::family(&call.name.to_string())?;
    let mut lower = Lower::new(table.scope(position, index.as_ref()), cx);
    let new = constructor(&mut lower, family, call);
    let log_scale = normal_log_scale(&mut lower, call);
    Some((new?, lower.uses.names, log_scale))
}

/// A lowered conditional: its constructor, the names it reads, and a
/// `Normal`'s location and log-scale when its scale is `….exp()`.
type LoweredConditional = (
    TokenStream,
    BTreeSet<String>,
    Option<(TokenStream, TokenStream)>,
);

/// The call is the runtime's `Normal` (not a user's family of that name).
fn is_runtime_normal(call: &DistCall) -> bool {
    call.name == "Normal" && call.user.is_none()
}

/// The location and the log-scale `s` of a runtime `Normal(loc, s.exp())`
/// call, lowered as the constructor lowers its arguments (`None` for
/// another family or scale).
fn normal_log_scale(lower: &mut Lower<'_>, call: &DistCall) -> Option<(TokenStream, TokenStream)> {
    if !is_runtime_normal(call) {
        return None;
    }
    let [loc, Expr::MethodCall(scale)] = call.args.as_slice() else {
        return None;
    };
    if scale.method != "exp" || !scale.args.is_empty() || scale.turbofish.is_some() {
        return None;
    }
    Some((lower.value(loc)?, lower.value(&scale.receiver)?))
}

/// The encoders each caller calls, with the latent giving their rows.
type CalledBy = Vec<(String, BTreeSet<String>)>;

/// Every mixing variable ([`mixing`]); the encoders each one's reverse
/// model calls, and those its learned distribution calls, with the latent
/// giving their rows (the one of the variable's length, empty if none).
/// The names the reverse models read go to `reverse_uses`, those the
/// distributions read to `forward_uses`.
fn mixing_all<'a>(
    cx: &Ctxt,
    (input, at): (&Target<'_>, &super::mixing_family::Context<'_>),
    mixing_fields: &[&'a GuideField],
    (reverse_uses, forward_uses): (&mut BTreeSet<String>, &mut BTreeSet<String>),
) -> (Vec<Mixing<'a>>, CalledBy, CalledBy) {
    let (mut callers, mut family_callers) = (Vec::new(), Vec::new());
    let lowered = mixing_fields
        .iter()
        .map(|m| {
            let mut called = BTreeSet::new();
            let uses = (&mut *reverse_uses, at.encoders, &mut called);
            let mut lowered = mixing(cx, input, (at.table, at.visible), m, mixing_fields, uses);
            let rows = match &m.part {
                Part::Mixing { len: Some(len), .. } => scope::single_ident(len)
                    .filter(|i| input.latents.iter().any(|l| l.name == **i))
                    .map(ToString::to_string),
                _ => None,
            };
            let mut family_called = BTreeSet::new();
            let family =
                super::mixing_family::lower(cx, at, m, (&mut *forward_uses, &mut family_called));
            lowered.family = family.map(|new| (new, per_point_index(m)));
            lowered.family_calls.clone_from(&family_called);
            family_callers.push((rows.clone().unwrap_or_default(), family_called));
            callers.push((rows.unwrap_or_default(), called));
            lowered
        })
        .collect();
    (lowered, callers, family_callers)
}

/// A per-point mixing variable's index (`for j`).
fn per_point_index(m: &GuideField) -> Option<&Ident> {
    match &m.part {
        Part::Mixing { per_point, .. } => per_point.as_ref(),
        _ => None,
    }
}

/// A mixing variable, its length and its reverse model (its learned
/// distribution is [`mixing_all`]'s).
fn mixing<'a>(
    cx: &Ctxt,
    input: &Target<'_>,
    (table, visible): (&Bindings, usize),
    m: &'a GuideField,
    all: &[&GuideField],
    (uses, encoders, called): (
        &mut BTreeSet<String>,
        &[Callable<'_>],
        &mut BTreeSet<String>,
    ),
) -> Mixing<'a> {
    let Part::Mixing {
        len,
        reverse,
        per_point,
        ..
    } = &m.part
    else {
        unreachable!("a mixing variable")
    };
    let reverse = reverse.as_ref().and_then(|(call, index)| {
        if let Some(bad) = scope::first_mention(&call.tokens, |i| all.iter().any(|f| f.ident == *i))
        {
            cx.error_spanned_by(
                &bad,
                "the reverse model conditions on the latents, not on the mixing variables",
            );
        }
        if let (Some(i), true) = (index, m.is_scalar()) {
            cx.error_spanned_by(
                i,
                format!(
                    "mixing variable `{}` is a scalar: remove `for {i}` from its reverse model",
                    m.ident
                ),
            );
        }
        let rewritten =
            encoder::rewrite_call(cx, encoders, call, index.as_ref(), &m.ident, called).ok()?;
        let call = rewritten.as_ref().unwrap_or(call);
        let family = check_distribution(cx, call)?;
        if family.name != "Normal" {
            cx.error_spanned_by(&call.name, "reverse models are `Normal(...)` for now");
            return None;
        }
        let mut lower = Lower::new(table.scope(visible, index.as_ref()), cx);
        let new = constructor(&mut lower, family, call);
        uses.extend(lower.uses.names);
        Some((new?, index.as_ref()))
    });
    Mixing {
        ident: &m.ident,
        scalar: m.is_scalar(),
        len: length(cx, (input, table), m, len.as_ref()),
        reverse,
        per_point: per_point.is_some(),
        family: None,
        family_calls: BTreeSet::new(),
    }
}

/// A parameter or mixing variable's length: 1 for a scalar, an array's
/// length, or the `len` a `Vec` needs: a model latent's name (that
/// latent's length) or a constant expression. `None` (reported) when it
/// is missing, given to a field whose type fixes its shape, or wrong.
/// (The plan of a guide with errors is not emitted.)
fn length(
    cx: &Ctxt,
    (input, table): (&Target<'_>, &Bindings),
    f: &GuideField,
    len: Option<&Expr>,
) -> TokenStream {
    use crate::model::ast::Shape;
    match (&f.shape, len) {
        (Some(Shape::Vec(_)), Some(len)) => match scope::single_ident(len) {
            Some(ident) if input.latents.iter().any(|l| l.name == *ident) => {
                let name = ident.to_string();
                quote!(__latent_len(#name))
            }
            _ => {
                constant(cx, (input, table), len, Constant::Length);
                quote!((#len) as usize)
            }
        },
        (Some(Shape::Vec(_)), None) => {
            cx.error_spanned_by(
                &f.ident,
                format!(
                    "`{}` is a Vec: give its length, `len = <model latent>` or `len = <number>`",
                    f.ident
                ),
            );
            quote!()
        }
        (_, Some(len)) => {
            cx.error_spanned_by(
                len,
                "`len = ...` is for Vec fields; this field's type fixes its shape",
            );
            quote!()
        }
        (Some(Shape::Array(_, n)), None) => quote!((#n) as usize),
        _ => quote!(1usize),
    }
}

/// What a constant expression of a guide is.
#[derive(Clone, Copy, PartialEq)]
enum Constant {
    /// `len = …`: whole numbers.
    Length,
    /// `init = …` or `normal(sd)`: numbers.
    Init,
}

/// Checks that `expr` is a constant: number literals (whole ones for a
/// length), named constants (`N`, `path::N`), and `+ - * /` of them; not
/// the guide's own names, nor a model latent inside a larger expression.
fn constant(cx: &Ctxt, (input, table): (&Target<'_>, &Bindings), expr: &Expr, what: Constant) {
    use syn::{BinOp, Lit, UnOp};
    let recurse = |e: &Expr| constant(cx, (input, table), e, what);
    let described = match what {
        Constant::Length => {
            "a length is a model latent's name, a whole number, a constant, or `+ - * /` of numbers and constants"
        }
        Constant::Init => {
            "an initial value is a number, a constant, `+ - * /` of them, or `normal(sd)`"
        }
    };
    match expr {
        Expr::Lit(l) => match (&l.lit, what) {
            (Lit::Int(_), _) | (Lit::Float(_), Constant::Init) => {}
            _ => cx.error_spanned_by(expr, described),
        },
        Expr::Path(p) => {
            let Some(ident) = p.path.get_ident() else {
                return;
            };
            let name = ident.to_string();
            let message = if table.entries.iter().any(|b| b.ident == *ident) {
                format!("`{name}` is a field of the guide: {described}")
            } else if input.latents.iter().any(|l| l.name == *ident) {
                format!("latent `{name}` cannot appear here: {described}")
            } else if name.chars().next().is_some_and(char::is_uppercase) {
                return;
            } else {
                let latents: Vec<String> =
                    input.latents.iter().map(|l| l.name.to_string()).collect();
                let hint = family::closest(&name, latents.iter().map(String::as_str))
                    .map_or_else(String::new, |n| format!("; did you mean `{n}`?"));
                format!(
                    "cannot find `{name}` among the latents of model `{}`{hint}",
                    input.model
                )
            };
            cx.error_spanned_by(ident, message);
        }
        Expr::Binary(b)
            if matches!(
                b.op,
                BinOp::Add(_) | BinOp::Sub(_) | BinOp::Mul(_) | BinOp::Div(_)
            ) =>
        {
            recurse(&b.left);
            recurse(&b.right);
        }
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => recurse(&u.expr),
        Expr::Paren(p) => recurse(&p.expr),
        Expr::Group(g) => recurse(&g.expr),
        other => cx.error_spanned_by(other, described),
    }
}

/// A parameter with its initial value.
fn param<'a>(
    cx: &Ctxt,
    (input, table): (&Target<'_>, &Bindings),
    p: &'a GuideField,
) -> Option<Param<'a>> {
    let Part::Param { init, len } = &p.part else {
        unreachable!("a parameter")
    };
    let init = match init {
        Expr::Call(c) if matches!(&*c.func, Expr::Path(path) if path.path.is_ident("normal")) => {
            if c.args.len() != 1 {
                cx.error_spanned_by(
                    c,
                    "`normal(sd)` takes one argument, the standard deviation of the initial draws: write e.g. `init = normal(0.1)`",
                );
                return None;
            }
            let sd = &c.args[0];
            constant(cx, (input, table), sd, Constant::Init);
            quote!(::iwhvi::__private::normal_init(__rng, (#sd) as f64))
        }
        other => {
            constant(cx, (input, table), other, Constant::Init);
            quote_spanned!(other.span()=> (#other) as f64)
        }
    };
    Some(Param {
        ident: &p.ident,
        scalar: p.is_scalar(),
        len: length(cx, (input, table), p, len.as_ref()),
        init,
    })
}

// Declared parameters are used.
fn check_params_used(
    cx: &Ctxt,
    params: &[Param<'_>],
    conditional_uses: &BTreeSet<String>,
    reverse_uses: &BTreeSet<String>,
) {
    for p in params {
        let name = p.ident.to_string();
        if !conditional_uses.contains(&name) && !reverse_uses.contains(&name) {
            cx.error_spanned_by(p.ident, format!("parameter `{name}` is declared but never used: remove it or use it in a conditional"));
        }
    }
}

/// The reverse model's own parameters, `params[first..end]`: the
/// doubly-reparameterized estimator treats them apart, so they are used by
/// the reverse model alone and declared together.
fn reverse_params(
    cx: &Ctxt,
    params: &[Param<'_>],
    conditional_uses: &BTreeSet<String>,
    reverse_uses: &BTreeSet<String>,
) -> Option<(usize, usize)> {
    let reverse: Vec<usize> = (0..params.len())
        .filter(|&i| reverse_uses.contains(&params[i].ident.to_string()))
        .collect();
    for &i in &reverse {
        if conditional_uses.contains(&params[i].ident.to_string()) {
            cx.error_spanned_by(
                params[i].ident,
                format!("parameter `{}` is used by both a conditional and a reverse model: give the reverse model parameters of its own (the doubly-reparameterized estimator trains them apart)", params[i].ident),
            );
        }
    }
    let (&first, &last) = (reverse.first()?, reverse.last()?);
    if last - first + 1 != reverse.len() {
        let stray = (first..last).find(|i| !reverse.contains(i)).expect("a gap");
        cx.error_spanned_by(
            params[stray].ident,
            format!("parameter `{}` sits between the reverse model's parameters: declare the reverse model's parameters together", params[stray].ident),
        );
    }
    Some((first, last + 1))
}
