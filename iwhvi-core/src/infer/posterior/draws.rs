//! Draws of a model's named constrained latents, and the fitted guide's
//! plain draws.

use rand::Rng;

use super::FittedGuide;
use crate::guide::HierarchicalGuide;
use crate::input::{DEFAULT_MEMORY_BUDGET, InputError, check_values};
use crate::model::{Latents, Layout};
use crate::objective::{Diwhvi, StepNoise, sandwich};

impl<G: HierarchicalGuide> FittedGuide<G> {
    /// `n` draws from the guide, constrained and named (none for `n = 0`).
    ///
    /// The draws' size, `n` rows of (elements + 3) values (a row's own
    /// bookkeeping counted as three), is checked up front against
    /// [`DEFAULT_MEMORY_BUDGET`]: a request that could not be held is a
    /// typed error saying how many bytes it needs, not an abort part-way.
    ///
    /// Takes any generator of [`iwhvi::rand`](crate::rand) (the `rand` 0.10 that
    /// this library re-exports, so that versions cannot clash), e.g.
    /// `iwhvi::rand::rngs::StdRng`.
    ///
    /// # Errors
    /// [`InputError::TooLarge`] when the draws would need more than
    /// [`DEFAULT_MEMORY_BUDGET`] bytes.
    ///
    /// ```
    /// use iwhvi_core::guide::MeanField;
    /// use iwhvi_core::input::InputError;
    /// use iwhvi_core::model::{Layout, LatentSpec};
    /// use iwhvi_core::posterior::FittedGuide;
    /// use iwhvi_core::transforms::Transform;
    /// use rand::SeedableRng;
    ///
    /// let layout = Layout::new(vec![LatentSpec::vector("z", 2, Transform::Identity)]);
    /// let fitted = FittedGuide::new(MeanField::new(2), vec![0.0; 4], layout).unwrap();
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// assert_eq!(fitted.sample(10, &mut rng)?.len(), 10);
    /// assert!(matches!(fitted.sample(usize::MAX / 2, &mut rng), Err(InputError::TooLarge { .. })));
    /// # Ok::<(), InputError>(())
    /// ```
    pub fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Result<Draws, InputError> {
        check_values(
            || format!("{n} draws"),
            n,
            self.layout.element_names().len() + 3,
            DEFAULT_MEMORY_BUDGET,
        )?;
        // One draw at a time (M = 1, K = 0): a fixed, small buffer.
        let mut noise = StepNoise::new(&self.guide, Diwhvi::elbo());
        let mut draws = Draws::new(&self.layout);
        draws.rows.reserve(n);
        for _ in 0..n {
            noise.redraw(rng);
            let (_, u) = sandwich(&self.guide, &self.params, &noise, 0);
            draws.push_unconstrained(&self.layout, &u);
        }
        Ok(draws)
    }
}

/// Draws of a model's constrained latents, one row per draw, one column per
/// element ([`Layout::element_names`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Draws {
    pub(super) names: Vec<String>,
    pub(super) latent_names: Vec<(String, std::ops::Range<usize>)>,
    pub(super) rows: Vec<Vec<f64>>,
}

impl Draws {
    /// No draws yet, with the element names of `layout`.
    pub(super) fn new(layout: &Layout) -> Self {
        let mut latent_names = Vec::new();
        let mut offset = 0;
        for block in layout.blocks() {
            let len = block.spec.constrained_len();
            latent_names.push((block.spec.name.clone(), offset..offset + len));
            offset += len;
        }
        Self {
            names: layout.element_names(),
            latent_names,
            rows: Vec::new(),
        }
    }

    /// Draws from rows of named values (all rows with the same names and
    /// lengths, as a model's derived quantities have).
    pub fn from_latents(rows: &[Latents]) -> Self {
        let mut draws = Self::default();
        let Some(first) = rows.first() else {
            return draws;
        };
        let mut offset = 0;
        for (name, values) in first.iter() {
            draws
                .latent_names
                .push((name.to_string(), offset..offset + values.len()));
            offset += values.len();
            if values.len() == 1 {
                draws.names.push(name.to_string());
            } else {
                draws
                    .names
                    .extend((0..values.len()).map(|i| format!("{name}[{i}]")));
            }
        }
        draws.rows = rows.iter().map(Latents::flatten).collect();
        draws
    }

    /// Appends the draw `u` of the unconstrained latents, constrained.
    pub(super) fn push_unconstrained(&mut self, layout: &Layout, u: &[f64]) {
        // Cannot fail from safe use: `FittedGuide::new` checked that the
        // guide's `D` is the layout's, and a layout (built by `try_new` or
        // loaded through `SavedLayout`) has only dependent bounds on scalar
        // latents declared before them, the two errors `constrain` has.
        let latents = layout
            .constrain(u)
            .expect("the guide draws u of the model's dimension");
        self.rows.push(latents.flatten());
    }

    /// The number of draws.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when there are no draws.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The element names, e.g. `theta[3]`.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// One element across draws, by name (`"mu"`, `"theta[3]"`).
    pub fn column(&self, name: &str) -> Option<Vec<f64>> {
        let index = self.names.iter().position(|n| n == name)?;
        Some(self.rows.iter().map(|row| row[index]).collect())
    }

    /// Draw `i` as named latents.
    ///
    /// # Panics
    /// If `i ≥ self.len()`, as indexing a slice does.
    pub fn latents(&self, i: usize) -> Latents {
        let row = &self.rows[i];
        Latents::from_pairs(
            self.latent_names
                .iter()
                .map(|(name, range)| (name.clone(), row[range.clone()].to_vec())),
        )
    }

    /// Draw `i`, all elements in order.
    ///
    /// # Panics
    /// If `i ≥ self.len()`, as indexing a slice does.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.rows[i]
    }
}
