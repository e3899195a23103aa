//! The model's value and `u`-gradient at each outer draw, computed once per
//! step and chained into every parameter pass.

use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::StepNoise;
use super::weights::{Buffers, Stop};
use crate::gradient::{Differentiable, GradientEngine, Parallelism};
use crate::guide::HierarchicalGuide;
use crate::model::Model;
use crate::scalar::Scalar;

/// `log p(x, u_m)` and `∇_u log p(x, u_m)` at each outer draw, computed
/// once per step so that every parameter pass reuses them (the
/// performance path: data size then costs `O(N·D)` per step, not
/// `O(N·P)`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChainedModel {
    values: Vec<f64>,
    gradients: Vec<Vec<f64>>,
    /// `D_θ`: each gradient holds `∇ᵤ` then `∇_ϑ` (the learned
    /// parameters'; 0 without).
    theta_dim: usize,
}

/// A worker's buffers and its `(u, ϑ)` point when there are learned
/// parameters (filled in place, not allocated per draw).
type State = (Buffers<f64>, Vec<f64>);

/// One draw's work: `(state, i, value, gradient)`.
type DrawJob<'a> = dyn Fn(&mut State, usize, &mut f64, &mut [f64]) + Sync + 'a;

/// Runs `job(state, i, &mut values[i], &mut gradients[i])` for every draw
/// `i` on rayon's pool, each worker with states made by `init` and in the
/// caller's plate-cache scope.
///
/// Not generic, so rayon's splitting and job machinery is compiled once,
/// here, rather than once per (model, guide, engine) in every crate that
/// fits a model. Which worker runs a draw changes nothing it computes: each
/// draw rewrites every buffer it reads.
fn parallel_draws(
    values: &mut [f64],
    gradients: &mut [Vec<f64>],
    init: &(dyn Fn() -> State + Sync),
    job: &DrawJob<'_>,
) {
    let scope = crate::plate::affine_scope();
    values
        .par_iter_mut()
        .zip(gradients.par_iter_mut())
        .enumerate()
        .for_each_init(init, |state, (i, (value, gradient))| {
            crate::plate::within_scope(scope.clone(), || job(state, i, value, gradient));
        });
}

/// Under [`Parallelism::Auto`], [`ChainedModel::new_with_parallelism`]
/// spreads the outer samples after the first over rayon's pool only when
/// the first one, timed, says the rest would take longer than this on one
/// core (the threshold of the forward engine's passes: waking the pool
/// costs tens of microseconds). The timing decides only where the samples
/// run, never what they compute.
pub const CHAINED_PARALLEL_THRESHOLD: Duration = crate::gradient::PARALLEL_THRESHOLD;

impl ChainedModel {
    /// Evaluates the model and its `u`-gradient at each outer draw of the
    /// step's noise under `params`, on the calling thread
    /// ([`ChainedModel::new_with_parallelism`] with
    /// [`Parallelism::SingleThread`]).
    ///
    /// # Panics
    /// When the arguments do not fit together (a guide for another `D`
    /// than the model's, parameters of another length than the guide's,
    /// noise drawn for another guide), on a slice index: this is the
    /// unchecked inner step of loops that checked once, as
    /// [`value_and_gradient`](crate::objective::value_and_gradient);
    /// [`check_dimensions`](crate::input::check_dimensions),
    /// [`check_params`](crate::input::check_params) and
    /// [`DiwhviObjective::try_new`](crate::objective::DiwhviObjective::try_new)
    /// check them.
    pub fn new<Mo: Model, G: HierarchicalGuide, E: GradientEngine>(
        model: &Mo,
        guide: &G,
        params: &[f64],
        noise: &StepNoise,
        engine: &E,
    ) -> Self {
        Self::new_with_parallelism(
            model,
            guide,
            params,
            noise,
            engine,
            Parallelism::SingleThread,
        )
    }

    /// [`ChainedModel::new`] with the outer samples on several threads:
    /// one engine call per outer sample `m`, written to slot `m` and never
    /// combined with another, so the result is the same bits however the
    /// samples were spread. [`Parallelism::SingleThread`] never spawns;
    /// [`Parallelism::AllCores`] runs the samples after the first on
    /// rayon's pool; [`Parallelism::Auto`] does so when the first sample's
    /// time, times `M − 1`, reaches [`CHAINED_PARALLEL_THRESHOLD`].
    ///
    /// ```
    /// use iwhvi_core::Scalar;
    /// use iwhvi_core::gradient::{ForwardEngine, Parallelism};
    /// use iwhvi_core::guide::{HierarchicalGuide, MeanField};
    /// use iwhvi_core::model::{LatentSpec, Layout, Model};
    /// use iwhvi_core::objective::{ChainedModel, Diwhvi, StepNoise};
    /// use iwhvi_core::transforms::Transform;
    /// use rand::SeedableRng;
    ///
    /// struct Normal;
    /// impl Model for Normal {
    ///     fn layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::vector("x", 2, Transform::Identity)])
    ///     }
    ///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
    ///         -(u[0].square() + u[1].square()) * 0.5
    ///     }
    /// }
    ///
    /// let guide = MeanField::new(2);
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let params = guide.init_params(&mut rng);
    /// let noise = StepNoise::draw(&guide, Diwhvi::new(8, 0), &mut rng);
    /// let engine = ForwardEngine::<2>::new();
    /// let one = ChainedModel::new(&Normal, &guide, &params, &noise, &engine);
    /// let all = ChainedModel::new_with_parallelism(
    ///     &Normal, &guide, &params, &noise, &engine, Parallelism::AllCores,
    /// );
    /// assert_eq!(one, all);
    /// ```
    pub fn new_with_parallelism<Mo: Model, G: HierarchicalGuide, E: GradientEngine>(
        model: &Mo,
        guide: &G,
        params: &[f64],
        noise: &StepNoise,
        engine: &E,
        parallelism: Parallelism,
    ) -> Self {
        Self::new_with_theta(model, guide, params, &[], noise, engine, parallelism)
    }

    /// [`ChainedModel::new_with_parallelism`] for a model with learned
    /// parameters at the unconstrained values `theta`
    /// ([`Model::log_joint_theta`]): each draw's gradient is taken in
    /// `(u, ϑ)` at once, `∇ᵤ` chained into the guide's parameters as
    /// before and `∇_ϑ log p_θ(x, u_m)` kept for
    /// [`ChainedModel::theta_gradient`]. With `theta` empty this is
    /// [`ChainedModel::new_with_parallelism`], bit for bit.
    ///
    /// ```
    /// use iwhvi_core::Scalar;
    /// use iwhvi_core::gradient::{ForwardEngine, Parallelism};
    /// use iwhvi_core::guide::{HierarchicalGuide, MeanField};
    /// use iwhvi_core::model::{LatentSpec, Layout, Model};
    /// use iwhvi_core::objective::{ChainedModel, Diwhvi, StepNoise};
    /// use iwhvi_core::transforms::Transform;
    /// use rand::SeedableRng;
    ///
    /// /// z ~ N(mu, 1) with mu learned: ∂/∂mu log p = z − mu.
    /// struct Prior;
    /// impl Model for Prior {
    ///     fn layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("z", Transform::Identity)])
    ///     }
    ///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
    ///         self.log_joint_theta(&[T::constant(0.0)], u)
    ///     }
    ///     fn theta_layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("mu", Transform::Identity)])
    ///     }
    ///     fn log_joint_theta<T: Scalar>(&self, theta: &[T], u: &[T]) -> T {
    ///         -(u[0] - theta[0]).square() * 0.5
    ///     }
    /// }
    ///
    /// let guide = MeanField::new(1);
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let params = guide.init_params(&mut rng);
    /// let noise = StepNoise::draw(&guide, Diwhvi::new(2, 0), &mut rng);
    /// let engine = ForwardEngine::<2>::new();
    /// let chained = ChainedModel::new_with_theta(
    ///     &Prior, &guide, &params, &[0.25], &noise, &engine, Parallelism::SingleThread,
    /// );
    /// // ∂/∂mu = z − mu = −∂/∂z at each draw.
    /// for m in 0..2 {
    ///     assert_eq!(chained.theta_gradient(m), &[-chained.u_gradient(m)[0]]);
    /// }
    /// ```
    pub fn new_with_theta<Mo: Model, G: HierarchicalGuide, E: GradientEngine>(
        model: &Mo,
        guide: &G,
        params: &[f64],
        theta: &[f64],
        noise: &StepNoise,
        engine: &E,
        parallelism: Parallelism,
    ) -> Self {
        let m = noise.objective().m();
        let big_d = guide.latent_dim();
        let theta_dim = theta.len();
        let mut values = vec![0.0; m];
        let mut gradients = vec![vec![0.0; big_d + theta_dim]; m];
        let sample =
            |(buffers, point): &mut State, m: usize, value: &mut f64, gradient: &mut [f64]| {
                buffers.draw_outer(guide, params, noise, m);
                let prior_noise = noise.prior_noise(m);
                *value = if theta.is_empty() {
                    let joint = LogJointNoise {
                        model,
                        noise: prior_noise,
                    };
                    engine.value_and_gradient_into(&joint, &buffers.u, gradient)
                } else {
                    point.clear();
                    point.extend(buffers.u.iter().chain(theta));
                    let joint = LogJointTheta {
                        model,
                        dim: big_d,
                        noise: prior_noise,
                    };
                    engine.value_and_gradient_into(&joint, point, gradient)
                };
            };
        let new_buffers = || -> State { (Buffers::new(guide, params, Stop::Nothing), Vec::new()) };
        let (Some((value0, values_rest)), Some((gradient0, gradients_rest))) =
            (values.split_first_mut(), gradients.split_first_mut())
        else {
            return Self {
                values,
                gradients,
                theta_dim,
            };
        };
        let mut buffers = new_buffers();
        let started = Instant::now();
        sample(&mut buffers, 0, value0, gradient0);
        let inline = parallelism.runs_inline(started.elapsed(), m - 1);
        if inline {
            for (i, (value, gradient)) in values_rest.iter_mut().zip(gradients_rest).enumerate() {
                sample(&mut buffers, i + 1, value, gradient);
            }
        } else {
            parallel_draws(
                values_rest,
                gradients_rest,
                &new_buffers,
                &|state, i, value, gradient| {
                    sample(state, i + 1, value, gradient);
                },
            );
        }
        Self {
            values,
            gradients,
            theta_dim,
        }
    }

    /// `∇ᵤ log p(x, u_m)` at outer draw `m`.
    pub fn u_gradient(&self, m: usize) -> &[f64] {
        let g = &self.gradients[m];
        &g[..g.len() - self.theta_dim]
    }

    /// `∇_ϑ log p_θ(x, u_m)` at outer draw `m`, in the learned
    /// parameters' unconstrained coordinates (empty without learned
    /// parameters; see [`ChainedModel::new_with_theta`]).
    pub fn theta_gradient(&self, m: usize) -> &[f64] {
        let g = &self.gradients[m];
        &g[g.len() - self.theta_dim..]
    }

    /// `log p(x, u_m)`, the value alone.
    pub(super) fn value(&self, m: usize) -> f64 {
        self.values[m]
    }

    /// `∇ᵤ log p(x, u_m)`.
    pub(super) fn gradient(&self, m: usize) -> &[f64] {
        self.u_gradient(m)
    }

    /// `log p(x, u)` as a scalar whose derivatives are `∇_u log p · u̇`:
    /// the value computed once, the tangent chained through `u`'s, as one
    /// [`Scalar::with_partials`] node.
    ///
    /// The value is `log p + Σᵢ (uᵢ − uᵢ) · gᵢ` in `f64`, as the scalar
    /// formula `lp += (uᵢ − value(uᵢ)) · gᵢ` this replaced computed it: `log p`
    /// itself, bit for bit, except where a `uᵢ` or `gᵢ` is not finite (NaN
    /// then, as before). The tangent is the same sum in the same order.
    #[inline]
    pub(super) fn log_joint<T: Scalar>(&self, m: usize, u: &[T]) -> T {
        let gradient = &self.gradients[m];
        let value = u
            .iter()
            .zip(gradient)
            .fold(self.values[m], |lp, (&ui, &g)| {
                lp + (ui.value() - ui.value()) * g
            });
        let n = u.len().min(gradient.len());
        T::with_partials(value, &u[..n], &gradient[..n])
    }
}

/// A model's log joint as a [`Differentiable`] of `(u, ϑ)`: the first
/// `dim` inputs are `u`, the rest the learned parameters.
/// `noise` drives its semi-implicit priors ([`Model::log_joint_theta_with_noise`]).
struct LogJointTheta<'a, Mo> {
    model: &'a Mo,
    dim: usize,
    noise: &'a [f64],
}

impl<Mo: Model> Differentiable for LogJointTheta<'_, Mo> {
    fn eval<T: Scalar>(&self, x: &[T]) -> T {
        let (u, theta) = x.split_at(self.dim);
        self.model.log_joint_theta_with_noise(theta, u, self.noise)
    }
}

/// A model's log joint with its semi-implicit priors driven by `noise`
/// ([`Model::log_joint_with_noise`]), as a [`Differentiable`] of `u`.
struct LogJointNoise<'a, Mo> {
    model: &'a Mo,
    noise: &'a [f64],
}

impl<Mo: Model> Differentiable for LogJointNoise<'_, Mo> {
    fn eval<T: Scalar>(&self, u: &[T]) -> T {
        self.model.log_joint_with_noise(u, self.noise)
    }
}

/// A model's log joint as a [`Differentiable`] of `u`.
pub(crate) struct LogJoint<'a, Mo>(pub(crate) &'a Mo);

impl<Mo: Model> Differentiable for LogJoint<'_, Mo> {
    fn eval<T: Scalar>(&self, u: &[T]) -> T {
        self.0.log_joint(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ForwardEngine;
    use crate::gradient::Parallelism;
    use crate::tape::TapeEngine;

    /// The formula `log_joint` replaced: one scalar operation per term.
    fn old_log_joint<T: Scalar>(chained: &ChainedModel, m: usize, u: &[T]) -> T {
        let mut lp = T::constant(chained.values[m]);
        for (&ui, &g) in u.iter().zip(&chained.gradients[m]) {
            lp += (ui - ui.value()) * g;
        }
        lp
    }

    /// An objective that uses `u` before and after the log joint, so that
    /// the adjoints of `u` add contributions from several nodes.
    struct Objective<'a> {
        chained: &'a ChainedModel,
        old: bool,
    }

    impl Differentiable for Objective<'_> {
        fn eval<T: Scalar>(&self, x: &[T]) -> T {
            let u: Vec<T> = x.iter().map(|&xi| xi * 1.5 + xi.sin()).collect();
            let before = T::dot(&u, &u) * 0.25;
            let mut total = before;
            for m in 0..self.chained.values.len() {
                let lp = if self.old {
                    old_log_joint(self.chained, m, &u)
                } else {
                    self.chained.log_joint(m, &u)
                };
                total += lp * lp.exp().ln_1p() - u[m].cos() * lp;
            }
            total
        }
    }

    /// An engine run: the value and gradient of an objective.
    type Run<'a, O> = dyn Fn(&O) -> (f64, Vec<f64>) + 'a;

    fn bits(value: f64, gradient: &[f64]) -> (u64, Vec<u64>) {
        (
            value.to_bits(),
            gradient.iter().map(|g| g.to_bits()).collect(),
        )
    }

    #[test]
    fn log_joint_is_bit_identical_to_the_scalar_formula() {
        let chained = ChainedModel {
            values: vec![-3.25, 0.7, -0.0],
            gradients: vec![
                vec![0.3, -1.7, 0.0, -0.0, 2.5e-9, -4.0e3, 1.0 / 3.0],
                vec![-0.1, 0.2, -0.3, 0.4, -0.5, 0.6, -0.7],
                vec![1e-300, -1e300, 0.5, -2.0, 7.0, 0.0, -1.0],
            ],
            theta_dim: 0,
        };
        let x = [0.4, -1.3, 2.2, 0.0, -0.7, 3.1, 1e-3];
        let new = Objective {
            chained: &chained,
            old: false,
        };
        let old = Objective {
            chained: &chained,
            old: true,
        };
        assert_eq!(new.eval(&x).to_bits(), old.eval(&x).to_bits());
        let single = Parallelism::SingleThread;
        let mut runs: Vec<Box<Run<'_, Objective<'_>>>> = vec![
            Box::new(|f| TapeEngine.value_and_gradient(f, &x)),
            Box::new(|f| {
                ForwardEngine::<2>::new()
                    .with_parallelism(single)
                    .value_and_gradient(f, &x)
            }),
            Box::new(|f| {
                ForwardEngine::<16>::new()
                    .with_parallelism(single)
                    .value_and_gradient(f, &x)
            }),
        ];
        // Part of the inputs recorded, the rest constants.
        runs.push(Box::new(|f| {
            let mut out = vec![0.0; 3];
            let v = TapeEngine.value_and_partial_gradient_into(f, &x, 2..5, &mut out);
            (v, out)
        }));
        runs.push(Box::new(|f| {
            let mut out = vec![0.0; 3];
            let v = ForwardEngine::<4>::new()
                .with_parallelism(single)
                .value_and_partial_gradient_into(f, &x, 2..5, &mut out);
            (v, out)
        }));
        for run in &runs {
            let (value, gradient) = run(&new);
            let (old_value, old_gradient) = run(&old);
            assert_eq!(bits(value, &gradient), bits(old_value, &old_gradient));
        }
    }

    /// A model with `D = 5` whose log joint mixes its coordinates.
    struct Mixed;

    impl Model for Mixed {
        fn layout(&self) -> crate::model::Layout {
            crate::model::Layout::new(vec![crate::model::LatentSpec::vector(
                "x",
                5,
                crate::transforms::Transform::Identity,
            )])
        }

        fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
            let s = T::dot(u, u);
            u.iter().enumerate().fold(-s * 0.5, |lp, (i, &x)| {
                lp + (x * (i as f64 + 0.5)).sin() * u[0].exp()
            })
        }
    }

    /// The model's gradients are the same bits at every forward width
    /// (lanes never interact) and with any number of threads.
    #[test]
    fn model_gradients_are_bit_identical_across_widths_and_threads() {
        use rand::SeedableRng;

        use crate::guide::{HierarchicalGuide, SemiImplicit};
        use crate::objective::Diwhvi;

        let guide = SemiImplicit::new(5, 3);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let params = guide.init_params(&mut rng);
        let noise = StepNoise::draw(&guide, Diwhvi::new(6, 2), &mut rng);
        let all = Parallelism::AllCores;
        let reference =
            ChainedModel::new(&Mixed, &guide, &params, &noise, &ForwardEngine::<16>::new());
        let widths = [
            ChainedModel::new(&Mixed, &guide, &params, &noise, &ForwardEngine::<1>::new()),
            ChainedModel::new(&Mixed, &guide, &params, &noise, &ForwardEngine::<2>::new()),
            ChainedModel::new(&Mixed, &guide, &params, &noise, &ForwardEngine::<4>::new()),
            ChainedModel::new(&Mixed, &guide, &params, &noise, &ForwardEngine::<8>::new()),
        ];
        for chained in &widths {
            assert_eq!(chained, &reference);
            for m in 0..6 {
                assert_eq!(
                    bits(chained.value(m), chained.gradient(m)),
                    bits(reference.value(m), reference.gradient(m))
                );
            }
        }
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let chained = pool.install(|| {
                ChainedModel::new_with_parallelism(
                    &Mixed,
                    &guide,
                    &params,
                    &noise,
                    &ForwardEngine::<8>::new(),
                    all,
                )
            });
            for m in 0..6 {
                assert_eq!(
                    bits(chained.value(m), chained.gradient(m)),
                    bits(reference.value(m), reference.gradient(m))
                );
            }
        }
        // The tape differs from forward mode in the last bits, not more.
        let tape = ChainedModel::new(&Mixed, &guide, &params, &noise, &TapeEngine);
        for m in 0..6 {
            for (a, b) in tape.gradient(m).iter().zip(reference.gradient(m)) {
                assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()));
            }
        }
    }
}
