//! Rules that cross fields: each function checks one, reporting into the
//! context with the user's tokens.

use super::ast::{Constraint, DistCall, Elem, Model, Role, Shape};
use crate::ctxt::Ctxt;
use syn::Expr;

use crate::family::{self, Domain, Family, Support};

/// Every distribution is one the runtime has, called with its number of
/// parameters.
pub fn distribution(cx: &Ctxt, call: &DistCall) -> Option<&'static Family> {
    if call.user.is_some() {
        return Some(&family::USER);
    }
    let name = call.name.to_string();
    let Some(family) = family::family(&name) else {
        let hint = family::closest(&name, family::FAMILIES.iter().map(|f| f.name))
            .map_or_else(String::new, |c| format!("; did you mean `{c}`?"));
        cx.error_spanned_by(&call.name, format!("unknown distribution `{name}`{hint}"));
        return None;
    };
    if call.args.len() != family.params.len() {
        let names: Vec<&str> = family.params.iter().map(|(n, ..)| *n).collect();
        cx.error_spanned_by(
            &call.tokens,
            format!(
                "`{name}` takes {} argument{} ({}), found {}",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.join(", "),
                call.args.len()
            ),
        );
        return None;
    }
    constant_parameters(cx, call, family);
    Some(family)
}

/// The value of an expression made only of number literals, `+ - * /`,
/// negation and parentheses, as the generated code computes it (`f64`);
/// `None` for anything else (data, latents, methods).
pub fn constant(expr: &Expr) -> Option<f64> {
    use syn::{BinOp, Lit, UnOp};
    match expr {
        Expr::Lit(l) => match &l.lit {
            Lit::Float(f) => f.base10_parse().ok(),
            Lit::Int(i) => i.base10_parse::<u64>().ok().map(|v| v as f64),
            _ => None,
        },
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => constant(&u.expr).map(|v| -v),
        Expr::Paren(p) => constant(&p.expr),
        Expr::Group(g) => constant(&g.expr),
        Expr::Binary(b) => {
            let (left, right) = (constant(&b.left)?, constant(&b.right)?);
            match b.op {
                BinOp::Add(_) => Some(left + right),
                BinOp::Sub(_) => Some(left - right),
                BinOp::Mul(_) => Some(left * right),
                BinOp::Div(_) => Some(left / right),
                _ => None,
            }
        }
        _ => None,
    }
}

/// A parameter written as a constant lies in its domain (the family
/// table's), and `Uniform`'s constant bounds are increasing: a constant
/// outside can never be valid, whatever the data and latents.
fn constant_parameters(cx: &Ctxt, call: &DistCall, family: &Family) {
    let name = family.name;
    for (arg, (parameter, _, domain)) in call.args.iter().zip(family.params) {
        let Some(value) = constant(arg) else { continue };
        if !domain.contains(value) {
            let logit = format!("{name}Logit");
            let hint = match family::family(&logit) {
                Some(_) if *domain == Domain::Probability => {
                    format!("; or, for log-odds, use `{logit}`")
                }
                _ => String::new(),
            };
            let shown = if *domain == Domain::Count {
                format!("{value}")
            } else {
                format!("{value:?}")
            };
            cx.error_spanned_by(
                arg,
                format!(
                    "`{name}`'s `{parameter}` must be {}, and `{shown}` is not: {}{hint}",
                    domain.requirement(),
                    domain.suggestion(value)
                ),
            );
            continue;
        }
        if let Domain::FiniteAbove(other) = domain {
            let (low, (low_name, ..)) = (&call.args[*other], family.params[*other]);
            let Some(low) = constant(low).filter(|l| l.is_finite()) else {
                continue;
            };
            if value <= low {
                let instead = if value < low {
                    format!("swap them: `{name}({value:?}, {low:?})`")
                } else {
                    format!(
                        "give the interval a width, e.g. `{name}({low:?}, {:?})`",
                        low + 1.0
                    )
                };
                cx.error_spanned_by(
                    &call.tokens,
                    format!(
                        "`{name}`'s `{parameter}` must be greater than its `{low_name}`, and `{value:?}` is not above `{low:?}`: {instead}"
                    ),
                );
            }
        }
    }
}

/// Latents are real-valued, with a continuous prior; vector latents know
/// their length.
pub fn latent(
    cx: &Ctxt,
    ident: &syn::Ident,
    shape: &Shape,
    family: &Family,
    len: Option<&syn::Expr>,
) {
    if matches!(shape, Shape::Matrix) {
        // A correlation Cholesky factor: checked by `matrix_latent`.
        return;
    }
    if shape.elem() != Elem::Real {
        cx.error_spanned_by(
            ident,
            format!(
                "latent `{ident}` must be real-valued: declare it as f64, [f64; N] or Vec<f64>"
            ),
        );
    }
    if family.multivariate() && shape.is_scalar() && family.support != Support::CorrelationCholesky
    {
        cx.error_spanned_by(
            ident,
            format!(
                "`{}` is a distribution over vectors: `{ident}` must be a vector latent",
                family.name
            ),
        );
    }
    if family.discrete() {
        cx.error_spanned_by(
            ident,
            format!("latent `{ident}` has the discrete prior `{}`: discrete latents cannot be fitted by gradients; marginalise them with a `factor`", family.name),
        );
    }
    match (shape, len) {
        (Shape::Vec(_), None) => cx.error_spanned_by(
            ident,
            format!("latent `{ident}` is a Vec: give its length from the data, e.g. `#[latent({}(...), len = y.len())]`", family.name),
        ),
        (Shape::Scalar(_) | Shape::Array(..), Some(len)) => {
            cx.error_spanned_by(len, "`len = ...` is for Vec latents; this latent's type fixes its shape")
        }
        _ => {}
    }
}

/// Observations match their likelihood: counts for discrete families,
/// reals for continuous ones, and an index exactly when the field is a
/// vector.
pub fn observed(
    cx: &Ctxt,
    ident: &syn::Ident,
    shape: &Shape,
    family: &Family,
    index: Option<&syn::Ident>,
) {
    if family.support == Support::CorrelationCholesky {
        cx.error_spanned_by(
            ident,
            format!(
                "`{}` is a prior over correlation Cholesky factors, not a likelihood: give it to a `DMatrix<f64>` latent with `dim = K`",
                family.name
            ),
        );
        return;
    }
    if family.multivariate() {
        if shape.is_scalar() || shape.elem() != Elem::Real {
            cx.error_spanned_by(ident, format!("`{}` is a distribution over vectors: declare `{ident}` as Vec<f64>, [f64; N] or DVector<f64>", family.name));
        }
        if let Some(i) = index {
            cx.error_spanned_by(
                i,
                format!(
                    "`{}` observes the whole vector `{ident}` at once: remove `for {i}`",
                    family.name
                ),
            );
        }
        return;
    }
    let discrete = family.discrete();
    match (discrete, shape.elem()) {
        _ if family.support == Support::User => {}
        (true, Elem::Real) => cx.error_spanned_by(
            ident,
            format!("`{}` is a distribution over counts: declare `{ident}` with an integer or bool element type", family.name),
        ),
        (false, Elem::Integer | Elem::Bool) => cx.error_spanned_by(
            ident,
            format!("`{}` is a continuous distribution: declare `{ident}` with f64 elements", family.name),
        ),
        _ => {}
    }
    match (shape.is_scalar(), index) {
        (false, None) => cx.error_spanned_by(
            ident,
            format!("`{ident}` has many elements: name an index for them, e.g. `#[observe({}(...), for i)]`", family.name),
        ),
        (true, Some(i)) => cx.error_spanned_by(i, format!("`{ident}` is a scalar: remove `for {i}`")),
        _ => {}
    }
}

/// Every name is declared once (for the model and the guide alike).
pub fn unique<'a>(
    cx: &Ctxt,
    idents: impl IntoIterator<Item = &'a syn::Ident>,
    message: impl Fn(&syn::Ident) -> String,
) {
    let mut seen = std::collections::BTreeSet::new();
    for ident in idents {
        if !seen.insert(ident.to_string()) {
            cx.error_spanned_by(ident, message(ident));
        }
    }
}

/// The methods a model gets (generated, or of the traits it implements):
/// a data field's read accessor, which has the field's name, would clash
/// with them or hide them.
const GENERATED_METHODS: &[&str] = &[
    "new",
    "from_json",
    "load_json",
    "from_stan_data",
    "typed_latents",
    "unconstrain",
    "latents",
    "sample_prior",
    "simulate",
    "derived_quantities",
    "layout",
    "log_joint",
    "log_joint_reference",
    "derived",
    "first_invalid_term",
    "dim",
];

/// Field names are declared once and are not the reserved names the
/// expansion uses (nor, for data, the names of the model's methods); an
/// index does not shadow a field.
pub fn names(cx: &Ctxt, model: &Model) {
    unique(cx, model.fields.iter().map(|f| &f.ident), |name| {
        format!("`{name}` is declared twice: give each field its own name")
    });
    for field in &model.fields {
        if field.ident.to_string().starts_with("__") {
            cx.error_spanned_by(
                &field.ident,
                "names starting with `__` are reserved for generated code",
            );
        }
        let name = field.ident.to_string();
        if matches!(field.role, Role::Data | Role::Observed { .. })
            && GENERATED_METHODS.contains(&name.as_str())
        {
            cx.error_spanned_by(
                &field.ident,
                format!(
                    "a data field is read through a method of its name, and the model already has a method `{name}`: rename the field"
                ),
            );
        }
        if let Role::Observed { index: Some(i), .. } = &field.role {
            if model.fields.iter().any(|f| f.ident == *i) {
                cx.error_spanned_by(
                    i,
                    format!("the index `{i}` shadows a field; choose another name"),
                );
            }
        }
    }
}

/// An index and a constraint belong to vector latents; a simplex takes the
/// flat (uniform) prior.
pub fn latent_options(
    cx: &Ctxt,
    ident: &syn::Ident,
    shape: &Shape,
    family: &Family,
    index: Option<&syn::Ident>,
    constraint: Option<&(Constraint, syn::Ident)>,
) {
    if shape.is_scalar() {
        if let Some(i) = index {
            cx.error_spanned_by(i, format!("`{ident}` is a scalar: remove `for {i}`"));
        }
        if let Some((_, name)) = constraint {
            cx.error_spanned_by(
                name,
                format!("`{ident}` is a scalar: the `{name}` constraint needs a vector latent"),
            );
        }
    }
    if let Some((Constraint::Simplex, name)) = constraint {
        if !family::is_flat(family.name) {
            cx.error_spanned_by(
                name,
                format!(
                    "a simplex latent takes the uniform prior `Flat()`, not `{}`",
                    family.name
                ),
            );
        }
    }
}

/// A matrix latent is a correlation Cholesky factor (Stan's
/// `cholesky_factor_corr[K]`): `DMatrix<f64>` with `dim = K`, the prior
/// `LkjCholesky(eta)` (or `Flat()` with `constraint = cholesky_corr`); `dim`,
/// `LkjCholesky` and `cholesky_corr` belong to matrix latents only.
pub fn matrix_latent(
    cx: &Ctxt,
    ident: &syn::Ident,
    (shape, family): (&Shape, &Family),
    (len, dim): (Option<&Expr>, Option<&Expr>),
    constraint: Option<&(Constraint, syn::Ident)>,
) {
    let lkj = family.support == Support::CorrelationCholesky;
    let cholesky = matches!(constraint, Some((Constraint::CholeskyCorr, _)));
    if !matches!(shape, Shape::Matrix) {
        if let Some(dim) = dim {
            cx.error_spanned_by(
                dim,
                "`dim = ...` is the order of a matrix latent (`DMatrix<f64>`); this latent's type fixes its shape",
            );
        }
        if lkj || (cholesky && !shape.is_scalar()) {
            cx.error_spanned_by(
                ident,
                format!(
                    "a correlation Cholesky factor is a matrix: declare `{ident}` as `DMatrix<f64>` with `dim = K`"
                ),
            );
        }
        return;
    }
    let flat_factor = cholesky && family::is_flat(family.name);
    if !(lkj || flat_factor) {
        let message = if cholesky {
            format!(
                "a correlation Cholesky factor takes the prior `LkjCholesky(eta)` or `Flat()`, not `{}`",
                family.name
            )
        } else {
            format!(
                "a matrix latent is a correlation Cholesky factor (Stan's `cholesky_factor_corr`): give `{ident}` the prior `LkjCholesky(eta)` and `dim = K`, or declare it as f64, [f64; N] or Vec<f64>"
            )
        };
        cx.error_spanned_by(ident, message);
        if !cholesky {
            return;
        }
    }
    if let Some(len) = len {
        cx.error_spanned_by(
            len,
            "`len = ...` is for Vec latents: give a matrix latent its order, `dim = K`",
        );
    }
    if dim.is_none() {
        cx.error_spanned_by(
            ident,
            format!("matrix latent `{ident}` needs its order: add `dim = K` (a K × K factor)"),
        );
    }
    if let Some((_, name)) = constraint.filter(|(c, _)| *c != Constraint::CholeskyCorr) {
        cx.error_spanned_by(
            name,
            format!("a matrix latent takes `constraint = cholesky_corr`, not `{name}`"),
        );
    }
}
