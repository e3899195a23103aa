//! The benchmarks of `iwhvi`, a package of their own so that criterion is
//! built only for `cargo bench`. The library is empty; the benchmarks are
//! the `[[bench]]` targets beside it:
//!
//! ```sh
//! cargo bench --bench gradient             # forward mode vs num-dual vs the tape
//! cargo bench --bench diwhvi_step          # one DIWHVI training step
//! cargo bench --bench eight_schools_bounds # fit, bounds and peak memory per (M, K)
//! ```
