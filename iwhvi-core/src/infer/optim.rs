//! Stochastic gradient optimizers. They *ascend*: `step` moves the
//! parameters along the gradient of the objective being maximized (a
//! bound on `log p(x)`).

use crate::input::InputError;
use crate::plate::vmath::{self, Simd};

/// A learning-rate schedule: the rate at step `t` (counted from 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LearningRate {
    /// The same rate at every step.
    Constant(f64),
    /// `initial · decay^(t / every)`, decaying smoothly.
    Exponential {
        /// The rate at step 0.
        initial: f64,
        /// The factor applied every `every` steps.
        decay: f64,
        /// Steps per factor.
        every: usize,
    },
    /// `initial / (1 + t / half_life)`: halves by `t = half_life`.
    InverseTime {
        /// The rate at step 0.
        initial: f64,
        /// Steps until it has halved.
        half_life: usize,
    },
}

impl LearningRate {
    /// The rate at step `t`.
    ///
    /// ```
    /// use iwhvi_core::optim::LearningRate;
    /// let lr = LearningRate::Exponential { initial: 0.1, decay: 0.5, every: 100 };
    /// assert!((lr.at(100) - 0.05).abs() < 1e-15);
    /// assert!((LearningRate::InverseTime { initial: 0.1, half_life: 10 }.at(10) - 0.05).abs() < 1e-15);
    /// ```
    pub fn at(&self, t: u64) -> f64 {
        match *self {
            LearningRate::Constant(lr) => lr,
            LearningRate::Exponential {
                initial,
                decay,
                every,
            } => initial * decay.powf(t as f64 / every.max(1) as f64),
            LearningRate::InverseTime { initial, half_life } => {
                initial / (1.0 + t as f64 / half_life.max(1) as f64)
            }
        }
    }

    /// Checks that every rate of the schedule is finite and positive (a
    /// negative rate would descend, minimizing the bound; zero would never
    /// move): `Constant(lr)` with `lr > 0`; `initial > 0`; an exponential
    /// `decay` in `(0, 1]` every `every ≥ 1` steps; a `half_life ≥ 1`.
    ///
    /// # Errors
    /// [`InputError::InvalidSetting`] naming the setting.
    ///
    /// ```
    /// use iwhvi_core::optim::LearningRate;
    /// assert!(LearningRate::Constant(0.01).check().is_ok());
    /// assert!(LearningRate::Constant(-0.01).check().is_err());
    /// assert!(LearningRate::Exponential { initial: 0.1, decay: 1.5, every: 10 }.check().is_err());
    /// ```
    pub fn check(&self) -> Result<(), InputError> {
        let positive = |setting: &'static str, value: f64| {
            if value > 0.0 && value.is_finite() {
                Ok(())
            } else {
                Err(InputError::InvalidSetting {
                    setting,
                    value: value.to_string(),
                    requirement: "a learning rate is finite and positive (a negative one minimizes the bound)",
                })
            }
        };
        let at_least_one = |setting: &'static str, value: usize| {
            if value >= 1 {
                Ok(())
            } else {
                Err(InputError::InvalidSetting {
                    setting,
                    value: value.to_string(),
                    requirement: "a schedule's period is at least one step",
                })
            }
        };
        match *self {
            LearningRate::Constant(lr) => positive("learning_rate", lr),
            LearningRate::Exponential {
                initial,
                decay,
                every,
            } => {
                positive("learning_rate.initial", initial)?;
                if !(decay > 0.0 && decay <= 1.0) {
                    return Err(InputError::InvalidSetting {
                        setting: "learning_rate.decay",
                        value: decay.to_string(),
                        requirement: "an exponential decay factor is in (0, 1]",
                    });
                }
                at_least_one("learning_rate.every", every)
            }
            LearningRate::InverseTime { initial, half_life } => {
                positive("learning_rate.initial", initial)?;
                at_least_one("learning_rate.half_life", half_life)
            }
        }
    }
}

/// Checks a gradient clipping norm: finite and positive.
fn check_clip_norm(clip_norm: Option<f64>) -> Result<(), InputError> {
    match clip_norm {
        Some(norm) if !(norm > 0.0 && norm.is_finite()) => Err(InputError::InvalidSetting {
            setting: "clip_norm",
            value: norm.to_string(),
            requirement: "a clipping norm is finite and positive",
        }),
        _ => Ok(()),
    }
}

/// Checks that `value` is in `[0, 1)`.
fn check_unit(
    setting: &'static str,
    value: f64,
    requirement: &'static str,
) -> Result<(), InputError> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(InputError::InvalidSetting {
            setting,
            value: value.to_string(),
            requirement,
        })
    }
}

/// An optimizer that ascends an objective.
pub trait Optimizer {
    /// One step along `gradient` (the gradient of the objective to
    /// maximize), updating `params` in place.
    fn step(&mut self, params: &mut [f64], gradient: &[f64]);

    /// Steps taken so far.
    fn steps(&self) -> u64;

    /// Checks the optimizer's settings; [`fit`](crate::fit::fit) calls it
    /// before the first step. The default accepts everything (for
    /// optimizers without settings to check).
    ///
    /// # Errors
    /// [`InputError::InvalidSetting`] naming the setting.
    fn check(&self) -> Result<(), InputError> {
        Ok(())
    }
}

/// The factor that scales `gradient` down to Euclidean norm `max_norm`
/// when it is longer (1 otherwise).
fn clip(gradient: &[f64], max_norm: Option<f64>) -> f64 {
    match max_norm {
        Some(max) => {
            let norm = gradient.iter().map(|g| g * g).sum::<f64>().sqrt();
            if norm > max { max / norm } else { 1.0 }
        }
        None => 1.0,
    }
}

/// Adam (Kingma & Ba, 2015) with bias correction, optional gradient-norm
/// clipping and a learning-rate schedule:
///
/// `m ← β₁ m + (1-β₁) g`, `v ← β₂ v + (1-β₂) g²`,
/// `θ ← θ + lr_t · (m / (1-β₁ᵗ)) / (√(v / (1-β₂ᵗ)) + ε)`.
///
/// ```
/// use iwhvi_core::optim::{Adam, Optimizer};
/// // Maximize -(x - 3)².
/// let mut adam = Adam::new(0.1);
/// let mut x = [0.0];
/// for _ in 0..500 {
///     let g = [-2.0 * (x[0] - 3.0)];
///     adam.step(&mut x, &g);
/// }
/// assert!((x[0] - 3.0).abs() < 1e-2);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    // Private, so that a setting changes only through the builders below;
    // `Optimizer::check` (run by `fit`) validates them together.
    learning_rate: LearningRate,
    beta1: f64,
    beta2: f64,
    epsilon: f64,
    clip_norm: Option<f64>,
    m: Vec<f64>,
    v: Vec<f64>,
    t: u64,
}

impl Adam {
    /// Adam with a constant learning rate and the usual defaults.
    pub fn new(learning_rate: f64) -> Self {
        Self::with_schedule(LearningRate::Constant(learning_rate))
    }

    /// Adam with a learning-rate schedule.
    pub fn with_schedule(learning_rate: LearningRate) -> Self {
        Self {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            clip_norm: None,
            m: Vec::new(),
            v: Vec::new(),
            t: 0,
        }
    }

    /// With gradient-norm clipping.
    pub fn with_clip_norm(mut self, max_norm: f64) -> Self {
        self.clip_norm = Some(max_norm);
        self
    }

    /// With the moment decay rates `β₁` and `β₂` (each in `[0, 1)`,
    /// checked by [`Optimizer::check`], which [`fit`](crate::fit::fit) runs).
    ///
    /// ```
    /// use iwhvi_core::optim::{Adam, Optimizer};
    /// let adam = Adam::new(0.01).with_betas(0.8, 0.99);
    /// assert_eq!((adam.beta1(), adam.beta2()), (0.8, 0.99));
    /// assert!(Adam::new(0.01).with_betas(1.0, 0.99).check().is_err());
    /// ```
    pub fn with_betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    /// With the denominator's `ε` (finite and positive, checked by
    /// [`Optimizer::check`]).
    ///
    /// ```
    /// use iwhvi_core::optim::{Adam, Optimizer};
    /// assert_eq!(Adam::new(0.01).with_epsilon(1e-6).epsilon(), 1e-6);
    /// assert!(Adam::new(0.01).with_epsilon(0.0).check().is_err());
    /// ```
    pub fn with_epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// The learning-rate schedule.
    pub fn learning_rate(&self) -> LearningRate {
        self.learning_rate
    }

    /// `β₁`, the first moment's decay rate (default 0.9).
    pub fn beta1(&self) -> f64 {
        self.beta1
    }

    /// `β₂`, the second moment's decay rate (default 0.999).
    pub fn beta2(&self) -> f64 {
        self.beta2
    }

    /// `ε` (default 1e-8).
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// The norm the gradient is clipped to first (default none).
    pub fn clip_norm(&self) -> Option<f64> {
        self.clip_norm
    }
}

/// [`Adam`]'s update of every parameter, run through [`vmath::dispatch`]
/// (an AVX2 or AVX-512 clone where the CPU has it: four or eight
/// parameters per instruction).
/// Each parameter's operations are the scalar loop's, in its order, so the
/// bits do not depend on the instruction set.
struct AdamUpdate<'a> {
    params: &'a mut [f64],
    gradient: &'a [f64],
    m: &'a mut [f64],
    v: &'a mut [f64],
    /// `[clipping scale, β₁, β₂, lr_t, 1-β₁ᵗ, 1-β₂ᵗ, ε]`, copied out of
    /// the optimizer so that the loop reads them from registers.
    settings: [f64; 7],
}

impl Simd for AdamUpdate<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let [scale, beta1, beta2, lr, c1, c2, epsilon] = self.settings;
        let (gradient, m, v) = (self.gradient, self.m, self.v);
        for (((p, &g), m), v) in self.params.iter_mut().zip(gradient).zip(m).zip(v) {
            let g = g * scale;
            *m = beta1 * *m + (1.0 - beta1) * g;
            *v = beta2 * *v + (1.0 - beta2) * g * g;
            *p += lr * (*m / c1) / ((*v / c2).sqrt() + epsilon);
        }
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &mut [f64], gradient: &[f64]) {
        if self.m.len() != params.len() {
            self.m = vec![0.0; params.len()];
            self.v = vec![0.0; params.len()];
        }
        self.t += 1;
        let scale = clip(gradient, self.clip_norm);
        let lr = self.learning_rate.at(self.t);
        let c1 = 1.0 - self.beta1.powf(self.t as f64);
        let c2 = 1.0 - self.beta2.powf(self.t as f64);
        vmath::dispatch(AdamUpdate {
            params,
            gradient,
            m: &mut self.m,
            v: &mut self.v,
            settings: [scale, self.beta1, self.beta2, lr, c1, c2, self.epsilon],
        });
    }

    fn steps(&self) -> u64 {
        self.t
    }

    /// The learning rate ([`LearningRate::check`]), `β₁, β₂ ∈ [0, 1)`,
    /// `ε > 0` finite, and a finite positive clipping norm.
    fn check(&self) -> Result<(), InputError> {
        self.learning_rate.check()?;
        check_unit("beta1", self.beta1, "Adam's β₁ is in [0, 1)")?;
        check_unit("beta2", self.beta2, "Adam's β₂ is in [0, 1)")?;
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return Err(InputError::InvalidSetting {
                setting: "epsilon",
                value: self.epsilon.to_string(),
                requirement: "Adam's ε is finite and positive",
            });
        }
        check_clip_norm(self.clip_norm)
    }
}

/// Stochastic gradient ascent with (heavy-ball) momentum:
/// `velocity ← momentum · velocity + g`, `θ ← θ + lr_t · velocity`.
///
/// ```
/// use iwhvi_core::optim::{Optimizer, Sgd};
/// let mut sgd = Sgd::new(0.1, 0.5);
/// let mut x = [0.0];
/// for _ in 0..200 {
///     let g = [-2.0 * (x[0] - 3.0)];
///     sgd.step(&mut x, &g);
/// }
/// assert!((x[0] - 3.0).abs() < 1e-6);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Sgd {
    // Private, so that a setting changes only through the constructors
    // and builders; `Optimizer::check` (run by `fit`) validates them.
    learning_rate: LearningRate,
    momentum: f64,
    clip_norm: Option<f64>,
    velocity: Vec<f64>,
    t: u64,
}

impl Sgd {
    /// SGD with a constant learning rate and the given momentum.
    pub fn new(learning_rate: f64, momentum: f64) -> Self {
        Self {
            learning_rate: LearningRate::Constant(learning_rate),
            momentum,
            clip_norm: None,
            velocity: Vec::new(),
            t: 0,
        }
    }

    /// SGD following a learning-rate schedule, with the given momentum.
    pub fn with_schedule(learning_rate: LearningRate, momentum: f64) -> Self {
        Self {
            learning_rate,
            ..Self::new(0.0, momentum)
        }
    }

    /// Clips the gradient to `max_norm` (Euclidean) before each step.
    pub fn with_clip_norm(mut self, max_norm: f64) -> Self {
        self.clip_norm = Some(max_norm);
        self
    }

    /// The learning-rate schedule.
    pub fn learning_rate(&self) -> LearningRate {
        self.learning_rate
    }

    /// The momentum coefficient (in `[0, 1)` for a fit to accept it).
    ///
    /// ```
    /// use iwhvi_core::optim::Sgd;
    /// assert_eq!(Sgd::new(0.1, 0.5).momentum(), 0.5);
    /// ```
    pub fn momentum(&self) -> f64 {
        self.momentum
    }

    /// The norm the gradient is clipped to first (default none).
    pub fn clip_norm(&self) -> Option<f64> {
        self.clip_norm
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &mut [f64], gradient: &[f64]) {
        if self.velocity.len() != params.len() {
            self.velocity = vec![0.0; params.len()];
        }
        self.t += 1;
        let scale = clip(gradient, self.clip_norm);
        let lr = self.learning_rate.at(self.t);
        for ((p, &g), v) in params.iter_mut().zip(gradient).zip(&mut self.velocity) {
            *v = self.momentum * *v + g * scale;
            *p += lr * *v;
        }
    }

    fn steps(&self) -> u64 {
        self.t
    }

    /// The learning rate ([`LearningRate::check`]), a momentum in
    /// `[0, 1)`, and a finite positive clipping norm.
    fn check(&self) -> Result<(), InputError> {
        self.learning_rate.check()?;
        check_unit("momentum", self.momentum, "a momentum is in [0, 1)")?;
        check_clip_norm(self.clip_norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adam's update through the AVX2 and AVX-512 clones equals the
    /// portable build bit for bit: 11 parameters (not a multiple of four,
    /// so a remainder loop runs), clipping on, several steps with changing
    /// gradients. A clone the CPU lacks falls back to the next one below.
    #[test]
    fn adam_is_the_same_bits_on_avx2_and_portable() {
        let run = |isa: vmath::Isa| -> Vec<u64> {
            vmath::with_isa(isa, || {
                let mut adam = Adam::new(0.05).with_clip_norm(3.0);
                let mut params: Vec<f64> = (0..11).map(|k| 0.3 * f64::from(k) - 1.2).collect();
                for step in 0..7 {
                    let gradient: Vec<f64> = params
                        .iter()
                        .zip(0..)
                        .map(|(p, k)| (p * 1.7 + f64::from(k + step)).sin() * 2.5 - 0.1 * p)
                        .collect();
                    adam.step(&mut params, &gradient);
                }
                params.iter().map(|p| p.to_bits()).collect()
            })
        };
        let portable = run(vmath::Isa::Portable);
        assert_eq!(run(vmath::Isa::Avx2), portable);
        assert_eq!(run(vmath::Isa::Avx512), portable);
        // The steps moved every parameter.
        let start: Vec<u64> = (0..11)
            .map(|k| (0.3 * f64::from(k) - 1.2).to_bits())
            .collect();
        assert!(portable.iter().zip(&start).all(|(a, b)| a != b));
    }

    #[test]
    fn clipping_bounds_the_first_step() {
        // Adam's first step moves each coordinate by lr regardless of scale;
        // SGD's moves by lr · g, so clipping shows there.
        let mut sgd = Sgd::new(1.0, 0.0);
        sgd.clip_norm = Some(1.0);
        let mut x = [0.0, 0.0];
        sgd.step(&mut x, &[30.0, 40.0]);
        assert!((x[0] - 0.6).abs() < 1e-15 && (x[1] - 0.8).abs() < 1e-15);
        let mut adam = Adam::new(0.1).with_clip_norm(1.0);
        let mut y = [0.0];
        adam.step(&mut y, &[1e6]);
        assert!((y[0] - 0.1).abs() < 1e-9);
        assert_eq!(adam.steps(), 1);
    }

    #[test]
    fn exponential_schedule_decays_smoothly() {
        let lr = LearningRate::Exponential {
            initial: 1.0,
            decay: 0.5,
            every: 2,
        };
        assert!((lr.at(1) - 0.5f64.sqrt()).abs() < 1e-15);
        assert_eq!(LearningRate::Constant(0.3).at(1000), 0.3);
    }
}
