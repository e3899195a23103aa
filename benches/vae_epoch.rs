//! Milliseconds per training epoch of the `vae_digits` VAE: 1,500
//! binarised 8×8 digits, minibatches of 100 (15 Adam steps), latent size
//! 2, every network one hidden layer of 64 tanh units, the Bernoulli
//! decoder, Adam 10⁻³ (`iwhvi::amortised::train` with `epochs = 1`: the
//! shuffle, the noise, the bound's forward and hand-written backward, the
//! Adam step). Variants, on one thread:
//!
//! - `gaussian_elbo`: the Gaussian encoder on the ELBO (`M = 1`), the
//!   workload of the peer `benches/peers/vae_numpyro.py` (the same VAE in
//!   JAX, `jit`-compiled `lax.scan` over the epoch's steps, float64);
//! - `gaussian_iwae`: the same on IWAE, `M = 5`;
//! - `hierarchical_diwhvi`: the hierarchical encoder (ψ of size 2, reverse
//!   model) on DIWHVI, `M = 5`, `K = 10`, as the example trains it.
//!
//! and, in the group `vae_epoch_macro`, the same VAE declared with
//! `#[variational]` (`iwhvi_examples::macro_vae`) and fitted by
//! `iwhvi::fit` on the ELBO (the tape engine, as `fit` chooses; the
//! networks are one vector op each on the tape), model and guide built
//! inside the timing (a copy of the images):
//!
//! - `macro_gaussian_elbo`: one step on all 1,500 images, with the fit's
//!   setup;
//! - `macro_gaussian_elbo_batched`: an epoch as the runtime's, 15 steps on
//!   minibatches of 100 (`fit`'s `batch_size`), with the fit's setup and
//!   its closing full-data bound (`Fit::full_bound`, 32 evaluations of the
//!   bound on all the images);
//!
//! and, to compare with the peer (which times an epoch after compilation
//! and warm-up), the marginal cost of an epoch and the one-off costs of a
//! fit apart, each by `iter_custom` from fits of `E` epochs of minibatch
//! steps (`t(E)` the wall time of `macro_vae::train_configured` with
//! `full_bound(false)`, `t_full(E)` with the full-data bound), each sample
//! `iters` pairs of fits run alternately:
//!
//! - `macro_epoch_marginal`: `t(2) − t(1)`, the 15 steps of one more
//!   epoch (the setup and everything outside the steps cancel);
//! - `macro_one_off_full_bound`: `t_full(1) − t(1)`, the closing bound;
//! - `macro_one_off_setup`: `2 t(1) − t(2)`, what a fit costs besides its
//!   steps and the bound (the model's and guide's construction, a copy of
//!   the images, the fit's checks, the noise's allocation).
//!
//! and, in the group `dense_rows`, the VAE's decoder (`2 → 64 tanh → 64`
//! logits, two `amortised::Dense` layers) on a minibatch's 100 rows of
//! latents, its value and tape gradient in the weights and the latents
//! (`TapeEngine`, the readout a fixed linear function of the logits):
//!
//! - `apply_rows`: each layer one `Dense::apply_rows` op over the rows
//!   (matrix products);
//! - `apply_per_row`: each layer one `Dense::apply` op per row (the
//!   decoder as a per-image factor calls it).
//!
//! ```sh
//! cargo bench --no-run --bench vae_epoch
//! taskset -c 1 target/release/deps/vae_epoch-HASH --bench
//! taskset -c 1 target/release/deps/vae_epoch-HASH --bench dense_rows
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use iwhvi::amortised::{Activation, Dense, EncoderKind, TrainSettings, VaeBound, train};
use iwhvi::objective::Diwhvi;
use iwhvi::tape::TapeEngine;
use iwhvi::{Differentiable, Scalar};
use iwhvi_examples::digits;
use iwhvi_examples::macro_vae::{self, MacroEncoder, MacroTraining};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn epochs(c: &mut Criterion) {
    let data = digits::load().expect("../shared/data/digits");
    let mut group = c.benchmark_group("vae_epoch");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    let variants = [
        (
            "gaussian_elbo",
            EncoderKind::Gaussian,
            VaeBound { outer: 1, inner: 0 },
        ),
        (
            "gaussian_iwae",
            EncoderKind::Gaussian,
            VaeBound { outer: 5, inner: 0 },
        ),
        (
            "hierarchical_diwhvi",
            EncoderKind::Hierarchical { mixing_dim: 2 },
            VaeBound {
                outer: 5,
                inner: 10,
            },
        ),
    ];
    for (name, kind, bound) in variants {
        let vae = digits::vae(2, kind).expect("a valid architecture");
        let init = vae.init_params(&mut StdRng::seed_from_u64(1));
        let settings = TrainSettings {
            epochs: 1,
            batch_size: digits::BATCH,
            bound,
            learning_rate: 1e-3,
            seed: 2,
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut params = init.clone();
                black_box(
                    train(&vae, &mut params, &data.train.pixels, &settings).expect("an epoch"),
                );
                params
            })
        });
    }
    group.finish();
}

/// An epoch of the `#[variational]` VAE on the ELBO: one full-data step,
/// 15 minibatch steps (each fit with its setup and, for the minibatches,
/// its closing full-data bound), then the marginal epoch and the one-off
/// costs apart (see the module's doc).
fn macro_epoch(c: &mut Criterion) {
    let data = digits::load().expect("../shared/data/digits");
    let mut group = c.benchmark_group("vae_epoch_macro");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    let settings = MacroTraining {
        encoder: MacroEncoder::Gaussian,
        objective: Diwhvi::elbo(),
        steps: 1,
        batch_size: None,
        learning_rate: 1e-3,
        seed: 2,
    };
    group.bench_function("macro_gaussian_elbo", |b| {
        b.iter(|| {
            black_box(macro_vae::train(&data.train.pixels, 1, settings).expect("an epoch")).params
        })
    });
    let epoch = data.train.pixels.len() / digits::PIXELS / digits::BATCH;
    let batched = MacroTraining {
        steps: epoch,
        batch_size: Some(digits::BATCH),
        ..settings
    };
    group.bench_function("macro_gaussian_elbo_batched", |b| {
        b.iter(|| {
            black_box(macro_vae::train(&data.train.pixels, 1, batched).expect("an epoch")).params
        })
    });
    // `epochs` epochs of minibatch steps, with or without the closing
    // full-data bound: its wall time.
    let timed = |epochs: usize, full_bound: bool| {
        let settings = MacroTraining {
            steps: epochs * epoch,
            ..batched
        };
        let started = Instant::now();
        let trained = macro_vae::train_configured(&data.train.pixels, 1, settings, |c| {
            c.full_bound(full_bound)
        })
        .expect("the epochs");
        let elapsed = started.elapsed();
        black_box(trained.params);
        elapsed
    };
    // Σ first − Σ second over `iters` pairs (zero if the second is larger).
    let difference = |iters: u64, first: &dyn Fn() -> Duration, second: &dyn Fn() -> Duration| {
        let (mut a, mut b) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..iters {
            a += first();
            b += second();
        }
        a.saturating_sub(b)
    };
    group.bench_function("macro_epoch_marginal", |b| {
        b.iter_custom(|iters| difference(iters, &|| timed(2, false), &|| timed(1, false)))
    });
    group.bench_function("macro_one_off_full_bound", |b| {
        b.iter_custom(|iters| difference(iters, &|| timed(1, true), &|| timed(1, false)))
    });
    group.bench_function("macro_one_off_setup", |b| {
        b.iter_custom(|iters| {
            difference(iters, &|| timed(1, false) + timed(1, false), &|| {
                timed(2, false)
            })
        })
    });
    group.finish();
}

/// The decoder `2 → 64 tanh → 64` on `ROWS` rows of latents, `p = (W₀,
/// b₀, W₁, b₁, z)`: by `Dense::apply_rows` or by `Dense::apply` per row.
struct Decoder {
    batched: bool,
}

const ROWS: usize = 100;
const HIDDEN: usize = 64;
const LATENT: usize = 2;

impl Decoder {
    const LAYERS: [Dense; 2] = [
        Dense::new(LATENT, HIDDEN, Some(Activation::Tanh)),
        Dense::new(HIDDEN, digits::PIXELS, None),
    ];

    fn len() -> usize {
        Self::LAYERS.iter().map(Dense::len).sum::<usize>() + ROWS * LATENT
    }
}

impl Differentiable for Decoder {
    fn eval<T: Scalar>(&self, p: &[T]) -> T {
        let (w0, rest) = p.split_at(LATENT * HIDDEN);
        let (b0, rest) = rest.split_at(HIDDEN);
        let (w1, rest) = rest.split_at(HIDDEN * digits::PIXELS);
        let (b1, z) = rest.split_at(digits::PIXELS);
        let [first, second] = Self::LAYERS;
        let (mut h, mut logits) = (Vec::new(), Vec::new());
        if self.batched {
            first.apply_rows(w0, b0, z, ROWS, &mut h);
            second.apply_rows(w1, b1, &h, ROWS, &mut logits);
        } else {
            let (mut row_h, mut row_logits) = (Vec::new(), Vec::new());
            for row in z.chunks_exact(LATENT) {
                first.apply(w0, b0, row, &mut row_h);
                second.apply(w1, b1, &row_h, &mut row_logits);
                logits.extend_from_slice(&row_logits);
            }
        }
        // A fixed linear readout, one fused node on the tape.
        let readout: Vec<T> = (0..logits.len())
            .map(|k| T::constant(((k % 7) as f64 - 3.0) * 0.1))
            .collect();
        T::dot(&logits, &readout)
    }
}

/// The decoder's value and tape gradient on a minibatch, by matrix
/// products over the rows against a layer op per row.
fn dense_rows(c: &mut Criterion) {
    let mut group = c.benchmark_group("dense_rows");
    let p: Vec<f64> = (0..Decoder::len())
        .map(|k| ((k * 37 % 101) as f64 / 101.0 - 0.5) * 0.3)
        .collect();
    let mut grad = vec![0.0; p.len()];
    for (name, batched) in [("apply_rows", true), ("apply_per_row", false)] {
        let decoder = Decoder { batched };
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(TapeEngine.value_and_gradient_into(&decoder, black_box(&p), &mut grad))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, epochs, macro_epoch, dense_rows);
criterion_main!(benches);
