//! The ODE solver against outside truth: the Lotka–Volterra trajectory of
//! SciPy's DOP853 at tolerance 1e-13 (`data/lotka_volterra_reference.py`),
//! and a predator–prey model written with `#[variational]` (Stan's
//! Lotka–Volterra case study, Carpenter 2018) whose log joint, through the
//! solver, equals one written by hand from the reference trajectory.

use iwhvi::gradient::{Differentiable, ForwardEngine};

use crate::common::{central_difference, relative_error};
use iwhvi::model::Model;
use iwhvi::ode::{OdeOptions, solve};
use iwhvi::special::LN_SQRT_2PI;
use iwhvi::tape::TapeEngine;
use iwhvi::{Scalar, variational};

struct Reference {
    theta: Vec<f64>,
    z_init: Vec<f64>,
    times: Vec<f64>,
    z: Vec<Vec<f64>>,
}

fn reference() -> Reference {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("data/lotka_volterra_reference.json"))
            .expect("the reference file is JSON");
    let vector = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .expect("an array")
            .iter()
            .map(|x| x.as_f64().expect("a number"))
            .collect()
    };
    Reference {
        theta: vector(&json["theta"]),
        z_init: vector(&json["z_init"]),
        times: vector(&json["times"]),
        z: json["z"]
            .as_array()
            .expect("rows")
            .iter()
            .map(vector)
            .collect(),
    }
}

/// dz/dt of Lotka–Volterra: prey z₀, predators z₁.
fn lotka_volterra<T: Scalar>(theta: &[T], z: &[T], dz: &mut [T]) {
    dz[0] = (theta[0] - theta[1] * z[1]) * z[0];
    dz[1] = (-theta[2] + theta[3] * z[0]) * z[1];
}

#[test]
fn lotka_volterra_matches_scipy_to_1e_8() {
    let r = reference();
    let ys = solve(
        |_, z: &[f64], dz: &mut [f64]| lotka_volterra(&r.theta, z, dz),
        &r.z_init,
        0.0,
        &r.times,
        &OdeOptions::default(),
    )
    .expect("a smooth system");
    for (t, (ours, theirs)) in r.times.iter().zip(ys.iter().zip(&r.z)) {
        for j in 0..2 {
            let rel = relative_error(ours[j], theirs[j]);
            assert!(
                rel < 1e-8,
                "t = {t}, z[{j}]: {} vs {} ({rel:e})",
                ours[j],
                theirs[j]
            );
        }
    }
}

/// Hudson's Bay Company pelts (thousands), 1900–1920: hares, lynx.
const HARE: [f64; 21] = [
    30.0, 47.2, 70.2, 77.4, 36.3, 20.6, 18.1, 21.4, 22.0, 25.4, 27.1, 40.3, 57.0, 76.6, 52.3, 19.5,
    11.2, 7.6, 14.6, 16.2, 24.7,
];
const LYNX: [f64; 21] = [
    4.0, 6.1, 9.8, 35.2, 59.4, 41.7, 19.0, 13.0, 8.3, 9.1, 7.4, 8.0, 12.3, 19.5, 45.7, 51.1, 29.7,
    15.8, 9.7, 10.1, 8.6,
];

/// Stan's case study: the populations follow Lotka–Volterra from
/// `z_init`; each year's pelts are log-normal around them.
#[variational]
struct PredatorPrey {
    #[data]
    times: Vec<f64>,
    #[data]
    hare: Vec<f64>,
    #[data]
    lynx: Vec<f64>,
    #[latent(Normal(1.0, 0.5), lower = 0.0)]
    alpha: f64,
    #[latent(Normal(0.05, 0.05), lower = 0.0)]
    beta: f64,
    #[latent(Normal(1.0, 0.5), lower = 0.0)]
    gamma: f64,
    #[latent(Normal(0.05, 0.05), lower = 0.0)]
    delta: f64,
    #[latent(LogNormal(2.302585092994046, 1.0), len = 2)]
    z_init: Vec<f64>,
    #[latent(LogNormal(-1.0, 1.0), len = 2)]
    sigma: Vec<f64>,
    #[factor(self.pelts(alpha, beta, gamma, delta, z_init, sigma))]
    pelts: (),
}

/// `log LogNormal(y; ln z, σ)`.
fn log_normal_density<T: Scalar>(y: f64, log_z: T, sigma: T) -> T {
    -((log_z - y.ln()) / sigma).square() * 0.5 - sigma.ln() - y.ln() - LN_SQRT_2PI
}

impl PredatorPrey {
    fn pelts<T: Scalar>(
        &self,
        alpha: T,
        beta: T,
        gamma: T,
        delta: T,
        z_init: &[T],
        sigma: &[T],
    ) -> T {
        let theta = [alpha, beta, gamma, delta];
        let Ok(z) = solve(
            |_, z: &[T], dz: &mut [T]| lotka_volterra(&theta, z, dz),
            z_init,
            0.0,
            &self.times,
            &OdeOptions::default(),
        ) else {
            return T::constant(f64::NEG_INFINITY);
        };
        let mut lp = log_normal_density(self.hare[0], z_init[0].ln(), sigma[0])
            + log_normal_density(self.lynx[0], z_init[1].ln(), sigma[1]);
        for (t, zt) in z.iter().enumerate() {
            lp += log_normal_density(self.hare[t + 1], zt[0].ln(), sigma[0]);
            lp += log_normal_density(self.lynx[t + 1], zt[1].ln(), sigma[1]);
        }
        lp
    }
}

/// The same log joint in unconstrained coordinates, written by hand, with
/// the trajectory read from the reference file (valid at its θ and z_init).
fn by_hand(r: &Reference, u: &[f64]) -> f64 {
    let normal = |x: f64, m: f64, s: f64| -((x - m) / s).powi(2) * 0.5 - s.ln() - LN_SQRT_2PI;
    let x: Vec<f64> = u.iter().map(|v| v.exp()).collect();
    // Every latent is positive through exp: the Jacobian is Σ u.
    let jacobian: f64 = u.iter().sum();
    let priors = normal(x[0], 1.0, 0.5)
        + normal(x[1], 0.05, 0.05)
        + normal(x[2], 1.0, 0.5)
        + normal(x[3], 0.05, 0.05)
        + (4..6)
            .map(|j| log_normal_density(x[j], 10f64.ln(), 1.0))
            .sum::<f64>()
        + (6..8)
            .map(|j| log_normal_density(x[j], -1.0, 1.0))
            .sum::<f64>();
    let sigma = [x[6], x[7]];
    let mut lp = log_normal_density(HARE[0], x[4].ln(), sigma[0])
        + log_normal_density(LYNX[0], x[5].ln(), sigma[1]);
    for (t, zt) in r.z.iter().enumerate() {
        lp += log_normal_density(HARE[t + 1], zt[0].ln(), sigma[0]);
        lp += log_normal_density(LYNX[t + 1], zt[1].ln(), sigma[1]);
    }
    priors + jacobian + lp
}

#[test]
fn predator_prey_log_joint_matches_the_reference_trajectory() {
    let r = reference();
    let model =
        PredatorPrey::new(r.times.clone(), HARE.to_vec(), LYNX.to_vec()).expect("valid data");
    assert_eq!(model.dim(), 8);
    let constrained: Vec<f64> = r
        .theta
        .iter()
        .chain(&r.z_init)
        .chain(&[0.25, 0.3])
        .copied()
        .collect();
    let u: Vec<f64> = constrained.iter().map(|x| x.ln()).collect();
    let ours = model.log_joint(&u);
    let theirs = by_hand(&r, &u);
    assert!((ours - theirs).abs() < 1e-8, "{ours} vs {theirs}");
}

struct LogJoint<'a>(&'a PredatorPrey);
impl Differentiable for LogJoint<'_> {
    fn eval<T: Scalar>(&self, u: &[T]) -> T {
        self.0.log_joint(u)
    }
}

#[test]
fn predator_prey_gradients_agree_across_engines_and_with_differences() {
    let r = reference();
    let model =
        PredatorPrey::new(r.times.clone(), HARE.to_vec(), LYNX.to_vec()).expect("valid data");
    let u: Vec<f64> = [0.5, 0.03, 0.9, 0.025, 30.0, 5.0, 0.3, 0.3]
        .iter()
        .map(|x: &f64| x.ln())
        .collect();
    let (value, forward) = ForwardEngine::<8>::new().value_and_gradient(&LogJoint(&model), &u);
    let (tape_value, tape) = TapeEngine.value_and_gradient(&LogJoint(&model), &u);
    assert_eq!(value, tape_value);
    for i in 0..u.len() {
        assert!(
            (forward[i] - tape[i]).abs() <= 1e-9 * forward[i].abs().max(1.0),
            "{i}"
        );
        let fd = central_difference(|u| model.log_joint(u), &u, i);
        assert!(
            (forward[i] - fd).abs() < 1e-4 * fd.abs().max(1.0),
            "{i}: {} vs {fd}",
            forward[i]
        );
    }
}
