//! The doubly-reparameterized estimator for guides without mixing
//! variables (sticking the landing on the ELBO): zero variance at the exact
//! posterior, and the same expectation as the plain reparameterization
//! gradient everywhere.

use iwhvi::ForwardEngine;
use iwhvi::Scalar;
use iwhvi::guide::FullRank;
use iwhvi::model::{LatentSpec, Layout, Model};
use iwhvi::objective::{Diwhvi, GradientEstimator, StepNoise, value_and_gradient_with};
use iwhvi::transforms::Transform;
use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// log p(u) = −½ (u − μ)ᵀ Λ (u − μ): a Gaussian posterior N(μ, Λ⁻¹)
/// (unnormalised; the constant does not matter to gradients).
struct Gaussian {
    mean: Vec<f64>,
    precision: DMatrix<f64>,
}

impl Model for Gaussian {
    fn layout(&self) -> Layout {
        Layout::new(vec![LatentSpec::vector(
            "u",
            self.mean.len(),
            Transform::Identity,
        )])
    }

    fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
        let d = self.mean.len();
        let mut total = T::constant(0.0);
        for i in 0..d {
            for j in 0..d {
                total += (u[i] - self.mean[i]) * (u[j] - self.mean[j]) * self.precision[(i, j)];
            }
        }
        total * -0.5
    }
}

fn gaussian() -> Gaussian {
    let a = DMatrix::from_row_slice(3, 3, &[2.0, 0.3, 0.0, 0.3, 1.0, -0.4, 0.0, -0.4, 0.5]);
    Gaussian {
        mean: vec![1.0, -2.0, 0.5],
        precision: &a * a.transpose() + DMatrix::identity(3, 3) * 0.1,
    }
}

/// FullRank parameters (loc, log_diag, lower by rows) for N(μ, Σ).
fn exact_params(model: &Gaussian) -> Vec<f64> {
    let d = model.mean.len();
    let covariance = model.precision.clone().try_inverse().unwrap();
    let l = covariance.cholesky().unwrap().l();
    let mut params = model.mean.clone();
    params.extend((0..d).map(|i| l[(i, i)].ln()));
    for i in 0..d {
        for j in 0..i {
            params.push(l[(i, j)]);
        }
    }
    params
}

fn gradient(
    model: &Gaussian,
    guide: &FullRank,
    params: &[f64],
    objective: Diwhvi,
    estimator: GradientEstimator,
    rng: &mut StdRng,
) -> Vec<f64> {
    let noise = StepNoise::draw(guide, objective, rng);
    let mut g = vec![0.0; params.len()];
    value_and_gradient_with(
        model,
        guide,
        params,
        &noise,
        &ForwardEngine::<16>::new(),
        estimator,
        &mut g,
    );
    g
}

#[test]
fn at_the_exact_posterior_every_draws_gradient_is_zero() {
    let model = gaussian();
    let guide = FullRank::new(3);
    let params = exact_params(&model);
    for m in [1, 4] {
        let objective = Diwhvi::new(m, 0);
        let mut rng = StdRng::seed_from_u64(m as u64);
        for _ in 0..20 {
            let pathwise = gradient(
                &model,
                &guide,
                &params,
                objective,
                GradientEstimator::DoublyReparameterized,
                &mut rng,
            );
            let norm = DVector::from_vec(pathwise).amax();
            assert!(
                norm < 1e-9,
                "M = {m}: doubly-reparameterized gradient {norm}"
            );
        }
        let plain = gradient(
            &model,
            &guide,
            &params,
            objective,
            GradientEstimator::Reparameterized,
            &mut rng,
        );
        assert!(
            DVector::from_vec(plain).amax() > 1e-3,
            "the plain gradient is noisy at the optimum"
        );
    }
}

#[test]
fn it_has_the_plain_gradients_expectation() {
    let model = gaussian();
    let guide = FullRank::new(3);
    let mut rng = StdRng::seed_from_u64(7);
    let params: Vec<f64> = exact_params(&model)
        .iter()
        .map(|p| p + rng.random_range(-0.3..0.3))
        .collect();
    for m in [1, 3] {
        let objective = Diwhvi::new(m, 0);
        let n = 4000;
        let mut draws = [Vec::new(), Vec::new()];
        for (draws, estimator) in draws.iter_mut().zip([
            GradientEstimator::Reparameterized,
            GradientEstimator::DoublyReparameterized,
        ]) {
            let mut rng = StdRng::seed_from_u64(100 + m as u64);
            for _ in 0..n {
                draws.push(gradient(
                    &model, &guide, &params, objective, estimator, &mut rng,
                ));
            }
        }
        for p in 0..params.len() {
            let stats = |d: &Vec<Vec<f64>>| {
                let mean = d.iter().map(|g| g[p]).sum::<f64>() / n as f64;
                let var = d.iter().map(|g| (g[p] - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
                (mean, var / n as f64)
            };
            let ((a, va), (b, vb)) = (stats(&draws[0]), stats(&draws[1]));
            assert!(
                (a - b).abs() < 4.5 * (va + vb).sqrt() + 1e-12,
                "M = {m}, parameter {p}: plain {a} ± {} vs doubly-reparameterized {b} ± {}",
                va.sqrt(),
                vb.sqrt()
            );
        }
    }
}
