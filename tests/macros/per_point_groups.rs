//! Draws by group of guides with per-point mixing variables (issue 16,
//! minibatches in `O(b)`): `#[mixing(…, len = z, for j)]` with a learned
//! `q(ψ_j | x_j)`, with `ψ_j ~ N(0, 1)`, and in the macro VAE's shape
//! (context encoders `enc(x_j; ψ_j)` and `rev(x_j; z_j)`). Each group's
//! draw, from the noise entries the guide reports for it (the rest NaN),
//! against the whole draw, bit for bit, points outside the batch
//! never drawn or prepared; the per-point bound and a minibatch fit (its
//! gradients) by group against the same guide made to draw whole, bit for
//! bit; the fit reproduced on one and two threads.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use iwhvi::fit::{Fit, FitConfig, Parallelism, fit};
use iwhvi::guide::{HierarchicalGuide, MixingGroups, ParamLayout, Workspace, WorkspaceLens};
use iwhvi::objective::{Diwhvi, StepNoise, per_point_bound};
use iwhvi::optim::Adam;
use iwhvi::scalar::Scalar;
use iwhvi::variational;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::fixtures::{ContextMixing, Local, local, random_params};

/// A learned `q(ψ_j | y_j, sigma_j) = N(mix_j(0), exp mix_j(1))`.
#[variational(guide = Local)]
struct Learned {
    #[param(init = 0.5)]
    a: f64,
    #[param(init = 0.0)]
    r: f64,
    #[param(init = 0.0)]
    log_rho: f64,
    #[encoder(input = [y[j], sigma[j]], hidden = [8], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[encoder(input = [y[j], sigma[j]], hidden = [4], activation = tanh, outputs = 2)]
    mix: Mlp,
    #[mixing(Normal(mix(j)[0], mix(j)[1].exp()), len = z, for j)]
    #[reverse(Normal(r * z[j], log_rho.exp()), for j)]
    psi: Vec<f64>,
    #[latent(Normal(enc(j)[0] + a * psi[j], enc(j)[1].exp()), for j)]
    z: Vec<f64>,
}

/// `ψ_j ~ N(0, 1)`, two per-point variables.
#[variational(guide = Local)]
struct Standard {
    #[param(init = 0.5)]
    a: f64,
    #[param(init = 0.2)]
    b: f64,
    #[param(init = 0.0)]
    log_rho: f64,
    #[encoder(input = [y[j], sigma[j]], hidden = [8], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[mixing(len = z, for j)]
    #[reverse(Normal(0.5 * z[j], log_rho.exp()), for j)]
    psi0: Vec<f64>,
    #[mixing(len = z, for j)]
    #[reverse(Normal(-0.5 * z[j], log_rho.exp()), for j)]
    psi1: Vec<f64>,
    #[latent(Normal(enc(j)[0] + a * psi0[j] + b * psi1[j], enc(j)[1].exp()), for j)]
    z: Vec<f64>,
}

/// A reverse model that reads another point's latent: its groups would
/// read a stale coordinate, so it draws whole.
#[variational(guide = Local)]
struct ReadsPointZero {
    #[param(init = 0.0)]
    log_rho: f64,
    #[encoder(input = [y[j], sigma[j]], hidden = [8], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[mixing(len = z, for j)]
    #[reverse(Normal(0.5 * z[0], log_rho.exp()), for j)]
    psi: Vec<f64>,
    #[latent(Normal(enc(j)[0] + psi[j], enc(j)[1].exp()), for j)]
    z: Vec<f64>,
}

const Y: [f64; 7] = [1.2, -0.4, 2.5, 0.3, -1.8, 0.9, 0.1];
const SIGMA: [f64; 7] = [0.5, 1.0, 0.8, 1.5, 0.6, 1.2, 0.7];
const BATCH: [usize; 3] = [5, 0, 3];

fn model() -> Local {
    local(&Y, &SIGMA)
}

fn normals(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| iwhvi::__private::normal_init(&mut rng, 1.0))
        .collect()
}

#[test]
fn the_per_point_guides_draw_by_group_unless_a_group_reads_another_point() {
    let model = model();
    assert!(Learned::new(&model).unwrap().samples_by_group());
    assert!(Standard::new(&model).unwrap().samples_by_group());
    assert!(ContextMixing::new(&model).unwrap().samples_by_group());
    assert!(!ReadsPointZero::new(&model).unwrap().samples_by_group());
}

/// `noise` with every entry outside `keep` made NaN.
fn only(noise: &[f64], keep: &[usize]) -> Vec<f64> {
    let mut kept = vec![f64::NAN; noise.len()];
    for &i in keep {
        kept[i] = noise[i];
    }
    kept
}

/// Each batch point's `ψ_j` and `z_j` drawn by group on a workspace
/// prepared for the batch alone, from the noise entries the guide reports
/// for the batch's groups (`group_noise`; the other entries NaN), are
/// the whole draw's bits; the other points are never written. The whole
/// draw from those entries alone has the batch's points right too.
fn group_draws_match_the_whole_draw<G: HierarchicalGuide>(guide: &G, seed: u64) {
    assert!(guide.samples_by_group());
    let params = random_params(guide, seed);
    let all_mixing = normals(guide.mixing_noise_dim(), seed + 1);
    let all_noise = normals(guide.conditional_noise_dim(), seed + 2);
    let (mut mixing_entries, mut entries) = (Vec::new(), Vec::new());
    for &j in &BATCH {
        assert!(guide.group_noise(j, &mut mixing_entries, &mut entries));
    }
    assert_eq!(entries.len(), BATCH.len(), "one normal per latent");
    let mixing_noise = only(&all_mixing, &mixing_entries);
    let noise = only(&all_noise, &entries);
    let mut ws = Workspace::new(guide);
    guide.prepare(&params, &mut ws);
    let mut whole_psi = vec![0.0; guide.mixing_dim()];
    guide.sample_mixing_prepared(&params, &all_mixing, &mut whole_psi, &mut ws);
    let mut whole = vec![0.0; guide.latent_dim()];
    guide.sample_conditional(&params, &whole_psi, &all_noise, &mut whole, &mut ws);
    let groups = guide.mixing_groups().unwrap().groups().to_vec();
    let mut kept_psi = vec![0.0; guide.mixing_dim()];
    guide.sample_mixing_prepared(&params, &mixing_noise, &mut kept_psi, &mut ws);
    let mut kept = vec![0.0; guide.latent_dim()];
    guide.sample_conditional(&params, &kept_psi, &noise, &mut kept, &mut ws);
    for &j in &BATCH {
        let coordinates = groups[j].psi.clone().map(|i| (i, &kept_psi, &whole_psi));
        let latents = groups[j].latents.iter().map(|&i| (i, &kept, &whole));
        for (i, got, want) in coordinates.chain(latents) {
            assert_eq!(got[i].to_bits(), want[i].to_bits(), "point {j}, {i}");
        }
    }
    assert_eq!(groups.len(), Y.len());
    let mut partial = Workspace::new(guide);
    guide.prepare_groups(&params, &BATCH, &mut partial);
    let mut psi = vec![f64::NAN; guide.mixing_dim()];
    let mut u = vec![f64::NAN; guide.latent_dim()];
    for &j in &BATCH {
        guide.sample_mixing_group(&params, j, &mixing_noise, &mut psi, &mut partial);
        let at = groups[j].psi.clone();
        guide.sample_conditional_group(&params, j, &psi[at], &noise, &mut u, &mut partial);
    }
    for (j, group) in groups.iter().enumerate() {
        let coordinates = group.psi.clone().map(|i| (i, &psi, &whole_psi));
        let latents = group.latents.iter().map(|&i| (i, &u, &whole));
        for (i, got, want) in coordinates.chain(latents) {
            if BATCH.contains(&j) {
                assert_eq!(got[i].to_bits(), want[i].to_bits(), "point {j}, {i}");
            } else {
                assert!(
                    got[i].is_nan(),
                    "point {j} is outside the batch but was drawn"
                );
            }
        }
    }
    // The batch's group densities on the partly prepared workspace (the
    // reverse model's context at the batch's points alone) are those on
    // the whole one.
    guide.prepare_reverse(&params, &whole, &mut ws);
    guide.prepare_reverse(&params, &whole, &mut partial);
    let reverse = normals(guide.reverse_noise_dim(), seed + 3);
    for &j in &BATCH {
        let at = groups[j].psi.clone();
        let (p, mut tau_partial, mut tau) = (
            &whole_psi[at.clone()],
            vec![0.0; at.len()],
            vec![0.0; at.len()],
        );
        let pairs = [
            (
                guide.log_conditional_group(&params, j, p, &whole, &mut partial),
                guide.log_conditional_group(&params, j, p, &whole, &mut ws),
            ),
            (
                guide.log_mixing_group(&params, j, p, &mut partial),
                guide.log_mixing_group(&params, j, p, &mut ws),
            ),
            (
                guide.log_reverse_group(&params, j, &whole, p, &mut partial),
                guide.log_reverse_group(&params, j, &whole, p, &mut ws),
            ),
        ];
        for (got, want) in pairs {
            assert_eq!(got.to_bits(), want.to_bits(), "point {j}: {got} vs {want}");
        }
        let r = &reverse[at];
        guide.sample_reverse_group(&params, j, &whole, r, &mut tau_partial, &mut partial);
        guide.sample_reverse_group(&params, j, &whole, r, &mut tau, &mut ws);
        assert_eq!(tau_partial, tau, "point {j}");
    }
    // Whole-vector methods on the partly prepared workspace compute for
    // themselves.
    let lr_partial = guide.log_reverse(&params, &whole, &whole_psi, &mut partial);
    let lr = guide.log_reverse(&params, &whole, &whole_psi, &mut ws);
    assert_eq!(lr_partial.to_bits(), lr.to_bits());
}

#[test]
fn a_groups_draw_is_the_whole_draws_bits() {
    let model = model();
    group_draws_match_the_whole_draw(&Learned::new(&model).unwrap(), 10);
    group_draws_match_the_whole_draw(&Standard::new(&model).unwrap(), 20);
    group_draws_match_the_whole_draw(&ContextMixing::new(&model).unwrap(), 30);
}

/// `G` drawing by group (`by_group`) or whole, with a count of its whole
/// preparations and draws and a record of the groups it drew.
struct Probe<G> {
    inner: G,
    by_group: bool,
    prepared: AtomicUsize,
    whole_draws: AtomicUsize,
    drawn: Mutex<Vec<usize>>,
}

impl<G> Probe<G> {
    fn new(inner: G, by_group: bool) -> Self {
        Self {
            inner,
            by_group,
            prepared: AtomicUsize::new(0),
            whole_draws: AtomicUsize::new(0),
            drawn: Mutex::new(Vec::new()),
        }
    }
}

impl<G: HierarchicalGuide> HierarchicalGuide for Probe<G> {
    fn latent_dim(&self) -> usize {
        self.inner.latent_dim()
    }
    fn mixing_dim(&self) -> usize {
        self.inner.mixing_dim()
    }
    fn has_reverse_model(&self) -> bool {
        self.inner.has_reverse_model()
    }
    fn param_layout(&self) -> ParamLayout {
        self.inner.param_layout()
    }
    fn init_params<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<f64> {
        self.inner.init_params(rng)
    }
    fn mixing_noise_dim(&self) -> usize {
        self.inner.mixing_noise_dim()
    }
    fn conditional_noise_dim(&self) -> usize {
        self.inner.conditional_noise_dim()
    }
    fn reverse_noise_dim(&self) -> usize {
        self.inner.reverse_noise_dim()
    }
    fn reverse_params(&self) -> std::ops::Range<usize> {
        self.inner.reverse_params()
    }
    fn workspace_lens(&self) -> WorkspaceLens {
        self.inner.workspace_lens()
    }
    fn prepare<T: Scalar>(&self, params: &[T], workspace: &mut Workspace<T>) {
        self.prepared.fetch_add(1, Ordering::Relaxed);
        self.inner.prepare(params, workspace);
    }
    fn prepare_reverse<T: Scalar>(&self, params: &[T], u: &[T], workspace: &mut Workspace<T>) {
        self.inner.prepare_reverse(params, u, workspace);
    }
    fn sample_mixing<T: Scalar>(&self, params: &[T], noise: &[f64], psi: &mut [T]) {
        self.whole_draws.fetch_add(1, Ordering::Relaxed);
        self.inner.sample_mixing(params, noise, psi);
    }
    fn log_mixing<T: Scalar>(&self, params: &[T], psi: &[T]) -> T {
        self.inner.log_mixing(params, psi)
    }
    fn sample_mixing_prepared<T: Scalar>(
        &self,
        params: &[T],
        noise: &[f64],
        psi: &mut [T],
        workspace: &mut Workspace<T>,
    ) {
        self.whole_draws.fetch_add(1, Ordering::Relaxed);
        self.inner
            .sample_mixing_prepared(params, noise, psi, workspace);
    }
    fn log_mixing_prepared<T: Scalar>(&self, params: &[T], psi: &[T], ws: &mut Workspace<T>) -> T {
        self.inner.log_mixing_prepared(params, psi, ws)
    }
    fn sample_conditional<T: Scalar>(
        &self,
        params: &[T],
        psi: &[T],
        noise: &[f64],
        u: &mut [T],
        workspace: &mut Workspace<T>,
    ) {
        self.whole_draws.fetch_add(1, Ordering::Relaxed);
        self.inner
            .sample_conditional(params, psi, noise, u, workspace);
    }
    fn log_conditional<T: Scalar>(
        &self,
        params: &[T],
        psi: &[T],
        u: &[T],
        ws: &mut Workspace<T>,
    ) -> T {
        self.inner.log_conditional(params, psi, u, ws)
    }
    fn sample_reverse<T: Scalar>(
        &self,
        params: &[T],
        u: &[T],
        noise: &[f64],
        psi: &mut [T],
        workspace: &mut Workspace<T>,
    ) {
        self.inner.sample_reverse(params, u, noise, psi, workspace);
    }
    fn log_reverse<T: Scalar>(&self, params: &[T], u: &[T], psi: &[T], ws: &mut Workspace<T>) -> T {
        self.inner.log_reverse(params, u, psi, ws)
    }
    fn mixing_groups(&self) -> Option<&MixingGroups> {
        self.inner.mixing_groups()
    }
    fn log_conditional_group<T: Scalar>(
        &self,
        params: &[T],
        group: usize,
        psi: &[T],
        u: &[T],
        workspace: &mut Workspace<T>,
    ) -> T {
        self.inner
            .log_conditional_group(params, group, psi, u, workspace)
    }
    fn log_mixing_group<T: Scalar>(
        &self,
        params: &[T],
        group: usize,
        psi: &[T],
        workspace: &mut Workspace<T>,
    ) -> T {
        self.inner.log_mixing_group(params, group, psi, workspace)
    }
    fn sample_reverse_group<T: Scalar>(
        &self,
        params: &[T],
        group: usize,
        u: &[T],
        noise: &[f64],
        psi: &mut [T],
        workspace: &mut Workspace<T>,
    ) {
        self.inner
            .sample_reverse_group(params, group, u, noise, psi, workspace);
    }
    fn log_reverse_group<T: Scalar>(
        &self,
        params: &[T],
        group: usize,
        u: &[T],
        psi: &[T],
        workspace: &mut Workspace<T>,
    ) -> T {
        self.inner
            .log_reverse_group(params, group, u, psi, workspace)
    }
    fn samples_by_group(&self) -> bool {
        self.by_group && self.inner.samples_by_group()
    }
    fn prepare_groups<T: Scalar>(&self, params: &[T], groups: &[usize], ws: &mut Workspace<T>) {
        self.inner.prepare_groups(params, groups, ws);
    }
    fn sample_mixing_group<T: Scalar>(
        &self,
        params: &[T],
        group: usize,
        noise: &[f64],
        psi: &mut [T],
        workspace: &mut Workspace<T>,
    ) {
        self.inner
            .sample_mixing_group(params, group, noise, psi, workspace);
    }
    fn sample_conditional_group<T: Scalar>(
        &self,
        params: &[T],
        group: usize,
        psi: &[T],
        noise: &[f64],
        u: &mut [T],
        workspace: &mut Workspace<T>,
    ) {
        self.drawn.lock().unwrap().push(group);
        self.inner
            .sample_conditional_group(params, group, psi, noise, u, workspace);
    }
    // Whether it draws by group or whole: each point's draw reads the
    // entries the inner guide reports, so that a minibatch step draws the
    // same noise (its batch's entries) either way.
    fn group_noise(
        &self,
        group: usize,
        mixing: &mut Vec<usize>,
        conditional: &mut Vec<usize>,
    ) -> bool {
        self.inner.group_noise(group, mixing, conditional)
    }
}

/// The per-point bound on `BATCH` (M = 3, K = 4) by group is the whole
/// draw's, bit for bit; the group path prepares and draws nothing whole
/// and draws the batch's points alone, once per outer draw.
fn bound_by_group_is_the_whole_bound<G: HierarchicalGuide>(make: impl Fn() -> G, seed: u64) {
    let model = model();
    let (by_group, whole) = (Probe::new(make(), true), Probe::new(make(), false));
    let params = random_params(&by_group, seed);
    let mut rng = StdRng::seed_from_u64(seed + 1);
    let noise = StepNoise::draw(&by_group, Diwhvi::new(3, 4), &mut rng);
    let got = per_point_bound(&model, &by_group, &params, &noise, &BATCH).unwrap();
    let want = per_point_bound(&model, &whole, &params, &noise, &BATCH).unwrap();
    assert!(got.is_finite());
    assert_eq!(got.to_bits(), want.to_bits(), "{got} vs {want}");
    assert_eq!(by_group.prepared.load(Ordering::Relaxed), 0);
    assert_eq!(by_group.whole_draws.load(Ordering::Relaxed), 0);
    let drawn = by_group.drawn.lock().unwrap().clone();
    assert_eq!(drawn, [BATCH; 3].concat());
    assert!(whole.prepared.load(Ordering::Relaxed) > 0);
    assert_eq!(whole.whole_draws.load(Ordering::Relaxed), 2 * 3);
    assert!(whole.drawn.lock().unwrap().is_empty());
}

#[test]
fn the_per_point_bound_by_group_is_the_whole_draws_bits() {
    let model = model();
    bound_by_group_is_the_whole_bound(|| Learned::new(&model).unwrap(), 40);
    bound_by_group_is_the_whole_bound(|| Standard::new(&model).unwrap(), 50);
    bound_by_group_is_the_whole_bound(|| ContextMixing::new(&model).unwrap(), 60);
}

fn minibatch_fit<G: HierarchicalGuide>(guide: &G, steps: usize, threads: Parallelism) -> Fit {
    let config = FitConfig::new(Diwhvi::new(3, 4))
        .batch_size(3)
        .max_steps(steps)
        .seed(7)
        .full_bound(false)
        .parallelism(threads)
        .progress(false);
    fit(&model(), guide, Adam::new(0.02), &config).expect("a minibatch fit on the per-point bound")
}

fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// A minibatch fit's steps (their gradients) by group are the whole
/// draw's bits, and reproduce on one and two threads; its steps prepare
/// no point outside their batch (the fit's setup prepares the whole guide
/// as often with 12 steps as with 4) and draw their batch's points alone.
fn fit_by_group_is_the_whole_fit<G: HierarchicalGuide>(make: impl Fn() -> G) {
    let by_group = Probe::new(make(), true);
    let one = minibatch_fit(&by_group, 12, Parallelism::SingleThread);
    let fewer = Probe::new(make(), true);
    minibatch_fit(&fewer, 4, Parallelism::SingleThread);
    let prepared = by_group.prepared.load(Ordering::Relaxed);
    assert_eq!(
        prepared,
        fewer.prepared.load(Ordering::Relaxed),
        "the steps prepared every point"
    );
    // Each evaluation draws its batch (3 distinct points) at each of the 3
    // outer draws; the steps evaluate as often each.
    let drawn = by_group.drawn.lock().unwrap().clone();
    assert_eq!(drawn.len() % 9, 0, "{drawn:?}");
    assert_eq!(drawn.len(), 3 * fewer.drawn.lock().unwrap().len());
    for batch in drawn.chunks(3) {
        assert!(batch[0] != batch[1] && batch[1] != batch[2] && batch[0] != batch[2]);
    }
    let whole_probe = Probe::new(make(), false);
    let whole = minibatch_fit(&whole_probe, 12, Parallelism::SingleThread);
    assert!(whole_probe.prepared.load(Ordering::Relaxed) >= prepared + 12);
    assert_eq!(bits(&one.params), bits(&whole.params));
    assert_eq!(one.trace, whole.trace);
    // Rayon's global pool: as many threads as cores (two here).
    let two = minibatch_fit(&Probe::new(make(), true), 12, Parallelism::AllCores);
    assert_eq!(bits(&one.params), bits(&two.params));
    assert_eq!(one.trace, two.trace);
}

#[test]
fn a_minibatch_fit_by_group_is_the_whole_fits_bits_on_one_and_two_threads() {
    let model = model();
    fit_by_group_is_the_whole_fit(|| Learned::new(&model).unwrap());
    fit_by_group_is_the_whole_fit(|| Standard::new(&model).unwrap());
    fit_by_group_is_the_whole_fit(|| ContextMixing::new(&model).unwrap());
}
