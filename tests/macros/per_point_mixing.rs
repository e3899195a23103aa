//! `#[mixing(len = z, for j)]` in a guide struct (issue 16, per-point
//! mixing variables): the generated guide against a hand-written
//! computation, its mixing groups and per-group densities against its
//! whole-ψ ones, the factorised bound's gradient against finite
//! differences, and a fit on a local linear-Gaussian model below and close
//! to the exact `log p(y)`.

use iwhvi::guide::{HierarchicalGuide, Workspace};
use iwhvi::objective::{Diwhvi, DiwhviObjective, StepNoise};
use iwhvi::variational;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::fixtures::{
    Local, encoder_by_hand, fitted_is_below_and_close, gradient_matches_finite_differences, local,
    local_log_evidence, log_normal_density, random_params,
};

/// `ψ_j ~ N(0, 1)` per point, `z_j | ψ_j ~ N(h_j(0) + a ψ_j, exp h_j(1))`
/// with `h_j = enc(y_j, sigma_j)`, and `τ(ψ_j | z) = N(r z_j + t, exp log_rho)`.
#[variational(guide = Local)]
struct PerPoint {
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
    #[latent(Normal(enc(j)[0] + a * psi[j], enc(j)[1].exp()), for j)]
    z: Vec<f64>,
}

const Y: [f64; 6] = [1.2, -0.4, 2.5, 0.3, -1.8, 0.9];
const SIGMA: [f64; 6] = [0.5, 1.0, 0.8, 1.5, 0.6, 1.2];

fn model() -> Local {
    local(&Y, &SIGMA)
}

#[test]
fn a_per_point_guide_matches_a_hand_written_one() {
    let model = model();
    let guide = PerPoint::new(&model).unwrap();
    let n = Y.len();
    assert_eq!((guide.latent_dim(), guide.mixing_dim()), (n, n));
    assert!(guide.has_reverse_model());
    let params = random_params(&guide, 3);
    let (a, r, t, rho) = (params[0], params[1], params[2], params[3].exp());
    let mut rng = StdRng::seed_from_u64(4);
    let mut normal = || iwhvi::__private::normal_init(&mut rng, 1.0);
    let psi: Vec<f64> = (0..n).map(|_| normal()).collect();
    let eps: Vec<f64> = (0..n).map(|_| normal()).collect();
    let mut workspace = Workspace::new(&guide);
    let mut u = vec![0.0; n];
    guide.sample_conditional(&params, &psi, &eps, &mut u, &mut workspace);
    let lq = guide.log_conditional(&params, &psi, &u, &mut workspace);
    let lr = guide.log_reverse(&params, &u, &psi, &mut workspace);
    let (mut want_lq, mut want_lr) = (0.0, 0.0);
    for j in 0..n {
        let h = encoder_by_hand(&params[4..], [Y[j], SIGMA[j]]);
        let (loc, scale) = (h[0] + a * psi[j], h[1].exp());
        let z = loc + scale * eps[j];
        assert!((u[j] - z).abs() < 1e-10, "{j}: {} vs {z}", u[j]);
        want_lq += log_normal_density(z, loc, scale);
        want_lr += log_normal_density(psi[j], r * z + t, rho);
    }
    assert!((lq - want_lq).abs() < 1e-10, "{lq} vs {want_lq}");
    assert!((lr - want_lr).abs() < 1e-10, "{lr} vs {want_lr}");
}

#[test]
fn the_groups_are_the_points_and_their_densities_add_up() {
    let model = model();
    let guide = PerPoint::new(&model).unwrap();
    let n = Y.len();
    let groups = guide
        .mixing_groups()
        .expect("a per-point guide reports groups");
    assert_eq!(groups.len(), n);
    for (j, group) in groups.groups().iter().enumerate() {
        assert_eq!(
            (group.psi.clone(), group.latents.clone()),
            (j..j + 1, vec![j])
        );
    }
    let params = random_params(&guide, 5);
    let mut rng = StdRng::seed_from_u64(6);
    let mut normal = || iwhvi::__private::normal_init(&mut rng, 1.0);
    let psi: Vec<f64> = (0..n).map(|_| normal()).collect();
    let eps: Vec<f64> = (0..n).map(|_| normal()).collect();
    let reverse_noise: Vec<f64> = (0..n).map(|_| normal()).collect();
    let mut ws = Workspace::new(&guide);
    let mut u = vec![0.0; n];
    guide.sample_conditional(&params, &psi, &eps, &mut u, &mut ws);
    guide.prepare_reverse(&params, &u, &mut ws);
    let mut drawn = vec![0.0; n];
    guide.sample_reverse(&params, &u, &reverse_noise, &mut drawn, &mut ws);
    let (mut lq, mut lr, mut lm) = (0.0, 0.0, 0.0);
    for j in 0..n {
        lq += guide.log_conditional_group(&params, j, &psi[j..j + 1], &u, &mut ws);
        lr += guide.log_reverse_group(&params, j, &u, &psi[j..j + 1], &mut ws);
        lm += guide.log_mixing_group(&params, j, &psi[j..j + 1], &mut ws);
        let mut one = [0.0];
        guide.sample_reverse_group(&params, j, &u, &reverse_noise[j..j + 1], &mut one, &mut ws);
        assert!((one[0] - drawn[j]).abs() < 1e-14);
    }
    let whole_q = guide.log_conditional(&params, &psi, &u, &mut ws);
    let whole_r = guide.log_reverse(&params, &u, &psi, &mut ws);
    assert!((lq - whole_q).abs() < 1e-10, "{lq} vs {whole_q}");
    assert!((lr - whole_r).abs() < 1e-10, "{lr} vs {whole_r}");
    assert!((lm - guide.log_mixing(&params, &psi)).abs() < 1e-12);
}

#[test]
fn the_per_point_bound_gradient_matches_finite_differences() {
    let model = model();
    let guide = PerPoint::new(&model).unwrap();
    let params = random_params(&guide, 7);
    let mut rng = StdRng::seed_from_u64(8);
    let noise = StepNoise::draw(&guide, Diwhvi::new(2, 3), &mut rng);
    let objective = DiwhviObjective::new(&model, &guide, &noise);
    gradient_matches_finite_differences(&objective, &params);
}

// Six points: within 0.05 nats per point (measured: 0.20 in all).
#[test]
fn a_fitted_per_point_guide_is_below_and_close_to_the_exact_evidence() {
    let model = model();
    let guide = PerPoint::new(&model).unwrap();
    let exact = local_log_evidence(&Y, &SIGMA);
    fitted_is_below_and_close((&model, &guide, "per-point"), (8, 3000), exact);
}
