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

/// The most memory one plate's recorded coefficients may take: above it
/// the plate keeps the dual path (the coefficients are about the size of
/// the data the arguments read, so this is also a bound on the copy).
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

/// A plate's recorded coefficients, or `None` when it is not affine (or
/// too large to record).
type Slot = Arc<OnceLock<Option<Arc<AffineCache>>>>;

/// The plates' recorded coefficients of one scope.
#[derive(Default)]
pub(crate) struct Store {
    slots: Mutex<HashMap<PlateKey, Slot>>,
}

impl Store {
    /// The slot of `key`, created empty the first time.
    fn slot(&self, key: PlateKey) -> Slot {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(slots.entry(key).or_default())
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
    let previous = CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), store));
    let _restore = Restore(previous);
    f()
}

/// The recorded coefficients of `plate` for these operands, when a scope
/// is open and the plate has a key: recorded now, at the operands' values,
/// if this is the first time (`None` if it is not affine). Without a scope
/// or a key this costs nothing (the operands' values are read only to
/// record).
pub(crate) fn lookup<P: Plate, T: Scalar>(
    plate: &P,
    operands: &[&[T]],
) -> Option<Arc<AffineCache>> {
    let key = plate.cache_key()?;
    let store = current()?;
    let slot = store.slot(key);
    let cache = slot.get_or_init(|| {
        let values: Vec<Vec<f64>> = operands
            .iter()
            .map(|g| g.iter().map(|v| v.value()).collect())
            .collect();
        let groups: Vec<&[f64]> = values.iter().map(Vec::as_slice).collect();
        let sizes: Vec<usize> = operands.iter().map(|g| g.len()).collect();
        AffineCache::record(plate, &sizes, &groups).map(Arc::new)
    });
    let fits = |c: &&Arc<AffineCache>| {
        c.sizes.len() == operands.len() && c.sizes.iter().zip(operands).all(|(&n, g)| n == g.len())
    };
    cache.as_ref().filter(fits).cloned()
}

/// One argument's coefficients over the elements.
#[derive(Debug)]
pub(crate) enum Coefficients {
    /// The argument depends on no operand: its value at each element when
    /// the plate is replayed (empty otherwise).
    Constant { values: Vec<f64> },
    /// Element `i`'s coefficients of operands `lo..lo + width` at
    /// `values[i · width..]` (zeros included).
    Dense {
        lo: usize,
        width: usize,
        values: Vec<f64>,
    },
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
    /// One per argument.
    arguments: Vec<Coefficients>,
    /// Every argument is a recorded constant or the left fold
    /// `Σⱼ θⱼ·Cₐ,ᵢⱼ` over its dense coefficients' operands, in order: its
    /// `f64` value is then [`AffineCache::replay`]'s, the same operations
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

impl AffineCache {
    /// Probes every element's arguments at `values` (two passes: the
    /// extent of each argument's coefficients, then the coefficients), or
    /// `None` if an argument is not affine or the record would exceed
    /// [`MAX_CACHE_BYTES`].
    fn record<P: Plate>(plate: &P, sizes: &[usize], values: &[&[f64]]) -> Option<Self> {
        let (n, arity) = (plate.len(), P::Kernel::ARGS);
        let m: usize = sizes.iter().sum();
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
        probe(
            plate,
            values,
            m,
            |_, a, lane, _| {
                let s = &mut surveys[a];
                s.lo = s.lo.min(lane);
                s.hi = s.hi.max(lane + 1);
                s.nonzero += 1;
            },
            |_, a, chain, _| {
                let chain = match chain {
                    Chain::Zero => Chain::Constant,
                    other => other,
                };
                match chains[a] {
                    None => chains[a] = Some(chain),
                    Some(c) => agree[a] &= c == chain,
                }
            },
        )?;
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
        let mut bytes = 0usize;
        let mut arguments: Vec<Coefficients> = surveys
            .iter()
            .map(|s| {
                if s.nonzero == 0 {
                    if replay {
                        bytes = bytes.saturating_add(n.saturating_mul(8));
                    }
                    return Coefficients::Constant { values: Vec::new() };
                }
                let width = s.hi - s.lo;
                let dense = width.saturating_mul(n);
                if dense <= 2 * s.nonzero {
                    bytes = bytes.saturating_add(dense.saturating_mul(8));
                    Coefficients::Dense {
                        lo: s.lo,
                        width,
                        values: Vec::new(),
                    }
                } else {
                    bytes = bytes
                        .saturating_add(s.nonzero.saturating_mul(12))
                        .saturating_add(n.saturating_mul(8));
                    Coefficients::Sparse {
                        starts: Vec::new(),
                        lanes: Vec::new(),
                        values: Vec::new(),
                    }
                }
            })
            .collect();
        if bytes > MAX_CACHE_BYTES {
            return None;
        }
        for (c, s) in arguments.iter_mut().zip(&surveys) {
            match c {
                Coefficients::Dense { width, values, .. } => values.resize(*width * n, 0.0),
                Coefficients::Sparse {
                    starts,
                    lanes,
                    values,
                } => {
                    starts.reserve_exact(n + 1);
                    starts.push(0);
                    lanes.reserve_exact(s.nonzero);
                    values.reserve_exact(s.nonzero);
                }
                Coefficients::Constant { .. } => {}
            }
        }
        let mut next = 0;
        let constants: std::cell::RefCell<Vec<Vec<f64>>> =
            std::cell::RefCell::new(vec![Vec::new(); arity]);
        probe(
            plate,
            values,
            m,
            |i, a, lane, coefficient| {
                // Close the sparse rows of the elements before `i`.
                while next < i {
                    close_rows(&mut arguments);
                    next += 1;
                }
                match &mut arguments[a] {
                    Coefficients::Dense { lo, width, values } => {
                        values[i * *width + lane - *lo] = coefficient;
                    }
                    Coefficients::Sparse { lanes, values, .. } => {
                        lanes.push(u32::try_from(lane).unwrap_or(u32::MAX));
                        values.push(coefficient);
                    }
                    Coefficients::Constant { .. } => {}
                }
            },
            |_, a, _, value| {
                if replay && surveys[a].nonzero == 0 {
                    constants.borrow_mut()[a].push(value);
                }
            },
        )?;
        for (c, recorded) in arguments.iter_mut().zip(constants.into_inner()) {
            if let Coefficients::Constant { values } = c {
                *values = recorded;
            }
        }
        while next < n {
            close_rows(&mut arguments);
            next += 1;
        }
        Some(Self {
            sizes: sizes.to_vec(),
            arguments,
            replay,
        })
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
            for (a, coefficients) in self.arguments.iter().enumerate() {
                let g = grad[a * width + b];
                if g == 0.0 {
                    continue;
                }
                match coefficients {
                    Coefficients::Constant { .. } => {}
                    Coefficients::Dense {
                        lo,
                        width: w,
                        values,
                    } => {
                        let row = &values[i * w..(i + 1) * w];
                        for (p, &c) in partials[*lo..*lo + w].iter_mut().zip(row) {
                            *p += g * c;
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
}

impl AffineCache {
    /// True when [`AffineCache::replay`] gives the arguments' values.
    pub(crate) fn replays(&self) -> bool {
        self.replay
    }

    /// The arguments of elements `start..start + len` at the operands
    /// `theta` (flat), into `columns` (argument `a` of element `start + b`
    /// at `a · width + b`): each fold as `θ_f·c_f + θ_{f+1}·c_{f+1} + …` in
    /// operand order, each constant as recorded.
    pub(crate) fn replay(
        &self,
        start: usize,
        len: usize,
        theta: &[f64],
        columns: &mut [f64],
        width: usize,
    ) {
        for (a, coefficients) in self.arguments.iter().enumerate() {
            let out = &mut columns[a * width..a * width + len];
            match coefficients {
                Coefficients::Constant { values } => {
                    out.copy_from_slice(&values[start..start + len]);
                }
                Coefficients::Dense {
                    lo,
                    width: w,
                    values,
                } => {
                    let theta = &theta[*lo..*lo + w];
                    let rows = values[start * w..(start + len) * w].chunks_exact(*w);
                    for (o, row) in out.iter_mut().zip(rows) {
                        let mut s = theta[0] * row[0];
                        for (&t, &c) in theta[1..].iter().zip(&row[1..]) {
                            s += t * c;
                        }
                        *o = s;
                    }
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
            .arguments
            .iter()
            .enumerate()
            .filter(|(_, c)| !matches!(c, Coefficients::Constant { .. }));
        let (
            Some((
                a,
                Coefficients::Dense {
                    lo,
                    width: w,
                    values,
                },
            )),
            None,
        ) = (dense.next(), dense.next())
        else {
            return false;
        };
        let (lo, w) = (*lo, *w);
        let g = &grad[a * width..a * width + len];
        let rows = &values[start * w..(start + len) * w];
        let p = &mut partials[lo..lo + w];
        macro_rules! widths {
            ($($n:literal)+) => {
                match w {
                    $($n => vmath::dispatch(DenseRun::<$n> { g, rows, p }),)+
                    _ => return false,
                }
            };
        }
        widths!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
        true
    }
}

/// `p += Σ_b g_b · rows_b` over a block, `W` coefficients an element, in
/// element order, skipping `g_b = 0` (the general loop's additions).
struct DenseRun<'a, const W: usize> {
    g: &'a [f64],
    rows: &'a [f64],
    p: &'a mut [f64],
}

impl<const W: usize> vmath::Simd for DenseRun<'_, W> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let mut acc = [0.0; W];
        acc.copy_from_slice(self.p);
        for (&g, row) in self.g.iter().zip(self.rows.chunks_exact(W)) {
            if g == 0.0 {
                continue;
            }
            for (s, &c) in acc.iter_mut().zip(row) {
                *s += g * c;
            }
        }
        self.p.copy_from_slice(&acc);
    }
}

/// Ends one element's row of every sparse argument.
fn close_rows(arguments: &mut [Coefficients]) {
    for c in arguments {
        if let Coefficients::Sparse { starts, lanes, .. } = c {
            starts.push(lanes.len());
        }
    }
}

/// Evaluates every element's arguments on [`Probe`]s seeded on the
/// operands (16 at a time), calling `visit(i, a, j, Cₐ,ᵢⱼ)` for each
/// nonzero coefficient in element order (then argument, then operand);
/// `None` as soon as an argument is not affine.
fn probe<P: Plate>(
    plate: &P,
    values: &[&[f64]],
    m: usize,
    mut visit: impl FnMut(usize, usize, usize, f64),
    mut argument: impl FnMut(usize, usize, Chain, f64),
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
                if pass == 0 {
                    argument(i, a, p.chain, p.dual.value);
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
            visit(i, a, j, t);
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
                    assert!(slot.get().is_some_and(Option::is_some), "recorded");
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
}
