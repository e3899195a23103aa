//! Fixtures shared by the examples, the integration tests and the
//! benchmarks of `iwhvi`, declared once (not part of the published crates).
//!
//! - [`noncentred`] and [`centred`]: eight schools as `#[variational]`
//!   models in both forms, the centred one with a guide written as a
//!   struct; [`hand_written`]: the non-centred log joint by hand, with the
//!   data;
//! - [`posteriordb`]: the ten posteriors of `../shared/posteriordb` as
//!   models, reading the data under `examples/data/posteriordb`;
//!   [`reference`](mod@reference): posteriordb's reference posteriors (NUTS);
//! - [`digits`]: the binarised digits and the VAE of `vae_digits`;
//! - [`hmc`](mod@hmc): a plain HMC sampler, the reference of `varying_slopes`;
//! - [`macro_vae`]: the VAE of `vae_digits` declared with `#[variational]`;
//! - [`varying_slopes`]: correlated intercepts and slopes with an LKJ
//!   prior, and the simulated data the example and its test fit;
//! - [`report`]: what every example prints (text, or JSON with `--json`);
//!   [`scoring`]: the summaries and figures of a fitted guide that
//!   `eight_schools` and `varying_slopes` share;
//!   [`regression`]: the fit-and-assess code of the regression examples;
//!   [`pictures`]: their SVGs, through `iwhvi::plot`.
//!
//! Paths are resolved from the repository root ([`repo_root`]), so the
//! examples, tests and benchmarks find the data whatever their working
//! directory.

use std::path::Path;

pub mod centred;
pub mod digits;
pub mod hand_written;
pub mod hmc;
pub mod macro_vae;
pub mod noncentred;
pub mod pictures;
pub mod posteriordb;
pub mod reference;
pub mod regression;
pub mod report;
pub mod scoring;
pub mod varying_slopes;

/// The positive whole number that follows the command-line option `name`
/// (the next of `args`), for the examples' argument parsers; anything else
/// (missing, not a number, 0) prints what `name` takes and exits with
/// status 2.
///
/// ```
/// let mut args = ["30".to_string(), "--json".to_string()].into_iter();
/// assert_eq!(iwhvi_examples::positive_arg(&mut args, "--epochs"), 30);
/// assert_eq!(args.next().as_deref(), Some("--json"));
/// ```
pub fn positive_arg(args: &mut impl Iterator<Item = String>, name: &str) -> usize {
    match args.next().and_then(|v| v.parse().ok()) {
        Some(v) if v > 0 => v,
        _ => {
            eprintln!("{name} takes a positive whole number");
            std::process::exit(2);
        }
    }
}

/// The repository's root folder (this package's parent); `../shared`
/// lies beside it.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the examples package sits inside the repository")
}
