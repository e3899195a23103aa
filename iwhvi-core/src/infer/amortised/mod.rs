//! Learning as well as inference: variational autoencoders with amortised
//! (Gaussian or hierarchical) encoders, trained on minibatches with the
//! DIWHVI bound.
//!
//! For data points `x_n` with a local latent `z_n`, a decoder `p_θ(x | z)`
//! and the prior `p(z) = N(0, I)`, the encoder is shared by all points:
//! `q_φ(z | x) = ∫ q_φ(z | ψ, x) q_φ(ψ | x) dψ` with a reverse model
//! `τ_η(ψ | z, x)`, every conditional a diagonal Gaussian whose mean and
//! log standard deviation are an [`Mlp`] of what it conditions on. The
//! per-point bound ([`Vae`]) is
//!
//! ```text
//! bound(x) = logsumexp_m [log p_θ(x | z_m) + log p(z_m) − U_K(z_m)] − log M  ≤  log p_θ(x)  (in expectation)
//! U_K(z)   = logsumexp_{k=0..K} [log q(z | ψ_k, x) + log q(ψ_k | x) − log τ(ψ_k | z, x)] − log(K + 1)
//! ```
//!
//! (`ψ_0` the draw that produced `z`, `ψ_{1..K} ~ τ`), and [`train`]
//! ascends `(N / B) Σ_{n ∈ batch} bound(x_n)` in `(θ, φ, η)` jointly with
//! Adam. With a Gaussian encoder it is the ELBO (`M = 1`) or IWAE
//! (`M > 1`); [`EncoderKind::SemiImplicit`] replaces `τ` by `q(ψ | x)`
//! (SIVI at the same `K`). [`log_likelihood`] estimates the test
//! log-likelihood with large `M` and `K`.
//!
//! Everything is computed on whole arrays: each network runs once per
//! minibatch as row-major matrix products (matrixmultiply), the data
//! point's part of a network's first layer once per point, and the
//! gradient by a hand-written backward pass, checked against finite
//! differences in the tests. No dual numbers, no tape.
//!
//! ```
//! use iwhvi_core::amortised::{log_likelihood, train, Activation, EncoderKind, TrainSettings, Vae, VaeBound};
//! use iwhvi_core::rand::{SeedableRng, rngs::StdRng};
//!
//! // 20 binary "images" of 6 pixels: two prototypes.
//! let data: Vec<f64> = (0..20)
//!     .flat_map(|i| if i % 2 == 0 { [1.0, 1.0, 1.0, 0.0, 0.0, 0.0] } else { [0.0, 0.0, 0.0, 1.0, 1.0, 1.0] })
//!     .collect();
//! let vae = Vae::new(6, 1, EncoderKind::Hierarchical { mixing_dim: 1 }, &[16], Activation::Tanh).unwrap();
//! let mut params = vae.init_params(&mut StdRng::seed_from_u64(0));
//! let settings = TrainSettings { epochs: 200, batch_size: 10, bound: VaeBound { outer: 2, inner: 4 }, learning_rate: 1e-2, seed: 1 };
//! train(&vae, &mut params, &data, &settings).unwrap();
//! let ll = log_likelihood(&vae, &params, &data, VaeBound { outer: 50, inner: 10 }, 0).unwrap();
//! // Two equally likely prototypes: log p(x) ≤ ln ½; learned close to it.
//! assert!(ll.mean > -1.5, "{}", ll.mean);
//! ```

mod mlp;
mod persist;
mod train;
mod vae;

#[cfg(test)]
mod tests;

#[doc(hidden)]
pub use mlp::__gemm;
pub use mlp::{Activation, Dense, Mlp};
pub use train::{Estimate, TrainReport, TrainSettings, log_likelihood, train};
pub use vae::{Decoder, EncoderKind, Vae, VaeBound, VaeNoise, Workspace};

/// Bad input to the amortised layer.
///
/// ```
/// use iwhvi_core::amortised::{Activation, AmortisedError, EncoderKind, Vae};
/// let vae = Vae::new(2, 1, EncoderKind::Gaussian, &[], Activation::Tanh).unwrap();
/// assert!(matches!(vae.check_data(&[0.5, 3.0]), Err(AmortisedError::Pixel { index: 1, .. })));
/// ```
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AmortisedError {
    /// A setting out of range.
    #[error("invalid setting `{setting}` = {value}: {requirement}")]
    InvalidSetting {
        /// The setting's name.
        setting: &'static str,
        /// Its value.
        value: String,
        /// What it must satisfy.
        requirement: &'static str,
    },
    /// A parameter vector of the wrong length.
    #[error("expected {expected} parameters, found {found}")]
    ParamsLength {
        /// [`Vae::len`].
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A NaN or infinite value.
    #[error("{what} {index} is not finite")]
    NonFinite {
        /// What holds it.
        what: &'static str,
        /// Its index.
        index: usize,
    },
    /// Data whose length is not a multiple of the pixels per point.
    #[error("data of {len} values is not a whole number of rows of {data_dim} pixels")]
    DataLength {
        /// The data's length.
        len: usize,
        /// Pixels per data point.
        data_dim: usize,
    },
    /// A pixel outside `[0, 1]` (or NaN).
    #[error(
        "pixel {index} is {value}; a Bernoulli decoder takes values in [0, 1] (binarise first)"
    )]
    Pixel {
        /// Its index in the data.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// A count outside `0..=trials`, or not a whole number, under a
    /// binomial decoder.
    #[error(
        "pixel {index} is {value}; a binomial decoder of {trials} trials takes whole counts in 0..={trials}"
    )]
    Count {
        /// Its index in the data.
        index: usize,
        /// Its value.
        value: f64,
        /// The decoder's trials.
        trials: u32,
    },
    /// A saved VAE whose field is missing, unknown or invalid (or a file
    /// that is not JSON: the field `file`).
    #[error("field `{field}` of the saved VAE: {message}")]
    Field {
        /// The field: `format`, `architecture`, `params`, or one the format
        /// does not have.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// Reading or writing a file.
    #[error("cannot access {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        message: String,
    },
    /// A [`VaeNoise`] drawn for another batch size or bound.
    #[error("the noise was drawn for another batch size, M or K")]
    NoiseShape,
    /// Every step of an epoch had a non-finite bound or gradient.
    #[error("training diverged: every step of an epoch had a non-finite bound or gradient")]
    Diverged,
}
