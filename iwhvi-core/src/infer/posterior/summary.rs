//! Per-element summaries of draws (mean, sd, the mean's Monte Carlo
//! standard error, quantiles) and the draws' covariance and correlation
//! matrices.

use std::fmt;

use nalgebra::DMatrix;

use super::Draws;

impl Draws {
    /// Mean, sd, the mean's Monte Carlo standard error and the 5/50/95 %
    /// quantiles of every element.
    ///
    /// With `n` draws: `mean = Σ x / n`, `sd² = Σ (x − mean)² / (n − 1)`,
    /// `mcse_mean = sd / √n` (independent draws, as a guide's own draws
    /// are; for importance-resampled draws use
    /// [`ResampledDraws::summary`](super::ResampledDraws::summary), which
    /// divides by the weights' effective sample size instead). One draw
    /// leaves the sd and the standard error NaN (no spread to estimate).
    /// No draws give a summary with no rows: [`Summary::get`] is `None`
    /// for every name, rather than a row of NaN.
    ///
    /// ```
    /// use iwhvi_core::model::Latents;
    /// use iwhvi_core::posterior::Draws;
    ///
    /// let rows: Vec<Latents> = [1.0, 2.0, 3.0, 4.0]
    ///     .iter()
    ///     .map(|&x| Latents::from_pairs([("x".to_string(), vec![x])]))
    ///     .collect();
    /// let row = Draws::from_latents(&rows).summary().rows[0].clone();
    /// assert_eq!(row.mean, 2.5);
    /// assert!((row.sd - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
    /// assert!((row.mcse_mean - row.sd / 2.0).abs() < 1e-15);
    /// ```
    pub fn summary(&self) -> Summary {
        self.summary_with_ess(self.rows.len() as f64)
    }

    /// [`summary`](Draws::summary) with the standard error `sd / √ess`.
    pub(super) fn summary_with_ess(&self, ess: f64) -> Summary {
        if self.rows.is_empty() {
            return Summary { rows: Vec::new() };
        }
        let rows = self
            .names
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let mut column: Vec<f64> = self.rows.iter().map(|row| row[j]).collect();
                let n = column.len() as f64;
                let mean = column.iter().sum::<f64>() / n;
                let sd = if column.len() < 2 {
                    f64::NAN
                } else {
                    (column.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
                };
                column.sort_by(f64::total_cmp);
                SummaryRow {
                    name: name.clone(),
                    mean,
                    sd,
                    mcse_mean: sd / ess.sqrt(),
                    ess,
                    q05: quantile(&column, 0.05),
                    q50: quantile(&column, 0.5),
                    q95: quantile(&column, 0.95),
                }
            })
            .collect();
        Summary { rows }
    }

    /// The sample covariance matrix of the elements (in the order of
    /// [`names`](Draws::names)): `Σᵢⱼ = Σ_d (x_di − x̄_i)(x_dj − x̄_j) / (n − 1)`.
    /// NaN everywhere with fewer than two draws.
    ///
    /// ```
    /// use iwhvi_core::model::Latents;
    /// use iwhvi_core::posterior::Draws;
    ///
    /// let rows: Vec<Latents> = [(1.0, 2.0), (2.0, 4.5), (3.0, 5.5)]
    ///     .iter()
    ///     .map(|&(a, b)| Latents::from_pairs([("a".to_string(), vec![a]), ("b".to_string(), vec![b])]))
    ///     .collect();
    /// let draws = Draws::from_latents(&rows);
    /// let cov = draws.covariance();
    /// assert_eq!(cov[(0, 0)], 1.0);
    /// assert_eq!(cov[(0, 1)], 1.75);
    /// let corr = draws.correlation();
    /// assert!((corr[(0, 1)] - 1.75 / (1.0f64 * cov[(1, 1)]).sqrt()).abs() < 1e-15);
    /// assert_eq!(corr[(1, 1)], 1.0);
    /// ```
    pub fn covariance(&self) -> DMatrix<f64> {
        let (n, p) = (self.rows.len(), self.names.len());
        if n < 2 {
            return DMatrix::from_element(p, p, f64::NAN);
        }
        let means: Vec<f64> = (0..p)
            .map(|j| self.rows.iter().map(|row| row[j]).sum::<f64>() / n as f64)
            .collect();
        let mut cov = DMatrix::zeros(p, p);
        for row in &self.rows {
            for i in 0..p {
                let di = row[i] - means[i];
                for j in i..p {
                    cov[(i, j)] += di * (row[j] - means[j]);
                }
            }
        }
        for i in 0..p {
            for j in i..p {
                cov[(i, j)] /= (n - 1) as f64;
                cov[(j, i)] = cov[(i, j)];
            }
        }
        cov
    }

    /// The correlation matrix, `Σᵢⱼ / √(Σᵢᵢ Σⱼⱼ)` of
    /// [`covariance`](Draws::covariance), with ones on the diagonal (NaN
    /// where an element has no spread).
    pub fn correlation(&self) -> DMatrix<f64> {
        let cov = self.covariance();
        let p = cov.nrows();
        DMatrix::from_fn(p, p, |i, j| {
            if i == j && cov[(i, i)] > 0.0 {
                1.0
            } else {
                cov[(i, j)] / (cov[(i, i)] * cov[(j, j)]).sqrt()
            }
        })
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
    /// Monte Carlo standard error of the mean, `sd / √ess`.
    pub mcse_mean: f64,
    /// The effective sample size behind `mcse_mean`: the number of draws
    /// for a guide's own (independent) draws, the importance weights'
    /// `(Σw)² / Σw²` for resampled ones.
    pub ess: f64,
    /// 5 % quantile.
    pub q05: f64,
    /// Median.
    pub q50: f64,
    /// 95 % quantile.
    pub q95: f64,
}

/// A table of [`SummaryRow`]s; `Display` prints it aligned, with the
/// columns of Stan's `stansummary` that apply to independent or weighted
/// draws (Mean, MCSE, StdDev, 5%, 50%, 95%, N_Eff; no R̂, there is no chain).
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
            "{:width$}  {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
            "", "Mean", "MCSE", "StdDev", "5%", "50%", "95%", "N_Eff"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:width$}  {:>9.3} {:>9.4} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>8.0}",
                r.name, r.mean, r.mcse_mean, r.sd, r.q05, r.q50, r.q95, r.ess
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        let v = [0.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.0);
        assert!((quantile(&v, 0.05) - 0.2).abs() < 1e-15);
    }
}
