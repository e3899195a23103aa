//! The pictures the examples draw with the library's `plot` feature
//! (`iwhvi::plot`): a fit's bound per step with its mean over each window
//! of 100 steps (the fit's default window), and the pairwise scatter and
//! marginal histograms of a guide's draws, over reference draws (exact, or
//! importance-resampled) where the example has them.
//!
//! The files go to `target/<stem>_trace.svg` and `target/<stem>_pairs.svg`
//! and their paths are printed with the readable summary only: they are
//! not figures, so an example's `--json` output does not depend on them.
//! Drawing uses no random numbers (the draws are the example's own), so
//! the printed figures do not depend on the pictures either. A picture
//! that cannot be drawn (a read-only `target/`, say) is reported on
//! stderr and does not stop the example.
//!
//! ```ignore
//! pictures::trace(&report, "funnel_semi_implicit", &fitted.trace);
//! pictures::pairs(&report, "funnel_semi_implicit", &draws, Some(&exact), &["v", "x[0]"]);
//! ```

use std::path::PathBuf;

use iwhvi::posterior::Draws;

use crate::report::Report;

/// The smoothing window of the trace's line, in steps (the fit's default).
pub const WINDOW: usize = 100;

/// `target/<stem>_<kind>.svg` under the repository root.
pub fn path(stem: &str, kind: &str) -> PathBuf {
    crate::repo_root()
        .join("target")
        .join(format!("{stem}_{kind}.svg"))
}

/// The bound at every step of a fit (`Fit::trace`) and its mean over each
/// window of [`WINDOW`] steps, to `target/<stem>_trace.svg`.
pub fn trace(report: &Report, stem: &str, bound: &[f64]) {
    let path = path(stem, "trace");
    match iwhvi::plot::trace(bound, WINDOW, &path) {
        Ok(()) => report.line(format!("plot: {} (bound per step)", path.display())),
        Err(e) => eprintln!("{} not drawn: {e}", path.display()),
    }
}

/// The pairwise scatter and marginals of `elements` of the draws (every
/// element when empty), over the `reference` draws if given, to
/// `target/<stem>_pairs.svg`; `what` says what the reference is.
pub fn pairs(
    report: &Report,
    stem: &str,
    draws: &Draws,
    reference: Option<(&Draws, &str)>,
    elements: &[&str],
) {
    let path = path(stem, "pairs");
    match iwhvi::plot::pairs(draws, reference.map(|r| r.0), elements, &path) {
        Ok(()) => report.line(format!(
            "plot: {} (draws{})",
            path.display(),
            reference.map_or(String::new(), |(_, what)| format!(
                " in blue, {what} in red"
            ))
        )),
        Err(e) => eprintln!("{} not drawn: {e}", path.display()),
    }
}
