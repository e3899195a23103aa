//! Reverse-mode differentiation on a thread-local tape: the second engine
//! behind the same [`Scalar`] code.
//!
//! Forward mode costs `⌈P / W⌉` passes for `P` parameters; reverse mode
//! records one evaluation on a tape and sweeps it backwards once, whatever
//! `P`. A [`Var`] is a value and an index into the tape of the thread that
//! made it; every operation on `Var`s appends a node with the partial
//! derivatives of its result in its operands, and
//! [`TapeEngine::value_and_gradient_into`] accumulates adjoints from the
//! output back to the inputs. The tape is cleared at the start of every
//! gradient and keeps its allocation, so a fit allocates it once; its
//! length grows with the work of one evaluation (for DIWHVI, with `M × K`),
//! which is the memory forward mode does not spend.
//!
//! ```
//! use iwhvi_core::tape::TapeEngine;
//! use iwhvi_core::{Differentiable, Scalar};
//!
//! struct Rosenbrock;
//! impl Differentiable for Rosenbrock {
//!     fn eval<T: Scalar>(&self, x: &[T]) -> T {
//!         (-x[0] + 1.0).square() + (x[1] - x[0].square()).square() * 100.0
//!     }
//! }
//! let (value, grad) = TapeEngine.value_and_gradient(&Rosenbrock, &[0.5, 0.5]);
//! assert_eq!(value, 6.5);
//! assert_eq!(grad, vec![-51.0, 50.0]);
//! ```

use std::cell::RefCell;
use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::gradient::Differentiable;
use crate::scalar::Scalar;
use crate::special::{self, Elementary};

/// The index of a constant: no node, no adjoint.
const CONSTANT: u32 = u32::MAX;

/// The recorded evaluation: node `i` has the edges
/// `edges[starts[i]..starts[i + 1]]`, each `(operand, ∂node/∂operand)`.
#[derive(Default)]
struct Tape {
    starts: Vec<u32>,
    edges: Vec<(u32, f64)>,
    /// The backward sweep's adjoints, kept to reuse the allocation.
    adjoint: Vec<f64>,
}

impl Tape {
    fn clear(&mut self) {
        self.starts.clear();
        self.edges.clear();
        self.starts.push(0);
    }

    /// Appends a node with the given edges (constants skipped) and returns
    /// its index.
    #[inline]
    fn push(&mut self, edges: &[(u32, f64)]) -> u32 {
        for &(operand, partial) in edges {
            if operand != CONSTANT {
                self.edges.push((operand, partial));
            }
        }
        let index = self.starts.len() as u32 - 1;
        self.starts.push(self.edges.len() as u32);
        index
    }
}

thread_local! {
    static TAPE: RefCell<Tape> = const {
        RefCell::new(Tape {
            starts: Vec::new(),
            edges: Vec::new(),
            adjoint: Vec::new(),
        })
    };
}

/// A value on the current thread's tape (or a constant).
#[derive(Clone, Copy, Debug)]
pub struct Var {
    value: f64,
    index: u32,
}

impl Var {
    /// A constant: recorded nowhere, derivative zero.
    #[inline(always)]
    pub const fn constant(value: f64) -> Self {
        Self {
            value,
            index: CONSTANT,
        }
    }

    /// True for a constant.
    #[inline(always)]
    pub const fn is_constant(&self) -> bool {
        self.index == CONSTANT
    }

    /// A result with the given edges, or a constant when every operand is.
    #[inline(always)]
    fn record(value: f64, edges: &[(u32, f64)]) -> Self {
        if edges.iter().all(|&(operand, _)| operand == CONSTANT) {
            return Self::constant(value);
        }
        let index = TAPE.with(|tape| tape.borrow_mut().push(edges));
        Self { value, index }
    }

    /// A new independent variable (a leaf of the tape).
    fn input(value: f64) -> Self {
        let index = TAPE.with(|tape| tape.borrow_mut().push(&[]));
        Self { value, index }
    }
}

impl Default for Var {
    fn default() -> Self {
        Self::constant(0.0)
    }
}

impl From<f64> for Var {
    #[inline(always)]
    fn from(value: f64) -> Self {
        Self::constant(value)
    }
}

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value)
    }
}

impl PartialEq for Var {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl PartialOrd for Var {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.value.partial_cmp(&other.value)
    }
}

impl PartialEq<f64> for Var {
    fn eq(&self, other: &f64) -> bool {
        self.value == *other
    }
}

impl PartialOrd<f64> for Var {
    fn partial_cmp(&self, other: &f64) -> Option<std::cmp::Ordering> {
        self.value.partial_cmp(other)
    }
}

impl Neg for Var {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        Self::record(-self.value, &[(self.index, -1.0)])
    }
}

/// The four arithmetic operations, each from its value and its two partial
/// derivatives `(∂/∂a, ∂/∂b)` at `(a, b)` with result `r`; the `f64` forms
/// treat the number as a constant operand.
macro_rules! impl_binary_op {
    ($Op:ident, $op:ident, $OpAssign:ident, $op_assign:ident, |$a:ident, $b:ident, $r:ident| $value:expr, ($da:expr, $db:expr)) => {
        impl $Op for Var {
            type Output = Self;
            #[inline(always)]
            #[allow(clippy::suspicious_arithmetic_impl)]
            fn $op(self, rhs: Self) -> Self {
                let ($a, $b) = (self.value, rhs.value);
                let $r = $value;
                Self::record($r, &[(self.index, $da), (rhs.index, $db)])
            }
        }

        impl $Op<f64> for Var {
            type Output = Self;
            #[inline(always)]
            fn $op(self, rhs: f64) -> Self {
                $Op::$op(self, Var::constant(rhs))
            }
        }

        impl $Op<Var> for f64 {
            type Output = Var;
            #[inline(always)]
            fn $op(self, rhs: Var) -> Var {
                $Op::$op(Var::constant(self), rhs)
            }
        }

        impl $OpAssign for Var {
            #[inline(always)]
            fn $op_assign(&mut self, rhs: Self) {
                *self = $Op::$op(*self, rhs);
            }
        }

        impl $OpAssign<f64> for Var {
            #[inline(always)]
            fn $op_assign(&mut self, rhs: f64) {
                *self = $Op::$op(*self, rhs);
            }
        }
    };
}

impl_binary_op!(Add, add, AddAssign, add_assign, |a, b, r| a + b, (1.0, 1.0));
impl_binary_op!(
    Sub,
    sub,
    SubAssign,
    sub_assign,
    |a, b, r| a - b,
    (1.0, -1.0)
);
impl_binary_op!(Mul, mul, MulAssign, mul_assign, |a, b, r| a * b, (b, a));
impl_binary_op!(
    Div,
    div,
    DivAssign,
    div_assign,
    |a, b, r| a / b,
    (1.0 / b, -r / b)
);

impl Sum for Var {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::constant(0.0), |acc, x| acc + x)
    }
}

impl num_traits::Zero for Var {
    fn zero() -> Self {
        Self::constant(0.0)
    }
    /// Zero and a constant: a zero that carries a derivative is not skipped.
    fn is_zero(&self) -> bool {
        self.value == 0.0 && self.is_constant()
    }
}

impl num_traits::One for Var {
    fn one() -> Self {
        Self::constant(1.0)
    }
}

impl Scalar for Var {
    #[inline(always)]
    fn constant(v: f64) -> Self {
        Self::constant(v)
    }

    #[inline(always)]
    fn value(self) -> f64 {
        self.value
    }

    #[inline(always)]
    fn elementary(self, f: Elementary) -> Self {
        if self.is_constant() {
            return Self::constant(f.value(self.value));
        }
        let (value, derivative) = special::derivative(f, self.value);
        Self::record(value, &[(self.index, derivative)])
    }

    fn powi(self, n: i32) -> Self {
        let value = self.value.powi(n);
        if n == 0 || self.is_constant() {
            return Self::constant(value);
        }
        Self::record(
            value,
            &[(self.index, f64::from(n) * self.value.powi(n - 1))],
        )
    }

    fn powf(self, y: Self) -> Self {
        let value = self.value.powf(y.value);
        if self.is_constant() && y.is_constant() {
            return Self::constant(value);
        }
        let d_base = if y.value == 0.0 {
            0.0
        } else {
            y.value * self.value.powf(y.value - 1.0)
        };
        let d_exponent = if value == 0.0 || self.value == 0.0 {
            0.0
        } else {
            value * self.value.ln()
        };
        Self::record(value, &[(self.index, d_base), (y.index, d_exponent)])
    }

    fn log_sum_exp(terms: &[Self]) -> Self {
        let max = special::max_term(terms.iter().map(|t| t.value));
        if !max.is_finite() {
            let value = if terms.iter().any(|t| t.value.is_nan()) {
                f64::NAN
            } else {
                max
            };
            return Self::constant(value);
        }
        let sum: f64 = terms.iter().map(|t| (t.value - max).exp()).sum();
        let value = max + sum.ln();
        if terms.iter().all(Var::is_constant) {
            return Self::constant(value);
        }
        let index = TAPE.with(|tape| {
            let mut tape = tape.borrow_mut();
            for t in terms {
                if !t.is_constant() {
                    tape.edges.push((t.index, (t.value - value).exp()));
                }
            }
            let index = tape.starts.len() as u32 - 1;
            let end = tape.edges.len() as u32;
            tape.starts.push(end);
            index
        });
        Self { value, index }
    }

    fn is_finite(self) -> bool {
        self.value.is_finite()
    }

    fn scaled_squared_distance(x: &[Self], mean: &[Self], inverse_scale: &[Self]) -> Self {
        let mut value = 0.0;
        let mut any = false;
        for ((xi, mi), si) in x.iter().zip(mean).zip(inverse_scale) {
            let z = (xi.value - mi.value) * si.value;
            value += z * z;
            any |= !(xi.is_constant() && mi.is_constant() && si.is_constant());
        }
        if !any {
            return Self::constant(value);
        }
        let index = TAPE.with(|tape| {
            let mut tape = tape.borrow_mut();
            for ((xi, mi), si) in x.iter().zip(mean).zip(inverse_scale) {
                let d = xi.value - mi.value;
                let z = d * si.value;
                let along_d = 2.0 * z * si.value;
                for (operand, partial) in [
                    (xi.index, along_d),
                    (mi.index, -along_d),
                    (si.index, 2.0 * z * d),
                ] {
                    if operand != CONSTANT {
                        tape.edges.push((operand, partial));
                    }
                }
            }
            let index = tape.starts.len() as u32 - 1;
            let end = tape.edges.len() as u32;
            tape.starts.push(end);
            index
        });
        Self { value, index }
    }

    fn dot(a: &[Self], b: &[Self]) -> Self {
        let value = a.iter().zip(b).map(|(x, y)| x.value * y.value).sum();
        if a.iter().chain(b).all(Var::is_constant) {
            return Self::constant(value);
        }
        let index = TAPE.with(|tape| {
            let mut tape = tape.borrow_mut();
            for (x, y) in a.iter().zip(b) {
                if !x.is_constant() {
                    tape.edges.push((x.index, y.value));
                }
                if !y.is_constant() {
                    tape.edges.push((y.index, x.value));
                }
            }
            let index = tape.starts.len() as u32 - 1;
            let end = tape.edges.len() as u32;
            tape.starts.push(end);
            index
        });
        Self { value, index }
    }
}

/// The reverse-mode gradient engine: one recorded evaluation and one
/// backward sweep per gradient, on the calling thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TapeEngine;

impl TapeEngine {
    /// `f(x)` and `∇f(x)`.
    pub fn value_and_gradient<F: Differentiable>(&self, f: &F, x: &[f64]) -> (f64, Vec<f64>) {
        let mut gradient = vec![0.0; x.len()];
        let value = self.value_and_gradient_into(f, x, &mut gradient);
        (value, gradient)
    }

    /// `f(x)`, writing `∇f(x)` into `gradient`.
    ///
    /// # Panics
    /// If `gradient.len() != x.len()`.
    pub fn value_and_gradient_into<F: Differentiable>(
        &self,
        f: &F,
        x: &[f64],
        gradient: &mut [f64],
    ) -> f64 {
        assert_eq!(
            gradient.len(),
            x.len(),
            "the gradient buffer must have one entry per parameter"
        );
        self.record_and_sweep(f, x, 0..x.len(), gradient)
    }

    /// `f(x)`, writing `∂f/∂x_i` for `i` in `directions` into `out`: only
    /// those inputs are recorded on the tape, the others enter as
    /// constants, so operations that touch none of them cost no tape.
    ///
    /// ```
    /// use iwhvi_core::tape::TapeEngine;
    /// use iwhvi_core::{Differentiable, Scalar};
    /// struct Product;
    /// impl Differentiable for Product {
    ///     fn eval<T: Scalar>(&self, x: &[T]) -> T {
    ///         x[0] * x[1] * x[2]
    ///     }
    /// }
    /// let mut out = [0.0; 2];
    /// let value = TapeEngine.value_and_partial_gradient_into(&Product, &[2.0, 3.0, 5.0], 1..3, &mut out);
    /// assert_eq!((value, out), (30.0, [10.0, 6.0]));
    /// ```
    ///
    /// # Panics
    /// If `out.len() != directions.len()` or `directions` reaches past
    /// `x`.
    pub fn value_and_partial_gradient_into<F: Differentiable>(
        &self,
        f: &F,
        x: &[f64],
        directions: std::ops::Range<usize>,
        out: &mut [f64],
    ) -> f64 {
        assert!(
            directions.end <= x.len(),
            "the directions {directions:?} must be parameters of x (it has {})",
            x.len()
        );
        assert_eq!(
            out.len(),
            directions.len(),
            "the gradient buffer must have one entry per direction"
        );
        self.record_and_sweep(f, x, directions, out)
    }

    /// Records `f` with the inputs in `directions` on the tape (the first
    /// nodes, in order) and sweeps back into `out`.
    fn record_and_sweep<F: Differentiable>(
        &self,
        f: &F,
        x: &[f64],
        directions: std::ops::Range<usize>,
        out: &mut [f64],
    ) -> f64 {
        TAPE.with(|tape| tape.borrow_mut().clear());
        let inputs: Vec<Var> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if directions.contains(&i) {
                    Var::input(v)
                } else {
                    Var::constant(v)
                }
            })
            .collect();
        let output = f.eval(&inputs);
        out.fill(0.0);
        if output.is_constant() {
            return output.value;
        }
        TAPE.with(|tape| {
            let tape = &mut *tape.borrow_mut();
            let nodes = tape.starts.len() - 1;
            let adjoint = &mut tape.adjoint;
            adjoint.clear();
            adjoint.resize(nodes, 0.0);
            adjoint[output.index as usize] = 1.0;
            for node in (0..=output.index as usize).rev() {
                let a = adjoint[node];
                if a == 0.0 {
                    continue;
                }
                let (start, end) = (tape.starts[node] as usize, tape.starts[node + 1] as usize);
                for &(operand, partial) in &tape.edges[start..end] {
                    adjoint[operand as usize] += a * partial;
                }
            }
            // The recorded inputs are the first nodes, in order.
            out.copy_from_slice(&adjoint[..out.len()]);
        });
        output.value
    }
}

impl crate::gradient::GradientEngine for TapeEngine {
    fn value_and_gradient_into<F: Differentiable>(
        &self,
        f: &F,
        x: &[f64],
        gradient: &mut [f64],
    ) -> f64 {
        TapeEngine::value_and_gradient_into(self, f, x, gradient)
    }

    fn value_and_partial_gradient_into<F: Differentiable>(
        &self,
        f: &F,
        x: &[f64],
        directions: std::ops::Range<usize>,
        out: &mut [f64],
    ) -> f64 {
        TapeEngine::value_and_partial_gradient_into(self, f, x, directions, out)
    }
}
