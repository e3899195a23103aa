//! Normal conditionals of a batch of independent per-point groups as whole
//! arrays: the draws `u_i = μ_i + σ_i ε_i` as one vector operation, and
//! each point's density `Σ_c log N(u_{c,j}; μ_{c,j}, σ_{c,j})` as another
//! (one value per point), instead of two scalar nodes per draw and three
//! per density term. The guides of `#[variational]` whose conditionals are
//! all per point (an amortised Gaussian encoder) use them in
//! [`HierarchicalGuide::sample_conditional_groups`](super::HierarchicalGuide::sample_conditional_groups)
//! and [`HierarchicalGuide::log_conditional_groups`](super::HierarchicalGuide::log_conditional_groups).
//!
//! A scale written `s.exp()` may come in as `s`
//! ([`NormalBatch::push_draw_log_scale`]), the exponential then taken
//! inside the operation instead of a scalar `exp` node per element.
//!
//! Each element computes the floating-point operations of
//! [`Normal`]'s `rsample` and `log_prob` (their fused nodes, and the `exp`
//! node) in the same order, and its vector–Jacobian product adds the
//! products the tape's edges would add, in the order its sweep would add
//! them: the values, and the tape's gradients wherever each element's
//! location and scale are nodes of their own (an encoder's outputs), are
//! the same bits as the scalar path's. A node shared by several elements
//! (a parameter as the scale of every point) receives their adjoints in
//! the operation's order rather than the sweep's: equal within rounding.

use crate::distributions::{DistributionError, Normal, standard_log_density};
use crate::generated::accumulate;
use crate::scalar::Scalar;
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
    /// True where `scale` holds the log-scale `ln σ` (the exponential
    /// taken inside the operation, as the scalar path's `exp` node).
    log: Vec<bool>,
    /// `σ` itself (`exp(ln σ)` computed once, where `log` is set).
    sigma: Vec<f64>,
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
            log: Vec::new(),
            sigma: Vec::new(),
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
            log: Vec::with_capacity(len),
            sigma: Vec::with_capacity(len),
        }
    }

    /// The parameters of `d`, or constants and `false` for a rejected one.
    fn push_params(&mut self, d: Result<Normal<T>, DistributionError>) -> bool {
        let params = d.ok().map(|d| (d.loc(), d.scale()));
        let sigma = params.map_or(f64::NAN, |(_, scale)| scale.value());
        self.push_raw(params, false, sigma)
    }

    /// `(loc, scale)` (`(loc, ln σ)` with `log`), or NaN constants and
    /// `false` for `None`.
    fn push_raw(&mut self, params: Option<(T, T)>, log: bool, sigma: f64) -> bool {
        let nan = T::constant(f64::NAN);
        let ((loc, scale), valid) = params.map_or(((nan, nan), false), |p| (p, true));
        self.loc.push(loc);
        self.scale.push(scale);
        self.valid.push(valid);
        self.log.push(log && valid);
        self.sigma.push(if valid { sigma } else { f64::NAN });
        valid
    }

    /// The parameters of `Normal(loc, exp(log_scale))`, or constants and
    /// `false` where `Normal::new` would reject them (a location or a
    /// scale that is not finite, a scale of zero).
    fn push_log_params(&mut self, loc: T, log_scale: T) -> bool {
        let scale = log_scale.value().exp();
        // `Normal::new`'s own rule, on constants (no node is recorded).
        let valid = Normal::new(T::constant(loc.value()), T::constant(scale)).is_ok();
        self.push_raw(valid.then_some((loc, log_scale)), true, scale)
    }

    /// [`NormalBatch::push_draw`] of `Normal(loc, exp(log_scale))`, the
    /// exponential taken inside the vector operation (the same bits as a
    /// scalar `log_scale.exp()` node): `loc + exp(log_scale) · ε`.
    ///
    /// ```
    /// use iwhvi_core::distributions::Normal;
    /// use iwhvi_core::guide::NormalBatch;
    /// let (mut by_scale, mut by_log) = (NormalBatch::default(), NormalBatch::default());
    /// by_scale.push_draw(Normal::new(1.0, 0.3f64.exp()), -0.4, 0);
    /// by_log.push_draw_log_scale(1.0, 0.3, -0.4, 0);
    /// let (mut u, mut v) = ([0.0], [0.0]);
    /// by_scale.draw_into(&mut u);
    /// by_log.draw_into(&mut v);
    /// assert_eq!(u[0].to_bits(), v[0].to_bits());
    /// ```
    pub fn push_draw_log_scale(&mut self, loc: T, log_scale: T, noise: f64, at: usize) {
        self.push_log_params(loc, log_scale);
        self.noise.push(noise);
        self.at.push(at);
    }

    /// [`NormalBatch::push_density`] of `Normal(loc, exp(log_scale))`, the
    /// exponential taken inside the vector operation:
    /// `log N(x; loc, exp(log_scale))`.
    ///
    /// ```
    /// use iwhvi_core::distributions::Normal;
    /// use iwhvi_core::guide::NormalBatch;
    /// let (mut by_scale, mut by_log) = (NormalBatch::default(), NormalBatch::default());
    /// by_scale.push_density(Normal::new(1.0, 0.3f64.exp()), 0.2);
    /// by_log.push_density_log_scale(1.0, 0.3, 0.2);
    /// let (mut a, mut b) = (Vec::new(), Vec::new());
    /// by_scale.log_densities_into(1, &mut a);
    /// by_log.log_densities_into(1, &mut b);
    /// assert_eq!(a[0].to_bits(), b[0].to_bits());
    /// ```
    pub fn push_density_log_scale(&mut self, loc: T, log_scale: T, x: T) {
        let valid = self.push_log_params(loc, log_scale);
        self.push_value(valid, x);
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
    ///
    /// # Panics
    /// If densities were pushed into this batch
    /// ([`NormalBatch::push_density`]): draws and densities are two
    /// batches.
    pub fn draw_into(&mut self, u: &mut [T]) {
        assert!(
            self.x.is_empty() && self.noise.len() == self.loc.len(),
            "NormalBatch::draw_into: this batch holds densities (push_density); \
             push draws and densities into two batches"
        );
        if self.loc.is_empty() {
            return;
        }
        let mut y = Vec::with_capacity(self.loc.len());
        let f = NormalDraws {
            noise: std::mem::take(&mut self.noise),
            log: std::mem::take(&mut self.log),
            sigma: std::mem::take(&mut self.sigma),
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
        self.push_value(valid, x);
    }

    /// The value of the term just pushed (a constant for a rejected one,
    /// whose parameters become constants too).
    fn push_value(&mut self, valid: bool, x: T) {
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
    /// If the number of terms is not a multiple of `points`, or if draws
    /// were pushed into this batch ([`NormalBatch::push_draw`]): draws and
    /// densities are two batches.
    pub fn log_densities_into(&mut self, points: usize, out: &mut Vec<T>) {
        assert!(
            self.noise.is_empty() && self.x.len() == self.loc.len(),
            "NormalBatch::log_densities_into: this batch holds draws (push_draw); \
             push draws and densities into two batches"
        );
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
            log: std::mem::take(&mut self.log),
            sigma: std::mem::take(&mut self.sigma),
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
        self.log.clear();
        self.sigma.clear();
    }
}

/// `y_i = μ_i + σ_i ε_i` of the blocks `[μ, σ]`: `Normal::rsample`'s fused
/// node (partials `1` and `ε_i`) per element; where `log` is set the
/// block holds `ln σ_i`, and `σ_i = exp(ln σ_i)` is the scalar path's
/// `exp` node (partial `σ_i`).
///
/// Where `log` is set, `eval` and the products read `σ_i` as computed
/// when the element was pushed, not from the block: the operation is
/// evaluated only at the values it was recorded with (every engine does
/// so, the op being built for one evaluation), and one `exp` per element
/// is saved. [`NormalDensities`] does the same.
struct NormalDraws {
    noise: Vec<f64>,
    log: Vec<bool>,
    /// `σ_i` (where `log` is set, `exp` of the block's entry, computed
    /// when it was pushed).
    sigma: Vec<f64>,
}

/// `σ` from the scale block's entry, or (`log`) as computed at the push.
#[inline]
fn scale_of(log: bool, entry: f64, sigma: f64) -> f64 {
    if log { sigma } else { entry }
}

impl VectorFunction for NormalDraws {
    fn outputs(&self) -> usize {
        self.noise.len()
    }

    fn eval(&mut self, x: &[&[f64]], y: &mut [f64]) {
        for (i, (y, &e)) in y.iter_mut().zip(&self.noise).enumerate() {
            *y = x[0][i] + scale_of(self.log[i], x[1][i], self.sigma[i]) * e;
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
                if self.log[i] {
                    // The `exp` node: its adjoint, then its one edge.
                    let a_exp = 0.0 + a * e;
                    if a_exp != 0.0 {
                        scale_bar[i] += a_exp * self.sigma[i];
                    }
                } else {
                    scale_bar[i] += a * e;
                }
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
                let scale_dot = if self.log[i] {
                    0.0 + self.sigma[i] * scale[i]
                } else {
                    scale[i]
                };
                t += e * scale_dot;
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
    /// True where the scale block holds `ln σ` ([`NormalDraws`]).
    log: Vec<bool>,
    /// `σ` where `log` is set ([`NormalDraws`]).
    sigma: Vec<f64>,
}

impl VectorFunction for NormalDensities {
    fn outputs(&self) -> usize {
        self.points
    }

    fn eval(&mut self, x: &[&[f64]], y: &mut [f64]) {
        y.fill(0.0);
        for (i, &valid) in self.valid.iter().enumerate() {
            let t = if valid {
                let s = scale_of(self.log[i], x[2][i], self.sigma[i]);
                standard_log_density((x[0][i] - x[1][i]) / s, s)
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
            let s = scale_of(self.log[i], x[2][i], self.sigma[i]);
            let z = (x[0][i] - x[1][i]) / s;
            // The log-density node's edges: to `z`, then to `σ`.
            let a_z = 0.0 + a * -z;
            // `σ`'s adjoint: the scale's own slot, or (`log`) the `exp`
            // node's, which then passes it on along its one edge.
            let mut s_bar = 0.0;
            let mut to_scale = |p: f64, scale_bar: &mut Option<&mut [f64]>| {
                if self.log[i] {
                    s_bar += p;
                } else if let Some(scale_bar) = scale_bar.as_deref_mut() {
                    scale_bar[i] += p;
                }
            };
            to_scale(a * -(1.0 / s), scale_bar);
            if a_z != 0.0 {
                // The standardised node's edges, `scaled / σ`.
                if let Some(x_bar) = x_bar.as_deref_mut() {
                    x_bar[i] += a_z * (1.0 / s);
                }
                if let Some(loc_bar) = loc_bar.as_deref_mut() {
                    loc_bar[i] += a_z * (-1.0 / s);
                }
                to_scale(a_z * (-z / s), scale_bar);
            }
            if let Some(scale_bar) = scale_bar.as_deref_mut()
                && self.log[i]
                && s_bar != 0.0
            {
                scale_bar[i] += s_bar * s;
            }
        }
    }

    fn jvp(&self, x: &[&[f64]], _: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]) {
        ydot.fill(0.0);
        for (i, &valid) in self.valid.iter().enumerate() {
            if !valid {
                continue;
            }
            let s = scale_of(self.log[i], x[2][i], self.sigma[i]);
            let z = (x[0][i] - x[1][i]) / s;
            let scale_dot = xdot[2].map(|d| if self.log[i] { 0.0 + s * d[i] } else { d[i] });
            let mut t = 0.0;
            for (dot, partial) in [(xdot[0].map(|d| d[i]), 1.0), (xdot[1].map(|d| d[i]), -1.0)] {
                if let Some(dot) = dot {
                    t += partial * dot;
                }
            }
            if let Some(scale_dot) = scale_dot {
                t += -z * scale_dot;
            }
            let z_dot = t * (1.0 / s);
            ydot[i % self.points] += -z * z_dot + -(1.0 / s) * scale_dot.unwrap_or(0.0);
        }
    }
}
