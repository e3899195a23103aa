//! The VAE of `vae_digits` declared with `#[variational]` (issue 16): a
//! model with a learned decoder and one local latent per image, and a
//! guide whose Gaussian encoder is an `#[encoder]` network, both with the
//! architecture of [`crate::digits::vae`] (latent size 2, one hidden layer
//! of 64 tanh units) and the same parameter layout, so that parameters
//! copy across to and from `iwhvi::amortised`.
//!
//! ```text
//! z_n = (z0_n, z1_n) ~ N(0, I₂),   h_n = tanh(W₀ z_n + b₀),   ℓ_n = W₁ h_n + b₁,
//! x_{n,p} ~ BernoulliLogit(ℓ_{n,p}),
//! q(z_n | x_n) = N(μ(x_n), diag exp(2 s(x_n))),   (μ, s) = enc(x_n)
//! ```

use std::ops::Range;

use iwhvi::amortised::{Activation, Dense, EncoderKind, Vae};
use iwhvi::fit::InputError;
use iwhvi::fit::{Fit, FitConfig, FitError, fit};
use iwhvi::guide::HierarchicalGuide;
use iwhvi::model::Model;
use iwhvi::objective::{Diwhvi, estimate_bound};
use iwhvi::optim::Adam;
use iwhvi::plate::{self, Arg, BernoulliLogitReal};
use iwhvi::{Scalar, variational};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::digits::{self, HIDDEN, PIXELS};

/// The latent size of the macro-declared VAE (one latent field per
/// coordinate: `z0`, `z1`).
pub const LATENT: usize = 2;
/// The hidden width of every network.
pub const WIDTH: usize = HIDDEN[0];

/// The model: `z_n ~ N(0, I₂)` per image, the decoder `z → 64 tanh → 64
/// logits` with learned weights, Bernoulli-logit pixels.
///
/// The decoder's weights are stored output × input (`dec_w0` is 64 × 2,
/// `dec_w1` 64 × 64), column by column in θ, which is the row-major
/// input × output order of `iwhvi::amortised`'s decoder: θ is that
/// decoder's block of a [`Vae`]'s parameters as it stands.
///
/// ```
/// use iwhvi::model::Model;
/// use iwhvi_examples::macro_vae::DigitsVae;
/// use nalgebra::DMatrix;
/// // Three images of 64 pixels, one per column.
/// let model = DigitsVae::new(DMatrix::from_element(64, 3, 1.0)).unwrap();
/// assert_eq!(model.dim(), 2 * 3);
/// assert_eq!(model.theta_dim(), 2 * 64 + 64 + 64 * 64 + 64);
/// ```
#[variational]
pub struct DigitsVae {
    /// Binarised images, one per column (`64 × n`, values 0 or 1): each
    /// image's pixels contiguous in the column-major storage, so that a
    /// batch's images are read as slices (see [`images`]).
    #[data]
    pub images: DMatrix<f64>,
    /// `W₀` (64 × 2).
    #[param(init = 0.0, rows = 64, cols = 2)]
    pub dec_w0: DMatrix<f64>,
    /// `b₀`.
    #[param(init = 0.0, len = 64)]
    pub dec_b0: Vec<f64>,
    /// `W₁` (64 × 64).
    #[param(init = 0.0, rows = images.nrows(), cols = 64)]
    pub dec_w1: DMatrix<f64>,
    /// `b₁`.
    #[param(init = 0.0, len = images.nrows())]
    pub dec_b1: Vec<f64>,
    /// First latent coordinate of every image.
    #[latent(Normal(0.0, 1.0), len = images.ncols())]
    pub z0: Vec<f64>,
    /// Second latent coordinate of every image.
    #[latent(Normal(0.0, 1.0), len = images.ncols())]
    pub z1: Vec<f64>,
    /// `Σ_p log BernoulliLogit(x_{n,p}; ℓ_{n,p})`, one term per image `n`
    /// of the batch, all the batch's images in one call (a plate of
    /// factors over the batch: minibatches subsample it, `z0` and `z1` are
    /// local and arrive gathered, `z0[rows]`).
    #[factor(self.batch_log_lik(rows, z0[rows], z1[rows], dec_w0, dec_b0, dec_w1, dec_b1), for rows in batch, len = images.ncols())]
    pub likelihood: (),
}

impl DigitsVae {
    /// `Σ_p [x_{n,p} ℓ_{n,p} − softplus(ℓ_{n,p})]` for each image `n` of
    /// `rows` (entry `k` for image `rows[k]`, at its latent `(z0[k],
    /// z1[k])`), over any scalar, for the whole batch at once: the
    /// decoder's two [`Dense`] layers on the batch's rows (one operation
    /// each, whatever the engine, whose products are matrix products over
    /// the rows: [`Dense::apply_rows`]) and the Bernoulli-logit terms of
    /// every image as one plate with one value per image
    /// ([`plate::log_density_gathered_rows`]: the batch's images copied
    /// from the data as they are, `f64` pixels read by
    /// [`BernoulliLogitReal`]; a pixel other than 0 and 1 makes its
    /// image's term −∞, named by `first_invalid_term`).
    #[allow(clippy::too_many_arguments)]
    fn batch_log_lik<T: Scalar>(
        &self,
        rows: &[usize],
        z0: &[T],
        z1: &[T],
        w0: &DMatrix<T>,
        b0: &[T],
        w1: &DMatrix<T>,
        b1: &[T],
    ) -> Vec<T> {
        let (width, pixels) = (b0.len(), b1.len());
        let latents: Vec<T> = z0.iter().zip(z1).flat_map(|(&a, &b)| [a, b]).collect();
        let (mut h, mut logits, mut terms) = (Vec::new(), Vec::new(), Vec::new());
        Dense::new(LATENT, width, Some(Activation::Tanh)).apply_rows(
            w0.as_slice(),
            b0,
            &latents,
            rows.len(),
            &mut h,
        );
        Dense::new(width, pixels, None).apply_rows(w1.as_slice(), b1, &h, rows.len(), &mut logits);
        // Image `n` is column `n`: `pixels` (its rows) contiguous values,
        // the images' table read in place, row `n` of it for image `n`.
        plate::log_density_gathered_rows(
            &BernoulliLogitReal,
            self.images.as_slice(),
            self.images.nrows(),
            rows,
            &[Arg::Slice(&logits)],
            &mut terms,
        );
        terms
    }
}

/// The Gaussian encoder: `(μ₀, μ₁, s₀, s₁) = enc(x_n)` (the output order
/// of `iwhvi::amortised`'s Gaussian encoder), `z0_n ~ N(μ₀, e^{s₀})`,
/// `z1_n ~ N(μ₁, e^{s₁})`. Its parameters are the encoder's block of a
/// [`Vae`]'s parameters as it stands.
///
/// ```
/// use iwhvi::guide::HierarchicalGuide;
/// use iwhvi_examples::macro_vae::{DigitsVae, GaussianEncoder};
/// use nalgebra::DMatrix;
/// let model = DigitsVae::new(DMatrix::from_element(64, 3, 1.0)).unwrap();
/// let guide = GaussianEncoder::new(&model).unwrap();
/// assert_eq!(guide.param_layout().len(), 65 * 64 + 65 * 4);
/// ```
#[variational(guide = DigitsVae)]
pub struct GaussianEncoder {
    /// `x_n → 64 tanh → (μ₀, μ₁, s₀, s₁)`.
    #[encoder(input = [images.column(j)], hidden = [64], activation = tanh, outputs = 4)]
    pub enc: Mlp,
    /// `q(z0_n | x_n)`.
    #[latent(Normal(enc(j)[0], enc(j)[2].exp()), for j)]
    pub z0: Vec<f64>,
    /// `q(z1_n | x_n)`.
    #[latent(Normal(enc(j)[1], enc(j)[3].exp()), for j)]
    pub z1: Vec<f64>,
}

/// The images of a split (`n × 64`, row-major values, image after
/// image) as the model's data: `64 × n`, one image per column, which is
/// the same values in the same order (nalgebra stores column after
/// column).
///
/// ```
/// let pixels: Vec<f64> = (0..128).map(|i| f64::from(i % 2)).collect();
/// let m = iwhvi_examples::macro_vae::images(&pixels);
/// assert_eq!((m.nrows(), m.ncols()), (64, 2));
/// // Image 1, pixel 3 (`pixels[64 + 3]`) at row 3 of column 1.
/// assert_eq!(m[(3, 1)], pixels[64 + 3]);
/// assert_eq!(m.as_slice(), &pixels[..]);
/// ```
pub fn images(pixels: &[f64]) -> DMatrix<f64> {
    DMatrix::from_column_slice(PIXELS, pixels.len() / PIXELS, pixels)
}

/// `Ok` for whole images (a multiple of 64 values) of binary pixels (0 or
/// 1), which the model's Bernoulli rows read; otherwise the typed error
/// [`InputError::InvalidSetting`] naming `pixels` and the first image and
/// pixel that is neither (a grey level would be an invalid term, `−∞`).
///
/// # Errors
/// As above.
///
/// ```
/// use iwhvi_examples::macro_vae::check_pixels;
/// assert!(check_pixels(&[0.0; 128]).is_ok());
/// let mut grey = vec![1.0; 128];
/// grey[64 + 3] = 0.5;
/// let error = check_pixels(&grey).unwrap_err().to_string();
/// assert!(error.contains("image 1, pixel 3"), "{error}");
/// assert!(check_pixels(&[0.0; 65]).is_err());
/// ```
pub fn check_pixels(pixels: &[f64]) -> Result<(), InputError> {
    let refuse = |value: String| InputError::InvalidSetting {
        setting: "pixels",
        value,
        requirement: "whole images of 64 binary pixels (0 or 1) each: binarise grey levels first",
    };
    if !pixels.len().is_multiple_of(PIXELS) {
        return Err(refuse(format!("{} values", pixels.len())));
    }
    match pixels.iter().position(|&p| p != 0.0 && p != 1.0) {
        Some(i) => Err(refuse(format!(
            "{} at image {}, pixel {}",
            pixels[i],
            i / PIXELS,
            i % PIXELS
        ))),
        None => Ok(()),
    }
}

/// The runtime VAE of the same architecture ([`digits::vae`] with a
/// Gaussian encoder and latent size 2).
///
/// # Panics
/// Never: the architecture is valid.
pub fn runtime_vae() -> Vae {
    digits::vae(LATENT, EncoderKind::Gaussian).expect("a valid architecture")
}

/// Splits a runtime [`Vae`]'s parameters into the guide's (the encoder)
/// and the model's θ (the decoder), in that order.
///
/// ```
/// let vae = iwhvi_examples::macro_vae::runtime_vae();
/// let params = vec![0.0; vae.len()];
/// let (guide, theta) = iwhvi_examples::macro_vae::split_params(&params);
/// assert_eq!(guide.len() + theta.len(), vae.len());
/// ```
pub fn split_params(params: &[f64]) -> (&[f64], &[f64]) {
    params.split_at(encoder_len())
}

/// The number of encoder parameters, `(64 + 1) · 64 + (64 + 1) · 4`.
///
/// ```
/// use iwhvi_examples::macro_vae::{encoder_len, runtime_vae};
/// assert_eq!(encoder_len(), 4420);
/// assert_eq!(runtime_vae().len(), 4420 + 4352);
/// ```
pub fn encoder_len() -> usize {
    (PIXELS + 1) * WIDTH + (WIDTH + 1) * 2 * LATENT
}

/// A model of `pixels` with the runtime parameters' decoder as θ.
///
/// # Panics
/// If `params` is not a [`runtime_vae`]'s parameter vector.
pub fn model_with(pixels: &[f64], params: &[f64]) -> DigitsVae {
    let mut model = DigitsVae::new(images(pixels)).expect("images of 64 pixels");
    model
        .set_theta(split_params(params).1)
        .expect("a decoder of the runtime VAE");
    model
}

/// Which guide [`train`] fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacroEncoder {
    /// [`GaussianEncoder`].
    Gaussian,
    /// [`HierarchicalEncoder`].
    Hierarchical,
}

/// How [`train`] fits the macro-declared VAE.
#[derive(Clone, Copy, Debug)]
pub struct MacroTraining {
    /// The guide.
    pub encoder: MacroEncoder,
    /// The bound (`Diwhvi::elbo()`, `Diwhvi::new(5, 10)`, …).
    pub objective: Diwhvi,
    /// Adam steps.
    pub steps: usize,
    /// Images per step (`None`: every training image, each step).
    pub batch_size: Option<usize>,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// The fit's seed (guide initialisation, noise, batches).
    pub seed: u64,
}

/// What [`train`] leaves behind.
pub struct MacroTrained {
    /// The guide's fitted parameters, then the decoder's θ: for
    /// [`MacroEncoder::Gaussian`], a [`runtime_vae`]'s parameter vector
    /// (for `iwhvi::amortised::log_likelihood` and the pictures).
    pub params: Vec<f64>,
    /// The fit itself.
    pub fit: Fit,
}

/// Fits the macro-declared VAE to `pixels` (`n × 64`, binary) with
/// `iwhvi::fit`: the decoder θ starts where the runtime VAE's does
/// (`Vae::init_params` with `init_seed`, output bias at the pixels'
/// logits), the encoder at the guide's own initialisation (the same rule,
/// drawn from the fit's seed), and both are learned.
///
/// # Errors
/// As [`fit`], boxed (e.g. a batch size the model cannot be subsampled
/// with), and [`check_pixels`]' error for pixels that are not whole binary
/// images.
///
/// ```
/// use iwhvi::objective::Diwhvi;
/// use iwhvi_examples::macro_vae::{MacroEncoder, MacroTraining, hierarchical_log_likelihood, train};
/// let pixels: Vec<f64> = (0..2 * 64).map(|i| f64::from(i % 3 == 0)).collect();
/// let settings = MacroTraining {
///     encoder: MacroEncoder::Hierarchical,
///     objective: Diwhvi::new(2, 3),
///     steps: 2,
///     batch_size: None,
///     learning_rate: 1e-2,
///     seed: 0,
/// };
/// let trained = train(&pixels, 1, settings).unwrap();
/// assert_eq!(trained.fit.steps, 2);
/// // log p(x) of each image by DIWHVI (M = 4, K = 2), below 0 for binary pixels.
/// let ll = hierarchical_log_likelihood(&pixels, &trained.params, 4, 2, 0).unwrap();
/// assert!(ll.len() == 2 && ll.iter().all(|&l| l < 0.0));
/// // The likelihood is a plate over the images (z0, z1 local): minibatches
/// // are accepted (here the per-point bound, M = 2), of at most N images.
/// let batched = train(&pixels, 1, MacroTraining { batch_size: Some(1), ..settings }).unwrap();
/// assert_eq!(batched.fit.steps, 2);
/// assert!(batched.fit.trace.iter().all(|b| b.is_finite()));
/// let refused = train(&pixels, 1, MacroTraining { batch_size: Some(3), ..settings });
/// assert!(refused.is_err());
/// ```
// `#[inline]`: the fit is instantiated in the crate that calls it, not in
// this library, which `cargo test` builds unoptimised; otherwise the
// other test crates link this library's unoptimised copies of the core's
// generic code (shared generics) and run several times slower.
#[inline]
pub fn train(
    pixels: &[f64],
    init_seed: u64,
    settings: MacroTraining,
) -> Result<MacroTrained, Box<FitError>> {
    train_configured(pixels, init_seed, settings, |config| config)
}

/// [`train`] with the fit's [`FitConfig`] passed through `adjust` last
/// (after the settings' steps, seed and batch size), e.g.
/// `|c| c.full_bound(false)` to skip a minibatch fit's closing full-data
/// bound ([`FitConfig::full_bound`]). `train` is this with the identity.
///
/// # Errors
/// As [`train`].
///
/// ```
/// use iwhvi::objective::Diwhvi;
/// use iwhvi_examples::macro_vae::{MacroEncoder, MacroTraining, train, train_configured};
/// let pixels: Vec<f64> = (0..4 * 64).map(|i| f64::from(i % 3 == 0)).collect();
/// let settings = MacroTraining {
///     encoder: MacroEncoder::Gaussian,
///     objective: Diwhvi::elbo(),
///     steps: 3,
///     batch_size: Some(2),
///     learning_rate: 1e-2,
///     seed: 0,
/// };
/// let quick = train_configured(&pixels, 1, settings, |c| c.full_bound(false)).unwrap();
/// let full = train(&pixels, 1, settings).unwrap();
/// assert!(quick.fit.full_bound.is_none() && full.fit.full_bound.is_some());
/// assert_eq!(quick.params, full.params);
/// ```
// `#[inline]`: as `train`.
#[inline]
pub fn train_configured(
    pixels: &[f64],
    init_seed: u64,
    settings: MacroTraining,
    adjust: impl FnOnce(FitConfig) -> FitConfig,
) -> Result<MacroTrained, Box<FitError>> {
    check_pixels(pixels).map_err(|e| Box::new(FitError::from(e)))?;
    let vae = runtime_vae();
    let mut start = vae.init_params(&mut StdRng::seed_from_u64(init_seed));
    vae.init_decoder_bias(&mut start, pixels)
        .expect("checked: whole binary images");
    let model = model_with(pixels, &start);
    let mut config = FitConfig::new(settings.objective)
        .max_steps(settings.steps)
        .min_steps(settings.steps)
        .seed(settings.seed)
        .progress(false);
    if let Some(b) = settings.batch_size {
        config = config.batch_size(b);
    }
    let config = adjust(config);
    let adam = Adam::new(settings.learning_rate);
    let fitted = match settings.encoder {
        MacroEncoder::Gaussian => {
            let guide = GaussianEncoder::new(&model).expect("an encoder of the images");
            fit(&model, &guide, adam, &config)?
        }
        MacroEncoder::Hierarchical => {
            let guide = HierarchicalEncoder::new(&model).expect("an encoder of the images");
            fit(&model, &guide, adam, &config)?
        }
    };
    let mut params = fitted.params.clone();
    params.extend_from_slice(&fitted.theta);
    Ok(MacroTrained {
        params,
        fit: fitted,
    })
}

/// The test log-likelihood of each image under a fitted
/// [`HierarchicalEncoder`] VAE (`params` as [`MacroTrained::params`]):
/// the DIWHVI bound with `m` outer and `k` inner samples on the image
/// alone, the mean of two replicates, a lower bound on `log p_θ(x_n)` in
/// expectation.
///
/// # Errors
/// As [`estimate_bound`], and [`check_pixels`]' error for pixels that are
/// not whole binary images.
// `#[inline]`: the fit is instantiated in the crate that calls it, not in
// this library, which `cargo test` builds unoptimised; otherwise the
// other test crates link this library's unoptimised copies of the core's
// generic code (shared generics) and run several times slower.
#[inline]
pub fn hierarchical_log_likelihood(
    pixels: &[f64],
    params: &[f64],
    m: usize,
    k: usize,
    seed: u64,
) -> Result<Vec<f64>, InputError> {
    check_pixels(pixels)?;
    let guide_len = params.len() - runtime_vae().len() + encoder_len();
    let (phi, theta) = params.split_at(guide_len);
    let mut rng = StdRng::seed_from_u64(seed);
    pixels
        .chunks_exact(PIXELS)
        .map(|image| {
            let mut model = DigitsVae::new(images(image)).expect("an image of 64 pixels");
            model.set_theta(theta).expect("the decoder's θ");
            let guide = HierarchicalEncoder::new(&model).expect("an encoder of the image");
            estimate_bound(&model, &guide, phi, Diwhvi::new(m, k), 2, &mut rng).map(|e| e.mean)
        })
        .collect()
}

/// A hierarchical encoder for [`DigitsVae`] in the runtime's shape
/// (`iwhvi::amortised::EncoderKind::Hierarchical { mixing_dim: 2 }`): two
/// mixing coordinates per image drawn from a network of the image,
/// `q(ψ_n | x_n)`; a conditional `q(z_n | ψ_n, x_n)` whose network reads
/// the image and `ψ_n` (its context), so that `q(z_n | x_n)` is a
/// continuous mixture of Gaussians, not a Gaussian; and a reverse model
/// `τ(ψ_n | z_n, x_n)`, a network of the image with `z_n` as context. Each
/// network has one hidden layer of 64 tanh units:
///
/// ```text
/// m = mix(x_n) ∈ R⁴,          ψ_{q,n} ~ N(m_q, exp m_{2+q})        (q = 0, 1),
/// e = enc(x_n; ψ_n) ∈ R⁴,     z_{d,n} | ψ_n ~ N(e_d, exp e_{2+d})  (d = 0, 1),
/// g = rev(x_n; z_n) ∈ R⁴,     τ(ψ_n | z_n, x_n) = Π_q N(ψ_{q,n}; g_q, exp g_{2+q}).
/// ```
///
/// The conditional's network runs `K + 1` times per image and outer draw
/// (once per `ψ`); the guide computes each image's part of its first
/// layer, `b₀ + W₀ᵀ x_n`, once per step (`prepare`), so that each run adds
/// only the context's terms and the layer above.
///
/// ```
/// use iwhvi::guide::HierarchicalGuide;
/// use iwhvi_examples::macro_vae::{DigitsVae, HierarchicalEncoder};
/// use nalgebra::DMatrix;
/// let model = DigitsVae::new(DMatrix::from_element(64, 3, 1.0)).unwrap();
/// let guide = HierarchicalEncoder::new(&model).unwrap();
/// // One mixing group per image (there is no global latent), each with
/// // its two coordinates of ψ.
/// let groups = guide.mixing_groups().unwrap();
/// assert_eq!(groups.len(), 3);
/// assert_eq!(groups.groups()[1].psi, 2..4);
/// assert_eq!(guide.mixing_dim(), 6);
/// // Three networks 64 (+ 2 context) → 64 tanh → 4: W₀ (and W_c), b₀, W₁, b₁.
/// assert_eq!(guide.param_layout().len(), 65 * 64 + 2 * (66 + 1) * 64 + 3 * 65 * 4);
/// ```
#[variational(guide = DigitsVae)]
pub struct HierarchicalEncoder {
    /// `x_n → 64 tanh → (locations, log scales)` of `q(ψ_n | x_n)`.
    #[encoder(input = [images.column(j)], hidden = [64], activation = tanh, outputs = 4)]
    pub mix: Mlp,
    /// `(x_n; ψ_n) → 64 tanh → (means, log scales)` of `q(z_n | ψ_n, x_n)`.
    #[encoder(input = [images.column(j)], context = [psi0[j], psi1[j]], hidden = [64], activation = tanh, outputs = 4)]
    pub enc: Mlp,
    /// `(x_n; z_n) → 64 tanh → (means, log scales)` of `τ(ψ_n | z_n, x_n)`.
    #[encoder(input = [images.column(j)], context = [z0[j], z1[j]], hidden = [64], activation = tanh, outputs = 4)]
    pub rev: Mlp,
    /// `ψ_{0,n}`, with its reverse model.
    #[mixing(Normal(mix(j)[0], mix(j)[2].exp()), len = z0, for j)]
    #[reverse(Normal(rev(j)[0], rev(j)[2].exp()), for j)]
    pub psi0: Vec<f64>,
    /// `ψ_{1,n}`, with its reverse model.
    #[mixing(Normal(mix(j)[1], mix(j)[3].exp()), len = z0, for j)]
    #[reverse(Normal(rev(j)[1], rev(j)[3].exp()), for j)]
    pub psi1: Vec<f64>,
    /// `q(z0_n | ψ_n, x_n)`.
    #[latent(Normal(enc(j)[0], enc(j)[2].exp()), for j)]
    pub z0: Vec<f64>,
    /// `q(z1_n | ψ_n, x_n)`.
    #[latent(Normal(enc(j)[1], enc(j)[3].exp()), for j)]
    pub z1: Vec<f64>,
}

/// The runtime VAE of the [`HierarchicalEncoder`]'s shape
/// ([`digits::vae`] with `EncoderKind::Hierarchical { mixing_dim: 2 }`
/// and latent size 2): its parameters map to and from the macro's by
/// [`hierarchical_to_runtime`] and [`runtime_to_hierarchical`].
///
/// # Panics
/// Never: the architecture is valid.
///
/// ```
/// use iwhvi_examples::macro_vae::{encoder_len, runtime_hierarchical_vae, runtime_vae};
/// let vae = runtime_hierarchical_vae();
/// assert_eq!(vae.latent(), 2);
/// // The Gaussian VAE's encoder becomes q(ψ | x)'s network; the
/// // conditional's and the reverse model's networks (2 + 64 inputs, 64
/// // tanh, 4 outputs) are added; the decoder is the same.
/// assert_eq!(vae.len() - runtime_vae().len(), 2 * ((2 + 64 + 1) * 64 + (64 + 1) * 4));
/// assert_eq!(runtime_vae().len() - encoder_len(), (2 + 1) * 64 + (64 + 1) * 64);
/// ```
pub fn runtime_hierarchical_vae() -> Vae {
    digits::vae(LATENT, EncoderKind::Hierarchical { mixing_dim: 2 }).expect("a valid architecture")
}

/// Where each of the [`HierarchicalEncoder`]'s networks lies in its
/// parameter vector, as its [`HierarchicalGuide::param_layout`] says
/// (the macro puts the reverse model's encoder first, then the others in
/// declaration order: `rev`, `mix`, `enc`), in the runtime's order:
/// `mix`, `enc`, `rev`.
fn hierarchical_net_ranges() -> [Range<usize>; 3] {
    let model = DigitsVae::new(DMatrix::zeros(PIXELS, 1)).expect("an image of 64 pixels");
    let guide = HierarchicalEncoder::new(&model).expect("an encoder of the image");
    let layout = guide.param_layout();
    ["mix.", "enc.", "rev."].map(|net| {
        let blocks = || {
            layout
                .blocks()
                .iter()
                .filter(move |b| b.name.starts_with(net))
        };
        let start = blocks()
            .map(|b| b.range.start)
            .min()
            .expect("the network's blocks");
        let end = blocks()
            .map(|b| b.range.end)
            .max()
            .expect("the network's blocks");
        start..end
    })
}

/// The first layer of a network reading the image and a context of two
/// values (the macro's `enc` and `rev`: `W₀` for the image, 64 rows of
/// 64, then `W_c` for the context, 2 rows) with its two blocks of rows
/// traded (the runtime's: `W₀` for the context, then `W_c` for the
/// image), or back (`to_runtime = false`); the rest of the network as it
/// is.
fn swap_first_layer_rows(net: &[f64], to_runtime: bool) -> Vec<f64> {
    let mut net = net.to_vec();
    let rows = &mut net[..(PIXELS + 2) * WIDTH];
    rows.rotate_left(if to_runtime { PIXELS } else { 2 } * WIDTH);
    net
}

/// A fitted [`HierarchicalEncoder`] VAE's parameters
/// ([`MacroTrained::params`]: the guide's, then the decoder's θ) as a
/// [`runtime_hierarchical_vae`]'s, for `iwhvi::amortised`'s evaluation
/// (`log_likelihood`) and pictures. The networks, outputs and decoder
/// line up one for one, in another order (the macro's guide holds
/// `rev`, `mix`, `enc`, the runtime `mix`, conditional, reverse); and
/// the first layer of the conditional
/// `q(z | ψ, x)` and of the reverse model `τ(ψ | z, x)` differ: the macro
/// writes `W₀ᵀ x + W_cᵀ ψ + b₀` with the image as the input and `ψ` as
/// the context, the runtime `W₀ᵀ ψ + W_cᵀ x + b₀`, so the rows of `W₀`
/// for the image and for `ψ` (or `z`) trade places.
///
/// # Errors
/// [`MappingError`] if `params` does not have the macro VAE's length.
///
/// ```
/// use iwhvi_examples::macro_vae::{
///     hierarchical_to_runtime, runtime_hierarchical_vae, runtime_to_hierarchical,
/// };
/// let vae = runtime_hierarchical_vae();
/// let params: Vec<f64> = (0..vae.len()).map(|i| i as f64).collect();
/// let runtime = hierarchical_to_runtime(&params).unwrap();
/// assert_eq!(runtime.len(), vae.len());
/// assert_ne!(runtime, params);
/// // The mapping is undone by its inverse; a wrong length is refused.
/// assert_eq!(runtime_to_hierarchical(&runtime).unwrap(), params);
/// assert!(hierarchical_to_runtime(&params[1..]).is_err());
/// ```
pub fn hierarchical_to_runtime(params: &[f64]) -> Result<Vec<f64>, MappingError> {
    map_hierarchical(params, true)
}

/// The inverse of [`hierarchical_to_runtime`]: a
/// [`runtime_hierarchical_vae`]'s parameters as the [`HierarchicalEncoder`]
/// VAE's (guide, then θ), for [`hierarchical_log_likelihood`] or to start
/// [`train`]-like fits from the runtime's initialisation.
///
/// # Errors
/// [`MappingError`] if `params` does not have the runtime VAE's length.
///
/// ```
/// use iwhvi_examples::macro_vae::{runtime_hierarchical_vae, runtime_to_hierarchical};
/// let vae = runtime_hierarchical_vae();
/// assert_eq!(runtime_to_hierarchical(&vec![0.5; vae.len()]).unwrap(), vec![0.5; vae.len()]);
/// ```
pub fn runtime_to_hierarchical(params: &[f64]) -> Result<Vec<f64>, MappingError> {
    map_hierarchical(params, false)
}

fn map_hierarchical(params: &[f64], to_runtime: bool) -> Result<Vec<f64>, MappingError> {
    let expected = runtime_hierarchical_vae().len();
    if params.len() != expected {
        return Err(MappingError {
            expected,
            found: params.len(),
        });
    }
    let [mix, enc, rev] = hierarchical_net_ranges();
    let guide_len = rev.len() + mix.len() + enc.len();
    let nets = [(mix, false), (enc, true), (rev, true)];
    let mut mapped = vec![0.0; guide_len];
    // Network by network in the runtime's order (`at`), each where the
    // macro's layout has it (`range`), its first layer's rows traded for
    // the two with a context.
    let mut at = 0;
    for (range, context) in nets {
        let runtime = at..at + range.len();
        at = runtime.end;
        let (from, to) = if to_runtime {
            (range, runtime)
        } else {
            (runtime, range)
        };
        let net = &params[from];
        if context {
            mapped[to].copy_from_slice(&swap_first_layer_rows(net, to_runtime));
        } else {
            mapped[to].copy_from_slice(net);
        }
    }
    mapped.extend_from_slice(&params[guide_len..]);
    Ok(mapped)
}

/// A parameter vector of the wrong length for
/// [`hierarchical_to_runtime`] or [`runtime_to_hierarchical`].
///
/// ```
/// let err = iwhvi_examples::macro_vae::hierarchical_to_runtime(&[0.0; 3]).unwrap_err();
/// assert_eq!(err.found, 3);
/// assert!(err.to_string().contains("3"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappingError {
    /// The length of both VAEs' parameter vectors.
    pub expected: usize,
    /// The length given.
    pub found: usize,
}

impl std::fmt::Display for MappingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a hierarchical VAE's parameters have {} values (guide, then decoder), not {}",
            self.expected, self.found
        )
    }
}

impl std::error::Error for MappingError {}

#[cfg(test)]
mod tests {
    use iwhvi::Parallelism;
    use iwhvi::fit::{Engine, EngineChoice};

    use super::*;

    /// IWAE (`M = 3`) steps of the macro VAE on 6 images, both gradients
    /// on the tape (whose networks are vector ops; the model's outer
    /// samples on the threads).
    fn iwae_fit(parallelism: Parallelism) -> Fit {
        let pixels: Vec<f64> = (0..6 * PIXELS)
            .map(|i| f64::from(u8::from((i * 7 + i / PIXELS).is_multiple_of(3))))
            .collect();
        let model = DigitsVae::new(images(&pixels)).expect("six images");
        let guide = GaussianEncoder::new(&model).expect("an encoder");
        let config = FitConfig::new(Diwhvi::iwae(3))
            .engine(Engine::Tape)
            .max_steps(3)
            .min_steps(3)
            .seed(4)
            .parallelism(parallelism)
            .progress(false);
        fit(&model, &guide, Adam::new(1e-2), &config).expect("three steps")
    }

    /// DIWHVI (`M = 2`, `K = 3`) steps of the hierarchical encoder on 6
    /// images: its conditional network runs per `ψ` from each image's
    /// first-layer part (`prepare`).
    fn hierarchical_fit(parallelism: Parallelism) -> Fit {
        let pixels: Vec<f64> = (0..6 * PIXELS)
            .map(|i| f64::from(u8::from((i * 5 + i / PIXELS).is_multiple_of(3))))
            .collect();
        let model = DigitsVae::new(images(&pixels)).expect("six images");
        let guide = HierarchicalEncoder::new(&model).expect("an encoder");
        let config = FitConfig::new(Diwhvi::new(2, 3))
            .engine(Engine::Tape)
            .max_steps(2)
            .min_steps(2)
            .seed(5)
            .parallelism(parallelism)
            .progress(false);
        fit(&model, &guide, Adam::new(1e-2), &config).expect("two steps")
    }

    #[test]
    fn a_seed_reproduces_the_hierarchical_fit_bit_for_bit_on_one_or_two_threads() {
        let one = hierarchical_fit(Parallelism::SingleThread);
        let two = hierarchical_fit(Parallelism::AllCores);
        assert_eq!(one.engines.guide, EngineChoice::Tape);
        assert!(one.trace.iter().all(|b| b.is_finite()));
        assert_eq!(one.params, two.params);
        assert_eq!(one.theta, two.theta);
        assert_eq!(one.trace, two.trace);
    }

    #[test]
    fn a_seed_reproduces_the_macro_vae_fit_bit_for_bit_on_one_or_two_threads() {
        let one = iwae_fit(Parallelism::SingleThread);
        // Rayon's global pool: as many threads as cores (two here).
        let two = iwae_fit(Parallelism::AllCores);
        assert_eq!(one.engines.guide, EngineChoice::Tape);
        assert_eq!(one.engines.model, EngineChoice::Tape);
        assert!(one.trace.iter().all(|b| b.is_finite()));
        assert_eq!(one.params, two.params);
        assert_eq!(one.theta, two.theta);
        assert_eq!(one.trace, two.trace);
    }
    /// `Σ_i log N(v_i; m_i, e^{2 s_i})` from a network's outputs `(m, s)`.
    fn log_normal(v: &[f64], out: &[f64]) -> f64 {
        let (m, s) = out.split_at(v.len());
        v.iter()
            .zip(m)
            .zip(s)
            .map(|((&v, &m), &s)| {
                let t = (v - m) * (-s).exp();
                -0.5 * t * t - s - 0.5 * (2.0 * std::f64::consts::PI).ln()
            })
            .sum()
    }

    #[test]
    fn mapped_parameters_give_the_runtime_networks_the_macro_guides_densities() {
        use iwhvi::amortised::{Activation, Mlp};
        use iwhvi::guide::{HierarchicalGuide, Workspace};
        use rand::RngExt;

        let vae = runtime_hierarchical_vae();
        let mut rng = StdRng::seed_from_u64(12);
        // Parameters of the size that matters (weights ~ 0.3, so every
        // block moves the outputs), an image, ψ and z.
        let params: Vec<f64> = (0..vae.len())
            .map(|_| 0.3 * rng.random_range(-1.0..1.0))
            .collect();
        let image: Vec<f64> = (0..PIXELS)
            .map(|_| f64::from(rng.random_bool(0.4)))
            .collect();
        let (psi, z) = ([0.7, -1.2], [-0.4, 0.9]);
        let runtime = hierarchical_to_runtime(&params).unwrap();
        assert_eq!(runtime_to_hierarchical(&runtime).unwrap(), params);

        // The macro guide and model on the image, at the macro's params.
        let [mix_len, enc_len, rev_len] = hierarchical_net_ranges().map(|r| r.len());
        let guide_len = mix_len + enc_len + rev_len;
        let mut model = DigitsVae::new(images(&image)).unwrap();
        model.set_theta(&params[guide_len..]).unwrap();
        let guide = HierarchicalEncoder::new(&model).unwrap();
        let phi = &params[..guide_len];
        let mut ws = Workspace::new(&guide);
        guide.prepare(phi, &mut ws);
        let macro_mixing = guide.log_mixing_prepared(phi, &psi, &mut ws);
        let macro_conditional = guide.log_conditional(phi, &psi, &z, &mut ws);
        let macro_reverse = guide.log_reverse(phi, &z, &psi, &mut ws);
        let macro_joint = model.log_joint(&z);

        // The runtime's networks (its layout: ψ or z the input, the image
        // the context) at the mapped params.
        let net = |inputs, context, outputs, offset| {
            Mlp::new(inputs, context, &[WIDTH], outputs, Activation::Tanh, offset)
        };
        let mixing = net(PIXELS, 0, 4, 0).apply(&runtime, &image, &[]);
        let conditional = net(2, PIXELS, 4, mix_len).apply(&runtime, &psi, &image);
        let reverse = net(2, PIXELS, 4, mix_len + enc_len).apply(&runtime, &z, &image);
        let logits = net(2, 0, PIXELS, guide_len).apply(&runtime, &z, &[]);
        let runtime_joint = logits
            .iter()
            .zip(&image)
            .map(|(&l, &x)| x * l - (1.0 + l.exp()).ln())
            .sum::<f64>()
            + log_normal(&z, &[0.0, 0.0, 0.0, 0.0]);
        let pairs = [
            (macro_mixing, log_normal(&psi, &mixing)),
            (macro_conditional, log_normal(&z, &conditional)),
            (macro_reverse, log_normal(&psi, &reverse)),
            (macro_joint, runtime_joint),
        ];
        for (i, (a, b)) in pairs.into_iter().enumerate() {
            assert!(
                (a - b).abs() < 1e-12 * (1.0 + b.abs()),
                "density {i}: {a} vs {b}"
            );
        }
        // Unmapped, the networks disagree.
        let unmapped = net(2, PIXELS, 4, mix_len).apply(&params, &psi, &image);
        assert!((log_normal(&z, &unmapped) - macro_conditional).abs() > 1e-3);
        let unmapped = net(PIXELS, 0, 4, 0).apply(&params, &image, &[]);
        assert!((log_normal(&psi, &unmapped) - macro_mixing).abs() > 1e-3);
    }
}
