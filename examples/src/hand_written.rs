//! Eight schools, non-centred, written by hand exactly as the JAX peer
//! (`../shared/peers/diwhvi_jax.py`) writes it: `u = (mu, log tau,
//! theta_tilde[0..8])`, mu ~ N(0, 5), tau ~ HalfCauchy(5) with the
//! log-Jacobian of `tau = exp(u₁)`, theta_tilde ~ N(0, 1),
//! y_j ~ N(mu + tau theta_tilde_j, sigma_j). Shared by the benchmarks and
//! `tests/macros/{model,guide}_macro.rs`.
//!
//! Data: Rubin (1981), as stored in posteriordb
//! (`eight_schools-eight_schools_noncentered`, BSD-3).

use iwhvi::Scalar;
use iwhvi::model::{LatentSpec, Layout, Model};
use iwhvi::special::LN_SQRT_2PI;
use iwhvi::transforms::Transform;

/// Estimated treatment effects.
pub const Y: [f64; 8] = [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0];
/// Their standard errors.
pub const SIGMA: [f64; 8] = [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0];

/// The model (no data fields: the data are the constants above).
pub struct EightSchools;

fn normal<T: Scalar>(x: T, loc: T, scale: f64) -> T {
    -((x - loc) * (1.0 / scale)).square() * 0.5 - scale.ln() - LN_SQRT_2PI
}

impl Model for EightSchools {
    fn layout(&self) -> Layout {
        Layout::new(vec![
            LatentSpec::scalar("mu", Transform::Identity),
            LatentSpec::scalar("tau", Transform::Exp),
            LatentSpec::vector("theta_tilde", 8, Transform::Identity),
        ])
    }

    fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
        let (mu, log_tau) = (u[0], u[1]);
        let tau = log_tau.exp();
        let mut lp = normal(mu, T::constant(0.0), 5.0) + (2.0 / (std::f64::consts::PI * 5.0)).ln()
            - (tau * 0.2).square().ln_1p()
            + log_tau;
        for j in 0..8 {
            let t = u[2 + j];
            lp += normal(t, T::constant(0.0), 1.0)
                + normal(T::constant(Y[j]), mu + tau * t, SIGMA[j]);
        }
        lp
    }
}
