//! Sampling-importance-resampling with the bound's own weights.

use rand::{Rng, RngExt};

use super::{Draws, Posterior, pareto_k_hat};
use crate::guide::HierarchicalGuide;
use crate::input::{DEFAULT_MEMORY_BUDGET, InputError, check_values};
use crate::model::Model;
use crate::objective::{Diwhvi, StepNoise};
use crate::special::log_sum_exp;

/// Draws resampled by their importance weights, with the diagnostics of
/// those weights.
#[derive(Clone, Debug, PartialEq)]
pub struct ResampledDraws {
    /// The resampled draws.
    pub draws: Draws,
    /// Effective sample size of the proposals, `(Σw)² / Σw²`.
    pub effective_sample_size: f64,
    /// The PSIS `k̂` of the weights: below [`PARETO_K_GOOD`](super::PARETO_K_GOOD)
    /// (0.5) good, up to [`PARETO_K_OK`](super::PARETO_K_OK) (0.7) ok,
    /// above it unreliable (see [`pareto_k_hat`](super::pareto_k_hat)).
    pub pareto_k: f64,
}

impl ResampledDraws {
    /// The draws' [`Summary`](super::Summary), with each mean's Monte Carlo
    /// standard error `sd / √ESS` from the weights' effective sample size
    /// (the resampled draws repeat proposals, so their count overstates the
    /// information they carry).
    pub fn summary(&self) -> super::Summary {
        self.draws.summary_with_ess(self.effective_sample_size)
    }
}

/// Why importance resampling has nothing to resample.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ResampleError {
    /// `proposals` was 0.
    #[error("importance resampling needs at least one proposal")]
    NoProposals,
    /// A proposal's log weight `log p(x, u) − U_K(u)` is NaN.
    #[error(
        "proposal {proposal} has a NaN importance weight: the model's log density or the guide's is NaN at that draw"
    )]
    NanWeight {
        /// Its index among the proposals.
        proposal: usize,
    },
    /// A proposal's log weight is `+∞`: the model's log density is `+∞`
    /// there, or the guide's bound on `log q` is `−∞`.
    #[error(
        "proposal {proposal} has an infinite importance weight: the model's log density is +∞ or the guide's density 0 at that draw"
    )]
    InfiniteWeight {
        /// Its index among the proposals.
        proposal: usize,
    },
    /// Every proposal has weight 0 (`log p(x, u) = −∞`).
    #[error(
        "none of the {proposals} proposals has a finite importance weight: the guide puts its mass where the model's density is zero"
    )]
    NoFiniteWeights {
        /// How many there were.
        proposals: usize,
    },
    /// No draws asked for, or more proposals, draws or inner samples than
    /// fit in [`DEFAULT_MEMORY_BUDGET`].
    #[error(transparent)]
    Input(#[from] InputError),
}

impl<Mo: Model, G: HierarchicalGuide + Clone> Posterior<'_, Mo, G> {
    /// The log importance weights `log p(x, u) − U_K(u)` (the bound's own
    /// weights on the guide's extended space) of `proposals` draws, with the
    /// unconstrained draws.
    ///
    /// # Errors
    /// [`InputError::TooLarge`] when the draws (`proposals × (D + 1)`
    /// values) or the noise of `k` inner samples would need more than
    /// [`DEFAULT_MEMORY_BUDGET`].
    ///
    /// Takes any generator of [`iwhvi::rand`](crate::rand) (the `rand` 0.10 that
    /// this library re-exports, so that versions cannot clash), e.g.
    /// `iwhvi::rand::rngs::StdRng`.
    pub fn log_weights<R: Rng + ?Sized>(
        &self,
        proposals: usize,
        k: usize,
        rng: &mut R,
    ) -> Result<(Vec<f64>, Vec<Vec<f64>>), InputError> {
        let guide = &self.fitted.guide;
        check_values(
            || format!("{proposals} proposals"),
            proposals,
            guide.latent_dim() + 1,
            DEFAULT_MEMORY_BUDGET,
        )?;
        let mut noise =
            StepNoise::try_for_model(self.model, guide, Diwhvi::new(1, k), DEFAULT_MEMORY_BUDGET)?;
        let mut weights = Vec::with_capacity(proposals);
        let mut us = Vec::with_capacity(proposals);
        for _ in 0..proposals {
            noise.redraw(rng);
            let (sandwich, u) = crate::objective::sandwich(guide, &self.fitted.params, &noise, 0);
            weights
                .push(self.model.log_joint_with_noise(&u, noise.prior_noise(0)) - sandwich.upper);
            us.push(u);
        }
        Ok((weights, us))
    }

    /// Sampling-importance-resampling: `proposals` guide draws weighted by
    /// `log p(x, u) − U_K(u)`, then `n` draws resampled with those weights
    /// (multinomially). Moments of the result are self-normalised
    /// importance estimates, accurate even where the guide covers more mass
    /// than the posterior. Proposals where `log p(x, u) = −∞` get weight 0.
    ///
    /// Takes any generator of [`iwhvi::rand`](crate::rand) (the `rand` 0.10 that
    /// this library re-exports, so that versions cannot clash), e.g.
    /// `iwhvi::rand::rngs::StdRng`.
    ///
    /// # Errors
    /// [`ResampleError`]: no proposals, a NaN or `+∞` weight (a model or
    /// guide that returns NaN or an infinite density at a draw: the
    /// proposal is named), or no proposal with a finite weight;
    /// [`ResampleError::Input`] for `n = 0` or sizes over
    /// [`DEFAULT_MEMORY_BUDGET`].
    pub fn sample_importance_resampled<R: Rng + ?Sized>(
        &self,
        n: usize,
        proposals: usize,
        k: usize,
        rng: &mut R,
    ) -> Result<ResampledDraws, ResampleError> {
        if proposals == 0 {
            return Err(ResampleError::NoProposals);
        }
        if n == 0 {
            return Err(InputError::InvalidSetting {
                setting: "n",
                value: "0".into(),
                requirement: "importance resampling draws at least one draw",
            }
            .into());
        }
        check_values(
            || format!("{n} resampled draws"),
            n,
            self.fitted.layout.element_names().len(),
            DEFAULT_MEMORY_BUDGET,
        )?;
        let (log_w, us) = self.log_weights(proposals, k, rng)?;
        if let Some(proposal) = log_w.iter().position(|w| w.is_nan()) {
            return Err(ResampleError::NanWeight { proposal });
        }
        if let Some(proposal) = log_w.iter().position(|&w| w == f64::INFINITY) {
            return Err(ResampleError::InfiniteWeight { proposal });
        }
        if !log_w.iter().any(|w| w.is_finite()) {
            return Err(ResampleError::NoFiniteWeights { proposals });
        }
        let normaliser = log_sum_exp(&log_w);
        let weights: Vec<f64> = log_w.iter().map(|w| (w - normaliser).exp()).collect();
        let ess = 1.0 / weights.iter().map(|w| w * w).sum::<f64>();
        let mut cumulative = Vec::with_capacity(weights.len());
        let mut total = 0.0;
        for w in &weights {
            total += w;
            cumulative.push(total);
        }
        let mut draws = Draws::new(&self.fitted.layout);
        for _ in 0..n {
            let target = rng.random::<f64>() * total;
            let index = cumulative
                .partition_point(|&c| c < target)
                .min(us.len() - 1);
            draws.push_unconstrained(&self.fitted.layout, &us[index]);
        }
        Ok(ResampledDraws {
            draws,
            effective_sample_size: ess,
            pareto_k: pareto_k_hat(&log_w),
        })
    }
}
