//! Eight schools, *centred*, as a `#[variational]` model, and a guide for
//! it written as a struct. Shared by the `eight_schools` example and
//! `tests/macros/guide_macro.rs`.
//!
//! In its own coordinates the centred posterior is Neal's funnel: theta_j
//! collapses onto mu as tau shrinks. The guide draws mu and tau first and
//! then theta_j | mu, tau ~ Normal(mu + tau a_j, tau exp(b_j)), so it
//! follows the funnel by construction.
//!
//! Data: Rubin (1981), as stored in posteriordb
//! (`eight_schools-eight_schools_centered`, BSD-3).

use iwhvi::variational;

/// Eight schools, centred: mu ~ N(0, 5), tau ~ HalfCauchy(5),
/// theta_j ~ N(mu, tau), y_j ~ N(theta_j, sigma_j).
#[variational]
pub struct Centred {
    /// Standard errors of the estimates.
    #[data]
    pub sigma: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfCauchy(5.0))]
    tau: f64,
    #[latent(Normal(mu, tau), len = sigma.len())]
    theta: Vec<f64>,
    /// Estimated treatment effects.
    #[observe(Normal(theta[j], sigma[j]), for j)]
    pub y: Vec<f64>,
}

/// mu and tau mean-field; theta_j conditioned on the sampled mu and tau.
/// Misspell a latent, drop one, give `theta` a scalar type or put a
/// `Normal` on the positive `tau`, and this does not compile.
#[variational(guide = Centred)]
pub struct FunnelGuide {
    #[param(init = 0.0)]
    mu_loc: f64,
    #[param(init = 0.0)]
    mu_log_scale: f64,
    #[param(init = 1.0)]
    tau_loc: f64,
    #[param(init = -1.0)]
    tau_log_scale: f64,
    #[param(init = 0.0, len = theta)]
    a: Vec<f64>,
    #[param(init = 0.0, len = theta)]
    b: Vec<f64>,
    #[latent(Normal(mu_loc, mu_log_scale.exp()))]
    mu: f64,
    #[latent(LogNormal(tau_loc, tau_log_scale.exp()))]
    tau: f64,
    #[latent(Normal(mu + tau * a[j], tau * b[j].exp()), for j)]
    theta: Vec<f64>,
}
