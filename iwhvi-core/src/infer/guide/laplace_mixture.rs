//! The toy of Sobolev & Vetrov (2019): the Laplace distribution written as
//! a Gaussian scale mixture, a hierarchical "guide" whose marginal density
//! is known exactly.

use rand::Rng;

use super::{HierarchicalGuide, ParamLayout, Workspace};
use crate::scalar::Scalar;
use crate::special::LN_SQRT_2PI;

/// Which reverse model `τ(η | z)` the toy uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LaplaceReverse {
    /// The exact posterior of the mixing variable: every importance weight
    /// equals `log q(z)`.
    Exact,
    /// `τ := q(η)` (SIVI).
    Prior,
    /// A learned Gaussian `N(η_d; a ln|z_d| + b, exp(c ln|z_d| + e)²)`, the
    /// four parameters `(a, b, c, e)` shared by all dimensions.
    Learned,
}

/// `z_d | ψ_d ~ N(0, ψ_d)`, `ψ_d ~ Exponential(rate ½)`, independently for
/// `d = 1..D`, so that `z_d ~ Laplace(0, 1)`: `log q(z) = −Σ (ln 2 + |z_d|)`
/// and `E log q(z) = −D (1 + ln 2)`.
///
/// The mixing variable is `η = ln ψ` (so that a Gaussian reverse model fits
/// its posterior): `log q(η) = ln ½ − e^η / 2 + η`, drawn as
/// `η = ln(−2 ln Φ(−ε))` from standard normal `ε`. The exact posterior is
/// `1/ψ_d | z_d ~ InverseGaussian(mean 1/|z_d|, shape 1)`, drawn by
/// Michael, Schucany & Haas from two normals per dimension; its log density
/// in `η` is `−½ ln 2π − ½η − z²e^{−η}/2 − e^η/2 + |z| + η`.
///
/// ```
/// use iwhvi_core::guide::{HierarchicalGuide, LaplaceMixture, LaplaceReverse};
/// let toy = LaplaceMixture::new(30, LaplaceReverse::Exact);
/// assert_eq!((toy.latent_dim(), toy.mixing_dim()), (30, 30));
/// assert!((toy.expected_log_density() + 30.0 * (1.0 + 2f64.ln())).abs() < 1e-12);
/// ```
///
/// # Parameters
///
/// None for [`LaplaceReverse::Exact`] and [`LaplaceReverse::Prior`]. The
/// learned reverse model `N(η_d; a ln|z_d| + b, exp(c ln|z_d| + e)²)` has
/// two blocks of two, shared by all dimensions:
///
/// | block | shape | meaning |
/// |---|---|---|
/// | `reverse.mean` | `[2]` | `(a, b)`: the mean `a ln\|z_d\| + b` |
/// | `reverse.log_scale` | `[2]` | `(c, e)`: the log-sd `c ln\|z_d\| + e` |
///
/// Setting them by hand: with `a = c = 0` the reverse model is
/// `N(b, e^{2e})` whatever `z`.
///
/// ```
/// use iwhvi_core::guide::{HierarchicalGuide, LaplaceMixture, LaplaceReverse, Workspace};
///
/// let toy = LaplaceMixture::new(1, LaplaceReverse::Learned);
/// let layout = toy.param_layout();
/// let mut params = vec![0.0; layout.len()];
/// params[layout.get("reverse.mean").unwrap().range.clone()].copy_from_slice(&[0.0, 0.5]);
/// params[layout.get("reverse.log_scale").unwrap().range.clone()].copy_from_slice(&[0.0, 0.0]);
/// let mut workspace = Workspace::new(&toy);
/// let log_tau = toy.log_reverse(&params, &[1.7], &[0.5], &mut workspace);
/// // log N(0.5; b = 0.5, 1) = −½ ln 2π.
/// assert!((log_tau + 0.5 * (2.0 * std::f64::consts::PI).ln()).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "SavedLaplaceMixture")]
pub struct LaplaceMixture {
    dim: usize,
    reverse: LaplaceReverse,
}

impl LaplaceMixture {
    /// The `dim`-dimensional toy with the given reverse model.
    pub fn new(dim: usize, reverse: LaplaceReverse) -> Self {
        Self { dim, reverse }
    }

    /// `E log q(z) = −D (1 + ln 2)`, the truth the bounds are measured
    /// against.
    pub fn expected_log_density(&self) -> f64 {
        -(self.dim as f64) * (1.0 + std::f64::consts::LN_2)
    }

    /// The exact `log q(z) = −Σ (ln 2 + |z_d|)`.
    pub fn log_density(&self, z: &[f64]) -> f64 {
        z.iter()
            .map(|zd| -(std::f64::consts::LN_2 + zd.abs()))
            .sum()
    }
}

/// `η = ln ψ` for `ψ = −2 ln Φ(−ε) ~ Exponential(½)`.
fn mixing_draw(epsilon: f64) -> f64 {
    (-2.0 * crate::special::std_normal_log_cdf(-epsilon)).ln()
}

impl HierarchicalGuide for LaplaceMixture {
    fn latent_dim(&self) -> usize {
        self.dim
    }

    fn mixing_dim(&self) -> usize {
        self.dim
    }

    fn has_reverse_model(&self) -> bool {
        self.reverse != LaplaceReverse::Prior
    }

    fn param_layout(&self) -> ParamLayout {
        let mut layout = ParamLayout::default();
        if self.reverse == LaplaceReverse::Learned {
            layout.push("reverse.mean", &[2]);
            layout.push("reverse.log_scale", &[2]);
        }
        layout
    }

    fn reverse_params(&self) -> std::ops::Range<usize> {
        // All the parameters, when there are any: the learned τ's four.
        match self.reverse {
            LaplaceReverse::Learned => 0..4,
            LaplaceReverse::Exact | LaplaceReverse::Prior => 0..0,
        }
    }

    fn init_params<R: Rng + ?Sized>(&self, _rng: &mut R) -> Vec<f64> {
        match self.reverse {
            // η ≈ ln|z| with unit scale.
            LaplaceReverse::Learned => vec![1.0, 0.0, 0.0, 0.0],
            _ => Vec::new(),
        }
    }

    fn reverse_noise_dim(&self) -> usize {
        match self.reverse {
            LaplaceReverse::Exact => 2 * self.dim,
            _ => self.dim,
        }
    }

    fn sample_mixing<T: Scalar>(&self, _params: &[T], noise: &[f64], psi: &mut [T]) {
        for (p, &e) in psi.iter_mut().zip(noise) {
            *p = T::constant(mixing_draw(e));
        }
    }

    fn log_mixing<T: Scalar>(&self, _params: &[T], eta: &[T]) -> T {
        eta.iter()
            .map(|&e| -e.exp() * 0.5 + e - std::f64::consts::LN_2)
            .sum()
    }

    fn sample_conditional<T: Scalar>(
        &self,
        _params: &[T],
        eta: &[T],
        noise: &[f64],
        z: &mut [T],
        _workspace: &mut Workspace<T>,
    ) {
        for ((zd, &e), &n) in z.iter_mut().zip(eta).zip(noise) {
            *zd = (e * 0.5).exp() * n;
        }
    }

    fn log_conditional<T: Scalar>(
        &self,
        _params: &[T],
        eta: &[T],
        z: &[T],
        _workspace: &mut Workspace<T>,
    ) -> T {
        let mut total = T::constant(-LN_SQRT_2PI * self.dim as f64);
        for (&e, &zd) in eta.iter().zip(z) {
            total -= zd * zd * (-e).exp() * 0.5 + e * 0.5;
        }
        total
    }

    fn sample_reverse<T: Scalar>(
        &self,
        params: &[T],
        z: &[T],
        noise: &[f64],
        eta: &mut [T],
        _workspace: &mut Workspace<T>,
    ) {
        match self.reverse {
            LaplaceReverse::Prior => self.sample_mixing(params, noise, eta),
            LaplaceReverse::Exact => {
                for (d, e) in eta.iter_mut().enumerate() {
                    // 1/ψ ~ IG(μ = 1/|z|, λ = 1) by Michael, Schucany & Haas.
                    let mu = 1.0 / z[d].value().abs();
                    let y = noise[2 * d].powi(2);
                    let x =
                        mu + mu * mu * y / 2.0 - mu / 2.0 * (4.0 * mu * y + mu * mu * y * y).sqrt();
                    let u = crate::special::std_normal_log_cdf(noise[2 * d + 1]).exp();
                    let inverse_psi = if u <= mu / (mu + x) { x } else { mu * mu / x };
                    *e = T::constant(-inverse_psi.ln());
                }
            }
            LaplaceReverse::Learned => {
                for ((e, &zd), &n) in eta.iter_mut().zip(z).zip(noise) {
                    let log_abs = zd.abs().ln();
                    *e = params[0] * log_abs
                        + params[1]
                        + (params[2] * log_abs + params[3]).exp() * n;
                }
            }
        }
    }

    fn log_reverse<T: Scalar>(
        &self,
        params: &[T],
        z: &[T],
        eta: &[T],
        _workspace: &mut Workspace<T>,
    ) -> T {
        match self.reverse {
            LaplaceReverse::Prior => self.log_mixing(params, eta),
            LaplaceReverse::Exact => {
                let mut total = T::constant(-LN_SQRT_2PI * self.dim as f64);
                for (&e, &zd) in eta.iter().zip(z) {
                    total += e * 0.5 - zd * zd * (-e).exp() * 0.5 - e.exp() * 0.5 + zd.abs();
                }
                total
            }
            LaplaceReverse::Learned => {
                let mut total = T::constant(-LN_SQRT_2PI * self.dim as f64);
                for (&e, &zd) in eta.iter().zip(z) {
                    let log_abs = zd.abs().ln();
                    let log_scale = params[2] * log_abs + params[3];
                    let r = (e - params[0] * log_abs - params[1]) * (-log_scale).exp();
                    total -= r * r * 0.5 + log_scale;
                }
                total
            }
        }
    }
}

/// What a saved [`LaplaceMixture`] holds; loading checks the size against
/// [`MAX_SAVED_DIM`](super::MAX_SAVED_DIM).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedLaplaceMixture {
    dim: usize,
    reverse: LaplaceReverse,
}

impl TryFrom<SavedLaplaceMixture> for LaplaceMixture {
    type Error = String;

    fn try_from(saved: SavedLaplaceMixture) -> Result<Self, String> {
        super::check_saved_dims(&[("dim", saved.dim)])?;
        Ok(Self::new(saved.dim, saved.reverse))
    }
}
