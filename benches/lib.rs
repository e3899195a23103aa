//! The benchmarks of `iwhvi`, a package of their own so that criterion is
//! built only for `cargo bench`. The library is empty; the benchmarks are
//! the `[[bench]]` targets beside it:
//!
//! ```sh
//! cargo bench --bench gradient             # forward mode vs num-dual vs the tape
//! cargo bench --bench diwhvi_step          # one DIWHVI training step
//! cargo bench --bench eight_schools_bounds # fit, bounds and peak memory per (M, K)
//! cargo bench --bench logistic_step        # the NumPyro peer's step, N = 10² … 10⁵
//! cargo bench --bench plate                # a plate call against the scalar loops it replaces
//! cargo bench --bench plate_kernels        # hand-written kernels against ScalarKernel
//! cargo bench --bench vmath                # exp, ln, ln_1p, softplus, log-sigmoid against std
//! ```
//!
//! `peers/alternate.sh` times the JAX and NumPyro peers beside
//! `diwhvi_step` and `logistic_step` on one pinned core.
