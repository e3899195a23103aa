//! Batched multilayer perceptrons over a minibatch: forward and a
//! hand-written backward, as row-major matrix products (`gemm`: a
//! register-blocked kernel with matrixmultiply's bits, or matrixmultiply).

use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

use crate::plate::vmath::{self, Simd};

mod dense;
mod first;
mod gemm;
mod generic;

pub use dense::Dense;
#[doc(hidden)]
pub use gemm::bench as __gemm;
pub(crate) use gemm::gemm;

/// The nonlinearity between an [`Mlp`]'s layers (the output layer is
/// linear).
///
/// - `Tanh`: `tanh(a)`, derivative `1 − h²`;
/// - `Relu`: `max(a, 0)`, derivative `1[h > 0]`;
/// - `Softplus`: `ln(1 + eᵃ)`, derivative `σ(a) = 1 − e^{−h}`.
///
/// ```
/// use iwhvi_core::amortised::Activation;
/// assert_eq!(Activation::Relu.apply(-1.0), 0.0);
/// assert!((Activation::Tanh.apply(0.5) - 0.5f64.tanh()).abs() < 1e-15);
/// assert!((Activation::Softplus.apply(0.0) - 2f64.ln()).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Activation {
    /// Hyperbolic tangent.
    Tanh,
    /// Rectified linear unit.
    Relu,
    /// `ln(1 + eᵃ)`.
    Softplus,
}

impl Activation {
    /// The activation at one point, as the batched kernels compute it (a
    /// branch-free `exp`; `tanh` within 10⁻¹² relative of `std`'s).
    ///
    /// ```
    /// use iwhvi_core::amortised::Activation;
    /// assert_eq!(Activation::Tanh.apply(0.0), 0.0);
    /// ```
    pub fn apply(self, a: f64) -> f64 {
        let mut x = [a];
        vmath::dispatch(Activate(self, &mut x));
        x[0]
    }
}

/// `tanh(a)` from one `exp`: `tanh|a| = (1 − e^{−2|a|}) / (1 + e^{−2|a|})`,
/// and `a − a³/3` below `|a| < 2⁻¹³` (where the quotient loses digits).
#[inline(always)]
fn tanh(a: f64) -> f64 {
    let x = a.abs();
    let e = vmath::exp(-2.0 * x);
    let big = (1.0 - e) / (1.0 + e);
    let small = x - x * x * x * (1.0 / 3.0);
    let t = if x < 1.0 / 8192.0 { small } else { big };
    if a < 0.0 { -t } else { t }
}

/// Applies an activation in place (one ISA-dispatched loop).
struct Activate<'a>(Activation, &'a mut [f64]);

impl Simd for Activate<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        match self.0 {
            Activation::Tanh => {
                for x in self.1.iter_mut() {
                    *x = tanh(*x);
                }
            }
            Activation::Relu => {
                for x in self.1.iter_mut() {
                    *x = if *x > 0.0 { *x } else { 0.0 };
                }
            }
            Activation::Softplus => {
                for x in self.1.iter_mut() {
                    *x = vmath::softplus(*x);
                }
            }
        }
    }
}

/// Multiplies an adjoint by the activation's derivative, read from the
/// activation's output `h`.
struct Derivative<'a>(Activation, &'a mut [f64], &'a [f64]);

impl Simd for Derivative<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (bar, h) = (self.1, self.2);
        match self.0 {
            Activation::Tanh => {
                for (b, &h) in bar.iter_mut().zip(h) {
                    *b *= 1.0 - h * h;
                }
            }
            Activation::Relu => {
                for (b, &h) in bar.iter_mut().zip(h) {
                    *b = if h > 0.0 { *b } else { 0.0 };
                }
            }
            Activation::Softplus => {
                for (b, &h) in bar.iter_mut().zip(h) {
                    *b *= 1.0 - vmath::exp(-h);
                }
            }
        }
    }
}

/// A multilayer perceptron `R^{inputs} × R^{context} → R^{outputs}`,
/// evaluated on many rows at once:
///
/// `h₁ = f(a W₀ + c W_c + b₀)`, `h_{l+1} = f(h_l W_l + b_l)`, output
/// `h_L W_L + b_L` (linear), with `f` the [`Activation`].
///
/// The input splits in two: `a` (one per row, e.g. a draw ψ) and a
/// *context* `c` (one per group of consecutive rows, e.g. the data point
/// x), whose first-layer product `c W_c` is computed once per group and
/// broadcast to its rows. The parameters live in one flat vector at
/// [`Mlp::offset`]: per layer the weight `in × out` (row-major, so a row
/// of inputs times it is the layer) then the bias; the first layer's
/// weight is `W₀` (`inputs × width`) then `W_c` (`context × width`).
///
/// ```
/// use iwhvi_core::amortised::{Activation, Mlp};
/// let net = Mlp::new(3, 0, &[5], 2, Activation::Tanh, 0);
/// assert_eq!(net.len(), 3 * 5 + 5 + 5 * 2 + 2);
/// let params = vec![0.1; net.len()];
/// let out = net.apply(&params, &[1.0, 2.0, 3.0], &[]);
/// let h = (0.1f64 * 6.0 + 0.1).tanh();
/// assert!((out[0] - (0.1 * 5.0 * h + 0.1)).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Mlp {
    inputs: usize,
    context: usize,
    widths: Vec<usize>,
    outputs: usize,
    activation: Activation,
    offset: usize,
}

/// A layer's parameter ranges and sizes.
#[derive(Clone, Copy, Debug)]
struct LayerShape {
    weight: usize,
    context_weight: usize,
    bias: usize,
    inputs: usize,
    outputs: usize,
}

impl Mlp {
    /// A network with `inputs` per-row inputs, `context` per-group
    /// inputs, hidden layers of the given `widths`, `outputs` linear
    /// outputs, its parameters starting at `offset`.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, Mlp};
    /// let net = Mlp::new(2, 64, &[32], 4, Activation::Relu, 10);
    /// assert_eq!(net.offset(), 10);
    /// assert_eq!(net.len(), (2 + 64) * 32 + 32 + 32 * 4 + 4);
    /// ```
    pub fn new(
        inputs: usize,
        context: usize,
        widths: &[usize],
        outputs: usize,
        activation: Activation,
        offset: usize,
    ) -> Self {
        Self {
            inputs,
            context,
            widths: widths.to_vec(),
            outputs,
            activation,
            offset,
        }
    }

    /// Where the parameters start in the flat vector.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, Mlp};
    /// assert_eq!(Mlp::new(1, 0, &[], 1, Activation::Tanh, 3).offset(), 3);
    /// ```
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The number of parameters: `Σ_l (in_l + 1) out_l` (with
    /// `in₀ = inputs + context`).
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, Mlp};
    /// assert_eq!(Mlp::new(1, 0, &[], 1, Activation::Tanh, 0).len(), 2);
    /// ```
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.shapes()
            .last()
            .map_or(0, |s| s.bias + s.outputs - self.offset)
    }

    /// Output width.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, Mlp};
    /// assert_eq!(Mlp::new(1, 0, &[8], 3, Activation::Tanh, 0).outputs(), 3);
    /// ```
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    fn shapes(&self) -> Vec<LayerShape> {
        let mut shapes = Vec::with_capacity(self.widths.len() + 1);
        let mut at = self.offset;
        let mut inputs = self.inputs;
        for (l, &outputs) in self.widths.iter().chain([&self.outputs]).enumerate() {
            let context = if l == 0 { self.context } else { 0 };
            let weight = at;
            let context_weight = weight + inputs * outputs;
            let bias = context_weight + context * outputs;
            at = bias + outputs;
            shapes.push(LayerShape {
                weight,
                context_weight,
                bias,
                inputs,
                outputs,
            });
            inputs = outputs;
        }
        shapes
    }

    /// Writes initial values: weights `N(0, 1/fan_in)` times
    /// `last_scale` on the output layer, biases 0.
    pub(crate) fn init<R: Rng + ?Sized>(&self, params: &mut [f64], rng: &mut R, last_scale: f64) {
        let shapes = self.shapes();
        let last = shapes.len() - 1;
        for (l, s) in shapes.iter().enumerate() {
            let fan_in = s.inputs + if l == 0 { self.context } else { 0 };
            let mut scale = (1.0 / fan_in.max(1) as f64).sqrt();
            if l == last {
                scale *= last_scale;
            }
            for w in &mut params[s.weight..s.bias] {
                *w = scale * rng.sample::<f64, _>(StandardNormal);
            }
            params[s.bias..s.bias + s.outputs].fill(0.0);
        }
    }

    /// The output bias's range (e.g. to start a decoder at the data's
    /// mean).
    pub(crate) fn output_bias(&self) -> std::ops::Range<usize> {
        let s = *self.shapes().last().expect("a network has a layer");
        s.bias..s.bias + s.outputs
    }

    /// The network on one row: `input` (`inputs` values) and `context`
    /// (`context` values). Allocates; for batches the crate uses its
    /// batched kernels.
    ///
    /// # Panics
    /// If `params`, `input` or `context` is too short.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, Mlp};
    /// let net = Mlp::new(1, 1, &[], 1, Activation::Tanh, 0);
    /// // out = 2 a + 3 c + 1
    /// assert_eq!(net.apply(&[2.0, 3.0, 1.0], &[1.0], &[1.0]), vec![6.0]);
    /// ```
    pub fn apply(&self, params: &[f64], input: &[f64], context: &[f64]) -> Vec<f64> {
        let mut scratch = MlpScratch::default();
        self.forward(params, input, context, 1, 1, &mut scratch);
        scratch.out.clone()
    }

    /// Forward over `rows` rows of `input` (`rows × inputs`) in `groups`
    /// groups of consecutive rows sharing a row of `context`
    /// (`groups × context`). The output is `scratch.out` (`rows ×
    /// outputs`).
    pub(crate) fn forward(
        &self,
        params: &[f64],
        input: &[f64],
        context: &[f64],
        rows: usize,
        groups: usize,
        scratch: &mut MlpScratch,
    ) {
        let shapes = self.shapes();
        let last = shapes.len() - 1;
        scratch.ensure(&shapes, rows, groups);
        for (l, s) in shapes.iter().enumerate() {
            let (before, rest) = scratch.acts.split_at_mut(l);
            let out: &mut Vec<f64> = if l == last {
                &mut scratch.out
            } else {
                &mut rest[0]
            };
            let x: &[f64] = if l == 0 { input } else { &before[l - 1] };
            // Each row starts as its bias (plus its group's context
            // product), and the product of its inputs is added to it.
            let bias = &params[s.bias..s.bias + s.outputs];
            if l == 0 && self.context > 0 && groups > 0 {
                let wc = &params[s.context_weight..s.bias];
                let g = &mut scratch.group;
                gemm(
                    groups,
                    self.context,
                    s.outputs,
                    context,
                    false,
                    wc,
                    false,
                    0.0,
                    g,
                );
                for row in g[..groups * s.outputs].chunks_exact_mut(s.outputs) {
                    for (o, &b) in row.iter_mut().zip(bias) {
                        *o += b;
                    }
                }
                let per = rows / groups;
                for (r, row) in out[..rows * s.outputs]
                    .chunks_exact_mut(s.outputs)
                    .enumerate()
                {
                    row.copy_from_slice(&g[(r / per) * s.outputs..(r / per + 1) * s.outputs]);
                }
            } else {
                for row in out[..rows * s.outputs].chunks_exact_mut(s.outputs) {
                    row.copy_from_slice(bias);
                }
            }
            let w = &params[s.weight..s.context_weight];
            gemm(rows, s.inputs, s.outputs, x, false, w, false, 1.0, out);
            if l != last {
                vmath::dispatch(Activate(self.activation, &mut out[..rows * s.outputs]));
            }
        }
    }

    /// Backward of the last [`Mlp::forward`] (same `input`, `context`,
    /// `rows`, `groups`, `scratch`): given the output's adjoint
    /// `out_bar` (`rows × outputs`), adds the parameters' adjoints to
    /// `grad` and, when given, the input's to `input_bar`. The context
    /// gets none (it is data). `out_bar` is consumed as scratch.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward(
        &self,
        params: &[f64],
        input: &[f64],
        context: &[f64],
        rows: usize,
        groups: usize,
        scratch: &mut MlpScratch,
        out_bar: &mut [f64],
        grad: &mut [f64],
        mut input_bar: Option<&mut [f64]>,
    ) {
        let shapes = self.shapes();
        let last = shapes.len() - 1;
        for l in (0..=last).rev() {
            let s = shapes[l];
            let (bars_before, bars_rest) = scratch.bars.split_at_mut(l);
            let bar: &mut [f64] = if l == last {
                &mut *out_bar
            } else {
                &mut bars_rest[0]
            };
            let bar = &mut bar[..rows * s.outputs];
            let x: &[f64] = if l == 0 { input } else { &scratch.acts[l - 1] };
            // W̄ += xᵀ bar, b̄ += Σ_rows bar.
            gemm(
                s.inputs,
                rows,
                s.outputs,
                x,
                true,
                bar,
                false,
                1.0,
                &mut grad[s.weight..s.context_weight],
            );
            let gb = &mut grad[s.bias..s.bias + s.outputs];
            for row in bar.chunks_exact(s.outputs) {
                for (g, &v) in gb.iter_mut().zip(row) {
                    *g += v;
                }
            }
            if l == 0 && self.context > 0 && groups > 0 {
                let per = rows / groups;
                let sum = &mut scratch.group;
                sum[..groups * s.outputs].fill(0.0);
                for (r, row) in bar.chunks_exact(s.outputs).enumerate() {
                    let gr = &mut sum[(r / per) * s.outputs..(r / per + 1) * s.outputs];
                    for (g, &v) in gr.iter_mut().zip(row) {
                        *g += v;
                    }
                }
                gemm(
                    self.context,
                    groups,
                    s.outputs,
                    context,
                    true,
                    sum,
                    false,
                    1.0,
                    &mut grad[s.context_weight..s.bias],
                );
            }
            let w = &params[s.weight..s.context_weight];
            if l > 0 {
                let prev = &mut bars_before[l - 1][..rows * s.inputs];
                gemm(rows, s.outputs, s.inputs, bar, false, w, true, 0.0, prev);
                vmath::dispatch(Derivative(
                    self.activation,
                    prev,
                    &scratch.acts[l - 1][..rows * s.inputs],
                ));
            } else if let Some(ib) = input_bar.as_deref_mut() {
                gemm(rows, s.outputs, s.inputs, bar, false, w, true, 1.0, ib);
            }
        }
    }
}

/// The buffers of one [`Mlp`]'s forward and backward, reused between
/// calls.
#[derive(Clone, Debug, Default)]
pub(crate) struct MlpScratch {
    /// Hidden activations, one per hidden layer.
    acts: Vec<Vec<f64>>,
    /// Their adjoints.
    bars: Vec<Vec<f64>>,
    /// Per-group first-layer products and sums.
    group: Vec<f64>,
    /// The output of the last forward.
    pub out: Vec<f64>,
}

impl MlpScratch {
    fn ensure(&mut self, shapes: &[LayerShape], rows: usize, groups: usize) {
        let hidden = shapes.len() - 1;
        self.acts.resize_with(hidden, Vec::new);
        self.bars.resize_with(hidden, Vec::new);
        for (l, s) in shapes[..hidden].iter().enumerate() {
            self.acts[l].resize(rows * s.outputs, 0.0);
            self.bars[l].resize(rows * s.outputs, 0.0);
        }
        self.out.resize(rows * shapes[hidden].outputs, 0.0);
        self.group.resize(groups * shapes[0].outputs, 0.0);
    }
}
