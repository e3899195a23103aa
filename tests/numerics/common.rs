//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/reference/NAME`, beside the repository (read-only, identical in CI).
pub fn shared_reference(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("reference file is JSON")
}

/// Relative error `|a - b| / |b|`, with 0 when both are equal (including
/// both zero or the same infinity).
pub fn relative_error(a: f64, b: f64) -> f64 {
    if a == b { 0.0 } else { (a - b).abs() / b.abs() }
}

/// Fourth-order central difference of `f` at `x` along coordinate `i`.
pub fn central_difference(f: impl Fn(&[f64]) -> f64, x: &[f64], i: usize) -> f64 {
    let h = 1e-4 * x[i].abs().max(1.0);
    let at = |delta: f64| {
        let mut y = x.to_vec();
        y[i] += delta;
        f(&y)
    };
    (at(-2.0 * h) - 8.0 * at(-h) + 8.0 * at(h) - at(2.0 * h)) / (12.0 * h)
}
