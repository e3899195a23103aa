//! A plate of factors over a batch (`#[factor(terms, for rows in batch,
//! len = n)]`, the batch's terms in one call) against the same model with
//! a per-row plate (`for n`): a learned mean and slope, a local latent
//! gathered as `z[rows]` and a data vector as `x[rows]`. The log joint
//! and its variants (`log_joint_theta`, `log_joint_subset`,
//! `log_joint_points`) agree to 1e-12, their gradients on the tape and on
//! duals to 1e-10, the plate and its local latents are the same, a
//! minibatch fit gives the same trace bit for bit (the terms are summed in
//! the same order), and a term of the wrong length is a NaN log joint and
//! a typed `fit` error naming the factor; a `#[transformed]` vector is
//! gathered as a latent is, and `new` checks a gathered data vector's
//! length.

use iwhvi::fit::{FitConfig, FitError, fit};
use iwhvi::guide::MeanField;
use iwhvi::model::{Model, Term};
use iwhvi::objective::Diwhvi;
use iwhvi::optim::Adam;
use iwhvi::subsample::Batch;
use iwhvi::tape::TapeEngine;
use iwhvi::{Differentiable, ForwardEngine, Scalar, variational};

const X: [f64; 5] = [0.3, -1.2, 0.8, 2.0, -0.4];
const Y: [f64; 5] = [1.1, -0.7, 0.2, 2.9, 0.05];

/// `log N(y; w0 + w1 x + z, s)`, the term of one row.
fn row_term<T: Scalar>(x: T, y: f64, z: T, s: T, w: &[T]) -> T {
    let r = (T::constant(y) - w[0] - w[1] * x - z) / s;
    T::constant(-0.5) * r * r - s.ln() - T::constant(0.918_938_533_204_672_8)
}

/// One term per row (`for n`).
#[variational]
struct PerRow {
    #[param(init = 0.3)]
    m: f64,
    #[param(init = 0.1, len = 2)]
    w: Vec<f64>,
    #[data]
    x: Vec<f64>,
    #[data]
    y: Vec<f64>,
    #[latent(HalfNormal(1.0))]
    s: f64,
    #[latent(Normal(m, 1.0), len = y.len())]
    z: Vec<f64>,
    #[factor(self.row_lik(n, z[n], x[n], s, w), for n, len = y.len())]
    lik: (),
}

impl PerRow {
    fn row_lik<T: Scalar>(&self, n: usize, z: T, x: T, s: T, w: &[T]) -> T {
        row_term(x, self.y[n], z, s, w)
    }
}

/// The same, the batch's terms in one call (`for rows in batch`).
#[variational]
struct Batched {
    #[param(init = 0.3)]
    m: f64,
    #[param(init = 0.1, len = 2)]
    w: Vec<f64>,
    #[data]
    x: Vec<f64>,
    #[data]
    y: Vec<f64>,
    #[latent(HalfNormal(1.0))]
    s: f64,
    #[latent(Normal(m, 1.0), len = y.len())]
    z: Vec<f64>,
    #[factor(self.batch_lik(rows, z[rows], x[rows], s, w), for rows in batch, len = y.len())]
    lik: (),
}

impl Batched {
    fn batch_lik<T: Scalar>(&self, rows: &[usize], z: &[T], x: &[T], s: T, w: &[T]) -> Vec<T> {
        assert!(z.len() == rows.len() && x.len() == rows.len());
        rows.iter()
            .enumerate()
            .map(|(k, &n)| row_term(x[k], self.y[n], z[k], s, w))
            .collect()
    }
}

/// A term one short of the batch's rows.
#[variational]
struct Short {
    #[data]
    y: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = y.len())]
    z: Vec<f64>,
    #[factor(short_terms(rows, z[rows]), for rows in batch, len = y.len())]
    lik: (),
}

fn short_terms<T: Scalar>(rows: &[usize], z: &[T]) -> Vec<T> {
    z.iter()
        .skip(usize::from(!rows.is_empty()))
        .map(|&z| -z * z)
        .collect()
}

fn models() -> (PerRow, Batched) {
    (
        PerRow::new(X.to_vec(), Y.to_vec()).unwrap(),
        Batched::new(X.to_vec(), Y.to_vec()).unwrap(),
    )
}

/// `(θ, u)` off the start: `m`, `w`, then `s`, `z`.
fn point() -> Vec<f64> {
    vec![0.4, -0.2, 0.7, 0.3, 0.5, -1.0, 0.25, 1.5, -0.3]
}

/// The log joint's variants as functions of `(θ, u)`, `which` choosing one.
struct Variant<'a, M> {
    model: &'a M,
    which: usize,
}

impl<M: Model> Differentiable for Variant<'_, M> {
    fn eval<T: Scalar>(&self, all: &[T]) -> T {
        let (theta, u) = all.split_at(self.model.theta_dim());
        let batch = Batch::new(&[3, 0, 4], 5);
        match self.which {
            0 => self.model.log_joint(u),
            1 => self.model.log_joint_theta(theta, u),
            2 => self.model.log_joint_subset(theta, u, &[], &batch),
            _ => {
                let mut points = vec![T::constant(0.0); batch.len()];
                let global = self
                    .model
                    .log_joint_points(theta, u, &[], &batch, &mut points);
                // A weighted sum: each point's term counts.
                points
                    .iter()
                    .enumerate()
                    .fold(global, |acc, (k, &p)| acc + p * T::constant(k as f64 + 1.5))
            }
        }
    }
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * (1.0 + a.abs())
}

#[test]
fn a_batch_factor_has_the_per_row_log_joint_and_gradients() {
    let (per_row, batched) = models();
    assert_eq!(batched.theta_dim(), 3);
    let all = point();
    let (theta, u) = all.split_at(3);
    // The plain values, to 1e-12.
    let pairs = [
        (per_row.log_joint(u), batched.log_joint(u)),
        (
            per_row.log_joint_theta(theta, u),
            batched.log_joint_theta(theta, u),
        ),
    ];
    for (a, b) in pairs {
        assert!(a.is_finite() && close(a, b, 1e-12), "{a} vs {b}");
    }
    for indices in [&[3, 0, 4][..], &[1][..], &[0, 1, 2, 3, 4][..]] {
        let batch = Batch::new(indices, 5);
        let a = per_row.log_joint_subset(theta, u, &[], &batch);
        let b = batched.log_joint_subset(theta, u, &[], &batch);
        assert!(close(a, b, 1e-12), "{a} vs {b}");
        let (mut pa, mut pb) = (vec![0.0; indices.len()], vec![0.0; indices.len()]);
        let ga = per_row.log_joint_points(theta, u, &[], &batch, &mut pa);
        let gb = batched.log_joint_points(theta, u, &[], &batch, &mut pb);
        assert!(close(ga, gb, 1e-12), "{ga} vs {gb}");
        assert!(pa.iter().zip(&pb).all(|(a, b)| close(*a, *b, 1e-12)));
        // The points' terms are the rows' own (power: a batch in another
        // order moves them).
        assert!(pa.iter().any(|p| *p != pa[0]) || indices.len() == 1);
    }
    // The gradients, on the tape and on duals, to 1e-10.
    for which in 0..4 {
        let (a, b) = (
            Variant {
                model: &per_row,
                which,
            },
            Variant {
                model: &batched,
                which,
            },
        );
        let tape = (
            TapeEngine.value_and_gradient(&a, &all),
            TapeEngine.value_and_gradient(&b, &all),
        );
        let duals = (
            ForwardEngine::<4>::new().value_and_gradient(&a, &all),
            ForwardEngine::<4>::new().value_and_gradient(&b, &all),
        );
        for ((va, ga), (vb, gb)) in [tape, duals] {
            assert!(close(va, vb, 1e-12), "{which}: {va} vs {vb}");
            assert!(ga.iter().any(|g| *g != 0.0));
            for (x, y) in ga.iter().zip(&gb) {
                assert!(close(*x, *y, 1e-10), "{which}: {ga:?} vs {gb:?}");
            }
        }
    }
}

#[test]
fn a_batch_factor_makes_the_same_plate_and_local_latents() {
    let (per_row, batched) = models();
    assert_eq!(batched.local_latents(), ["z"]);
    assert_eq!(per_row.local_latents(), batched.local_latents());
    let (a, b) = (
        per_row.subsample_plate().unwrap(),
        batched.subsample_plate().unwrap(),
    );
    assert_eq!((a.observed, a.len), (b.observed, b.len));
    assert_eq!(b.len, 5);
}

#[test]
fn a_minibatch_fit_gives_the_per_row_trace_bit_for_bit() {
    let (per_row, batched) = models();
    let guide = MeanField::new(per_row.dim());
    let config = FitConfig::new(Diwhvi::elbo())
        .batch_size(2)
        .max_steps(30)
        .seed(5)
        .progress(false);
    let a = fit(&per_row, &guide, Adam::new(0.05), &config).unwrap();
    let b = fit(&batched, &guide, Adam::new(0.05), &config).unwrap();
    assert_eq!(a.trace.len(), 30);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a.trace), bits(&b.trace));
    assert_eq!(bits(&a.params), bits(&b.params));
    assert_eq!(bits(&a.theta), bits(&b.theta));
    assert_ne!(a.theta, vec![0.3, 0.1, 0.1], "θ was learned");
}

#[test]
fn a_batch_term_of_the_wrong_length_is_named_not_a_panic() {
    let model = Short::new(vec![0.5; 5]).unwrap();
    let u = vec![0.2; 5];
    assert!(model.log_joint(&u).is_nan());
    let batch = Batch::new(&[1, 2], 5);
    assert!(model.log_joint_subset(&[], &u, &[], &batch).is_nan());
    let invalid = model.first_invalid_term(&u).expect("the short term");
    assert_eq!(
        invalid.term,
        Term::FactorRows {
            field: "lik",
            terms: 4,
            rows: 5
        }
    );
    let guide = MeanField::new(model.dim());
    let config = FitConfig::new(Diwhvi::elbo())
        .batch_size(2)
        .max_steps(5)
        .progress(false);
    let error = fit(&model, &guide, Adam::new(0.05), &config).unwrap_err();
    assert!(
        matches!(&error, FitError::InvalidStart { term: Some(t), .. } if t.term == invalid.term),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("the factor `lik` (4 terms for 5 rows) is NaN"),
        "{message}"
    );
}

/// A `#[transformed]` vector read per row (`t[n]`).
#[variational]
struct TransformedPerRow {
    #[data]
    y: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = y.len())]
    z: Vec<f64>,
    #[transformed(2.0 * z[i] + 0.5, for i, len = y.len())]
    t: Vec<f64>,
    #[factor(-(t[n] - y[n]) * (t[n] - y[n]), for n, len = y.len())]
    lik: (),
}

/// The same, `t[rows]` gathered.
#[variational]
struct TransformedBatched {
    #[data]
    y: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = y.len())]
    z: Vec<f64>,
    #[transformed(2.0 * z[i] + 0.5, for i, len = y.len())]
    t: Vec<f64>,
    #[factor(squares(rows, t[rows], y[rows]), for rows in batch, len = y.len())]
    lik: (),
}

/// The same again, the `#[transformed]` vector's own index named as the
/// batch's rows (an attribute's index is its own name, not a field), and
/// the gathers written `&t[rows]` and `(y[rows])`.
#[variational]
struct TransformedRowsIndex {
    #[data]
    y: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = y.len())]
    z: Vec<f64>,
    #[transformed(2.0 * z[rows] + 0.5, for rows, len = y.len())]
    t: Vec<f64>,
    #[factor(squares(rows, &t[rows], (y[rows])), for rows in batch, len = y.len())]
    lik: (),
}

fn squares<T: Scalar>(rows: &[usize], t: &[T], y: &[T]) -> Vec<T> {
    (0..rows.len())
        .map(|k| -(t[k] - y[k]) * (t[k] - y[k]))
        .collect()
}

#[test]
fn a_transformed_vector_is_gathered_by_the_rows() {
    let a = TransformedPerRow::new(Y.to_vec()).unwrap();
    let b = TransformedBatched::new(Y.to_vec()).unwrap();
    let c = TransformedRowsIndex::new(Y.to_vec()).unwrap();
    let u = [0.3, -0.8, 1.1, 0.0, 2.2];
    let (va, vb) = (a.log_joint(&u), b.log_joint(&u));
    assert!(va.is_finite() && close(va, vb, 1e-12), "{va} vs {vb}");
    assert_eq!(vb.to_bits(), c.log_joint(&u).to_bits());
    let batch = Batch::new(&[4, 1], 5);
    let (sa, sb) = (
        a.log_joint_subset(&[], &u, &[], &batch),
        b.log_joint_subset(&[], &u, &[], &batch),
    );
    assert!(close(sa, sb, 1e-12), "{sa} vs {sb}");
    assert_eq!(a.local_latents(), b.local_latents());
}

#[test]
fn a_gathered_data_vector_shorter_than_the_plate_is_rejected_by_new() {
    let error = Batched::new(X[..4].to_vec(), Y.to_vec())
        .err()
        .expect("x[rows] reads past x");
    assert!(format!("{error:?}").contains("field: \"x\""), "{error:?}");
}

/// `log z_n` per row: NaN where `z_n < 0`.
#[variational]
struct Logs {
    #[data]
    y: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = y.len())]
    z: Vec<f64>,
    #[factor(logs(z[rows]), for rows in batch, len = y.len())]
    lik: (),
}

fn logs<T: Scalar>(z: &[T]) -> Vec<T> {
    z.iter().map(|&z| z.ln()).collect()
}

#[test]
fn a_non_finite_entry_is_named_with_its_row() {
    let model = Logs::new(vec![0.0; 4]).unwrap();
    let u = [0.5, 1.0, -1.0, 2.0];
    assert!(model.log_joint(&u).is_nan());
    let invalid = model.first_invalid_term(&u).expect("row 2's term");
    assert_eq!(
        invalid.term,
        Term::Factor {
            field: "lik",
            element: Some(2)
        }
    );
    assert!(model.first_invalid_term(&[0.5, 1.0, 1.5, 2.0]).is_none());
}
