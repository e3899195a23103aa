//! Varying slopes (issue 14): groups whose intercepts and slopes are
//! correlated, written as Stan's non-centred model with an LKJ prior on
//! the correlation's Cholesky factor (`iwhvi_examples::varying_slopes`,
//! shared with the `varying_slopes` example); the default semi-implicit
//! guide recovers the correlation from simulated data.

use iwhvi::fit::{FitConfig, fit};
use iwhvi::guide::SemiImplicit;
use iwhvi::laplace::laplace;
use iwhvi::model::Model;
use iwhvi::objective::Diwhvi;
use iwhvi::optim::Adam;
use iwhvi::posterior::Posterior;
use iwhvi_examples::varying_slopes::{TRUTH, simulated};
use rand::SeedableRng;
use rand::rngs::StdRng;

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
        (mean - TRUTH.rho).abs() < 2.0 * sd,
        "posterior {mean} ± {sd}, simulated with {}",
        TRUTH.rho
    );
    assert!(sd > 0.02 && sd < 0.4, "posterior sd {sd}");
}
