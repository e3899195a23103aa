//! Misuse, as a new user would try it: every case must end in a typed
//! error of the exact variant named in its table (or a documented `None`),
//! never a panic, an abort or a plausible number.
//!
//! One module per side: `runtime` (the inference entry points, settings,
//! sizes and saved files) and `fuzz` (random edits of a saved guide); the
//! model declarations' compile-time and construction-time checks have
//! their own module.

mod fuzz;
mod gaps;
mod reads;
mod runtime;

use std::fmt::Debug;

/// One row of a table: its name, the expected start of its outcome, and
/// the case.
pub type Case = (&'static str, &'static str, Box<dyn Fn() -> String>);

/// What a case produced: the `Debug` form of its error, `"ok"` when it
/// succeeded, or the text of a documented non-error outcome.
pub fn outcome<T, E: Debug>(result: Result<T, E>) -> String {
    match result {
        Ok(_) => "ok".to_string(),
        Err(error) => format!("{error:?}"),
    }
}

/// Runs a table of `(name, expected variant, case)`: each case's outcome
/// must start with its expected variant (`Input(WrongParameterCount {`,
/// …), and a case that panics fails with its name. All cases run before
/// the test reports, so one failure lists every mismatch.
pub fn run_table(table: Vec<Case>) {
    let mut failures = Vec::new();
    for (name, expected, case) in &table {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(case)) {
            Ok(got) if got.starts_with(expected) => {}
            Ok(got) => failures.push(format!("{name}: expected {expected}…, got {got}")),
            Err(_) => failures.push(format!("{name}: panicked")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
}
