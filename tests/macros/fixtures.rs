//! What several modules of this test binary share: the local
//! linear-Gaussian model of the per-point guides, hand-written densities
//! and encoder, random parameters, and the checks of a bound's gradient
//! and of a fit against the exact evidence.

use iwhvi::fit::{FitConfig, fit};
use iwhvi::guide::HierarchicalGuide;
use iwhvi::objective::{Diwhvi, GradientEstimator, estimate_bound};
use iwhvi::optim::Adam;
use iwhvi::tape::TapeEngine;
use iwhvi::variational;
use iwhvi::{Differentiable, ForwardEngine};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// `z_j ~ N(0, 1)`, `y_j ~ N(z_j, sigma_j)`: every latent local, with
/// `log p(y) = Σ_j log N(y_j; 0, 1 + sigma_j²)` ([`local_log_evidence`]).
/// Its data are `pub(crate)`, so that the guides of other modules read
/// them (a data accessor has its field's visibility).
#[variational]
pub(crate) struct Local {
    #[data]
    pub(crate) sigma: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    z: Vec<f64>,
    #[observe(Normal(z[j], sigma[j]), for j)]
    pub(crate) y: Vec<f64>,
}

/// The runtime's hierarchical encoder (the macro VAE's shape) in the guide
/// macro: two per-point mixing variables,
/// `ψ_j = (psi0_j, psi1_j) ~ N(mix_j(0,2), exp mix_j(1,3))`,
/// `z_j | ψ_j ~ N(h_j(0), exp h_j(1))` with `h_j = enc(y_j, sigma_j; ψ_j)`,
/// and `τ(ψ_j | z_j) = Π_q N(g_j(2q), exp g_j(2q+1))` with
/// `g_j = rev(y_j, sigma_j; z_j)`.
#[variational(guide = Local)]
pub(crate) struct ContextMixing {
    #[encoder(input = [y[j], sigma[j]], hidden = [4], activation = tanh, outputs = 4)]
    mix: Mlp,
    #[encoder(input = [y[j], sigma[j]], context = [psi0[j], psi1[j]], hidden = [8], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[encoder(input = [y[j], sigma[j]], context = [z[j]], hidden = [4], activation = tanh, outputs = 4)]
    rev: Mlp,
    #[mixing(Normal(mix(j)[0], mix(j)[1].exp()), len = z, for j)]
    #[reverse(Normal(rev(j)[0], rev(j)[1].exp()), for j)]
    psi0: Vec<f64>,
    #[mixing(Normal(mix(j)[2], mix(j)[3].exp()), len = z, for j)]
    #[reverse(Normal(rev(j)[2], rev(j)[3].exp()), for j)]
    psi1: Vec<f64>,
    #[latent(Normal(enc(j)[0], enc(j)[1].exp()), for j)]
    z: Vec<f64>,
}

/// [`Local`] on the observations `y` with the noise scales `sigma`.
pub(crate) fn local(y: &[f64], sigma: &[f64]) -> Local {
    Local::new(sigma.to_vec(), y.to_vec()).unwrap()
}

/// [`Local`]'s exact `log p(y) = Σ_j log N(y_j; 0, 1 + sigma_j²)`.
pub(crate) fn local_log_evidence(y: &[f64], sigma: &[f64]) -> f64 {
    y.iter()
        .zip(sigma)
        .map(|(y, s)| log_normal_density(*y, 0.0, (1.0 + s * s).sqrt()))
        .sum()
}

/// `log N(x; loc, scale²)`.
pub(crate) fn log_normal_density(x: f64, loc: f64, scale: f64) -> f64 {
    let z = (x - loc) / scale;
    -0.5 * z * z - scale.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
}

/// The hidden width of the encoders [`encoder_by_hand`] computes.
pub(crate) const HIDDEN: usize = 8;

/// A `#[encoder(input = [a, b], hidden = [8], activation = tanh, outputs =
/// 2)]` by hand: `W0` (2 × H, row-major), `b0`, `W1` (H × 2), `b1`.
pub(crate) fn encoder_by_hand(w: &[f64], x: [f64; 2]) -> [f64; 2] {
    let (w0, rest) = w.split_at(2 * HIDDEN);
    let (b0, rest) = rest.split_at(HIDDEN);
    let (w1, b1) = rest.split_at(HIDDEN * 2);
    let h: Vec<f64> = (0..HIDDEN)
        .map(|k| (b0[k] + x[0] * w0[k] + x[1] * w0[HIDDEN + k]).tanh())
        .collect();
    let out = |o: usize| b1[o] + (0..HIDDEN).map(|k| h[k] * w1[k * 2 + o]).sum::<f64>();
    [out(0), out(1)]
}

/// Parameters of `guide` drawn from `N(0, 0.4²)` with `seed`, so that every
/// one of them matters.
pub(crate) fn random_params<G: HierarchicalGuide>(guide: &G, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..guide.param_layout().len())
        .map(|_| iwhvi::__private::normal_init(&mut rng, 0.4))
        .collect()
}

/// `objective`'s gradient at `params` on the forward and tape engines:
/// the same value on both, and every entry within `1e-5 (1 + |fd|)` of the
/// central difference `fd` (step `1e-5`). Returns the tape's gradient.
pub(crate) fn gradient_matches_finite_differences<O: Differentiable>(
    objective: &O,
    params: &[f64],
) -> Vec<f64> {
    let (value, forward) = ForwardEngine::<8>::new().value_and_gradient(objective, params);
    let (tape_value, tape) = TapeEngine.value_and_gradient(objective, params);
    assert!((value - tape_value).abs() < 1e-9 * (1.0 + value.abs()));
    for i in 0..params.len() {
        let h = 1e-5;
        let (mut up, mut down) = (params.to_vec(), params.to_vec());
        up[i] += h;
        down[i] -= h;
        let fd = (objective.eval(&up) - objective.eval(&down)) / (2.0 * h);
        let tolerance = 1e-5 * (1.0 + fd.abs());
        assert!(
            (forward[i] - fd).abs() < tolerance,
            "∂{i}: {} vs {fd}",
            forward[i]
        );
        assert!(
            (tape[i] - fd).abs() < tolerance,
            "∂{i} (tape): {} vs {fd}",
            tape[i]
        );
    }
    tape
}

/// A DReG fit of `guide` to `model` on `Diwhvi::new(1, k)` for `steps`
/// steps (seed 21): its DIWHVI bound (`K = 16`) below the exact `log p(y)`
/// (`exact`) and within 0.3 nats of it, from a start more than 1 nat below.
pub(crate) fn fitted_is_below_and_close<G: HierarchicalGuide>(
    (model, guide, name): (&Local, &G, &str),
    (k, steps): (usize, usize),
    exact: f64,
) {
    let config = FitConfig::new(Diwhvi::new(1, k))
        .estimator(GradientEstimator::DoublyReparameterized)
        .max_steps(steps)
        .seed(21)
        .progress(false);
    let fitted = fit(model, guide, Adam::new(0.02), &config).unwrap();
    let mut rng = StdRng::seed_from_u64(22);
    let bound = estimate_bound(
        model,
        guide,
        &fitted.params,
        Diwhvi::new(1, 16),
        1000,
        &mut rng,
    )
    .unwrap();
    let start = guide.init_params(&mut StdRng::seed_from_u64(21));
    let initial = estimate_bound(model, guide, &start, Diwhvi::new(1, 16), 200, &mut rng).unwrap();
    eprintln!(
        "{name} guide: bound {:.4} ± {:.4} (initial {:.3}), exact log p(y) {exact:.4}",
        bound.mean, bound.std_error, initial.mean
    );
    assert!(
        bound.mean < exact + 3.0 * bound.std_error,
        "{bound:?} above {exact}"
    );
    assert!(
        exact - bound.mean < 0.3,
        "{bound:?}: gap {}",
        exact - bound.mean
    );
    assert!(
        exact - initial.mean > 1.0,
        "the fit had work to do: {initial:?}"
    );
}
