//! The standard normal noise of one step, drawn before the bound is
//! evaluated so that every gradient pass sees the same draws.

use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

use super::Diwhvi;
use crate::guide::HierarchicalGuide;
use crate::input::{InputError, bound_memory, check_size, check_values, value_bytes};
use crate::model::Model;

/// The entries of one draw's noise that a step reads (its batch's groups'
/// and the global groups', [`HierarchicalGuide::group_noise`] and
/// [`MixingGroup::reverse_noise`](crate::guide::MixingGroup::reverse_noise)):
/// of the mixing noise and the conditional noise of each outer draw, and
/// of the noise of each reverse draw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NoiseEntries {
    pub(crate) mixing: Vec<usize>,
    pub(crate) conditional: Vec<usize>,
    pub(crate) reverse: Vec<usize>,
}

/// The standard normal noise of one step: for each of the `M` outer
/// samples, the mixing draw `ψ₀` (`d`), the conditional draw of `u` (`D`)
/// and the `K` reverse-model draws (`K × d`).
#[derive(Clone, Debug, PartialEq)]
pub struct StepNoise {
    objective: Diwhvi,
    /// Noise lengths per draw: mixing, conditional, reverse.
    dims: [usize; 3],
    mixing: Vec<f64>,
    conditional: Vec<f64>,
    reverse: Vec<f64>,
    /// The model's semi-implicit prior noise per outer sample
    /// ([`Model::prior_noise_dim`](crate::model::Model::prior_noise_dim));
    /// 0 for an exact log joint.
    prior_dim: usize,
    prior: Vec<f64>,
}

impl StepNoise {
    /// Buffers for a guide and objective, filled with zeros.
    ///
    /// # Panics
    /// When `8 · M · (d_mix + d_cond + K · d_rev)` bytes cannot be
    /// allocated (the allocator's own abort or "capacity overflow"). Sizes
    /// that come from input go through [`StepNoise::try_new`], which checks
    /// them against a budget first; every function of this crate that
    /// builds noise from a caller's `M` and `K` does.
    pub fn new<G: HierarchicalGuide>(guide: &G, objective: Diwhvi) -> Self {
        let k = if guide.mixing_dim() == 0 {
            0
        } else {
            objective.k()
        };
        let dims = [
            guide.mixing_noise_dim(),
            guide.conditional_noise_dim(),
            guide.reverse_noise_dim(),
        ];
        Self {
            objective: Diwhvi::new(objective.m(), k),
            dims,
            mixing: vec![0.0; objective.m() * dims[0]],
            conditional: vec![0.0; objective.m() * dims[1]],
            reverse: vec![0.0; objective.m() * k * dims[2]],
            prior_dim: 0,
            prior: Vec::new(),
        }
    }

    /// These buffers with room for `per_draw` standard normal draws per
    /// outer sample for the model's semi-implicit priors
    /// ([`Model::prior_noise_dim`](crate::model::Model::prior_noise_dim)),
    /// drawn by [`StepNoise::redraw`] after the guide's noise (so that noise
    /// with `per_draw = 0` draws exactly what it drew before).
    /// `fit`, `estimate_bound` and `log_evidence` build their noise this
    /// way; noise built without it makes a model with semi-implicit priors
    /// use its fixed reference noise.
    ///
    /// # Panics
    /// As [`StepNoise::new`], when the buffer cannot be allocated.
    /// [`StepNoise::try_with_prior_noise`] checks its size first; every
    /// function of this crate that adds a model's prior noise uses it.
    ///
    /// ```
    /// use iwhvi_core::guide::MeanField;
    /// use iwhvi_core::objective::{Diwhvi, StepNoise};
    /// use rand::SeedableRng;
    /// let guide = MeanField::new(2);
    /// let mut a = StepNoise::new(&guide, Diwhvi::new(3, 0)).with_prior_noise(0);
    /// let mut b = StepNoise::new(&guide, Diwhvi::new(3, 0));
    /// a.redraw(&mut rand::rngs::StdRng::seed_from_u64(1));
    /// b.redraw(&mut rand::rngs::StdRng::seed_from_u64(1));
    /// assert_eq!(a, b);
    /// ```
    pub fn with_prior_noise(mut self, per_draw: usize) -> Self {
        self.prior_dim = per_draw;
        self.prior = vec![0.0; self.objective.m() * per_draw];
        self
    }

    /// [`StepNoise::with_prior_noise`] after checking its buffer,
    /// `8 · M · per_draw` bytes, against `budget` bytes.
    ///
    /// # Errors
    /// [`InputError::TooLarge`], saying how many bytes it needs.
    ///
    /// ```
    /// use iwhvi_core::guide::MeanField;
    /// use iwhvi_core::input::{InputError, DEFAULT_MEMORY_BUDGET};
    /// use iwhvi_core::objective::{Diwhvi, StepNoise};
    /// let noise = StepNoise::new(&MeanField::new(2), Diwhvi::new(4, 0));
    /// assert!(noise.clone().try_with_prior_noise(3, DEFAULT_MEMORY_BUDGET).is_ok());
    /// assert!(matches!(
    ///     noise.try_with_prior_noise(usize::MAX / 2, DEFAULT_MEMORY_BUDGET),
    ///     Err(InputError::TooLarge { .. })
    /// ));
    /// ```
    pub fn try_with_prior_noise(self, per_draw: usize, budget: u64) -> Result<Self, InputError> {
        let m = self.objective.m();
        check_values(
            || format!("the model's semi-implicit prior noise, {m} outer samples × {per_draw}"),
            m,
            per_draw,
            budget,
        )?;
        Ok(self.with_prior_noise(per_draw))
    }

    /// [`StepNoise::new`] after checking its size against `budget` bytes
    /// ([`check_size`], without a tape).
    ///
    /// # Errors
    /// [`InputError::TooLarge`].
    ///
    /// ```
    /// use iwhvi_core::guide::SemiImplicit;
    /// use iwhvi_core::input::{InputError, DEFAULT_MEMORY_BUDGET};
    /// use iwhvi_core::objective::{Diwhvi, StepNoise};
    /// let guide = SemiImplicit::new(2, 2);
    /// assert!(StepNoise::try_new(&guide, Diwhvi::new(4, 8), DEFAULT_MEMORY_BUDGET).is_ok());
    /// let huge = Diwhvi::new(1, usize::MAX / 2);
    /// assert!(matches!(StepNoise::try_new(&guide, huge, DEFAULT_MEMORY_BUDGET), Err(InputError::TooLarge { .. })));
    /// ```
    pub fn try_new<G: HierarchicalGuide>(
        guide: &G,
        objective: Diwhvi,
        budget: u64,
    ) -> Result<Self, InputError> {
        check_size(guide, objective, false, budget)?;
        Ok(Self::new(guide, objective))
    }

    /// The noise of one step of `guide` on `model`: [`StepNoise::new`]
    /// with room for the model's semi-implicit prior noise
    /// ([`StepNoise::with_prior_noise`] with
    /// [`Model::prior_noise_dim`](crate::model::Model::prior_noise_dim)),
    /// after checking both buffers together against `budget` bytes:
    /// [`bound_memory`] (without a tape) plus `8 · M · prior_noise_dim`.
    ///
    /// # Errors
    /// [`InputError::TooLarge`], with the bytes of both.
    ///
    /// ```
    /// use iwhvi_core::guide::SemiImplicit;
    /// use iwhvi_core::input::{InputError, bound_memory};
    /// use iwhvi_core::model::{LatentSpec, Layout, Model};
    /// use iwhvi_core::objective::{Diwhvi, StepNoise};
    /// use iwhvi_core::transforms::Transform;
    /// use iwhvi_core::Scalar;
    ///
    /// struct Std { noise: usize }
    /// impl Model for Std {
    ///     fn layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("z", Transform::Identity)])
    ///     }
    ///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
    ///         -u[0].square() * 0.5
    ///     }
    ///     fn prior_noise_dim(&self) -> usize {
    ///         self.noise
    ///     }
    /// }
    /// let (guide, objective) = (SemiImplicit::new(1, 2), Diwhvi::new(4, 8));
    /// let exact = bound_memory(&guide, objective, false) as u64;
    /// assert!(StepNoise::try_for_model(&Std { noise: 0 }, &guide, objective, exact).is_ok());
    /// // 3 prior-noise values per outer sample: 8 · 4 · 3 = 96 bytes more.
    /// let prior = Std { noise: 3 };
    /// assert!(matches!(
    ///     StepNoise::try_for_model(&prior, &guide, objective, exact + 95),
    ///     Err(InputError::TooLarge { bytes, .. }) if bytes == u128::from(exact) + 96
    /// ));
    /// assert!(StepNoise::try_for_model(&prior, &guide, objective, exact + 96).is_ok());
    /// ```
    pub fn try_for_model<Mo: Model + ?Sized, G: HierarchicalGuide>(
        model: &Mo,
        guide: &G,
        objective: Diwhvi,
        budget: u64,
    ) -> Result<Self, InputError> {
        let per_draw = model.prior_noise_dim();
        let bytes = bound_memory(guide, objective, false)
            .saturating_add(value_bytes(objective.m(), per_draw));
        if bytes > u128::from(budget) {
            return Err(InputError::TooLarge {
                what: format!(
                    "the bound with M = {}, K = {} and the model's semi-implicit prior noise ({per_draw} per outer sample)",
                    objective.m(),
                    objective.k()
                ),
                bytes,
                budget,
            });
        }
        Ok(Self::new(guide, objective).with_prior_noise(per_draw))
    }

    /// Checks that this noise was drawn for `guide` (its noise lengths per
    /// draw), and that outer sample `m` exists.
    pub(crate) fn check_fits<G: HierarchicalGuide + ?Sized>(
        &self,
        guide: &G,
        m: usize,
    ) -> Result<(), InputError> {
        let dims = [
            guide.mixing_noise_dim(),
            guide.conditional_noise_dim(),
            guide.reverse_noise_dim(),
        ];
        let k = if guide.mixing_dim() == 0 {
            0
        } else {
            self.objective.k()
        };
        if dims != self.dims || k != self.objective.k() {
            return Err(InputError::NoiseMismatch {
                noise: format!("{:?} with K = {}", self.dims, self.objective.k()),
                guide: format!("{dims:?} with K = {k}"),
            });
        }
        if m >= self.objective.m() {
            return Err(InputError::OuterSampleOutOfRange {
                index: m,
                m: self.objective.m(),
            });
        }
        Ok(())
    }

    /// Fresh noise for a guide and objective.
    ///
    /// # Panics
    /// As [`StepNoise::new`], when the buffers cannot be allocated: for
    /// `M` and `K` that come from input, [`StepNoise::try_new`] then
    /// [`StepNoise::redraw`].
    ///
    /// Takes any generator of [`iwhvi::rand`](crate::rand) (the `rand` 0.10 that
    /// this library re-exports, so that versions cannot clash), e.g.
    /// `iwhvi::rand::rngs::StdRng`.
    pub fn draw<G: HierarchicalGuide, R: Rng + ?Sized>(
        guide: &G,
        objective: Diwhvi,
        rng: &mut R,
    ) -> Self {
        let mut noise = Self::new(guide, objective);
        noise.redraw(rng);
        noise
    }

    /// Refills the buffers with fresh draws (no allocation).
    ///
    /// Takes any generator of [`iwhvi::rand`](crate::rand) (the `rand` 0.10 that
    /// this library re-exports, so that versions cannot clash), e.g.
    /// `iwhvi::rand::rngs::StdRng`.
    pub fn redraw<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        for buffer in [
            &mut self.mixing,
            &mut self.conditional,
            &mut self.reverse,
            &mut self.prior,
        ] {
            for e in buffer.iter_mut() {
                *e = rng.sample(StandardNormal);
            }
        }
    }

    /// Refills the entries `entries` of every outer and reverse draw with
    /// fresh draws, and the model's prior noise whole; the other entries
    /// keep their values (no allocation). The order is
    /// [`StepNoise::redraw`]'s with the entries outside `entries` skipped:
    /// each buffer in turn, outer draw after outer draw (reverse draw after
    /// reverse draw), the entries in the order given, so that entries
    /// listing every entry in order draw what `redraw` draws.
    pub(crate) fn redraw_entries<R: Rng + ?Sized>(&mut self, rng: &mut R, entries: &NoiseEntries) {
        let per_draw = [&entries.mixing, &entries.conditional, &entries.reverse];
        let buffers = [&mut self.mixing, &mut self.conditional, &mut self.reverse];
        for ((buffer, &dim), which) in buffers.into_iter().zip(&self.dims).zip(per_draw) {
            if dim == 0 {
                continue;
            }
            for draw in buffer.chunks_exact_mut(dim) {
                for &i in which {
                    draw[i] = rng.sample(StandardNormal);
                }
            }
        }
        for e in &mut self.prior {
            *e = rng.sample(StandardNormal);
        }
    }

    /// The objective these buffers serve (with `K = 0` for a
    /// non-hierarchical guide).
    pub fn objective(&self) -> Diwhvi {
        self.objective
    }

    /// The noise of outer sample `m`'s mixing draw `ψ₀`.
    pub(super) fn mixing(&self, m: usize) -> &[f64] {
        &self.mixing[m * self.dims[0]..(m + 1) * self.dims[0]]
    }

    /// The noise of outer sample `m`'s draw of `u`.
    pub(super) fn conditional(&self, m: usize) -> &[f64] {
        &self.conditional[m * self.dims[1]..(m + 1) * self.dims[1]]
    }

    /// The model's semi-implicit prior noise of outer sample `m` (empty
    /// when these buffers have none).
    pub(crate) fn prior_noise(&self, m: usize) -> &[f64] {
        &self.prior[m * self.prior_dim..(m + 1) * self.prior_dim]
    }

    /// The buffers as mutable slices, for tests that build noise by hand:
    /// mixing (`M × d_mix`), conditional (`M × d_cond`) and reverse
    /// (`M × K × d_rev`, `k` inner).
    #[cfg(test)]
    pub(super) fn buffers_mut(&mut self) -> [&mut [f64]; 3] {
        [&mut self.mixing, &mut self.conditional, &mut self.reverse]
    }

    /// The noise of outer sample `m`'s reverse draw `ψ_{k+1}`.
    pub(super) fn reverse(&self, m: usize, k: usize) -> &[f64] {
        let start = (m * self.objective.k() + k) * self.dims[2];
        &self.reverse[start..start + self.dims[2]]
    }
}
