//! The DIWHVI bound: its settings ([`Diwhvi`]) and the bound as a
//! function of the guide's parameters ([`DiwhviObjective`]).

use super::weights::{Stop, for_each_outer_draw};
use super::{ChainedModel, StepNoise};
use crate::gradient::Differentiable;
use crate::guide::HierarchicalGuide;
use crate::input::InputError;
use crate::model::Model;
use crate::scalar::Scalar;

/// The DIWHVI objective with `m` outer samples of `u` and `k` inner samples
/// of `ψ` per `u`.
///
/// The fields are private: every value holds `M ≥ 1`. [`Diwhvi::new`] is
/// for sizes written in the program (a `const fn`, so that
/// `const OBJECTIVE: Diwhvi = Diwhvi::new(0, 4)` is a compile error);
/// [`Diwhvi::try_new`] for sizes that come from input. Whether `M × K`
/// fits in memory depends on the guide, and is checked where the bound is
/// evaluated ([`crate::input::check_size`]).
///
/// ```
/// use iwhvi_core::objective::Diwhvi;
/// assert_eq!(Diwhvi::elbo(), Diwhvi::new(1, 0));
/// assert_eq!(Diwhvi::iwhvi(50), Diwhvi::new(1, 50));
/// assert_eq!((Diwhvi::new(8, 16).m(), Diwhvi::new(8, 16).k()), (8, 16));
/// assert!(Diwhvi::try_new(0, 4).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Diwhvi {
    m: usize,
    k: usize,
}

impl Diwhvi {
    /// `M` outer and `K` inner samples, for sizes written in the program.
    ///
    /// # Panics
    /// If `m == 0` (at compile time in a `const`): a programming error,
    /// like a literal index past a slice's end. Sizes that come from input
    /// go through [`Diwhvi::try_new`].
    pub const fn new(m: usize, k: usize) -> Self {
        // Reachable only with a literal or computed M = 0 in the caller's
        // own code; input goes through `try_new`.
        assert!(m >= 1, "DIWHVI needs at least one outer sample");
        Self { m, k }
    }

    /// `M` outer and `K` inner samples.
    ///
    /// # Errors
    /// [`InputError::NoOuterSamples`] if `m == 0`.
    ///
    /// ```
    /// use iwhvi_core::input::InputError;
    /// use iwhvi_core::objective::Diwhvi;
    /// assert_eq!(Diwhvi::try_new(2, 3), Ok(Diwhvi::new(2, 3)));
    /// assert_eq!(Diwhvi::try_new(0, 3), Err(InputError::NoOuterSamples));
    /// ```
    pub const fn try_new(m: usize, k: usize) -> Result<Self, InputError> {
        if m == 0 {
            return Err(InputError::NoOuterSamples);
        }
        Ok(Self { m, k })
    }

    /// Outer samples `M ≥ 1`.
    pub const fn m(&self) -> usize {
        self.m
    }

    /// Inner samples `K ≥ 0` (ignored by non-hierarchical guides).
    pub const fn k(&self) -> usize {
        self.k
    }

    /// The ELBO (`M = 1`; with a non-hierarchical guide).
    pub const fn elbo() -> Self {
        Self::new(1, 0)
    }

    /// IWAE with `m` samples (with a non-hierarchical guide).
    ///
    /// # Panics
    /// If `m == 0`, as [`Diwhvi::new`]; `Diwhvi::try_new(m, 0)` for a
    /// count that comes from input.
    pub const fn iwae(m: usize) -> Self {
        Self::new(m, 0)
    }

    /// HVM: no inner samples, `U_0 = w_0` uses `ψ₀` alone.
    ///
    /// # Panics
    /// If `m == 0`, as [`Diwhvi::new`]; `Diwhvi::try_new(m, 0)` for a
    /// count that comes from input.
    pub const fn hvm(m: usize) -> Self {
        Self::new(m, 0)
    }

    /// IWHVI with `k` inner samples (`M = 1`).
    pub const fn iwhvi(k: usize) -> Self {
        Self::new(1, k)
    }
}

/// The DIWHVI bound as a function of the guide's parameters for one
/// step's noise: the [`Differentiable`] the engine differentiates.
///
/// With a [`ChainedModel`], the model enters through its precomputed
/// value and `u`-gradient instead of being evaluated on every pass.
#[derive(Clone, Copy)]
pub struct DiwhviObjective<'a, Mo, G> {
    model: &'a Mo,
    guide: &'a G,
    noise: &'a StepNoise,
    chained: Option<&'a ChainedModel>,
}

impl<'a, Mo: Model, G: HierarchicalGuide> DiwhviObjective<'a, Mo, G> {
    /// [`DiwhviObjective::new`] after checking the three against each
    /// other: the guide is for the model's number of latents, and the
    /// noise was drawn for this guide.
    ///
    /// ```
    /// use iwhvi_core::guide::MeanField;
    /// use iwhvi_core::input::InputError;
    /// use iwhvi_core::model::{LatentSpec, Layout, Model};
    /// use iwhvi_core::objective::{Diwhvi, DiwhviObjective, StepNoise};
    /// use iwhvi_core::transforms::Transform;
    /// use iwhvi_core::Scalar;
    ///
    /// struct Std;
    /// impl Model for Std {
    ///     fn layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("x", Transform::Identity)])
    ///     }
    ///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
    ///         u[0] * u[0] * T::constant(-0.5)
    ///     }
    /// }
    /// let (one, two) = (MeanField::new(1), MeanField::new(2));
    /// let noise = StepNoise::new(&one, Diwhvi::elbo());
    /// assert!(DiwhviObjective::try_new(&Std, &one, &noise).is_ok());
    /// assert!(matches!(
    ///     DiwhviObjective::try_new(&Std, &two, &noise),
    ///     Err(InputError::DimensionMismatch { model: 1, guide: 2 })
    /// ));
    /// ```
    ///
    /// # Errors
    /// [`InputError::DimensionMismatch`], [`InputError::NoiseMismatch`].
    pub fn try_new(model: &'a Mo, guide: &'a G, noise: &'a StepNoise) -> Result<Self, InputError> {
        crate::input::check_dimensions(model, guide)?;
        noise.check_fits(guide, 0)?;
        Ok(Self::new(model, guide, noise))
    }

    /// The bound with the model evaluated directly on every pass.
    ///
    /// Unchecked: evaluating it with a guide for another number of latents
    /// than the model's, noise drawn for another guide, or parameters of
    /// another length than the guide's panics on a slice index (the inner
    /// step of loops that checked once); [`DiwhviObjective::try_new`]
    /// checks the first two, [`check_params`](crate::input::check_params)
    /// the parameters.
    pub fn new(model: &'a Mo, guide: &'a G, noise: &'a StepNoise) -> Self {
        Self {
            model,
            guide,
            noise,
            chained: None,
        }
    }

    /// The bound with the model entering through `chained` (which must
    /// have been computed for the same parameters and noise).
    pub fn chained(
        model: &'a Mo,
        guide: &'a G,
        noise: &'a StepNoise,
        chained: &'a ChainedModel,
    ) -> Self {
        Self {
            model,
            guide,
            noise,
            chained: Some(chained),
        }
    }
}

impl<Mo: Model, G: HierarchicalGuide> Differentiable for DiwhviObjective<'_, Mo, G> {
    fn eval<T: Scalar>(&self, params: &[T]) -> T {
        let objective = self.noise.objective();
        let mut log_w = Vec::with_capacity(objective.m());
        for_each_outer_draw(
            self.guide,
            params,
            self.noise,
            Stop::Nothing,
            |m, u, weights| {
                let log_q_upper = weights.upper();
                let log_p = match self.chained {
                    Some(chained) => chained.log_joint(m, u),
                    None => self
                        .model
                        .log_joint_with_noise(u, self.noise.prior_noise(m)),
                };
                log_w.push(log_p - log_q_upper);
            },
        );
        T::log_sum_exp(&log_w) - (objective.m() as f64).ln()
    }
}
