//! Minibatches over a model's plate: what a model declares about the plate
//! it can subsample ([`SubsamplePlate`]), and the subset one step uses
//! ([`Batch`]).
//!
//! A model whose likelihood is a plate over `N` elements can evaluate its
//! log joint on a subset `B` of them with the plate's terms scaled by
//! `N / b` (Pyro's `plate(subsample_size = b)`):
//!
//! ```text
//! log p̂(x, u) = [global terms] + (N / b) Σ_{n ∈ B} [plate terms of n],
//! ```
//!
//! an unbiased estimate of the full log joint when `B` is a uniform
//! subset of size `b` (each element is in `B` with probability `b / N`).
//! [`Model::subsample_plate`](crate::model::Model::subsample_plate) says
//! whether a model can, and
//! [`Model::log_joint_subset`](crate::model::Model::log_joint_subset)
//! evaluates it; [`FitConfig::batch_size`](crate::fit::FitConfig::batch_size)
//! fits with it.
//!
//! ```
//! use iwhvi_core::subsample::Batch;
//! let batch = Batch::new(&[0, 3], 10);
//! assert_eq!(batch.scale(), 5.0); // N / b = 10 / 2
//! assert_eq!(batch.indices(), &[0, 3]);
//! ```

/// The plate a model can subsample: the observed fields it covers and
/// its length `N`.
///
/// ```
/// use iwhvi_core::subsample::SubsamplePlate;
/// let plate = SubsamplePlate { observed: vec!["y".into()], len: 1000 };
/// assert_eq!(plate.len, 1000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubsamplePlate {
    /// The observed fields whose terms are subsampled (one plate: all of
    /// the same length).
    pub observed: Vec<String>,
    /// The plate's length `N`.
    pub len: usize,
}

/// Why a model cannot be subsampled, when it does not say otherwise: the
/// default of [`Model::subsample_plate`](crate::model::Model::subsample_plate).
pub const NOT_SUBSAMPLED: &str = "this model cannot be subsampled: it does not implement \
     Model::subsample_plate and Model::log_joint_subset (#[variational] models with one \
     plate of observed elements and no learned parameters or semi-implicit priors do)";

/// The elements of the plate one step uses, and the scale `N / b` of
/// their terms.
///
/// ```
/// use iwhvi_core::subsample::Batch;
/// let batch = Batch::new(&[1, 2, 4], 6);
/// assert_eq!((batch.len(), batch.scale()), (3, 2.0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Batch<'a> {
    indices: &'a [usize],
    scale: f64,
}

impl<'a> Batch<'a> {
    /// The subset `indices` (each below `n`, no repeats) of a plate of
    /// `n` elements: its terms are scaled by `n / indices.len()` (1 for
    /// an empty subset, which has no terms).
    ///
    /// Unchecked (the fit's own batches are drawn below `n`, and a test
    /// may pass another `n` to scale on purpose): [`Batch::try_new`]
    /// checks indices that come from input before a generated
    /// `log_joint_subset` reads the plate at them.
    pub fn new(indices: &'a [usize], n: usize) -> Self {
        Self::unchecked(indices, n)
    }

    /// [`Batch::new`], checked: `None` when an index is not below `n` or
    /// appears twice (its terms would count twice).
    ///
    /// ```
    /// use iwhvi_core::subsample::Batch;
    /// assert!(Batch::try_new(&[0, 2], 3).is_some());
    /// assert!(Batch::try_new(&[0, 3], 3).is_none());
    /// assert!(Batch::try_new(&[1, 1], 3).is_none());
    /// ```
    pub fn try_new(indices: &'a [usize], n: usize) -> Option<Self> {
        let mut sorted = indices.to_vec();
        sorted.sort_unstable();
        let repeated = sorted.windows(2).any(|w| w[0] == w[1]);
        if repeated || sorted.last().is_some_and(|&i| i >= n) {
            return None;
        }
        Some(Self::unchecked(indices, n))
    }

    /// The subset `indices` with its terms scaled by `scale` instead of
    /// `N / b`: `scale = 1` gives the batch's plate terms unscaled (what
    /// the default [`Model::log_joint_points`](crate::model::Model::log_joint_points)
    /// reads one element at a time).
    ///
    /// ```
    /// use iwhvi_core::subsample::Batch;
    /// let one = Batch::with_scale(&[4], 1.0);
    /// assert_eq!((one.len(), one.scale()), (1, 1.0));
    /// ```
    pub fn with_scale(indices: &'a [usize], scale: f64) -> Self {
        Self { indices, scale }
    }

    fn unchecked(indices: &'a [usize], n: usize) -> Self {
        let scale = if indices.is_empty() {
            1.0
        } else {
            n as f64 / indices.len() as f64
        };
        Self { indices, scale }
    }

    /// The plate's elements in the batch.
    pub fn indices(&self) -> &'a [usize] {
        self.indices
    }

    /// `N / b`, the factor of the batch's plate terms.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// `b`, the batch's size.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// True when the batch has no element.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}
