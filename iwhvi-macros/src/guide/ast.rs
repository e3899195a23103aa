//! The guide struct as the macro sees it: each field with its part
//! (parameter, mixing variable, conditional), keeping the user's tokens for
//! error spans.

use syn::parse::{Parse, ParseStream};
use syn::{Expr, Ident, Token};

use crate::ctxt::Ctxt;
use crate::model::ast::{
    DistCall, Elem, Once, Shape, dist_attr, named_fields, one_role, parse_options, shape,
};

/// What a guide field is.
pub enum Part {
    Param {
        init: Expr,
        len: Option<Expr>,
    },
    Mixing {
        /// `None` for `#[mixing]` on a scalar.
        len: Option<Expr>,
        reverse: Option<(DistCall, Option<Ident>)>,
        /// `#[mixing(len = z, for j)]`: one coordinate per point `j` of
        /// the local latents (`per_point.rs`).
        per_point: Option<Ident>,
        /// `#[mixing(Normal(loc, scale), len = …)]`: a learned `q(ψ)`
        /// (`None`: `N(0, I)`), drawn `ψ = loc + scale·ε`.
        family: Option<Box<DistCall>>,
    },
    Conditional {
        call: DistCall,
        index: Option<Ident>,
        /// `#[unconstrained]`: the conditional is over the latent's
        /// unconstrained coordinates `u`, and `z = T(u)` is the latent's
        /// own transform.
        unconstrained: bool,
    },
    /// `#[encoder(...)] enc: Mlp` (`encoder.rs`).
    Encoder(super::encoder::EncoderArgs),
}

pub struct GuideField {
    pub ident: Ident,
    pub ty: syn::Type,
    pub shape: Option<Shape>,
    pub part: Part,
}

impl GuideField {
    pub fn is_scalar(&self) -> bool {
        self.shape.as_ref().is_some_and(Shape::is_scalar)
    }
}

/// `#[param(init = …, len = …)]`, each option once.
struct ParamArgs {
    init: Expr,
    len: Option<Expr>,
}

impl Parse for ParamArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let (mut init, mut len) = (Once::default(), Once::default());
        parse_options(input, |key, input| match key.to_string().as_str() {
            "init" => init.set(key, input.parse()?),
            "len" => len.set(key, input.parse()?),
            other => Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown option `{other}`: write `init = <value or normal(sd)>` and, for vectors, `len = <length>`"
                ),
            )),
        })?;
        let init = init.get().ok_or_else(|| {
            input.error("give the parameter's initial value: `#[param(init = 0.0)]`")
        })?;
        Ok(Self {
            init,
            len: len.get(),
        })
    }
}

/// `#[mixing(Family(…), len = …)]` as parsed: the family (optional,
/// first), `len` once, optionally `for j` last (a per-point mixing
/// variable).
struct MixingArgs {
    family: Option<Expr>,
    /// `None` on a scalar.
    len: Option<Expr>,
    per_point: Option<Ident>,
}

impl Parse for MixingArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let usage = "write `#[mixing(len = <dimension>)]`, or `#[mixing(Normal(<loc>, <scale>), len = <dimension>)]` for a learned q(ψ)";
        let mut len = Once::default();
        let mut per_point = None;
        let mut family = None;
        // A distribution first: anything but `len = …` and `for j`.
        let is_len = input.peek(Ident) && input.peek2(Token![=]);
        if !input.is_empty() && !is_len && !input.peek(Token![for]) {
            family = Some(input.parse::<Expr>()?);
            if input.parse::<Option<Token![,]>>()?.is_none() && !input.is_empty() {
                return Err(input.error(usage));
            }
        }
        while !input.is_empty() {
            if input.peek(Token![for]) {
                input.parse::<Token![for]>()?;
                per_point = Some(input.parse::<Ident>()?);
                if !input.is_empty() {
                    return Err(
                        input.error("`for j` comes last: `#[mixing(len = <local latent>, for j)]`")
                    );
                }
                break;
            }
            let key: Ident = input.parse()?;
            if key != "len" {
                return Err(syn::Error::new(key.span(), usage));
            }
            input.parse::<Token![=]>()?;
            len.set(&key, input.parse()?)?;
            if input.parse::<Option<Token![,]>>()?.is_none() {
                break;
            }
        }
        if !input.is_empty() {
            return Err(input.error(usage));
        }
        Ok(Self {
            family,
            len: len.get(),
            per_point,
        })
    }
}

/// The part an attribute gives: `None` when it is not a guide attribute,
/// `Some(None)` when it is one with a mistake (reported in `cx`).
fn part(cx: &Ctxt, attr: &syn::Attribute, field: &syn::Field) -> Option<Option<Part>> {
    let ident = field.ident.as_ref().expect("named");
    let name = attr.path().get_ident()?.to_string();
    Some(match name.as_str() {
        "param" => cx.ok(attr.parse_args::<ParamArgs>()).map(|a| Part::Param {
            init: a.init,
            len: a.len,
        }),
        "mixing" if matches!(attr.meta, syn::Meta::Path(_)) => {
            if shape(&field.ty).is_some_and(|s| s.is_scalar()) {
                Some(Part::Mixing {
                    len: None,
                    reverse: None,
                    per_point: None,
                    family: None,
                })
            } else {
                cx.error_spanned_by(attr, format!("mixing vector `{ident}` needs its dimension: write `#[mixing(len = <dimension>)]`"));
                None
            }
        }
        "mixing" => cx.ok(attr.parse_args::<MixingArgs>()).and_then(|args| {
            let scalar = shape(&field.ty).is_some_and(|s| s.is_scalar());
            if args.len.is_none() && !scalar {
                cx.error_spanned_by(attr, format!("mixing vector `{ident}` needs its dimension: write `#[mixing(len = <dimension>)]`"));
                return None;
            }
            let family = match args.family {
                Some(call) => Some(Box::new(crate::model::ast::dist_call(cx, call)?)),
                None => None,
            };
            Some(Part::Mixing {
                len: args.len,
                reverse: None,
                per_point: args.per_point,
                family,
            })
        }),
        "encoder" => cx
            .ok(attr.parse_args::<super::encoder::EncoderArgs>())
            .map(Part::Encoder),
        "latent" => dist_attr(cx, attr).map(|(call, index)| Part::Conditional {
            call,
            index,
            unconstrained: false,
        }),
        _ => return None,
    })
}

/// One field with its part, or `Err` (reported) without one: `Err(true)`
/// when the field has a role attribute with a mistake.
fn field(cx: &Ctxt, field: &syn::Field) -> Result<GuideField, bool> {
    let ident = field.ident.clone().expect("named");
    let mut reversed = Once::default();
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("reverse")) {
        if let Some(r) = dist_attr(cx, attr) {
            if let Err(e) = reversed.set(attr.path(), r) {
                cx.syn_error(e);
            }
        }
    }
    let two = format!(
        "guide field `{ident}` has more than one of #[param], #[mixing], #[latent]; keep one"
    );
    let none = format!(
        "guide field `{ident}` needs a role: `#[param(init = ...)]`, `#[mixing(len = ...)]` or `#[latent(Family(...))]`"
    );
    let mut unconstrained = None;
    for attr in field
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("unconstrained"))
    {
        if !matches!(attr.meta, syn::Meta::Path(_)) {
            cx.error_spanned_by(attr, "write `#[unconstrained]`, without arguments");
        } else if unconstrained.is_some() {
            cx.error_spanned_by(attr, "#[unconstrained] is given twice: keep one");
        }
        unconstrained.get_or_insert(attr);
    }
    let parse = |attr: &syn::Attribute| {
        if attr.path().is_ident("reverse") || attr.path().is_ident("unconstrained") {
            None
        } else {
            part(cx, attr, field)
        }
    };
    let (found, _) = one_role(cx, field, parse, (&two, &none))?;
    let mut part = match (found, reversed.get()) {
        (
            Part::Mixing {
                len,
                per_point,
                family,
                ..
            },
            reverse,
        ) => Part::Mixing {
            len,
            reverse,
            per_point,
            family,
        },
        (p, None) => p,
        (p, Some((call, _))) => {
            cx.error_spanned_by(&call.tokens, "#[reverse] belongs on a #[mixing] field");
            p
        }
    };
    match (&mut part, unconstrained) {
        (Part::Conditional { unconstrained, .. }, Some(_)) => *unconstrained = true,
        (_, Some(attr)) => {
            cx.error_spanned_by(attr, "#[unconstrained] belongs on a #[latent] field");
        }
        (_, None) => {}
    }
    if matches!(part, Part::Encoder(_)) {
        let is_mlp = matches!(&field.ty, syn::Type::Path(p) if p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Mlp" && s.arguments.is_none()));
        if !is_mlp {
            cx.error_spanned_by(
                &field.ty,
                format!("an encoder's type is `Mlp`: write the field as `{ident}: Mlp`"),
            );
            return Err(true);
        }
        return Ok(GuideField {
            ident,
            shape: None,
            ty: field.ty.clone(),
            part,
        });
    }
    let shape = shape(&field.ty).filter(|s| !matches!(s, Shape::Matrix) && s.elem() == Elem::Real);
    if shape.is_none() {
        cx.error_spanned_by(
            &field.ty,
            "unsupported guide field type: use f64, [f64; N] or Vec<f64>",
        );
        return Err(true);
    }
    Ok(GuideField {
        ident,
        shape,
        ty: field.ty.clone(),
        part,
    })
}

/// The guide's fields, mistakes reported in `cx`; and the names of the
/// fields whose role attribute has a mistake.
pub fn fields(cx: &Ctxt, input: &syn::DeriveInput) -> (Vec<GuideField>, Vec<Ident>) {
    let Some(named) = named_fields(cx, input, "a guide is a struct with named fields") else {
        return (Vec::new(), Vec::new());
    };
    let (mut fields, mut failed) = (Vec::new(), Vec::new());
    for f in named {
        match field(cx, f) {
            Ok(f) => fields.push(f),
            Err(true) => failed.extend(f.ident.clone()),
            Err(false) => {}
        }
    }
    (fields, failed)
}
