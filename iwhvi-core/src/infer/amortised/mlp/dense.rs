//! A dense layer `y = a(W x + b)` as one [`VectorFunction`], and the
//! `f64` kernels it shares with the generic [`Mlp`](super::Mlp): a
//! layer's forward pass in the order of the scalar loop
//! (`a = b; a += W[i] x[i]` for `i` ascending), its vector–Jacobian and
//! Jacobian–vector products.

use super::{Activation, gemm};
use crate::Scalar;
use crate::plate::vmath::{self, Simd};
use crate::vector::VectorFunction;

/// Runs `work` compiled for the CPU's best instruction set
/// ([`vmath::dispatch`]: an AVX2 or AVX-512 clone where the CPU has it):
/// the kernels below inline into it, and their own loops, which add in a
/// fixed order with no fused multiply-add (Rust never contracts `a * b +
/// c`, even where the AVX-512 clone has FMA), give the same bits on each. A matrix product over more than four inner terms ([`gemm`]'s
/// `matrixmultiply::dgemm`) is another matter: matrixmultiply picks its
/// kernel at run time (FMA/AVX2, AVX or SSE2), so those bits are fixed on
/// one machine (the same for every engine and every row) but may differ
/// between instruction sets.
///
/// Mark the closure `#[inline(always)]` (`simd(#[inline(always)] || …)`):
/// a closure is a function of its own, which LLVM, by its size, may keep
/// out of the clones, compiled for the baseline instruction set.
#[inline(always)]
pub(super) fn simd<R>(work: impl FnOnce() -> R) -> R {
    struct Work<F>(F);
    impl<R, F: FnOnce() -> R> Simd for Work<F> {
        type Output = R;
        #[inline(always)]
        fn run(self) -> R {
            (self.0)()
        }
    }
    vmath::dispatch(Work(work))
}

/// `impl VectorFunction for $op` from the op's inherent passes, each run
/// through [`simd`]: `outputs_len(&self)`, and the `#[inline(always)]`
/// `forward` (`eval`), `backward` (`vjp`) and `tangent` (`jvp`), with the
/// trait methods' arguments. `forward` must assign every output
/// ([`VectorFunction::writes_every_output`]).
macro_rules! simd_vector_function {
    ($op:ty) => {
        impl VectorFunction for $op {
            fn outputs(&self) -> usize {
                self.outputs_len()
            }

            /// `forward` assigns every output.
            fn writes_every_output(&self) -> bool {
                true
            }

            fn eval(&mut self, x: &[&[f64]], y: &mut [f64]) {
                simd(
                    #[inline(always)]
                    || self.forward(x, y),
                );
            }

            fn vjp(&self, x: &[&[f64]], y: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
                simd(
                    #[inline(always)]
                    || self.backward(x, y, ybar, xbar),
                );
            }

            fn jvp(&self, x: &[&[f64]], y: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]) {
                simd(
                    #[inline(always)]
                    || self.tangent(x, y, xdot, ydot),
                );
            }
        }
    };
}
pub(super) use simd_vector_function;

/// `a[o] += Σᵢ w[i · n + o] x[i]` (`n = a.len()`), `i` ascending: per
/// output, the additions of the scalar loop in its order.
///
/// Sixteen outputs at a time, their sums held in registers across the
/// inputs (each output's additions are still the loop's, in its order).
#[inline(always)]
pub(super) fn accumulate(w: &[f64], x: &[f64], a: &mut [f64]) {
    const B: usize = 16;
    let n = a.len();
    let blocked = n / B * B;
    for start in (0..blocked).step_by(B) {
        let mut acc = [0.0; B];
        acc.copy_from_slice(&a[start..start + B]);
        for (i, &xi) in x.iter().enumerate() {
            let row = &w[i * n + start..i * n + start + B];
            for k in 0..B {
                acc[k] += row[k] * xi;
            }
        }
        a[start..start + B].copy_from_slice(&acc);
    }
    for (o, ao) in a.iter_mut().enumerate().skip(blocked) {
        for (i, &xi) in x.iter().enumerate() {
            *ao += w[i * n + o] * xi;
        }
    }
}

/// `x̄[i] += Σₒ w[i · n + o] ḡ[o]` (`n = g.len()`).
#[inline(always)]
pub(super) fn back_inputs(w: &[f64], g: &[f64], xbar: &mut [f64]) {
    let n = g.len();
    for (xb, row) in xbar.iter_mut().zip(w.chunks_exact(n)) {
        *xb += dot(row, g);
    }
}

/// `Σₖ a[k] b[k]` in eight interleaved partial sums (which the compiler
/// vectorises; a single running sum it may not reorder).
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    const LANES: usize = 8;
    let split = a.len().min(b.len()) / LANES * LANES;
    let mut acc = [0.0; LANES];
    for (x, y) in a[..split]
        .chunks_exact(LANES)
        .zip(b[..split].chunks_exact(LANES))
    {
        for k in 0..LANES {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f64 = a[split..].iter().zip(&b[split..]).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f64>() + tail
}

/// `w̄[i · n + o] += x[i] ḡ[o]` (`n = g.len()`).
#[inline(always)]
pub(super) fn back_weights(x: &[f64], g: &[f64], wbar: &mut [f64]) {
    let n = g.len();
    for (&xi, row) in x.iter().zip(wbar.chunks_exact_mut(n)) {
        for (wb, &go) in row.iter_mut().zip(g) {
            *wb += xi * go;
        }
    }
}

/// `a'(z)` at the point whose output is `y = a(z)`: `1 − y²` for tanh,
/// `[y > 0]` for the ReLU (0 at 0, as [`Activation::apply_scalar`]),
/// `σ(z) = 1 − e^{−y}` for softplus, 1 without an activation.
#[inline(always)]
pub(super) fn slope(activation: Option<Activation>, y: f64) -> f64 {
    match activation {
        None => 1.0,
        Some(Activation::Tanh) => 1.0 - y * y,
        Some(Activation::Relu) => f64::from(u8::from(y > 0.0)),
        Some(Activation::Softplus) => -(-y).exp_m1(),
    }
}

/// `a(z)` in place, as [`Activation::apply`] (the batched networks'
/// vectorised `tanh` and softplus, within 10⁻¹² relative of
/// [`Activation::apply_scalar`]'s `std` functions, and the same on every
/// instruction set).
#[inline(always)]
pub(super) fn activate(activation: Option<Activation>, a: &mut [f64]) {
    if let Some(act) = activation {
        super::Activate(act, a).run();
    }
}

/// A dense layer `y = a(W x + b)`, `W` of `outputs × inputs`, as one
/// operation on every [`Scalar`] (one op on the reverse tape instead of a
/// node per multiply-add): the layer of a learned decoder in a model.
///
/// `W` is stored column by column, `W[(o, i)]` at `i · outputs + o`: the
/// layout of a `DMatrix` of `outputs` rows (a `#[param(rows = …, cols =
/// …)]` matrix's `as_slice()`), and the row-major `inputs × outputs`
/// layout of [`Mlp`](super::Mlp)'s layers. Each output is
/// `b[o] + W[(o, 0)] x[0] + W[(o, 1)] x[1] + …` added in that order, then
/// the activation (none: the identity).
///
/// Derivatives: with `ḡ = ȳ ⊙ a'`, `W̄ = ḡ xᵀ`, `b̄ = ḡ`, `x̄ = Wᵀ ḡ`
/// (reverse); `ẏ = a' ⊙ (Ẇ x + W ẋ + ḃ)` (forward).
///
/// ```
/// use iwhvi_core::amortised::{Activation, Dense};
/// use iwhvi_core::tape::TapeEngine;
/// use iwhvi_core::{Differentiable, Scalar};
///
/// // A decoder z ∈ R² → 3 tanh → 2 logits, weights learned: p = (W₀, b₀, W₁, b₁).
/// struct Decoder;
/// impl Differentiable for Decoder {
///     fn eval<T: Scalar>(&self, p: &[T]) -> T {
///         let z = [T::constant(0.5), T::constant(-1.0)];
///         let (w0, rest) = p.split_at(6);
///         let (b0, rest) = rest.split_at(3);
///         let (w1, b1) = rest.split_at(6);
///         let (mut h, mut logits) = (Vec::new(), Vec::new());
///         Dense::new(2, 3, Some(Activation::Tanh)).apply(w0, b0, &z, &mut h);
///         Dense::new(3, 2, None).apply(w1, b1, &h, &mut logits);
///         logits[0] - logits[1]
///     }
/// }
/// let p: Vec<f64> = (0..17).map(|i| 0.1 * f64::from(i) - 0.8).collect();
/// let (value, grad) = TapeEngine.value_and_gradient(&Decoder, &p);
/// // ∂/∂b₁ = (1, −1): the logits' biases enter with slope one.
/// assert_eq!(&grad[15..], &[1.0, -1.0]);
/// assert_eq!(value, Decoder.eval(&p));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dense {
    inputs: usize,
    outputs: usize,
    activation: Option<Activation>,
}

impl Dense {
    /// A layer from `inputs` to `outputs` units, with an activation or
    /// none (a linear layer).
    ///
    /// ```
    /// let layer = iwhvi_core::amortised::Dense::new(64, 2, None);
    /// assert_eq!(layer.len(), 64 * 2 + 2);
    /// ```
    pub const fn new(inputs: usize, outputs: usize, activation: Option<Activation>) -> Self {
        Self {
            inputs,
            outputs,
            activation,
        }
    }

    /// The number of parameters, `(inputs + 1) · outputs`.
    ///
    /// ```
    /// assert_eq!(iwhvi_core::amortised::Dense::new(3, 4, None).len(), 16);
    /// ```
    pub const fn len(&self) -> usize {
        (self.inputs + 1) * self.outputs
    }

    /// True when the layer has no outputs (and no parameters).
    ///
    /// ```
    /// assert!(iwhvi_core::amortised::Dense::new(3, 0, None).is_empty());
    /// ```
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `out = a(W x + b)`, one [`Scalar::vector_op`]: `w` the
    /// `outputs × inputs` weights column by column (see [`Dense`]), `b`
    /// the `outputs` biases, `x` the `inputs` inputs; `out` is cleared and
    /// receives the `outputs` values.
    ///
    /// # Panics
    /// If `w`, `b` or `x` has the wrong length (the message names it).
    ///
    /// ```
    /// use iwhvi_core::amortised::Dense;
    /// // W = [[1, 2], [3, 4]] (column by column: 1, 3, 2, 4), b = (0, 1), x = (1, 1).
    /// let mut y = Vec::new();
    /// Dense::new(2, 2, None).apply(&[1.0, 3.0, 2.0, 4.0], &[0.0, 1.0], &[1.0, 1.0], &mut y);
    /// assert_eq!(y, vec![3.0, 8.0]);
    /// ```
    pub fn apply<T: Scalar>(&self, w: &[T], b: &[T], x: &[T], out: &mut Vec<T>) {
        let (i, o) = (self.inputs, self.outputs);
        assert_eq!(
            w.len(),
            i * o,
            "Dense::apply: w needs outputs × inputs = {o} × {i} values"
        );
        assert_eq!(b.len(), o, "Dense::apply: b needs outputs = {o} values");
        assert_eq!(x.len(), i, "Dense::apply: x needs inputs = {i} values");
        T::vector_op(*self, &[w, b, x], out);
    }

    /// The layer on `rows` rows at once, one [`Scalar::vector_op`]:
    /// `x` holds the rows' inputs row after row (`rows × inputs`,
    /// `x[r · inputs + i]`), `out` is cleared and receives the rows'
    /// outputs row after row (`rows × outputs`), `out_r = a(W x_r + b)`.
    /// With `X` the rows as a matrix and `Wᵀ` the weights as stored
    /// (`inputs × outputs`, see [`Dense`]), `Y = a(X Wᵀ + 1 bᵀ)`: the
    /// products run as matrix products (the batched networks' kernel), so
    /// a row's value is [`Dense::apply`]'s within rounding (the additions'
    /// order differs), the same bits on every engine and whichever other
    /// rows the call holds (a minibatch's rows are the whole data's).
    ///
    /// Derivatives, with `G = Ȳ ⊙ a'`: `W̄ᵀ += Xᵀ G`, `b̄ += Gᵀ 1` (the
    /// column sums), `X̄ += G W` (reverse); `Ẏ = a' ⊙ (Ẋ Wᵀ + X Ẇᵀ + 1 ḃᵀ)`
    /// (forward).
    ///
    /// # Panics
    /// If `w`, `b` or `x` has the wrong length (the message names it): a
    /// programming error of the caller, as for [`Dense::apply`].
    ///
    /// ```
    /// use iwhvi_core::amortised::Dense;
    /// // W = [[1, 2], [3, 4]] (column by column: 1, 3, 2, 4), b = (0, 1),
    /// // on the rows x = (1, 1) and x = (1, 0).
    /// let mut y = Vec::new();
    /// let layer = Dense::new(2, 2, None);
    /// layer.apply_rows(&[1.0, 3.0, 2.0, 4.0], &[0.0, 1.0], &[1.0, 1.0, 1.0, 0.0], 2, &mut y);
    /// assert_eq!(y, vec![3.0, 8.0, 1.0, 4.0]);
    /// ```
    pub fn apply_rows<T: Scalar>(&self, w: &[T], b: &[T], x: &[T], rows: usize, out: &mut Vec<T>) {
        let (i, o) = (self.inputs, self.outputs);
        assert_eq!(
            w.len(),
            i * o,
            "Dense::apply_rows: w needs outputs × inputs = {o} × {i} values"
        );
        assert_eq!(
            b.len(),
            o,
            "Dense::apply_rows: b needs outputs = {o} values"
        );
        assert_eq!(
            x.len(),
            rows * i,
            "Dense::apply_rows: x needs rows × inputs = {rows} × {i} values"
        );
        let op = DenseRows { layer: *self, rows };
        T::vector_op(op, &[w, b, x], out);
    }
}

/// Stack room for a layer's `ḡ` in [`Dense`]'s adjoint (wider layers
/// take a `Vec`).
const STACK_OUTPUTS: usize = 128;

/// [`Dense::apply_rows`]'s op: blocks `[W, b, X]`, outputs row after row.
struct DenseRows {
    layer: Dense,
    rows: usize,
}

/// Every row of `a` (`· × base.len()`) set to `base`: the rows of a
/// layer's pre-activations starting at its bias.
pub(super) fn broadcast(base: &[f64], a: &mut [f64]) {
    for row in a.chunks_exact_mut(base.len().max(1)) {
        row.copy_from_slice(base);
    }
}

/// Sums the rows of `g` (`· × sum.len()`) into `sum`, row after row: a
/// bias's adjoint from its rows' adjoints.
pub(super) fn add_rows(g: &[f64], sum: &mut [f64]) {
    for row in g.chunks_exact(sum.len().max(1)) {
        sum.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
    }
}

impl DenseRows {
    /// The products from the pre-activations' adjoints `g` (`ȳ ⊙ a'`):
    /// `W̄ᵀ += Xᵀ G`, `b̄ += Gᵀ 1`, `X̄ += G W`.
    fn back(&self, x: &[&[f64]], g: &[f64], xbar: &mut [Option<&mut [f64]>]) {
        let (n, i, o) = (self.rows, self.layer.inputs, self.layer.outputs);
        if let Some(wbar) = xbar[0].as_deref_mut() {
            gemm(i, n, o, x[2], true, g, false, 1.0, wbar);
        }
        if let Some(bbar) = xbar[1].as_deref_mut() {
            add_rows(g, bbar);
        }
        if let Some(inputs) = xbar[2].as_deref_mut() {
            gemm(n, o, i, g, false, x[0], true, 1.0, inputs);
        }
    }
}

impl VectorFunction for DenseRows {
    fn outputs(&self) -> usize {
        self.rows * self.layer.outputs
    }

    /// Every row starts at the bias (`broadcast`), then accumulates.
    fn writes_every_output(&self) -> bool {
        true
    }

    fn eval(&mut self, x: &[&[f64]], y: &mut [f64]) {
        let (n, i, o) = (self.rows, self.layer.inputs, self.layer.outputs);
        broadcast(x[1], y);
        gemm(n, i, o, x[2], false, x[0], false, 1.0, y);
        simd(
            #[inline(always)]
            || activate(self.layer.activation, y),
        );
    }

    fn vjp(&self, x: &[&[f64]], y: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
        // A linear layer's pre-activations' adjoints are `ȳ` itself (no
        // copy of the rows × outputs block); an activated one's are
        // `ȳ ⊙ a'(y)`, written once into a copy.
        match self.layer.activation {
            Some(_) => self.vjp_overwriting(x, y, &mut ybar.to_vec(), xbar),
            None => self.back(x, ybar, xbar),
        }
    }

    /// `ȳ ⊙ a'(y)` written over `ȳ` (the tape's adjoints, discarded after
    /// the op), then the products: no buffer of the rows × outputs block.
    fn vjp_overwriting(
        &self,
        x: &[&[f64]],
        y: &[f64],
        ybar: &mut [f64],
        xbar: &mut [Option<&mut [f64]>],
    ) {
        if let Some(act) = self.layer.activation {
            simd(
                #[inline(always)]
                || {
                    for (yb, &v) in ybar.iter_mut().zip(y) {
                        *yb *= slope(Some(act), v);
                    }
                },
            );
        }
        self.back(x, ybar, xbar);
    }

    fn jvp(&self, x: &[&[f64]], y: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]) {
        let (n, i, o) = (self.rows, self.layer.inputs, self.layer.outputs);
        match xdot[1] {
            Some(bdot) => broadcast(bdot, ydot),
            None => ydot.fill(0.0),
        }
        if let Some(wdot) = xdot[0] {
            gemm(n, i, o, x[2], false, wdot, false, 1.0, ydot);
        }
        if let Some(inputs) = xdot[2] {
            gemm(n, i, o, inputs, false, x[0], false, 1.0, ydot);
        }
        if let Some(act) = self.layer.activation {
            simd(
                #[inline(always)]
                || {
                    ydot.iter_mut()
                        .zip(y)
                        .for_each(|(d, &v)| *d *= slope(Some(act), v));
                },
            );
        }
    }
}

/// Blocks `[W, b, x]`.
impl VectorFunction for Dense {
    fn outputs(&self) -> usize {
        self.outputs
    }

    /// The outputs start as a copy of the bias, then accumulate.
    fn writes_every_output(&self) -> bool {
        true
    }

    fn eval(&mut self, x: &[&[f64]], y: &mut [f64]) {
        simd(
            #[inline(always)]
            || {
                y.copy_from_slice(x[1]);
                accumulate(x[0], x[2], y);
                activate(self.activation, y);
            },
        );
    }

    fn vjp(&self, x: &[&[f64]], y: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
        let (mut stack, mut heap) = ([0.0; STACK_OUTPUTS], Vec::new());
        let g: &mut [f64] = if ybar.len() <= STACK_OUTPUTS {
            &mut stack[..ybar.len()]
        } else {
            heap.resize(ybar.len(), 0.0);
            &mut heap
        };
        for ((go, &yb), &v) in g.iter_mut().zip(ybar).zip(y) {
            *go = yb * slope(self.activation, v);
        }
        let g = &*g;
        simd(
            #[inline(always)]
            || {
                if let Some(wbar) = xbar[0].as_deref_mut() {
                    back_weights(x[2], g, wbar);
                }
                if let Some(bbar) = xbar[1].as_deref_mut() {
                    bbar.iter_mut().zip(g).for_each(|(b, &go)| *b += go);
                }
                if let Some(inputs) = xbar[2].as_deref_mut() {
                    back_inputs(x[0], g, inputs);
                }
            },
        );
    }

    fn jvp(&self, x: &[&[f64]], y: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]) {
        simd(
            #[inline(always)]
            || {
                match xdot[1] {
                    Some(bdot) => ydot.copy_from_slice(bdot),
                    None => ydot.fill(0.0),
                }
                if let Some(wdot) = xdot[0] {
                    accumulate(wdot, x[2], ydot);
                }
                if let Some(inputs) = xdot[2] {
                    accumulate(x[0], inputs, ydot);
                }
                for (d, &v) in ydot.iter_mut().zip(y) {
                    *d *= slope(self.activation, v);
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ad::checks::{close, finite_differences};
    use crate::tape::TapeEngine;
    use crate::{Differentiable, ForwardEngine};

    /// A layer on `rows` rows whose inputs are parameters too, `p = (W,
    /// b, X)`, then a nonlinear readout: as one `apply_rows` op, or as
    /// one `apply` per row (the reference).
    struct Rows {
        layer: Dense,
        rows: usize,
        batched: bool,
    }

    impl Rows {
        fn len(&self) -> usize {
            self.layer.len() + self.rows * self.layer.inputs
        }
    }

    impl Differentiable for Rows {
        fn eval<T: Scalar>(&self, p: &[T]) -> T {
            let (i, o) = (self.layer.inputs, self.layer.outputs);
            let (w, rest) = p.split_at(i * o);
            let (b, x) = rest.split_at(o);
            let mut y = Vec::new();
            if self.batched {
                self.layer.apply_rows(w, b, x, self.rows, &mut y);
            } else {
                let mut row = Vec::new();
                for r in 0..self.rows {
                    self.layer.apply(w, b, &x[r * i..(r + 1) * i], &mut row);
                    y.extend_from_slice(&row);
                }
            }
            y.iter().zip(1..).fold(T::constant(0.0), |acc, (&v, k)| {
                acc + v * (0.5 - 0.07 * f64::from(k)) + v.square() * 0.3
            })
        }
    }

    #[test]
    fn apply_rows_is_apply_per_row_on_every_engine() {
        // 6 inputs (matrixmultiply's product) and 3 (the direct loop of a
        // thin product); 9 rows and one.
        for (inputs, outputs, rows) in [(6, 7, 9), (3, 5, 9), (6, 4, 1)] {
            for activation in [
                None,
                Some(Activation::Tanh),
                Some(Activation::Softplus),
                Some(Activation::Relu),
            ] {
                let layer = Dense::new(inputs, outputs, activation);
                let (batched, per_row) = (
                    Rows {
                        layer,
                        rows,
                        batched: true,
                    },
                    Rows {
                        layer,
                        rows,
                        batched: false,
                    },
                );
                let p: Vec<f64> = (0..batched.len())
                    .map(|k| ((k * 17 % 29) as f64 / 29.0 - 0.5) * 1.3)
                    .collect();
                let value = batched.eval(&p);
                close(&[value], &[per_row.eval(&p)], 1e-13, "f64 values");
                let (tv, tape) = TapeEngine.value_and_gradient(&batched, &p);
                let (_, reference) = TapeEngine.value_and_gradient(&per_row, &p);
                assert_eq!(tv.to_bits(), value.to_bits(), "tape value");
                close(&tape, &reference, 1e-13, "tape against apply per row");
                let (dv, forward) = ForwardEngine::<8>::new().value_and_gradient(&batched, &p);
                assert_eq!(dv.to_bits(), value.to_bits(), "dual value");
                close(&forward, &reference, 1e-13, "duals against apply per row");
                if activation != Some(Activation::Relu) {
                    let fd = finite_differences(&batched, &p);
                    close(&tape, &fd, 1e-6, "finite differences");
                }
                // The inputs alone (weights constants), and W and b alone.
                let len = p.len();
                for directions in [layer.len()..len, 0..layer.len()] {
                    let mut out = vec![0.0; directions.len()];
                    TapeEngine.value_and_partial_gradient_into(
                        &batched,
                        &p,
                        directions.clone(),
                        &mut out,
                    );
                    close(&out, &reference[directions.clone()], 1e-13, "tape, partial");
                    ForwardEngine::<4>::new().value_and_partial_gradient_into(
                        &batched,
                        &p,
                        directions.clone(),
                        &mut out,
                    );
                    close(&out, &reference[directions], 1e-13, "duals, partial");
                }
            }
        }
    }

    /// A row's outputs are the same bits alone, in a few rows and in
    /// many (a minibatch's rows are the whole data's), through the kernel
    /// and through the thin-product loop (2 inputs).
    #[test]
    fn apply_rows_gives_a_row_the_same_bits_whatever_the_other_rows() {
        for inputs in [2, 9] {
            let layer = Dense::new(inputs, 11, Some(Activation::Tanh));
            let (w, b): (Vec<f64>, Vec<f64>) = (
                (0..inputs * 11)
                    .map(|k| (k as f64 * 0.71).cos() * 0.5)
                    .collect(),
                (0..11).map(|k| k as f64 * 0.05 - 0.2).collect(),
            );
            let rows = 21;
            let x: Vec<f64> = (0..rows * inputs)
                .map(|k| (k as f64 * 0.37).sin())
                .collect();
            let mut all = Vec::new();
            layer.apply_rows(&w, &b, &x, rows, &mut all);
            for picked in [&[6][..], &[0, 20], &[2, 3, 4, 17, 18]] {
                let subset: Vec<f64> = picked
                    .iter()
                    .flat_map(|&r| x[r * inputs..(r + 1) * inputs].iter().copied())
                    .collect();
                let mut some = Vec::new();
                layer.apply_rows(&w, &b, &subset, picked.len(), &mut some);
                for (k, &r) in picked.iter().enumerate() {
                    let (mine, whole) = (&some[k * 11..(k + 1) * 11], &all[r * 11..(r + 1) * 11]);
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(mine), bits(whole), "{inputs} inputs, row {r}");
                }
            }
        }
    }

    /// The adjoint slots a product adds into.
    type Adjoints<'a> = [Option<&'a mut [f64]>];

    /// The tape's product, which scales `ȳ` where it stands
    /// (`vjp_overwriting`), adds the bits of the products on `ȳ ⊙ a'`
    /// computed apart (a copy, as `vjp` does), and leaves `ȳ ⊙ a'` in `ȳ`.
    #[test]
    fn the_overwriting_product_gives_the_bits_of_the_copying_one() {
        let (inputs, outputs, rows) = (7, 6, 5);
        for activation in [None, Some(Activation::Tanh), Some(Activation::Softplus)] {
            let mut op = DenseRows {
                layer: Dense::new(inputs, outputs, activation),
                rows,
            };
            let wave = |n: usize, f: f64| -> Vec<f64> {
                (0..n).map(|k| (k as f64 * f).sin() * 0.8).collect()
            };
            let blocks = [
                wave(inputs * outputs, 0.31),
                wave(outputs, 0.7),
                wave(rows * inputs, 0.53),
            ];
            let x: Vec<&[f64]> = blocks.iter().map(Vec::as_slice).collect();
            let mut y = vec![0.0; rows * outputs];
            op.eval(&x, &mut y);
            let ybar = wave(rows * outputs, 1.3);
            let g: Vec<f64> = ybar
                .iter()
                .zip(&y)
                .map(|(&yb, &v)| yb * slope(activation, v))
                .collect();
            let start = [
                wave(inputs * outputs, 0.2),
                wave(outputs, 0.9),
                wave(rows * inputs, 0.4),
            ];
            let products = |run: &dyn Fn(&mut Adjoints)| {
                let mut bars = start.clone();
                let [w, b, i] = &mut bars;
                run(&mut [Some(&mut w[..]), Some(&mut b[..]), Some(&mut i[..])]);
                bars.concat()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>()
            };
            let apart = products(&|xbar| op.back(&x, &g, xbar));
            let copying = products(&|xbar| op.vjp(&x, &y, &ybar, xbar));
            let mut overwritten = ybar.clone();
            let in_place = products(&|xbar| {
                let mut scratch = ybar.clone();
                op.vjp_overwriting(&x, &y, &mut scratch, xbar);
            });
            op.vjp_overwriting(&x, &y, &mut overwritten, &mut [None, None, None]);
            assert_eq!(apart, copying, "{activation:?}: vjp");
            assert_eq!(apart, in_place, "{activation:?}: vjp_overwriting");
            let bits = |v: &[f64]| v.iter().map(|a| a.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&overwritten), bits(&g), "{activation:?}: ȳ ⊙ a' in ȳ");
        }
    }

    #[test]
    fn apply_rows_on_no_rows_is_empty() {
        let mut y = vec![1.0];
        Dense::new(2, 3, None).apply_rows(&[0.0; 6], &[0.0; 3], &[], 0, &mut y);
        assert!(y.is_empty());
    }

    #[test]
    #[should_panic(expected = "Dense::apply_rows: x needs rows × inputs = 3 × 2 values")]
    fn apply_rows_names_a_short_input() {
        Dense::new(2, 3, None).apply_rows(&[0.0; 6], &[0.0; 3], &[0.0; 5], 3, &mut Vec::new());
    }
}
