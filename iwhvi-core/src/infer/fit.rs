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
use crate::gradient::{ForwardEngine, GradientEngine};
use crate::guide::HierarchicalGuide;
use crate::model::Model;
/// Re-exported here because [`FitConfig::estimator`] takes it.
pub use crate::objective::GradientEstimator;
use crate::objective::{self, Diwhvi, ObjectiveError, StepNoise};
use crate::optim::Optimizer;
use crate::tape::TapeEngine;

/// How to fit: the objective, how long, and when to stop.
#[derive(Clone, Debug, PartialEq)]
pub struct FitConfig {
    /// The bound to maximize (default `Diwhvi::new(1, 0)`, the ELBO).
    pub objective: Diwhvi,
    /// The most steps to take (default 5000).
    pub max_steps: usize,
    /// The seed of the initial parameters and of every step's noise
    /// (default 0).
    pub seed: u64,
    /// Stop when the mean or the median of the last relative changes of
    /// the smoothed bound falls below this (Stan's `tol_rel_obj`; default
    /// none: run `max_steps`).
    pub tol_rel_obj: Option<f64>,
    /// Steps per smoothing window: the smoothed bound is the mean of a
    /// window's step bounds (default 100).
    pub window: usize,
    /// Non-finite steps in a row that end the fit (default 20).
    pub max_consecutive_rejections: usize,
    /// Show a progress bar on stderr (default true; hidden when stderr is
    /// not a terminal).
    pub progress: bool,
    /// Threads for the gradient passes (default [`Parallelism::Auto`]).
    pub parallelism: Parallelism,
    /// The gradient estimator (default the plain reparameterization
    /// gradient): `DoublyReparameterized` applies to the reverse model's
    /// parameters of a hierarchical guide (which must report them, else
    /// the fit fails with [`FitError::Objective`]), and to all the
    /// parameters of a guide without mixing variables (sticking the landing
    /// on the ELBO).
    pub estimator: GradientEstimator,
    /// How gradients are computed (default forward mode).
    pub engine: Engine,
}

/// The differentiation engine a fit runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Engine {
    /// Chunked forward-mode dual numbers, 16 directions per pass, passes on
    /// [`FitConfig::parallelism`]'s threads; memory independent of `M × K`.
    #[default]
    Forward,
    /// A reverse-mode tape: one pass whatever the number of parameters, on
    /// the calling thread; the tape grows with `M × K`.
    Tape,
}

impl Default for FitConfig {
    fn default() -> Self {
        Self {
            objective: Diwhvi::elbo(),
            max_steps: 5000,
            seed: 0,
            tol_rel_obj: None,
            window: 100,
            max_consecutive_rejections: 20,
            progress: true,
            parallelism: Parallelism::Auto,
            estimator: GradientEstimator::Reparameterized,
            engine: Engine::Forward,
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

    /// With the given parallelism for the gradient passes.
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
    /// Wall time.
    pub elapsed: Duration,
}

/// Why a fit failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FitError {
    /// The guide and the model disagree on `D`.
    #[error("the guide is for {guide} unconstrained latents but the model has {model}")]
    DimensionMismatch {
        /// The model's `D`.
        model: usize,
        /// The guide's `D`.
        guide: usize,
    },
    /// Initial parameters of the wrong length.
    #[error("the guide has {expected} parameters but {found} initial values were given")]
    WrongParameterCount {
        /// The guide's parameter count.
        expected: usize,
        /// What was given.
        found: usize,
    },
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
}

/// Fits `guide` to `model` from the guide's own initial parameters (drawn
/// with `config.seed`).
///
/// # Errors
/// [`FitError`].
pub fn fit<Mo: Model, G: HierarchicalGuide, O: Optimizer>(
    model: &Mo,
    guide: &G,
    optimizer: O,
    config: &FitConfig,
) -> Result<Fit, FitError> {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let initial = guide.init_params(&mut rng);
    fit_from(model, guide, optimizer, config, initial)
}

/// Fits `guide` to `model` from the given initial parameters.
///
/// # Errors
/// [`FitError`].
pub fn fit_from<Mo: Model, G: HierarchicalGuide, O: Optimizer>(
    model: &Mo,
    guide: &G,
    optimizer: O,
    config: &FitConfig,
    initial: Vec<f64>,
) -> Result<Fit, FitError> {
    match config.engine {
        Engine::Forward => {
            let engine = ForwardEngine::<16>::new().with_parallelism(config.parallelism);
            fit_with(model, guide, optimizer, config, initial, &engine)
        }
        Engine::Tape => fit_with(model, guide, optimizer, config, initial, &TapeEngine),
    }
}

fn fit_with<Mo: Model, G: HierarchicalGuide, O: Optimizer, E: GradientEngine>(
    model: &Mo,
    guide: &G,
    mut optimizer: O,
    config: &FitConfig,
    initial: Vec<f64>,
    engine: &E,
) -> Result<Fit, FitError> {
    if model.dim() != guide.latent_dim() {
        return Err(FitError::DimensionMismatch {
            model: model.dim(),
            guide: guide.latent_dim(),
        });
    }
    let expected = guide.param_layout().len();
    if initial.len() != expected {
        return Err(FitError::WrongParameterCount {
            expected,
            found: initial.len(),
        });
    }
    config.estimator.check(guide)?;
    let started = Instant::now();
    // The noise stream is seeded apart from the initialisation so that
    // `fit` and `fit_from` with the same seed see the same noise.
    let mut rng = StdRng::seed_from_u64(config.seed ^ 0x9E37_79B9_7F4A_7C15);
    let mut noise = StepNoise::new(guide, config.objective);
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
        elapsed: Duration::ZERO,
    };
    let bar = progress_bar(config);
    let window = config.window.max(1);
    let mut best_smoothed = f64::NEG_INFINITY;
    let mut relative_changes: Vec<f64> = Vec::new();
    let history = (config.max_steps / window / 10).max(2);
    let mut consecutive = 0;

    for step in 1..=config.max_steps {
        noise.redraw(&mut rng);
        let bound = objective::value_and_gradient_with(
            model,
            guide,
            &params,
            &noise,
            engine,
            config.estimator,
            &mut gradient,
        )?;
        state.trace.push(bound);
        state.steps = step;
        if !bound.is_finite() || gradient.iter().any(|g| !g.is_finite()) {
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
                if relative_changes.len() >= 2
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

fn progress_bar(config: &FitConfig) -> ProgressBar {
    if !config.progress {
        return ProgressBar::hidden();
    }
    // indicatif draws nothing when stderr is not a terminal.
    let bar = ProgressBar::new(config.max_steps as u64);
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
