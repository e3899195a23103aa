//! An adaptive ODE solver written over [`Scalar`], so that a model's log
//! density can go through the solution of `dy/dt = f(t, y, θ)` and be
//! differentiated with respect to `θ` and `y(t₀)` by either engine
//! (pharmacokinetics, predator–prey, SIR models).
//!
//! The method is Dormand and Prince's explicit Runge–Kutta 5(4) pair
//! (`ode45`, SciPy's `RK45`), with the error of each step estimated by the
//! embedded fourth-order solution and the step size controlled to keep it
//! below `atol + rtol · |y|` in the root-mean-square norm (Hairer, Nørsett
//! and Wanner, *Solving ODEs I*, II.4). The solver steps exactly onto every
//! requested output time, so no interpolation error is added there.
//!
//! Gradients are those of the computed solution (discretise, then
//! differentiate): step sizes are chosen from values alone, so they are
//! constants to the derivative, and the derivative of the solution is the
//! derivative of the same sequence of Runge–Kutta steps. With a tolerance
//! well below the model's noise this is the derivative of the exact
//! solution to the same accuracy.
//!
//! ```
//! use iwhvi_core::ode::{OdeOptions, solve};
//! use iwhvi_core::{Dual, Scalar};
//!
//! // dy/dt = −k y, y(0) = 2: y(t) = 2 e^{−kt}, ∂y/∂k = −t y.
//! let k = Dual::<1>::variable(0.7, 0);
//! let y0 = [Dual::constant(2.0)];
//! let ys = solve(|_t, y: &[Dual<1>], dy: &mut [Dual<1>]| dy[0] = -k * y[0], &y0, 0.0, &[1.0, 3.0], &OdeOptions::default())?;
//! let exact = 2.0 * (-0.7f64 * 3.0).exp();
//! assert!((ys[1][0].value() - exact).abs() < 1e-8 * exact);
//! assert!((ys[1][0].tangent()[0] - (-3.0 * exact)).abs() < 1e-7);
//! # Ok::<(), iwhvi_core::ode::OdeError>(())
//! ```

use crate::scalar::Scalar;

/// Tolerances and limits of [`solve`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OdeOptions {
    /// Relative tolerance per step (default `1e-10`).
    pub rtol: f64,
    /// Absolute tolerance per step (default `1e-10`).
    pub atol: f64,
    /// The most steps (accepted and rejected) before giving up (default
    /// 100,000).
    pub max_steps: usize,
}

impl Default for OdeOptions {
    fn default() -> Self {
        Self {
            rtol: 1e-10,
            atol: 1e-10,
            max_steps: 100_000,
        }
    }
}

impl OdeOptions {
    /// With the given relative and absolute tolerances.
    ///
    /// ```
    /// let options = iwhvi_core::ode::OdeOptions::default().tolerances(1e-6, 1e-8);
    /// assert_eq!((options.rtol, options.atol), (1e-6, 1e-8));
    /// ```
    pub fn tolerances(mut self, rtol: f64, atol: f64) -> Self {
        self.rtol = rtol;
        self.atol = atol;
        self
    }
}

/// Why [`solve`] did not reach the last output time.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OdeError {
    /// The tolerances are not positive and finite.
    #[error("the tolerances must be positive and finite (rtol {rtol}, atol {atol})")]
    BadTolerance {
        /// The relative tolerance given.
        rtol: f64,
        /// The absolute tolerance given.
        atol: f64,
    },
    /// The output times are not finite, or not increasing from `t0`.
    #[error(
        "output time {index} ({time}) is not after the one before it (the first must be after t0 = {t0})"
    )]
    TimesNotIncreasing {
        /// Its position.
        index: usize,
        /// The time.
        time: f64,
        /// The initial time.
        t0: f64,
    },
    /// `f` wrote a NaN or an infinity, or the solution blew up.
    #[error("the solution is not finite at t = {time}: check f and the parameters it was given")]
    NotFinite {
        /// Where.
        time: f64,
    },
    /// The step size fell below what `f64` resolves at `time`: the system
    /// is too stiff for an explicit method at these tolerances.
    #[error(
        "the step size underflowed at t = {time}: the system is stiff there or f is not smooth"
    )]
    StepTooSmall {
        /// Where.
        time: f64,
    },
    /// More than `max_steps` steps.
    #[error(
        "more than {max_steps} steps before t = {time}: loosen the tolerances or raise max_steps"
    )]
    TooManySteps {
        /// The limit.
        max_steps: usize,
        /// How far the solution got.
        time: f64,
    },
}

// Dormand–Prince 5(4): nodes, stages, the fifth-order weights (the last
// stage's row, first same as last) and the error weights b − b̂.
const C: [f64; 6] = [1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];
const A: [&[f64]; 6] = [
    &[1.0 / 5.0],
    &[3.0 / 40.0, 9.0 / 40.0],
    &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    &[
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
    ],
    &[
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
    ],
    &[
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
    ],
];
const E: [f64; 7] = [
    71.0 / 57600.0,
    0.0,
    -71.0 / 16695.0,
    71.0 / 1920.0,
    -17253.0 / 339200.0,
    22.0 / 525.0,
    -1.0 / 40.0,
];

/// The solution of `dy/dt = f(t, y)`, `y(t0) = y0`, at each of `times`
/// (increasing, all after `t0`): `result[i][j]` is `y_j(times[i])`.
///
/// `f(t, y, dy)` writes `dy/dt` into `dy` (same length as `y`); parameters
/// reach it by capture, as `Scalar` values, so their derivatives flow into
/// the solution. See the module documentation for the method.
///
/// # Errors
/// [`OdeError`]: bad tolerances or times, a non-finite solution, a step
/// size that underflows, or too many steps.
pub fn solve<T: Scalar, F: FnMut(f64, &[T], &mut [T])>(
    mut f: F,
    y0: &[T],
    t0: f64,
    times: &[f64],
    options: &OdeOptions,
) -> Result<Vec<Vec<T>>, OdeError> {
    let OdeOptions {
        rtol,
        atol,
        max_steps,
    } = *options;
    if !(rtol > 0.0 && rtol.is_finite() && atol > 0.0 && atol.is_finite()) {
        return Err(OdeError::BadTolerance { rtol, atol });
    }
    let mut previous = t0;
    for (index, &time) in times.iter().enumerate() {
        if !(time > previous) || !time.is_finite() || !t0.is_finite() {
            return Err(OdeError::TimesNotIncreasing { index, time, t0 });
        }
        previous = time;
    }
    let n = y0.len();
    let scale =
        |y: &[T], z: &[T], j: usize| atol + rtol * y[j].value().abs().max(z[j].value().abs());
    let mut y = y0.to_vec();
    let mut k: Vec<Vec<T>> = vec![vec![T::constant(0.0); n]; 7];
    f(t0, &y, &mut k[0]);
    if k[0].iter().any(|v| !v.value().is_finite()) || y.iter().any(|v| !v.value().is_finite()) {
        return Err(OdeError::NotFinite { time: t0 });
    }
    let mut t = t0;
    let mut h = initial_step(
        &mut f,
        &y,
        &k[0],
        t0,
        times.last().map_or(t0, |&e| e),
        &scale,
    );
    let mut stage = vec![T::constant(0.0); n];
    let mut y_new = vec![T::constant(0.0); n];
    let mut steps = 0;
    let mut out = Vec::with_capacity(times.len());
    for &target in times {
        while t < target {
            steps += 1;
            if steps > max_steps {
                return Err(OdeError::TooManySteps { max_steps, time: t });
            }
            let last = t + h >= target;
            let step = if last { target - t } else { h };
            if step <= 16.0 * f64::EPSILON * t.abs().max(1e-300) {
                return Err(OdeError::StepTooSmall { time: t });
            }
            for s in 1..7 {
                let row = A[s - 1];
                for j in 0..n {
                    let mut sum = k[0][j] * row[0];
                    for (r, &a) in row.iter().enumerate().skip(1) {
                        if a != 0.0 {
                            sum += k[r][j] * a;
                        }
                    }
                    stage[j] = y[j] + sum * step;
                }
                f(t + C[s - 1] * step, &stage, &mut k[s]);
                if s == 6 {
                    // The last stage is the new point; `stage` is rewritten
                    // before it is read again.
                    std::mem::swap(&mut y_new, &mut stage);
                }
            }
            // The error estimate, in values: Σ_s E_s k_s · h.
            let mut norm = 0.0;
            for j in 0..n {
                let err: f64 = E
                    .iter()
                    .zip(&k)
                    .map(|(e, ks)| e * ks[j].value())
                    .sum::<f64>()
                    * step;
                let ratio = err / scale(&y, &y_new, j);
                norm += ratio * ratio;
            }
            let norm = (norm / n.max(1) as f64).sqrt();
            if !norm.is_finite() || y_new.iter().any(|v| !v.value().is_finite()) {
                if step <= 16.0 * f64::EPSILON * t.abs().max(1.0) {
                    return Err(OdeError::NotFinite { time: t });
                }
                h = step * 0.2;
                continue;
            }
            let factor = if norm == 0.0 {
                5.0
            } else {
                (0.9 * norm.powf(-0.2)).clamp(0.2, 5.0)
            };
            if norm <= 1.0 {
                t = if last { target } else { t + step };
                std::mem::swap(&mut y, &mut y_new);
                // First same as last: the seventh stage is f at the new point.
                k.swap(0, 6);
                // Keep the controller's step, not the one shortened to land
                // on the output time.
                h = if last { h.max(step) } else { step * factor };
            } else {
                h = step * factor.min(1.0);
            }
        }
        out.push(y.clone());
    }
    Ok(out)
}

/// Hairer's starting step: a step whose explicit Euler error would be
/// about the tolerance, from `|y0|`, `|f(t0, y0)|` and a second derivative
/// estimated by one Euler step.
fn initial_step<T: Scalar, F: FnMut(f64, &[T], &mut [T])>(
    f: &mut F,
    y0: &[T],
    f0: &[T],
    t0: f64,
    t_end: f64,
    scale: &impl Fn(&[T], &[T], usize) -> f64,
) -> f64 {
    let n = y0.len().max(1) as f64;
    let rms =
        |v: &dyn Fn(usize) -> f64| ((0..y0.len()).map(|j| v(j).powi(2)).sum::<f64>() / n).sqrt();
    let d0 = rms(&|j| y0[j].value() / scale(y0, y0, j));
    let d1 = rms(&|j| f0[j].value() / scale(y0, y0, j));
    let h0 = if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    };
    let span = t_end - t0;
    let h0 = h0.min(span.abs().max(f64::MIN_POSITIVE));
    let y1: Vec<T> = y0
        .iter()
        .zip(f0)
        .map(|(&y, &d)| T::constant(y.value() + h0 * d.value()))
        .collect();
    let mut f1 = vec![T::constant(0.0); y0.len()];
    f(t0 + h0, &y1, &mut f1);
    let d2 = rms(&|j| (f1[j].value() - f0[j].value()) / scale(y0, y0, j)) / h0;
    let h1 = if d1.max(d2) <= 1e-15 {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / d1.max(d2)).powf(0.2)
    };
    let h = (100.0 * h0).min(h1);
    if h.is_finite() && h > 0.0 { h } else { h0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dual::Dual;

    #[test]
    fn harmonic_oscillator_matches_its_closed_form() {
        // y'' = −ω² y, y(0) = 1, y'(0) = 0: y = cos ωt.
        let omega = 1.7;
        let times: Vec<f64> = (1..=20).map(|i| i as f64 * 0.5).collect();
        let ys = solve(
            |_, y: &[f64], dy: &mut [f64]| {
                dy[0] = y[1];
                dy[1] = -omega * omega * y[0];
            },
            &[1.0, 0.0],
            0.0,
            &times,
            &OdeOptions::default(),
        )
        .expect("a smooth system");
        for (t, y) in times.iter().zip(&ys) {
            assert!((y[0] - (omega * t).cos()).abs() < 1e-8, "t = {t}");
            assert!((y[1] + omega * (omega * t).sin()).abs() < 1e-8, "t = {t}");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        // Logistic growth y' = r y (1 − y / K): derivatives in r, K and y0.
        let run = |p: [f64; 3]| -> f64 {
            let ys = solve(
                |_, y: &[f64], dy: &mut [f64]| dy[0] = p[0] * y[0] * (1.0 - y[0] / p[1]),
                &[p[2]],
                0.0,
                &[2.5],
                &OdeOptions::default().tolerances(1e-12, 1e-12),
            )
            .expect("smooth");
            ys[0][0]
        };
        let p = [0.9, 5.0, 0.3];
        let r = Dual::<3>::variable(p[0], 0);
        let cap = Dual::<3>::variable(p[1], 1);
        let y0 = Dual::<3>::variable(p[2], 2);
        let ys = solve(
            |_, y: &[Dual<3>], dy: &mut [Dual<3>]| dy[0] = r * y[0] * (-(y[0] / cap) + 1.0),
            &[y0],
            0.0,
            &[2.5],
            &OdeOptions::default().tolerances(1e-12, 1e-12),
        )
        .expect("smooth");
        assert_eq!(ys[0][0].value(), run(p));
        for i in 0..3 {
            let h = 1e-6 * p[i].abs();
            let (mut up, mut down) = (p, p);
            up[i] += h;
            down[i] -= h;
            let fd = (run(up) - run(down)) / (2.0 * h);
            let ad = ys[0][0].tangent()[i];
            assert!(
                (ad - fd).abs() < 1e-6 * fd.abs().max(1.0),
                "parameter {i}: {ad} vs {fd}"
            );
        }
    }

    #[test]
    fn bad_requests_are_typed_errors() {
        let decay = |_: f64, y: &[f64], dy: &mut [f64]| dy[0] = -y[0];
        let options = OdeOptions::default();
        assert!(matches!(
            solve(decay, &[1.0], 0.0, &[1.0, 1.0], &options),
            Err(OdeError::TimesNotIncreasing { index: 1, .. })
        ));
        assert!(matches!(
            solve(decay, &[1.0], 0.0, &[0.0], &options),
            Err(OdeError::TimesNotIncreasing { index: 0, .. })
        ));
        assert!(matches!(
            solve(decay, &[1.0], 0.0, &[1.0], &options.tolerances(0.0, 1e-6)),
            Err(OdeError::BadTolerance { .. })
        ));
        // y' = y², y(0) = 1 blows up at t = 1.
        let blow_up = |_: f64, y: &[f64], dy: &mut [f64]| dy[0] = y[0] * y[0];
        let err =
            solve(blow_up, &[1.0], 0.0, &[2.0], &options).expect_err("no solution past t = 1");
        assert!(
            matches!(
                err,
                OdeError::StepTooSmall { .. }
                    | OdeError::NotFinite { .. }
                    | OdeError::TooManySteps { .. }
            ),
            "{err:?}"
        );
        let few = OdeOptions {
            max_steps: 3,
            ..options
        };
        assert!(matches!(
            solve(decay, &[1.0], 0.0, &[100.0], &few),
            Err(OdeError::TooManySteps { max_steps: 3, .. })
        ));
    }
}
