//! Amortised guides without mixing variables (issue 16): a guide whose
//! conditionals are all per point (`#[latent(Normal(enc(j)[0],
//! enc(j)[1].exp()), for j)]`) reports one mixing group per point with no
//! mixing coordinates, so that the per-point bound (minibatches with
//! `M > 1`, IWAE) accepts it. Checked: its groups and their densities
//! against a hand-written `log q`, the per-point bound against the ELBO on
//! the same noise (`M = 1`) and against `Σ_n logsumexp_m (…)` by hand
//! (`M > 1`, whole plate and a batch), its draws by group (a minibatch
//! step's `O(b)` path, from the noise entries it reports for its groups)
//! equal to the whole draw bit for bit, a minibatch
//! IWAE fit reproduced bit for bit with one or two threads, and guides
//! with a global latent still reporting no groups.

use iwhvi::Differentiable;
use iwhvi::fit::{Fit, FitConfig, Parallelism, fit};
use iwhvi::guide::{HierarchicalGuide, Workspace};
use iwhvi::objective::{Diwhvi, DiwhviObjective, StepNoise, per_point_bound};
use iwhvi::optim::Adam;
use iwhvi::variational;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// `z_j ~ N(0, 1)`, `tau_j ~ LogNormal(0, 0.5)`, `y_j ~ N(z_j, sigma_j tau_j)`:
/// every latent local, one of them positive.
#[variational]
struct Local {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    z: Vec<f64>,
    #[latent(LogNormal(0.0, 0.5), len = sigma.len())]
    tau: Vec<f64>,
    #[observe(Normal(z[j], sigma[j] * tau[j]), for j)]
    y: Vec<f64>,
}

/// `q(z_j, tau_j | y_j) = N(z_j; h_0, e^{h_1}) LogNormal(tau_j; h_2, e^{h_3})`,
/// `h = enc(y_j, sigma_j)`: a Gaussian encoder, no mixing variable.
#[variational(guide = Local)]
struct Encoded {
    #[encoder(input = [y[j], sigma[j]], hidden = [5], activation = tanh, outputs = 4)]
    enc: Mlp,
    #[latent(Normal(enc(j)[0], enc(j)[1].exp()), for j)]
    z: Vec<f64>,
    #[latent(LogNormal(enc(j)[2], enc(j)[3].exp()), for j)]
    tau: Vec<f64>,
}

/// `Encoded` with a Student-t conditional for `z_j`: its draw reads
/// `1 + ν` normals per point.
#[variational(guide = Local)]
struct EncodedT {
    #[encoder(input = [y[j], sigma[j]], hidden = [5], activation = tanh, outputs = 4)]
    enc: Mlp,
    #[latent(StudentT(4.0, enc(j)[0], enc(j)[1].exp()), for j)]
    z: Vec<f64>,
    #[latent(LogNormal(enc(j)[2], enc(j)[3].exp()), for j)]
    tau: Vec<f64>,
}

/// The same model with a global mean, and a guide for it: not per point.
#[variational]
struct Schools {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    theta: Vec<f64>,
    #[observe(Normal(mu + theta[j], sigma[j]), for j)]
    y: Vec<f64>,
}

#[variational(guide = Schools)]
struct SchoolsEncoded {
    #[param(init = 0.0)]
    mu_loc: f64,
    #[encoder(input = [y[j], sigma[j]], hidden = [4], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[latent(Normal(mu_loc, 1.0))]
    mu: f64,
    #[latent(Normal(enc(j)[0], enc(j)[1].exp()), for j)]
    theta: Vec<f64>,
}

const Y: [f64; 5] = [1.2, -0.4, 2.5, 0.3, -1.8];
const SIGMA: [f64; 5] = [0.5, 1.0, 0.8, 1.5, 0.6];
const HIDDEN: usize = 5;
const OUTPUTS: usize = 4;

fn model() -> Local {
    Local::new(SIGMA.to_vec(), Y.to_vec()).unwrap()
}

fn log_normal_density(x: f64, loc: f64, scale: f64) -> f64 {
    let z = (x - loc) / scale;
    -0.5 * z * z - scale.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
}

/// The encoder by hand: `W0` (2 × H, row-major), `b0`, `W1` (H × 4), `b1`.
fn encoder_by_hand(w: &[f64], x: [f64; 2]) -> [f64; OUTPUTS] {
    let (w0, rest) = w.split_at(2 * HIDDEN);
    let (b0, rest) = rest.split_at(HIDDEN);
    let (w1, b1) = rest.split_at(HIDDEN * OUTPUTS);
    let h: Vec<f64> = (0..HIDDEN)
        .map(|k| (b0[k] + x[0] * w0[k] + x[1] * w0[HIDDEN + k]).tanh())
        .collect();
    let out = |o: usize| b1[o] + (0..HIDDEN).map(|k| h[k] * w1[k * OUTPUTS + o]).sum::<f64>();
    [out(0), out(1), out(2), out(3)]
}

fn random_params<G: HierarchicalGuide>(guide: &G, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..guide.param_layout().len())
        .map(|_| iwhvi::__private::normal_init(&mut rng, 0.4))
        .collect()
}

/// Point `j`'s log weight by hand at unconstrained `(u_z, u_tau)`:
/// `log p(y_j, z_j, u_tau_j) − log q(u_j)` (the model's density of
/// `u_tau = log tau` has the Jacobian `tau`; the guide's is a normal on
/// `log tau`).
fn point_log_weight(params: &[f64], j: usize, u_z: f64, u_tau: f64) -> f64 {
    let tau = u_tau.exp();
    let log_p = log_normal_density(u_z, 0.0, 1.0)
        + log_normal_density(u_tau, 0.0, 0.5)
        + log_normal_density(Y[j], u_z, SIGMA[j] * tau);
    let h = encoder_by_hand(params, [Y[j], SIGMA[j]]);
    let log_q =
        log_normal_density(u_z, h[0], h[1].exp()) + log_normal_density(u_tau, h[2], h[3].exp());
    log_p - log_q
}

/// The outer draws `u_m` of noise drawn by `StepNoise::draw` from `seed`
/// (its buffers filled in order with standard normals: no mixing noise,
/// then `M` rows of conditional noise).
fn outer_draws(guide: &Encoded, params: &[f64], m: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut workspace = Workspace::new(guide);
    (0..m)
        .map(|_| {
            let eps: Vec<f64> = (0..guide.conditional_noise_dim())
                .map(|_| iwhvi::__private::normal_init(&mut rng, 1.0))
                .collect();
            let mut u = vec![0.0; guide.latent_dim()];
            guide.sample_conditional(params, &[], &eps, &mut u, &mut workspace);
            u
        })
        .collect()
}

fn log_sum_exp(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    max + values.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
}

#[test]
fn an_amortised_guide_reports_one_group_per_point_without_mixing() {
    let model = model();
    let guide = Encoded::new(&model).unwrap();
    let n = Y.len();
    assert_eq!((guide.latent_dim(), guide.mixing_dim()), (2 * n, 0));
    let groups = guide
        .mixing_groups()
        .expect("an amortised guide reports groups");
    assert_eq!(groups.len(), n);
    for (j, group) in groups.groups().iter().enumerate() {
        assert!(group.psi.is_empty() && group.reverse_noise.is_empty());
        assert_eq!(group.latents, vec![j, n + j]);
    }
    let params = random_params(&guide, 3);
    let u = &outer_draws(&guide, &params, 1, 4)[0];
    let mut ws = Workspace::new(&guide);
    let mut by_groups = 0.0;
    for j in 0..n {
        let group = guide.log_conditional_group(&params, j, &[], u, &mut ws);
        let h = encoder_by_hand(&params, [Y[j], SIGMA[j]]);
        let want = log_normal_density(u[j], h[0], h[1].exp())
            + log_normal_density(u[n + j], h[2], h[3].exp());
        assert!((group - want).abs() < 1e-10, "{j}: {group} vs {want}");
        by_groups += group;
    }
    let whole = guide.log_conditional(&params, &[], u, &mut ws);
    assert!((by_groups - whole).abs() < 1e-10, "{by_groups} vs {whole}");
}

#[test]
fn with_m_1_the_per_point_bound_is_the_elbo_on_the_same_noise() {
    let model = model();
    let guide = Encoded::new(&model).unwrap();
    let all: Vec<usize> = (0..Y.len()).collect();
    for seed in 0..4 {
        let params = random_params(&guide, 10 + seed);
        let noise = StepNoise::draw(&guide, Diwhvi::elbo(), &mut StdRng::seed_from_u64(seed));
        let elbo = DiwhviObjective::new(&model, &guide, &noise).eval(&params);
        let value = per_point_bound(&model, &guide, &params, &noise, &all).unwrap();
        assert!((value - elbo).abs() < 1e-12, "{seed}: {value} vs {elbo}");
        // And the ELBO by hand from the same draw.
        let u = &outer_draws(&guide, &params, 1, seed)[0];
        let n = Y.len();
        let by_hand: f64 = (0..n)
            .map(|j| point_log_weight(&params, j, u[j], u[n + j]))
            .sum();
        assert!(
            (value - by_hand).abs() < 1e-10,
            "{seed}: {value} vs {by_hand}"
        );
    }
}

#[test]
fn with_m_above_1_the_per_point_bound_is_a_sum_of_per_point_logsumexps() {
    let model = model();
    let guide = Encoded::new(&model).unwrap();
    let n = Y.len();
    let m = 5;
    let params = random_params(&guide, 21);
    let seed = 22;
    let noise = StepNoise::draw(&guide, Diwhvi::iwae(m), &mut StdRng::seed_from_u64(seed));
    let draws = outer_draws(&guide, &params, m, seed);
    let term = |j: usize| {
        let weights: Vec<f64> = draws
            .iter()
            .map(|u| point_log_weight(&params, j, u[j], u[n + j]))
            .collect();
        log_sum_exp(&weights) - (m as f64).ln()
    };
    let all: Vec<usize> = (0..n).collect();
    let value = per_point_bound(&model, &guide, &params, &noise, &all).unwrap();
    let by_hand: f64 = (0..n).map(term).sum();
    assert!((value - by_hand).abs() < 1e-10, "{value} vs {by_hand}");
    // Not the coupled IWAE bound (logsumexp_m Σ_n): the test can tell them apart.
    let coupled = DiwhviObjective::new(&model, &guide, &noise).eval(&params);
    assert!(
        (value - coupled).abs() > 1e-6,
        "{value} vs coupled {coupled}"
    );
    // A batch of two points, scaled by N / b.
    let batch = [3, 1];
    let value = per_point_bound(&model, &guide, &params, &noise, &batch).unwrap();
    let by_hand = (n as f64 / 2.0) * (term(3) + term(1));
    assert!((value - by_hand).abs() < 1e-10, "{value} vs {by_hand}");
    // A repeated point is refused, naming the batch.
    let repeated = per_point_bound(&model, &guide, &params, &noise, &[1, 1]);
    assert!(
        matches!(
            &repeated,
            Err(iwhvi::input::InputError::InvalidSetting {
                setting: "batch",
                ..
            })
        ),
        "{repeated:?}"
    );
}

/// The batch's draws by group, from the noise entries the guide reports
/// for the batch's groups (the others NaN), against the whole draw.
fn drawing_by_group_matches_the_whole_draw<G: HierarchicalGuide>(guide: &G, df: usize) {
    assert!(guide.samples_by_group());
    let n = Y.len();
    let params = random_params(guide, 31);
    let mut rng = StdRng::seed_from_u64(32);
    let all: Vec<f64> = (0..guide.conditional_noise_dim())
        .map(|_| iwhvi::__private::normal_init(&mut rng, 1.0))
        .collect();
    let mut ws = Workspace::new(guide);
    guide.prepare(&params, &mut ws);
    let mut whole = vec![0.0; guide.latent_dim()];
    guide.sample_conditional(&params, &[], &all, &mut whole, &mut ws);
    let batch = [4, 0, 2];
    let (mut mixing, mut entries) = (Vec::new(), Vec::new());
    for &j in &batch {
        assert!(guide.group_noise(j, &mut mixing, &mut entries));
    }
    // Per point: its two latents' normals, and ν more for a Student-t.
    assert!(mixing.is_empty());
    assert_eq!(entries.len(), batch.len() * (2 + df), "{entries:?}");
    let mut eps = vec![f64::NAN; all.len()];
    for &i in &entries {
        eps[i] = all[i];
    }
    // The encoders at the batch's points alone, then its groups' draws, on
    // a minibatch step's workspace: no scratch (a method that uses it
    // grows it), the rest as long as the whole methods'.
    let (lens, group_lens) = (guide.workspace_lens(), guide.group_workspace_lens());
    assert!(lens.scratch > 0 && group_lens.scratch == 0);
    assert_eq!(
        (group_lens.params, group_lens.reverse),
        (lens.params, lens.reverse)
    );
    let mut partial = Workspace::with_lens(group_lens);
    guide.prepare_groups(&params, &batch, &mut partial);
    let mut u = vec![f64::NAN; guide.latent_dim()];
    for &j in &batch {
        guide.sample_conditional_group(&params, j, &[], &eps, &mut u, &mut partial);
    }
    for j in 0..n {
        for at in [j, n + j] {
            if batch.contains(&j) {
                assert_eq!(
                    u[at].to_bits(),
                    whole[at].to_bits(),
                    "{at}: {} vs {}",
                    u[at],
                    whole[at]
                );
            } else {
                assert!(u[at].is_nan(), "{at}: a point outside the batch was drawn");
            }
        }
    }
    for &j in &batch {
        let group = guide.log_conditional_group(&params, j, &[], &whole, &mut partial);
        let prepared = guide.log_conditional_group(&params, j, &[], &whole, &mut ws);
        assert_eq!(group.to_bits(), prepared.to_bits(), "{j}");
    }
    // A whole-vector method on the partly prepared workspace computes for
    // itself (the other points' encoder outputs are not there).
    let lq_partial = guide.log_conditional(&params, &[], &whole, &mut partial);
    let lq = guide.log_conditional(&params, &[], &whole, &mut ws);
    assert_eq!(lq_partial.to_bits(), lq.to_bits());
}

#[test]
fn drawing_by_group_matches_the_whole_draw_bit_for_bit() {
    let model = model();
    drawing_by_group_matches_the_whole_draw(&Encoded::new(&model).unwrap(), 0);
    drawing_by_group_matches_the_whole_draw(&EncodedT::new(&model).unwrap(), 4);
}

fn iwae_minibatch_fit(threads: Parallelism) -> Fit {
    let model = model();
    let guide = Encoded::new(&model).unwrap();
    let config = FitConfig::new(Diwhvi::iwae(4))
        .batch_size(2)
        .max_steps(40)
        .seed(5)
        .parallelism(threads)
        .progress(false);
    fit(&model, &guide, Adam::new(0.02), &config)
        .expect("IWAE on minibatches of an amortised guide")
}

#[test]
fn an_amortised_guide_fits_on_minibatches_with_m_above_one_bit_for_bit() {
    let one = iwae_minibatch_fit(Parallelism::SingleThread);
    // Rayon's global pool: as many threads as cores (two here).
    let two = iwae_minibatch_fit(Parallelism::AllCores);
    assert_eq!(one.params, two.params);
    assert_eq!(one.trace, two.trace);
    let full = one
        .full_bound
        .expect("a minibatch fit reports the full bound");
    assert!(full.mean.is_finite(), "{full:?}");
}

#[test]
fn a_guide_with_a_global_latent_still_reports_no_groups() {
    let model = Schools::new(vec![1.0, 2.0, 3.0], vec![0.5, -0.5, 1.0]).unwrap();
    let guide = SchoolsEncoded::new(&model).unwrap();
    assert!(guide.mixing_groups().is_none());
}
