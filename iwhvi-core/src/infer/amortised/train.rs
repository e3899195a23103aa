//! Minibatch training by Adam and the test log-likelihood estimate.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;

use super::AmortisedError;
use super::vae::{Vae, VaeBound, Workspace, check_bound};
use crate::optim::{Adam, Optimizer};

fn no_data() -> AmortisedError {
    AmortisedError::InvalidSetting {
        setting: "data",
        value: "0 rows".into(),
        requirement: "at least one data point",
    }
}

/// Settings of [`train`].
///
/// ```
/// use iwhvi_core::amortised::{TrainSettings, VaeBound};
/// let s = TrainSettings { epochs: 5, bound: VaeBound { outer: 5, inner: 0 }, ..TrainSettings::default() };
/// assert_eq!(s.batch_size, 100);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainSettings {
    /// Passes over the data (default 100).
    pub epochs: usize,
    /// Data points per step (default 100); the last batch of an epoch
    /// holds the remainder.
    pub batch_size: usize,
    /// `M` and `K` of the training bound (default the ELBO, `M = 1`).
    pub bound: VaeBound,
    /// Adam's learning rate (default 10⁻³).
    pub learning_rate: f64,
    /// Seeds the shuffles and the noise (default 0): a seed reproduces a
    /// run bit for bit.
    pub seed: u64,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            epochs: 100,
            batch_size: 100,
            bound: VaeBound { outer: 1, inner: 0 },
            learning_rate: 1e-3,
            seed: 0,
        }
    }
}

/// What [`train`] leaves behind.
///
/// ```
/// let r = iwhvi_core::amortised::TrainReport::default();
/// assert_eq!(r.steps, 0);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainReport {
    /// Per epoch, the mean over its steps of the minibatch bound per data
    /// point, `(1/B) Σ_{n ∈ batch} bound(x_n)` (an unbiased estimate of
    /// the full-data bound per point at the parameters of each step).
    pub epoch_bounds: Vec<f64>,
    /// Adam steps taken.
    pub steps: u64,
    /// Steps skipped because the bound or its gradient was not finite.
    pub rejected: u64,
}

/// Trains all parameters of `vae` (encoder, reverse model, decoder)
/// jointly by Adam on the reparameterised gradient of the minibatch bound
/// scaled by `N / B`,
///
/// `Ĵ = (N / B) Σ_{n ∈ batch} bound(x_n)`,   `E Ĵ = Σ_{n=1..N} E bound(x_n)`,
///
/// with a fresh shuffle of the `N` rows of `data` (`N × data_dim`) each
/// epoch and fresh noise each step, both from `StdRng::seed_from_u64(seed)`.
/// Single-threaded: a seed gives the same bits on any machine with the
/// same instruction set. A step whose bound or gradient is not finite is
/// skipped (counted in [`TrainReport::rejected`]).
///
/// # Errors
/// [`AmortisedError`] for bad parameters, data or settings, and
/// [`AmortisedError::Diverged`] when every step of an epoch was rejected.
///
/// ```
/// use iwhvi_core::amortised::{train, Activation, EncoderKind, TrainSettings, Vae};
/// use iwhvi_core::rand::{SeedableRng, rngs::StdRng};
/// let vae = Vae::new(4, 1, EncoderKind::Gaussian, &[8], Activation::Tanh).unwrap();
/// let data: Vec<f64> = (0..40).map(|i| ((i / 4 + i) % 2) as f64).collect();
/// let mut params = vae.init_params(&mut StdRng::seed_from_u64(0));
/// let settings = TrainSettings { epochs: 50, batch_size: 5, learning_rate: 1e-2, ..TrainSettings::default() };
/// let report = train(&vae, &mut params, &data, &settings).unwrap();
/// assert_eq!(report.steps, 100);
/// assert!(report.epoch_bounds[49] > report.epoch_bounds[0]);
/// ```
pub fn train(
    vae: &Vae,
    params: &mut [f64],
    data: &[f64],
    settings: &TrainSettings,
) -> Result<TrainReport, AmortisedError> {
    vae.check_params(params)?;
    let n = vae.check_data(data)?;
    check_bound(settings.bound)?;
    if n == 0 {
        return Err(no_data());
    }
    if settings.batch_size == 0 {
        return Err(AmortisedError::InvalidSetting {
            setting: "batch_size",
            value: "0".into(),
            requirement: "at least one data point per step",
        });
    }
    let mut adam = Adam::new(settings.learning_rate);
    adam.check().map_err(|_| AmortisedError::InvalidSetting {
        setting: "learning_rate",
        value: settings.learning_rate.to_string(),
        requirement: "finite and positive",
    })?;
    let dd = vae.data_dim();
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let mut order: Vec<usize> = (0..n).collect();
    let mut batch = Vec::with_capacity(settings.batch_size * dd);
    let mut grad = vec![0.0; vae.len()];
    let mut ws = Workspace::default();
    let mut report = TrainReport::default();
    for _ in 0..settings.epochs {
        order.shuffle(&mut rng);
        let (mut sum, mut count) = (0.0, 0usize);
        for chunk in order.chunks(settings.batch_size) {
            batch.clear();
            for &i in chunk {
                batch.extend_from_slice(&data[i * dd..(i + 1) * dd]);
            }
            let b = chunk.len();
            let noise = vae.draw_noise(b, settings.bound, &mut rng);
            grad.fill(0.0);
            let scale = n as f64 / b as f64;
            let value = vae.bound_and_gradient(
                params,
                &batch,
                settings.bound,
                &noise,
                scale,
                Some(&mut grad),
                &mut ws,
            )?;
            if !value.is_finite() || grad.iter().any(|g| !g.is_finite()) {
                report.rejected += 1;
                continue;
            }
            adam.step(params, &grad);
            report.steps += 1;
            sum += value / b as f64;
            count += 1;
        }
        if count == 0 && n > 0 {
            return Err(AmortisedError::Diverged);
        }
        report.epoch_bounds.push(sum / count.max(1) as f64);
    }
    Ok(report)
}

/// A per-data-point estimate over a data set: mean and standard error.
///
/// ```
/// let e = iwhvi_core::amortised::Estimate::from_points(vec![1.0, 3.0]);
/// assert_eq!(e.mean, 2.0);
/// assert!((e.standard_error - 1.0).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// `(1/n) Σ_i v_i`.
    pub mean: f64,
    /// `sd(v) / √n` (sample standard deviation, `n − 1` divisor).
    pub standard_error: f64,
    /// The values `v_i`.
    pub per_point: Vec<f64>,
}

impl Estimate {
    /// Mean and standard error of `values`.
    ///
    /// ```
    /// let e = iwhvi_core::amortised::Estimate::from_points(vec![5.0]);
    /// assert_eq!((e.mean, e.standard_error), (5.0, 0.0));
    /// ```
    pub fn from_points(values: Vec<f64>) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = if values.len() > 1 {
            values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Self {
            mean,
            standard_error: (var / n).sqrt(),
            per_point: values,
        }
    }
}

/// The test log-likelihood per data point, estimated by the bound with
/// many samples: for each row `x` of `data`,
///
/// `log p̂(x) = logsumexp_{m=1..M} [log p_θ(x | z_m) + log p(z_m) − U_K(z_m)] − log M`,
///
/// IWAE's estimate for a Gaussian encoder (`U = log q(z | x)` exactly),
/// and for a hierarchical one DIWHVI's, with the *upper* bound `U_K` on
/// `log q(z | x)` (`E U_K ≥ log q`): a larger `log q` only lowers the
/// estimate, so `E log p̂(x) ≤ log p(x)` stays a lower bound, tightening
/// as `M` and `K` grow. Points run on rayon's pool, each with its own
/// generator `StdRng::seed_from_u64(seed + i)`, and the results are
/// collected in order: the same bits on any number of threads.
///
/// # Errors
/// [`AmortisedError`] for bad parameters, no data or bad data, or `M = 0`.
///
/// ```
/// use iwhvi_core::amortised::{log_likelihood, Activation, EncoderKind, Vae, VaeBound};
/// use iwhvi_core::rand::{SeedableRng, rngs::StdRng};
/// let vae = Vae::new(4, 1, EncoderKind::Gaussian, &[8], Activation::Tanh).unwrap();
/// let params = vae.init_params(&mut StdRng::seed_from_u64(0));
/// let data = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
/// let ll = log_likelihood(&vae, &params, &data, VaeBound { outer: 100, inner: 0 }, 1).unwrap();
/// assert_eq!(ll.per_point.len(), 2);
/// assert!(ll.mean < 0.0);
/// ```
pub fn log_likelihood(
    vae: &Vae,
    params: &[f64],
    data: &[f64],
    bound: VaeBound,
    seed: u64,
) -> Result<Estimate, AmortisedError> {
    vae.check_params(params)?;
    let n = vae.check_data(data)?;
    check_bound(bound)?;
    if n == 0 {
        return Err(no_data());
    }
    let dd = vae.data_dim();
    // Outer samples per call, so that a call's inner rows stay near 2¹⁶.
    let chunk = (65_536 / (bound.inner + 1)).clamp(1, bound.outer);
    let points: Vec<f64> = (0..n)
        .into_par_iter()
        .map_init(Workspace::default, |ws, i| {
            let x = &data[i * dd..(i + 1) * dd];
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64));
            let mut log_w = Vec::with_capacity(bound.outer);
            let mut done = 0;
            while done < bound.outer {
                let m = chunk.min(bound.outer - done);
                let b = VaeBound {
                    outer: m,
                    inner: bound.inner,
                };
                let noise = vae.draw_noise(1, b, &mut rng);
                vae.bound_and_gradient(params, x, b, &noise, 1.0, None, ws)
                    .expect("checked above");
                log_w.extend_from_slice(ws.log_weights());
                done += m;
            }
            crate::special::log_sum_exp(&log_w) - (bound.outer as f64).ln()
        })
        .collect();
    Ok(Estimate::from_points(points))
}
