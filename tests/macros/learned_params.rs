//! `#[param]` fields of a model against a hand-written log joint: the
//! value and the gradient in the learned parameters (through a plate that
//! reads them, which keeps the scalar loop) and in the latents.

use iwhvi::model::Model;
use iwhvi::variational;
use iwhvi::{Dual, Scalar};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// `y_i ~ N(b + w[g_i], s)`, `b ~ N(m, 2)`, with `w` (a vector), `m`
/// and `s > 0` learned.
#[variational]
struct Groups {
    #[data]
    groups: usize,
    #[data]
    g: Vec<usize>,
    #[param(init = 0.0, len = groups)]
    w: Vec<f64>,
    #[param(init = 1.0)]
    m: f64,
    #[param(init = 2.0, lower = 0.0)]
    s: f64,
    #[latent(Normal(m, 2.0))]
    b: f64,
    #[observe(Normal(b + w[g[i]], s), for i)]
    y: Vec<f64>,
}

/// The same log joint by hand, `theta = (w, m, log s)`.
fn hand_written<T: Scalar>(g: &[usize], y: &[f64], theta: &[T], u: &[T]) -> T {
    let k = theta.len() - 2;
    let (w, m, s) = (&theta[..k], theta[k], theta[k + 1].exp());
    let b = u[0];
    let ln_sqrt_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let mut lp = -((b - m) * 0.5).square() * 0.5 - 2f64.ln() - ln_sqrt_2pi;
    for (&gi, &yi) in g.iter().zip(y) {
        let mean = b + w[gi];
        lp += -((mean - yi) / s).square() * 0.5 - s.ln() - ln_sqrt_2pi;
    }
    lp
}

#[test]
fn learned_parameters_enter_the_log_joint_and_its_gradient() {
    let g = vec![0, 1, 2, 1, 0];
    let y = vec![0.3, -1.2, 2.0, 0.1, 0.8];
    let model = Groups::new(3, g.clone(), y.clone()).unwrap();
    assert_eq!(
        (model.w.clone(), model.m, model.s),
        (vec![0.0; 3], 1.0, 2.0)
    );
    let layout = model.theta_layout();
    assert_eq!(layout.element_names(), ["w[0]", "w[1]", "w[2]", "m", "s"]);
    assert!((model.theta()[4] - 2f64.ln()).abs() < 1e-15);
    let mut rng = StdRng::seed_from_u64(4);
    for _ in 0..20 {
        let theta: Vec<f64> = (0..5).map(|_| rng.random_range(-1.5..1.5)).collect();
        let u = [rng.random_range(-2.0..2.0)];
        let (a, b) = (
            model.log_joint_theta(&theta, &u),
            hand_written(&g, &y, &theta, &u),
        );
        assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
        // Derivatives in (theta, u) at once.
        let duals: Vec<Dual<6>> = theta
            .iter()
            .chain(&u)
            .enumerate()
            .map(|(i, &v)| Dual::variable(v, i))
            .collect();
        let (t, z) = duals.split_at(5);
        let (ga, gb) = (model.log_joint_theta(t, z), hand_written(&g, &y, t, z));
        for (x, y) in ga.tangent().iter().zip(gb.tangent()) {
            assert!((x - y).abs() <= 1e-12 * (1.0 + y.abs()), "{x} vs {y}");
        }
        assert!(ga.tangent().iter().all(|d| *d != 0.0));
        // Set into the model: its own log joint at those parameters.
        let mut moved = Groups::new(3, g.clone(), y.clone()).unwrap();
        moved.set_theta(&theta).unwrap();
        let c = moved.log_joint(&u);
        assert!((c - b).abs() <= 1e-12 * (1.0 + b.abs()), "{c} vs {b}");
    }
}
