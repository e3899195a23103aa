//! Plates whose arguments are affine in the operands, found at run time:
//! the arguments' derivatives recorded once and reused at every later
//! evaluation, so that the gradient of an opaque linear predictor (a helper
//! method generic over [`Scalar`], `x.row(i).dot(beta)`) costs a
//! transposed matrix–vector product instead of a forward pass of `W` lanes.
//!
//! For element `i` with arguments `argₐ,ᵢ(θ)`, when every `argₐ,ᵢ` is
//! `cₐ,ᵢ + Σⱼ Cₐ,ᵢⱼ θⱼ` with `C` independent of `θ`, the plate's gradient is
//!
//! `∂/∂θⱼ = Σᵢ Σₐ ḡₐ,ᵢ Cₐ,ᵢⱼ`, `ḡₐ,ᵢ = ∂ log f(obsᵢ | …)/∂argₐ,ᵢ`,
//!
//! and `C` is exactly the tangent a forward pass computes (the same bits:
//! the lanes of a dual number never mix). The probe ([`Probe`]) is that
//! forward pass with two more facts per value: whether it depends on the
//! operands, and whether an operation other than a sum, a negation, a
//! product with a constant or a quotient by a constant touched a value that
//! does (any such operation, any comparison or `value()` of such a value —
//! a branch — makes the plate non-affine, and it keeps the dual path).
//! Since the only operations between the operands and an argument are then
//! affine ones with constant coefficients and no branch reads the operands,
//! the same code computes the same tangents at every `θ`.
//!
//! The recorded coefficients live in a [`with_plate_cache`] scope (what
//! [`fit`](crate::fit::fit) and [`laplace_from`](crate::laplace::laplace_from)
//! run in), keyed by the model's type and address and the plate's field:
//! the model is borrowed for the whole scope, so its data cannot change
//! under the cache. Outside a scope nothing is recorded and the dual path
//! runs; either way the results are the same bits.
//!
//! The record is column-major: operand `j`'s coefficients of the `N`
//! elements are one column, and a column that is bit for bit a run of the
//! plate's own data ([`Plate::f64_data`]: a column of a `DMatrix` design)
//! is kept as (slice, offset), not copied, and read through the plate at
//! each evaluation. The record holds no pointer: a record that outlived its
//! model could read nothing but the plate it is handed, and one whose
//! plate's length or data slices changed is made anew. The gradient
//! `∂/∂θⱼ = Σᵢ ḡᵢ Cᵢⱼ` is summed column by column in element order (the
//! dual path's order, so the same bits), the replayed value
//! `θ₀·c₀ + θ₁·c₁ + …` column after column over a block (the same
//! operations on each element).

use std::any::TypeId;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};
use std::sync::{Arc, Mutex, OnceLock};

use super::{MAX_ARGS, Plate, PlateKernel, vmath};
use crate::ad::rules::{ChainRule, Rule};
use crate::dual::Dual;
use crate::scalar::Scalar;
use crate::special::Elementary;

/// The most bytes one plate's record may copy: above it the plate keeps
/// the dual path. Columns of coefficients that are runs of the plate's own
/// data ([`Plate::f64_data`]) are read from there and not counted.
pub const MAX_CACHE_BYTES: usize = 1 << 30;

/// Which plate of which model: the model's type and address and the
/// observed field's name. `#[variational]` gives every plate one, through
/// [`Plate::cache_key`].
///
/// ```
/// use iwhvi_core::plate::PlateKey;
///
/// struct Model { y: Vec<f64> }
/// let model = Model { y: vec![1.0] };
/// let key = PlateKey::new(&model, "y");
/// assert_eq!(key, PlateKey::new(&model, "y"));
/// assert_ne!(key, PlateKey::new(&model, "z"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PlateKey {
    model: TypeId,
    address: usize,
    plate: &'static str,
}

impl PlateKey {
    /// The key of the plate over field `plate` of `model`.
    pub fn new<M: 'static>(model: &M, plate: &'static str) -> Self {
        Self {
            model: TypeId::of::<M>(),
            address: std::ptr::from_ref(model) as usize,
            plate,
        }
    }
}

/// What a scope holds for one plate: its record (`None` when the plate is
/// not affine, or its record would copy more than [`MAX_CACHE_BYTES`]),
/// and the plate it was made for, as far as its length and its data
/// slices tell.
struct Recorded {
    /// The plate's length.
    n: usize,
    /// The address and length of each of the plate's [`Plate::f64_data`]
    /// slices.
    sources: Vec<(usize, usize)>,
    cache: Option<Arc<AffineCache>>,
}

impl Recorded {
    /// True when `plate` has the length and the data slices (the same
    /// addresses and lengths) this was recorded for: false for another
    /// model built at a dropped one's address inside the scope (a
    /// benchmark's loop over sizes), or for data that moved.
    fn made_for<P: Plate>(&self, plate: &P) -> bool {
        self.n == plate.len()
            && (0..=self.sources.len())
                .all(|k| plate.f64_data(k).map(identity) == self.sources.get(k).copied())
    }
}

/// A slice's address and length.
fn identity(s: &[f64]) -> (usize, usize) {
    (s.as_ptr() as usize, s.len())
}

/// A plate's record, filled at its first evaluation in the scope.
type Slot = Arc<OnceLock<Recorded>>;

/// The plates' recorded coefficients of one scope.
#[derive(Default)]
pub(crate) struct Store {
    slots: Mutex<HashMap<PlateKey, Slot>>,
}

impl Store {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<PlateKey, Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The slot of `key`, created empty the first time.
    fn slot(&self, key: PlateKey) -> Slot {
        Arc::clone(self.slots().entry(key).or_default())
    }

    /// An empty slot for `key` in place of `stale` (unless another thread
    /// replaced it already: then that one).
    fn renew(&self, key: PlateKey, stale: &Slot) -> Slot {
        let mut slots = self.slots();
        let slot = slots.entry(key).or_default();
        if Arc::ptr_eq(slot, stale) {
            *slot = Slot::default();
        }
        Arc::clone(slot)
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Store>>> = const { RefCell::new(None) };
    static TAINTED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` in a scope in which plates record the coefficients of affine
/// arguments at their first gradient evaluation and reuse them after (a
/// scope already open on this thread is reused). The results are the same
/// bits as without the scope; only the time differs.
///
/// Every model a plate evaluates inside the scope must stay unchanged until
/// the scope ends (a model borrowed by the call that opened it is).
/// [`fit`](crate::fit::fit), [`fit_from`](crate::fit::fit_from) and
/// [`laplace_from`](crate::laplace::laplace_from) open one; a benchmark of
/// a single step opens one around its loop to time what `fit` runs.
///
/// The record holds no reference into a model: a column of coefficients
/// that is a run of the plate's own data ([`Plate::f64_data`]) is kept as
/// (slice, offset) and read through the plate being evaluated, so a record
/// that outlives its model reads nothing freed. A plate whose length or
/// data slices (addresses, lengths) differ from those its record was made
/// for (another model built at a dropped one's address) is recorded anew.
///
/// ```
/// use iwhvi_core::plate::with_plate_cache;
///
/// let three = with_plate_cache(|| 1 + 2);
/// assert_eq!(three, 3);
/// ```
pub fn with_plate_cache<R>(f: impl FnOnce() -> R) -> R {
    if CURRENT.with(|c| c.borrow().is_some()) {
        return f();
    }
    within(Some(Arc::new(Store::default())), f)
}

/// The scope open on this thread, to hand to worker threads.
pub(crate) fn current() -> Option<Arc<Store>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Runs `f` with `store` as this thread's scope, then restores the one
/// there was (also when `f` panics).
pub(crate) fn within<R>(store: Option<Arc<Store>>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<Store>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let _restore = Restore(replace_scope(store));
    f()
}

/// Sets this thread's scope to `store` and returns the one there was. Not
/// generic, so [`within`]'s callers share this one copy.
fn replace_scope(store: Option<Arc<Store>>) -> Option<Arc<Store>> {
    CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), store))
}

/// The plate's [`Plate::f64_data`] slices.
pub(crate) fn plate_data<P: Plate>(plate: &P) -> Vec<&[f64]> {
    (0..).map_while(|k| plate.f64_data(k)).collect()
}

/// The recorded coefficients of `plate` for these operands, when a scope
/// is open and the plate has a key: recorded now, at the operands' values,
/// if this is the first time or the record was made for another plate
/// ([`Recorded::made_for`]); `None` if it is not affine. Without a scope
/// or a key this costs nothing (the operands' values are read only to
/// record).
pub(crate) fn lookup<P: Plate, T: Scalar>(
    plate: &P,
    operands: &[&[T]],
) -> Option<Arc<AffineCache>> {
    let key = plate.cache_key()?;
    let store = current()?;
    let record = || {
        let values: Vec<Vec<f64>> = operands
            .iter()
            .map(|g| g.iter().map(|v| v.value()).collect())
            .collect();
        let groups: Vec<&[f64]> = values.iter().map(Vec::as_slice).collect();
        let sizes: Vec<usize> = operands.iter().map(|g| g.len()).collect();
        Recorded {
            n: plate.len(),
            sources: plate_data(plate).into_iter().map(identity).collect(),
            cache: AffineCache::record(plate, &sizes, &groups).map(Arc::new),
        }
    };
    let slot = store.slot(key);
    let slot = if slot.get_or_init(record).made_for(plate) {
        slot
    } else {
        store.renew(key, &slot)
    };
    let recorded = slot.get_or_init(record);
    if !recorded.made_for(plate) {
        return None;
    }
    let fits = |c: &&Arc<AffineCache>| {
        c.sizes.len() == operands.len() && c.sizes.iter().zip(operands).all(|(&n, g)| n == g.len())
    };
    recorded.cache.as_ref().filter(fits).cloned()
}

/// `N` values of a record (one per element): a copy, or a run of the
/// plate's own data.
#[derive(Debug)]
pub(crate) enum Run {
    /// A copy.
    Copied(Vec<f64>),
    /// `plate.f64_data(slice)[offset..offset + N]`, bit for bit.
    Borrowed { slice: usize, offset: usize },
    /// The same value at every element.
    Splat(f64),
}

/// One argument's coefficients over the elements.
#[derive(Debug)]
pub(crate) enum Coefficients {
    /// The argument depends on no operand: its values (a copy, a run of
    /// the data or one value) when the plate is replayed, `None` otherwise.
    Constant { values: Option<Run> },
    /// Operand `lo + f`'s coefficients of every element in `columns[f]`
    /// (zeros included; column-major, so that a column can be a run of the
    /// data, and each is copied or borrowed, never a splat).
    Dense { lo: usize, columns: Vec<Run> },
    /// Element `i`'s nonzero coefficients at `starts[i]..starts[i + 1]`:
    /// operand `lanes[k]`, coefficient `values[k]`.
    Sparse {
        starts: Vec<usize>,
        lanes: Vec<u32>,
        values: Vec<f64>,
    },
}

/// The coefficients `Cₐ,ᵢⱼ = ∂argₐ,ᵢ/∂θⱼ` of an affine plate.
#[derive(Debug)]
pub(crate) struct AffineCache {
    /// The operand groups' sizes they were recorded for.
    sizes: Vec<usize>,
    /// The number of elements.
    n: usize,
    /// One per argument.
    arguments: Vec<Coefficients>,
    /// Every argument is a recorded constant or the left fold
    /// `Σⱼ θⱼ·Cₐ,ᵢⱼ` over its dense coefficients' operands, in order: its
    /// `f64` value is then [`View::replay`]'s, the same operations
    /// as the plate's own code (up to the sign of a zero).
    replay: bool,
}

/// What the first probe pass learns of one argument.
#[derive(Clone, Copy)]
struct Survey {
    lo: usize,
    hi: usize,
    nonzero: usize,
}

/// The elements whose coefficients locate a column in the data: the
/// first two, the last and five between (sorted, distinct).
fn sample_elements(n: usize) -> Vec<usize> {
    let mut at: Vec<usize> = (0..8)
        .map(|k| n.saturating_mul(k) / 8)
        .chain([1, n.saturating_sub(1)])
        .filter(|&i| i < n)
        .collect();
    at.sort_unstable();
    at.dedup();
    at
}

/// The most runs of the data a column is matched against at once.
const CANDIDATES: usize = 4;

/// The runs `(slice, offset)` of `data`, `n` long, whose values at the
/// elements `at` have the bits of `want` (up to [`CANDIDATES`]): `hint`
/// alone when it is one (the next column of a column-major matrix), else
/// a scan of the slices while `budget` (positions left to look at) lasts.
fn find_runs(
    data: &[&[f64]],
    (at, want): (&[usize], &[f64]),
    n: usize,
    hint: Option<(usize, usize)>,
    budget: &mut usize,
) -> Vec<(usize, usize)> {
    if n == 0 {
        return Vec::new();
    }
    let matches = |s: &[f64], offset: usize| {
        at.iter()
            .zip(want)
            .all(|(&i, v)| s[offset + i].to_bits() == v.to_bits())
    };
    if let Some((k, offset)) = hint
        && let Some(s) = data.get(k)
        && offset.checked_add(n).is_some_and(|end| end <= s.len())
        && matches(s, offset)
    {
        return vec![(k, offset)];
    }
    let mut found = Vec::new();
    for (k, s) in data.iter().enumerate() {
        let Some(positions) = (s.len() + 1).checked_sub(n) else {
            continue;
        };
        if positions > *budget {
            break;
        }
        *budget -= positions;
        for offset in 0..positions {
            if matches(s, offset) {
                found.push((k, offset));
                if found.len() == CANDIDATES {
                    return found;
                }
            }
        }
    }
    found
}

/// A column being recorded element by element: still equal to each of
/// some runs of the data so far, or copied.
enum Recording {
    /// The runs `(slice, offset)` equal to the column so far (never
    /// empty).
    Matching(Vec<(usize, usize)>),
    /// The values so far (allocated at the first).
    Copied(Vec<f64>),
}

impl Recording {
    /// A column that may be one of `candidates` (copied if there is none:
    /// `copied` counts its bytes).
    fn new(candidates: Vec<(usize, usize)>, n: usize, copied: &mut usize) -> Self {
        if candidates.is_empty() {
            *copied = copied.saturating_add(n.saturating_mul(8));
            Self::Copied(Vec::new())
        } else {
            Self::Matching(candidates)
        }
    }

    /// Element `i`'s value (elements in order). A column that stops
    /// matching its last run is copied from then on: its values so far
    /// are that run's first `i`, the same bits; `copied` counts its bytes.
    fn push(&mut self, i: usize, value: f64, data: &[&[f64]], n: usize, copied: &mut usize) {
        match self {
            Self::Matching(runs) => {
                let Some(&(k, offset)) = runs.last() else {
                    return;
                };
                runs.retain(|&(k, o)| data[k][o + i].to_bits() == value.to_bits());
                if runs.is_empty() {
                    let mut values = Vec::with_capacity(n);
                    values.extend_from_slice(&data[k][offset..offset + i]);
                    values.push(value);
                    *copied = copied.saturating_add(n.saturating_mul(8));
                    *self = Self::Copied(values);
                }
            }
            Self::Copied(values) => {
                if values.capacity() == 0 {
                    values.reserve_exact(n);
                }
                values.push(value);
            }
        }
    }

    fn finish(self) -> Run {
        match self {
            Self::Matching(runs) => Run::Borrowed {
                slice: runs[0].0,
                offset: runs[0].1,
            },
            Self::Copied(values) => Run::Copied(values),
        }
    }
}

/// An argument being recorded (the second probe pass).
enum Pending {
    Constant(Option<Recording>),
    Splat(f64),
    Dense {
        lo: usize,
        columns: Vec<Recording>,
        /// The current element's coefficients.
        row: Vec<f64>,
    },
    Sparse {
        starts: Vec<usize>,
        lanes: Vec<u32>,
        values: Vec<f64>,
    },
}

impl AffineCache {
    /// Probes every element's arguments at `values` (two passes: the
    /// extent of each argument's coefficients and their values at a few
    /// elements, then the coefficients), or `None` if an argument is not
    /// affine or the record would copy more than [`MAX_CACHE_BYTES`]. A
    /// dense column (or a constant argument's values) that is bit for bit
    /// a run of the plate's [`Plate::f64_data`] is recorded as that run,
    /// not copied: located by its values at [`sample_elements`], checked
    /// at every element.
    fn record<P: Plate>(plate: &P, sizes: &[usize], values: &[&[f64]]) -> Option<Self> {
        let (n, arity) = (plate.len(), P::Kernel::ARGS);
        let m: usize = sizes.iter().sum();
        let data = plate_data(plate);
        let at = sample_elements(n);
        let mut surveys = vec![
            Survey {
                lo: usize::MAX,
                hi: 0,
                nonzero: 0,
            };
            arity
        ];
        // Per argument: every element's chain, while they agree.
        let mut chains: Vec<Option<Chain>> = vec![None; arity];
        let mut agree = vec![true; arity];
        // The coefficients `(sample, argument, lane, C)` and the values
        // `(sample, argument, value)` at the sampled elements; whether each
        // argument's value is the same bits at every element.
        let mut sampled: Vec<(usize, usize, usize, f64)> = Vec::new();
        let mut sampled_values: Vec<(usize, usize, f64)> = Vec::new();
        let mut first_value: Vec<Option<u64>> = vec![None; arity];
        let mut uniform = vec![true; arity];
        probe(plate, values, m, |event| {
            match event {
                Event::Coefficient(i, a, lane, c) => {
                    let s = &mut surveys[a];
                    s.lo = s.lo.min(lane);
                    s.hi = s.hi.max(lane + 1);
                    s.nonzero += 1;
                    if let Ok(k) = at.binary_search(&i) {
                        sampled.push((k, a, lane, c));
                    }
                }
                Event::Argument(i, a, chain, value) => {
                    let chain = match chain {
                        Chain::Zero => Chain::Constant,
                        other => other,
                    };
                    match chains[a] {
                        None => chains[a] = Some(chain),
                        Some(c) => agree[a] &= c == chain,
                    }
                    if let Ok(k) = at.binary_search(&i) {
                        sampled_values.push((k, a, value));
                    }
                    match first_value[a] {
                        None => first_value[a] = Some(value.to_bits()),
                        Some(bits) => uniform[a] &= bits == value.to_bits(),
                    }
                }
                Event::End(_) => {}
            }
            true
        })?;
        // Replayable: each argument a constant (recorded) or the left fold
        // over exactly its dense coefficients' operands, at every element.
        let replay = (0..arity).all(|a| {
            let s = surveys[a];
            agree[a]
                && match chains[a] {
                    None | Some(Chain::Constant) => s.nonzero == 0,
                    Some(Chain::Fold { first, last }) => {
                        s.nonzero > 0 && first as usize == s.lo && last as usize + 1 == s.hi
                    }
                    Some(Chain::Operand(j)) => {
                        s.nonzero > 0 && j as usize == s.lo && s.hi == s.lo + 1
                    }
                    _ => false,
                }
        });
        // Where each column may be in the data; the bytes to copy.
        let mut budget = data
            .iter()
            .map(|s| s.len())
            .sum::<usize>()
            .saturating_mul(2)
            .saturating_add(64);
        let mut copied = 0usize;
        let mut pending: Vec<Pending> = Vec::with_capacity(arity);
        for (a, s) in surveys.iter().enumerate() {
            if s.nonzero == 0 {
                pending.push(match first_value[a] {
                    Some(bits) if replay && uniform[a] => Pending::Splat(f64::from_bits(bits)),
                    _ if replay => {
                        let mut want = vec![0.0; at.len()];
                        for &(k, _, v) in sampled_values.iter().filter(|t| t.1 == a) {
                            want[k] = v;
                        }
                        let runs = find_runs(&data, (&at, &want), n, None, &mut budget);
                        Pending::Constant(Some(Recording::new(runs, n, &mut copied)))
                    }
                    _ => Pending::Constant(None),
                });
                continue;
            }
            let width = s.hi - s.lo;
            if width.saturating_mul(n) <= 2 * s.nonzero {
                let mut wants = vec![vec![0.0; at.len()]; width];
                for &(k, _, lane, c) in sampled.iter().filter(|t| t.1 == a) {
                    wants[lane - s.lo][k] = c;
                }
                let mut hint = None;
                let columns = wants
                    .iter()
                    .map(|want| {
                        let runs = find_runs(&data, (&at, want), n, hint, &mut budget);
                        hint = runs.first().map(|&(k, offset)| (k, offset + n));
                        Recording::new(runs, n, &mut copied)
                    })
                    .collect();
                pending.push(Pending::Dense {
                    lo: s.lo,
                    columns,
                    row: vec![0.0; width],
                });
            } else {
                copied = copied
                    .saturating_add(s.nonzero.saturating_mul(12))
                    .saturating_add(n.saturating_mul(8));
                let mut starts = Vec::with_capacity(n + 1);
                starts.push(0);
                pending.push(Pending::Sparse {
                    starts,
                    lanes: Vec::with_capacity(s.nonzero),
                    values: Vec::with_capacity(s.nonzero),
                });
            }
        }
        if copied > MAX_CACHE_BYTES {
            return None;
        }
        probe(plate, values, m, |event| {
            match event {
                Event::Coefficient(_, a, lane, c) => match &mut pending[a] {
                    Pending::Dense { lo, row, .. } => row[lane - *lo] = c,
                    Pending::Sparse { lanes, values, .. } => {
                        lanes.push(u32::try_from(lane).unwrap_or(u32::MAX));
                        values.push(c);
                    }
                    Pending::Constant(_) | Pending::Splat(_) => {}
                },
                Event::Argument(i, a, _, value) => {
                    if let Pending::Constant(Some(r)) = &mut pending[a] {
                        r.push(i, value, &data, n, &mut copied);
                    }
                }
                Event::End(i) => {
                    for p in &mut pending {
                        match p {
                            Pending::Dense { columns, row, .. } => {
                                for (r, c) in columns.iter_mut().zip(row.iter_mut()) {
                                    r.push(i, *c, &data, n, &mut copied);
                                    *c = 0.0;
                                }
                            }
                            Pending::Sparse { starts, lanes, .. } => starts.push(lanes.len()),
                            Pending::Constant(_) | Pending::Splat(_) => {}
                        }
                    }
                }
            }
            copied <= MAX_CACHE_BYTES
        })?;
        let arguments = pending
            .into_iter()
            .map(|p| match p {
                Pending::Constant(r) => Coefficients::Constant {
                    values: r.map(Recording::finish),
                },
                Pending::Splat(v) => Coefficients::Constant {
                    values: Some(Run::Splat(v)),
                },
                Pending::Dense { lo, columns, .. } => Coefficients::Dense {
                    lo,
                    columns: columns.into_iter().map(Recording::finish).collect(),
                },
                Pending::Sparse {
                    starts,
                    lanes,
                    values,
                } => Coefficients::Sparse {
                    starts,
                    lanes,
                    values,
                },
            })
            .collect();
        Some(Self {
            sizes: sizes.to_vec(),
            n,
            arguments,
            replay,
        })
    }

    /// True when [`View::replay`] gives the arguments' values.
    #[cfg(test)]
    fn replays(&self) -> bool {
        self.replay
    }

    /// The bytes the record copied (its borrowed runs not counted).
    #[cfg(test)]
    fn copied_bytes(&self) -> usize {
        let run = |r: &Run| match r {
            Run::Copied(v) => v.len() * 8,
            Run::Borrowed { .. } | Run::Splat(_) => 0,
        };
        self.arguments
            .iter()
            .map(|c| match c {
                Coefficients::Constant { values } => values.as_ref().map_or(0, run),
                Coefficients::Dense { columns, .. } => columns.iter().map(run).sum(),
                Coefficients::Sparse { starts, values, .. } => starts.len() * 8 + values.len() * 12,
            })
            .sum()
    }

    /// The record with its runs of the data resolved in `data` (the
    /// plate's [`Plate::f64_data`] slices now), for one evaluation; `None`
    /// if a run is not there (the plate's data changed shape).
    pub(crate) fn view<'a>(&'a self, data: &[&'a [f64]]) -> Option<View<'a>> {
        let n = self.n;
        let resolve = |run: &'a Run| -> Option<&'a [f64]> {
            match run {
                Run::Copied(values) => Some(values.as_slice()).filter(|v| v.len() == n),
                Run::Borrowed { slice, offset } => data.get(*slice)?.get(*offset..offset + n),
                Run::Splat(_) => None,
            }
        };
        let mut columns = Vec::new();
        let mut firsts = [0; MAX_ARGS];
        let mut constants = [Constant::Absent; MAX_ARGS];
        for (a, c) in self.arguments.iter().enumerate() {
            firsts[a] = columns.len();
            match c {
                Coefficients::Constant { values } => {
                    constants[a] = match values {
                        None => Constant::Absent,
                        Some(Run::Splat(v)) => Constant::Splat(*v),
                        Some(run) => Constant::Values(resolve(run)?),
                    };
                }
                Coefficients::Dense { columns: runs, .. } => {
                    for run in runs {
                        columns.push(resolve(run)?);
                    }
                }
                Coefficients::Sparse { .. } => {}
            }
        }
        Some(View {
            cache: self,
            columns,
            firsts,
            constants,
        })
    }
}

/// A constant argument's values in a [`View`].
#[derive(Clone, Copy)]
enum Constant<'a> {
    /// Not recorded (the plate is not replayed).
    Absent,
    Values(&'a [f64]),
    Splat(f64),
}

/// A record resolved for one evaluation: every dense column as a slice of
/// `N` coefficients (a copy or the plate's data).
pub(crate) struct View<'a> {
    cache: &'a AffineCache,
    /// The dense arguments' columns, argument after argument.
    columns: Vec<&'a [f64]>,
    /// Argument `a`'s first column in `columns`.
    firsts: [usize; MAX_ARGS],
    constants: [Constant<'a>; MAX_ARGS],
}

impl View<'_> {
    /// True when [`View::replay`] gives the arguments' values.
    pub(crate) fn replays(&self) -> bool {
        self.cache.replay
    }

    /// Adds `Σₐ ḡₐ,ᵢ Cₐ,ᵢ` for the elements `start..start + len` into
    /// `partials`, element by element and argument by argument (the order
    /// of the dual path, so the same bits), skipping `ḡ = 0`.
    #[inline]
    pub(crate) fn accumulate(
        &self,
        start: usize,
        len: usize,
        grad: &[f64],
        width: usize,
        partials: &mut [f64],
    ) {
        if self.one_dense(start, len, grad, width, partials) {
            return;
        }
        for b in 0..len {
            let i = start + b;
            for (a, coefficients) in self.cache.arguments.iter().enumerate() {
                let g = grad[a * width + b];
                if g == 0.0 {
                    continue;
                }
                match coefficients {
                    Coefficients::Constant { .. } => {}
                    Coefficients::Dense { lo, columns } => {
                        let first = self.firsts[a];
                        let columns = &self.columns[first..first + columns.len()];
                        for (p, column) in
                            partials[*lo..*lo + columns.len()].iter_mut().zip(columns)
                        {
                            *p += g * column[i];
                        }
                    }
                    Coefficients::Sparse {
                        starts,
                        lanes,
                        values,
                    } => {
                        let (from, to) = (starts[i], starts[i + 1]);
                        for (&j, &c) in lanes[from..to].iter().zip(&values[from..to]) {
                            partials[j as usize] += g * c;
                        }
                    }
                }
            }
        }
    }

    /// The arguments of elements `start..start + len` at the operands
    /// `theta` (flat), into `columns` (argument `a` of element `start + b`
    /// at `a · width + b`): each fold as `θ_f·c_f + θ_{f+1}·c_{f+1} + …` in
    /// operand order, column after column (the same operations on each
    /// element as the plate's own code), each constant as recorded.
    pub(crate) fn replay(
        &self,
        start: usize,
        len: usize,
        theta: &[f64],
        columns: &mut [f64],
        width: usize,
    ) {
        for (a, coefficients) in self.cache.arguments.iter().enumerate() {
            let out = &mut columns[a * width..a * width + len];
            match coefficients {
                Coefficients::Constant { .. } => match self.constants[a] {
                    Constant::Values(values) => out.copy_from_slice(&values[start..start + len]),
                    Constant::Splat(v) => out.fill(v),
                    Constant::Absent => unreachable!("a replayed plate records its constants"),
                },
                Coefficients::Dense { lo, columns: runs } => {
                    let first = self.firsts[a];
                    vmath::dispatch(Fold {
                        theta: &theta[*lo..*lo + runs.len()],
                        columns: &self.columns[first..first + runs.len()],
                        start,
                        out,
                    });
                }
                Coefficients::Sparse { .. } => {
                    unreachable!("a replayed plate has no sparse argument")
                }
            }
        }
    }

    /// The common case of one argument with dense coefficients of at most
    /// 16 operands and every other argument constant (a linear predictor):
    /// the running sums held in registers, compiled for the CPU's best
    /// instruction set, the same additions in the same order as the
    /// general loop. False (nothing done) in any other case.
    #[inline]
    fn one_dense(
        &self,
        start: usize,
        len: usize,
        grad: &[f64],
        width: usize,
        partials: &mut [f64],
    ) -> bool {
        let mut dense = self
            .cache
            .arguments
            .iter()
            .enumerate()
            .filter(|(_, c)| !matches!(c, Coefficients::Constant { .. }));
        let (Some((a, Coefficients::Dense { lo, columns: runs })), None) =
            (dense.next(), dense.next())
        else {
            return false;
        };
        let (lo, w, first) = (*lo, runs.len(), self.firsts[a]);
        let g = &grad[a * width..a * width + len];
        let columns = &self.columns[first..first + w];
        let p = &mut partials[lo..lo + w];
        macro_rules! widths {
            ($($n:literal)+) => {
                match w {
                    $($n => vmath::dispatch(DenseRun::<$n> {
                        g,
                        columns: std::array::from_fn(|f| &columns[f][start..start + len]),
                        p,
                    }),)+
                    _ => return false,
                }
            };
        }
        widths!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
        true
    }
}

/// `out = θ₀·c₀; out += θ₁·c₁; …` element-wise over a block, the columns
/// `c_f` of a dense argument (vectorised over the elements; each element
/// the same operations in the same order as the plate's left fold).
struct Fold<'a> {
    theta: &'a [f64],
    columns: &'a [&'a [f64]],
    start: usize,
    out: &'a mut [f64],
}

impl vmath::Simd for Fold<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (len, start) = (self.out.len(), self.start);
        let (Some((&t0, theta)), Some((c0, columns))) =
            (self.theta.split_first(), self.columns.split_first())
        else {
            return;
        };
        for (o, &c) in self.out.iter_mut().zip(&c0[start..start + len]) {
            *o = t0 * c;
        }
        for (&t, column) in theta.iter().zip(columns) {
            for (o, &c) in self.out.iter_mut().zip(&column[start..start + len]) {
                *o += t * c;
            }
        }
    }
}

/// `p += Σ_b g_b · (c₀,b, …, c_{W−1},b)` over a block, the `W` columns of
/// a dense argument, in element order, skipping `g_b = 0` (the general
/// loop's additions).
struct DenseRun<'a, const W: usize> {
    g: &'a [f64],
    /// Each `g.len()` long.
    columns: [&'a [f64]; W],
    p: &'a mut [f64],
}

impl<const W: usize> vmath::Simd for DenseRun<'_, W> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let len = self.g.len();
        let columns: [&[f64]; W] = std::array::from_fn(|f| &self.columns[f][..len]);
        let mut acc = [0.0; W];
        acc.copy_from_slice(self.p);
        column_pairs(self.g, &columns, &mut acc);
        self.p.copy_from_slice(&acc);
    }
}

/// `acc_f += g · c_f[b]` for every column, unless `g = 0`.
#[inline(always)]
fn add_element<const W: usize>(g: f64, columns: &[&[f64]; W], b: usize, acc: &mut [f64; W]) {
    if g == 0.0 {
        return;
    }
    for (s, column) in acc.iter_mut().zip(columns) {
        *s += g * column[b];
    }
}

/// [`DenseRun`]'s sums two elements and two columns at a time, written
/// for the SLP vectoriser: the products of columns `f, f + 1` formed along
/// elements `b, b + 1` (contiguous loads), each column's sum adding
/// element `b`'s product then element `b + 1`'s, the scalar loop's
/// additions in its order (the same bits). A pair with a `g = 0` takes
/// the scalar loop.
#[inline(always)]
fn column_pairs<const W: usize>(g: &[f64], columns: &[&[f64]; W], acc: &mut [f64; W]) {
    let len = g.len();
    let pairs = W / 2;
    let mut b = 0;
    while b + 2 <= len {
        let (g0, g1) = (g[b], g[b + 1]);
        if g0 == 0.0 || g1 == 0.0 {
            add_element(g0, columns, b, acc);
            add_element(g1, columns, b + 1, acc);
            b += 2;
            continue;
        }
        for q in 0..pairs {
            let (c0, c1) = (&columns[2 * q][b..b + 2], &columns[2 * q + 1][b..b + 2]);
            let p0 = [g0 * c0[0], g1 * c0[1]];
            let p1 = [g0 * c1[0], g1 * c1[1]];
            let (s0, s1) = (acc[2 * q] + p0[0], acc[2 * q + 1] + p1[0]);
            acc[2 * q] = s0 + p0[1];
            acc[2 * q + 1] = s1 + p1[1];
        }
        if W % 2 == 1 {
            let last = &columns[W - 1][b..b + 2];
            acc[W - 1] += g0 * last[0];
            acc[W - 1] += g1 * last[1];
        }
        b += 2;
    }
    if b < len {
        add_element(g[b], columns, b, acc);
    }
}

/// What [`probe`] reports, in order: for each element `i`, every
/// argument's chain and value ([`Event::Argument`]), its nonzero
/// coefficients ([`Event::Coefficient`], argument then operand order),
/// then [`Event::End`].
enum Event {
    /// `(i, a, j, Cₐ,ᵢⱼ)`.
    Coefficient(usize, usize, usize, f64),
    /// `(i, a, chain, argₐ,ᵢ)`.
    Argument(usize, usize, Chain, f64),
    End(usize),
}

/// Evaluates every element's arguments on [`Probe`]s seeded on the
/// operands (16 at a time), reporting each to `on` ([`Event`]); `None` as
/// soon as an argument is not affine or `on` returns false.
fn probe<P: Plate>(
    plate: &P,
    values: &[&[f64]],
    m: usize,
    mut on: impl FnMut(Event) -> bool,
) -> Option<()> {
    const W: usize = 16;
    let arity = P::Kernel::ARGS;
    debug_assert!(arity <= MAX_ARGS);
    let passes: Vec<Vec<Vec<Probe<W>>>> = (0..m.max(1))
        .step_by(W)
        .map(|first| {
            let mut position = 0;
            values
                .iter()
                .map(|g| {
                    g.iter()
                        .map(|&v| {
                            let j = position;
                            position += 1;
                            if (first..first + W).contains(&j) {
                                Probe::variable(v, j, j - first)
                            } else {
                                Probe::unseeded(v, j)
                            }
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let passes: Vec<Vec<&[Probe<W>]>> = passes
        .iter()
        .map(|seeded| seeded.iter().map(Vec::as_slice).collect())
        .collect();
    let mut out = [Probe::<W>::constant(0.0); MAX_ARGS];
    let mut row: Vec<(usize, usize, f64)> = Vec::new();
    TAINTED.with(|t| t.set(false));
    for i in 0..plate.len() {
        row.clear();
        for (pass, groups) in passes.iter().enumerate() {
            plate.args::<Probe<W>>(i, groups, &mut out[..arity]);
            if TAINTED.with(Cell::get) {
                return None;
            }
            for (a, p) in out[..arity].iter().enumerate() {
                if p.nonlinear {
                    return None;
                }
                if pass == 0 && !on(Event::Argument(i, a, p.chain, p.dual.value)) {
                    return None;
                }
                if p.dual.is_constant() {
                    continue;
                }
                for (l, &t) in p.dual.tangent().iter().enumerate() {
                    let j = pass * W + l;
                    if t != 0.0 && j < m {
                        row.push((a, j, t));
                    }
                }
            }
        }
        // Argument-major within the element (passes gave operand blocks).
        row.sort_by_key(|&(a, j, _)| (a, j));
        for &(a, j, t) in &row {
            if !on(Event::Coefficient(i, a, j, t)) {
                return None;
            }
        }
        if !on(Event::End(i)) {
            return None;
        }
    }
    Some(())
}

/// A forward-mode dual number that also knows whether it is affine in the
/// seeded operands: `dual` is exactly the [`Dual`] the same code computes;
/// `nonlinear` is set once an operation other than a sum, a negation, a
/// product with a constant or a quotient by a constant meets a value that
/// depends on the operands. Comparisons, `value()`, `is_finite` and
/// `is_zero` of such a value (a branch on it) set the thread's taint.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probe<const W: usize> {
    dual: Dual<W>,
    /// Depends on an operand, seeded in this pass or not.
    varies: bool,
    nonlinear: bool,
    /// How the value was computed, when it is a left fold of products.
    chain: Chain,
}

/// How a probed value was computed, for replaying it in `f64` with the
/// same operations: the left fold `((θ_f·c_f + θ_{f+1}·c_{f+1}) + …)` over
/// consecutive operands `f..=l` (a product with a constant in either order,
/// or the operand itself, as each term) is what a linear predictor written
/// as `Σⱼ βⱼ xᵢⱼ` computes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Chain {
    /// A constant zero (adding it changes nothing but a zero's sign).
    Zero,
    /// Another constant.
    Constant,
    /// Operand `j` itself.
    Operand(u32),
    /// `Σ_{j = first..=last} θⱼ·cⱼ`, folded left in `j` order.
    Fold { first: u32, last: u32 },
    /// Anything else that varies.
    Other,
}

impl Chain {
    /// A value that does not vary.
    fn of_constant(value: f64) -> Self {
        if value == 0.0 {
            Self::Zero
        } else {
            Self::Constant
        }
    }

    /// As a fold, if it is one (an operand is the one-term fold `θⱼ·1`).
    fn fold(self) -> Option<(u32, u32)> {
        match self {
            Self::Operand(j) => Some((j, j)),
            Self::Fold { first, last } => Some((first, last)),
            _ => None,
        }
    }

    /// `a + b`.
    fn add(a: Self, b: Self) -> Self {
        match (a, b) {
            (Self::Zero | Self::Constant, Self::Zero | Self::Constant) => Self::Constant,
            (Self::Zero, x) | (x, Self::Zero) if x.fold().is_some() => {
                let (first, last) = x.fold().expect("checked");
                Self::Fold { first, last }
            }
            _ => match (a.fold(), b.fold()) {
                (Some((first, last)), Some((f, l))) if f == l && f == last + 1 => {
                    Self::Fold { first, last: l }
                }
                _ => Self::Other,
            },
        }
    }

    /// `a · b`.
    fn mul(a: Self, b: Self) -> Self {
        match (a, b) {
            (Self::Zero | Self::Constant, Self::Zero | Self::Constant) => Self::Constant,
            (Self::Operand(j), Self::Zero | Self::Constant)
            | (Self::Zero | Self::Constant, Self::Operand(j)) => Self::Fold { first: j, last: j },
            _ => Self::Other,
        }
    }
}

impl<const W: usize> Probe<W> {
    fn constant(value: f64) -> Self {
        Self {
            dual: Dual::constant(value),
            varies: false,
            nonlinear: false,
            chain: Chain::of_constant(value),
        }
    }

    /// Operand `lane`, seeded in this pass along `direction`.
    fn variable(value: f64, lane: usize, direction: usize) -> Self {
        Self {
            dual: Dual::variable(value, direction),
            varies: true,
            nonlinear: false,
            chain: Chain::Operand(u32::try_from(lane).unwrap_or(u32::MAX)),
        }
    }

    /// An operand of another pass: no tangent here, but it varies (so
    /// that `x · y` with `x` and `y` seeded in different passes is still
    /// seen as a product of two varying values).
    fn unseeded(value: f64, lane: usize) -> Self {
        Self {
            dual: Dual::constant(value),
            varies: true,
            nonlinear: false,
            chain: Chain::Operand(u32::try_from(lane).unwrap_or(u32::MAX)),
        }
    }

    /// The chain of a result of an operation other than `+` and `·`.
    fn other_chain(varies: bool, value: f64) -> Chain {
        if varies {
            Chain::Other
        } else {
            Chain::of_constant(value)
        }
    }

    /// Its value, read by user code: a branch if it depends on the
    /// operands.
    fn read(self) -> f64 {
        if self.varies {
            TAINTED.with(|t| t.set(true));
        }
        self.dual.value
    }

    /// A result over `operands` that is affine only when none of them
    /// depends on the operands.
    fn opaque(dual: Dual<W>, operands: &[Self]) -> Self {
        let varies = operands.iter().any(|o| o.varies);
        Self {
            dual,
            varies,
            nonlinear: operands.iter().any(|o| o.nonlinear || o.varies),
            chain: Self::other_chain(varies, dual.value),
        }
    }
}

impl<const W: usize> ChainRule for Probe<W> {
    const SHARES_DIVISOR: bool = true;

    #[inline]
    fn unary<R: Rule<1>>(rule: R, x: Self) -> Self {
        let dual = <Dual<W> as ChainRule>::unary(rule, x.dual);
        Self {
            dual,
            varies: x.varies,
            nonlinear: x.nonlinear || !rule.affine([x.varies]),
            chain: Self::other_chain(x.varies, dual.value),
        }
    }

    #[inline]
    fn binary<R: Rule<2>>(rule: R, a: Self, b: Self) -> Self {
        let dual = <Dual<W> as ChainRule>::binary(rule, a.dual, b.dual);
        Self {
            dual,
            varies: a.varies || b.varies,
            nonlinear: a.nonlinear || b.nonlinear || !rule.affine([a.varies, b.varies]),
            chain: Self::other_chain(a.varies || b.varies, dual.value),
        }
    }

    fn combine(value: f64, terms: impl Iterator<Item = (Self, f64)>, divisor: f64) -> Self {
        let terms: Vec<(Self, f64)> = terms.collect();
        let operands: Vec<Self> = terms.iter().map(|t| t.0).collect();
        let dual = <Dual<W> as ChainRule>::combine(
            value,
            terms.iter().map(|(o, p)| (o.dual, *p)),
            divisor,
        );
        Self::opaque(dual, &operands)
    }
}

impl<const W: usize> Scalar for Probe<W> {
    fn constant(v: f64) -> Self {
        Self::constant(v)
    }

    fn value(self) -> f64 {
        self.read()
    }

    fn elementary(self, f: Elementary) -> Self {
        <Self as ChainRule>::unary(f, self)
    }

    fn powi(self, n: i32) -> Self {
        <Self as ChainRule>::unary(crate::ad::rules::IntegerPower(n), self)
    }

    fn powf(self, y: Self) -> Self {
        <Self as ChainRule>::binary(crate::ad::rules::Power, self, y)
    }

    fn log_sum_exp(terms: &[Self]) -> Self {
        let duals: Vec<Dual<W>> = terms.iter().map(|t| t.dual).collect();
        Self::opaque(Dual::log_sum_exp(&duals), terms)
    }

    fn is_finite(self) -> bool {
        self.read().is_finite() && self.dual.is_finite()
    }

    /// Affine when no pair has two factors that depend on the operands.
    fn dot(a: &[Self], b: &[Self]) -> Self {
        let (da, db): (Vec<Dual<W>>, Vec<Dual<W>>) =
            a.iter().zip(b).map(|(x, y)| (x.dual, y.dual)).unzip();
        let nonlinear = a
            .iter()
            .zip(b)
            .any(|(x, y)| x.nonlinear || y.nonlinear || (x.varies && y.varies));
        let (dual, varies) = (Dual::dot(&da, &db), a.iter().chain(b).any(|x| x.varies));
        Self {
            dual,
            varies,
            nonlinear,
            chain: Self::other_chain(varies, dual.value),
        }
    }

    fn scaled_squared_distance(x: &[Self], mean: &[Self], inverse_scale: &[Self]) -> Self {
        let duals = |v: &[Self]| v.iter().map(|t| t.dual).collect::<Vec<_>>();
        let dual = Dual::scaled_squared_distance(&duals(x), &duals(mean), &duals(inverse_scale));
        let all: Vec<Self> = x.iter().chain(mean).chain(inverse_scale).copied().collect();
        Self::opaque(dual, &all)
    }

    fn with_partials(value: f64, operands: &[Self], partials: &[f64]) -> Self {
        let duals: Vec<Dual<W>> = operands.iter().map(|t| t.dual).collect();
        Self::opaque(Dual::with_partials(value, &duals, partials), operands)
    }

    fn with_partials_over(value: f64, operands: &[Self], scaled: &[f64], divisor: f64) -> Self {
        let duals: Vec<Dual<W>> = operands.iter().map(|t| t.dual).collect();
        let dual = Dual::with_partials_over(value, &duals, scaled, divisor);
        Self::opaque(dual, operands)
    }

    /// Each output opaque over every operand, its dual as [`Dual`]'s
    /// (no operand's value read as a branch).
    fn vector_op<F: crate::vector::VectorFunction>(f: F, x: &[&[Self]], out: &mut Vec<Self>) {
        let duals: Vec<Vec<Dual<W>>> = x
            .iter()
            .map(|b| b.iter().map(|t| t.dual).collect())
            .collect();
        let blocks: Vec<&[Dual<W>]> = duals.iter().map(Vec::as_slice).collect();
        let mut y = Vec::new();
        Dual::vector_op(f, &blocks, &mut y);
        let all: Vec<Self> = x.iter().flat_map(|b| b.iter().copied()).collect();
        out.clear();
        out.extend(y.into_iter().map(|d| Self::opaque(d, &all)));
    }
}

impl<const W: usize> fmt::Display for Probe<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.dual, f)
    }
}

impl<const W: usize> Neg for Probe<W> {
    type Output = Self;
    fn neg(self) -> Self {
        <Self as ChainRule>::unary(crate::ad::rules::Negate, self)
    }
}

macro_rules! probe_binary {
    ($Op:ident, $op:ident, $OpAssign:ident, $op_assign:ident, $Rule:ident, $chain:expr) => {
        impl<const W: usize> $Op for Probe<W> {
            type Output = Self;
            #[inline]
            fn $op(self, rhs: Self) -> Self {
                let mut out = <Self as ChainRule>::binary(crate::ad::rules::$Rule, self, rhs);
                if out.varies {
                    let chain: Option<fn(Chain, Chain) -> Chain> = $chain;
                    out.chain = chain.map_or(Chain::Other, |f| f(self.chain, rhs.chain));
                }
                out
            }
        }
        impl<const W: usize> $Op<f64> for Probe<W> {
            type Output = Self;
            #[inline]
            fn $op(self, rhs: f64) -> Self {
                $Op::$op(self, Self::constant(rhs))
            }
        }
        impl<const W: usize> $Op<Probe<W>> for f64 {
            type Output = Probe<W>;
            #[inline]
            fn $op(self, rhs: Probe<W>) -> Probe<W> {
                $Op::$op(Probe::constant(self), rhs)
            }
        }
        impl<const W: usize> $OpAssign for Probe<W> {
            #[inline]
            fn $op_assign(&mut self, rhs: Self) {
                *self = $Op::$op(*self, rhs);
            }
        }
        impl<const W: usize> $OpAssign<f64> for Probe<W> {
            #[inline]
            fn $op_assign(&mut self, rhs: f64) {
                *self = $Op::$op(*self, rhs);
            }
        }
    };
}

probe_binary!(Add, add, AddAssign, add_assign, Plus, Some(Chain::add));
probe_binary!(Sub, sub, SubAssign, sub_assign, Minus, None);
probe_binary!(Mul, mul, MulAssign, mul_assign, Times, Some(Chain::mul));
probe_binary!(Div, div, DivAssign, div_assign, Quotient, None);

impl<const W: usize> std::iter::Sum for Probe<W> {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::constant(0.0), |acc, x| acc + x)
    }
}

impl<const W: usize> Default for Probe<W> {
    fn default() -> Self {
        Self::constant(0.0)
    }
}

impl<const W: usize> From<f64> for Probe<W> {
    fn from(value: f64) -> Self {
        Self::constant(value)
    }
}

impl<const W: usize> PartialEq for Probe<W> {
    fn eq(&self, other: &Self) -> bool {
        self.read() == other.read()
    }
}

impl<const W: usize> PartialOrd for Probe<W> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.read().partial_cmp(&other.read())
    }
}

impl<const W: usize> PartialEq<f64> for Probe<W> {
    fn eq(&self, other: &f64) -> bool {
        self.read() == *other
    }
}

impl<const W: usize> PartialOrd<f64> for Probe<W> {
    fn partial_cmp(&self, other: &f64) -> Option<std::cmp::Ordering> {
        self.read().partial_cmp(other)
    }
}

impl<const W: usize> num_traits::Zero for Probe<W> {
    fn zero() -> Self {
        Self::constant(0.0)
    }
    fn is_zero(&self) -> bool {
        self.read() == 0.0 && self.dual.tangent().iter().all(|t| *t == 0.0)
    }
}

impl<const W: usize> num_traits::One for Probe<W> {
    fn one() -> Self {
        Self::constant(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plate::{BernoulliLogitKernel, NormalKernel, preaccumulate};

    /// `yᵢ ~ N(Σⱼ βⱼ xᵢⱼ + θ[gᵢ] − b/2, s)` over operands `[b], θ, β, [s]`,
    /// written as opaque code; `form` picks a variant of the mean.
    struct Opaque {
        x: Vec<f64>,
        g: Vec<usize>,
        y: Vec<f64>,
        d: usize,
        form: Form,
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Form {
        Affine,
        /// `β₀ · β_last`: a product of two operands (in different passes
        /// when there are more than 16).
        Product,
        /// `exp(b)`.
        Exp,
        /// A branch on `b`'s value.
        Branch,
        /// `s` as the scale: affine too (the operand itself).
        AffineScale,
    }

    impl Plate for Opaque {
        type Kernel = NormalKernel;
        fn kernel(&self) -> NormalKernel {
            NormalKernel
        }
        fn len(&self) -> usize {
            self.y.len()
        }
        fn obs(&self, i: usize) -> f64 {
            self.y[i]
        }
        fn args<S: Scalar>(&self, i: usize, ops: &[&[S]], out: &mut [S]) {
            let (b, theta, beta, s) = (ops[0][0], ops[1], ops[2], ops[3][0]);
            let row = &self.x[i * self.d..(i + 1) * self.d];
            let mut eta: S = beta.iter().zip(row).map(|(&b, &x)| b * x).sum();
            eta += theta[self.g[i]] - b / 2.0;
            match self.form {
                Form::Product => eta += beta[0] * beta[self.d - 1],
                Form::Exp => eta += b.exp(),
                Form::Branch => {
                    if b > 0.0 {
                        eta += 1.0;
                    }
                }
                Form::Affine | Form::AffineScale => {}
            }
            out[0] = eta;
            out[1] = if self.form == Form::AffineScale {
                s * 0.5 + 1.0
            } else {
                S::constant(1.5)
            };
        }
        fn cache_key(&self) -> Option<PlateKey> {
            Some(PlateKey::new(self, "y"))
        }
    }

    fn opaque(n: usize, d: usize, groups: usize, form: Form) -> Opaque {
        Opaque {
            x: (0..n * d)
                .map(|k| ((k * 37 % 101) as f64) / 50.0 - 1.0)
                .collect(),
            g: (0..n).map(|i| (i * 7) % groups).collect(),
            y: (0..n).map(|i| ((i * 13 % 29) as f64) / 7.0 - 2.0).collect(),
            d,
            form,
        }
    }

    /// The plate at `p` on `Dual<W>` seeded on the operands `first..`.
    fn run<const W: usize>(plate: &Opaque, p: &[f64], groups: usize, first: usize) -> Dual<W> {
        let duals: Vec<Dual<W>> = p
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                if (first..first + W).contains(&k) {
                    Dual::variable(v, k - first)
                } else {
                    Dual::constant(v)
                }
            })
            .collect();
        let split = [1, 1 + groups, 1 + groups + plate.d];
        preaccumulate(
            plate,
            Dual::constant(0.25),
            &[
                &duals[..split[0]],
                &duals[split[0]..split[1]],
                &duals[split[1]..split[2]],
                &duals[split[2]..],
            ],
        )
    }

    fn recorded(plate: &Opaque, groups: usize) -> Option<Arc<AffineCache>> {
        let p: Vec<f64> = (0..groups + plate.d + 2).map(|k| 0.1 * k as f64).collect();
        let values = [
            &p[..1],
            &p[1..1 + groups],
            &p[1 + groups..1 + groups + plate.d],
            &p[1 + groups + plate.d..],
        ];
        with_plate_cache(|| lookup(plate, &values))
    }

    #[test]
    fn affine_plates_are_recorded_and_others_are_not() {
        for (n, d, groups) in [(7, 3, 2), (300, 10, 3), (40, 30, 5)] {
            for form in [Form::Affine, Form::AffineScale] {
                assert!(recorded(&opaque(n, d, groups, form), groups).is_some());
            }
            for form in [Form::Product, Form::Exp, Form::Branch] {
                assert!(
                    recorded(&opaque(n, d, groups, form), groups).is_none(),
                    "n {n} d {d}"
                );
            }
        }
        // Outside a scope nothing is recorded.
        let plate = opaque(5, 2, 2, Form::Affine);
        let p = [0.0; 6];
        assert!(lookup(&plate, &[&p[..1], &p[1..3], &p[3..5], &p[5..]]).is_none());
    }

    #[test]
    fn a_product_of_operands_seeded_in_different_passes_is_not_affine() {
        // d = 30: β₀ is in the first pass of 16, β₂₉ in the third.
        assert!(recorded(&opaque(20, 30, 1, Form::Product), 1).is_none());
    }

    /// The recorded path gives the dual path's bits: value and every
    /// partial, dense (β, the scale) and sparse (the gather θ[gᵢ]),
    /// over blocks, at every width, at points other than the recording's.
    #[test]
    fn the_recorded_path_gives_the_dual_paths_bits() {
        for (n, d, groups) in [
            (1, 1, 1),
            (9, 3, 2),
            (2 * crate::plate::BLOCK + 5, 10, 40),
            (50, 20, 3),
        ] {
            for form in [Form::Affine, Form::AffineScale] {
                let plate = opaque(n, d, groups, form);
                let m = 1 + groups + d + 1;
                let points: Vec<Vec<f64>> = (0..3)
                    .map(|r| {
                        (0..m)
                            .map(|k| ((k * 5 + r * 3) % 11) as f64 * 0.2 - 1.0)
                            .collect()
                    })
                    .collect();
                let plain: Vec<Vec<(u64, Vec<u64>)>> = points
                    .iter()
                    .map(|p| {
                        (0..m)
                            .step_by(16)
                            .map(|first| {
                                let r = run::<16>(&plate, p, groups, first);
                                (
                                    r.value.to_bits(),
                                    r.tangent().iter().map(|t| t.to_bits()).collect(),
                                )
                            })
                            .collect()
                    })
                    .collect();
                with_plate_cache(|| {
                    for (p, want) in points.iter().zip(&plain) {
                        for (pass, first) in (0..m).step_by(16).enumerate() {
                            let r = run::<16>(&plate, p, groups, first);
                            let got: Vec<u64> = r.tangent().iter().map(|t| t.to_bits()).collect();
                            assert_eq!((r.value.to_bits(), got), want[pass], "n {n} d {d}");
                        }
                    }
                    let key = plate.cache_key().expect("a key");
                    let slot = current().expect("a scope").slot(key);
                    assert!(slot.get().is_some_and(|r| r.cache.is_some()), "recorded");
                });
            }
        }
    }

    /// Logistic regression through a helper, as the examples write it:
    /// recorded, with the same bits.
    struct Logistic {
        x: Vec<f64>,
        y: Vec<u64>,
    }

    impl Logistic {
        fn eta<S: Scalar>(&self, i: usize, beta: &[S]) -> S {
            beta.iter()
                .enumerate()
                .map(|(j, &b)| b * self.x[i * beta.len() + j])
                .sum()
        }
    }

    impl Plate for Logistic {
        type Kernel = BernoulliLogitKernel;
        fn kernel(&self) -> Self::Kernel {
            BernoulliLogitKernel
        }
        fn len(&self) -> usize {
            self.y.len()
        }
        fn obs(&self, i: usize) -> u64 {
            self.y[i]
        }
        fn args<S: Scalar>(&self, i: usize, ops: &[&[S]], out: &mut [S]) {
            out[0] = self.eta(i, ops[0]);
        }
        fn cache_key(&self) -> Option<PlateKey> {
            Some(PlateKey::new(self, "y"))
        }
    }

    #[test]
    fn a_helper_linear_predictor_is_recorded_with_the_same_bits() {
        let (n, d) = (1000, 10);
        let plate = Logistic {
            x: (0..n * d)
                .map(|k| ((k * 31 % 97) as f64) / 40.0 - 1.2)
                .collect(),
            y: (0..n).map(|i| (i % 3 == 0) as u64).collect(),
        };
        let beta: Vec<Dual<16>> = (0..d)
            .map(|j| Dual::variable(0.1 * j as f64 - 0.4, j))
            .collect();
        let plain = preaccumulate(&plate, Dual::constant(0.0), &[&beta[..]]);
        let (first, second) = with_plate_cache(|| {
            (
                preaccumulate(&plate, Dual::constant(0.0), &[&beta[..]]),
                preaccumulate(&plate, Dual::constant(0.0), &[&beta[..]]),
            )
        });
        for r in [first, second] {
            assert_eq!(r.value.to_bits(), plain.value.to_bits());
            assert_eq!(
                r.tangent().map(f64::to_bits),
                plain.tangent().map(f64::to_bits)
            );
        }
        let values: Vec<f64> = beta.iter().map(|b| b.value).collect();
        let cache = with_plate_cache(|| lookup(&plate, &[&values[..]])).expect("affine");
        assert!(cache.replays(), "a left fold in operand order is replayed");
    }

    /// The same predictor summed from the last coefficient down: affine,
    /// so its derivatives are recorded, but not the fold in operand order,
    /// so its values come from its own code; the same bits either way.
    struct Backwards(Logistic);

    impl Plate for Backwards {
        type Kernel = BernoulliLogitKernel;
        fn kernel(&self) -> Self::Kernel {
            BernoulliLogitKernel
        }
        fn len(&self) -> usize {
            self.0.y.len()
        }
        fn obs(&self, i: usize) -> u64 {
            self.0.y[i]
        }
        fn args<S: Scalar>(&self, i: usize, ops: &[&[S]], out: &mut [S]) {
            let d = ops[0].len();
            out[0] = (0..d).rev().map(|j| ops[0][j] * self.0.x[i * d + j]).sum();
        }
        fn cache_key(&self) -> Option<PlateKey> {
            Some(PlateKey::new(self, "y"))
        }
    }

    #[test]
    fn a_fold_in_another_order_is_recorded_but_not_replayed() {
        let (n, d) = (300, 5);
        let plate = Backwards(Logistic {
            x: (0..n * d)
                .map(|k| ((k * 31 % 97) as f64) / 40.0 - 1.2)
                .collect(),
            y: (0..n).map(|i| (i % 3 == 0) as u64).collect(),
        });
        let beta: Vec<Dual<8>> = (0..d)
            .map(|j| Dual::variable(0.3 * j as f64 - 0.4, j))
            .collect();
        let values: Vec<f64> = beta.iter().map(|b| b.value).collect();
        let plain = preaccumulate(&plate, Dual::constant(0.0), &[&beta[..]]);
        with_plate_cache(|| {
            let cache = lookup(&plate, &[&values[..]]).expect("affine");
            assert!(!cache.replays());
            let r = preaccumulate(&plate, Dual::constant(0.0), &[&beta[..]]);
            assert_eq!(r.value.to_bits(), plain.value.to_bits());
            assert_eq!(
                r.tangent().map(f64::to_bits),
                plain.tangent().map(f64::to_bits)
            );
        });
    }

    /// `yᵢ ~ N(Σⱼ βⱼ x[j·n + i], σᵢ)` with `x` column-major (as nalgebra
    /// stores a `DMatrix`), over operands `β, [s]`: `σᵢ` is `1.5`,
    /// `scale[i]` or, with `scale_operand`, `s/2 + 1`. `f64_data` exposes
    /// `shared`; the key is `key` when set, else the plate's address.
    struct Columns {
        x: Vec<f64>,
        shared: Vec<Vec<f64>>,
        scale: Option<Vec<f64>>,
        scale_operand: bool,
        y: Vec<f64>,
        d: usize,
        key: Option<PlateKey>,
    }

    impl Columns {
        fn new(n: usize, d: usize) -> Self {
            let x: Vec<f64> = (0..n * d)
                .map(|k| ((k * 37 % 101) as f64) / 50.0 - 1.0)
                .collect();
            Self {
                shared: vec![x.clone()],
                x,
                scale: None,
                scale_operand: false,
                y: (0..n).map(|i| ((i * 13 % 29) as f64) / 7.0 - 2.0).collect(),
                d,
                key: None,
            }
        }
    }

    impl Plate for Columns {
        type Kernel = NormalKernel;
        fn kernel(&self) -> NormalKernel {
            NormalKernel
        }
        fn len(&self) -> usize {
            self.y.len()
        }
        fn obs(&self, i: usize) -> f64 {
            self.y[i]
        }
        fn args<S: Scalar>(&self, i: usize, ops: &[&[S]], out: &mut [S]) {
            let n = self.y.len();
            out[0] = (0..self.d).map(|j| ops[0][j] * self.x[j * n + i]).sum();
            out[1] = match &self.scale {
                _ if self.scale_operand => ops[1][0] * 0.5 + 1.0,
                Some(scale) => S::constant(scale[i]),
                None => S::constant(1.5),
            };
        }
        fn cache_key(&self) -> Option<PlateKey> {
            self.key.or(Some(PlateKey::new(self, "y")))
        }
        fn f64_data(&self, k: usize) -> Option<&[f64]> {
            self.shared.get(k).map(Vec::as_slice)
        }
    }

    /// Value and partials (bits) of `plate` at `p` (`β` then `s`) on
    /// `Dual<16>`.
    fn gradient_bits(plate: &Columns, p: &[f64]) -> (u64, Vec<u64>) {
        let duals: Vec<Dual<16>> = p
            .iter()
            .enumerate()
            .map(|(j, &v)| Dual::variable(v, j))
            .collect();
        let (beta, s) = duals.split_at(plate.d);
        let r = preaccumulate(plate, Dual::constant(0.0), &[beta, s]);
        (
            r.value.to_bits(),
            r.tangent().iter().map(|t| t.to_bits()).collect(),
        )
    }

    /// The plate's gradient in a scope (recorded at the first point,
    /// replayed at both) is the dual path's, bit for bit; the record.
    fn recorded_with_the_dual_bits(plate: &Columns) -> Arc<AffineCache> {
        let points: Vec<Vec<f64>> = (0..2)
            .map(|r| {
                (0..=plate.d)
                    .map(|j| 0.1 * (j + 3 * r) as f64 - 0.35)
                    .collect()
            })
            .collect();
        let outside: Vec<_> = points.iter().map(|p| gradient_bits(plate, p)).collect();
        with_plate_cache(|| {
            for (p, want) in points.iter().zip(&outside) {
                assert_eq!(gradient_bits(plate, p), *want);
            }
            let (beta, s) = points[0].split_at(plate.d);
            lookup(plate, &[beta, s]).expect("affine")
        })
    }

    /// The dense columns: `Some((slice, offset))` for a borrowed one,
    /// `None` for a copy.
    fn columns_of(cache: &AffineCache) -> Vec<Option<(usize, usize)>> {
        let Coefficients::Dense { columns, .. } = &cache.arguments[0] else {
            panic!("the mean is dense");
        };
        columns
            .iter()
            .map(|r| match r {
                Run::Borrowed { slice, offset } => Some((*slice, *offset)),
                Run::Copied(_) => None,
                Run::Splat(_) => panic!("a dense column is no splat"),
            })
            .collect()
    }

    #[test]
    fn a_record_that_borrows_the_data_gives_the_bits_of_one_that_copies() {
        for (n, d) in [(1, 1), (9, 3), (2 * crate::plate::BLOCK + 5, 10), (40, 15)] {
            let mut plate = Columns::new(n, d);
            // Unrelated data first: the columns are found in the second.
            plate.shared.insert(0, plate.y.clone());
            let borrowing = recorded_with_the_dual_bits(&plate);
            assert!(borrowing.replays());
            assert_eq!(borrowing.copied_bytes(), 0, "n {n} d {d}");
            let want: Vec<_> = (0..d).map(|j| Some((1, j * n))).collect();
            assert_eq!(columns_of(&borrowing), want);
            // Without data to borrow: copies, the same bits.
            plate.shared.clear();
            let copying = recorded_with_the_dual_bits(&plate);
            assert_eq!(copying.copied_bytes(), n * d * 8);
            assert_eq!(columns_of(&copying), vec![None; d]);
        }
    }

    #[test]
    fn data_that_do_not_hold_the_coefficients_are_copied() {
        let (n, d) = (300, 4);
        let mut plate = Columns::new(n, d);
        // The design row-major: no column is a run of it.
        plate.shared = vec![
            (0..n * d)
                .map(|k| plate.x[(k % d) * n + k / d])
                .collect::<Vec<f64>>(),
        ];
        let cache = recorded_with_the_dual_bits(&plate);
        assert_eq!(columns_of(&cache), vec![None; d]);
        assert_eq!(cache.copied_bytes(), n * d * 8);
        // One element of column 2 differs (not a sampled one): column 2 is
        // found, matches up to it, then copied; the others borrowed.
        let mut plate = Columns::new(n, d);
        plate.shared[0][2 * n + n / 2 + 1] += 1.0;
        let cache = recorded_with_the_dual_bits(&plate);
        assert_eq!(
            columns_of(&cache),
            vec![Some((0, 0)), Some((0, n)), None, Some((0, 3 * n))]
        );
        assert_eq!(cache.copied_bytes(), n * 8);
    }

    #[test]
    fn constant_arguments_are_a_splat_or_borrowed_and_two_dense_arguments_borrow() {
        let (n, d) = (300, 5);
        let mut plate = Columns::new(n, d);
        let cache = recorded_with_the_dual_bits(&plate);
        assert!(matches!(
            cache.arguments[1],
            Coefficients::Constant {
                values: Some(Run::Splat(v))
            } if v == 1.5
        ));
        assert_eq!(cache.copied_bytes(), 0);
        let scale: Vec<f64> = (0..n).map(|i| 0.5 + (i % 7) as f64 * 0.25).collect();
        plate.scale = Some(scale.clone());
        plate.shared.push(scale);
        let cache = recorded_with_the_dual_bits(&plate);
        assert!(matches!(
            cache.arguments[1],
            Coefficients::Constant {
                values: Some(Run::Borrowed {
                    slice: 1,
                    offset: 0
                })
            }
        ));
        assert_eq!(cache.copied_bytes(), 0);
        // The scale an operand: two dense arguments (the general loop),
        // not replayed; the mean's columns still borrowed.
        plate.scale_operand = true;
        let cache = recorded_with_the_dual_bits(&plate);
        assert!(!cache.replays());
        assert_eq!(
            columns_of(&cache),
            (0..d).map(|j| Some((0, j * n))).collect::<Vec<_>>()
        );
    }

    #[test]
    fn another_plate_under_the_same_key_is_recorded_anew() {
        let key = PlateKey::new(&(), "shared");
        let mut small = Columns::new(50, 3);
        small.key = Some(key);
        let mut large = Columns::new(700, 3);
        large.key = Some(key);
        let p = [0.2, -0.1, 0.3, 0.4];
        let want = [gradient_bits(&small, &p), gradient_bits(&large, &p)];
        with_plate_cache(|| {
            for _ in 0..2 {
                assert_eq!(gradient_bits(&small, &p), want[0]);
                assert_eq!(gradient_bits(&large, &p), want[1]);
            }
            let cache = lookup(&large, &[&p[..3], &p[3..]]).expect("affine");
            assert_eq!(cache.n, 700);
        });
    }

    #[test]
    fn the_column_search_keeps_within_its_budget() {
        let data: Vec<f64> = vec![0.0; 1000];
        let slices = [&data[..]];
        let at = sample_elements(100);
        let want = vec![0.0; at.len()];
        // Every position matches the samples: four candidates, then stop.
        let mut budget = 10_000;
        let runs = find_runs(&slices, (&at, &want), 100, None, &mut budget);
        assert_eq!(runs, vec![(0, 0), (0, 1), (0, 2), (0, 3)]);
        // A budget below one scan: no search.
        let mut budget = 100;
        assert!(find_runs(&slices, (&at, &want), 100, None, &mut budget).is_empty());
        assert_eq!(budget, 100);
    }
}
