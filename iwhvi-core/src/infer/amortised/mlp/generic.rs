//! The network of [`Mlp`] evaluated generic over [`Scalar`], for the
//! encoders a guide struct declares (`#[encoder(...)]`): the same
//! parameter layout and initialisation as the batched kernels, evaluated
//! with the scalar type of the engine at hand (plain `f64`, forward
//! duals, the tape), one row at a time.

use rand::Rng;

use super::{Activation, Mlp};
use crate::Scalar;

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
