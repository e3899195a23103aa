//! The semi-implicit auto guide.

use std::ops::Range;

use rand::Rng;

use super::network::{Conditioning, Network};
use super::{HierarchicalGuide, ParamLayout, Preconditioned, Workspace, WorkspaceLens};
use crate::objective::fused::FusedDiwhvi;
use crate::scalar::Scalar;
use crate::special::LN_SQRT_2PI;

/// Where the inner importance samples of `ψ` come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Reverse {
    /// A learned Gaussian reverse model `τ(ψ | u) = N(ψ; ν(u), diag e^{2r})`
    /// whose mean `ν` is conditioned on `u` as given.
    Learned(Conditioning),
    /// No reverse model: `τ(ψ | u) := q(ψ)` (SIVI).
    Prior,
}

/// The family of a [`SemiImplicit`] guide's conditional `q(u | ψ)`, one
/// coordinate at a time given `ψ` (mean `μᵢ(ψ)`, scale `σᵢ(ψ)`).
///
/// ```
/// use std::num::NonZeroU8;
/// use iwhvi_core::guide::{ConditionalFamily, HierarchicalGuide, SemiImplicit};
/// let df = NonZeroU8::new(4).unwrap();
/// let guide = SemiImplicit::new(3, 2).with_conditional_family(ConditionalFamily::StudentT { df });
/// // Each coordinate's t draw takes 1 + df standard normals.
/// assert_eq!(guide.conditional_noise_dim(), 3 * 5);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ConditionalFamily {
    /// `uᵢ = μᵢ + σᵢ εᵢ`, `εᵢ ~ N(0, 1)`: Gaussian tails.
    #[default]
    Normal,
    /// Student's t with `df = ν` degrees of freedom, fixed (heavier tails
    /// for small `ν`): `uᵢ = μᵢ + σᵢ tᵢ` with
    /// `tᵢ = εᵢ₀ / √(Σⱼ₌₁..ν εᵢⱼ² / ν)` from `1 + ν` standard normals
    /// (an exact t draw, reparameterised in `μ` and `σ`), and
    /// `log q(u | ψ) = Σᵢ [ln Γ((ν+1)/2) − ln Γ(ν/2) − ½ ln(νπ) − ln σᵢ − (ν+1)/2 · ln(1 + zᵢ²/ν)]`,
    /// `zᵢ = (uᵢ − μᵢ)/σᵢ`. The fused objective
    /// ([`FusedDiwhvi`](crate::objective::fused::FusedDiwhvi)) covers it
    /// as it covers Gaussian conditionals.
    StudentT {
        /// The degrees of freedom `ν`.
        df: std::num::NonZeroU8,
    },
}

/// A semi-implicit (hierarchical) Gaussian guide for any model of
/// unconstrained dimension `D`:
///
/// - mixing: `ψ ~ N(0, I_d)`;
/// - conditional: `q(u | ψ) = N(u; μ(ψ), diag σ(ψ)²)`, with `μ` an affine
///   map or a one-hidden-layer MLP of `ψ`, and `log σ` a learned vector or
///   (optionally) a second output of the same network;
/// - reverse model: `τ(ψ | u) = N(ψ; ν(u), diag e^{2r})` with `ν` affine
///   or an MLP of `u`, or no reverse model at all (SIVI).
///
/// The marginal `q(u) = ∫ q(u|ψ) q(ψ) dψ` is a continuous mixture of
/// Gaussians: skewed, heavy-tailed or correlated shapes that a single
/// Gaussian cannot take. The default (affine maps, learned affine reverse
/// model, constant scale) has `2D + D·d + d·D + 2d` parameters.
///
/// # Parameters
///
/// One flat vector, in blocks ([`HierarchicalGuide::param_layout`] names
/// them and gives their ranges); every matrix is row-major, `[rows,
/// columns]` with one row per output, so `W ψ` is row `i` of `W` dotted
/// with `ψ`. With `D` latents, `d` mixing dimensions and `h` hidden units:
///
/// | block | shape | meaning |
/// |---|---|---|
/// | `conditional.weight` | `[D, d]` | `W` of the affine conditional mean `W ψ + b` |
/// | `conditional.bias` | `[D]` | `b` |
/// | `conditional.log_scale` | `[D]` | `log σ` of `q(u \| ψ)` (absent with a ψ-dependent scale) |
/// | `conditional.hidden.weight`, `.hidden.bias` | `[h, d]`, `[h]` | MLP conditional: `H = tanh(W₁ ψ + b₁)` |
/// | `conditional.output.weight`, `.output.bias` | `[D, h]`, `[D]` | MLP conditional: mean `W₂ H + b₂`; with a ψ-dependent scale `[2D, h]`, `[2D]`, rows `D..2D` being `log σ(ψ)` |
/// | `reverse.weight`, `reverse.bias` | `[d, D]`, `[d]` | affine reverse mean `ν(u) = V u + c` |
/// | `reverse.hidden.*`, `reverse.output.*` | `[h, D]`, `[h]`, `[d, h]`, `[d]` | MLP reverse mean |
/// | `reverse.log_scale` | `[d]` | `r`, the reverse model's log-sd (absent for SIVI, `Reverse::Prior`) |
///
/// (With a ψ-dependent scale and the affine conditional, `conditional.weight`
/// and `conditional.bias` are `[2D, d]` and `[2D]` the same way.)
///
/// Setting the default guide by hand: `u = W ψ + b + σ ⊙ ε`.
///
/// ```
/// use iwhvi_core::guide::{HierarchicalGuide, SemiImplicit, Workspace};
///
/// let guide = SemiImplicit::new(2, 1);
/// let layout = guide.param_layout();
/// let mut params = vec![0.0; layout.len()];
/// let mut set = |name: &str, values: &[f64]| {
///     let block = layout.get(name).unwrap();
///     params[block.range.clone()].copy_from_slice(values);
/// };
/// set("conditional.weight", &[1.0, 2.0]); // W = [[1], [2]] ([D, d] = [2, 1])
/// set("conditional.bias", &[0.5, -0.5]);
/// set("conditional.log_scale", &[0.5f64.ln(), 0.5f64.ln()]);
/// let mut workspace = Workspace::new(&guide);
/// guide.prepare(&params, &mut workspace);
/// let mut u = [0.0; 2];
/// guide.sample_conditional(&params, &[2.0], &[1.0, -1.0], &mut u, &mut workspace);
/// assert_eq!(u, [1.0 * 2.0 + 0.5 + 0.5, 2.0 * 2.0 - 0.5 - 0.5]);
/// ```
///
/// The conditional may be Student-t instead of Gaussian
/// ([`SemiImplicit::with_conditional_family`], [`ConditionalFamily`]).
///
/// Initialisation: the conditional's last weights `N(0, 0.1²)`, every
/// other last layer, bias and log-scale 0, hidden weights `N(0, 1/inputs)`
/// (for the default, the JAX reference implementation's initialisation).
///
/// ```
/// use iwhvi_core::guide::{Conditioning, HierarchicalGuide, Reverse, SemiImplicit};
/// let guide = SemiImplicit::new(10, 10);
/// assert_eq!(guide.param_layout().len(), 240);
/// let sivi = SemiImplicit::new(10, 4).with_reverse(Reverse::Prior);
/// assert!(!sivi.has_reverse_model());
/// let mlp = SemiImplicit::new(3, 2).with_conditioning(Conditioning::Mlp { hidden: 16 });
/// assert_eq!(mlp.param_layout().get("conditional.hidden.weight").unwrap().shape, vec![16, 2]);
/// ```
///
/// Saved (serde) as its configuration alone (`latent_dim`, `mixing_dim`,
/// `conditioning`, `reverse`, `psi_dependent_scale`); the parameter
/// ranges and workspace offsets are derived again on loading, through the
/// constructor, with every size at most [`MAX_SAVED_DIM`](super::MAX_SAVED_DIM).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "SavedSemiImplicit", into = "SavedSemiImplicit")]
pub struct SemiImplicit {
    latent_dim: usize,
    mixing_dim: usize,
    conditioning: Conditioning,
    reverse: Reverse,
    psi_dependent_scale: bool,
    family: ConditionalFamily,
    layout: ParamLayout,
    conditional: Network,
    conditional_log_scale: Option<Range<usize>>,
    reverse_net: Option<Network>,
    reverse_log_scale: Range<usize>,
    /// Where [`HierarchicalGuide::prepare`] puts the conditional's
    /// `(scale, 1/scale, Σ log scale)` (constant scale only) and the
    /// reverse model's, in `Workspace::params`.
    prepared_conditional: Option<usize>,
    prepared_reverse: Option<usize>,
}

/// What a saved [`SemiImplicit`] holds.
#[derive(Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedSemiImplicit {
    latent_dim: usize,
    mixing_dim: usize,
    conditioning: Conditioning,
    reverse: Reverse,
    psi_dependent_scale: bool,
    /// Absent in files saved before Student-t conditionals: Gaussian.
    #[serde(default)]
    family: ConditionalFamily,
}

impl From<SemiImplicit> for SavedSemiImplicit {
    fn from(guide: SemiImplicit) -> Self {
        Self {
            latent_dim: guide.latent_dim,
            mixing_dim: guide.mixing_dim,
            conditioning: guide.conditioning,
            reverse: guide.reverse,
            psi_dependent_scale: guide.psi_dependent_scale,
            family: guide.family,
        }
    }
}

impl TryFrom<SavedSemiImplicit> for SemiImplicit {
    type Error = String;

    fn try_from(saved: SavedSemiImplicit) -> Result<Self, String> {
        let hidden = |c: Conditioning| match c {
            Conditioning::Linear => 0,
            Conditioning::Mlp { hidden } => hidden,
        };
        let reverse_hidden = match saved.reverse {
            Reverse::Learned(c) => hidden(c),
            Reverse::Prior => 0,
        };
        super::check_saved_dims(&[
            ("latent_dim", saved.latent_dim),
            ("mixing_dim", saved.mixing_dim),
            ("conditioning.hidden", hidden(saved.conditioning)),
            ("reverse.hidden", reverse_hidden),
        ])?;
        Ok(Self::assemble(
            saved.latent_dim,
            saved.mixing_dim,
            saved.conditioning,
            saved.reverse,
            saved.psi_dependent_scale,
        )
        .with_conditional_family(saved.family))
    }
}

impl SemiImplicit {
    /// The default guide for `latent_dim` latents with `mixing_dim` mixing
    /// dimensions: affine conditional, learned affine reverse model.
    pub fn new(latent_dim: usize, mixing_dim: usize) -> Self {
        Self::assemble(
            latent_dim,
            mixing_dim,
            Conditioning::Linear,
            Reverse::Learned(Conditioning::Linear),
            false,
        )
    }

    /// With the conditional mean conditioned on `ψ` as given.
    pub fn with_conditioning(self, conditioning: Conditioning) -> Self {
        Self::assemble(
            self.latent_dim,
            self.mixing_dim,
            conditioning,
            self.reverse,
            self.psi_dependent_scale,
        )
        .with_conditional_family(self.family)
    }

    /// With the given reverse model (or none, `Reverse::Prior`, for SIVI).
    pub fn with_reverse(self, reverse: Reverse) -> Self {
        Self::assemble(
            self.latent_dim,
            self.mixing_dim,
            self.conditioning,
            reverse,
            self.psi_dependent_scale,
        )
        .with_conditional_family(self.family)
    }

    /// With the conditional's log-scale an output of its network (so it
    /// depends on `ψ`) rather than a learned constant vector.
    pub fn with_psi_dependent_scale(self, dependent: bool) -> Self {
        Self::assemble(
            self.latent_dim,
            self.mixing_dim,
            self.conditioning,
            self.reverse,
            dependent,
        )
        .with_conditional_family(self.family)
    }

    /// With the conditional's family: Gaussian (the default) or Student-t
    /// with fixed degrees of freedom (heavier tails). The parameters are
    /// the same, and `fit` takes the fused path for either.
    pub fn with_conditional_family(mut self, family: ConditionalFamily) -> Self {
        self.family = family;
        self
    }

    /// The conditional's family.
    pub fn conditional_family(&self) -> ConditionalFamily {
        self.family
    }

    fn assemble(
        latent_dim: usize,
        mixing_dim: usize,
        conditioning: Conditioning,
        reverse: Reverse,
        psi_dependent_scale: bool,
    ) -> Self {
        let mut layout = ParamLayout::default();
        let outputs = if psi_dependent_scale {
            2 * latent_dim
        } else {
            latent_dim
        };
        let conditional = Network::new(
            &mut layout,
            "conditional",
            mixing_dim,
            outputs,
            conditioning,
        );
        let conditional_log_scale =
            (!psi_dependent_scale).then(|| layout.push("conditional.log_scale", &[latent_dim]));
        let reverse_net = match reverse {
            Reverse::Learned(c) => Some(Network::new(
                &mut layout,
                "reverse",
                latent_dim,
                mixing_dim,
                c,
            )),
            Reverse::Prior => None,
        };
        let reverse_log_scale = match reverse {
            Reverse::Learned(_) => layout.push("reverse.log_scale", &[mixing_dim]),
            Reverse::Prior => 0..0,
        };
        let prepared_conditional = conditional_log_scale.as_ref().map(|_| 0);
        let after_conditional = prepared_conditional.map_or(0, |_| 2 * latent_dim + 1);
        let prepared_reverse = reverse_net.as_ref().map(|_| after_conditional);
        Self {
            latent_dim,
            mixing_dim,
            conditioning,
            reverse,
            psi_dependent_scale,
            family: ConditionalFamily::Normal,
            layout,
            conditional,
            conditional_log_scale,
            reverse_net,
            reverse_log_scale,
            prepared_conditional,
            prepared_reverse,
        }
    }

    /// How the guide is built: the conditional's conditioning, the reverse
    /// model, and whether the conditional's log-scale depends on `ψ` (for
    /// the fused objective, which covers every one of them).
    pub(crate) fn configuration(&self) -> (Conditioning, Reverse, bool) {
        (self.conditioning, self.reverse, self.psi_dependent_scale)
    }

    /// The conditional network's outputs at `ψ` into `scratch[..outputs]`
    /// (the mean, then the log-scale when it depends on `ψ`).
    #[inline]
    fn conditional_outputs<T: Scalar>(&self, params: &[T], psi: &[T], scratch: &mut [T]) {
        let outputs = self.conditional.outputs;
        let (out, hidden) = scratch.split_at_mut(outputs);
        self.conditional.apply(
            params,
            psi,
            out,
            &mut hidden[..self.conditional.scratch_len()],
        );
    }
}

/// `(scale, 1/scale, Σ log scale)` of a log-scale block, into `out`.
fn prepare_scales<T: Scalar>(log_scale: &[T], out: &mut [T]) {
    let n = log_scale.len();
    let mut total = T::constant(0.0);
    for (i, &s) in log_scale.iter().enumerate() {
        let scale = s.exp();
        out[i] = scale;
        out[n + i] = scale.recip();
        total += s;
    }
    out[2 * n] = total;
}

/// `Σ log N(xᵢ; meanᵢ, scaleᵢ²)` from prepared `(1/scale, Σ log scale)`.
#[inline]
fn prepared_normal_log_density<T: Scalar>(
    x: &[T],
    mean: &[T],
    inverse_scale: &[T],
    sum_log_scale: T,
) -> T {
    -T::scaled_squared_distance(x, mean, inverse_scale) * 0.5
        - sum_log_scale
        - LN_SQRT_2PI * x.len() as f64
}

/// Coordinate `i`'s t draw with `df` degrees of freedom from standard
/// normal `noise` (`big_d` numerators, then `df` normals per coordinate).
/// An all-zero chi-square part (the zero noise of a fit's starting point)
/// gives `tᵢ = εᵢ₀`.
pub(crate) fn student_t_draw(df: usize, noise: &[f64], big_d: usize, i: usize) -> f64 {
    let squares = &noise[big_d + i * df..big_d + (i + 1) * df];
    crate::generated::student_t_noise(noise[i], squares)
}

/// One coordinate's normalising constant of Student's t with `ν`
/// degrees of freedom: `ln Γ((ν+1)/2) − ln Γ(ν/2) − ½ ln(νπ)`.
pub(crate) fn student_t_constant(nu: f64) -> f64 {
    use crate::special::ln_gamma;
    ln_gamma((nu + 1.0) * 0.5) - ln_gamma(nu * 0.5) - 0.5 * (nu * std::f64::consts::PI).ln()
}

/// `Σᵢ log t_ν(xᵢ; meanᵢ, scaleᵢ)` from the inverse scales and `Σ log scale`.
fn student_t_log_density<T: Scalar>(
    df: f64,
    x: &[T],
    mean: &[T],
    inverse_scale: &[T],
    sum_log_scale: T,
) -> T {
    let constant = student_t_constant(df);
    let mut tails = T::constant(0.0);
    for ((&xi, &mi), &inv) in x.iter().zip(mean).zip(inverse_scale) {
        let z = (xi - mi) * inv;
        tails += (z * z * (1.0 / df)).ln_1p();
    }
    T::constant(constant * x.len() as f64) - sum_log_scale - tails * ((df + 1.0) * 0.5)
}

impl HierarchicalGuide for SemiImplicit {
    fn conditional_noise_dim(&self) -> usize {
        match self.family {
            ConditionalFamily::Normal => self.latent_dim,
            ConditionalFamily::StudentT { df } => self.latent_dim * (1 + usize::from(df.get())),
        }
    }

    fn latent_dim(&self) -> usize {
        self.latent_dim
    }

    fn mixing_dim(&self) -> usize {
        self.mixing_dim
    }

    fn has_reverse_model(&self) -> bool {
        self.reverse_net.is_some()
    }

    fn param_layout(&self) -> ParamLayout {
        self.layout.clone()
    }

    fn init_params<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<f64> {
        let mut params = vec![0.0; self.layout.len()];
        self.conditional.init(&mut params, rng, 0.1);
        if let Some(net) = &self.reverse_net {
            net.init(&mut params, rng, 0.0);
        }
        params
    }

    fn init_params_at<R: Rng + ?Sized>(&self, rng: &mut R, point: &[f64]) -> Option<Vec<f64>> {
        // μ(ψ) = … + b: the first D entries of the last layer's bias.
        let mut params = self.init_params(rng);
        let bias = self.conditional.output_bias();
        params[bias.start..bias.start + self.latent_dim].copy_from_slice(point);
        Some(params)
    }

    fn reverse_params(&self) -> std::ops::Range<usize> {
        match self
            .layout
            .blocks()
            .iter()
            .position(|b| b.name.starts_with("reverse."))
        {
            Some(first) => self.layout.blocks()[first].range.start..self.layout.len(),
            None => 0..0,
        }
    }

    fn fused(&self) -> Option<FusedDiwhvi<'_>> {
        Some(FusedDiwhvi::new(self))
    }

    fn fused_preconditioned<'a>(
        &'a self,
        wrapper: &'a Preconditioned<Self>,
    ) -> Option<FusedDiwhvi<'a>> {
        Some(FusedDiwhvi::preconditioned(wrapper))
    }

    fn workspace_lens(&self) -> WorkspaceLens {
        let (d, big_d) = (self.mixing_dim, self.latent_dim);
        let params = self.prepared_reverse.map_or(
            self.prepared_conditional.map_or(0, |_| 2 * big_d + 1),
            |at| at + 2 * d + 1,
        );
        let conditional = self.conditional.outputs + self.conditional.scratch_len();
        let reverse = self.reverse_net.as_ref().map_or(0, Network::scratch_len);
        WorkspaceLens {
            params,
            reverse: if self.reverse_net.is_some() { d } else { 0 },
            scratch: conditional.max(reverse),
            latent: 0,
        }
    }

    fn prepare<T: Scalar>(&self, params: &[T], workspace: &mut Workspace<T>) {
        if let (Some(at), Some(range)) = (self.prepared_conditional, &self.conditional_log_scale) {
            prepare_scales(
                &params[range.clone()],
                &mut workspace.params[at..at + 2 * self.latent_dim + 1],
            );
        }
        if let Some(at) = self.prepared_reverse {
            let d = self.mixing_dim;
            prepare_scales(
                &params[self.reverse_log_scale.clone()],
                &mut workspace.params[at..at + 2 * d + 1],
            );
        }
    }

    fn prepare_reverse<T: Scalar>(&self, params: &[T], u: &[T], workspace: &mut Workspace<T>) {
        if let Some(net) = &self.reverse_net {
            net.apply(
                params,
                u,
                &mut workspace.reverse,
                &mut workspace.scratch[..net.scratch_len()],
            );
        }
    }

    fn sample_conditional<T: Scalar>(
        &self,
        params: &[T],
        psi: &[T],
        noise: &[f64],
        u: &mut [T],
        workspace: &mut Workspace<T>,
    ) {
        let big_d = self.latent_dim;
        self.conditional_outputs(params, psi, &mut workspace.scratch);
        let mean = &workspace.scratch[..big_d];
        if let ConditionalFamily::StudentT { df } = self.family {
            let df = usize::from(df.get());
            for (i, (ui, &m)) in u.iter_mut().zip(mean).enumerate() {
                let scale = match self.prepared_conditional {
                    Some(at) => workspace.params[at + i],
                    None => workspace.scratch[big_d + i].exp(),
                };
                *ui = m + scale * student_t_draw(df, noise, big_d, i);
            }
            return;
        }
        match self.prepared_conditional {
            Some(at) => {
                let scale = &workspace.params[at..at + big_d];
                for (((ui, &m), &s), &e) in u.iter_mut().zip(mean).zip(scale).zip(noise) {
                    *ui = m + s * e;
                }
            }
            None => {
                let log_scale = &workspace.scratch[big_d..2 * big_d];
                for (((ui, &m), &s), &e) in u.iter_mut().zip(mean).zip(log_scale).zip(noise) {
                    *ui = m + s.exp() * e;
                }
            }
        }
    }

    fn log_conditional<T: Scalar>(
        &self,
        params: &[T],
        psi: &[T],
        u: &[T],
        workspace: &mut Workspace<T>,
    ) -> T {
        let big_d = self.latent_dim;
        self.conditional_outputs(params, psi, &mut workspace.scratch);
        if let ConditionalFamily::StudentT { df } = self.family {
            let df = f64::from(df.get());
            return match self.prepared_conditional {
                Some(at) => {
                    let prepared = &workspace.params[at..at + 2 * big_d + 1];
                    student_t_log_density(
                        df,
                        u,
                        &workspace.scratch[..big_d],
                        &prepared[big_d..2 * big_d],
                        prepared[2 * big_d],
                    )
                }
                None => {
                    let (mean, log_scale) = workspace.scratch[..2 * big_d].split_at(big_d);
                    let mut sum_log_scale = T::constant(0.0);
                    let mut total = T::constant(0.0);
                    for ((&x, &m), &s) in u.iter().zip(mean).zip(log_scale) {
                        sum_log_scale += s;
                        total +=
                            student_t_log_density(df, &[x], &[m], &[(-s).exp()], T::constant(0.0));
                    }
                    total - sum_log_scale
                }
            };
        }
        match self.prepared_conditional {
            Some(at) => {
                let prepared = &workspace.params[at..at + 2 * big_d + 1];
                prepared_normal_log_density(
                    u,
                    &workspace.scratch[..big_d],
                    &prepared[big_d..2 * big_d],
                    prepared[2 * big_d],
                )
            }
            None => {
                let (mean, log_scale) = workspace.scratch[..2 * big_d].split_at(big_d);
                super::diag_normal_log_density(u, mean, log_scale)
            }
        }
    }

    fn sample_reverse<T: Scalar>(
        &self,
        params: &[T],
        _u: &[T],
        noise: &[f64],
        psi: &mut [T],
        workspace: &mut Workspace<T>,
    ) {
        let Some(at) = self.prepared_reverse else {
            return self.sample_mixing(params, noise, psi);
        };
        let scale = &workspace.params[at..at + self.mixing_dim];
        for (((p, &m), &s), &e) in psi.iter_mut().zip(&workspace.reverse).zip(scale).zip(noise) {
            *p = m + s * e;
        }
    }

    fn log_reverse<T: Scalar>(
        &self,
        params: &[T],
        _u: &[T],
        psi: &[T],
        workspace: &mut Workspace<T>,
    ) -> T {
        let Some(at) = self.prepared_reverse else {
            return self.log_mixing(params, psi);
        };
        let d = self.mixing_dim;
        let prepared = &workspace.params[at..at + 2 * d + 1];
        prepared_normal_log_density(
            psi,
            &workspace.reverse,
            &prepared[d..2 * d],
            prepared[2 * d],
        )
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU8;

    use rand::SeedableRng;

    use super::*;
    use crate::dual::Dual;

    fn student(df: u8, psi_dependent: bool) -> SemiImplicit {
        SemiImplicit::new(2, 1)
            .with_psi_dependent_scale(psi_dependent)
            .with_conditional_family(ConditionalFamily::StudentT {
                df: NonZeroU8::new(df).expect("positive"),
            })
    }

    fn params(guide: &SemiImplicit, seed: u64) -> Vec<f64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut params = guide.init_params(&mut rng);
        for (k, p) in params.iter_mut().enumerate() {
            *p += 0.3 * ((k as f64) * 1.7).sin();
        }
        params
    }

    fn log_conditional(guide: &SemiImplicit, params: &[f64], psi: &[f64], u: &[f64]) -> f64 {
        let mut workspace = Workspace::new(guide);
        guide.prepare(params, &mut workspace);
        guide.log_conditional(params, psi, u, &mut workspace)
    }

    #[test]
    fn the_student_t_conditional_integrates_to_one() {
        // ∫∫ q(u | ψ) du over a wide grid (midpoint rule), for a heavy and
        // a light tail, constant and ψ-dependent scales.
        for (df, psi_dependent) in [(3, false), (10, true)] {
            let guide = student(df, psi_dependent);
            let params = params(&guide, 1);
            let (n, w) = (1200, 80.0);
            let h = 2.0 * w / n as f64;
            let mut total = 0.0;
            for a in 0..n {
                for b in 0..n {
                    let u = [-w + (a as f64 + 0.5) * h, -w + (b as f64 + 0.5) * h];
                    total += log_conditional(&guide, &params, &[0.4], &u).exp();
                }
            }
            total *= h * h;
            assert!((total - 1.0).abs() < 2e-3, "df {df}: {total}");
        }
    }

    #[test]
    fn student_t_draws_have_the_t_moments_and_tails() {
        let (df, draws) = (5u8, 100_000);
        let guide = student(df, false);
        let params = params(&guide, 2);
        let mut workspace = Workspace::new(&guide);
        guide.prepare(&params, &mut workspace);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let normal = rand_distr::StandardNormal;
        let mut noise = vec![0.0; guide.conditional_noise_dim()];
        let (mut sum, mut sum_sq, mut beyond) = ([0.0; 2], [0.0; 2], 0usize);
        let mut u = [0.0; 2];
        for _ in 0..draws {
            for e in &mut noise {
                *e = rand::distr::Distribution::sample(&normal, &mut rng);
            }
            guide.sample_conditional(&params, &[0.4], &noise, &mut u, &mut workspace);
            for i in 0..2 {
                sum[i] += u[i];
                sum_sq[i] += u[i] * u[i];
            }
            beyond += usize::from(
                (u[0] - mean_of(&guide, &params)[0]).abs() > 4.0 * scale_of(&guide, &params)[0],
            );
        }
        let (mean, scale) = (mean_of(&guide, &params), scale_of(&guide, &params));
        let nu = f64::from(df);
        for i in 0..2 {
            let m = sum[i] / draws as f64;
            let var = sum_sq[i] / draws as f64 - m * m;
            // Var t_ν = ν/(ν − 2); the sd of the sample mean is that / √n.
            let expected_var = scale[i] * scale[i] * nu / (nu - 2.0);
            assert!(
                (m - mean[i]).abs() < 5.0 * (expected_var / draws as f64).sqrt(),
                "mean {m} vs {}",
                mean[i]
            );
            assert!(
                (var / expected_var - 1.0).abs() < 0.05,
                "variance {var} vs {expected_var}"
            );
        }
        // P(|t₅| > 4) = 0.0103; a Gaussian's would be 6e-5.
        let tail = beyond as f64 / draws as f64;
        assert!((tail - 0.0103).abs() < 0.0015, "tail mass {tail}");
    }

    fn mean_of(guide: &SemiImplicit, params: &[f64]) -> Vec<f64> {
        let mut workspace = Workspace::new(guide);
        guide.prepare(params, &mut workspace);
        let mut u = [0.0; 2];
        guide.sample_conditional(
            params,
            &[0.4],
            &vec![0.0; guide.conditional_noise_dim()],
            &mut u,
            &mut workspace,
        );
        u.to_vec()
    }

    fn scale_of(guide: &SemiImplicit, params: &[f64]) -> Vec<f64> {
        let range = guide
            .param_layout()
            .get("conditional.log_scale")
            .unwrap()
            .range
            .clone();
        params[range].iter().map(|s| s.exp()).collect()
    }

    #[test]
    fn student_t_gradients_match_finite_differences() {
        for psi_dependent in [false, true] {
            let guide = student(4, psi_dependent);
            let params = params(&guide, 4);
            let (psi, u) = ([0.4], [0.3, -1.2]);
            let mut noise = vec![0.0; guide.conditional_noise_dim()];
            for (k, e) in noise.iter_mut().enumerate() {
                *e = ((k as f64) * 2.3).cos();
            }
            let n = params.len();
            assert!(n <= 16);
            let duals: Vec<Dual<16>> = params
                .iter()
                .enumerate()
                .map(|(i, &p)| Dual::variable(p, i))
                .collect();
            let psi_d = [Dual::constant(psi[0])];
            let u_d = [Dual::constant(u[0]), Dual::constant(u[1])];
            let mut workspace = Workspace::new(&guide);
            guide.prepare(&duals, &mut workspace);
            let density = guide.log_conditional(&duals, &psi_d, &u_d, &mut workspace);
            let mut draw = [Dual::constant(0.0); 2];
            guide.sample_conditional(&duals, &psi_d, &noise, &mut draw, &mut workspace);
            let sample = |p: &[f64]| {
                let mut workspace = Workspace::new(&guide);
                guide.prepare(p, &mut workspace);
                let mut out = [0.0; 2];
                guide.sample_conditional(p, &psi, &noise, &mut out, &mut workspace);
                out[0] + 2.0 * out[1]
            };
            let combined = draw[0] + draw[1] * 2.0;
            for j in 0..n {
                let h = 1e-6;
                let (mut up, mut down) = (params.clone(), params.clone());
                up[j] += h;
                down[j] -= h;
                let fd = (log_conditional(&guide, &up, &psi, &u)
                    - log_conditional(&guide, &down, &psi, &u))
                    / (2.0 * h);
                assert!(
                    (density.tangent()[j] - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                    "log q ∂{j}: {} vs {fd}",
                    density.tangent()[j]
                );
                let fd = (sample(&up) - sample(&down)) / (2.0 * h);
                assert!(
                    (combined.tangent()[j] - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                    "draw ∂{j}: {} vs {fd}",
                    combined.tangent()[j]
                );
            }
        }
    }

    #[test]
    fn a_student_t_guide_saves_its_family_and_takes_the_fused_path() {
        let guide = student(3, false);
        assert!(guide.fused().is_some());
        assert!(SemiImplicit::new(2, 1).fused().is_some());
        let json = serde_json::to_string(&guide).expect("serialises");
        let back: SemiImplicit = serde_json::from_str(&json).expect("loads");
        assert_eq!(back, guide);
        // A file saved before the family existed loads as Gaussian.
        let old = r#"{"latent_dim":2,"mixing_dim":1,"conditioning":"Linear","reverse":{"Learned":"Linear"},"psi_dependent_scale":false}"#;
        let old: SemiImplicit = serde_json::from_str(old).expect("loads");
        assert_eq!(old.conditional_family(), ConditionalFamily::Normal);
    }
}
