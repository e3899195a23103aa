//! The small networks that condition a guide's Gaussians: affine maps and
//! one-hidden-layer perceptrons.

use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

use super::ParamLayout;
use crate::scalar::Scalar;

/// How a conditional Gaussian's mean depends on what it conditions on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Conditioning {
    /// `mean = W x + b`.
    Linear,
    /// `mean = W₂ tanh(W₁ x + b₁) + b₂` with `hidden` units.
    Mlp {
        /// Hidden units.
        hidden: usize,
    },
}

/// A network `R^inputs → R^outputs` with its parameters at `offset`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Network {
    pub inputs: usize,
    pub outputs: usize,
    pub conditioning: Conditioning,
    /// Parameter ranges: (weight, bias) for each layer.
    layers: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
}

impl Network {
    /// Lays out the parameters of a network named `name` in `layout`.
    pub fn new(
        layout: &mut ParamLayout,
        name: &str,
        inputs: usize,
        outputs: usize,
        conditioning: Conditioning,
    ) -> Self {
        let layers = match conditioning {
            Conditioning::Linear => vec![(
                layout.push(&format!("{name}.weight"), &[outputs, inputs]),
                layout.push(&format!("{name}.bias"), &[outputs]),
            )],
            Conditioning::Mlp { hidden } => vec![
                (
                    layout.push(&format!("{name}.hidden.weight"), &[hidden, inputs]),
                    layout.push(&format!("{name}.hidden.bias"), &[hidden]),
                ),
                (
                    layout.push(&format!("{name}.output.weight"), &[outputs, hidden]),
                    layout.push(&format!("{name}.output.bias"), &[outputs]),
                ),
            ],
        };
        Self {
            inputs,
            outputs,
            conditioning,
            layers,
        }
    }

    /// The parameter range of the last layer's bias (the `b` added to the
    /// output).
    pub fn output_bias(&self) -> std::ops::Range<usize> {
        self.layers[self.layers.len() - 1].1.clone()
    }

    /// Scratch entries `apply` needs beyond its output.
    pub fn scratch_len(&self) -> usize {
        match self.conditioning {
            Conditioning::Linear => 0,
            Conditioning::Mlp { hidden } => hidden,
        }
    }

    /// Writes initial values: weights of the last layer `N(0, last_scale²)`,
    /// hidden weights `N(0, 1/inputs)`, biases 0.
    pub fn init<R: Rng + ?Sized>(&self, params: &mut [f64], rng: &mut R, last_scale: f64) {
        let last = self.layers.len() - 1;
        for (i, (weight, bias)) in self.layers.iter().enumerate() {
            let fan_in = if i == 0 {
                self.inputs
            } else {
                weight.len() / self.outputs
            };
            let scale = if i == last {
                last_scale
            } else {
                (1.0 / fan_in.max(1) as f64).sqrt()
            };
            for w in &mut params[weight.clone()] {
                *w = if scale == 0.0 {
                    0.0
                } else {
                    scale * rng.sample::<f64, _>(StandardNormal)
                };
            }
            params[bias.clone()].fill(0.0);
        }
    }

    /// `out = net(x)`, with `hidden` scratch of [`Network::scratch_len`].
    #[inline]
    pub fn apply<T: Scalar>(&self, params: &[T], x: &[T], out: &mut [T], hidden: &mut [T]) {
        match self.conditioning {
            Conditioning::Linear => affine(params, &self.layers[0], x, out),
            Conditioning::Mlp { .. } => {
                affine(params, &self.layers[0], x, hidden);
                for h in hidden.iter_mut() {
                    *h = h.tanh();
                }
                affine(params, &self.layers[1], hidden, out);
            }
        }
    }
}

/// `out = W x + b` for the (weight, bias) ranges of one layer.
#[inline]
fn affine<T: Scalar>(
    params: &[T],
    (weight, bias): &(std::ops::Range<usize>, std::ops::Range<usize>),
    x: &[T],
    out: &mut [T],
) {
    let weight = &params[weight.clone()];
    let bias = &params[bias.clone()];
    let n = x.len();
    for (i, o) in out.iter_mut().enumerate() {
        *o = bias[i] + T::dot(&weight[i * n..(i + 1) * n], x);
    }
}
