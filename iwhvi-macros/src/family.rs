//! What the macro knows about the runtime's distributions: their
//! parameters and their support (named as iwhvi-core's support types).

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::ast::{Constraint, Elem};

/// How a parameter is passed: as a scalar (`T`) or as a count (`u64`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Param {
    Real,
    Count,
    /// A whole vector (`Vec<T>`): a data vector or a vector latent.
    Vector,
    /// A matrix (`DMatrix<T>`): a data matrix.
    Matrix,
}

/// The values a parameter's constructor accepts, as iwhvi-core's
/// constructors check them (`distributions::check`): the macro rejects a
/// constant outside it at compile time, and the generated `new` data outside
/// it; the runtime constructor stays the judge of everything else.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Domain {
    /// Finite.
    Finite,
    /// Positive and finite.
    Positive,
    /// In `[0, 1]`.
    Probability,
    /// Not NaN (an infinite log-odds is a certain outcome).
    Number,
    /// A non-negative whole number (a count passed as `u64`).
    Count,
    /// Finite and greater than the parameter at that position (`Uniform`'s
    /// `high`, above `low`).
    FiniteAbove(usize),
    /// Not checked by the macro (a matrix: the constructor factorises it).
    Unchecked,
}

impl Domain {
    /// True when `value` lies in the domain (for `FiniteAbove`, its
    /// finiteness only: the relation needs the other parameter).
    pub fn contains(self, value: f64) -> bool {
        match self {
            Domain::Finite | Domain::FiniteAbove(_) => value.is_finite(),
            Domain::Positive => value.is_finite() && value > 0.0,
            Domain::Probability => (0.0..=1.0).contains(&value),
            Domain::Number => !value.is_nan(),
            Domain::Count => value >= 0.0 && value.fract() == 0.0 && value.is_finite(),
            Domain::Unchecked => true,
        }
    }

    /// What a value must be, in the runtime's words (`DistributionError`'s
    /// `requirement`).
    pub fn requirement(self) -> &'static str {
        match self {
            Domain::Finite | Domain::FiniteAbove(_) => "finite",
            Domain::Positive => "positive and finite",
            Domain::Probability => "a probability in [0, 1]",
            Domain::Number => "a number",
            Domain::Count => "a non-negative whole number",
            Domain::Unchecked => "valid",
        }
    }

    /// What to write instead of `value`.
    pub fn suggestion(self, value: f64) -> String {
        match self {
            Domain::Positive if value.is_finite() && value < 0.0 => {
                format!("write a positive number, e.g. `{:?}`", -value)
            }
            Domain::Positive => "write a positive number, e.g. `1.0`".into(),
            Domain::Probability => "write a number from 0 to 1, e.g. `0.5`".into(),
            Domain::Count => "write a non-negative whole number, e.g. `10`".into(),
            _ => "write a finite number, e.g. `0.0`".into(),
        }
    }

    /// The generated test that `__value` (an `f64`) lies in the domain, as
    /// the model's `new` checks data-valued parameters; `None` where the
    /// macro does not check.
    pub fn data_check(self) -> Option<TokenStream> {
        Some(match self {
            // Data are finite (checked first): nothing more to check.
            Domain::Finite | Domain::FiniteAbove(_) | Domain::Number => return None,
            Domain::Positive => quote!(__value.is_finite() && __value > 0.0),
            Domain::Probability => quote!((0.0..=1.0).contains(&__value)),
            Domain::Count => quote!(__value >= 0.0 && __value.fract() == 0.0),
            Domain::Unchecked => return None,
        })
    }
}

/// The support of a family, named as iwhvi-core's support type
/// (`iwhvi_core::distributions::supports::*`): the runtime owns what each
/// support means and its default transform; the macro keeps only the
/// distinctions its compile-time checks need.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Real,
    Positive,
    UnitInterval,
    /// `(low, high)` given by the first two parameters: no default
    /// transform, the macro builds one from the (data-only) parameters.
    Interval,
    /// A discrete family (`NonNegativeInteger`, `Binary`, `BoundedCount`):
    /// only for observations.
    NonNegativeInteger,
    Binary,
    BoundedCount,
    /// A user-defined family: its support is a type the compiler checks.
    User,
    /// Vectors on the simplex (a multivariate family).
    Simplex,
    /// Vectors in Rᵈ (a multivariate family).
    RealVector,
    /// Strictly increasing vectors (`constraint = ordered`).
    Ordered,
    /// Strictly increasing positive vectors (`constraint = positive_ordered`).
    PositiveOrdered,
    /// Cholesky factors of correlation matrices (`LkjCholesky`): only for
    /// `DMatrix<f64>` latents.
    CorrelationCholesky,
}

impl Support {
    /// The name of iwhvi-core's support type, whose `DEFAULT_TRANSFORM`
    /// the generated code reads (`None` for user-defined families, whose
    /// support type is their own).
    pub fn core_type(self) -> Option<&'static str> {
        Some(match self {
            Support::Real => "Real",
            Support::Positive => "Positive",
            Support::UnitInterval => "UnitInterval",
            Support::Interval => "Interval",
            Support::NonNegativeInteger => "NonNegativeInteger",
            Support::Binary => "Binary",
            Support::BoundedCount => "BoundedCount",
            Support::Simplex => "Simplex",
            Support::RealVector => "RealVector",
            Support::Ordered => "Ordered",
            Support::PositiveOrdered => "PositiveOrdered",
            Support::CorrelationCholesky => "CorrelationCholesky",
            Support::User => return None,
        })
    }

    /// The support a vector latent's `constraint = …` restricts it to: its
    /// transform is that core support type's `DEFAULT_TRANSFORM`, like a
    /// prior's, so the support → transform map is core's alone.
    pub fn of_constraint(constraint: Constraint) -> Self {
        match constraint {
            Constraint::Ordered => Support::Ordered,
            Constraint::PositiveOrdered => Support::PositiveOrdered,
            Constraint::Simplex => Support::Simplex,
            Constraint::CholeskyCorr => Support::CorrelationCholesky,
        }
    }

    /// What an observation under this support must satisfy, as the
    /// model's `new` checks it: a test of `__value` (of element type
    /// `elem`) and the support's description for `DataError`; `None` where
    /// the support depends on the parameters, or every value of the type
    /// lies in it (`bool` under `Binary`).
    pub fn data_check(self, elem: Elem) -> Option<(TokenStream, &'static str)> {
        Some(match (self, elem) {
            (Support::Binary, Elem::Integer) => {
                (quote!((0..=1).contains(&(__value as i128))), "0 or 1")
            }
            (Support::NonNegativeInteger | Support::BoundedCount, Elem::Integer) => {
                (quote!((__value as i128) >= 0), "non-negative counts")
            }
            (Support::Positive, Elem::Real) => (quote!(__value > 0.0), "positive reals"),
            (Support::UnitInterval, Elem::Real) => {
                (quote!((0.0..=1.0).contains(&__value)), "[0, 1]")
            }
            _ => return None,
        })
    }

    /// True for discrete supports.
    pub fn is_discrete(self) -> bool {
        matches!(
            self,
            Support::NonNegativeInteger | Support::Binary | Support::BoundedCount
        )
    }
}

/// A family the macro can call: `name(params…)`.
pub struct Family {
    pub name: &'static str,
    /// Each parameter's name, how it is passed and the domain its
    /// constructor accepts (for vectors, each element's).
    pub params: &'static [(&'static str, Param, Domain)],
    pub support: Support,
}

impl Family {
    /// True for families over whole vectors.
    pub fn multivariate(&self) -> bool {
        matches!(
            self.support,
            Support::Simplex | Support::RealVector | Support::CorrelationCholesky
        )
    }

    /// True for discrete families.
    pub fn discrete(&self) -> bool {
        self.support.is_discrete()
    }

    /// The runtime type and its constructor.
    pub fn constructor(&self) -> (&'static str, &'static str) {
        match self.name {
            "MultivariateNormal" => ("MultivariateNormal", "from_covariance"),
            "MultivariateNormalCholesky" => ("MultivariateNormal", "from_cholesky"),
            other => (other, "new"),
        }
    }
}

const R: Param = Param::Real;
const F: Domain = Domain::Finite;
const P: Domain = Domain::Positive;

pub const FAMILIES: &[Family] = &[
    // Improper flat priors (Stan's "no prior statement"): no density term,
    // only the transform's Jacobian.
    Family {
        name: "Flat",
        params: &[],
        support: Support::Real,
    },
    Family {
        name: "FlatPositive",
        params: &[],
        support: Support::Positive,
    },
    Family {
        name: "Normal",
        params: &[("loc", R, F), ("scale", R, P)],
        support: Support::Real,
    },
    Family {
        name: "LogNormal",
        params: &[("loc", R, F), ("scale", R, P)],
        support: Support::Positive,
    },
    Family {
        name: "HalfNormal",
        params: &[("scale", R, P)],
        support: Support::Positive,
    },
    Family {
        name: "Cauchy",
        params: &[("loc", R, F), ("scale", R, P)],
        support: Support::Real,
    },
    Family {
        name: "HalfCauchy",
        params: &[("scale", R, P)],
        support: Support::Positive,
    },
    Family {
        name: "StudentT",
        params: &[("df", R, P), ("loc", R, F), ("scale", R, P)],
        support: Support::Real,
    },
    Family {
        name: "Laplace",
        params: &[("loc", R, F), ("scale", R, P)],
        support: Support::Real,
    },
    Family {
        name: "Logistic",
        params: &[("loc", R, F), ("scale", R, P)],
        support: Support::Real,
    },
    Family {
        name: "Exponential",
        params: &[("rate", R, P)],
        support: Support::Positive,
    },
    Family {
        name: "Gamma",
        params: &[("shape", R, P), ("rate", R, P)],
        support: Support::Positive,
    },
    Family {
        name: "InverseGamma",
        params: &[("shape", R, P), ("scale", R, P)],
        support: Support::Positive,
    },
    Family {
        name: "Beta",
        params: &[("alpha", R, P), ("beta", R, P)],
        support: Support::UnitInterval,
    },
    Family {
        name: "Uniform",
        params: &[("low", R, F), ("high", R, Domain::FiniteAbove(0))],
        support: Support::Interval,
    },
    Family {
        name: "Weibull",
        params: &[("shape", R, P), ("scale", R, P)],
        support: Support::Positive,
    },
    Family {
        name: "Bernoulli",
        params: &[("prob", R, Domain::Probability)],
        support: Support::Binary,
    },
    Family {
        name: "BernoulliLogit",
        params: &[("logit", R, Domain::Number)],
        support: Support::Binary,
    },
    Family {
        name: "Binomial",
        params: &[
            ("total_count", Param::Count, Domain::Count),
            ("prob", R, Domain::Probability),
        ],
        support: Support::BoundedCount,
    },
    Family {
        name: "BinomialLogit",
        params: &[
            ("total_count", Param::Count, Domain::Count),
            ("logit", R, Domain::Number),
        ],
        support: Support::BoundedCount,
    },
    Family {
        name: "Poisson",
        params: &[("rate", R, P)],
        support: Support::NonNegativeInteger,
    },
    Family {
        name: "PoissonLog",
        params: &[("log_rate", R, F)],
        support: Support::NonNegativeInteger,
    },
    Family {
        name: "NegativeBinomial2",
        params: &[("mean", R, P), ("concentration", R, P)],
        support: Support::NonNegativeInteger,
    },
    Family {
        name: "Dirichlet",
        params: &[("concentration", Param::Vector, P)],
        support: Support::Simplex,
    },
    Family {
        name: "MultivariateNormal",
        params: &[
            ("loc", Param::Vector, F),
            ("covariance", Param::Matrix, Domain::Unchecked),
        ],
        support: Support::RealVector,
    },
    Family {
        name: "MultivariateNormalCholesky",
        params: &[
            ("loc", Param::Vector, F),
            ("scale_tril", Param::Matrix, Domain::Unchecked),
        ],
        support: Support::RealVector,
    },
    // Over `K × K` correlation Cholesky factors (Stan's
    // `lkj_corr_cholesky`): the order `K` is the latent's `dim`, which the
    // macro passes to the constructor before `shape`.
    Family {
        name: "LkjCholesky",
        params: &[("shape", R, P)],
        support: Support::CorrelationCholesky,
    },
];

/// The stand-in for user-defined families (`my::Family(args…)`).
pub const USER: Family = Family {
    name: "user-defined",
    params: &[],
    support: Support::User,
};

/// True for the improper flat families, which have no runtime type.
pub fn is_flat(name: &str) -> bool {
    name == "Flat" || name == "FlatPositive"
}

/// The family of that name.
pub fn family(name: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.name == name)
}

/// The candidate closest to `name` by edit distance, if it is close enough
/// to be a plausible misspelling.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            previous = current;
        }
    }
    row[b.len()]
}
