//! Normal conditionals of a batch of independent per-point groups as whole
//! arrays: the draws `u_i = μ_i + σ_i ε_i` as one vector operation, and
//! each point's density `Σ_c log N(u_{c,j}; μ_{c,j}, σ_{c,j})` as another
//! (one value per point), instead of two scalar nodes per draw and three
//! per density term. The guides of `#[variational]` whose conditionals are
//! all per point (an amortised Gaussian encoder) use them in
//! [`HierarchicalGuide::sample_conditional_groups`](super::HierarchicalGuide::sample_conditional_groups)
//! and [`HierarchicalGuide::log_conditional_groups`](super::HierarchicalGuide::log_conditional_groups).
//!
//! Each element computes the floating-point operations of
//! [`Normal`]'s `rsample` and `log_prob` (their fused nodes) in the same
//! order, and its vector–Jacobian product adds the products the tape's
//! edges would add, in the order its sweep would add them: the values and
//! the tape's gradients are the same bits as the scalar path's.

use crate::distributions::{DistributionError, Normal};
use crate::generated::accumulate;
use crate::scalar::Scalar;
use crate::special::LN_SQRT_2PI;
use crate::vector::VectorFunction;

/// A batch of normal conditionals, gathered element by element
/// ([`NormalBatch::push_draw`] or [`NormalBatch::push_density`]) and then
/// evaluated as one vector operation ([`NormalBatch::draw_into`],
/// [`NormalBatch::log_densities_into`]).
///
/// ```
/// use iwhvi_core::distributions::{Distribution, Normal};
/// use iwhvi_core::guide::NormalBatch;
/// let mut draws = NormalBatch::default();
/// draws.push_draw(Normal::new(1.0, 2.0), 0.5, 1);
/// draws.push_draw(Normal::new(0.0, -1.0), 0.5, 0); // rejected: a NaN draw
/// let mut u = [0.0; 2];
/// draws.draw_into(&mut u);
/// assert_eq!(u[1], 2.0);
/// assert!(u[0].is_nan());
/// // Two conditionals of one point: log N(2; 1, 2) + log N(0; 0, 1).
/// let mut densities = NormalBatch::default();
/// densities.push_density(Normal::new(1.0, 2.0), 2.0);
/// densities.push_density(Normal::new(0.0, 1.0), 0.0);
/// let mut out = Vec::new();
/// densities.log_densities_into(1, &mut out);
/// let expected = Normal::new(1.0, 2.0)?.log_prob(2.0) + Normal::new(0.0, 1.0)?.log_prob(0.0);
/// assert_eq!(out, [expected]);
/// # Ok::<(), iwhvi_core::distributions::DistributionError>(())
/// ```
#[derive(Clone, Debug)]
pub struct NormalBatch<T> {
    /// The values whose densities are asked (densities only).
    x: Vec<T>,
    loc: Vec<T>,
    scale: Vec<T>,
    /// The standard normal draws (draws only).
    noise: Vec<f64>,
    /// Where each draw goes in `u` (draws only).
    at: Vec<usize>,
    /// False where the constructor rejected its parameters.
    valid: Vec<bool>,
}

impl<T> Default for NormalBatch<T> {
    fn default() -> Self {
        Self {
            x: Vec::new(),
            loc: Vec::new(),
            scale: Vec::new(),
            noise: Vec::new(),
            at: Vec::new(),
            valid: Vec::new(),
        }
    }
}

impl<T: Scalar> NormalBatch<T> {
    /// An empty batch with room for `len` elements.
    pub fn with_capacity(len: usize) -> Self {
        Self {
            x: Vec::with_capacity(len),
            loc: Vec::with_capacity(len),
            scale: Vec::with_capacity(len),
            noise: Vec::with_capacity(len),
            at: Vec::with_capacity(len),
            valid: Vec::with_capacity(len),
        }
    }

    /// The parameters of `d`, or constants and `false` for a rejected one.
    fn push_params(&mut self, d: Result<Normal<T>, DistributionError>) -> bool {
        let nan = T::constant(f64::NAN);
        let (loc, scale, valid) = d.map_or((nan, nan, false), |d| (d.loc(), d.scale(), true));
        self.loc.push(loc);
        self.scale.push(scale);
        self.valid.push(valid);
        valid
    }

    /// Adds the draw `μ + σ ε` of `d` (NaN when `d` was rejected, as
    /// [`rsample_or_nan`](crate::generated::rsample_or_nan) gives it), to go
    /// to `u[at]`.
    pub fn push_draw(&mut self, d: Result<Normal<T>, DistributionError>, noise: f64, at: usize) {
        self.push_params(d);
        self.noise.push(noise);
        self.at.push(at);
    }

    /// The draws pushed so far into `u` (each at its `at`), as one vector
    /// operation with outputs `μ_i + σ_i ε_i`; the batch is emptied.
    pub fn draw_into(&mut self, u: &mut [T]) {
        if self.loc.is_empty() {
            return;
        }
        let mut y = Vec::with_capacity(self.loc.len());
        let f = NormalDraws {
            noise: std::mem::take(&mut self.noise),
        };
        T::vector_op(f, &[&self.loc, &self.scale], &mut y);
        for (&at, y) in self.at.iter().zip(y) {
            u[at] = y;
        }
        self.clear();
    }

    /// Adds the term `log N(x; μ, σ)` of `d` (`−∞` when `d` was rejected,
    /// as [`log_prob_or_neg_inf`](crate::distributions::log_prob_or_neg_inf)
    /// gives it).
    pub fn push_density(&mut self, d: Result<Normal<T>, DistributionError>, x: T) {
        let valid = self.push_params(d);
        self.x.push(if valid { x } else { T::constant(0.0) });
        if !valid {
            // Constants: the term reads nothing.
            let last = self.loc.len() - 1;
            self.loc[last] = T::constant(0.0);
            self.scale[last] = T::constant(1.0);
        }
    }

    /// The densities pushed so far, conditional after conditional with
    /// `points` terms each (term `c · points + j` is conditional `c` at
    /// point `j`), summed per point into `out` (`points` values, appended;
    /// each the terms in conditional order, as
    /// [`accumulate`] sums them), as one vector
    /// operation; the batch is emptied.
    ///
    /// # Panics
    /// If the number of terms is not a multiple of `points`.
    pub fn log_densities_into(&mut self, points: usize, out: &mut Vec<T>) {
        if self.x.is_empty() && points == 0 {
            return;
        }
        assert!(
            points > 0 && self.x.len().is_multiple_of(points),
            "log_densities_into: {} terms for {points} points",
            self.x.len()
        );
        let f = NormalDensities {
            points,
            valid: std::mem::take(&mut self.valid),
        };
        let mut y = Vec::with_capacity(points);
        T::vector_op(f, &[&self.x, &self.loc, &self.scale], &mut y);
        out.extend(y);
        self.clear();
    }

    fn clear(&mut self) {
        self.x.clear();
        self.loc.clear();
        self.scale.clear();
        self.noise.clear();
        self.at.clear();
        self.valid.clear();
    }
}

/// `y_i = μ_i + σ_i ε_i` of the blocks `[μ, σ]`: `Normal::rsample`'s fused
/// node (partials `1` and `ε_i`) per element.
struct NormalDraws {
    noise: Vec<f64>,
}

impl VectorFunction for NormalDraws {
    fn outputs(&self) -> usize {
        self.noise.len()
    }

    fn eval(&mut self, x: &[&[f64]], y: &mut [f64]) {
        for (((y, &loc), &scale), &e) in y.iter_mut().zip(x[0]).zip(x[1]).zip(&self.noise) {
            *y = loc + scale * e;
        }
    }

    fn vjp(&self, _: &[&[f64]], _: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
        let [loc_bar, scale_bar] = xbar else {
            unreachable!("two blocks")
        };
        for (i, (&a, &e)) in ybar.iter().zip(&self.noise).enumerate() {
            if a == 0.0 {
                continue;
            }
            if let Some(loc_bar) = loc_bar.as_deref_mut() {
                loc_bar[i] += a * 1.0;
            }
            if let Some(scale_bar) = scale_bar.as_deref_mut() {
                scale_bar[i] += a * e;
            }
        }
    }

    fn jvp(&self, _: &[&[f64]], _: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]) {
        for (i, (y, &e)) in ydot.iter_mut().zip(&self.noise).enumerate() {
            let mut t = 0.0;
            if let Some(loc) = xdot[0] {
                t += 1.0 * loc[i];
            }
            if let Some(scale) = xdot[1] {
                t += e * scale[i];
            }
            *y = t;
        }
    }
}

/// `y_j = Σ_c log N(x_{c,j}; μ_{c,j}, σ_{c,j})` of the blocks `[x, μ, σ]`
/// (each `C · points` long, conditional after conditional): per term
/// `Normal::log_prob`'s two fused nodes, the standardised
/// `z = (x − μ)/σ` (edges `1/σ`, `−1/σ`, `−z/σ`) and
/// `−z²/2 − ln σ − ln √(2π)` (edges `−z` to `z`, `−1/σ` to `σ`).
struct NormalDensities {
    points: usize,
    /// False where the term is `−∞` (a rejected constructor).
    valid: Vec<bool>,
}

/// One term's value.
#[inline]
fn term(x: f64, loc: f64, scale: f64) -> f64 {
    let z = (x - loc) / scale;
    -(z * z) * 0.5 - scale.ln() - LN_SQRT_2PI
}

impl VectorFunction for NormalDensities {
    fn outputs(&self) -> usize {
        self.points
    }

    fn eval(&mut self, x: &[&[f64]], y: &mut [f64]) {
        y.fill(0.0);
        for (i, &valid) in self.valid.iter().enumerate() {
            let t = if valid {
                term(x[0][i], x[1][i], x[2][i])
            } else {
                f64::NEG_INFINITY
            };
            accumulate(&mut y[i % self.points], t);
        }
    }

    fn vjp(&self, x: &[&[f64]], _: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
        let [x_bar, loc_bar, scale_bar] = xbar else {
            unreachable!("three blocks")
        };
        for (i, &valid) in self.valid.iter().enumerate() {
            let a = ybar[i % self.points];
            if !valid || a == 0.0 {
                continue;
            }
            let s = x[2][i];
            let z = (x[0][i] - x[1][i]) / s;
            // The log-density node's edges: to `z`, then to `σ`.
            let a_z = 0.0 + a * -z;
            if let Some(scale_bar) = scale_bar.as_deref_mut() {
                scale_bar[i] += a * -(1.0 / s);
            }
            if a_z == 0.0 {
                continue;
            }
            // The standardised node's edges, `scaled / σ`.
            if let Some(x_bar) = x_bar.as_deref_mut() {
                x_bar[i] += a_z * (1.0 / s);
            }
            if let Some(loc_bar) = loc_bar.as_deref_mut() {
                loc_bar[i] += a_z * (-1.0 / s);
            }
            if let Some(scale_bar) = scale_bar.as_deref_mut() {
                scale_bar[i] += a_z * (-z / s);
            }
        }
    }

    fn jvp(&self, x: &[&[f64]], _: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]) {
        ydot.fill(0.0);
        for (i, &valid) in self.valid.iter().enumerate() {
            if !valid {
                continue;
            }
            let s = x[2][i];
            let z = (x[0][i] - x[1][i]) / s;
            let mut t = 0.0;
            for (b, partial) in [(0, 1.0), (1, -1.0), (2, -z)] {
                if let Some(d) = xdot[b] {
                    t += partial * d[i];
                }
            }
            let z_dot = t * (1.0 / s);
            let scale_dot = xdot[2].map_or(0.0, |d| d[i]);
            ydot[i % self.points] += -z * z_dot + -(1.0 / s) * scale_dot;
        }
    }
}
