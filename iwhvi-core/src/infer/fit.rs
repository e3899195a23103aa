//! The fitting loop: stochastic gradient ascent on a DIWHVI bound.
//!
//! Each step draws fresh noise from a generator seeded once, evaluates the
//! bound and its gradient (every gradient pass on the same noise), and hands
//! the gradient to an [`Optimizer`]. A step whose bound or gradient is not
//! finite is rejected (the parameters stay as they were) and counted; too
//! many in a row end the fit with [`FitError::Diverged`], which still
//! carries the best parameters found. A fixed seed reproduces a fit bit for
//! bit, with threads on or off.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Re-exported here because [`FitConfig::parallelism`] takes it.
pub use crate::gradient::Parallelism;
use crate::gradient::{Differentiable, ForwardEngine, GradientEngine};
use crate::guide::{HierarchicalGuide, Workspace};
use crate::infer::minibatch::{Batcher, Subsampled};
/// Re-exported here because [`FitError::Input`] holds it.
pub use crate::input::InputError;
use crate::input::{DEFAULT_MEMORY_BUDGET, check_dimensions, check_params, check_size};
use crate::laplace::{LaplaceError, MultiStart, laplace_multistart};
use crate::model::{InvalidTerm, Latents, Layout, LayoutError, Model};
/// Re-exported here because [`FitConfig::estimator`] takes it.
pub use crate::objective::GradientEstimator;
use crate::objective::{
    Diwhvi, Estimate, GenericEngines, NoiseEntries, ObjectiveError, PerPointObjective, PointGroups,
    PointNoise, StepNoise, estimate_bound_within, split_engines_value_and_gradient_theta,
};
use crate::optim::Optimizer;
use crate::subsample::Batch;
use crate::tape::TapeEngine;

/// How to fit: the objective, how long, and when to stop.
///
/// Built with [`FitConfig::new`] and its builder methods (one per setting,
/// named after it); read with the `get_*` methods. The fields are private,
/// so that every setting passes [`FitConfig::check`], which [`fit`] runs
/// before the first step.
///
/// ```
/// use iwhvi_core::fit::FitConfig;
/// use iwhvi_core::objective::Diwhvi;
/// let config = FitConfig::new(Diwhvi::new(4, 8)).max_steps(2000).window(50);
/// assert_eq!((config.get_max_steps(), config.get_window()), (2000, 50));
/// assert_eq!(config.objective(), Diwhvi::new(4, 8));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FitConfig {
    /// The bound to maximize (default `Diwhvi::new(1, 0)`, the ELBO).
    pub(crate) objective: Diwhvi,
    /// The most steps to take (default 5000).
    pub(crate) max_steps: usize,
    /// The seed of the initial parameters and of every step's noise
    /// (default 0).
    pub(crate) seed: u64,
    /// Stop when the mean or the median of the last relative changes of
    /// the smoothed bound falls below this (Stan's `tol_rel_obj`; default
    /// none: run `max_steps`).
    pub(crate) tol_rel_obj: Option<f64>,
    /// The stopping rule is not consulted before this step (default 0):
    /// with a learning rate that decays over a first phase, the rule then
    /// only judges the settled part of the fit.
    pub(crate) min_steps: usize,
    /// Steps per smoothing window: the smoothed bound is the mean of a
    /// window's step bounds (default 100).
    pub(crate) window: usize,
    /// Non-finite steps in a row that end the fit (default 20).
    pub(crate) max_consecutive_rejections: usize,
    /// Show a progress bar on stderr (default true; hidden when stderr is
    /// not a terminal).
    pub(crate) progress: bool,
    /// Threads for the gradient passes and for the outer samples of the
    /// fused path and of the model's gradients (default
    /// [`Parallelism::Auto`]); the fit is the same bits under every
    /// setting.
    pub(crate) parallelism: Parallelism,
    /// The gradient estimator (default the plain reparameterization
    /// gradient): `DoublyReparameterized` applies to the reverse model's
    /// parameters of a hierarchical guide (which must report them, else
    /// the fit fails with [`FitError::Objective`]), and to all the
    /// parameters of a guide without mixing variables (sticking the landing
    /// on the ELBO).
    pub(crate) estimator: GradientEstimator,
    /// How gradients are computed (default [`Engine::Auto`]).
    pub(crate) engine: Engine,
    /// Where [`fit`] starts (default [`Init::Guide`], `u = 0`): a point,
    /// or a multi-start rule; see [`Init`]. [`fit_from`], given the
    /// parameters, ignores it.
    pub(crate) init: Init,
    /// The bytes a step's noise (and, on the tape, its tape) may need
    /// before the fit refuses to start with [`InputError::TooLarge`]
    /// (default [`DEFAULT_MEMORY_BUDGET`], 4 GiB; see
    /// [`bound_memory`](crate::input::bound_memory)).
    pub(crate) memory_budget: u64,
    /// Minibatches: each step evaluates the plate's terms on `b` of its
    /// `N` elements, scaled by `N / b` (default none: the full data; see
    /// [`FitConfig::batch_size`]).
    pub(crate) batch_size: Option<usize>,
    /// Whether a minibatch fit ends with [`Fit::full_bound`] (default
    /// true; see [`FitConfig::full_bound`]).
    pub(crate) full_bound: bool,
}

/// Where [`fit`] starts the guide.
///
/// Every fit climbs to the mode nearest its start. On a posterior with
/// several modes (a mixture, an HMM, an ODE model) the default start
/// `u = 0` can lie near a mode that holds little of the mass: the bound
/// is then nats lower than it could be and the draws miss the posterior.
/// The multi-start rules draw starting points as Stan's `init = 2` does
/// (uniform on `[−2, 2]ᴰ`, unconstrained), keep the best, and report in
/// [`Fit::warnings`] when the starts disagree by more than
/// [`STARTS_DISAGREE_NATS`].
///
/// ```
/// use iwhvi_core::fit::{FitConfig, Init, Pilots};
/// use iwhvi_core::laplace::MultiStart;
/// use iwhvi_core::objective::Diwhvi;
/// let at = FitConfig::new(Diwhvi::elbo()).init(Init::At(vec![0.5, 1.0]));
/// let laplace = FitConfig::new(Diwhvi::elbo()).init(Init::Laplace(MultiStart::default()));
/// let pilots = FitConfig::new(Diwhvi::elbo()).init(Init::Pilots(Pilots { starts: 8, ..Pilots::default() }));
/// assert_eq!(FitConfig::default().get_init(), &Init::Guide);
/// # let _ = (at, laplace, pilots);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum Init {
    /// The guide's own initial parameters
    /// ([`HierarchicalGuide::init_params`]; the built-in guides centre
    /// on `u = 0`).
    #[default]
    Guide,
    /// The guide's initial parameters centred on this unconstrained point
    /// ([`HierarchicalGuide::init_params_at`]), length `D`.
    At(Vec<f64>),
    /// Newton's method from several points
    /// ([`laplace_multistart`]); the guide starts centred on the mode of
    /// largest Laplace evidence. Cheap (no fit), but needs a finite mode
    /// (a funnel has none: use [`Init::Pilots`]). Warns when the
    /// [evidence spread](crate::laplace::MultiStartLaplace::evidence_spread)
    /// of the modes found exceeds [`STARTS_DISAGREE_NATS`].
    Laplace(MultiStart),
    /// Short pilot fits from several points (see [`Pilots`]); the fit
    /// continues from the pilot with the highest bound. Warns when the
    /// pilots' bounds differ by more than [`STARTS_DISAGREE_NATS`].
    Pilots(Pilots),
}

/// Short pilot fits for [`Init::Pilots`]: the first from `u = 0`, the
/// other `starts − 1` centred on points drawn uniformly from
/// `[−radius, radius]ᴰ` (Stan's `init = 2` for `radius = 2`) with a
/// generator seeded by `seed`. Each runs `steps` steps of the fit's own
/// objective, optimizer settings and noise (the same noise for every
/// pilot, so that their bounds differ by their starts alone); a pilot's
/// bound is the mean of the finite step bounds of its last fifth (at most
/// `window` steps), after it has climbed. The fit then runs its `max_steps` from the parameters of the
/// pilot with the highest bound.
///
/// ```
/// use iwhvi_core::fit::Pilots;
/// let rule = Pilots::default();
/// assert_eq!((rule.starts, rule.steps, rule.radius), (10, 500, 2.0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pilots {
    /// Pilot fits, the one from `u = 0` included (default 10).
    pub starts: usize,
    /// Steps of each pilot fit (default 500).
    pub steps: usize,
    /// Half-width of the cube the starting points are drawn from
    /// (default 2).
    pub radius: f64,
    /// Seed of the starting points (default 0).
    pub seed: u64,
}

impl Pilots {
    /// Checks the rule: at least one start and one step, a finite
    /// non-negative radius. [`FitConfig::check`] calls it for
    /// [`Init::Pilots`].
    ///
    /// # Errors
    /// [`InputError::InvalidSetting`] naming the setting.
    ///
    /// ```
    /// use iwhvi_core::fit::Pilots;
    /// assert!(Pilots::default().check().is_ok());
    /// assert!(Pilots { radius: -1.0, ..Pilots::default() }.check().is_err());
    /// assert!(Pilots { starts: 0, ..Pilots::default() }.check().is_err());
    /// ```
    pub fn check(&self) -> Result<(), InputError> {
        let invalid = |setting, value: String, requirement| {
            Err(InputError::InvalidSetting {
                setting,
                value,
                requirement,
            })
        };
        if self.starts == 0 {
            return invalid("pilots.starts", "0".into(), "at least one pilot fit");
        }
        if self.steps == 0 {
            return invalid(
                "pilots.steps",
                "0".into(),
                "a pilot fit takes at least one step",
            );
        }
        if !(self.radius >= 0.0 && self.radius.is_finite()) {
            return invalid(
                "pilots.radius",
                self.radius.to_string(),
                "the starting points' radius is finite and not negative",
            );
        }
        Ok(())
    }
}

impl Default for Pilots {
    fn default() -> Self {
        Self {
            starts: 10,
            steps: 500,
            radius: 2.0,
            seed: 0,
        }
    }
}

/// Starts whose bounds (pilot fits) or Laplace evidences (modes) differ by
/// more than this many nats raise [`FitWarning::StartsDisagree`]: a
/// difference of 3 nats is a factor of 20 in mass.
pub const STARTS_DISAGREE_NATS: f64 = 3.0;

/// Something a fit that ran to the end wants the caller to know.
///
/// ```
/// use iwhvi_core::fit::FitWarning;
/// let warning = FitWarning::StartsDisagree { best: -1.0, worst: -12.5, starts: 2 };
/// assert!(warning.to_string().contains("11.5 nats"));
/// ```
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FitWarning {
    /// The starts of a multi-start rule ([`Init::Laplace`],
    /// [`Init::Pilots`]) reached bounds (or Laplace evidences) `best` and
    /// `worst`, more than [`STARTS_DISAGREE_NATS`] apart: the posterior
    /// has local modes, and a fit from a single start could have sat in a
    /// poor one. The fit went on from the best.
    #[error(
        "the {starts} starts disagree by {spread:.1} nats (best {best:.3}, worst {worst:.3}): the posterior has \
         local modes; the fit continued from the best, and more starts may find a better one",
        spread = best - worst
    )]
    StartsDisagree {
        /// The best start's bound or evidence.
        best: f64,
        /// The worst start's.
        worst: f64,
        /// Distinct modes (Laplace) or finished pilots compared.
        starts: usize,
    },
}

/// How a fit computes each step's gradient.
///
/// A step has two gradients: the model's, `∇ᵤ log p(x, u_m)` at each outer
/// draw (the [`ChainedModel`](crate::objective::ChainedModel)), and the
/// guide's, the bound's gradient in the guide's parameters with the
/// model's chained in. [`Engine::Auto`] picks an engine for each by a fixed
/// rule on the guide's type and sizes ([`Engine::step_engines`]), never by
/// a timing, so a seed still reproduces a fit bit for bit. [`Fit::engines`]
/// records what ran.
///
/// ```
/// use iwhvi_core::fit::{Engine, EngineChoice, StepEngines};
/// use iwhvi_core::guide::{MeanField, SemiImplicit};
///
/// // A semi-implicit guide: the fused objective, the model in forward mode
/// // with the fewest lanes that cover D = 10.
/// let engines = Engine::Auto.step_engines(&SemiImplicit::new(10, 10));
/// assert_eq!(engines.guide, EngineChoice::Fused);
/// assert_eq!(engines.model, EngineChoice::Forward { lanes: 16 });
/// // Any other guide: the generic path.
/// let engines = Engine::Auto.step_engines(&MeanField::new(3));
/// assert_eq!(engines, StepEngines { model: EngineChoice::Forward { lanes: 4 }, guide: EngineChoice::Forward { lanes: 16 } });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Engine {
    /// The rule:
    ///
    /// - **guide**: the fused objective ([`FusedDiwhvi`](crate::objective::fused::FusedDiwhvi), plain `f64` with a
    ///   hand-written adjoint) when it covers the guide ([`SemiImplicit`](crate::guide::SemiImplicit)
    ///   in any setting, also inside a [`Preconditioned`](crate::guide::Preconditioned));
    ///   otherwise the generic bound on forward mode (16 lanes) when the
    ///   guide has at most [`GUIDE_FORWARD_MAX_PARAMS`] parameters, else on
    ///   the tape;
    /// - **model**: forward mode with `W` lanes, `W` the smallest of
    ///   1, 2, 4, 8, 16 that is at least `D`, when `D ≤` [`MODEL_FORWARD_MAX_DIM`]
    ///   (one pass); else the tape. Forward-mode lanes never interact, so
    ///   the model's gradient is the same bits at every width.
    ///
    /// The outer samples run on [`FitConfig::parallelism`]'s threads (the
    /// fused path and the model's gradients; bit-identical either way).
    #[default]
    Auto,
    /// Chunked forward-mode dual numbers, 16 directions per pass, passes on
    /// [`FitConfig::parallelism`]'s threads; memory independent of `M × K`.
    /// Both gradients, whatever the guide.
    Forward,
    /// A reverse-mode tape: one pass whatever the number of parameters, on
    /// the calling thread; the tape grows with `M × K`. Both gradients,
    /// whatever the guide.
    Tape,
}

/// The most parameters a guide outside the fused path may have for
/// [`Engine::Auto`] to differentiate its bound in forward mode (16 lanes,
/// at most `⌈48 / 16⌉ = 3` passes); above it, the tape.
///
/// Measured with `benches/diwhvi_step.rs` (`generic-forward` against
/// `generic-tape`, eight schools, one thread, pinned to one core; medians,
/// µs per step at `(M, K) = (1, 0)`, `(8, 0)`): mean-field, `P = 20`:
/// 9.3 vs 14.3, 32.6 vs 85.6; SIVI with `d = 1`, `P = 30`: 10.5 vs 16.2,
/// 48.4 vs 107; `d = 2`, `P = 40`: 18.5 vs 16.1, 62.6 vs 73.9 (about
/// even); `d = 4`, `P = 60`: 20.2 vs 13.9, 63.9 vs 73.4, and 361 vs 208
/// at `(8, 8)`; `d = 10`, `P = 120`: 41.9 vs 15.9, 186 vs 81.7; the
/// semi-implicit guide's 240: 172 vs 27.0, 767 vs 166. The exception is
/// the full-rank guide at `D = 10` (`P = 65`), whose many small tape nodes
/// make forward mode faster (20.8 vs 25.7, 104 vs 210): no cut-off on `P`
/// alone serves both, and [`Engine::Forward`] is the override. The full
/// table and the commands are in docs/PERFORMANCE.md ("Eight schools
/// DIWHVI step: the fused path").
pub const GUIDE_FORWARD_MAX_PARAMS: usize = 48;

/// The largest `D` for which [`Engine::Auto`] computes the model's
/// gradient in forward mode: `D ≤ 16` fits one pass of the widest lane
/// count, 16. Above it, the tape's one backward sweep beats `⌈D / 16⌉`
/// forward passes of the whole log joint.
pub const MODEL_FORWARD_MAX_DIM: usize = 16;

/// Which engine computed one of a step's two gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EngineChoice {
    /// Forward-mode dual numbers with this many lanes per pass.
    Forward {
        /// Directions per pass.
        lanes: usize,
    },
    /// The reverse-mode tape.
    Tape,
    /// The fused objective ([`FusedDiwhvi`](crate::objective::fused::FusedDiwhvi)): the guide's gradient by a
    /// hand-written adjoint in plain `f64` (guide side only).
    Fused,
}

/// The engines of a fit's steps: the model's `∇ᵤ log p` and the guide's
/// gradient (see [`Engine`]).
///
/// ```
/// use iwhvi_core::fit::{Engine, EngineChoice};
/// use iwhvi_core::guide::MeanField;
/// let engines = Engine::Tape.step_engines(&MeanField::new(2));
/// assert_eq!((engines.model, engines.guide), (EngineChoice::Tape, EngineChoice::Tape));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StepEngines {
    /// The engine of `∇ᵤ log p(x, u_m)`.
    pub model: EngineChoice,
    /// The engine of the bound's gradient in the guide's parameters.
    pub guide: EngineChoice,
}

impl Engine {
    /// The engines a fit of `guide` runs on under this setting (the rule
    /// in [`Engine::Auto`]'s docs; `D` is `guide.latent_dim()`).
    ///
    /// ```
    /// use iwhvi_core::fit::{Engine, EngineChoice};
    /// use iwhvi_core::guide::FullRank;
    /// let engines = Engine::Auto.step_engines(&FullRank::new(20));
    /// assert_eq!(engines.model, EngineChoice::Tape); // D = 20 > 16
    /// assert_eq!(engines.guide, EngineChoice::Tape); // 230 parameters > 48
    /// assert_eq!(Engine::Forward.step_engines(&FullRank::new(20)).model, EngineChoice::Forward { lanes: 16 });
    /// ```
    pub fn step_engines<G: HierarchicalGuide>(self, guide: &G) -> StepEngines {
        match self {
            Self::Forward => StepEngines {
                model: EngineChoice::Forward { lanes: 16 },
                guide: EngineChoice::Forward { lanes: 16 },
            },
            Self::Tape => StepEngines {
                model: EngineChoice::Tape,
                guide: EngineChoice::Tape,
            },
            Self::Auto => {
                let big_d = guide.latent_dim();
                let model = if big_d <= MODEL_FORWARD_MAX_DIM {
                    EngineChoice::Forward {
                        lanes: big_d.max(1).next_power_of_two(),
                    }
                } else {
                    EngineChoice::Tape
                };
                let guide = if guide.fused().is_some() {
                    EngineChoice::Fused
                } else if guide.param_layout().len() <= GUIDE_FORWARD_MAX_PARAMS {
                    EngineChoice::Forward { lanes: 16 }
                } else {
                    EngineChoice::Tape
                };
                StepEngines { model, guide }
            }
        }
    }
}

/// The model-side engine [`Engine::Auto`] picked, as one
/// [`GradientEngine`] (a match per call, over a handful of widths).
#[derive(Clone, Copy, Debug)]
enum ModelEngine {
    Forward1(ForwardEngine<1>),
    Forward2(ForwardEngine<2>),
    Forward4(ForwardEngine<4>),
    Forward8(ForwardEngine<8>),
    Forward16(ForwardEngine<16>),
    Tape,
}

impl ModelEngine {
    fn new(choice: EngineChoice, parallelism: Parallelism) -> Self {
        match choice {
            EngineChoice::Forward { lanes: 1 } => {
                Self::Forward1(ForwardEngine::new().with_parallelism(parallelism))
            }
            EngineChoice::Forward { lanes: 2 } => {
                Self::Forward2(ForwardEngine::new().with_parallelism(parallelism))
            }
            EngineChoice::Forward { lanes: 4 } => {
                Self::Forward4(ForwardEngine::new().with_parallelism(parallelism))
            }
            EngineChoice::Forward { lanes: 8 } => {
                Self::Forward8(ForwardEngine::new().with_parallelism(parallelism))
            }
            EngineChoice::Forward { .. } => {
                Self::Forward16(ForwardEngine::new().with_parallelism(parallelism))
            }
            EngineChoice::Tape | EngineChoice::Fused => Self::Tape,
        }
    }
}

impl GradientEngine for ModelEngine {
    fn partials<F: crate::gradient::Differentiable>(
        &self,
        f: &F,
        x: &[f64],
        first: usize,
        out: &mut [f64],
    ) -> f64 {
        match self {
            Self::Forward1(e) => e.partials(f, x, first, out),
            Self::Forward2(e) => e.partials(f, x, first, out),
            Self::Forward4(e) => e.partials(f, x, first, out),
            Self::Forward8(e) => e.partials(f, x, first, out),
            Self::Forward16(e) => e.partials(f, x, first, out),
            Self::Tape => TapeEngine.partials(f, x, first, out),
        }
    }
}

/// Reading the settings.
impl FitConfig {
    /// The bound to maximize (default `Diwhvi::new(1, 0)`, the ELBO).
    pub fn objective(&self) -> Diwhvi {
        self.objective
    }

    /// The most steps to take (default 5000).
    pub fn get_max_steps(&self) -> usize {
        self.max_steps
    }

    /// The seed of the initial parameters and of every step's noise
    /// (default 0).
    pub fn get_seed(&self) -> u64 {
        self.seed
    }

    /// Stop when the mean or the median of the last relative changes of
    /// the smoothed bound falls below this (Stan's `tol_rel_obj`; default
    /// none: run `max_steps`).
    pub fn get_tol_rel_obj(&self) -> Option<f64> {
        self.tol_rel_obj
    }

    /// The stopping rule is not consulted before this step (default 0):
    /// with a learning rate that decays over a first phase, the rule then
    /// only judges the settled part of the fit.
    pub fn get_min_steps(&self) -> usize {
        self.min_steps
    }

    /// Steps per smoothing window: the smoothed bound is the mean of a
    /// window's step bounds (default 100).
    pub fn get_window(&self) -> usize {
        self.window
    }

    /// Non-finite steps in a row that end the fit (default 20).
    pub fn get_max_consecutive_rejections(&self) -> usize {
        self.max_consecutive_rejections
    }

    /// Show a progress bar on stderr (default true; hidden when stderr is
    /// not a terminal).
    pub fn get_progress(&self) -> bool {
        self.progress
    }

    /// Threads for the gradient passes and for the outer samples of the
    /// fused path and of the model's gradients (default
    /// [`Parallelism::Auto`]); the fit is the same bits under every
    /// setting.
    pub fn get_parallelism(&self) -> Parallelism {
        self.parallelism
    }

    /// The gradient estimator (default the plain reparameterization
    /// gradient): `DoublyReparameterized` applies to the reverse model's
    /// parameters of a hierarchical guide (which must report them, else
    /// the fit fails with [`FitError::Objective`]), and to all the
    /// parameters of a guide without mixing variables (sticking the landing
    /// on the ELBO).
    pub fn get_estimator(&self) -> GradientEstimator {
        self.estimator
    }

    /// How gradients are computed (default [`Engine::Auto`]).
    pub fn get_engine(&self) -> Engine {
        self.engine
    }

    /// Where [`fit`] starts (default [`Init::Guide`], `u = 0`): a point,
    /// or a multi-start rule; see [`Init`]. [`fit_from`], given the
    /// parameters, ignores it.
    pub fn get_init(&self) -> &Init {
        &self.init
    }

    /// The bytes a step's noise (and, on the tape, its tape) may need
    /// before the fit refuses to start with [`InputError::TooLarge`]
    /// (default [`DEFAULT_MEMORY_BUDGET`], 4 GiB; see
    /// [`bound_memory`](crate::input::bound_memory)).
    pub fn get_memory_budget(&self) -> u64 {
        self.memory_budget
    }

    /// The minibatch size `b` (see [`FitConfig::batch_size`]; default
    /// `None`, the full data).
    ///
    /// ```
    /// use iwhvi_core::fit::FitConfig;
    /// assert_eq!(FitConfig::default().get_batch_size(), None);
    /// assert_eq!(FitConfig::default().batch_size(32).get_batch_size(), Some(32));
    /// ```
    pub fn get_batch_size(&self) -> Option<usize> {
        self.batch_size
    }

    /// Whether a minibatch fit ends with [`Fit::full_bound`] (see
    /// [`FitConfig::full_bound`]; default true).
    ///
    /// ```
    /// use iwhvi_core::fit::FitConfig;
    /// assert!(FitConfig::default().get_full_bound());
    /// assert!(!FitConfig::default().full_bound(false).get_full_bound());
    /// ```
    pub fn get_full_bound(&self) -> bool {
        self.full_bound
    }
}

impl Default for FitConfig {
    fn default() -> Self {
        Self {
            objective: Diwhvi::elbo(),
            max_steps: 5000,
            seed: 0,
            tol_rel_obj: None,
            min_steps: 0,
            window: 100,
            max_consecutive_rejections: 20,
            progress: true,
            parallelism: Parallelism::Auto,
            estimator: GradientEstimator::Reparameterized,
            engine: Engine::Auto,
            init: Init::Guide,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            batch_size: None,
            full_bound: true,
        }
    }
}

impl FitConfig {
    /// The default configuration with the given objective.
    pub fn new(objective: Diwhvi) -> Self {
        Self {
            objective,
            ..Self::default()
        }
    }

    /// With at most `steps` steps.
    pub fn max_steps(mut self, steps: usize) -> Self {
        self.max_steps = steps;
        self
    }

    /// With the given seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// With Stan's relative-tolerance stopping rule.
    pub fn tol_rel_obj(mut self, tolerance: f64) -> Self {
        self.tol_rel_obj = Some(tolerance);
        self
    }

    /// With the stopping rule consulted only from step `steps` on (see
    /// [`FitConfig::min_steps`]).
    ///
    /// ```
    /// use iwhvi_core::fit::FitConfig;
    /// use iwhvi_core::objective::Diwhvi;
    /// let config = FitConfig::new(Diwhvi::elbo()).tol_rel_obj(1e-4).min_steps(10_000);
    /// assert_eq!((config.get_tol_rel_obj(), config.get_min_steps()), (Some(1e-4), 10_000));
    /// ```
    pub fn min_steps(mut self, steps: usize) -> Self {
        self.min_steps = steps;
        self
    }

    /// With or without the progress bar.
    pub fn progress(mut self, show: bool) -> Self {
        self.progress = show;
        self
    }

    /// With the given gradient estimator (see [`FitConfig::estimator`]).
    pub fn estimator(mut self, estimator: GradientEstimator) -> Self {
        self.estimator = estimator;
        self
    }

    /// With the given differentiation engine.
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// With the given parallelism for the gradient passes and the outer
    /// samples (see [`FitConfig::parallelism`]; the result is the same bits
    /// either way).
    pub fn parallelism(mut self, parallelism: Parallelism) -> Self {
        self.parallelism = parallelism;
        self
    }

    /// With `steps` steps per smoothing window of the stopping rule.
    pub fn window(mut self, steps: usize) -> Self {
        self.window = steps;
        self
    }

    /// With the number of non-finite steps in a row that end the fit.
    pub fn max_consecutive_rejections(mut self, steps: usize) -> Self {
        self.max_consecutive_rejections = steps;
        self
    }

    /// With the given start (see [`Init`]).
    ///
    /// ```
    /// use iwhvi_core::fit::{FitConfig, Init};
    /// use iwhvi_core::laplace::MultiStart;
    /// let config = FitConfig::default().init(Init::Laplace(MultiStart::default()));
    /// assert!(matches!(config.get_init(), Init::Laplace(_)));
    /// ```
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// With the memory budget of a step, in bytes (see
    /// [`FitConfig::memory_budget`]).
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// With minibatches of `b` elements of the model's plate (Pyro's
    /// `plate(subsample_size = b)`): each step evaluates the bound with
    /// the log joint
    ///
    /// ```text
    /// log p̂(x, u) = [global terms] + (N / b) Σ_{n ∈ B} [plate terms of n],
    /// ```
    ///
    /// `B` a subset of `b` of the plate's `N` elements drawn without
    /// replacement, the elements reshuffled every epoch (`⌈N / b⌉` steps)
    /// from a stream seeded by [`FitConfig::seed`] (the steps' noise is
    /// the same as without batches, except on the per-point bound below
    /// with a guide that reports its groups' noise entries,
    /// [`HierarchicalGuide::group_noise`]: each step then draws only the
    /// entries of its batch's groups and the global ones, `O(b)` normals).
    /// The guide's term is unchanged. With
    /// `M = 1` (ELBO, IWHVI) the step's bound and gradient are unbiased
    /// estimates of the full-data ones. [`Fit::trace`] then holds the
    /// minibatch estimates and [`Fit::full_bound`] the full-data bound at
    /// the end.
    ///
    /// [`fit`] refuses ([`InputError::InvalidSetting`] with `setting =
    /// "batch_size"`, naming why): `b = 0`; a model that cannot be
    /// subsampled ([`Model::subsample_plate`] is `Err`: hand-written
    /// models by default, `#[variational]` models with learned parameters,
    /// semi-implicit priors, no plate, or two plates of different lengths);
    /// `b > N`; `M > 1` with `b < N` unless every latent is local to the
    /// plate ([`Model::local_latents`]) and the guide factorises per point
    /// ([`HierarchicalGuide::mixing_groups`]): with a global latent the
    /// logsumexp over outer samples couples the plate's elements, and the
    /// subsampled bound is a biased estimate of the full one.
    ///
    /// **`M > 1` with every latent local** (a VAE): the fit maximises the
    /// per-point bound
    ///
    /// ```text
    /// L = log c + Σ_n [logsumexp_m (log p(x_n, z_{n,m}) − U_K^(n)(z_{n,m})) − log M]
    /// ```
    ///
    /// (`c` the terms outside the plate), each step its batch's terms
    /// scaled by `N / b` (unbiased), only the batch's mixing groups
    /// evaluated; [`Fit::full_bound`] is `L` on all the points. It is
    /// `≤ log p(x)` in expectation (each term is point `n`'s own DIWHVI
    /// bound) and at least the coupled bound `logsumexp_m Σ_n (…) − log M`
    /// in expectation (it averages over every choice of one draw per
    /// point). It runs on the generic path (the tape for a guide with a
    /// fused one) with [`GradientEstimator::Reparameterized`]; other
    /// estimators are refused (`setting = "estimator"`).
    ///
    /// ```
    /// use iwhvi_core::fit::FitConfig;
    /// use iwhvi_core::objective::Diwhvi;
    /// let config = FitConfig::new(Diwhvi::new(1, 8)).batch_size(100).seed(3);
    /// assert_eq!(config.get_batch_size(), Some(100));
    /// assert!(FitConfig::default().batch_size(0).check().is_err());
    /// ```
    pub fn batch_size(mut self, b: usize) -> Self {
        self.batch_size = Some(b);
        self
    }

    /// With `false`, a minibatch fit ([`FitConfig::batch_size`]) skips its
    /// closing full-data bound: [`Fit::full_bound`] is then `None`, and the
    /// fit saves [`FULL_BOUND_REPLICATES`] evaluations of the bound on all
    /// `N` elements of the plate (on a short fit, more than its steps cost).
    /// Default `true`. Nothing else changes: the steps, their noise and
    /// batches, [`Fit::params`] and [`Fit::trace`] are the same bits either
    /// way. A fit on the full data has no `full_bound` whatever this says.
    ///
    /// ```
    /// use iwhvi_core::Scalar;
    /// use iwhvi_core::fit::{FitConfig, fit};
    /// use iwhvi_core::guide::MeanField;
    /// use iwhvi_core::model::{LatentSpec, Layout, Model};
    /// use iwhvi_core::objective::Diwhvi;
    /// use iwhvi_core::optim::Adam;
    /// use iwhvi_core::subsample::{Batch, SubsamplePlate};
    /// use iwhvi_core::transforms::Transform;
    ///
    /// /// mu ~ N(0, 1), y_n ~ N(mu, 1).
    /// struct Mean { y: Vec<f64> }
    /// impl Model for Mean {
    ///     fn layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("mu", Transform::Identity)])
    ///     }
    ///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
    ///         let all: Vec<usize> = (0..self.y.len()).collect();
    ///         self.log_joint_subset(&[], u, &[], &Batch::new(&all, self.y.len()))
    ///     }
    ///     fn subsample_plate(&self) -> Result<SubsamplePlate, &'static str> {
    ///         Ok(SubsamplePlate { observed: vec!["y".into()], len: self.y.len() })
    ///     }
    ///     fn log_joint_subset<T: Scalar>(&self, _: &[T], u: &[T], _: &[f64], batch: &Batch<'_>) -> T {
    ///         let mut plate = T::constant(0.0);
    ///         for &n in batch.indices() {
    ///             plate += -(T::constant(self.y[n]) - u[0]).square() * 0.5;
    ///         }
    ///         -u[0].square() * 0.5 + plate * batch.scale()
    ///     }
    /// }
    ///
    /// let model = Mean { y: (0..40).map(|n| f64::from(n % 5)).collect() };
    /// let config = FitConfig::new(Diwhvi::elbo()).batch_size(8).max_steps(20).progress(false);
    /// let with = fit(&model, &MeanField::new(1), Adam::new(0.05), &config).unwrap();
    /// let quick = config.clone().full_bound(false);
    /// let without = fit(&model, &MeanField::new(1), Adam::new(0.05), &quick).unwrap();
    /// assert!(with.full_bound.is_some() && without.full_bound.is_none());
    /// assert_eq!(with.params, without.params);
    /// assert_eq!(with.trace, without.trace);
    /// ```
    pub fn full_bound(mut self, evaluate: bool) -> Self {
        self.full_bound = evaluate;
        self
    }

    /// Checks the settings that a fit cannot run with: a zero
    /// [`window`](FitConfig::window) (no smoothed bound, never converges),
    /// zero [`max_consecutive_rejections`](FitConfig::max_consecutive_rejections)
    /// (and so no step could be rejected), a [`tol_rel_obj`](FitConfig::tol_rel_obj)
    /// that is not finite and positive. [`fit`] calls it first.
    ///
    /// # Errors
    /// [`InputError::InvalidSetting`] naming the setting.
    ///
    /// ```
    /// use iwhvi_core::fit::FitConfig;
    /// use iwhvi_core::input::InputError;
    /// use iwhvi_core::objective::Diwhvi;
    /// assert!(FitConfig::new(Diwhvi::elbo()).check().is_ok());
    /// assert!(matches!(
    ///     FitConfig::new(Diwhvi::elbo()).window(0).check(),
    ///     Err(InputError::InvalidSetting { setting: "window", .. })
    /// ));
    /// ```
    pub fn check(&self) -> Result<(), InputError> {
        if self.window == 0 {
            return Err(InputError::InvalidSetting {
                setting: "window",
                value: "0".into(),
                requirement: "a smoothing window has at least one step",
            });
        }
        if self.max_consecutive_rejections == 0 {
            return Err(InputError::InvalidSetting {
                setting: "max_consecutive_rejections",
                value: "0".into(),
                requirement: "at least one non-finite step must be allowed before the fit ends",
            });
        }
        if let Some(tolerance) = self.tol_rel_obj {
            if !(tolerance > 0.0 && tolerance.is_finite()) {
                return Err(InputError::InvalidSetting {
                    setting: "tol_rel_obj",
                    value: tolerance.to_string(),
                    requirement: "a relative tolerance is finite and positive",
                });
            }
        }
        if let Init::Pilots(rule) = &self.init {
            rule.check()?;
        }
        if self.batch_size == Some(0) {
            return Err(InputError::InvalidSetting {
                setting: "batch_size",
                value: "0".into(),
                requirement: "a minibatch has at least one element",
            });
        }
        Ok(())
    }
}

/// A finished fit.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    /// The parameters after the last accepted step.
    pub params: Vec<f64>,
    /// The parameters at the end of the window with the highest smoothed
    /// bound.
    pub best_params: Vec<f64>,
    /// The bound at every step (NaN or ±∞ where a step was rejected).
    pub trace: Vec<f64>,
    /// The smoothed bound at the end of each window.
    pub smoothed: Vec<f64>,
    /// Steps taken.
    pub steps: usize,
    /// Steps rejected because the bound or gradient was not finite.
    pub rejected_steps: usize,
    /// True when the stopping rule ended the fit before `max_steps`.
    pub converged: bool,
    /// The engines every step ran on ([`FitConfig::engine`] resolved for
    /// the guide; see [`Engine`]).
    pub engines: StepEngines,
    /// Wall time.
    pub elapsed: Duration,
    /// What the caller should know about a fit that ran to the end (see
    /// [`FitWarning`]; empty when all is well).
    pub warnings: Vec<FitWarning>,
    /// The model's learned parameters after the last accepted step,
    /// unconstrained (`ϑ`, in [`Fit::theta_layout`]'s order; empty for a
    /// model without `#[param]` fields). [`Fit::learned`] names and
    /// constrains them; [`Model::set_theta`] puts them into a model.
    pub theta: Vec<f64>,
    /// The learned parameters at the end of the window with the highest
    /// smoothed bound (with [`Fit::best_params`]).
    pub best_theta: Vec<f64>,
    /// The model's learned parameters' layout ([`Model::theta_layout`]).
    pub theta_layout: Layout,
    /// For a minibatch fit ([`FitConfig::batch_size`]), the full-data
    /// bound at the last parameters ([`Fit::params`], [`Fit::theta`]):
    /// the fit's objective on every element of the plate, averaged over
    /// [`FULL_BOUND_REPLICATES`] draws of fresh noise (seeded from the
    /// fit's seed), with its standard error. [`Fit::trace`] and
    /// [`Fit::smoothed`] hold the minibatch estimates. `None` for a fit on
    /// the full data, whose trace is already the full-data bound, and for
    /// one configured with [`FitConfig::full_bound`]`(false)`.
    pub full_bound: Option<Estimate>,
}

/// The replicates of [`Fit::full_bound`].
///
/// ```
/// use iwhvi_core::Scalar;
/// use iwhvi_core::fit::{FULL_BOUND_REPLICATES, FitConfig, fit};
/// use iwhvi_core::guide::MeanField;
/// use iwhvi_core::model::{LatentSpec, Layout, Model};
/// use iwhvi_core::objective::Diwhvi;
/// use iwhvi_core::optim::Adam;
/// use iwhvi_core::subsample::{Batch, SubsamplePlate};
/// use iwhvi_core::transforms::Transform;
///
/// /// mu ~ N(0, 1), y_n ~ N(mu, 1).
/// struct Mean { y: Vec<f64> }
/// impl Model for Mean {
///     fn layout(&self) -> Layout {
///         Layout::new(vec![LatentSpec::scalar("mu", Transform::Identity)])
///     }
///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
///         let all: Vec<usize> = (0..self.y.len()).collect();
///         self.log_joint_subset(&[], u, &[], &Batch::new(&all, self.y.len()))
///     }
///     fn subsample_plate(&self) -> Result<SubsamplePlate, &'static str> {
///         Ok(SubsamplePlate { observed: vec!["y".into()], len: self.y.len() })
///     }
///     fn log_joint_subset<T: Scalar>(&self, _: &[T], u: &[T], _: &[f64], batch: &Batch<'_>) -> T {
///         let mut plate = T::constant(0.0);
///         for &n in batch.indices() {
///             plate += -(T::constant(self.y[n]) - u[0]).square() * 0.5;
///         }
///         -u[0].square() * 0.5 + plate * batch.scale()
///     }
/// }
///
/// let model = Mean { y: (0..40).map(|n| f64::from(n % 5)).collect() };
/// let config = FitConfig::new(Diwhvi::elbo()).batch_size(8).max_steps(500).progress(false);
/// let fitted = fit(&model, &MeanField::new(1), Adam::new(0.05), &config).unwrap();
/// let full = fitted.full_bound.unwrap();
/// assert_eq!(full.replicates, FULL_BOUND_REPLICATES);
/// assert!((fitted.params[0] - 80.0 / 41.0).abs() < 0.3, "{:?}", fitted.params);
/// ```
pub const FULL_BOUND_REPLICATES: usize = 32;

impl Fit {
    /// The learned parameters after the last accepted step, named and
    /// constrained: `θ = T(ϑ)` for [`Fit::theta`]. Empty for a model
    /// without learned parameters.
    ///
    /// The fit maximised the bound `L(φ, θ) ≤ log p_θ(x)` jointly in the
    /// guide's parameters `φ` and in `θ` (variational EM, or empirical
    /// Bayes: maximum marginal likelihood with the bound standing in for
    /// `log p_θ(x)`).
    ///
    /// # Errors
    /// Never for a fit returned by [`fit`]; [`LayoutError::WrongLength`]
    /// if [`Fit::theta`] was changed to another length.
    ///
    /// ```
    /// use iwhvi_core::Scalar;
    /// use iwhvi_core::fit::{FitConfig, fit};
    /// use iwhvi_core::guide::MeanField;
    /// use iwhvi_core::model::{LatentSpec, Layout, LayoutError, Model};
    /// use iwhvi_core::objective::Diwhvi;
    /// use iwhvi_core::optim::Adam;
    /// use iwhvi_core::transforms::Transform;
    ///
    /// /// z ~ N(mu, 1), y ~ N(z, 1) with y = 2 and mu learned: the marginal
    /// /// likelihood N(y; mu, 2) is largest at mu = y.
    /// struct Learned { mu: f64 }
    /// impl Model for Learned {
    ///     fn layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("z", Transform::Identity)])
    ///     }
    ///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
    ///         self.log_joint_theta(&[T::constant(self.mu)], u)
    ///     }
    ///     fn theta_layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("mu", Transform::Identity)])
    ///     }
    ///     fn theta(&self) -> Vec<f64> { vec![self.mu] }
    ///     fn set_theta(&mut self, theta: &[f64]) -> Result<(), LayoutError> {
    ///         self.mu = theta[0];
    ///         Ok(())
    ///     }
    ///     fn log_joint_theta<T: Scalar>(&self, theta: &[T], u: &[T]) -> T {
    ///         -(u[0] - theta[0]).square() * 0.5 - (u[0] - 2.0).square() * 0.5
    ///     }
    /// }
    ///
    /// let config = FitConfig::new(Diwhvi::elbo()).max_steps(3000).progress(false);
    /// let fitted = fit(&Learned { mu: 0.0 }, &MeanField::new(1), Adam::new(0.05), &config).unwrap();
    /// let mu = fitted.learned().unwrap().get("mu").unwrap()[0];
    /// assert!((mu - 2.0).abs() < 0.2, "{mu}");
    /// ```
    pub fn learned(&self) -> Result<Latents, LayoutError> {
        self.theta_layout.constrain(&self.theta)
    }

    /// [`Fit::learned`] at [`Fit::best_theta`].
    ///
    /// # Errors
    /// As [`Fit::learned`].
    pub fn best_learned(&self) -> Result<Latents, LayoutError> {
        self.theta_layout.constrain(&self.best_theta)
    }

    /// Splits the joint vectors `[φ; ϑ]` the loop optimised into the
    /// guide's `p` parameters and the learned ones.
    fn split_theta(&mut self, p: usize, layout: Layout) {
        self.theta = self.params.split_off(p.min(self.params.len()));
        self.best_theta = self.best_params.split_off(p.min(self.best_params.len()));
        self.theta_layout = layout;
    }
}

/// Why a fit failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FitError {
    /// The model, guide, initial parameters, optimizer or settings do not
    /// fit together (checked before the first step): a guide for another
    /// `D`, initial parameters of the wrong length or not finite, a
    /// learning rate that is not finite and positive, a zero window, a
    /// step over the memory budget, …
    #[error(transparent)]
    Input(#[from] InputError),
    /// Too many steps in a row had a non-finite bound or gradient.
    #[error(
        "the bound or its gradient was not finite for {consecutive} steps in a row (the last at step {step}); \
         the best parameters so far are kept in the error: lower the learning rate, clip the gradient, \
         or check the model for values outside its support"
    )]
    Diverged {
        /// The step of the last rejection.
        step: usize,
        /// Rejections in a row.
        consecutive: usize,
        /// The fit so far, with its best parameters.
        partial: Box<Fit>,
    },
    /// The gradient estimator cannot serve the guide.
    #[error(transparent)]
    Objective(#[from] ObjectiveError),
    /// The log joint is `−∞` or NaN at the starting point (the guide's
    /// draw for zero noise at the initial parameters), found before the
    /// first step: the model, not the learning rate, needs fixing.
    #[error(
        "the log joint is {value} at the starting point (the guide's centre at its initial parameters), before the first step: {}",
        start_cause(term.as_ref())
    )]
    InvalidStart {
        /// The log joint there.
        value: f64,
        /// The first term that is not finite there, when the model names its
        /// terms (`#[variational]` models do).
        term: Option<InvalidTerm>,
    },
    /// [`Init::At`] with a point of the wrong length.
    #[error("the starting point has {found} coordinates but the model has {expected}")]
    InitLength {
        /// The model's `D`.
        expected: usize,
        /// The point's length.
        found: usize,
    },
    /// [`Init::At`] with a non-finite coordinate.
    #[error("coordinate {index} of the starting point is {value}; every coordinate must be finite")]
    InitNotFinite {
        /// The coordinate.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// The guide cannot be centred on a point
    /// ([`HierarchicalGuide::init_params_at`] returned `None`).
    #[error(
        "this guide cannot be centred on a starting point: use Init::Guide, or compute its initial \
         parameters yourself and call fit_from"
    )]
    InitUnsupported,
    /// [`Init::Laplace`] found no mode from any start.
    #[error("no start of the Laplace multi-start found a mode: {0}")]
    Laplace(#[from] LaplaceError),
}

fn start_cause(term: Option<&InvalidTerm>) -> String {
    term.map_or_else(
        || "check the model's parameters and supports there".to_string(),
        ToString::to_string,
    )
}

/// The guide's draw for zero noise at `params`: the point the fit starts
/// around.
fn starting_point<G: HierarchicalGuide>(guide: &G, params: &[f64]) -> Vec<f64> {
    let mut workspace = Workspace::new(guide);
    guide.prepare(params, &mut workspace);
    let mut psi = vec![0.0; guide.mixing_dim()];
    guide.sample_mixing(params, &vec![0.0; guide.mixing_noise_dim()], &mut psi);
    let mut u = vec![0.0; guide.latent_dim()];
    let noise = vec![0.0; guide.conditional_noise_dim()];
    guide.sample_conditional(params, &psi, &noise, &mut u, &mut workspace);
    u
}

/// Fits `guide` to `model` from the guide's own initial parameters (drawn
/// with `config.seed`), placed as [`FitConfig::init`] says.
///
/// The optimizer is cloned, fresh, for each pilot fit of
/// [`Init::Pilots`].
///
/// # Errors
/// [`FitError::Input`] before the first step when the model, guide,
/// parameters, optimizer ([`Optimizer::check`]) or `config`
/// ([`FitConfig::check`], the memory budget) do not fit together;
/// [`FitError::Objective`] when the estimator cannot serve the guide;
/// [`FitError::Diverged`]; the start's errors ([`FitError::InvalidStart`],
/// [`FitError::InitLength`], …).
pub fn fit<Mo: Model, G: HierarchicalGuide, O: Optimizer + Clone>(
    model: &Mo,
    guide: &G,
    optimizer: O,
    config: &FitConfig,
) -> Result<Fit, FitError> {
    // One plate-cache scope for the pilots, the Laplace starts and the fit.
    crate::plate::with_plate_cache(|| fit_placed(model, guide, optimizer, config))
}

/// [`fit`] inside its plate-cache scope.
fn fit_placed<Mo: Model, G: HierarchicalGuide, O: Optimizer + Clone>(
    model: &Mo,
    guide: &G,
    optimizer: O,
    config: &FitConfig,
) -> Result<Fit, FitError> {
    let mut rng = StdRng::seed_from_u64(config.seed);
    if !matches!(config.init, Init::Guide) {
        // The settings first: the starts already use them (the pilots'
        // radius, the optimizer).
        config.check()?;
        optimizer.check()?;
        check_dimensions(model, guide)?;
    }
    let (initial, warning) = match &config.init {
        Init::Guide => (guide.init_params(&mut rng), None),
        Init::At(point) => (init_at(guide, &mut rng, point)?, None),
        Init::Laplace(rule) => {
            let found = laplace_multistart(model, *rule)?;
            let spread = found.evidence_spread();
            let warning = (spread > STARTS_DISAGREE_NATS).then(|| FitWarning::StartsDisagree {
                best: found.best.log_evidence(),
                worst: found.best.log_evidence() - spread,
                starts: found.modes.len(),
            });
            (init_at(guide, &mut rng, &found.best.mode)?, warning)
        }
        Init::Pilots(rule) => pilot_fits(model, guide, &optimizer, config, *rule)?,
    };
    let mut result = fit_from(model, guide, optimizer, config, initial);
    if let Some(warning) = warning {
        match &mut result {
            Ok(fit) => fit.warnings.push(warning),
            Err(FitError::Diverged { partial, .. }) => partial.warnings.push(warning),
            Err(_) => {}
        }
    }
    result
}

/// The guide's initial parameters centred on `point`, checked.
fn init_at<G: HierarchicalGuide>(
    guide: &G,
    rng: &mut StdRng,
    point: &[f64],
) -> Result<Vec<f64>, FitError> {
    if point.len() != guide.latent_dim() {
        return Err(FitError::InitLength {
            expected: guide.latent_dim(),
            found: point.len(),
        });
    }
    if let Some((index, &value)) = point.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(FitError::InitNotFinite { index, value });
    }
    guide
        .init_params_at(rng, point)
        .ok_or(FitError::InitUnsupported)
}

/// [`Init::Pilots`]: the parameters of the best pilot, and a warning when
/// the pilots disagree.
fn pilot_fits<Mo: Model, G: HierarchicalGuide, O: Optimizer + Clone>(
    model: &Mo,
    guide: &G,
    optimizer: &O,
    config: &FitConfig,
    rule: Pilots,
) -> Result<(Vec<f64>, Option<FitWarning>), FitError> {
    use rand::RngExt;
    let steps = rule.steps.max(1);
    let pilot_config = FitConfig {
        max_steps: steps,
        tol_rel_obj: None,
        window: config.window.clamp(1, steps),
        progress: false,
        init: Init::Guide,
        ..config.clone()
    };
    let mut points = StdRng::seed_from_u64(rule.seed);
    let d = guide.latent_dim();
    let mut best: Option<(f64, Vec<f64>)> = None;
    let mut worst = f64::INFINITY;
    let mut finished = 0;
    let mut first_error = None;
    for start in 0..rule.starts.max(1) {
        let point: Vec<f64> = if start == 0 {
            vec![0.0; d]
        } else {
            (0..d)
                .map(|_| points.random_range(-rule.radius..=rule.radius))
                .collect()
        };
        // Every pilot draws the guide's other initial values alike.
        let mut rng = StdRng::seed_from_u64(config.seed);
        let initial = init_at(guide, &mut rng, &point)?;
        match fit_from(model, guide, optimizer.clone(), &pilot_config, initial) {
            Ok(pilot) => {
                let tail = (steps / 5).clamp(1, pilot_config.window);
                let last = &pilot.trace[pilot.trace.len().saturating_sub(tail)..];
                let finite: Vec<f64> = last.iter().copied().filter(|b| b.is_finite()).collect();
                let bound = if finite.is_empty() {
                    f64::NEG_INFINITY
                } else {
                    mean(&finite)
                };
                finished += 1;
                worst = worst.min(bound);
                if best.as_ref().is_none_or(|(b, _)| bound > *b) {
                    best = Some((bound, pilot.params));
                }
            }
            Err(e @ FitError::Diverged { .. }) => {
                first_error.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    let Some((best, params)) = best else {
        return Err(first_error.expect("a pilot that did not finish diverged"));
    };
    let warning = (best - worst > STARTS_DISAGREE_NATS).then_some(FitWarning::StartsDisagree {
        best,
        worst,
        starts: finished,
    });
    Ok((params, warning))
}

/// Fits `guide` to `model` from the given initial parameters.
///
/// # Errors
/// As [`fit`].
///
/// The fit runs in a [`with_plate_cache`](crate::plate::with_plate_cache)
/// scope: the model's plates whose arguments are affine in the latents
/// record their derivatives once, at the first step.
pub fn fit_from<Mo: Model, G: HierarchicalGuide, O: Optimizer>(
    model: &Mo,
    guide: &G,
    optimizer: O,
    config: &FitConfig,
    initial: Vec<f64>,
) -> Result<Fit, FitError> {
    crate::plate::with_plate_cache(|| fit_in_scope(model, guide, optimizer, config, initial))
}

/// [`fit_from`] inside its plate-cache scope.
fn fit_in_scope<Mo: Model, G: HierarchicalGuide, O: Optimizer>(
    model: &Mo,
    guide: &G,
    optimizer: O,
    config: &FitConfig,
    initial: Vec<f64>,
) -> Result<Fit, FitError> {
    check_dimensions(model, guide)?;
    check_params(guide, &initial)?;
    config.check()?;
    optimizer.check()?;
    config.estimator.check(guide)?;
    let start = starting_point(guide, &initial);
    let value = model.log_joint(&start);
    if !value.is_finite() {
        let term = model.first_invalid_term(&start);
        return Err(FitError::InvalidStart { value, term });
    }
    let theta = model.theta();
    if theta.len() != model.theta_dim() || theta.iter().any(|t| !t.is_finite()) {
        return Err(InputError::InvalidSetting {
            setting: "theta",
            value: format!("{theta:?}"),
            requirement: "the model's learned parameters are theta_dim() finite values",
        }
        .into());
    }
    let (batcher, per_point) = match config.batch_size {
        None => (None, None),
        Some(b) => {
            let (n, points) = check_batch(model, guide, config, b)?;
            (Some(Batcher::new(n, b, config.seed)), points)
        }
    };
    let p = initial.len();
    let engines = config.engine.step_engines(guide);
    check_size(
        guide,
        config.objective,
        engines.guide == EngineChoice::Tape,
        config.memory_budget,
    )?;
    // The step's noise with the model's prior noise, checked as every
    // caller of the bound checks it (and as the full-data bound after a
    // minibatch fit will).
    let noise = StepNoise::try_for_model(model, guide, config.objective, config.memory_budget)?;
    let parallelism = config.parallelism;
    let model_engine = ModelEngine::new(engines.model, parallelism);
    let theta_layout = model.theta_layout();
    let mut joint = initial;
    joint.extend_from_slice(&theta);
    let run = |step: &mut StepFn<'_>| {
        let mut result = fit_loop(optimizer, config, (joint, noise), engines, step);
        match &mut result {
            Ok(fit) => fit.split_theta(p, theta_layout),
            Err(FitError::Diverged { partial, .. }) => partial.split_theta(p, theta_layout),
            Err(_) => {}
        }
        if config.batch_size.is_some() && config.full_bound {
            if let Ok(fit) = &mut result {
                fit.full_bound = Some(match &per_point {
                    None => full_data_bound(model, guide, config, fit)?,
                    Some(points) => per_point_full_bound(model, guide, config, points, fit)?,
                });
            }
        }
        result
    };
    if let Some(points) = &per_point {
        let batcher = batcher.expect("the per-point bound is chosen only with batches");
        let engine = (engines.guide, parallelism);
        return per_point_fit(model, guide, engine, (p, batcher, points), run);
    }
    match engines.guide {
        EngineChoice::Fused => {
            // Cannot fail: `step_engines` returns `Fused` only when
            // `guide.fused()` is `Some`.
            let mut fused = guide
                .fused()
                .expect("step_engines picks the fused path only for a guide that has one")
                .with_estimator(config.estimator)?
                .with_parallelism(parallelism);
            // The loop's vector is `[φ; ϑ]`: the learned parameters' part
            // of the gradient from the same outer weights (none for most
            // models, which then run `value_and_gradient` as before).
            // With minibatches, the fused path sees the model through the
            // step's batch like the generic one (the batch's scaled log
            // joint and its gradient in `u`).
            let mut batcher = batcher;
            run(&mut |joint, noise, rng, gradient| {
                noise.redraw(rng);
                let (params, theta) = joint.split_at(p);
                let stepped = step_model(model, batcher.as_mut(), theta);
                Ok(fused.value_and_gradient_with_theta(
                    &stepped,
                    params,
                    theta,
                    noise,
                    &model_engine,
                    gradient,
                ))
            })
        }
        EngineChoice::Forward { .. } => {
            let forward = ForwardEngine::<16>::new().with_parallelism(parallelism);
            let engines = (&model_engine, &forward);
            generic_fit(model, guide, config, engines, (p, batcher), run)
        }
        EngineChoice::Tape => {
            let engines = (&model_engine, &TapeEngine);
            generic_fit(model, guide, config, engines, (p, batcher), run)
        }
    }
}

/// One step's bound, writing its gradient: `(params, noise, stream,
/// gradient)`, the step drawing its noise from the fit's noise stream
/// first (all of it, or for a per-point minibatch step the entries its
/// batch reads).
type StepFn<'a> =
    dyn FnMut(&[f64], &mut StepNoise, &mut StdRng, &mut [f64]) -> Result<f64, FitError> + 'a;

/// The fit on the generic path: the bound over `guide`'s own densities,
/// its gradient on `guide_engine`, the model's on `model_engine`. The
/// loop's vector is the guide's `p` parameters, then the model's learned
/// ones (none for most models).
fn generic_fit<Mo: Model, G: HierarchicalGuide, EG: GradientEngine>(
    model: &Mo,
    guide: &G,
    config: &FitConfig,
    (model_engine, guide_engine): (&ModelEngine, &EG),
    (p, mut batcher): (usize, Option<Batcher>),
    run: impl FnOnce(&mut StepFn<'_>) -> Result<Fit, FitError>,
) -> Result<Fit, FitError> {
    run(&mut |joint, noise, rng, gradient| {
        noise.redraw(rng);
        let engines = GenericEngines {
            model: model_engine,
            guide: guide_engine,
            parallelism: config.parallelism,
        };
        let (params, theta) = joint.split_at(p);
        let stepped = step_model(model, batcher.as_mut(), theta);
        Ok(split_engines_value_and_gradient_theta(
            &stepped,
            guide,
            params,
            theta,
            noise,
            engines,
            config.estimator,
            gradient,
        )?)
    })
}

/// The model one step sees: through the batcher's next batch (its log
/// joint `[global terms] + (N / b) Σ_{n ∈ B} [plate terms of n]`), or,
/// without minibatches, whole ([`Subsampled`] with no batch calls the
/// model's own [`Model::log_joint_theta_with_noise`], the same bits).
/// One model type for both, so the step's generic code is instantiated
/// once.
fn step_model<'a, Mo: Model>(
    model: &'a Mo,
    batcher: Option<&'a mut Batcher>,
    theta: &'a [f64],
) -> Subsampled<'a, Mo> {
    Subsampled {
        model,
        batch: batcher.map(Batcher::next_batch),
        theta,
    }
}

/// The fit on the per-point bound ([`PerPointObjective`]; minibatches
/// with `M > 1`, or `M = 1` with a guide whose groups are per point): one
/// function of `[φ; ϑ]` differentiated whole on the guide's engine (the
/// tape for a guide with a fused path, which computes the coupled bound).
fn per_point_fit<Mo: Model, G: HierarchicalGuide>(
    model: &Mo,
    guide: &G,
    (choice, parallelism): (EngineChoice, Parallelism),
    batched: (usize, Batcher, &PointGroups),
    run: impl FnOnce(&mut StepFn<'_>) -> Result<Fit, FitError>,
) -> Result<Fit, FitError> {
    match choice {
        EngineChoice::Forward { .. } => {
            let forward = ForwardEngine::<16>::new().with_parallelism(parallelism);
            per_point_run(model, guide, &forward, batched, run)
        }
        EngineChoice::Tape | EngineChoice::Fused => {
            per_point_run(model, guide, &TapeEngine, batched, run)
        }
    }
}

/// [`per_point_fit`] on `engine`: each step's batch of points, the
/// bound's gradient in `[φ; ϑ]`. A step on fewer points than the plate's
/// draws only the noise its batch reads when the guide reports it
/// ([`HierarchicalGuide::group_noise`]): `O(b)` standard normals.
fn per_point_run<Mo: Model, G: HierarchicalGuide, E: GradientEngine>(
    model: &Mo,
    guide: &G,
    engine: &E,
    (p, mut batcher, points): (usize, Batcher, &PointGroups),
    run: impl FnOnce(&mut StepFn<'_>) -> Result<Fit, FitError>,
) -> Result<Fit, FitError> {
    let mut entries = NoiseEntries::default();
    // A batch of the whole plate draws all of the noise, as a fit without
    // batches does.
    let point_noise = if batcher.is_partial() {
        PointNoise::new(guide, points)?
    } else {
        None
    };
    run(&mut |joint, noise, rng, gradient| {
        let batch = batcher.next_batch();
        match &point_noise {
            Some(point_noise) => {
                point_noise.of_batch(&batch, &mut entries);
                noise.redraw_entries(rng, &entries);
            }
            None => noise.redraw(rng),
        }
        let objective = PerPointObjective {
            model,
            guide,
            noise,
            batch,
            points,
            guide_params: p,
        };
        Ok(engine.value_and_gradient_into(&objective, joint, gradient))
    })
}

/// The plate's length `N` for a minibatch fit with batches of `b`, and
/// the points' groups when the fit runs on the per-point bound (`M > 1`,
/// every latent local, a guide that factorises per point), or why the
/// model, the guide, the batch size and the objective cannot go together.
fn check_batch<Mo: Model, G: HierarchicalGuide>(
    model: &Mo,
    guide: &G,
    config: &FitConfig,
    b: usize,
) -> Result<(usize, Option<PointGroups>), InputError> {
    let refuse = |requirement| InputError::InvalidSetting {
        setting: "batch_size",
        value: b.to_string(),
        requirement,
    };
    // `b = 0` was refused by `FitConfig::check`.
    let plate = model.subsample_plate().map_err(refuse)?;
    if b > plate.len {
        return Err(refuse(
            "a minibatch has at most as many elements as the model's plate (N)",
        ));
    }
    let plain = config.estimator == GradientEstimator::Reparameterized;
    if config.objective.m() == 1 {
        // A guide with per-point groups has its points' inner bounds
        // scaled with the batch too (only the batch's groups evaluated);
        // otherwise (or with another estimator) the guide's term is counted
        // whole, which is also unbiased.
        let points = PointGroups::new(model, guide, plate.len, true)
            .ok()
            .filter(|points| plain && points.has_point_groups());
        return Ok((plate.len, points));
    }
    let points = match PointGroups::new(model, guide, plate.len, false) {
        Ok(points) => points,
        // One batch of the whole plate: the ordinary (coupled) bound.
        Err(_) if b == plate.len => return Ok((plate.len, None)),
        Err(why) => return Err(refuse(why)),
    };
    if !plain {
        return Err(InputError::InvalidSetting {
            setting: "estimator",
            value: format!("{:?}", config.estimator),
            requirement: "the per-point bound (minibatches with M > 1) has the plain \
                 reparameterized gradient only (GradientEstimator::Reparameterized)",
        });
    }
    Ok((plate.len, Some(points)))
}

/// [`Fit::full_bound`] of a fit on the per-point bound: the bound on all
/// the points (scale 1) at the fit's last parameters, over
/// [`FULL_BOUND_REPLICATES`] draws of fresh noise.
fn per_point_full_bound<Mo: Model, G: HierarchicalGuide>(
    model: &Mo,
    guide: &G,
    config: &FitConfig,
    points: &PointGroups,
    fit: &Fit,
) -> Result<Estimate, FitError> {
    let mut rng = StdRng::seed_from_u64(config.seed ^ 0x0066_756C_6C5F_626E);
    let mut noise = StepNoise::try_for_model(model, guide, config.objective, config.memory_budget)?;
    let all: Vec<usize> = (0..model.subsample_plate().map_or(0, |plate| plate.len)).collect();
    let mut joint = fit.params.clone();
    joint.extend_from_slice(&fit.theta);
    let values: Vec<f64> = (0..FULL_BOUND_REPLICATES)
        .map(|_| {
            noise.redraw(&mut rng);
            PerPointObjective {
                model,
                guide,
                noise: &noise,
                batch: Batch::with_scale(&all, 1.0),
                points,
                guide_params: fit.params.len(),
            }
            .eval(&joint)
        })
        .collect();
    Ok(Estimate::from_values(&values))
}

/// [`Fit::full_bound`]: the fit's objective on the full data at its last
/// parameters.
fn full_data_bound<Mo: Model, G: HierarchicalGuide>(
    model: &Mo,
    guide: &G,
    config: &FitConfig,
    fit: &Fit,
) -> Result<Estimate, FitError> {
    let full = Subsampled {
        model,
        batch: None,
        theta: &fit.theta,
    };
    let mut rng = StdRng::seed_from_u64(config.seed ^ 0x0066_756C_6C5F_626E);
    // Cannot fail on a finished fit: the dimensions were checked before the
    // first step, the parameters are the loop's finite ones, the replicates
    // a constant above one, and the noise is the size the steps used, under
    // the same budget.
    Ok(estimate_bound_within(
        &full,
        guide,
        &fit.params,
        (config.objective, FULL_BOUND_REPLICATES),
        config.memory_budget,
        &mut rng,
    )?)
}

/// The loop, with `step` drawing `noise` from the loop's stream and
/// computing one step's bound and gradient on it (generic in the optimizer only: the guide and the
/// model enter through `step`).
fn fit_loop<O: Optimizer>(
    mut optimizer: O,
    config: &FitConfig,
    (initial, mut noise): (Vec<f64>, StepNoise),
    engines: StepEngines,
    step_value_and_gradient: &mut StepFn<'_>,
) -> Result<Fit, FitError> {
    let started = Instant::now();
    // The noise stream is seeded apart from the initialisation so that
    // `fit` and `fit_from` with the same seed see the same noise.
    let mut rng = StdRng::seed_from_u64(config.seed ^ 0x9E37_79B9_7F4A_7C15);
    let mut params = initial;
    let mut gradient = vec![0.0; params.len()];
    let mut state = Fit {
        best_params: params.clone(),
        params: Vec::new(),
        trace: Vec::with_capacity(config.max_steps),
        smoothed: Vec::new(),
        steps: 0,
        rejected_steps: 0,
        converged: false,
        engines,
        elapsed: Duration::ZERO,
        warnings: Vec::new(),
        theta: Vec::new(),
        best_theta: Vec::new(),
        theta_layout: Layout::default(),
        full_bound: None,
    };
    let bar = progress_bar(config);
    // `FitConfig::check` rejected a zero window before the first step.
    let window = config.window;
    let mut best_smoothed = f64::NEG_INFINITY;
    let mut relative_changes: Vec<f64> = Vec::new();
    let history = (config.max_steps / window / 10).max(2);
    let mut consecutive = 0;

    for step in 1..=config.max_steps {
        let bound = step_value_and_gradient(&params, &mut noise, &mut rng, &mut gradient)?;
        state.trace.push(bound);
        state.steps = step;
        if !bound.is_finite() || !all_finite(&gradient) {
            state.rejected_steps += 1;
            consecutive += 1;
            if consecutive >= config.max_consecutive_rejections {
                bar.abandon_with_message(format!("diverged at step {step}"));
                state.params = params;
                state.elapsed = started.elapsed();
                return Err(FitError::Diverged {
                    step,
                    consecutive,
                    partial: Box::new(state),
                });
            }
            continue;
        }
        consecutive = 0;
        optimizer.step(&mut params, &gradient);

        if step % window == 0 {
            // In range: `step` is a multiple of `window ≥ 1` here and
            // `trace` holds `step` entries.
            let recent: Vec<f64> = state.trace[step - window..]
                .iter()
                .copied()
                .filter(|b| b.is_finite())
                .collect();
            let smoothed = recent.iter().sum::<f64>() / recent.len().max(1) as f64;
            if let Some(&previous) = state.smoothed.last() {
                relative_changes.push(((smoothed - previous) / smoothed).abs());
                if relative_changes.len() > history {
                    relative_changes.remove(0);
                }
            }
            state.smoothed.push(smoothed);
            if smoothed > best_smoothed {
                best_smoothed = smoothed;
                state.best_params.clone_from(&params);
            }
            bar.set_position(step as u64);
            bar.set_message(format!("{smoothed:.4}"));
            if let Some(tolerance) = config.tol_rel_obj {
                if step >= config.min_steps
                    && relative_changes.len() >= 2
                    && (mean(&relative_changes) < tolerance
                        || median(&relative_changes) < tolerance)
                {
                    state.converged = true;
                    break;
                }
            }
        }
    }
    bar.finish();
    if state.smoothed.is_empty() {
        state.best_params.clone_from(&params);
    }
    state.params = params;
    state.elapsed = started.elapsed();
    Ok(state)
}

/// True when every entry of `xs` is finite: `x − x` is `0` for a finite
/// `x` and NaN for `±∞` and NaN, summed in sixteen lanes without a branch
/// (compiled for the CPU's best instruction set), where a test per entry
/// with an early exit ran one compare at a time over a gradient of
/// thousands of entries, every step.
fn all_finite(xs: &[f64]) -> bool {
    struct Finite<'a>(&'a [f64]);
    impl crate::plate::vmath::Simd for Finite<'_> {
        type Output = bool;
        #[inline(always)]
        fn run(self) -> bool {
            const LANES: usize = 16;
            let (chunks, tail) = self.0.as_chunks::<LANES>();
            let mut lanes = [0.0f64; LANES];
            for chunk in chunks {
                for (lane, &x) in lanes.iter_mut().zip(chunk) {
                    // Not zero: NaN for ±∞ and NaN, the point of the test.
                    #[allow(clippy::eq_op)]
                    let difference = x - x;
                    *lane += difference;
                }
            }
            lanes.iter().all(|&l| l == 0.0) && tail.iter().all(|x| x.is_finite())
        }
    }
    crate::plate::vmath::dispatch(Finite(xs))
}

fn progress_bar(config: &FitConfig) -> ProgressBar {
    if !config.progress {
        return ProgressBar::hidden();
    }
    // indicatif draws nothing when stderr is not a terminal.
    let bar = ProgressBar::new(config.max_steps as u64);
    // Cannot fail: the template is a constant checked by every fit with a
    // progress bar in the tests.
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps, smoothed bound {msg} ({per_sec})",
        )
        .expect("the template is valid"),
    );
    bar
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
    }
}

#[cfg(test)]
#[path = "fit_tests.rs"]
mod tests;
