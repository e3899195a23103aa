//! Learned matrices (`#[param(init = …, rows = …, cols = …)] w: DMatrix<f64>`):
//! the log joint and its derivatives against a hand-written one, θ column
//! by column, the bound's θ-gradient against finite differences, and a
//! saved and loaded fit.

use iwhvi::fit::{FitConfig, fit};
use iwhvi::gradient::ForwardEngine;
use iwhvi::guide::{HierarchicalGuide, MeanField};
use iwhvi::model::Model;
use iwhvi::objective::{Diwhvi, GradientEstimator, StepNoise, value_and_gradient_with_theta};
use iwhvi::optim::Adam;
use iwhvi::posterior::{FittedGuide, Posterior};
use iwhvi::special::LN_SQRT_2PI;
use iwhvi::tape::TapeEngine;
use iwhvi::{Dual, Scalar, variational};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// A factor model with learned loadings `w` (3 × 2): `z ~ N(0, I₃)`,
/// `y_i ~ N(Σ_{r,c} z_r w_rc x_ic + w_21, s)` with a learned scale `s > 0`
/// (a 1 × 1 matrix, to exercise a transform on a matrix), and a vector
/// `v ~ N(w_{·0}, cov)` observed whole (a column as a vector argument).
#[variational]
struct Loadings {
    #[data]
    x: DMatrix<f64>,
    #[data]
    cov: DMatrix<f64>,
    #[param(init = 0.1, rows = 3, cols = x.ncols())]
    w: DMatrix<f64>,
    #[param(init = 1.0, lower = 0.0, rows = 1, cols = 1)]
    s: DMatrix<f64>,
    #[latent(Normal(0.0, 1.0), len = 3)]
    z: Vec<f64>,
    #[observe(Normal(self.mean(i, w, z) + w[(2, 1)], s[(0, 0)]), for i)]
    y: Vec<f64>,
    #[observe(MultivariateNormal(w.column(0), cov))]
    v: Vec<f64>,
}

impl Loadings {
    /// `Σ_{r,c} z_r w_rc x_ic`: a matrix-vector product in a helper.
    fn mean<T: Scalar>(&self, i: usize, w: &DMatrix<T>, z: &[T]) -> T {
        let mut total = T::constant(0.0);
        for r in 0..w.nrows() {
            for c in 0..w.ncols() {
                total += z[r] * w[(r, c)] * self.x[(i, c)];
            }
        }
        total
    }
}

fn x() -> DMatrix<f64> {
    DMatrix::from_row_slice(4, 2, &[1.0, 0.5, -0.3, 1.2, 0.8, -1.0, 0.1, 0.4])
}

const Y: [f64; 4] = [0.7, -0.4, 1.3, 0.2];
const V: [f64; 3] = [0.5, -0.2, 0.9];

fn model() -> Loadings {
    Loadings::new(
        x(),
        DMatrix::from_diagonal_element(3, 3, 2.0),
        Y.to_vec(),
        V.to_vec(),
    )
    .unwrap()
}

/// The same log joint by hand; `theta` is `w` column by column, then
/// `log s`.
fn hand_written<T: Scalar>(theta: &[T], u: &[T]) -> T {
    let x = x();
    let w = |r: usize, c: usize| theta[c * 3 + r];
    let s = theta[6].exp();
    let mut lp = T::constant(0.0);
    for &z in u {
        lp += -(z * z) * 0.5 - LN_SQRT_2PI;
    }
    for (i, &y) in Y.iter().enumerate() {
        let mut mean = w(2, 1);
        for (r, &z) in u.iter().enumerate() {
            for c in 0..2 {
                mean += z * w(r, c) * x[(i, c)];
            }
        }
        lp += -((mean - y) / s).square() * 0.5 - s.ln() - LN_SQRT_2PI;
    }
    for (r, &v) in V.iter().enumerate() {
        lp += -(w(r, 0) - v).square() * 0.25 - 0.5 * 2f64.ln() - LN_SQRT_2PI;
    }
    lp
}

#[test]
fn a_learned_matrix_is_stored_column_by_column() {
    let mut model = model();
    assert_eq!(model.w, DMatrix::from_element(3, 2, 0.1));
    assert_eq!(model.s, DMatrix::from_element(1, 1, 1.0));
    assert_eq!(model.theta_dim(), 7);
    let theta: Vec<f64> = (0..7).map(|k| 0.1 * k as f64).collect();
    model.set_theta(&theta).unwrap();
    for r in 0..3 {
        for c in 0..2 {
            assert_eq!(model.w[(r, c)], theta[c * 3 + r]);
        }
    }
    assert!((model.s[(0, 0)] - 0.6f64.exp()).abs() < 1e-15);
    let back = model.theta();
    assert_eq!(&back[..6], &theta[..6]);
    assert!((back[6] - 0.6).abs() < 1e-15);
    // A matrix of the wrong shape has no unconstrained value.
    model.w = DMatrix::from_element(2, 2, 0.0);
    assert!(model.theta().iter().all(|t| t.is_nan()));
}

#[test]
fn a_learned_matrix_enters_the_log_joint_and_its_gradient() {
    let model = model();
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..10 {
        let theta: Vec<f64> = (0..7).map(|_| rng.random_range(-1.0..1.0)).collect();
        let u: Vec<f64> = (0..3).map(|_| rng.random_range(-1.5..1.5)).collect();
        let (a, b) = (model.log_joint_theta(&theta, &u), hand_written(&theta, &u));
        assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
        let duals: Vec<Dual<10>> = theta
            .iter()
            .chain(&u)
            .enumerate()
            .map(|(i, &v)| Dual::variable(v, i))
            .collect();
        let (t, z) = duals.split_at(7);
        let (ga, gb) = (model.log_joint_theta(t, z), hand_written(t, z));
        for (k, (p, q)) in ga.tangent().iter().zip(gb.tangent()).enumerate() {
            assert!((p - q).abs() <= 1e-12 * (1.0 + q.abs()), "{k}: {p} vs {q}");
            assert!(*p != 0.0, "{k}: a vanishing derivative tests nothing");
        }
        // Set into the model: its own log joint at those parameters.
        let mut moved = Loadings::new(
            x(),
            DMatrix::from_diagonal_element(3, 3, 2.0),
            Y.to_vec(),
            V.to_vec(),
        )
        .unwrap();
        moved.set_theta(&theta).unwrap();
        let c = moved.log_joint(&u);
        assert!((c - b).abs() <= 1e-12 * (1.0 + b.abs()), "{c} vs {b}");
    }
}

/// The bound's gradient in ϑ against central differences on the same
/// noise (IWAE, M = 4), on the forward and the tape engine.
#[test]
fn bound_gradient_in_a_learned_matrix_matches_finite_differences() {
    let model = model();
    let guide = MeanField::new(3);
    let mut rng = StdRng::seed_from_u64(3);
    let params = guide.init_params(&mut rng);
    let noise = StepNoise::draw(&guide, Diwhvi::iwae(4), &mut rng);
    let theta: Vec<f64> = (0..7).map(|_| rng.random_range(-0.8..0.8)).collect();
    let p = params.len();
    let at = |theta: &[f64], tape: bool| {
        let mut g = vec![0.0; p + 7];
        let value = if tape {
            value_and_gradient_with_theta(
                &model,
                &guide,
                &params,
                theta,
                &noise,
                &TapeEngine,
                GradientEstimator::Reparameterized,
                &mut g,
            )
        } else {
            value_and_gradient_with_theta(
                &model,
                &guide,
                &params,
                theta,
                &noise,
                &ForwardEngine::<4>::new(),
                GradientEstimator::Reparameterized,
                &mut g,
            )
        };
        (value.unwrap(), g)
    };
    let h = 1e-5;
    for tape in [false, true] {
        let (_, gradient) = at(&theta, tape);
        for j in 0..7 {
            let (mut up, mut down) = (theta.clone(), theta.clone());
            up[j] += h;
            down[j] -= h;
            let fd = (at(&up, tape).0 - at(&down, tape).0) / (2.0 * h);
            let analytic = gradient[p + j];
            assert!(
                (fd - analytic).abs() < 1e-6 * (1.0 + fd.abs()),
                "theta[{j}] (tape {tape}): finite differences {fd}, gradient {analytic}"
            );
            assert!(analytic.abs() > 1e-4, "a vanishing gradient tests nothing");
        }
    }
}

/// A fit moves the matrix, reproduces bit for bit, and its saved guide
/// carries the matrix (column by column), which loads back into a fresh
/// model with the same log joint.
#[test]
fn a_fit_learns_saves_and_loads_a_matrix() {
    let model = model();
    let guide = MeanField::new(3);
    let config = FitConfig::new(Diwhvi::iwae(2))
        .max_steps(200)
        .progress(false);
    let one = fit(&model, &guide, Adam::new(0.02), &config).unwrap();
    let two = fit(&model, &guide, Adam::new(0.02), &config).unwrap();
    assert_eq!(one.theta, two.theta);
    assert_eq!(one.params, two.params);
    assert_ne!(one.theta, model.theta(), "the fit moved the parameters");
    let mut fitted = model;
    fitted.set_theta(&one.theta).unwrap();
    let posterior = Posterior::new(&fitted, &guide, &one.params).unwrap();
    let json = posterior.fitted().to_json().unwrap();
    let loaded: FittedGuide<MeanField> = FittedGuide::from_json(&json).unwrap();
    let learned = loaded.learned().unwrap();
    assert_eq!(learned.theta(), one.theta.as_slice());
    let constrained = learned.constrained().unwrap();
    assert_eq!(constrained.get("w").unwrap(), fitted.w.as_slice());
    assert_eq!(constrained.get("s").unwrap(), fitted.s.as_slice());
    let mut reloaded = self::model();
    reloaded.set_theta(learned.theta()).unwrap();
    assert_eq!(reloaded.w, fitted.w);
    let u = [0.3, -0.1, 0.5];
    assert_eq!(reloaded.log_joint(&u), fitted.log_joint(&u));
}

/// Probabilistic PCA with a known noise: `z_i ~ N(0, 1)`,
/// `y_i ~ N(w z_i, sigma² I₂)` for a learned `w` (2 × 1). The marginal is
/// `y_i ~ N(0, w wᵀ + sigma² I)`, maximised (Tipping and Bishop, 1999) at
/// `w wᵀ = (λ₁ − sigma²) u₁ u₁ᵀ` with `(λ₁, u₁)` the top eigenpair of
/// `S = (1/N) Σ y_i y_iᵀ` (when `λ₁ > sigma²`). The posterior of each
/// `z_i` is Gaussian and independent of the others, so a mean-field guide
/// holds it exactly and the joint optimum of the bound is the maximum
/// marginal likelihood.
#[variational]
struct Ppca {
    #[data]
    n: usize,
    #[data]
    sigma: f64,
    #[param(init = 0.5, rows = 2, cols = 1)]
    w: DMatrix<f64>,
    #[latent(Normal(0.0, 1.0), len = n)]
    z: Vec<f64>,
    #[observe(Normal(w[(0, 0)] * z[i], sigma), for i)]
    y1: Vec<f64>,
    #[observe(Normal(w[(1, 0)] * z[i], sigma), for i)]
    y2: Vec<f64>,
}

#[test]
fn ppca_loadings_are_the_maximum_marginal_likelihood() {
    use iwhvi::optim::LearningRate;
    use rand_distr::StandardNormal;
    let (n, sigma) = (12, 0.3);
    let mut rng = StdRng::seed_from_u64(21);
    let (mut y1, mut y2) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let z: f64 = rng.sample(StandardNormal);
        let (e1, e2): (f64, f64) = (rng.sample(StandardNormal), rng.sample(StandardNormal));
        y1.push(1.2 * z + sigma * e1);
        y2.push(-0.7 * z + sigma * e2);
    }
    let s = DMatrix::from_fn(2, 2, |r, c| {
        let (a, b) = ([&y1, &y2][r], [&y1, &y2][c]);
        a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / n as f64
    });
    let eigen = s.clone().symmetric_eigen();
    let top = eigen.eigenvalues.imax();
    let (lambda, u) = (
        eigen.eigenvalues[top],
        eigen.eigenvectors.column(top).into_owned(),
    );
    let best = &u * u.transpose() * (lambda - sigma * sigma);
    let model = Ppca::new(n, sigma, y1, y2).unwrap();
    let config = FitConfig::new(Diwhvi::iwae(8))
        .max_steps(24_000)
        .progress(false)
        .estimator(GradientEstimator::DoublyReparameterized);
    let adam = Adam::with_schedule(LearningRate::Exponential {
        initial: 0.03,
        decay: 0.5,
        every: 3000,
    });
    let fitted = fit(&model, &MeanField::new(n), adam, &config).unwrap();
    let w = DMatrix::from_column_slice(2, 1, fitted.learned().unwrap().get("w").unwrap());
    let found = &w * w.transpose();
    let error = (&found - &best).abs().max();
    assert!(
        error < 5e-3,
        "w wᵀ = {found}, closed form {best}, error {error}"
    );
}
