//! A fitted guide as a posterior approximation: draws of the named
//! constrained latents, plain or importance-resampled, summaries, the PSIS
//! diagnostic, posterior predictive draws, and saving and loading.

use std::fmt;
use std::path::Path;

use rand::{Rng, RngExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::guide::HierarchicalGuide;
use crate::model::{Latents, Layout, Model};
use crate::objective::{Diwhvi, StepNoise, upper_bound_log_q};
use crate::special::log_sum_exp;

/// A guide with its fitted parameters and the model's latent layout:
/// everything needed to draw named latents, without the model's data.
/// Saves to and loads from JSON.
///
/// ```
/// use iwhvi_core::guide::MeanField;
/// use iwhvi_core::model::{Layout, LatentSpec};
/// use iwhvi_core::posterior::FittedGuide;
/// use iwhvi_core::transforms::Transform;
/// use rand::SeedableRng;
///
/// let layout = Layout::new(vec![LatentSpec::scalar("sigma", Transform::Exp)]);
/// let fitted = FittedGuide::new(MeanField::new(1), vec![0.0, -20.0], layout).unwrap();
/// let json = fitted.to_json().unwrap();
/// let loaded: FittedGuide<MeanField> = FittedGuide::from_json(&json).unwrap();
/// let draws = loaded.sample(3, &mut rand::rngs::StdRng::seed_from_u64(0));
/// assert!(draws.column("sigma").unwrap().iter().all(|s| (s - 1.0).abs() < 1e-6));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FittedGuide<G> {
    /// The guide (its configuration).
    pub guide: G,
    /// Its fitted parameters.
    pub params: Vec<f64>,
    /// The model's latents, to name and constrain draws.
    pub layout: Layout,
}

/// Why a fitted guide could not be built, saved or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// Reading or writing the file.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The JSON did not describe a fitted guide of this type.
    #[error("not a fitted guide of this type: {0}")]
    Json(#[from] serde_json::Error),
    /// The parameters do not fit the guide.
    #[error("the guide has {expected} parameters but {found} were given")]
    ParameterCount {
        /// What the guide needs.
        expected: usize,
        /// What was given or loaded.
        found: usize,
    },
    /// The model's layout differs from the one the guide was fitted with
    /// (other latents, shapes or supports).
    #[error("the model's layout is not the one the guide was fitted with")]
    LayoutMismatch,
    /// The guide is for another number of latents than the layout names.
    #[error("the guide is for {guide} unconstrained latents but the model's layout has {layout}")]
    DimensionMismatch {
        /// The guide's `D`.
        guide: usize,
        /// The layout's `D`.
        layout: usize,
    },
}

impl<G: HierarchicalGuide> FittedGuide<G> {
    /// A fitted guide.
    ///
    /// # Errors
    /// [`PersistError::ParameterCount`] or [`PersistError::DimensionMismatch`]
    /// when the parameters or the layout do not fit the guide.
    pub fn new(guide: G, params: Vec<f64>, layout: Layout) -> Result<Self, PersistError> {
        let expected = guide.param_layout().len();
        if params.len() != expected {
            return Err(PersistError::ParameterCount {
                expected,
                found: params.len(),
            });
        }
        if guide.latent_dim() != layout.dim() {
            return Err(PersistError::DimensionMismatch {
                guide: guide.latent_dim(),
                layout: layout.dim(),
            });
        }
        Ok(Self {
            guide,
            params,
            layout,
        })
    }

    /// `n` draws from the guide, constrained and named.
    pub fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Draws {
        let mut noise = StepNoise::new(&self.guide, Diwhvi::new(1, 0));
        let mut draws = Draws::new(&self.layout);
        for _ in 0..n {
            noise.redraw(rng);
            let (_, u) = upper_bound_log_q(&self.guide, &self.params, &noise, 0);
            draws.push_unconstrained(&self.layout, &u);
        }
        draws
    }
}

impl<G: HierarchicalGuide + Serialize + DeserializeOwned> FittedGuide<G> {
    /// The fitted guide as JSON.
    ///
    /// # Errors
    /// [`PersistError::Json`].
    pub fn to_json(&self) -> Result<String, PersistError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// A fitted guide from JSON.
    ///
    /// # Errors
    /// [`PersistError::Json`], [`PersistError::ParameterCount`],
    /// [`PersistError::DimensionMismatch`].
    pub fn from_json(json: &str) -> Result<Self, PersistError> {
        let fitted: Self = serde_json::from_str(json)?;
        Self::new(fitted.guide, fitted.params, fitted.layout)
    }

    /// Writes the JSON to `path`.
    ///
    /// # Errors
    /// [`PersistError`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), PersistError> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json()?).map_err(|source| PersistError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Reads a fitted guide from `path`.
    ///
    /// # Errors
    /// [`PersistError`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PersistError> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path).map_err(|source| PersistError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&json)
    }
}

/// Draws of a model's constrained latents, one row per draw, one column per
/// element ([`Layout::element_names`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Draws {
    names: Vec<String>,
    latent_names: Vec<(String, std::ops::Range<usize>)>,
    rows: Vec<Vec<f64>>,
}

impl Draws {
    fn new(layout: &Layout) -> Self {
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

    fn push_unconstrained(&mut self, layout: &Layout, u: &[f64]) {
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
    pub fn latents(&self, i: usize) -> Latents {
        let row = &self.rows[i];
        Latents::from_pairs(
            self.latent_names
                .iter()
                .map(|(name, range)| (name.clone(), row[range.clone()].to_vec())),
        )
    }

    /// Draw `i`, all elements in order.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.rows[i]
    }

    /// Mean, sd and 5/50/95 % quantiles of every element.
    pub fn summary(&self) -> Summary {
        let rows = self
            .names
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let mut column: Vec<f64> = self.rows.iter().map(|row| row[j]).collect();
                let n = column.len() as f64;
                let mean = column.iter().sum::<f64>() / n;
                let sd =
                    (column.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
                column.sort_by(f64::total_cmp);
                SummaryRow {
                    name: name.clone(),
                    mean,
                    sd,
                    q05: quantile(&column, 0.05),
                    q50: quantile(&column, 0.5),
                    q95: quantile(&column, 0.95),
                }
            })
            .collect();
        Summary { rows }
    }
}

/// The `p`-quantile of sorted values (linear interpolation, type 7).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * p;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// One element's summary.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SummaryRow {
    /// The element, e.g. `theta[0]`.
    pub name: String,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub sd: f64,
    /// 5 % quantile.
    pub q05: f64,
    /// Median.
    pub q50: f64,
    /// 95 % quantile.
    pub q95: f64,
}

/// A table of [`SummaryRow`]s; `Display` prints it aligned.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Summary {
    /// The rows, in the layout's order.
    pub rows: Vec<SummaryRow>,
}

impl Summary {
    /// The row of an element.
    pub fn get(&self, name: &str) -> Option<&SummaryRow> {
        self.rows.iter().find(|r| r.name == name)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .rows
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(
            f,
            "{:width$}  {:>9} {:>9} {:>9} {:>9} {:>9}",
            "", "mean", "sd", "5%", "50%", "95%"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:width$}  {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                r.name, r.mean, r.sd, r.q05, r.q50, r.q95
            )?;
        }
        Ok(())
    }
}

/// Draws resampled by their importance weights, with the diagnostics of
/// those weights.
#[derive(Clone, Debug, PartialEq)]
pub struct ResampledDraws {
    /// The resampled draws.
    pub draws: Draws,
    /// Effective sample size of the proposals, `(Σw)² / Σw²`.
    pub effective_sample_size: f64,
    /// The PSIS `k̂` of the weights (below 0.7: the importance estimates are
    /// reliable; Vehtari et al.).
    pub pareto_k: f64,
}

/// Why importance resampling has nothing to resample.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResampleError {
    /// `proposals` was 0.
    #[error("importance resampling needs at least one proposal")]
    NoProposals,
    /// A proposal's log weight `log p(x, u) − U_K(u)` is NaN.
    #[error(
        "proposal {proposal} has a NaN importance weight: the model's log density or the guide's is NaN at that draw"
    )]
    NanWeight {
        /// Its index among the proposals.
        proposal: usize,
    },
    /// A proposal's log weight is `+∞`: the model's log density is `+∞`
    /// there, or the guide's bound on `log q` is `−∞`.
    #[error(
        "proposal {proposal} has an infinite importance weight: the model's log density is +∞ or the guide's density 0 at that draw"
    )]
    InfiniteWeight {
        /// Its index among the proposals.
        proposal: usize,
    },
    /// Every proposal has weight 0 (`log p(x, u) = −∞`).
    #[error(
        "none of the {proposals} proposals has a finite importance weight: the guide puts its mass where the model's density is zero"
    )]
    NoFiniteWeights {
        /// How many there were.
        proposals: usize,
    },
}

/// A fitted guide beside its model: importance weights need the model.
pub struct Posterior<'a, Mo, G> {
    model: &'a Mo,
    fitted: FittedGuide<G>,
}

impl<'a, Mo: Model, G: HierarchicalGuide + Clone> Posterior<'a, Mo, G> {
    /// The posterior approximation of a fitted guide.
    ///
    /// # Errors
    /// [`PersistError::ParameterCount`] or [`PersistError::DimensionMismatch`]
    /// when the parameters or the model do not fit the guide.
    pub fn new(model: &'a Mo, guide: &G, params: &[f64]) -> Result<Self, PersistError> {
        Ok(Self {
            model,
            fitted: FittedGuide::new(guide.clone(), params.to_vec(), model.layout())?,
        })
    }

    /// A loaded (or otherwise built) fitted guide beside its model again.
    ///
    /// # Errors
    /// [`PersistError::LayoutMismatch`] when the model's layout is not the
    /// one the guide was fitted with.
    pub fn from_fitted(model: &'a Mo, fitted: FittedGuide<G>) -> Result<Self, PersistError> {
        if fitted.layout != model.layout() {
            return Err(PersistError::LayoutMismatch);
        }
        Ok(Self { model, fitted })
    }

    /// The fitted guide (to save, or to sample without the model).
    pub fn fitted(&self) -> &FittedGuide<G> {
        &self.fitted
    }

    /// `n` plain draws from the guide.
    pub fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Draws {
        self.fitted.sample(n, rng)
    }

    /// The log importance weights `log p(x, u) − U_K(u)` (the bound's own
    /// weights on the guide's extended space) of `proposals` draws, with the
    /// unconstrained draws.
    pub fn log_weights<R: Rng + ?Sized>(
        &self,
        proposals: usize,
        k: usize,
        rng: &mut R,
    ) -> (Vec<f64>, Vec<Vec<f64>>) {
        let guide = &self.fitted.guide;
        let mut noise = StepNoise::new(guide, Diwhvi::new(1, k));
        let mut weights = Vec::with_capacity(proposals);
        let mut us = Vec::with_capacity(proposals);
        for _ in 0..proposals {
            noise.redraw(rng);
            let (sandwich, u) = upper_bound_log_q(guide, &self.fitted.params, &noise, 0);
            weights.push(self.model.log_joint(&u) - sandwich.upper);
            us.push(u);
        }
        (weights, us)
    }

    /// Sampling-importance-resampling: `proposals` guide draws weighted by
    /// `log p(x, u) − U_K(u)`, then `n` draws resampled with those weights
    /// (multinomially). Moments of the result are self-normalised
    /// importance estimates, accurate even where the guide covers more mass
    /// than the posterior. Proposals where `log p(x, u) = −∞` get weight 0.
    ///
    /// # Errors
    /// [`ResampleError`]: no proposals, a NaN or `+∞` weight (a model or
    /// guide that returns NaN or an infinite density at a draw: the
    /// proposal is named), or no proposal with a finite weight.
    pub fn sample_importance_resampled<R: Rng + ?Sized>(
        &self,
        n: usize,
        proposals: usize,
        k: usize,
        rng: &mut R,
    ) -> Result<ResampledDraws, ResampleError> {
        if proposals == 0 {
            return Err(ResampleError::NoProposals);
        }
        let (log_w, us) = self.log_weights(proposals, k, rng);
        if let Some(proposal) = log_w.iter().position(|w| w.is_nan()) {
            return Err(ResampleError::NanWeight { proposal });
        }
        if let Some(proposal) = log_w.iter().position(|&w| w == f64::INFINITY) {
            return Err(ResampleError::InfiniteWeight { proposal });
        }
        if !log_w.iter().any(|w| w.is_finite()) {
            return Err(ResampleError::NoFiniteWeights { proposals });
        }
        let normaliser = log_sum_exp(&log_w);
        let weights: Vec<f64> = log_w.iter().map(|w| (w - normaliser).exp()).collect();
        let ess = 1.0 / weights.iter().map(|w| w * w).sum::<f64>();
        let mut cumulative = Vec::with_capacity(weights.len());
        let mut total = 0.0;
        for w in &weights {
            total += w;
            cumulative.push(total);
        }
        let mut draws = Draws::new(&self.fitted.layout);
        for _ in 0..n {
            let target = rng.random::<f64>() * total;
            let index = cumulative
                .partition_point(|&c| c < target)
                .min(us.len() - 1);
            draws.push_unconstrained(&self.fitted.layout, &us[index]);
        }
        Ok(ResampledDraws {
            draws,
            effective_sample_size: ess,
            pareto_k: pareto_k_hat(&log_w),
        })
    }

    /// The model's derived quantities at each draw ([`Model::derived`]).
    pub fn derived(&self, draws: &Draws) -> Draws {
        let rows: Vec<Latents> = (0..draws.len())
            .map(|i| self.model.derived(&draws.latents(i)))
            .collect();
        Draws::from_latents(&rows)
    }

    /// Posterior predictive draws: `f` applied to each draw's named latents.
    pub fn predictive<T, R: Rng + ?Sized>(
        &self,
        draws: &Draws,
        rng: &mut R,
        mut f: impl FnMut(&Latents, &mut R) -> T,
    ) -> Vec<T> {
        (0..draws.len())
            .map(|i| f(&draws.latents(i), rng))
            .collect()
    }
}

/// The Pareto smoothed importance sampling diagnostic `k̂` of log
/// importance weights (Vehtari, Simpson, Gelman, Yao & Gabry, "Pareto
/// smoothed importance sampling"): a generalized Pareto distribution fitted
/// by Zhang & Stephens' empirical Bayes method to the largest
/// `min(S/5, 3√S)` weights, with the weakly informative prior on `k`.
/// `k̂ < 0.7` means the importance estimates are reliable; `+∞` when the
/// tail is too short to fit.
pub fn pareto_k_hat(log_weights: &[f64]) -> f64 {
    let n = log_weights.len();
    let tail_len = ((0.2 * n as f64).min(3.0 * (n as f64).sqrt())).ceil() as usize;
    if n < 2 || tail_len + 1 > n {
        return f64::INFINITY;
    }
    let max = log_weights
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let mut sorted: Vec<f64> = log_weights.iter().map(|w| w - max).collect();
    sorted.sort_by(f64::total_cmp);
    let cutoff = sorted[n - tail_len - 1].max(f64::MIN_POSITIVE.ln());
    let exp_cutoff = cutoff.exp();
    let tail: Vec<f64> = sorted
        .iter()
        .filter(|&&x| x > cutoff)
        .map(|x| x.exp() - exp_cutoff)
        .collect();
    if tail.len() <= 4 {
        return f64::INFINITY;
    }
    generalized_pareto_fit(&tail).0
}

/// Zhang & Stephens (2009) empirical Bayes fit of a generalized Pareto
/// distribution to sorted positive exceedances; returns `(k, σ)` with the
/// prior on `k` of Vehtari et al. (weight 10 towards 0.5).
fn generalized_pareto_fit(x: &[f64]) -> (f64, f64) {
    let n = x.len();
    let nf = n as f64;
    let m = 30 + (nf.sqrt()) as usize;
    let quartile = x[((nf / 4.0 + 0.5) as usize).saturating_sub(1)];
    let last = x[n - 1];
    let thetas: Vec<f64> = (1..=m)
        .map(|j| (1.0 - (m as f64 / (j as f64 - 0.5)).sqrt()) / (3.0 * quartile) + 1.0 / last)
        .collect();
    let profile: Vec<f64> = thetas
        .iter()
        .map(|&b| {
            let k = x.iter().map(|&xi| (-b * xi).ln_1p()).sum::<f64>() / nf;
            nf * ((-b / k).ln() - k - 1.0)
        })
        .collect();
    let mut weights: Vec<f64> = profile
        .iter()
        .map(|&li| 1.0 / profile.iter().map(|&lj| (lj - li).exp()).sum::<f64>())
        .collect();
    for w in &mut weights {
        if *w < 10.0 * f64::EPSILON {
            *w = 0.0;
        }
    }
    let total: f64 = weights.iter().sum();
    let b_post: f64 = thetas
        .iter()
        .zip(&weights)
        .map(|(b, w)| b * w / total)
        .sum();
    let k = x.iter().map(|&xi| (-b_post * xi).ln_1p()).sum::<f64>() / nf;
    let sigma = -k / b_post;
    ((nf * k + 10.0 * 0.5) / (nf + 10.0), sigma)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn k_hat_separates_light_from_heavy_tails() {
        let mut rng = StdRng::seed_from_u64(1);
        // Light tails: log-weights of a normal (weights lognormal with sd 0.3).
        let light: Vec<f64> = (0..4000)
            .map(|_| 0.3 * rng.sample::<f64, _>(rand_distr::StandardNormal))
            .collect();
        // Pareto weights with tail index 1/k = 1/0.9: log w = -0.9 ln U.
        let heavy: Vec<f64> = (0..4000).map(|_| -0.9 * rng.random::<f64>().ln()).collect();
        let (k_light, k_heavy) = (pareto_k_hat(&light), pareto_k_hat(&heavy));
        assert!(k_light < 0.3, "k̂ of light tails {k_light}");
        assert!(
            (k_heavy - 0.9).abs() < 0.15,
            "k̂ of Pareto(k = 0.9) weights {k_heavy}"
        );
    }

    #[test]
    fn quantiles_interpolate() {
        let v = [0.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.0);
        assert!((quantile(&v, 0.05) - 0.2).abs() < 1e-15);
    }
}
