//! Seeded samplers against their distributions: Kolmogorov–Smirnov tests
//! where the CDF has a closed form, moment tests elsewhere; and the
//! reparameterized samplers' derivatives against finite differences.
//!
//! Significance: the KS critical value is taken at α = 0.001
//! (`D > 1.949 / √n`); moment tests reject at |z| > 4.5 (two-sided
//! α ≈ 7e-6 per check). Every test is seeded, so it is deterministic; the
//! level says how unlucky a correct sampler would have to be to fail.

use crate::common::central_difference;
use iwhvi::distributions::*;
use iwhvi::special::{erf, erfc, sigmoid};
use iwhvi::{Dual, Scalar};
use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::f64::consts::{PI, SQRT_2};

const N: usize = 20_000;
const KS_CRITICAL: f64 = 1.949; // √(-ln(α/2) / 2) at α = 0.001
const Z_CRITICAL: f64 = 4.5;

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// The KS statistic `sup |F_n(x) - F(x)|` of draws against a CDF.
fn ks_statistic(mut draws: Vec<f64>, cdf: impl Fn(f64) -> f64) -> f64 {
    draws.sort_by(f64::total_cmp);
    let n = draws.len() as f64;
    draws
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
        })
        .fold(0.0, f64::max)
}

fn assert_ks(name: &str, draws: Vec<f64>, cdf: impl Fn(f64) -> f64) {
    let n = draws.len() as f64;
    let d = ks_statistic(draws, cdf);
    assert!(
        d < KS_CRITICAL / n.sqrt(),
        "{name}: KS statistic {d:.4} exceeds {:.4}",
        KS_CRITICAL / n.sqrt()
    );
}

fn draws<D: rand::distr::Distribution<f64>>(d: &D, seed: u64) -> Vec<f64> {
    let mut r = rng(seed);
    (0..N).map(|_| r.sample(d)).collect()
}

/// z-tests of the sample mean (known variance) and of the sample variance
/// (with its empirical standard error).
fn assert_moments(name: &str, xs: &[f64], mean: f64, variance: f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let z_mean = (m - mean) / (variance / n).sqrt();
    assert!(
        z_mean.abs() < Z_CRITICAL,
        "{name}: mean {m} vs {mean} (z = {z_mean:.2})"
    );
    let sq: Vec<f64> = xs.iter().map(|x| (x - m).powi(2)).collect();
    let s2 = sq.iter().sum::<f64>() / (n - 1.0);
    let se = (sq.iter().map(|q| (q - s2).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt();
    let z_var = (s2 - variance) / se;
    assert!(
        z_var.abs() < Z_CRITICAL,
        "{name}: variance {s2} vs {variance} (z = {z_var:.2})"
    );
}

fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / SQRT_2)
}

/// `P(X ≤ x)` for `X ~ Gamma(k, rate)` with integer shape `k` (Erlang).
fn erlang_cdf(k: u32, rate: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let y = rate * x;
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 1..k {
        term *= y / n as f64;
        sum += term;
    }
    1.0 - (-y).exp() * sum
}

#[test]
fn continuous_samplers_pass_kolmogorov_smirnov() {
    assert_ks("Normal", draws(&Normal::new(1.5, 2.0).unwrap(), 1), |x| {
        normal_cdf((x - 1.5) / 2.0)
    });
    assert_ks(
        "LogNormal",
        draws(&LogNormal::new(-0.3, 0.7).unwrap(), 2),
        |x| {
            if x <= 0.0 {
                0.0
            } else {
                normal_cdf((x.ln() + 0.3) / 0.7)
            }
        },
    );
    assert_ks(
        "HalfNormal",
        draws(&HalfNormal::new(1.7).unwrap(), 3),
        |x| erf(x.max(0.0) / (1.7 * SQRT_2)),
    );
    assert_ks("Cauchy", draws(&Cauchy::new(-1.0, 0.5).unwrap(), 4), |x| {
        0.5 + ((x + 1.0) / 0.5).atan() / PI
    });
    assert_ks(
        "HalfCauchy",
        draws(&HalfCauchy::new(2.5).unwrap(), 5),
        |x| 2.0 * (x.max(0.0) / 2.5).atan() / PI,
    );
    assert_ks(
        "StudentT(2)",
        draws(&StudentT::new(2.0, 0.5, 1.5).unwrap(), 6),
        |x| {
            let t = (x - 0.5) / 1.5;
            0.5 + t / (2.0 * (2.0 + t * t).sqrt())
        },
    );
    assert_ks("Laplace", draws(&Laplace::new(0.7, 1.3).unwrap(), 7), |x| {
        let z = (x - 0.7) / 1.3;
        if z < 0.0 {
            0.5 * z.exp()
        } else {
            1.0 - 0.5 * (-z).exp()
        }
    });
    assert_ks(
        "Logistic",
        draws(&Logistic::new(-2.0, 0.8).unwrap(), 8),
        |x| sigmoid((x + 2.0) / 0.8),
    );
    assert_ks(
        "Exponential",
        draws(&Exponential::new(2.5).unwrap(), 9),
        |x| 1.0 - (-2.5 * x.max(0.0)).exp(),
    );
    assert_ks(
        "Uniform",
        draws(&Uniform::new(-1.0, 3.0).unwrap(), 10),
        |x| ((x + 1.0) / 4.0).clamp(0.0, 1.0),
    );
    assert_ks(
        "Weibull",
        draws(&Weibull::new(1.7, 2.2).unwrap(), 11),
        |x| 1.0 - (-(x.max(0.0) / 2.2).powf(1.7)).exp(),
    );
    assert_ks(
        "Gamma(3, 2)",
        draws(&Gamma::new(3.0, 2.0).unwrap(), 12),
        |x| erlang_cdf(3, 2.0, x),
    );
    // Shape ½: a scaled χ²₁, P(X ≤ x) = erf(√(rate x)).
    assert_ks(
        "Gamma(½, 1.5)",
        draws(&Gamma::new(0.5, 1.5).unwrap(), 13),
        |x| erf((1.5 * x.max(0.0)).sqrt()),
    );
    // 1/X ~ Gamma(shape, rate = scale).
    assert_ks(
        "InverseGamma(3, 2)",
        draws(&InverseGamma::new(3.0, 2.0).unwrap(), 14),
        |x| {
            if x <= 0.0 {
                0.0
            } else {
                1.0 - erlang_cdf(3, 2.0, 1.0 / x)
            }
        },
    );
    assert_ks(
        "Beta(2, 2)",
        draws(&Beta::new(2.0, 2.0).unwrap(), 15),
        |x| {
            let x = x.clamp(0.0, 1.0);
            x * x * (3.0 - 2.0 * x)
        },
    );
    assert_ks(
        "Beta(½, 1)",
        draws(&Beta::new(0.5, 1.0).unwrap(), 16),
        |x| x.clamp(0.0, 1.0).sqrt(),
    );
}

#[test]
fn heavy_shape_samplers_match_their_moments() {
    let (a, b) = (2.5, 4.0);
    assert_moments(
        "Beta(2.5, 4)",
        &draws(&Beta::new(a, b).unwrap(), 20),
        a / (a + b),
        a * b / ((a + b).powi(2) * (a + b + 1.0)),
    );
    let nu = 9.0;
    assert_moments(
        "StudentT(9)",
        &draws(&StudentT::new(nu, 1.0, 2.0).unwrap(), 21),
        1.0,
        4.0 * nu / (nu - 2.0),
    );
    let (shape, scale) = (6.0, 3.0);
    assert_moments(
        "InverseGamma(6, 3)",
        &draws(&InverseGamma::new(shape, scale).unwrap(), 22),
        scale / (shape - 1.0),
        scale * scale / ((shape - 1.0).powi(2) * (shape - 2.0)),
    );
}

fn count_draws<D: rand::distr::Distribution<u64>>(d: &D, seed: u64) -> Vec<f64> {
    let mut r = rng(seed);
    (0..N).map(|_| r.sample(d) as f64).collect()
}

#[test]
fn discrete_samplers_match_their_moments() {
    assert_moments(
        "Bernoulli",
        &count_draws(&Bernoulli::new(0.3).unwrap(), 30),
        0.3,
        0.21,
    );
    let p = sigmoid(-0.4);
    assert_moments(
        "BernoulliLogit",
        &count_draws(&BernoulliLogit::new(-0.4).unwrap(), 31),
        p,
        p * (1.0 - p),
    );
    assert_moments(
        "Binomial",
        &count_draws(&Binomial::new(20, 0.35).unwrap(), 32),
        7.0,
        20.0 * 0.35 * 0.65,
    );
    let p = sigmoid(1.1);
    assert_moments(
        "BinomialLogit",
        &count_draws(&BinomialLogit::new(12, 1.1).unwrap(), 33),
        12.0 * p,
        12.0 * p * (1.0 - p),
    );
    assert_moments(
        "Poisson",
        &count_draws(&Poisson::new(3.5).unwrap(), 34),
        3.5,
        3.5,
    );
    let rate = 1.2f64.exp();
    assert_moments(
        "PoissonLog",
        &count_draws(&PoissonLog::new(1.2).unwrap(), 35),
        rate,
        rate,
    );
    let (mu, phi) = (4.0, 2.5);
    assert_moments(
        "NegativeBinomial2",
        &count_draws(&NegativeBinomial2::new(mu, phi).unwrap(), 36),
        mu,
        mu + mu * mu / phi,
    );

    // Categorical: each class's frequency.
    let probs = vec![0.1, 0.25, 0.05, 0.6];
    let by_probs = Categorical::new(probs.clone()).unwrap();
    let by_logits = CategoricalLogits::new(probs.iter().map(|p| p.ln() + 3.0).collect()).unwrap();
    let mut r = rng(37);
    let frequencies = [
        ("Categorical", category_counts(|| r.sample(&by_probs))),
        (
            "CategoricalLogits",
            category_counts(|| r.sample(&by_logits)),
        ),
    ];
    for (name, counts) in frequencies {
        for (k, &p) in probs.iter().enumerate() {
            let freq = counts[k] as f64 / N as f64;
            let z = (freq - p) / (p * (1.0 - p) / N as f64).sqrt();
            assert!(
                z.abs() < Z_CRITICAL,
                "{name}: class {k} frequency {freq} vs {p}"
            );
        }
    }
}

fn category_counts(mut draw: impl FnMut() -> usize) -> [usize; 4] {
    let mut counts = [0; 4];
    for _ in 0..N {
        counts[draw()] += 1;
    }
    counts
}

#[test]
fn multivariate_samplers_match_their_moments() {
    let loc = DVector::from_vec(vec![1.0, -2.0]);
    let cov = DMatrix::from_row_slice(2, 2, &[2.0, 0.6, 0.6, 1.0]);
    let mvn = MultivariateNormal::from_covariance(loc.clone(), cov.clone()).unwrap();
    let mut r = rng(40);
    let xs: Vec<DVector<f64>> = (0..N).map(|_| r.sample(&mvn)).collect();
    for i in 0..2 {
        let xi: Vec<f64> = xs.iter().map(|x| x[i]).collect();
        assert_moments("MultivariateNormal marginal", &xi, loc[i], cov[(i, i)]);
    }
    let products: Vec<f64> = xs
        .iter()
        .map(|x| (x[0] - loc[0]) * (x[1] - loc[1]))
        .collect();
    let mean = products.iter().sum::<f64>() / N as f64;
    // Var((X₀-μ₀)(X₁-μ₁)) = Σ₀₀Σ₁₁ + Σ₀₁² for a Gaussian.
    let se = ((cov[(0, 0)] * cov[(1, 1)] + cov[(0, 1)].powi(2)) / N as f64).sqrt();
    assert!(
        ((mean - cov[(0, 1)]) / se).abs() < Z_CRITICAL,
        "covariance {mean} vs {}",
        cov[(0, 1)]
    );

    let alpha = [2.0, 0.5, 3.5];
    let total: f64 = alpha.iter().sum();
    let dirichlet = Dirichlet::new(alpha.to_vec()).unwrap();
    let mut r = rng(41);
    let xs: Vec<Vec<f64>> = (0..N).map(|_| r.sample(&dirichlet)).collect();
    for (i, &a) in alpha.iter().enumerate() {
        let xi: Vec<f64> = xs.iter().map(|x| x[i]).collect();
        let m = a / total;
        assert_moments("Dirichlet marginal", &xi, m, m * (1.0 - m) / (total + 1.0));
    }
    assert!(
        xs.iter()
            .all(|x| (x.iter().sum::<f64>() - 1.0).abs() < 1e-12)
    );
}

#[test]
fn seeded_sampling_reproduces() {
    let d = Gamma::new(2.0, 1.0).unwrap();
    assert_eq!(draws(&d, 99), draws(&d, 99));
    assert_ne!(draws(&d, 99), draws(&d, 100));
}

type D4 = Dual<4>;

/// `d rsample / dθ` on fixed noise against finite differences of the same
/// draw, for each reparameterized family.
fn check_rsample<F, G>(name: &str, theta: &[f64], noise: f64, dual: F, plain: G)
where
    F: Fn(&[D4], f64) -> D4,
    G: Fn(&[f64], f64) -> f64,
{
    let duals: Vec<D4> = theta
        .iter()
        .enumerate()
        .map(|(i, &v)| D4::variable(v, i))
        .collect();
    let x = dual(&duals, noise);
    assert_eq!(
        x.value,
        plain(theta, noise),
        "{name}: dual and f64 draws differ"
    );
    for i in 0..theta.len() {
        let fd = central_difference(|t| plain(t, noise), theta, i);
        let got = x.tangent()[i];
        assert!(
            (got - fd).abs() <= 1e-7 * (1.0 + fd.abs()),
            "{name}: ∂x/∂θ{i} = {got}, finite difference {fd}"
        );
    }
}

#[test]
fn reparameterized_draws_differentiate_correctly() {
    macro_rules! check {
        ($name:literal, $theta:expr, $noise:expr, |$t:ident| $make:expr) => {{
            check_rsample(
                $name,
                &$theta,
                $noise,
                |$t: &[D4], e| $make.unwrap().rsample(e),
                |$t: &[f64], e| $make.unwrap().rsample(e),
            );
        }};
    }
    check!("Normal", [0.3, 1.7], 0.8, |t| Normal::new(t[0], t[1]));
    check!("LogNormal", [0.3, 0.6], -1.2, |t| LogNormal::new(
        t[0], t[1]
    ));
    check!("Laplace", [-0.5, 2.0], 0.31, |t| Laplace::new(t[0], t[1]));
    check!("Laplace (left)", [-0.5, 2.0], -0.2, |t| Laplace::new(
        t[0], t[1]
    ));
    check!("Logistic", [1.0, 0.4], 0.73, |t| Logistic::new(t[0], t[1]));
    check!("Cauchy", [0.0, 1.3], 0.61, |t| Cauchy::new(t[0], t[1]));
    check!("StudentT", [4.0, 0.2, 1.1], -0.9, |t| StudentT::new(
        t[0], t[1], t[2]
    ));
    check!("Exponential", [1.8], 0.7, |t| Exponential::new(t[0]));
    check!("Uniform", [-1.0, 2.5], 0.35, |t| Uniform::new(t[0], t[1]));
    check!("Weibull", [1.6, 0.9], 1.3, |t| Weibull::new(t[0], t[1]));
}

#[test]
fn reparameterized_samplers_draw_from_their_distribution() {
    // rsample(sample_noise) is what `sample` uses; check the noise route
    // for the families whose `sample` goes elsewhere.
    let d = StudentT::new(2.0, 0.0, 1.0).unwrap();
    let mut r = rng(50);
    let xs: Vec<f64> = (0..N).map(|_| d.rsample(d.sample_noise(&mut r))).collect();
    assert_ks("StudentT via rsample", xs, |t| {
        0.5 + t / (2.0 * (2.0 + t * t).sqrt())
    });

    let loc = DVector::from_vec(vec![0.5, -0.5]);
    let l = DMatrix::from_row_slice(2, 2, &[1.5, 0.0, -0.7, 0.4]);
    let mvn = MultivariateNormal::from_cholesky(loc, l).unwrap();
    let mut noise = [0.0; 2];
    let mut out = [0.0; 2];
    let mut r = rng(51);
    let second: Vec<f64> = (0..N)
        .map(|_| {
            mvn.sample_noise(&mut r, &mut noise);
            mvn.rsample(&noise, &mut out);
            out[1]
        })
        .collect();
    // x₁ = -0.5 - 0.7 ε₀ + 0.4 ε₁ ~ N(-0.5, 0.49 + 0.16)
    let sd = 0.65f64.sqrt();
    assert_ks("MultivariateNormal via rsample", second, |x| {
        normal_cdf((x + 0.5) / sd)
    });
}

#[test]
fn multivariate_rsample_differentiates_correctly() {
    // θ = (loc₀, loc₁, L₀₀, L₁₀, L₁₁); noise fixed.
    let noise = [0.4, -1.3];
    let draw = |t: &[D4]| -> [D4; 2] {
        let loc = DVector::from_vec(vec![t[0], t[1]]);
        let l = DMatrix::from_row_slice(2, 2, &[t[2], D4::constant(0.0), t[3], t[4]]);
        let mut out = [D4::constant(0.0); 2];
        MultivariateNormal::from_cholesky(loc, l)
            .unwrap()
            .rsample(&noise, &mut out);
        out
    };
    let theta = [0.1, -0.2, 1.3, 0.5, 0.8];
    let expected = [
        [1.0, 0.0, noise[0], 0.0, 0.0],
        [0.0, 1.0, 0.0, noise[0], noise[1]],
    ];
    for (first, block) in [(0, 0..4), (4, 4..5)] {
        let duals: Vec<D4> = theta
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if block.contains(&i) {
                    D4::variable(v, i - first)
                } else {
                    D4::constant(v)
                }
            })
            .collect();
        let out = draw(&duals);
        for (row, x) in out.iter().enumerate() {
            for i in block.clone() {
                assert_eq!(x.tangent()[i - first], expected[row][i], "∂x{row}/∂θ{i}");
            }
        }
    }
    assert!(Scalar::is_finite(draw(&theta.map(D4::constant))[1]));
}
