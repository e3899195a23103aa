//! The checked plan of a model: what lowering found for every field, in
//! declaration order. Every name in it is resolved and every rule checked;
//! emitting code from it cannot fail.

use std::collections::BTreeSet;

use proc_macro2::TokenStream;
use syn::Ident;

use super::ast::{Constraint, Field, Model, Shape};
use crate::family::{Domain, Family};

/// The whole model.
pub struct Plan<'a> {
    pub model: &'a Model,
    /// The data struct's fields (`#[data]` and `#[observe]`), in order.
    pub data: Vec<Data<'a>>,
    /// The steps of the log joint, in declaration order.
    pub steps: Vec<Step<'a>>,
    /// The learned parameters (`#[param]`), in declaration order.
    pub params: Vec<Param<'a>>,
}

/// A learned parameter: a field of the model struct holding its current
/// (constrained) value, bound as a local of every generated function.
pub struct Param<'a> {
    pub field: &'a Field,
    /// `f64` (true) or a vector (`Vec<f64>`, `DVector<f64>`).
    pub scalar: bool,
    /// The initial value of each element: an `f64` expression over the data.
    pub init: TokenStream,
    /// The number of elements, a `usize` expression over the data.
    pub len: TokenStream,
    /// A learned matrix (`DMatrix<f64>`): its rows and columns, `usize`
    /// expressions over the data (`len` is their product; θ holds the
    /// matrix column by column).
    pub matrix: Option<(TokenStream, TokenStream)>,
    /// The transform from its unconstrained coordinates (a core
    /// `Transform` expression over the data).
    pub transform: TokenStream,
}

impl<'a> Plan<'a> {
    /// The latents, in declaration order.
    pub fn latents(&self) -> impl Iterator<Item = &Latent<'a>> {
        self.steps.iter().filter_map(|s| match s {
            Step::Latent(l) => Some(&**l),
            _ => None,
        })
    }

    /// The observed fields, in declaration order.
    pub fn observations(&self) -> impl Iterator<Item = &Observed<'a>> {
        self.steps.iter().filter_map(|s| match s {
            Step::Observed(o) => Some(o),
            _ => None,
        })
    }

    /// The transformed values, in declaration order.
    pub fn transformed(&self) -> impl Iterator<Item = &super::transformed::Transformed<'a>> {
        self.steps.iter().filter_map(|s| match s {
            Step::Transformed(t) => Some(t),
            _ => None,
        })
    }

    /// The derived quantities, in declaration order.
    pub fn derived(&self) -> impl Iterator<Item = &Derived<'a>> {
        self.steps.iter().filter_map(|s| match s {
            Step::Derived(d) => Some(d),
            _ => None,
        })
    }
}

/// A field of the data struct.
pub struct Data<'a> {
    pub field: &'a Field,
    pub shape: Option<&'a Shape>,
}

/// One field's part of the model.
// Built once per field at expansion time; the size difference is immaterial.
#[allow(clippy::large_enum_variant)]
pub enum Step<'a> {
    Latent(Box<Latent<'a>>),
    Observed(Observed<'a>),
    /// A `#[factor]` term, or a plate of them.
    Factor(super::factor::Factor<'a>),
    Derived(Derived<'a>),
    /// A `#[transformed]` value, bound for the steps after it.
    Transformed(super::transformed::Transformed<'a>),
}

/// What a latent's support is, as the guide macro is told it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LatentSupport {
    Real,
    Positive,
    Unit,
    Bounded,
    Simplex,
    Ordered,
    PositiveOrdered,
    User,
    /// A correlation Cholesky factor (a `DMatrix<f64>` latent).
    CholeskyCorr,
}

impl LatentSupport {
    /// Every support with its word in the model-to-guide hand-over.
    pub const ALL: [(LatentSupport, &'static str); 9] = [
        (LatentSupport::Real, "real"),
        (LatentSupport::Positive, "positive"),
        (LatentSupport::Unit, "unit"),
        (LatentSupport::Bounded, "bounded"),
        (LatentSupport::Simplex, "simplex"),
        (LatentSupport::Ordered, "ordered"),
        (LatentSupport::PositiveOrdered, "positive_ordered"),
        (LatentSupport::User, "user"),
        (LatentSupport::CholeskyCorr, "cholesky_corr"),
    ];

    /// Its word in the hand-over.
    pub fn word(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map(|(_, w)| *w)
            .expect("every support has a word")
    }
}

/// The transform from unconstrained space onto a latent's support.
pub enum Transform {
    /// The default transform of the prior's support, or of the support a
    /// constraint restricts the latent to, read from iwhvi-core's support
    /// type of that name (`supports::Positive`, `supports::Simplex`, …).
    CoreSupport(&'static str),
    /// A user family's: its support type's default transform.
    UserSupport(syn::Path, proc_macro2::Span),
    /// `(low, high)` from data-only expressions (raw context).
    Interval(TokenStream, TokenStream),
    LowerBound(TokenStream),
    UpperBound(TokenStream),
    /// `offset`, `multiplier` from data-only expressions (raw context).
    Affine(TokenStream, TokenStream),
}

/// `constant + Σ coefficient · latent`, with literal numbers.
pub struct Affine {
    pub constant: f64,
    pub terms: Vec<(String, f64)>,
}

/// Bounds that move with earlier latents.
pub struct Dependent {
    /// The bounds as `__T` values.
    pub low: TokenStream,
    pub high: TokenStream,
    /// Their affine description for the layout.
    pub low_affine: Affine,
    pub high_affine: Affine,
}

/// An offset and a multiplier that move with earlier latents.
pub struct DependentAffine {
    /// As `__T` values.
    pub offset: TokenStream,
    pub multiplier: TokenStream,
    /// Their affine description for the layout.
    pub offset_affine: Affine,
    pub multiplier_affine: Affine,
}

/// `lower = …`, `upper = …` of a latent.
pub struct Bounds {
    /// The bounds as values for the ancestral draw (∓∞ where absent); for
    /// a vector latent, `f64` expressions of element `__k`.
    pub low: Option<TokenStream>,
    pub high: Option<TokenStream>,
    /// Present when the bounds depend on other latents.
    pub dependent: Option<Dependent>,
}

/// A latent.
pub struct Latent<'a> {
    pub field: &'a Field,
    pub shape: &'a Shape,
    pub family: &'static Family,
    /// The prior's constructor, arguments lowered; `None` for the flat
    /// (improper) families, which have no density term.
    pub prior: Option<TokenStream>,
    pub transform: Transform,
    pub bounds: Option<Bounds>,
    /// A vector latent's transform when it differs by element (bounds,
    /// offset or multiplier from data vectors): a `Transform` expression of
    /// element `__k` (the index bound to it); `transform` is then elementwise.
    pub per_element: Option<TokenStream>,
    /// Data vectors read at the element: their lengths must be the latent's.
    pub same_length: Vec<String>,
    /// An offset and multiplier that depend on other latents.
    pub affine: Option<DependentAffine>,
    /// The number of elements, as a `usize` expression over the data.
    pub len: TokenStream,
    /// A matrix latent's order `K` (`len` is `K²`, row-major), as a `usize`
    /// expression over the data.
    pub order: Option<TokenStream>,
    pub index: Option<&'a Ident>,
    pub constraint: Option<Constraint>,
    pub support: LatentSupport,
    /// Its prior's parameters that are data, which `new` checks.
    pub data_params: Vec<DataParam>,
    /// The names its prior and bounds use (read by the plan's tests).
    // Read by the plan's tests; the emitter does not need it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub uses: BTreeSet<String>,
    /// The mixing variable of its semi-implicit prior, if it has one.
    pub mixing: Option<super::semi_implicit_prior::Mixing>,
    /// `(loc, scale)` as `f64` expressions when the prior is the runtime's
    /// `Normal` with number literals for both (`Normal(0.0, 1.0)`): a
    /// batch's prior terms are then one vector operation
    /// (`ConstantNormal`, in `log_joint_points`).
    pub constant_normal: Option<(TokenStream, TokenStream)>,
}

/// An observed field.
pub struct Observed<'a> {
    pub field: &'a Field,
    pub shape: &'a Shape,
    pub family: &'static Family,
    /// The likelihood's constructor, arguments lowered.
    pub likelihood: TokenStream,
    pub index: Option<&'a Ident>,
    /// Other data vectors indexed by the loop index: their lengths must
    /// equal this field's.
    pub same_length: Vec<String>,
    /// The plate as one kernel call, when the family has a kernel and the
    /// observation is a vector over `for i`; `None` keeps the scalar loop.
    pub plate: Option<PlatePlan>,
    /// Its likelihood's parameters that are data, which `new` checks.
    pub data_params: Vec<DataParam>,
    // Read by the plan's tests; the emitter does not need it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub uses: BTreeSet<String>,
}

/// A distribution parameter that is a data field (a scalar, a data vector
/// indexed by the attribute's `for i`, or a whole data vector for a
/// vector parameter): the model's `new` checks its values against the
/// parameter's domain.
pub struct DataParam {
    /// The data field.
    pub data: Ident,
    /// True for a scalar field; otherwise every element the term reads.
    pub scalar: bool,
    /// The parameter's name and domain (the family table's).
    pub parameter: &'static str,
    pub domain: Domain,
}

/// An observed vector as one call of the plate driver: element `i`'s
/// arguments as code over the operands, and its observation.
pub struct PlatePlan {
    /// The family's runtime type (`Normal`), whose `FamilyKernel` gives the kernel.
    pub family: Ident,
    /// The real arguments of element `i`, as `__T` values.
    pub args: Vec<TokenStream>,
    /// The observation of element `i`, as the kernel's `Obs`.
    pub obs: TokenStream,
    /// Its type (`f64`, `u64` or `(u64, u64)`).
    pub obs_ty: TokenStream,
    /// The latents the arguments read, in declaration order, with `true`
    /// for a scalar.
    pub operands: Vec<(Ident, bool)>,
    /// When every argument is affine in the operands with data
    /// coefficients: for each argument, its derivative terms.
    pub linear: Option<Vec<Vec<LinearTerm>>>,
}

/// `∂arg/∂θ` of one term of an affine argument: the operand (its position
/// in `operands`, and for a vector the element, a `usize` expression over
/// the data), and the coefficient (an `f64` expression over the data).
pub struct LinearTerm {
    pub operand: usize,
    pub element: Option<TokenStream>,
    pub coefficient: TokenStream,
}

/// A derived quantity.
pub struct Derived<'a> {
    pub field: &'a Field,
    pub shape: &'a Shape,
    /// Its value at one element (`__T = f64`).
    pub value: TokenStream,
    /// `Some((i, n))` for `[f64; n]` over the index `i`.
    pub over: Option<(&'a Ident, &'a syn::Expr)>,
    // Read by the plan's tests; the emitter does not need it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub uses: BTreeSet<String>,
}
