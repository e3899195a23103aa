//! The batch path of an amortised guide (session 14): a `#[variational]`
//! guide whose conditionals are all per point and `Normal` draws and
//! evaluates a minibatch's groups as a few vector operations
//! (`HierarchicalGuide::sample_conditional_groups`,
//! `log_conditional_groups`). Checked against the per-group path (the
//! trait's default loops, through a wrapper that forwards every other
//! method): the draws, the densities and their gradients on the tape (the
//! same bits) and in forward mode (to 1e-12), the per-point bound's values
//! and minibatch fits on the tape (the same bits); a guide with a
//! per-point mixing variable keeps the per-group path.

use iwhvi::fit::{Engine, Fit, FitConfig, fit};
use iwhvi::guide::{HierarchicalGuide, MixingGroups, ParamLayout, Workspace, WorkspaceLens};
use iwhvi::objective::{Diwhvi, StepNoise, per_point_bound};
use iwhvi::optim::Adam;
use iwhvi::tape::TapeEngine;
use iwhvi::{Differentiable, ForwardEngine, Scalar, variational};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `z_j, w_j ~ N(0, 1)`, `y_j ~ N(z_j + w_j, sigma_j)`: two local latents.
#[variational]
struct Pair {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    z: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    w: Vec<f64>,
    #[observe(Normal(z[j] + w[j], sigma[j]), for j)]
    y: Vec<f64>,
}

/// The macro VAE's encoder shape: two `Normal` conditionals per point.
#[variational(guide = Pair)]
struct PairEncoder {
    #[encoder(input = [y[j], sigma[j]], hidden = [5], activation = tanh, outputs = 4)]
    enc: Mlp,
    #[latent(Normal(enc(j)[0], enc(j)[2].exp()), for j)]
    z: Vec<f64>,
    #[latent(Normal(enc(j)[1] - 0.5, enc(j)[3].exp() + 0.01), for j)]
    w: Vec<f64>,
}

/// A scale shared by every point (a parameter): its adjoint sums the
/// points' terms, which the vector operation adds in another order than
/// the scalar path's sweep (within rounding).
#[variational(guide = Pair)]
struct PairShared {
    #[param(init = -0.5)]
    log_sd: f64,
    #[encoder(input = [y[j], sigma[j]], hidden = [5], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[latent(Normal(enc(j)[0], log_sd.exp()), for j)]
    z: Vec<f64>,
    #[latent(Normal(enc(j)[1], 0.8), for j)]
    w: Vec<f64>,
}

/// A per-point mixing variable: the groups have mixing coordinates, and
/// the per-group path stays.
#[variational(guide = Pair)]
struct PairMixing {
    #[param(init = 0.5)]
    a: f64,
    #[encoder(input = [y[j], sigma[j]], hidden = [4], activation = tanh, outputs = 4)]
    enc: Mlp,
    #[mixing(len = z, for j)]
    #[reverse(Normal(0.5 * z[j], 1.0), for j)]
    psi: Vec<f64>,
    #[latent(Normal(enc(j)[0] + a * psi[j], enc(j)[2].exp()), for j)]
    z: Vec<f64>,
    #[latent(Normal(enc(j)[1] - psi[j], enc(j)[3].exp()), for j)]
    w: Vec<f64>,
}

const Y: [f64; 7] = [1.2, -0.4, 2.5, 0.3, -1.8, 0.9, 0.1];
const SIGMA: [f64; 7] = [0.5, 1.0, 0.8, 1.5, 0.6, 1.2, 0.7];

fn model() -> Pair {
    Pair::new(SIGMA.to_vec(), Y.to_vec()).unwrap()
}

fn random_params<G: HierarchicalGuide>(guide: &G, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..guide.param_layout().len())
        .map(|_| iwhvi::__private::normal_init(&mut rng, 0.4))
        .collect()
}

/// `G` with the trait's default batch methods (a loop over the per-group
/// ones): every other method forwarded.
struct PerGroup<G>(G);

impl<G: HierarchicalGuide> HierarchicalGuide for PerGroup<G> {
    fn latent_dim(&self) -> usize {
        self.0.latent_dim()
    }
    fn mixing_dim(&self) -> usize {
        self.0.mixing_dim()
    }
    fn has_reverse_model(&self) -> bool {
        self.0.has_reverse_model()
    }
    fn param_layout(&self) -> ParamLayout {
        self.0.param_layout()
    }
    fn init_params<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<f64> {
        self.0.init_params(rng)
    }
    fn mixing_noise_dim(&self) -> usize {
        self.0.mixing_noise_dim()
    }
    fn conditional_noise_dim(&self) -> usize {
        self.0.conditional_noise_dim()
    }
    fn reverse_noise_dim(&self) -> usize {
        self.0.reverse_noise_dim()
    }
    fn reverse_params(&self) -> std::ops::Range<usize> {
        self.0.reverse_params()
    }
    fn workspace_lens(&self) -> WorkspaceLens {
        self.0.workspace_lens()
    }
    fn prepare<T: Scalar>(&self, p: &[T], ws: &mut Workspace<T>) {
        self.0.prepare(p, ws);
    }
    fn prepare_reverse<T: Scalar>(&self, p: &[T], u: &[T], ws: &mut Workspace<T>) {
        self.0.prepare_reverse(p, u, ws);
    }
    fn sample_mixing<T: Scalar>(&self, p: &[T], noise: &[f64], psi: &mut [T]) {
        self.0.sample_mixing(p, noise, psi);
    }
    fn log_mixing<T: Scalar>(&self, p: &[T], psi: &[T]) -> T {
        self.0.log_mixing(p, psi)
    }
    fn sample_mixing_prepared<T: Scalar>(
        &self,
        p: &[T],
        noise: &[f64],
        psi: &mut [T],
        ws: &mut Workspace<T>,
    ) {
        self.0.sample_mixing_prepared(p, noise, psi, ws);
    }
    fn log_mixing_prepared<T: Scalar>(&self, p: &[T], psi: &[T], ws: &mut Workspace<T>) -> T {
        self.0.log_mixing_prepared(p, psi, ws)
    }
    fn sample_conditional<T: Scalar>(
        &self,
        p: &[T],
        psi: &[T],
        noise: &[f64],
        u: &mut [T],
        ws: &mut Workspace<T>,
    ) {
        self.0.sample_conditional(p, psi, noise, u, ws);
    }
    fn log_conditional<T: Scalar>(&self, p: &[T], psi: &[T], u: &[T], ws: &mut Workspace<T>) -> T {
        self.0.log_conditional(p, psi, u, ws)
    }
    fn sample_reverse<T: Scalar>(
        &self,
        p: &[T],
        u: &[T],
        noise: &[f64],
        psi: &mut [T],
        ws: &mut Workspace<T>,
    ) {
        self.0.sample_reverse(p, u, noise, psi, ws);
    }
    fn log_reverse<T: Scalar>(&self, p: &[T], u: &[T], psi: &[T], ws: &mut Workspace<T>) -> T {
        self.0.log_reverse(p, u, psi, ws)
    }
    fn mixing_groups(&self) -> Option<&MixingGroups> {
        self.0.mixing_groups()
    }
    fn log_conditional_group<T: Scalar>(
        &self,
        p: &[T],
        group: usize,
        psi: &[T],
        u: &[T],
        ws: &mut Workspace<T>,
    ) -> T {
        self.0.log_conditional_group(p, group, psi, u, ws)
    }
    fn log_mixing_group<T: Scalar>(
        &self,
        p: &[T],
        group: usize,
        psi: &[T],
        ws: &mut Workspace<T>,
    ) -> T {
        self.0.log_mixing_group(p, group, psi, ws)
    }
    fn sample_reverse_group<T: Scalar>(
        &self,
        p: &[T],
        group: usize,
        u: &[T],
        noise: &[f64],
        psi: &mut [T],
        ws: &mut Workspace<T>,
    ) {
        self.0.sample_reverse_group(p, group, u, noise, psi, ws);
    }
    fn log_reverse_group<T: Scalar>(
        &self,
        p: &[T],
        group: usize,
        u: &[T],
        psi: &[T],
        ws: &mut Workspace<T>,
    ) -> T {
        self.0.log_reverse_group(p, group, u, psi, ws)
    }
    fn samples_by_group(&self) -> bool {
        self.0.samples_by_group()
    }
    fn prepare_groups<T: Scalar>(&self, p: &[T], groups: &[usize], ws: &mut Workspace<T>) {
        self.0.prepare_groups(p, groups, ws);
    }
    fn sample_mixing_group<T: Scalar>(
        &self,
        p: &[T],
        group: usize,
        noise: &[f64],
        psi: &mut [T],
        ws: &mut Workspace<T>,
    ) {
        self.0.sample_mixing_group(p, group, noise, psi, ws);
    }
    fn sample_conditional_group<T: Scalar>(
        &self,
        p: &[T],
        group: usize,
        psi: &[T],
        noise: &[f64],
        u: &mut [T],
        ws: &mut Workspace<T>,
    ) {
        self.0.sample_conditional_group(p, group, psi, noise, u, ws);
    }
    fn group_noise(&self, group: usize, mixing: &mut Vec<usize>, cond: &mut Vec<usize>) -> bool {
        self.0.group_noise(group, mixing, cond)
    }
}

/// A batch's draws and densities as a function of the parameters:
/// `Σ_j log q(u_j) + Σ_i c_i u_i` (the draws' own term, so that their
/// derivatives count too), by the guide's batch methods.
struct BatchTerms<'a, G> {
    guide: &'a G,
    batch: &'a [usize],
    noise: &'a [f64],
}

impl<G: HierarchicalGuide> Differentiable for BatchTerms<'_, G> {
    fn eval<T: Scalar>(&self, params: &[T]) -> T {
        let (guide, batch) = (self.guide, self.batch);
        let mut ws = Workspace::new(guide);
        guide.prepare_groups(params, batch, &mut ws);
        let mut u = vec![T::constant(0.0); guide.latent_dim()];
        guide.sample_conditional_groups(params, batch, self.noise, &mut u, &mut ws);
        let mut densities = Vec::new();
        guide.log_conditional_groups(params, batch, &u, &mut ws, &mut densities);
        assert_eq!(densities.len(), batch.len());
        let n = Y.len();
        let mut total = T::constant(0.0);
        for (k, &j) in batch.iter().enumerate() {
            total += densities[k];
            total += u[j] * (0.3 + 0.1 * k as f64) - u[n + j] * 0.7;
        }
        total
    }
}

fn noise(len: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len)
        .map(|_| iwhvi::__private::normal_init(&mut rng, 1.0))
        .collect()
}

#[test]
fn the_batch_methods_are_the_per_group_methods_bit_for_bit_on_f64_and_the_tape() {
    let model = model();
    let batched = PairEncoder::new(&model).unwrap();
    let per_group = PerGroup(PairEncoder::new(&model).unwrap());
    assert_same_as_per_group(&batched, &per_group);
}

/// `z_j` with Stan's affine transform (`offset`, `multiplier`: real
/// support, not the identity), `w_j` on its own; as [`Pair`] otherwise.
#[variational]
struct AffinePair {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(1.0, 2.0), len = sigma.len(), offset = 1.0, multiplier = 2.0)]
    z: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    w: Vec<f64>,
    #[observe(Normal(z[j] + w[j], sigma[j]), for j)]
    y: Vec<f64>,
}

/// A `Normal` over the affine latent itself: at run time its transform
/// is not the identity, and the batch methods take the per-group loop.
#[variational(guide = AffinePair)]
struct AffineEncoder {
    #[encoder(input = [y[j], sigma[j]], hidden = [5], activation = tanh, outputs = 4)]
    enc: Mlp,
    #[latent(Normal(enc(j)[0], enc(j)[2].exp()), for j)]
    z: Vec<f64>,
    #[latent(Normal(enc(j)[1], enc(j)[3].exp()), for j)]
    w: Vec<f64>,
}

/// `z_j` positive (a half-normal prior, its log transform), `w_j` real.
#[variational]
struct PositivePair {
    #[data]
    sigma: Vec<f64>,
    #[latent(HalfNormal(1.0), len = sigma.len())]
    z: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    w: Vec<f64>,
    #[observe(Normal(z[j] + w[j], sigma[j]), for j)]
    y: Vec<f64>,
}

/// A `Normal` over the positive latent's unconstrained coordinates
/// (`#[unconstrained]`): the batch path, the latent's own transform
/// applied outside the guide.
#[variational(guide = PositivePair)]
struct PositiveEncoder {
    #[encoder(input = [y[j], sigma[j]], hidden = [5], activation = tanh, outputs = 4)]
    enc: Mlp,
    #[latent(Normal(enc(j)[0], enc(j)[2].exp()), for j)]
    #[unconstrained]
    z: Vec<f64>,
    #[latent(Normal(enc(j)[1], enc(j)[3].exp()), for j)]
    w: Vec<f64>,
}

#[test]
fn a_transformed_latent_keeps_the_per_group_bits_on_either_path() {
    let affine = AffinePair::new(SIGMA.to_vec(), Y.to_vec()).unwrap();
    let batched = AffineEncoder::new(&affine).unwrap();
    assert_same_as_per_group(&batched, &PerGroup(AffineEncoder::new(&affine).unwrap()));
    let positive = PositivePair::new(SIGMA.to_vec(), Y.to_vec()).unwrap();
    let batched = PositiveEncoder::new(&positive).unwrap();
    assert_same_as_per_group(
        &batched,
        &PerGroup(PositiveEncoder::new(&positive).unwrap()),
    );
    // And the per-point bound of either model through its guide's batch
    // path and through the loop: the same bits.
    let noise = StepNoise::draw(&batched, Diwhvi::elbo(), &mut StdRng::seed_from_u64(5));
    let params = random_params(&batched, 6);
    let per_group = PerGroup(PositiveEncoder::new(&positive).unwrap());
    let a = per_point_bound(&positive, &batched, &params, &noise, &[3, 1]).unwrap();
    let b = per_point_bound(&positive, &per_group, &params, &noise, &[3, 1]).unwrap();
    assert_eq!(a.to_bits(), b.to_bits());
    assert!(a.is_finite());
}

/// `batched`'s batch methods against the trait's loops over its
/// per-group methods (`per_group`): the draws and densities on f64 and
/// their tape value and gradient, bit for bit; forward mode to 1e-12.
fn assert_same_as_per_group<G: HierarchicalGuide>(batched: &G, per_group: &PerGroup<G>) {
    assert!(batched.samples_by_group() && batched.mixing_dim() == 0);
    let eps = noise(batched.conditional_noise_dim(), 3);
    for (seed, batch) in [
        (1, vec![4, 0, 2]),
        (2, (0..Y.len()).collect()),
        (3, vec![6]),
    ] {
        let params = random_params(batched, seed);
        // f64: the draws and the densities themselves.
        let (mut ws, mut ws_loop) = (Workspace::new(batched), Workspace::new(batched));
        batched.prepare_groups(&params, &batch, &mut ws);
        batched.prepare_groups(&params, &batch, &mut ws_loop);
        let mut u = vec![f64::NAN; batched.latent_dim()];
        let mut u_loop = u.clone();
        batched.sample_conditional_groups(&params, &batch, &eps, &mut u, &mut ws);
        per_group.sample_conditional_groups(&params, &batch, &eps, &mut u_loop, &mut ws_loop);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&u), bits(&u_loop), "{seed}: draws");
        let (mut lq, mut lq_loop) = (Vec::new(), Vec::new());
        batched.log_conditional_groups(&params, &batch, &u, &mut ws, &mut lq);
        per_group.log_conditional_groups(&params, &batch, &u, &mut ws_loop, &mut lq_loop);
        assert_eq!(bits(&lq), bits(&lq_loop), "{seed}: densities");
        // The tape: the same value and gradient bits.
        let terms = BatchTerms {
            guide: batched,
            batch: &batch,
            noise: &eps,
        };
        let terms_loop = BatchTerms {
            guide: per_group,
            batch: &batch,
            noise: &eps,
        };
        let (value, gradient) = TapeEngine.value_and_gradient(&terms, &params);
        let (value_loop, gradient_loop) = TapeEngine.value_and_gradient(&terms_loop, &params);
        assert_eq!(value.to_bits(), value_loop.to_bits(), "{seed}: tape value");
        assert_eq!(
            bits(&gradient),
            bits(&gradient_loop),
            "{seed}: tape gradient"
        );
        assert!(gradient.iter().any(|&g| g != 0.0));
        // Forward mode: the same value, the gradient to 1e-12 (the vector
        // operation sums each output's tangent in its own order).
        let (value, gradient) = ForwardEngine::<4>::new().value_and_gradient(&terms, &params);
        let (value_loop, gradient_loop) =
            ForwardEngine::<4>::new().value_and_gradient(&terms_loop, &params);
        assert_eq!(
            value.to_bits(),
            value_loop.to_bits(),
            "{seed}: forward value"
        );
        for (i, (a, b)) in gradient.iter().zip(&gradient_loop).enumerate() {
            assert!(
                (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                "{seed}, {i}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn a_rejected_scale_draws_nan_and_has_density_minus_infinity_on_both_paths() {
    let model = model();
    let batched = PairEncoder::new(&model).unwrap();
    let per_group = PerGroup(PairEncoder::new(&model).unwrap());
    let mut params = random_params(&batched, 9);
    // A huge last-layer bias of output 2 makes `enc(j)[2].exp()` infinite:
    // `Normal` rejects the scale at every point.
    let bias = batched.param_layout().len() - 4 + 2;
    params[bias] = 1e6;
    let eps = noise(batched.conditional_noise_dim(), 10);
    let batch = [1, 5];
    let at = vec![0.5; batched.latent_dim()];
    let mut ws = Workspace::new(&batched);
    batched.prepare_groups(&params, &batch, &mut ws);
    let (mut u, mut u_loop) = (vec![0.0; at.len()], vec![0.0; at.len()]);
    batched.sample_conditional_groups(&params, &batch, &eps, &mut u, &mut ws);
    per_group.sample_conditional_groups(&params, &batch, &eps, &mut u_loop, &mut ws);
    let (mut lq, mut lq_loop) = (Vec::new(), Vec::new());
    batched.log_conditional_groups(&params, &batch, &at, &mut ws, &mut lq);
    per_group.log_conditional_groups(&params, &batch, &at, &mut ws, &mut lq_loop);
    let n = Y.len();
    for &j in &batch {
        assert!(u[j].is_nan() && u_loop[j].is_nan(), "{j}");
        assert_eq!(u[n + j].to_bits(), u_loop[n + j].to_bits(), "{j}");
    }
    assert_eq!(lq, vec![f64::NEG_INFINITY; 2]);
    assert_eq!(lq_loop, lq);
}

#[test]
fn the_per_point_bound_is_the_same_bits_through_the_batch_path() {
    let model = model();
    let batched = PairEncoder::new(&model).unwrap();
    let per_group = PerGroup(PairEncoder::new(&model).unwrap());
    let mixing = PairMixing::new(&model).unwrap();
    let mixing_per_group = PerGroup(PairMixing::new(&model).unwrap());
    assert!(mixing.mixing_dim() > 0 && mixing.samples_by_group());
    for (seed, objective) in [
        (1, Diwhvi::elbo()),
        (2, Diwhvi::iwae(3)),
        (3, Diwhvi::new(2, 3)),
    ] {
        for batch in [vec![3, 0, 5], (0..Y.len()).collect()] {
            let mut rng = StdRng::seed_from_u64(seed);
            let noise = StepNoise::draw(&batched, objective, &mut rng);
            let params = random_params(&batched, seed);
            let value = per_point_bound(&model, &batched, &params, &noise, &batch).unwrap();
            let value_loop = per_point_bound(&model, &per_group, &params, &noise, &batch).unwrap();
            assert_eq!(value.to_bits(), value_loop.to_bits(), "{seed} {batch:?}");
            let noise = StepNoise::draw(&mixing, objective, &mut rng);
            let params = random_params(&mixing, seed);
            let value = per_point_bound(&model, &mixing, &params, &noise, &batch).unwrap();
            let value_loop =
                per_point_bound(&model, &mixing_per_group, &params, &noise, &batch).unwrap();
            assert!(value.is_finite());
            assert_eq!(value.to_bits(), value_loop.to_bits(), "{seed} {batch:?}");
        }
    }
}

fn minibatch_fit<G: HierarchicalGuide>(guide: &G, objective: Diwhvi, engine: Engine) -> Fit {
    let config = FitConfig::new(objective)
        .batch_size(3)
        .max_steps(25)
        .seed(7)
        .engine(engine)
        .progress(false);
    fit(&model(), guide, Adam::new(0.02), &config).expect("a minibatch fit")
}

#[test]
fn minibatch_fits_on_the_tape_are_the_same_bits_through_the_batch_path() {
    let model = model();
    let batched = PairEncoder::new(&model).unwrap();
    let per_group = PerGroup(PairEncoder::new(&model).unwrap());
    for objective in [Diwhvi::elbo(), Diwhvi::iwae(3)] {
        let fitted = minibatch_fit(&batched, objective, Engine::Tape);
        let fitted_loop = minibatch_fit(&per_group, objective, Engine::Tape);
        assert_eq!(fitted.params, fitted_loop.params, "{objective:?}");
        assert_eq!(fitted.trace, fitted_loop.trace, "{objective:?}");
        // Forward mode runs the batch path too, within rounding.
        let forward = minibatch_fit(&batched, objective, Engine::Forward);
        let forward_loop = minibatch_fit(&per_group, objective, Engine::Forward);
        for (a, b) in forward.params.iter().zip(&forward_loop.params) {
            assert!((a - b).abs() < 1e-9, "{objective:?}: {a} vs {b}");
        }
    }
}

#[test]
fn a_scale_shared_by_the_points_has_its_gradient_within_rounding() {
    let model = model();
    let batched = PairShared::new(&model).unwrap();
    let per_group = PerGroup(PairShared::new(&model).unwrap());
    let eps = noise(batched.conditional_noise_dim(), 5);
    let batch: Vec<usize> = vec![6, 1, 3, 0];
    let params = random_params(&batched, 6);
    let terms = BatchTerms {
        guide: &batched,
        batch: &batch,
        noise: &eps,
    };
    let terms_loop = BatchTerms {
        guide: &per_group,
        batch: &batch,
        noise: &eps,
    };
    let (value, gradient) = TapeEngine.value_and_gradient(&terms, &params);
    let (value_loop, gradient_loop) = TapeEngine.value_and_gradient(&terms_loop, &params);
    assert_eq!(value.to_bits(), value_loop.to_bits());
    for (i, (a, b)) in gradient.iter().zip(&gradient_loop).enumerate() {
        assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{i}: {a} vs {b}");
    }
    // `log_sd` (the first parameter) reads every point.
    assert!(gradient[0] != 0.0);
}
