//! The network of [`Mlp`] evaluated generic over [`Scalar`], for the
//! encoders a guide struct declares (`#[encoder(...)]`): the same
//! parameter layout and initialisation as the batched kernels, evaluated
//! with the scalar type of the engine at hand (plain `f64`, forward
//! duals, the tape), one row at a time.

use rand::Rng;

use super::dense::{accumulate, activate, back_inputs, back_weights, simd, slope};
use super::{Activation, LayerShape, Mlp};
use crate::Scalar;
use crate::vector::VectorFunction;

impl Activation {
    /// The activation of a scalar of any engine: `tanh(a)`, `max(a, 0)`
    /// (derivative 0 at 0) or `ln(1 + eᵃ)`.
    ///
    /// ```
    /// use iwhvi_core::amortised::Activation;
    /// assert_eq!(Activation::Relu.apply_scalar(-1.0f64), 0.0);
    /// assert!((Activation::Softplus.apply_scalar(0.0f64) - 2f64.ln()).abs() < 1e-15);
    /// ```
    pub fn apply_scalar<T: Scalar>(self, a: T) -> T {
        match self {
            Activation::Tanh => a.tanh(),
            Activation::Relu if a.value() > 0.0 => a,
            Activation::Relu => T::constant(0.0),
            Activation::Softplus => a.softplus(),
        }
    }
}

impl Mlp {
    /// The network's initial parameters (its own `len()` values, from its
    /// first): weights drawn `N(0, 1/fan_in)`, times `last_scale` on the
    /// output layer, biases 0 (the rule of the amortised encoders and
    /// decoders).
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, Mlp};
    /// use rand::SeedableRng;
    /// let net = Mlp::new(2, 0, &[3], 1, Activation::Tanh, 5);
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    /// let init = net.initial_params(&mut rng, 0.1);
    /// assert_eq!(init.len(), net.len());
    /// // the biases start at zero: b0 follows the 2 × 3 weights
    /// assert_eq!(&init[6..9], &[0.0; 3]);
    /// ```
    pub fn initial_params<R: Rng + ?Sized>(&self, rng: &mut R, last_scale: f64) -> Vec<f64> {
        let mut params = vec![0.0; self.offset + self.len()];
        self.init(&mut params, rng, last_scale);
        params.split_off(self.offset)
    }

    /// The network on `rows` rows of plain inputs, generic over the
    /// scalar of its parameters: for each row `x` (`input[r * inputs..]`),
    /// `h₀ = x`, `h_{l+1} = a(W_lᵀ h_l + b_l)` on the hidden layers and
    /// `W_Lᵀ h_L + b_L` on the output layer, `W_l` stored row-major
    /// (`in_l × out_l`) as in [`Mlp::apply`]. `params` are the network's
    /// own (`len()` values, its first at index 0); its context inputs, if
    /// it has any, are taken as zero. The outputs are written column by
    /// column, `out[o * rows + r]`, so that output `o` of every row is one
    /// slice.
    ///
    /// # Panics
    /// If `params` is shorter than `len()` or `input` than `rows × inputs`.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, Mlp};
    /// let net = Mlp::new(1, 0, &[], 2, Activation::Tanh, 0);
    /// // out = (2 x + 1, 3 x − 1) on the rows x = 1, x = 2
    /// let mut out = Vec::new();
    /// net.apply_rows(&[2.0, 3.0, 1.0, -1.0], &[1.0, 2.0], 2, &mut out);
    /// assert_eq!(out, vec![3.0, 5.0, 2.0, 5.0]);
    /// ```
    pub fn apply_rows<T: Scalar>(
        &self,
        params: &[T],
        input: &[f64],
        rows: usize,
        out: &mut Vec<T>,
    ) {
        let op = MlpOp::new(self, &input[..rows * self.inputs], rows, false);
        T::vector_op(op, &[&params[..self.len()]], out);
    }
}

impl Mlp {
    /// The network on one row with its context, generic over the scalar
    /// of its parameters and context: `h₁ = a(W₀ᵀ x + W_cᵀ c + b₀)`, then
    /// as [`Mlp::apply_rows`]; `input` is the row's `inputs` plain values
    /// (data), `context` its `context` values of the engine's scalar (e.g.
    /// a latent of the point, through which derivatives flow). `out` is
    /// cleared and receives the `outputs` values.
    ///
    /// # Panics
    /// If `params` is shorter than `len()`, `input` than `inputs` or
    /// `context` than `context`.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, Mlp};
    /// let net = Mlp::new(1, 1, &[], 1, Activation::Tanh, 0);
    /// // out = 2 x + 3 c + 1
    /// let mut out = Vec::new();
    /// net.apply_row_context(&[2.0, 3.0, 1.0], &[1.0], &[2.0], &mut out);
    /// assert_eq!(out, vec![9.0]);
    /// ```
    pub fn apply_row_context<T: Scalar>(
        &self,
        params: &[T],
        input: &[f64],
        context: &[T],
        out: &mut Vec<T>,
    ) {
        let op = MlpOp::new(self, &input[..self.inputs], 1, true);
        T::vector_op(op, &[&params[..self.len()], &context[..self.context]], out);
    }
}

/// The network on `rows` rows of plain inputs as one [`VectorFunction`]:
/// blocks `[params]` (context taken as zero) or `[params, context]` (one
/// context for every row); outputs `y[o · rows + r]`. The forward pass is
/// the scalar loop's (per output: the bias, then the inputs' terms, then
/// the context's, in order), so `f64` values do not depend on the engine.
struct MlpOp {
    shapes: Vec<LayerShape>,
    offset: usize,
    activation: Activation,
    input: Vec<f64>,
    rows: usize,
    with_context: bool,
    /// Every layer's outputs (after the activation) of every row, row
    /// after row, kept by `eval` for the derivatives.
    saved: Vec<f64>,
    /// Entries of `saved` per row.
    stride: usize,
}

impl MlpOp {
    fn new(net: &Mlp, input: &[f64], rows: usize, with_context: bool) -> Self {
        let shapes = net.shapes();
        let stride = shapes.iter().map(|s| s.outputs).sum();
        Self {
            shapes,
            offset: net.offset,
            activation: net.activation,
            input: input.to_vec(),
            rows,
            with_context,
            saved: Vec::new(),
            stride,
        }
    }

    fn activation(&self, l: usize) -> Option<Activation> {
        (l + 1 < self.shapes.len()).then_some(self.activation)
    }

    /// Layer `s`'s weights, context weights and biases in `params`.
    fn parts<'a>(&self, s: &LayerShape, params: &'a [f64]) -> [&'a [f64]; 3] {
        let at = |i: usize| i - self.offset;
        [
            &params[at(s.weight)..at(s.context_weight)],
            &params[at(s.context_weight)..at(s.bias)],
            &params[at(s.bias)..at(s.bias) + s.outputs],
        ]
    }

    /// The context block, if the op has one.
    fn context<'a>(&self, x: &[&'a [f64]]) -> Option<&'a [f64]> {
        self.with_context.then(|| x[1])
    }

    /// Row `r`'s plain inputs.
    fn row(&self, r: usize) -> &[f64] {
        let width = self.input.len() / self.rows.max(1);
        &self.input[r * width..(r + 1) * width]
    }

    /// The input of layer `l` on a row: the row itself, or the outputs of
    /// layer `l − 1` saved at `saved[..]` (the row's slice).
    fn layer_input<'a>(&'a self, r: usize, l: usize, saved: &'a [f64]) -> &'a [f64] {
        if l == 0 {
            self.row(r)
        } else {
            let start: usize = self.shapes[..l - 1].iter().map(|s| s.outputs).sum();
            &saved[start..start + self.shapes[l - 1].outputs]
        }
    }
}

impl VectorFunction for MlpOp {
    fn outputs(&self) -> usize {
        self.rows * self.shapes.last().map_or(0, |s| s.outputs)
    }

    fn eval(&mut self, x: &[&[f64]], y: &mut [f64]) {
        simd(|| self.forward(x, y));
    }

    fn vjp(&self, x: &[&[f64]], y: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
        simd(|| self.backward(x, y, ybar, xbar));
    }

    fn jvp(&self, x: &[&[f64]], y: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]) {
        simd(|| self.tangent(x, y, xdot, ydot));
    }
}

/// The op's passes, each run through [`simd`].
impl MlpOp {
    #[inline(always)]
    fn forward(&mut self, x: &[&[f64]], y: &mut [f64]) {
        let (params, context) = (x[0], self.context(x));
        let mut saved = std::mem::take(&mut self.saved);
        saved.clear();
        saved.resize(self.rows * self.stride, 0.0);
        for (r, row) in saved.chunks_exact_mut(self.stride.max(1)).enumerate() {
            let mut at = 0;
            for (l, s) in self.shapes.iter().enumerate() {
                let [w, wc, b] = self.parts(s, params);
                let (done, rest) = row.split_at_mut(at);
                let a = &mut rest[..s.outputs];
                a.copy_from_slice(b);
                accumulate(w, self.layer_input(r, l, done), a);
                if let (0, Some(c)) = (l, context) {
                    accumulate(wc, c, a);
                }
                activate(self.activation(l), a);
                at += s.outputs;
            }
            let last = &row[at - self.shapes.last().map_or(0, |s| s.outputs)..at];
            for (o, &v) in last.iter().enumerate() {
                y[o * self.rows + r] = v;
            }
        }
        self.saved = saved;
    }

    #[inline(always)]
    fn backward(&self, x: &[&[f64]], _y: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
        let (params, context) = (x[0], self.context(x));
        let (first, rest) = xbar.split_at_mut(1);
        let mut pbar = first[0].as_deref_mut();
        let mut cbar = rest.first_mut().and_then(|c| c.as_deref_mut());
        let ends: Vec<usize> = self
            .shapes
            .iter()
            .scan(0, |at, s| {
                *at += s.outputs;
                Some(*at)
            })
            .collect();
        let (mut g, mut below) = (Vec::new(), Vec::new());
        for (r, saved) in self.saved.chunks_exact(self.stride.max(1)).enumerate() {
            let outputs = self.shapes.last().map_or(0, |s| s.outputs);
            g.clear();
            g.extend((0..outputs).map(|o| ybar[o * self.rows + r]));
            for (l, s) in self.shapes.iter().enumerate().rev() {
                let out = &saved[ends[l] - s.outputs..ends[l]];
                for (go, &v) in g.iter_mut().zip(out) {
                    *go *= slope(self.activation(l), v);
                }
                let [w, wc, _] = self.parts(s, params);
                let input = self.layer_input(r, l, saved);
                if let Some(pbar) = pbar.as_deref_mut() {
                    let [wbar, wcbar, bbar] = self.parts_mut(s, pbar);
                    back_weights(input, &g, wbar);
                    if let (0, Some(c)) = (l, context) {
                        back_weights(c, &g, wcbar);
                    }
                    bbar.iter_mut().zip(&g).for_each(|(b, &go)| *b += go);
                }
                if l == 0 {
                    if let Some(cbar) = cbar.as_deref_mut() {
                        back_inputs(wc, &g, cbar);
                    }
                } else {
                    below.clear();
                    below.resize(s.inputs, 0.0);
                    back_inputs(w, &g, &mut below);
                    std::mem::swap(&mut g, &mut below);
                }
            }
        }
    }

    #[inline(always)]
    fn tangent(&self, x: &[&[f64]], _y: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]) {
        let (params, context) = (x[0], self.context(x));
        let (pdot, cdot) = (xdot[0], xdot.get(1).copied().flatten());
        let (mut t, mut next) = (Vec::new(), Vec::new());
        for (r, saved) in self.saved.chunks_exact(self.stride.max(1)).enumerate() {
            let mut at = 0;
            for (l, s) in self.shapes.iter().enumerate() {
                let [w, wc, _] = self.parts(s, params);
                next.clear();
                next.resize(s.outputs, 0.0);
                if let Some(pdot) = pdot {
                    let [wdot, wcdot, bdot] = self.parts(s, pdot);
                    next.copy_from_slice(bdot);
                    accumulate(wdot, self.layer_input(r, l, saved), &mut next);
                    if let (0, Some(c)) = (l, context) {
                        accumulate(wcdot, c, &mut next);
                    }
                }
                if l == 0 {
                    if let Some(cdot) = cdot {
                        accumulate(wc, cdot, &mut next);
                    }
                } else {
                    accumulate(w, &t, &mut next);
                }
                for (d, &v) in next.iter_mut().zip(&saved[at..at + s.outputs]) {
                    *d *= slope(self.activation(l), v);
                }
                at += s.outputs;
                std::mem::swap(&mut t, &mut next);
            }
            for (o, &v) in t.iter().enumerate() {
                ydot[o * self.rows + r] = v;
            }
        }
    }
}

impl MlpOp {
    /// [`MlpOp::parts`] of the adjoints.
    fn parts_mut<'a>(&self, s: &LayerShape, params: &'a mut [f64]) -> [&'a mut [f64]; 3] {
        let at = |i: usize| i - self.offset;
        let (_, rest) = params.split_at_mut(at(s.weight));
        let (w, rest) = rest.split_at_mut(s.context_weight - s.weight);
        let (wc, rest) = rest.split_at_mut(s.bias - s.context_weight);
        [w, wc, &mut rest[..s.outputs]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ad::checks::{close, finite_differences};
    use crate::tape::TapeEngine;
    use crate::{Differentiable, ForwardEngine};

    /// The scalar loops that `apply_rows` and `apply_row_context` were
    /// before they became one op, verbatim: the reference.
    impl Mlp {
        fn scalar_rows<T: Scalar>(
            &self,
            params: &[T],
            input: &[f64],
            rows: usize,
            out: &mut Vec<T>,
        ) {
            let shapes = self.shapes();
            let last = shapes.len() - 1;
            out.clear();
            out.resize(rows * self.outputs, T::constant(0.0));
            let (mut h, mut next): (Vec<T>, Vec<T>) = (Vec::new(), Vec::new());
            for r in 0..rows {
                let x = &input[r * self.inputs..(r + 1) * self.inputs];
                for (l, s) in shapes.iter().enumerate() {
                    let w = &params[s.weight - self.offset..s.context_weight - self.offset];
                    let b = &params[s.bias - self.offset..s.bias - self.offset + s.outputs];
                    next.clear();
                    for o in 0..s.outputs {
                        let mut a = b[o];
                        for i in 0..s.inputs {
                            let wi = w[i * s.outputs + o];
                            a += if l == 0 {
                                wi * T::constant(x[i])
                            } else {
                                wi * h[i]
                            };
                        }
                        next.push(if l == last {
                            a
                        } else {
                            self.activation.apply_scalar(a)
                        });
                    }
                    std::mem::swap(&mut h, &mut next);
                }
                for (o, &v) in h.iter().enumerate() {
                    out[o * rows + r] = v;
                }
            }
        }

        fn scalar_row_context<T: Scalar>(
            &self,
            params: &[T],
            input: &[f64],
            context: &[T],
            out: &mut Vec<T>,
        ) {
            let shapes = self.shapes();
            let last = shapes.len() - 1;
            let mut h: Vec<T> = Vec::new();
            for (l, s) in shapes.iter().enumerate() {
                let w = &params[s.weight - self.offset..s.context_weight - self.offset];
                let wc = &params[s.context_weight - self.offset..s.bias - self.offset];
                let b = &params[s.bias - self.offset..s.bias - self.offset + s.outputs];
                out.clear();
                for o in 0..s.outputs {
                    let mut a = b[o];
                    for i in 0..s.inputs {
                        let wi = w[i * s.outputs + o];
                        a += if l == 0 {
                            wi * T::constant(input[i])
                        } else {
                            wi * h[i]
                        };
                    }
                    if l == 0 {
                        for (c, &value) in context.iter().take(self.context).enumerate() {
                            a += wc[c * s.outputs + o] * value;
                        }
                    }
                    out.push(if l == last {
                        a
                    } else {
                        self.activation.apply_scalar(a)
                    });
                }
                if l != last {
                    std::mem::swap(&mut h, out);
                }
            }
        }
    }

    /// An encoder of 5 inputs and 2 context inputs, `5 + 2 → 18 → 4 → 3`,
    /// at offset 3 of the parameters: on 4 rows (`apply_rows`), on one row
    /// with its context, and on a row whose context is the first call's
    /// outputs (an op feeding an op).
    struct Encoder {
        ops: bool,
        activation: Activation,
    }

    impl Encoder {
        fn net(&self) -> Mlp {
            Mlp::new(5, 2, &[18, 4], 3, self.activation, 3)
        }
    }

    impl Differentiable for Encoder {
        fn eval<T: Scalar>(&self, p: &[T]) -> T {
            let net = self.net();
            let (params, ctx) = p.split_at(net.len());
            let input: Vec<f64> = (0..20).map(|k| (f64::from(k) * 0.37).sin()).collect();
            let (mut rows, mut one, mut chained) = (Vec::new(), Vec::new(), Vec::new());
            if self.ops {
                net.apply_rows(params, &input, 4, &mut rows);
                net.apply_row_context(params, &input[10..15], ctx, &mut one);
                net.apply_row_context(params, &input[..5], &rows[..2], &mut chained);
            } else {
                net.scalar_rows(params, &input, 4, &mut rows);
                net.scalar_row_context(params, &input[10..15], ctx, &mut one);
                net.scalar_row_context(params, &input[..5], &rows[..2], &mut chained);
            }
            let all = rows.iter().chain(&one).chain(&chained);
            all.zip(1..).fold(T::constant(0.0), |acc, (&v, k)| {
                acc + v * (1.0 + 0.1 * f64::from(k)) + v.square() * 0.3
            })
        }
    }

    #[test]
    fn mlp_ops_have_the_scalar_loops_values_and_gradients() {
        for activation in [Activation::Tanh, Activation::Softplus, Activation::Relu] {
            let ops = Encoder {
                ops: true,
                activation,
            };
            let scalar = Encoder {
                ops: false,
                activation,
            };
            let len = ops.net().len() + 2;
            let x: Vec<f64> = (0..len)
                .map(|k| ((k * 29 % 31) as f64 / 31.0 - 0.5) * 0.9)
                .collect();
            // The op's activations are the batched networks' vectorised
            // tanh and softplus (`Activation::apply`), the scalar loop's
            // `std`'s: the same values within rounding, and the op's the
            // same bits on every engine.
            let value = ops.eval(&x);
            close(&[value], &[scalar.eval(&x)], 1e-13, "f64 values");
            let (tv, tape) = TapeEngine.value_and_gradient(&ops, &x);
            let (sv, reference) = TapeEngine.value_and_gradient(&scalar, &x);
            assert_eq!(tv.to_bits(), value.to_bits(), "tape values");
            close(&[tv], &[sv], 1e-13, "tape values against the scalar tape's");
            close(
                &tape,
                &reference,
                1e-12,
                "tape against the scalar loop's tape",
            );
            let (dv, forward) = ForwardEngine::<8>::new().value_and_gradient(&ops, &x);
            assert_eq!(dv.to_bits(), value.to_bits(), "dual values");
            close(
                &forward,
                &reference,
                1e-12,
                "duals against the scalar loop's tape",
            );
            if activation != Activation::Relu {
                close(
                    &tape,
                    &finite_differences(&ops, &x),
                    1e-6,
                    "finite differences",
                );
            }
            // The context alone (the weights constants), and the weights alone.
            for directions in [len - 2..len, 0..len - 2] {
                let mut out = vec![0.0; directions.len()];
                TapeEngine.value_and_partial_gradient_into(&ops, &x, directions.clone(), &mut out);
                close(&out, &reference[directions.clone()], 1e-12, "tape, partial");
                ForwardEngine::<4>::new().value_and_partial_gradient_into(
                    &ops,
                    &x,
                    directions.clone(),
                    &mut out,
                );
                close(&out, &reference[directions], 1e-12, "duals, partial");
            }
        }
    }
}
