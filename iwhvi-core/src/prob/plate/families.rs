//! The univariate families as [`Family`] implementations, for
//! [`ScalarKernel`](super::ScalarKernel).

use crate::distributions::{
    Bernoulli, BernoulliLogit, Beta, Binomial, BinomialLogit, Cauchy, Exponential, Gamma,
    HalfCauchy, HalfNormal, InverseGamma, Laplace, LogNormal, Logistic, NegativeBinomial2, Normal,
    Poisson, PoissonLog, StudentT, Uniform, Weibull, log_prob_or_neg_inf,
};
use crate::scalar::Scalar;

/// A univariate family of distributions as a plate sees it: `ARGS` real
/// arguments and an observation, with
/// `log_prob(args, obs) = log_prob_or_neg_inf(Family::new(args…), obs)`:
/// the scalar path, `−∞` for arguments the constructor rejects.
///
/// Implemented for every univariate family of
/// [`distributions`](crate::distributions) (named by its `f64` type, e.g.
/// `Normal`). Continuous families observe an `f64`, the discrete ones a
/// `u64`; the binomial families observe `(total_count, count)`, since their
/// integer argument is data.
///
/// ```
/// use iwhvi_core::distributions::{Distribution, Normal};
/// use iwhvi_core::plate::Family;
///
/// assert_eq!(<Normal as Family>::ARGS, 2);
/// let lp = <Normal as Family>::log_prob(&[0.0, 1.0], 0.5);
/// assert_eq!(lp, Normal::new(0.0, 1.0).unwrap().log_prob(0.5));
/// assert_eq!(<Normal as Family>::log_prob(&[0.0, -1.0], 0.5), f64::NEG_INFINITY);
/// ```
pub trait Family {
    /// The number of real arguments.
    const ARGS: usize;
    /// One observation.
    type Obs: Copy;

    /// `log f(obs | args)`, or `−∞` for arguments outside the family's
    /// domain.
    ///
    /// # Panics
    /// If `args.len() < ARGS`.
    fn log_prob<T: Scalar>(args: &[T], obs: Self::Obs) -> T;
}

macro_rules! continuous {
    ($($family:ident($($a:tt),+);)+) => {$(
        impl Family for $family {
            const ARGS: usize = [$($a),+].len();
            type Obs = f64;
            #[inline]
            fn log_prob<T: Scalar>(args: &[T], obs: f64) -> T {
                log_prob_or_neg_inf($family::new($(args[$a]),+), T::constant(obs))
            }
        }
    )+};
}

macro_rules! discrete {
    ($($family:ident($($a:tt),+);)+) => {$(
        impl Family for $family {
            const ARGS: usize = [$($a),+].len();
            type Obs = u64;
            #[inline]
            fn log_prob<T: Scalar>(args: &[T], obs: u64) -> T {
                log_prob_or_neg_inf($family::new($(args[$a]),+), obs)
            }
        }
    )+};
}

macro_rules! binomial {
    ($($family:ident;)+) => {$(
        impl Family for $family {
            const ARGS: usize = 1;
            type Obs = (u64, u64);
            #[inline]
            fn log_prob<T: Scalar>(args: &[T], (total_count, count): (u64, u64)) -> T {
                log_prob_or_neg_inf($family::new(total_count, args[0]), count)
            }
        }
    )+};
}

continuous! {
    Normal(0, 1);
    LogNormal(0, 1);
    HalfNormal(0);
    Cauchy(0, 1);
    HalfCauchy(0);
    StudentT(0, 1, 2);
    Laplace(0, 1);
    Logistic(0, 1);
    Exponential(0);
    Gamma(0, 1);
    InverseGamma(0, 1);
    Beta(0, 1);
    Uniform(0, 1);
    Weibull(0, 1);
}

discrete! {
    Bernoulli(0);
    BernoulliLogit(0);
    Poisson(0);
    PoissonLog(0);
    NegativeBinomial2(0, 1);
}

binomial! {
    Binomial;
    BinomialLogit;
}
