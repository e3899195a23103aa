//! The model struct as the macro sees it: each field with its role, its
//! shape and its attribute, keeping the user's tokens for error spans.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Expr, Ident, Token, Type, Visibility};

use crate::ctxt::Ctxt;

/// What kind of value a field holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Elem {
    /// `f64`.
    Real,
    /// An integer type (`usize`, `u64`, `i64`, `u32`, `i32`).
    Integer,
    /// `bool`.
    Bool,
}

/// A field's shape.
#[derive(Clone)]
pub enum Shape {
    Scalar(Elem),
    /// `[elem; len]`.
    Array(Elem, Expr),
    /// `Vec<elem>` (or nalgebra's `DVector<f64>`).
    Vec(Elem),
    /// nalgebra's `DMatrix<f64>`: data, or a correlation Cholesky factor
    /// latent (`constraint = cholesky_corr`), indexed `x[(row, column)]`.
    Matrix,
}

impl Shape {
    pub fn elem(&self) -> Elem {
        match self {
            Shape::Scalar(e) | Shape::Array(e, _) | Shape::Vec(e) => *e,
            Shape::Matrix => Elem::Real,
        }
    }

    pub fn is_scalar(&self) -> bool {
        matches!(self, Shape::Scalar(_))
    }
}

/// A distribution call in an attribute: `Normal(mu, sigma)`.
pub struct DistCall {
    /// A user-defined family's path (`my::Skewed`), `None` for the runtime's.
    pub user: Option<syn::Path>,
    pub name: Ident,
    pub args: Vec<Expr>,
    /// The whole call, for spans.
    pub tokens: Expr,
}

/// A constraint on a vector latent beyond its prior's support.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Constraint {
    Ordered,
    PositiveOrdered,
    Simplex,
    /// Stan's `cholesky_factor_corr[K]`: a `DMatrix<f64>` latent.
    CholeskyCorr,
}

// Built once per field at expansion time; the size difference is immaterial.
#[allow(clippy::large_enum_variant)]
pub enum Role {
    Data,
    /// A free log-density term (Stan's `target +=`, Pyro's `factor`), or
    /// a plate of them (`for i, len = n`).
    Factor(super::factor::Args),
    /// A deterministic function of the latents (Stan's generated quantities).
    Derived {
        expr: Expr,
        index: Option<Ident>,
    },
    Latent {
        prior: DistCall,
        len: Option<Expr>,
        /// The index over a vector latent's elements in its prior.
        index: Option<Ident>,
        constraint: Option<(Constraint, Ident)>,
        /// Stan-style bounds: `lower = expr`, `upper = expr`.
        lower: Option<Expr>,
        upper: Option<Expr>,
        /// Stan's affine transform: `offset = expr`, `multiplier = expr`.
        offset: Option<Expr>,
        multiplier: Option<Expr>,
        /// A matrix latent's order `K` (`K × K`): `dim = expr`.
        dim: Option<Expr>,
    },
    Observed {
        likelihood: DistCall,
        index: Option<Ident>,
    },
    /// A learned model parameter (`#[param(init = …)]`): a point fitted
    /// jointly with the guide, a value of the log joint like a latent.
    Param(ParamArgs),
    /// The mixing variable of a latent's semi-implicit prior
    /// (`#[prior_mixing(Family(…), of = z, k = K)]`).
    PriorMixing(super::semi_implicit_prior::MixingArgs),
    /// Stan's transformed parameters (`#[transformed(expr, …)]`): a value
    /// computed once per evaluation, usable by every later attribute.
    Transformed(super::transformed::Args),
}

impl Role {
    /// A latent's optional expressions that it has, in the order `len,
    /// lower, upper, offset, multiplier, dim` (none for another role):
    /// with its prior, every expression of a latent's attribute.
    pub fn latent_options(&self) -> impl Iterator<Item = &Expr> {
        let options = match self {
            Role::Latent {
                len,
                lower,
                upper,
                offset,
                multiplier,
                dim,
                ..
            } => Some([len, lower, upper, offset, multiplier, dim]),
            _ => None,
        };
        options.into_iter().flatten().flatten()
    }
}

/// The contents of a model's `#[param(…)]`: `init = expr` (required),
/// `len = expr` for a vector, `lower = expr` for a parameter kept above a
/// bound (a log transform while it is fitted), each at most once.
pub struct ParamArgs {
    pub init: Expr,
    pub len: Option<Expr>,
    pub lower: Option<Expr>,
    /// The shape of a learned matrix (`DMatrix<f64>`): `rows = …, cols = …`.
    pub rows: Option<Expr>,
    pub cols: Option<Expr>,
}

impl Parse for ParamArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let (mut init, mut len, mut lower) = (Once::default(), Once::default(), Once::default());
        let (mut rows, mut cols) = (Once::default(), Once::default());
        parse_options(input, |key, input| match key.to_string().as_str() {
            "init" => init.set(key, input.parse()?),
            "len" => len.set(key, input.parse()?),
            "lower" => lower.set(key, input.parse()?),
            "rows" => rows.set(key, input.parse()?),
            "cols" => cols.set(key, input.parse()?),
            other => Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown option `{other}`: write `init = <initial value>`, for a vector `len = <length>`, for a matrix `rows = <rows>, cols = <columns>`, and optionally `lower = <bound>`"
                ),
            )),
        })?;
        let init = init.get().ok_or_else(|| {
            input.error("give the learned parameter's initial value: `#[param(init = 0.0)]`")
        })?;
        Ok(Self {
            init,
            len: len.get(),
            lower: lower.get(),
            rows: rows.get(),
            cols: cols.get(),
        })
    }
}

pub struct Field {
    pub ident: Ident,
    pub ty: Type,
    pub vis: Visibility,
    pub attrs: Vec<Attribute>,
    pub shape: Option<Shape>,
    pub role: Role,
}

pub struct Model {
    pub ident: Ident,
    pub vis: Visibility,
    pub attrs: Vec<Attribute>,
    pub fields: Vec<Field>,
    /// Fields whose role attribute has a mistake (reported).
    pub failed: Vec<Ident>,
}

/// `key = value, …` options, a trailing comma allowed: `each` parses the
/// value after `key =` (or rejects the key). Shared by the model's and the
/// guide's `#[param(…)]`.
pub(crate) fn parse_options(
    input: ParseStream,
    mut each: impl FnMut(&Ident, ParseStream) -> syn::Result<()>,
) -> syn::Result<()> {
    while !input.is_empty() {
        let key: Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        each(&key, input)?;
        if input.parse::<Option<Token![,]>>()?.is_none() {
            break;
        }
    }
    Ok(())
}

/// An option that may be given once: a second `len = …` is an error, not
/// a silent replacement.
pub(crate) struct Once<T> {
    value: Option<T>,
}

impl<T> Default for Once<T> {
    fn default() -> Self {
        Self { value: None }
    }
}

impl<T> Once<T> {
    /// Sets the option, or fails at `key` if it was set before.
    pub(crate) fn set(&mut self, key: &impl quote::ToTokens, value: T) -> syn::Result<()> {
        if self.value.is_some() {
            let key = key.to_token_stream();
            return Err(syn::Error::new_spanned(
                &key,
                format!("`{key}` is given twice: keep one"),
            ));
        }
        self.value = Some(value);
        Ok(())
    }

    /// The value, if given.
    pub(crate) fn get(self) -> Option<T> {
        self.value
    }
}

/// The contents of `#[transformed(…)]` and `#[factor(…)]`: a value, then
/// optionally `for i` (a plate's or vector's index; `for rows in batch`,
/// a plate of factors over a batch's rows at once) and `len = expr` (its
/// length), each at most once.
pub struct ValueIndexLen {
    pub value: Expr,
    pub index: Option<Ident>,
    /// What `for i in <over>` iterates (only `batch` is meaningful, for a
    /// plate of factors; checked by the role).
    pub over: Option<Expr>,
    pub len: Option<Expr>,
}

impl ValueIndexLen {
    /// Parses the contents; any option other than `for` and `len` fails
    /// at its key with `unknown_option(key)`.
    pub(crate) fn parse_with(
        input: ParseStream,
        unknown_option: impl Fn(&Ident) -> String,
    ) -> syn::Result<Self> {
        let value: Expr = input.parse()?;
        let (mut index, mut len) = (Once::default(), Once::default());
        let mut over = None;
        while input.parse::<Option<Token![,]>>()?.is_some() && !input.is_empty() {
            if let Some(key) = input.parse::<Option<Token![for]>>()? {
                index.set(&key, input.parse()?)?;
                if input.parse::<Option<Token![in]>>()?.is_some() {
                    over = Some(input.parse()?);
                }
                continue;
            }
            let key: Ident = input.parse()?;
            if key != "len" {
                return Err(syn::Error::new(key.span(), unknown_option(&key)));
            }
            input.parse::<Token![=]>()?;
            len.set(&key, input.parse()?)?;
        }
        Ok(Self {
            value,
            index: index.get(),
            over,
            len: len.get(),
        })
    }
}

impl ValueIndexLen {
    /// Its expressions (the value, the length), for the read checks.
    pub fn exprs(&self) -> Vec<&Expr> {
        [Some(&self.value), self.len.as_ref()]
            .into_iter()
            .flatten()
            .collect()
    }

    /// Its tokens (the value, the length), for the mention scans.
    pub fn tokens(&self) -> TokenStream {
        let mut tokens = self.value.to_token_stream();
        if let Some(len) = &self.len {
            len.to_tokens(&mut tokens);
        }
        tokens
    }
}

/// The contents of `#[latent(…)]`: a distribution call, then options:
/// `len = expr`, `for i`, `constraint = ordered | positive_ordered | simplex`,
/// `lower = expr`, `upper = expr`, `offset = expr`, `multiplier = expr`,
/// `dim = expr` (a matrix latent's order), each at most once.
struct LatentArgs {
    call: Expr,
    len: Once<Expr>,
    index: Once<Ident>,
    constraint: Once<(Constraint, Ident)>,
    lower: Once<Expr>,
    upper: Once<Expr>,
    offset: Once<Expr>,
    multiplier: Once<Expr>,
    dim: Once<Expr>,
}

fn constraint(name: &Ident) -> syn::Result<Constraint> {
    match name.to_string().as_str() {
        "ordered" => Ok(Constraint::Ordered),
        "positive_ordered" => Ok(Constraint::PositiveOrdered),
        "simplex" => Ok(Constraint::Simplex),
        "cholesky_corr" => Ok(Constraint::CholeskyCorr),
        other => Err(syn::Error::new(
            name.span(),
            format!(
                "unknown constraint `{other}`: write `ordered`, `positive_ordered`, `simplex` or `cholesky_corr`"
            ),
        )),
    }
}

impl Parse for LatentArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Self {
            call: input.parse()?,
            len: Once::default(),
            index: Once::default(),
            constraint: Once::default(),
            lower: Once::default(),
            upper: Once::default(),
            offset: Once::default(),
            multiplier: Once::default(),
            dim: Once::default(),
        };
        while input.parse::<Option<Token![,]>>()?.is_some() && !input.is_empty() {
            if let Some(key) = input.parse::<Option<Token![for]>>()? {
                args.index.set(&key, input.parse()?)?;
                continue;
            }
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            match key.to_string().as_str() {
                "len" => args.len.set(&key, input.parse()?)?,
                "lower" => args.lower.set(&key, input.parse()?)?,
                "upper" => args.upper.set(&key, input.parse()?)?,
                "offset" => args.offset.set(&key, input.parse()?)?,
                "multiplier" => args.multiplier.set(&key, input.parse()?)?,
                "dim" => args.dim.set(&key, input.parse()?)?,
                "constraint" => {
                    let name: Ident = input.parse()?;
                    args.constraint.set(&key, (constraint(&name)?, name))?;
                }
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown option `{other}`: write `len = <length>`, `for <index>`, `constraint = <constraint>`, `lower = <bound>`, `upper = <bound>`, `offset = <offset>`, `multiplier = <multiplier>` or `dim = <order>`"
                        ),
                    ));
                }
            }
        }
        Ok(args)
    }
}

/// The contents of `#[observe(…)]` (and of `#[derived(…)]`, a guide's
/// `#[latent(…)]` and `#[reverse(…)]`): a distribution call, then
/// optionally `for i` naming the index over the field's elements.
pub(crate) struct ObserveArgs {
    /// The distribution call.
    pub(crate) call: Expr,
    /// The index, if any.
    pub(crate) index: Option<Ident>,
}

impl Parse for ObserveArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let call: Expr = input.parse()?;
        let mut index = Once::default();
        while input.parse::<Option<Token![,]>>()?.is_some() && !input.is_empty() {
            let key = input.parse::<Token![for]>()?;
            index.set(&key, input.parse()?)?;
        }
        Ok(Self {
            call,
            index: index.get(),
        })
    }
}

/// An attribute holding a distribution call and an optional `for i`
/// (`#[observe(…)]`, a guide's `#[latent(…)]` and `#[reverse(…)]`), or
/// `None` with its mistake reported.
pub(crate) fn dist_attr(cx: &Ctxt, attr: &Attribute) -> Option<(DistCall, Option<Ident>)> {
    let args = cx.ok(attr.parse_args::<ObserveArgs>())?;
    dist_call(cx, args.call).map(|call| (call, args.index))
}

/// A distribution call: a runtime family by name or a user family by path.
pub(crate) fn dist_call(cx: &Ctxt, call: Expr) -> Option<DistCall> {
    match &call {
        Expr::Call(c) => match &*c.func {
            Expr::Path(p) if p.qself.is_none() && p.path.segments.len() > 1 => Some(DistCall {
                user: Some(p.path.clone()),
                name: p.path.segments.last().expect("a segment").ident.clone(),
                args: c.args.iter().cloned().collect(),
                tokens: call.clone(),
            }),
            Expr::Path(p) if p.path.get_ident().is_some() => Some(DistCall {
                user: None,
                name: p.path.get_ident().cloned().expect("checked"),
                args: c.args.iter().cloned().collect(),
                tokens: call.clone(),
            }),
            other => {
                cx.error_spanned_by(
                    other,
                    "name a distribution of iwhvi::distributions, e.g. `Normal(0.0, 1.0)`, or a user-defined one by its path, e.g. `my::Skewed(0.0, 1.0)`",
                );
                None
            }
        },
        other => {
            cx.error_spanned_by(
                other,
                "expected a distribution call such as `Normal(0.0, 1.0)`",
            );
            None
        }
    }
}

fn elem(ty: &Type) -> Option<Elem> {
    let Type::Path(p) = ty else { return None };
    let ident = p.path.get_ident()?;
    match ident.to_string().as_str() {
        "f64" => Some(Elem::Real),
        "usize" | "u64" | "i64" | "u32" | "i32" => Some(Elem::Integer),
        "bool" => Some(Elem::Bool),
        _ => None,
    }
}

/// The shape of a field type we support.
pub fn shape(ty: &Type) -> Option<Shape> {
    if let Some(e) = elem(ty) {
        return Some(Shape::Scalar(e));
    }
    match ty {
        Type::Array(a) => Some(Shape::Array(elem(&a.elem)?, a.len.clone())),
        Type::Path(p) => {
            let last = p.path.segments.last()?;
            let prefix: Vec<String> = p
                .path
                .segments
                .iter()
                .rev()
                .skip(1)
                .map(|s| s.ident.to_string())
                .collect();
            let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
                return None;
            };
            let Some(syn::GenericArgument::Type(inner)) = args.args.first() else {
                return None;
            };
            let nalgebra = prefix.is_empty() || prefix == ["nalgebra"];
            if nalgebra && last.ident == "DMatrix" && elem(inner) == Some(Elem::Real) {
                return Some(Shape::Matrix);
            }
            if nalgebra && last.ident == "DVector" && elem(inner) == Some(Elem::Real) {
                return Some(Shape::Vec(Elem::Real));
            }
            let known_prefix =
                prefix.is_empty() || prefix == ["vec", "std"] || prefix == ["vec", "alloc"];
            if last.ident != "Vec" || !known_prefix {
                return None;
            }
            Some(Shape::Vec(elem(inner)?))
        }
        _ => None,
    }
}

/// The role an attribute gives, `None` when it is not a role attribute
/// (kept on the field) and `Some(None)` when it is one with a mistake
/// (reported in `cx`).
fn role(cx: &Ctxt, attr: &Attribute) -> Option<Option<Role>> {
    let name = attr.path().get_ident()?.to_string();
    Some(match name.as_str() {
        "data" => match &attr.meta {
            syn::Meta::Path(_) => Some(Role::Data),
            other => {
                cx.error_spanned_by(other, "write `#[data]` without arguments");
                None
            }
        },
        "latent" => cx.ok(attr.parse_args::<LatentArgs>()).and_then(|args| {
            dist_call(cx, args.call).map(|prior| Role::Latent {
                prior,
                len: args.len.get(),
                index: args.index.get(),
                constraint: args.constraint.get(),
                lower: args.lower.get(),
                upper: args.upper.get(),
                offset: args.offset.get(),
                multiplier: args.multiplier.get(),
                dim: args.dim.get(),
            })
        }),
        "derived" => cx
            .ok(attr.parse_args::<ObserveArgs>())
            .map(|args| Role::Derived {
                expr: args.call,
                index: args.index,
            }),
        "factor" => super::factor::role(cx, attr),
        "observe" => {
            dist_attr(cx, attr).map(|(likelihood, index)| Role::Observed { likelihood, index })
        }
        "param" if matches!(attr.meta, syn::Meta::Path(_)) => {
            cx.error_spanned_by(
                attr,
                "a learned parameter needs its initial value: write `#[param(init = 0.0)]` (and `len = <length>` for a vector)",
            );
            None
        }
        "param" => cx.ok(attr.parse_args::<ParamArgs>()).map(Role::Param),
        "prior_mixing" => super::semi_implicit_prior::role(cx, attr),
        "transformed" => super::transformed::role(cx, attr),
        _ => return None,
    })
}

/// The one role among a field's attributes, and its other attributes
/// (for the model and the guide alike). `parse` reads an attribute:
/// `None` when it is not a role attribute, `Some(None)` when it is one
/// with a mistake (reported). A second role attribute is the error `two`;
/// no role attribute at all the error `none` (`Err(false)`); `Err(true)`
/// when the role attributes all had mistakes.
pub(crate) fn one_role<'f, R>(
    cx: &Ctxt,
    field: &'f syn::Field,
    mut parse: impl FnMut(&Attribute) -> Option<Option<R>>,
    (two, none): (&str, &str),
) -> Result<(R, Vec<&'f Attribute>), bool> {
    let (mut found, mut others, mut had_role) = (None, Vec::new(), false);
    for attr in &field.attrs {
        let Some(parsed) = parse(attr) else {
            others.push(attr);
            continue;
        };
        if had_role {
            cx.error_spanned_by(attr, two);
        }
        had_role = true;
        found = parsed.or(found);
    }
    match found {
        Some(role) => Ok((role, others)),
        None if had_role => Err(true),
        None => {
            cx.error_spanned_by(field.ident.as_ref().expect("named"), none);
            Err(false)
        }
    }
}

/// One field with its role, or `Err` (reported) without one: `Err(true)`
/// when the field has a role attribute with a mistake.
fn field(cx: &Ctxt, field: &syn::Field) -> Result<Field, bool> {
    let ident = field.ident.clone().expect("named field");
    let two = format!(
        "field `{ident}` has more than one of #[data], #[latent], #[observe], #[factor], #[derived]; keep one"
    );
    let none = format!(
        "field `{ident}` needs a role: `#[data]`, `#[latent(Distribution(...))]`, `#[observe(Distribution(...))]`, `#[factor(log_density)]` or `#[derived(expression)]`"
    );
    let (role, attrs) = one_role(cx, field, |attr| role(cx, attr), (&two, &none))?;
    let attrs = attrs.into_iter().cloned().collect();
    let shape = if let Role::Factor(_) = role {
        if !matches!(&field.ty, Type::Tuple(t) if t.elems.is_empty()) {
            cx.error_spanned_by(
                &field.ty,
                format!("a #[factor] field holds no data: declare it as `{ident}: ()`"),
            );
        }
        None
    } else {
        let shape = shape(&field.ty);
        if shape.is_none() {
            cx.error_spanned_by(
                &field.ty,
                "unsupported field type: use f64, an integer, bool, `[T; N]` or `Vec<T>` of those, or nalgebra's `DVector<f64>` or `DMatrix<f64>`",
            );
        }
        shape
    };
    Ok(Field {
        ident,
        ty: field.ty.clone(),
        vis: field.vis.clone(),
        attrs,
        shape,
        role,
    })
}

/// The named fields of a struct, or `None` with `message` reported at
/// the item's name (for the model and the guide alike).
pub(crate) fn named_fields<'a>(
    cx: &Ctxt,
    input: &'a syn::DeriveInput,
    message: &str,
) -> Option<&'a syn::punctuated::Punctuated<syn::Field, Token![,]>> {
    match &input.data {
        syn::Data::Struct(syn::DataStruct {
            fields: syn::Fields::Named(named),
            ..
        }) => Some(&named.named),
        _ => {
            cx.error_spanned_by(&input.ident, message);
            None
        }
    }
}

impl Model {
    /// Reads the struct, collecting every attribute mistake in `cx`.
    pub fn from_ast(cx: &Ctxt, input: &syn::DeriveInput) -> Option<Self> {
        let named = named_fields(
            cx,
            input,
            "#[variational] models are structs with named fields",
        )?;
        if !input.generics.params.is_empty() {
            cx.error_spanned_by(
                &input.generics,
                "#[variational] models cannot be generic yet",
            );
        }
        let (mut fields, mut failed) = (Vec::new(), Vec::new());
        for f in named {
            match field(cx, f) {
                Ok(f) => fields.push(f),
                Err(true) => failed.extend(f.ident.clone()),
                Err(false) => {}
            }
        }
        let proposals = super::semi_implicit_prior::proposal_fields(&fields);
        fields.extend(proposals);
        Some(Self {
            ident: input.ident.clone(),
            vis: input.vis.clone(),
            attrs: input.attrs.clone(),
            fields,
            failed,
        })
    }
}
