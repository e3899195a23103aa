//! Lowering: the parsed model becomes a checked [`Plan`]. Every rule is
//! checked and every name resolved here, errors reported into the context;
//! nothing here emits the model's code.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Ident};

use super::ast::{Constraint, DistCall, Elem, Field, Model, Role, Shape};
use super::check;
use super::plan::{
    Affine, Bounds, Data, DataParam, Dependent, DependentAffine, Derived, Latent, LatentSupport,
    LinearTerm, Observed, Plan, PlatePlan, Step, Transform,
};
use crate::ctxt::Ctxt;
use crate::family::{self, Family, Param, Support};
use crate::scope::{Binding, Bindings, Lower, Meaning};

/// The model's names: latents are locals (a matrix latent a local
/// matrix), data and observations fields of `self`. A field whose type is
/// unsupported (reported by `ast`) resolves to nothing, so that its uses
/// add no second error.
pub fn bindings(model: &Model) -> Bindings {
    let failed = model.failed.iter().map(|ident| Binding {
        ident: ident.clone(),
        meaning: Meaning::Failed,
    });
    let entries = model
        .fields
        .iter()
        .map(|f| Binding {
            ident: f.ident.clone(),
            meaning: match (&f.role, &f.shape) {
                (Role::Latent { .. } | Role::Data | Role::Observed { .. }, None) => Meaning::Failed,
                (Role::Latent { .. }, Some(Shape::Matrix)) => Meaning::LocalMatrix,
                (Role::Latent { .. }, Some(shape)) => Meaning::Local {
                    scalar: shape.is_scalar(),
                },
                (Role::Data | Role::Observed { .. }, Some(shape)) => Meaning::Data(shape.clone()),
                (Role::Factor(_), _) => Meaning::Factor,
                (Role::Derived { .. }, _) => Meaning::Derived,
                (Role::Param(_), shape) => super::param::meaning(shape.as_ref()),
                (Role::PriorMixing(_), shape) => {
                    super::semi_implicit_prior::meaning(shape.as_ref())
                }
                (Role::Transformed(_), shape) => super::transformed::meaning(shape.as_ref()),
            },
        })
        .chain(failed)
        .chain(super::factor::batch_bindings(model))
        .collect();
    Bindings {
        entries,
        vocabulary: "the model's data and latents",
    }
}

/// The plan of a model; a field that could not be lowered (the reason is
/// in `cx`) is left out.
pub fn plan<'a>(cx: &Ctxt, model: &'a Model, table: &Bindings) -> Plan<'a> {
    check::names(cx, model);
    let mut steps = Vec::new();
    for (position, field) in model.fields.iter().enumerate() {
        let step = match (&field.role, &field.shape) {
            (Role::Factor(args), _) => {
                super::factor::lower(cx, table, position, field, args).map(Step::Factor)
            }
            (_, None) | (Role::Data | Role::Param(_) | Role::PriorMixing(_), _) => None,
            (Role::Transformed(args), Some(shape)) => {
                super::transformed::lower(cx, table, position, field, shape, args)
                    .map(Step::Transformed)
            }
            (Role::Derived { expr, index }, Some(shape)) => {
                derived(cx, table, position, field, shape, expr, index.as_ref()).map(Step::Derived)
            }
            (Role::Latent { .. }, Some(shape)) => {
                latent(cx, table, position, field, shape).map(|l| Step::Latent(Box::new(l)))
            }
            (Role::Observed { likelihood, index }, Some(shape)) => observed(
                cx,
                table,
                position,
                field,
                shape,
                likelihood,
                index.as_ref(),
            )
            .map(Step::Observed),
        };
        steps.extend(step);
    }
    let data = model
        .fields
        .iter()
        .filter(|f| matches!(f.role, Role::Data | Role::Observed { .. }))
        .map(|field| Data {
            field,
            shape: field.shape.as_ref(),
        })
        .collect();
    super::semi_implicit_prior::attach(cx, model, table, &mut steps);
    let params = super::param::plan(cx, model, table);
    Plan {
        model,
        data,
        steps,
        params,
    }
}

fn derived<'a>(
    cx: &Ctxt,
    table: &Bindings,
    position: usize,
    field: &'a Field,
    shape: &'a Shape,
    expr: &Expr,
    index: Option<&'a Ident>,
) -> Option<Derived<'a>> {
    let mut lower = Lower::new(table.scope(position, index), cx);
    let value = lower.value(expr);
    let ident = &field.ident;
    let over = match (shape, index) {
        (Shape::Scalar(Elem::Real), None) => None,
        (Shape::Array(Elem::Real, n), Some(i)) => Some((i, n)),
        (Shape::Vec(Elem::Real), Some(_)) => {
            cx.error_spanned_by(
                ident,
                format!("a derived Vec needs a fixed length: declare `{ident}` as `[f64; N]`"),
            );
            return None;
        }
        _ => {
            cx.error_spanned_by(
                ident,
                format!("derived `{ident}` is an f64 (`#[derived(expr)]`) or an [f64; N] over an index (`#[derived(expr, for i)]`)"),
            );
            return None;
        }
    };
    Some(Derived {
        field,
        shape,
        value: value?,
        over,
        uses: lower.uses.names,
    })
}

fn latent<'a>(
    cx: &Ctxt,
    table: &Bindings,
    position: usize,
    field: &'a Field,
    shape: &'a Shape,
) -> Option<Latent<'a>> {
    let Role::Latent {
        prior,
        len,
        index,
        constraint,
        lower,
        upper,
        offset,
        multiplier,
        dim,
    } = &field.role
    else {
        unreachable!("called on latents")
    };
    let ident = &field.ident;
    let family = check::distribution(cx, prior)?;
    check::latent(cx, ident, shape, family, len.as_ref());
    check::matrix_latent(
        cx,
        ident,
        (shape, family),
        (len.as_ref(), dim.as_ref()),
        constraint.as_ref(),
    );
    check::latent_options(
        cx,
        ident,
        shape,
        family,
        index.as_ref(),
        constraint.as_ref(),
    );
    let mut values = Lower::new(table.scope(position, index.as_ref()), cx);
    let order = dim
        .as_ref()
        .filter(|_| matches!(shape, Shape::Matrix))
        .map(|d| {
            let raw = Lower::new(table.data_scope(), cx).raw(d)?;
            Some(quote!(((#raw) as usize)))
        });
    let new = if family::is_flat(family.name) {
        Some(None)
    } else if family.support == Support::CorrelationCholesky {
        // `LkjCholesky::new(K, eta)`: the order is the latent's `dim`.
        let shape_arg = values.value(&prior.args[0]);
        let order = order.clone().flatten();
        let span = prior.tokens.span();
        order.zip(shape_arg).map(|(k, eta)| {
            Some(quote_spanned!(span=> ::iwhvi::__private::distributions::LkjCholesky::new(#k, #eta)))
        })
    } else {
        constructor(&mut values, family, prior).map(Some)
    };
    let default = default_transform(cx, table, family, prior);
    let given = Given {
        lower: lower.as_ref(),
        upper: upper.as_ref(),
        offset: offset.as_ref(),
        multiplier: multiplier.as_ref(),
    };
    let options = options(
        cx,
        table,
        &mut values,
        (ident, shape, family),
        index.as_ref(),
        constraint.as_ref(),
        given,
    );
    let (len, order) = match (shape, order) {
        (Shape::Matrix, Some(order)) => {
            let order = order?;
            (Some(quote!((#order * #order))), Some(order))
        }
        // Reported by `check::matrix_latent`.
        (Shape::Matrix, None) => return None,
        _ => (length(cx, table, shape, len.as_ref()), None),
    };
    let constraint = constraint.as_ref().map(|(c, _)| *c);
    let (new, default, len, options) = (new?, default?, len?, options.ok()?);
    let transform = match (constraint, options.fixed) {
        (Some(c), _) => Transform::CoreSupport(
            Support::of_constraint(c)
                .core_type()
                .expect("a constraint's support is one of core's"),
        ),
        (None, Some(t)) => t,
        (None, None) => default,
    };
    let support = support(family, constraint, options.bounds.is_some());
    Some(Latent {
        field,
        shape,
        family,
        prior: new,
        transform,
        bounds: options.bounds,
        per_element: options.per_element,
        same_length: options.same_length,
        affine: options.affine,
        len,
        order,
        index: index.as_ref(),
        constraint,
        support,
        data_params: data_params(table, family, prior, index.as_ref()),
        uses: values.uses.names,
        mixing: None,
        constant_normal: constant_normal(family, prior),
    })
}

/// `(loc, scale)` of a prior written `Normal(a, b)` (the runtime's family)
/// with a number literal for each of `a` and `b` (`0.0`, `1`, `-2.5`), as
/// `f64` expressions; `None` for anything else.
fn constant_normal(family: &Family, prior: &DistCall) -> Option<(TokenStream, TokenStream)> {
    if family.name != "Normal" || prior.user.is_some() {
        return None;
    }
    let [loc, scale] = prior.args.as_slice() else {
        return None;
    };
    let number = |arg: &Expr| -> Option<TokenStream> {
        let (negative, lit) = match arg {
            Expr::Unary(syn::ExprUnary {
                op: syn::UnOp::Neg(_),
                expr,
                attrs,
            }) if attrs.is_empty() => (true, &**expr),
            other => (false, other),
        };
        let Expr::Lit(syn::ExprLit { lit, attrs }) = lit else {
            return None;
        };
        let value: f64 = match lit {
            syn::Lit::Float(f) if attrs.is_empty() && matches!(f.suffix(), "" | "f64") => {
                f.base10_parse().ok()?
            }
            syn::Lit::Int(i) if attrs.is_empty() && i.suffix().is_empty() => {
                i.base10_parse::<u32>().ok()?.into()
            }
            _ => return None,
        };
        // A literal is written non-negative; a minus sign negates it.
        Some(if negative {
            quote!((-#value))
        } else {
            quote!(#value)
        })
    };
    Some((number(loc)?, number(scale)?))
}

/// What the guide is told about a latent's support: the support of its
/// constraint (`Support::of_constraint`) or of its prior, as the guide
/// sees it, or `Bounded` for Stan-style bounds.
fn support(family: &Family, constraint: Option<Constraint>, bounded: bool) -> LatentSupport {
    if bounded && constraint.is_none() {
        return LatentSupport::Bounded;
    }
    match constraint.map_or(family.support, Support::of_constraint) {
        Support::Positive => LatentSupport::Positive,
        Support::UnitInterval => LatentSupport::Unit,
        Support::Interval => LatentSupport::Bounded,
        Support::Simplex => LatentSupport::Simplex,
        Support::Ordered => LatentSupport::Ordered,
        Support::PositiveOrdered => LatentSupport::PositiveOrdered,
        Support::CorrelationCholesky => LatentSupport::CholeskyCorr,
        Support::User => LatentSupport::User,
        Support::Real
        | Support::RealVector
        | Support::NonNegativeInteger
        | Support::Binary
        | Support::BoundedCount => LatentSupport::Real,
    }
}

/// The default transform of the prior's support.
fn default_transform(
    cx: &Ctxt,
    table: &Bindings,
    family: &Family,
    call: &DistCall,
) -> Option<Transform> {
    if let Some(path) = &call.user {
        return Some(Transform::UserSupport(path.clone(), call.tokens.span()));
    }
    if family.support != Support::Interval {
        return family.support.core_type().map(Transform::CoreSupport);
    }
    let mut fixed = Lower::new(table.data_scope(), cx);
    let (low, high) = (fixed.raw(&call.args[0]), fixed.raw(&call.args[1]));
    let (low, high) = (low?, high?);
    Some(Transform::Interval(
        quote!((#low) as f64),
        quote!((#high) as f64),
    ))
}

/// A vector latent's length, as a `usize` over the data.
fn length(cx: &Ctxt, table: &Bindings, shape: &Shape, len: Option<&Expr>) -> Option<TokenStream> {
    Some(match (shape, len) {
        (Shape::Scalar(_), _) => quote!(1usize),
        (Shape::Array(_, n), _) => quote!((#n) as usize),
        (Shape::Vec(_), Some(len)) => {
            let raw = Lower::new(table.data_scope(), cx).raw(len)?;
            quote!((#raw) as usize)
        }
        // Reported by `check::latent`, which `latent` calls first.
        (Shape::Vec(_), None) | (Shape::Matrix, _) => return None,
    })
}

/// `Family::new(args…)` with each argument in its context.
pub fn constructor(lower: &mut Lower<'_>, family: &Family, call: &DistCall) -> Option<TokenStream> {
    let name = &call.name;
    let span = call.tokens.span();
    if let Some(path) = &call.user {
        let args: Vec<_> = call.args.iter().map(|arg| lower.value(arg)).collect();
        let args: Vec<TokenStream> = args.into_iter().collect::<Option<_>>()?;
        return Some(quote_spanned!(span=> #path::new(#(#args),*)));
    }
    let (type_name, method) = family.constructor();
    let (type_name, method) = (
        Ident::new(type_name, name.span()),
        Ident::new(method, name.span()),
    );
    let nalgebra_vector = family.name.starts_with("MultivariateNormal");
    let args: Vec<Option<TokenStream>> = call
        .args
        .iter()
        .zip(family.params)
        .map(|(arg, (_, kind, _))| match kind {
            Param::Real => lower.value(arg),
            Param::Count => {
                let raw = lower.raw(arg)?;
                Some(quote_spanned!(arg.span()=> ((#raw) as u64)))
            }
            Param::Vector if nalgebra_vector => {
                let vector = lower.vector(arg)?;
                Some(
                    quote_spanned!(arg.span()=> ::iwhvi::__private::nalgebra::DVector::from_vec(#vector)),
                )
            }
            Param::Vector => lower.vector(arg),
            Param::Matrix => lower.matrix(arg),
        })
        .collect();
    let args: Vec<TokenStream> = args.into_iter().collect::<Option<_>>()?;
    Some(quote_spanned!(span=> ::iwhvi::__private::distributions::#type_name::#method(#(#args),*)))
}

/// Bounds with the transform of fixed (data-only) ones.
type Bounded = Option<(Bounds, Option<Transform>)>;

/// A latent's `lower`, `upper`, `offset` and `multiplier`, as written.
#[derive(Clone, Copy)]
struct Given<'e> {
    lower: Option<&'e Expr>,
    upper: Option<&'e Expr>,
    offset: Option<&'e Expr>,
    multiplier: Option<&'e Expr>,
}

/// What a latent's `lower`/`upper`/`offset`/`multiplier` make of it.
#[derive(Default)]
struct Options {
    bounds: Option<Bounds>,
    /// The transform shared by every element, when the options fix one.
    fixed: Option<Transform>,
    per_element: Option<TokenStream>,
    same_length: Vec<String>,
    affine: Option<DependentAffine>,
}

/// Reads the transform options of a latent: `Ok(Options::default())`
/// without any, `Err` (the reason in `cx`) when they are wrong.
fn options(
    cx: &Ctxt,
    table: &Bindings,
    values: &mut Lower<'_>,
    (ident, shape, family): (&Ident, &Shape, &Family),
    index: Option<&Ident>,
    constraint: Option<&(Constraint, Ident)>,
    given: Given<'_>,
) -> Result<Options, ()> {
    let bounded = given.lower.is_some() || given.upper.is_some();
    let affine = given.offset.is_some() || given.multiplier.is_some();
    if !bounded && !affine {
        return Ok(Options::default());
    }
    let read = [
        ("lower", given.lower),
        ("upper", given.upper),
        ("offset", given.offset),
        ("multiplier", given.multiplier),
    ];
    if let Some((at, message)) = super::transformed::in_bound(table, ident, read) {
        cx.error_spanned_by(&at, message);
        return Err(());
    }
    if bounded && affine {
        cx.error_spanned_by(
            ident,
            format!(
                "`{ident}` has bounds and an offset/multiplier: keep one of the two transforms"
            ),
        );
        return Err(());
    }
    if let Some((_, name)) = constraint {
        cx.error_spanned_by(
            name,
            format!("`{ident}` has the `{name}` constraint, which fixes its transform: it takes no `lower`, `upper`, `offset` or `multiplier`"),
        );
        return Err(());
    }
    if family.support == Support::Simplex {
        cx.error_spanned_by(
            ident,
            format!(
                "`{ident}` lies on the simplex under `{}`: it takes no `lower`, `upper`, `offset` or `multiplier`",
                family.name
            ),
        );
        return Err(());
    }
    if matches!(shape, Shape::Matrix) || family.support == Support::CorrelationCholesky {
        cx.error_spanned_by(
            ident,
            format!("`{ident}` is a correlation Cholesky factor: it takes no `lower`, `upper`, `offset` or `multiplier`"),
        );
        return Err(());
    }
    if affine {
        if !matches!(family.support, Support::Real | Support::RealVector) {
            cx.error_spanned_by(
                ident,
                format!(
                    "`offset`/`multiplier` is for latents on the whole real line; `{ident}` has the prior `{}`",
                    family.name
                ),
            );
            return Err(());
        }
        return affine_options(cx, table, values, ident, shape, index, given);
    }
    if !shape.is_scalar() {
        return vector_bounds(cx, table, ident, index, given);
    }
    let bounded = bounds(cx, table, values, ident, given.lower, given.upper)?;
    Ok(match bounded {
        Some((bounds, fixed)) => Options {
            bounds: Some(bounds),
            fixed,
            ..Options::default()
        },
        None => Options::default(),
    })
}

/// True when `expr` is the name of a data vector.
fn is_data_vector(table: &Bindings, expr: &Expr) -> bool {
    crate::scope::single_ident(expr).is_some_and(|ident| {
        table.entries.iter().any(|b| {
            b.ident == *ident && matches!(&b.meaning, Meaning::Data(shape) if !shape.is_scalar())
        })
    })
}

/// True when an option of a vector latent differs by element: a data
/// vector, or an expression of the latent's index.
fn per_element(table: &Bindings, index: Option<&Ident>, expr: &Expr) -> bool {
    is_data_vector(table, expr)
        || index.is_some_and(|i| crate::scope::first_mention(expr, |x| x == i).is_some())
}

/// Data-only options of a vector latent's elements, as `f64` expressions
/// of element `__k` (with the latent's index bound to it): a data vector
/// `v` reads `v[__k]`. Records the data vectors read at the element.
fn element_values(
    cx: &Ctxt,
    table: &Bindings,
    (index, element): (Option<&Ident>, bool),
    exprs: &[Option<&Expr>],
    same_length: &mut Vec<String>,
) -> Result<Vec<Option<TokenStream>>, ()> {
    let k = syn::Ident::new("__k", proc_macro2::Span::call_site());
    let at = index.unwrap_or(&k);
    let mut fixed = Lower::new(table.data_scope_at(element.then_some(at)), cx);
    let lowered: Vec<Result<Option<TokenStream>, ()>> = exprs
        .iter()
        .map(|e| {
            e.map(|e| {
                let read = if element && is_data_vector(table, e) {
                    let read: Expr = syn::parse_quote_spanned!(e.span()=> #e[#at]);
                    fixed.raw(&read)
                } else {
                    fixed.raw(e)
                };
                read.map(|r| quote!((#r) as f64)).ok_or(())
            })
            .transpose()
        })
        .collect();
    same_length.extend(fixed.uses.indexed_by_loop.iter().cloned());
    lowered.into_iter().collect()
}

/// `lower`/`upper` of a vector latent: computed from data, shared by the
/// elements or given per element.
fn vector_bounds(
    cx: &Ctxt,
    table: &Bindings,
    ident: &Ident,
    index: Option<&Ident>,
    given: Given<'_>,
) -> Result<Options, ()> {
    let sides = [given.lower, given.upper];
    if let Some(e) = sides.iter().flatten().find(|e| mentions_latent(table, e)) {
        cx.error_spanned_by(
            e,
            format!("the bounds of the vector latent `{ident}` are computed from data alone: bounds that move with other latents are for scalar latents"),
        );
        return Err(());
    }
    let t = quote!(::iwhvi::__private::Transform);
    let transform = |low: Option<TokenStream>, high: Option<TokenStream>| match (low, high) {
        (Some(l), Some(h)) => {
            let expr = quote!(#t::Interval { low: #l, high: #h });
            (Transform::Interval(l, h), expr)
        }
        (Some(l), None) => {
            let expr = quote!(#t::LowerBound { low: #l });
            (Transform::LowerBound(l), expr)
        }
        (None, Some(h)) => {
            let expr = quote!(#t::UpperBound { high: #h });
            (Transform::UpperBound(h), expr)
        }
        (None, None) => unreachable!("checked by the caller"),
    };
    let mut options = Options::default();
    let each = sides.iter().flatten().any(|e| per_element(table, index, e));
    let values = element_values(cx, table, (index, true), &sides, &mut options.same_length)?;
    let (low, high) = (values[0].clone(), values[1].clone());
    let (fixed, expr) = transform(low.clone(), high.clone());
    options.bounds = Some(Bounds {
        low,
        high,
        dependent: None,
    });
    if each {
        // Any elementwise transform keeps the dimension; the layout reads
        // the elements' own.
        options.fixed = Some(Transform::CoreSupport("Real"));
        options.per_element = Some(expr);
    } else {
        options.fixed = Some(fixed);
    }
    Ok(options)
}

/// `offset`/`multiplier` (Stan's affine transform): from data (shared by
/// the elements or per element), or affine in earlier scalar latents and
/// shared by the elements.
fn affine_options(
    cx: &Ctxt,
    table: &Bindings,
    values: &mut Lower<'_>,
    ident: &Ident,
    shape: &Shape,
    index: Option<&Ident>,
    given: Given<'_>,
) -> Result<Options, ()> {
    let sides = [given.offset, given.multiplier];
    let mut options = Options::default();
    if sides.iter().flatten().any(|e| mentions_latent(table, e)) {
        if let Some(e) = sides
            .iter()
            .flatten()
            .find(|e| per_element(table, index, e))
        {
            cx.error_spanned_by(
                e,
                format!("an offset or multiplier of `{ident}` that depends on other latents is shared by its elements: it cannot read the element's index or a whole vector"),
            );
            return Err(());
        }
        let describe = |e: Option<&Expr>, default: f64| {
            match e {
            None => Ok(Affine {
                constant: default,
                terms: Vec::new(),
            }),
            Some(e) => affine(table, e).ok_or_else(|| {
                cx.error_spanned_by(
                    e,
                    "an offset or multiplier that depends on other latents must be affine in them with literal coefficients, e.g. `mu` or `2.0 * tau`",
                );
            }),
        }
        };
        let (offset_affine, multiplier_affine) =
            (describe(given.offset, 0.0), describe(given.multiplier, 1.0));
        let (offset_affine, multiplier_affine) = (offset_affine?, multiplier_affine?);
        let mut value = |e: Option<&Expr>, default: f64| match e {
            None => Ok(quote!(<__T as ::iwhvi::__private::Scalar>::constant(#default))),
            Some(e) => values.value(e).ok_or(()),
        };
        let (offset, multiplier) = (value(given.offset, 0.0), value(given.multiplier, 1.0));
        options.affine = Some(DependentAffine {
            offset: offset?,
            multiplier: multiplier?,
            offset_affine,
            multiplier_affine,
        });
        options.fixed = Some(Transform::CoreSupport("Real"));
        return Ok(options);
    }
    let each = !shape.is_scalar() && sides.iter().flatten().any(|e| per_element(table, index, e));
    let element = (index, !shape.is_scalar());
    let raw = element_values(cx, table, element, &sides, &mut options.same_length)?;
    let offset = raw[0].clone().unwrap_or(quote!(0.0f64));
    let multiplier = raw[1].clone().unwrap_or(quote!(1.0f64));
    if each {
        let t = quote!(::iwhvi::__private::Transform);
        options.per_element = Some(quote!(#t::Affine { offset: #offset, multiplier: #multiplier }));
        options.fixed = Some(Transform::CoreSupport("Real"));
    } else {
        options.same_length.clear();
        options.fixed = Some(Transform::Affine(offset, multiplier));
    }
    Ok(options)
}

/// Reads `lower = …`, `upper = …` of a scalar latent: `Ok(None)` without
/// bounds, `Err` (the reason in `cx`) when they are wrong.
fn bounds(
    cx: &Ctxt,
    table: &Bindings,
    values: &mut Lower<'_>,
    ident: &Ident,
    lower: Option<&Expr>,
    upper: Option<&Expr>,
) -> Result<Bounded, ()> {
    if lower.is_none() && upper.is_none() {
        return Ok(None);
    }
    let dependent = [lower, upper]
        .into_iter()
        .flatten()
        .any(|e| mentions_latent(table, e));
    if dependent {
        return dependent_bounds(cx, table, values, ident, lower, upper).map(|b| Some((b, None)));
    }
    let mut fixed = Lower::new(table.data_scope(), cx);
    let mut raw = |e: Option<&Expr>| -> Result<Option<TokenStream>, ()> {
        e.map(|e| fixed.raw(e).map(|r| quote!((#r) as f64)).ok_or(()))
            .transpose()
    };
    let (low_raw, high_raw) = (raw(lower), raw(upper));
    let (low_raw, high_raw) = (low_raw?, high_raw?);
    let mut value = |e: Option<&Expr>| -> Result<Option<TokenStream>, ()> {
        e.map(|e| values.value(e).ok_or(())).transpose()
    };
    let (low, high) = (value(lower), value(upper));
    let transform = match (low_raw, high_raw) {
        (Some(l), Some(h)) => Transform::Interval(l, h),
        (Some(l), None) => Transform::LowerBound(l),
        (None, Some(h)) => Transform::UpperBound(h),
        (None, None) => unreachable!("checked above"),
    };
    let bounds = Bounds {
        low: low?,
        high: high?,
        dependent: None,
    };
    Ok(Some((bounds, Some(transform))))
}

/// Bounds that move with earlier latents: both sides, affine in them.
fn dependent_bounds(
    cx: &Ctxt,
    table: &Bindings,
    values: &mut Lower<'_>,
    ident: &Ident,
    lower: Option<&Expr>,
    upper: Option<&Expr>,
) -> Result<Bounds, ()> {
    let (Some(lower), Some(upper)) = (lower, upper) else {
        cx.error_spanned_by(
            ident,
            format!(
                "bounds of `{ident}` that depend on other latents need both `lower` and `upper`"
            ),
        );
        return Err(());
    };
    let describe = |e: &Expr| {
        let affine = affine(table, e);
        if affine.is_none() {
            cx.error_spanned_by(
                e,
                "a bound that depends on other latents must be affine in them with literal coefficients, e.g. `1.0 - alpha1`",
            );
        }
        affine.ok_or(())
    };
    let (low_affine, high_affine) = (describe(lower)?, describe(upper)?);
    let (low, high) = (values.value(lower), values.value(upper));
    let (low, high) = (low.ok_or(())?, high.ok_or(())?);
    Ok(Bounds {
        low: Some(low.clone()),
        high: Some(high.clone()),
        dependent: Some(Dependent {
            low,
            high,
            low_affine,
            high_affine,
        }),
    })
}

/// True when an expression mentions a latent.
fn mentions_latent(table: &Bindings, expr: &Expr) -> bool {
    crate::scope::first_mention(expr, |i| is_latent(table, i)).is_some()
}

/// True for a latent, and for a transformed value (a function of latents):
/// `affine` takes latents alone.
fn is_latent(table: &Bindings, ident: &Ident) -> bool {
    table.entries.iter().any(|b| {
        b.ident == *ident
            && matches!(
                b.meaning,
                Meaning::Local { .. } | Meaning::LocalMatrix | Meaning::Transformed { .. }
            )
    })
}

/// `constant + Σ coefficient · latent` with literal numbers, if the
/// expression has that form.
fn affine(table: &Bindings, expr: &Expr) -> Option<Affine> {
    use syn::{BinOp, Lit, UnOp};
    let scale = |a: Affine, k: f64| Affine {
        constant: a.constant * k,
        terms: a.terms.into_iter().map(|(n, v)| (n, v * k)).collect(),
    };
    let sum = |l: Affine, r: Affine| Affine {
        constant: l.constant + r.constant,
        terms: [l.terms, r.terms].concat(),
    };
    let constant = |constant| Affine {
        constant,
        terms: Vec::new(),
    };
    match expr {
        Expr::Lit(l) => match &l.lit {
            Lit::Float(f) => f.base10_parse().ok().map(constant),
            Lit::Int(i) => i.base10_parse::<i64>().ok().map(|v| constant(v as f64)),
            _ => None,
        },
        Expr::Path(p) => {
            let ident = p.path.get_ident()?;
            let transformed = super::transformed::is_transformed(table, ident);
            (is_latent(table, ident) && !transformed).then(|| Affine {
                constant: 0.0,
                terms: vec![(ident.to_string(), 1.0)],
            })
        }
        Expr::Paren(p) => affine(table, &p.expr),
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => {
            affine(table, &u.expr).map(|a| scale(a, -1.0))
        }
        Expr::Binary(b) => {
            let (left, right) = (affine(table, &b.left)?, affine(table, &b.right)?);
            match b.op {
                BinOp::Add(_) => Some(sum(left, right)),
                BinOp::Sub(_) => Some(sum(left, scale(right, -1.0))),
                BinOp::Mul(_) if left.terms.is_empty() => Some(scale(right, left.constant)),
                BinOp::Mul(_) if right.terms.is_empty() => Some(scale(left, right.constant)),
                _ => None,
            }
        }
        _ => None,
    }
}

fn observed<'a>(
    cx: &Ctxt,
    table: &Bindings,
    position: usize,
    field: &'a Field,
    shape: &'a Shape,
    likelihood: &DistCall,
    index: Option<&'a Ident>,
) -> Option<Observed<'a>> {
    let family = check::distribution(cx, likelihood)?;
    check::observed(cx, &field.ident, shape, family, index);
    let mut lower = Lower::new(table.scope(position, index), cx);
    let new = constructor(&mut lower, family, likelihood)?;
    let name = field.ident.to_string();
    let same_length = if family.multivariate() {
        Vec::new()
    } else {
        lower
            .uses
            .indexed_by_loop
            .iter()
            .filter(|other| **other != name)
            .cloned()
            .collect()
    };
    let plate = plate(table, position, field, shape, family, likelihood, index);
    Some(Observed {
        field,
        shape,
        family,
        likelihood: new,
        index,
        same_length,
        plate,
        data_params: data_params(table, family, likelihood, index),
        uses: lower.uses.names,
    })
}

/// The expression inside parentheses and invisible groups.
fn unwrap(mut e: &Expr) -> &Expr {
    loop {
        match e {
            Expr::Paren(p) => e = &p.expr,
            Expr::Group(g) => e = &g.expr,
            other => return other,
        }
    }
}

/// The parameters of a call that are data: a scalar data field, a data
/// vector indexed by the attribute's index, or (for a vector parameter) a
/// whole data vector, of real or integer elements. Anything computed from
/// data is left to the distribution's constructor.
fn data_params(
    table: &Bindings,
    family: &Family,
    call: &DistCall,
    index: Option<&Ident>,
) -> Vec<DataParam> {
    if call.user.is_some() {
        return Vec::new();
    }
    let data = |ident: &Ident| {
        table.entries.iter().find_map(|b| match &b.meaning {
            Meaning::Data(shape) if b.ident == *ident && shape.elem() != Elem::Bool => {
                Some(shape.clone())
            }
            _ => None,
        })
    };
    call.args
        .iter()
        .zip(family.params)
        .filter_map(|(arg, &(parameter, kind, domain))| {
            let arg = unwrap(arg);
            let (ident, scalar) = match (arg, kind) {
                (Expr::Index(i), Param::Real | Param::Count) => {
                    let base = crate::scope::single_ident(unwrap(&i.expr))?;
                    let at = crate::scope::single_ident(unwrap(&i.index))?;
                    (Some(at) == index).then_some((base, false))?
                }
                (Expr::Path(_), Param::Real | Param::Count) => {
                    (crate::scope::single_ident(arg)?, true)
                }
                (Expr::Path(_), Param::Vector) => (crate::scope::single_ident(arg)?, false),
                _ => return None,
            };
            let shape = data(ident)?;
            let fits = match (kind, &shape) {
                (Param::Vector, Shape::Vec(_) | Shape::Array(..)) => true,
                (_, Shape::Scalar(_)) => scalar,
                (_, Shape::Vec(_) | Shape::Array(..)) => !scalar,
                _ => false,
            };
            (fits && domain.data_check().is_some()).then(|| DataParam {
                data: ident.clone(),
                scalar,
                parameter,
                domain,
            })
        })
        .collect()
}

/// The families whose plates run as kernels (`FamilyKernel` in
/// iwhvi-core's plate driver): every univariate built-in family with a
/// density; the flat families have no term, the multivariate and user ones
/// keep the scalar loop.
const KERNEL_FAMILIES: &[&str] = &[
    "Normal",
    "LogNormal",
    "HalfNormal",
    "Cauchy",
    "HalfCauchy",
    "StudentT",
    "Laplace",
    "Logistic",
    "Exponential",
    "Gamma",
    "InverseGamma",
    "Beta",
    "Uniform",
    "Weibull",
    "Bernoulli",
    "BernoulliLogit",
    "Binomial",
    "BinomialLogit",
    "Poisson",
    "PoissonLog",
    "NegativeBinomial2",
];

/// An observed vector as one plate-driver call, when that is sure to mean
/// the same as the scalar loop: a built-in univariate family with a kernel,
/// a vector of observations over `for i`, element types the family
/// observes, every argument lowered without a mistake. Anything else, `None`
/// (the scalar loop).
fn plate(
    table: &Bindings,
    position: usize,
    field: &Field,
    shape: &Shape,
    family: &Family,
    call: &DistCall,
    index: Option<&Ident>,
) -> Option<PlatePlan> {
    let index = index?;
    if call.user.is_some() || family.multivariate() || !KERNEL_FAMILIES.contains(&family.name) {
        return None;
    }
    let elem = match shape {
        Shape::Vec(elem) | Shape::Array(elem, _) => *elem,
        Shape::Scalar(_) | Shape::Matrix => return None,
    };
    match (family.discrete(), elem) {
        (false, Elem::Real) | (true, Elem::Integer | Elem::Bool) => {}
        _ => return None,
    }
    // A second lowering, into a context of its own: the first one (the
    // scalar loop's) succeeded, so this one reports nothing; should it
    // report anything, the plate is dropped.
    let cx = Ctxt::default();
    let mut lower = Lower::new(table.scope(position, Some(index)), &cx);
    let mut args = Vec::new();
    let mut count = None;
    let mut failed = call.args.len() != family.params.len();
    for (arg, (_, kind, _)) in call.args.iter().zip(family.params) {
        match kind {
            Param::Real => match lower.value(arg) {
                Some(v) => args.push(v),
                None => failed = true,
            },
            Param::Count if count.is_none() => match lower.raw(arg) {
                Some(c) => count = Some(c),
                None => failed = true,
            },
            _ => failed = true,
        }
    }
    let uses = lower.uses.names;
    // A matrix latent is no operand of the plate driver: the scalar loop.
    let reads_matrix = table
        .entries
        .iter()
        .any(|b| matches!(b.meaning, Meaning::LocalMatrix) && uses.contains(&b.ident.to_string()));
    if cx.check().is_err() || failed || args.is_empty() || reads_matrix {
        return None;
    }
    // A plate seeds the latents it reads; one that reads a learned
    // parameter keeps the scalar loop (generic over the scalar, so the
    // parameter's derivatives flow through it).
    if super::param::reads_param(table, &uses) {
        return None;
    }
    let operands: Vec<(Ident, bool)> = table
        .entries
        .iter()
        .filter(|b| uses.contains(&b.ident.to_string()))
        .filter_map(|b| match b.meaning {
            Meaning::Local { scalar } | Meaning::Transformed { scalar } => {
                Some((b.ident.clone(), scalar))
            }
            _ => None,
        })
        .collect();
    let linear = {
        let cx = Ctxt::default();
        let mut lower = Lower::new(table.scope(position, Some(index)), &cx);
        let terms: Option<Vec<Vec<LinearTerm>>> = call
            .args
            .iter()
            .zip(family.params)
            .filter(|(_, (_, kind, _))| *kind == Param::Real)
            .map(|(arg, _)| derivative(&mut lower, table, &operands, arg))
            .collect();
        if cx.check().is_err() { None } else { terms }
    };
    let ident = &field.ident;
    let element = match elem {
        Elem::Real => quote!((self.#ident[#index]) as f64),
        Elem::Integer => quote!((self.#ident[#index]) as u64),
        Elem::Bool => {
            quote!(<::core::primitive::u64 as ::core::convert::From<bool>>::from(self.#ident[#index]))
        }
    };
    let (obs, obs_ty) = match (count, elem) {
        (Some(c), _) => (quote!(((#c) as u64, #element)), quote!((u64, u64))),
        (None, Elem::Real) => (element, quote!(f64)),
        (None, _) => (element, quote!(u64)),
    };
    Some(PlatePlan {
        family: Ident::new(family.constructor().0, call.name.span()),
        args,
        obs,
        obs_ty,
        operands,
        linear,
    })
}

/// The derivative terms of an argument affine in the operands with data
/// coefficients (`c + a₁·r₁ + …`, `r` a scalar latent or an element of a
/// vector latent at an index computed from data); `None` for anything else
/// (a product of latents, a function of one, a helper method), which then
/// takes the dual path.
fn derivative(
    lower: &mut Lower<'_>,
    table: &Bindings,
    operands: &[(Ident, bool)],
    expr: &Expr,
) -> Option<Vec<LinearTerm>> {
    use syn::{BinOp, UnOp};
    if !mentions_latent(table, expr) {
        return Some(Vec::new());
    }
    let operand = |ident: &Ident| operands.iter().position(|(name, _)| name == ident);
    let scaled = |terms: Vec<LinearTerm>, factor: TokenStream| {
        terms
            .into_iter()
            .map(|t| {
                let c = t.coefficient;
                LinearTerm {
                    coefficient: quote!((#c) * (#factor)),
                    ..t
                }
            })
            .collect::<Vec<_>>()
    };
    match expr {
        Expr::Path(_) => {
            let ident = crate::scope::single_ident(expr)?;
            let k = operand(ident)?;
            operands[k].1.then(|| {
                vec![LinearTerm {
                    operand: k,
                    element: None,
                    coefficient: quote!(1.0f64),
                }]
            })
        }
        Expr::Index(index) => {
            let base = crate::scope::single_ident(&index.expr)?;
            let k = operand(base)?;
            if operands[k].1 || mentions_latent(table, &index.index) {
                return None;
            }
            let raw = lower.raw(&index.index)?;
            Some(vec![LinearTerm {
                operand: k,
                element: Some(quote!(::iwhvi::__private::as_index(#raw))),
                coefficient: quote!(1.0f64),
            }])
        }
        Expr::Paren(p) => derivative(lower, table, operands, &p.expr),
        Expr::Group(g) => derivative(lower, table, operands, &g.expr),
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => {
            let terms = derivative(lower, table, operands, &u.expr)?;
            Some(scaled(terms, quote!(-1.0f64)))
        }
        Expr::Binary(b) => match b.op {
            BinOp::Add(_) | BinOp::Sub(_) => {
                let mut left = derivative(lower, table, operands, &b.left)?;
                let mut right = derivative(lower, table, operands, &b.right)?;
                if matches!(b.op, BinOp::Sub(_)) {
                    right = scaled(right, quote!(-1.0f64));
                }
                left.append(&mut right);
                Some(left)
            }
            BinOp::Mul(_) if !mentions_latent(table, &b.left) => {
                let factor = lower.value(&b.left)?;
                let terms = derivative(lower, table, operands, &b.right)?;
                Some(scaled(terms, factor))
            }
            BinOp::Mul(_) if !mentions_latent(table, &b.right) => {
                let factor = lower.value(&b.right)?;
                let terms = derivative(lower, table, operands, &b.left)?;
                Some(scaled(terms, factor))
            }
            BinOp::Div(_) if !mentions_latent(table, &b.right) => {
                let divisor = lower.value(&b.right)?;
                let terms = derivative(lower, table, operands, &b.left)?;
                Some(scaled(terms, quote!(1.0f64 / (#divisor))))
            }
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lowered(input: syn::DeriveInput, test: impl FnOnce(&Plan<'_>)) {
        let cx = Ctxt::default();
        let model = Model::from_ast(&cx, &input).expect("a model");
        let table = bindings(&model);
        let plan = plan(&cx, &model, &table);
        test(&plan);
        cx.check().expect("no errors");
    }

    #[test]
    fn the_plan_has_each_fields_family_support_transform_and_names() {
        lowered(
            syn::parse_quote! {
                struct Schools {
                    #[data]
                    sigma: Vec<f64>,
                    #[latent(Normal(0.0, 5.0))]
                    mu: f64,
                    #[latent(HalfCauchy(5.0))]
                    tau: f64,
                    #[latent(Normal(mu, tau), len = sigma.len(), for j)]
                    theta: Vec<f64>,
                    #[latent(Flat(), lower = 0.0, upper = sigma[0])]
                    bounded: f64,
                    #[observe(Normal(theta[j], sigma[j]), for j)]
                    y: Vec<f64>,
                    #[derived(mu + tau)]
                    total: f64,
                }
            },
            |plan| {
                let latents: Vec<&Latent<'_>> = plan.latents().collect();
                let names: Vec<String> =
                    latents.iter().map(|l| l.field.ident.to_string()).collect();
                assert_eq!(names, ["mu", "tau", "theta", "bounded"]);
                assert_eq!(latents[1].family.name, "HalfCauchy");
                assert_eq!(latents[1].support, LatentSupport::Positive);
                assert!(matches!(
                    latents[1].transform,
                    Transform::CoreSupport("Positive")
                ));
                assert!(latents[2].uses.contains("mu") && latents[2].uses.contains("tau"));
                assert!(matches!(latents[3].transform, Transform::Interval(..)));
                assert_eq!(latents[3].support, LatentSupport::Bounded);
                assert!(latents[3].uses.contains("sigma"));
                let observed = plan.observations().next().expect("an observation");
                assert_eq!(observed.same_length, ["sigma"]);
                let plate = observed
                    .plate
                    .as_ref()
                    .expect("Normal over `for j` is a plate");
                assert_eq!(plate.family, "Normal");
                assert_eq!(plate.args.len(), 2);
                let operands: Vec<(String, bool)> = plate
                    .operands
                    .iter()
                    .map(|(name, scalar)| (name.to_string(), *scalar))
                    .collect();
                assert_eq!(operands, [("theta".to_string(), false)]);
                let linear = plate
                    .linear
                    .as_ref()
                    .expect("theta[j] and sigma[j] are affine");
                assert_eq!(linear[0].len(), 1);
                assert!(linear[1].is_empty(), "sigma[j] is data");
                assert!(observed.uses.contains("theta"));
                let derived = plan.derived().next().expect("a derived quantity");
                assert!(derived.uses.contains("mu") && derived.uses.contains("tau"));
            },
        );
    }

    #[test]
    fn plates_only_where_a_kernel_means_the_same() {
        lowered(
            syn::parse_quote! {
                struct M {
                    #[data]
                    cov: DMatrix<f64>,
                    #[data]
                    n: Vec<u64>,
                    #[latent(Normal(0.0, 1.0))]
                    mu: f64,
                    #[latent(Normal(0.0, 1.0), len = 2)]
                    centre: Vec<f64>,
                    #[observe(Normal(mu, 1.0))]
                    scalar: f64,
                    #[observe(MultivariateNormal(centre, cov))]
                    whole: Vec<f64>,
                    #[observe(user::Gumbel(mu, 1.0), for i)]
                    user_family: Vec<f64>,
                    #[observe(BinomialLogit(n[i], mu), for i)]
                    counts: Vec<u64>,
                    #[observe(Normal(mu * centre[i], mu.exp()), for i)]
                    nonlinear: Vec<f64>,
                }
            },
            |plan| {
                let plates: Vec<Option<Vec<String>>> = plan
                    .observations()
                    .map(|o| {
                        o.plate
                            .as_ref()
                            .map(|p| p.operands.iter().map(|(n, _)| n.to_string()).collect())
                    })
                    .collect();
                let both = || Some(vec!["mu".to_string(), "centre".to_string()]);
                assert_eq!(
                    plates,
                    [None, None, None, Some(vec!["mu".to_string()]), both()]
                );
                let linear: Vec<bool> = plan
                    .observations()
                    .filter_map(|o| o.plate.as_ref())
                    .map(|p| p.linear.is_some())
                    .collect();
                assert_eq!(linear, [true, false], "mu·centre[i] is bilinear");
            },
        );
    }

    #[test]
    fn a_mistake_lowers_to_nothing_and_is_reported_once() {
        let input: syn::DeriveInput = syn::parse_quote! {
            struct M {
                #[latent(Normal(0.0, 1.0))]
                mu: f64,
                #[observe(Normal(muu, 1.0))]
                y: f64,
            }
        };
        let cx = Ctxt::default();
        let model = Model::from_ast(&cx, &input).expect("a model");
        let table = bindings(&model);
        let plan = plan(&cx, &model, &table);
        assert_eq!(plan.steps.len(), 1);
        let error = cx.check().expect_err("an error");
        assert_eq!(error.into_iter().count(), 1);
    }

    #[test]
    #[should_panic(expected = "forgot to check for errors")]
    fn an_unchecked_context_panics() {
        let _cx = Ctxt::default();
    }
}
