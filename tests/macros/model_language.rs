//! The model language's transforms and expressions (issue 14): each new
//! construct's generated log joint against a hand-written one, its layout
//! against the log joint's constrained values, and its prior draws.

use iwhvi::distributions::{
    Distribution, HalfCauchy, MultivariateDistribution, MultivariateNormal, Normal,
};
use iwhvi::model::{DataError, Model};
use iwhvi::variational;
use iwhvi::{Dual, Scalar};
use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

fn close(got: f64, expected: f64, what: &str) {
    assert!(
        (got - expected).abs() <= 1e-9 * (1.0 + expected.abs()),
        "{what}: {got} vs {expected}"
    );
}

fn random_points(dim: usize, count: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| (0..dim).map(|_| rng.random_range(-2.0..2.0)).collect())
        .collect()
}

/// `lower`/`upper` on vector latents: shared (`lower = 0.0`), per element
/// from data vectors, per element from an expression of the index, and on
/// a multivariate prior.
#[variational]
struct VectorBounds {
    #[data]
    lo: Vec<f64>,
    #[data]
    hi: Vec<f64>,
    #[latent(Normal(0.0, 2.0), lower = 0.0)]
    positive: [f64; 3],
    #[latent(Normal(0.5, 3.0), len = lo.len(), lower = lo, upper = hi)]
    between: Vec<f64>,
    #[latent(Normal(hi[i], 1.0), len = hi.len(), for i, upper = hi[i] + 1.0)]
    below: Vec<f64>,
    #[data]
    cov: DMatrix<f64>,
    #[latent(MultivariateNormal(lo, cov), lower = -1.0, upper = 2.0)]
    pair: [f64; 2],
    #[observe(Normal(positive[0] + between[1] - below[0] + pair[1], 1.0))]
    y: f64,
}

fn vector_bounds() -> VectorBounds {
    let cov = DMatrix::from_row_slice(2, 2, &[1.0, 0.3, 0.3, 2.0]);
    VectorBounds::new(vec![-1.0, 0.5], vec![1.0, 4.0], cov, 0.7).unwrap()
}

fn vector_bounds_by_hand(u: &[f64]) -> (f64, Vec<Vec<f64>>) {
    let (lo, hi) = ([-1.0, 0.5], [1.0, 4.0]);
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    let mut lp = 0.0;
    let positive: Vec<f64> = u[0..3].iter().map(|x| x.exp()).collect();
    lp += u[0..3].iter().sum::<f64>();
    for &p in &positive {
        lp += Normal::new(0.0, 2.0).unwrap().log_prob(p);
    }
    let mut between = Vec::new();
    for k in 0..2 {
        let s = sigmoid(u[3 + k]);
        let width: f64 = hi[k] - lo[k];
        between.push(lo[k] + width * s);
        lp += width.ln() + s.ln() + (1.0 - s).ln();
        lp += Normal::new(0.5, 3.0).unwrap().log_prob(between[k]);
    }
    let mut below = Vec::new();
    for k in 0..2 {
        below.push(hi[k] + 1.0 - u[5 + k].exp());
        lp += u[5 + k];
        lp += Normal::new(hi[k], 1.0).unwrap().log_prob(below[k]);
    }
    let mut pair = Vec::new();
    for k in 0..2 {
        let s = sigmoid(u[7 + k]);
        pair.push(-1.0 + 3.0 * s);
        lp += 3f64.ln() + s.ln() + (1.0 - s).ln();
    }
    let cov = DMatrix::from_row_slice(2, 2, &[1.0, 0.3, 0.3, 2.0]);
    let mvn = MultivariateNormal::from_covariance(DVector::from_vec(lo.to_vec()), cov).unwrap();
    lp += mvn.log_prob(&pair[..]);
    lp += Normal::new(positive[0] + between[1] - below[0] + pair[1], 1.0)
        .unwrap()
        .log_prob(0.7);
    (lp, vec![positive, between, below, pair])
}

#[test]
fn vector_bounds_match_the_hand_written_transforms() {
    let model = vector_bounds();
    assert_eq!(model.dim(), 9);
    for u in random_points(9, 50, 1) {
        let (expected, values) = vector_bounds_by_hand(&u);
        close(model.log_joint(&u), expected, "log joint");
        // The layout constrains as the log joint does.
        let latents = model.latents(&u).unwrap();
        let got = [
            latents.positive.to_vec(),
            latents.between.clone(),
            latents.below.clone(),
            latents.pair.to_vec(),
        ];
        for (g, e) in got.iter().zip(&values) {
            for (a, b) in g.iter().zip(e) {
                close(*a, *b, "constrained value");
            }
        }
        let back = model.unconstrain(&latents).unwrap();
        for (a, b) in back.iter().zip(&u) {
            assert!((a - b).abs() < 1e-8, "{back:?} vs {u:?}");
        }
        // Duals carry the same value.
        let duals: Vec<Dual<1>> = u.iter().map(|&x| Dual::constant(x)).collect();
        close(model.log_joint(&duals).value(), expected, "dual value");
    }
}

#[test]
fn bounded_vector_draws_lie_inside_their_bounds() {
    let model = vector_bounds();
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..200 {
        let draw = model.sample_prior(&mut rng).unwrap();
        assert!(draw.positive.iter().all(|&x| x > 0.0));
        assert!(draw.between[0] > -1.0 && draw.between[0] < 1.0);
        assert!(draw.between[1] > 0.5 && draw.between[1] < 4.0);
        assert!(draw.below[0] < 2.0 && draw.below[1] < 5.0);
        assert!(draw.pair.iter().all(|&x| x > -1.0 && x < 2.0));
        // Every draw maps back to a finite unconstrained point.
        let u = model.unconstrain(&draw).unwrap();
        assert!(model.log_joint(&u).is_finite());
    }
}

#[test]
fn a_bound_vector_of_the_wrong_length_is_a_data_error() {
    let cov = DMatrix::identity(2, 2);
    let err = VectorBounds::new(vec![-1.0, 0.5], vec![1.0, 4.0, 5.0], cov, 0.7)
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            DataError::LengthMismatch {
                field: "hi",
                found: 3,
                other: "between",
                expected: 2,
            }
        ),
        "{err:?}"
    );
}

/// `offset`/`multiplier` (Stan's affine transform): the non-centred eight
/// schools written as Stan writes it, a data offset and multiplier on a
/// scalar, and per-element multipliers from a data vector.
#[variational]
struct Affine {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfCauchy(5.0))]
    tau: f64,
    #[latent(Normal(mu, tau), len = sigma.len(), offset = mu, multiplier = tau)]
    theta: Vec<f64>,
    #[latent(Normal(3.0, 10.0), offset = 3.0, multiplier = 10.0)]
    wide: f64,
    #[latent(Normal(mu, 2.0 * tau), offset = mu, multiplier = 2.0 * tau)]
    scalar_noncentred: f64,
    #[latent(Normal(1.0, sigma[i]), len = sigma.len(), for i, offset = 1.0, multiplier = sigma)]
    scaled: Vec<f64>,
    #[observe(Normal(theta[i] + scaled[i] + wide - scalar_noncentred, sigma[i]), for i)]
    y: Vec<f64>,
}

#[test]
fn offset_and_multiplier_match_the_hand_written_non_centred_model() {
    let sigma = vec![15.0, 10.0, 16.0];
    let y = vec![28.0, 8.0, -3.0];
    let model = Affine::new(sigma.clone(), y.clone()).unwrap();
    assert_eq!(model.dim(), 10);
    for u in random_points(10, 50, 2) {
        let mu = u[0];
        let tau = u[1].exp();
        let mut lp = u[1];
        lp += Normal::new(0.0, 5.0).unwrap().log_prob(mu);
        lp += HalfCauchy::new(5.0).unwrap().log_prob(tau);
        let theta: Vec<f64> = (0..3).map(|j| mu + tau * u[2 + j]).collect();
        for &t in &theta {
            lp += tau.ln() + Normal::new(mu, tau).unwrap().log_prob(t);
        }
        let wide = 3.0 + 10.0 * u[5];
        lp += 10f64.ln() + Normal::new(3.0, 10.0).unwrap().log_prob(wide);
        let noncentred = mu + 2.0 * tau * u[6];
        lp += (2.0 * tau).ln() + Normal::new(mu, 2.0 * tau).unwrap().log_prob(noncentred);
        let scaled: Vec<f64> = (0..3).map(|j| 1.0 + sigma[j] * u[7 + j]).collect();
        for j in 0..3 {
            lp += sigma[j].ln() + Normal::new(1.0, sigma[j]).unwrap().log_prob(scaled[j]);
        }
        for j in 0..3 {
            lp += Normal::new(theta[j] + scaled[j] + wide - noncentred, sigma[j])
                .unwrap()
                .log_prob(y[j]);
        }
        close(model.log_joint(&u), lp, "log joint");
        let latents = model.latents(&u).unwrap();
        for j in 0..3 {
            close(latents.theta[j], theta[j], "theta");
            close(latents.scaled[j], scaled[j], "scaled");
        }
        close(latents.wide, wide, "wide");
        close(latents.scalar_noncentred, noncentred, "scalar_noncentred");
        let back = model.unconstrain(&latents).unwrap();
        for (a, b) in back.iter().zip(&u) {
            assert!((a - b).abs() < 1e-8, "{back:?} vs {u:?}");
        }
    }
    // Gradients through the latent-dependent multiplier: forward duals
    // against central differences.
    let u: Vec<f64> = random_points(10, 1, 4).remove(0);
    let duals: Vec<Dual<1>> = u
        .iter()
        .enumerate()
        .map(|(k, &x)| {
            if k == 1 {
                Dual::variable(x, 0)
            } else {
                Dual::constant(x)
            }
        })
        .collect();
    let derivative = model.log_joint(&duals).tangent()[0];
    let h = 1e-6;
    let (mut plus, mut minus) = (u.clone(), u.clone());
    plus[1] += h;
    minus[1] -= h;
    let fd = (model.log_joint(&plus) - model.log_joint(&minus)) / (2.0 * h);
    assert!(
        (derivative - fd).abs() < 1e-5 * (1.0 + fd.abs()),
        "{derivative} vs {fd}"
    );
}

/// A hand-built layout whose per-element transforms do not fit the latent
/// (another length, a vector transform among them) is a typed error.
#[test]
fn per_element_transforms_that_do_not_fit_are_a_layout_error() {
    use iwhvi::model::{LatentSpec, Layout, LayoutError};
    use iwhvi::transforms::Transform;
    let with = |each: Vec<Transform>| LatentSpec {
        per_element: Some(each),
        ..LatentSpec::vector("x", 2, Transform::Identity)
    };
    let fits = Layout::try_new(vec![with(vec![
        Transform::Exp,
        Transform::LowerBound { low: 1.0 },
    ])])
    .unwrap();
    let latents = fits.constrain(&[0.0, 0.0]).unwrap();
    assert_eq!(latents.get("x"), Some(&[1.0, 2.0][..]));
    for each in [
        vec![Transform::Exp],
        vec![Transform::Exp, Transform::Ordered],
    ] {
        assert!(matches!(
            Layout::try_new(vec![with(each)]),
            Err(LayoutError::ShapeDoesNotFitTransform { .. })
        ));
    }
}

/// Eight schools, non-centred by `offset`/`multiplier`.
#[variational]
struct OffsetSchools {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfCauchy(5.0))]
    tau: f64,
    #[latent(Normal(mu, tau), len = sigma.len(), offset = mu, multiplier = tau)]
    theta: Vec<f64>,
    #[observe(Normal(theta[j], sigma[j]), for j)]
    y: Vec<f64>,
}

#[variational(guide = OffsetSchools)]
struct OffsetSchoolsGuide {
    #[param(init = 0.0)]
    mu_loc: f64,
    #[param(init = 0.0)]
    tau_loc: f64,
    #[param(init = 0.0, len = theta)]
    theta_loc: Vec<f64>,
    #[latent(Normal(mu_loc, 1.0))]
    mu: f64,
    #[latent(LogNormal(tau_loc, 1.0))]
    tau: f64,
    #[latent(Normal(theta_loc[j], 1.0), for j)]
    theta: Vec<f64>,
}

/// A struct guide maps its draws through the model's transforms; one
/// that moves with other latents is refused with a typed error rather than
/// mapped wrongly, and the auto guides (over `u`) fit the model as usual.
#[test]
fn struct_guides_refuse_transforms_that_move_with_other_latents() {
    use iwhvi::guide::{GuideError, MeanField};
    let model = OffsetSchools::new(vec![15.0, 10.0, 16.0], vec![28.0, 8.0, -3.0]).unwrap();
    assert!(matches!(
        OffsetSchoolsGuide::new(&model),
        Err(GuideError::Unsupported { latent: "theta" })
    ));
    let guide = MeanField::new(model.dim());
    assert_eq!(iwhvi::guide::HierarchicalGuide::latent_dim(&guide), 5);
}

/// Vector arguments from a data matrix's rows and columns, slices of data
/// and latents, vectors written out, and elementwise arithmetic.
#[variational]
struct VectorArguments {
    #[data]
    alpha: DMatrix<f64>,
    #[data]
    conc: Vec<f64>,
    #[data]
    cov: DMatrix<f64>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[latent(Normal(0.0, 1.0), len = 3)]
    beta: Vec<f64>,
    #[latent(Dirichlet(alpha.row(0)), len = alpha.ncols())]
    p: Vec<f64>,
    #[latent(Dirichlet(&conc[1..]), len = conc.len() - 1)]
    q: Vec<f64>,
    #[latent(MultivariateNormal(alpha.column(1), cov))]
    from_column: [f64; 2],
    #[latent(MultivariateNormal([mu, 2.0 * mu], cov))]
    written_out: [f64; 2],
    #[latent(MultivariateNormal(&beta[..2], cov))]
    from_slice: [f64; 2],
    #[latent(MultivariateNormal(alpha.row(1) * 0.5 + beta[2], cov))]
    scaled_row: [f64; 2],
    #[latent(MultivariateNormal(beta[1..] - &conc[..2], cov))]
    difference: [f64; 2],
    #[observe(Dirichlet(alpha.row(1) * mu.exp()))]
    shares: Vec<f64>,
}

#[test]
fn vector_arguments_match_the_hand_written_model() {
    use iwhvi::distributions::Dirichlet;
    use iwhvi::transforms::Transform;
    let alpha = DMatrix::from_row_slice(2, 2, &[2.0, 3.0, 1.5, 0.5]);
    let conc = vec![9.0, 1.2, 2.5];
    let cov = DMatrix::from_row_slice(2, 2, &[1.0, 0.3, 0.3, 2.0]);
    let shares = vec![0.3, 0.7];
    let model =
        VectorArguments::new(alpha.clone(), conc.clone(), cov.clone(), shares.clone()).unwrap();
    // mu 1, beta 3, p 1, q 1, five pairs of 2.
    assert_eq!(model.dim(), 16);
    let mvn = |loc: Vec<f64>, x: &[f64]| {
        MultivariateNormal::from_covariance(DVector::from_vec(loc), cov.clone())
            .unwrap()
            .log_prob(x)
    };
    let simplex = |u: f64| {
        let mut z = [0.0; 2];
        let log_det = Transform::StickBreaking.forward(&[u], &mut z);
        (z.to_vec(), log_det)
    };
    for u in random_points(16, 50, 5) {
        let normal = Normal::new(0.0, 1.0).unwrap();
        let mu = u[0];
        let beta = &u[1..4];
        let mut lp = normal.log_prob(mu) + beta.iter().map(|&b| normal.log_prob(b)).sum::<f64>();
        let (p, log_det) = simplex(u[4]);
        lp += log_det + Dirichlet::new(vec![2.0, 3.0]).unwrap().log_prob(&p);
        let (q, log_det) = simplex(u[5]);
        lp += log_det + Dirichlet::new(vec![1.2, 2.5]).unwrap().log_prob(&q);
        lp += mvn(vec![3.0, 0.5], &u[6..8]);
        lp += mvn(vec![mu, 2.0 * mu], &u[8..10]);
        lp += mvn(beta[..2].to_vec(), &u[10..12]);
        lp += mvn(vec![0.75 + beta[2], 0.25 + beta[2]], &u[12..14]);
        lp += mvn(vec![beta[1] - conc[0], beta[2] - conc[1]], &u[14..16]);
        lp += Dirichlet::new(vec![1.5 * mu.exp(), 0.5 * mu.exp()])
            .unwrap()
            .log_prob(&shares);
        close(model.log_joint(&u[..]), lp, "log joint");
    }
}

/// Two vectors of different lengths combine to no vector: the density is
/// -∞, not a silently truncated vector.
#[variational]
struct MismatchedVectors {
    #[data]
    a: Vec<f64>,
    #[data]
    b: Vec<f64>,
    #[data]
    cov: DMatrix<f64>,
    #[latent(MultivariateNormal(a + b, cov))]
    x: [f64; 2],
}

#[test]
fn vectors_of_different_lengths_have_no_density() {
    let cov = DMatrix::identity(2, 2);
    let same = MismatchedVectors::new(vec![1.0, 2.0], vec![0.5, 0.5], cov.clone()).unwrap();
    let expected =
        MultivariateNormal::from_covariance(DVector::from_vec(vec![1.5, 2.5]), cov.clone())
            .unwrap()
            .log_prob(&[0.1, 0.2][..]);
    close(same.log_joint(&[0.1, 0.2]), expected, "a + b");
    let mismatched = MismatchedVectors::new(vec![1.0, 2.0], vec![0.5], cov).unwrap();
    assert_eq!(mismatched.log_joint(&[0.1, 0.2]), f64::NEG_INFINITY);
}

#[test]
fn vector_arguments_draw_from_their_priors() {
    let alpha = DMatrix::from_row_slice(2, 2, &[2.0, 3.0, 1.5, 0.5]);
    let cov = DMatrix::from_row_slice(2, 2, &[1.0, 0.3, 0.3, 2.0]);
    let model = VectorArguments::new(alpha, vec![9.0, 1.2, 2.5], cov, vec![0.3, 0.7]).unwrap();
    let mut rng = StdRng::seed_from_u64(6);
    let draw = model.sample_prior(&mut rng).unwrap();
    assert!((draw.p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert_eq!(draw.q.len(), 2);
    let u = model.unconstrain(&draw).unwrap();
    assert!(model.log_joint(&u).is_finite());
}

/// A free function generic over the scalar, called from attributes.
pub fn softened<T: Scalar>(x: T, floor: T) -> T {
    (x.square() + floor * floor).sqrt()
}

/// A free function reading a vector latent as a slice and data by
/// reference.
pub fn dot<T: Scalar>(beta: &[T], x: &[f64]) -> T {
    beta.iter()
        .zip(x)
        .fold(T::constant(0.0), |total, (&b, &xi)| total + b * xi)
}

/// `if`/`else` (on data and on latents), blocks with `let`, and free
/// function calls, in priors, observations (plates) and factors.
#[variational]
struct Expressions {
    #[data]
    x: Vec<f64>,
    #[data]
    group: Vec<u32>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[latent(HalfNormal(1.0))]
    tau: f64,
    #[latent(Normal(0.0, 1.0), len = 2)]
    beta: Vec<f64>,
    #[latent(Normal(if mu > 0.0 { mu } else { -mu }, { let s = tau + 1.0; s * s }))]
    folded: f64,
    #[observe(Normal(if group[i] == 1 { mu } else { mu + beta[1] * x[i] }, softened(tau, 0.5)), for i)]
    y: Vec<f64>,
    #[factor(-0.5 * dot(beta, x).square())]
    penalty: (),
}

fn expressions() -> Expressions {
    Expressions::new(
        vec![0.5, -1.0, 2.0, 0.1],
        vec![1, 2, 1, 2],
        vec![0.3, -0.2, 1.1, 0.4],
    )
    .unwrap()
}

#[test]
fn if_else_blocks_and_free_functions_match_the_hand_written_model() {
    use iwhvi::distributions::HalfNormal;
    let model = expressions();
    let (x, group, y) = ([0.5, -1.0, 2.0, 0.1], [1, 2, 1, 2], [0.3, -0.2, 1.1, 0.4]);
    for u in random_points(5, 50, 7) {
        let normal = Normal::new(0.0, 1.0).unwrap();
        let mu = u[0];
        let tau = u[1].exp();
        let beta = &u[2..4];
        let folded = u[4];
        let mut lp = normal.log_prob(mu) + u[1] + HalfNormal::new(1.0).unwrap().log_prob(tau);
        lp += normal.log_prob(beta[0]) + normal.log_prob(beta[1]);
        lp += Normal::new(mu.abs(), (tau + 1.0).powi(2))
            .unwrap()
            .log_prob(folded);
        let scale = (tau * tau + 0.25).sqrt();
        for i in 0..4 {
            let loc = if group[i] == 1 {
                mu
            } else {
                mu + beta[1] * x[i]
            };
            lp += Normal::new(loc, scale).unwrap().log_prob(y[i]);
        }
        let d: f64 = beta.iter().zip(&x).map(|(b, xi)| b * xi).sum();
        lp += -0.5 * d * d;
        close(model.log_joint(&u), lp, "log joint");
    }
}

/// Correlation Cholesky factors (Stan's `cholesky_factor_corr[K]`): an
/// LKJ prior with the order from data, a flat one by the constraint, a
/// covariance from scales (`diag_pre_multiply`), entries read as
/// `L[(i, j)]` in a likelihood and a derived quantity.
#[variational]
struct Correlated {
    #[data]
    k: usize,
    #[latent(HalfNormal(1.0), len = k)]
    tau: Vec<f64>,
    #[latent(LkjCholesky(2.0), dim = k)]
    l_omega: DMatrix<f64>,
    #[latent(Flat(), constraint = cholesky_corr, dim = 2)]
    flat_l: DMatrix<f64>,
    #[latent(Normal(0.0, 1.0), len = k)]
    mu: Vec<f64>,
    #[latent(MultivariateNormalCholesky(mu, diag_pre_multiply(tau, l_omega)), len = k)]
    beta: Vec<f64>,
    #[observe(Normal(beta[0] + l_omega[(1, 0)] * flat_l[(1, 0)], 1.0))]
    y: f64,
    #[derived(l_omega[(2, 1)])]
    entry: f64,
}

fn correlated_by_hand(u: &[f64]) -> f64 {
    use iwhvi::distributions::{HalfNormal, LkjCholesky};
    use iwhvi::transforms::Transform;
    let k = 3;
    let mut lp = 0.0;
    let tau: Vec<f64> = u[..3].iter().map(|x| x.exp()).collect();
    lp += u[..3].iter().sum::<f64>();
    lp += tau
        .iter()
        .map(|&t| HalfNormal::new(1.0).unwrap().log_prob(t))
        .sum::<f64>();
    let mut l = vec![0.0; 9];
    lp += Transform::CholeskyCorrelation.forward(&u[3..6], &mut l);
    lp += LkjCholesky::new(k, 2.0).unwrap().log_prob(&l);
    let mut flat = vec![0.0; 4];
    lp += Transform::CholeskyCorrelation.forward(&u[6..7], &mut flat);
    let mu = &u[7..10];
    let normal = Normal::new(0.0, 1.0).unwrap();
    lp += mu.iter().map(|&m| normal.log_prob(m)).sum::<f64>();
    let mut scale = DMatrix::from_row_slice(3, 3, &l);
    for r in 0..3 {
        for c in 0..3 {
            scale[(r, c)] *= tau[r];
        }
    }
    let beta = &u[10..13];
    lp += MultivariateNormal::from_cholesky(DVector::from_column_slice(mu), scale)
        .unwrap()
        .log_prob(beta);
    lp += Normal::new(beta[0] + l[3] * flat[2], 1.0)
        .unwrap()
        .log_prob(0.4);
    lp
}

#[test]
fn correlation_factors_match_the_hand_written_model() {
    let model = Correlated::new(3, 0.4).unwrap();
    // tau 3, L 3 (K(K-1)/2), the flat factor 1, mu 3, beta 3.
    assert_eq!(model.dim(), 13);
    let names = iwhvi::model::Model::layout(&model).element_names();
    assert_eq!(names[3], "l_omega[0,0]");
    assert_eq!(names[4], "l_omega[0,1]");
    for u in random_points(13, 50, 11) {
        close(model.log_joint(&u[..]), correlated_by_hand(&u), "log joint");
        // The reference (scalar-loop) log joint and the checked walk agree.
        let typed = model.latents(&u).unwrap();
        assert!(
            (typed.l_omega[(1, 0)].powi(2) + typed.l_omega[(1, 1)].powi(2) - 1.0).abs() < 1e-12
        );
        assert_eq!(typed.l_omega[(0, 1)], 0.0);
        let back = model.unconstrain(&typed).unwrap();
        for (a, b) in back.iter().zip(&u) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
        let derived = model.derived_quantities(&typed);
        assert_eq!(derived.entry, typed.l_omega[(2, 1)]);
    }
    // Gradients through the factor: dual against central differences.
    let u = &random_points(13, 1, 12)[0];
    let duals: Vec<Dual<13>> = u
        .iter()
        .enumerate()
        .map(|(i, &v)| Dual::variable(v, i))
        .collect();
    let gradient = model.log_joint(&duals).tangent().to_vec();
    for j in 0..13 {
        let h = 1e-6;
        let (mut up, mut down) = (u.clone(), u.clone());
        up[j] += h;
        down[j] -= h;
        let fd = (model.log_joint(&up[..]) - model.log_joint(&down[..])) / (2.0 * h);
        assert!(
            (gradient[j] - fd).abs() < 1e-5 * (1.0 + fd.abs()),
            "∂{j}: {} vs {fd}",
            gradient[j]
        );
    }
}

/// An LKJ prior alone: its draws are correlation factors that map back to
/// the unconstrained space.
#[variational]
struct LkjOnly {
    #[latent(LkjCholesky(1.5), dim = 3)]
    l: DMatrix<f64>,
}

#[test]
fn correlation_factors_draw_from_their_priors() {
    let model = LkjOnly::new().unwrap();
    assert_eq!(model.dim(), 3);
    let mut rng = StdRng::seed_from_u64(13);
    for _ in 0..20 {
        let draw = model.sample_prior(&mut rng).unwrap();
        let correlation = &draw.l * draw.l.transpose();
        for i in 0..3 {
            assert!((correlation[(i, i)] - 1.0).abs() < 1e-12);
            assert!(draw.l[(i, i)] > 0.0);
        }
        assert_eq!(draw.l[(0, 2)], 0.0);
        let u = model.unconstrain(&draw).unwrap();
        assert!(model.log_joint(&u[..]).is_finite());
        assert!((model.latents(&u).unwrap().l - &draw.l).abs().max() < 1e-9);
    }
    // The flat factor of `Correlated` has no proper prior to draw from.
    assert!(
        Correlated::new(3, 0.4)
            .unwrap()
            .sample_prior(&mut rng)
            .is_err()
    );
}
