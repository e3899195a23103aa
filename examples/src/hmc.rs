//! A reference posterior from outside variational inference: plain
//! Hamiltonian Monte Carlo (static trajectory length, leapfrog, Metropolis
//! correction) in the coordinates that whiten the Laplace approximation,
//! `u = û + L w`, so that one step size fits every direction near the mode.
//! Used by the `varying_slopes` example to check a fit against draws that
//! owe nothing to the guide.
//!
//! Each iteration draws momenta `p ~ N(0, I)`, a step size jittered
//! uniformly in `[0.8 ε, 1.2 ε]` and a trajectory of `leapfrog` steps, and
//! accepts the end point with probability `min(1, exp(−ΔH))`. Chains start
//! at a draw from the Laplace approximation and run `warmup` iterations
//! that are thrown away.

use iwhvi::gradient::{Differentiable, ForwardEngine, Parallelism};
use iwhvi::laplace::Laplace;
use iwhvi::model::Model;
use iwhvi::posterior::Draws;
use iwhvi::{Scalar, distributions::Normal};
use rand::distr::Distribution;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// The settings of [`hmc`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HmcSettings {
    /// Independent chains.
    pub chains: usize,
    /// Iterations thrown away at the start of each chain.
    pub warmup: usize,
    /// Iterations kept per chain.
    pub draws: usize,
    /// The leapfrog step size `ε` in whitened coordinates.
    pub step_size: f64,
    /// Leapfrog steps per iteration.
    pub leapfrog: usize,
    /// Seed of the momenta, step sizes, starts and acceptances.
    pub seed: u64,
}

/// The draws of [`hmc`] and how the sampler fared.
#[derive(Clone, Debug)]
pub struct HmcRun {
    /// `chains × draws` draws, chain after chain.
    pub draws: Draws,
    /// The fraction of iterations accepted after warmup.
    pub acceptance: f64,
    /// Iterations whose energy error exceeded 1000 (or was not finite).
    pub divergent: usize,
}

/// `log p(x, u)` as a [`Differentiable`].
struct LogJoint<'a, Mo>(&'a Mo);

impl<Mo: Model> Differentiable for LogJoint<'_, Mo> {
    fn eval<T: Scalar>(&self, u: &[T]) -> T {
        self.0.log_joint(u)
    }
}

/// Hamiltonian Monte Carlo on `model` whitened by `laplace` (see the
/// module's documentation). Deterministic for a seed.
pub fn hmc<Mo: Model>(model: &Mo, laplace: &Laplace, settings: HmcSettings) -> HmcRun {
    let d = laplace.dim();
    let l = &laplace.scale_tril;
    let to_u = |w: &[f64]| -> Vec<f64> {
        (0..d)
            .map(|i| laplace.mode[i] + (0..=i).map(|j| l[i * d + j] * w[j]).sum::<f64>())
            .collect()
    };
    let engine = ForwardEngine::<16>::new().with_parallelism(Parallelism::SingleThread);
    let target = LogJoint(model);
    // log p and its gradient in w: ∇_w = Lᵀ ∇_u.
    let value_and_gradient = |w: &[f64]| -> (f64, Vec<f64>) {
        let (value, gu) = engine.value_and_gradient(&target, &to_u(w));
        let gw = (0..d)
            .map(|j| (j..d).map(|i| l[i * d + j] * gu[i]).sum::<f64>())
            .collect();
        (value, gw)
    };
    let standard = Normal::new(0.0, 1.0).expect("a valid normal");
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let mut rows = Vec::with_capacity(settings.chains * settings.draws);
    let layout = model.layout();
    let (mut accepted, mut divergent) = (0usize, 0usize);
    for _ in 0..settings.chains {
        let mut w: Vec<f64> = (0..d).map(|_| standard.sample(&mut rng)).collect();
        let (mut value, mut grad) = value_and_gradient(&w);
        for iteration in 0..settings.warmup + settings.draws {
            let eps = settings.step_size * rng.random_range(0.8..1.2);
            let p0: Vec<f64> = (0..d).map(|_| standard.sample(&mut rng)).collect();
            let (mut w1, mut p, mut g1, mut v1) = (w.clone(), p0.clone(), grad.clone(), value);
            for _ in 0..settings.leapfrog {
                for i in 0..d {
                    p[i] += 0.5 * eps * g1[i];
                    w1[i] += eps * p[i];
                }
                (v1, g1) = value_and_gradient(&w1);
                for i in 0..d {
                    p[i] += 0.5 * eps * g1[i];
                }
            }
            let kinetic = |p: &[f64]| 0.5 * p.iter().map(|x| x * x).sum::<f64>();
            let delta = (v1 - kinetic(&p)) - (value - kinetic(&p0));
            let keep = iteration >= settings.warmup;
            if !delta.is_finite() || delta < -1000.0 {
                divergent += usize::from(keep);
            }
            if delta.is_finite() && rng.random::<f64>().ln() < delta {
                (w, value, grad) = (w1, v1, g1);
                accepted += usize::from(keep);
            }
            if keep {
                rows.push(
                    layout
                        .constrain(&to_u(&w))
                        .expect("a draw has the layout's length"),
                );
            }
        }
    }
    HmcRun {
        draws: Draws::from_latents(&rows),
        acceptance: accepted as f64 / (settings.chains * settings.draws).max(1) as f64,
        divergent,
    }
}
