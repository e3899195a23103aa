//! Peak memory of a logistic-regression fit (issue 12's target: peak RSS
//! at N = 10⁵ within 2× of the data's own size). Not a criterion bench: it
//! builds the model of `examples/logistic_regression.rs` (D = 10, the
//! design of `logistic_step.rs`, generated with `StdRng` seed 2024), reads
//! the process's peak resident set (`VmHWM` in `/proc/self/status`, Linux
//! only) after building it, after a mean-field ELBO `fit` and after a
//! semi-implicit DIWHVI (M = 1, K = 16) `fit`, each of `STEPS` steps on the
//! default engine, and prints them beside the data's size (x as N·D `f64`,
//! y as N `u64`).
//!
//! ```sh
//! cargo bench -p iwhvi-benches --bench logistic_rss -- 100000 50
//! ```

use iwhvi::fit::{FitConfig, fit};
use iwhvi::guide::{MeanField, SemiImplicit};
use iwhvi::objective::Diwhvi;
use iwhvi::optim::Adam;
use iwhvi_examples::regression::LogisticRegression;
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const D: usize = 10;

/// The process's peak resident set in KiB, if the system says.
fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn show(what: &str, data_kib: u64) {
    match peak_kib() {
        Some(peak) => println!(
            "{what:<40} peak RSS {peak:>8} KiB = {:.2} x the data",
            peak as f64 / data_kib as f64
        ),
        None => println!("{what:<40} peak RSS unknown (no /proc/self/status)"),
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(100_000);
    let steps = args.get(1).copied().unwrap_or(50);
    let mut rng = StdRng::seed_from_u64(2024);
    let x = DMatrix::from_fn(n, D, |_, j| {
        if j == 0 {
            1.0
        } else {
            rng.sample(rand_distr::StandardNormal)
        }
    });
    let y: Vec<u64> = (0..n).map(|_| u64::from(rng.random::<bool>())).collect();
    let data_kib = ((n * D * 8 + n * 8) / 1024) as u64;
    println!("N = {n}, D = {D}, {steps} steps a fit; the data: {data_kib} KiB");
    let model = LogisticRegression::new(x, y).expect("valid data");
    show("after building the model", data_kib);
    let config = |objective| FitConfig::new(objective).max_steps(steps).seed(1);
    let mean_field = MeanField::new(D);
    fit(
        &model,
        &mean_field,
        Adam::new(0.01),
        &config(Diwhvi::elbo()),
    )
    .expect("a fit");
    show("after a mean-field ELBO fit", data_kib);
    let semi_implicit = SemiImplicit::new(D, D);
    fit(
        &model,
        &semi_implicit,
        Adam::new(0.01),
        &config(Diwhvi::new(1, 16)),
    )
    .expect("a fit");
    show("after a semi-implicit DIWHVI fit", data_kib);
}
