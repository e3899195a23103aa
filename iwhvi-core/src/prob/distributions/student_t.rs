//! Student's t distribution.

use rand::Rng;
use rand::distr::Distribution as _;
use std::f64::consts::PI;

use super::supports::Real;
use super::{Distribution, DistributionError, Reparameterized, Support, check};
use crate::scalar::Scalar;

/// Student's t distribution with `df > 0` degrees of freedom, location
/// `loc` and scale `scale > 0`; with `z = (x - loc) / scale`:
///
/// `log p(x) = ln Γ((ν+1)/2) - ln Γ(ν/2) - ½ ln(νπ) - ln scale - (ν+1)/2 · ln(1 + z²/ν)`.
///
/// Reparameterized in `loc` and `scale`: `x = loc + scale · t`, with `t` a
/// standard t draw of `df` degrees of freedom (no gradient flows to `df`
/// through a draw).
///
/// ```
/// use iwhvi_core::distributions::{Cauchy, Distribution, StudentT};
/// // One degree of freedom is the Cauchy distribution.
/// let t = StudentT::new(1.0, 0.5, 2.0).unwrap();
/// let c = Cauchy::new(0.5, 2.0).unwrap();
/// assert!((t.log_prob(3.0) - c.log_prob(3.0)).abs() < 1e-14);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StudentT<T: Scalar = f64> {
    df: T,
    loc: T,
    scale: T,
}

impl<T: Scalar> StudentT<T> {
    /// Student's t with `df` degrees of freedom, location `loc`, scale `scale`.
    ///
    /// # Errors
    /// If `df` or `scale` is not positive and finite, or `loc` is not finite.
    pub fn new(df: T, loc: T, scale: T) -> Result<Self, DistributionError> {
        Ok(Self {
            df: check::positive("StudentT", "df", df)?,
            loc: check::finite("StudentT", "loc", loc)?,
            scale: check::positive("StudentT", "scale", scale)?,
        })
    }

    /// The degrees of freedom.
    pub fn df(&self) -> T {
        self.df
    }

    /// The location.
    pub fn loc(&self) -> T {
        self.loc
    }

    /// The scale.
    pub fn scale(&self) -> T {
        self.scale
    }
}

impl<T: Scalar> Distribution<T> for StudentT<T> {
    type Value = T;
    type Support = Real;

    fn log_prob(&self, x: T) -> T {
        let z = (x - self.loc) / self.scale;
        let half_df = self.df * 0.5;
        let half_df_plus_half = half_df + 0.5;
        half_df_plus_half.ln_gamma()
            - half_df.ln_gamma()
            - (self.df * PI).ln() * 0.5
            - self.scale.ln()
            - half_df_plus_half * (z * z / self.df).ln_1p()
    }

    fn support(&self) -> Support {
        Support::Real
    }
}

impl<T: Scalar> Reparameterized<T> for StudentT<T> {
    fn sample_noise<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        rand_distr::StudentT::new(self.df.value())
            .expect("df was validated positive")
            .sample(rng)
    }

    fn rsample(&self, noise: f64) -> T {
        self.loc + self.scale * noise
    }
}

impl rand::distr::Distribution<f64> for StudentT<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        self.rsample(self.sample_noise(rng))
    }
}
