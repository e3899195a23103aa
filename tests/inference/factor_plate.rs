//! A plate of factors, `#[factor(term, for j, len = n)]` (Stan's
//! `for (j in 1:N) target += f(j);`): its log joint against the same
//! density written as an observed plate (value and gradient, to 1e-12),
//! the plate it makes under minibatches (mean over every subset = full log
//! joint, local latents found, lengths checked against other plates), its
//! reads checked by `new`, and a non-finite term named with its element.

use iwhvi::distributions::{Distribution, HalfNormal, Normal};
use iwhvi::model::{Model, Term};
use iwhvi::subsample::Batch;
use iwhvi::variational;

use super::fixtures::{SIGMA, Y, hier, point, subset_mean_error};

/// The fixtures' `Hier` with `y ~ Normal(theta[j], sigma[j])` written out
/// as a plate of factors.
#[variational]
struct HierFactor {
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfNormal(5.0))]
    tau: f64,
    #[data]
    sigma: Vec<f64>,
    #[data]
    y: Vec<f64>,
    #[latent(Normal(mu, tau), len = sigma.len())]
    theta: Vec<f64>,
    #[factor(-0.5 * ((y[j] - theta[j]) / sigma[j]) * ((y[j] - theta[j]) / sigma[j]) - sigma[j].ln() - 0.918_938_533_204_672_8, for j, len = y.len())]
    lik: (),
}

/// A plate of factors beside an observed plate: `theta[0]` read by every
/// factor, so `theta` is global; the plates' lengths must agree (the
/// factors read no vector latent at `k`, so `new` lets `weights` be of
/// another length).
#[variational]
struct Mixed {
    #[data]
    sigma: Vec<f64>,
    #[data]
    weights: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    theta: Vec<f64>,
    #[observe(Normal(theta[j], sigma[j]), for j)]
    y: Vec<f64>,
    #[factor(-weights[k] * (theta[0] - 1.0) * (theta[0] - 1.0), for k, len = weights.len())]
    pull: (),
}

/// A plate of factors whose length is a data count.
#[variational]
struct Counted {
    #[data]
    w: Vec<f64>,
    #[data]
    n: usize,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[factor(-w[i] * mu * mu, for i, len = n)]
    penalty: (),
}

fn hier_factor() -> HierFactor {
    HierFactor::new(SIGMA.to_vec(), Y.to_vec()).unwrap()
}

/// The log joint as a function of `u`.
struct LogJoint<'a, M>(&'a M);

impl<M: Model> iwhvi::Differentiable for LogJoint<'_, M> {
    fn eval<T: iwhvi::Scalar>(&self, u: &[T]) -> T {
        self.0.log_joint(u)
    }
}

#[test]
fn a_plate_of_factors_is_the_sum_of_its_terms() {
    let (factor, observed) = (hier_factor(), hier());
    assert_eq!(factor.dim(), observed.dim());
    for shift in [0.0, 0.7, -1.3] {
        let u: Vec<f64> = point(factor.dim()).iter().map(|x| x + shift).collect();
        let (a, ga) = iwhvi::gradient(&LogJoint(&factor), &u);
        let (b, gb) = iwhvi::gradient(&LogJoint(&observed), &u);
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        assert!(ga.iter().zip(&gb).all(|(x, y)| (x - y).abs() < 1e-12));
        // And against a hand computation of the terms.
        let (mu, tau, theta) = (u[0], u[1].exp(), &u[2..]);
        let mut hand = Normal::new(0.0, 5.0).unwrap().log_prob(mu)
            + HalfNormal::new(5.0).unwrap().log_prob(tau)
            + u[1];
        for j in 0..5 {
            hand += Normal::new(mu, tau).unwrap().log_prob(theta[j])
                + Normal::new(theta[j], SIGMA[j]).unwrap().log_prob(Y[j]);
        }
        assert!((a - hand).abs() < 1e-12, "{a} vs {hand}");
    }
}

#[test]
fn a_plate_of_factors_is_subsampled_with_its_local_latents() {
    let model = hier_factor();
    assert_eq!(model.local_latents(), ["theta"]);
    let plate = model.subsample_plate().unwrap();
    assert_eq!((plate.observed, plate.len), (vec!["lik".to_string()], 5));
    // Points split as the observed model's.
    let observed = hier();
    let u = point(model.dim());
    let batch = Batch::new(&[1, 3], 5);
    let (mut a, mut b) = ([0.0; 2], [0.0; 2]);
    let ga = model.log_joint_points(&[], &u, &[], &batch, &mut a);
    let gb = observed.log_joint_points(&[], &u, &[], &batch, &mut b);
    assert!((ga - gb).abs() < 1e-12);
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-12));
    for (b, right) in [(2, 2.5), (3, 5.0 / 3.0)] {
        let (value, gradient) = subset_mean_error(&model, b, right);
        assert!(value.abs() < 1e-10, "b = {b}: {value}");
        assert!(gradient.iter().all(|g| g.abs() < 1e-10), "{gradient:?}");
        // Power: a wrong scale misses.
        let (value, _) = subset_mean_error(&model, b, 5.0 / (b + 1) as f64);
        assert!(value.abs() > 0.1, "b = {b}: {value}");
    }
}

#[test]
fn a_plate_of_factors_shares_the_models_plate() {
    let weights = vec![0.5, 1.0, 0.2, 0.8, 1.5];
    let model = Mixed::new(SIGMA.to_vec(), weights.clone(), Y.to_vec()).unwrap();
    assert!(
        model.local_latents().is_empty(),
        "theta[0] is read by every factor"
    );
    let plate = model.subsample_plate().unwrap();
    assert_eq!(plate.observed, ["y", "pull"]);
    for (b, right) in [(2, 2.5), (4, 1.25)] {
        let (value, gradient) = subset_mean_error(&model, b, right);
        assert!(value.abs() < 1e-10, "b = {b}: {value}");
        assert!(gradient.iter().all(|g| g.abs() < 1e-10), "{gradient:?}");
    }
    // A plate of factors of another length: refused like two observed
    // plates of different lengths.
    let longer = Mixed::new(SIGMA.to_vec(), vec![1.0; 6], Y.to_vec()).unwrap();
    let refused = longer.subsample_plate().unwrap_err();
    assert!(refused.contains("plates of different lengths"), "{refused}");
}

#[test]
fn reads_past_the_data_in_a_plate_of_factors_are_rejected_by_new() {
    let error = Counted::new(vec![0.5, 2.0], 3).err().expect("w[2] is read");
    assert_eq!(
        format!("{error:?}"),
        "OutOfRangeAt { field: \"w\", access: \"w[i]\", position: 2, element: Some(2), len: 2, unit: \"entries\", term: \"penalty\" }"
    );
    // A latent vector read past its end is named too.
    let error = HierFactor::new(SIGMA[..4].to_vec(), Y.to_vec())
        .err()
        .expect("theta[4] is read");
    assert!(
        format!("{error:?}").contains("access: \"theta[j]\", position: 4"),
        "{error:?}"
    );
    // In range: the terms' sum.
    let model = Counted::new(vec![0.5, 2.0, 1.0], 3).unwrap();
    let mu: f64 = 0.4;
    let expected = Normal::new(0.0, 1.0).unwrap().log_prob(mu) - 3.5 * mu * mu;
    assert!((model.log_joint(&[mu]) - expected).abs() < 1e-12);
}

#[test]
fn a_non_finite_factor_term_is_named_with_its_element() {
    let mut sigma = SIGMA.to_vec();
    sigma[2] = 0.0;
    let model = HierFactor::new(sigma, Y.to_vec()).unwrap();
    let u = point(model.dim());
    assert!(!model.log_joint(&u).is_finite());
    let invalid = model.first_invalid_term(&u).expect("an invalid term");
    assert_eq!(
        invalid.term,
        Term::Factor {
            field: "lik",
            element: Some(2)
        }
    );
    assert_eq!(
        invalid.to_string().split(" is ").next(),
        Some("the factor `lik[2]`")
    );
}
