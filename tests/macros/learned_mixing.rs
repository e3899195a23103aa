//! `#[mixing(Normal(loc, scale), …)]` in a guide struct (issue 16, a
//! learned `q(ψ)`): per point, `q(ψ_j | x_j) = N(mix(j)[0], exp mix(j)[1])`
//! with `mix` an encoder of the point's data, and globally
//! `q(ψ) = N(m, exp log_s)`. The draws, `log q(ψ)`, its groups and
//! `log τ` against hand-written code, the bound's gradient against finite
//! differences on both engines, and a fit on a conjugate toy below the
//! exact `log p(y)` and at least as good as the same guide with
//! `ψ_j ~ N(0, 1)`, reproduced bit for bit on one and two threads.

use iwhvi::fit::{Fit, FitConfig, Parallelism, fit};
use iwhvi::guide::{HierarchicalGuide, Workspace};
use iwhvi::objective::{Diwhvi, DiwhviObjective, GradientEstimator, StepNoise, estimate_bound};
use iwhvi::optim::Adam;
use iwhvi::variational;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::fixtures::{
    ContextMixing, Local, gradient_matches_finite_differences, local, local_log_evidence,
    log_normal_density, random_params,
};

/// `ψ_j ~ N(mix_j(0), exp mix_j(1))` with `mix_j = mix(y_j, sigma_j)`,
/// `z_j | ψ_j ~ N(h_j(0) + a ψ_j, exp h_j(1))` with `h_j = enc(y_j, sigma_j)`,
/// and `τ(ψ_j | z) = N(r z_j + t, exp log_rho)`.
#[variational(guide = Local)]
struct Learned {
    #[param(init = 0.5)]
    a: f64,
    #[param(init = 0.0)]
    r: f64,
    #[param(init = 0.0)]
    t: f64,
    #[param(init = 0.0)]
    log_rho: f64,
    #[encoder(input = [y[j], sigma[j]], hidden = [8], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[encoder(input = [y[j], sigma[j]], hidden = [4], activation = tanh, outputs = 2)]
    mix: Mlp,
    #[mixing(Normal(mix(j)[0], mix(j)[1].exp()), len = z, for j)]
    #[reverse(Normal(r * z[j] + t, log_rho.exp()), for j)]
    psi: Vec<f64>,
    #[latent(Normal(enc(j)[0] + a * psi[j], enc(j)[1].exp()), for j)]
    z: Vec<f64>,
}

/// `z_j | ψ_j ~ N(a ψ_j, exp h_j(1))`: the point's mean comes through
/// `ψ_j` alone, so that `q(z_j) = N(a μ_j, a² s_j² + exp 2h_j(1))` can
/// reach the exact posterior with `q(ψ_j | y_j) = N(μ_j, s_j)` learned
/// (below), and cannot with `ψ_j ~ N(0, 1)` ([`Standard`]).
#[variational(guide = Local)]
struct LearnedMean {
    #[param(init = 0.5)]
    a: f64,
    #[param(init = 0.0)]
    r: f64,
    #[param(init = 0.0)]
    t: f64,
    #[param(init = 0.0)]
    log_rho: f64,
    #[encoder(input = [y[j], sigma[j]], hidden = [8], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[encoder(input = [y[j], sigma[j]], hidden = [4], activation = tanh, outputs = 2)]
    mix: Mlp,
    #[mixing(Normal(mix(j)[0], mix(j)[1].exp()), len = z, for j)]
    #[reverse(Normal(r * z[j] + t, log_rho.exp()), for j)]
    psi: Vec<f64>,
    #[latent(Normal(a * psi[j], enc(j)[1].exp()), for j)]
    z: Vec<f64>,
}

/// [`LearnedMean`] with `ψ_j ~ N(0, 1)` (no `mix`).
#[variational(guide = Local)]
struct Standard {
    #[param(init = 0.5)]
    a: f64,
    #[param(init = 0.0)]
    r: f64,
    #[param(init = 0.0)]
    t: f64,
    #[param(init = 0.0)]
    log_rho: f64,
    #[encoder(input = [y[j], sigma[j]], hidden = [8], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[mixing(len = z, for j)]
    #[reverse(Normal(r * z[j] + t, log_rho.exp()), for j)]
    psi: Vec<f64>,
    #[latent(Normal(a * psi[j], enc(j)[1].exp()), for j)]
    z: Vec<f64>,
}

/// `mu ~ N(0, 1)`, `y_i ~ N(mu, 1)`.
#[variational]
struct Mean {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(mu, 1.0), for i)]
    y: Vec<f64>,
}

/// A global `ψ ∈ R² ~ N(m, exp log_s)` (each coordinate), and
/// `mu | ψ ~ N(b + c ψ_0 + d ψ_1, exp ls)`, `τ(ψ | mu) = N(e mu, exp lt)`.
#[variational(guide = Mean)]
struct GlobalLearned {
    #[param(init = 0.1)]
    m: f64,
    #[param(init = 0.0)]
    log_s: f64,
    #[param(init = 0.0)]
    b: f64,
    #[param(init = 0.3)]
    c: f64,
    #[param(init = 0.2)]
    d: f64,
    #[param(init = 0.0)]
    ls: f64,
    #[param(init = 0.0)]
    e: f64,
    #[param(init = 0.0)]
    lt: f64,
    #[mixing(Normal(m, log_s.exp()), len = 2)]
    #[reverse(Normal(e * mu, lt.exp()), for k)]
    psi: Vec<f64>,
    #[latent(Normal(b + c * psi[0] + d * psi[1], ls.exp()))]
    mu: f64,
}

const Y: [f64; 6] = [1.2, -0.4, 2.5, 0.3, -1.8, 0.9];
const SIGMA: [f64; 6] = [0.5, 1.0, 0.8, 1.5, 0.6, 1.2];

fn model() -> Local {
    local(&Y, &SIGMA)
}

fn log_evidence() -> f64 {
    local_log_evidence(&Y, &SIGMA)
}

/// A tanh network `2 → hidden → 2` by hand: `W0` (2 × H, row-major),
/// `b0`, `W1` (H × 2), `b1`.
fn network_by_hand(w: &[f64], hidden: usize, x: [f64; 2]) -> [f64; 2] {
    let (w0, rest) = w.split_at(2 * hidden);
    let (b0, rest) = rest.split_at(hidden);
    let (w1, b1) = rest.split_at(hidden * 2);
    let h: Vec<f64> = (0..hidden)
        .map(|k| (b0[k] + x[0] * w0[k] + x[1] * w0[hidden + k]).tanh())
        .collect();
    let out = |o: usize| b1[o] + (0..hidden).map(|k| h[k] * w1[k * 2 + o]).sum::<f64>();
    [out(0), out(1)]
}

/// The weights of `enc` (8 hidden) then `mix` (4 hidden) follow the four
/// scalars.
const ENC: std::ops::Range<usize> = 4..4 + 2 * 8 + 8 + 8 * 2 + 2;
const MIX_HIDDEN: usize = 4;

fn normals(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| iwhvi::__private::normal_init(&mut rng, 1.0))
        .collect()
}

#[test]
fn a_learned_per_point_mixing_distribution_matches_a_hand_written_one() {
    let model = model();
    let guide = Learned::new(&model).unwrap();
    let n = Y.len();
    assert_eq!((guide.latent_dim(), guide.mixing_dim()), (n, n));
    let params = random_params(&guide, 3);
    assert_eq!(
        params.len(),
        ENC.end + 2 * MIX_HIDDEN + MIX_HIDDEN + MIX_HIDDEN * 2 + 2
    );
    let (a, r, t, rho) = (params[0], params[1], params[2], params[3].exp());
    let (mix_noise, eps) = (normals(n, 4), normals(n, 5));
    let mut psi = vec![0.0; n];
    guide.sample_mixing(&params, &mix_noise, &mut psi);
    let lm = guide.log_mixing(&params, &psi);
    let mut ws = Workspace::new(&guide);
    guide.prepare(&params, &mut ws);
    let mut u = vec![0.0; n];
    guide.sample_conditional(&params, &psi, &eps, &mut u, &mut ws);
    guide.prepare_reverse(&params, &u, &mut ws);
    let lr = guide.log_reverse(&params, &u, &psi, &mut ws);
    let (mut want_lm, mut want_lr) = (0.0, 0.0);
    for j in 0..n {
        let x = [Y[j], SIGMA[j]];
        let g = network_by_hand(&params[ENC.end..], MIX_HIDDEN, x);
        let (loc, scale) = (g[0], g[1].exp());
        let want_psi = loc + scale * mix_noise[j];
        assert!(
            (psi[j] - want_psi).abs() < 1e-10,
            "{j}: {} vs {want_psi}",
            psi[j]
        );
        let lm_j = log_normal_density(psi[j], loc, scale);
        want_lm += lm_j;
        let group = guide.log_mixing_group(&params, j, &psi[j..j + 1], &mut ws);
        assert!((group - lm_j).abs() < 1e-10, "{j}: {group} vs {lm_j}");
        let h = network_by_hand(&params[ENC], 8, x);
        let z = h[0] + a * psi[j] + h[1].exp() * eps[j];
        assert!((u[j] - z).abs() < 1e-10, "{j}: {} vs {z}", u[j]);
        want_lr += log_normal_density(psi[j], r * z + t, rho);
    }
    assert!((lm - want_lm).abs() < 1e-10, "{lm} vs {want_lm}");
    assert!((lr - want_lr).abs() < 1e-10, "{lr} vs {want_lr}");
}

#[test]
fn a_learned_global_mixing_distribution_matches_a_hand_written_one() {
    let model = Mean::new(vec![0.3, 1.1, -0.2]).unwrap();
    let guide = GlobalLearned::new(&model).unwrap();
    assert_eq!(guide.mixing_dim(), 2);
    let params = random_params(&guide, 6);
    let (m, s, e, tau) = (params[0], params[1].exp(), params[6], params[7].exp());
    let noise = normals(2, 7);
    let mut psi = [0.0; 2];
    guide.sample_mixing(&params, &noise, &mut psi);
    let mut want = 0.0;
    for k in 0..2 {
        let drawn = m + s * noise[k];
        assert!((psi[k] - drawn).abs() < 1e-12, "{k}");
        want += log_normal_density(drawn, m, s);
    }
    let lm = guide.log_mixing(&params, &psi);
    assert!((lm - want).abs() < 1e-10, "{lm} vs {want}");
    // Without groups the reverse model is the whole-ψ one.
    assert!(guide.mixing_groups().is_none());
    let mut ws = Workspace::new(&guide);
    let u = [0.4];
    let lr = guide.log_reverse(&params, &u, &psi, &mut ws);
    let want_lr: f64 = psi
        .iter()
        .map(|p| log_normal_density(*p, e * u[0], tau))
        .sum();
    assert!((lr - want_lr).abs() < 1e-10, "{lr} vs {want_lr}");
}

/// The DIWHVI bound's gradient against central differences, on both
/// engines.
fn check_gradient<M: iwhvi::model::Model, G: HierarchicalGuide>(model: &M, guide: &G, seed: u64) {
    let params = random_params(guide, seed);
    let mut rng = StdRng::seed_from_u64(seed + 1);
    let noise = StepNoise::draw(guide, Diwhvi::new(2, 3), &mut rng);
    let objective = DiwhviObjective::new(model, guide, &noise);
    gradient_matches_finite_differences(&objective, &params);
}

#[test]
fn the_bound_gradient_through_a_learned_mixing_distribution_matches_finite_differences() {
    let model = model();
    check_gradient(&model, &Learned::new(&model).unwrap(), 8);
    let mean = Mean::new(vec![0.3, 1.1, -0.2]).unwrap();
    check_gradient(&mean, &GlobalLearned::new(&mean).unwrap(), 9);
}

fn fitted<G: HierarchicalGuide>(guide: &G, steps: usize, threads: Parallelism) -> Fit {
    let config = FitConfig::new(Diwhvi::new(2, 8))
        .estimator(GradientEstimator::DoublyReparameterized)
        .max_steps(steps)
        .seed(21)
        .parallelism(threads)
        .progress(false);
    fit(&model(), guide, Adam::new(0.02), &config).unwrap()
}

/// Adam steps of the fits compared with each other.
const STEPS: usize = 400;

#[test]
fn a_fitted_learned_mixing_guide_is_below_the_evidence_and_above_a_standard_one() {
    let model = model();
    let learned = LearnedMean::new(&model).unwrap();
    let standard = Standard::new(&model).unwrap();
    // Rayon's global pool: as many threads as cores (two here); a short
    // fit is enough to compare the bits.
    let (short_one, short_two) = (
        fitted(&learned, 50, Parallelism::SingleThread),
        fitted(&learned, 50, Parallelism::AllCores),
    );
    assert_eq!(short_one.params, short_two.params);
    assert_eq!(short_one.trace, short_two.trace);
    let one = fitted(&learned, STEPS, Parallelism::SingleThread);
    let base = fitted(&standard, STEPS, Parallelism::SingleThread);
    let exact = log_evidence();
    let mut rng = StdRng::seed_from_u64(22);
    let mut bound = |guide: &dyn Fn(&mut StdRng) -> iwhvi::objective::Estimate| guide(&mut rng);
    let learned_bound = bound(&|rng| {
        estimate_bound(&model, &learned, &one.params, Diwhvi::new(1, 16), 1000, rng).unwrap()
    });
    let standard_bound = bound(&|rng| {
        estimate_bound(
            &model,
            &standard,
            &base.params,
            Diwhvi::new(1, 16),
            1000,
            rng,
        )
        .unwrap()
    });
    eprintln!(
        "learned q(ψ|x): {learned_bound:?}, standard ψ: {standard_bound:?}, exact log p(y) {exact:.4}"
    );
    let (l, s) = (learned_bound.mean, standard_bound.mean);
    assert!(
        l < exact + 3.0 * learned_bound.std_error,
        "{l} above {exact}"
    );
    let se = learned_bound.std_error.hypot(standard_bound.std_error);
    assert!(l > s + 3.0 * se, "{l} not above {s} (± {se})");
}

/// A one-hidden-layer tanh network by hand: `W0` (inputs × H,
/// row-major), `Wc` (context × H), `b0`, `W1` (H × outputs), `b1`.
fn network(w: &[f64], (hidden, outputs): (usize, usize), x: &[f64], c: &[f64]) -> Vec<f64> {
    let (w0, rest) = w.split_at(x.len() * hidden);
    let (wc, rest) = rest.split_at(c.len() * hidden);
    let (b0, rest) = rest.split_at(hidden);
    let (w1, b1) = rest.split_at(hidden * outputs);
    let h: Vec<f64> = (0..hidden)
        .map(|k| {
            let data: f64 = (0..x.len()).map(|i| x[i] * w0[i * hidden + k]).sum();
            let context: f64 = (0..c.len()).map(|i| c[i] * wc[i * hidden + k]).sum();
            (b0[k] + data + context).tanh()
        })
        .collect();
    (0..outputs)
        .map(|o| b1[o] + (0..hidden).map(|k| h[k] * w1[k * outputs + o]).sum::<f64>())
        .collect()
}

#[test]
fn two_per_point_mixing_variables_make_a_two_dimensional_psi_per_point() {
    let model = model();
    let guide = ContextMixing::new(&model).unwrap();
    let n = Y.len();
    assert_eq!((guide.latent_dim(), guide.mixing_dim()), (n, 2 * n));
    // Point j's group: ψ_j = (psi0_j, psi1_j), laid out point after point.
    let groups = guide.mixing_groups().expect("per-point groups");
    for (j, group) in groups.groups().iter().enumerate() {
        assert_eq!(
            (group.psi.clone(), group.latents.clone()),
            (2 * j..2 * j + 2, vec![j])
        );
    }
    let params = random_params(&guide, 11);
    // The reverse model's encoder first, then `mix`, then `enc`.
    let (rev, rest) = params.split_at(2 * 4 + 4 + 4 + 4 * 4 + 4);
    let (mix, enc) = rest.split_at(2 * 4 + 4 + 4 * 4 + 4);
    assert_eq!(enc.len(), 2 * 8 + 2 * 8 + 8 + 8 * 2 + 2);
    let (noise, eps, back) = (normals(2 * n, 12), normals(n, 13), normals(2 * n, 14));
    let mut psi = vec![0.0; 2 * n];
    guide.sample_mixing(&params, &noise, &mut psi);
    let mut ws = Workspace::new(&guide);
    guide.prepare(&params, &mut ws);
    let mut u = vec![0.0; n];
    guide.sample_conditional(&params, &psi, &eps, &mut u, &mut ws);
    guide.prepare_reverse(&params, &u, &mut ws);
    let mut drawn = vec![0.0; 2 * n];
    guide.sample_reverse(&params, &u, &back, &mut drawn, &mut ws);
    let (mut want_lm, mut want_lq, mut want_lr) = (0.0, 0.0, 0.0);
    let (mut group_lq, mut group_lr) = (0.0, 0.0);
    for j in 0..n {
        let x = [Y[j], SIGMA[j]];
        let m = network(mix, (4, 4), &x, &[]);
        let point = &psi[2 * j..2 * j + 2];
        let mut lm_j = 0.0;
        for q in 0..2 {
            let (loc, scale) = (m[2 * q], m[2 * q + 1].exp());
            let want = loc + scale * noise[2 * j + q];
            assert!(
                (point[q] - want).abs() < 1e-10,
                "psi{q}_{j}: {} vs {want}",
                point[q]
            );
            lm_j += log_normal_density(want, loc, scale);
        }
        want_lm += lm_j;
        let group = guide.log_mixing_group(&params, j, point, &mut ws);
        assert!((group - lm_j).abs() < 1e-10, "{j}: {group} vs {lm_j}");
        let h = network(enc, (8, 2), &x, point);
        let z = h[0] + h[1].exp() * eps[j];
        assert!((u[j] - z).abs() < 1e-10, "z_{j}: {} vs {z}", u[j]);
        want_lq += log_normal_density(z, h[0], h[1].exp());
        let g = network(rev, (4, 4), &x, &[z]);
        for q in 0..2 {
            let (loc, scale) = (g[2 * q], g[2 * q + 1].exp());
            want_lr += log_normal_density(point[q], loc, scale);
            let back_drawn = loc + scale * back[2 * j + q];
            assert!(
                (drawn[2 * j + q] - back_drawn).abs() < 1e-10,
                "τ draw {q}, {j}"
            );
        }
        group_lq += guide.log_conditional_group(&params, j, point, &u, &mut ws);
        group_lr += guide.log_reverse_group(&params, j, &u, point, &mut ws);
        let mut one = [0.0; 2];
        let noise_j = &back[2 * j..2 * j + 2];
        guide.sample_reverse_group(&params, j, &u, noise_j, &mut one, &mut ws);
        assert_eq!(one, [drawn[2 * j], drawn[2 * j + 1]], "{j}");
    }
    let lm = guide.log_mixing(&params, &psi);
    let lq = guide.log_conditional(&params, &psi, &u, &mut ws);
    let lr = guide.log_reverse(&params, &u, &psi, &mut ws);
    for (got, want) in [
        (lm, want_lm),
        (lq, want_lq),
        (lr, want_lr),
        (group_lq, want_lq),
        (group_lr, want_lr),
    ] {
        assert!((got - want).abs() < 1e-10, "{got} vs {want}");
    }
}

#[test]
fn the_bound_gradient_with_two_per_point_mixing_variables_matches_finite_differences() {
    let model = model();
    check_gradient(&model, &ContextMixing::new(&model).unwrap(), 15);
}

/// `mu ~ N(0, 5)`, `theta_j ~ N(mu, 1)`, `y_j ~ N(theta_j, sigma_j)`.
#[variational]
struct Schools {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(Normal(mu, 1.0), len = sigma.len())]
    theta: Vec<f64>,
    #[observe(Normal(theta[j], sigma[j]), for j)]
    y: Vec<f64>,
}

/// A learned global `g ~ N(m, exp ls)` beside a learned per-point
/// `psi_j ~ q(psi_j | y_j, sigma_j)`: the global group holds `g`.
#[variational(guide = Schools)]
struct Mixed {
    #[param(init = 0.2)]
    m: f64,
    #[param(init = 0.1)]
    ls: f64,
    #[param(init = 0.0)]
    b: f64,
    #[param(init = 0.3)]
    c: f64,
    #[param(init = 0.0)]
    e: f64,
    #[param(init = 0.0)]
    lt: f64,
    #[param(init = 0.0)]
    r: f64,
    #[encoder(input = [y[j], sigma[j]], hidden = [4], activation = tanh, outputs = 4)]
    mix: Mlp,
    #[mixing(Normal(m, ls.exp()))]
    #[reverse(Normal(e * mu, lt.exp()))]
    g: f64,
    #[mixing(Normal(mix(j)[0], mix(j)[1].exp()), len = theta, for j)]
    #[reverse(Normal(r * theta[j], lt.exp()), for j)]
    psi: Vec<f64>,
    #[latent(Normal(b + c * g, 1.0))]
    mu: f64,
    #[latent(Normal(mu + mix(j)[2] + psi[j], mix(j)[3].exp()), for j)]
    theta: Vec<f64>,
}

#[test]
fn a_global_learned_mixing_variable_is_its_own_group_beside_per_point_ones() {
    let model = Schools::new(SIGMA[..3].to_vec(), Y[..3].to_vec()).unwrap();
    let guide = Mixed::new(&model).unwrap();
    let groups = guide.mixing_groups().expect("groups");
    assert_eq!(groups.len(), 1 + 3);
    assert_eq!(groups.groups()[0].psi, 0..1);
    let params = random_params(&guide, 16);
    let (m, s) = (params[0], params[1].exp());
    let mut psi = [0.0; 4];
    let noise = normals(4, 17);
    guide.sample_mixing(&params, &noise, &mut psi);
    assert!((psi[0] - (m + s * noise[0])).abs() < 1e-12);
    let mut ws = Workspace::new(&guide);
    guide.prepare(&params, &mut ws);
    let global = guide.log_mixing_group(&params, 0, &psi[..1], &mut ws);
    let want = log_normal_density(psi[0], m, s);
    assert!((global - want).abs() < 1e-12, "{global} vs {want}");
    let mut total = global;
    for (n, group) in groups.groups().iter().enumerate().skip(1) {
        let point = &psi[group.psi.clone()];
        total += guide.log_mixing_group(&params, n, point, &mut ws);
    }
    let whole = guide.log_mixing(&params, &psi);
    assert!((total - whole).abs() < 1e-10, "{total} vs {whole}");
    check_gradient(&model, &guide, 18);
}

/// `sample_mixing_prepared` and `log_mixing_prepared` (the objectives'
/// outer draw: `q(ψ | x)`'s network outputs read from the workspace
/// `prepare` filled) give `sample_mixing`'s and `log_mixing`'s values bit
/// for bit, prepared or not (then they compute for themselves, as on a
/// workspace prepared for a batch's groups only); and they do read the
/// workspace: moved outputs move `ψ`.
#[test]
fn the_prepared_mixing_methods_are_the_plain_ones_and_read_the_workspace() {
    let model = model();
    let guide = Learned::new(&model).unwrap();
    let n = Y.len();
    let params = random_params(&guide, 13);
    let noise = normals(n, 14);
    let mut psi = vec![0.0; n];
    guide.sample_mixing(&params, &noise, &mut psi);
    let lm = guide.log_mixing(&params, &psi);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut prepared = Workspace::new(&guide);
    guide.prepare(&params, &mut prepared);
    let mut batch = Workspace::new(&guide);
    guide.prepare_groups(&params, &[1, 3], &mut batch);
    for ws in [&mut Workspace::new(&guide), &mut prepared, &mut batch] {
        let mut got = vec![0.0; n];
        guide.sample_mixing_prepared(&params, &noise, &mut got, ws);
        assert_eq!(bits(&got), bits(&psi));
        let got = guide.log_mixing_prepared(&params, &psi, ws);
        assert_eq!(got.to_bits(), lm.to_bits());
    }
    // The encoders' outputs (`enc`'s and `mix`'s, 2 × n each) moved.
    prepared.params[..4 * n].iter_mut().for_each(|v| *v += 0.5);
    let mut moved = vec![0.0; n];
    guide.sample_mixing_prepared(&params, &noise, &mut moved, &mut prepared);
    assert!((0..n).all(|j| (moved[j] - psi[j]).abs() > 1e-3));
    // Without encoders (a global learned q(ψ)), the same values too.
    let mean = Mean::new(vec![0.3, 1.1, -0.2]).unwrap();
    let global = GlobalLearned::new(&mean).unwrap();
    let params = random_params(&global, 15);
    let noise = normals(2, 16);
    let (mut plain, mut got) = (vec![0.0; 2], vec![0.0; 2]);
    global.sample_mixing(&params, &noise, &mut plain);
    let mut ws = Workspace::new(&global);
    global.prepare(&params, &mut ws);
    global.sample_mixing_prepared(&params, &noise, &mut got, &mut ws);
    assert_eq!(bits(&got), bits(&plain));
    let lm = global.log_mixing(&params, &plain).to_bits();
    assert_eq!(
        global
            .log_mixing_prepared(&params, &plain, &mut ws)
            .to_bits(),
        lm
    );
}
