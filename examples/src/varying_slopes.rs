//! Varying slopes (issue 14): groups whose intercepts and slopes are
//! correlated, written as Stan's non-centred model with an LKJ prior on the
//! correlation's Cholesky factor, and the simulated data it is fitted to.
//! The one declaration that the `varying_slopes` example and
//! `tests/inference/varying_slopes.rs` share.
//!
//! Stan's program, line by line:
//!
//! ```stan
//! parameters {
//!   vector[2] mu;  vector<lower=0>[2] tau;  cholesky_factor_corr[2] L_Omega;
//!   matrix[2, J] z;  real<lower=0> sigma;
//! }
//! model {
//!   matrix[2, J] beta = rep_matrix(mu, J) + diag_pre_multiply(tau, L_Omega) * z;
//!   mu ~ normal(0, 2);  tau ~ normal(0, 1);  L_Omega ~ lkj_corr_cholesky(2);
//!   to_vector(z) ~ std_normal();  sigma ~ normal(0, 1);
//!   y ~ normal(beta[1, g] + beta[2, g] .* x, sigma);
//! }
//! ```

use iwhvi::distributions::Normal;
use iwhvi::variational;
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// `y[i] ~ N(a[g[i]] + b[g[i]] x[i], σ)`, `(a_j, b_j) = μ + diag(τ) L z_j`,
/// `z_j ~ N(0, I)`, `L ~ LKJ(2)`, `μ ~ N(0, 2)`, `τ, σ ~ HalfNormal(1)`:
/// Stan's `beta = rep_matrix(mu, J) + diag_pre_multiply(tau, L_Omega) * z`.
/// The intercept–slope correlation `rho = (L Lᵀ)₁₀ = L₁₀` is derived.
#[variational]
pub struct VaryingSlopes {
    /// The number of groups `J`.
    #[data]
    pub groups: usize,
    /// Each observation's group, in `0..groups`.
    #[data]
    pub g: Vec<usize>,
    /// Each observation's covariate.
    #[data]
    pub x: Vec<f64>,
    #[latent(Normal(0.0, 2.0), len = 2)]
    mu: Vec<f64>,
    #[latent(HalfNormal(1.0), len = 2)]
    tau: Vec<f64>,
    #[latent(LkjCholesky(2.0), dim = 2)]
    l_omega: DMatrix<f64>,
    #[latent(Normal(0.0, 1.0), len = 2 * groups)]
    z: Vec<f64>,
    #[latent(HalfNormal(1.0))]
    sigma: f64,
    /// The observations.
    #[observe(Normal(
        mu[0] + tau[0] * z[2 * g[i]]
            + (mu[1] + tau[1] * (l_omega[(1, 0)] * z[2 * g[i]] + l_omega[(1, 1)] * z[2 * g[i] + 1])) * x[i],
        sigma,
    ), for i)]
    pub y: Vec<f64>,
    /// The intercept–slope correlation, `(L Lᵀ)₁₀ = L₁₀`.
    #[derived(l_omega[(1, 0)])]
    rho: f64,
}

/// The values the data are simulated with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Truth {
    /// Mean intercept and slope.
    pub mu: [f64; 2],
    /// Their spreads across groups.
    pub tau: [f64; 2],
    /// The correlation of a group's intercept and slope.
    pub rho: f64,
    /// The observation noise.
    pub sigma: f64,
}

/// The simulation's truth: μ = (1, −0.5), τ = (1, 0.8), ρ = 0.7, σ = 0.4.
pub const TRUTH: Truth = Truth {
    mu: [1.0, -0.5],
    tau: [1.0, 0.8],
    rho: 0.7,
    sigma: 0.4,
};

/// 20 groups of 8 observations simulated from [`TRUTH`] (seed 14): for
/// each group `(a_j, b_j) = μ + diag(τ) (z₀, ρ z₀ + √(1 − ρ²) z₁)`, then
/// `x ~ N(0, 1)` and `y ~ N(a_j + b_j x, σ)`.
///
/// ```
/// use iwhvi::model::Model;
/// let model = iwhvi_examples::varying_slopes::simulated();
/// // μ 2, τ 2, L 1, z 40, σ 1.
/// assert_eq!(model.dim(), 46);
/// ```
pub fn simulated() -> VaryingSlopes {
    let mut rng = StdRng::seed_from_u64(14);
    let normal = |m: f64, s: f64, rng: &mut StdRng| {
        rand::distr::Distribution::<f64>::sample(&Normal::new(m, s).unwrap(), rng)
    };
    let (groups, per_group) = (20, 8);
    let Truth {
        mu,
        tau,
        rho,
        sigma,
    } = TRUTH;
    let (mut g, mut x, mut y) = (Vec::new(), Vec::new(), Vec::new());
    for j in 0..groups {
        let (z0, z1) = (normal(0.0, 1.0, &mut rng), normal(0.0, 1.0, &mut rng));
        let a = mu[0] + tau[0] * z0;
        let b = mu[1] + tau[1] * (rho * z0 + (1.0 - rho * rho).sqrt() * z1);
        for _ in 0..per_group {
            let xi = normal(0.0, 1.0, &mut rng);
            g.push(j);
            x.push(xi);
            y.push(a + b * xi + normal(0.0, sigma, &mut rng));
        }
    }
    VaryingSlopes::new(groups, g, x, y).expect("the simulated data are consistent")
}
