//! A context network's first layer split in two (issue 16, the
//! hierarchical encoders of `#[variational]` guides): the part of the
//! data point, `b₀ + W₀ᵀ x`, computed once per point
//! ([`Mlp::first_layer_rows`]), and the rest of the network from that
//! part and a context that changes from call to call (a mixing draw ψ,
//! the latents z), [`Mlp::apply_row_context_from`]. Together they are
//! [`Mlp::apply_row_context`] bit for bit: the first layer's sums are the
//! same additions in the same order (the bias, the inputs' terms, then the
//! context's), only the first half is kept between calls.

use super::dense::{
    accumulate, activate, back_inputs, back_weights, simd, simd_vector_function, slope,
};
use super::{Activation, LayerShape, Mlp};
use crate::Scalar;
use crate::vector::VectorFunction;

impl Mlp {
    /// The data's part of the first layer, `a_r = b₀ + W₀ᵀ x_r`, on `rows`
    /// rows of plain inputs (`input[r * inputs..]`), before the context's
    /// terms and the activation; written row after row, `out[r * width +
    /// o]` (`width` the first layer's outputs), so that a row's part is one
    /// slice for [`Mlp::apply_row_context_from`]. `params` are the
    /// network's own (`len()` values), as in [`Mlp::apply_rows`].
    ///
    /// # Panics
    /// If `params` is shorter than `len()` or `input` than `rows × inputs`.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, Mlp};
    /// // One input, one context input, no hidden layer: a = 2 x + 1.
    /// let net = Mlp::new(1, 1, &[], 1, Activation::Tanh, 0);
    /// let mut first = Vec::new();
    /// net.first_layer_rows(&[2.0, 3.0, 1.0], &[1.0, 2.0], 2, &mut first);
    /// assert_eq!(first, vec![3.0, 5.0]);
    /// ```
    pub fn first_layer_rows<T: Scalar>(
        &self,
        params: &[T],
        input: &[f64],
        rows: usize,
        out: &mut Vec<T>,
    ) {
        let input = input[..rows * self.inputs].to_vec();
        self.first_layer_op(params, input, rows, out);
    }

    /// [`Mlp::first_layer_rows`] on the rows `picked` of `input`
    /// (`input[p * inputs..]` for each `p` of `picked`, in that order),
    /// copied once, into the operation: the `k`-th picked row's part is
    /// `out[k * width..]`, the same bits as `first_layer_rows` on those
    /// rows gathered.
    ///
    /// # Panics
    /// If `params` is shorter than `len()` or a picked row lies past the
    /// end of `input`.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, Mlp};
    /// // a = 2 x + 1 on rows 1 and 0 of x = (1, 2)
    /// let net = Mlp::new(1, 1, &[], 1, Activation::Tanh, 0);
    /// let mut first = Vec::new();
    /// net.first_layer_rows_of(&[2.0, 3.0, 1.0], &[1.0, 2.0], &[1, 0], &mut first);
    /// assert_eq!(first, vec![5.0, 3.0]);
    /// ```
    pub fn first_layer_rows_of<T: Scalar>(
        &self,
        params: &[T],
        input: &[f64],
        picked: &[usize],
        out: &mut Vec<T>,
    ) {
        let rows = crate::prob::plate::gather_table_rows(input, self.inputs, picked);
        self.first_layer_op(params, rows, picked.len(), out);
    }

    fn first_layer_op<T: Scalar>(
        &self,
        params: &[T],
        input: Vec<f64>,
        rows: usize,
        out: &mut Vec<T>,
    ) {
        let shape = self.shapes()[0];
        let op = FirstLayerOp {
            shape,
            offset: self.offset,
            input,
            rows,
        };
        T::vector_op(op, &[&params[..self.len()]], out);
    }

    /// The network on one row from its data part `first` (the row's
    /// slice of [`Mlp::first_layer_rows`], `width` values) and its
    /// `context`: `h₁ = a(first + W_cᵀ c)`, then the layers above as
    /// [`Mlp::apply_row_context`], whose values it gives bit for bit.
    /// `out` is cleared and receives the `outputs` values. Derivatives
    /// reach `W₀` and `b₀` through `first`.
    ///
    /// # Panics
    /// If `params` is shorter than `len()`, `first` than the first layer's
    /// width or `context` than `context`.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, Mlp};
    /// let net = Mlp::new(1, 1, &[], 1, Activation::Tanh, 0);
    /// let params = [2.0, 3.0, 1.0];
    /// let (mut first, mut out, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    /// net.first_layer_rows(&params, &[1.0], 1, &mut first);
    /// // out = (2 x + 1) + 3 c at x = 1, c = 2
    /// net.apply_row_context_from(&params, &first, &[2.0], &mut out);
    /// net.apply_row_context(&params, &[1.0], &[2.0], &mut plain);
    /// assert_eq!(out, vec![9.0]);
    /// assert_eq!(out, plain);
    /// ```
    pub fn apply_row_context_from<T: Scalar>(
        &self,
        params: &[T],
        first: &[T],
        context: &[T],
        out: &mut Vec<T>,
    ) {
        let shapes = self.shapes();
        let width = shapes[0].outputs;
        // The parameters from `W_c` on: `W₀` (the bulk of an encoder of
        // images) is not the op's, which keeps its block (and the tape's
        // scan of it per call) small.
        let base = shapes[0].context_weight;
        let op = FromFirstOp {
            shapes,
            offset: base,
            activation: self.activation,
            saved: Vec::new(),
        };
        let blocks = [
            &params[base - self.offset..self.len()],
            &first[..width],
            &context[..self.context],
        ];
        T::vector_op(op, &blocks, out);
    }
}

/// `a_r = b₀ + W₀ᵀ x_r` on every row as one [`VectorFunction`] of the
/// network's parameters; outputs `y[r · width + o]`.
struct FirstLayerOp {
    shape: LayerShape,
    offset: usize,
    input: Vec<f64>,
    rows: usize,
}

impl FirstLayerOp {
    fn row(&self, r: usize) -> &[f64] {
        let n = self.shape.inputs;
        &self.input[r * n..(r + 1) * n]
    }

    /// `[W₀, b₀]` in the network's own parameters.
    fn ranges(&self) -> [std::ops::Range<usize>; 2] {
        let s = &self.shape;
        let at = |i: usize| i - self.offset;
        [
            at(s.weight)..at(s.context_weight),
            at(s.bias)..at(s.bias) + s.outputs,
        ]
    }
}

/// The passes, run through [`simd`] by the [`VectorFunction`] impl.
impl FirstLayerOp {
    fn outputs_len(&self) -> usize {
        self.rows * self.shape.outputs
    }

    #[inline(always)]
    fn forward(&mut self, x: &[&[f64]], y: &mut [f64]) {
        let [w, b] = self.ranges();
        let n = self.shape.outputs;
        for r in 0..self.rows {
            let a = &mut y[r * n..(r + 1) * n];
            a.copy_from_slice(&x[0][b.clone()]);
            accumulate(&x[0][w.clone()], self.row(r), a);
        }
    }

    #[inline(always)]
    fn backward(&self, _x: &[&[f64]], _y: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
        let Some(pbar) = xbar[0].as_deref_mut() else {
            return;
        };
        let [w, b] = self.ranges();
        let n = self.shape.outputs;
        for r in 0..self.rows {
            let g = &ybar[r * n..(r + 1) * n];
            back_weights(self.row(r), g, &mut pbar[w.clone()]);
            pbar[b.clone()]
                .iter_mut()
                .zip(g)
                .for_each(|(v, &go)| *v += go);
        }
    }

    #[inline(always)]
    fn tangent(&self, _x: &[&[f64]], _y: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]) {
        let [w, b] = self.ranges();
        let n = self.shape.outputs;
        let Some(pdot) = xdot[0] else {
            ydot.fill(0.0);
            return;
        };
        for r in 0..self.rows {
            let d = &mut ydot[r * n..(r + 1) * n];
            d.copy_from_slice(&pdot[b.clone()]);
            accumulate(&pdot[w.clone()], self.row(r), d);
        }
    }
}

simd_vector_function!(FirstLayerOp);

/// The network on one row from its first layer's data part: blocks
/// `[params, first, context]`, `params` the network's from `W_c` on
/// (`offset` the index of `W_c`; layer 0's `W₀` range is empty).
/// Forward: `first`, plus the context's terms, the activation, then each
/// layer above as the scalar loop.
struct FromFirstOp {
    shapes: Vec<LayerShape>,
    offset: usize,
    activation: Activation,
    /// Every layer's outputs (after the activation), kept by `eval`.
    saved: Vec<f64>,
}

impl FromFirstOp {
    fn activation(&self, l: usize) -> Option<Activation> {
        (l + 1 < self.shapes.len()).then_some(self.activation)
    }

    /// Layer `s`'s weights, context weights and biases as ranges of the
    /// network's own parameters.
    fn ranges(&self, s: &LayerShape) -> [std::ops::Range<usize>; 3] {
        let at = |i: usize| i.saturating_sub(self.offset);
        [
            at(s.weight)..at(s.context_weight),
            at(s.context_weight)..at(s.bias),
            at(s.bias)..at(s.bias) + s.outputs,
        ]
    }

    /// Where layer `l`'s outputs sit in `saved`.
    fn span(&self, l: usize) -> std::ops::Range<usize> {
        let start: usize = self.shapes[..l].iter().map(|s| s.outputs).sum();
        start..start + self.shapes[l].outputs
    }
}

/// The passes, run through [`simd`] by the [`VectorFunction`] impl.
impl FromFirstOp {
    fn outputs_len(&self) -> usize {
        self.shapes.last().map_or(0, |s| s.outputs)
    }

    #[inline(always)]
    fn forward(&mut self, x: &[&[f64]], y: &mut [f64]) {
        let (params, first, context) = (x[0], x[1], x[2]);
        let mut saved = std::mem::take(&mut self.saved);
        saved.clear();
        for (l, s) in self.shapes.iter().enumerate() {
            let [w, wc, b] = self.ranges(s);
            let start = saved.len();
            if l == 0 {
                saved.extend_from_slice(first);
                accumulate(&params[wc], context, &mut saved[start..]);
            } else {
                saved.extend_from_slice(&params[b]);
                let (below, a) = saved.split_at_mut(start);
                accumulate(&params[w], &below[self.span(l - 1)], a);
            }
            activate(self.activation(l), &mut saved[start..]);
        }
        let last = self.span(self.shapes.len() - 1);
        y.copy_from_slice(&saved[last]);
        self.saved = saved;
    }

    #[inline(always)]
    fn backward(&self, x: &[&[f64]], _y: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
        let (params, context) = (x[0], x[2]);
        let [pbar, firstbar, cbar] = xbar else {
            return;
        };
        let mut g = ybar.to_vec();
        let mut below = Vec::new();
        for (l, s) in self.shapes.iter().enumerate().rev() {
            let out = &self.saved[self.span(l)];
            for (go, &v) in g.iter_mut().zip(out) {
                *go *= slope(self.activation(l), v);
            }
            let [w, wc, b] = self.ranges(s);
            if l == 0 {
                if let Some(pbar) = pbar.as_deref_mut() {
                    back_weights(context, &g, &mut pbar[wc.clone()]);
                }
                if let Some(fbar) = firstbar.as_deref_mut() {
                    fbar.iter_mut().zip(&g).for_each(|(v, &go)| *v += go);
                }
                if let Some(cbar) = cbar.as_deref_mut() {
                    back_inputs(&params[wc], &g, cbar);
                }
                break;
            }
            let input = &self.saved[self.span(l - 1)];
            if let Some(pbar) = pbar.as_deref_mut() {
                back_weights(input, &g, &mut pbar[w.clone()]);
                pbar[b].iter_mut().zip(&g).for_each(|(v, &go)| *v += go);
            }
            below.clear();
            below.resize(s.inputs, 0.0);
            back_inputs(&params[w], &g, &mut below);
            std::mem::swap(&mut g, &mut below);
        }
    }

    #[inline(always)]
    fn tangent(&self, x: &[&[f64]], _y: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]) {
        let (params, context) = (x[0], x[2]);
        let (pdot, fdot, cdot) = (xdot[0], xdot[1], xdot[2]);
        let (mut t, mut next) = (Vec::new(), Vec::new());
        for (l, s) in self.shapes.iter().enumerate() {
            let [w, wc, b] = self.ranges(s);
            next.clear();
            next.resize(s.outputs, 0.0);
            if l == 0 {
                if let Some(fdot) = fdot {
                    next.copy_from_slice(fdot);
                }
                if let Some(pdot) = pdot {
                    accumulate(&pdot[wc.clone()], context, &mut next);
                }
                if let Some(cdot) = cdot {
                    accumulate(&params[wc], cdot, &mut next);
                }
            } else {
                if let Some(pdot) = pdot {
                    next.copy_from_slice(&pdot[b]);
                    accumulate(&pdot[w.clone()], &self.saved[self.span(l - 1)], &mut next);
                }
                accumulate(&params[w], &t, &mut next);
            }
            for (d, &v) in next.iter_mut().zip(&self.saved[self.span(l)]) {
                *d *= slope(self.activation(l), v);
            }
            std::mem::swap(&mut t, &mut next);
        }
        ydot.copy_from_slice(&t);
    }
}

simd_vector_function!(FromFirstOp);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ad::checks::{close, finite_differences};
    use crate::tape::TapeEngine;
    use crate::{Differentiable, ForwardEngine};

    /// A context network on 3 rows, each run at 3 contexts (the values of
    /// the parameter vector's tail and products of them, so derivatives
    /// flow through the context): through the first layer's data part
    /// (`split`) or the plain [`Mlp::apply_row_context`].
    struct Draws {
        split: bool,
        net: Mlp,
    }

    impl Differentiable for Draws {
        fn eval<T: Scalar>(&self, p: &[T]) -> T {
            let (params, ctx) = p.split_at(self.net.len());
            let (inputs, width) = (5, self.net.shapes()[0].outputs);
            let input: Vec<f64> = (0..3 * inputs)
                .map(|k| (f64::from(k as u32) * 0.37).sin())
                .collect();
            let (mut first, mut out) = (Vec::new(), Vec::new());
            if self.split {
                self.net.first_layer_rows(params, &input, 3, &mut first);
            }
            let mut total = T::constant(0.0);
            for r in 0..3 {
                for k in 0..3 {
                    let c = [ctx[0] * (k as f64 + 0.5), ctx[1] - ctx[0] * (r as f64)];
                    if self.split {
                        let part = &first[r * width..(r + 1) * width];
                        self.net.apply_row_context_from(params, part, &c, &mut out);
                    } else {
                        let row = &input[r * inputs..(r + 1) * inputs];
                        self.net.apply_row_context(params, row, &c, &mut out);
                    }
                    for (o, &v) in out.iter().enumerate() {
                        total += v * (1.0 + 0.1 * (o + r + k) as f64) + v.square() * 0.3;
                    }
                }
            }
            total
        }
    }

    #[test]
    fn the_first_layer_split_has_the_plain_paths_values_and_gradients() {
        let nets = [
            Mlp::new(5, 2, &[18, 4], 3, Activation::Tanh, 3),
            Mlp::new(5, 2, &[20], 4, Activation::Softplus, 0),
            Mlp::new(5, 2, &[], 3, Activation::Tanh, 1),
        ];
        for net in nets {
            let split = Draws {
                split: true,
                net: net.clone(),
            };
            let plain = Draws { split: false, net };
            let len = split.net.len() + 2;
            let x: Vec<f64> = (0..len)
                .map(|k| ((k * 29 % 31) as f64 / 31.0 - 0.5) * 0.9)
                .collect();
            // The same additions in the same order: the same bits.
            assert_eq!(split.eval(&x).to_bits(), plain.eval(&x).to_bits());
            let (sv, tape) = TapeEngine.value_and_gradient(&split, &x);
            let (pv, reference) = TapeEngine.value_and_gradient(&plain, &x);
            assert_eq!(sv.to_bits(), pv.to_bits(), "tape values");
            close(&tape, &reference, 1e-12, "tape against the plain path");
            let (dv, forward) = ForwardEngine::<8>::new().value_and_gradient(&split, &x);
            assert_eq!(dv.to_bits(), pv.to_bits(), "dual values");
            close(&forward, &reference, 1e-12, "duals against the plain path");
            close(
                &tape,
                &finite_differences(&split, &x),
                1e-6,
                "finite differences",
            );
            // The context alone (the weights constants), and the weights alone.
            for directions in [len - 2..len, 0..len - 2] {
                let mut out = vec![0.0; directions.len()];
                TapeEngine.value_and_partial_gradient_into(
                    &split,
                    &x,
                    directions.clone(),
                    &mut out,
                );
                close(&out, &reference[directions.clone()], 1e-12, "tape, partial");
                ForwardEngine::<4>::new().value_and_partial_gradient_into(
                    &split,
                    &x,
                    directions.clone(),
                    &mut out,
                );
                close(&out, &reference[directions], 1e-12, "duals, partial");
            }
        }
    }
}
