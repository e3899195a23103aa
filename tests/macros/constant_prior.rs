//! A local latent's prior written `Normal(a, b)` with number literals
//! (`Normal(0.0, 1.0)`, a VAE's prior): `log_joint_points` evaluates the
//! batch's prior terms as one vector operation (`ConstantNormal`) instead
//! of two scalar nodes per point. Checked against the same model with the
//! same priors written as expressions (`Normal(0.0 * 1.0, 1.0 * 1.0)`),
//! which keep the scalar path: the same values on `f64`, and the same
//! values and gradients on the tape and on duals, bit for bit, with a
//! global latent, an identity and a bounded (log-transformed) local latent,
//! an observed plate and a plate of factors reading both, on partial and
//! reordered batches.

use iwhvi::model::Model;
use iwhvi::subsample::Batch;
use iwhvi::tape::TapeEngine;
use iwhvi::{Differentiable, ForwardEngine, Scalar, variational};

const X: [f64; 5] = [0.3, -1.2, 0.8, 2.0, -0.4];
const Y: [f64; 5] = [1.1, -0.7, 0.2, 2.9, 0.05];
const N: usize = X.len();

/// The literal priors: `a_i ~ N(0, 1)`, `b_i ~ N(−0.5, 2²)` on `b > 0`.
#[variational]
struct Literal {
    #[data]
    x: Vec<f64>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[latent(Normal(0.0, 1.0), len = x.len())]
    a: Vec<f64>,
    #[latent(Normal(-0.5, 2), len = x.len(), lower = 0.0)]
    b: Vec<f64>,
    #[observe(Normal(mu + a[j] * x[j], b[j]), for j)]
    y: Vec<f64>,
    #[factor(self.rows(rows, a[rows], b[rows]), for rows in batch, len = x.len())]
    per_row: (),
}

/// The same model with its priors written as expressions.
#[variational]
struct Written {
    #[data]
    x: Vec<f64>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[latent(Normal(0.0 * 1.0, 1.0 * 1.0), len = x.len())]
    a: Vec<f64>,
    #[latent(Normal(-0.5 * 1.0, 2.0 * 1.0), len = x.len(), lower = 0.0)]
    b: Vec<f64>,
    #[observe(Normal(mu + a[j] * x[j], b[j]), for j)]
    y: Vec<f64>,
    #[factor(self.rows(rows, a[rows], b[rows]), for rows in batch, len = x.len())]
    per_row: (),
}

impl Literal {
    fn rows<T: Scalar>(&self, rows: &[usize], a: &[T], b: &[T]) -> Vec<T> {
        row_terms(rows, a, b, &self.x)
    }
}

impl Written {
    fn rows<T: Scalar>(&self, rows: &[usize], a: &[T], b: &[T]) -> Vec<T> {
        row_terms(rows, a, b, &self.x)
    }
}

fn row_terms<T: Scalar>(rows: &[usize], a: &[T], b: &[T], x: &[f64]) -> Vec<T> {
    rows.iter()
        .zip(a.iter().zip(b))
        .map(|(&n, (&a, &b))| -(a * b) * (x[n] * x[n]) + a.square())
        .collect()
}

fn point() -> Vec<f64> {
    (0..1 + 2 * N)
        .map(|k| ((k * 7 % 11) as f64 - 5.0) * 0.17)
        .collect()
}

/// `global + Σ_pos (pos + 1.5) points[pos]` of `model` on `batch`.
struct Weighted<'a, M> {
    model: &'a M,
    batch: &'a [usize],
}

impl<M: Model> Differentiable for Weighted<'_, M> {
    fn eval<T: Scalar>(&self, u: &[T]) -> T {
        let mut points = vec![T::constant(0.0); self.batch.len()];
        let batch = Batch::new(self.batch, N);
        let global = self
            .model
            .log_joint_points(&[], u, &[], &batch, &mut points);
        points
            .iter()
            .enumerate()
            .fold(global, |acc, (k, &p)| acc + p * T::constant(k as f64 + 1.5))
    }
}

const BATCHES: [&[usize]; 4] = [&[3, 0, 4], &[1], &[4, 3, 2, 1, 0], &[2, 4]];

fn bits(xs: &[f64]) -> Vec<u64> {
    xs.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn literal_priors_give_the_written_priors_values_bit_for_bit() {
    let literal = Literal::new(X.to_vec(), Y.to_vec()).unwrap();
    let written = Written::new(X.to_vec(), Y.to_vec()).unwrap();
    assert_eq!(literal.local_latents(), ["a", "b"]);
    let u = point();
    for batch in BATCHES {
        let (mut p, mut q) = (vec![0.0; batch.len()], vec![0.0; batch.len()]);
        let b = Batch::new(batch, N);
        let g = literal.log_joint_points(&[], &u, &[], &b, &mut p);
        let h = written.log_joint_points(&[], &u, &[], &b, &mut q);
        assert!(p.iter().all(|v| v.is_finite()));
        assert_eq!(g.to_bits(), h.to_bits(), "{batch:?}");
        assert_eq!(bits(&p), bits(&q), "{batch:?}: {p:?} vs {q:?}");
        let (s, t) = (
            literal.log_joint_subset(&[], &u, &[], &b),
            written.log_joint_subset(&[], &u, &[], &b),
        );
        assert_eq!(s.to_bits(), t.to_bits(), "{batch:?}");
    }
}

#[test]
fn literal_priors_give_the_written_priors_gradients_bit_for_bit() {
    let literal = Literal::new(X.to_vec(), Y.to_vec()).unwrap();
    let written = Written::new(X.to_vec(), Y.to_vec()).unwrap();
    let u = point();
    for batch in BATCHES {
        let (a, b) = (
            Weighted {
                model: &literal,
                batch,
            },
            Weighted {
                model: &written,
                batch,
            },
        );
        let tape = (
            TapeEngine.value_and_gradient(&a, &u),
            TapeEngine.value_and_gradient(&b, &u),
        );
        let duals = (
            ForwardEngine::<4>::new().value_and_gradient(&a, &u),
            ForwardEngine::<4>::new().value_and_gradient(&b, &u),
        );
        for ((va, ga), (vb, gb)) in [tape, duals] {
            assert_eq!(va.to_bits(), vb.to_bits(), "{batch:?}: {va} vs {vb}");
            // The batch's coordinates of `a` and `b` move it, the others not.
            for k in 0..N {
                let on = batch.contains(&k);
                assert_eq!(ga[1 + k] != 0.0, on, "{batch:?}: {ga:?}");
                assert_eq!(ga[1 + N + k] != 0.0, on, "{batch:?}: {ga:?}");
            }
            assert_eq!(bits(&ga), bits(&gb), "{batch:?}: {ga:?} vs {gb:?}");
        }
    }
}
