//! Draws of a model's named constrained latents, and the fitted guide's
//! plain draws.

use rand::Rng;

use super::{FittedGuide, PersistError};
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

    /// Draws from rows of named values, checked: every row must have the
    /// first row's names, in its order, with the same lengths (as a
    /// model's derived quantities have), else a column would mix values
    /// of different names.
    ///
    /// # Errors
    /// [`PersistError::RowMismatch`], naming the first row that differs.
    ///
    /// ```
    /// use iwhvi_core::model::Latents;
    /// use iwhvi_core::posterior::{Draws, PersistError};
    ///
    /// let a = Latents::from_pairs([("a".to_string(), vec![1.0])]);
    /// let b = Latents::from_pairs([("b".to_string(), vec![1.0, 2.0])]);
    /// assert_eq!(Draws::try_from_latents(&[a.clone(), a.clone()])?.column("a"), Some(vec![1.0, 1.0]));
    /// assert!(matches!(Draws::try_from_latents(&[a, b]), Err(PersistError::RowMismatch { row: 1, .. })));
    /// # Ok::<(), PersistError>(())
    /// ```
    pub fn try_from_latents(rows: &[Latents]) -> Result<Self, PersistError> {
        let shape = |row: &Latents| -> Vec<(String, usize)> {
            row.iter().map(|(n, v)| (n.to_string(), v.len())).collect()
        };
        let describe = |shape: &[(String, usize)]| {
            let parts: Vec<String> = shape.iter().map(|(n, l)| format!("`{n}` ({l})")).collect();
            format!("[{}]", parts.join(", "))
        };
        if let Some(first) = rows.first() {
            let expected = shape(first);
            for (row, latents) in rows.iter().enumerate().skip(1) {
                let found = shape(latents);
                if found != expected {
                    return Err(PersistError::RowMismatch {
                        row,
                        found: describe(&found),
                        expected: describe(&expected),
                    });
                }
            }
        }
        Ok(Self::from_latents_unchecked(rows))
    }

    /// Draws from rows of named values (all rows with the same names and
    /// lengths, as a model's derived quantities have).
    ///
    /// # Panics
    /// When a row's names or lengths differ from the first row's (a
    /// column would mix values of different names):
    /// [`Draws::try_from_latents`] returns the error instead.
    pub fn from_latents(rows: &[Latents]) -> Self {
        match Self::try_from_latents(rows) {
            Ok(draws) => draws,
            Err(error) => panic!("Draws::from_latents: {error}"),
        }
    }

    /// [`Draws::from_latents`] of rows known to agree.
    fn from_latents_unchecked(rows: &[Latents]) -> Self {
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
    /// Indexing, as `slice[i]` is: [`Draws::get_latents`] is the checked
    /// form, and [`Draws::iter_latents`] visits every draw without an
    /// index.
    ///
    /// # Panics
    /// If `i ≥ self.len()`, as indexing a slice does (a mistake of the
    /// caller's loop, not of the data).
    pub fn latents(&self, i: usize) -> Latents {
        self.named(&self.rows[i])
    }

    /// Draw `i` as named latents, or `None` when `i ≥ self.len()` (the
    /// checked form of [`Draws::latents`], as `slice::get` is of indexing).
    ///
    /// ```
    /// use iwhvi_core::model::Latents;
    /// use iwhvi_core::posterior::Draws;
    ///
    /// let draws = Draws::from_latents(&[Latents::from_pairs([("mu".to_string(), vec![1.5])])]);
    /// assert_eq!(draws.get_latents(0).unwrap().get("mu"), Some(&[1.5][..]));
    /// assert_eq!(draws.get_latents(1), None);
    /// ```
    pub fn get_latents(&self, i: usize) -> Option<Latents> {
        self.rows.get(i).map(|row| self.named(row))
    }

    /// Every draw as named latents, in order.
    ///
    /// ```
    /// use iwhvi_core::model::Latents;
    /// use iwhvi_core::posterior::Draws;
    ///
    /// let rows: Vec<Latents> = (0..3)
    ///     .map(|i| Latents::from_pairs([("mu".to_string(), vec![f64::from(i)])]))
    ///     .collect();
    /// let draws = Draws::from_latents(&rows);
    /// assert_eq!(draws.iter_latents().collect::<Vec<_>>(), rows);
    /// ```
    pub fn iter_latents(&self) -> impl ExactSizeIterator<Item = Latents> + '_ {
        self.rows.iter().map(|row| self.named(row))
    }

    /// Draw `i`, all elements in order.
    ///
    /// Indexing, as `slice[i]` is: [`Draws::get_row`] is the checked form.
    ///
    /// # Panics
    /// If `i ≥ self.len()`, as indexing a slice does (a mistake of the
    /// caller's loop, not of the data).
    pub fn row(&self, i: usize) -> &[f64] {
        &self.rows[i]
    }

    /// Draw `i`, all elements in order, or `None` when `i ≥ self.len()`
    /// (the checked form of [`Draws::row`]).
    ///
    /// ```
    /// use iwhvi_core::model::Latents;
    /// use iwhvi_core::posterior::Draws;
    ///
    /// let draws = Draws::from_latents(&[Latents::from_pairs([("v".to_string(), vec![1.0, 2.0])])]);
    /// assert_eq!(draws.get_row(0), Some(&[1.0, 2.0][..]));
    /// assert_eq!(draws.get_row(1), None);
    /// ```
    pub fn get_row(&self, i: usize) -> Option<&[f64]> {
        self.rows.get(i).map(Vec::as_slice)
    }

    /// One row as named latents.
    fn named(&self, row: &[f64]) -> Latents {
        Latents::from_pairs(
            self.latent_names
                .iter()
                .map(|(name, range)| (name.clone(), row[range.clone()].to_vec())),
        )
    }

    /// `Ok` when these draws are of `layout`'s latents: the same names, in
    /// the same order, each with its constrained number of elements.
    ///
    /// # Errors
    /// [`PersistError::DrawsMismatch`] naming the first latent that
    /// differs.
    pub(super) fn check_layout(&self, layout: &Layout) -> Result<(), PersistError> {
        let describe = |name: Option<&str>, len: usize| match name {
            Some(name) => format!("`{name}` ({len} values)"),
            None => "none".to_string(),
        };
        let blocks = layout.blocks();
        for i in 0..blocks.len().max(self.latent_names.len()) {
            let ours = self.latent_names.get(i).map(|(n, r)| (n.as_str(), r.len()));
            let model = blocks
                .get(i)
                .map(|b| (b.spec.name.as_str(), b.spec.constrained_len()));
            if ours != model {
                return Err(PersistError::DrawsMismatch {
                    latent: i,
                    draws: describe(ours.map(|o| o.0), ours.map_or(0, |o| o.1)),
                    model: describe(model.map(|m| m.0), model.map_or(0, |m| m.1)),
                });
            }
        }
        Ok(())
    }
}
