//! Varying slopes (issue 14): groups whose intercepts and slopes are
//! correlated, written as Stan's non-centred model with an LKJ prior on
//! the correlation's Cholesky factor; the default semi-implicit guide
//! recovers the correlation from simulated data.

use iwhvi::distributions::Normal;
use iwhvi::fit::{FitConfig, fit};
use iwhvi::guide::SemiImplicit;
use iwhvi::laplace::laplace;
use iwhvi::model::Model;
use iwhvi::objective::Diwhvi;
use iwhvi::optim::Adam;
use iwhvi::posterior::Posterior;
use iwhvi::variational;
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// `y[i] ~ N(a[g[i]] + b[g[i]] x[i], σ)`, `(a_j, b_j) = μ + diag(τ) L z_j`,
/// `z_j ~ N(0, I)`, `L ~ LKJ(2)`: Stan's
/// `beta = rep_matrix(mu, J) + diag_pre_multiply(tau, L_Omega) * z`.
#[variational]
struct VaryingSlopes {
    #[data]
    groups: usize,
    #[data]
    g: Vec<usize>,
    #[data]
    x: Vec<f64>,
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
    #[observe(Normal(
        mu[0] + tau[0] * z[2 * g[i]]
            + (mu[1] + tau[1] * (l_omega[(1, 0)] * z[2 * g[i]] + l_omega[(1, 1)] * z[2 * g[i] + 1])) * x[i],
        sigma,
    ), for i)]
    y: Vec<f64>,
    /// The intercept–slope correlation, `(L Lᵀ)₁₀ = L₁₀`.
    #[derived(l_omega[(1, 0)])]
    rho: f64,
}

const TRUE_RHO: f64 = 0.7;

fn simulated() -> VaryingSlopes {
    let mut rng = StdRng::seed_from_u64(14);
    let normal = |m: f64, s: f64, rng: &mut StdRng| {
        rand::distr::Distribution::<f64>::sample(&Normal::new(m, s).unwrap(), rng)
    };
    let (groups, per_group) = (20, 8);
    let (mu, tau, sigma) = ([1.0, -0.5], [1.0, 0.8], 0.4);
    let (mut g, mut x, mut y) = (Vec::new(), Vec::new(), Vec::new());
    for j in 0..groups {
        let (z0, z1) = (normal(0.0, 1.0, &mut rng), normal(0.0, 1.0, &mut rng));
        let a = mu[0] + tau[0] * z0;
        let b = mu[1] + tau[1] * (TRUE_RHO * z0 + (1.0 - TRUE_RHO * TRUE_RHO).sqrt() * z1);
        for _ in 0..per_group {
            let xi = normal(0.0, 1.0, &mut rng);
            g.push(j);
            x.push(xi);
            y.push(a + b * xi + normal(0.0, sigma, &mut rng));
        }
    }
    VaryingSlopes::new(groups, g, x, y).unwrap()
}

#[test]
fn the_default_guide_recovers_the_intercept_slope_correlation() {
    let model = simulated();
    // μ 2, τ 2, L 1, z 40, σ 1.
    assert_eq!(model.dim(), 46);
    // The default semi-implicit guide, whitened by the Laplace
    // approximation at the mode (as the accuracy suite runs it).
    let guide = laplace(&model)
        .expect("a mode")
        .precondition(SemiImplicit::new(model.dim(), model.dim()))
        .expect("the guide has the model's dimension");
    let config = FitConfig::new(Diwhvi::new(2, 8))
        .max_steps(3000)
        .seed(3)
        .progress(false);
    let fitted = fit(&model, &guide, Adam::new(0.01), &config).expect("a fit");
    let posterior = Posterior::new(&model, &guide, &fitted.params).unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let draws = posterior
        .sample(4000, &mut rng)
        .expect("4000 draws fit the memory budget");
    let rho = posterior.derived(&draws).unwrap().column("rho").unwrap();
    let mean = rho.iter().sum::<f64>() / rho.len() as f64;
    let sd = (rho.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / rho.len() as f64).sqrt();
    assert!(rho.iter().all(|r| r.abs() < 1.0));
    assert!(mean > 0.0, "the sign: posterior mean {mean}");
    assert!(
        (mean - TRUE_RHO).abs() < 2.0 * sd,
        "posterior {mean} ± {sd}, simulated with {TRUE_RHO}"
    );
    assert!(sd > 0.02 && sd < 0.4, "posterior sd {sd}");
}
