//! The factorised inner bound of guides with [`MixingGroups`]: against the
//! sum of one-block guides on the same noise, below a closed-form
//! `log p(x)`, and its gradients (finite differences, both engines, DReG's
//! stops per group).

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::{
    Diwhvi, DiwhviObjective, GradientEstimator, StepNoise, estimate_bound, sandwich,
    value_and_gradient_with,
};
use crate::ForwardEngine;
use crate::gradient::{Differentiable, GradientEngine};
use crate::guide::{
    HierarchicalGuide, MixingGroup, MixingGroups, ParamLayout, Workspace, diag_normal_log_density,
};
use crate::model::{LatentSpec, Layout, Model};
use crate::scalar::Scalar;
use crate::tape::TapeEngine;
use crate::transforms::Transform;

/// `n` independent blocks, each with one latent `u_b` and one mixing
/// coordinate `ψ_b ~ N(0, 1)`: `q(u_b | ψ_b) = N(c_b + a_b ψ_b, s_b²)`,
/// `τ(ψ_b | u) = N(r_b u_b + t_b, ρ_b²)`. Parameters, a block of `n` each:
/// `c, a, log s` (the guide), then `r, t, log ρ` (the reverse model).
pub(super) struct Blocks {
    n: usize,
    groups: Option<MixingGroups>,
    /// Whether it reports its groups' noise entries
    /// ([`HierarchicalGuide::group_noise`]).
    reports_noise: bool,
    /// Added to the conditional noise entries it reports (0: the right
    /// ones; a test of the range check reports entries past the end).
    conditional_shift: usize,
}

impl Blocks {
    /// With one mixing group per block when `grouped`.
    pub(super) fn new(n: usize, grouped: bool) -> Self {
        let groups = grouped.then(|| {
            let groups = (0..n)
                .map(|b| MixingGroup {
                    psi: b..b + 1,
                    latents: vec![b],
                    reverse_noise: b..b + 1,
                })
                .collect();
            MixingGroups::new(n, n, n, groups).unwrap()
        });
        Self {
            n,
            groups,
            reports_noise: false,
            conditional_shift: 0,
        }
    }

    /// The guide reporting its groups' noise entries (block `b` reads
    /// entry `b` of the mixing and the conditional noise): a per-point
    /// minibatch step draws its batch's noise alone.
    pub(super) fn reporting_noise(self) -> Self {
        Self {
            reports_noise: true,
            ..self
        }
    }

    /// The guide reporting each conditional entry `shift` past the right
    /// one (past the end for `shift ≥ n`: a test of the range check).
    pub(super) fn shifting_conditional_noise(self, shift: usize) -> Self {
        Self {
            conditional_shift: shift,
            ..self
        }
    }

    fn get<T: Scalar>(&self, params: &[T], which: usize, b: usize) -> T {
        params[which * self.n + b]
    }

    fn conditional<T: Scalar>(&self, params: &[T], b: usize, psi: T, u: T) -> T {
        let mean = self.get(params, 0, b) + self.get(params, 1, b) * psi;
        diag_normal_log_density(&[u], &[mean], &[self.get(params, 2, b)])
    }

    fn reverse<T: Scalar>(&self, params: &[T], b: usize, u: T, psi: T) -> T {
        let mean = self.get(params, 3, b) * u + self.get(params, 4, b);
        diag_normal_log_density(&[psi], &[mean], &[self.get(params, 5, b)])
    }

    fn reverse_draw<T: Scalar>(&self, params: &[T], b: usize, u: T, noise: f64) -> T {
        self.get(params, 3, b) * u + self.get(params, 4, b) + self.get(params, 5, b).exp() * noise
    }

    /// Block `b`'s parameters, as those of a one-block guide.
    fn block_params(&self, params: &[f64], b: usize) -> Vec<f64> {
        (0..6).map(|which| params[which * self.n + b]).collect()
    }
}

impl HierarchicalGuide for Blocks {
    fn latent_dim(&self) -> usize {
        self.n
    }
    fn mixing_dim(&self) -> usize {
        self.n
    }
    fn has_reverse_model(&self) -> bool {
        true
    }
    fn param_layout(&self) -> ParamLayout {
        let mut layout = ParamLayout::default();
        for name in ["c", "a", "log_s", "r", "t", "log_rho"] {
            layout.push(name, &[self.n]);
        }
        layout
    }
    fn init_params<R: rand::Rng + ?Sized>(&self, _: &mut R) -> Vec<f64> {
        vec![0.0; 6 * self.n]
    }
    fn reverse_params(&self) -> std::ops::Range<usize> {
        3 * self.n..6 * self.n
    }
    fn sample_conditional<T: Scalar>(
        &self,
        params: &[T],
        psi: &[T],
        noise: &[f64],
        u: &mut [T],
        _: &mut Workspace<T>,
    ) {
        for b in 0..self.n {
            u[b] = self.get(params, 0, b)
                + self.get(params, 1, b) * psi[b]
                + self.get(params, 2, b).exp() * noise[b];
        }
    }
    fn log_conditional<T: Scalar>(
        &self,
        params: &[T],
        psi: &[T],
        u: &[T],
        _: &mut Workspace<T>,
    ) -> T {
        let mut total = self.conditional(params, 0, psi[0], u[0]);
        for b in 1..self.n {
            total += self.conditional(params, b, psi[b], u[b]);
        }
        total
    }
    fn sample_reverse<T: Scalar>(
        &self,
        params: &[T],
        u: &[T],
        noise: &[f64],
        psi: &mut [T],
        _: &mut Workspace<T>,
    ) {
        for b in 0..self.n {
            psi[b] = self.reverse_draw(params, b, u[b], noise[b]);
        }
    }
    fn log_reverse<T: Scalar>(&self, params: &[T], u: &[T], psi: &[T], _: &mut Workspace<T>) -> T {
        let mut total = self.reverse(params, 0, u[0], psi[0]);
        for b in 1..self.n {
            total += self.reverse(params, b, u[b], psi[b]);
        }
        total
    }
    fn mixing_groups(&self) -> Option<&MixingGroups> {
        self.groups.as_ref()
    }
    fn group_noise(
        &self,
        group: usize,
        mixing: &mut Vec<usize>,
        conditional: &mut Vec<usize>,
    ) -> bool {
        if self.reports_noise && self.groups.is_some() {
            mixing.push(group);
            conditional.push(group + self.conditional_shift);
        }
        self.reports_noise && self.groups.is_some()
    }
    fn log_conditional_group<T: Scalar>(
        &self,
        params: &[T],
        group: usize,
        psi: &[T],
        u: &[T],
        _: &mut Workspace<T>,
    ) -> T {
        self.conditional(params, group, psi[0], u[group])
    }
    fn sample_reverse_group<T: Scalar>(
        &self,
        params: &[T],
        group: usize,
        u: &[T],
        noise: &[f64],
        psi: &mut [T],
        _: &mut Workspace<T>,
    ) {
        psi[0] = self.reverse_draw(params, group, u[group], noise[0]);
    }
    fn log_reverse_group<T: Scalar>(
        &self,
        params: &[T],
        group: usize,
        u: &[T],
        psi: &[T],
        _: &mut Workspace<T>,
    ) -> T {
        self.reverse(params, group, u[group], psi[0])
    }
}

/// `z_n ~ N(0, 1)`, `x_n ~ N(z_n, σ²)`: `log p(x) = Σ_n log N(x_n; 0, 1 + σ²)`
/// and the posterior `z_n | x_n ~ N(x_n / (1 + σ²), σ² / (1 + σ²))`.
struct LinearGaussian {
    x: Vec<f64>,
    sigma: f64,
}

impl LinearGaussian {
    fn log_evidence(&self) -> f64 {
        let var = 1.0 + self.sigma * self.sigma;
        self.x
            .iter()
            .map(|x| -0.5 * x * x / var - 0.5 * (2.0 * std::f64::consts::PI * var).ln())
            .sum()
    }

    /// The guide whose marginal is the posterior (`a² + s² = v`), with the
    /// exact reverse model `q(ψ | u)` when `exact_reverse`, else one whose
    /// scale is 1.5 times too wide and whose mean is shifted by 0.3.
    fn posterior_params(&self, exact_reverse: bool) -> Vec<f64> {
        let n = self.x.len();
        let s2 = self.sigma * self.sigma;
        let v = s2 / (1.0 + s2);
        let (mut c, mut a, mut log_s) = (vec![], vec![], vec![]);
        let (mut r, mut t, mut log_rho) = (vec![], vec![], vec![]);
        for (i, x) in self.x.iter().enumerate() {
            let share = 0.3 + 0.1 * i as f64; // of v carried by ψ
            let (ai, si2) = ((share * v).sqrt(), (1.0 - share) * v);
            let ci = x / (1.0 + s2);
            // q(ψ | u) ∝ N(ψ; 0, 1) N(u; c + a ψ, s²).
            let precision = 1.0 + ai * ai / si2;
            let ri = ai / si2 / precision;
            c.push(ci);
            a.push(ai);
            log_s.push(0.5 * si2.ln());
            if exact_reverse {
                r.push(ri);
                t.push(-ri * ci);
                log_rho.push(-0.5 * precision.ln());
            } else {
                r.push(ri);
                t.push(-ri * ci + 0.3);
                log_rho.push(-0.5 * precision.ln() + 1.5f64.ln());
            }
        }
        assert_eq!(c.len(), n);
        [c, a, log_s, r, t, log_rho].concat()
    }
}

impl Model for LinearGaussian {
    fn layout(&self) -> Layout {
        Layout::new(vec![LatentSpec::vector(
            "z",
            self.x.len(),
            Transform::Identity,
        )])
    }
    fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
        let zero = T::constant(0.0);
        let log_sigma = T::constant(self.sigma.ln());
        let mut total = zero;
        for (&z, &x) in u.iter().zip(&self.x) {
            total += diag_normal_log_density(&[z], &[zero], &[zero]);
            total += diag_normal_log_density(&[T::constant(x)], &[z], &[log_sigma]);
        }
        total
    }
}

fn model(n: usize) -> LinearGaussian {
    LinearGaussian {
        x: (0..n).map(|i| 1.3 * (i as f64) - 2.0).collect(),
        sigma: 0.7,
    }
}

/// Parameters away from any optimum, different per block.
pub(super) fn rough_params(n: usize) -> Vec<f64> {
    (0..6 * n)
        .map(|i| 0.37 * ((i * 7 + 3) as f64).sin() - 0.1)
        .collect()
}

/// Block `b`'s share of `noise` (drawn for `Blocks::new(n, _)`), for a
/// one-block guide.
fn block_noise(noise: &StepNoise, one: &Blocks, n: usize, b: usize) -> StepNoise {
    let objective = noise.objective();
    let mut out = StepNoise::new(one, objective);
    let [mixing, conditional, reverse] = out.buffers_mut();
    for m in 0..objective.m() {
        mixing[m] = noise.mixing(m)[b];
        conditional[m] = noise.conditional(m)[b];
        for k in 0..objective.k() {
            reverse[m * objective.k() + k] = noise.reverse(m, k)[b];
        }
    }
    assert_eq!(noise.mixing(0).len(), n);
    out
}

#[test]
fn factorised_upper_bound_is_the_sum_of_one_block_bounds() {
    let n = 5;
    let (grouped, whole, one) = (
        Blocks::new(n, true),
        Blocks::new(n, false),
        Blocks::new(1, false),
    );
    let params = rough_params(n);
    let mut rng = StdRng::seed_from_u64(11);
    for k in [0, 1, 4, 16] {
        let noise = StepNoise::draw(&grouped, Diwhvi::new(3, k), &mut rng);
        for m in 0..3 {
            let (factorised, u) = sandwich(&grouped, &params, &noise, m);
            let (mut upper, mut lower) = (0.0, 0.0);
            for (b, &u) in u.iter().enumerate() {
                let noise_b = block_noise(&noise, &one, n, b);
                let (block, u_b) = sandwich(&one, &grouped.block_params(&params, b), &noise_b, m);
                assert_eq!(u_b, [u]);
                upper += block.upper;
                lower += block.lower.unwrap_or(f64::NAN);
            }
            assert!(
                (factorised.upper - upper).abs() < 1e-12,
                "K = {k}: {} against {upper}",
                factorised.upper
            );
            if k > 0 {
                let factorised_lower = factorised.lower.unwrap();
                assert!((factorised_lower - lower).abs() < 1e-12, "K = {k}");
                // The whole-ψ importance sum on the same draws is another
                // number (the factorisation acts).
                let (joint, _) = sandwich(&whole, &params, &noise, m);
                assert!((joint.upper - upper).abs() > 1e-6, "K = {k}");
            } else {
                assert_eq!(factorised.lower, None);
            }
        }
    }
}

#[test]
fn factorised_bound_is_exact_with_the_exact_reverse_model_and_below_otherwise() {
    let model = model(6);
    let guide = Blocks::new(6, true);
    let exact = model.log_evidence();
    let mut rng = StdRng::seed_from_u64(5);
    // The exact reverse model makes every weight of a group log q(u_n): the
    // bound is log p(x) on every draw.
    let params = model.posterior_params(true);
    let estimate =
        estimate_bound(&model, &guide, &params, Diwhvi::new(3, 4), 50, &mut rng).unwrap();
    assert!(
        (estimate.mean - exact).abs() < 1e-10,
        "{} against {exact}",
        estimate.mean
    );
    assert!(estimate.std_error < 1e-10);
    // A wrong reverse model: below log p(x) by many standard errors, and
    // tighter with more inner samples.
    let params = model.posterior_params(false);
    let loose = estimate_bound(&model, &guide, &params, Diwhvi::new(1, 1), 4000, &mut rng).unwrap();
    let tight =
        estimate_bound(&model, &guide, &params, Diwhvi::new(1, 32), 4000, &mut rng).unwrap();
    for e in [loose, tight] {
        assert!(e.mean + 4.0 * e.std_error < exact, "{e:?} against {exact}");
    }
    let gap = |e: super::Estimate| exact - e.mean;
    assert!(gap(tight) < 0.5 * gap(loose), "{tight:?} {loose:?}");
    assert!(gap(tight) > 0.0 && gap(tight) < 0.1, "{tight:?}");
}

fn gradient<E: GradientEngine>(
    model: &LinearGaussian,
    guide: &Blocks,
    params: &[f64],
    noise: &StepNoise,
    engine: &E,
    estimator: GradientEstimator,
) -> (f64, Vec<f64>) {
    let mut g = vec![0.0; params.len()];
    let value =
        value_and_gradient_with(model, guide, params, noise, engine, estimator, &mut g).unwrap();
    (value, g)
}

/// Central differences of the bound on fixed noise.
fn finite_differences(
    model: &LinearGaussian,
    guide: &Blocks,
    params: &[f64],
    noise: &StepNoise,
) -> Vec<f64> {
    let bound = DiwhviObjective::new(model, guide, noise);
    let h = 1e-5;
    (0..params.len())
        .map(|i| {
            let (mut up, mut down) = (params.to_vec(), params.to_vec());
            up[i] += h;
            down[i] -= h;
            (bound.eval(&up) - bound.eval(&down)) / (2.0 * h)
        })
        .collect()
}

#[test]
fn factorised_gradients_match_finite_differences_on_both_engines() {
    let n = 4;
    let model = model(n);
    let guide = Blocks::new(n, true);
    let params = rough_params(n);
    let mut rng = StdRng::seed_from_u64(3);
    let noise = StepNoise::draw(&guide, Diwhvi::new(3, 5), &mut rng);
    let numeric = finite_differences(&model, &guide, &params, &noise);
    let bound: f64 = DiwhviObjective::new(&model, &guide, &noise).eval(&params);
    let forward = gradient(
        &model,
        &guide,
        &params,
        &noise,
        &ForwardEngine::<8>::new(),
        GradientEstimator::Reparameterized,
    );
    let tape = gradient(
        &model,
        &guide,
        &params,
        &noise,
        &TapeEngine,
        GradientEstimator::Reparameterized,
    );
    for (value, g) in [&forward, &tape] {
        assert!((value - bound).abs() < 1e-12);
        for (i, (a, b)) in g.iter().zip(&numeric).enumerate() {
            assert!(
                (a - b).abs() < 1e-6 * (1.0 + b.abs()),
                "parameter {i}: {a} against {b}"
            );
        }
    }
    for (a, b) in forward.1.iter().zip(&tape.1) {
        assert!((a - b).abs() < 1e-12 * (1.0 + b.abs()));
    }
}

#[test]
fn factorised_gradients_are_the_one_block_gradients_per_group() {
    // With M = 1 and a model that factorises over the points, the bound is
    // a sum over blocks, so both estimators' gradients (DReG's stops taken
    // per group) are the one-block guides' gradients side by side.
    let n = 4;
    let model = model(n);
    let guide = Blocks::new(n, true);
    let one = Blocks::new(1, false);
    let params = rough_params(n);
    let mut rng = StdRng::seed_from_u64(8);
    let noise = StepNoise::draw(&guide, Diwhvi::new(1, 6), &mut rng);
    for estimator in [
        GradientEstimator::Reparameterized,
        GradientEstimator::DoublyReparameterized,
    ] {
        for tape in [false, true] {
            let run =
                |model: &LinearGaussian, guide: &Blocks, params: &[f64], noise: &StepNoise| {
                    if tape {
                        gradient(model, guide, params, noise, &TapeEngine, estimator)
                    } else {
                        gradient(
                            model,
                            guide,
                            params,
                            noise,
                            &ForwardEngine::<8>::new(),
                            estimator,
                        )
                    }
                };
            let (value, g) = run(&model, &guide, &params, &noise);
            let mut sum = 0.0;
            for b in 0..n {
                let model_b = LinearGaussian {
                    x: vec![model.x[b]],
                    sigma: model.sigma,
                };
                let noise_b = block_noise(&noise, &one, n, b);
                let (value_b, g_b) = run(&model_b, &one, &guide.block_params(&params, b), &noise_b);
                sum += value_b;
                for which in 0..6 {
                    let (a, e) = (g[which * n + b], g_b[which]);
                    assert!(
                        (a - e).abs() < 1e-12 * (1.0 + e.abs()),
                        "{estimator:?}, tape {tape}, block {b}, parameter {which}: {a} against {e}"
                    );
                }
            }
            assert!((value - sum).abs() < 1e-12);
        }
    }
    // The DReG gradient of τ's parameters is not the plain one (the
    // comparison above is not vacuous).
    let plain = gradient(
        &model,
        &guide,
        &params,
        &noise,
        &TapeEngine,
        GradientEstimator::Reparameterized,
    );
    let dreg = gradient(
        &model,
        &guide,
        &params,
        &noise,
        &TapeEngine,
        GradientEstimator::DoublyReparameterized,
    );
    assert!(
        guide
            .reverse_params()
            .any(|i| (plain.1[i] - dreg.1[i]).abs() > 1e-6)
    );
}

#[test]
fn groups_built_for_other_dimensions_are_refused() {
    let mut guide = Blocks::new(3, true);
    guide.n = 2;
    let err = crate::input::check_params(&guide, &[0.0; 12]).unwrap_err();
    assert!(matches!(
        err,
        crate::input::InputError::MixingGroupsMismatch {
            groups: [3, 3, 3],
            guide: [2, 2, 2]
        }
    ));
}

#[test]
fn groups_that_do_not_factorise_the_guide_are_refused() {
    use crate::guide::MixingGroupsError;
    let group =
        |psi: std::ops::Range<usize>, latents: std::ops::Range<usize>, reverse_noise| MixingGroup {
            psi,
            latents: latents.collect(),
            reverse_noise,
        };
    // ψ ranges out of order.
    let err = MixingGroups::new(
        2,
        2,
        2,
        vec![group(1..2, 0..1, 0..1), group(0..1, 1..2, 1..2)],
    );
    assert!(matches!(
        err,
        Err(MixingGroupsError::MixingNotTiled {
            group: 0,
            expected: 0,
            ..
        })
    ));
    // ψ ranges that stop short of d.
    let err = MixingGroups::new(
        2,
        3,
        2,
        vec![group(0..1, 0..1, 0..1), group(1..2, 1..2, 1..2)],
    );
    assert!(matches!(
        err,
        Err(MixingGroupsError::MixingDim {
            end: 2,
            mixing_dim: 3
        })
    ));
    // A latent in two groups.
    let err = MixingGroups::new(
        2,
        2,
        2,
        vec![group(0..1, 0..2, 0..1), group(1..2, 1..2, 1..2)],
    );
    assert!(matches!(
        err,
        Err(MixingGroupsError::Latents {
            index: 1,
            count: 2,
            ..
        })
    ));
    // Latents past D.
    let err = MixingGroups::new(
        2,
        2,
        2,
        vec![group(0..1, 0..1, 0..1), group(1..2, 1..3, 1..2)],
    );
    assert!(matches!(
        err,
        Err(MixingGroupsError::Range {
            group: 1,
            what: "latent",
            ..
        })
    ));
    // Overlapping reverse noise.
    let err = MixingGroups::new(
        2,
        2,
        2,
        vec![group(0..1, 0..1, 0..2), group(1..2, 1..2, 1..2)],
    );
    assert!(matches!(
        err,
        Err(MixingGroupsError::ReverseNoiseOverlap {
            first: 0,
            second: 1
        })
    ));
    // A block without mixing coordinates is a group of its own.
    let ok = MixingGroups::new(
        3,
        2,
        2,
        vec![group(0..0, 0..1, 0..0), group(0..2, 1..3, 0..2)],
    );
    assert_eq!(ok.map(|g| g.len()), Ok(2));
}
