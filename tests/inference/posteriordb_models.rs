//! posteriordb models declared with `#[variational]`: the generated log
//! joint equals a hand-written one (each model as restated in
//! `../shared/posteriordb/<posterior>/model.md`) at random unconstrained
//! points, to 1e-12 relative, on the data copied into `examples/data`. The
//! models live in the fixtures crate (`iwhvi_examples::posteriordb`), shared
//! with the accuracy suite.

use iwhvi::distributions::{Cauchy, Distribution, HalfCauchy, Normal};
use iwhvi::model::Model;
use iwhvi::transforms::Transform;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use iwhvi_examples::posteriordb as models;
use models::*;

fn assert_same_log_joint(generated: &impl Model, hand_written: impl Fn(&[f64]) -> f64, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..50 {
        let u: Vec<f64> = (0..generated.dim())
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let (a, b) = (generated.log_joint(&u), hand_written(&u));
        assert!(
            (a - b).abs() <= 1e-12 * b.abs().max(1.0),
            "generated {a} vs hand-written {b} at {u:?}"
        );
    }
}

fn normal(x: f64, loc: f64, scale: f64) -> f64 {
    Normal::new(loc, scale).unwrap().log_prob(x)
}

/// `(value, log-Jacobian)` of `exp`.
fn positive(u: f64) -> (f64, f64) {
    Transform::Exp.forward_scalar(u)
}

#[test]
fn eight_schools_centered() {
    let d = data("eight_schools-eight_schools_centered");
    let (y, sigma) = (
        d.get::<Vec<f64>>("y").unwrap(),
        d.get::<Vec<f64>>("sigma").unwrap(),
    );
    let model = EightSchoolsCentered::posteriordb();
    assert_eq!(model.dim(), 10);
    assert_same_log_joint(
        &model,
        |u| {
            let (mu, (tau, jacobian)) = (u[0], positive(u[1]));
            let mut lp =
                normal(mu, 0.0, 5.0) + HalfCauchy::new(5.0).unwrap().log_prob(tau) + jacobian;
            for j in 0..8 {
                lp += normal(u[2 + j], mu, tau) + normal(y[j], u[2 + j], sigma[j]);
            }
            lp
        },
        1,
    );
}

#[test]
fn eight_schools_noncentered() {
    let d = data("eight_schools-eight_schools_noncentered");
    let (y, sigma) = (
        d.get::<Vec<f64>>("y").unwrap(),
        d.get::<Vec<f64>>("sigma").unwrap(),
    );
    let model = EightSchoolsNoncentered::posteriordb();
    assert_same_log_joint(
        &model,
        |u| {
            let (mu, (tau, jacobian)) = (u[8], positive(u[9]));
            let mut lp =
                normal(mu, 0.0, 5.0) + HalfCauchy::new(5.0).unwrap().log_prob(tau) + jacobian;
            for j in 0..8 {
                lp += normal(u[j], 0.0, 1.0) + normal(y[j], mu + tau * u[j], sigma[j]);
            }
            lp
        },
        2,
    );
}

#[test]
fn kidiq_kidscore_momhsiq() {
    let d = data("kidiq-kidscore_momhsiq");
    let (score, hs, iq) = (
        d.get::<Vec<f64>>("kid_score").unwrap(),
        d.get::<Vec<f64>>("mom_hs").unwrap(),
        d.get::<Vec<f64>>("mom_iq").unwrap(),
    );
    let model = KidIq::posteriordb();
    assert_eq!(model.dim(), 4);
    assert_same_log_joint(
        &model,
        |u| {
            let (sigma, jacobian) = positive(u[3]);
            // Cauchy(0, 2.5) restricted to sigma > 0: the half-Cauchy, ln 2 above the Cauchy.
            let mut lp = Cauchy::new(0.0, 2.5).unwrap().log_prob(sigma) + 2f64.ln() + jacobian;
            for n in 0..score.len() {
                lp += normal(score[n], u[0] + u[1] * hs[n] + u[2] * iq[n], sigma);
            }
            lp
        },
        3,
    );
    assert!(
        model.sample_prior(&mut StdRng::seed_from_u64(0)).is_err(),
        "a flat prior has no draws"
    );
}

#[test]
fn kilpisjarvi_mod_kilpisjarvi() {
    let d = data("kilpisjarvi_mod-kilpisjarvi");
    let (x, y) = (
        d.get::<Vec<f64>>("x").unwrap(),
        d.get::<Vec<f64>>("y").unwrap(),
    );
    let scalar = |k: &str| d.get::<f64>(k).unwrap();
    let (pma, psa, pmb, psb) = (
        scalar("pmualpha"),
        scalar("psalpha"),
        scalar("pmubeta"),
        scalar("psbeta"),
    );
    let model = Kilpisjarvi::posteriordb();
    assert_eq!(model.dim(), 3);
    assert_same_log_joint(
        &model,
        |u| {
            let (sigma, jacobian) = positive(u[2]);
            let mut lp = normal(u[0], pma, psa) + normal(u[1], pmb, psb) + jacobian;
            for n in 0..y.len() {
                lp += normal(y[n], u[0] + u[1] * x[n], sigma);
            }
            lp
        },
        4,
    );
}

#[test]
fn ark_ark() {
    let d = data("arK-arK");
    let y = d.get::<Vec<f64>>("y").unwrap();
    let k = d.get::<usize>("K").unwrap();
    let model = ArK::posteriordb();
    assert_eq!(model.dim(), 7);
    assert_same_log_joint(
        &model,
        |u| {
            let (alpha, beta) = (u[0], &u[1..6]);
            let (sigma, jacobian) = positive(u[6]);
            let mut lp =
                normal(alpha, 0.0, 10.0) + HalfCauchy::new(2.5).unwrap().log_prob(sigma) + jacobian;
            lp += beta.iter().map(|&b| normal(b, 0.0, 10.0)).sum::<f64>();
            for t in k..y.len() {
                let mean = alpha + (0..k).map(|j| beta[j] * y[t - j - 1]).sum::<f64>();
                lp += normal(y[t], mean, sigma);
            }
            lp
        },
        5,
    );
}

#[test]
fn gp_pois_regr_gp_pois_regr() {
    use iwhvi::distributions::{Gamma, HalfNormal};
    let d = data("gp_pois_regr-gp_pois_regr");
    let x = d.get::<Vec<f64>>("x").unwrap();
    let k: Vec<u64> = d.get("k").unwrap();
    let model = GpPoisRegr::posteriordb();
    assert_eq!(model.dim(), 13);
    // Hand-written on f64. The kernel is nearly singular (jitter 1e-10), so
    // one ulp of difference in its entries, or two Cholesky algorithms,
    // move log p by ~2e-12 relative; the reference computes the kernel in
    // the same order and uses the same factorisation (tested on its own in
    // tests/linalg_duals.rs) so that it compares the expansion.
    assert_same_log_joint(
        &model,
        |u| {
            let ((rho, j_rho), (alpha, j_alpha)) = (positive(u[0]), positive(u[1]));
            let f_tilde = &u[2..];
            let mut lp = Gamma::new(25.0, 4.0).unwrap().log_prob(rho)
                + HalfNormal::new(2.0).unwrap().log_prob(alpha)
                + j_rho
                + j_alpha
                + f_tilde.iter().map(|&f| normal(f, 0.0, 1.0)).sum::<f64>();
            let n = x.len();
            let c = nalgebra::DMatrix::from_fn(n, n, |i, j| {
                // The helper's order of operations: rounding differences are
                // amplified by the conditioning as well.
                let d = x[i] - x[j];
                alpha * alpha * (-(1.0 / (rho * rho * 2.0)) * (d * d)).exp()
                    + if i == j { 1e-10 } else { 0.0 }
            });
            let f = iwhvi::linalg::cholesky(&c).unwrap()
                * nalgebra::DVector::from_column_slice(f_tilde);
            for (fi, &ki) in f.iter().zip(&k) {
                // k f − e^f − ln k!, the Poisson with log-rate f.
                lp += ki as f64 * fi - fi.exp() - iwhvi::special::ln_factorial(ki);
            }
            lp
        },
        6,
    );
}

#[test]
fn hmm_example_hmm_example() {
    use iwhvi::special::{log_sigmoid, log_sum_exp, sigmoid};
    let d = data("hmm_example-hmm_example");
    let y = d.get::<Vec<f64>>("y").unwrap();
    let model = HmmExample::posteriordb();
    assert_eq!(model.dim(), 4);
    assert_same_log_joint(
        &model,
        |u| {
            // K = 2: each simplex row is (σ(u), 1 − σ(u)); μ₁ = e^{v₁}, μ₂ = μ₁ + e^{v₂}.
            let theta = [
                [sigmoid(u[0]), 1.0 - sigmoid(u[0])],
                [sigmoid(u[1]), 1.0 - sigmoid(u[1])],
            ];
            let mu = [u[2].exp(), u[2].exp() + u[3].exp()];
            let mut lp = log_sigmoid(u[0])
                + log_sigmoid(-u[0])
                + log_sigmoid(u[1])
                + log_sigmoid(-u[1])
                + u[2]
                + u[3];
            lp += normal(mu[0], 3.0, 1.0) + normal(mu[1], 10.0, 1.0);
            let mut alpha = [normal(y[0], mu[0], 1.0), normal(y[0], mu[1], 1.0)];
            for &yt in &y[1..] {
                let next = [0, 1].map(|k| {
                    log_sum_exp(&[alpha[0] + theta[0][k].ln(), alpha[1] + theta[1][k].ln()])
                        + normal(yt, mu[k], 1.0)
                });
                alpha = next;
            }
            lp + log_sum_exp(&alpha)
        },
        7,
    );
}

#[test]
fn low_dim_gauss_mix_low_dim_gauss_mix() {
    use iwhvi::distributions::{Beta, HalfNormal};
    use iwhvi::special::{log_sigmoid, log_sum_exp, sigmoid};
    let d = data("low_dim_gauss_mix-low_dim_gauss_mix");
    let y = d.get::<Vec<f64>>("y").unwrap();
    let model = LowDimGaussMix::posteriordb();
    assert_eq!(model.dim(), 5);
    assert_same_log_joint(
        &model,
        |u| {
            let mu = [u[0], u[0] + u[1].exp()];
            let sigma = [u[2].exp(), u[3].exp()];
            let theta = sigmoid(u[4]);
            let mut lp = u[1] + u[2] + u[3] + log_sigmoid(u[4]) + log_sigmoid(-u[4]);
            lp += normal(mu[0], 0.0, 2.0) + normal(mu[1], 0.0, 2.0);
            lp += sigma
                .iter()
                .map(|&s| HalfNormal::new(2.0).unwrap().log_prob(s))
                .sum::<f64>();
            lp += Beta::new(5.0, 5.0).unwrap().log_prob(theta);
            for &yn in &y {
                lp += log_sum_exp(&[
                    theta.ln() + normal(yn, mu[0], sigma[0]),
                    (1.0 - theta).ln() + normal(yn, mu[1], sigma[1]),
                ]);
            }
            lp
        },
        8,
    );
    let draws = model.sample_prior(&mut StdRng::seed_from_u64(1)).unwrap();
    assert!(draws.mu[0] < draws.mu[1], "ordered prior draws");
}

#[test]
fn sblrc_blr() {
    use iwhvi::distributions::HalfNormal;
    let d = data("sblrc-blr");
    let x: nalgebra::DMatrix<f64> = d.get("X").unwrap();
    let y = nalgebra::DVector::from_vec(d.get::<Vec<f64>>("y").unwrap());
    let model = Sblrc::posteriordb();
    assert_eq!(model.dim(), 6);
    assert_same_log_joint(
        &model,
        |u| {
            let (beta, (sigma, jacobian)) = (&u[..5], positive(u[5]));
            let mut lp = jacobian + HalfNormal::new(10.0).unwrap().log_prob(sigma);
            lp += beta.iter().map(|&b| normal(b, 0.0, 10.0)).sum::<f64>();
            let mean = &x * nalgebra::DVector::from_column_slice(beta);
            for n in 0..y.len() {
                lp += normal(y[n], mean[n], sigma);
            }
            lp
        },
        9,
    );
    let mut broken = x.clone();
    broken[(3, 2)] = f64::NAN;
    let err = Sblrc::new(broken, y).err().unwrap();
    assert!(
        matches!(err, iwhvi::model::DataError::NotFinite { field: "x", .. }),
        "{err:?}"
    );
}

#[test]
fn garch_garch11() {
    use iwhvi::special::{log_sigmoid, sigmoid};
    let d = data("garch-garch11");
    let y = d.get::<Vec<f64>>("y").unwrap();
    let sigma1 = d.get::<f64>("sigma1").unwrap();
    let model = Garch11::posteriordb();
    assert_eq!(model.dim(), 4);
    assert_same_log_joint(
        &model,
        |u| {
            let mu = u[0];
            let (alpha0, j0) = positive(u[1]);
            let alpha1 = sigmoid(u[2]);
            let beta1 = (1.0 - alpha1) * sigmoid(u[3]);
            let mut lp = j0 + log_sigmoid(u[2]) + log_sigmoid(-u[2]);
            lp += (1.0 - alpha1).ln() + log_sigmoid(u[3]) + log_sigmoid(-u[3]);
            let mut s = sigma1;
            for t in 0..y.len() {
                if t > 0 {
                    s = (alpha0 + alpha1 * (y[t - 1] - mu).powi(2) + beta1 * s * s).sqrt();
                }
                lp += normal(y[t], mu, s);
            }
            lp
        },
        10,
    );
    // The layout resolves the moving bound when it names the latents.
    let u = [0.1, -0.5, 0.7, -0.3];
    let latents = model.latents(&u).unwrap();
    assert!((latents.beta1 - (1.0 - latents.alpha1) * sigmoid(u[3])).abs() < 1e-15);
    let back = model
        .layout()
        .unconstrain(&model.layout().constrain(&u).unwrap())
        .unwrap();
    for (a, b) in back.iter().zip(&u) {
        assert!((a - b).abs() < 1e-12, "round trip {back:?} vs {u:?}");
    }
}

/// Every posteriordb data file loads into its model with the generated
/// `load_json` (Stan's JSON, the fields by name, as the models'
/// `posteriordb()` constructors do) and gives the same model as `new` on
/// the variables read one by one (the HMM's prior centres are written in
/// the model, as in its Stan program; a field missing from a file is
/// `model_macro.rs`'s case).
#[test]
fn posteriordb_data_files_load_with_the_generated_reader() {
    use iwhvi_examples::posteriordb as pdb;
    use pdb::data_path as path;
    fn same<M: Model>(a: &M, b: &M) {
        let u: Vec<f64> = (0..a.dim()).map(|i| 0.1 * i as f64 - 0.3).collect();
        assert_eq!(a.log_joint(&u).to_bits(), b.log_joint(&u).to_bits());
    }
    fn get<T: iwhvi::data::FromStanData>(d: &iwhvi::data::StanData, name: &str) -> T {
        d.get(name).unwrap()
    }
    let d = data("eight_schools-eight_schools_centered");
    same(
        &pdb::EightSchoolsCentered::load_json(path("eight_schools-eight_schools_centered"))
            .unwrap(),
        &pdb::EightSchoolsCentered::new(get(&d, "sigma"), get(&d, "y")).unwrap(),
    );
    let d = data("eight_schools-eight_schools_noncentered");
    same(
        &pdb::EightSchoolsNoncentered::load_json(path("eight_schools-eight_schools_noncentered"))
            .unwrap(),
        &pdb::EightSchoolsNoncentered::new(get(&d, "sigma"), get(&d, "y")).unwrap(),
    );
    let d = data("kidiq-kidscore_momhsiq");
    same(
        &pdb::KidIq::load_json(path("kidiq-kidscore_momhsiq")).unwrap(),
        &pdb::KidIq::new(get(&d, "mom_hs"), get(&d, "mom_iq"), get(&d, "kid_score")).unwrap(),
    );
    let d = data("kilpisjarvi_mod-kilpisjarvi");
    same(
        &pdb::Kilpisjarvi::load_json(path("kilpisjarvi_mod-kilpisjarvi")).unwrap(),
        &pdb::Kilpisjarvi::new(
            get(&d, "x"),
            get(&d, "pmualpha"),
            get(&d, "psalpha"),
            get(&d, "pmubeta"),
            get(&d, "psbeta"),
            get(&d, "y"),
        )
        .unwrap(),
    );
    let d = data("arK-arK");
    same(
        &pdb::ArK::load_json(path("arK-arK")).unwrap(),
        &pdb::ArK::new(get(&d, "K"), get(&d, "y")).unwrap(),
    );
    let d = data("gp_pois_regr-gp_pois_regr");
    same(
        &pdb::GpPoisRegr::load_json(path("gp_pois_regr-gp_pois_regr")).unwrap(),
        &pdb::GpPoisRegr::new(get(&d, "x"), get(&d, "k")).unwrap(),
    );
    let d = data("low_dim_gauss_mix-low_dim_gauss_mix");
    same(
        &pdb::LowDimGaussMix::load_json(path("low_dim_gauss_mix-low_dim_gauss_mix")).unwrap(),
        &pdb::LowDimGaussMix::new(get(&d, "y")).unwrap(),
    );
    let d = data("sblrc-blr");
    same(
        &pdb::Sblrc::load_json(path("sblrc-blr")).unwrap(),
        &pdb::Sblrc::new(get(&d, "X"), get(&d, "y")).unwrap(),
    );
    let d = data("garch-garch11");
    same(
        &pdb::Garch11::load_json(path("garch-garch11")).unwrap(),
        &pdb::Garch11::new(get(&d, "y"), get(&d, "sigma1")).unwrap(),
    );
    let d = data("hmm_example-hmm_example");
    same(
        &pdb::HmmExample::load_json(path("hmm_example-hmm_example")).unwrap(),
        &pdb::HmmExample::new(get(&d, "K"), get(&d, "y")).unwrap(),
    );
}
