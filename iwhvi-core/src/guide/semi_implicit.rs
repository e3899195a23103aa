//! The semi-implicit auto guide.

use std::ops::Range;

use rand::Rng;

use super::network::{Conditioning, Network};
use super::{HierarchicalGuide, ParamLayout};
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
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SemiImplicit {
    latent_dim: usize,
    mixing_dim: usize,
    conditioning: Conditioning,
    reverse: Reverse,
    psi_dependent_scale: bool,
    layout: ParamLayout,
    conditional: Network,
    conditional_log_scale: Option<Range<usize>>,
    reverse_net: Option<Network>,
    reverse_log_scale: Range<usize>,
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
        Self {
            latent_dim,
            mixing_dim,
            conditioning,
            reverse,
            psi_dependent_scale,
            layout,
            conditional,
            conditional_log_scale,
            reverse_net,
            reverse_log_scale,
        }
    }

    /// The conditional's mean and log-scale at `ψ`: mean in
    /// `scratch[..D]`, log-scale in `scratch[D..2D]`.
    #[inline]
    fn conditional_moments<T: Scalar>(&self, params: &[T], psi: &[T], scratch: &mut [T]) {
        let d = self.latent_dim;
        let outputs = self.conditional.outputs;
        let (out, rest) = scratch.split_at_mut(2 * d);
        self.conditional.apply(
            params,
            psi,
            &mut out[..outputs],
            &mut rest[..self.conditional.scratch_len()],
        );
        if let Some(range) = &self.conditional_log_scale {
            out[d..].copy_from_slice(&params[range.clone()]);
        }
    }

    /// The reverse model's mean at `u` in `scratch[..d]`.
    #[inline]
    fn reverse_mean<T: Scalar>(&self, net: &Network, params: &[T], u: &[T], scratch: &mut [T]) {
        let (out, rest) = scratch.split_at_mut(self.mixing_dim);
        net.apply(params, u, out, &mut rest[..net.scratch_len()]);
    }
}

impl HierarchicalGuide for SemiImplicit {
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

    fn scratch_len(&self) -> usize {
        let conditional = 2 * self.latent_dim + self.conditional.scratch_len();
        let reverse = self
            .reverse_net
            .as_ref()
            .map_or(0, |n| self.mixing_dim + n.scratch_len());
        conditional.max(reverse)
    }

    fn sample_conditional<T: Scalar>(
        &self,
        params: &[T],
        psi: &[T],
        noise: &[f64],
        u: &mut [T],
        scratch: &mut [T],
    ) {
        self.conditional_moments(params, psi, scratch);
        let (mean, log_scale) = scratch[..2 * self.latent_dim].split_at(self.latent_dim);
        for (((ui, &m), &s), &e) in u.iter_mut().zip(mean).zip(log_scale).zip(noise) {
            *ui = m + s.exp() * e;
        }
    }

    fn log_conditional<T: Scalar>(&self, params: &[T], psi: &[T], u: &[T], scratch: &mut [T]) -> T {
        self.conditional_moments(params, psi, scratch);
        let (mean, log_scale) = scratch[..2 * self.latent_dim].split_at(self.latent_dim);
        super::diag_normal_log_density(u, mean, log_scale)
    }

    fn sample_reverse<T: Scalar>(
        &self,
        params: &[T],
        u: &[T],
        noise: &[f64],
        psi: &mut [T],
        scratch: &mut [T],
    ) {
        let Some(net) = &self.reverse_net else {
            return self.sample_mixing(params, noise, psi);
        };
        self.reverse_mean(net, params, u, scratch);
        let log_scale = &params[self.reverse_log_scale.clone()];
        for (((p, &m), &s), &e) in psi
            .iter_mut()
            .zip(&scratch[..self.mixing_dim])
            .zip(log_scale)
            .zip(noise)
        {
            *p = m + s.exp() * e;
        }
    }

    fn log_reverse<T: Scalar>(&self, params: &[T], u: &[T], psi: &[T], scratch: &mut [T]) -> T {
        let Some(net) = &self.reverse_net else {
            return self.log_mixing(params, psi);
        };
        self.reverse_mean(net, params, u, scratch);
        let log_scale = &params[self.reverse_log_scale.clone()];
        let mut total = T::constant(-LN_SQRT_2PI * self.mixing_dim as f64);
        for ((&p, &m), &s) in psi.iter().zip(&scratch[..self.mixing_dim]).zip(log_scale) {
            let z = (p - m) * (-s).exp();
            total -= z * z * 0.5 + s;
        }
        total
    }
}
