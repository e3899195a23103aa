//! A guide in affine coordinates: `u = shift + L z` with `z` from an inner
//! guide.

use rand::Rng;

use super::{HierarchicalGuide, ParamLayout, Workspace, WorkspaceLens};
use crate::objective::fused::FusedDiwhvi;
use crate::scalar::Scalar;

/// Any guide fitted in whitened coordinates: the inner guide draws `z`
/// and this one returns `u = shift + L z`, with a fixed shift and a fixed
/// lower-triangular `L` with a positive diagonal. Densities follow by the
/// change of variables,
///
/// `log q(u | ψ) = log q_inner(L⁻¹(u − shift) | ψ) − Σᵢ ln Lᵢᵢ`,
///
/// and the reverse model sees `z = L⁻¹(u − shift)`, so the family is the
/// inner one moved by the affine map, with the same parameters. With
/// `L Lᵀ` the posterior covariance of a [Laplace
/// approximation](crate::laplace::Laplace) the inner guide meets a
/// posterior close to `N(0, I)` however correlated or badly scaled the
/// model's own coordinates are, which is what optimizers handle best
/// ([`Laplace::precondition`](crate::laplace::Laplace::precondition)).
///
/// ```
/// use iwhvi_core::guide::{HierarchicalGuide, MeanField, Preconditioned, Workspace};
/// // u = (1, 2) + [[2, 0], [1, 1]] z, with z ~ N(0, I) (mean-field at loc 0, scale 1).
/// let guide = Preconditioned::new(MeanField::new(2), vec![1.0, 2.0], vec![2.0, 0.0, 1.0, 1.0])?;
/// let params = vec![0.0; 4];
/// let mut workspace = Workspace::new(&guide);
/// let mut u = [0.0; 2];
/// guide.sample_conditional(&params, &[], &[1.0, -1.0], &mut u, &mut workspace);
/// assert_eq!(u, [3.0, 2.0]);
/// // log q(u) = log N(z; 0, I) − ln 2 at z = (1, −1).
/// let log_q = guide.log_conditional(&params, &[], &u, &mut workspace);
/// let expected = -1.0 - (2.0 * std::f64::consts::PI).ln() - 2f64.ln();
/// assert!((log_q - expected).abs() < 1e-12);
/// # Ok::<(), iwhvi_core::guide::PreconditionError>(())
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(
    try_from = "Parts<G>",
    bound(deserialize = "G: HierarchicalGuide + serde::Deserialize<'de>")
)]
pub struct Preconditioned<G> {
    inner: G,
    shift: Vec<f64>,
    /// `L`, row-major, `D × D` (entries above the diagonal are zero).
    scale_tril: Vec<f64>,
    /// `Σ ln Lᵢᵢ`, derived.
    #[serde(skip_serializing)]
    log_det: f64,
}

/// What a saved [`Preconditioned`] holds; loading goes through
/// [`Preconditioned::new`], so a file with a wrong size or an invalid
/// factor is an error, not a wrong density.
#[derive(serde::Deserialize)]
struct Parts<G> {
    inner: G,
    shift: Vec<f64>,
    scale_tril: Vec<f64>,
}

impl<G: HierarchicalGuide> TryFrom<Parts<G>> for Preconditioned<G> {
    type Error = PreconditionError;

    fn try_from(parts: Parts<G>) -> Result<Self, Self::Error> {
        Self::new(parts.inner, parts.shift, parts.scale_tril)
    }
}

/// Why a [`Preconditioned`] guide cannot be built.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PreconditionError {
    /// The shift or the factor does not match the guide's dimension.
    #[error(
        "the guide has {guide} latents but the shift has {shift} entries and the factor {factor} (expected {guide} and {guide}²)"
    )]
    DimensionMismatch {
        /// The inner guide's `D`.
        guide: usize,
        /// The shift's length.
        shift: usize,
        /// The factor's length.
        factor: usize,
    },
    /// `L` is not lower triangular with a positive, finite diagonal, or
    /// has a non-finite entry (or the shift does).
    #[error(
        "the factor must be lower triangular with a positive diagonal and finite entries; entry ({row}, {column}) is {value}"
    )]
    InvalidFactor {
        /// The entry's row.
        row: usize,
        /// The entry's column.
        column: usize,
        /// Its value.
        value: f64,
    },
    /// The shift has a non-finite entry.
    #[error("the shift's entry {index} is {value}; every entry must be finite")]
    InvalidShift {
        /// The entry.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// The inner guide is itself a wrapper that needs
    /// [`Workspace::latent`]; compose the affine maps into one instead.
    #[error("the inner guide is already preconditioned: compose the two affine maps into one")]
    Nested,
}

impl<G: HierarchicalGuide> Preconditioned<G> {
    /// `u = shift + L z` around `inner`; `scale_tril` is `L`, row-major,
    /// `D × D`.
    ///
    /// # Errors
    /// [`PreconditionError`] names the entry at fault.
    pub fn new(inner: G, shift: Vec<f64>, scale_tril: Vec<f64>) -> Result<Self, PreconditionError> {
        let d = inner.latent_dim();
        if shift.len() != d || scale_tril.len() != d * d {
            return Err(PreconditionError::DimensionMismatch {
                guide: d,
                shift: shift.len(),
                factor: scale_tril.len(),
            });
        }
        if inner.workspace_lens().latent > 0 {
            return Err(PreconditionError::Nested);
        }
        if let Some((index, &value)) = shift.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(PreconditionError::InvalidShift { index, value });
        }
        for row in 0..d {
            for column in 0..d {
                let value = scale_tril[row * d + column];
                let valid = match column.cmp(&row) {
                    std::cmp::Ordering::Less => value.is_finite(),
                    std::cmp::Ordering::Equal => value.is_finite() && value > 0.0,
                    std::cmp::Ordering::Greater => value == 0.0,
                };
                if !valid {
                    return Err(PreconditionError::InvalidFactor { row, column, value });
                }
            }
        }
        let log_det = (0..d).map(|i| scale_tril[i * d + i].ln()).sum();
        Ok(Self {
            inner,
            shift,
            scale_tril,
            log_det,
        })
    }

    /// The inner guide.
    pub fn inner(&self) -> &G {
        &self.inner
    }

    /// The shift.
    pub fn shift(&self) -> &[f64] {
        &self.shift
    }

    /// `L`, row-major.
    pub fn scale_tril(&self) -> &[f64] {
        &self.scale_tril
    }

    /// `z = L⁻¹(u − shift)` by forward substitution, into `z`.
    fn whiten<T: Scalar>(&self, u: &[T], z: &mut [T]) {
        let d = self.shift.len();
        for i in 0..d {
            let row = &self.scale_tril[i * d..i * d + i];
            let mut x = u[i] - self.shift[i];
            for (&zj, &l) in z[..i].iter().zip(row) {
                x -= zj * l;
            }
            z[i] = x / self.scale_tril[i * d + i];
        }
    }

    /// Runs `f` with `z = L⁻¹(u − shift)` and the workspace, using
    /// [`Workspace::latent`] as `z`'s buffer (taken out and put back, so
    /// nothing allocates).
    fn with_whitened<T: Scalar, R>(
        &self,
        u: &[T],
        workspace: &mut Workspace<T>,
        f: impl FnOnce(&[T], &mut Workspace<T>) -> R,
    ) -> R {
        let mut z = std::mem::take(&mut workspace.latent);
        self.whiten(u, &mut z);
        let result = f(&z, workspace);
        workspace.latent = z;
        result
    }

    /// Runs `f` with the `z` that [`HierarchicalGuide::prepare_reverse`]
    /// (or the last `log_conditional`) left in [`Workspace::latent`]: the
    /// trait calls `prepare_reverse` at a `u` before the reverse model's
    /// methods at that `u`, so they need not solve for `z` again.
    fn with_prepared<T: Scalar, R>(
        &self,
        workspace: &mut Workspace<T>,
        f: impl FnOnce(&[T], &mut Workspace<T>) -> R,
    ) -> R {
        let z = std::mem::take(&mut workspace.latent);
        let result = f(&z, workspace);
        workspace.latent = z;
        result
    }
}

impl<G: HierarchicalGuide> HierarchicalGuide for Preconditioned<G> {
    fn latent_dim(&self) -> usize {
        self.inner.latent_dim()
    }

    fn mixing_dim(&self) -> usize {
        self.inner.mixing_dim()
    }

    fn has_reverse_model(&self) -> bool {
        self.inner.has_reverse_model()
    }

    fn param_layout(&self) -> ParamLayout {
        self.inner.param_layout()
    }

    fn init_params<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<f64> {
        self.inner.init_params(rng)
    }

    fn init_params_at<R: Rng + ?Sized>(&self, rng: &mut R, point: &[f64]) -> Option<Vec<f64>> {
        // z = L⁻¹(point − shift), by forward substitution.
        let d = self.shift.len();
        let mut z = vec![0.0; d];
        for i in 0..d {
            let row = &self.scale_tril[i * d..i * d + i];
            let known: f64 = row.iter().zip(&z).map(|(l, z)| l * z).sum();
            z[i] = (point[i] - self.shift[i] - known) / self.scale_tril[i * d + i];
        }
        self.inner.init_params_at(rng, &z)
    }

    fn mixing_noise_dim(&self) -> usize {
        self.inner.mixing_noise_dim()
    }

    fn conditional_noise_dim(&self) -> usize {
        self.inner.conditional_noise_dim()
    }

    fn reverse_noise_dim(&self) -> usize {
        self.inner.reverse_noise_dim()
    }

    fn reverse_params(&self) -> std::ops::Range<usize> {
        self.inner.reverse_params()
    }

    fn fused(&self) -> Option<FusedDiwhvi<'_>> {
        self.inner.fused_preconditioned(self)
    }

    fn workspace_lens(&self) -> WorkspaceLens {
        WorkspaceLens {
            latent: self.latent_dim(),
            ..self.inner.workspace_lens()
        }
    }

    fn prepare<T: Scalar>(&self, params: &[T], workspace: &mut Workspace<T>) {
        self.inner.prepare(params, workspace);
    }

    /// Also leaves `z = L⁻¹(u − shift)` in [`Workspace::latent`] for
    /// `sample_reverse` and `log_reverse` at the same `u`.
    fn prepare_reverse<T: Scalar>(&self, params: &[T], u: &[T], workspace: &mut Workspace<T>) {
        self.with_whitened(u, workspace, |z, workspace| {
            self.inner.prepare_reverse(params, z, workspace);
        });
    }

    fn sample_mixing<T: Scalar>(&self, params: &[T], noise: &[f64], psi: &mut [T]) {
        self.inner.sample_mixing(params, noise, psi);
    }

    fn log_mixing<T: Scalar>(&self, params: &[T], psi: &[T]) -> T {
        self.inner.log_mixing(params, psi)
    }

    fn sample_mixing_prepared<T: Scalar>(
        &self,
        params: &[T],
        noise: &[f64],
        psi: &mut [T],
        workspace: &mut Workspace<T>,
    ) {
        self.inner
            .sample_mixing_prepared(params, noise, psi, workspace);
    }

    fn log_mixing_prepared<T: Scalar>(
        &self,
        params: &[T],
        psi: &[T],
        workspace: &mut Workspace<T>,
    ) -> T {
        self.inner.log_mixing_prepared(params, psi, workspace)
    }

    fn sample_conditional<T: Scalar>(
        &self,
        params: &[T],
        psi: &[T],
        noise: &[f64],
        u: &mut [T],
        workspace: &mut Workspace<T>,
    ) {
        self.inner
            .sample_conditional(params, psi, noise, u, workspace);
        // u = shift + L z in place: row i reads z_0 … z_i, so go bottom-up.
        let d = self.shift.len();
        for i in (0..d).rev() {
            let row = &self.scale_tril[i * d..=i * d + i];
            let mut x = T::constant(self.shift[i]);
            for (&zj, &l) in u[..=i].iter().zip(row) {
                x += zj * l;
            }
            u[i] = x;
        }
    }

    fn log_conditional<T: Scalar>(
        &self,
        params: &[T],
        psi: &[T],
        u: &[T],
        workspace: &mut Workspace<T>,
    ) -> T {
        self.with_whitened(u, workspace, |z, workspace| {
            self.inner.log_conditional(params, psi, z, workspace)
        }) - self.log_det
    }

    fn sample_reverse<T: Scalar>(
        &self,
        params: &[T],
        _u: &[T],
        noise: &[f64],
        psi: &mut [T],
        workspace: &mut Workspace<T>,
    ) {
        self.with_prepared(workspace, |z, workspace| {
            self.inner.sample_reverse(params, z, noise, psi, workspace);
        });
    }

    fn log_reverse<T: Scalar>(
        &self,
        params: &[T],
        _u: &[T],
        psi: &[T],
        workspace: &mut Workspace<T>,
    ) -> T {
        self.with_prepared(workspace, |z, workspace| {
            self.inner.log_reverse(params, z, psi, workspace)
        })
    }
}
