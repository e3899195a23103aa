//! Helpers the unit tests of hand-written derivatives share (test builds
//! only): a relative comparison of gradients and central finite
//! differences.

use crate::gradient::Differentiable;

/// Asserts `|a_k − b_k| ≤ tol (1 + |b_k|)` for every `k` (and equal
/// lengths), naming `what` and the entry on failure.
pub(crate) fn close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}: entry {k}: {x} vs {y}"
        );
    }
}

/// `∂f/∂x_k ≈ (f(x + h e_k) − f(x − h e_k)) / 2h`, `h = 10⁻⁶`, for every `k`.
pub(crate) fn finite_differences(f: &impl Differentiable, x: &[f64]) -> Vec<f64> {
    let h = 1e-6;
    (0..x.len())
        .map(|k| {
            let (mut up, mut down) = (x.to_vec(), x.to_vec());
            up[k] += h;
            down[k] -= h;
            (f.eval(&up) - f.eval(&down)) / (2.0 * h)
        })
        .collect()
}
