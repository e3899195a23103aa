//! Vector-valued operations with hand-written derivatives: a whole array
//! computation `y = f(x₁, …, x_B)` (`y ∈ Rᵐ`, each `x_b` a slice of
//! scalars) that every [`Scalar`] runs as one operation.
//!
//! Written over scalars, a network layer is one tape node per
//! multiply-add, each with edges to its weights; as a [`VectorFunction`]
//! it is evaluated in `f64`, and differentiated by its own
//! vector–Jacobian product on the reverse tape (the `m` outputs are tape
//! nodes without edges, the operation runs once in the backward sweep)
//! and its own Jacobian–vector product on forward duals.
//! [`Scalar::vector_op`] is the entry point; [`Scalar::with_partials`] is
//! its one-output, precomputed-partials case.
//!
//! ```
//! use iwhvi_core::tape::TapeEngine;
//! use iwhvi_core::vector::VectorFunction;
//! use iwhvi_core::{Differentiable, Dual, Scalar};
//!
//! /// y = (a₀ x₀, a₁ x₁) for a block a and a block x of two entries.
//! struct Scale;
//! impl VectorFunction for Scale {
//!     fn outputs(&self) -> usize {
//!         2
//!     }
//!     fn eval(&mut self, x: &[&[f64]], y: &mut [f64]) {
//!         for o in 0..2 {
//!             y[o] = x[0][o] * x[1][o];
//!         }
//!     }
//!     fn vjp(&self, x: &[&[f64]], _y: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
//!         for o in 0..2 {
//!             if let Some(abar) = xbar[0].as_deref_mut() {
//!                 abar[o] += ybar[o] * x[1][o];
//!             }
//!             if let Some(xb) = xbar[1].as_deref_mut() {
//!                 xb[o] += ybar[o] * x[0][o];
//!             }
//!         }
//!     }
//!     fn jvp(&self, x: &[&[f64]], _y: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]) {
//!         for o in 0..2 {
//!             let da = xdot[0].map_or(0.0, |d| d[o] * x[1][o]);
//!             let dx = xdot[1].map_or(0.0, |d| d[o] * x[0][o]);
//!             ydot[o] = da + dx;
//!         }
//!     }
//! }
//!
//! /// Σ y over p = (a₀, a₁, x₀, x₁).
//! struct Sum;
//! impl Differentiable for Sum {
//!     fn eval<T: Scalar>(&self, p: &[T]) -> T {
//!         let mut y = Vec::new();
//!         T::vector_op(Scale, &[&p[..2], &p[2..]], &mut y);
//!         y[0] + y[1]
//!     }
//! }
//! let (value, grad) = TapeEngine.value_and_gradient(&Sum, &[1.0, 2.0, 3.0, 4.0]);
//! assert_eq!((value, grad), (11.0, vec![3.0, 4.0, 1.0, 2.0]));
//! let x = [Dual::<1>::variable(1.0, 0), Dual::constant(2.0)];
//! let mut y = Vec::new();
//! Dual::vector_op(Scale, &[&x, &[Dual::constant(3.0), Dual::constant(4.0)]], &mut y);
//! assert_eq!((y[0].tangent(), y[1].tangent()), ([3.0], [0.0]));
//! ```

use crate::scalar::Scalar;

/// `y = f(x₁, …, x_B)` with `y ∈ Rᵐ`, computed in `f64`, with its
/// vector–Jacobian product (for the reverse tape) and Jacobian–vector
/// product (for forward duals) written by hand.
///
/// The inputs come in blocks (a weight matrix, a bias, an input vector),
/// so that a block shared by many calls (a network's weights) is passed
/// as it stands, without copying. [`vjp`](Self::vjp) and
/// [`jvp`](Self::jvp) are called only after [`eval`](Self::eval) on the
/// same `x`, with its `y`, and may use what `eval` kept in `self`.
///
/// The reverse tape keeps the function (boxed) until its backward sweep,
/// hence `'static`: a function that needs data (the rows of a network's
/// inputs) owns it.
///
/// See [the module](self) for an example.
pub trait VectorFunction: 'static {
    /// `m`, the number of outputs.
    fn outputs(&self) -> usize;

    /// `y = f(x)`: `x[b]` is block `b`, `y` has [`outputs`](Self::outputs)
    /// entries.
    fn eval(&mut self, x: &[&[f64]], y: &mut [f64]);

    /// [`eval`](Self::eval) when a [`vjp`](Self::vjp) or
    /// [`jvp`](Self::jvp) at the same `x` follows (the reverse tape, the
    /// forward duals): the same `y`, bit for bit, and the function may keep
    /// in `self` what its derivatives need, computed along with the values
    /// (a kernel's partials, which share its transcendental functions),
    /// instead of computing it again. Plain `f64` evaluation calls
    /// [`eval`](Self::eval). By default, [`eval`](Self::eval).
    ///
    /// ```
    /// use iwhvi_core::vector::VectorFunction;
    /// /// `y = exp(x)`, whose derivative is `y`: nothing to keep.
    /// struct Exp;
    /// impl VectorFunction for Exp {
    ///     fn outputs(&self) -> usize { 1 }
    ///     fn eval(&mut self, x: &[&[f64]], y: &mut [f64]) { y[0] = x[0][0].exp(); }
    ///     fn vjp(&self, _: &[&[f64]], y: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
    ///         if let Some(b) = xbar[0].as_deref_mut() { b[0] += ybar[0] * y[0]; }
    ///     }
    ///     fn jvp(&self, _: &[&[f64]], y: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]) {
    ///         ydot[0] = xdot[0].map_or(0.0, |d| d[0] * y[0]);
    ///     }
    /// }
    /// let mut y = [0.0];
    /// Exp.eval_for_derivatives(&[&[0.0]], &mut y);
    /// assert_eq!(y[0], 1.0);
    /// ```
    fn eval_for_derivatives(&mut self, x: &[&[f64]], y: &mut [f64]) {
        self.eval(x, y);
    }

    /// True if [`eval`](Self::eval) and
    /// [`eval_for_derivatives`](Self::eval_for_derivatives) assign every
    /// entry of `y`, whatever it held before: the reverse tape then hands
    /// them its output buffer as it stands (an earlier recording's values)
    /// instead of zeroing it first. By default `false` (`y` arrives zeroed).
    /// A function that says `true` and leaves an output unwritten would
    /// return stale values: builds with debug assertions fill `y` with a
    /// marked NaN and panic if one is left.
    ///
    /// ```
    /// use iwhvi_core::vector::VectorFunction;
    /// /// `y = 2x`: every output assigned.
    /// struct Double;
    /// impl VectorFunction for Double {
    ///     fn outputs(&self) -> usize { 1 }
    ///     fn writes_every_output(&self) -> bool { true }
    ///     fn eval(&mut self, x: &[&[f64]], y: &mut [f64]) { y[0] = 2.0 * x[0][0]; }
    ///     fn vjp(&self, _: &[&[f64]], _: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
    ///         if let Some(b) = xbar[0].as_deref_mut() { b[0] += 2.0 * ybar[0]; }
    ///     }
    ///     fn jvp(&self, _: &[&[f64]], _: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]) {
    ///         ydot[0] = xdot[0].map_or(0.0, |d| 2.0 * d[0]);
    ///     }
    /// }
    /// let mut y = [f64::NAN];
    /// Double.eval(&[&[1.5]], &mut y);
    /// assert_eq!(y[0], 3.0);
    /// assert!(Double.writes_every_output());
    /// ```
    fn writes_every_output(&self) -> bool {
        false
    }

    /// Adds `(∂y/∂x_b)ᵀ ȳ` into `xbar[b]` for every block that is `Some`
    /// (`None`: a block of constants, whose adjoint nobody reads). Adds,
    /// not assigns: `xbar[b]` may hold other contributions.
    fn vjp(&self, x: &[&[f64]], y: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]);

    /// [`vjp`](Self::vjp) for a caller that discards `ybar` afterwards (the
    /// reverse tape: an op's outputs' adjoints are reset once it ran), so
    /// the function may overwrite it: a product that starts by scaling `ȳ`
    /// (an activation's slope, `ḡ = ȳ ⊙ a'`) scales it where it stands
    /// instead of into a new buffer. The same additions into `xbar`, bit
    /// for bit, as [`vjp`](Self::vjp). By default, [`vjp`](Self::vjp).
    ///
    /// ```
    /// use iwhvi_core::vector::VectorFunction;
    /// /// `y = 3 x` elementwise: `x̄ += 3 ȳ`, the scaled `ȳ` written over it.
    /// struct Triple;
    /// impl VectorFunction for Triple {
    ///     fn outputs(&self) -> usize { 2 }
    ///     fn eval(&mut self, x: &[&[f64]], y: &mut [f64]) {
    ///         y.iter_mut().zip(x[0]).for_each(|(y, &v)| *y = 3.0 * v);
    ///     }
    ///     fn vjp(&self, _: &[&[f64]], _: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
    ///         let mut g = ybar.to_vec();
    ///         self.vjp_overwriting(&[], &[], &mut g, xbar);
    ///     }
    ///     fn vjp_overwriting(&self, _: &[&[f64]], _: &[f64], ybar: &mut [f64], xbar: &mut [Option<&mut [f64]>]) {
    ///         ybar.iter_mut().for_each(|g| *g *= 3.0);
    ///         if let Some(b) = xbar[0].as_deref_mut() {
    ///             b.iter_mut().zip(&*ybar).for_each(|(b, &g)| *b += g);
    ///         }
    ///     }
    ///     fn jvp(&self, _: &[&[f64]], _: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]) {
    ///         for (k, d) in ydot.iter_mut().enumerate() {
    ///             *d = xdot[0].map_or(0.0, |t| 3.0 * t[k]);
    ///         }
    ///     }
    /// }
    /// let (mut ybar, mut xbar) = ([1.0, -2.0], [0.5, 0.5]);
    /// Triple.vjp_overwriting(&[&[1.0, 1.0]], &[3.0, 3.0], &mut ybar, &mut [Some(&mut xbar[..])]);
    /// assert_eq!(xbar, [3.5, -5.5]);
    /// ```
    fn vjp_overwriting(
        &self,
        x: &[&[f64]],
        y: &[f64],
        ybar: &mut [f64],
        xbar: &mut [Option<&mut [f64]>],
    ) {
        self.vjp(x, y, ybar, xbar);
    }

    /// Writes `ẏ = Σ_b (∂y/∂x_b) ẋ_b` into `ydot`, over the blocks whose
    /// tangent is `Some` (`None`: a block of constants, tangent zero).
    fn jvp(&self, x: &[&[f64]], y: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]);
}

/// The values of every block.
pub(crate) fn values<T: Scalar>(x: &[&[T]]) -> Vec<Vec<f64>> {
    x.iter()
        .map(|block| block.iter().map(|v| v.value()).collect())
        .collect()
}

/// `f(x)` in `f64`, derivatives to follow
/// ([`VectorFunction::eval_for_derivatives`]).
pub(crate) fn eval_values<F: VectorFunction>(f: &mut F, x: &[&[f64]]) -> Vec<f64> {
    let mut y = vec![0.0; f.outputs()];
    f.eval_for_derivatives(x, &mut y);
    y
}

/// The default of [`Scalar::vector_op`], correct for every scalar: the
/// Jacobian by one vector–Jacobian product per output, each output one
/// [`Scalar::with_partials`] over every operand.
pub(crate) fn through_partials<T: Scalar, F: VectorFunction>(
    mut f: F,
    x: &[&[T]],
    out: &mut Vec<T>,
) {
    let owned = values(x);
    let xv: Vec<&[f64]> = owned.iter().map(Vec::as_slice).collect();
    let y = eval_values(&mut f, &xv);
    let operands: Vec<T> = x.iter().flat_map(|b| b.iter().copied()).collect();
    let mut ybar = vec![0.0; y.len()];
    let mut grads: Vec<Vec<f64>> = owned.iter().map(|b| vec![0.0; b.len()]).collect();
    out.clear();
    for (o, &value) in y.iter().enumerate() {
        ybar.fill(0.0);
        ybar[o] = 1.0;
        grads.iter_mut().for_each(|g| g.fill(0.0));
        let mut xbar: Vec<Option<&mut [f64]>> =
            grads.iter_mut().map(|g| Some(g.as_mut_slice())).collect();
        f.vjp(&xv, &y, &ybar, &mut xbar);
        let partials: Vec<f64> = grads.iter().flatten().copied().collect();
        out.push(T::with_partials(value, &operands, &partials));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ad::checks::{close, finite_differences};
    use crate::ad::sparse::Sparse;
    use crate::amortised::{Activation, Dense};
    use crate::dual::Dual;
    use crate::tape::TapeEngine;
    use crate::{Differentiable, ForwardEngine};

    const IN: usize = 6;
    const HIDDEN: usize = 20;
    const OUT: usize = 3;

    /// The scalar loop a dense layer replaces.
    fn dense_scalar<T: Scalar>(w: &[T], b: &[T], x: &[T], act: Option<Activation>) -> Vec<T> {
        (0..b.len())
            .map(|o| {
                let mut a = b[o];
                for (i, &xi) in x.iter().enumerate() {
                    a += w[i * b.len() + o] * xi;
                }
                act.map_or(a, |act| act.apply_scalar(a))
            })
            .collect()
    }

    /// Two chained layers (the first's outputs the second's inputs), the
    /// first's weights used a second time on the inputs reversed (a
    /// scattered block, and the same weights' adjoints from two ops), a
    /// layer whose bias and inputs are the same nodes (overlapping
    /// blocks), and a nonlinear readout. `p = (x, w0, b0, w1, b1)`;
    /// `constant_x` enters `x` as constants.
    struct Net {
        ops: bool,
        constant_x: bool,
    }

    fn layer<T: Scalar>(ops: bool, w: &[T], b: &[T], x: &[T], act: Option<Activation>) -> Vec<T> {
        if ops {
            let mut y = Vec::new();
            Dense::new(x.len(), b.len(), act).apply(w, b, x, &mut y);
            y
        } else {
            dense_scalar(w, b, x, act)
        }
    }

    impl Differentiable for Net {
        fn eval<T: Scalar>(&self, p: &[T]) -> T {
            let (x, rest) = p.split_at(IN);
            let (w0, rest) = rest.split_at(IN * HIDDEN);
            let (b0, rest) = rest.split_at(HIDDEN);
            let (w1, b1) = rest.split_at(HIDDEN * OUT);
            let constants: Vec<T> = x.iter().map(|v| T::constant(v.value())).collect();
            let x = if self.constant_x { &constants[..] } else { x };
            let tanh = Some(Activation::Tanh);
            let h = layer(self.ops, w0, b0, x, tanh);
            let y = layer(self.ops, w1, b1, &h, Some(Activation::Softplus));
            let reversed: Vec<T> = x.iter().rev().copied().collect();
            let g = layer(self.ops, w0, b0, &reversed, Some(Activation::Relu));
            // bias and inputs the same nodes: W (8 × 8) from w0's start
            let overlap = layer(self.ops, &w0[..32], &h[..4], &h[..8], None);
            let mut total = y[0] * y[1] - y[2].square();
            for (k, (gk, ok)) in g.iter().zip(&overlap).enumerate() {
                total += *gk * (0.1 * k as f64) + ok.sin();
            }
            total
        }
    }

    fn point() -> Vec<f64> {
        let len = IN + IN * HIDDEN + HIDDEN + HIDDEN * OUT + OUT;
        (0..len)
            .map(|k| ((k * 37 % 23) as f64 / 23.0 - 0.5) * if k < IN { 2.0 } else { 0.8 })
            .collect()
    }

    #[test]
    fn dense_ops_have_the_scalar_values_and_gradients_on_every_engine() {
        let x = point();
        for constant_x in [false, true] {
            let (ops, scalar) = (
                Net {
                    ops: true,
                    constant_x,
                },
                Net {
                    ops: false,
                    constant_x,
                },
            );
            // The ops' activations are the batched networks' vectorised
            // tanh and softplus (`Activation::apply`), the scalar loop's
            // `std`'s: the same values within rounding, and the ops' the
            // same bits on every engine.
            let value = ops.eval(&x);
            close(&[value], &[scalar.eval(&x)], 1e-13, "f64 values");
            let (tv, tape) = TapeEngine.value_and_gradient(&ops, &x);
            let (sv, reference) = TapeEngine.value_and_gradient(&scalar, &x);
            assert_eq!(tv.to_bits(), value.to_bits(), "tape values");
            close(&[tv], &[sv], 1e-13, "tape values against the scalar tape's");
            close(&tape, &reference, 1e-13, "tape against scalar tape");
            let (fv, forward) = ForwardEngine::<4>::new().value_and_gradient(&ops, &x);
            assert_eq!(fv.to_bits(), value.to_bits(), "dual values");
            close(&forward, &reference, 1e-13, "duals against scalar tape");
            if constant_x {
                // f64 sees no difference between a constant and a variable.
                assert!(tape[..IN].iter().all(|&g| g == 0.0));
                assert!(forward[..IN].iter().all(|&g| g == 0.0));
            } else {
                let fd = finite_differences(&ops, &x);
                close(&tape, &fd, 1e-6, "finite differences");
            }
        }
    }

    #[test]
    fn partial_gradients_of_dense_ops_are_the_full_gradients_entries() {
        let x = point();
        let net = Net {
            ops: true,
            constant_x: false,
        };
        let (_, full) = TapeEngine.value_and_gradient(&net, &x);
        let len = x.len();
        for directions in [
            0..IN,
            IN..IN + 10,
            len - OUT - HIDDEN * OUT..len,
            3..len - 2,
        ] {
            for engine in 0..2 {
                let mut out = vec![0.0; directions.len()];
                if engine == 0 {
                    TapeEngine.value_and_partial_gradient_into(
                        &net,
                        &x,
                        directions.clone(),
                        &mut out,
                    );
                } else {
                    ForwardEngine::<3>::new().value_and_partial_gradient_into(
                        &net,
                        &x,
                        directions.clone(),
                        &mut out,
                    );
                }
                close(&out, &full[directions.clone()], 1e-13, "partial gradient");
            }
        }
    }

    /// An op's output returned as it stands, and an op of constants only.
    struct Direct;
    impl Differentiable for Direct {
        fn eval<T: Scalar>(&self, p: &[T]) -> T {
            let mut y = Vec::new();
            let c = [T::constant(1.0), T::constant(2.0)];
            Dense::new(2, 1, None).apply(&c, &[T::constant(0.5)], &c, &mut y);
            let constant = y[0];
            Dense::new(2, 2, Some(Activation::Tanh)).apply(&p[..4], &p[4..6], &p[6..8], &mut y);
            assert!(constant.value() == 5.5);
            y[1]
        }
    }

    #[test]
    fn an_op_output_can_be_the_result_and_constants_make_no_op() {
        let x = [0.1, -0.3, 0.7, 0.2, 0.05, -0.1, 1.5, -0.5];
        let (_, tape) = TapeEngine.value_and_gradient(&Direct, &x);
        let (_, forward) = ForwardEngine::<8>::new().value_and_gradient(&Direct, &x);
        close(&tape, &forward, 1e-15, "tape against duals");
        close(
            &tape,
            &finite_differences(&Direct, &x),
            1e-7,
            "finite differences",
        );
        // W's first column and b's first entry do not reach y₁.
        assert_eq!((tape[0], tape[2], tape[4]), (0.0, 0.0, 0.0));
        let mut y = Vec::new();
        let c = [crate::tape::Var::constant(1.0); 2];
        crate::tape::Var::vector_op(Dense::new(2, 1, None), &[&c, &c[..1], &c], &mut y);
        assert!(y[0].is_constant() && y[0].value() == 3.0);
    }

    #[test]
    fn the_default_through_partials_agrees_with_the_duals() {
        let p = [0.3, -0.7, 0.2, 0.9, -0.4, 0.6];
        let sparse: Vec<Sparse<8>> = p
            .iter()
            .enumerate()
            .map(|(i, &v)| Sparse::variable(v, i))
            .collect();
        let dual: Vec<Dual<6>> = p
            .iter()
            .enumerate()
            .map(|(i, &v)| Dual::variable(v, i))
            .collect();
        let layer = Dense::new(2, 2, Some(Activation::Softplus));
        let (mut ys, mut yd) = (Vec::new(), Vec::new());
        Sparse::vector_op(layer, &[&sparse[..4], &sparse[4..6], &sparse[..2]], &mut ys);
        Dual::vector_op(layer, &[&dual[..4], &dual[4..6], &dual[..2]], &mut yd);
        for (s, d) in ys.iter().zip(&yd) {
            assert_eq!(s.value.to_bits(), d.value.to_bits());
            let mut dense = [0.0; 6];
            for (i, g) in s.entries() {
                dense[i] += g;
            }
            close(&dense, &d.tangent(), 1e-15, "sparse against duals");
        }
    }

    /// Large constant blocks: the same weights twice per round (read once),
    /// then new weights each round, perhaps at the old ones' address.
    struct Rounds;
    impl Differentiable for Rounds {
        fn eval<T: Scalar>(&self, p: &[T]) -> T {
            let (mut total, mut y) = (T::constant(0.0), Vec::new());
            for round in 0..4 {
                let w: Vec<T> = (0..40)
                    .map(|k| T::constant(f64::from(k + round) * 0.01 - 0.2))
                    .collect();
                for _ in 0..2 {
                    Dense::new(40, 1, Some(Activation::Tanh)).apply(&w, &p[..1], &p[1..], &mut y);
                    total += y[0] * f64::from(round + 1);
                }
            }
            total
        }
    }

    #[test]
    fn large_constant_blocks_are_shared_only_while_their_values_stand() {
        let x: Vec<f64> = (0..41).map(|k| (f64::from(k) * 0.7).cos()).collect();
        let (value, tape) = TapeEngine.value_and_gradient(&Rounds, &x);
        let (_, forward) = ForwardEngine::<8>::new().value_and_gradient(&Rounds, &x);
        assert_eq!(value.to_bits(), Rounds.eval(&x).to_bits());
        close(&tape, &forward, 1e-14, "tape against duals");
        close(
            &tape,
            &finite_differences(&Rounds, &x),
            1e-6,
            "finite differences",
        );
    }

    #[test]
    fn tape_gradients_with_ops_are_the_same_bits_on_every_thread() {
        let x = point();
        let net = Net {
            ops: true,
            constant_x: false,
        };
        let here = TapeEngine.value_and_gradient(&net, &x);
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let x = x.clone();
                std::thread::spawn(move || {
                    (0..3)
                        .map(|_| {
                            TapeEngine.value_and_gradient(
                                &Net {
                                    ops: true,
                                    constant_x: false,
                                },
                                &x,
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for thread in threads {
            for (value, grad) in thread.join().expect("no panic") {
                assert_eq!(value.to_bits(), here.0.to_bits());
                assert!(
                    grad.iter()
                        .zip(&here.1)
                        .all(|(a, b)| a.to_bits() == b.to_bits())
                );
            }
        }
    }
}
