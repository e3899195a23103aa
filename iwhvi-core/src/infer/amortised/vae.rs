//! The variational autoencoder: a Bernoulli decoder, Gaussian or
//! hierarchical encoders, and the minibatch DIWHVI bound with its
//! hand-written adjoint.

// The kernels index several parallel arrays by the same coordinate.
#![allow(clippy::needless_range_loop)]

use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

use super::AmortisedError;
use super::mlp::{Activation, Mlp, MlpScratch};
use crate::input::DEFAULT_MEMORY_BUDGET;
use crate::plate::vmath::{self, Simd};
use crate::special::LN_SQRT_2PI;

/// Which encoder `q(z | x)` a [`Vae`] has.
///
/// - `Gaussian`: `q(z | x) = N(μ(x), diag σ(x)²)` from one network;
/// - `Hierarchical { mixing_dim }`: `ψ ~ q(ψ | x) = N(μ_ψ(x), diag σ_ψ(x)²)`,
///   `z ~ q(z | ψ, x) = N(μ(ψ, x), diag σ(ψ, x)²)`, and a reverse model
///   `τ(ψ | z, x) = N(ν(z, x), diag ρ(z, x)²)`: the DIWHVI family;
/// - `SemiImplicit { mixing_dim }`: the same two networks without a
///   reverse model: `τ(ψ | z, x) := q(ψ | x)`, which turns the bound into
///   SIVI's.
///
/// ```
/// use iwhvi_core::amortised::EncoderKind;
/// assert_ne!(EncoderKind::Gaussian, EncoderKind::Hierarchical { mixing_dim: 2 });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EncoderKind {
    /// A diagonal Gaussian conditioned on x.
    Gaussian,
    /// A hierarchical encoder with a learned reverse model (DIWHVI).
    Hierarchical {
        /// Dimension of ψ.
        mixing_dim: usize,
    },
    /// A hierarchical encoder whose reverse model is `q(ψ | x)` (SIVI).
    SemiImplicit {
        /// Dimension of ψ.
        mixing_dim: usize,
    },
}

/// The decoder's likelihood `p_θ(x | z)` given its logits `ℓ = MLP_θ(z)`.
///
/// - `Bernoulli`: `x_j ∈ [0, 1]` (binary pixels, or probabilities),
///   `log p = Σ_j x_j ℓ_j − softplus(ℓ_j)`;
/// - `Binomial { trials: n }`: counts `x_j ∈ {0, …, n}` of `n` trials with
///   success probability `sigmoid(ℓ_j)`,
///   `log p = Σ_j log C(n, x_j) + x_j ℓ_j − n softplus(ℓ_j)` (the 8×8
///   digits' counts 0..16 take `trials: 16`).
///
/// ```
/// use iwhvi_core::amortised::{Activation, Decoder, EncoderKind, Vae};
/// let vae = Vae::new(4, 2, EncoderKind::Gaussian, &[8], Activation::Tanh)
///     .unwrap()
///     .with_decoder(Decoder::Binomial { trials: 16 })
///     .unwrap();
/// assert_eq!(vae.decoder(), Decoder::Binomial { trials: 16 });
/// assert!(vae.check_data(&[0.0, 3.0, 16.0, 7.0]).is_ok());
/// assert!(vae.check_data(&[0.0, 3.5, 16.0, 7.0]).is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Decoder {
    /// Binary (or `[0, 1]`) pixels.
    #[default]
    Bernoulli,
    /// Counts out of `trials`.
    Binomial {
        /// The number of trials `n ≥ 1`.
        trials: u32,
    },
}

/// The networks of an encoder.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
enum Encoder {
    Gaussian {
        /// `x ↦ (μ, log σ)`.
        net: Mlp,
    },
    Hierarchical {
        mixing_dim: usize,
        /// `x ↦ (μ_ψ, log σ_ψ)`.
        mixing: Mlp,
        /// `(ψ; x) ↦ (μ, log σ)`.
        conditional: Mlp,
        /// `(z; x) ↦ (ν, log ρ)`; `None` for SIVI.
        reverse: Option<Mlp>,
    },
}

/// A variational autoencoder on `data_dim` binary pixels with `latent`
/// latent dimensions:
///
/// - prior `p(z) = N(0, I)`, decoder `p_θ(x | z) = Π_j Bernoulli(x_j;
///   sigmoid(ℓ_j(z)))` with logits `ℓ = MLP_θ(z)`, so
///   `log p_θ(x | z) = Σ_j x_j ℓ_j − softplus(ℓ_j)`;
/// - an encoder of [`EncoderKind`], every network an [`Mlp`] with the
///   same hidden widths and activation.
///
/// All parameters (encoder, reverse model, decoder) live in one flat
/// vector of [`Vae::len`] entries. The per-data-point bound with `M`
/// outer and `K` inner samples ([`VaeBound`]) is DIWHVI's:
///
/// ```text
/// ψ_m0 ~ q(ψ | x),  z_m ~ q(z | ψ_m0, x),  ψ_mk ~ τ(ψ | z_m, x) (k = 1..K)
/// w_mk  = log q(z_m | ψ_mk, x) + log q(ψ_mk | x) − log τ(ψ_mk | z_m, x)
/// U_K(z_m) = logsumexp_k w_mk − log(K + 1)           (E U_K ≥ log q(z_m | x))
/// bound(x) = logsumexp_m [log p_θ(x | z_m) + log p(z_m) − U_K(z_m)] − log M
/// ```
///
/// With a Gaussian encoder `U = log q(z | x)` exactly: `M = 1` is the
/// ELBO, `M > 1` IWAE.
///
/// ```
/// use iwhvi_core::amortised::{Activation, EncoderKind, Vae, VaeBound, Workspace};
/// use iwhvi_core::rand::{SeedableRng, rngs::StdRng};
///
/// let vae = Vae::new(4, 2, EncoderKind::Gaussian, &[8], Activation::Tanh).unwrap();
/// let mut rng = StdRng::seed_from_u64(1);
/// let params = vae.init_params(&mut rng);
/// let x = [1.0, 0.0, 1.0, 1.0];
/// let bound = VaeBound { outer: 5, inner: 0 };
/// let noise = vae.draw_noise(1, bound, &mut rng);
/// let mut grad = vec![0.0; vae.len()];
/// let mut ws = Workspace::default();
/// let value = vae.bound_and_gradient(&params, &x, bound, &noise, 1.0, Some(&mut grad), &mut ws).unwrap();
/// // A lower bound on log p(x) ≤ 0 for binary pixels.
/// assert!(value < 0.0 && value.is_finite());
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Vae {
    data_dim: usize,
    latent: usize,
    kind: EncoderKind,
    encoder: Encoder,
    decoder: Mlp,
    len: usize,
    /// The hidden widths and activation every network was built with.
    hidden: Vec<usize>,
    activation: Activation,
    likelihood: Decoder,
}

/// The numbers of samples of the bound: `M` outer samples of `z` per data
/// point, `K` inner samples of ψ per `z` (ignored by a Gaussian encoder).
///
/// ```
/// use iwhvi_core::amortised::VaeBound;
/// let elbo = VaeBound { outer: 1, inner: 0 };
/// assert_eq!(elbo.outer, 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VaeBound {
    /// `M ≥ 1`.
    pub outer: usize,
    /// `K ≥ 0`.
    pub inner: usize,
}

/// The standard normal noise of one minibatch: everything random in the
/// bound, so that the bound is a deterministic function of the parameters
/// given it. Drawn by [`Vae::draw_noise`], in the order data point, outer
/// sample, then `ε_ψ` (mixing), `ε_z` (conditional), `η_1..η_K` (inner).
///
/// ```
/// use iwhvi_core::amortised::{Activation, EncoderKind, Vae, VaeBound};
/// use iwhvi_core::rand::{SeedableRng, rngs::StdRng};
/// let vae = Vae::new(4, 2, EncoderKind::Hierarchical { mixing_dim: 3 }, &[8], Activation::Tanh).unwrap();
/// let noise = vae.draw_noise(10, VaeBound { outer: 2, inner: 4 }, &mut StdRng::seed_from_u64(0));
/// assert_eq!(noise.len(), 10 * 2 * (3 + 2 + 4 * 3));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct VaeNoise {
    batch: usize,
    bound: VaeBound,
    /// `B M × d_ψ`.
    psi: Vec<f64>,
    /// `B M × d_z`.
    z: Vec<f64>,
    /// `B M K × d_ψ`.
    inner: Vec<f64>,
}

impl VaeNoise {
    /// The number of standard normal draws held.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, EncoderKind, Vae, VaeBound};
    /// use iwhvi_core::rand::{SeedableRng, rngs::StdRng};
    /// let vae = Vae::new(4, 2, EncoderKind::Gaussian, &[8], Activation::Tanh).unwrap();
    /// let noise = vae.draw_noise(3, VaeBound { outer: 1, inner: 0 }, &mut StdRng::seed_from_u64(0));
    /// assert_eq!(noise.len(), 6);
    /// ```
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.psi.len() + self.z.len() + self.inner.len()
    }
}

/// The buffers of the bound's forward and backward, reused from step to
/// step (one per thread).
///
/// ```
/// let ws = iwhvi_core::amortised::Workspace::default();
/// assert!(ws.log_weights().is_empty());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    mixing: MlpScratch,
    cond0: MlpScratch,
    condk: MlpScratch,
    reverse: MlpScratch,
    decoder: MlpScratch,
    psi0: Vec<f64>,
    psik: Vec<f64>,
    z: Vec<f64>,
    w: Vec<f64>,
    log_w: Vec<f64>,
    point: Vec<f64>,
    a_bar: Vec<f64>,
    dec_bar: Vec<f64>,
    sigmoid: Vec<f64>,
    z_bar: Vec<f64>,
    enc_bar: Vec<f64>,
    cond0_bar: Vec<f64>,
    condk_bar: Vec<f64>,
    psi0_bar: Vec<f64>,
    psik_bar: Vec<f64>,
    rev_bar: Vec<f64>,
}

impl Workspace {
    /// `log ŵ_{nm}` of the last bound, `B × M` row-major: the outer
    /// log weights `log p_θ(x_n | z_m) + log p(z_m) − U_K(z_m)`.
    ///
    /// ```
    /// assert!(iwhvi_core::amortised::Workspace::default().log_weights().is_empty());
    /// ```
    pub fn log_weights(&self) -> &[f64] {
        &self.log_w
    }

    /// The per-data-point bounds of the last call (`B` values).
    ///
    /// ```
    /// assert!(iwhvi_core::amortised::Workspace::default().point_bounds().is_empty());
    /// ```
    pub fn point_bounds(&self) -> &[f64] {
        &self.point
    }
}

/// `softplus(ℓ)` and `sigmoid(ℓ)` of every logit, from one `exp(−|ℓ|)`.
struct SoftplusSigmoid<'a> {
    logits: &'a [f64],
    softplus: &'a mut [f64],
    sigmoid: &'a mut [f64],
}

impl Simd for SoftplusSigmoid<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        for ((&l, sp), sg) in self
            .logits
            .iter()
            .zip(self.softplus.iter_mut())
            .zip(self.sigmoid.iter_mut())
        {
            let e = vmath::exp(-l.abs());
            *sp = (if l > 0.0 { l } else { 0.0 }) + vmath::ln_1p(e);
            let inv = 1.0 / (1.0 + e);
            *sg = if l >= 0.0 { inv } else { e * inv };
        }
    }
}

fn resize(v: &mut Vec<f64>, n: usize) {
    v.clear();
    v.resize(n, 0.0);
}

/// `logsumexp` of `terms`, writing `softmax(terms)` to `weights`.
fn log_sum_exp_softmax(terms: &[f64], weights: &mut [f64]) -> f64 {
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        let n = terms.len() as f64;
        weights.fill(1.0 / n);
        return max;
    }
    let mut sum = 0.0;
    for (w, &t) in weights.iter_mut().zip(terms) {
        *w = (t - max).exp();
        sum += *w;
    }
    for w in weights.iter_mut() {
        *w /= sum;
    }
    max + sum.ln()
}

/// `log N(v; μ, e^{2s})` summed over the coordinates.
#[inline]
fn log_normal(v: &[f64], mean: &[f64], log_sd: &[f64]) -> f64 {
    let mut sum = 0.0;
    for ((&v, &m), &s) in v.iter().zip(mean).zip(log_sd) {
        let t = (v - m) * (-s).exp();
        sum += -0.5 * t * t - s - LN_SQRT_2PI;
    }
    sum
}

/// Adds `w̄ · ∂ log N(v; μ, e^{2s}) / ∂(v, μ, s)` to the three adjoints
/// (any of which may be skipped with an empty slice).
#[inline]
fn log_normal_adjoint(
    w_bar: f64,
    v: &[f64],
    mean: &[f64],
    log_sd: &[f64],
    v_bar: &mut [f64],
    mean_bar: &mut [f64],
    log_sd_bar: &mut [f64],
) {
    for i in 0..v.len() {
        let inv = (-log_sd[i]).exp();
        let t = (v[i] - mean[i]) * inv;
        if !v_bar.is_empty() {
            v_bar[i] -= w_bar * t * inv;
        }
        if !mean_bar.is_empty() {
            mean_bar[i] += w_bar * t * inv;
        }
        if !log_sd_bar.is_empty() {
            log_sd_bar[i] += w_bar * (t * t - 1.0);
        }
    }
}

impl Vae {
    /// A VAE on `data_dim` pixels with a `latent`-dimensional `z`, the
    /// given encoder, and every network (encoder's, reverse model's,
    /// decoder's) an MLP with hidden layers of `hidden` widths and the
    /// given activation. Parameter order: encoder networks (mixing,
    /// conditional, reverse; or the Gaussian one), then the decoder.
    ///
    /// # Errors
    /// [`AmortisedError::InvalidSetting`] for a zero dimension or width.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, EncoderKind, Vae};
    /// let vae = Vae::new(64, 2, EncoderKind::Gaussian, &[64], Activation::Tanh).unwrap();
    /// // encoder 64→64→4, decoder 2→64→64
    /// assert_eq!(vae.len(), (65 * 64 + 65 * 4) + (3 * 64 + 65 * 64));
    /// assert!(Vae::new(64, 0, EncoderKind::Gaussian, &[64], Activation::Tanh).is_err());
    /// ```
    pub fn new(
        data_dim: usize,
        latent: usize,
        kind: EncoderKind,
        hidden: &[usize],
        activation: Activation,
    ) -> Result<Self, AmortisedError> {
        let positive = |setting: &'static str, v: usize| {
            if v == 0 {
                Err(AmortisedError::InvalidSetting {
                    setting,
                    value: "0".into(),
                    requirement: "dimensions and widths are at least 1",
                })
            } else {
                Ok(())
            }
        };
        positive("data_dim", data_dim)?;
        positive("latent", latent)?;
        for &h in hidden {
            positive("hidden", h)?;
        }
        let mut at = 0;
        let mut net = |inputs, context, outputs| {
            let n = Mlp::new(inputs, context, hidden, outputs, activation, at);
            at += n.len();
            n
        };
        let encoder = match kind {
            EncoderKind::Gaussian => Encoder::Gaussian {
                net: net(data_dim, 0, 2 * latent),
            },
            EncoderKind::Hierarchical { mixing_dim } | EncoderKind::SemiImplicit { mixing_dim } => {
                positive("mixing_dim", mixing_dim)?;
                let mixing = net(data_dim, 0, 2 * mixing_dim);
                let conditional = net(mixing_dim, data_dim, 2 * latent);
                let reverse = match kind {
                    EncoderKind::Hierarchical { .. } => Some(net(latent, data_dim, 2 * mixing_dim)),
                    _ => None,
                };
                Encoder::Hierarchical {
                    mixing_dim,
                    mixing,
                    conditional,
                    reverse,
                }
            }
        };
        let decoder = net(latent, 0, data_dim);
        Ok(Self {
            data_dim,
            latent,
            kind,
            encoder,
            decoder,
            len: at,
            hidden: hidden.to_vec(),
            activation,
            likelihood: Decoder::Bernoulli,
        })
    }

    /// This VAE with the decoder likelihood `decoder` (Bernoulli by
    /// default); the networks and the parameters' layout are unchanged.
    ///
    /// # Errors
    /// [`AmortisedError::InvalidSetting`] for `Binomial { trials: 0 }`.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, Decoder, EncoderKind, Vae};
    /// let vae = Vae::new(4, 2, EncoderKind::Gaussian, &[8], Activation::Tanh).unwrap();
    /// assert!(vae.clone().with_decoder(Decoder::Binomial { trials: 0 }).is_err());
    /// assert_eq!(vae.clone().with_decoder(Decoder::Binomial { trials: 4 }).unwrap().len(), vae.len());
    /// ```
    pub fn with_decoder(mut self, decoder: Decoder) -> Result<Self, AmortisedError> {
        if decoder == (Decoder::Binomial { trials: 0 }) {
            return Err(AmortisedError::InvalidSetting {
                setting: "trials",
                value: "0".into(),
                requirement: "a binomial decoder has at least one trial",
            });
        }
        self.likelihood = decoder;
        Ok(self)
    }

    /// The decoder's likelihood.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, Decoder, EncoderKind, Vae};
    /// let vae = Vae::new(4, 2, EncoderKind::Gaussian, &[8], Activation::Tanh).unwrap();
    /// assert_eq!(vae.decoder(), Decoder::Bernoulli);
    /// ```
    pub fn decoder(&self) -> Decoder {
        self.likelihood
    }

    /// The hidden widths every network was built with.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, EncoderKind, Vae};
    /// let vae = Vae::new(4, 2, EncoderKind::Gaussian, &[8, 6], Activation::Relu).unwrap();
    /// assert_eq!((vae.hidden(), vae.activation()), (&[8, 6][..], Activation::Relu));
    /// ```
    pub fn hidden(&self) -> &[usize] {
        &self.hidden
    }

    /// The activation every network was built with.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, EncoderKind, Vae};
    /// let vae = Vae::new(4, 2, EncoderKind::Gaussian, &[8], Activation::Tanh).unwrap();
    /// assert_eq!(vae.activation(), Activation::Tanh);
    /// ```
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The number of trials per pixel: 1 for a Bernoulli decoder.
    fn trials(&self) -> f64 {
        match self.likelihood {
            Decoder::Bernoulli => 1.0,
            Decoder::Binomial { trials } => f64::from(trials),
        }
    }

    /// The number of parameters.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, EncoderKind, Vae};
    /// let vae = Vae::new(3, 1, EncoderKind::Gaussian, &[], Activation::Tanh).unwrap();
    /// assert_eq!(vae.len(), 4 * 2 + 2 * 3);
    /// ```
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Pixels per data point.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, EncoderKind, Vae};
    /// assert_eq!(Vae::new(3, 1, EncoderKind::Gaussian, &[], Activation::Tanh).unwrap().data_dim(), 3);
    /// ```
    pub fn data_dim(&self) -> usize {
        self.data_dim
    }

    /// Latent dimensions.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, EncoderKind, Vae};
    /// assert_eq!(Vae::new(3, 1, EncoderKind::Gaussian, &[], Activation::Tanh).unwrap().latent(), 1);
    /// ```
    pub fn latent(&self) -> usize {
        self.latent
    }

    /// The encoder's kind.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, EncoderKind, Vae};
    /// let vae = Vae::new(3, 1, EncoderKind::Gaussian, &[], Activation::Tanh).unwrap();
    /// assert_eq!(vae.kind(), EncoderKind::Gaussian);
    /// ```
    pub fn kind(&self) -> EncoderKind {
        self.kind
    }

    fn mixing_dim(&self) -> usize {
        match self.encoder {
            Encoder::Gaussian { .. } => 0,
            Encoder::Hierarchical { mixing_dim, .. } => mixing_dim,
        }
    }

    /// Initial parameters: weights `N(0, 1/fan_in)` (the output layers'
    /// scaled by 0.1, so that the encoders start near `N(0, I)`), biases 0.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, EncoderKind, Vae};
    /// use iwhvi_core::rand::{SeedableRng, rngs::StdRng};
    /// let vae = Vae::new(3, 1, EncoderKind::Gaussian, &[4], Activation::Tanh).unwrap();
    /// assert_eq!(vae.init_params(&mut StdRng::seed_from_u64(0)).len(), vae.len());
    /// ```
    pub fn init_params<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<f64> {
        let mut params = vec![0.0; self.len];
        match &self.encoder {
            Encoder::Gaussian { net } => net.init(&mut params, rng, 0.1),
            Encoder::Hierarchical {
                mixing,
                conditional,
                reverse,
                ..
            } => {
                mixing.init(&mut params, rng, 0.1);
                conditional.init(&mut params, rng, 0.1);
                if let Some(r) = reverse {
                    r.init(&mut params, rng, 0.1);
                }
            }
        }
        self.decoder.init(&mut params, rng, 1.0);
        params
    }

    /// Sets the decoder's output bias to the logits of the pixels' means
    /// over `data` (`n × data_dim`, divided by the trials of a binomial
    /// decoder, clamped to `[10⁻³, 1 − 10⁻³]`), a usual start for the
    /// decoder.
    ///
    /// # Errors
    /// As [`Vae::check_data`].
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, EncoderKind, Vae};
    /// let vae = Vae::new(2, 1, EncoderKind::Gaussian, &[], Activation::Tanh).unwrap();
    /// let mut params = vec![0.0; vae.len()];
    /// vae.init_decoder_bias(&mut params, &[1.0, 0.0, 1.0, 1.0]).unwrap();
    /// // Column means 1 (clamped to 0.999) and ½.
    /// assert!((params[vae.len() - 2] - 999f64.ln()).abs() < 1e-9);
    /// assert_eq!(params[vae.len() - 1], 0.0);
    /// ```
    pub fn init_decoder_bias(
        &self,
        params: &mut [f64],
        data: &[f64],
    ) -> Result<(), AmortisedError> {
        self.check_params(params)?;
        let n = self.check_data(data)?;
        let range = self.decoder.output_bias();
        for j in 0..self.data_dim {
            let mean = (0..n).map(|i| data[i * self.data_dim + j]).sum::<f64>() / n.max(1) as f64;
            let p = (mean / self.trials()).clamp(1e-3, 1.0 - 1e-3);
            params[range.start + j] = (p / (1.0 - p)).ln();
        }
        Ok(())
    }

    /// Checks a parameter vector's length and values.
    ///
    /// # Errors
    /// [`AmortisedError::ParamsLength`] or [`AmortisedError::NonFinite`].
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, EncoderKind, Vae};
    /// let vae = Vae::new(2, 1, EncoderKind::Gaussian, &[], Activation::Tanh).unwrap();
    /// assert!(vae.check_params(&[0.0; 3]).is_err());
    /// ```
    pub fn check_params(&self, params: &[f64]) -> Result<(), AmortisedError> {
        if params.len() != self.len {
            return Err(AmortisedError::ParamsLength {
                expected: self.len,
                found: params.len(),
            });
        }
        if let Some(i) = params.iter().position(|p| !p.is_finite()) {
            return Err(AmortisedError::NonFinite {
                what: "parameter",
                index: i,
            });
        }
        Ok(())
    }

    /// Checks data: a whole number of rows of `data_dim` pixels, each in
    /// `[0, 1]` (a Bernoulli decoder) or a whole number in `0..=trials` (a
    /// binomial one). Returns the number of rows.
    ///
    /// # Errors
    /// [`AmortisedError::DataLength`], [`AmortisedError::Pixel`] or
    /// [`AmortisedError::Count`].
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, EncoderKind, Vae};
    /// let vae = Vae::new(2, 1, EncoderKind::Gaussian, &[], Activation::Tanh).unwrap();
    /// assert_eq!(vae.check_data(&[0.0, 1.0, 1.0, 1.0]).unwrap(), 2);
    /// assert!(vae.check_data(&[0.0, 2.0]).is_err());
    /// ```
    pub fn check_data(&self, data: &[f64]) -> Result<usize, AmortisedError> {
        if !data.len().is_multiple_of(self.data_dim) {
            return Err(AmortisedError::DataLength {
                len: data.len(),
                data_dim: self.data_dim,
            });
        }
        match self.likelihood {
            Decoder::Bernoulli => {
                if let Some(i) = data.iter().position(|&p| !(0.0..=1.0).contains(&p)) {
                    return Err(AmortisedError::Pixel {
                        index: i,
                        value: data[i],
                    });
                }
            }
            Decoder::Binomial { trials } => {
                let n = f64::from(trials);
                if let Some(i) = data
                    .iter()
                    .position(|&c| !((0.0..=n).contains(&c) && c.fract() == 0.0))
                {
                    return Err(AmortisedError::Count {
                        index: i,
                        value: data[i],
                        trials,
                    });
                }
            }
        }
        Ok(data.len() / self.data_dim)
    }

    /// Draws the noise of a minibatch of `batch` data points.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, EncoderKind, Vae, VaeBound};
    /// use iwhvi_core::rand::{SeedableRng, rngs::StdRng};
    /// let vae = Vae::new(4, 2, EncoderKind::Gaussian, &[8], Activation::Tanh).unwrap();
    /// let a = vae.draw_noise(2, VaeBound { outer: 3, inner: 0 }, &mut StdRng::seed_from_u64(7));
    /// let b = vae.draw_noise(2, VaeBound { outer: 3, inner: 0 }, &mut StdRng::seed_from_u64(7));
    /// assert_eq!(a, b);
    /// ```
    pub fn draw_noise<R: Rng + ?Sized>(
        &self,
        batch: usize,
        bound: VaeBound,
        rng: &mut R,
    ) -> VaeNoise {
        let (dz, dp) = (self.latent, self.mixing_dim());
        let k = if dp == 0 { 0 } else { bound.inner };
        let rows = batch * bound.outer;
        let mut noise = VaeNoise {
            batch,
            bound,
            psi: Vec::with_capacity(rows * dp),
            z: Vec::with_capacity(rows * dz),
            inner: Vec::with_capacity(rows * k * dp),
        };
        for _ in 0..rows {
            for _ in 0..dp {
                noise.psi.push(rng.sample(StandardNormal));
            }
            for _ in 0..dz {
                noise.z.push(rng.sample(StandardNormal));
            }
            for _ in 0..k * dp {
                noise.inner.push(rng.sample(StandardNormal));
            }
        }
        noise
    }

    /// The minibatch bound `Σ_n bound(x_n)` over the rows of `x` (`B ×
    /// data_dim`) for the given noise, and, when `grad` is given, adds
    /// `scale · ∇ Σ_n bound(x_n)` to it (reparameterised: the noise is
    /// fixed). Training uses `scale = N / B`, so that the step's gradient
    /// is an unbiased estimate of the full data's. The per-point bounds
    /// and outer log weights stay in `ws`.
    ///
    /// The adjoint (with `ā_{nm} = scale · softmax_m(log ŵ_{n·})` and
    /// `w̄_{mk} = −ā_{nm} softmax_k(w_{m·})`): the decoder's logits get
    /// `ā (x − sigmoid ℓ)`, `z` gets the prior's `−ā z`, each Gaussian
    /// term `log N(v; μ, e^{2s})` with `t = (v − μ) e^{−s}` gives
    /// `v̄ −= w̄ t e^{−s}`, `μ̄ += w̄ t e^{−s}`, `s̄ += w̄ (t² − 1)`, each
    /// reparameterised draw `v = μ + e^s ε` passes `v̄` to `μ̄` and
    /// `v̄ e^s ε` to `s̄`, and the networks' backward passes take it from
    /// there (in the order inner conditional, reverse model, outer
    /// conditional, mixing network).
    ///
    /// # Errors
    /// [`AmortisedError`] for bad parameters, data, settings or a noise
    /// drawn for another batch.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, EncoderKind, Vae, VaeBound, Workspace};
    /// use iwhvi_core::rand::{SeedableRng, rngs::StdRng};
    /// let vae = Vae::new(4, 2, EncoderKind::Hierarchical { mixing_dim: 2 }, &[8], Activation::Tanh).unwrap();
    /// let mut rng = StdRng::seed_from_u64(3);
    /// let params = vae.init_params(&mut rng);
    /// let x = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    /// let bound = VaeBound { outer: 2, inner: 8 };
    /// let noise = vae.draw_noise(2, bound, &mut rng);
    /// let mut ws = Workspace::default();
    /// let total = vae.bound_and_gradient(&params, &x, bound, &noise, 1.0, None, &mut ws).unwrap();
    /// assert!((total - ws.point_bounds().iter().sum::<f64>()).abs() < 1e-12);
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn bound_and_gradient(
        &self,
        params: &[f64],
        x: &[f64],
        bound: VaeBound,
        noise: &VaeNoise,
        scale: f64,
        grad: Option<&mut [f64]>,
        ws: &mut Workspace,
    ) -> Result<f64, AmortisedError> {
        self.check_params(params)?;
        let b = self.check_data(x)?;
        check_bound(bound)?;
        let k = if self.mixing_dim() == 0 {
            0
        } else {
            bound.inner
        };
        let expected = VaeBound {
            outer: bound.outer,
            inner: k,
        };
        if noise.batch != b
            || noise.bound.outer != bound.outer
            || (self.mixing_dim() > 0 && noise.bound.inner != bound.inner)
        {
            return Err(AmortisedError::NoiseShape);
        }
        if let Some(g) = &grad {
            if g.len() != self.len {
                return Err(AmortisedError::ParamsLength {
                    expected: self.len,
                    found: g.len(),
                });
            }
        }
        Ok(self.run(params, x, b, expected, noise, scale, grad, ws))
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        params: &[f64],
        x: &[f64],
        b: usize,
        bound: VaeBound,
        noise: &VaeNoise,
        scale: f64,
        grad: Option<&mut [f64]>,
        ws: &mut Workspace,
    ) -> f64 {
        let m = bound.outer;
        let rows = b * m;
        let (dz, dd) = (self.latent, self.data_dim);
        resize(&mut ws.z, rows * dz);
        resize(&mut ws.log_w, rows);
        resize(&mut ws.point, b);
        // --- Encoder forward: z and −U per outer row (into log_w).
        match &self.encoder {
            Encoder::Gaussian { net } => {
                net.forward(params, x, &[], b, b, &mut ws.mixing);
                let out = &ws.mixing.out;
                for r in 0..rows {
                    let n = r / m;
                    let (mu, ls) = out[n * 2 * dz..(n + 1) * 2 * dz].split_at(dz);
                    let eps = &noise.z[r * dz..(r + 1) * dz];
                    let mut lq = 0.0;
                    for i in 0..dz {
                        ws.z[r * dz + i] = mu[i] + ls[i].exp() * eps[i];
                        lq += -0.5 * eps[i] * eps[i] - ls[i] - LN_SQRT_2PI;
                    }
                    ws.log_w[r] = -lq;
                }
            }
            Encoder::Hierarchical {
                mixing_dim,
                mixing,
                conditional,
                reverse,
            } => self.hierarchical_forward(
                params,
                x,
                b,
                bound,
                noise,
                *mixing_dim,
                mixing,
                conditional,
                reverse.as_ref(),
                ws,
            ),
        }
        // --- Decoder and prior.
        self.decoder
            .forward(params, &ws.z, &[], rows, rows, &mut ws.decoder);
        // softplus(ℓ) into `dec_bar` and sigmoid(ℓ) into `sigmoid`, in one
        // vectorised pass; then the sums per row.
        resize(&mut ws.dec_bar, rows * dd);
        resize(&mut ws.sigmoid, rows * dd);
        vmath::dispatch(SoftplusSigmoid {
            logits: &ws.decoder.out[..rows * dd],
            softplus: &mut ws.dec_bar,
            sigmoid: &mut ws.sigmoid,
        });
        let trials = self.trials();
        // Σ_j log C(n, x_j) per data point (binomial only).
        let log_choose: Vec<f64> = match self.likelihood {
            Decoder::Bernoulli => Vec::new(),
            Decoder::Binomial { trials } => (0..b)
                .map(|n| {
                    x[n * dd..(n + 1) * dd]
                        .iter()
                        .map(|&c| log_choose(u64::from(trials), c as u64))
                        .sum()
                })
                .collect(),
        };
        for r in 0..rows {
            let logits = &ws.decoder.out[r * dd..(r + 1) * dd];
            let softplus = &ws.dec_bar[r * dd..(r + 1) * dd];
            let xs = &x[(r / m) * dd..(r / m + 1) * dd];
            let mut lp = 0.0;
            if log_choose.is_empty() {
                for ((&l, &xj), &sp) in logits.iter().zip(xs).zip(softplus) {
                    lp += xj * l - sp;
                }
            } else {
                for ((&l, &xj), &sp) in logits.iter().zip(xs).zip(softplus) {
                    lp += xj * l - trials * sp;
                }
                lp += log_choose[r / m];
            }
            for &zi in &ws.z[r * dz..(r + 1) * dz] {
                lp += -0.5 * zi * zi - LN_SQRT_2PI;
            }
            ws.log_w[r] += lp;
        }
        // --- Outer logsumexp per data point.
        resize(&mut ws.a_bar, rows);
        let ln_m = (m as f64).ln();
        let mut total = 0.0;
        for n in 0..b {
            let lse = log_sum_exp_softmax(
                &ws.log_w[n * m..(n + 1) * m],
                &mut ws.a_bar[n * m..(n + 1) * m],
            );
            ws.point[n] = lse - ln_m;
            total += ws.point[n];
        }
        let Some(grad) = grad else {
            return total;
        };
        for a in &mut ws.a_bar {
            *a *= scale;
        }
        // --- Backward: decoder and prior into z̄.
        for r in 0..rows {
            let a = ws.a_bar[r];
            let sigmoid = &ws.sigmoid[r * dd..(r + 1) * dd];
            let xs = &x[(r / m) * dd..(r / m + 1) * dd];
            for j in 0..dd {
                ws.dec_bar[r * dd + j] = a * (xs[j] - trials * sigmoid[j]);
            }
        }
        resize(&mut ws.z_bar, rows * dz);
        for r in 0..rows {
            for i in 0..dz {
                ws.z_bar[r * dz + i] = -ws.a_bar[r] * ws.z[r * dz + i];
            }
        }
        self.decoder.backward(
            params,
            &ws.z,
            &[],
            rows,
            rows,
            &mut ws.decoder,
            &mut ws.dec_bar,
            grad,
            Some(&mut ws.z_bar),
        );
        match &self.encoder {
            Encoder::Gaussian { net } => {
                resize(&mut ws.enc_bar, b * 2 * dz);
                let out = &ws.mixing.out;
                for r in 0..rows {
                    let n = r / m;
                    let ls = &out[n * 2 * dz + dz..(n + 1) * 2 * dz];
                    let eps = &noise.z[r * dz..(r + 1) * dz];
                    let bar = &mut ws.enc_bar[n * 2 * dz..(n + 1) * 2 * dz];
                    for i in 0..dz {
                        let zb = ws.z_bar[r * dz + i];
                        bar[i] += zb;
                        // −log q = Σ ½ε² + s + c: ∂/∂s = 1.
                        bar[dz + i] += zb * ls[i].exp() * eps[i] + ws.a_bar[r];
                    }
                }
                net.backward(
                    params,
                    x,
                    &[],
                    b,
                    b,
                    &mut ws.mixing,
                    &mut ws.enc_bar,
                    grad,
                    None,
                );
            }
            Encoder::Hierarchical {
                mixing_dim,
                mixing,
                conditional,
                reverse,
            } => self.hierarchical_backward(
                params,
                x,
                b,
                bound,
                noise,
                *mixing_dim,
                mixing,
                conditional,
                reverse.as_ref(),
                grad,
                ws,
            ),
        }
        total
    }

    /// Forward of the hierarchical encoder: `z` per outer row and `−U_K`
    /// into `ws.log_w`; keeps `w` (then its softmax) in `ws.w`.
    #[allow(clippy::too_many_arguments)]
    fn hierarchical_forward(
        &self,
        params: &[f64],
        x: &[f64],
        b: usize,
        bound: VaeBound,
        noise: &VaeNoise,
        dp: usize,
        mixing: &Mlp,
        conditional: &Mlp,
        reverse: Option<&Mlp>,
        ws: &mut Workspace,
    ) {
        let (m, k) = (bound.outer, bound.inner);
        let rows = b * m;
        let dz = self.latent;
        // ψ₀ = μ_ψ(x) + σ_ψ(x) ε_ψ.
        mixing.forward(params, x, &[], b, b, &mut ws.mixing);
        resize(&mut ws.psi0, rows * dp);
        for r in 0..rows {
            let n = r / m;
            let (mu, ls) = ws.mixing.out[n * 2 * dp..(n + 1) * 2 * dp].split_at(dp);
            for i in 0..dp {
                ws.psi0[r * dp + i] = mu[i] + ls[i].exp() * noise.psi[r * dp + i];
            }
        }
        // z = μ(ψ₀, x) + σ(ψ₀, x) ε_z.
        conditional.forward(params, &ws.psi0, x, rows, b, &mut ws.cond0);
        for r in 0..rows {
            let (mu, ls) = ws.cond0.out[r * 2 * dz..(r + 1) * 2 * dz].split_at(dz);
            for i in 0..dz {
                ws.z[r * dz + i] = mu[i] + ls[i].exp() * noise.z[r * dz + i];
            }
        }
        // ψ_k = ν(z, x) + ρ(z, x) η_k (SIVI: μ_ψ(x) + σ_ψ(x) η_k).
        resize(&mut ws.psik, rows * k * dp);
        if let Some(rev) = reverse {
            rev.forward(params, &ws.z, x, rows, b, &mut ws.reverse);
        }
        for r in 0..rows {
            let n = r / m;
            let (mu, ls) = match reverse {
                Some(_) => ws.reverse.out[r * 2 * dp..(r + 1) * 2 * dp].split_at(dp),
                None => ws.mixing.out[n * 2 * dp..(n + 1) * 2 * dp].split_at(dp),
            };
            for j in 0..k {
                let at = (r * k + j) * dp;
                for i in 0..dp {
                    ws.psik[at + i] = mu[i] + ls[i].exp() * noise.inner[at + i];
                }
            }
        }
        if k > 0 {
            conditional.forward(params, &ws.psik, x, rows * k, b, &mut ws.condk);
        }
        // w_k and U_K.
        let k1 = k + 1;
        resize(&mut ws.w, rows * k1);
        let mut weights = vec![0.0; k1];
        let ln_k1 = (k1 as f64).ln();
        for r in 0..rows {
            let n = r / m;
            let z = &ws.z[r * dz..(r + 1) * dz];
            let (mq, lq) = ws.mixing.out[n * 2 * dp..(n + 1) * 2 * dp].split_at(dp);
            for j in 0..k1 {
                let (psi, cond) = if j == 0 {
                    (
                        &ws.psi0[r * dp..(r + 1) * dp],
                        &ws.cond0.out[r * 2 * dz..(r + 1) * 2 * dz],
                    )
                } else {
                    let row = r * k + j - 1;
                    (
                        &ws.psik[row * dp..(row + 1) * dp],
                        &ws.condk.out[row * 2 * dz..(row + 1) * 2 * dz],
                    )
                };
                let (cm, cl) = cond.split_at(dz);
                let mut w = log_normal(z, cm, cl);
                if reverse.is_some() {
                    let (rm, rl) = ws.reverse.out[r * 2 * dp..(r + 1) * 2 * dp].split_at(dp);
                    w += log_normal(psi, mq, lq) - log_normal(psi, rm, rl);
                }
                ws.w[r * k1 + j] = w;
            }
            let u = log_sum_exp_softmax(&ws.w[r * k1..(r + 1) * k1], &mut weights) - ln_k1;
            ws.w[r * k1..(r + 1) * k1].copy_from_slice(&weights);
            ws.log_w[r] = -u;
        }
    }

    /// Backward of the hierarchical encoder, given `ws.z_bar` (from the
    /// decoder and prior) and `ws.a_bar`.
    #[allow(clippy::too_many_arguments)]
    fn hierarchical_backward(
        &self,
        params: &[f64],
        x: &[f64],
        b: usize,
        bound: VaeBound,
        noise: &VaeNoise,
        dp: usize,
        mixing: &Mlp,
        conditional: &Mlp,
        reverse: Option<&Mlp>,
        grad: &mut [f64],
        ws: &mut Workspace,
    ) {
        let (m, k) = (bound.outer, bound.inner);
        let rows = b * m;
        let dz = self.latent;
        let k1 = k + 1;
        resize(&mut ws.enc_bar, b * 2 * dp);
        resize(&mut ws.cond0_bar, rows * 2 * dz);
        resize(&mut ws.condk_bar, rows * k * 2 * dz);
        resize(&mut ws.psi0_bar, rows * dp);
        resize(&mut ws.psik_bar, rows * k * dp);
        resize(&mut ws.rev_bar, rows * 2 * dp);
        // Direct terms of w_k.
        for r in 0..rows {
            let n = r / m;
            let z = &ws.z[r * dz..(r + 1) * dz];
            let z_bar = &mut ws.z_bar[r * dz..(r + 1) * dz];
            let (mq, lq) = ws.mixing.out[n * 2 * dp..(n + 1) * 2 * dp].split_at(dp);
            let (mq_bar, lq_bar) = ws.enc_bar[n * 2 * dp..(n + 1) * 2 * dp].split_at_mut(dp);
            for j in 0..k1 {
                let w_bar = -ws.a_bar[r] * ws.w[r * k1 + j];
                let (psi, cond, psi_bar, cond_bar) = if j == 0 {
                    (
                        &ws.psi0[r * dp..(r + 1) * dp],
                        &ws.cond0.out[r * 2 * dz..(r + 1) * 2 * dz],
                        &mut ws.psi0_bar[r * dp..(r + 1) * dp],
                        &mut ws.cond0_bar[r * 2 * dz..(r + 1) * 2 * dz],
                    )
                } else {
                    let row = r * k + j - 1;
                    (
                        &ws.psik[row * dp..(row + 1) * dp],
                        &ws.condk.out[row * 2 * dz..(row + 1) * 2 * dz],
                        &mut ws.psik_bar[row * dp..(row + 1) * dp],
                        &mut ws.condk_bar[row * 2 * dz..(row + 1) * 2 * dz],
                    )
                };
                let (cm, cl) = cond.split_at(dz);
                let (cm_bar, cl_bar) = cond_bar.split_at_mut(dz);
                log_normal_adjoint(w_bar, z, cm, cl, z_bar, cm_bar, cl_bar);
                if reverse.is_some() {
                    let (rm, rl) = ws.reverse.out[r * 2 * dp..(r + 1) * 2 * dp].split_at(dp);
                    let (rm_bar, rl_bar) =
                        ws.rev_bar[r * 2 * dp..(r + 1) * 2 * dp].split_at_mut(dp);
                    log_normal_adjoint(w_bar, psi, mq, lq, psi_bar, mq_bar, lq_bar);
                    log_normal_adjoint(-w_bar, psi, rm, rl, psi_bar, rm_bar, rl_bar);
                }
            }
        }
        // Inner conditional rows, then ψ_k = ν + ρ η_k.
        if k > 0 {
            conditional.backward(
                params,
                &ws.psik,
                x,
                rows * k,
                b,
                &mut ws.condk,
                &mut ws.condk_bar,
                grad,
                Some(&mut ws.psik_bar),
            );
        }
        for r in 0..rows {
            let n = r / m;
            let (src, bar) = match reverse {
                Some(_) => (
                    &ws.reverse.out[r * 2 * dp..(r + 1) * 2 * dp],
                    &mut ws.rev_bar[r * 2 * dp..(r + 1) * 2 * dp],
                ),
                None => (
                    &ws.mixing.out[n * 2 * dp..(n + 1) * 2 * dp],
                    &mut ws.enc_bar[n * 2 * dp..(n + 1) * 2 * dp],
                ),
            };
            for j in 0..k {
                let at = (r * k + j) * dp;
                for i in 0..dp {
                    let pb = ws.psik_bar[at + i];
                    bar[i] += pb;
                    bar[dp + i] += pb * src[dp + i].exp() * noise.inner[at + i];
                }
            }
        }
        if let Some(rev) = reverse {
            rev.backward(
                params,
                &ws.z,
                x,
                rows,
                b,
                &mut ws.reverse,
                &mut ws.rev_bar,
                grad,
                Some(&mut ws.z_bar),
            );
        }
        // z = μ + σ ε_z.
        for r in 0..rows {
            let ls = &ws.cond0.out[r * 2 * dz + dz..(r + 1) * 2 * dz];
            for i in 0..dz {
                let zb = ws.z_bar[r * dz + i];
                ws.cond0_bar[r * 2 * dz + i] += zb;
                ws.cond0_bar[r * 2 * dz + dz + i] += zb * ls[i].exp() * noise.z[r * dz + i];
            }
        }
        conditional.backward(
            params,
            &ws.psi0,
            x,
            rows,
            b,
            &mut ws.cond0,
            &mut ws.cond0_bar,
            grad,
            Some(&mut ws.psi0_bar),
        );
        // ψ₀ = μ_ψ + σ_ψ ε_ψ.
        for r in 0..rows {
            let n = r / m;
            for i in 0..dp {
                let pb = ws.psi0_bar[r * dp + i];
                let ls = ws.mixing.out[n * 2 * dp + dp + i];
                ws.enc_bar[n * 2 * dp + i] += pb;
                ws.enc_bar[n * 2 * dp + dp + i] += pb * ls.exp() * noise.psi[r * dp + i];
            }
        }
        mixing.backward(
            params,
            x,
            &[],
            b,
            b,
            &mut ws.mixing,
            &mut ws.enc_bar,
            grad,
            None,
        );
    }

    /// The decoder's pixel probabilities `sigmoid(ℓ(z))` for each row of
    /// `z` (`n × latent`), `n × data_dim` row-major.
    ///
    /// # Errors
    /// [`AmortisedError`] for bad parameters or a ragged `z`.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, EncoderKind, Vae};
    /// let vae = Vae::new(3, 1, EncoderKind::Gaussian, &[], Activation::Tanh).unwrap();
    /// let p = vae.decode(&vec![0.0; vae.len()], &[0.5, -1.0]).unwrap();
    /// assert_eq!(p, vec![0.5; 6]);
    /// ```
    pub fn decode(&self, params: &[f64], z: &[f64]) -> Result<Vec<f64>, AmortisedError> {
        self.check_params(params)?;
        if !z.len().is_multiple_of(self.latent) || z.iter().any(|v| !v.is_finite()) {
            return Err(AmortisedError::InvalidSetting {
                setting: "z",
                value: format!("{} values", z.len()),
                requirement: "finite, a whole number of rows of `latent` values",
            });
        }
        let n = z.len() / self.latent;
        let mut scratch = MlpScratch::default();
        self.decoder.forward(params, z, &[], n, n, &mut scratch);
        Ok(scratch
            .out
            .iter()
            .map(|&l| crate::special::sigmoid(l))
            .collect())
    }

    /// The encoder's mean `E_q[z | x]` for each row of `x`: `μ(x)` for a
    /// Gaussian encoder; for a hierarchical one, the average of the
    /// conditional means `μ(ψ_s, x)` over `draws` draws `ψ_s ~ q(ψ | x)`
    /// from `rng`. `n × latent` row-major.
    ///
    /// # Errors
    /// [`AmortisedError`] for bad parameters or data, and
    /// [`AmortisedError::InvalidSetting`] for `draws = 0` or `draws` whose
    /// rows would need more than `DEFAULT_MEMORY_BUDGET`.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, EncoderKind, Vae};
    /// use iwhvi_core::rand::{SeedableRng, rngs::StdRng};
    /// let vae = Vae::new(3, 2, EncoderKind::Gaussian, &[], Activation::Tanh).unwrap();
    /// let means = vae.encode_means(&vec![0.0; vae.len()], &[1.0, 0.0, 1.0], 1, &mut StdRng::seed_from_u64(0)).unwrap();
    /// assert_eq!(means, vec![0.0, 0.0]);
    /// ```
    pub fn encode_means<R: Rng + ?Sized>(
        &self,
        params: &[f64],
        x: &[f64],
        draws: usize,
        rng: &mut R,
    ) -> Result<Vec<f64>, AmortisedError> {
        self.check_params(params)?;
        let b = self.check_data(x)?;
        let dz = self.latent;
        if draws == 0 {
            return Err(AmortisedError::InvalidSetting {
                setting: "draws",
                value: "0".into(),
                requirement: "at least one draw of the mixing variable per row",
            });
        }
        if self.mixing_dim() > 0 {
            // The `b · draws` rows of the conditional network (its input,
            // hidden layers and output), checked before allocating.
            let width = self.mixing_dim() + 2 * dz + self.hidden().iter().sum::<usize>();
            // The saturating count of every other size (no overflow for a
            // huge `draws`), reported as this function's setting.
            let rows = b.saturating_mul(draws);
            if let Some(bytes) = crate::input::bytes_over_budget(rows, width, DEFAULT_MEMORY_BUDGET)
            {
                return Err(AmortisedError::InvalidSetting {
                    setting: "draws",
                    value: format!(
                        "{draws} (about {bytes} bytes for {b} rows, over the budget of {DEFAULT_MEMORY_BUDGET} bytes)"
                    ),
                    requirement: "rows × draws of the conditional network within DEFAULT_MEMORY_BUDGET",
                });
            }
        }
        let mut s = MlpScratch::default();
        match &self.encoder {
            Encoder::Gaussian { net } => {
                net.forward(params, x, &[], b, b, &mut s);
                Ok((0..b)
                    .flat_map(|n| s.out[n * 2 * dz..n * 2 * dz + dz].to_vec())
                    .collect())
            }
            Encoder::Hierarchical {
                mixing_dim,
                mixing,
                conditional,
                ..
            } => {
                let dp = *mixing_dim;
                mixing.forward(params, x, &[], b, b, &mut s);
                let mut psi = vec![0.0; b * draws * dp];
                for n in 0..b {
                    let (mu, ls) = s.out[n * 2 * dp..(n + 1) * 2 * dp].split_at(dp);
                    for d in 0..draws {
                        for i in 0..dp {
                            let e: f64 = rng.sample(StandardNormal);
                            psi[(n * draws + d) * dp + i] = mu[i] + ls[i].exp() * e;
                        }
                    }
                }
                let mut c = MlpScratch::default();
                conditional.forward(params, &psi, x, b * draws, b, &mut c);
                let mut means = vec![0.0; b * dz];
                for n in 0..b {
                    for d in 0..draws {
                        let row = n * draws + d;
                        for i in 0..dz {
                            means[n * dz + i] += c.out[row * 2 * dz + i] / draws as f64;
                        }
                    }
                }
                Ok(means)
            }
        }
    }
}

/// Checks `M ≥ 1`.
pub(crate) fn check_bound(bound: VaeBound) -> Result<(), AmortisedError> {
    if bound.outer == 0 {
        return Err(AmortisedError::InvalidSetting {
            setting: "outer",
            value: "0".into(),
            requirement: "at least one outer sample (M ≥ 1)",
        });
    }
    Ok(())
}

/// `log C(n, k)`.
fn log_choose(n: u64, k: u64) -> f64 {
    crate::special::ln_factorial(n)
        - crate::special::ln_factorial(k)
        - crate::special::ln_factorial(n - k)
}
