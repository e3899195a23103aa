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
    /// the value computed once, the tangent chained through `u`'s.
    #[inline]
    pub(super) fn log_joint<T: Scalar>(&self, m: usize, u: &[T]) -> T {
        let mut lp = T::constant(self.values[m]);
        for (&ui, &g) in u.iter().zip(&self.gradients[m]) {
            lp += (ui - ui.value()) * g;
        }
        lp
    }
}

/// A model's log joint as a [`Differentiable`] of `u`.
pub(crate) struct LogJoint<'a, Mo>(pub(crate) &'a Mo);

impl<Mo: Model> Differentiable for LogJoint<'_, Mo> {
    fn eval<T: Scalar>(&self, u: &[T]) -> T {
        self.0.log_joint(u)
    }
}
