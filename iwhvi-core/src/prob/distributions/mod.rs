//! Probability distributions whose log densities work on `f64` and on dual
//! numbers alike.
//!
//! Each distribution is generic over the scalar of its parameters,
//! `Normal<T: Scalar>`, so the same code gives a model's log density
//! (`T = f64`) and its derivatives (`T = Dual<W>`). Constructors validate
//! parameters on their values and return a [`DistributionError`] naming the
//! distribution, the parameter and its value. `log_prob` is `-∞` outside
//! the support, never NaN for valid parameters.
//!
//! The support of each distribution is a type ([`Distribution::Support`]),
//! so code can require, at compile time, a family with a given support
//! (a guide for a positive latent needs a positive family). Each support
//! has a default [`Transform`] to unconstrained space.
//!
//! Families that can serve in a guide implement [`Reparameterized`]: a
//! draw is `x = g(θ, ε)` for parameter-free standard noise `ε`, so
//! gradients flow to the parameters. All families with `f64` parameters
//! sample through [`rand`] (`rng.sample(&d)`), with any generator of
//! [`iwhvi::rand`](crate::rand) (the `rand` 0.10 that this library
//! re-exports, so that versions cannot clash).
//!
//! ```
//! use iwhvi_core::distributions::{Distribution, Normal, Reparameterized};
//! use iwhvi_core::{Dual, Scalar};
//!
//! let d = Normal::new(1.0, 2.0).unwrap();
//! assert!((d.log_prob(1.0) + 2f64.ln() + iwhvi_core::special::LN_SQRT_2PI).abs() < 1e-15);
//!
//! // The same density with a dual location: ∂/∂loc log N(x; loc, s) = (x - loc) / s².
//! let loc = Dual::<1>::variable(1.0, 0);
//! let d = Normal::new(loc, Dual::constant(2.0)).unwrap();
//! assert_eq!(d.log_prob(Dual::constant(3.0)).tangent(), [0.5]);
//!
//! // A reparameterized draw: loc + scale · ε.
//! assert_eq!(d.rsample(0.5).value(), 2.0);
//! ```

use rand::Rng;

use crate::scalar::Scalar;
use crate::transforms::Transform;

mod bernoulli;
mod beta;
mod binomial;
mod categorical;
mod cauchy;
mod dirichlet;
mod exponential;
#[cfg(test)]
mod fused_tests;
mod gamma;
mod half_cauchy;
mod half_normal;
mod inverse_gamma;
mod laplace;
mod lkj;
mod log_normal;
mod logistic;
mod multivariate_normal;
mod negative_binomial;
mod normal;
mod poisson;
mod student_t;
mod uniform;
mod weibull;

pub use bernoulli::{Bernoulli, BernoulliLogit};
pub use beta::Beta;
pub use binomial::{Binomial, BinomialLogit};
pub use categorical::{Categorical, CategoricalLogits};
pub use cauchy::Cauchy;
pub use dirichlet::Dirichlet;
pub(crate) use dirichlet::SIMPLEX_TOLERANCE;
pub use exponential::Exponential;
pub use gamma::Gamma;
pub use half_cauchy::HalfCauchy;
pub use half_normal::HalfNormal;
pub use inverse_gamma::InverseGamma;
pub use laplace::Laplace;
pub use lkj::LkjCholesky;
pub use log_normal::LogNormal;
pub use logistic::Logistic;
pub use multivariate_normal::MultivariateNormal;
pub use negative_binomial::NegativeBinomial2;
pub use normal::Normal;
pub(crate) use normal::standard_log_density;
pub use poisson::{Poisson, PoissonLog};
pub use student_t::StudentT;
pub use uniform::Uniform;
pub use weibull::Weibull;

/// `c · ln_term`, with `0 · ln 0 = 0` (a count of zero contributes nothing,
/// whatever its probability).
pub(crate) fn times<T: Scalar>(count: u64, log_term: impl FnOnce() -> T) -> T {
    if count == 0 {
        T::constant(0.0)
    } else {
        log_term() * count as f64
    }
}

/// `log p(x)` of a distribution whose constructor may reject its
/// parameters: `−∞` then, never a panic. A latent that wanders outside a
/// parameter's domain (a scale of 0) has zero density, which is what a
/// factor or a helper method computing a likelihood wants.
///
/// ```
/// use iwhvi_core::distributions::{Normal, log_prob_or_neg_inf};
/// assert_eq!(log_prob_or_neg_inf(Normal::new(0.0, -1.0), 0.5), f64::NEG_INFINITY);
/// let lp = log_prob_or_neg_inf(Normal::new(0.0, 1.0), 0.0);
/// assert!((lp + 0.5 * (2.0 * std::f64::consts::PI).ln()).abs() < 1e-15);
/// ```
#[inline]
pub fn log_prob_or_neg_inf<T: Scalar, D: Distribution<T>>(
    d: Result<D, DistributionError>,
    x: D::Value,
) -> T {
    match d {
        Ok(d) => d.log_prob(x),
        Err(_) => T::constant(f64::NEG_INFINITY),
    }
}

/// `log p(x)` of a multivariate distribution whose constructor may reject
/// its parameters: `−∞` then, and for a value of the wrong length.
///
/// ```
/// use iwhvi_core::distributions::{Dirichlet, log_prob_multi_or_neg_inf};
/// let bad = Dirichlet::new(vec![1.0, -1.0]);
/// assert_eq!(log_prob_multi_or_neg_inf(bad, &[0.5, 0.5]), f64::NEG_INFINITY);
/// ```
#[inline]
pub fn log_prob_multi_or_neg_inf<T: Scalar, D: MultivariateDistribution<T>>(
    d: Result<D, DistributionError>,
    x: &[T],
) -> T {
    match d {
        Ok(d) if d.dim() == x.len() => d.log_prob(x),
        _ => T::constant(f64::NEG_INFINITY),
    }
}

/// A distribution over one value: a real (continuous families) or a count
/// or category (discrete families), with parameters of scalar type `T`.
pub trait Distribution<T: Scalar> {
    /// What it is a distribution over: `T` for continuous families, `u64`
    /// for counts and binary outcomes, `usize` for categories.
    type Value: Copy;
    /// Its support, as a type (see [`supports`]).
    type Support: supports::SupportKind;

    /// `log p(x)`: the log density (continuous) or log mass (discrete);
    /// `-∞` outside the support.
    fn log_prob(&self, x: Self::Value) -> T;

    /// Its support, with the bounds a type cannot carry.
    fn support(&self) -> Support;
}

/// A distribution over vectors (multivariate normal, Dirichlet).
pub trait MultivariateDistribution<T: Scalar> {
    /// Its support, as a type (see [`supports`]).
    type Support: supports::SupportKind;

    /// The length of its vectors.
    fn dim(&self) -> usize;

    /// `log p(x)`; `-∞` outside the support.
    ///
    /// # Panics
    /// If `x.len() != self.dim()`.
    fn log_prob(&self, x: &[T]) -> T;

    /// Its support, with the bounds a type cannot carry.
    fn support(&self) -> Support;
}

/// A continuous family with a reparameterized sampler: a draw is
/// `x = g(θ, ε)` with standard noise `ε` that does not depend on the
/// parameters `θ` (for Student's t, on `θ`'s degrees of freedom only), so
/// the derivative of `x` with respect to `θ` flows through `g`.
pub trait Reparameterized<T: Scalar>: Distribution<T, Value = T> {
    /// Draws the standard noise `ε` (e.g. `N(0, 1)` for the normal).
    ///
    /// Takes any generator of [`iwhvi::rand`](crate::rand) (the `rand` 0.10 that
    /// this library re-exports, so that versions cannot clash), e.g.
    /// `iwhvi::rand::rngs::StdRng`.
    fn sample_noise<R: Rng + ?Sized>(&self, rng: &mut R) -> f64;

    /// `g(θ, ε)`: the draw for noise `ε`.
    fn rsample(&self, noise: f64) -> T;
}

/// A multivariate family with a reparameterized sampler: `x = g(θ, ε)`
/// for a vector of standard noise `ε`.
pub trait MultivariateReparameterized<T: Scalar>: MultivariateDistribution<T> {
    /// The length of the noise vector.
    fn noise_dim(&self) -> usize;

    /// Draws the standard noise `ε` into `noise` (length [`Self::noise_dim`]).
    ///
    /// Takes any generator of [`iwhvi::rand`](crate::rand) (the `rand` 0.10 that
    /// this library re-exports, so that versions cannot clash), e.g.
    /// `iwhvi::rand::rngs::StdRng`.
    fn sample_noise<R: Rng + ?Sized>(&self, rng: &mut R, noise: &mut [f64]);

    /// `g(θ, ε)`, written into `out` (length [`MultivariateDistribution::dim`]).
    fn rsample(&self, noise: &[f64], out: &mut [T]);
}

/// Why a distribution could not be built.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DistributionError {
    /// A parameter is outside its domain.
    #[error("{distribution}: parameter `{parameter}` must be {requirement}, got {value}")]
    InvalidParameter {
        /// The distribution, e.g. `"Normal"`.
        distribution: &'static str,
        /// The parameter, e.g. `"scale"`.
        parameter: &'static str,
        /// Its value (for vectors, the first offending entry).
        value: f64,
        /// What it must be, e.g. `"positive and finite"`.
        requirement: &'static str,
    },
    /// Parameters whose lengths must agree do not.
    #[error("{distribution}: parameter `{parameter}` has length {found}, expected {expected}")]
    DimensionMismatch {
        /// The distribution.
        distribution: &'static str,
        /// The parameter of the wrong length.
        parameter: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length it has.
        found: usize,
    },
    /// A sampler was asked to draw from an improper (flat) prior.
    #[error(
        "{distribution} is an improper prior: it has no draws; give the latent a proper prior to sample it"
    )]
    Improper {
        /// The improper family, e.g. `"Flat"`.
        distribution: &'static str,
    },
    /// Drawing a latent from its prior restricted to its bounds or
    /// constraint (by rejection) found no accepted draw.
    #[error(
        "latent `{latent}`: no draw of its prior fell within its bounds or constraint in {tries} tries; the prior puts (almost) no mass there"
    )]
    RejectionFailed {
        /// The latent.
        latent: &'static str,
        /// The draws tried.
        tries: usize,
    },
    /// A covariance (or scale) matrix is not positive definite.
    #[error("{distribution}: parameter `{parameter}` is not positive definite ({source})")]
    NotPositiveDefinite {
        /// The distribution.
        distribution: &'static str,
        /// The matrix parameter.
        parameter: &'static str,
        /// What the factorisation found.
        source: crate::linalg::LinalgError,
    },
}

/// Parameter checks shared by the constructors.
pub(crate) mod check {
    use super::DistributionError;
    use crate::scalar::Scalar;

    fn invalid(
        distribution: &'static str,
        parameter: &'static str,
        value: f64,
        requirement: &'static str,
    ) -> DistributionError {
        DistributionError::InvalidParameter {
            distribution,
            parameter,
            value,
            requirement,
        }
    }

    /// Finite.
    pub fn finite<T: Scalar>(
        d: &'static str,
        p: &'static str,
        x: T,
    ) -> Result<T, DistributionError> {
        let v = x.value();
        if v.is_finite() {
            Ok(x)
        } else {
            Err(invalid(d, p, v, "finite"))
        }
    }

    /// Positive and finite.
    pub fn positive<T: Scalar>(
        d: &'static str,
        p: &'static str,
        x: T,
    ) -> Result<T, DistributionError> {
        let v = x.value();
        if v.is_finite() && v > 0.0 {
            Ok(x)
        } else {
            Err(invalid(d, p, v, "positive and finite"))
        }
    }

    /// A probability in `[0, 1]`.
    pub fn probability<T: Scalar>(
        d: &'static str,
        p: &'static str,
        x: T,
    ) -> Result<T, DistributionError> {
        let v = x.value();
        if (0.0..=1.0).contains(&v) {
            Ok(x)
        } else {
            Err(invalid(d, p, v, "a probability in [0, 1]"))
        }
    }
}

/// The supports of the distributions, as types and as a value.
pub mod supports {
    use crate::transforms::Transform;

    /// A support as a type: what a distribution's values range over.
    /// `#[variational]` compares these at compile time and takes the
    /// default transform of user-defined families from them.
    pub trait SupportKind {
        /// Its name in error messages, e.g. `"positive"`.
        const NAME: &'static str;
        /// The transform from unconstrained space when it does not depend
        /// on parameters (`None` for intervals given by parameters and for
        /// discrete supports).
        const DEFAULT_TRANSFORM: Option<Transform>;
    }

    macro_rules! support_kinds {
        ($($(#[$doc:meta])* $name:ident = $text:literal, $transform:expr;)*) => {$(
            $(#[$doc])*
            #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
            pub struct $name;
            impl SupportKind for $name {
                const NAME: &'static str = $text;
                const DEFAULT_TRANSFORM: Option<Transform> = $transform;
            }
        )*};
    }

    support_kinds! {
        /// The real line.
        Real = "real", Some(Transform::Identity);
        /// `(0, ∞)`.
        Positive = "positive", Some(Transform::Exp);
        /// `(0, 1)`.
        UnitInterval = "unit interval", Some(Transform::Interval { low: 0.0, high: 1.0 });
        /// `(low, high)` with bounds given by the parameters.
        Interval = "interval", None;
        /// Vectors in `Rᵈ`.
        RealVector = "real vector", Some(Transform::Identity);
        /// Vectors with positive entries summing to 1.
        Simplex = "simplex", Some(Transform::StickBreaking);
        /// Strictly increasing vectors.
        Ordered = "ordered vector", Some(Transform::Ordered);
        /// Strictly increasing positive vectors.
        PositiveOrdered = "positive ordered vector", Some(Transform::PositiveOrdered);
        /// Cholesky factors of correlation matrices.
        CorrelationCholesky = "correlation Cholesky factor", Some(Transform::CholeskyCorrelation);
        /// `{0, 1, 2, …}`.
        NonNegativeInteger = "non-negative integer", None;
        /// `{0, 1}`.
        Binary = "binary", None;
        /// `{0, 1, …, n}` with `n` given by the parameters.
        BoundedCount = "bounded count", None;
        /// `{0, 1, …, K - 1}`: an index into `K` categories.
        CategoryIndex = "category index", None;
    }
}

/// A support as a value: the set a distribution's values live in, with the
/// bounds that a [`supports::SupportKind`] type cannot carry.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Support {
    /// The real line.
    Real,
    /// `(0, ∞)`.
    Positive,
    /// `(0, 1)`.
    UnitInterval,
    /// `(low, high)`.
    Interval {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// Vectors in `Rᵈ`.
    RealVector,
    /// Vectors with positive entries summing to 1.
    Simplex,
    /// Strictly increasing vectors.
    Ordered,
    /// Strictly increasing positive vectors.
    PositiveOrdered,
    /// Cholesky factors of correlation matrices.
    CorrelationCholesky,
    /// `{0, 1, 2, …}`.
    NonNegativeInteger,
    /// `{0, 1}`.
    Binary,
    /// `{0, …, n}`.
    BoundedCount {
        /// The largest value, `n`.
        max: u64,
    },
    /// `{0, …, K - 1}`.
    CategoryIndex {
        /// The number of categories `K`.
        categories: usize,
    },
}

impl Support {
    /// The transform from unconstrained space onto this support that a
    /// latent with this prior is fitted through by default: identity for
    /// reals, `exp` for positive, a scaled sigmoid for intervals, stick
    /// breaking for the simplex, cumulative exponentials for ordered
    /// vectors, tanh partial correlations for correlation Cholesky factors;
    /// `None` for discrete supports (discrete
    /// latents are not fitted by gradients).
    ///
    /// ```
    /// use iwhvi_core::distributions::Support;
    /// use iwhvi_core::transforms::Transform;
    /// assert_eq!(Support::Positive.default_transform(), Some(Transform::Exp));
    /// assert_eq!(Support::BoundedCount { max: 3 }.default_transform(), None);
    /// ```
    pub fn default_transform(&self) -> Option<Transform> {
        match *self {
            Support::Real | Support::RealVector => Some(Transform::Identity),
            Support::Positive => Some(Transform::Exp),
            Support::UnitInterval => Some(Transform::Interval {
                low: 0.0,
                high: 1.0,
            }),
            Support::Interval { low, high } => Some(Transform::Interval { low, high }),
            Support::Simplex => Some(Transform::StickBreaking),
            Support::Ordered => Some(Transform::Ordered),
            Support::PositiveOrdered => Some(Transform::PositiveOrdered),
            Support::CorrelationCholesky => Some(Transform::CholeskyCorrelation),
            Support::NonNegativeInteger
            | Support::Binary
            | Support::BoundedCount { .. }
            | Support::CategoryIndex { .. } => None,
        }
    }

    /// True when `x` lies in the support (a scalar; for vector supports see
    /// the distribution's own check).
    pub fn contains(&self, x: f64) -> bool {
        match *self {
            Support::Real => x.is_finite(),
            Support::Positive => x > 0.0 && x < f64::INFINITY,
            Support::UnitInterval => x > 0.0 && x < 1.0,
            Support::Interval { low, high } => x > low && x < high,
            Support::NonNegativeInteger => x >= 0.0 && x.fract() == 0.0 && x < f64::INFINITY,
            Support::Binary => x == 0.0 || x == 1.0,
            Support::BoundedCount { max } => x >= 0.0 && x.fract() == 0.0 && x <= max as f64,
            Support::CategoryIndex { categories } => {
                x >= 0.0 && x.fract() == 0.0 && x < categories as f64
            }
            Support::RealVector
            | Support::Simplex
            | Support::Ordered
            | Support::PositiveOrdered
            | Support::CorrelationCholesky => false,
        }
    }
}
