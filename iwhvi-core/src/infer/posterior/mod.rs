//! A fitted guide as a posterior approximation: draws of the named
//! constrained latents, plain or importance-resampled, summaries, the PSIS
//! diagnostic, posterior predictive draws, and saving and loading.
//!
//! One file per concern: [`FittedGuide`] and its persistence (`persist`),
//! [`Draws`] (`draws`) and their CmdStan CSV form (`cmdstan`), their [`Summary`] (`summary`), importance
//! resampling (`resample`) and the PSIS diagnostic (`psis`); this module
//! holds [`Posterior`], the fitted guide beside its model.

use rand::Rng;

use crate::guide::HierarchicalGuide;
use crate::model::{Latents, Model};

mod cmdstan;
mod draws;
mod persist;
mod psis;
mod resample;
mod summary;

pub use cmdstan::CmdStanCsvError;
pub use draws::Draws;
pub use persist::{FittedGuide, LearnedParams, PersistError};
pub use psis::{PARETO_K_GOOD, PARETO_K_OK, pareto_k_hat};
pub use resample::{ResampleError, ResampledDraws};
pub use summary::{Summary, SummaryRow};

/// A fitted guide beside its model: importance weights need the model.
pub struct Posterior<'a, Mo, G> {
    model: &'a Mo,
    fitted: FittedGuide<G>,
}

impl<'a, Mo: Model, G: HierarchicalGuide + Clone> Posterior<'a, Mo, G> {
    /// The posterior approximation of a fitted guide. A model with learned
    /// parameters ([`Model::theta_layout`]) has its current ones saved in
    /// the fitted guide ([`FittedGuide::with_learned`]): set the fit's
    /// into the model first ([`Model::set_theta`]).
    ///
    /// # Errors
    /// [`PersistError::Input`] when the parameters do not fit the guide
    /// (wrong length, not finite) or the guide is for another `D` than the
    /// model.
    pub fn new(model: &'a Mo, guide: &G, params: &[f64]) -> Result<Self, PersistError> {
        let mut fitted = FittedGuide::new(guide.clone(), params.to_vec(), model.layout())?;
        if model.theta_dim() > 0 {
            fitted = fitted.with_learned(model.theta_layout(), model.theta())?;
        }
        Ok(Self { model, fitted })
    }

    /// A loaded (or otherwise built) fitted guide beside its model again.
    ///
    /// # Errors
    /// [`PersistError::LayoutMismatch`] when the model's layout is not the
    /// one the guide was fitted with.
    pub fn from_fitted(model: &'a Mo, fitted: FittedGuide<G>) -> Result<Self, PersistError> {
        if *fitted.layout() != model.layout() {
            return Err(PersistError::LayoutMismatch);
        }
        Ok(Self { model, fitted })
    }

    /// The fitted guide (to save, or to sample without the model).
    pub fn fitted(&self) -> &FittedGuide<G> {
        &self.fitted
    }

    /// `n` plain draws from the guide ([`FittedGuide::sample`]).
    ///
    /// Takes any generator of [`iwhvi::rand`](crate::rand) (the `rand` 0.10 that
    /// this library re-exports, so that versions cannot clash), e.g.
    /// `iwhvi::rand::rngs::StdRng`.
    ///
    /// # Errors
    /// [`InputError::TooLarge`](crate::input::InputError::TooLarge) when
    /// the draws would need more than
    /// [`DEFAULT_MEMORY_BUDGET`](crate::input::DEFAULT_MEMORY_BUDGET) bytes.
    pub fn sample<R: Rng + ?Sized>(
        &self,
        n: usize,
        rng: &mut R,
    ) -> Result<Draws, crate::input::InputError> {
        self.fitted.sample(n, rng)
    }

    /// The model's derived quantities at each draw ([`Model::derived`]).
    pub fn derived(&self, draws: &Draws) -> Draws {
        let rows: Vec<Latents> = (0..draws.len())
            .map(|i| self.model.derived(&draws.latents(i)))
            .collect();
        Draws::from_latents(&rows)
    }

    /// Posterior predictive draws: `f` applied to each draw's named latents.
    ///
    /// Takes any generator of [`iwhvi::rand`](crate::rand) (the `rand` 0.10 that
    /// this library re-exports, so that versions cannot clash), e.g.
    /// `iwhvi::rand::rngs::StdRng`.
    pub fn predictive<T, R: Rng + ?Sized>(
        &self,
        draws: &Draws,
        rng: &mut R,
        mut f: impl FnMut(&Latents, &mut R) -> T,
    ) -> Vec<T> {
        (0..draws.len())
            .map(|i| f(&draws.latents(i), rng))
            .collect()
    }
}
