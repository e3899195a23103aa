//! Eight schools, *non-centred*, as a `#[variational]` model: the one
//! declaration the `eight_schools` example, the model-macro tests and the
//! benchmarks share. `tests/macros/model_macro.rs` checks it against the
//! hand-written log joint of [`crate::hand_written`].
//!
//! Data: Rubin (1981), as stored in posteriordb
//! (`eight_schools-eight_schools_noncentered`, BSD-3).

use iwhvi::variational;

/// log p(y) by quadrature (`../shared/peers`).
pub const EXACT_LOG_EVIDENCE: f64 = -31.311;

/// Eight schools, non-centred: mu ~ N(0, 5), tau ~ HalfCauchy(5),
/// theta_tilde_j ~ N(0, 1), y_j ~ N(mu + tau theta_tilde_j, sigma_j);
/// the school effects theta_j = mu + tau theta_tilde_j are derived.
#[variational]
pub struct EightSchools {
    /// Standard errors of the estimates.
    #[data]
    pub sigma: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfCauchy(5.0))]
    tau: f64,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    theta_tilde: Vec<f64>,
    /// Estimated treatment effects.
    #[observe(Normal(mu + tau * theta_tilde[j], sigma[j]), for j)]
    pub y: Vec<f64>,
    #[derived(mu + tau * theta_tilde[j], for j)]
    theta: [f64; 8],
}
