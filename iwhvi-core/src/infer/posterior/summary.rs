//! Per-element summaries of draws: mean, sd and quantiles.

use std::fmt;

use super::Draws;

impl Draws {
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
