//! The Laplace approximation: a Gaussian at the mode of the log joint in
//! the unconstrained space, `N(u; û, Σ)` with `Σ = (−∇² log p(x, û))⁻¹`.
//!
//! Its uses here: a fast first look at a posterior, the Laplace estimate of
//! `log p(x)`, and above all a *preconditioner*:
//! [`Laplace::precondition`] wraps any guide so that it is fitted in the
//! coordinates `z = L⁻¹(u − û)` (`L Lᵀ = Σ`), where the posterior is close
//! to `N(0, I)` whatever the scales and correlations of the model's own
//! coordinates. On posteriordb's `kilpisjarvi` (a regression on calendar
//! years: the intercept and slope are correlated at about −0.9999) plain
//! Gaussian guides do not converge in 30,000 steps (`docs/ACCURACY.md`);
//! preconditioned, mean-field matches the reference
//! (`tests/laplace_preconditioning.rs`).
//!
//! The mode is found by damped Newton steps (Levenberg–Marquardt on
//! `−log p`) with the exact gradient of the [forward-mode
//! engine](mod@crate::gradient) and a Hessian by central differences of those
//! gradients. A posterior without a finite mode (a funnel, whose density
//! grows without bound at its neck) is reported as
//! [`LaplaceError::NoMode`], not approximated. Newton's method finds the
//! mode nearest its start; on a posterior with several modes,
//! [`laplace_multistart`] starts from many points and keeps the mode with
//! the most mass.
//!
//! ```
//! use iwhvi_core::laplace::laplace;
//! use iwhvi_core::model::{LatentSpec, Layout, Model};
//! use iwhvi_core::scalar::Scalar;
//! use iwhvi_core::transforms::Transform;
//!
//! /// log p(u) = −(u₀² + 4 u₁²)/2: a Gaussian with sds 1 and 1/2, mode 0.
//! struct Ellipse;
//! impl Model for Ellipse {
//!     fn layout(&self) -> Layout {
//!         Layout::new(vec![LatentSpec::vector("u", 2, Transform::Identity)])
//!     }
//!     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
//!         -(u[0].square() + u[1].square() * 4.0) * 0.5
//!     }
//! }
//!
//! let fit = laplace(&Ellipse)?;
//! assert!(fit.mode.iter().all(|m| m.abs() < 1e-8));
//! assert!((fit.scale_tril[0] - 1.0).abs() < 1e-6 && (fit.scale_tril[3] - 0.5).abs() < 1e-6);
//! // ∫ exp(log p) du = 2π · 1 · ½, exact for a Gaussian.
//! assert!((fit.log_evidence() - std::f64::consts::PI.ln()).abs() < 1e-6);
//! # Ok::<(), iwhvi_core::laplace::LaplaceError>(())
//! ```

use nalgebra::{DMatrix, DVector};

use crate::gradient::{ForwardEngine, Parallelism};
use crate::guide::{HierarchicalGuide, PreconditionError, Preconditioned};
use crate::input::InputError;
use crate::model::Model;
use crate::objective::LogJoint;
use crate::special::LN_SQRT_2PI;

/// A Gaussian approximation at the mode of `log p(x, u)`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Laplace {
    /// The mode `û` (unconstrained).
    pub mode: Vec<f64>,
    /// `log p(x, û)`.
    pub log_joint: f64,
    /// `L` with `L Lᵀ = Σ = (−∇² log p(x, û))⁻¹`, row-major `D × D`, lower
    /// triangular.
    pub scale_tril: Vec<f64>,
    /// Newton steps taken.
    pub steps: usize,
}

/// Why there is no Laplace approximation.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LaplaceError {
    /// The log joint is not finite at the starting point.
    #[error(
        "the log joint is {value} at the starting point: start where the model has a finite density"
    )]
    NotFinite {
        /// `log p(x, u₀)`.
        value: f64,
    },
    /// Newton's method did not converge: the density may have no finite
    /// mode (a funnel's neck), or be flat in some direction (an improper
    /// posterior).
    #[error(
        "no mode found in {steps} Newton steps (largest gradient entry {gradient:.3e} at the last point): \
         the posterior may have no finite mode (a funnel) or be improper"
    )]
    NoMode {
        /// Steps taken.
        steps: usize,
        /// `max |∇ log p|` at the last point.
        gradient: f64,
    },
    /// The covariance at the mode is numerically singular (a direction
    /// the data do not constrain).
    #[error(
        "the covariance at the mode is numerically singular: a direction of the posterior is (nearly) flat"
    )]
    NotNegativeDefinite,
    /// The starting point does not have the model's dimension.
    #[error("the model has {expected} unconstrained coordinates, the starting point {found}")]
    WrongLength {
        /// The model's `D`.
        expected: usize,
        /// The starting point's length.
        found: usize,
    },
    /// A setting of [`MultiStart`], or [`LaplaceOptions`]' tolerance, is
    /// outside the values it can take.
    #[error(transparent)]
    Input(#[from] InputError),
}

/// Newton's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LaplaceOptions {
    /// The most Newton steps (default 500).
    pub max_steps: usize,
    /// Converged when the Newton decrement `½ gᵀ(−H)⁻¹g` (the predicted
    /// gain in `log p`) falls below this times `1 + |log p|` (default
    /// 1e-12).
    pub tolerance: f64,
}

impl Default for LaplaceOptions {
    fn default() -> Self {
        Self {
            max_steps: 500,
            tolerance: 1e-12,
        }
    }
}

impl Laplace {
    /// The dimension `D`.
    pub fn dim(&self) -> usize {
        self.mode.len()
    }

    /// The Laplace estimate of the evidence,
    /// `log p(x) ≈ log p(x, û) + (D/2) ln 2π + ½ ln det Σ`
    /// (exact when the posterior is Gaussian in `u`).
    pub fn log_evidence(&self) -> f64 {
        let d = self.dim();
        let log_det: f64 = (0..d).map(|i| self.scale_tril[i * d + i].ln()).sum();
        self.log_joint + d as f64 * LN_SQRT_2PI + log_det
    }

    /// `guide` fitted in the whitened coordinates `z = L⁻¹(u − û)`: see
    /// [`Preconditioned`].
    ///
    /// # Errors
    /// [`PreconditionError`] when the guide's dimension is not `D`, or the
    /// guide is already preconditioned.
    pub fn precondition<G: HierarchicalGuide>(
        &self,
        guide: G,
    ) -> Result<Preconditioned<G>, PreconditionError> {
        Preconditioned::new(guide, self.mode.clone(), self.scale_tril.clone())
    }
}

/// The Laplace approximation of `model`'s posterior, Newton's method
/// started at `u = 0`.
///
/// # Errors
/// [`LaplaceError`].
pub fn laplace<Mo: Model>(model: &Mo) -> Result<Laplace, LaplaceError> {
    laplace_from(model, &vec![0.0; model.dim()], LaplaceOptions::default())
}

/// [`laplace`] from `init`, with `options`.
///
/// # Errors
/// [`LaplaceError`].
pub fn laplace_from<Mo: Model>(
    model: &Mo,
    init: &[f64],
    options: LaplaceOptions,
) -> Result<Laplace, LaplaceError> {
    // A NaN or negative tolerance would never be met: Newton would run to
    // `max_steps` and report no mode, which sends the user the wrong way.
    if !(options.tolerance >= 0.0 && options.tolerance.is_finite()) {
        return Err(LaplaceError::Input(InputError::InvalidSetting {
            setting: "tolerance",
            value: options.tolerance.to_string(),
            requirement: "the Newton decrement's tolerance is finite and not negative",
        }));
    }
    crate::plate::with_plate_cache(|| laplace_in_scope(model, init, options))
}

/// [`laplace_from`] inside a plate-cache scope (the model's affine plates
/// record their derivatives once for all the Newton steps).
fn laplace_in_scope<Mo: Model>(
    model: &Mo,
    init: &[f64],
    options: LaplaceOptions,
) -> Result<Laplace, LaplaceError> {
    let d = init.len();
    let engine = ForwardEngine::<16>::new().with_parallelism(Parallelism::SingleThread);
    let f = LogJoint(model);
    let gradient = |u: &[f64]| DVector::from_vec(engine.value_and_gradient(&f, u).1);
    let hessian = |u: &[f64]| {
        let mut columns = Vec::with_capacity(d);
        let mut point = u.to_vec();
        for j in 0..d {
            let h = 1e-5 * (1.0 + u[j].abs());
            point[j] = u[j] + h;
            let plus = gradient(&point);
            point[j] = u[j] - h;
            let minus = gradient(&point);
            point[j] = u[j];
            columns.push((plus - minus) / (2.0 * h));
        }
        let m = DMatrix::from_columns(&columns);
        (&m + m.transpose()) * 0.5
    };

    if d != model.dim() {
        return Err(LaplaceError::WrongLength {
            expected: model.dim(),
            found: d,
        });
    }
    let mut u = init.to_vec();
    let mut value = model.log_joint(&u);
    if !value.is_finite() {
        return Err(LaplaceError::NotFinite { value });
    }
    if d == 0 {
        return Ok(Laplace {
            mode: u,
            log_joint: value,
            scale_tril: Vec::new(),
            steps: 0,
        });
    }
    // Converged when the Newton decrement (the predicted gain in log p) is
    // below the tolerance, relative to 1 + |log p| (rounding in log p
    // scales with it).
    let threshold = |value: f64, tolerance: f64| tolerance * (1.0 + value.abs());
    let mut damping = 1e-3;
    let mut steps = 0;
    let precision = loop {
        let g = gradient(&u);
        let negative_h = -hessian(&u);
        let factor = negative_h.clone().cholesky();
        let decrement = factor.as_ref().map(|c| 0.5 * g.dot(&c.solve(&g)));
        let factor = match (factor, decrement) {
            (Some(c), Some(dec)) if dec < threshold(value, options.tolerance) => break c,
            (factor, _) => factor,
        };
        if steps == options.max_steps {
            return Err(LaplaceError::NoMode {
                steps,
                gradient: g.amax(),
            });
        }
        let mut accepted = false;
        while damping <= 1e12 {
            let system = &negative_h + DMatrix::identity(d, d) * damping;
            if let Some(c) = system.cholesky() {
                let step = c.solve(&g);
                let trial: Vec<f64> = u.iter().zip(step.iter()).map(|(a, b)| a + b).collect();
                let trial_value = model.log_joint(&trial);
                if trial_value.is_finite() && trial_value >= value {
                    (u, value) = (trial, trial_value);
                    damping = (damping * 0.1).max(1e-12);
                    accepted = true;
                    break;
                }
            }
            damping *= 10.0;
        }
        if !accepted {
            // No ascent direction left: at the mode up to rounding when the
            // decrement is already tiny, else stuck.
            match (factor, decrement) {
                (Some(c), Some(dec)) if dec < threshold(value, 1e-8) => break c,
                _ => {
                    return Err(LaplaceError::NoMode {
                        steps,
                        gradient: g.amax(),
                    });
                }
            }
        }
        steps += 1;
    };
    let l = precision
        .inverse()
        .cholesky()
        .ok_or(LaplaceError::NotNegativeDefinite)?
        .l();
    let scale_tril = (0..d)
        .flat_map(|i| (0..d).map(move |j| (i, j)))
        .map(|(i, j)| l[(i, j)])
        .collect();
    Ok(Laplace {
        mode: u,
        log_joint: value,
        scale_tril,
        steps,
    })
}

/// How [`laplace_multistart`] chooses its starting points: `u = 0`, then
/// `starts − 1` points drawn uniformly from `[−radius, radius]ᴰ` (Stan's
/// `init = 2` for `radius = 2`) with a generator seeded by `seed`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MultiStart {
    /// Starting points, `u = 0` included (default 20).
    pub starts: usize,
    /// Half-width of the cube the random points are drawn from (default 2).
    pub radius: f64,
    /// Seed of the random points (default 0).
    pub seed: u64,
    /// Modes closer than this (largest coordinate difference) are one
    /// mode (default 1e-4).
    pub same_mode: f64,
}

impl Default for MultiStart {
    fn default() -> Self {
        Self {
            starts: 20,
            radius: 2.0,
            seed: 0,
            same_mode: 1e-4,
        }
    }
}

/// The outcome of [`laplace_multistart`]: the approximation at the mode
/// with the largest Laplace evidence, and every distinct mode found.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiStartLaplace {
    /// The approximation at the mode of largest Laplace evidence
    /// ([`Laplace::log_evidence`]): the mode that holds the most mass as
    /// far as a Gaussian at each mode can tell.
    pub best: Laplace,
    /// Every distinct mode found, best first, with how many starts reached
    /// it.
    pub modes: Vec<(Laplace, usize)>,
    /// Starts from which Newton's method failed (no finite density there,
    /// no mode, a singular Hessian).
    pub failed: usize,
}

impl MultiStartLaplace {
    /// The Laplace evidence of the best mode minus that of the worst: `0`
    /// for one mode. Above a few nats, the posterior has modes of very
    /// different mass, and a fit started at the wrong one (as one started
    /// at `u = 0` may be) sits in a mode that holds little of it.
    pub fn evidence_spread(&self) -> f64 {
        let evidences = self.modes.iter().map(|(m, _)| m.log_evidence());
        let worst = evidences.fold(f64::INFINITY, f64::min);
        self.best.log_evidence() - worst
    }
}

/// The Laplace approximation from several starting points (see
/// [`MultiStart`]), keeping the mode with the largest Laplace evidence.
///
/// A posterior with several modes (a mixture, an HMM's label switching, an
/// ODE model's local optima) sends Newton's method from `u = 0` to
/// whichever mode is nearest, which may hold little of the mass; the
/// bound of a guide fitted there is then tens of nats lower than it could
/// be, and its draws miss the posterior. Starting from many points finds
/// the other modes; the [`evidence_spread`](MultiStartLaplace::evidence_spread)
/// says whether they differ.
///
/// # Errors
/// [`LaplaceError::Input`] for `starts = 0`, a negative or non-finite
/// `radius` or `same_mode`; [`LaplaceError`] of the start at `u = 0` when
/// no start found a mode.
///
/// ```
/// use iwhvi_core::laplace::{MultiStart, laplace, laplace_multistart};
/// use iwhvi_core::model::{LatentSpec, Layout, Model};
/// use iwhvi_core::scalar::Scalar;
/// use iwhvi_core::transforms::Transform;
///
/// /// 2 % of the mass in a narrow bump at 0.3, 98 % in a wide one at 1.8.
/// struct TwoBumps;
/// impl Model for TwoBumps {
///     fn layout(&self) -> Layout {
///         Layout::new(vec![LatentSpec::scalar("u", Transform::Identity)])
///     }
///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
///         let bump = |m: f64, s: f64, w: f64| -((u[0] - m) / s).square() * 0.5 + (w / s).ln();
///         T::log_sum_exp(&[bump(0.3, 0.1, 0.02), bump(1.8, 0.3, 0.98)])
///     }
/// }
///
/// let from_zero = laplace(&TwoBumps)?;
/// assert!((from_zero.mode[0] - 0.3).abs() < 0.01);
/// let multi = laplace_multistart(&TwoBumps, MultiStart::default())?;
/// assert!((multi.best.mode[0] - 1.8).abs() < 0.01);
/// assert_eq!(multi.modes.len(), 2);
/// assert!(multi.evidence_spread() > 3.0);
/// # Ok::<(), iwhvi_core::laplace::LaplaceError>(())
/// ```
pub fn laplace_multistart<Mo: Model>(
    model: &Mo,
    rule: MultiStart,
) -> Result<MultiStartLaplace, LaplaceError> {
    use rand::{RngExt, SeedableRng};
    let invalid = |setting: &'static str, value: String, requirement: &'static str| {
        Err(LaplaceError::Input(InputError::InvalidSetting {
            setting,
            value,
            requirement,
        }))
    };
    if rule.starts == 0 {
        return invalid("starts", "0".into(), "at least one starting point");
    }
    if !(rule.radius >= 0.0 && rule.radius.is_finite()) {
        return invalid(
            "radius",
            rule.radius.to_string(),
            "the starting cube's half-width is finite and not negative",
        );
    }
    if !(rule.same_mode >= 0.0 && rule.same_mode.is_finite()) {
        return invalid(
            "same_mode",
            rule.same_mode.to_string(),
            "the distance under which modes are one is finite and not negative",
        );
    }
    let d = model.dim();
    let mut rng = rand::rngs::StdRng::seed_from_u64(rule.seed);
    let mut modes: Vec<(Laplace, usize)> = Vec::new();
    let mut failed = 0;
    let mut first_error = None;
    for start in 0..rule.starts {
        let init: Vec<f64> = if start == 0 {
            vec![0.0; d]
        } else {
            (0..d)
                .map(|_| rng.random_range(-rule.radius..=rule.radius))
                .collect()
        };
        match laplace_from(model, &init, LaplaceOptions::default()) {
            Ok(found) => {
                let same = modes.iter_mut().find(|(m, _)| {
                    m.mode
                        .iter()
                        .zip(&found.mode)
                        .all(|(a, b)| (a - b).abs() <= rule.same_mode)
                });
                match same {
                    Some((_, count)) => *count += 1,
                    None => modes.push((found, 1)),
                }
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    if modes.is_empty() {
        // Cannot fail: `starts ≥ 1` was checked, and every start either
        // found a mode or recorded its error.
        return Err(first_error.expect("at least one start ran"));
    }
    modes.sort_by(|(a, _), (b, _)| b.log_evidence().total_cmp(&a.log_evidence()));
    Ok(MultiStartLaplace {
        best: modes[0].0.clone(),
        modes,
        failed,
    })
}
