//! Bijections from unconstrained space onto constrained supports.
//!
//! A latent with a constrained prior (a positive scale, a probability, a
//! simplex) is fitted in unconstrained coordinates `u`, with `z = T(u)` and
//! `log |det J_T(u)|` added to the log joint so that densities stay
//! normalised. Each [`Transform`] gives the forward map with its
//! log-Jacobian (generic over the scalar), the inverse on `f64`, and its
//! change of dimension. For transforms that change dimension, the Jacobian
//! is that of the map onto the *free* coordinates of the constrained value
//! (the first `K - 1` entries of a simplex, the strictly lower triangle of a
//! Cholesky factor).
//!
//! ```
//! use iwhvi_core::transforms::Transform;
//!
//! let t = Transform::Interval { low: -1.0, high: 3.0 };
//! let mut z = [0.0];
//! let log_det = t.forward(&[0.0], &mut z);
//! assert_eq!(z, [1.0]); // the midpoint
//! assert!((log_det - 1f64.ln()).abs() < 1e-15); // (high - low) σ'(0) = 4 · ¼
//! let mut u = [f64::NAN];
//! t.inverse(&z, &mut u).unwrap();
//! assert_eq!(u, [0.0]);
//! ```

use crate::scalar::Scalar;

/// A bijection `z = T(u)` from unconstrained coordinates onto a support.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Transform {
    /// `z = u` (real support).
    Identity,
    /// `z = exp(u)` (positive support); `log|J| = u`.
    Exp,
    /// `z = ln(1 + exp(u))` (positive support); `log|J| = ln σ(u)`.
    Softplus,
    /// `z = low + exp(u)`; `log|J| = u`.
    LowerBound {
        /// The bound `low < z`.
        low: f64,
    },
    /// `z = high - exp(u)`; `log|J| = u`.
    UpperBound {
        /// The bound `z < high`.
        high: f64,
    },
    /// `z = low + (high - low) σ(u)`; `log|J| = ln(high - low) + ln σ(u) + ln σ(-u)`.
    Interval {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// `z = offset + multiplier · u` (Stan's `offset`/`multiplier`, the
    /// non-centred parametrisation); `log|J| = ln multiplier` (`multiplier > 0`).
    Affine {
        /// The value at `u = 0`.
        offset: f64,
        /// The scale, positive.
        multiplier: f64,
    },
    /// Stick breaking onto the simplex of `K` entries from `K - 1` reals
    /// (Stan's parametrisation: `u = 0` maps to the uniform vector):
    /// `zₖ = σ(uₖ - ln(K - k))`, `xₖ = (1 - Σ_{j<k} xⱼ) zₖ`, `x_K` the rest.
    StickBreaking,
    /// A strictly increasing vector: `x₁ = u₁`, `xₖ = xₖ₋₁ + exp(uₖ)`.
    Ordered,
    /// A strictly increasing positive vector: `x₁ = exp(u₁)`,
    /// `xₖ = xₖ₋₁ + exp(uₖ)`.
    PositiveOrdered,
    /// The Cholesky factor `L` (`K×K`, row-major, zeros above the diagonal)
    /// of a correlation matrix, from `K(K-1)/2` reals: canonical partial
    /// correlations `tanh(u)`, each row scaled to unit norm (Stan's
    /// `cholesky_factor_corr`, the support of an LKJ prior).
    CholeskyCorrelation,
}

/// Why an inverse transform failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TransformError {
    /// The value is not in the transform's image.
    #[error("{transform}: entry {index} is {value}, which is outside the support ({requirement})")]
    OutsideSupport {
        /// The transform's name.
        transform: &'static str,
        /// The offending entry.
        index: usize,
        /// Its value.
        value: f64,
        /// What the support requires.
        requirement: &'static str,
    },
    /// The lengths do not fit the transform.
    #[error(
        "{transform}: a constrained value of length {constrained} does not fit {unconstrained} unconstrained coordinates"
    )]
    DimensionMismatch {
        /// The transform's name.
        transform: &'static str,
        /// Length of the constrained value.
        constrained: usize,
        /// Length of the unconstrained value.
        unconstrained: usize,
    },
}

/// `K` with `K(K-1)/2 = n`, if there is one.
fn correlation_order(n: usize) -> Option<usize> {
    let k = (1.0 + (1.0 + 8.0 * n as f64).sqrt()) / 2.0;
    let k = k.round() as usize;
    (k * (k - 1) / 2 == n).then_some(k)
}

impl Transform {
    /// Its name in messages.
    pub fn name(&self) -> &'static str {
        match self {
            Transform::Identity => "Identity",
            Transform::Exp => "Exp",
            Transform::Softplus => "Softplus",
            Transform::LowerBound { .. } => "LowerBound",
            Transform::UpperBound { .. } => "UpperBound",
            Transform::Interval { .. } => "Interval",
            Transform::Affine { .. } => "Affine",
            Transform::StickBreaking => "StickBreaking",
            Transform::Ordered => "Ordered",
            Transform::PositiveOrdered => "PositiveOrdered",
            Transform::CholeskyCorrelation => "CholeskyCorrelation",
        }
    }

    /// True for the transforms that act entry by entry.
    pub fn is_elementwise(&self) -> bool {
        !matches!(
            self,
            Transform::StickBreaking
                | Transform::Ordered
                | Transform::PositiveOrdered
                | Transform::CholeskyCorrelation
        )
    }

    /// The number of unconstrained coordinates of a constrained value with
    /// `constrained_len` entries (`K → K - 1` for stick breaking,
    /// `K² → K(K-1)/2` for a Cholesky factor); `None` if no such value
    /// exists (an empty simplex, a non-square factor).
    ///
    /// ```
    /// use iwhvi_core::transforms::Transform;
    /// assert_eq!(Transform::StickBreaking.unconstrained_len(4), Some(3));
    /// assert_eq!(Transform::CholeskyCorrelation.unconstrained_len(9), Some(3));
    /// assert_eq!(Transform::CholeskyCorrelation.unconstrained_len(8), None);
    /// ```
    pub fn unconstrained_len(&self, constrained_len: usize) -> Option<usize> {
        match self {
            Transform::StickBreaking => constrained_len.checked_sub(1),
            Transform::CholeskyCorrelation => {
                let k = constrained_len.isqrt();
                (k * k == constrained_len && k > 0).then(|| k * (k - 1) / 2)
            }
            _ => Some(constrained_len),
        }
    }

    /// The number of constrained entries for `unconstrained_len`
    /// coordinates; `None` if no value has that many.
    ///
    /// ```
    /// use iwhvi_core::transforms::Transform;
    /// assert_eq!(Transform::StickBreaking.constrained_len(3), Some(4));
    /// assert_eq!(Transform::CholeskyCorrelation.constrained_len(3), Some(9));
    /// ```
    pub fn constrained_len(&self, unconstrained_len: usize) -> Option<usize> {
        match self {
            Transform::StickBreaking => Some(unconstrained_len + 1),
            Transform::CholeskyCorrelation => correlation_order(unconstrained_len).map(|k| k * k),
            _ => Some(unconstrained_len),
        }
    }

    /// One entry of an elementwise transform: `(z, log|dz/du|)`.
    ///
    /// # Panics
    /// For the vector transforms.
    #[inline(always)]
    pub fn forward_scalar<T: Scalar>(&self, u: T) -> (T, T) {
        // The identity inline at every call (a per-point latent's, in a
        // minibatch step), the other transforms behind one call.
        match *self {
            Transform::Identity => (u, T::constant(0.0)),
            _ => self.forward_scalar_other(u),
        }
    }

    /// [`Transform::forward_scalar`] of a transform other than the identity.
    #[inline]
    fn forward_scalar_other<T: Scalar>(&self, u: T) -> (T, T) {
        match *self {
            Transform::Identity => (u, T::constant(0.0)),
            Transform::Exp => (u.exp(), u),
            Transform::Softplus => (u.softplus(), u.log_sigmoid()),
            Transform::LowerBound { low } => (u.exp() + low, u),
            Transform::UpperBound { high } => (-u.exp() + high, u),
            Transform::Interval { low, high } => {
                let width = high - low;
                (
                    u.sigmoid() * width + low,
                    u.log_sigmoid() + (-u).log_sigmoid() + width.ln(),
                )
            }
            Transform::Affine { offset, multiplier } => {
                (u * multiplier + offset, T::constant(multiplier.ln()))
            }
            Transform::StickBreaking
            | Transform::Ordered
            | Transform::PositiveOrdered
            | Transform::CholeskyCorrelation => {
                // Unreachable from safe use: callers branch on `is_elementwise` first
                // (the generated guides reject such a latent with `GuideError::Unsupported`).
                panic!("{} is not an elementwise transform", self.name())
            }
        }
    }

    /// `z = T(u)`, written into `z`; returns `log |det J_T(u)|`.
    ///
    /// # Panics
    /// If `z.len()` is not [`Transform::constrained_len`] of `u.len()`.
    pub fn forward<T: Scalar>(&self, u: &[T], z: &mut [T]) -> T {
        assert_eq!(
            Some(z.len()),
            self.constrained_len(u.len()),
            "{}: output length does not fit the input",
            self.name()
        );
        match self {
            Transform::StickBreaking => stick_breaking_forward(u, z),
            Transform::Ordered | Transform::PositiveOrdered => {
                let positive = *self == Transform::PositiveOrdered;
                let mut log_det = T::constant(0.0);
                for (k, &uk) in u.iter().enumerate() {
                    z[k] = if k == 0 && !positive {
                        uk
                    } else {
                        log_det += uk;
                        let previous = if k == 0 { T::constant(0.0) } else { z[k - 1] };
                        previous + uk.exp()
                    };
                }
                log_det
            }
            Transform::CholeskyCorrelation => cholesky_correlation_forward(u, z),
            _ => {
                let mut log_det = T::constant(0.0);
                for (zi, &ui) in z.iter_mut().zip(u) {
                    let (value, ld) = self.forward_scalar(ui);
                    *zi = value;
                    log_det += ld;
                }
                log_det
            }
        }
    }

    /// `u = T⁻¹(z)`, written into `u` (generic over the scalar, so that a
    /// constrained value carrying derivatives maps back with them).
    ///
    /// # Errors
    /// [`TransformError::OutsideSupport`] naming the entry that is not in
    /// the transform's image; [`TransformError::DimensionMismatch`].
    pub fn inverse<T: Scalar>(&self, z: &[T], u: &mut [T]) -> Result<(), TransformError> {
        if self.unconstrained_len(z.len()) != Some(u.len()) {
            return Err(TransformError::DimensionMismatch {
                transform: self.name(),
                constrained: z.len(),
                unconstrained: u.len(),
            });
        }
        let outside =
            |index: usize, value: f64, requirement: &'static str| TransformError::OutsideSupport {
                transform: self.name(),
                index,
                value,
                requirement,
            };
        match *self {
            Transform::StickBreaking => {
                let k_total = z.len();
                if let Some(i) = z.iter().position(|x| !(x.value() > 0.0 && x.value() < 1.0)) {
                    return Err(outside(i, z[i].value(), "entries in (0, 1)"));
                }
                let sum: f64 = z.iter().map(|x| x.value()).sum();
                if (sum - 1.0).abs() > crate::distributions::SIMPLEX_TOLERANCE {
                    return Err(outside(k_total - 1, sum, "entries summing to 1"));
                }
                let mut remaining = T::constant(1.0);
                for k in 0..k_total - 1 {
                    let fraction = z[k] / remaining;
                    u[k] = fraction.ln() - (-fraction).ln_1p() + ((k_total - 1 - k) as f64).ln();
                    remaining -= z[k];
                }
            }
            Transform::Ordered | Transform::PositiveOrdered => {
                let positive = *self == Transform::PositiveOrdered;
                for k in 0..z.len() {
                    u[k] = if k == 0 && !positive {
                        z[0]
                    } else {
                        let previous = if k == 0 { T::constant(0.0) } else { z[k - 1] };
                        let gap = z[k] - previous;
                        if !(gap.value() > 0.0) {
                            let requirement = if positive {
                                "positive, strictly increasing entries"
                            } else {
                                "strictly increasing entries"
                            };
                            return Err(outside(k, z[k].value(), requirement));
                        }
                        gap.ln()
                    };
                }
            }
            Transform::CholeskyCorrelation => {
                let k = z.len().isqrt();
                let mut index = 0;
                for i in 0..k {
                    let mut sum_sq = T::constant(0.0);
                    for j in 0..i {
                        let lij = z[i * k + j];
                        let partial = lij / (-sum_sq + 1.0).sqrt();
                        if !(partial.value().abs() < 1.0) {
                            return Err(outside(
                                i * k + j,
                                lij.value(),
                                "rows of a correlation Cholesky factor",
                            ));
                        }
                        // atanh p = ½ (ln(1 + p) - ln(1 - p))
                        u[index] = (partial.ln_1p() - (-partial).ln_1p()) * 0.5;
                        index += 1;
                        sum_sq += lij.square();
                    }
                    let diagonal = z[i * k + i].value();
                    if (diagonal - (1.0 - sum_sq.value()).sqrt()).abs() > 1e-9 {
                        return Err(outside(i * k + i, diagonal, "rows of unit norm"));
                    }
                }
            }
            _ => {
                for (i, (&zi, ui)) in z.iter().zip(u.iter_mut()).enumerate() {
                    *ui = self
                        .inverse_scalar(zi)
                        .ok_or_else(|| outside(i, zi.value(), self.requirement()))?;
                }
            }
        }
        Ok(())
    }

    /// The inverse of one entry of an elementwise transform, `None` when
    /// `z` is outside the image (and for the vector transforms).
    ///
    /// ```
    /// use iwhvi_core::transforms::Transform;
    /// assert_eq!(Transform::Exp.inverse_scalar(1.0), Some(0.0));
    /// assert_eq!(Transform::Exp.inverse_scalar(-1.0), None);
    /// ```
    pub fn inverse_scalar<T: Scalar>(&self, z: T) -> Option<T> {
        let v = z.value();
        let u = match *self {
            Transform::Identity => z,
            Transform::Exp if v > 0.0 => z.ln(),
            // u = ln(e^z - 1) = z + ln(1 - e^{-z})
            Transform::Softplus if v > 0.0 => z + (-(-z).exp()).ln_1p(),
            Transform::LowerBound { low } if v > low => (z - low).ln(),
            Transform::UpperBound { high } if v < high => (-z + high).ln(),
            Transform::Interval { low, high } if v > low && v < high => {
                let p = (z - low) / (high - low);
                p.ln() - (-p).ln_1p()
            }
            Transform::Affine { offset, multiplier } if multiplier > 0.0 => {
                (z - offset) / multiplier
            }
            _ => return None,
        };
        u.value().is_finite().then_some(u)
    }

    /// `log |det J_T(u)|` alone (for the vector transforms this runs the
    /// forward map into a scratch buffer).
    ///
    /// ```
    /// use iwhvi_core::transforms::Transform;
    /// assert_eq!(Transform::Exp.log_abs_det_jacobian(&[0.5, -1.0]), -0.5);
    /// ```
    pub fn log_abs_det_jacobian<T: Scalar>(&self, u: &[T]) -> T {
        if self.is_elementwise() {
            u.iter().map(|&ui| self.forward_scalar(ui).1).sum()
        } else {
            let len = self.constrained_len(u.len()).unwrap_or(0);
            let mut z = vec![T::constant(0.0); len];
            self.forward(u, &mut z)
        }
    }

    /// What the support of an elementwise transform requires, for messages.
    fn requirement(&self) -> &'static str {
        match self {
            Transform::Identity | Transform::Affine { .. } => "a finite real",
            Transform::Exp | Transform::Softplus => "positive",
            Transform::LowerBound { .. } => "above the lower bound",
            Transform::UpperBound { .. } => "below the upper bound",
            Transform::Interval { .. } => "strictly inside the interval",
            _ => "in the support",
        }
    }
}

/// Elementwise transforms that differ entry by entry (Stan's vector
/// bounds given per element, `vector<lower = L>[N]` with a data vector
/// `L`): `zₖ = Tₖ(uₖ)`, `log|det J| = Σₖ log|Tₖ'(uₖ)|`.
///
/// ```
/// use iwhvi_core::transforms::{forward_elementwise, Transform};
/// let each = [
///     Transform::LowerBound { low: 1.0 },
///     Transform::Affine { offset: 2.0, multiplier: 3.0 },
/// ];
/// let mut z = [0.0; 2];
/// let log_det = forward_elementwise(&each, &[0.0, 1.0], &mut z);
/// assert_eq!(z, [2.0, 5.0]);
/// assert!((log_det - 3f64.ln()).abs() < 1e-15);
/// ```
///
/// # Panics
/// If the lengths of `transforms`, `u` and `z` differ, or one transform is
/// not elementwise ([`Transform::is_elementwise`]).
pub fn forward_elementwise<T: Scalar>(transforms: &[Transform], u: &[T], z: &mut [T]) -> T {
    assert!(
        transforms.len() == u.len() && u.len() == z.len(),
        "forward_elementwise: {} transforms, {} inputs, {} outputs",
        transforms.len(),
        u.len(),
        z.len()
    );
    let mut log_det = T::constant(0.0);
    for ((t, zi), &ui) in transforms.iter().zip(z.iter_mut()).zip(u) {
        let (value, ld) = t.forward_scalar(ui);
        *zi = value;
        log_det += ld;
    }
    log_det
}

/// The inverse of [`forward_elementwise`]: `uₖ = Tₖ⁻¹(zₖ)`.
///
/// ```
/// use iwhvi_core::transforms::{inverse_elementwise, Transform};
/// let each = [Transform::LowerBound { low: 1.0 }, Transform::Identity];
/// let mut u = [0.0; 2];
/// inverse_elementwise(&each, &[2.0, -4.0], &mut u).unwrap();
/// assert_eq!(u, [0.0, -4.0]);
/// assert!(inverse_elementwise(&each, &[0.5, 0.0], &mut u).is_err());
/// ```
///
/// # Errors
/// [`TransformError::DimensionMismatch`] when the lengths differ (or a
/// transform is not elementwise); [`TransformError::OutsideSupport`] naming
/// the first entry outside its transform's image.
pub fn inverse_elementwise<T: Scalar>(
    transforms: &[Transform],
    z: &[T],
    u: &mut [T],
) -> Result<(), TransformError> {
    if transforms.len() != z.len()
        || z.len() != u.len()
        || !transforms.iter().all(Transform::is_elementwise)
    {
        return Err(TransformError::DimensionMismatch {
            transform: "elementwise",
            constrained: z.len(),
            unconstrained: u.len(),
        });
    }
    for (index, ((t, &zi), ui)) in transforms.iter().zip(z).zip(u.iter_mut()).enumerate() {
        *ui = t
            .inverse_scalar(zi)
            .ok_or_else(|| TransformError::OutsideSupport {
                transform: t.name(),
                index,
                value: zi.value(),
                requirement: t.requirement(),
            })?;
    }
    Ok(())
}

/// Stick breaking, `K - 1 → K`; returns `log|det J|` onto the first `K - 1`.
fn stick_breaking_forward<T: Scalar>(u: &[T], x: &mut [T]) -> T {
    let k_total = x.len();
    let mut remaining = T::constant(1.0);
    let mut log_det = T::constant(0.0);
    for (k, &uk) in u.iter().enumerate() {
        let v = uk - ((k_total - 1 - k) as f64).ln();
        let fraction = v.sigmoid();
        x[k] = remaining * fraction;
        log_det += v.log_sigmoid() + (-v).log_sigmoid() + remaining.ln();
        remaining -= x[k];
    }
    x[k_total - 1] = remaining;
    log_det
}

/// `K(K-1)/2 → K×K` correlation Cholesky factor; returns `log|det J|` onto
/// the strictly lower triangle.
fn cholesky_correlation_forward<T: Scalar>(u: &[T], l: &mut [T]) -> T {
    let k = l.len().isqrt();
    let mut log_det = T::constant(0.0);
    let mut index = 0;
    for i in 0..k {
        let mut sum_sq = T::constant(0.0);
        for j in 0..k {
            if j < i {
                let partial = u[index].tanh();
                index += 1;
                // d tanh = 1 - tanh²; dLᵢⱼ/dzᵢⱼ = √(1 - Σ_{m<j} Lᵢₘ²).
                let scale = (-sum_sq + 1.0).sqrt();
                log_det += (-partial.square()).ln_1p() + scale.ln();
                let lij = partial * scale;
                l[i * k + j] = lij;
                sum_sq += lij.square();
            } else if j == i {
                l[i * k + j] = (-sum_sq + 1.0).sqrt();
            } else {
                l[i * k + j] = T::constant(0.0);
            }
        }
    }
    log_det
}
