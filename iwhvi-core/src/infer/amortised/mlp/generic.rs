//! The network of [`Mlp`] evaluated generic over [`Scalar`], for the
//! encoders a guide struct declares (`#[encoder(...)]`): the same
//! parameter layout and initialisation as the batched kernels, evaluated
//! with the scalar type of the engine at hand (plain `f64`, forward
//! duals, the tape), one row at a time.

use rand::Rng;

use super::dense::{
    accumulate, activate, add_rows, back_inputs, back_weights, broadcast, simd,
    simd_vector_function, slope,
};
use super::{Activation, LayerShape, Mlp, gemm};
use crate::Scalar;
use crate::prob::plate::gather_table_rows;
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
    /// One [`Scalar::vector_op`] whose layers are matrix products over the
    /// rows (`H_{l+1} = a(H_l W_l + 1 b_lᵀ)`, the batched networks'
    /// kernel): values within rounding of the scalar loop, and each row's
    /// the same bits whichever other rows the call holds.
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
        let op = MlpOp::new(self, input[..rows * self.inputs].to_vec(), rows, false);
        T::vector_op(op, &[&params[..self.len()]], out);
    }

    /// [`Mlp::apply_rows`] on the rows `picked` of `input` (`input[p *
    /// inputs..]` for each `p` of `picked`, in that order): the rows are
    /// copied once, into the operation, rather than gathered by the caller
    /// and copied again (a minibatch's rows of an encoder's data). Output
    /// `o` of the `k`-th picked row is `out[o * picked.len() + k]`, the
    /// same bits as `apply_rows` on those rows gathered.
    ///
    /// # Panics
    /// If `params` is shorter than `len()` or a picked row lies past the
    /// end of `input`.
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, Mlp};
    /// let net = Mlp::new(1, 0, &[], 2, Activation::Tanh, 0);
    /// let params = [2.0, 3.0, 1.0, -1.0];
    /// // rows 2 and 0 of x = (1, 2, 3): out = (2 x + 1, 3 x − 1)
    /// let (mut picked, mut gathered) = (Vec::new(), Vec::new());
    /// net.apply_rows_of(&params, &[1.0, 2.0, 3.0], &[2, 0], &mut picked);
    /// net.apply_rows(&params, &[3.0, 1.0], 2, &mut gathered);
    /// assert_eq!(picked, vec![7.0, 3.0, 8.0, 2.0]);
    /// assert_eq!(picked, gathered);
    /// ```
    pub fn apply_rows_of<T: Scalar>(
        &self,
        params: &[T],
        input: &[f64],
        picked: &[usize],
        out: &mut Vec<T>,
    ) {
        let rows = gather_table_rows(input, self.inputs, picked);
        let op = MlpOp::new(self, rows, picked.len(), false);
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
        let op = MlpOp::new(self, input[..self.inputs].to_vec(), 1, true);
        T::vector_op(op, &[&params[..self.len()], &context[..self.context]], out);
    }
}

/// The network on `rows` rows of plain inputs as one [`VectorFunction`]:
/// blocks `[params]` (context taken as zero) or `[params, context]` (one
/// context for every row); outputs `y[o · rows + r]`.
///
/// Without a context ([`Mlp::apply_rows`]) each layer is `H_{l+1} =
/// a(H_l W_l + 1 b_lᵀ)`, one matrix product over the rows (the batched
/// networks' [`gemm`] into rows preset to the bias). A thin layer (at most
/// four inputs) takes `gemm`'s direct loop: per entry the bias, then the
/// inputs' terms in order, as the scalar loop adds them. A wider one goes
/// to `matrixmultiply::dgemm`: the products summed in its kernel's order
/// (with fused multiply-adds where it picks its FMA kernel), then added to
/// the bias; within rounding of the scalar loop, and, as matrixmultiply
/// picks its kernel at run time, the bits may differ between instruction
/// sets. Either way a row's values do not depend on the other rows (each
/// entry is summed alone), so a minibatch's rows are the whole batch's
/// bits. With a context (one row, [`Mlp::apply_row_context`]) the forward
/// pass is the scalar loop's (per output: the bias, then the inputs'
/// terms, then the context's, in order), which
/// [`Mlp::apply_row_context_from`] repeats bit for bit. Either way, on one
/// machine, `f64` values do not depend on the engine.
struct MlpOp {
    shapes: Vec<LayerShape>,
    offset: usize,
    activation: Activation,
    input: Vec<f64>,
    rows: usize,
    with_context: bool,
    /// Every layer's outputs (after the activation) of every row, layer
    /// after layer, each `rows × outputs` row-major, kept by `eval` for
    /// the derivatives.
    saved: Vec<f64>,
    /// Where each layer's outputs start in `saved`, and its end.
    starts: Vec<usize>,
}

impl MlpOp {
    fn new(net: &Mlp, input: Vec<f64>, rows: usize, with_context: bool) -> Self {
        let shapes = net.shapes();
        let starts = std::iter::once(0)
            .chain(shapes.iter().scan(0, |at, s| {
                *at += rows * s.outputs;
                Some(*at)
            }))
            .collect();
        Self {
            shapes,
            offset: net.offset,
            activation: net.activation,
            input,
            rows,
            with_context,
            saved: Vec::new(),
            starts,
        }
    }

    fn activation(&self, l: usize) -> Option<Activation> {
        (l + 1 < self.shapes.len()).then_some(self.activation)
    }

    /// Matrix products over the rows (no context), or the row loop.
    fn matrix(&self) -> bool {
        !self.with_context
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

    /// Layer `l`'s outputs of every row in `saved`.
    fn layer<'a>(&self, l: usize, saved: &'a [f64]) -> &'a [f64] {
        &saved[self.starts[l]..self.starts[l + 1]]
    }

    /// The input of layer `l` on every row (`rows × inputs`): the rows
    /// themselves, or layer `l − 1`'s outputs in `saved`.
    fn layer_input<'a>(&'a self, l: usize, saved: &'a [f64]) -> &'a [f64] {
        if l == 0 {
            &self.input
        } else {
            self.layer(l - 1, saved)
        }
    }

    /// The first layer's row-independent part, `b₀ + W_cᵀ c` (or `b₀`).
    fn first_bias(b: &[f64], wc: &[f64], c: Option<&[f64]>) -> Vec<f64> {
        let mut base = b.to_vec();
        if let Some(c) = c {
            accumulate(wc, c, &mut base);
        }
        base
    }
}

simd_vector_function!(MlpOp);

/// The op's passes, each run through [`simd`] by the [`VectorFunction`]
/// impl.
impl MlpOp {
    fn outputs_len(&self) -> usize {
        self.rows * self.shapes.last().map_or(0, |s| s.outputs)
    }

    #[inline(always)]
    fn forward(&mut self, x: &[&[f64]], y: &mut [f64]) {
        let (params, context) = (x[0], self.context(x));
        let mut saved = std::mem::take(&mut self.saved);
        saved.clear();
        saved.reserve(self.starts.last().copied().unwrap_or(0));
        for (l, s) in self.shapes.iter().enumerate() {
            let [w, wc, b] = self.parts(s, params);
            let c = context.filter(|_| l == 0);
            // Each row starts from its bias (the matrix path's with the
            // context's term), appended: no zero-fill before it.
            let first = self.matrix().then(|| Self::first_bias(b, wc, c));
            let base = first.as_deref().unwrap_or(b);
            for _ in 0..self.rows {
                saved.extend_from_slice(base);
            }
            debug_assert_eq!(saved.len(), self.starts[l + 1]);
            let (done, a) = saved.split_at_mut(self.starts[l]);
            let input = self.layer_input(l, done);
            if self.matrix() {
                gemm(
                    self.rows, s.inputs, s.outputs, input, false, w, false, 1.0, a,
                );
            } else {
                let rows = a.chunks_exact_mut(s.outputs.max(1));
                for (a, x) in rows.zip(input.chunks_exact(s.inputs.max(1))) {
                    accumulate(w, x, a);
                    if let Some(c) = c {
                        accumulate(wc, c, a);
                    }
                }
            }
            activate(self.activation(l), a);
        }
        let last = self.shapes.len() - 1;
        transpose_into(self.layer(last, &saved), self.rows, y);
        self.saved = saved;
    }

    #[inline(always)]
    fn backward(&self, x: &[&[f64]], _y: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
        let (params, context) = (x[0], self.context(x));
        let (first, rest) = xbar.split_at_mut(1);
        let mut pbar = first[0].as_deref_mut();
        let mut cbar = rest.first_mut().and_then(|c| c.as_deref_mut());
        let rows = self.rows;
        let mut g = vec![0.0; ybar.len()];
        transpose_into(ybar, self.outputs() / rows.max(1), &mut g);
        let mut below = Vec::new();
        for (l, s) in self.shapes.iter().enumerate().rev() {
            let (n, k) = (s.outputs, s.inputs);
            if let Some(act) = self.activation(l) {
                for (go, &v) in g.iter_mut().zip(self.layer(l, &self.saved)) {
                    *go *= slope(Some(act), v);
                }
            }
            let [w, wc, _] = self.parts(s, params);
            let input = self.layer_input(l, &self.saved);
            let c = context.filter(|_| l == 0);
            // The first layer's gradient summed over the rows, where the
            // context (one for every row) needs it.
            let mut sum = Vec::new();
            if c.is_some() {
                sum.resize(n, 0.0);
                add_rows(&g, &mut sum);
            }
            if let Some(pbar) = pbar.as_deref_mut() {
                let [wbar, wcbar, bbar] = self.parts_mut(s, pbar);
                if self.matrix() {
                    gemm(k, rows, n, input, true, &g, false, 1.0, wbar);
                } else {
                    for (x, gr) in input.chunks_exact(k.max(1)).zip(g.chunks_exact(n.max(1))) {
                        back_weights(x, gr, wbar);
                    }
                }
                if let Some(c) = c {
                    back_weights(c, &sum, wcbar);
                }
                add_rows(&g, bbar);
            }
            if l == 0 {
                if let Some(cbar) = cbar.as_deref_mut() {
                    back_inputs(wc, &sum, cbar);
                }
                continue;
            }
            below.clear();
            below.resize(rows * k, 0.0);
            if self.matrix() {
                gemm(rows, n, k, &g, false, w, true, 0.0, &mut below);
            } else {
                let pairs = below
                    .chunks_exact_mut(k.max(1))
                    .zip(g.chunks_exact(n.max(1)));
                for (xb, gr) in pairs {
                    back_inputs(w, gr, xb);
                }
            }
            std::mem::swap(&mut g, &mut below);
        }
    }

    #[inline(always)]
    fn tangent(&self, x: &[&[f64]], _y: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]) {
        let (params, context) = (x[0], self.context(x));
        let (pdot, cdot) = (xdot[0], xdot.get(1).copied().flatten());
        let rows = self.rows;
        let (mut t, mut next) = (Vec::new(), Vec::new());
        for (l, s) in self.shapes.iter().enumerate() {
            let (n, k) = (s.outputs, s.inputs);
            let [w, wc, _] = self.parts(s, params);
            let input = self.layer_input(l, &self.saved);
            let c = context.filter(|_| l == 0);
            next.clear();
            next.resize(rows * n, 0.0);
            if self.matrix() {
                let mut base = match pdot {
                    Some(pdot) => {
                        let [_, wcdot, bdot] = self.parts(s, pdot);
                        Self::first_bias(bdot, wcdot, c)
                    }
                    None => vec![0.0; n],
                };
                if let (0, Some(cdot)) = (l, cdot) {
                    accumulate(wc, cdot, &mut base);
                }
                broadcast(&base, &mut next);
                if let Some(pdot) = pdot {
                    let wdot = self.parts(s, pdot)[0];
                    gemm(rows, k, n, input, false, wdot, false, 1.0, &mut next);
                }
                if l > 0 {
                    gemm(rows, k, n, &t, false, w, false, 1.0, &mut next);
                }
            } else {
                for r in 0..rows {
                    let d = &mut next[r * n..(r + 1) * n];
                    if let Some(pdot) = pdot {
                        let [wdot, wcdot, bdot] = self.parts(s, pdot);
                        d.copy_from_slice(bdot);
                        accumulate(wdot, &input[r * k..(r + 1) * k], d);
                        if let Some(c) = c {
                            accumulate(wcdot, c, d);
                        }
                    }
                    if l == 0 {
                        if let Some(cdot) = cdot {
                            accumulate(wc, cdot, d);
                        }
                    } else {
                        accumulate(w, &t[r * k..(r + 1) * k], d);
                    }
                }
            }
            if let Some(act) = self.activation(l) {
                for (d, &v) in next.iter_mut().zip(self.layer(l, &self.saved)) {
                    *d *= slope(Some(act), v);
                }
            }
            std::mem::swap(&mut t, &mut next);
        }
        transpose_into(&t, rows, ydot);
    }
}

/// `to[c · rows + r] = from[r · cols + c]`: a `rows × cols` row-major
/// matrix written column by column (`cols = from.len() / rows`).
fn transpose_into(from: &[f64], rows: usize, to: &mut [f64]) {
    let cols = from.len() / rows.max(1);
    for (r, row) in from.chunks_exact(cols.max(1)).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            to[c * rows + r] = v;
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
    /// at offset 3 of the parameters: on 4 and 2 rows (`apply_rows`, matrix
    /// products), on one row
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
            let mut two = Vec::new();
            if self.ops {
                net.apply_rows(params, &input, 4, &mut rows);
                net.apply_rows(params, &input[5..], 2, &mut two);
                net.apply_row_context(params, &input[10..15], ctx, &mut one);
                net.apply_row_context(params, &input[..5], &rows[..2], &mut chained);
            } else {
                net.scalar_rows(params, &input, 4, &mut rows);
                net.scalar_rows(params, &input[5..], 2, &mut two);
                net.scalar_row_context(params, &input[10..15], ctx, &mut one);
                net.scalar_row_context(params, &input[..5], &rows[..2], &mut chained);
            }
            let all = rows.iter().chain(&two).chain(&one).chain(&chained);
            all.zip(1..).fold(T::constant(0.0), |acc, (&v, k)| {
                acc + v * (1.0 + 0.1 * f64::from(k)) + v.square() * 0.3
            })
        }
    }

    /// A row's outputs are the same bits on its own, in a few rows, and in
    /// many (a minibatch's groups are the whole batch's rows), on `f64`
    /// and on the tape.
    #[test]
    fn apply_rows_gives_a_row_the_same_bits_whatever_the_other_rows() {
        let net = Mlp::new(9, 0, &[13], 3, Activation::Tanh, 0);
        let params: Vec<f64> = (0..net.len())
            .map(|k| ((k * 37 % 101) as f64 / 101.0 - 0.5) * 0.6)
            .collect();
        let rows = 23;
        let input: Vec<f64> = (0..rows * 9).map(|k| (k as f64 * 0.37).sin()).collect();
        let mut all = Vec::new();
        net.apply_rows(&params, &input, rows, &mut all);
        let vars: Vec<crate::tape::Var> = params.iter().map(|&p| Scalar::constant(p)).collect();
        for picked in [&[7][..], &[0, 22], &[3, 4, 5, 19, 20]] {
            let subset: Vec<f64> = picked
                .iter()
                .flat_map(|&r| input[r * 9..(r + 1) * 9].iter().copied())
                .collect();
            let (mut some, mut on_tape) = (Vec::new(), Vec::new());
            let (mut of, mut of_on_tape) = (Vec::new(), Vec::new());
            net.apply_rows(&params, &subset, picked.len(), &mut some);
            net.apply_rows(&vars, &subset, picked.len(), &mut on_tape);
            // The rows picked from the whole input: the same bits.
            net.apply_rows_of(&params, &input, picked, &mut of);
            net.apply_rows_of(&vars, &input, picked, &mut of_on_tape);
            for (k, &r) in picked.iter().enumerate() {
                for o in 0..3 {
                    let whole = all[o * rows + r].to_bits();
                    let at = o * picked.len() + k;
                    assert_eq!(some[at].to_bits(), whole, "row {r}");
                    assert_eq!(on_tape[at].value().to_bits(), whole);
                    assert_eq!(of[at].to_bits(), whole, "row {r} picked");
                    assert_eq!(of_on_tape[at].value().to_bits(), whole);
                }
            }
        }
    }

    /// `Σ_o Σ_k c_{o,k} out[o, k]` over the rows `[4, 1, 4]` of a fixed
    /// input: picked from the whole input (`apply_rows_of`) or gathered
    /// first (`apply_rows`).
    struct Picked(bool);

    impl Differentiable for Picked {
        fn eval<T: Scalar>(&self, p: &[T]) -> T {
            let net = Mlp::new(3, 0, &[5], 2, Activation::Tanh, 0);
            let input: Vec<f64> = (0..15).map(|k| (f64::from(k) * 0.61).cos()).collect();
            let picked = [4, 1, 4];
            let mut out = Vec::new();
            if self.0 {
                net.apply_rows_of(p, &input, &picked, &mut out);
            } else {
                let rows: Vec<f64> = picked
                    .iter()
                    .flat_map(|&r| input[r * 3..(r + 1) * 3].iter().copied())
                    .collect();
                net.apply_rows(p, &rows, picked.len(), &mut out);
            }
            out.iter().zip(1..).fold(T::constant(0.0), |acc, (&v, k)| {
                acc + v * (0.5 + 0.2 * f64::from(k))
            })
        }
    }

    #[test]
    fn apply_rows_of_has_the_gathered_rows_value_and_gradient_bit_for_bit() {
        let net = Mlp::new(3, 0, &[5], 2, Activation::Tanh, 0);
        let params: Vec<f64> = (0..net.len())
            .map(|k| ((k * 29 % 43) as f64 / 43.0 - 0.5) * 0.8)
            .collect();
        let (value, grad) = TapeEngine.value_and_gradient(&Picked(true), &params);
        let (want, want_grad) = TapeEngine.value_and_gradient(&Picked(false), &params);
        assert_eq!(value.to_bits(), want.to_bits());
        assert_eq!(grad, want_grad);
        assert!(grad.iter().all(|g| g.is_finite()) && grad.iter().any(|&g| g != 0.0));
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
