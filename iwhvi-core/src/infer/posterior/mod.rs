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
    /// one the guide was fitted with; [`PersistError::LearnedMismatch`]
    /// when the fitted guide holds learned parameters
    /// ([`FittedGuide::learned`]) other than the model's: the guide was
    /// fitted at those, and importance weights at the model's would be
    /// plausible numbers of another posterior. Set them into the model
    /// first ([`Model::set_theta`] with [`LearnedParams::theta`]).
    pub fn from_fitted(model: &'a Mo, fitted: FittedGuide<G>) -> Result<Self, PersistError> {
        if *fitted.layout() != model.layout() {
            return Err(PersistError::LayoutMismatch);
        }
        if let Some(learned) = fitted.learned() {
            let theta = model.theta();
            if *learned.layout() != model.theta_layout() || learned.theta() != theta.as_slice() {
                return Err(PersistError::learned_mismatch(learned.theta(), &theta));
            }
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
    ///
    /// # Errors
    /// [`PersistError::DrawsMismatch`] when `draws` are not of this
    /// posterior's model (other latents, or their lengths), e.g. draws of
    /// another model or derived values: their derived quantities would be
    /// empty; [`PersistError::RowMismatch`] when the model's
    /// [`Model::derived`] gives rows of other names or lengths.
    ///
    /// ```
    /// use iwhvi_core::guide::MeanField;
    /// use iwhvi_core::model::{Latents, LatentSpec, Layout, Model};
    /// use iwhvi_core::posterior::{Draws, PersistError, Posterior};
    /// use iwhvi_core::transforms::Transform;
    /// use iwhvi_core::Scalar;
    /// use rand::SeedableRng;
    ///
    /// struct Square;
    /// impl Model for Square {
    ///     fn layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("z", Transform::Identity)])
    ///     }
    ///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
    ///         -u[0].square() * 0.5
    ///     }
    ///     fn derived(&self, latents: &Latents) -> Latents {
    ///         let z = latents.get("z").unwrap()[0];
    ///         Latents::from_pairs([("z2".to_string(), vec![z * z])])
    ///     }
    /// }
    ///
    /// let posterior = Posterior::new(&Square, &MeanField::new(1), &[0.0, 0.0])?;
    /// let draws = posterior.sample(5, &mut rand::rngs::StdRng::seed_from_u64(1))?;
    /// let z2 = posterior.derived(&draws)?;
    /// assert_eq!(z2.len(), 5);
    /// // Derived values are not draws of the model's latents.
    /// assert!(matches!(posterior.derived(&z2), Err(PersistError::DrawsMismatch { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn derived(&self, draws: &Draws) -> Result<Draws, PersistError> {
        draws.check_layout(self.fitted.layout())?;
        let rows: Vec<Latents> = draws
            .iter_latents()
            .map(|latents| self.model.derived(&latents))
            .collect();
        Draws::try_from_latents(&rows)
    }

    /// Posterior predictive draws: `f` applied to each draw's named latents.
    ///
    /// Takes any generator of [`iwhvi::rand`](crate::rand) (the `rand` 0.10 that
    /// this library re-exports, so that versions cannot clash), e.g.
    /// `iwhvi::rand::rngs::StdRng`.
    ///
    /// # Errors
    /// [`PersistError::DrawsMismatch`] when `draws` are not of this
    /// posterior's model, as for [`Posterior::derived`] (`f` would look
    /// for latents that are not there).
    pub fn predictive<T, R: Rng + ?Sized>(
        &self,
        draws: &Draws,
        rng: &mut R,
        mut f: impl FnMut(&Latents, &mut R) -> T,
    ) -> Result<Vec<T>, PersistError> {
        draws.check_layout(self.fitted.layout())?;
        Ok(draws
            .iter_latents()
            .map(|latents| f(&latents, rng))
            .collect())
    }
}
