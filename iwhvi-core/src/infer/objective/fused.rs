//! The DIWHVI bound and its gradient for the semi-implicit guide,
//! computed in plain `f64` with a hand-written adjoint: no dual numbers, no
//! tape.
//!
//! The mathematics is that of the generic path ([`DiwhviObjective`](super::DiwhviObjective) over
//! the weights of `weights.rs`), written out for [`SemiImplicit`] with a
//! learned affine reverse model (`Reverse::Learned(Conditioning::Linear)`)
//! or none (`Reverse::Prior`, SIVI). For outer sample `m`, with the step's
//! noise `ε₀` (mixing), `ε` (conditional) and `η₁ … η_K` (reverse), an
//! affine conditional ([`Conditioning::Linear`]) and a constant
//! conditional scale (the other settings are below):
//!
//! - `ψ₀ = ε₀`, `u = W ψ₀ + b + s ⊙ ε` (`s = e^{log s}`),
//!   `ν = R u + c`, `ψ_k = ν + ρ ⊙ η_k` (`ρ = e^{log ρ}`; SIVI: `ψ_k = η_k`);
//! - the `K + 1` draws are the rows of one `(K+1) × d` matrix `Ψ`, and
//!   their conditional means (the rows of `Ψ Wᵀ + 1 bᵀ`) are one matrix
//!   product (nalgebra's `gemm`);
//! - `w_k = log N(u; W ψ_k + b, diag s²) + log N(ψ_k; 0, I) − log N(ψ_k; ν, diag ρ²)`
//!   (SIVI: `log τ(ψ|u) = log q(ψ)`), and `U_K = logsumexp_k w_k − log(K+1)`,
//!   in one pass over the rows, which also keeps the softmax weights
//!   `π_k = ∂U_K/∂w_k` for the adjoint;
//! - `log ŵ_m = log p(x, u_m) − U_K(u_m)`, with `log p` and `∇ᵤ log p`
//!   taken from a [`ChainedModel`];
//! - the bound `logsumexp_m log ŵ_m − log M`, whose gradient is
//!   `Σ_m a_m ∇ log ŵ_m` with `a = softmax(log ŵ)`, summed in `m` order.
//!
//! The adjoint of `log ŵ_m` (with `ḡ_k = −π_k`, `z_k = (u − μ_k)/s`,
//! `t_k = (ψ_k − ν)/ρ`; `M̄` has rows `M̄_k = ḡ_k z_k/s`):
//! `log s̄ = Σ_k ḡ_k (z_k² − 1)`; `ū = ∇ᵤ log p − Σ_k M̄_k`; `Ψ̄ = M̄ W`
//! (one product); for `k ≥ 1`, `Ψ̄_k += ḡ_k (t_k/ρ − ψ_k)`, `ν̄ += Ψ̄_k`,
//! `log ρ̄ += Ψ̄_k ⊙ ρ ⊙ η_k`; at every `k`, `ν̄ −= ḡ_k t_k/ρ` and
//! `log ρ̄ += ḡ_k (1 − t_k²)`; then `R̄ = ν̄ uᵀ`, `c̄ = ν̄`, `ū += Rᵀ ν̄`;
//! through `u`, `M̄_0 += ū` and `log s̄ += ū ⊙ s ⊙ ε`; last `W̄ = M̄ᵀ Ψ`
//! (one product) and `b̄ = Σ_k M̄_k`.
//!
//! The other settings covered:
//!
//! - a `ψ`-dependent scale (`with_psi_dependent_scale(true)`): the network
//!   has `2D` outputs `(μ_k, log s_k)`, both rows of the same product; the
//!   rows of `M̄` gain the log-scale adjoints `ḡ_k (z_k² − 1)`, and `u`'s
//!   adjoint reaches the second half of row 0 as `ū ⊙ s₀ ⊙ ε`;
//! - an MLP conditional (`Conditioning::Mlp`): `H = tanh(Ψ W₁ᵀ + 1 b₁ᵀ)`
//!   and outputs `H W₂ᵀ + 1 b₂ᵀ` (one product per layer), with
//!   `H̄ = (M̄ W₂) ⊙ (1 − H²)`, `Ψ̄ = H̄ W₁`, `W̄₂ = M̄ᵀ H`, `W̄₁ = H̄ᵀ Ψ`;
//! - DReG on the reverse model's parameters
//!   ([`FusedDiwhvi::with_estimator`]), a flag of the same backward.
//!
//! - an MLP reverse model: `ν = W₂ᵣ tanh(W₁ᵣ u + b₁ᵣ) + b₂ᵣ`, one vector
//!   per outer sample, with its adjoint into `ū` and into its parameters.
//!
//! - Student-t conditionals ([`ConditionalFamily::StudentT`], `ν` fixed):
//!   `u = μ₀ + s ⊙ t` with the step's t draws `tᵢ = εᵢ₀ / √(Σⱼ εᵢⱼ²/ν)`
//!   in place of `ε`, and per coordinate
//!   `log q = c − log s − (ν+1)/2 · ln(1 + z²/ν)`; the adjoints above
//!   with `z_k` replaced by `r(z_k) = (ν+1) z_k / (ν + z_k²)` where it is
//!   the density's slope: `M̄_k = ḡ_k r(z_k)/s` and
//!   `log s̄ = Σ_k ḡ_k (r(z_k) z_k − 1)` (`r(z) = z` is the Gaussian);
//!
//! - a [`Preconditioned`] semi-implicit guide
//!   ([`FusedDiwhvi::preconditioned`]): the inner guide over
//!   `z = L⁻¹(u − shift)`, the model's gradient as `Lᵀ ∇ᵤ log p`.
//!
//! Not covered: the other guides (they take the generic path).
//!
//! Threads: the `M` outer samples are independent. Each computes
//! `log ŵ_m` and `∇ log ŵ_m` into its own slot (a row of an `M × P`
//! buffer) with its worker's buffers, and the slots are reduced on the
//! calling thread in `m` order, so the result is the same bits on one
//! thread or many ([`FusedDiwhvi::with_parallelism`],
//! [`FUSED_PARALLEL_WORK`]). The buffers live in the [`FusedDiwhvi`] and
//! are reused from step to step: a step allocates only the model's
//! [`ChainedModel`].
//!
//! [`fit`](crate::fit) takes this path under
//! [`Engine::Auto`](crate::fit::Engine::Auto) (the default) for every
//! guide [`HierarchicalGuide::fused`] covers; the tests check it against
//! the generic path on both engines.

use std::ops::Range;

use nalgebra::{DMatrix, DMatrixView};
use rayon::prelude::*;

use super::{ChainedModel, GradientEstimator, ObjectiveError, StepNoise};
use crate::gradient::{GradientEngine, Parallelism};
use crate::guide::{
    ConditionalFamily, Conditioning, HierarchicalGuide, Preconditioned, Reverse, SemiImplicit,
    student_t_constant, student_t_draw,
};
use crate::model::Model;
use crate::special::LN_SQRT_2PI;

/// Under [`Parallelism::Auto`], the outer samples of a step run on
/// rayon's pool only when their guide work reaches this many
/// multiply-adds (about `M (K + 1)` times the conditional network's
/// weights, see `FusedDiwhvi::work`); below it they run on the calling
/// thread, since waking the pool costs tens of microseconds. A static
/// estimate, never a timing; and the result is the same bits either way.
///
/// Measured with `benches/diwhvi_step.rs` (`fused` against
/// `fused-2threads`, eight schools, 240 parameters, `d = 10`): see
/// docs/PERFORMANCE.md, "Eight schools DIWHVI step: the fused path".
pub const FUSED_PARALLEL_WORK: usize = 40_000;

/// The guide a [`FusedDiwhvi`] serves.
#[derive(Clone, Copy, Debug)]
enum Source<'g> {
    Plain(&'g SemiImplicit),
    Preconditioned(&'g Preconditioned<SemiImplicit>),
}

/// A preconditioner's `shift`, `L` (row-major, lower triangular) and
/// `Σ ln Lᵢᵢ`.
#[derive(Clone, Copy, Debug)]
struct Whitening<'g> {
    shift: &'g [f64],
    scale_tril: &'g [f64],
    log_det: f64,
}

/// One affine layer `x ↦ W x + b` of the conditional network: `W` is
/// `outputs × inputs`, row-major.
#[derive(Clone, Debug)]
struct Layer {
    weight: Range<usize>,
    bias: Range<usize>,
    inputs: usize,
    outputs: usize,
}

/// Where the affine reverse model's parameters live: `ν = R u + c`
/// (`R` is `d × D`, row-major), log-scale `log ρ`.
#[derive(Clone, Debug)]
struct ReverseBlocks {
    /// The hidden `tanh` layer `u ↦ tanh(W₁ u + b₁)` of an MLP reverse
    /// model.
    hidden: Option<Layer>,
    /// The output layer (`R` is `d × D`, or `d × hidden` after a hidden
    /// layer).
    weight: Range<usize>,
    bias: Range<usize>,
    log_scale: Range<usize>,
}

/// A Student-t conditional with `ν` degrees of freedom
/// ([`ConditionalFamily::StudentT`]): per coordinate,
/// `log t_ν(u; μ, s) = c − log s − (ν+1)/2 · ln(1 + z²/ν)` with
/// `c = ln Γ((ν+1)/2) − ln Γ(ν/2) − ½ ln(νπ)`, whose derivative in `z` is
/// `−r(z)`, `r(z) = (ν+1) z / (ν + z²)` (the Gaussian's `r(z) = z`).
#[derive(Clone, Copy, Debug)]
struct StudentT {
    /// `ν` as the noise's count of chi-square normals per coordinate.
    df: usize,
    nu: f64,
    /// `1/ν`.
    inverse_nu: f64,
    /// `(ν+1)/2`.
    half_nu_plus_one: f64,
    /// `c`, one coordinate's constant.
    constant: f64,
}

impl StudentT {
    fn new(df: usize) -> Self {
        let nu = df as f64;
        Self {
            df,
            nu,
            inverse_nu: 1.0 / nu,
            half_nu_plus_one: (nu + 1.0) * 0.5,
            constant: student_t_constant(nu),
        }
    }

    /// `ln(1 + z²/ν)`, the generic path's form (and bits: `z² · (1/ν)`).
    fn tail(&self, z: f64) -> f64 {
        (z * z * self.inverse_nu).ln_1p()
    }

    /// `r(z) = (ν+1) z / (ν + z²)`, minus the derivative of the log
    /// density in `z`.
    fn score(&self, z: f64) -> f64 {
        2.0 * self.half_nu_plus_one * z / (self.nu + z * z)
    }
}

/// The DIWHVI bound of a [`SemiImplicit`] guide (any of its settings,
/// also inside a [`Preconditioned`]) and its gradient in the guide's
/// parameters, for one step's noise, by a hand-written adjoint over plain
/// `f64` matrices.
///
/// The value is `logsumexp_m [log p(x, u_m) − U_K(u_m)] − log M`, with
/// `U_K = logsumexp_{k=0..K} w_k − log(K+1)` and
/// `w_k = log q(u|ψ_k) + log q(ψ_k) − log τ(ψ_k|u)`: the same function of
/// the parameters as [`DiwhviObjective`](super::DiwhviObjective) with the plain reparameterization
/// gradient ([`value_and_gradient`](super::value_and_gradient)), equal to it
/// up to rounding (the sums run in another order); with
/// [`FusedDiwhvi::with_estimator`], the DReG estimate of
/// [`value_and_gradient_with`](super::value_and_gradient_with). The buffers are
/// allocated on the first call and reused while `K` stays the same (one
/// set per worker thread, see [`FusedDiwhvi::with_parallelism`]).
///
/// ```
/// use iwhvi_core::Scalar;
/// use iwhvi_core::gradient::ForwardEngine;
/// use iwhvi_core::guide::{HierarchicalGuide, SemiImplicit};
/// use iwhvi_core::model::{LatentSpec, Layout, Model};
/// use iwhvi_core::objective::fused::FusedDiwhvi;
/// use iwhvi_core::objective::{self, Diwhvi, StepNoise};
/// use iwhvi_core::transforms::Transform;
/// use rand::SeedableRng;
///
/// struct StdNormal;
/// impl Model for StdNormal {
///     fn layout(&self) -> Layout {
///         Layout::new(vec![LatentSpec::vector("x", 2, Transform::Identity)])
///     }
///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
///         -(u[0].square() + u[1].square()) * 0.5
///     }
/// }
///
/// let guide = SemiImplicit::new(2, 3);
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let params = guide.init_params(&mut rng);
/// let noise = StepNoise::draw(&guide, Diwhvi::new(2, 4), &mut rng);
/// let engine = ForwardEngine::<8>::new();
///
/// let mut fused = FusedDiwhvi::new(&guide);
/// let mut gradient = vec![0.0; params.len()];
/// let bound = fused.value_and_gradient(&StdNormal, &params, &noise, &engine, &mut gradient);
///
/// let mut generic = vec![0.0; params.len()];
/// let reference =
///     objective::value_and_gradient(&StdNormal, &guide, &params, &noise, &engine, &mut generic);
/// assert!((bound - reference).abs() <= 1e-12 * reference.abs());
/// for (a, b) in gradient.iter().zip(&generic) {
///     assert!((a - b).abs() <= 1e-10 * (1.0 + b.abs()));
/// }
/// ```
#[derive(Clone, Debug)]
pub struct FusedDiwhvi<'g> {
    /// The guide the steps draw from, and the semi-implicit guide inside
    /// it (the same one, or the inner guide of a `Preconditioned`).
    source: Source<'g>,
    guide: &'g SemiImplicit,
    /// `u = shift + L z` around the semi-implicit guide, if preconditioned.
    whitening: Option<Whitening<'g>>,
    /// `D`, `d` and the number of parameters `P`.
    latent_dim: usize,
    mixing_dim: usize,
    params_len: usize,
    /// The conditional network's outputs: `D`, or `2D` when the log-scale
    /// is its second half (`ψ`-dependent scale).
    outputs: usize,
    /// The conditional network: an optional hidden `tanh` layer
    /// (`Conditioning::Mlp`), then the affine output layer.
    hidden_layer: Option<Layer>,
    output_layer: Layer,
    /// The constant `log s` (`None` for a `ψ`-dependent scale).
    log_scale: Option<Range<usize>>,
    /// Student-t conditionals (`None`: Gaussian).
    student: Option<StudentT>,
    reverse: Option<ReverseBlocks>,
    /// DReG on the reverse model's parameters.
    doubly_reparameterized: bool,
    /// Threads for the outer samples.
    parallelism: Parallelism,
    /// One set of buffers per worker (one without threads), kept across
    /// steps.
    workers: Vec<Scratch>,
    /// `log ŵ_m` and `a_m`.
    log_w: Vec<f64>,
    outer_softmax: Vec<f64>,
    /// `∇ log ŵ_m` for each `m` (`M × P`, row `m` contiguous).
    slots: Vec<f64>,
}

/// The buffers of one outer sample's evaluation, sized for one `K` (one
/// set per worker, reused from step to step).
#[derive(Clone, Debug, Default)]
struct Scratch {
    /// `K` and `(D, d)` the matrices are sized for.
    shape: (usize, usize, usize),
    /// `s`, `1/s` (`D`) and `ρ`, `1/ρ` (`d`).
    scale: Vec<f64>,
    inverse_scale: Vec<f64>,
    rho: Vec<f64>,
    inverse_rho: Vec<f64>,
    /// `Σ log s` and `Σ log ρ`.
    sum_log_scale: f64,
    sum_log_rho: f64,
    /// The conditional's weights as column-major matrices: the output
    /// layer's, and the hidden layer's (`hidden × d`; MLP only).
    weight: DMatrix<f64>,
    hidden_weight: DMatrix<f64>,
    /// The hidden units `tanh(W₁ ψ_k + b₁)` as rows (`(K+1) × hidden`),
    /// their adjoints (through the `tanh`), and row 0 contiguous.
    hidden: DMatrix<f64>,
    hidden_bar: DMatrix<f64>,
    hidden0: Vec<f64>,
    /// The draws `ψ_0 … ψ_K` as rows (`(K+1) × d`).
    psi: DMatrix<f64>,
    /// The network's outputs `W ψ_k + b` (`(K+1) × outputs`): the means
    /// `μ_k`, then the log-scales `log s_k` when they depend on `ψ`.
    mean: DMatrix<f64>,
    /// `1/s_k = e^{−log s_k}` for a `ψ`-dependent scale (`(K+1) × D`).
    inverse_sigma: DMatrix<f64>,
    /// `z_k = (u − μ_k)/s` (`(K+1) × D`).
    z: DMatrix<f64>,
    /// `t_k = (ψ_k − ν)/ρ` (`(K+1) × d`; learned reverse model only).
    t: DMatrix<f64>,
    /// The adjoints of the outputs and of `ψ_k`.
    mean_bar: DMatrix<f64>,
    psi_bar: DMatrix<f64>,
    /// `‖z_k‖²` (then `‖t_k‖²`) and `‖ψ_k‖²` for each draw.
    squared: Vec<f64>,
    psi_squared: Vec<f64>,
    /// `u`, `ν`, `ū`, `ν̄` of the current outer sample.
    u: Vec<f64>,
    nu: Vec<f64>,
    u_bar: Vec<f64>,
    nu_bar: Vec<f64>,
    /// The `ν̄` that reaches `R` and `c` (the bound's, or DReG's).
    nu_bar_reverse: Vec<f64>,
    /// An MLP reverse model's hidden units at `u`, and their adjoints
    /// (the bound's, and the one that reaches τ's parameters).
    reverse_hidden: Vec<f64>,
    reverse_hidden_bar: Vec<f64>,
    reverse_hidden_bar_reverse: Vec<f64>,
    /// `w_0 … w_K`, then `π_0 … π_K`.
    weights: Vec<f64>,
    softmax: Vec<f64>,
}

impl Scratch {
    /// Sizes the buffers for `K` inner samples (of one outer sample).
    fn ensure(
        &mut self,
        k: usize,
        (big_d, d): (usize, usize),
        (outputs, hidden, reverse_hidden): (usize, usize, usize),
    ) {
        if self.shape == (k, big_d, d) {
            return;
        }
        let k1 = k + 1;
        *self = Self {
            shape: (k, big_d, d),
            scale: vec![0.0; big_d],
            inverse_scale: vec![0.0; big_d],
            rho: vec![0.0; d],
            inverse_rho: vec![0.0; d],
            sum_log_scale: 0.0,
            sum_log_rho: 0.0,
            weight: DMatrix::zeros(outputs, if hidden > 0 { hidden } else { d }),
            hidden_weight: DMatrix::zeros(hidden, d),
            hidden: DMatrix::zeros(k1, hidden),
            hidden_bar: DMatrix::zeros(k1, hidden),
            hidden0: vec![0.0; hidden],
            psi: DMatrix::zeros(k1, d),
            mean: DMatrix::zeros(k1, outputs),
            inverse_sigma: DMatrix::zeros(k1, big_d),
            z: DMatrix::zeros(k1, big_d),
            t: DMatrix::zeros(k1, d),
            mean_bar: DMatrix::zeros(k1, outputs),
            psi_bar: DMatrix::zeros(k1, d),
            squared: vec![0.0; k1],
            psi_squared: vec![0.0; k1],
            u: vec![0.0; big_d],
            nu: vec![0.0; d],
            u_bar: vec![0.0; big_d],
            nu_bar: vec![0.0; d],
            nu_bar_reverse: vec![0.0; d],
            reverse_hidden: vec![0.0; reverse_hidden],
            reverse_hidden_bar: vec![0.0; reverse_hidden],
            reverse_hidden_bar_reverse: vec![0.0; reverse_hidden],
            weights: vec![0.0; k1],
            softmax: vec![0.0; k1],
        };
    }
}

/// `(e^x, e^{−x}, Σ x)` of a log-scale block, in the generic path's order
/// (`prepare_scales`: the reciprocal of the exponential).
fn prepare_scales(log_scale: &[f64], scale: &mut [f64], inverse: &mut [f64]) -> f64 {
    let mut total = 0.0;
    for ((&l, s), i) in log_scale.iter().zip(scale).zip(inverse) {
        *s = l.exp();
        *i = s.recip();
        total += l;
    }
    total
}

/// `Σᵢ aᵢ bᵢ`, summed left to right from 0 (the generic `dot`'s order).
#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).fold(0.0, |sum, (&x, &y)| sum + x * y)
}

/// `logsumexp(terms)` with the softmax weights `exp(tᵢ − lse)` into
/// `weights`, in the generic rule's order (`max + ln Σ e^{tᵢ − max}`, the
/// weights `e^{tᵢ − max} / Σ`). No mass, an infinite or a NaN maximum: the
/// value the rule gives and zero weights (the rule's constant).
fn log_sum_exp_softmax(terms: &[f64], weights: &mut [f64]) -> f64 {
    let max = crate::special::max_term(terms.iter().copied());
    if !max.is_finite() {
        weights.fill(0.0);
        return if terms.iter().any(|t| t.is_nan()) {
            f64::NAN
        } else {
            max
        };
    }
    let sum = terms.iter().fold(0.0, |sum, &t| sum + (t - max).exp());
    let inverse = sum.recip();
    for (w, &t) in weights.iter_mut().zip(terms) {
        *w = (t - max).exp() * inverse;
    }
    max + sum.ln()
}

/// A row-major layer weight into a column-major matrix.
fn copy_weight(weight: &[f64], layer: &Layer, out: &mut DMatrix<f64>) {
    for i in 0..layer.outputs {
        for j in 0..layer.inputs {
            out[(i, j)] = weight[i * layer.inputs + j];
        }
    }
}

/// `out[(0, i)] = b_i + W_i · x` for each output `i` of `layer` (the
/// generic `affine`'s order), into row 0 of `out`.
fn affine_row0(params: &[f64], layer: &Layer, x: &[f64], out: &mut DMatrix<f64>) {
    let weight = &params[layer.weight.clone()];
    let bias = &params[layer.bias.clone()];
    let n = layer.inputs;
    for i in 0..layer.outputs {
        out[(0, i)] = bias[i] + dot(&weight[i * n..(i + 1) * n], x);
    }
}

/// Rows `1..` of `out` from rows `1..` of `input`: `input W ᵀ + 1 bᵀ`, one
/// product.
fn affine_rows(params: &[f64], layer: &Layer, input: &DMatrix<f64>, out: &mut DMatrix<f64>) {
    let inner = input.nrows() - 1;
    if inner == 0 {
        return;
    }
    let weight_t =
        DMatrixView::from_slice(&params[layer.weight.clone()], layer.inputs, layer.outputs);
    out.rows_mut(1, inner)
        .gemm(1.0, &input.rows(1, inner), &weight_t, 0.0);
    for (mut column, &b) in out.column_iter_mut().zip(&params[layer.bias.clone()]) {
        for o in column.iter_mut().skip(1) {
            *o += b;
        }
    }
}

/// `out = Xᵀ Ȳ` into `out` (`X.ncols() × Ȳ.ncols()`, column-major), as
/// one blocked matrixmultiply `dgemm` that reads `Xᵀ` through strides of
/// `X`'s own storage. nalgebra's `gemm_tr` runs one dot product per
/// element (0.2–0.5× the time at d, D ≥ 50: `benches/dense.rs`,
/// docs/PERFORMANCE.md), and its `gemm` on a strided view reads past the
/// view below matrixmultiply's size threshold (nalgebra 0.35's
/// `axcpy_uninit` iterates over the view's storage span), so the product
/// goes to matrixmultiply directly.
fn transposed_product(x: &DMatrix<f64>, y_bar: &DMatrix<f64>, out: &mut [f64]) {
    let (rows, m) = x.shape();
    let n = y_bar.ncols();
    assert_eq!(y_bar.nrows(), rows, "Xᵀ Ȳ: X and Ȳ have different rows");
    // A buffer or slice of the wrong length is a programming error of the
    // caller, as a slice index out of range is (not input to validate): the
    // library's own callers (`fit`, the evaluation functions, the generated
    // models) size every buffer from the layout they checked first.
    assert_eq!(
        out.len(),
        m * n,
        "Xᵀ Ȳ: the output is not X.ncols() × Ȳ.ncols()"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: `x` is `rows × m` and `y_bar` `rows × n`, both contiguous
    // column-major (strides 1 and `rows`), and `out` holds `m × n` values
    // (asserted above), written column-major (strides 1 and `m`). Every
    // index dgemm forms, `i·rs + j·cs` for `i`, `j` inside those shapes, is
    // therefore inside its slice; the three do not overlap (`out` is a
    // unique borrow), and with `beta = 0` dgemm does not read `out`.
    unsafe {
        matrixmultiply::dgemm(
            m,
            rows,
            n,
            1.0,
            x.as_ptr(),
            rows as isize,
            1,
            y_bar.as_ptr(),
            1,
            rows as isize,
            0.0,
            out.as_mut_ptr(),
            1,
            m as isize,
        );
    }
}

/// The adjoints of `layer`'s parameters from its outputs' adjoints
/// `out_bar` (all rows) and its inputs (all rows), into `slot`:
/// `W̄ᵀ = Xᵀ Ȳ`, `b̄ = Σ_k Ȳ_k`.
fn affine_parameter_adjoint(
    layer: &Layer,
    input: &DMatrix<f64>,
    out_bar: &DMatrix<f64>,
    slot: &mut [f64],
) {
    transposed_product(input, out_bar, &mut slot[layer.weight.clone()]);
    for (b, column) in slot[layer.bias.clone()]
        .iter_mut()
        .zip(out_bar.column_iter())
    {
        *b = column.sum();
    }
}

/// `H̄ ⊙ (1 − H²)` in place on `rows`: from the adjoints of the hidden
/// units to those of their pre-activations.
fn through_tanh(hidden_bar: &mut DMatrix<f64>, hidden: &DMatrix<f64>, rows: Range<usize>) {
    for (mut bar, h) in hidden_bar.column_iter_mut().zip(hidden.column_iter()) {
        for k in rows.clone() {
            bar[k] *= 1.0 - h[k] * h[k];
        }
    }
}

impl<'g> FusedDiwhvi<'g> {
    /// The fused objective of `guide`: every setting of [`SemiImplicit`]
    /// (affine or MLP conditional, constant or `ψ`-dependent scale, affine,
    /// MLP or no reverse model).
    ///
    /// ```
    /// use iwhvi_core::guide::{Conditioning, HierarchicalGuide, Reverse, SemiImplicit};
    /// use iwhvi_core::objective::fused::FusedDiwhvi;
    /// let mlp = Conditioning::Mlp { hidden: 8 };
    /// let guide = SemiImplicit::new(4, 2)
    ///     .with_conditioning(mlp)
    ///     .with_reverse(Reverse::Learned(mlp))
    ///     .with_psi_dependent_scale(true);
    /// let fused = FusedDiwhvi::new(&guide);
    /// # let _ = fused;
    /// ```
    pub fn new(guide: &'g SemiImplicit) -> Self {
        let (conditioning, reverse, psi_dependent_scale) = guide.configuration();
        let layout = guide.param_layout();
        let block = |name: &str| {
            layout
                .get(name)
                // Unreachable: `SemiImplicit::param_layout` always has these blocks
                // (its constructor fixes them), whatever its settings.
                .unwrap_or_else(|| panic!("a SemiImplicit lays out `{name}`"))
                .range
                .clone()
        };
        let outputs = if psi_dependent_scale {
            2 * guide.latent_dim()
        } else {
            guide.latent_dim()
        };
        let d = guide.mixing_dim();
        let layer = |name: &str, inputs, outputs| Layer {
            weight: block(&format!("conditional.{name}weight")),
            bias: block(&format!("conditional.{name}bias")),
            inputs,
            outputs,
        };
        let (hidden_layer, output_layer) = match conditioning {
            Conditioning::Linear => (None, layer("", d, outputs)),
            Conditioning::Mlp { hidden } => (
                Some(layer("hidden.", d, hidden)),
                layer("output.", hidden, outputs),
            ),
        };
        let reverse = match reverse {
            Reverse::Prior => None,
            Reverse::Learned(Conditioning::Linear) => Some(ReverseBlocks {
                hidden: None,
                weight: block("reverse.weight"),
                bias: block("reverse.bias"),
                log_scale: block("reverse.log_scale"),
            }),
            Reverse::Learned(Conditioning::Mlp { hidden }) => Some(ReverseBlocks {
                hidden: Some(Layer {
                    weight: block("reverse.hidden.weight"),
                    bias: block("reverse.hidden.bias"),
                    inputs: guide.latent_dim(),
                    outputs: hidden,
                }),
                weight: block("reverse.output.weight"),
                bias: block("reverse.output.bias"),
                log_scale: block("reverse.log_scale"),
            }),
        };
        Self {
            source: Source::Plain(guide),
            guide,
            whitening: None,
            latent_dim: guide.latent_dim(),
            mixing_dim: guide.mixing_dim(),
            params_len: layout.len(),
            outputs,
            hidden_layer,
            output_layer,
            log_scale: (!psi_dependent_scale).then(|| block("conditional.log_scale")),
            student: match guide.conditional_family() {
                ConditionalFamily::Normal => None,
                ConditionalFamily::StudentT { df } => Some(StudentT::new(usize::from(df.get()))),
            },
            reverse,
            doubly_reparameterized: false,
            parallelism: Parallelism::Auto,
            workers: Vec::new(),
            log_w: Vec::new(),
            outer_softmax: Vec::new(),
            slots: Vec::new(),
        }
    }

    /// The fused objective of a preconditioned semi-implicit guide
    /// ([`Preconditioned`]: `u = shift + L z`, the inner guide over `z`).
    /// The inner weights are computed at `z = L⁻¹(u − shift)`, each less
    /// `Σ ln Lᵢᵢ`, and the model's gradient enters as `Lᵀ ∇ᵤ log p`.
    ///
    /// ```
    /// use iwhvi_core::guide::{Preconditioned, SemiImplicit};
    /// use iwhvi_core::objective::fused::FusedDiwhvi;
    /// let guide = Preconditioned::new(SemiImplicit::new(2, 2), vec![1.0, -1.0], vec![2.0, 0.0, 0.5, 1.0])?;
    /// let fused = FusedDiwhvi::preconditioned(&guide);
    /// # let _ = fused;
    /// # Ok::<(), iwhvi_core::guide::PreconditionError>(())
    /// ```
    pub fn preconditioned(guide: &'g Preconditioned<SemiImplicit>) -> Self {
        let scale_tril = guide.scale_tril();
        let big_d = guide.shift().len();
        let log_det = (0..big_d).map(|i| scale_tril[i * big_d + i].ln()).sum();
        Self {
            source: Source::Preconditioned(guide),
            whitening: Some(Whitening {
                shift: guide.shift(),
                scale_tril,
                log_det,
            }),
            ..Self::new(guide.inner())
        }
    }

    /// With the given gradient estimator: the plain reparameterization
    /// gradient (the default), or DReG on the reverse model's parameters
    /// `φ = (R, c, log ρ)`,
    /// `∂/∂φ ≈ −Σ_m a_m [Σ_{k≥1} π_k² ∂w_k/∂ψ_k · ∂ψ_k/∂φ + π_0 ∂w_0/∂φ]`,
    /// the bound's gradient on the other parameters (see
    /// [`GradientEstimator::DoublyReparameterized`]). The value is the
    /// bound either way.
    ///
    /// # Errors
    /// [`ObjectiveError::NoReverseParams`] for DReG without a reverse model
    /// (SIVI), as [`GradientEstimator::check`] says.
    ///
    /// ```
    /// use iwhvi_core::guide::{Reverse, SemiImplicit};
    /// use iwhvi_core::objective::GradientEstimator;
    /// use iwhvi_core::objective::fused::FusedDiwhvi;
    /// let guide = SemiImplicit::new(4, 2);
    /// let dreg = FusedDiwhvi::new(&guide);
    /// assert!(dreg.with_estimator(GradientEstimator::DoublyReparameterized).is_ok());
    /// let sivi = SemiImplicit::new(4, 2).with_reverse(Reverse::Prior);
    /// let fused = FusedDiwhvi::new(&sivi);
    /// assert!(fused.with_estimator(GradientEstimator::DoublyReparameterized).is_err());
    /// ```
    pub fn with_estimator(mut self, estimator: GradientEstimator) -> Result<Self, ObjectiveError> {
        estimator.check(self.guide)?;
        self.doubly_reparameterized = estimator == GradientEstimator::DoublyReparameterized;
        Ok(self)
    }

    /// With the given parallelism over the `M` outer samples (default
    /// [`Parallelism::Auto`]): each sample computes its `log ŵ_m` and
    /// `∇ log ŵ_m` into its own slot, and the slots are reduced on the
    /// calling thread in `m` order, so the result is the same bits on one
    /// thread or many. [`Parallelism::SingleThread`] never spawns;
    /// [`Parallelism::AllCores`] spreads any `M ≥ 2` over rayon's pool;
    /// [`Parallelism::Auto`] does so only when the step's guide work
    /// reaches [`FUSED_PARALLEL_WORK`] multiply-adds. The model's values
    /// and gradients ([`ChainedModel::new_with_parallelism`]) follow the
    /// same setting.
    ///
    /// ```
    /// use iwhvi_core::gradient::Parallelism;
    /// use iwhvi_core::guide::SemiImplicit;
    /// use iwhvi_core::objective::fused::FusedDiwhvi;
    /// let guide = SemiImplicit::new(4, 2);
    /// let fused = FusedDiwhvi::new(&guide).with_parallelism(Parallelism::SingleThread);
    /// # let _ = fused;
    /// ```
    pub fn with_parallelism(mut self, parallelism: Parallelism) -> Self {
        self.parallelism = parallelism;
        self
    }

    /// One step's bound and its gradient: the model's value and
    /// `u`-gradient at each outer draw from `engine` (a [`ChainedModel`]),
    /// then [`FusedDiwhvi::chained_value_and_gradient`]. The fused
    /// counterpart of [`value_and_gradient`](super::value_and_gradient).
    ///
    /// # Panics
    /// If `params` or `gradient` does not have one entry per parameter, or
    /// `noise` was drawn for another guide.
    ///
    /// ```
    /// use iwhvi_core::Scalar;
    /// use iwhvi_core::guide::{HierarchicalGuide, SemiImplicit};
    /// use iwhvi_core::model::{LatentSpec, Layout, Model};
    /// use iwhvi_core::objective::fused::FusedDiwhvi;
    /// use iwhvi_core::objective::{Diwhvi, StepNoise};
    /// use iwhvi_core::tape::TapeEngine;
    /// use iwhvi_core::transforms::Transform;
    /// use rand::SeedableRng;
    ///
    /// struct Flat;
    /// impl Model for Flat {
    ///     fn layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("x", Transform::Identity)])
    ///     }
    ///     fn log_joint<T: Scalar>(&self, _u: &[T]) -> T {
    ///         T::constant(0.0)
    ///     }
    /// }
    ///
    /// let guide = SemiImplicit::new(1, 1);
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    /// let params = guide.init_params(&mut rng);
    /// let noise = StepNoise::draw(&guide, Diwhvi::new(1, 0), &mut rng);
    /// let mut gradient = vec![0.0; params.len()];
    /// let bound = FusedDiwhvi::new(&guide)
    ///     .value_and_gradient(&Flat, &params, &noise, &TapeEngine, &mut gradient);
    /// // K = 0 and log p = 0: the bound is −log q(u|ψ₀) − log q(ψ₀) + log τ(ψ₀|u).
    /// assert!(bound.is_finite());
    /// ```
    pub fn value_and_gradient<Mo: Model, E: GradientEngine>(
        &mut self,
        model: &Mo,
        params: &[f64],
        noise: &StepNoise,
        engine: &E,
        gradient: &mut [f64],
    ) -> f64 {
        let parallelism = self.parallelism;
        let chained = match self.source {
            Source::Plain(guide) => {
                ChainedModel::new_with_parallelism(model, guide, params, noise, engine, parallelism)
            }
            Source::Preconditioned(guide) => {
                ChainedModel::new_with_parallelism(model, guide, params, noise, engine, parallelism)
            }
        };
        self.chained_value_and_gradient(params, noise, &chained, gradient)
    }

    /// [`FusedDiwhvi::value_and_gradient`] for a model with learned
    /// parameters ([`Model::theta_layout`]) at the unconstrained values
    /// `theta`: the bound `L(φ, ϑ)` and its gradient into `gradient`, the
    /// guide's `P` entries first (as [`FusedDiwhvi::value_and_gradient`]
    /// computes them, from each draw's `∇ᵤ log p_θ(x, u_m)`), then
    ///
    /// `∇_ϑ L = Σ_m a_m ∇_ϑ log p_θ(x, u_m)`, `a = softmax_m(log ŵ_m)`,
    ///
    /// the outer weights of the same reduction, summed in `m` order (the
    /// guide does not depend on `θ`). Equal to the generic path's
    /// [`value_and_gradient_with_theta`](super::value_and_gradient_with_theta)
    /// to rounding. With `theta` empty this is
    /// [`FusedDiwhvi::value_and_gradient`], bit for bit.
    ///
    /// # Panics
    /// As [`FusedDiwhvi::value_and_gradient`], or if `gradient` does not
    /// have `P + theta.len()` entries.
    ///
    /// ```
    /// use iwhvi_core::Scalar;
    /// use iwhvi_core::gradient::ForwardEngine;
    /// use iwhvi_core::guide::{HierarchicalGuide, SemiImplicit};
    /// use iwhvi_core::model::{LatentSpec, Layout, Model};
    /// use iwhvi_core::objective::fused::FusedDiwhvi;
    /// use iwhvi_core::objective::{Diwhvi, GradientEstimator, StepNoise, value_and_gradient_with_theta};
    /// use iwhvi_core::transforms::Transform;
    /// use rand::SeedableRng;
    ///
    /// /// z ~ N(mu, 1), y = 1 ~ N(z, 1), mu learned.
    /// struct Learned;
    /// impl Model for Learned {
    ///     fn layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("z", Transform::Identity)])
    ///     }
    ///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
    ///         self.log_joint_theta(&[T::constant(0.0)], u)
    ///     }
    ///     fn theta_layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("mu", Transform::Identity)])
    ///     }
    ///     fn log_joint_theta<T: Scalar>(&self, theta: &[T], u: &[T]) -> T {
    ///         -(u[0] - theta[0]).square() * 0.5 - (u[0] - 1.0).square() * 0.5
    ///     }
    /// }
    ///
    /// let guide = SemiImplicit::new(1, 2);
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    /// let params = guide.init_params(&mut rng);
    /// let noise = StepNoise::draw(&guide, Diwhvi::new(4, 3), &mut rng);
    /// let engine = ForwardEngine::<2>::new();
    /// let p = params.len();
    /// let (mut fused, mut generic) = (vec![0.0; p + 1], vec![0.0; p + 1]);
    /// let a = FusedDiwhvi::new(&guide)
    ///     .value_and_gradient_with_theta(&Learned, &params, &[0.3], &noise, &engine, &mut fused);
    /// let b = value_and_gradient_with_theta(
    ///     &Learned, &guide, &params, &[0.3], &noise, &engine, GradientEstimator::Reparameterized, &mut generic,
    /// ).unwrap();
    /// assert!((a - b).abs() < 1e-10);
    /// assert!(fused.iter().zip(&generic).all(|(f, g)| (f - g).abs() < 1e-10));
    /// ```
    pub fn value_and_gradient_with_theta<Mo: Model, E: GradientEngine>(
        &mut self,
        model: &Mo,
        params: &[f64],
        theta: &[f64],
        noise: &StepNoise,
        engine: &E,
        gradient: &mut [f64],
    ) -> f64 {
        if theta.is_empty() {
            return self.value_and_gradient(model, params, noise, engine, gradient);
        }
        assert_eq!(
            gradient.len(),
            self.params_len + theta.len(),
            "one gradient entry per parameter and learned parameter"
        );
        let parallelism = self.parallelism;
        let chained = match self.source {
            Source::Plain(guide) => ChainedModel::new_with_theta(
                model,
                guide,
                params,
                theta,
                noise,
                engine,
                parallelism,
            ),
            Source::Preconditioned(guide) => ChainedModel::new_with_theta(
                model,
                guide,
                params,
                theta,
                noise,
                engine,
                parallelism,
            ),
        };
        let (guide_part, theta_part) = gradient.split_at_mut(self.params_len);
        let bound = self.chained_value_and_gradient(params, noise, &chained, guide_part);
        theta_part.fill(0.0);
        for (m, &a) in self.outer_softmax.iter().enumerate() {
            for (g, &t) in theta_part.iter_mut().zip(chained.theta_gradient(m)) {
                *g += a * t;
            }
        }
        bound
    }

    /// The bound `logsumexp_m [log p(x, u_m) − U_K(u_m)] − log M` and its
    /// gradient `Σ_m a_m ∇ log ŵ_m` (in `m` order) into `gradient`, with
    /// the model entering through `chained` (which must have been computed
    /// for the same parameters and noise): the fused counterpart of
    /// [`DiwhviObjective::chained`](super::DiwhviObjective::chained) under a gradient engine.
    ///
    /// # Panics
    /// If `params` or `gradient` does not have one entry per parameter, or
    /// `noise` was drawn for another guide.
    ///
    /// ```
    /// use iwhvi_core::Scalar;
    /// use iwhvi_core::gradient::ForwardEngine;
    /// use iwhvi_core::guide::{HierarchicalGuide, Reverse, SemiImplicit};
    /// use iwhvi_core::model::{LatentSpec, Layout, Model};
    /// use iwhvi_core::objective::fused::FusedDiwhvi;
    /// use iwhvi_core::objective::{ChainedModel, Diwhvi, StepNoise};
    /// use iwhvi_core::transforms::Transform;
    /// use rand::SeedableRng;
    ///
    /// struct Normal;
    /// impl Model for Normal {
    ///     fn layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("x", Transform::Identity)])
    ///     }
    ///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
    ///         -(u[0] - 1.0).square() * 0.5
    ///     }
    /// }
    ///
    /// let guide = SemiImplicit::new(1, 2).with_reverse(Reverse::Prior); // SIVI
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    /// let params = guide.init_params(&mut rng);
    /// let noise = StepNoise::draw(&guide, Diwhvi::new(4, 8), &mut rng);
    /// let chained = ChainedModel::new(&Normal, &guide, &params, &noise, &ForwardEngine::<1>::new());
    /// let mut fused = FusedDiwhvi::new(&guide);
    /// let mut gradient = vec![0.0; params.len()];
    /// let bound = fused.chained_value_and_gradient(&params, &noise, &chained, &mut gradient);
    /// assert!(bound.is_finite() && gradient.iter().all(|g| g.is_finite()));
    /// ```
    pub fn chained_value_and_gradient(
        &mut self,
        params: &[f64],
        noise: &StepNoise,
        chained: &ChainedModel,
        gradient: &mut [f64],
    ) -> f64 {
        let (big_d, d, p) = (self.latent_dim, self.mixing_dim, self.params_len);
        // A buffer or slice of the wrong length is a programming error of the
        // caller, as a slice index out of range is (not input to validate): the
        // library's own callers (`fit`, the evaluation functions, the generated
        // models) size every buffer from the layout they checked first.
        assert_eq!(params.len(), p, "one parameter per entry of the layout");
        assert_eq!(gradient.len(), p, "one gradient entry per parameter");
        let objective = noise.objective();
        assert!(
            noise.mixing(0).len() == d
                && noise.conditional(0).len() == big_d * (1 + self.student.map_or(0, |t| t.df)),
            "the noise was drawn for a guide with other dimensions"
        );
        let m = objective.m();
        let workers = match self.parallelism {
            Parallelism::SingleThread => 1,
            _ if m < 2 => 1,
            Parallelism::AllCores => rayon::current_num_threads().min(m),
            Parallelism::Auto if self.work(objective.k()) * m < FUSED_PARALLEL_WORK => 1,
            Parallelism::Auto => rayon::current_num_threads().min(m),
        }
        .max(1);
        let sizes = (
            self.outputs,
            self.hidden_layer.as_ref().map_or(0, |l| l.outputs),
            self.reverse
                .as_ref()
                .and_then(|r| r.hidden.as_ref())
                .map_or(0, |l| l.outputs),
        );
        if self.workers.len() < workers {
            self.workers.resize_with(workers, Scratch::default);
        }
        let mut scratches = std::mem::take(&mut self.workers);
        for scratch in &mut scratches[..workers] {
            scratch.ensure(objective.k(), (big_d, d), sizes);
            self.prepare(params, scratch);
        }
        self.log_w.resize(m, 0.0);
        self.outer_softmax.resize(m, 0.0);
        self.slots.resize(m * p, 0.0);
        let mut log_w = std::mem::take(&mut self.log_w);
        let mut slots = std::mem::take(&mut self.slots);
        // Outer sample `m` writes `log ŵ_m` and `∇ log ŵ_m` into its own
        // slots, from its worker's buffers (every one fully rewritten per
        // sample), so the slots hold the same bits whichever worker ran it.
        let this = &*self;
        let run = |scratch: &mut Scratch, first: usize, log_w: &mut [f64], slots: &mut [f64]| {
            for (i, (lw, slot)) in log_w.iter_mut().zip(slots.chunks_exact_mut(p)).enumerate() {
                let m = first + i;
                *lw = this.outer(
                    scratch,
                    params,
                    noise,
                    m,
                    (chained.value(m), chained.gradient(m)),
                    slot,
                );
            }
        };
        if workers == 1 {
            run(&mut scratches[0], 0, &mut log_w, &mut slots);
        } else {
            let per = m.div_ceil(workers);
            scratches[..workers]
                .par_iter_mut()
                .zip(log_w.par_chunks_mut(per))
                .zip(slots.par_chunks_mut(per * p))
                .enumerate()
                .for_each(|(w, ((scratch, log_w), slots))| run(scratch, w * per, log_w, slots));
        }
        self.workers = scratches;
        // The reduction, serial and in `m` order.
        let bound = log_sum_exp_softmax(&log_w, &mut self.outer_softmax) - (m as f64).ln();
        gradient.fill(0.0);
        for (&a, slot) in self.outer_softmax.iter().zip(slots.chunks_exact(p)) {
            for (g, &s) in gradient.iter_mut().zip(slot) {
                *g += a * s;
            }
        }
        self.log_w = log_w;
        self.slots = slots;
        bound
    }

    /// Coordinate `i`'s standardised conditional draw from the step's
    /// conditional noise: `εᵢ`, or the Student t draw
    /// `εᵢ₀ / √(Σⱼ εᵢⱼ² / ν)` (the generic path's).
    fn draw(&self, epsilon: &[f64], i: usize) -> f64 {
        match &self.student {
            None => epsilon[i],
            Some(t) => student_t_draw(t.df, epsilon, self.latent_dim, i),
        }
    }

    /// The work of one outer sample in multiply-adds, about: the
    /// conditional network's products at the `K + 1` draws plus the
    /// reverse model's.
    fn work(&self, k: usize) -> usize {
        let layer = |l: &Layer| l.inputs * l.outputs;
        let network = layer(&self.output_layer) + self.hidden_layer.as_ref().map_or(0, layer);
        let reverse = self
            .reverse
            .as_ref()
            .map_or(0, |_| self.latent_dim * self.mixing_dim);
        (k + 1) * (network + self.latent_dim + self.mixing_dim) + reverse
    }

    /// The scales of the conditional and the reverse model, and `W`
    /// column-major.
    fn prepare(&self, params: &[f64], s: &mut Scratch) {
        let layer = &self.output_layer;
        copy_weight(&params[layer.weight.clone()], layer, &mut s.weight);
        if let Some(layer) = &self.hidden_layer {
            copy_weight(&params[layer.weight.clone()], layer, &mut s.hidden_weight);
        }
        if let Some(log_scale) = &self.log_scale {
            s.sum_log_scale = prepare_scales(
                &params[log_scale.clone()],
                &mut s.scale,
                &mut s.inverse_scale,
            );
        }
        if let Some(reverse) = &self.reverse {
            s.sum_log_rho = prepare_scales(
                &params[reverse.log_scale.clone()],
                &mut s.rho,
                &mut s.inverse_rho,
            );
        }
    }

    /// `log ŵ_m = log p(x, u_m) − U_K(u_m)`, writing `∇ log ŵ_m` into
    /// `slot`, in the buffers `s` (prepared for `params`), from
    /// `(log p(x, u_m), ∇ᵤ log p(x, u_m))`.
    fn outer(
        &self,
        s: &mut Scratch,
        params: &[f64],
        noise: &StepNoise,
        m: usize,
        (log_p, grad_log_p): (f64, &[f64]),
        slot: &mut [f64],
    ) -> f64 {
        let (big_d, d) = (self.latent_dim, self.mixing_dim);
        let k1 = noise.objective().k() + 1;
        let inner = k1 - 1;
        let dependent = self.log_scale.is_none();
        let psi0 = noise.mixing(m);
        let epsilon = noise.conditional(m);

        // Forward: ψ₀, u = W ψ₀ + b + s ⊙ ε, ν = R u + c, ψ_k (rows of Ψ).
        for (j, &e) in psi0.iter().enumerate() {
            s.psi[(0, j)] = e;
        }
        match &self.hidden_layer {
            None => affine_row0(params, &self.output_layer, psi0, &mut s.mean),
            Some(hidden) => {
                affine_row0(params, hidden, psi0, &mut s.hidden);
                for (j, h) in s.hidden0.iter_mut().enumerate() {
                    *h = s.hidden[(0, j)].tanh();
                    s.hidden[(0, j)] = *h;
                }
                affine_row0(params, &self.output_layer, &s.hidden0, &mut s.mean);
            }
        }
        for i in 0..big_d {
            if dependent {
                s.scale[i] = s.mean[(0, big_d + i)].exp();
            }
            s.u[i] = s.mean[(0, i)] + s.scale[i] * self.draw(epsilon, i);
        }
        if let Some(whitening) = &self.whitening {
            // The generic path's round trip: u = shift + L z, then the
            // inner guide reads z = L⁻¹(u − shift) (equal up to rounding).
            let (shift, l) = (whitening.shift, whitening.scale_tril);
            for i in (0..big_d).rev() {
                let mut x = shift[i];
                for (&z, &lij) in s.u[..=i].iter().zip(&l[i * big_d..=i * big_d + i]) {
                    x += z * lij;
                }
                s.u[i] = x;
            }
            for i in 0..big_d {
                let mut x = s.u[i] - shift[i];
                for (&z, &lij) in s.u[..i].iter().zip(&l[i * big_d..i * big_d + i]) {
                    x -= z * lij;
                }
                s.u[i] = x / l[i * big_d + i];
            }
        }
        if let Some(reverse) = &self.reverse {
            let r = &params[reverse.weight.clone()];
            let c = &params[reverse.bias.clone()];
            let x: &[f64] = match &reverse.hidden {
                None => &s.u,
                Some(hidden) => {
                    let w1 = &params[hidden.weight.clone()];
                    let b1 = &params[hidden.bias.clone()];
                    for (l, h) in s.reverse_hidden.iter_mut().enumerate() {
                        *h = (b1[l] + dot(&w1[l * big_d..(l + 1) * big_d], &s.u)).tanh();
                    }
                    &s.reverse_hidden
                }
            };
            let n = x.len();
            for (j, nu) in s.nu.iter_mut().enumerate() {
                *nu = c[j] + dot(&r[j * n..(j + 1) * n], x);
            }
            for k in 1..k1 {
                for (j, &eta) in noise.reverse(m, k - 1).iter().enumerate() {
                    s.psi[(k, j)] = s.nu[j] + s.rho[j] * eta;
                }
            }
        } else {
            for k in 1..k1 {
                for (j, &e) in noise.reverse(m, k - 1).iter().enumerate() {
                    s.psi[(k, j)] = e;
                }
            }
        }
        // The conditional network at the inner draws: one product per layer.
        match &self.hidden_layer {
            None => affine_rows(params, &self.output_layer, &s.psi, &mut s.mean),
            Some(hidden) => {
                affine_rows(params, hidden, &s.psi, &mut s.hidden);
                for mut column in s.hidden.column_iter_mut() {
                    for h in column.iter_mut().skip(1) {
                        *h = h.tanh();
                    }
                }
                affine_rows(params, &self.output_layer, &s.hidden, &mut s.mean);
            }
        }

        // The weights and U_K in one pass: the Gaussian quadratic forms
        // accumulate per draw, each in the generic path's order.
        let squared = &mut s.squared;
        let normal_constant_u = LN_SQRT_2PI * big_d as f64;
        let normal_constant_psi = LN_SQRT_2PI * d as f64;
        if dependent {
            // `diag_normal_log_density`'s order: from `−D log √2π`, each
            // coordinate subtracts `z²/2 + log s`.
            // (Student t: from `D c`, each subtracts `(ν+1)/2 · ln(1 + z²/ν) + log s`.)
            s.weights.fill(match &self.student {
                None => -normal_constant_u,
                Some(t) => t.constant * big_d as f64,
            });
            for i in 0..big_d {
                let u = s.u[i];
                for k in 0..k1 {
                    let log_sigma = s.mean[(k, big_d + i)];
                    let inverse_sigma = (-log_sigma).exp();
                    let z = (u - s.mean[(k, i)]) * inverse_sigma;
                    s.inverse_sigma[(k, i)] = inverse_sigma;
                    s.z[(k, i)] = z;
                    s.weights[k] -= match &self.student {
                        None => z * z * 0.5,
                        Some(t) => t.tail(z) * t.half_nu_plus_one,
                    } + log_sigma;
                }
            }
        } else {
            squared.fill(0.0);
            for i in 0..big_d {
                let (u, inverse_scale) = (s.u[i], s.inverse_scale[i]);
                for ((z, &mean), sq) in
                    s.z.column_mut(i)
                        .iter_mut()
                        .zip(s.mean.column(i).iter())
                        .zip(squared.iter_mut())
                {
                    *z = (u - mean) * inverse_scale;
                    *sq += match &self.student {
                        None => *z * *z,
                        Some(t) => t.tail(*z),
                    };
                }
            }
            // (Student t: `‖z‖²/2` becomes `(ν+1)/2 · Σ ln(1 + z²/ν)`.)
            for (w, &sq) in s.weights.iter_mut().zip(squared.iter()) {
                *w = match &self.student {
                    None => -sq * 0.5 - s.sum_log_scale - normal_constant_u,
                    Some(t) => {
                        -sq * t.half_nu_plus_one - s.sum_log_scale + t.constant * big_d as f64
                    }
                };
            }
        }
        let psi_squared = &mut s.psi_squared;
        psi_squared.fill(0.0);
        for j in 0..d {
            for (sq, &psi) in psi_squared.iter_mut().zip(s.psi.column(j).iter()) {
                *sq += psi * psi;
            }
        }
        if self.reverse.is_some() {
            squared.fill(0.0);
            for j in 0..d {
                let (nu, inverse_rho) = (s.nu[j], s.inverse_rho[j]);
                for ((t, &psi), sq) in
                    s.t.column_mut(j)
                        .iter_mut()
                        .zip(s.psi.column(j).iter())
                        .zip(squared.iter_mut())
                {
                    *t = (psi - nu) * inverse_rho;
                    *sq += *t * *t;
                }
            }
        }
        for k in 0..k1 {
            let log_mixing = -psi_squared[k] * 0.5 - normal_constant_psi;
            let log_reverse = if self.reverse.is_some() {
                -squared[k] * 0.5 - s.sum_log_rho - normal_constant_psi
            } else {
                log_mixing
            };
            let log_conditional = match &self.whitening {
                Some(whitening) => s.weights[k] - whitening.log_det,
                None => s.weights[k],
            };
            s.weights[k] = log_conditional + log_mixing - log_reverse;
        }
        let upper = log_sum_exp_softmax(&s.weights, &mut s.softmax) - (k1 as f64).ln();

        // Backward, with ḡ_k = −π_k: the adjoints of the network's outputs.
        slot.fill(0.0);
        match &self.whitening {
            None => s.u_bar.copy_from_slice(grad_log_p),
            Some(whitening) => {
                // z̄ = Lᵀ ∇ᵤ log p.
                let l = whitening.scale_tril;
                for (j, u_bar) in s.u_bar.iter_mut().enumerate() {
                    *u_bar = (j..big_d).map(|i| l[i * big_d + j] * grad_log_p[i]).sum();
                }
            }
        }
        for i in 0..big_d {
            let (mut sum_mean_bar, mut log_scale_bar) = (0.0, 0.0);
            for k in 0..k1 {
                let (pi, z) = (s.softmax[k], s.z[(k, i)]);
                let inverse_scale = if dependent {
                    s.inverse_sigma[(k, i)]
                } else {
                    s.inverse_scale[i]
                };
                // r(z) = z (Gaussian) or (ν+1) z / (ν + z²) (Student t).
                let r = self.student.map_or(z, |t| t.score(z));
                let mean_bar = -pi * r * inverse_scale;
                s.mean_bar[(k, i)] = mean_bar;
                sum_mean_bar += mean_bar;
                let row_log_scale_bar = -pi * (r * z - 1.0);
                if dependent {
                    s.mean_bar[(k, big_d + i)] = row_log_scale_bar;
                }
                log_scale_bar += row_log_scale_bar;
            }
            s.u_bar[i] -= sum_mean_bar;
            if let Some(range) = &self.log_scale {
                slot[range.start + i] = log_scale_bar;
            }
        }
        let reverse_draws = self.reverse.is_some() && inner > 0;
        if self.hidden_layer.is_some() && reverse_draws {
            // Through the hidden layer at the reverse draws.
            s.hidden_bar
                .rows_mut(1, inner)
                .gemm(1.0, &s.mean_bar.rows(1, inner), &s.weight, 0.0);
            through_tanh(&mut s.hidden_bar, &s.hidden, 1..k1);
        }
        if let Some(reverse) = &self.reverse {
            if inner > 0 {
                // Ψ̄ = M̄ W (or H̄ W₁) for the reverse draws (ψ₀ is noise).
                let (bar, weight) = match &self.hidden_layer {
                    None => (&s.mean_bar, &s.weight),
                    Some(_) => (&s.hidden_bar, &s.hidden_weight),
                };
                s.psi_bar
                    .rows_mut(1, inner)
                    .gemm(1.0, &bar.rows(1, inner), weight, 0.0);
            }
            // The bound's ν̄ (into ū) and, for DReG, the surrogate's ν̄ and
            // log ρ̄ (into τ's parameters): its inner path terms are the
            // bound's weighted by π_k (ḡ_k π_k = −π_k²), and it has no
            // explicit terms for k ≥ 1 (τ's density reads φ stopped there).
            let dreg = self.doubly_reparameterized;
            let log_rho_bar = &mut slot[reverse.log_scale.clone()];
            for (j, log_rho_bar) in log_rho_bar.iter_mut().enumerate() {
                let (inverse_rho, rho) = (s.inverse_rho[j], s.rho[j]);
                let (mut nu_bar, mut lr_bar) = (0.0, 0.0);
                let (mut nu_bar_dreg, mut lr_bar_dreg) = (0.0, 0.0);
                for k in 0..k1 {
                    let pi = s.softmax[k];
                    let g = -pi;
                    let t = s.t[(k, j)];
                    let t_over_rho = t * inverse_rho;
                    nu_bar -= g * t_over_rho;
                    lr_bar += g * (1.0 - t * t);
                    // DReG's sums only when it is on (they are not read otherwise).
                    if k == 0 {
                        if dreg {
                            nu_bar_dreg -= g * t_over_rho;
                            lr_bar_dreg += g * (1.0 - t * t);
                        }
                    } else {
                        let eta = noise.reverse(m, k - 1)[j];
                        let psi_bar = s.psi_bar[(k, j)] + g * (t_over_rho - s.psi[(k, j)]);
                        nu_bar += psi_bar;
                        lr_bar += psi_bar * rho * eta;
                        if dreg {
                            nu_bar_dreg += psi_bar * pi;
                            lr_bar_dreg += psi_bar * pi * rho * eta;
                        }
                    }
                }
                s.nu_bar[j] = nu_bar;
                s.nu_bar_reverse[j] = if dreg { nu_bar_dreg } else { nu_bar };
                *log_rho_bar = if dreg { lr_bar_dreg } else { lr_bar };
            }
            let r = &params[reverse.weight.clone()];
            slot[reverse.bias.clone()].copy_from_slice(&s.nu_bar_reverse);
            match &reverse.hidden {
                None => {
                    let r_bar = &mut slot[reverse.weight.clone()];
                    for j in 0..d {
                        let (nu_bar, nu_bar_reverse) = (s.nu_bar[j], s.nu_bar_reverse[j]);
                        for i in 0..big_d {
                            r_bar[j * big_d + i] = nu_bar_reverse * s.u[i];
                            s.u_bar[i] += r[j * big_d + i] * nu_bar;
                        }
                    }
                }
                Some(hidden) => {
                    // The bound's adjoint of the hidden units (into ū) and
                    // the one that reaches τ's parameters (DReG's or the same).
                    let n = hidden.outputs;
                    let r_bar = &mut slot[reverse.weight.clone()];
                    s.reverse_hidden_bar.fill(0.0);
                    s.reverse_hidden_bar_reverse.fill(0.0);
                    for j in 0..d {
                        let (nu_bar, nu_bar_reverse) = (s.nu_bar[j], s.nu_bar_reverse[j]);
                        for l in 0..n {
                            let w = r[j * n + l];
                            r_bar[j * n + l] = nu_bar_reverse * s.reverse_hidden[l];
                            s.reverse_hidden_bar[l] += w * nu_bar;
                            s.reverse_hidden_bar_reverse[l] += w * nu_bar_reverse;
                        }
                    }
                    let w1 = &params[hidden.weight.clone()];
                    for l in 0..n {
                        let h = s.reverse_hidden[l];
                        let slope = 1.0 - h * h;
                        let (a, a_reverse) = (
                            s.reverse_hidden_bar[l] * slope,
                            s.reverse_hidden_bar_reverse[l] * slope,
                        );
                        slot[hidden.bias.start + l] = a_reverse;
                        let row = hidden.weight.start + l * big_d;
                        for i in 0..big_d {
                            slot[row + i] = a_reverse * s.u[i];
                            s.u_bar[i] += w1[l * big_d + i] * a;
                        }
                    }
                }
            }
        }
        // Through u = μ(ψ₀) + s ⊙ ε (s = e^{log s(ψ₀)} when it depends on
        // ψ; the t draws in place of ε for Student-t conditionals): into
        // the outputs' adjoints at ψ₀, then the layers' parameters.
        for i in 0..big_d {
            let u_bar = s.u_bar[i];
            let log_scale_bar = u_bar * s.scale[i] * self.draw(epsilon, i);
            s.mean_bar[(0, i)] += u_bar;
            match &self.log_scale {
                Some(range) => slot[range.start + i] += log_scale_bar,
                None => s.mean_bar[(0, big_d + i)] += log_scale_bar,
            }
        }
        match &self.hidden_layer {
            None => affine_parameter_adjoint(&self.output_layer, &s.psi, &s.mean_bar, slot),
            Some(hidden) => {
                let rows = if reverse_draws { 0..1 } else { 0..k1 };
                s.hidden_bar.rows_mut(rows.start, rows.len()).gemm(
                    1.0,
                    &s.mean_bar.rows(rows.start, rows.len()),
                    &s.weight,
                    0.0,
                );
                through_tanh(&mut s.hidden_bar, &s.hidden, rows);
                affine_parameter_adjoint(&self.output_layer, &s.hidden, &s.mean_bar, slot);
                affine_parameter_adjoint(hidden, &s.psi, &s.hidden_bar, slot);
            }
        }
        log_p - upper
    }
}

#[cfg(test)]
mod tests {
    use nalgebra::{DMatrix, DVector};
    use rand::rngs::StdRng;
    use rand::{Rng, RngExt, SeedableRng};
    use rand_distr::StandardNormal;

    use super::FusedDiwhvi;
    use crate::fit::{
        Engine, EngineChoice, FitConfig, GUIDE_FORWARD_MAX_PARAMS, StepEngines, fit, fit_from,
    };
    use crate::gradient::{ForwardEngine, Parallelism};
    use crate::guide::{
        ConditionalFamily, Conditioning, FullRank, HierarchicalGuide, MeanField, Preconditioned,
        Reverse, SemiImplicit,
    };
    use crate::model::{LatentSpec, Layout, Model};
    use crate::objective::{
        ChainedModel, Diwhvi, GradientEstimator, StepNoise, value_and_gradient_with,
    };
    use crate::optim::Adam;
    use crate::scalar::Scalar;
    use crate::special::LN_SQRT_2PI;
    use crate::tape::TapeEngine;
    use crate::transforms::Transform;

    /// Relative tolerance of the fused path against the generic one.
    const TOLERANCE: f64 = 1e-10;

    /// The `(M, K)` settings checked, including `K = 0` and `M > 1`.
    const SETTINGS: [(usize, usize); 7] = [(1, 0), (1, 1), (1, 8), (3, 0), (3, 5), (8, 8), (2, 64)];

    /// Eight schools, non-centred, as `examples/common/eight_schools.rs`
    /// writes it: `u = (mu, log tau, theta_tilde[0..8])`.
    struct EightSchools;

    const Y: [f64; 8] = [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0];
    const SIGMA: [f64; 8] = [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0];

    fn normal<T: Scalar>(x: T, loc: T, scale: f64) -> T {
        -((x - loc) * (1.0 / scale)).square() * 0.5 - scale.ln() - LN_SQRT_2PI
    }

    impl Model for EightSchools {
        fn layout(&self) -> Layout {
            Layout::new(vec![
                LatentSpec::scalar("mu", Transform::Identity),
                LatentSpec::scalar("tau", Transform::Exp),
                LatentSpec::vector("theta_tilde", 8, Transform::Identity),
            ])
        }

        fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
            let (mu, log_tau) = (u[0], u[1]);
            let tau = log_tau.exp();
            let mut lp = normal(mu, T::constant(0.0), 5.0)
                + (2.0 / (std::f64::consts::PI * 5.0)).ln()
                - (tau * 0.2).square().ln_1p()
                + log_tau;
            for j in 0..8 {
                let t = u[2 + j];
                lp += normal(t, T::constant(0.0), 1.0)
                    + normal(T::constant(Y[j]), mu + tau * t, SIGMA[j]);
            }
            lp
        }
    }

    /// `y = X β + ε`, `β ~ N(0, 2² I)`, `ε ~ N(0, 0.8² I)`, three
    /// coefficients and twenty observations.
    struct LinearGaussian {
        x: DMatrix<f64>,
        y: DVector<f64>,
    }

    impl LinearGaussian {
        fn new(seed: u64) -> Self {
            let mut rng = StdRng::seed_from_u64(seed);
            let x = DMatrix::from_fn(20, 3, |_, _| rng.sample::<f64, _>(StandardNormal));
            let beta = DVector::from_vec(vec![1.5, -2.0, 0.8]);
            let y =
                &x * beta + DVector::from_fn(20, |_, _| 0.8 * rng.sample::<f64, _>(StandardNormal));
            Self { x, y }
        }
    }

    impl Model for LinearGaussian {
        fn layout(&self) -> Layout {
            Layout::new(vec![LatentSpec::vector("beta", 3, Transform::Identity)])
        }

        fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
            let mut lp = T::constant(0.0);
            for &b in u {
                lp += normal(b, T::constant(0.0), 2.0);
            }
            for i in 0..self.y.len() {
                let mut mean = T::constant(0.0);
                for (j, &b) in u.iter().enumerate() {
                    mean += b * self.x[(i, j)];
                }
                lp += normal(T::constant(self.y[i]), mean, 0.8);
            }
            lp
        }
    }

    /// The guide's initial parameters moved by `N(0, spread²)` noise, so
    /// that the reverse model (initialised at 0) is not trivial.
    fn perturbed_params<G: HierarchicalGuide, R: Rng>(
        guide: &G,
        spread: f64,
        rng: &mut R,
    ) -> Vec<f64> {
        guide
            .init_params(rng)
            .iter()
            .map(|p| p + spread * rng.sample::<f64, _>(StandardNormal))
            .collect()
    }

    /// `|a − b| ≤ TOLERANCE · |b|`, with `what` in the message.
    fn assert_close(a: f64, b: f64, what: &str) {
        assert!(
            (a - b).abs() <= TOLERANCE * b.abs(),
            "{what}: fused {a} vs generic {b} (relative {:e})",
            (a - b).abs() / b.abs()
        );
    }

    /// The fused bound and gradient equal the generic path's on both
    /// engines, at every setting, for `guide` on `model`.
    fn check_against_generic<Mo: Model>(
        model: &Mo,
        guide: &SemiImplicit,
        estimator: GradientEstimator,
        seed: u64,
    ) {
        check_fused(model, guide, FusedDiwhvi::new(guide), estimator, seed);
    }

    /// [`check_against_generic`] for any guide the fused objective serves.
    fn check_fused<Mo: Model, G: HierarchicalGuide>(
        model: &Mo,
        guide: &G,
        fused: FusedDiwhvi<'_>,
        estimator: GradientEstimator,
        seed: u64,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let forward = ForwardEngine::<16>::new().with_parallelism(Parallelism::SingleThread);
        let mut fused = fused.with_estimator(estimator).unwrap();
        for (m, k) in SETTINGS {
            let params = perturbed_params(guide, 0.3, &mut rng);
            let noise = StepNoise::draw(guide, Diwhvi::new(m, k), &mut rng);
            let p = params.len();
            let mut tape = vec![0.0; p];
            let tape_bound = value_and_gradient_with(
                model,
                guide,
                &params,
                &noise,
                &TapeEngine,
                estimator,
                &mut tape,
            )
            .unwrap();
            let mut dual = vec![0.0; p];
            let dual_bound = value_and_gradient_with(
                model, guide, &params, &noise, &forward, estimator, &mut dual,
            )
            .unwrap();
            for (engine, reference, reference_gradient) in
                [("tape", tape_bound, &tape), ("forward", dual_bound, &dual)]
            {
                let mut gradient = vec![0.0; p];
                let bound = match engine {
                    "tape" => {
                        fused.value_and_gradient(model, &params, &noise, &TapeEngine, &mut gradient)
                    }
                    _ => fused.value_and_gradient(model, &params, &noise, &forward, &mut gradient),
                };
                let setting = format!("{engine}, (M, K) = ({m}, {k})");
                assert_close(bound, reference, &format!("bound, {setting}"));
                for (i, (&a, &b)) in gradient.iter().zip(reference_gradient).enumerate() {
                    assert_close(a, b, &format!("∂/∂θ{i}, {setting}"));
                }
            }
        }
    }

    #[test]
    fn equals_the_generic_path_on_eight_schools() {
        let guide = SemiImplicit::new(10, 10);
        check_against_generic(&EightSchools, &guide, GradientEstimator::Reparameterized, 1);
    }

    #[test]
    fn equals_the_generic_path_on_eight_schools_without_a_reverse_model() {
        let guide = SemiImplicit::new(10, 10).with_reverse(Reverse::Prior);
        check_against_generic(&EightSchools, &guide, GradientEstimator::Reparameterized, 2);
    }

    #[test]
    fn equals_the_generic_path_on_a_linear_gaussian_model() {
        let model = LinearGaussian::new(3);
        for (guide, seed) in [
            (SemiImplicit::new(3, 2), 4),
            (SemiImplicit::new(3, 7), 5),
            (SemiImplicit::new(3, 1).with_reverse(Reverse::Prior), 6),
        ] {
            check_against_generic(&model, &guide, GradientEstimator::Reparameterized, seed);
        }
    }

    #[test]
    fn equals_the_generic_path_with_a_psi_dependent_scale() {
        let plain = GradientEstimator::Reparameterized;
        let dependent = |big_d, d| SemiImplicit::new(big_d, d).with_psi_dependent_scale(true);
        check_against_generic(&EightSchools, &dependent(10, 10), plain, 20);
        let sivi = dependent(10, 4).with_reverse(Reverse::Prior);
        check_against_generic(&EightSchools, &sivi, plain, 21);
        let model = LinearGaussian::new(22);
        check_against_generic(&model, &dependent(3, 2), plain, 23);
        let dreg = GradientEstimator::DoublyReparameterized;
        check_against_generic(&model, &dependent(3, 6), dreg, 24);
    }

    #[test]
    fn equals_the_generic_path_with_an_mlp_conditional() {
        let plain = GradientEstimator::Reparameterized;
        let mlp = |big_d, d, hidden| {
            SemiImplicit::new(big_d, d).with_conditioning(Conditioning::Mlp { hidden })
        };
        check_against_generic(&EightSchools, &mlp(10, 10, 16), plain, 30);
        let sivi = mlp(10, 3, 8).with_reverse(Reverse::Prior);
        check_against_generic(&EightSchools, &sivi, plain, 31);
        let model = LinearGaussian::new(32);
        let dependent = mlp(3, 2, 7).with_psi_dependent_scale(true);
        check_against_generic(&model, &dependent, plain, 33);
        let dreg = GradientEstimator::DoublyReparameterized;
        check_against_generic(&model, &mlp(3, 4, 6), dreg, 34);
    }

    #[test]
    fn doubly_reparameterized_equals_the_generic_estimator() {
        let dreg = GradientEstimator::DoublyReparameterized;
        check_against_generic(&EightSchools, &SemiImplicit::new(10, 10), dreg, 10);
        let model = LinearGaussian::new(11);
        check_against_generic(&model, &SemiImplicit::new(3, 2), dreg, 12);
        check_against_generic(&model, &SemiImplicit::new(3, 5), dreg, 13);
    }

    #[test]
    fn chained_path_reads_the_same_chained_model() {
        let model = LinearGaussian::new(7);
        let guide = SemiImplicit::new(3, 4);
        let mut rng = StdRng::seed_from_u64(8);
        let params = perturbed_params(&guide, 0.2, &mut rng);
        let noise = StepNoise::draw(&guide, Diwhvi::new(4, 6), &mut rng);
        let engine = ForwardEngine::<4>::new();
        let chained = ChainedModel::new(&model, &guide, &params, &noise, &engine);
        let mut fused = FusedDiwhvi::new(&guide);
        let mut through_chained = vec![0.0; params.len()];
        let a = fused.chained_value_and_gradient(&params, &noise, &chained, &mut through_chained);
        let mut through_model = vec![0.0; params.len()];
        let b = fused.value_and_gradient(&model, &params, &noise, &engine, &mut through_model);
        assert_eq!(a.to_bits(), b.to_bits());
        assert_eq!(through_chained, through_model);
    }

    #[test]
    fn reused_buffers_give_the_bits_of_fresh_ones() {
        let guide = SemiImplicit::new(10, 10);
        let engine = TapeEngine;
        let mut rng = StdRng::seed_from_u64(9);
        let mut reused = FusedDiwhvi::new(&guide);
        for (m, k) in [(2, 3), (2, 3), (1, 0), (8, 8), (2, 3)] {
            let params = perturbed_params(&guide, 0.3, &mut rng);
            let noise = StepNoise::draw(&guide, Diwhvi::new(m, k), &mut rng);
            let mut a = vec![0.0; params.len()];
            let bound_a =
                reused.value_and_gradient(&EightSchools, &params, &noise, &engine, &mut a);
            let mut b = vec![f64::NAN; params.len()];
            let bound_b = FusedDiwhvi::new(&guide).value_and_gradient(
                &EightSchools,
                &params,
                &noise,
                &engine,
                &mut b,
            );
            assert_eq!(bound_a.to_bits(), bound_b.to_bits());
            assert_eq!(a, b);
        }
    }

    /// A lower-triangular `L` with positive diagonal, and a shift.
    fn preconditioner(big_d: usize, rng: &mut StdRng) -> (Vec<f64>, Vec<f64>) {
        let shift = (0..big_d)
            .map(|_| rng.sample::<f64, _>(StandardNormal))
            .collect();
        let mut scale_tril = vec![0.0; big_d * big_d];
        for i in 0..big_d {
            for j in 0..i {
                scale_tril[i * big_d + j] = 0.3 * rng.sample::<f64, _>(StandardNormal);
            }
            scale_tril[i * big_d + i] = 0.5 + rng.random::<f64>();
        }
        (shift, scale_tril)
    }

    #[test]
    fn equals_the_generic_path_with_a_preconditioned_guide() {
        let mut rng = StdRng::seed_from_u64(50);
        let plain = GradientEstimator::Reparameterized;
        let dreg = GradientEstimator::DoublyReparameterized;
        let (shift, scale_tril) = preconditioner(10, &mut rng);
        let guide = Preconditioned::new(SemiImplicit::new(10, 10), shift, scale_tril).unwrap();
        check_fused(
            &EightSchools,
            &guide,
            FusedDiwhvi::preconditioned(&guide),
            plain,
            51,
        );
        check_fused(
            &EightSchools,
            &guide,
            FusedDiwhvi::preconditioned(&guide),
            dreg,
            52,
        );
        let model = LinearGaussian::new(53);
        let (shift, scale_tril) = preconditioner(3, &mut rng);
        let inner = SemiImplicit::new(3, 2)
            .with_conditioning(Conditioning::Mlp { hidden: 5 })
            .with_psi_dependent_scale(true)
            .with_reverse(Reverse::Prior);
        let guide = Preconditioned::new(inner, shift, scale_tril).unwrap();
        check_fused(
            &model,
            &guide,
            FusedDiwhvi::preconditioned(&guide),
            plain,
            54,
        );
    }

    #[test]
    fn equals_the_generic_path_with_an_mlp_reverse_model() {
        let mlp = |hidden| Reverse::Learned(Conditioning::Mlp { hidden });
        let plain = GradientEstimator::Reparameterized;
        let dreg = GradientEstimator::DoublyReparameterized;
        let guide = SemiImplicit::new(10, 10).with_reverse(mlp(12));
        check_against_generic(&EightSchools, &guide, plain, 40);
        check_against_generic(&EightSchools, &guide, dreg, 41);
        let model = LinearGaussian::new(42);
        let everything = SemiImplicit::new(3, 3)
            .with_conditioning(Conditioning::Mlp { hidden: 5 })
            .with_reverse(mlp(4))
            .with_psi_dependent_scale(true);
        check_against_generic(&model, &everything, plain, 43);
        check_against_generic(&model, &everything, dreg, 44);
    }

    /// Student-t conditionals: every setting of the guide (constant or
    /// `ψ`-dependent scale, affine or MLP conditional, learned or no
    /// reverse model, preconditioned), both estimators, several `ν`.
    #[test]
    fn equals_the_generic_path_with_student_t_conditionals() {
        let t = |df: u8| ConditionalFamily::StudentT {
            df: std::num::NonZeroU8::new(df).unwrap(),
        };
        let plain = GradientEstimator::Reparameterized;
        let dreg = GradientEstimator::DoublyReparameterized;
        let guide = SemiImplicit::new(10, 10).with_conditional_family(t(4));
        check_against_generic(&EightSchools, &guide, plain, 90);
        check_against_generic(&EightSchools, &guide, dreg, 91);
        let sivi = SemiImplicit::new(10, 4)
            .with_reverse(Reverse::Prior)
            .with_conditional_family(t(1));
        check_against_generic(&EightSchools, &sivi, plain, 92);
        let model = LinearGaussian::new(93);
        let everything = SemiImplicit::new(3, 3)
            .with_conditioning(Conditioning::Mlp { hidden: 5 })
            .with_reverse(Reverse::Learned(Conditioning::Mlp { hidden: 4 }))
            .with_psi_dependent_scale(true)
            .with_conditional_family(t(10));
        check_against_generic(&model, &everything, plain, 94);
        check_against_generic(&model, &everything, dreg, 95);
        let dependent = SemiImplicit::new(3, 2)
            .with_psi_dependent_scale(true)
            .with_conditional_family(t(2));
        check_against_generic(&model, &dependent, plain, 96);
        let mut rng = StdRng::seed_from_u64(97);
        let (shift, scale_tril) = preconditioner(10, &mut rng);
        let inner = SemiImplicit::new(10, 10)
            .with_conditioning(Conditioning::Mlp { hidden: 8 })
            .with_psi_dependent_scale(true)
            .with_conditional_family(t(4));
        let guide = Preconditioned::new(inner, shift, scale_tril).unwrap();
        check_fused(
            &EightSchools,
            &guide,
            FusedDiwhvi::preconditioned(&guide),
            plain,
            98,
        );
    }

    /// An optimizer that keeps the first gradient it is given, and moves
    /// the parameters by plain gradient ascent.
    struct Recording<'a> {
        first: &'a mut Option<Vec<f64>>,
        steps: u64,
    }

    impl crate::optim::Optimizer for Recording<'_> {
        fn step(&mut self, params: &mut [f64], gradient: &[f64]) {
            if self.first.is_none() {
                *self.first = Some(gradient.to_vec());
            }
            for (p, g) in params.iter_mut().zip(gradient) {
                *p += 1e-3 * g;
            }
            self.steps += 1;
        }

        fn steps(&self) -> u64 {
            self.steps
        }
    }

    /// The first step of a fit from `initial`: its bound, its gradient,
    /// and the engines the fit recorded.
    fn first_step<Mo: Model, G: HierarchicalGuide>(
        model: &Mo,
        guide: &G,
        config: &FitConfig,
        initial: &[f64],
    ) -> (f64, Vec<f64>, StepEngines) {
        let mut first = None;
        let optimizer = Recording {
            first: &mut first,
            steps: 0,
        };
        let fit = fit_from(
            model,
            guide,
            optimizer,
            &config.clone().max_steps(1),
            initial.to_vec(),
        )
        .unwrap();
        (fit.trace[0], first.unwrap(), fit.engines)
    }

    /// Auto takes the fused path for a semi-implicit guide (plain and
    /// preconditioned, both estimators), and its first step agrees with
    /// the tape's to 1e-10 relative.
    #[test]
    fn auto_fits_a_semi_implicit_guide_on_the_fused_path() {
        let mut rng = StdRng::seed_from_u64(60);
        let (shift, scale_tril) = preconditioner(10, &mut rng);
        let plain = SemiImplicit::new(10, 10);
        let preconditioned =
            Preconditioned::new(SemiImplicit::new(10, 10), shift, scale_tril).unwrap();
        let fused_engines = StepEngines {
            model: EngineChoice::Forward { lanes: 16 },
            guide: EngineChoice::Fused,
        };
        for estimator in [
            GradientEstimator::Reparameterized,
            GradientEstimator::DoublyReparameterized,
        ] {
            let config = FitConfig::new(Diwhvi::new(4, 8))
                .seed(61)
                .progress(false)
                .estimator(estimator);
            assert_eq!(config.engine, Engine::Auto);
            let params = perturbed_params(&plain, 0.3, &mut rng);
            let (bound, gradient, engines) = first_step(&EightSchools, &plain, &config, &params);
            assert_eq!(engines, fused_engines);
            let tape = config.clone().engine(Engine::Tape);
            let (tape_bound, tape_gradient, tape_engines) =
                first_step(&EightSchools, &plain, &tape, &params);
            assert_eq!(tape_engines.guide, EngineChoice::Tape);
            assert_close(bound, tape_bound, "bound, plain");
            for (i, (&a, &b)) in gradient.iter().zip(&tape_gradient).enumerate() {
                assert_close(a, b, &format!("∂/∂θ{i}, plain, {estimator:?}"));
            }

            let params = perturbed_params(&preconditioned, 0.3, &mut rng);
            let (bound, gradient, engines) =
                first_step(&EightSchools, &preconditioned, &config, &params);
            assert_eq!(engines, fused_engines);
            let (tape_bound, tape_gradient, _) =
                first_step(&EightSchools, &preconditioned, &tape, &params);
            assert_close(bound, tape_bound, "bound, preconditioned");
            for (i, (&a, &b)) in gradient.iter().zip(&tape_gradient).enumerate() {
                assert_close(a, b, &format!("∂/∂θ{i}, preconditioned, {estimator:?}"));
            }
        }
    }

    /// Outside the fused path, Auto's model engine has the fewest lanes
    /// that cover `D` and its guide engine is forward mode for a small
    /// guide: the same bits as `Engine::Forward` (16 lanes on both), since
    /// forward-mode lanes never interact.
    #[test]
    fn auto_on_the_generic_path_reproduces_forward_mode_bit_for_bit() {
        let model = LinearGaussian::new(70);
        let guide = MeanField::new(3);
        let config = FitConfig::new(Diwhvi::new(3, 0))
            .seed(71)
            .max_steps(200)
            .progress(false);
        let auto = fit(&model, &guide, Adam::new(0.01), &config).unwrap();
        assert_eq!(
            auto.engines,
            StepEngines {
                model: EngineChoice::Forward { lanes: 4 },
                guide: EngineChoice::Forward { lanes: 16 },
            }
        );
        let forward = fit(
            &model,
            &guide,
            Adam::new(0.01),
            &config.clone().engine(Engine::Forward),
        )
        .unwrap();
        assert_eq!(bits(&auto.trace), bits(&forward.trace));
        assert_eq!(bits(&auto.params), bits(&forward.params));
        // A guide above the forward-mode cut-off: the tape for the guide.
        let big = FullRank::new(10);
        assert!(big.param_layout().len() > GUIDE_FORWARD_MAX_PARAMS);
        assert_eq!(
            Engine::Auto.step_engines(&big),
            StepEngines {
                model: EngineChoice::Forward { lanes: 16 },
                guide: EngineChoice::Tape,
            }
        );
        for (big_d, lanes) in [(1, 1), (2, 2), (3, 4), (5, 8), (9, 16), (16, 16)] {
            let engines = Engine::Auto.step_engines(&MeanField::new(big_d));
            assert_eq!(engines.model, EngineChoice::Forward { lanes });
        }
        let wide = Engine::Auto.step_engines(&SemiImplicit::new(17, 2));
        assert_eq!(
            (wide.model, wide.guide),
            (EngineChoice::Tape, EngineChoice::Fused)
        );
    }

    fn bits(values: &[f64]) -> Vec<u64> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    /// `f` inside a local rayon pool of `threads` threads.
    fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(f)
    }

    /// One fused step (value and gradient, with the model's gradients)
    /// gives the same bits on one thread and on two, for uneven and even
    /// splits of the outer samples, whether or not rayon ran.
    #[test]
    fn a_fused_step_is_bit_identical_on_one_and_two_threads() {
        let guide = SemiImplicit::new(10, 10);
        let mut rng = StdRng::seed_from_u64(80);
        for (m, k) in [(2, 0), (3, 5), (8, 8), (5, 64)] {
            for estimator in [
                GradientEstimator::Reparameterized,
                GradientEstimator::DoublyReparameterized,
            ] {
                let params = perturbed_params(&guide, 0.3, &mut rng);
                let noise = StepNoise::draw(&guide, Diwhvi::new(m, k), &mut rng);
                let step = |parallelism| {
                    let engine = ForwardEngine::<16>::new().with_parallelism(parallelism);
                    let mut fused = FusedDiwhvi::new(&guide)
                        .with_estimator(estimator)
                        .unwrap()
                        .with_parallelism(parallelism);
                    let mut gradient = vec![0.0; params.len()];
                    // Twice, to reuse the workers' buffers.
                    fused.value_and_gradient(
                        &EightSchools,
                        &params,
                        &noise,
                        &engine,
                        &mut gradient,
                    );
                    let value = fused.value_and_gradient(
                        &EightSchools,
                        &params,
                        &noise,
                        &engine,
                        &mut gradient,
                    );
                    let chained = ChainedModel::new_with_parallelism(
                        &EightSchools,
                        &guide,
                        &params,
                        &noise,
                        &engine,
                        parallelism,
                    );
                    (value.to_bits(), bits(&gradient), chained)
                };
                let reference = step(Parallelism::SingleThread);
                for threads in [1, 2] {
                    for parallelism in [Parallelism::AllCores, Parallelism::Auto] {
                        let run = on_threads(threads, || step(parallelism));
                        assert_eq!(run, reference, "(M, K) = ({m}, {k}), {threads} threads");
                    }
                }
            }
        }
    }

    /// A fit of a few hundred steps on the fused path gives the same bits
    /// on one thread and on two, with Gaussian and Student-t conditionals.
    #[test]
    fn a_fused_fit_is_bit_identical_on_one_and_two_threads() {
        let df = std::num::NonZeroU8::new(3).unwrap();
        let student =
            SemiImplicit::new(10, 10).with_conditional_family(ConditionalFamily::StudentT { df });
        for guide in [SemiImplicit::new(10, 10), student] {
            fit_is_bit_identical_on_one_and_two_threads(&guide);
        }
    }

    fn fit_is_bit_identical_on_one_and_two_threads(guide: &SemiImplicit) {
        let config = FitConfig::new(Diwhvi::new(8, 8))
            .seed(90)
            .max_steps(300)
            .progress(false)
            .parallelism(Parallelism::AllCores);
        let run = |threads| {
            on_threads(threads, || {
                fit(&EightSchools, guide, Adam::new(0.01), &config).unwrap()
            })
        };
        let (one, two) = (run(1), run(2));
        assert_eq!(one.engines.guide, EngineChoice::Fused);
        assert_eq!(bits(&one.trace), bits(&two.trace));
        assert_eq!(bits(&one.params), bits(&two.params));
        assert_eq!(bits(&one.best_params), bits(&two.best_params));
        let single = fit(
            &EightSchools,
            guide,
            Adam::new(0.01),
            &config.clone().parallelism(Parallelism::SingleThread),
        )
        .unwrap();
        assert_eq!(bits(&single.trace), bits(&two.trace));
        assert!(one.trace.iter().all(|b| b.is_finite()));
    }
}
