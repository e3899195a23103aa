//! The mean-field Gaussian auto guide.

use rand::Rng;

use super::{HierarchicalGuide, ParamLayout, Workspace, diag_normal_log_density};
use crate::scalar::Scalar;

/// Mean-field Gaussian guide `q(u) = Πᵢ N(uᵢ; locᵢ, e^{2 sᵢ})` over the
/// model's unconstrained latents (ADVI's family); not hierarchical.
///
/// Parameters: `loc` (D), `log_scale` (D); initialised at 0 and `ln 0.1`
/// (NumPyro's `AutoNormal` default scale).
///
/// ```
/// use iwhvi_core::guide::{HierarchicalGuide, MeanField, Workspace};
/// let guide = MeanField::new(3);
/// let params = vec![1.0, 2.0, 3.0, 0.0, 0.0, 0.0];
/// let mut u = [0.0; 3];
/// guide.sample_conditional(&params, &[], &[0.5, 0.0, -1.0], &mut u, &mut Workspace::new(&guide));
/// assert_eq!(u, [1.5, 2.0, 2.0]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "SavedMeanField")]
pub struct MeanField {
    latent_dim: usize,
}

impl MeanField {
    /// The mean-field guide for `latent_dim` unconstrained latents.
    pub fn new(latent_dim: usize) -> Self {
        Self { latent_dim }
    }
}

impl HierarchicalGuide for MeanField {
    fn latent_dim(&self) -> usize {
        self.latent_dim
    }

    fn mixing_dim(&self) -> usize {
        0
    }

    fn has_reverse_model(&self) -> bool {
        false
    }

    fn param_layout(&self) -> ParamLayout {
        let mut layout = ParamLayout::default();
        layout.push("loc", &[self.latent_dim]);
        layout.push("log_scale", &[self.latent_dim]);
        layout
    }

    fn init_params<R: Rng + ?Sized>(&self, _rng: &mut R) -> Vec<f64> {
        let mut params = vec![0.0; 2 * self.latent_dim];
        params[self.latent_dim..].fill(0.1f64.ln());
        params
    }

    fn init_params_at<R: Rng + ?Sized>(&self, rng: &mut R, point: &[f64]) -> Option<Vec<f64>> {
        let mut params = self.init_params(rng);
        params[..self.latent_dim].copy_from_slice(point);
        Some(params)
    }

    fn sample_conditional<T: Scalar>(
        &self,
        params: &[T],
        _psi: &[T],
        noise: &[f64],
        u: &mut [T],
        _workspace: &mut Workspace<T>,
    ) {
        let (loc, log_scale) = params.split_at(self.latent_dim);
        for (((ui, &m), &s), &e) in u.iter_mut().zip(loc).zip(log_scale).zip(noise) {
            *ui = m + s.exp() * e;
        }
    }

    fn log_conditional<T: Scalar>(
        &self,
        params: &[T],
        _psi: &[T],
        u: &[T],
        _workspace: &mut Workspace<T>,
    ) -> T {
        let (loc, log_scale) = params.split_at(self.latent_dim);
        diag_normal_log_density(u, loc, log_scale)
    }
}

/// What a saved [`MeanField`] holds; loading checks the size against
/// [`MAX_SAVED_DIM`](super::MAX_SAVED_DIM).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedMeanField {
    latent_dim: usize,
}

impl TryFrom<SavedMeanField> for MeanField {
    type Error = String;

    fn try_from(saved: SavedMeanField) -> Result<Self, String> {
        super::check_saved_dims(&[("latent_dim", saved.latent_dim)])?;
        Ok(Self::new(saved.latent_dim))
    }
}
