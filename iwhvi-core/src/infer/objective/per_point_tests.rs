//! The per-point bound (minibatches with `M > 1`): against the ordinary
//! bound at `N = 1`, below a closed-form `log p(x)` and above the coupled
//! bound, unbiased under minibatches (value and gradient, with a power
//! check), its gradient against finite differences, and fits reproduced
//! bit for bit with one or two threads.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::factorised_tests::{Blocks, rough_params};
use super::{
    Diwhvi, DiwhviObjective, NoiseEntries, PerPointObjective, PointGroups, PointNoise, StepNoise,
    per_point_bound,
};
use crate::ForwardEngine;
use crate::fit::{FitConfig, FitError, Parallelism, fit};
use crate::gradient::Differentiable;
use crate::guide::{
    HierarchicalGuide, MixingGroup, MixingGroups, ParamLayout, Workspace, diag_normal_log_density,
};
use crate::infer::minibatch::Batcher;
use crate::input::InputError;
use crate::model::{LatentSpec, Layout, Model};
use crate::objective::{GradientEstimator, ObjectiveError};
use crate::optim::Adam;
use crate::scalar::Scalar;
use crate::subsample::{Batch, SubsamplePlate};
use crate::tape::TapeEngine;
use crate::transforms::Transform;

/// `z_n ~ N(μ, 1)`, `x_n ~ N(z_n, σ²)`, `μ` learned: every latent local,
/// `log p(x) = Σ_n log N(x_n; μ, 1 + σ²)`. With `global`, one more
/// latent `g ~ N(0, 1)` outside the plate (which the per-point bound
/// refuses).
struct Local {
    x: Vec<f64>,
    sigma: f64,
    mu: f64,
    global: bool,
}

impl Local {
    fn new(n: usize) -> Self {
        Self {
            x: (0..n).map(|i| 1.3 * (i as f64) - 2.0).collect(),
            sigma: 0.7,
            mu: 0.4,
            global: false,
        }
    }

    fn log_evidence(&self) -> f64 {
        let var = 1.0 + self.sigma * self.sigma;
        let x = self.x.iter();
        x.map(|x| -0.5 * (x - self.mu).powi(2) / var - 0.5 * (std::f64::consts::TAU * var).ln())
            .sum()
    }
}

impl Model for Local {
    fn layout(&self) -> Layout {
        let mut specs = vec![LatentSpec::vector("z", self.x.len(), Transform::Identity)];
        if self.global {
            specs.push(LatentSpec::scalar("g", Transform::Identity));
        }
        Layout::new(specs)
    }
    fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
        self.log_joint_theta(&[T::constant(self.mu)], u)
    }
    fn theta_layout(&self) -> Layout {
        Layout::new(vec![LatentSpec::scalar("mu", Transform::Identity)])
    }
    fn theta(&self) -> Vec<f64> {
        vec![self.mu]
    }
    fn log_joint_theta<T: Scalar>(&self, theta: &[T], u: &[T]) -> T {
        let all: Vec<usize> = (0..self.x.len()).collect();
        self.log_joint_subset(theta, u, &[], &Batch::new(&all, self.x.len()))
    }
    fn subsample_plate(&self) -> Result<SubsamplePlate, &'static str> {
        let observed = vec!["x".into()];
        Ok(SubsamplePlate {
            observed,
            len: self.x.len(),
        })
    }
    fn local_latents(&self) -> Vec<String> {
        vec!["z".into()]
    }
    fn log_joint_subset<T: Scalar>(&self, theta: &[T], u: &[T], _: &[f64], batch: &Batch<'_>) -> T {
        let zero = T::constant(0.0);
        let log_sigma = T::constant(self.sigma.ln());
        let mut global = zero;
        if self.global {
            let g = u[self.x.len()];
            global += diag_normal_log_density(&[g], &[zero], &[zero]);
        }
        let mut plate = zero;
        for &n in batch.indices() {
            plate += diag_normal_log_density(&[u[n]], &[theta[0]], &[zero]);
            let x = T::constant(self.x[n]);
            plate += diag_normal_log_density(&[x], &[u[n]], &[log_sigma]);
        }
        global + plate * batch.scale()
    }
}

/// The per-point bound on `batch` at `[φ; ϑ]`.
fn per_point(
    model: &Local,
    guide: &Blocks,
    noise: &StepNoise,
    batch: Batch<'_>,
    joint: &[f64],
) -> f64 {
    let points = PointGroups::new(model, guide, model.x.len(), false).unwrap();
    let objective = PerPointObjective {
        model,
        guide,
        noise,
        batch,
        points: &points,
        guide_params: 6 * model.x.len(),
    };
    objective.eval(joint)
}

fn joint(n: usize, mu: f64) -> Vec<f64> {
    let mut joint = rough_params(n);
    joint.push(mu);
    joint
}

fn mean_se(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

#[test]
fn with_one_point_the_per_point_bound_is_the_ordinary_bound() {
    let (model, guide) = (Local::new(1), Blocks::new(1, true));
    let joint = joint(1, model.mu);
    let mut rng = StdRng::seed_from_u64(3);
    for (m, k) in [(1, 0), (4, 0), (4, 3), (8, 16)] {
        let noise = StepNoise::draw(&guide, Diwhvi::new(m, k), &mut rng);
        let ordinary = DiwhviObjective::new(&model, &guide, &noise).eval(&joint[..6]);
        let batch = Batch::new(&[0], 1);
        let value = per_point(&model, &guide, &noise, batch, &joint);
        assert!(
            (value - ordinary).abs() < 1e-12,
            "M = {m}, K = {k}: {value} vs {ordinary}"
        );
    }
}

#[test]
fn the_per_point_bound_is_below_log_evidence_and_above_the_coupled_bound() {
    let n = 4;
    let (model, guide) = (Local::new(n), Blocks::new(n, true));
    let joint = joint(n, model.mu);
    let all: Vec<usize> = (0..n).collect();
    let mut rng = StdRng::seed_from_u64(17);
    let (mut values, mut gains) = (Vec::new(), Vec::new());
    for _ in 0..4000 {
        let noise = StepNoise::draw(&guide, Diwhvi::new(6, 2), &mut rng);
        let value = per_point(&model, &guide, &noise, Batch::new(&all, n), &joint);
        let coupled = DiwhviObjective::new(&model, &guide, &noise).eval(&joint[..6 * n]);
        values.push(value);
        gains.push(value - coupled);
    }
    let (mean, se) = mean_se(&values);
    let exact = model.log_evidence();
    assert!(
        mean < exact + 3.0 * se,
        "{mean} ± {se} vs log p(x) = {exact}"
    );
    // Not vacuous: rough parameters leave a gap of many standard errors.
    assert!(mean < exact - 10.0 * se, "{mean} ± {se} vs {exact}");
    let (gain, gain_se) = mean_se(&gains);
    assert!(
        gain > 3.0 * gain_se,
        "per-point − coupled: {gain} ± {gain_se}"
    );
}

/// Over `draws` steps' noise and batches of `b` (the fit's sampler), the
/// per-point bound and its gradient on the batch with its terms scaled by
/// `scale` instead of `N / b`, minus the full-data ones on the same noise;
/// with `global`, a global latent in the model and its own group in the
/// guide, and `M = 1`.
fn minibatch_differences(
    b: usize,
    scale: f64,
    draws: usize,
    global: bool,
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = 6;
    let mut model = Local::new(n);
    model.global = global;
    let guide = Blocks::new(n + usize::from(global), true);
    let mut joint = rough_params(n + usize::from(global));
    joint.push(model.mu);
    let points = PointGroups::new(&model, &guide, n, global).unwrap();
    let all: Vec<usize> = (0..n).collect();
    let mut batcher = Batcher::new(n, b, 5);
    let mut rng = StdRng::seed_from_u64(23);
    let engine = ForwardEngine::<8>::new();
    let objective = Diwhvi::new(if global { 1 } else { 3 }, 2);
    let (mut values, mut gradients) = (Vec::new(), Vec::new());
    for _ in 0..draws {
        let noise = StepNoise::draw(&guide, objective, &mut rng);
        let objective = |batch| PerPointObjective {
            model: &model,
            guide: &guide,
            noise: &noise,
            batch,
            points: &points,
            guide_params: joint.len() - 1,
        };
        let (mut batched, mut full) = (vec![0.0; joint.len()], vec![0.0; joint.len()]);
        let indices = batcher.next_batch().indices().to_vec();
        let value = engine.value_and_gradient_into(
            &objective(Batch::with_scale(&indices, scale)),
            &joint,
            &mut batched,
        );
        let whole =
            engine.value_and_gradient_into(&objective(Batch::new(&all, n)), &joint, &mut full);
        values.push(value - whole);
        gradients.push(batched.iter().zip(&full).map(|(a, b)| a - b).collect());
    }
    (values, gradients)
}

/// The minibatch differences centred at 0 within 3 SE (value and every
/// gradient coordinate), and with a wrong scale rejected.
fn check_unbiased_with_power(global: bool) {
    let (b, draws) = (2, 3000);
    let (values, gradients) = minibatch_differences(b, 3.0, draws, global);
    let (mean, se) = mean_se(&values);
    assert!(mean.abs() < 3.0 * se, "bound: {mean} ± {se}");
    // Every coordinate's gradient: a point's parameters (and μ) move with
    // the batch.
    for i in 0..gradients[0].len() {
        let column: Vec<f64> = gradients.iter().map(|g| g[i]).collect();
        let (mean, se) = mean_se(&column);
        assert!(mean.abs() < 3.0 * se + 1e-12, "gradient {i}: {mean} ± {se}");
    }
    // Power: the scale N / (b + 1) is rejected by the same test.
    let (wrong, wrong_gradients) = minibatch_differences(b, 2.0, draws, global);
    let (mean, se) = mean_se(&wrong);
    assert!(
        mean.abs() > 3.0 * se,
        "wrong scale not detected: {mean} ± {se}"
    );
    let mu: Vec<f64> = wrong_gradients.iter().map(|g| g[g.len() - 1]).collect();
    let (mean, se) = mean_se(&mu);
    assert!(
        mean.abs() > 3.0 * se,
        "wrong scale not detected in ∂/∂μ: {mean} ± {se}"
    );
}

#[test]
fn the_minibatch_per_point_bound_is_unbiased_and_a_wrong_scale_is_detected() {
    check_unbiased_with_power(false);
}

#[test]
fn with_m_1_and_a_global_latent_the_points_inner_bounds_scale_without_bias() {
    check_unbiased_with_power(true);
    // On all the points with scale 1 it is the ordinary bound.
    let n = 4;
    let mut model = Local::new(n);
    model.global = true;
    let guide = Blocks::new(n + 1, true);
    let points = PointGroups::new(&model, &guide, n, true).unwrap();
    assert!(points.has_point_groups());
    assert!(PointGroups::new(&model, &guide, n, false).is_err());
    let mut joint = rough_params(n + 1);
    joint.push(model.mu);
    let all: Vec<usize> = (0..n).collect();
    let mut rng = StdRng::seed_from_u64(41);
    for k in [0, 3] {
        let noise = StepNoise::draw(&guide, Diwhvi::new(1, k), &mut rng);
        let ordinary = DiwhviObjective::new(&model, &guide, &noise).eval(&joint[..6 * (n + 1)]);
        let value = PerPointObjective {
            model: &model,
            guide: &guide,
            noise: &noise,
            batch: Batch::with_scale(&all, 1.0),
            points: &points,
            guide_params: 6 * (n + 1),
        }
        .eval(&joint);
        assert!(
            (value - ordinary).abs() < 1e-12,
            "K = {k}: {value} vs {ordinary}"
        );
    }
}

#[test]
fn the_per_point_gradient_matches_finite_differences_on_both_engines() {
    let n = 3;
    let (model, guide) = (Local::new(n), Blocks::new(n, true));
    let joint = joint(n, model.mu);
    let noise = StepNoise::draw(&guide, Diwhvi::new(4, 3), &mut StdRng::seed_from_u64(9));
    let points = PointGroups::new(&model, &guide, n, false).unwrap();
    let indices = [0, 2];
    let objective = PerPointObjective {
        model: &model,
        guide: &guide,
        noise: &noise,
        batch: Batch::new(&indices, n),
        points: &points,
        guide_params: 6 * n,
    };
    let (mut forward, mut tape) = (vec![0.0; joint.len()], vec![0.0; joint.len()]);
    let value = ForwardEngine::<8>::new().value_and_gradient_into(&objective, &joint, &mut forward);
    let tape_value = TapeEngine.value_and_gradient_into(&objective, &joint, &mut tape);
    assert!((value - tape_value).abs() < 1e-12);
    let h = 1e-6;
    for i in 0..joint.len() {
        let (mut up, mut down) = (joint.clone(), joint.clone());
        up[i] += h;
        down[i] -= h;
        let fd = (objective.eval(&up) - objective.eval(&down)) / (2.0 * h);
        let tolerance = 1e-6 * fd.abs().max(1.0);
        assert!(
            (forward[i] - fd).abs() < tolerance,
            "{i}: {} vs {fd}",
            forward[i]
        );
        assert!((tape[i] - fd).abs() < tolerance, "{i}: {} vs {fd}", tape[i]);
    }
    // Point 1 is not in the batch: its parameters have no gradient.
    for which in 0..6 {
        assert_eq!(forward[which * n + 1], 0.0);
    }
}

fn per_point_fit(model: &Local, threads: Parallelism) -> Result<crate::fit::Fit, FitError> {
    // Its steps draw their batch's noise alone.
    let guide = Blocks::new(model.x.len(), true).reporting_noise();
    let config = FitConfig::new(Diwhvi::new(4, 2))
        .batch_size(2)
        .max_steps(60)
        .seed(31)
        .parallelism(threads)
        .progress(false);
    fit(model, &guide, Adam::new(0.05), &config)
}

#[test]
fn a_per_point_minibatch_fit_reproduces_bit_for_bit_with_one_or_two_threads() {
    let model = Local::new(5);
    let one = per_point_fit(&model, Parallelism::SingleThread).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let two = pool
        .install(|| per_point_fit(&model, Parallelism::AllCores))
        .unwrap();
    assert_eq!(one.params, two.params);
    assert_eq!(one.theta, two.theta);
    assert_eq!(one.trace, two.trace);
    let full = one
        .full_bound
        .expect("a minibatch fit reports the full bound");
    assert!(full.mean.is_finite() && full.mean < model.log_evidence() + 3.0 * full.std_error);
    // The learned μ moved from its start.
    assert_ne!(one.theta, vec![model.mu]);
}

#[test]
fn the_per_point_bound_is_refused_with_a_global_latent_or_dreg() {
    let mut model = Local::new(4);
    model.global = true;
    let guide = Blocks::new(5, true);
    let config = FitConfig::new(Diwhvi::new(4, 2))
        .batch_size(2)
        .max_steps(3)
        .progress(false);
    // The guide's fifth group holds the global latent.
    let result = fit(&model, &guide, Adam::new(0.05), &config);
    assert!(
        matches!(
            &result,
            Err(FitError::Input(InputError::InvalidSetting { setting: "batch_size", requirement, .. }))
                if requirement.contains("every latent local")
        ),
        "{result:?}"
    );
    // The whole plate as the batch: the ordinary bound, accepted.
    let whole = config.clone().batch_size(4);
    assert!(fit(&model, &guide, Adam::new(0.05), &whole).is_ok());
    let local = Local::new(4);
    let guide = Blocks::new(4, true);
    let dreg = config.estimator(GradientEstimator::DoublyReparameterized);
    let result = fit(&local, &guide, Adam::new(0.05), &dreg);
    assert!(
        matches!(
            &result,
            Err(FitError::Input(InputError::InvalidSetting {
                setting: "estimator",
                ..
            }))
        ),
        "{result:?}"
    );
    // M = 1 needs no per-point bound: accepted with the global latent.
    let mut model = Local::new(4);
    model.global = true;
    let elbo = FitConfig::new(Diwhvi::new(1, 2))
        .batch_size(2)
        .max_steps(3)
        .progress(false);
    assert!(fit(&model, &Blocks::new(5, true), Adam::new(0.05), &elbo).is_ok());
    let _ = guide.latent_dim();
}

/// The bound and its gradient on the tape for points `indices` of
/// `model` on `noise`.
fn batch_value_and_gradient(
    model: &Local,
    guide: &Blocks,
    noise: &StepNoise,
    indices: &[usize],
) -> (f64, Vec<f64>) {
    let n = model.x.len();
    let points = PointGroups::new(model, guide, n, false).unwrap();
    let objective = PerPointObjective {
        model,
        guide,
        noise,
        batch: Batch::new(indices, n),
        points: &points,
        guide_params: 6 * n,
    };
    let joint = joint(n, model.mu);
    let mut gradient = vec![0.0; joint.len()];
    let value = TapeEngine.value_and_gradient_into(&objective, &joint, &mut gradient);
    (value, gradient)
}

#[test]
fn a_batch_step_draws_the_noise_its_batch_reads_and_reads_no_other() {
    let n = 6;
    let (model, guide) = (Local::new(n), Blocks::new(n, true).reporting_noise());
    let points = PointGroups::new(&model, &guide, n, false).unwrap();
    let indices = [1, 4];
    let mut entries = NoiseEntries::default();
    let point_noise = PointNoise::new(&guide, &points).unwrap().unwrap();
    point_noise.of_batch(&Batch::new(&indices, n), &mut entries);
    let expected = NoiseEntries {
        mixing: indices.to_vec(),
        conditional: indices.to_vec(),
        reverse: indices.to_vec(),
    };
    assert_eq!(entries, expected);
    // A guide that does not report its entries: the step draws everything.
    assert_eq!(PointNoise::new(&Blocks::new(n, true), &points), Ok(None));
    // With a global latent (M = 1), its group's entries come first.
    let mut global = Local::new(4);
    global.global = true;
    let five = Blocks::new(5, true).reporting_noise();
    let with_global = PointGroups::new(&global, &five, 4, true).unwrap();
    let mut of_two = NoiseEntries::default();
    let point_noise = PointNoise::new(&five, &with_global).unwrap().unwrap();
    point_noise.of_batch(&Batch::new(&[2], 4), &mut of_two);
    assert_eq!(of_two.mixing, [4, 2]);
    assert_eq!(of_two.conditional, [4, 2]);
    assert_eq!(of_two.reverse, [4, 2]);
    // Two noises that differ outside the batch's entries alone (zeros and
    // 7.5), the batch's entries drawn from the same stream.
    let objective = Diwhvi::new(3, 2);
    let mut zeros = StepNoise::new(&guide, objective);
    let mut junk = zeros.clone();
    for buffer in junk.buffers_mut() {
        buffer.fill(7.5);
    }
    zeros.redraw_entries(&mut StdRng::seed_from_u64(3), &expected);
    junk.redraw_entries(&mut StdRng::seed_from_u64(3), &expected);
    let (mut z, mut j) = (zeros.clone(), junk.clone());
    for (z, j) in z.buffers_mut().into_iter().zip(j.buffers_mut()) {
        for (i, (z, j)) in z.iter().zip(j.iter()).enumerate() {
            if indices.contains(&(i % n)) {
                assert!(z.to_bits() == j.to_bits() && *z != 0.0, "entry {i}");
            } else {
                assert!(*z == 0.0 && *j == 7.5, "entry {i} was drawn");
            }
        }
    }
    // The batch's bound and gradient read none of the other entries.
    let (value, gradient) = batch_value_and_gradient(&model, &guide, &zeros, &indices);
    let (junk_value, junk_gradient) = batch_value_and_gradient(&model, &guide, &junk, &indices);
    assert!(value.is_finite());
    assert_eq!(value.to_bits(), junk_value.to_bits());
    assert_eq!(gradient, junk_gradient);
    // Listing every entry in order draws what `redraw` draws.
    let every: Vec<usize> = (0..n).collect();
    let all = NoiseEntries {
        mixing: every.clone(),
        conditional: every.clone(),
        reverse: every,
    };
    let mut by_entries = StepNoise::new(&guide, objective).with_prior_noise(2);
    let mut whole = by_entries.clone();
    by_entries.redraw_entries(&mut StdRng::seed_from_u64(4), &all);
    whole.redraw(&mut StdRng::seed_from_u64(4));
    assert_eq!(by_entries, whole);
}

fn fit_on_batches(guide: &Blocks, b: usize) -> crate::fit::Fit {
    let config = FitConfig::new(Diwhvi::new(4, 2))
        .batch_size(b)
        .max_steps(20)
        .seed(31)
        .full_bound(false)
        .progress(false);
    fit(&Local::new(5), guide, Adam::new(0.05), &config).unwrap()
}

#[test]
fn a_batch_of_the_whole_plate_draws_all_of_the_noise_as_before() {
    let (reporting, silent) = (Blocks::new(5, true).reporting_noise(), Blocks::new(5, true));
    let (a, b) = (fit_on_batches(&reporting, 5), fit_on_batches(&silent, 5));
    assert_eq!(a.params, b.params);
    assert_eq!(a.trace, b.trace);
    // Batches of 2 of the 5 points: the reporting guide's steps draw their
    // batches' entries alone, another stream.
    let (c, d) = (fit_on_batches(&reporting, 2), fit_on_batches(&silent, 2));
    assert!(c.trace.iter().all(|v| v.is_finite()));
    assert_ne!(c.trace, d.trace);
}

#[test]
fn a_reported_noise_entry_past_the_end_is_a_typed_error_naming_the_group() {
    let model = Local::new(5);
    let guide = Blocks::new(5, true)
        .reporting_noise()
        .shifting_conditional_noise(5);
    let config = FitConfig::new(Diwhvi::new(4, 2))
        .batch_size(2)
        .max_steps(3)
        .seed(31)
        .progress(false);
    let err = fit(&model, &guide, Adam::new(0.05), &config).unwrap_err();
    assert!(
        matches!(
            err,
            FitError::Objective(ObjectiveError::GroupNoiseOutOfRange {
                group: 0,
                which: "conditional",
                entry: 5,
                len: 5,
            })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("group 0"), "{err}");
    // The whole plate as the batch draws all of the noise: no entry is read.
    let whole = FitConfig::new(Diwhvi::new(4, 2))
        .batch_size(5)
        .max_steps(3)
        .seed(31)
        .progress(false);
    assert!(fit(&model, &guide, Adam::new(0.05), &whole).is_ok());
}

/// `q(z) = Π_n N(z_n; a_n, exp(b_n)²)`, params `[a; b]`: one group per
/// point without mixing coordinates, drawn by group, written by hand
/// (the trait's default batch methods, a loop over the groups).
struct PointNormal(MixingGroups, Miscount);

/// A broken override of `log_conditional_groups` that pushes one density
/// too many (`Extra`), or none (`Correct`: the trait's loop).
#[derive(Clone, Copy, PartialEq)]
enum Miscount {
    Correct,
    Extra,
}

impl PointNormal {
    fn new(n: usize) -> Self {
        let group = |i: usize| MixingGroup {
            psi: 0..0,
            latents: vec![i],
            reverse_noise: 0..0,
        };
        Self(
            MixingGroups::new(n, 0, 0, (0..n).map(group).collect()).unwrap(),
            Miscount::Correct,
        )
    }

    fn n(&self) -> usize {
        self.0.len()
    }
}

impl HierarchicalGuide for PointNormal {
    fn latent_dim(&self) -> usize {
        self.n()
    }
    fn mixing_dim(&self) -> usize {
        0
    }
    fn has_reverse_model(&self) -> bool {
        false
    }
    fn param_layout(&self) -> ParamLayout {
        let mut layout = ParamLayout::default();
        layout.push("loc", &[self.n()]);
        layout.push("log_scale", &[self.n()]);
        layout
    }
    fn init_params<R: rand::Rng + ?Sized>(&self, _: &mut R) -> Vec<f64> {
        vec![0.0; 2 * self.n()]
    }
    fn sample_conditional<T: Scalar>(
        &self,
        p: &[T],
        _: &[T],
        e: &[f64],
        u: &mut [T],
        _: &mut Workspace<T>,
    ) {
        for (i, u) in u.iter_mut().enumerate() {
            *u = p[i] + p[self.n() + i].exp() * e[i];
        }
    }
    fn log_conditional<T: Scalar>(&self, p: &[T], _: &[T], u: &[T], _: &mut Workspace<T>) -> T {
        diag_normal_log_density(u, &p[..self.n()], &p[self.n()..])
    }
    fn mixing_groups(&self) -> Option<&MixingGroups> {
        Some(&self.0)
    }
    fn log_conditional_group<T: Scalar>(
        &self,
        p: &[T],
        g: usize,
        _: &[T],
        u: &[T],
        _: &mut Workspace<T>,
    ) -> T {
        diag_normal_log_density(&[u[g]], &[p[g]], &[p[self.n() + g]])
    }
    fn samples_by_group(&self) -> bool {
        true
    }
    fn sample_conditional_group<T: Scalar>(
        &self,
        p: &[T],
        g: usize,
        _: &[T],
        e: &[f64],
        u: &mut [T],
        _: &mut Workspace<T>,
    ) {
        u[g] = p[g] + p[self.n() + g].exp() * e[g];
    }
    fn log_conditional_groups<T: Scalar>(
        &self,
        p: &[T],
        groups: &[usize],
        u: &[T],
        ws: &mut Workspace<T>,
        out: &mut Vec<T>,
    ) {
        for &g in groups {
            out.push(self.log_conditional_group(p, g, &[], u, ws));
        }
        if self.1 == Miscount::Extra {
            out.push(T::constant(0.0));
        }
    }
}

#[test]
#[should_panic(expected = "PointNormal::log_conditional_groups pushed 3 densities for 2 groups")]
fn a_batch_override_that_pushes_another_count_stops_naming_the_guide() {
    let (model, mut guide) = (Local::new(4), PointNormal::new(4));
    guide.1 = Miscount::Extra;
    let noise = StepNoise::draw(&guide, Diwhvi::elbo(), &mut StdRng::seed_from_u64(2));
    let mut joint = vec![0.1; 8];
    joint.push(0.4);
    let _ = per_point_bound(&model, &guide, &joint[..8], &noise, &[3, 1]);
}

/// The per-point bound at `M = 1` as the scalar path computes it (each
/// point's `log_w = log p(x_n, z_n) − log q(z_n)` a node, summed by
/// `accumulate`), for [`PerPointObjective`]'s one-op sum to match.
/// The joint parameters of the M = 1 tests: the guide's twelve, then the
/// model's one.
fn m1_joint() -> Vec<f64> {
    let mut joint: Vec<f64> = (0..12).map(|i| 0.3 * ((i * 7 % 5) as f64) - 0.6).collect();
    joint.push(0.4);
    joint
}

/// The per-point objective on `batch` of `n` points (twelve guide
/// parameters) and its scalar reference, with the global group `global`.
fn m1_pair<'a>(
    model: &'a Local,
    guide: &'a PointNormal,
    noise: &'a StepNoise,
    points: &'a PointGroups,
    batch: &'a [usize],
    n: usize,
    global: Option<usize>,
) -> (PerPointObjective<'a, Local, PointNormal>, ScalarPath<'a>) {
    let objective = PerPointObjective {
        model,
        guide,
        noise,
        batch: Batch::new(batch, n),
        points,
        guide_params: 12,
    };
    let reference = ScalarPath {
        model,
        guide,
        noise,
        batch,
        global,
    };
    (objective, reference)
}

struct ScalarPath<'a> {
    model: &'a Local,
    guide: &'a PointNormal,
    noise: &'a StepNoise,
    batch: &'a [usize],
    /// The global group (the model's latent `g`), if any: the global
    /// part is `log p(g) − log q(g)`.
    global: Option<usize>,
}

impl Differentiable for ScalarPath<'_> {
    fn eval<T: Scalar>(&self, joint: &[T]) -> T {
        let (guide, d) = (self.guide, self.guide.n());
        let n = self.model.x.len();
        let (params, theta) = joint.split_at(2 * d);
        let mut ws = Workspace::new(guide);
        let mut u = vec![T::constant(0.0); d];
        // The objective's order: the global group first, its density
        // before the points' (the tape sums a shared node's adjoints in
        // the order of its readers).
        for &g in self.global.iter().chain(self.batch) {
            guide.sample_conditional_group(
                params,
                g,
                &[],
                self.noise.conditional(0),
                &mut u,
                &mut ws,
            );
        }
        let global_log_q = self
            .global
            .map(|g| guide.log_conditional_group(params, g, &[], &u, &mut ws));
        let log_q: Vec<T> = self
            .batch
            .iter()
            .map(|&g| guide.log_conditional_group(params, g, &[], &u, &mut ws))
            .collect();
        let batch = Batch::new(self.batch, n);
        let mut points = vec![T::constant(0.0); self.batch.len()];
        let terms =
            self.model
                .log_joint_points(theta, &u, self.noise.prior_noise(0), &batch, &mut points);
        let mut total = T::constant(0.0);
        for (&p, &q) in points.iter().zip(&log_q) {
            crate::generated::accumulate(&mut total, p - q);
        }
        let global = match global_log_q {
            Some(q) => terms - q,
            None => terms,
        };
        global + total * batch.scale()
    }
}

#[test]
fn at_m_1_with_a_global_group_the_one_op_sum_is_the_scalar_path_bit_for_bit() {
    // `g ~ N(0, 1)` outside the plate of 5 points: the guide's group 5
    // holds it, a global group beside the points' (the fast path's
    // global part).
    let model = Local {
        global: true,
        ..Local::new(5)
    };
    let guide = PointNormal::new(6);
    let points = PointGroups::new(&model, &guide, 5, true).unwrap();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for (seed, batch) in [(1, vec![4, 0, 2]), (2, (0..5).collect()), (3, vec![3])] {
        let noise = StepNoise::draw(&guide, Diwhvi::elbo(), &mut StdRng::seed_from_u64(seed));
        let joint = m1_joint();
        let (objective, reference) = m1_pair(&model, &guide, &noise, &points, &batch, 5, Some(5));
        let (value, gradient) = TapeEngine.value_and_gradient(&objective, &joint);
        let (want, want_gradient) = TapeEngine.value_and_gradient(&reference, &joint);
        assert_eq!(value.to_bits(), want.to_bits(), "{seed}: tape value");
        assert_eq!(
            bits(&gradient),
            bits(&want_gradient),
            "{seed}: tape gradient"
        );
        // The global group's parameters (loc and log-scale of `g`) have a
        // gradient: its density is in the bound.
        assert!(gradient[5] != 0.0 && gradient[11] != 0.0, "{gradient:?}");
        assert_eq!(
            objective.eval(&joint).to_bits(),
            want.to_bits(),
            "{seed}: f64"
        );
    }
}

#[test]
fn at_m_1_the_points_sum_as_one_op_is_the_scalar_path_bit_for_bit() {
    let (model, guide) = (Local::new(6), PointNormal::new(6));
    let points = PointGroups::new(&model, &guide, 6, true).unwrap();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for (seed, batch) in [(1, vec![4, 0, 2]), (2, (0..6).collect()), (3, vec![5])] {
        let mut rng = StdRng::seed_from_u64(seed);
        let noise = StepNoise::draw(&guide, Diwhvi::elbo(), &mut rng);
        let joint = m1_joint();
        let (objective, reference) = m1_pair(&model, &guide, &noise, &points, &batch, 6, None);
        let value = objective.eval(&joint);
        assert_eq!(value.to_bits(), reference.eval(&joint).to_bits(), "{seed}");
        let (value, gradient) = TapeEngine.value_and_gradient(&objective, &joint);
        let (want, want_gradient) = TapeEngine.value_and_gradient(&reference, &joint);
        assert_eq!(value.to_bits(), want.to_bits(), "{seed}: tape value");
        assert_eq!(
            bits(&gradient),
            bits(&want_gradient),
            "{seed}: tape gradient"
        );
        let forward = ForwardEngine::<4>::new();
        let (value, gradient) = forward.value_and_gradient(&objective, &joint);
        let (want, want_gradient) = forward.value_and_gradient(&reference, &joint);
        assert_eq!(value.to_bits(), want.to_bits(), "{seed}: forward value");
        for (a, b) in gradient.iter().zip(&want_gradient) {
            assert!(
                (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                "{seed}: {a} vs {b}"
            );
        }
    }
}
