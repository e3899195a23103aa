//! What several modules of this test binary share: an eight-schools-like
//! model with local latents, its data, and the check that a model's
//! subsampled log joint averages to the full one over every batch.

use iwhvi::Scalar;
use iwhvi::model::Model;
use iwhvi::subsample::Batch;
use iwhvi::variational;

/// Eight-schools-like: global `mu`, `tau`; local `theta[j]`.
#[variational]
pub(crate) struct Hier {
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfNormal(5.0))]
    tau: f64,
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(mu, tau), len = sigma.len())]
    theta: Vec<f64>,
    #[observe(Normal(theta[j], sigma[j]), for j)]
    y: Vec<f64>,
}

/// [`Hier`]'s observations and noise scales.
pub(crate) const Y: [f64; 5] = [1.2, -0.4, 2.5, 0.3, -1.8];
pub(crate) const SIGMA: [f64; 5] = [0.5, 1.0, 0.8, 1.5, 0.6];

/// [`Hier`] on [`Y`] and [`SIGMA`].
pub(crate) fn hier() -> Hier {
    Hier::new(SIGMA.to_vec(), Y.to_vec()).unwrap()
}

/// A point `u` with every coordinate different.
pub(crate) fn point(dim: usize) -> Vec<f64> {
    (0..dim)
        .map(|i| 0.3 * (i as f64 * 1.7).sin() + 0.1)
        .collect()
}

/// The subsets of size `b` of `0..n`, in order.
fn subsets(n: usize, b: usize) -> Vec<Vec<usize>> {
    if b == 0 {
        return vec![Vec::new()];
    }
    (b - 1..n)
        .flat_map(|last| {
            subsets(last, b - 1).into_iter().map(move |mut s| {
                s.push(last);
                s
            })
        })
        .collect()
}

/// The model's subset log joint as a function of `[u; ϑ]` on one batch.
struct OnBatch<'a, M> {
    model: &'a M,
    indices: &'a [usize],
    scale: f64,
}

impl<M: Model> iwhvi::Differentiable for OnBatch<'_, M> {
    fn eval<T: Scalar>(&self, x: &[T]) -> T {
        let (u, theta) = x.split_at(self.model.dim());
        let batch = Batch::with_scale(self.indices, self.scale);
        self.model.log_joint_subset(theta, u, &[], &batch)
    }
}

/// The mean over every subset of size `b` of the subset log joint with
/// scale `scale` and its gradient in `[u; ϑ]`, minus the full ones.
pub(crate) fn subset_mean_error<M: Model>(model: &M, b: usize, scale: f64) -> (f64, Vec<f64>) {
    let n = model.subsample_plate().unwrap().len;
    let mut x = point(model.dim());
    x.extend(model.theta());
    let all: Vec<usize> = (0..n).collect();
    let full = OnBatch {
        model,
        indices: &all,
        scale: 1.0,
    };
    let (value, gradient) = iwhvi::gradient(&full, &x);
    let every = subsets(n, b);
    let (mut mean, mut mean_gradient) = (0.0, vec![0.0; x.len()]);
    for indices in &every {
        let (v, g) = iwhvi::gradient(
            &OnBatch {
                model,
                indices,
                scale,
            },
            &x,
        );
        mean += v / every.len() as f64;
        for (m, g) in mean_gradient.iter_mut().zip(g) {
            *m += g / every.len() as f64;
        }
    }
    let error = mean_gradient
        .iter()
        .zip(&gradient)
        .map(|(m, g)| m - g)
        .collect();
    (mean - value, error)
}
