//! Closures over scalars in model attributes (issue 14): bound by a
//! block's `let` or called in place, in a prior, a plate's predictor, a
//! factor and a transformed value; the log joint and gradient against a
//! hand-written one to 1e-12.

use iwhvi::distributions::{Distribution, HalfNormal, Normal};
use iwhvi::model::Model;
use iwhvi::tape::TapeEngine;
use iwhvi::{Differentiable, ForwardEngine, Scalar, variational};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

#[variational]
pub(crate) struct Closures {
    #[data]
    x: Vec<f64>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[latent(HalfNormal(1.0))]
    tau: f64,
    // A closure bound by `let`, used twice, capturing a latent.
    #[latent(Normal({ let shift = |a| a + mu; shift(1.0) * shift(-1.0) }, 2.0))]
    nu: f64,
    // Called in place, with a typed parameter; a two-parameter closure.
    #[transformed({ let hyp = |a: f64, b: f64| (a * a + b * b).sqrt(); hyp(mu, tau) }, for k)]
    radius: [f64; 2],
    #[observe(Normal((|t: f64| t * t)(nu) + mu * x[i], { let soft = |s| s.softplus(); soft(tau) + 0.1 }), for i)]
    y: Vec<f64>,
    #[factor({ let sq = |a| a * a; -0.5 * sq(radius[0] - 1.0) })]
    penalty: (),
}

pub(crate) const X: [f64; 4] = [0.5, -1.0, 2.0, 0.1];
pub(crate) const Y: [f64; 4] = [0.3, -0.2, 1.1, 0.4];

pub(crate) fn closures() -> Closures {
    Closures::new(X.to_vec(), Y.to_vec()).unwrap()
}

struct ByHand;

impl Differentiable for ByHand {
    fn eval<T: Scalar>(&self, u: &[T]) -> T {
        let c = T::constant;
        let normal = |x: T, loc: T, scale: T| Normal::new(loc, scale).unwrap().log_prob(x);
        let (mu, tau, nu) = (u[0], u[1].exp(), u[2]);
        let mut lp = normal(mu, c(0.0), c(1.0));
        lp += u[1] + HalfNormal::new(c(1.0)).unwrap().log_prob(tau);
        lp += normal(nu, (c(1.0) + mu) * (c(-1.0) + mu), c(2.0));
        let radius = (mu * mu + tau * tau).sqrt();
        let scale = tau.softplus() + 0.1;
        for i in 0..4 {
            lp += normal(c(Y[i]), nu * nu + mu * X[i], scale);
        }
        let d = radius - 1.0;
        lp + d * d * -0.5
    }
}

struct Joint<'a>(&'a Closures);

impl Differentiable for Joint<'_> {
    fn eval<T: Scalar>(&self, u: &[T]) -> T {
        self.0.log_joint(u)
    }
}

#[test]
fn closures_match_the_hand_written_log_joint_and_gradient() {
    let model = closures();
    let mut rng = StdRng::seed_from_u64(21);
    let close = |a: f64, b: f64, what: &str| {
        assert!(
            (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0),
            "{what}: {a} vs {b}"
        );
    };
    for _ in 0..20 {
        let u: Vec<f64> = (0..3).map(|_| rng.random_range(-1.5..1.5)).collect();
        close(model.log_joint(&u[..]), ByHand.eval(&u[..]), "log joint");
        for (engine, (v, g), (w, h)) in [
            (
                "tape",
                TapeEngine.value_and_gradient(&Joint(&model), &u),
                TapeEngine.value_and_gradient(&ByHand, &u),
            ),
            (
                "forward<4>",
                ForwardEngine::<4>::new().value_and_gradient(&Joint(&model), &u),
                ForwardEngine::<4>::new().value_and_gradient(&ByHand, &u),
            ),
        ] {
            close(v, w, engine);
            for (k, (a, b)) in g.iter().zip(&h).enumerate() {
                close(*a, *b, &format!("{engine}: ∂/∂u[{k}]"));
            }
        }
    }
    let latents = model.latents(&[0.3, 0.2, -0.1]).unwrap();
    let derived = model.derived_quantities(&latents);
    let radius = (latents.mu.powi(2) + latents.tau.powi(2)).sqrt();
    assert!((derived.radius[1] - radius).abs() < 1e-15);
}
