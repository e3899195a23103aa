//! Draws in CmdStan's CSV format, the format ArviZ (`from_cmdstan`), the
//! R package `posterior` (`read_cmdstan_csv`) and Stan's `stansummary`
//! read.
//!
//! The file: comment lines starting with `#`, a header row of column names,
//! then one row per draw. Element names follow CmdStan: `theta[3]` is
//! written `theta.4` (indices from 1, separated by dots, so a matrix
//! element `L[0,1]` is `L.1.2`). The first column is `lp__`, written as `0`
//! for every draw, as CmdStan's variational method writes it (the draws of
//! a variational fit are not a Markov chain and carry no log density);
//! unlike CmdStan, no row of means precedes the draws. Numbers are written
//! with Rust's shortest round-trip formatting, so reading a written file
//! gives back the same bits.

use std::fmt;
use std::io::{self, BufRead, Write};
use std::path::Path;

use super::Draws;

/// Why a CmdStan CSV file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CmdStanCsvError {
    /// Reading or writing the file failed.
    #[error("reading or writing the CSV file failed: {0}")]
    Io(#[from] io::Error),
    /// The file has no header row (only comments, or nothing).
    #[error("the file has no header row of column names")]
    MissingHeader,
    /// A column name is not of CmdStan's form `name` or `name.i.j…` with
    /// indices from 1.
    #[error("column {column} is named `{name}`, not `name` or `name.i.j…` with indices from 1")]
    BadColumnName {
        /// The column (from 1).
        column: usize,
        /// Its name.
        name: String,
    },
    /// The columns of one variable are not next to each other.
    #[error("the columns of `{name}` are not next to each other (column {column})")]
    SplitVariable {
        /// The variable.
        name: String,
        /// The column (from 1) where it starts again.
        column: usize,
    },
    /// A row has another number of fields than the header.
    #[error("line {line} has {found} fields but the header has {expected}")]
    RowLength {
        /// The line (from 1).
        line: usize,
        /// The header's field count.
        expected: usize,
        /// The row's.
        found: usize,
    },
    /// A field is not a number.
    #[error("line {line}, column `{column}`: `{field}` is not a number")]
    NotANumber {
        /// The line (from 1).
        line: usize,
        /// The column's name.
        column: String,
        /// The field.
        field: String,
    },
    /// A value to write is NaN or infinite, which CmdStan's readers do not
    /// all accept.
    #[error("draw {draw} of `{name}` is {value}, which a CmdStan CSV file cannot hold portably")]
    NonFinite {
        /// The draw (from 0).
        draw: usize,
        /// The element.
        name: String,
        /// The value.
        value: f64,
    },
}

/// `theta[3]` → `theta.4`, `L[0,1]` → `L.1.2`, `mu` → `mu`.
fn cmdstan_name(name: &str) -> String {
    match name.split_once('[') {
        None => name.to_string(),
        Some((base, rest)) => {
            let indices = rest.trim_end_matches(']').split(',').map(|i| {
                i.trim()
                    .parse::<usize>()
                    .map_or_else(|_| i.to_string(), |i| (i + 1).to_string())
            });
            std::iter::once(base.to_string())
                .chain(indices)
                .collect::<Vec<_>>()
                .join(".")
        }
    }
}

/// `theta.4` → (`theta`, `theta[3]`); `L.1.2` → (`L`, `L[0,1]`); `None`
/// for an index that is not a number from 1.
fn iwhvi_name(name: &str) -> Option<(String, String)> {
    let mut parts = name.split('.');
    let base = parts.next().filter(|b| !b.is_empty())?.to_string();
    let indices: Vec<usize> = parts
        .map(|p| p.parse::<usize>().ok().filter(|&i| i >= 1).map(|i| i - 1))
        .collect::<Option<_>>()?;
    if indices.is_empty() {
        return Some((base.clone(), base));
    }
    let joined: Vec<String> = indices.iter().map(usize::to_string).collect();
    let full = format!("{base}[{}]", joined.join(","));
    Some((base, full))
}

impl Draws {
    /// Writes the draws as CmdStan's CSV (module docs above: the header
    /// `lp__,theta.1,…`, one row per draw).
    ///
    /// # Errors
    /// [`CmdStanCsvError::NonFinite`] for a NaN or infinite draw (every
    /// draw is checked first, so nothing is written),
    /// [`CmdStanCsvError::Io`].
    ///
    /// ```
    /// use iwhvi_core::model::Latents;
    /// use iwhvi_core::posterior::Draws;
    ///
    /// let rows: Vec<Latents> = [0.5, 1.5]
    ///     .iter()
    ///     .map(|&m| Latents::from_pairs([("mu".to_string(), vec![m]), ("theta".to_string(), vec![m, -m])]))
    ///     .collect();
    /// let draws = Draws::from_latents(&rows);
    /// let mut csv = Vec::new();
    /// draws.write_cmdstan_csv(&mut csv)?;
    /// let text = String::from_utf8(csv).unwrap();
    /// assert!(text.contains("lp__,mu,theta.1,theta.2\n0,0.5,0.5,-0.5\n"));
    /// assert_eq!(Draws::read_cmdstan_csv(text.as_bytes())?, draws);
    /// # Ok::<(), iwhvi_core::posterior::CmdStanCsvError>(())
    /// ```
    pub fn write_cmdstan_csv<W: Write>(&self, mut out: W) -> Result<(), CmdStanCsvError> {
        for (draw, row) in self.rows.iter().enumerate() {
            if let Some(j) = row.iter().position(|v| !v.is_finite()) {
                return Err(CmdStanCsvError::NonFinite {
                    draw,
                    name: self.names[j].clone(),
                    value: row[j],
                });
            }
        }
        writeln!(
            out,
            "# iwhvi {}: draws of a fitted variational guide (not a Markov chain; lp__ is 0, as CmdStan writes for method = variational)",
            env!("CARGO_PKG_VERSION")
        )?;
        writeln!(out, "# draws = {}", self.rows.len())?;
        let mut header = vec!["lp__".to_string()];
        header.extend(self.names.iter().map(|n| cmdstan_name(n)));
        writeln!(out, "{}", header.join(","))?;
        let mut line = String::new();
        for row in &self.rows {
            line.clear();
            line.push('0');
            for v in row {
                use fmt::Write as _;
                write!(line, ",{v}").expect("writing to a String cannot fail");
            }
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        Ok(())
    }

    /// [`write_cmdstan_csv`](Draws::write_cmdstan_csv) to a new file at
    /// `path`.
    ///
    /// # Errors
    /// As [`write_cmdstan_csv`](Draws::write_cmdstan_csv).
    pub fn save_cmdstan_csv(&self, path: impl AsRef<Path>) -> Result<(), CmdStanCsvError> {
        let file = std::fs::File::create(path)?;
        self.write_cmdstan_csv(io::BufWriter::new(file))
    }

    /// Reads draws from CmdStan's CSV (a file this library wrote, or
    /// CmdStan's own): comment lines are skipped, columns whose name ends
    /// in `__` (`lp__`, `accept_stat__`, …) are dropped, and `theta.4`
    /// becomes the element `theta[3]` of the latent `theta`. A variable's
    /// columns must be next to each other.
    ///
    /// # Errors
    /// [`CmdStanCsvError`] naming the line and column at fault.
    ///
    /// ```
    /// use iwhvi_core::posterior::Draws;
    ///
    /// let csv = "# from CmdStan\nlp__,accept_stat__,mu,tau\n-3.1,0.9,1.5,2.0\n-2.9,0.8,1.25,0.5\n";
    /// let draws = Draws::read_cmdstan_csv(csv.as_bytes())?;
    /// assert_eq!(draws.names(), ["mu", "tau"]);
    /// assert_eq!(draws.column("tau"), Some(vec![2.0, 0.5]));
    /// # Ok::<(), iwhvi_core::posterior::CmdStanCsvError>(())
    /// ```
    pub fn read_cmdstan_csv<R: BufRead>(input: R) -> Result<Self, CmdStanCsvError> {
        let mut lines = input.lines().enumerate();
        let header = loop {
            match lines.next() {
                None => return Err(CmdStanCsvError::MissingHeader),
                Some((_, line)) => {
                    let line = line?;
                    let trimmed = line.trim();
                    if !trimmed.is_empty() && !trimmed.starts_with('#') {
                        break line;
                    }
                }
            }
        };
        let columns: Vec<&str> = header.trim().split(',').map(str::trim).collect();
        let mut draws = Draws::default();
        let mut kept = Vec::new();
        let mut current: Option<String> = None;
        for (column, name) in columns.iter().enumerate() {
            if name.ends_with("__") {
                continue;
            }
            let (base, full) = iwhvi_name(name).ok_or_else(|| CmdStanCsvError::BadColumnName {
                column: column + 1,
                name: name.to_string(),
            })?;
            if current.as_deref() != Some(base.as_str()) {
                if draws.latent_names.iter().any(|(n, _)| *n == base) {
                    return Err(CmdStanCsvError::SplitVariable {
                        name: base,
                        column: column + 1,
                    });
                }
                let at = draws.names.len();
                draws.latent_names.push((base.clone(), at..at));
                current = Some(base);
            }
            draws.latent_names.last_mut().expect("pushed above").1.end += 1;
            draws.names.push(full);
            kept.push(column);
        }
        for (index, line) in lines {
            let line = line?;
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = trimmed.split(',').map(str::trim).collect();
            if fields.len() != columns.len() {
                return Err(CmdStanCsvError::RowLength {
                    line: index + 1,
                    expected: columns.len(),
                    found: fields.len(),
                });
            }
            let row = kept
                .iter()
                .map(|&c| {
                    fields[c]
                        .parse::<f64>()
                        .map_err(|_| CmdStanCsvError::NotANumber {
                            line: index + 1,
                            column: columns[c].to_string(),
                            field: fields[c].to_string(),
                        })
                })
                .collect::<Result<Vec<f64>, _>>()?;
            draws.rows.push(row);
        }
        Ok(draws)
    }

    /// [`read_cmdstan_csv`](Draws::read_cmdstan_csv) from the file at
    /// `path`.
    ///
    /// # Errors
    /// As [`read_cmdstan_csv`](Draws::read_cmdstan_csv).
    pub fn load_cmdstan_csv(path: impl AsRef<Path>) -> Result<Self, CmdStanCsvError> {
        let file = std::fs::File::open(path)?;
        Self::read_cmdstan_csv(io::BufReader::new(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in ["mu", "theta[0]", "theta[11]", "L[0,1]", "x_2[3,4,5]"] {
            let written = cmdstan_name(name);
            assert_eq!(
                iwhvi_name(&written).map(|(_, full)| full),
                Some(name.into())
            );
        }
        assert_eq!(cmdstan_name("L[0,1]"), "L.1.2");
        assert_eq!(iwhvi_name("theta.0"), None);
        assert_eq!(iwhvi_name(".1"), None);
    }

    #[test]
    fn bad_files_name_what_is_wrong() {
        let read = |s: &str| Draws::read_cmdstan_csv(s.as_bytes());
        assert!(matches!(
            read("# only\n"),
            Err(CmdStanCsvError::MissingHeader)
        ));
        assert!(matches!(
            read("lp__,theta.0\n0,1\n"),
            Err(CmdStanCsvError::BadColumnName { column: 2, .. })
        ));
        assert!(matches!(
            read("a.1,b,a.2\n1,2,3\n"),
            Err(CmdStanCsvError::SplitVariable { column: 3, .. })
        ));
        assert!(matches!(
            read("a,b\n1,2\n3\n"),
            Err(CmdStanCsvError::RowLength {
                line: 3,
                expected: 2,
                found: 1
            })
        ));
        match read("a,b\n1,x\n") {
            Err(CmdStanCsvError::NotANumber {
                line,
                column,
                field,
            }) => {
                assert_eq!((line, column.as_str(), field.as_str()), (2, "b", "x"));
            }
            other => panic!("expected NotANumber, got {other:?}"),
        }
    }
}
