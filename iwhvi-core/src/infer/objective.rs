//! The DIWHVI family of bounds on `log p(x)` and on `log q(u)`.
//!
//! For a hierarchical guide with mixing variable `ψ`, conditional
//! `q(u | ψ)` and reverse model `τ(ψ | u)`, a draw `ψ₀ ~ q(ψ)`,
//! `u ~ q(u | ψ₀)` and `ψ₁ … ψ_K ~ τ(ψ | u)` give the weights
//! `w_k = log q(u|ψ_k) + log q(ψ_k) − log τ(ψ_k|u)` and the sandwich
//!
//! - `U_K(u) = logsumexp_{k=0..K} w_k − log(K+1)`, with `E U_K ≥ log q(u)`
//!   ([`upper_bound_log_q`]);
//! - `L_K(u) = logsumexp_{k=1..K} w_k − log K`, with `E L_K ≤ log q(u)`.
//!
//! DIWHVI with `M` outer samples is
//! `logsumexp_m [log p(x, u_m) − U_K(u_m)] − log M ≤ log p(x)` in
//! expectation. ELBO (non-hierarchical guide, `M = 1`), IWAE
//! (non-hierarchical, `M > 1`), HVM (`K = 0`), SIVI (no reverse model) and
//! IWHVI (`M = 1`) are settings of this one function; see [`Diwhvi`].
//!
//! All randomness of a step is drawn first ([`StepNoise`]); the bound is
//! then a deterministic function of the guide's parameters, which
//! [`DiwhviObjective`] exposes to the [gradient engine](mod@crate::gradient).

use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

use crate::gradient::{Differentiable, GradientEngine};
use crate::guide::{HierarchicalGuide, Workspace};
use crate::model::Model;
use crate::scalar::Scalar;

/// The DIWHVI objective with `m` outer samples of `u` and `k` inner samples
/// of `ψ` per `u`.
///
/// ```
/// use iwhvi_core::objective::Diwhvi;
/// assert_eq!(Diwhvi::elbo(), Diwhvi::new(1, 0));
/// assert_eq!(Diwhvi::iwhvi(50), Diwhvi::new(1, 50));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Diwhvi {
    /// Outer samples `M ≥ 1`.
    pub m: usize,
    /// Inner samples `K ≥ 0` (ignored by non-hierarchical guides).
    pub k: usize,
}

impl Diwhvi {
    /// `M` outer and `K` inner samples.
    ///
    /// # Panics
    /// If `m == 0`.
    pub const fn new(m: usize, k: usize) -> Self {
        assert!(m >= 1, "DIWHVI needs at least one outer sample");
        Self { m, k }
    }

    /// The ELBO (`M = 1`; with a non-hierarchical guide).
    pub const fn elbo() -> Self {
        Self::new(1, 0)
    }

    /// IWAE with `m` samples (with a non-hierarchical guide).
    pub const fn iwae(m: usize) -> Self {
        Self::new(m, 0)
    }

    /// HVM: no inner samples, `U_0 = w_0` uses `ψ₀` alone.
    pub const fn hvm(m: usize) -> Self {
        Self::new(m, 0)
    }

    /// IWHVI with `k` inner samples (`M = 1`).
    pub const fn iwhvi(k: usize) -> Self {
        Self::new(1, k)
    }
}

/// The standard normal noise of one step: for each of the `M` outer
/// samples, the mixing draw `ψ₀` (`d`), the conditional draw of `u` (`D`)
/// and the `K` reverse-model draws (`K × d`).
#[derive(Clone, Debug, PartialEq)]
pub struct StepNoise {
    objective: Diwhvi,
    /// Noise lengths per draw: mixing, conditional, reverse.
    dims: [usize; 3],
    mixing: Vec<f64>,
    conditional: Vec<f64>,
    reverse: Vec<f64>,
}

impl StepNoise {
    /// Buffers for a guide and objective, filled with zeros.
    pub fn new<G: HierarchicalGuide>(guide: &G, objective: Diwhvi) -> Self {
        let k = if guide.mixing_dim() == 0 {
            0
        } else {
            objective.k
        };
        let dims = [
            guide.mixing_noise_dim(),
            guide.conditional_noise_dim(),
            guide.reverse_noise_dim(),
        ];
        Self {
            objective: Diwhvi::new(objective.m, k),
            dims,
            mixing: vec![0.0; objective.m * dims[0]],
            conditional: vec![0.0; objective.m * dims[1]],
            reverse: vec![0.0; objective.m * k * dims[2]],
        }
    }

    /// Fresh noise for a guide and objective.
    pub fn draw<G: HierarchicalGuide, R: Rng + ?Sized>(
        guide: &G,
        objective: Diwhvi,
        rng: &mut R,
    ) -> Self {
        let mut noise = Self::new(guide, objective);
        noise.redraw(rng);
        noise
    }

    /// Refills the buffers with fresh draws (no allocation).
    pub fn redraw<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        for buffer in [&mut self.mixing, &mut self.conditional, &mut self.reverse] {
            for e in buffer.iter_mut() {
                *e = rng.sample(StandardNormal);
            }
        }
    }

    /// The objective these buffers serve (with `K = 0` for a
    /// non-hierarchical guide).
    pub fn objective(&self) -> Diwhvi {
        self.objective
    }

    fn mixing(&self, m: usize) -> &[f64] {
        &self.mixing[m * self.dims[0]..(m + 1) * self.dims[0]]
    }

    fn conditional(&self, m: usize) -> &[f64] {
        &self.conditional[m * self.dims[1]..(m + 1) * self.dims[1]]
    }

    fn reverse(&self, m: usize, k: usize) -> &[f64] {
        let start = (m * self.objective.k + k) * self.dims[2];
        &self.reverse[start..start + self.dims[2]]
    }
}

/// `log p(x, u_m)` and `∇_u log p(x, u_m)` at each outer draw, computed
/// once per step so that every parameter pass reuses them (the
/// performance path: data size then costs `O(N·D)` per step, not
/// `O(N·P)`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChainedModel {
    values: Vec<f64>,
    gradients: Vec<Vec<f64>>,
}

impl ChainedModel {
    /// Evaluates the model and its `u`-gradient at each outer draw of the
    /// step's noise under `params`.
    pub fn new<Mo: Model, G: HierarchicalGuide, E: GradientEngine>(
        model: &Mo,
        guide: &G,
        params: &[f64],
        noise: &StepNoise,
        engine: &E,
    ) -> Self {
        let mut buffers = Buffers::new(guide, params);
        let mut chained = Self::default();
        for m in 0..noise.objective.m {
            buffers.draw_outer(guide, params, noise, m);
            let mut gradient = vec![0.0; buffers.u.len()];
            let value = engine.value_and_gradient_into(&LogJoint(model), &buffers.u, &mut gradient);
            chained.values.push(value);
            chained.gradients.push(gradient);
        }
        chained
    }

    /// `log p(x, u)` as a scalar whose derivatives are `∇_u log p · u̇`:
    /// the value computed once, the tangent chained through `u`'s.
    #[inline]
    fn log_joint<T: Scalar>(&self, m: usize, u: &[T]) -> T {
        let mut lp = T::constant(self.values[m]);
        for (&ui, &g) in u.iter().zip(&self.gradients[m]) {
            lp += (ui - ui.value()) * g;
        }
        lp
    }
}

/// A model's log joint as a [`Differentiable`] of `u`.
pub(crate) struct LogJoint<'a, Mo>(pub(crate) &'a Mo);

impl<Mo: Model> Differentiable for LogJoint<'_, Mo> {
    fn eval<T: Scalar>(&self, u: &[T]) -> T {
        self.0.log_joint(u)
    }
}

/// Work buffers of one bound evaluation, allocated once per evaluation and
/// reused across its samples.
struct Buffers<T> {
    psi0: Vec<T>,
    psi: Vec<T>,
    u: Vec<T>,
    workspace: Workspace<T>,
    weights: Vec<T>,
}

impl<T: Scalar> Buffers<T> {
    /// Buffers for `guide`, its workspace prepared for `params`.
    fn new<G: HierarchicalGuide>(guide: &G, params: &[T]) -> Self {
        let zero = T::constant(0.0);
        let mut workspace = Workspace::new(guide);
        guide.prepare(params, &mut workspace);
        Self {
            psi0: vec![zero; guide.mixing_dim()],
            psi: vec![zero; guide.mixing_dim()],
            u: vec![zero; guide.latent_dim()],
            workspace,
            weights: Vec::new(),
        }
    }

    /// `ψ₀` and `u` of outer sample `m`.
    fn draw_outer<G: HierarchicalGuide>(
        &mut self,
        guide: &G,
        params: &[T],
        noise: &StepNoise,
        m: usize,
    ) {
        guide.sample_mixing(params, noise.mixing(m), &mut self.psi0);
        guide.sample_conditional(
            params,
            &self.psi0,
            noise.conditional(m),
            &mut self.u,
            &mut self.workspace,
        );
    }

    /// The importance weights `w_0 … w_K` of the current `u` into
    /// `self.weights`.
    fn inner_weights<G: HierarchicalGuide>(
        &mut self,
        guide: &G,
        params: &[T],
        noise: &StepNoise,
        m: usize,
    ) {
        self.weights.clear();
        self.weights.reserve(noise.objective.k + 1);
        if guide.mixing_dim() == 0 {
            let log_q = guide.log_conditional(params, &[], &self.u, &mut self.workspace);
            self.weights.push(log_q);
            return;
        }
        guide.prepare_reverse(params, &self.u, &mut self.workspace);
        let w0 = Self::weight(guide, params, &self.psi0, &self.u, &mut self.workspace);
        self.weights.push(w0);
        for k in 0..noise.objective.k {
            guide.sample_reverse(
                params,
                &self.u,
                noise.reverse(m, k),
                &mut self.psi,
                &mut self.workspace,
            );
            let wk = Self::weight(guide, params, &self.psi, &self.u, &mut self.workspace);
            self.weights.push(wk);
        }
    }

    /// `log q(u|ψ) + log q(ψ) − log τ(ψ|u)`.
    #[inline]
    fn weight<G: HierarchicalGuide>(
        guide: &G,
        params: &[T],
        psi: &[T],
        u: &[T],
        workspace: &mut Workspace<T>,
    ) -> T {
        guide.log_conditional(params, psi, u, workspace) + guide.log_mixing(params, psi)
            - guide.log_reverse(params, u, psi, workspace)
    }
}

/// `U_K = logsumexp(w) − log(len w)`; exact `log q(u)` for a
/// non-hierarchical guide (one weight).
#[inline]
fn upper<T: Scalar>(weights: &[T]) -> T {
    T::log_sum_exp(weights) - (weights.len() as f64).ln()
}

/// The DIWHVI bound as a function of the guide's parameters for one
/// step's noise: the [`Differentiable`] the engine differentiates.
///
/// With a [`ChainedModel`], the model enters through its precomputed
/// value and `u`-gradient instead of being evaluated on every pass.
#[derive(Clone, Copy)]
pub struct DiwhviObjective<'a, Mo, G> {
    model: &'a Mo,
    guide: &'a G,
    noise: &'a StepNoise,
    chained: Option<&'a ChainedModel>,
}

impl<'a, Mo: Model, G: HierarchicalGuide> DiwhviObjective<'a, Mo, G> {
    /// The bound with the model evaluated directly on every pass.
    pub fn new(model: &'a Mo, guide: &'a G, noise: &'a StepNoise) -> Self {
        Self {
            model,
            guide,
            noise,
            chained: None,
        }
    }

    /// The bound with the model entering through `chained` (which must
    /// have been computed for the same parameters and noise).
    pub fn chained(
        model: &'a Mo,
        guide: &'a G,
        noise: &'a StepNoise,
        chained: &'a ChainedModel,
    ) -> Self {
        Self {
            model,
            guide,
            noise,
            chained: Some(chained),
        }
    }
}

impl<Mo: Model, G: HierarchicalGuide> Differentiable for DiwhviObjective<'_, Mo, G> {
    fn eval<T: Scalar>(&self, params: &[T]) -> T {
        let objective = self.noise.objective;
        let mut buffers = Buffers::new(self.guide, params);
        let mut log_w = Vec::with_capacity(objective.m);
        for m in 0..objective.m {
            buffers.draw_outer(self.guide, params, self.noise, m);
            buffers.inner_weights(self.guide, params, self.noise, m);
            let log_q_upper = upper(&buffers.weights);
            let log_p = match self.chained {
                Some(chained) => chained.log_joint(m, &buffers.u),
                None => self.model.log_joint(&buffers.u),
            };
            log_w.push(log_p - log_q_upper);
        }
        T::log_sum_exp(&log_w) - (objective.m as f64).ln()
    }
}

/// How the gradient of the bound is estimated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GradientEstimator {
    /// The plain reparameterization gradient of the bound.
    #[default]
    Reparameterized,
    /// The doubly-reparameterized estimator (Tucker, Lawson, Gu & Maddison,
    /// "Doubly reparameterized gradient estimators for Monte Carlo
    /// objectives", 2018) for the reverse model's parameters `φ`: the score
    /// terms of the inner importance weights are replaced by path terms
    /// weighted by the squared normalised weights,
    /// `∂U/∂φ ≈ Σ_{k≥1} w̃_k² ∂w_k/∂ψ_k · ∂ψ_k/∂φ + w̃₀ ∂w₀/∂φ`
    /// (`ψ₀` is drawn from `q(ψ)`, not `τ`, so its term stays direct). Same
    /// expectation, lower variance; the other parameters keep the plain
    /// gradient.
    ///
    /// For a guide without mixing variables (mean-field, full-rank,
    /// structured), where `log q` is exact, it applies to all the
    /// parameters: the gradient of
    /// `Σ_m ŵ_m² [log p(x, u_m) − log q(u_m; φ stopped)]` through
    /// `u_m = g(ε_m; φ)`, with `ŵ = softmax(log p − log q)` held constant.
    /// With `M = 1` (the ELBO) this is "sticking the landing" (Roeder, Wu &
    /// Duvenaud, 2017): the score term, whose expectation is zero, is
    /// dropped, and at the exact posterior every draw's gradient is zero.
    DoublyReparameterized,
}

/// For a guide without mixing variables: the surrogate
/// `Σ_m ŵ_m² [log p(x, u_m) − log q(u_m; φ stopped)]` whose gradient is the
/// doubly-reparameterized (for `M = 1`, sticking-the-landing) estimate of
/// the bound's gradient in all of `φ`.
struct PathwiseSurrogate<'a, Mo, G> {
    objective: DiwhviObjective<'a, Mo, G>,
    chained: &'a ChainedModel,
}

impl<Mo: Model, G: HierarchicalGuide> Differentiable for PathwiseSurrogate<'_, Mo, G> {
    fn eval<T: Scalar>(&self, params: &[T]) -> T {
        let DiwhviObjective { guide, noise, .. } = self.objective;
        let m_count = noise.objective.m;
        let stopped: Vec<T> = params.iter().map(|p| T::constant(p.value())).collect();
        let mut buffers = Buffers::new(guide, params);
        let mut stopped_workspace = Workspace::new(guide);
        guide.prepare(&stopped, &mut stopped_workspace);
        let mut terms = Vec::with_capacity(m_count);
        for m in 0..m_count {
            buffers.draw_outer(guide, params, noise, m);
            let log_q = guide.log_conditional(&stopped, &[], &buffers.u, &mut stopped_workspace);
            terms.push(self.chained.log_joint(m, &buffers.u) - log_q);
        }
        let values: Vec<f64> = terms.iter().map(|t| t.value()).collect();
        let normaliser = f64::log_sum_exp(&values);
        let mut total = T::constant(0.0);
        for (term, v) in terms.into_iter().zip(&values) {
            let normalised = (v - normaliser).exp();
            total += term * (normalised * normalised);
        }
        total
    }
}

/// The surrogate whose gradient in `φ` is the doubly-reparameterized
/// estimate of the bound's: `−Σ_m a_m [Σ_{k≥1} w̃_k² w_k|_{φ stopped in τ} + w̃₀ w₀]`,
/// with `a = softmax(log ŵ)` and `w̃ = softmax(w)` held constant.
struct DoublyReparameterized<'a, Mo, G> {
    objective: DiwhviObjective<'a, Mo, G>,
    /// `log p(x, u_m)` of the step's outer draws (values only: the surrogate
    /// differentiates the reverse model alone).
    chained: &'a ChainedModel,
}

impl<Mo: Model, G: HierarchicalGuide> Differentiable for DoublyReparameterized<'_, Mo, G> {
    fn eval<T: Scalar>(&self, params: &[T]) -> T {
        let DiwhviObjective { guide, noise, .. } = self.objective;
        let objective = noise.objective;
        let stopped: Vec<T> = params.iter().map(|p| T::constant(p.value())).collect();
        let mut buffers = Buffers::new(guide, params);
        let mut stopped_workspace = Workspace::new(guide);
        guide.prepare(&stopped, &mut stopped_workspace);
        let mut surrogates = Vec::with_capacity(objective.m);
        let mut log_w = Vec::with_capacity(objective.m);
        let mut values = Vec::with_capacity(objective.k + 1);
        buffers.weights.reserve(objective.k + 1);
        for m in 0..objective.m {
            buffers.draw_outer(guide, params, noise, m);
            let u = &buffers.u;
            guide.prepare_reverse(params, u, &mut buffers.workspace);
            guide.prepare_reverse(&stopped, u, &mut stopped_workspace);
            buffers.weights.clear();
            let w0 = Buffers::weight(guide, params, &buffers.psi0, u, &mut buffers.workspace);
            buffers.weights.push(w0);
            for k in 0..objective.k {
                guide.sample_reverse(
                    params,
                    u,
                    noise.reverse(m, k),
                    &mut buffers.psi,
                    &mut buffers.workspace,
                );
                let psi = &buffers.psi;
                let wk = guide.log_conditional(params, psi, u, &mut buffers.workspace)
                    + guide.log_mixing(params, psi)
                    - guide.log_reverse(&stopped, u, psi, &mut stopped_workspace);
                buffers.weights.push(wk);
            }
            values.clear();
            values.extend(buffers.weights.iter().map(|w| w.value()));
            let normaliser = f64::log_sum_exp(&values);
            let mut surrogate = T::constant(0.0);
            for (i, (&w, &v)) in buffers.weights.iter().zip(&values).enumerate() {
                let normalised = (v - normaliser).exp();
                surrogate += w * if i == 0 {
                    normalised
                } else {
                    normalised * normalised
                };
            }
            surrogates.push(surrogate);
            let log_p = self.chained.values[m];
            log_w.push(log_p - (normaliser - (values.len() as f64).ln()));
        }
        let normaliser = f64::log_sum_exp(&log_w);
        let mut total = T::constant(0.0);
        for (s, lw) in surrogates.into_iter().zip(&log_w) {
            total -= s * (lw - normaliser).exp();
        }
        total
    }
}

/// One step's bound and its gradient in the guide's parameters, with the
/// model's gradient in `u` chained into the parameter tangents.
pub fn value_and_gradient<Mo: Model, G: HierarchicalGuide, E: GradientEngine>(
    model: &Mo,
    guide: &G,
    params: &[f64],
    noise: &StepNoise,
    engine: &E,
    gradient: &mut [f64],
) -> f64 {
    value_and_gradient_with(
        model,
        guide,
        params,
        noise,
        engine,
        GradientEstimator::Reparameterized,
        gradient,
    )
}

/// [`value_and_gradient`] with the given estimator for the reverse model's
/// parameters.
pub fn value_and_gradient_with<Mo: Model, G: HierarchicalGuide, E: GradientEngine>(
    model: &Mo,
    guide: &G,
    params: &[f64],
    noise: &StepNoise,
    engine: &E,
    estimator: GradientEstimator,
    gradient: &mut [f64],
) -> f64 {
    let chained = ChainedModel::new(model, guide, params, noise, engine);
    let objective = DiwhviObjective::chained(model, guide, noise, &chained);
    if estimator == GradientEstimator::DoublyReparameterized && guide.mixing_dim() == 0 {
        let value = objective.eval(params);
        let surrogate = PathwiseSurrogate {
            objective,
            chained: &chained,
        };
        engine.value_and_gradient_into(&surrogate, params, gradient);
        return value;
    }
    let reverse = guide.reverse_params();
    if estimator == GradientEstimator::Reparameterized
        || reverse.is_empty()
        || noise.objective.k == 0
    {
        return engine.value_and_gradient_into(&objective, params, gradient);
    }
    let p = params.len();
    let value = if reverse.start > 0 {
        engine.value_and_partial_gradient_into(
            &objective,
            params,
            0..reverse.start,
            &mut gradient[..reverse.start],
        )
    } else {
        objective.eval(params)
    };
    if reverse.end < p {
        engine.value_and_partial_gradient_into(
            &objective,
            params,
            reverse.end..p,
            &mut gradient[reverse.end..],
        );
    }
    let surrogate = DoublyReparameterized {
        objective,
        chained: &chained,
    };
    engine.value_and_partial_gradient_into(
        &surrogate,
        params,
        reverse.clone(),
        &mut gradient[reverse],
    );
    value
}

/// A Monte Carlo estimate with its standard error.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Estimate {
    /// The mean of the replicates.
    pub mean: f64,
    /// `sd / √n`.
    pub std_error: f64,
    /// The number of replicates `n`.
    pub replicates: usize,
}

impl Estimate {
    /// The mean and standard error of `values`.
    pub fn from_values(values: &[f64]) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = if values.len() > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            f64::NAN
        };
        Self {
            mean,
            std_error: (var / n).sqrt(),
            replicates: values.len(),
        }
    }
}

impl std::fmt::Display for Estimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.4} ± {:.4}", self.mean, self.std_error)
    }
}

/// The DIWHVI bound at `params`, averaged over `replicates` independent
/// draws of a step's noise, with its standard error.
///
/// ```
/// use iwhvi_core::guide::MeanField;
/// use iwhvi_core::model::{Layout, LatentSpec, Model};
/// use iwhvi_core::objective::{estimate_bound, Diwhvi};
/// use iwhvi_core::transforms::Transform;
/// use iwhvi_core::Scalar;
/// use rand::SeedableRng;
///
/// /// A standard normal "posterior" with log p(x) = 0.
/// struct StdNormal;
/// impl Model for StdNormal {
///     fn layout(&self) -> Layout {
///         Layout::new(vec![LatentSpec::scalar("z", Transform::Identity)])
///     }
///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
///         iwhvi_core::guide::std_normal_log_density(u)
///     }
/// }
///
/// // The guide equal to the posterior: the ELBO is exactly 0 on every draw.
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let estimate = estimate_bound(&StdNormal, &MeanField::new(1), &[0.0, 0.0], Diwhvi::elbo(), 50, &mut rng);
/// assert!(estimate.mean.abs() < 1e-12 && estimate.std_error < 1e-12);
/// ```
pub fn estimate_bound<Mo: Model, G: HierarchicalGuide, R: Rng + ?Sized>(
    model: &Mo,
    guide: &G,
    params: &[f64],
    objective: Diwhvi,
    replicates: usize,
    rng: &mut R,
) -> Estimate {
    let mut noise = StepNoise::new(guide, objective);
    let values: Vec<f64> = (0..replicates)
        .map(|_| {
            noise.redraw(rng);
            DiwhviObjective::new(model, guide, &noise).eval(params)
        })
        .collect();
    Estimate::from_values(&values)
}

/// The sandwich on `log q(u)` at one draw `u ~ q`: `U_K(u) ≥ log q(u)` and
/// `L_K(u) ≤ log q(u)` in expectation.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct LogQSandwich {
    /// `U_K(u)`.
    pub upper: f64,
    /// `L_K(u)` (`U` itself for a non-hierarchical guide, whose `log q` is exact).
    pub lower: f64,
}

/// `U_K(u)`: the upper bound on `log q(u)` from `ψ₀` (the draw that made
/// `u`) and `ψ₁ … ψ_K ~ τ(ψ | u)`, with the lower bound `L_K(u)` from
/// `ψ₁ … ψ_K` alone; `u` is drawn from the guide with the noise of outer
/// sample `m` of `noise`. Returns `u` too.
pub fn upper_bound_log_q<G: HierarchicalGuide>(
    guide: &G,
    params: &[f64],
    noise: &StepNoise,
    m: usize,
) -> (LogQSandwich, Vec<f64>) {
    let mut buffers = Buffers::new(guide, params);
    buffers.draw_outer(guide, params, noise, m);
    buffers.inner_weights(guide, params, noise, m);
    let upper = upper(&buffers.weights);
    let lower = if buffers.weights.len() > 1 {
        f64::log_sum_exp(&buffers.weights[1..]) - ((buffers.weights.len() - 1) as f64).ln()
    } else {
        upper
    };
    (LogQSandwich { upper, lower }, buffers.u)
}

/// Bounds on the guide's entropy `H[q] = −E log q(u)` and on the ELBO of
/// its exact marginal, `E[log p(x, u) − log q(u)] = log p(x) − KL(q ‖ p(·|x))`,
/// from the sandwich with `K` inner samples over `draws` draws of `u`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct GuideDiagnostics {
    /// `−E U_K ≤ H[q]` (in expectation).
    pub entropy_lower: Estimate,
    /// `−E L_K ≥ H[q]` (in expectation).
    pub entropy_upper: Estimate,
    /// `E[log p − U_K] ≤ ELBO of q`, so `KL(q ‖ posterior) ≤ log p(x) −
    /// elbo_lower`; the gap shrinks to the KL as `K` grows.
    pub elbo_lower: Estimate,
    /// `E[log p − L_K] ≥ ELBO of q`, so `KL ≥ log p(x) − elbo_upper`.
    pub elbo_upper: Estimate,
}

impl GuideDiagnostics {
    /// The bracket `[log_evidence − elbo_upper, log_evidence − elbo_lower]`
    /// on `KL(q ‖ p(·|x))` given an estimate of `log p(x)`. With the exact
    /// `log p(x)` both ends hold (in expectation). [`log_evidence`] is a
    /// lower bound on `log p(x)`: with it the lower end still holds, and
    /// the upper end falls short of a bound by the estimate's own gap
    /// (small when its `M` and `K` are large).
    pub fn kl_bracket(&self, log_evidence: f64) -> (f64, f64) {
        (
            log_evidence - self.elbo_upper.mean,
            log_evidence - self.elbo_lower.mean,
        )
    }
}

/// Estimates [`GuideDiagnostics`] with `k` inner samples over `draws`
/// draws of `u ~ q`. `k = 0` is taken as 1: the lower bound `L_K` needs
/// an inner sample (for `U_0`, HVM's bound, call [`upper_bound_log_q`]
/// with a `K = 0` [`StepNoise`]).
pub fn guide_diagnostics<Mo: Model, G: HierarchicalGuide, R: Rng + ?Sized>(
    model: &Mo,
    guide: &G,
    params: &[f64],
    k: usize,
    draws: usize,
    rng: &mut R,
) -> GuideDiagnostics {
    let mut noise = StepNoise::new(guide, Diwhvi::new(1, k.max(1)));
    let mut columns = [
        Vec::with_capacity(draws),
        Vec::with_capacity(draws),
        Vec::with_capacity(draws),
        Vec::with_capacity(draws),
    ];
    for _ in 0..draws {
        noise.redraw(rng);
        let (sandwich, u) = upper_bound_log_q(guide, params, &noise, 0);
        let log_p = model.log_joint(&u);
        columns[0].push(-sandwich.upper);
        columns[1].push(-sandwich.lower);
        columns[2].push(log_p - sandwich.upper);
        columns[3].push(log_p - sandwich.lower);
    }
    GuideDiagnostics {
        entropy_lower: Estimate::from_values(&columns[0]),
        entropy_upper: Estimate::from_values(&columns[1]),
        elbo_lower: Estimate::from_values(&columns[2]),
        elbo_upper: Estimate::from_values(&columns[3]),
    }
}

/// An estimate of `log p(x)`: the DIWHVI bound with many outer and inner
/// samples (it approaches `log p(x)` from below as both grow), averaged
/// over `replicates` draws.
pub fn log_evidence<Mo: Model, G: HierarchicalGuide, R: Rng + ?Sized>(
    model: &Mo,
    guide: &G,
    params: &[f64],
    m: usize,
    k: usize,
    replicates: usize,
    rng: &mut R,
) -> Estimate {
    estimate_bound(model, guide, params, Diwhvi::new(m, k), replicates, rng)
}
