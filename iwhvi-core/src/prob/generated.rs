//! Runtime helpers for the code that `#[variational]` generates.
//!
//! The facade crate re-exports every item here from its hidden
//! `iwhvi::__private` module, the one path generated code names; the logic
//! lives here, beside the distributions and transforms it calls. Not a
//! stable API: the items may change with the macro.

use std::cell::Cell;

use crate::distributions::supports::SupportKind;
use crate::distributions::{
    Dirichlet, Distribution, DistributionError, MultivariateDistribution, MultivariateNormal,
    Reparameterized,
};
use crate::model::{InvalidTerm, Term};
use crate::scalar::Scalar;
use crate::transforms::Transform;

/// A reparameterized draw `g(θ, ε)` of a family whose constructor may
/// reject its parameters: NaN then, which the objective reports as a
/// non-finite value rather than panicking mid-step.
#[inline]
pub fn rsample_or_nan<T: Scalar, D: Reparameterized<T>>(
    d: Result<D, DistributionError>,
    noise: f64,
) -> T {
    match d {
        Ok(d) => d.rsample(noise),
        Err(_) => T::constant(f64::NAN),
    }
}

/// `*sum += term` for a sum of log-density terms, skipping the operation
/// when it cannot change the sum: a term that is a constant zero (the log
/// Jacobian of the identity) leaves a nonzero sum as it is, and a sum that
/// is still the constant zero it started from takes a nonzero term as it
/// is (`0 + t = t`). On the reverse tape neither records a node.
///
/// The same value bits as `*sum += term` (the skipped additions are exact);
/// the same derivatives on duals up to the sign of a zero tangent; on the
/// tape the same adjoints whenever `term` (for the second rule) reaches
/// later operations only through the sum, as a freshly computed density
/// does.
///
/// ```
/// use iwhvi_core::generated::accumulate;
/// use iwhvi_core::{Dual, Scalar};
///
/// let mut lp = Dual::<1>::constant(0.0);
/// let term = Dual::variable(-1.5, 0);
/// accumulate(&mut lp, term);
/// accumulate(&mut lp, Dual::constant(0.0));
/// assert_eq!((lp.value, lp.tangent()), (-1.5, [1.0]));
/// let mut plain = 0.25;
/// accumulate(&mut plain, 0.5);
/// assert_eq!(plain, 0.75);
/// ```
#[inline(always)]
pub fn accumulate<T: Scalar>(sum: &mut T, term: T) {
    if num_traits::Zero::is_zero(&term) && sum.value() != 0.0 {
        return;
    }
    if num_traits::Zero::is_zero(sum) && term.value() != 0.0 {
        *sum = term;
        return;
    }
    *sum += term;
}

/// `scratch[..len]`, the buffer grown to `len` entries (zeros) first when
/// it is shorter: a generated guide's free buffer
/// ([`Workspace::scratch`](crate::guide::Workspace)). On a workspace of
/// the guide's [`workspace_lens`](crate::guide::HierarchicalGuide::workspace_lens)
/// it is long enough and nothing allocates; a minibatch step's workspace
/// ([`group_workspace_lens`](crate::guide::HierarchicalGuide::group_workspace_lens))
/// leaves it empty, and the group method that uses it (if any) grows it
/// once.
///
/// ```
/// use iwhvi_core::generated::scratch;
/// let mut buffer: Vec<f64> = Vec::new();
/// scratch(&mut buffer, 3)[1] = 2.0;
/// assert_eq!(buffer, [0.0, 2.0, 0.0]);
/// // A shorter request neither shrinks nor clears it.
/// assert_eq!(scratch(&mut buffer, 2), &[0.0, 2.0]);
/// assert_eq!(buffer.len(), 3);
/// ```
#[inline]
pub fn scratch<T: Scalar>(scratch: &mut Vec<T>, len: usize) -> &mut [T] {
    if scratch.len() < len {
        scratch.resize(len, T::constant(0.0));
    }
    &mut scratch[..len]
}

/// A data element read in *raw* context (an index, a count, a length, a
/// bound, a condition) that has a value meaning "out of range": `NaN` for
/// reals, the type's maximum for integers (past the end of every vector,
/// so an index made from it reads NaN or no vector), `false` for booleans.
/// Generated code reads raw data through [`raw_at`] and computes with
/// [`raw_add`] … [`raw_rem`], so that a position the data do not have, or
/// integer arithmetic that overflows (`i - 1` at `i = 0`), gives this value
/// instead of panicking. The generated `new` rejects every read it can
/// evaluate before a fit (`DataError::OutOfRange`); this value is what a
/// read that `new` cannot evaluate (under an `if` branch) gives.
///
/// ```
/// use iwhvi_core::generated::{OutOfRange, raw_at, raw_sub};
/// assert_eq!(raw_at(&[3usize, 4], 1), 4);
/// assert_eq!(raw_at(&[3usize, 4], 2), usize::OUT_OF_RANGE);
/// assert!(raw_at(&[0.5f64], 7).is_nan());
/// assert_eq!(raw_sub(0usize, 1), usize::MAX);
/// ```
pub trait OutOfRange: Copy {
    /// The value of a read past the end.
    const OUT_OF_RANGE: Self;
    /// `a + b`, or [`Self::OUT_OF_RANGE`] when it overflows.
    fn raw_add(self, b: Self) -> Self;
    /// `a − b`, or [`Self::OUT_OF_RANGE`] when it overflows.
    fn raw_sub(self, b: Self) -> Self;
    /// `a · b`, or [`Self::OUT_OF_RANGE`] when it overflows.
    fn raw_mul(self, b: Self) -> Self;
    /// `a / b`, or [`Self::OUT_OF_RANGE`] when `b = 0` or it overflows.
    fn raw_div(self, b: Self) -> Self;
    /// `a % b`, or [`Self::OUT_OF_RANGE`] when `b = 0` or it overflows.
    fn raw_rem(self, b: Self) -> Self;
}

macro_rules! out_of_range_int {
    ($($t:ty),*) => {$(
        impl OutOfRange for $t {
            const OUT_OF_RANGE: Self = <$t>::MAX;
            #[inline]
            fn raw_add(self, b: Self) -> Self { self.checked_add(b).unwrap_or(Self::OUT_OF_RANGE) }
            #[inline]
            fn raw_sub(self, b: Self) -> Self { self.checked_sub(b).unwrap_or(Self::OUT_OF_RANGE) }
            #[inline]
            fn raw_mul(self, b: Self) -> Self { self.checked_mul(b).unwrap_or(Self::OUT_OF_RANGE) }
            #[inline]
            fn raw_div(self, b: Self) -> Self { self.checked_div(b).unwrap_or(Self::OUT_OF_RANGE) }
            #[inline]
            fn raw_rem(self, b: Self) -> Self { self.checked_rem(b).unwrap_or(Self::OUT_OF_RANGE) }
        }
    )*};
}
out_of_range_int!(usize, u64, u32, u16, u8, isize, i64, i32, i16, i8);

macro_rules! out_of_range_float {
    ($($t:ty),*) => {$(
        impl OutOfRange for $t {
            const OUT_OF_RANGE: Self = <$t>::NAN;
            #[inline]
            fn raw_add(self, b: Self) -> Self { self + b }
            #[inline]
            fn raw_sub(self, b: Self) -> Self { self - b }
            #[inline]
            fn raw_mul(self, b: Self) -> Self { self * b }
            #[inline]
            fn raw_div(self, b: Self) -> Self { self / b }
            #[inline]
            fn raw_rem(self, b: Self) -> Self { self % b }
        }
    )*};
}
out_of_range_float!(f64, f32);

impl OutOfRange for bool {
    const OUT_OF_RANGE: Self = false;
    // Arithmetic on booleans does not type-check in an attribute (`bool`
    // has no `+`); these exist for the trait's sake and are never called
    // by generated code.
    fn raw_add(self, _: Self) -> Self {
        false
    }
    fn raw_sub(self, _: Self) -> Self {
        false
    }
    fn raw_mul(self, _: Self) -> Self {
        false
    }
    fn raw_div(self, _: Self) -> Self {
        false
    }
    fn raw_rem(self, _: Self) -> Self {
        false
    }
}

/// A position in raw context as a `usize`: the value itself when it is
/// one, `usize::MAX` (past every end) when it is negative, NaN or too
/// large; a real is truncated toward zero. Generated code writes every
/// index through it (no `as usize` cast, which would wrap a negative
/// integer and take a NaN to 0).
///
/// ```
/// use iwhvi_core::generated::as_index;
/// assert_eq!(as_index(3usize), 3);
/// assert_eq!(as_index(-1i64), usize::MAX);
/// assert_eq!(as_index(f64::NAN), usize::MAX);
/// assert_eq!(as_index(2.0f64), 2);
/// ```
#[inline]
pub fn as_index<T: AsIndex>(position: T) -> usize {
    position.as_index()
}

/// A type whose values can be positions ([`as_index`]).
pub trait AsIndex: Copy {
    /// The position, or `usize::MAX` when it is none.
    fn as_index(self) -> usize;
}

macro_rules! as_index_int {
    ($($t:ty),*) => {$(
        impl AsIndex for $t {
            #[inline]
            fn as_index(self) -> usize {
                usize::try_from(self).unwrap_or(usize::MAX)
            }
        }
    )*};
}
as_index_int!(usize, u64, u32, u16, u8, isize, i64, i32, i16, i8);

impl AsIndex for f64 {
    #[inline]
    fn as_index(self) -> usize {
        if self >= 0.0 && self < usize::MAX as f64 {
            // Truncation toward zero, in range: the cast is exact there.
            self as usize
        } else {
            usize::MAX
        }
    }
}

/// `values[i]`, or [`OutOfRange::OUT_OF_RANGE`] past the end (see
/// [`OutOfRange`]).
#[inline]
pub fn raw_at<T: OutOfRange>(values: &[T], i: usize) -> T {
    values.get(i).copied().unwrap_or(T::OUT_OF_RANGE)
}

/// `m[(row, column)]` of a data matrix, or NaN past its rows or columns.
///
/// ```
/// use iwhvi_core::generated::raw_at_matrix;
/// let m = nalgebra::DMatrix::from_row_slice(1, 2, &[1.0, 2.0]);
/// assert_eq!(raw_at_matrix(&m, (0, 1)), 2.0);
/// assert!(raw_at_matrix(&m, (1, 0)).is_nan());
/// ```
#[inline]
pub fn raw_at_matrix(m: &nalgebra::DMatrix<f64>, (row, column): (usize, usize)) -> f64 {
    m.get((row, column)).copied().unwrap_or(f64::NAN)
}

/// [`raw_at`] in the condition of an `if`: past the end it also sets
/// `out_of_range`, which makes the `if`'s value NaN (the generated code
/// checks it before choosing a branch), so that a condition never reads
/// `false` or the integer maximum silently.
///
/// ```
/// use iwhvi_core::generated::raw_at_flagged;
/// let flag = std::cell::Cell::new(false);
/// assert!(raw_at_flagged(&[true, false], 0, &flag) && !flag.get());
/// assert!(!raw_at_flagged(&[true, false], 2, &flag) && flag.get());
/// ```
#[inline]
pub fn raw_at_flagged<T: OutOfRange>(values: &[T], i: usize, out_of_range: &Cell<bool>) -> T {
    values.get(i).copied().unwrap_or_else(|| {
        out_of_range.set(true);
        T::OUT_OF_RANGE
    })
}

/// [`raw_at_matrix`] in the condition of an `if` (see [`raw_at_flagged`]).
///
/// ```
/// use iwhvi_core::generated::raw_at_matrix_flagged;
/// let m = nalgebra::DMatrix::from_row_slice(1, 2, &[1.0, 2.0]);
/// let flag = std::cell::Cell::new(false);
/// assert!(raw_at_matrix_flagged(&m, (1, 0), &flag).is_nan() && flag.get());
/// ```
#[inline]
pub fn raw_at_matrix_flagged(
    m: &nalgebra::DMatrix<f64>,
    position: (usize, usize),
    out_of_range: &Cell<bool>,
) -> f64 {
    m.get(position).copied().unwrap_or_else(|| {
        out_of_range.set(true);
        f64::NAN
    })
}

/// `a + b` in raw context ([`OutOfRange::raw_add`]).
#[inline]
pub fn raw_add<T: OutOfRange>(a: T, b: T) -> T {
    a.raw_add(b)
}

/// `a − b` in raw context ([`OutOfRange::raw_sub`]).
#[inline]
pub fn raw_sub<T: OutOfRange>(a: T, b: T) -> T {
    a.raw_sub(b)
}

/// `a · b` in raw context ([`OutOfRange::raw_mul`]).
#[inline]
pub fn raw_mul<T: OutOfRange>(a: T, b: T) -> T {
    a.raw_mul(b)
}

/// `a / b` in raw context ([`OutOfRange::raw_div`]).
#[inline]
pub fn raw_div<T: OutOfRange>(a: T, b: T) -> T {
    a.raw_div(b)
}

/// `a % b` in raw context ([`OutOfRange::raw_rem`]).
#[inline]
pub fn raw_rem<T: OutOfRange>(a: T, b: T) -> T {
    a.raw_rem(b)
}

/// An exact Student-t variate with `ν = squares.len()` degrees of freedom
/// from `1 + ν` standard normals: `t = ε₀ / √(Σⱼ εⱼ² / ν)` (ε₀ the
/// `numerator`), the draw of `SemiImplicit`'s Student-t conditionals and of
/// a struct guide's `StudentT` conditional, so both give the same bits on
/// the same noise. An all-zero chi-square part (the zero noise of a fit's
/// starting point) gives `t = ε₀`.
///
/// ```
/// use iwhvi_core::generated::student_t_noise;
/// assert_eq!(student_t_noise(1.5, &[0.0, 0.0]), 1.5);
/// // ν = 2, Σ ε² / ν = (1 + 4) / 2.
/// assert!((student_t_noise(1.0, &[1.0, 2.0]) - 1.0 / 2.5f64.sqrt()).abs() < 1e-15);
/// ```
#[inline]
pub fn student_t_noise(numerator: f64, squares: &[f64]) -> f64 {
    let chi_square: f64 = squares.iter().map(|e| e * e).sum();
    if chi_square > 0.0 {
        numerator / (chi_square / squares.len() as f64).sqrt()
    } else {
        numerator
    }
}

/// The unconstrained coordinate `u = T⁻¹(z)` of one scalar latent;
/// NaN when `z` lies outside the transform's support.
#[inline]
pub fn inverse_scalar<T: Scalar>(t: Transform, z: T) -> T {
    t.inverse_scalar(z).unwrap_or(T::constant(f64::NAN))
}

/// `z = T(u)` for the elementwise blocks `(offsets[i], lens[i],
/// transforms[i])` of `u`, written into `z`; returns the summed
/// `log|dz/du|`. A macro guide's densities start from it.
#[inline]
pub fn constrain_elementwise<T: Scalar>(
    offsets: &[usize],
    lens: &[usize],
    transforms: &[Transform],
    u: &[T],
    z: &mut [T],
) -> T {
    let mut log_jacobian = T::constant(0.0);
    for ((&off, &n), t) in offsets.iter().zip(lens).zip(transforms) {
        for k in off..off + n {
            let (zk, lj) = t.forward_scalar(u[k]);
            z[k] = zk;
            log_jacobian += lj;
        }
    }
    log_jacobian
}

/// `z = T(u)` for the blocks of a macro guide: block `i` of `u` at
/// `offsets[i]` with `lens[i]` coordinates, its constrained value written
/// at `z_offsets[i]` (a simplex has one entry more than its coordinates).
/// Returns `Σ log|dz/du|` over the blocks with `jacobian[i]` (those whose
/// conditional is over the constrained latent; an `#[unconstrained]` one
/// has its density in `u` already). Elementwise blocks add their entries'
/// terms one by one, in order, as [`constrain_elementwise`] does.
#[inline]
pub fn constrain_blocks<T: Scalar>(
    (offsets, lens, z_offsets): (&[usize], &[usize], &[usize]),
    transforms: &[Transform],
    jacobian: &[bool],
    u: &[T],
    z: &mut [T],
) -> T {
    let mut log_jacobian = T::constant(0.0);
    for (i, t) in transforms.iter().enumerate() {
        let (off, n, zoff) = (offsets[i], lens[i], z_offsets[i]);
        if t.is_elementwise() {
            for k in 0..n {
                let (zk, lj) = t.forward_scalar(u[off + k]);
                z[zoff + k] = zk;
                if jacobian[i] {
                    log_jacobian += lj;
                }
            }
        } else {
            let zn = t.constrained_len(n).unwrap_or(n);
            let lj = t.forward(&u[off..off + n], &mut z[zoff..zoff + zn]);
            if jacobian[i] {
                log_jacobian += lj;
            }
        }
    }
    log_jacobian
}

/// `sd · ε`, `ε ~ N(0, 1)`: the `normal(sd)` parameter initialiser.
pub fn normal_init<R: rand::Rng + ?Sized>(rng: &mut R, sd: f64) -> f64 {
    let e: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, rng);
    sd * e
}

/// The default transform of a distribution's support, evaluated at
/// compile time for user-defined families (`const { … }`): a support
/// without one stops the build here.
pub const fn default_transform<D: Distribution<f64>>() -> Transform {
    match <D::Support as SupportKind>::DEFAULT_TRANSFORM {
        Some(t) => t,
        None => panic!(
            "this user-defined distribution's support has no default transform: give the latent `lower`/`upper` bounds"
        ),
    }
}

/// A draw of a multivariate family as a `Vec<f64>`.
pub trait DrawVector {
    /// One draw.
    fn draw_vector<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Vec<f64>;
}

impl DrawVector for Dirichlet<f64> {
    fn draw_vector<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Vec<f64> {
        rand::distr::Distribution::<Vec<f64>>::sample(self, rng)
    }
}

impl DrawVector for crate::distributions::LkjCholesky<f64> {
    fn draw_vector<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Vec<f64> {
        rand::distr::Distribution::<Vec<f64>>::sample(self, rng)
    }
}

impl DrawVector for MultivariateNormal<f64> {
    fn draw_vector<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Vec<f64> {
        rand::distr::Distribution::<nalgebra::DVector<f64>>::sample(self, rng)
            .as_slice()
            .to_vec()
    }
}

/// The log joint as the scalar loops compute it, one term per element of
/// every observed vector: the reference that `#[variational]` keeps beside
/// `Model::log_joint` (whose plates run as kernels, one node each), so
/// that tests can compare the two on any model.
pub trait ReferenceLogJoint {
    /// `log p(x, z(u)) + log|dz/du|` by the scalar loops.
    fn log_joint_reference<T: Scalar>(&self, u: &[T]) -> T;
}

/// One term of the log joint in `f64`, checked: `Ok(log p(x))` when it is
/// finite, else the term named, with the constructor's error when it
/// rejects a parameter (what `Model::first_invalid_term` reports).
///
/// ```
/// use iwhvi_core::distributions::Normal;
/// use iwhvi_core::generated::checked_log_prob;
/// use iwhvi_core::model::Term;
/// let term = || Term::Factor { field: "f", element: None };
/// assert!(checked_log_prob(Normal::new(0.0, 1.0), 0.0, term).is_ok());
/// let invalid = checked_log_prob(Normal::new(0.0, -1.0), 0.0, term).unwrap_err();
/// assert!(invalid.cause.is_some() && invalid.value == f64::NEG_INFINITY);
/// ```
///
/// # Errors
/// The term, when `log p(x)` is `−∞` or NaN or the constructor fails.
pub fn checked_log_prob<D: Distribution<f64>>(
    d: Result<D, DistributionError>,
    x: D::Value,
    term: impl FnOnce() -> Term,
) -> Result<f64, InvalidTerm> {
    match d {
        Ok(d) => checked_value(d.log_prob(x), term),
        Err(cause) => Err(InvalidTerm {
            term: term(),
            value: f64::NEG_INFINITY,
            cause: Some(cause),
        }),
    }
}

/// [`checked_log_prob`] for a distribution over vectors (a value of the
/// wrong length is `−∞`).
///
/// ```
/// use iwhvi_core::distributions::Dirichlet;
/// use iwhvi_core::generated::checked_log_prob_multi;
/// use iwhvi_core::model::Term;
/// let term = || Term::Prior { latent: "w", element: None };
/// assert!(checked_log_prob_multi(Dirichlet::new(vec![1.0, 1.0]), &[0.5, 0.5], term).is_ok());
/// assert!(checked_log_prob_multi(Dirichlet::new(vec![1.0, 0.0]), &[0.5, 0.5], term).is_err());
/// ```
///
/// # Errors
/// As [`checked_log_prob`].
pub fn checked_log_prob_multi<D: MultivariateDistribution<f64>>(
    d: Result<D, DistributionError>,
    x: &[f64],
    term: impl FnOnce() -> Term,
) -> Result<f64, InvalidTerm> {
    match d {
        Ok(d) if d.dim() == x.len() => checked_value(d.log_prob(x), term),
        Ok(_) => checked_value(f64::NEG_INFINITY, term),
        Err(cause) => Err(InvalidTerm {
            term: term(),
            value: f64::NEG_INFINITY,
            cause: Some(cause),
        }),
    }
}

/// A term's value, checked: `Ok` when finite.
///
/// ```
/// use iwhvi_core::generated::checked_value;
/// use iwhvi_core::model::Term;
/// let term = || Term::Transform { latent: "tau" };
/// assert_eq!(checked_value(-1.5, term), Ok(-1.5));
/// assert!(checked_value(f64::NAN, term).is_err());
/// ```
///
/// # Errors
/// The term, when `value` is not finite.
pub fn checked_value(value: f64, term: impl FnOnce() -> Term) -> Result<f64, InvalidTerm> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(InvalidTerm {
            term: term(),
            value,
            cause: None,
        })
    }
}

/// What a saved `#[variational(guide = …)]` guide holds: the layout of the
/// model instance it was built for, its one piece of configuration (the
/// guide's declaration is its code). Every offset and length the guide
/// keeps follows from it, so loading rebuilds the guide through the same
/// code as its `new`, which rejects a layout that lacks a latent the guide
/// targets or has one of another support; a layout's own sizes are checked
/// as [`Layout`](crate::model::Layout) loads.
///
/// ```
/// use iwhvi_core::generated::SavedStructGuide;
/// use iwhvi_core::model::{LatentSpec, Layout};
/// use iwhvi_core::transforms::Transform;
///
/// let saved = SavedStructGuide {
///     layout: Layout::new(vec![LatentSpec::scalar("mu", Transform::Identity)]),
/// };
/// let json = serde_json::to_string(&saved).unwrap();
/// assert!(json.starts_with("{\"layout\":"));
/// let back: SavedStructGuide = serde_json::from_str(&json).unwrap();
/// assert_eq!(back.layout, saved.layout);
/// // Derived state is not part of the format: an extra field is an error.
/// let edited = json.replacen("{\"layout\":", "{\"offsets\":[0],\"layout\":", 1);
/// assert!(serde_json::from_str::<SavedStructGuide>(&edited).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedStructGuide {
    /// The model instance's latent layout.
    pub layout: crate::model::Layout,
}

/// A per-point mixing variable `psi` as one point's group sees it
/// (`#[mixing(len = …, for j)]` in a guide struct): the group's density
/// methods receive `ψ_j` alone, and the conditional's `psi[j]` reads it
/// through [`PointView::get`], which answers at position `j` only (`None`,
/// read as NaN by generated code, elsewhere; the guide macro only lets a
/// conditional read `psi[j]` at its own `j`).
///
/// ```
/// use iwhvi_core::generated::PointView;
/// let psi = PointView::new(0.5, 3);
/// assert_eq!(psi.get(3), Some(&0.5));
/// assert_eq!(psi.get(2), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PointView<T> {
    value: T,
    at: usize,
}

impl<T> PointView<T> {
    /// `ψ_j = value` at point `at`.
    pub fn new(value: T, at: usize) -> Self {
        Self { value, at }
    }

    /// `Some(&ψ_j)` at `i = j`, `None` elsewhere.
    pub fn get(&self, i: usize) -> Option<&T> {
        (i == self.at).then_some(&self.value)
    }
}

/// A local latent on a minibatch, as `Model::log_joint_points` (generated
/// by `#[variational]`) holds it: its values at the batch's points only,
/// `values[pos]` for plate element `indices[pos]`, instead of a vector
/// over the whole plate. A term of point `pos` reads it through
/// [`BatchLocal::at`] (a [`PointView`] answering `z[i]` at that point's
/// own element `i`), a plate of factors over the batch through
/// [`gather_rows`] (the values themselves when the rows are the batch's).
///
/// ```
/// use iwhvi_core::generated::{BatchLocal, gather_rows};
/// // z at elements 4 and 1 of the plate (a batch of two).
/// let indices = [4, 1];
/// let z = BatchLocal::new(vec![0.5, -2.0], &indices);
/// assert_eq!(z.at(1).get(1), Some(&-2.0));
/// assert_eq!(z.at(1).get(4), None);
/// assert_eq!(&*gather_rows(&z, &indices), &[0.5, -2.0]);
/// // Other rows are looked up (NaN where the batch has no value).
/// assert_eq!(gather_rows(&z, &[1])[0], -2.0);
/// assert!(gather_rows(&z, &[0])[0].is_nan());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct BatchLocal<'b, T> {
    values: Vec<T>,
    indices: &'b [usize],
}

impl<'b, T: Copy> BatchLocal<'b, T> {
    /// The values `values[pos]` of the batch's elements `indices[pos]`.
    ///
    /// # Panics
    /// If the lengths differ (a bug of the generated code).
    pub fn new(values: Vec<T>, indices: &'b [usize]) -> Self {
        assert_eq!(values.len(), indices.len(), "one value per batch point");
        Self { values, indices }
    }

    /// Point `pos`'s value as its terms read it: `z[i]` at its element
    /// `i = indices[pos]` alone.
    ///
    /// # Panics
    /// If `pos` is not a position of the batch.
    #[inline(always)]
    pub fn at(&self, pos: usize) -> PointView<T> {
        PointView::new(self.values[pos], self.indices[pos])
    }

    /// The values, in the batch's order.
    pub fn values(&self) -> &[T] {
        &self.values
    }
}

/// A vector gathered over a batch's rows (`z[rows]` in a plate of factors
/// over the batch, `#[factor(…, for rows in batch)]`): `rows[k]`'s entry,
/// NaN (`T::constant(f64::NAN)`) for a row the vector does not have.
pub trait GatherRows<T: Clone> {
    /// `(z[rows[0]], z[rows[1]], …)`.
    fn gather_rows(&self, rows: &[usize]) -> std::borrow::Cow<'_, [T]>;
}

/// `rows[k]`'s entry as `entry` finds it, NaN where it finds none.
fn gather_or_nan<T: Scalar>(
    rows: &[usize],
    entry: impl Fn(usize) -> Option<T>,
) -> std::borrow::Cow<'static, [T]> {
    let nan = || T::constant(f64::NAN);
    std::borrow::Cow::Owned(rows.iter().map(|&r| entry(r).unwrap_or_else(nan)).collect())
}

impl<T: Scalar> GatherRows<T> for [T] {
    fn gather_rows(&self, rows: &[usize]) -> std::borrow::Cow<'_, [T]> {
        gather_or_nan(rows, |r| self.get(r).copied())
    }
}

impl<T: Scalar> GatherRows<T> for Vec<T> {
    fn gather_rows(&self, rows: &[usize]) -> std::borrow::Cow<'_, [T]> {
        self.as_slice().gather_rows(rows)
    }
}

impl<T: Scalar> GatherRows<T> for BatchLocal<'_, T> {
    /// The values as they are (no copy) when `rows` is the batch's own
    /// indices (the generated code's case: the same slice, recognised
    /// without comparing it); otherwise each row looked up among them,
    /// `O(rows · batch)`.
    fn gather_rows(&self, rows: &[usize]) -> std::borrow::Cow<'_, [T]> {
        if std::ptr::eq(rows, self.indices) || rows == self.indices {
            return std::borrow::Cow::Borrowed(&self.values);
        }
        gather_or_nan(rows, |r| {
            let pos = self.indices.iter().position(|&i| i == r)?;
            Some(self.values[pos])
        })
    }
}

/// [`GatherRows::gather_rows`] of `vector` (the path generated code
/// calls).
#[inline]
pub fn gather_rows<'v, T: Clone, V: GatherRows<T> + ?Sized>(
    vector: &'v V,
    rows: &[usize],
) -> std::borrow::Cow<'v, [T]> {
    vector.gather_rows(rows)
}

/// The per-point mixing variables of a guide with several of them
/// (`#[mixing(len = z, for j)] psi0`, `… psi1`, read as `psi0[j]`,
/// `psi1[j]`) as the whole-`ψ` methods see one of them: the guide lays
/// the per-point coordinates out point after point (`ψ_0 = (psi0_0,
/// psi1_0)`, then `ψ_1`, …, so that each point's group is one contiguous
/// range), and variable `q`'s coordinate `j` sits at
/// `start + j · stride`.
///
/// ```
/// use iwhvi_core::generated::Strided;
/// // Two variables over three points: psi0 = (1, 3, 5), psi1 = (2, 4, 6).
/// let psi = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let psi1 = Strided::new(&psi, 1, 2, 3);
/// assert_eq!((psi1[0], psi1.get(2)), (2.0, Some(&6.0)));
/// assert_eq!((psi1.len(), psi1.get(3)), (3, None));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Strided<'a, T> {
    values: &'a [T],
    start: usize,
    stride: usize,
    len: usize,
}

impl<'a, T> Strided<'a, T> {
    /// Coordinates `values[start + j · stride]` for `j < len`.
    pub fn new(values: &'a [T], start: usize, stride: usize, len: usize) -> Self {
        Self {
            values,
            start,
            stride,
            len,
        }
    }

    /// The number of coordinates (points).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `Some(&ψ_j)` for `j < len`, else `None`.
    pub fn get(&self, j: usize) -> Option<&'a T> {
        if j < self.len {
            self.values.get(self.start + j * self.stride)
        } else {
            None
        }
    }
}

impl<T> std::ops::Index<usize> for Strided<'_, T> {
    type Output = T;

    /// `ψ_j`.
    ///
    /// # Panics
    /// Past the last point (as a slice's index).
    fn index(&self, j: usize) -> &T {
        assert!(j < self.len, "point {j} of {}", self.len);
        &self.values[self.start + j * self.stride]
    }
}

/// A `Normal(loc, scale)` prior whose parameters are numbers (`Normal(0.0,
/// 1.0)`, as written in a `#[latent(…)]`), evaluated at a batch's values
/// of a local latent as one vector operation (`Model::log_joint_points`,
/// generated by `#[variational]`): `log N(x_j; loc, scale²) = −z_j²/2 −
/// ln scale − ½ ln 2π` with `z_j = (x_j − loc) / scale`, one output per
/// value, instead of two scalar tape nodes per value
/// ([`Normal::log_prob`](crate::distributions::Normal)'s fused pair).
///
/// The values are [`Normal`](crate::distributions::Normal)'s `log_prob`
/// bits, and so are the derivatives on every engine: the tape receives,
/// for each value, the adjoint `(ȳ_j · −z_j) · (1 / scale)` that the
/// scalar pair hands it (the product at the first node, then the second
/// node's edge, skipped where the scalar sweep skips a zero adjoint), and
/// forward duals the tangent `−z_j · (ẋ_j / scale)` as the pair forms it.
///
/// ```
/// use iwhvi_core::distributions::{Distribution, Normal};
/// use iwhvi_core::generated::ConstantNormal;
/// let prior = ConstantNormal::new(0.5, 2.0).unwrap();
/// let mut lp = Vec::new();
/// prior.log_probs(&[1.0, -3.0], &mut lp);
/// let scalar = Normal::new(0.5, 2.0).unwrap();
/// assert_eq!(lp, vec![scalar.log_prob(1.0), scalar.log_prob(-3.0)]);
/// // A scale Normal::new refuses is refused here too (the scalar path then
/// // gives its −∞).
/// assert!(ConstantNormal::new(0.0, -1.0).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConstantNormal {
    loc: f64,
    scale: f64,
}

impl ConstantNormal {
    /// `Normal(loc, scale)`, or [`Normal::new`](crate::distributions::Normal::new)'s
    /// error naming the parameter it refuses (a non-finite `loc`, a
    /// `scale` that is not positive and finite).
    ///
    /// ```
    /// use iwhvi_core::generated::ConstantNormal;
    /// assert!(ConstantNormal::new(1.0, 0.5).is_ok());
    /// let refused = ConstantNormal::new(0.0, 0.0).unwrap_err();
    /// assert!(refused.to_string().contains("scale"));
    /// ```
    pub fn new(loc: f64, scale: f64) -> Result<Self, crate::distributions::DistributionError> {
        crate::distributions::Normal::new(loc, scale)?;
        Ok(Self { loc, scale })
    }

    /// `out` cleared, then one term per value `x_j`:
    /// `log N(x_j; loc, scale²) = −z_j²/2 − ln scale − ½ ln 2π`, with
    /// `z_j = (x_j − loc) / scale`, as one vector operation.
    ///
    /// ```
    /// use iwhvi_core::generated::ConstantNormal;
    /// let mut lp = Vec::new();
    /// ConstantNormal::new(0.0, 1.0).unwrap().log_probs(&[0.0, 2.0], &mut lp);
    /// let half_ln_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    /// assert!((lp[0] + half_ln_2pi).abs() < 1e-15);
    /// assert!((lp[1] + 2.0 + half_ln_2pi).abs() < 1e-15);
    /// ```
    pub fn log_probs<T: Scalar>(&self, x: &[T], out: &mut Vec<T>) {
        let op = ConstantNormalOp {
            prior: *self,
            len: x.len(),
        };
        T::vector_op(op, &[x], out);
    }

    /// The standardised value `z = (x − loc) / scale`.
    #[inline(always)]
    fn standard(&self, x: f64) -> f64 {
        (x - self.loc) / self.scale
    }
}

/// [`ConstantNormal::log_probs`] as a vector function of its one block.
struct ConstantNormalOp {
    prior: ConstantNormal,
    len: usize,
}

impl crate::vector::VectorFunction for ConstantNormalOp {
    fn outputs(&self) -> usize {
        self.len
    }

    fn eval(&mut self, x: &[&[f64]], y: &mut [f64]) {
        let scale = self.prior.scale;
        for (y, &x) in y.iter_mut().zip(x[0]) {
            *y = crate::distributions::standard_log_density(self.prior.standard(x), scale);
        }
    }

    fn writes_every_output(&self) -> bool {
        true
    }

    fn vjp(&self, x: &[&[f64]], _: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
        let Some(xbar) = xbar[0].as_deref_mut() else {
            return;
        };
        // The tape's edge from the standardised node to `x`: `1 / scale`
        // (`1` itself for a unit scale, as the tape stores it).
        let edge = if self.prior.scale == 1.0 {
            1.0
        } else {
            1.0 / self.prior.scale
        };
        for ((slot, &a), &x) in xbar.iter_mut().zip(ybar).zip(x[0]) {
            if a == 0.0 {
                continue;
            }
            let standard = a * -self.prior.standard(x);
            if standard != 0.0 {
                *slot += standard * edge;
            }
        }
    }

    fn jvp(&self, x: &[&[f64]], _: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]) {
        let scale = self.prior.scale;
        let Some(xdot) = xdot[0] else {
            ydot.fill(0.0);
            return;
        };
        for ((y, &x), &d) in ydot.iter_mut().zip(x[0]).zip(xdot) {
            // The pair's tangents: `(0 + 1 · ẋ) / scale` (by one
            // reciprocal, none for a unit scale), then `0 + (−z) · ż`.
            let sum = 0.0 + 1.0 * d;
            let standard = if scale == 1.0 {
                sum
            } else {
                sum * (1.0 / scale)
            };
            *y = 0.0 + -self.prior.standard(x) * standard;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dual;
    use crate::gradient::Differentiable;
    use crate::tape::TapeEngine;

    /// `Σ_k c_k · ln(1 + x_k²)` over fresh terms, with a constant zero
    /// (an identity's log Jacobian) after each, summed by `accumulate` or
    /// by `+=`, scaled as a bound scales its points.
    struct Sum(bool);

    impl Differentiable for Sum {
        fn eval<T: Scalar>(&self, x: &[T]) -> T {
            let mut sum = T::constant(0.0);
            for (k, &xk) in x.iter().enumerate() {
                let term = (xk * xk).ln_1p() * (k as f64 + 0.5);
                let zero = T::constant(0.0);
                if self.0 {
                    accumulate(&mut sum, zero);
                    accumulate(&mut sum, term);
                    accumulate(&mut sum, zero);
                } else {
                    sum += zero;
                    sum += term;
                    sum += zero;
                }
            }
            sum * 15.0 - x[0]
        }
    }

    #[test]
    fn accumulate_keeps_the_bits_of_the_sum() {
        let x = [0.3, -1.7, 2.9, 1e-3, -0.25];
        let (va, ga) = TapeEngine.value_and_gradient(&Sum(true), &x);
        let (vb, gb) = TapeEngine.value_and_gradient(&Sum(false), &x);
        assert_eq!(va.to_bits(), vb.to_bits());
        for (a, b) in ga.iter().zip(&gb) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        let duals: [Dual<5>; 5] = std::array::from_fn(|i| Dual::variable(x[i], i));
        let (a, b) = (Sum(true).eval(&duals), Sum(false).eval(&duals));
        assert_eq!(a.value.to_bits(), b.value.to_bits());
        assert_eq!(a.tangent(), b.tangent());
        assert_eq!(Sum(true).eval(&x).to_bits(), Sum(false).eval(&x).to_bits());
    }

    #[test]
    fn accumulate_records_no_node_for_a_zero_or_a_first_term() {
        // `0 + t` and `s + 0` cost nothing: the sum is the term's own node.
        struct First;
        impl Differentiable for First {
            fn eval<T: Scalar>(&self, x: &[T]) -> T {
                let term = x[0] * x[1];
                let mut sum = T::constant(0.0);
                accumulate(&mut sum, term);
                accumulate(&mut sum, T::constant(0.0));
                assert_eq!(sum.value().to_bits(), term.value().to_bits());
                sum
            }
        }
        let (v, g) = TapeEngine.value_and_gradient(&First, &[3.0, -2.0]);
        assert_eq!((v, g), (-6.0, vec![-2.0, 3.0]));
        // The two inputs and the product.
        assert_eq!(crate::tape::recorded(), (3, 2));
    }

    /// `Σ_j w_j lp_j + Σ_j x_j³` with `lp_j` the prior terms of a batch
    /// (by `ConstantNormal` or by `Normal::log_prob`, point by point),
    /// each summed with another term as a point's sum is, `x` read again
    /// after them (adjoints reaching `x` from several nodes).
    struct Priors {
        loc: f64,
        scale: f64,
        vector: bool,
    }

    impl Differentiable for Priors {
        fn eval<T: Scalar>(&self, x: &[T]) -> T {
            let mut terms = Vec::new();
            if self.vector {
                ConstantNormal::new(self.loc, self.scale)
                    .unwrap()
                    .log_probs(x, &mut terms);
            } else {
                let prior = crate::distributions::Normal::new(
                    T::constant(self.loc),
                    T::constant(self.scale),
                )
                .unwrap();
                terms.extend(x.iter().map(|&v| prior.log_prob(v)));
            }
            let mut total = T::constant(0.0);
            for (j, (&t, &v)) in terms.iter().zip(x).enumerate() {
                let mut point = t;
                accumulate(&mut point, v.sin());
                accumulate(&mut total, point * (j as f64 + 0.5));
            }
            for &v in x {
                total += v * v * v;
            }
            total
        }
    }

    #[test]
    fn constant_normal_has_the_scalar_priors_bits_on_every_engine() {
        let x = [0.3, -1.7, 2.9, 1e-3, -0.25, 0.0, -0.0, 7.5, 1e-160];
        for (loc, scale) in [(0.0, 1.0), (-0.5, 2.0), (1.25, 0.3), (-0.0, 1.0)] {
            let (vector, scalar) = (
                Priors {
                    loc,
                    scale,
                    vector: true,
                },
                Priors {
                    loc,
                    scale,
                    vector: false,
                },
            );
            let bits = |g: &[f64]| g.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(vector.eval(&x).to_bits(), scalar.eval(&x).to_bits());
            let (va, ga) = TapeEngine.value_and_gradient(&vector, &x);
            let (vb, gb) = TapeEngine.value_and_gradient(&scalar, &x);
            assert_eq!(va.to_bits(), vb.to_bits(), "({loc}, {scale})");
            assert_eq!(bits(&ga), bits(&gb), "({loc}, {scale}): {ga:?} vs {gb:?}");
            let (vc, gc) = crate::ForwardEngine::<4>::new().value_and_gradient(&vector, &x);
            let (vd, gd) = crate::ForwardEngine::<4>::new().value_and_gradient(&scalar, &x);
            assert_eq!(vc.to_bits(), vd.to_bits(), "({loc}, {scale})");
            assert_eq!(bits(&gc), bits(&gd), "({loc}, {scale}): {gc:?} vs {gd:?}");
            let mut lp: Vec<Dual<2>> = Vec::new();
            let duals: Vec<Dual<2>> = x.iter().map(|&v| Dual::new(v, [1.0, -0.5])).collect();
            ConstantNormal::new(loc, scale)
                .unwrap()
                .log_probs(&duals, &mut lp);
            let prior =
                crate::distributions::Normal::new(Dual::constant(loc), Dual::constant(scale))
                    .unwrap();
            for (a, &d) in lp.iter().zip(&duals) {
                let b = prior.log_prob(d);
                assert_eq!(a.value.to_bits(), b.value.to_bits());
                assert_eq!(bits(&a.tangent()), bits(&b.tangent()));
            }
        }
        assert!(ConstantNormal::new(0.0, 0.0).is_err());
        assert!(ConstantNormal::new(f64::NAN, 1.0).is_err());
    }
}
