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

use iwhvi::amortised::{Activation, Dense, EncoderKind, Vae};
use iwhvi::fit::InputError;
use iwhvi::fit::{Fit, FitConfig, FitError, fit};
use iwhvi::model::Model;
use iwhvi::objective::{Diwhvi, estimate_bound};
use iwhvi::optim::Adam;
use iwhvi::plate::{self, Arg, BernoulliLogitKernel};
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
/// let model = DigitsVae::new(DMatrix::from_element(3, 64, 1.0)).unwrap();
/// assert_eq!(model.dim(), 2 * 3);
/// assert_eq!(model.theta_dim(), 2 * 64 + 64 + 64 * 64 + 64);
/// ```
#[variational]
pub struct DigitsVae {
    /// Binarised images, one per row (`n × 64`, values 0 or 1).
    #[data]
    pub images: DMatrix<f64>,
    /// `W₀` (64 × 2).
    #[param(init = 0.0, rows = 64, cols = 2)]
    pub dec_w0: DMatrix<f64>,
    /// `b₀`.
    #[param(init = 0.0, len = 64)]
    pub dec_b0: Vec<f64>,
    /// `W₁` (64 × 64).
    #[param(init = 0.0, rows = images.ncols(), cols = 64)]
    pub dec_w1: DMatrix<f64>,
    /// `b₁`.
    #[param(init = 0.0, len = images.ncols())]
    pub dec_b1: Vec<f64>,
    /// First latent coordinate of every image.
    #[latent(Normal(0.0, 1.0), len = images.nrows())]
    pub z0: Vec<f64>,
    /// Second latent coordinate of every image.
    #[latent(Normal(0.0, 1.0), len = images.nrows())]
    pub z1: Vec<f64>,
    /// `Σ_p log BernoulliLogit(x_{n,p}; ℓ_{n,p})`, one term per image `n`
    /// of the batch, all the batch's images in one call (a plate of
    /// factors over the batch: minibatches subsample it, `z0` and `z1` are
    /// local and arrive gathered, `z0[rows]`).
    #[factor(self.batch_log_lik(rows, z0[rows], z1[rows], dec_w0, dec_b0, dec_w1, dec_b1), for rows in batch, len = images.nrows())]
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
    /// ([`plate::log_density_rows`]; a pixel other than 0 counts as 1).
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
        let images: Vec<u64> = rows
            .iter()
            .flat_map(|&n| (0..pixels).map(move |p| u64::from(self.images[(n, p)] != 0.0)))
            .collect();
        plate::log_density_rows(
            &BernoulliLogitKernel,
            &images,
            &[Arg::Slice(&logits)],
            rows.len(),
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
/// let model = DigitsVae::new(DMatrix::from_element(3, 64, 1.0)).unwrap();
/// let guide = GaussianEncoder::new(&model).unwrap();
/// assert_eq!(guide.param_layout().len(), 65 * 64 + 65 * 4);
/// ```
#[variational(guide = DigitsVae)]
pub struct GaussianEncoder {
    /// `x_n → 64 tanh → (μ₀, μ₁, s₀, s₁)`.
    #[encoder(input = [images.row(j)], hidden = [64], activation = tanh, outputs = 4)]
    pub enc: Mlp,
    /// `q(z0_n | x_n)`.
    #[latent(Normal(enc(j)[0], enc(j)[2].exp()), for j)]
    pub z0: Vec<f64>,
    /// `q(z1_n | x_n)`.
    #[latent(Normal(enc(j)[1], enc(j)[3].exp()), for j)]
    pub z1: Vec<f64>,
}

/// The images of a split (`n × 64`, row-major values) as the model's data.
///
/// ```
/// let m = iwhvi_examples::macro_vae::images(&[0.0; 128]);
/// assert_eq!((m.nrows(), m.ncols()), (2, 64));
/// ```
pub fn images(pixels: &[f64]) -> DMatrix<f64> {
    DMatrix::from_row_slice(pixels.len() / PIXELS, PIXELS, pixels)
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
/// with).
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
    let vae = runtime_vae();
    let mut start = vae.init_params(&mut StdRng::seed_from_u64(init_seed));
    vae.init_decoder_bias(&mut start, pixels)
        .expect("binary pixels");
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
/// As [`estimate_bound`].
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
/// let model = DigitsVae::new(DMatrix::from_element(3, 64, 1.0)).unwrap();
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
    #[encoder(input = [images.row(j)], hidden = [64], activation = tanh, outputs = 4)]
    pub mix: Mlp,
    /// `(x_n; ψ_n) → 64 tanh → (means, log scales)` of `q(z_n | ψ_n, x_n)`.
    #[encoder(input = [images.row(j)], context = [psi0[j], psi1[j]], hidden = [64], activation = tanh, outputs = 4)]
    pub enc: Mlp,
    /// `(x_n; z_n) → 64 tanh → (means, log scales)` of `τ(ψ_n | z_n, x_n)`.
    #[encoder(input = [images.row(j)], context = [z0[j], z1[j]], hidden = [64], activation = tanh, outputs = 4)]
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
}
