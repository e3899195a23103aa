//! Pictures of a fit, as SVG files (the `plot` feature, with `plotters`):
//!
//! - [`trace`]: the bound at every step, with its mean over each window of
//!   steps (as [`Fit::smoothed`](crate::fit::Fit) holds it), the first thing to look at after a stochastic fit (has it
//!   levelled off?);
//! - [`marginals`]: a histogram of each element's draws, optionally over a
//!   reference's (NUTS draws, or another guide's);
//! - [`pairs`]: the pairwise scatter of the draws (lower triangle) with the
//!   marginal histograms on the diagonal, optionally beside a reference.
//!
//! Enable it with `iwhvi = { …, features = ["plot"] }`.
//!
//! ```
//! use iwhvi::model::Latents;
//! use iwhvi::posterior::Draws;
//!
//! let rows: Vec<Latents> = (0..200)
//!     .map(|i| {
//!         let x = (i as f64 * 0.37).sin();
//!         Latents::from_pairs([("a".to_string(), vec![x]), ("b".to_string(), vec![x * x])])
//!     })
//!     .collect();
//! let draws = Draws::from_latents(&rows);
//! let dir = std::env::temp_dir();
//! iwhvi::plot::marginals(&draws, None, &[], dir.join("iwhvi-doc-marginals.svg"))?;
//! iwhvi::plot::pairs(&draws, None, &["a", "b"], dir.join("iwhvi-doc-pairs.svg"))?;
//! let bound: Vec<f64> = (1..=500).map(|s| -10.0 - 5.0 / s as f64).collect();
//! iwhvi::plot::trace(&bound, 50, dir.join("iwhvi-doc-trace.svg"))?;
//! # Ok::<(), iwhvi::plot::PlotError>(())
//! ```

use std::path::Path;

use plotters::prelude::*;

use crate::posterior::Draws;

/// At most this many draws are drawn in a scatter panel (the first ones),
/// so that the file stays small.
pub const MAX_SCATTER_POINTS: usize = 2000;

/// Histogram bins per marginal.
const BINS: usize = 40;

const OURS: RGBColor = RGBColor(31, 119, 180);
const REFERENCE: RGBColor = RGBColor(214, 39, 40);

/// Why a picture could not be drawn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// There is nothing to draw.
    #[error("nothing to plot: {0}")]
    Empty(&'static str),
    /// An element name that the draws do not have.
    #[error(
        "the draws have no element `{0}`: name elements as `Draws::names` lists them (`theta[0]` for element 0 of `theta`)"
    )]
    UnknownElement(String),
    /// The smoothing window is 0.
    #[error("the smoothing window must be at least one step")]
    ZeroWindow,
    /// The SVG backend or the file failed.
    #[error("drawing the SVG failed: {0}")]
    Backend(String),
}

fn backend<E: std::fmt::Display>(e: E) -> PlotError {
    PlotError::Backend(e.to_string())
}

fn prepare(path: &Path) -> Result<(), PlotError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir).map_err(backend),
        _ => Ok(()),
    }
}

/// The bound at each step (dots; non-finite steps, which the fit
/// rejected, are left out) and its mean over each run of `window` steps
/// (a line at the window's last step), as [`Fit::trace`](crate::fit::Fit)
/// and [`Fit::smoothed`](crate::fit::Fit) hold them.
///
/// # Errors
/// [`PlotError::Empty`] when no step is finite, [`PlotError::ZeroWindow`],
/// [`PlotError::Backend`].
pub fn trace(bound: &[f64], window: usize, path: impl AsRef<Path>) -> Result<(), PlotError> {
    if window == 0 {
        return Err(PlotError::ZeroWindow);
    }
    let points: Vec<(f64, f64)> = bound
        .iter()
        .enumerate()
        .filter(|(_, b)| b.is_finite())
        .map(|(i, &b)| ((i + 1) as f64, b))
        .collect();
    if points.is_empty() {
        return Err(PlotError::Empty("no step has a finite bound"));
    }
    let smoothed: Vec<(f64, f64)> = bound
        .chunks_exact(window)
        .enumerate()
        .filter_map(|(w, chunk)| {
            let finite: Vec<f64> = chunk.iter().copied().filter(|b| b.is_finite()).collect();
            (!finite.is_empty()).then(|| {
                (
                    ((w + 1) * window) as f64,
                    finite.iter().sum::<f64>() / finite.len() as f64,
                )
            })
        })
        .collect();
    // The y range: from the 1st percentile of the points to their maximum,
    // so that the first steps' very low bounds do not flatten the rest.
    let mut values: Vec<f64> = points.iter().map(|p| p.1).collect();
    values.sort_by(f64::total_cmp);
    let low = values[values.len() / 100];
    let high = values[values.len() - 1];
    let pad = ((high - low) * 0.05).max(1e-9);
    let path = path.as_ref();
    prepare(path)?;
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(backend)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("bound per step", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..bound.len() as f64, (low - pad)..(high + pad))
        .map_err(backend)?;
    chart
        .configure_mesh()
        .max_light_lines(0)
        .x_desc("step")
        .y_desc("bound")
        .draw()
        .map_err(backend)?;
    chart
        .draw_series(
            points
                .iter()
                .map(|&p| Circle::new(p, 1, OURS.mix(0.25).filled())),
        )
        .map_err(backend)?
        .label("each step")
        .legend(|(x, y)| Circle::new((x + 10, y), 3, OURS.filled()));
    chart
        .draw_series(LineSeries::new(smoothed, BLACK.stroke_width(2)))
        .map_err(backend)?
        .label(format!("mean over {window} steps"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(backend)?;
    root.present().map_err(backend)
}

/// The columns to plot: `names`, or every element when `names` is empty.
fn columns(draws: &Draws, names: &[&str]) -> Result<Columns, PlotError> {
    if draws.is_empty() {
        return Err(PlotError::Empty("no draws"));
    }
    let chosen: Vec<String> = if names.is_empty() {
        draws.names().to_vec()
    } else {
        names.iter().map(|n| n.to_string()).collect()
    };
    chosen
        .into_iter()
        .map(|name| {
            let column = draws
                .column(&name)
                .ok_or_else(|| PlotError::UnknownElement(name.clone()))?;
            Ok((name, column))
        })
        .collect()
}

/// Named columns of draws.
type Columns = Vec<(String, Vec<f64>)>;

/// The reference's columns for the elements of `ours`, by name.
fn reference_columns(
    reference: Option<&Draws>,
    ours: &Columns,
) -> Result<Option<Columns>, PlotError> {
    let names: Vec<&str> = ours.iter().map(|(n, _)| n.as_str()).collect();
    reference.map(|r| columns(r, &names)).transpose()
}

/// The range that holds both samples' finite values, padded by 5 %.
fn range(a: &[f64], b: Option<&[f64]>) -> std::ops::Range<f64> {
    let all = a.iter().chain(b.unwrap_or(&[])).filter(|v| v.is_finite());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    (lo - pad)..(hi + pad)
}

/// Densities of `values` in `BINS` bins over `range`: (bin start, density).
fn histogram(values: &[f64], range: &std::ops::Range<f64>) -> Vec<(f64, f64)> {
    let width = (range.end - range.start) / BINS as f64;
    let mut counts = [0usize; BINS];
    let mut total = 0usize;
    for &v in values.iter().filter(|v| v.is_finite()) {
        let bin = (((v - range.start) / width) as usize).min(BINS - 1);
        counts[bin] += 1;
        total += 1;
    }
    counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            (
                range.start + i as f64 * width,
                c as f64 / (total.max(1) as f64 * width),
            )
        })
        .collect()
}

/// Draws one histogram panel: ours filled, the reference's as an outline.
fn histogram_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    name: &str,
    ours: &[f64],
    reference: Option<&[f64]>,
) -> Result<(), PlotError> {
    let x_range = range(ours, reference);
    let width = (x_range.end - x_range.start) / BINS as f64;
    let ours_h = histogram(ours, &x_range);
    let reference_h = reference.map(|r| histogram(r, &x_range));
    let top = ours_h
        .iter()
        .chain(reference_h.iter().flatten())
        .map(|p| p.1)
        .fold(0.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(name, ("sans-serif", 14))
        .margin(6)
        .x_label_area_size(24)
        .y_label_area_size(36)
        .build_cartesian_2d(x_range.clone(), 0.0..top.max(1e-9))
        .map_err(backend)?;
    chart
        .configure_mesh()
        .max_light_lines(0)
        .x_labels(4)
        .y_labels(3)
        .draw()
        .map_err(backend)?;
    chart
        .draw_series(
            ours_h
                .iter()
                .map(|&(x, d)| Rectangle::new([(x, 0.0), (x + width, d)], OURS.mix(0.5).filled())),
        )
        .map_err(backend)?;
    if let Some(reference_h) = reference_h {
        let outline: Vec<(f64, f64)> = reference_h
            .iter()
            .flat_map(|&(x, d)| [(x, d), (x + width, d)])
            .collect();
        chart
            .draw_series(LineSeries::new(outline, REFERENCE.stroke_width(2)))
            .map_err(backend)?;
    }
    Ok(())
}

/// A grid of the marginal histograms of `names` (every element when
/// `names` is empty): the draws filled in blue, the `reference`'s (if
/// given) outlined in red, on a common density scale.
///
/// # Errors
/// [`PlotError::Empty`], [`PlotError::UnknownElement`] (in the draws or the
/// reference), [`PlotError::Backend`].
pub fn marginals(
    draws: &Draws,
    reference: Option<&Draws>,
    names: &[&str],
    path: impl AsRef<Path>,
) -> Result<(), PlotError> {
    let ours = columns(draws, names)?;
    let theirs = reference_columns(reference, &ours)?;
    let per_row = (ours.len() as f64).sqrt().ceil() as usize;
    let rows = ours.len().div_ceil(per_row);
    let path = path.as_ref();
    prepare(path)?;
    let root = SVGBackend::new(path, (280 * per_row as u32, 220 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(backend)?;
    let panels = root.split_evenly((rows, per_row));
    for (j, (name, column)) in ours.iter().enumerate() {
        let reference = theirs.as_ref().map(|t| t[j].1.as_slice());
        histogram_panel(&panels[j], name, column, reference)?;
    }
    root.present().map_err(backend)
}

/// The pairwise scatter of `names` (every element when empty): below the
/// diagonal, the first [`MAX_SCATTER_POINTS`] draws (blue) and, if given,
/// the reference's (red); on the diagonal, the marginal histograms as in
/// [`marginals`].
///
/// # Errors
/// As [`marginals`].
pub fn pairs(
    draws: &Draws,
    reference: Option<&Draws>,
    names: &[&str],
    path: impl AsRef<Path>,
) -> Result<(), PlotError> {
    let ours = columns(draws, names)?;
    let theirs = reference_columns(reference, &ours)?;
    let p = ours.len();
    let path = path.as_ref();
    prepare(path)?;
    let side = (220 * p as u32).max(300);
    let root = SVGBackend::new(path, (side, side)).into_drawing_area();
    root.fill(&WHITE).map_err(backend)?;
    let panels = root.split_evenly((p, p));
    for i in 0..p {
        for j in 0..=i {
            let area = &panels[i * p + j];
            let reference_i = theirs.as_ref().map(|t| t[i].1.as_slice());
            if i == j {
                histogram_panel(area, &ours[i].0, &ours[i].1, reference_i)?;
                continue;
            }
            let reference_j = theirs.as_ref().map(|t| t[j].1.as_slice());
            let mut chart = ChartBuilder::on(area)
                .margin(6)
                .x_label_area_size(24)
                .y_label_area_size(36)
                .build_cartesian_2d(
                    range(&ours[j].1, reference_j),
                    range(&ours[i].1, reference_i),
                )
                .map_err(backend)?;
            chart
                .configure_mesh()
                .max_light_lines(0)
                .x_labels(4)
                .y_labels(4)
                .x_desc(ours[j].0.as_str())
                .y_desc(ours[i].0.as_str())
                .draw()
                .map_err(backend)?;
            let scatter = |x: &[f64], y: &[f64], colour: RGBColor| {
                x.iter()
                    .zip(y)
                    .take(MAX_SCATTER_POINTS)
                    .filter(|(a, b)| a.is_finite() && b.is_finite())
                    .map(move |(&a, &b)| Circle::new((a, b), 1, colour.mix(0.3).filled()))
                    .collect::<Vec<_>>()
            };
            if let (Some(rj), Some(ri)) = (reference_j, reference_i) {
                chart
                    .draw_series(scatter(rj, ri, REFERENCE))
                    .map_err(backend)?;
            }
            chart
                .draw_series(scatter(&ours[j].1, &ours[i].1, OURS))
                .map_err(backend)?;
        }
    }
    root.present().map_err(backend)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Latents;

    fn draws(shift: f64) -> Draws {
        let rows: Vec<Latents> = (0..300)
            .map(|i| {
                let x = (i as f64 * 0.61).sin() + shift;
                Latents::from_pairs([
                    ("mu".to_string(), vec![x]),
                    ("theta".to_string(), vec![x * 0.5, -x]),
                ])
            })
            .collect();
        Draws::from_latents(&rows)
    }

    /// True when the SVG has a text element reading `label`.
    fn labelled(svg: &str, label: &str) -> bool {
        svg.lines()
            .zip(svg.lines().skip(1))
            .any(|(open, text)| open.starts_with("<text") && text.trim() == label)
    }

    fn svg(name: &str) -> (std::path::PathBuf, impl FnOnce() -> String) {
        let path =
            std::env::temp_dir().join(format!("iwhvi-plot-{}-{name}.svg", std::process::id()));
        let read = {
            let path = path.clone();
            move || {
                let text = std::fs::read_to_string(&path).expect("the SVG was written");
                std::fs::remove_file(&path).ok();
                text
            }
        };
        (path, read)
    }

    #[test]
    fn every_picture_names_what_it_shows() {
        let (ours, reference) = (draws(0.0), draws(0.3));
        let (path, read) = svg("pairs");
        pairs(&ours, Some(&reference), &[], &path).expect("drawn");
        let text = read();
        assert!(text.starts_with("<svg"));
        for name in ["mu", "theta[0]", "theta[1]"] {
            assert!(labelled(&text, name), "{name} is labelled");
        }
        let (path, read) = svg("marginals");
        marginals(&ours, Some(&reference), &["theta[1]"], &path).expect("drawn");
        let text = read();
        assert!(labelled(&text, "theta[1]") && !labelled(&text, "mu"));
        let (path, read) = svg("trace");
        let bound: Vec<f64> = (1..=300)
            .map(|s| if s == 7 { f64::NAN } else { -1.0 / s as f64 })
            .collect();
        trace(&bound, 30, &path).expect("drawn");
        assert!(labelled(&read(), "mean over 30 steps"));
    }

    #[test]
    fn bad_requests_are_typed_errors() {
        let (path, _) = svg("never");
        assert!(matches!(
            marginals(&draws(0.0), None, &["sigma"], &path),
            Err(PlotError::UnknownElement(name)) if name == "sigma"
        ));
        assert!(matches!(
            pairs(&Draws::default(), None, &[], &path),
            Err(PlotError::Empty(_))
        ));
        assert!(matches!(
            trace(&[1.0], 0, &path),
            Err(PlotError::ZeroWindow)
        ));
        assert!(matches!(
            trace(&[f64::NAN], 1, &path),
            Err(PlotError::Empty(_))
        ));
        assert!(!path.exists());
    }
}
