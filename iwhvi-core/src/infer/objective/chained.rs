//! The model's value and `u`-gradient at each outer draw, computed once per
//! step and chained into every parameter pass.

use super::StepNoise;
use super::weights::{Buffers, Stop};
use crate::gradient::{Differentiable, GradientEngine};
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
}

impl ChainedModel {
    /// Evaluates the model and its `u`-gradient at each outer draw of the
    /// step's noise under `params`.
    pub fn new<Mo: Model, G: HierarchicalGuide, E: GradientEngine>(
        model: &Mo,
        guide: &G,
        params: &[f64],
        noise: &StepNoise,
        engine: &E,
    ) -> Self {
        let mut buffers = Buffers::new(guide, params, Stop::Nothing);
        let mut chained = Self::default();
        for m in 0..noise.objective().m {
            buffers.draw_outer(guide, params, noise, m);
            let mut gradient = vec![0.0; buffers.u.len()];
            let value = engine.value_and_gradient_into(&LogJoint(model), &buffers.u, &mut gradient);
            chained.values.push(value);
            chained.gradients.push(gradient);
        }
        chained
    }

    /// `log p(x, u_m)`, the value alone.
    pub(super) fn value(&self, m: usize) -> f64 {
        self.values[m]
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
}
