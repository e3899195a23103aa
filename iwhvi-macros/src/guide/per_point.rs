//! Per-point mixing variables (issue 16): `#[mixing(len = z, for j)] psi:
//! Vec<f64>` declares one mixing coordinate `ψ_j ~ N(0, 1)` per point `j`
//! of the local latents, read as `psi[j]` by conditionals with `for j`
//! (`q(z_j | ψ_j, …)`), with a reverse model per point
//! (`#[reverse(Normal(…), for j)]`, `τ(ψ_j | z)`). The generated guide
//! reports one mixing group per point (and one for the rest), so the
//! objective's inner bound factorises over the points
//! (`HierarchicalGuide::mixing_groups`).
//!
//! Several such variables over the same latent's points (`psi0`, `psi1`)
//! make each point's `ψ_j` a vector (`ψ_j = (psi0_j, psi1_j)`, laid out
//! point after point, `per_point_emit.rs`), each with its own reverse model.
//!
//! Checked here: their length a local latent (the same for all), each
//! one's reverse model present and per point, some conditional reading
//! each, and every use `psi[j]` inside a conditional with `for j` that
//! reads no global mixing variable.
//!
//! A guide without mixing variables whose conditionals are all per point
//! ([`amortised`]: `#[latent(Normal(enc(j)[0], enc(j)[1].exp()), for j)]`
//! over vector latents, reading no latent) reports one group per point too,
//! each with no mixing coordinates (its exact weight `log q(z_j)`).

use syn::visit::Visit;
use syn::{Expr, Ident};

use super::ast::{GuideField, Part};
use crate::ctxt::Ctxt;
use crate::handover::LatentInfo;
use crate::model::ast::DistCall;
use crate::scope;

/// The per-point mixing variable and which conditionals read it.
pub struct PerPoint<'a> {
    /// The conditionals (by name) that read it: the local latents.
    pub local: Vec<&'a Ident>,
}

/// The mentions of `name` in `expr` that are not `name[index]`.
fn stray_mentions(expr: &Expr, name: &Ident, index: Option<&Ident>) -> Vec<Ident> {
    struct Finder<'n> {
        name: &'n Ident,
        index: Option<&'n Ident>,
        found: Vec<Ident>,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_expr_index(&mut self, e: &'ast syn::ExprIndex) {
            let base = scope::single_ident(&e.expr);
            let position = scope::single_ident(&e.index);
            if base == Some(self.name) && self.index.is_some() && position == self.index {
                return;
            }
            syn::visit::visit_expr_index(self, e);
        }
        fn visit_expr_path(&mut self, p: &'ast syn::ExprPath) {
            if p.path.get_ident() == Some(self.name) {
                // The user's token, for the message's span.
                self.found.push(p.path.segments[0].ident.clone());
            }
        }
    }
    let mut finder = Finder {
        name,
        index,
        found: Vec::new(),
    };
    finder.visit_expr(expr);
    finder.found
}

/// Whether `expr` reads `name` at all.
fn reads(expr: &Expr, name: &Ident) -> bool {
    scope::first_mention(expr, |i| i == name).is_some()
}

/// Checks the per-point mixing variables (if any) against the guide's
/// fields; mistakes reported in `cx`. Several of them (`psi0`, `psi1`,
/// each `for j` over the same latent's points) make `ψ_j` a vector, one
/// coordinate each, with one reverse model each.
pub fn check<'a>(
    cx: &Ctxt,
    fields: &'a [GuideField],
    latents: &[LatentInfo],
) -> Option<PerPoint<'a>> {
    let all = per_point_fields(fields);
    check_same_points(cx, &all);
    let mut local: Vec<&'a Ident> = Vec::new();
    for m in &all {
        let Part::Mixing {
            len,
            reverse,
            per_point: Some(j),
            ..
        } = &m.part
        else {
            unreachable!("a per-point mixing variable")
        };
        check_length(cx, m, len.as_ref(), j, latents);
        check_reverse(cx, &m.ident, reverse.as_ref(), j);
        let readers = check_readers(cx, fields, &m.ident, j);
        check_read(cx, &m.ident, j, &readers);
        for r in readers {
            if !local.contains(&r) {
                local.push(r);
            }
        }
    }
    // In the guide's order, as the conditionals are.
    local.sort_by_key(|name| fields.iter().position(|f| f.ident == **name));
    (!all.is_empty()).then_some(PerPoint { local })
}

/// The guide's per-point mixing variables, in its order.
fn per_point_fields(fields: &[GuideField]) -> Vec<&GuideField> {
    fields
        .iter()
        .filter(|f| {
            matches!(
                &f.part,
                Part::Mixing {
                    per_point: Some(_),
                    ..
                }
            )
        })
        .collect()
}

/// The per-point mixing variables follow the points of one latent (the
/// same `len = z`): each point's group holds one coordinate of each.
fn check_same_points(cx: &Ctxt, all: &[&GuideField]) {
    let len_of = |m: &GuideField| match &m.part {
        Part::Mixing { len: Some(len), .. } => scope::single_ident(len).cloned(),
        _ => None,
    };
    let Some(first) = all.first() else {
        return;
    };
    let Some(points) = len_of(first) else {
        return;
    };
    for m in &all[1..] {
        if let Some(other) = len_of(m).filter(|o| *o != points) {
            cx.error_spanned_by(
                &other,
                format!(
                    "per-point mixing variables `{}` and `{}` follow the points of different latents: \
                     give both `len = {points}` (each point's group holds one coordinate of each)",
                    first.ident, m.ident
                ),
            );
        }
    }
}

/// `len = z` names a vector latent of the model (the local latent whose
/// points the variable follows), and the variable is a `Vec`.
fn check_length(cx: &Ctxt, m: &GuideField, len: Option<&Expr>, j: &Ident, latents: &[LatentInfo]) {
    let name = &m.ident;
    let local_len = len
        .and_then(scope::single_ident)
        .and_then(|ident| latents.iter().find(|l| l.name == *ident && l.vector));
    if m.is_scalar() || local_len.is_none() {
        let at: &dyn quote::ToTokens = match len {
            Some(len) => len,
            None => &m.ident,
        };
        cx.error_spanned_by(
            at,
            format!(
                "per-point mixing variable `{name}` has one coordinate per point of a local latent: declare it \
                 `#[mixing(len = <vector latent>, for {j})] {name}: Vec<f64>`"
            ),
        );
    }
}

/// The reverse model is present and per point (`#[reverse(.., for j)]`).
fn check_reverse(cx: &Ctxt, name: &Ident, reverse: Option<&(DistCall, Option<Ident>)>, j: &Ident) {
    match reverse {
        None => cx.error_spanned_by(
            name,
            format!(
                "per-point mixing variable `{name}` needs a reverse model per point: add \
                 `#[reverse(Normal(...), for {j})]` (τ({name}_{j} | latents))"
            ),
        ),
        Some((call, None)) => cx.error_spanned_by(
            &call.name,
            format!(
                "the reverse model of per-point mixing variable `{name}` is one per point: write \
                 `#[reverse(Normal(...), for {j})]`"
            ),
        ),
        Some(_) => {}
    }
}

/// The conditionals reading per-point mixing variable `name` (directly or
/// through an encoder whose context reads it), each checked by
/// [`check_reader`]: the local latents.
fn check_readers<'a>(
    cx: &Ctxt,
    fields: &'a [GuideField],
    name: &Ident,
    j: &Ident,
) -> Vec<&'a Ident> {
    let others: Vec<&Ident> = fields
        .iter()
        .filter(|f| {
            matches!(
                &f.part,
                Part::Mixing {
                    per_point: None,
                    ..
                }
            )
        })
        .map(|f| &f.ident)
        .collect();
    // Encoders whose context reads it: a conditional calling one reads it.
    let encoders: Vec<&Ident> = fields
        .iter()
        .filter(|f| match &f.part {
            Part::Encoder(args) => args.context.iter().any(|e| reads(e, name)),
            _ => false,
        })
        .map(|f| &f.ident)
        .collect();
    let mut local = Vec::new();
    for c in fields {
        let Part::Conditional { call, index, .. } = &c.part else {
            continue;
        };
        let through_encoder = encoders.iter().any(|e| reads(&call.tokens, e));
        if !reads(&call.tokens, name) && !through_encoder {
            continue;
        }
        let index = index.as_ref().filter(|_| !c.is_scalar());
        if check_reader(cx, (c, call, index), (name, j), &others) {
            local.push(&c.ident);
        }
    }
    local
}

/// Conditional `c` reading per-point mixing variable `name`: it has
/// `for j` over a vector latent (else `false`: not a local latent), reads
/// `name[j]` only, and reads no other mixing variable.
fn check_reader(
    cx: &Ctxt,
    (c, call, index): (&GuideField, &DistCall, Option<&Ident>),
    (name, j): (&Ident, &Ident),
    others: &[&Ident],
) -> bool {
    let Some(i) = index else {
        cx.error_spanned_by(
            scope::first_mention(&call.tokens, |i| i == name)
                .as_ref()
                .unwrap_or(name),
            format!(
                "per-point mixing variable `{name}` is used outside its `for {j}`: only a conditional \
                 over a vector latent with `for {j}` reads it, as `{name}[{j}]`"
            ),
        );
        return false;
    };
    if let Some(bad) = stray_mentions(&call.tokens, name, index).first() {
        cx.error_spanned_by(
            bad,
            format!(
                "per-point mixing variable `{name}` is read at its own point only: write `{name}[{i}]`"
            ),
        );
    }
    if let Some(other) = others.iter().find(|o| reads(&call.tokens, o)) {
        cx.error_spanned_by(
            &c.ident,
            format!(
                "conditional `{}` reads per-point mixing variable `{name}` and mixing variable `{other}`: \
                 a per-point conditional reads its own point's mixing variable only",
                c.ident
            ),
        );
    }
    true
}

/// Some conditional reads per-point mixing variable `name`.
fn check_read(cx: &Ctxt, name: &Ident, j: &Ident, local: &[&Ident]) {
    if local.is_empty() {
        cx.error_spanned_by(
            name,
            format!(
                "per-point mixing variable `{name}` is declared but no conditional reads it: use `{name}[{j}]` \
                 in a conditional with `for {j}`"
            ),
        );
    }
}

/// Whether the guide has no mixing variable and every conditional is over
/// a vector latent with `for j`, reading no latent of the model (directly
/// or through an encoder's context): then `q(z) = Π_j q(z_j)`, one group
/// per point with no mixing coordinates (an amortised Gaussian encoder, a
/// mean-field guide indexed by the point).
pub fn amortised(fields: &[GuideField], latents: &[LatentInfo]) -> bool {
    let mut conditionals = fields.iter().filter_map(|f| match &f.part {
        Part::Conditional { call, index, .. } => Some((f, call, index)),
        _ => None,
    });
    let context_encoders: Vec<&Ident> = fields
        .iter()
        .filter(|f| matches!(&f.part, Part::Encoder(args) if !args.context.is_empty()))
        .map(|f| &f.ident)
        .collect();
    let no_mixing = !fields.iter().any(|f| matches!(f.part, Part::Mixing { .. }));
    let per_point = |(field, call, index): (&GuideField, &DistCall, &Option<Ident>)| {
        let reads_latent = latents.iter().any(|l| reads(&call.tokens, &l.name));
        let reads_context = context_encoders.iter().any(|e| reads(&call.tokens, e));
        !field.is_scalar() && index.is_some() && !reads_latent && !reads_context
    };
    let first = conditionals.next();
    no_mixing && first.is_some_and(per_point) && conditionals.all(per_point)
}

/// Whether a guide with per-point mixing variables (`per_point`, from
/// [`check`]) draws by group (`samples_by_group`, `per_point_emit.rs`): no
/// global group (every mixing variable per point, every conditional a
/// local latent's), no conditional reading a latent (directly or through
/// an encoder's context: its draw needs only `ψ_j`, the encoders and the
/// parameters), no learned `q(ψ_j)` reading one, and every reverse model
/// reading latents at its own point only (`z[j]`, or an encoder's context
/// `z[j]`), so that a batch's groups never read another point's stale
/// coordinates.
pub fn by_group(
    fields: &[GuideField],
    latents: &[LatentInfo],
    per_point: Option<&PerPoint<'_>>,
) -> bool {
    let Some(per_point) = per_point else {
        return false;
    };
    let reads_latent = |e: &Expr| latents.iter().any(|l| reads(e, &l.name));
    // Encoders whose context reads a latent.
    let latent_context: Vec<&Ident> = fields
        .iter()
        .filter(|f| matches!(&f.part, Part::Encoder(args) if args.context.iter().any(reads_latent)))
        .map(|f| &f.ident)
        .collect();
    let reads_any = |e: &Expr| reads_latent(e) || latent_context.iter().any(|enc| reads(e, enc));
    fields.iter().all(|f| match &f.part {
        Part::Conditional { call, .. } => {
            per_point.local.contains(&&f.ident) && !reads_any(&call.tokens)
        }
        Part::Mixing {
            per_point: Some(_),
            reverse,
            family,
            ..
        } => {
            let own = reverse.as_ref().is_some_and(|(call, index)| {
                latents
                    .iter()
                    .all(|l| stray_mentions(&call.tokens, &l.name, index.as_ref()).is_empty())
            });
            own && family.as_ref().is_none_or(|call| !reads_any(&call.tokens))
        }
        Part::Mixing {
            per_point: None, ..
        } => false,
        Part::Param { .. } | Part::Encoder(_) => true,
    })
}
