//! `log_joint_points` on a batch alone (session 14): the local latents are
//! held at the batch's points only (O(batch), not a vector over the whole
//! plate), and every term of a point reads them there. Checked against
//! the full-data computation written out by hand (each local latent a
//! vector over the whole plate with the batch's entries set, as the macro
//! did before): a positive local latent (a log transform and its log
//! Jacobian), a local latent whose prior reads it at its index, an
//! observed plate and a plate of factors over the batch reading both;
//! the same values bit for bit on `f64`, and the same values and
//! gradients on the tape and on duals; a batch of the whole plate gives
//! `log_joint`.

use iwhvi::distributions::{Distribution, HalfNormal, Normal};
use iwhvi::model::Model;
use iwhvi::subsample::Batch;
use iwhvi::tape::TapeEngine;
use iwhvi::{Differentiable, ForwardEngine, Scalar, variational};

const X: [f64; 5] = [0.3, -1.2, 0.8, 2.0, -0.4];
const Y: [f64; 5] = [1.1, -0.7, 0.2, 2.9, 0.05];
const N: usize = X.len();

/// `mu ~ N(0, 1)`, `s_i ~ HalfNormal(1)` (positive: `s = e^u`),
/// `z_i ~ N(mu, s_i)`, `y_j ~ N(z_j x_j, s_j)`, and a factor
/// `-z_n s_n x_n²` per row over the batch.
#[variational]
struct Scales {
    #[data]
    x: Vec<f64>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[latent(HalfNormal(1.0), len = x.len())]
    s: Vec<f64>,
    #[latent(Normal(mu, s[i]), len = x.len(), for i)]
    z: Vec<f64>,
    #[observe(Normal(z[j] * x[j], s[j]), for j)]
    y: Vec<f64>,
    #[factor(self.row_terms(rows, z[rows], s[rows]), for rows in batch, len = x.len())]
    per_row: (),
}

impl Scales {
    fn row_terms<T: Scalar>(&self, rows: &[usize], z: &[T], s: &[T]) -> Vec<T> {
        rows.iter()
            .zip(z.iter().zip(s))
            .map(|(&n, (&z, &s))| -(z * s) * (self.x[n] * self.x[n]))
            .collect()
    }
}

fn log_prob<T: Scalar, D: Distribution<T, Value = T>>(d: D, x: T) -> T {
    d.log_prob(x)
}

/// The full-data computation: `(global, points)` with `s` and `z` vectors
/// over the whole plate (zero off the batch), in the generated code's
/// order of terms.
fn reference<T: Scalar>(u: &[T], batch: &[usize]) -> (T, Vec<T>) {
    let c = T::constant;
    let mu = u[0];
    let global = log_prob(Normal::new(c(0.0), c(1.0)).unwrap(), mu);
    let (mut s, mut z) = (vec![c(0.0); N], vec![c(0.0); N]);
    let mut points = Vec::new();
    for &k in batch {
        s[k] = u[1 + k].exp();
        // The log Jacobian `u` first, then the prior.
        points.push(u[1 + k] + log_prob(HalfNormal::new(c(1.0)).unwrap(), s[k]));
    }
    for (pos, &k) in batch.iter().enumerate() {
        z[k] = u[1 + N + k];
        points[pos] += log_prob(Normal::new(mu, s[k]).unwrap(), z[k]);
    }
    for (pos, &j) in batch.iter().enumerate() {
        let lik = Normal::new(z[j] * c(X[j]), s[j]).unwrap();
        points[pos] += log_prob(lik, c(Y[j]));
    }
    for (pos, &n) in batch.iter().enumerate() {
        points[pos] += -(z[n] * s[n]) * (X[n] * X[n]);
    }
    (global, points)
}

fn model() -> Scales {
    Scales::new(X.to_vec(), Y.to_vec()).unwrap()
}

fn point() -> Vec<f64> {
    (0..1 + 2 * N)
        .map(|k| ((k * 7 % 11) as f64 - 5.0) * 0.17)
        .collect()
}

/// `global + Σ_pos (pos + 1.5) points[pos]` of the generated code
/// (`generated`) or of [`reference`], on `batch`.
struct Weighted<'a> {
    model: &'a Scales,
    batch: &'a [usize],
    generated: bool,
}

impl Differentiable for Weighted<'_> {
    fn eval<T: Scalar>(&self, u: &[T]) -> T {
        let (global, points) = if self.generated {
            let mut points = vec![T::constant(0.0); self.batch.len()];
            let batch = Batch::new(self.batch, N);
            let global = self
                .model
                .log_joint_points(&[], u, &[], &batch, &mut points);
            (global, points)
        } else {
            reference(u, self.batch)
        };
        points
            .iter()
            .enumerate()
            .fold(global, |acc, (k, &p)| acc + p * T::constant(k as f64 + 1.5))
    }
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * (1.0 + a.abs())
}

const BATCHES: [&[usize]; 4] = [&[3, 0, 4], &[1], &[4, 3, 2, 1, 0], &[2, 4]];

#[test]
fn the_batch_points_are_the_full_data_points_bit_for_bit() {
    let model = model();
    assert_eq!(model.local_latents(), ["s", "z"]);
    let u = point();
    for batch in BATCHES {
        let mut points = vec![0.0; batch.len()];
        let global = model.log_joint_points(&[], &u, &[], &Batch::new(batch, N), &mut points);
        let (g, expected) = reference(&u, batch);
        assert_eq!(global.to_bits(), g.to_bits(), "{batch:?}: {global} vs {g}");
        for (a, b) in points.iter().zip(&expected) {
            assert!(a.is_finite());
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "{batch:?}: {points:?} vs {expected:?}"
            );
        }
    }
}

#[test]
fn the_batch_points_have_the_full_data_gradients_on_the_tape_and_on_duals() {
    let model = model();
    let u = point();
    for batch in BATCHES {
        let (generated, reference) = (
            Weighted {
                model: &model,
                batch,
                generated: true,
            },
            Weighted {
                model: &model,
                batch,
                generated: false,
            },
        );
        let tape = (
            TapeEngine.value_and_gradient(&generated, &u),
            TapeEngine.value_and_gradient(&reference, &u),
        );
        let duals = (
            ForwardEngine::<4>::new().value_and_gradient(&generated, &u),
            ForwardEngine::<4>::new().value_and_gradient(&reference, &u),
        );
        for ((va, ga), (vb, gb)) in [tape, duals] {
            assert!(close(va, vb, 1e-13), "{batch:?}: {va} vs {vb}");
            // The batch's coordinates of `s` and `z` move it, the others not.
            for k in 0..N {
                let on = batch.contains(&k);
                assert_eq!(ga[1 + k] != 0.0, on, "{batch:?}: {ga:?}");
                assert_eq!(ga[1 + N + k] != 0.0, on, "{batch:?}: {ga:?}");
            }
            for (x, y) in ga.iter().zip(&gb) {
                assert!(close(*x, *y, 1e-13), "{batch:?}: {ga:?} vs {gb:?}");
            }
        }
    }
}

/// The scaled log joint on a batch of the whole plate.
struct WholeBatch<'a>(&'a Scales, bool);

impl Differentiable for WholeBatch<'_> {
    fn eval<T: Scalar>(&self, u: &[T]) -> T {
        if self.1 {
            let all: Vec<usize> = (0..N).collect();
            self.0.log_joint_subset(&[], u, &[], &Batch::new(&all, N))
        } else {
            self.0.log_joint(u)
        }
    }
}

#[test]
fn a_batch_of_the_whole_plate_is_the_log_joint() {
    let model = model();
    let u = point();
    let (subset, full) = (WholeBatch(&model, true), WholeBatch(&model, false));
    assert!(close(subset.eval(&u), full.eval(&u), 1e-13));
    let (va, ga) = TapeEngine.value_and_gradient(&subset, &u);
    let (vb, gb) = TapeEngine.value_and_gradient(&full, &u);
    assert!(close(va, vb, 1e-13), "{va} vs {vb}");
    assert!(ga.iter().all(|g| *g != 0.0));
    for (x, y) in ga.iter().zip(&gb) {
        assert!(close(*x, *y, 1e-12), "{ga:?} vs {gb:?}");
    }
}
