//! The full-rank Gaussian auto guide.

use rand::Rng;

use super::{HierarchicalGuide, ParamLayout, Workspace, WorkspaceLens};
use crate::scalar::Scalar;
use crate::special::LN_SQRT_2PI;

/// Full-rank Gaussian guide `q(u) = N(u; loc, L Lᵀ)` with a Cholesky
/// factor `L` whose diagonal is `exp(log_diag)` (so positive) and whose
/// strictly lower triangle is free; not hierarchical. With
/// `z = L⁻¹(u - loc)`: `log q(u) = -½|z|² - Σ log_diagᵢ - D ln √(2π)`.
///
/// Parameters: `loc` (D), `log_diag` (D), `lower` (D(D-1)/2, row by row);
/// initialised at 0, `ln 0.1` and 0.
///
/// ```
/// use iwhvi_core::guide::{FullRank, HierarchicalGuide, Workspace};
/// let guide = FullRank::new(2);
/// // loc = (0, 0), L = [[1, 0], [0.5, 1]]
/// let params = vec![0.0, 0.0, 0.0, 0.0, 0.5];
/// let mut u = [0.0; 2];
/// guide.sample_conditional(&params, &[], &[1.0, 1.0], &mut u, &mut Workspace::new(&guide));
/// assert_eq!(u, [1.0, 1.5]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "SavedFullRank")]
pub struct FullRank {
    latent_dim: usize,
}

impl FullRank {
    /// The full-rank guide for `latent_dim` unconstrained latents.
    pub fn new(latent_dim: usize) -> Self {
        Self { latent_dim }
    }

    /// `Lᵢⱼ` for `j ≤ i`.
    #[inline]
    fn factor<T: Scalar>(&self, params: &[T], i: usize, j: usize) -> T {
        let d = self.latent_dim;
        if i == j {
            params[d + i].exp()
        } else {
            params[2 * d + i * (i - 1) / 2 + j]
        }
    }
}

impl HierarchicalGuide for FullRank {
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
        let d = self.latent_dim;
        let mut layout = ParamLayout::default();
        layout.push("loc", &[d]);
        layout.push("log_diag", &[d]);
        layout.push("lower", &[d * d.saturating_sub(1) / 2]);
        layout
    }

    fn init_params<R: Rng + ?Sized>(&self, _rng: &mut R) -> Vec<f64> {
        let d = self.latent_dim;
        let mut params = vec![0.0; self.param_layout().len()];
        params[d..2 * d].fill(0.1f64.ln());
        params
    }

    fn init_params_at<R: Rng + ?Sized>(&self, rng: &mut R, point: &[f64]) -> Option<Vec<f64>> {
        let mut params = self.init_params(rng);
        params[..self.latent_dim].copy_from_slice(point);
        Some(params)
    }

    fn workspace_lens(&self) -> WorkspaceLens {
        WorkspaceLens {
            scratch: self.latent_dim,
            ..WorkspaceLens::default()
        }
    }

    fn sample_conditional<T: Scalar>(
        &self,
        params: &[T],
        _psi: &[T],
        noise: &[f64],
        u: &mut [T],
        _workspace: &mut Workspace<T>,
    ) {
        for (i, ui) in u.iter_mut().enumerate() {
            let mut x = params[i];
            for (j, &e) in noise.iter().enumerate().take(i + 1) {
                x += self.factor(params, i, j) * e;
            }
            *ui = x;
        }
    }

    fn log_conditional<T: Scalar>(
        &self,
        params: &[T],
        _psi: &[T],
        u: &[T],
        workspace: &mut Workspace<T>,
    ) -> T {
        let d = self.latent_dim;
        let z = &mut workspace.scratch[..d];
        let mut quad = T::constant(0.0);
        for i in 0..d {
            let mut s = u[i] - params[i];
            for (j, &zj) in z.iter().enumerate().take(i) {
                s -= self.factor(params, i, j) * zj;
            }
            z[i] = s * (-params[d + i]).exp();
            quad += z[i] * z[i];
        }
        let log_det: T = params[d..2 * d].iter().copied().sum();
        -quad * 0.5 - log_det - LN_SQRT_2PI * d as f64
    }
}

/// What a saved [`FullRank`] holds; loading checks the size against
/// [`MAX_SAVED_DIM`](super::MAX_SAVED_DIM).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedFullRank {
    latent_dim: usize,
}

impl TryFrom<SavedFullRank> for FullRank {
    type Error = String;

    fn try_from(saved: SavedFullRank) -> Result<Self, String> {
        super::check_saved_dims(&[("latent_dim", saved.latent_dim)])?;
        Ok(Self::new(saved.latent_dim))
    }
}
