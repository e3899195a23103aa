//! Minibatch fits (`FitConfig::batch_size`): the epoch sampler of the
//! plate's elements and the model seen through one step's batch.
//!
//! Each epoch is a fresh permutation of the `N` elements, cut into
//! `⌈N / b⌉` batches of `b`; the last batch of an epoch, when `b` does not
//! divide `N`, takes the epoch's `r` remaining elements and `b − r` drawn
//! without replacement from the others. Every batch is then a uniform
//! subset of size `b` (the construction is invariant under relabelling the
//! elements), so that the scaled log joint is unbiased at every step.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::model::{Latents, Layout, Model};
use crate::scalar::Scalar;
use crate::subsample::Batch;

/// The batches of a fit, drawn from their own stream (seeded from the
/// fit's seed), so that the step noise is the same with or without
/// batches (except on the per-point bound with a guide that reports its
/// groups' noise, [`HierarchicalGuide::group_noise`](crate::guide::HierarchicalGuide::group_noise):
/// a step on fewer points than the plate's then draws its batch's entries
/// alone).
#[derive(Debug)]
pub(crate) struct Batcher {
    rng: StdRng,
    order: Vec<usize>,
    /// The next unused position of `order` in this epoch.
    next: usize,
    size: usize,
    current: Vec<usize>,
}

impl Batcher {
    /// Batches of `size` elements (`1 ≤ size ≤ n`, checked by the fit)
    /// of a plate of `n`.
    pub(crate) fn new(n: usize, size: usize, seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed ^ 0x6D69_6E69_6261_7463),
            order: (0..n).collect(),
            next: n,
            size,
            current: Vec::with_capacity(size),
        }
    }

    /// True when a batch holds fewer elements than the plate (`b < N`).
    pub(crate) fn is_partial(&self) -> bool {
        self.size < self.order.len()
    }

    /// The next batch, sorted (the plate's terms summed in index order),
    /// with its scale `N / b`.
    pub(crate) fn next_batch(&mut self) -> Batch<'_> {
        let n = self.order.len();
        if self.next >= n {
            self.order.shuffle(&mut self.rng);
            self.next = 0;
        }
        let take = self.size.min(n - self.next);
        self.current.clear();
        self.current
            .extend_from_slice(&self.order[self.next..self.next + take]);
        if take < self.size {
            // The epoch's last, short batch: filled from the elements
            // already used this epoch.
            let used = &mut self.order[..self.next];
            let (chosen, _) = used.partial_shuffle(&mut self.rng, self.size - take);
            self.current.extend_from_slice(chosen);
        }
        self.next += take;
        self.current.sort_unstable();
        Batch::new(&self.current, n)
    }
}

/// The model seen through one batch (or through none: the full data), at
/// fixed learned parameters for the calls that take none.
pub(crate) struct Subsampled<'a, M: Model> {
    pub(crate) model: &'a M,
    /// `None`: the full log joint.
    pub(crate) batch: Option<Batch<'a>>,
    /// The learned parameters for [`Model::log_joint`] and
    /// [`Model::log_joint_with_noise`].
    pub(crate) theta: &'a [f64],
}

impl<M: Model> Subsampled<'_, M> {
    fn at<T: Scalar>(&self, theta: &[T], u: &[T], noise: &[f64]) -> T {
        match &self.batch {
            Some(batch) => self.model.log_joint_subset(theta, u, noise, batch),
            None => self.model.log_joint_theta_with_noise(theta, u, noise),
        }
    }

    fn theta_as<T: Scalar>(&self) -> Vec<T> {
        self.theta.iter().map(|&t| T::constant(t)).collect()
    }
}

impl<M: Model> Model for Subsampled<'_, M> {
    const STATIC_DIM: Option<usize> = M::STATIC_DIM;

    fn layout(&self) -> Layout {
        self.model.layout()
    }

    fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
        self.at(&self.theta_as(), u, &[])
    }

    fn derived(&self, latents: &Latents) -> Latents {
        self.model.derived(latents)
    }

    fn dim(&self) -> usize {
        self.model.dim()
    }

    fn theta_layout(&self) -> Layout {
        self.model.theta_layout()
    }

    fn theta_dim(&self) -> usize {
        self.model.theta_dim()
    }

    fn theta(&self) -> Vec<f64> {
        self.theta.to_vec()
    }

    fn log_joint_theta<T: Scalar>(&self, theta: &[T], u: &[T]) -> T {
        self.at(theta, u, &[])
    }

    fn prior_noise_dim(&self) -> usize {
        self.model.prior_noise_dim()
    }

    fn log_joint_with_noise<T: Scalar>(&self, u: &[T], noise: &[f64]) -> T {
        self.at(&self.theta_as(), u, noise)
    }

    fn log_joint_theta_with_noise<T: Scalar>(&self, theta: &[T], u: &[T], noise: &[f64]) -> T {
        self.at(theta, u, noise)
    }
}

#[cfg(test)]
mod tests {
    use super::Batcher;

    #[test]
    fn an_epoch_covers_every_element_once_and_batches_have_b_distinct_elements() {
        let (n, b) = (10, 3);
        let mut batcher = Batcher::new(n, b, 7);
        let mut seen = vec![0usize; n];
        for step in 0..4 {
            let batch = batcher.next_batch().indices().to_vec();
            assert_eq!(batch.len(), b);
            let mut distinct = batch.clone();
            distinct.dedup();
            assert_eq!(distinct.len(), b, "{batch:?}");
            if step < 3 {
                for &i in &batch {
                    seen[i] += 1;
                }
            } else {
                // The short batch: one new element, two used ones.
                let new: Vec<usize> = batch.iter().copied().filter(|&i| seen[i] == 0).collect();
                assert_eq!(new.len(), 1, "{batch:?} {seen:?}");
            }
        }
        assert_eq!(seen.iter().filter(|&&c| c == 1).count(), 9);
    }

    #[test]
    fn each_element_is_in_a_batch_with_probability_b_over_n() {
        // n = 5, b = 2: an epoch of 3 steps whose last is short.
        let (n, b, steps) = (5, 2, 30_000);
        let mut batcher = Batcher::new(n, b, 1);
        let mut counts = vec![0.0; n];
        let mut last_counts = vec![0.0; n];
        for step in 0..steps {
            for &i in batcher.next_batch().indices() {
                counts[i] += 1.0;
                if step % 3 == 2 {
                    last_counts[i] += 1.0;
                }
            }
        }
        let p = b as f64 / n as f64;
        for (count, last) in counts.iter().zip(&last_counts) {
            let se = (p * (1.0 - p) / steps as f64).sqrt();
            assert!((count / steps as f64 - p).abs() < 4.0 * se, "{counts:?}");
            let last_steps = (steps / 3) as f64;
            let se_last = (p * (1.0 - p) / last_steps).sqrt();
            assert!(
                (last / last_steps - p).abs() < 4.0 * se_last,
                "{last_counts:?}"
            );
        }
    }
}
