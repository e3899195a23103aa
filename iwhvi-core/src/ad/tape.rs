//! Reverse-mode differentiation on a thread-local tape: the second engine
//! behind the same [`Scalar`] code.
//!
//! Forward mode costs `⌈P / W⌉` passes for `P` parameters; reverse mode
//! records one evaluation on a tape and sweeps it backwards once, whatever
//! `P`. A [`Var`] is a value and an index into the tape of the thread that
//! made it; every operation on `Var`s appends a node with the partial
//! derivatives of its result in its operands, and
//! [`TapeEngine::value_and_gradient_into`] accumulates adjoints from the
//! output back to the inputs. The tape is cleared at the start of every
//! gradient and keeps its allocation, so a fit allocates it once; its
//! length grows with the work of one evaluation (for DIWHVI, with `M × K`),
//! which is the memory forward mode does not spend.
//!
//! ```
//! use iwhvi_core::tape::TapeEngine;
//! use iwhvi_core::{Differentiable, Scalar};
//!
//! struct Rosenbrock;
//! impl Differentiable for Rosenbrock {
//!     fn eval<T: Scalar>(&self, x: &[T]) -> T {
//!         (-x[0] + 1.0).square() + (x[1] - x[0].square()).square() * 100.0
//!     }
//! }
//! let (value, grad) = TapeEngine.value_and_gradient(&Rosenbrock, &[0.5, 0.5]);
//! assert_eq!(value, 6.5);
//! assert_eq!(grad, vec![-51.0, 50.0]);
//! ```

use std::cell::RefCell;
use std::fmt;

use super::rules::{self, ChainRule, Partials, Rule};
use crate::gradient::{Differentiable, GradientEngine, inherent_engine_methods};
use crate::scalar::Scalar;
use crate::vector::VectorFunction;

/// The index of a constant: no node, no adjoint.
const CONSTANT: u32 = u32::MAX;

/// The recorded evaluation: node `i` has the edges
/// `edges[starts[i]..starts[i + 1]]`, each `(operand, ∂node/∂operand)`;
/// the outputs of a [`VectorFunction`] are nodes without edges, and the
/// function with its operands is one of `ops`, in recording order.
///
/// Every buffer is kept between recordings (cleared, not freed), so a fit
/// allocates the tape once: an op's blocks live in one tape-wide list, their
/// values in one tape-wide arena, its outputs' values in one more.
#[derive(Default)]
struct Tape {
    starts: Vec<u32>,
    edges: Vec<(u32, f64)>,
    ops: Vec<Op>,
    /// Every op's operand blocks, op after op (`Op::blocks` its range).
    blocks: Vec<Block>,
    /// The nodes of every scattered block, block after block.
    scattered: Vec<u32>,
    /// The values of every block, block after block (a shared block's
    /// once): `Block::values` its range.
    values: Vec<f64>,
    /// The values of the large blocks that ops have read in this
    /// recording: a network's weights are read once, whatever the calls.
    shared: Vec<(Shared, std::ops::Range<usize>)>,
    /// The backward sweep's adjoints, kept to reuse the allocation: all
    /// zero between sweeps unless `adjoint_dirty`.
    adjoint: Vec<f64>,
    /// A sweep began and did not finish (a panic inside an op's
    /// vector–Jacobian product): `adjoint` must be zeroed before use.
    adjoint_dirty: bool,
    /// The values of every op's outputs, op after op, in
    /// `ys[..ys_end]`: one buffer kept between recordings instead of one
    /// allocation per op. Its length is the most any recording has used
    /// (the entries past `ys_end` are an earlier recording's), so that an
    /// op that writes every output ([`VectorFunction::writes_every_output`])
    /// gets its place without a fill.
    ys: Vec<f64>,
    ys_end: usize,
    /// The sweep's per-block buffers for the adjoints of an op's scattered
    /// and overlapping blocks, kept to reuse their allocations.
    buffers: Vec<Vec<f64>>,
    /// The inputs handed to the last evaluation, kept to reuse the
    /// allocation and, for an evaluation of the same shape, the indices
    /// ([`start_tape`]).
    inputs: Inputs,
    /// Where the recorded inputs lie while an evaluation borrows them
    /// (from [`start_tape`] to [`keep_inputs`]).
    lent: Option<Lent>,
}

/// The inputs of an evaluation: every entry, the `recorded` ones the
/// nodes `0..recorded.len()` in order, the others constants.
#[derive(Default)]
struct Inputs {
    vars: Vec<Var>,
    recorded: std::ops::Range<usize>,
}

/// The address of the first recorded input and the number of them, while
/// the evaluation borrows them: a block inside that memory is a run of
/// them, read from its address ([`Tape::lent_run`]).
#[derive(Clone, Copy)]
struct Lent {
    at: usize,
    len: usize,
}

/// A recorded [`VectorFunction`]: its outputs are the nodes
/// `first..first + y.len()`, their values `Tape::ys[y]`, its operand
/// blocks `Tape::blocks[blocks]`.
struct Op {
    first: u32,
    y: std::ops::Range<usize>,
    blocks: std::ops::Range<usize>,
    function: Box<dyn VectorFunction>,
}

/// An operand block of an [`Op`]: where its adjoints go, and where its
/// values are.
struct Block {
    operands: Operands,
    values: Values,
}

/// Where a block's values are.
#[derive(Clone)]
enum Values {
    /// Read from the block into `Tape::values[range]`.
    Read(std::ops::Range<usize>),
    /// An earlier op's outputs, `Tape::ys[range]`, as they stand: a block
    /// of consecutive nodes within one op's outputs is not copied.
    Outputs(std::ops::Range<usize>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Self::Read(range) | Self::Outputs(range) => range.len(),
        }
    }

    /// The values in the tape's arenas.
    #[inline]
    fn of<'a>(&self, read: &'a [f64], outputs: &'a [f64]) -> &'a [f64] {
        match self {
            Self::Read(range) => &read[range.clone()],
            Self::Outputs(range) => &outputs[range.clone()],
        }
    }
}

/// Where a block's adjoints go.
#[derive(Clone)]
enum Operands {
    /// Constants only: nowhere.
    Constant,
    /// The consecutive nodes from this one.
    Range(u32),
    /// One node per entry (`CONSTANT` for a constant entry):
    /// `Tape::scattered[from..from + block length]`.
    Scattered(usize),
}

/// What a shared block of values was read from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shared {
    /// Consecutive nodes, `(first, length)`: their values cannot change.
    Nodes(u32, u32),
    /// Constants at this address and length: the same values only if they
    /// compare equal (the memory may hold other constants by now).
    Constants(usize, usize),
}

/// Blocks of consecutive nodes at least this long share their values
/// between ops (a smaller one is copied).
const SHARED_BLOCK: usize = 32;
/// The most blocks shared in one recording (a linear search finds them).
const SHARED_BLOCKS: usize = 64;

/// The bits an op's outputs hold before a function that promises to write
/// every one runs, in builds with debug assertions: a NaN whose payload no
/// arithmetic makes, so an output left unwritten is caught.
#[cfg(debug_assertions)]
const UNWRITTEN: u64 = 0x7ff4_dead_beef_0bad;

impl Tape {
    fn clear(&mut self) {
        self.starts.clear();
        self.edges.clear();
        self.ops.clear();
        self.blocks.clear();
        self.scattered.clear();
        self.values.clear();
        self.ys_end = 0;
        self.shared.clear();
        self.lent = None;
        self.starts.push(0);
    }

    /// The first node of `block` when it lies within the recorded inputs
    /// the evaluation borrows ([`Lent`]), from its address alone: those
    /// entries are the nodes `0..` in order, and nothing can change them
    /// while they are lent (the evaluation holds a shared borrow; no other
    /// allocation overlaps a live one). A block elsewhere (a copy of
    /// them, anything else) gets `None` and the scan.
    #[inline]
    fn lent_run(&self, block: &[Var]) -> Option<u32> {
        let lent = self.lent?;
        let size = std::mem::size_of::<Var>();
        let bytes = (block.as_ptr() as usize).wrapping_sub(lent.at);
        let first = bytes / size;
        let inside = bytes % size == 0 && first <= lent.len && block.len() <= lent.len - first;
        inside.then_some(first as u32)
    }

    /// Where a block's adjoints go (a scattered block's nodes appended to
    /// `scattered`).
    fn operands(&mut self, block: &[Var]) -> Operands {
        let Some(first) = block.first() else {
            return Operands::Constant;
        };
        if let Some(first) = self.lent_run(block) {
            return Operands::Range(first);
        }
        if block.iter().all(Var::is_constant) {
            return Operands::Constant;
        }
        let consecutive = !first.is_constant() && consecutive_from(first.index, block);
        if consecutive {
            Operands::Range(first.index)
        } else {
            let from = self.scattered.len();
            self.scattered.extend(block.iter().map(|v| v.index));
            Operands::Scattered(from)
        }
    }

    /// A block's values: an earlier op's outputs when the block is a run
    /// of them, or the values of an earlier block read from the same large
    /// range of nodes (or the same constants), or read now into `values`.
    fn values(&mut self, block: &[Var], operands: &Operands) -> Values {
        if let Operands::Range(first) = *operands
            && let Some(outputs) = self.outputs_of(first, block.len())
        {
            return Values::Outputs(outputs);
        }
        Values::Read(self.read(block, operands))
    }

    /// Where in `ys` the values of the nodes `first..first + len` are, if
    /// they are outputs of one op (the last op's, or found by bisection).
    #[inline]
    fn outputs_of(&self, first: u32, len: usize) -> Option<std::ops::Range<usize>> {
        let holds = |op: &Op| op.first <= first;
        let at = match self.ops.last() {
            Some(op) if holds(op) => self.ops.len() - 1,
            _ => self.ops.partition_point(holds).checked_sub(1)?,
        };
        let op = &self.ops[at];
        let offset = (first - op.first) as usize;
        (offset + len <= op.y.len()).then(|| op.y.start + offset..op.y.start + offset + len)
    }

    /// A block's values read into `values`, or an earlier block's read
    /// from the same large range of nodes (or the same constants).
    fn read(&mut self, block: &[Var], operands: &Operands) -> std::ops::Range<usize> {
        let start = self.values.len();
        let read = |values: &mut Vec<f64>| {
            values.extend(block.iter().map(|v| v.value));
            start..values.len()
        };
        if block.len() < SHARED_BLOCK {
            return read(&mut self.values);
        }
        let key = match *operands {
            Operands::Range(first) => Shared::Nodes(first, block.len() as u32),
            Operands::Constant => Shared::Constants(block.as_ptr() as usize, block.len()),
            Operands::Scattered(_) => return read(&mut self.values),
        };
        let found = self.shared.iter().position(|(k, _)| *k == key);
        if let Some(at) = found {
            let range = self.shared[at].1.clone();
            let same = matches!(key, Shared::Nodes(..))
                || self.values[range.clone()]
                    .iter()
                    .zip(block)
                    .all(|(a, v)| a.to_bits() == v.value.to_bits());
            if same {
                return range;
            }
            let range = read(&mut self.values);
            self.shared[at].1 = range.clone();
            return range;
        }
        let range = read(&mut self.values);
        if self.shared.len() < SHARED_BLOCKS {
            self.shared.push((key, range.clone()));
        }
        range
    }

    /// The place of `m` new outputs at the end of `ys[..ys_end]`, zeroed
    /// unless the function writes every one (then an earlier recording's
    /// values, or in builds with debug assertions the bits [`UNWRITTEN`]).
    fn outputs(&mut self, m: usize, written: bool) -> std::ops::Range<usize> {
        let (start, end) = (self.ys_end, self.ys_end + m);
        if self.ys.len() < end {
            self.ys.resize(end, 0.0);
        }
        let place = &mut self.ys[start..end];
        if !written {
            place.fill(0.0);
        } else {
            #[cfg(debug_assertions)]
            place.fill(f64::from_bits(UNWRITTEN));
        }
        self.ys_end = end;
        start..end
    }

    /// Appends a node with the given edges (in groups of `C`, in order),
    /// constants skipped, and returns its index; `None`, recording nothing,
    /// when every operand is a constant.
    #[inline(always)]
    fn push<const C: usize>(
        &mut self,
        groups: impl Iterator<Item = [(u32, f64); C]>,
    ) -> Option<u32> {
        let start = self.edges.len();
        // Plain nested loops: `extend` over a flattened, filtered adaptor
        // compiles to a `try_fold` that costs more than the pushes themselves.
        for group in groups {
            for (operand, partial) in group {
                if operand != CONSTANT {
                    self.edges.push((operand, partial));
                }
            }
        }
        (self.edges.len() > start).then(|| self.close())
    }

    /// Closes the node whose edges were appended since the last one: the
    /// one place a node is made.
    #[inline]
    fn close(&mut self) -> u32 {
        let index = self.starts.len() as u32 - 1;
        self.starts.push(self.edges.len() as u32);
        index
    }

    /// Closes `count` nodes without edges at once (what `count` calls of
    /// [`Tape::close`] with no edge between them would make): returns the
    /// first one's index.
    #[inline]
    fn close_run(&mut self, count: usize) -> u32 {
        let first = self.starts.len() as u32 - 1;
        let edges = self.edges.len() as u32;
        self.starts.extend(std::iter::repeat_n(edges, count));
        first
    }
}

thread_local! {
    static TAPE: RefCell<Tape> = const {
        RefCell::new(Tape {
            starts: Vec::new(),
            edges: Vec::new(),
            ops: Vec::new(),
            blocks: Vec::new(),
            scattered: Vec::new(),
            values: Vec::new(),
            shared: Vec::new(),
            adjoint: Vec::new(),
            adjoint_dirty: false,
            ys: Vec::new(),
            ys_end: 0,
            buffers: Vec::new(),
            inputs: Inputs {
                vars: Vec::new(),
                recorded: 0..0,
            },
            lent: None,
        })
    };
}

/// A value on the current thread's tape (or a constant).
#[derive(Clone, Copy, Debug)]
pub struct Var {
    value: f64,
    index: u32,
}

impl Var {
    /// A constant: recorded nowhere, derivative zero.
    #[inline(always)]
    pub const fn constant(value: f64) -> Self {
        Self {
            value,
            index: CONSTANT,
        }
    }

    /// True for a constant.
    #[inline(always)]
    pub const fn is_constant(&self) -> bool {
        self.index == CONSTANT
    }

    /// A new independent variable (a leaf of the tape); the engine
    /// records its inputs at once ([`start_tape`]).
    #[cfg(test)]
    fn input(value: f64) -> Self {
        let index = TAPE.with(|tape| tape.borrow_mut().close());
        Self { value, index }
    }
}

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value)
    }
}

rules::scalar_operators!([] Var);

/// One node per operation, with an edge `(operand, ∂ᵢ)` for each operand
/// that is not a constant.
impl ChainRule for Var {
    const SHARES_DIVISOR: bool = false;

    #[inline(always)]
    fn unary<R: Rule<1>>(rule: R, x: Self) -> Self {
        let value = rule.value([x.value]);
        if x.is_constant() || rule.constant_result() {
            return Self::constant(value);
        }
        let Partials { scaled, divisor } = rule.partials([x.value], value);
        Self::combine(value, [x].into_iter().zip(scaled), divisor)
    }

    #[inline(always)]
    fn binary<R: Rule<2>>(rule: R, a: Self, b: Self) -> Self {
        let value = rule.value([a.value, b.value]);
        if (a.is_constant() && b.is_constant()) || rule.constant_result() {
            return Self::constant(value);
        }
        let Partials { scaled, divisor } = rule.partials([a.value, b.value], value);
        Self::combine(value, [a, b].into_iter().zip(scaled), divisor)
    }

    #[inline(always)]
    fn combine(value: f64, terms: impl Iterator<Item = (Self, f64)>, divisor: f64) -> Self {
        Self::combine_grouped(value, terms.map(|term| [term]), divisor)
    }

    #[inline(always)]
    fn combine_grouped<const C: usize>(
        value: f64,
        groups: impl Iterator<Item = [(Self, f64); C]>,
        divisor: f64,
    ) -> Self {
        // Most rules' divisor is 1, and `p / 1` is `p`, bit for bit: the
        // test spares each edge a division (the divisor reaches the tape's
        // closure as a value in memory, not as the constant 1).
        let unit = divisor == 1.0;
        let edges = groups.map(move |group| {
            group.map(|(operand, partial)| {
                let partial = if unit { partial } else { partial / divisor };
                (operand.index, partial)
            })
        });
        match TAPE.with(|tape| tape.borrow_mut().push(edges)) {
            Some(index) => Self { value, index },
            None => Self::constant(value),
        }
    }
}

impl num_traits::Zero for Var {
    fn zero() -> Self {
        Self::constant(0.0)
    }
    /// Zero and a constant: a zero that carries a derivative is not skipped.
    fn is_zero(&self) -> bool {
        self.value == 0.0 && self.is_constant()
    }
}

impl num_traits::One for Var {
    fn one() -> Self {
        Self::constant(1.0)
    }
}

impl Scalar for Var {
    fn is_finite(self) -> bool {
        self.value.is_finite()
    }

    /// `f` in `f64` on the blocks' values; its outputs `m` new nodes
    /// without edges, `f` and its operands kept for the backward sweep.
    fn vector_op<F: VectorFunction>(f: F, x: &[&[Self]], out: &mut Vec<Self>) {
        out.clear();
        TAPE.with(|tape| record(&mut tape.borrow_mut(), Box::new(f), x, out));
    }

    rules::rule_methods!(value_field);
}

/// True when `block[k].index == first + k` for every `k`: sixteen entries
/// at a time without a branch inside, compiled for the CPU's best
/// instruction set, where a test per entry with an early exit ran one
/// compare at a time and cost more than the ops it classified (a 64 × 64
/// weight block read by a decoder layer per data point).
#[inline]
fn consecutive_from(first: u32, block: &[Var]) -> bool {
    struct Check<'a>(u32, &'a [Var]);
    impl crate::plate::vmath::Simd for Check<'_> {
        type Output = bool;
        #[inline(always)]
        fn run(self) -> bool {
            const CHUNK: usize = 16;
            let Check(first, block) = self;
            let (chunks, tail) = block.as_chunks::<CHUNK>();
            let mut start = first;
            for chunk in chunks {
                let mut mismatch = 0u32;
                for (k, v) in chunk.iter().enumerate() {
                    mismatch |= v.index ^ start.wrapping_add(k as u32);
                }
                if mismatch != 0 {
                    return false;
                }
                start = start.wrapping_add(CHUNK as u32);
            }
            tail.iter()
                .zip(0u32..)
                .all(|(v, k)| v.index == start.wrapping_add(k))
        }
    }
    crate::plate::vmath::dispatch(Check(first, block))
}

/// The most blocks whose per-op bookkeeping (the values' slice list, the
/// adjoint slots, the order of the ranges) lives in arrays on
/// the stack; an op with more allocates it.
const STACK_BLOCKS: usize = 4;

/// `work` on the blocks' values (in the tape's arenas `read` and
/// `outputs`) as one slice (the
/// slice list in an array on the stack for up to [`STACK_BLOCKS`] blocks,
/// a `Vec` for more).
#[inline]
fn with_values<R>(
    blocks: &[Block],
    read: &[f64],
    outputs: &[f64],
    work: impl FnOnce(&[&[f64]]) -> R,
) -> R {
    if blocks.len() <= STACK_BLOCKS {
        let mut values: [&[f64]; STACK_BLOCKS] = [&[]; STACK_BLOCKS];
        for (v, b) in values.iter_mut().zip(blocks) {
            *v = b.values.of(read, outputs);
        }
        work(&values[..blocks.len()])
    } else {
        let values: Vec<&[f64]> = blocks.iter().map(|b| b.values.of(read, outputs)).collect();
        work(&values)
    }
}

/// [`Var::vector_op`]'s recording, not generic over the function.
fn record(
    tape: &mut Tape,
    mut function: Box<dyn VectorFunction>,
    x: &[&[Var]],
    out: &mut Vec<Var>,
) {
    let (first_block, first_value, first_scattered) =
        (tape.blocks.len(), tape.values.len(), tape.scattered.len());
    for b in x {
        let operands = tape.operands(b);
        let values = tape.values(b, &operands);
        tape.blocks.push(Block { operands, values });
    }
    let written = function.writes_every_output();
    let y = tape.outputs(function.outputs(), written);
    let blocks = &tape.blocks[first_block..];
    // Blocks of outputs are earlier ops': before the new outputs' place.
    let (outputs, place) = tape.ys.split_at_mut(y.start);
    let place = &mut place[..y.len()];
    if blocks
        .iter()
        .all(|b| matches!(b.operands, Operands::Constant))
    {
        // No derivatives will follow: the plain value, and nothing kept.
        with_values(blocks, &tape.values, outputs, |values| {
            function.eval(values, place);
        });
        check_written(written, place);
        out.extend(place.iter().map(|&v| Var::constant(v)));
        tape.ys_end = y.start;
        tape.blocks.truncate(first_block);
        tape.scattered.truncate(first_scattered);
        if tape.shared.iter().all(|(_, r)| r.end <= first_value) {
            tape.values.truncate(first_value);
        }
        return;
    }
    with_values(blocks, &tape.values, outputs, |values| {
        function.eval_for_derivatives(values, place);
    });
    check_written(written, place);
    // The outputs are nodes `first..` without edges, in one run.
    let first = tape.close_run(y.len());
    out.extend(
        tape.ys[y.clone()]
            .iter()
            .zip(first..)
            .map(|(&value, index)| Var { value, index }),
    );
    tape.ops.push(Op {
        first,
        y,
        blocks: first_block..tape.blocks.len(),
        function,
    });
}

/// In builds with debug assertions, panics if a function that promised to
/// write every output ([`VectorFunction::writes_every_output`]) left one
/// as [`Tape::outputs`] marked it.
#[inline]
fn check_written(written: bool, y: &[f64]) {
    #[cfg(debug_assertions)]
    if written {
        if let Some(k) = y.iter().position(|v| v.to_bits() == UNWRITTEN) {
            panic!(
                "a VectorFunction that promises to write every output \
                 (writes_every_output) left output {k} of {} unwritten",
                y.len()
            );
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = (written, y);
}

/// The reverse-mode gradient engine: one recorded evaluation and one
/// backward sweep per gradient, on the calling thread.
///
/// A partial gradient
/// ([`value_and_partial_gradient_into`](GradientEngine::value_and_partial_gradient_into))
/// records only the requested inputs on the tape; the others enter as
/// constants, so operations that touch none of them cost no tape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TapeEngine;

impl GradientEngine for TapeEngine {
    /// Records `f` with the inputs `first .. first + out.len()` on the
    /// tape (the first nodes, in order) and sweeps back into `out`.
    fn partials<F: Differentiable>(&self, f: &F, x: &[f64], first: usize, out: &mut [f64]) -> f64 {
        debug_assert!(
            first + out.len() <= x.len(),
            "partials: the directions must lie within the inputs"
        );
        let inputs = start_tape(x, first..first + out.len());
        let output = f.eval(&inputs.vars);
        if output.is_constant() {
            out.fill(0.0);
        } else {
            sweep(output, out);
        }
        keep_inputs(inputs);
        output.value
    }
}

/// Hands the inputs' buffer back to this thread's tape for the next
/// [`start_tape`]: the evaluation borrows them no more.
fn keep_inputs(inputs: Inputs) {
    TAPE.with(|tape| {
        let tape = &mut *tape.borrow_mut();
        tape.inputs = inputs;
        tape.lent = None;
    });
}

/// Empties this thread's tape and records `x[directions]` as its first
/// nodes, in order (one borrow of the tape for all of them, where a
/// [`Var::input`] per input cost a thread-local access each); the other
/// entries are constants. The buffer is the tape's, taken and handed back
/// ([`keep_inputs`]), so a fit allocates it once; when the last
/// evaluation had the same shape (the same length and recorded range, a
/// fit's every step), its indices stand (the evaluation only borrowed
/// them) and only the values are written. The recorded inputs are lent
/// ([`Lent`]) until [`keep_inputs`]. Not generic.
fn start_tape(x: &[f64], directions: std::ops::Range<usize>) -> Inputs {
    TAPE.with(|tape| {
        let tape = &mut *tape.borrow_mut();
        tape.clear();
        // The recorded inputs are nodes `0..` without edges, in one run.
        let start = directions.start.min(x.len());
        let end = directions.end.clamp(start, x.len());
        let first = tape.close_run(end - start);
        let mut inputs = std::mem::take(&mut tape.inputs.vars);
        if inputs.len() == x.len() && tape.inputs.recorded == (start..end) {
            for (v, &value) in inputs.iter_mut().zip(x) {
                v.value = value;
            }
        } else {
            inputs.clear();
            inputs.reserve(x.len());
            inputs.extend(x[..start].iter().map(|&value| Var::constant(value)));
            inputs.extend(
                x[start..end]
                    .iter()
                    .zip(first..)
                    .map(|(&value, index)| Var { value, index }),
            );
            inputs.extend(x[end..].iter().map(|&value| Var::constant(value)));
        }
        tape.lent = Some(Lent {
            at: inputs[start..].as_ptr() as usize,
            len: end - start,
        });
        Inputs {
            vars: inputs,
            recorded: start..end,
        }
    })
}

/// The backward sweep of [`TapeEngine::partials`]: the adjoints of the
/// recorded inputs (the first `out.len()` nodes) from `output` back.
/// Not generic, so every engine call shares this one copy.
///
/// The adjoints are left all zero behind the sweep (each node's is reset
/// as it is read, each op's outputs after the op, the inputs' after the
/// copy), so the next sweep needs no pass over them: a sweep that did
/// not finish marks them dirty and the next one zeroes them first.
fn sweep(output: Var, out: &mut [f64]) {
    TAPE.with(|tape| {
        let tape = &mut *tape.borrow_mut();
        let nodes = tape.starts.len() - 1;
        if tape.adjoint_dirty {
            tape.adjoint.fill(0.0);
        }
        if tape.adjoint.len() < nodes {
            tape.adjoint.resize(nodes, 0.0);
        }
        tape.adjoint_dirty = true;
        let adjoint = &mut tape.adjoint[..nodes];
        adjoint[output.index as usize] = 1.0;
        // The edges down to each op's outputs, then the op (every consumer
        // of its outputs is later on the tape: their adjoints are final).
        let mut end = output.index as usize + 1;
        let recorded = Recorded {
            blocks: &tape.blocks,
            scattered: &tape.scattered,
            values: &tape.values,
            ys: &tape.ys,
        };
        for op in tape.ops.iter().rev() {
            let first = op.first as usize;
            if first >= end {
                continue;
            }
            let last = (first + op.y.len()).min(end);
            sweep_edges(&tape.starts, &tape.edges, adjoint, last..end);
            run_op(op, &recorded, adjoint, &mut tape.buffers);
            adjoint[first..first + op.y.len()].fill(0.0);
            end = first;
        }
        // The recorded inputs are the first nodes, in order, without edges.
        let inputs = out.len().min(end);
        sweep_edges(&tape.starts, &tape.edges, adjoint, inputs..end);
        for (o, a) in out.iter_mut().zip(&mut adjoint[..]) {
            *o = std::mem::take(a);
        }
        tape.adjoint_dirty = false;
    });
}

/// The edges of the nodes `nodes`, from the last, each node's adjoint
/// reset to zero once read.
#[inline]
fn sweep_edges(
    starts: &[u32],
    edges: &[(u32, f64)],
    adjoint: &mut [f64],
    nodes: std::ops::Range<usize>,
) {
    let Some((&last, bounds)) = starts[nodes.start..=nodes.end].split_last() else {
        return;
    };
    // A node's edges end where the next node's begin: one read of
    // `starts` per node, going down.
    let mut end = last as usize;
    for (node, &start) in nodes.zip(bounds).rev() {
        let start = start as usize;
        let a = std::mem::replace(&mut adjoint[node], 0.0);
        if a != 0.0 {
            for &(operand, partial) in &edges[start..end] {
                adjoint[operand as usize] += a * partial;
            }
        }
        end = start;
    }
}

/// What an op's vector–Jacobian product reads besides the adjoints: the
/// tape's blocks, scattered nodes and values, and its outputs' values.
struct Recorded<'a> {
    blocks: &'a [Block],
    scattered: &'a [u32],
    values: &'a [f64],
    ys: &'a [f64],
}

/// An op's vector–Jacobian product, from its outputs' adjoints into its
/// operands'. Blocks of consecutive nodes that do not overlap an earlier
/// one receive theirs in place; the others (scattered blocks, overlapping
/// ranges) through a buffer of `buffers` (the tape's, one per block,
/// emptied here and zeroed to length when used). Up to [`STACK_BLOCKS`]
/// blocks the slot list lives in an array on the stack; more take a `Vec`.
fn run_op(op: &Op, tape: &Recorded, adjoint: &mut [f64], buffers: &mut Vec<Vec<f64>>) {
    let first = op.first as usize;
    let y = &tape.ys[op.y.clone()];
    let (below, outputs) = adjoint.split_at_mut(first);
    // The outputs' adjoints are reset after the op (`sweep`): the function
    // may overwrite them (`vjp_overwriting`).
    let ybar = &mut outputs[..y.len()];
    if ybar.iter().all(|&a| a == 0.0) {
        return;
    }
    let blocks = &tape.blocks[op.blocks.clone()];
    let n = blocks.len();
    if buffers.len() < n {
        buffers.resize_with(n, Vec::new);
    }
    let buffers = &mut buffers[..n];
    buffers.iter_mut().for_each(Vec::clear);
    {
        let mut stack_xbar: [Option<&mut [f64]>; STACK_BLOCKS] = Default::default();
        let mut heap_xbar = Vec::new();
        let xbar: &mut [Option<&mut [f64]>] = if n <= STACK_BLOCKS {
            &mut stack_xbar[..n]
        } else {
            heap_xbar.resize_with(n, || None);
            &mut heap_xbar
        };
        adjoint_slots(blocks, below, xbar, buffers);
        with_values(blocks, tape.values, tape.ys, |values| {
            op.function.vjp_overwriting(values, y, ybar, xbar);
        });
    }
    for (block, buffer) in blocks.iter().zip(buffers.iter()) {
        if buffer.is_empty() {
            continue;
        }
        match block.operands {
            Operands::Range(start) => {
                let start = start as usize;
                let slots = &mut adjoint[start..start + buffer.len()];
                slots.iter_mut().zip(buffer).for_each(|(s, &a)| *s += a);
            }
            Operands::Scattered(from) => {
                let nodes = &tape.scattered[from..from + buffer.len()];
                for (&index, &a) in nodes.iter().zip(buffer) {
                    if index != CONSTANT {
                        adjoint[index as usize] += a;
                    }
                }
            }
            Operands::Constant => {}
        }
    }
}

/// `visit(first node, block)` for the blocks of consecutive nodes in
/// increasing order of `(first node, block)`: a selection for up to
/// [`STACK_BLOCKS`] blocks (no allocation), a sort for more.
fn ranges_in_order(blocks: &[Block], mut visit: impl FnMut(usize, usize)) {
    let ranges = blocks
        .iter()
        .enumerate()
        .filter_map(|(b, block)| match block.operands {
            Operands::Range(start) => Some((start as usize, b)),
            _ => None,
        });
    if blocks.len() <= STACK_BLOCKS {
        let mut last = None;
        while let Some(next) = ranges.clone().filter(|&r| last < Some(r)).min() {
            visit(next.0, next.1);
            last = Some(next);
        }
    } else {
        let mut sorted: Vec<(usize, usize)> = ranges.collect();
        sorted.sort_unstable();
        for (start, b) in sorted {
            visit(start, b);
        }
    }
}

/// Points each non-constant block's adjoint slot of `xbar` at its nodes'
/// adjoints in `below` (consecutive blocks, in increasing order of their
/// first node, that do not overlap one taken already) or at a zeroed
/// buffer of `buffers` (scattered blocks, and the overlapping ranges).
fn adjoint_slots<'a>(
    blocks: &[Block],
    below: &'a mut [f64],
    xbar: &mut [Option<&'a mut [f64]>],
    buffers: &'a mut [Vec<f64>],
) {
    let (mut rest, mut at) = (below, 0usize);
    ranges_in_order(blocks, |start, b| {
        let len = blocks[b].values.len();
        if start >= at {
            let (_, tail) = std::mem::take(&mut rest).split_at_mut(start - at);
            let (mine, tail) = tail.split_at_mut(len);
            xbar[b] = Some(mine);
            (rest, at) = (tail, start + len);
        }
    });
    for ((slot, buffer), block) in xbar.iter_mut().zip(buffers).zip(blocks) {
        if matches!(block.operands, Operands::Constant) || slot.is_some() {
            continue;
        }
        buffer.resize(block.values.len(), 0.0);
        *slot = Some(buffer.as_mut_slice());
    }
}

inherent_engine_methods!([] TapeEngine);

/// The nodes and edges on this thread's tape (the last recording's, after
/// a gradient), for tests that count what an operation records.
#[cfg(test)]
pub(crate) fn recorded() -> (usize, usize) {
    TAPE.with(|tape| {
        let tape = tape.borrow();
        (tape.starts.len() - 1, tape.edges.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_consecutive_only_when_every_index_follows_the_first() {
        let block = |first: u32, len: u32| -> Vec<Var> {
            (0..len)
                .map(|k| Var {
                    value: 0.0,
                    index: first.wrapping_add(k),
                })
                .collect()
        };
        // Lengths around the check's chunks of sixteen, and a range that
        // wraps past u32::MAX.
        for len in [1, 15, 16, 17, 32, 40] {
            for first in [3, u32::MAX - 20] {
                let mut vars = block(first, len);
                assert!(consecutive_from(first, &vars), "len {len}, first {first}");
                assert!(!consecutive_from(first + 1, &vars), "another start");
                for k in 1..vars.len() {
                    let right = vars[k].index;
                    for wrong in [right.wrapping_add(1), CONSTANT] {
                        if wrong == right {
                            continue;
                        }
                        vars[k].index = wrong;
                        assert!(!consecutive_from(first, &vars), "len {len}, entry {k}");
                        vars[k].index = right;
                    }
                }
            }
        }
        assert!(consecutive_from(7, &[]));
    }

    #[test]
    fn only_operations_on_recorded_variables_make_nodes() {
        TAPE.with(|tape| tape.borrow_mut().clear());
        let c = Var::constant(2.0);
        let x = Var::input(3.0);
        assert_eq!(recorded(), (1, 0), "a leaf is a node without edges");
        let constant = c * c + Var::dot(&[c, c], &[c, c]) + Var::log_sum_exp(&[c, c]) - c.powf(c);
        assert!(constant.is_constant());
        assert_eq!(x.powi(0).value, 1.0);
        assert!(x.powi(0).is_constant());
        assert_eq!(recorded(), (1, 0), "constants record nothing");
        let y = x * c;
        assert_eq!(recorded(), (2, 1), "one edge, to the variable operand");
        let z = Var::dot(&[x, c], &[c, y]);
        assert_eq!(recorded(), (3, 3), "one node for the whole dot product");
        assert_eq!((y.index, z.index), (1, 2));
    }

    #[test]
    fn with_partials_is_one_node_with_an_edge_per_variable_operand() {
        TAPE.with(|tape| tape.borrow_mut().clear());
        let (x, y, c) = (Var::input(2.0), Var::input(3.0), Var::constant(5.0));
        let none = Var::with_partials(1.0, &[c, c], &[1.0, 2.0]);
        assert!(none.is_constant());
        assert_eq!(recorded(), (2, 0), "constants record nothing");
        let r = Var::with_partials(7.0, &[x, c, y, x], &[0.5, 9.0, -1.0, 0.25]);
        assert_eq!(r.value, 7.0);
        assert_eq!(
            recorded(),
            (3, 3),
            "one node, one edge per variable operand"
        );
        let (value, grad) = TapeEngine.value_and_gradient(&WithPartials, &[2.0, 3.0]);
        assert_eq!((value, grad), (7.0, vec![0.75, -1.0]));
    }

    #[test]
    fn a_plate_is_one_node() {
        use crate::plate::{self, Arg, NormalKernel};
        TAPE.with(|tape| tape.borrow_mut().clear());
        let loc: Vec<Var> = (0..600).map(|i| Var::input(f64::from(i) * 0.01)).collect();
        let y: Vec<f64> = (0..600).map(|i| f64::from(i) * 0.02).collect();
        let scale = Var::constant(1.5);
        let lp = plate::log_density(
            &NormalKernel,
            Var::constant(0.0),
            &y,
            &[Arg::Slice(&loc), Arg::Const(scale)],
        );
        assert!(!lp.is_constant());
        assert_eq!(recorded(), (601, 600), "one node, an edge per variable");
    }

    struct WithPartials;

    impl Differentiable for WithPartials {
        fn eval<T: Scalar>(&self, x: &[T]) -> T {
            let c = T::constant(5.0);
            T::with_partials(7.0, &[x[0], c, x[1], x[0]], &[0.5, 9.0, -1.0, 0.25])
        }
    }

    /// `Σ_b c_b Σ_k x_b[k]²` with `c_b = b + 1`, as one op of any number
    /// of blocks.
    struct Squares;

    impl VectorFunction for Squares {
        fn outputs(&self) -> usize {
            1
        }
        fn eval(&mut self, x: &[&[f64]], y: &mut [f64]) {
            y[0] = x
                .iter()
                .zip(1..)
                .map(|(b, c)| f64::from(c) * b.iter().map(|v| v * v).sum::<f64>())
                .sum();
        }
        fn vjp(&self, x: &[&[f64]], _y: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
            for ((block, bar), c) in x.iter().zip(xbar.iter_mut()).zip(1..) {
                if let Some(bar) = bar {
                    for (b, v) in bar.iter_mut().zip(*block) {
                        *b += ybar[0] * 2.0 * f64::from(c) * v;
                    }
                }
            }
        }
        fn jvp(&self, _x: &[&[f64]], _y: &[f64], _xdot: &[Option<&[f64]>], _ydot: &mut [f64]) {
            unreachable!("the tape runs vjp")
        }
    }

    /// Blocks of one op whose ranges come in decreasing order, overlap,
    /// repeat, and mix with scattered and constant blocks: every operand's
    /// adjoint is the sum over the blocks that read it, with 3 and
    /// `STACK_BLOCKS` blocks (the stack path of the sweep's bookkeeping)
    /// and one more and 7 (the heap path).
    #[test]
    fn an_ops_blocks_in_any_order_and_overlap_get_their_adjoints() {
        struct Blocks(usize);
        impl Differentiable for Blocks {
            fn eval<T: Scalar>(&self, x: &[T]) -> T {
                let scattered = [x[5], x[0], x[5]];
                let constants = [T::constant(3.0); 2];
                let all: [&[T]; 7] = [
                    &x[4..8],
                    &x[0..3],
                    &scattered,
                    &x[2..6],
                    &constants,
                    &x[4..8],
                    &x[..1],
                ];
                let mut y = Vec::new();
                T::vector_op(Squares, &all[..self.0], &mut y);
                y[0]
            }
        }
        let x: Vec<f64> = (0..8).map(|k| 0.5 + 0.25 * f64::from(k)).collect();
        for blocks in [3, STACK_BLOCKS, STACK_BLOCKS + 1, 7] {
            let mut expected = vec![0.0; 8];
            let reads: [&[usize]; 7] = [
                &[4, 5, 6, 7],
                &[0, 1, 2],
                &[5, 0, 5],
                &[2, 3, 4, 5],
                &[],
                &[4, 5, 6, 7],
                &[0],
            ];
            for (b, read) in reads.iter().enumerate().take(blocks) {
                for &k in *read {
                    expected[k] += 2.0 * (b + 1) as f64 * x[k];
                }
            }
            let (_, grad) = TapeEngine.value_and_gradient(&Blocks(blocks), &x);
            assert_eq!(grad, expected, "{blocks} blocks");
        }
    }

    /// `Σᵢ sin(xᵢ) xᵢ₊₁` over the first `n` entries plus an op's
    /// `Σ (b + 1) |x_b|²` over two overlapping blocks of them (`n ≥ 4`).
    struct Chain(usize);

    impl Differentiable for Chain {
        fn eval<T: Scalar>(&self, x: &[T]) -> T {
            let x = &x[..self.0];
            let scalar = x
                .windows(2)
                .fold(T::constant(0.0), |acc, w| acc + w[0].sin() * w[1]);
            let mut y = Vec::new();
            T::vector_op(Squares, &[&x[1..], &x[..x.len() / 2]], &mut y);
            scalar + y[0]
        }
    }

    /// An op whose vector–Jacobian product panics half-way, after adding
    /// to its operands' adjoints.
    struct PanicsHalfWay;

    impl VectorFunction for PanicsHalfWay {
        fn outputs(&self) -> usize {
            1
        }
        fn eval(&mut self, x: &[&[f64]], y: &mut [f64]) {
            y[0] = x[0].iter().sum();
        }
        fn vjp(&self, _x: &[&[f64]], _y: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
            if let Some(bar) = &mut xbar[0] {
                bar.iter_mut().for_each(|b| *b += ybar[0] * 1e3);
            }
            panic!("half-way");
        }
        fn jvp(&self, _x: &[&[f64]], _y: &[f64], _xdot: &[Option<&[f64]>], _ydot: &mut [f64]) {
            unreachable!("the tape runs vjp")
        }
    }

    struct Panicking;

    impl Differentiable for Panicking {
        fn eval<T: Scalar>(&self, x: &[T]) -> T {
            let mut y = Vec::new();
            T::vector_op(PanicsHalfWay, &[x], &mut y);
            y[0] * x[0]
        }
    }

    /// The bits of `Chain(n)`'s value and gradient (all of `x`, or the
    /// entries `1..n - 1` only).
    fn chain_bits(n: usize, partial: bool, x: &[f64]) -> Vec<u64> {
        let (value, grad) = if partial {
            let mut out = vec![f64::NAN; n - 2];
            let value =
                TapeEngine.value_and_partial_gradient_into(&Chain(n), x, 1..n - 1, &mut out);
            (value, out)
        } else {
            TapeEngine.value_and_gradient(&Chain(n), &x[..n])
        };
        std::iter::once(value)
            .chain(grad)
            .map(f64::to_bits)
            .collect()
    }

    /// The adjoints kept between sweeps leave nothing behind: big
    /// evaluations after small ones and small after big, partial after
    /// full, and after a sweep that panicked, give the bits of the same
    /// evaluation on a fresh thread's tape.
    #[test]
    fn a_sweep_after_any_other_gives_the_bits_of_a_fresh_tape() {
        let x: Vec<f64> = (0..400).map(|k| 0.3 + 0.01 * f64::from(k)).collect();
        let runs = [
            (400, false),
            (5, false),
            (400, true),
            (40, false),
            (6, true),
            (400, false),
        ];
        let fresh: Vec<Vec<u64>> = runs
            .iter()
            .map(|&(n, partial)| {
                let x = x.clone();
                std::thread::spawn(move || chain_bits(n, partial, &x))
                    .join()
                    .unwrap()
            })
            .collect();
        for (&(n, partial), fresh) in runs.iter().zip(&fresh) {
            assert_eq!(
                &chain_bits(n, partial, &x),
                fresh,
                "n = {n}, partial {partial}"
            );
        }
        let panicked = std::panic::catch_unwind(|| TapeEngine.value_and_gradient(&Panicking, &x));
        assert!(panicked.is_err(), "the op's vjp panics");
        for (&(n, partial), fresh) in runs.iter().zip(&fresh).rev() {
            assert_eq!(&chain_bits(n, partial, &x), fresh, "after a panic, n = {n}");
        }
    }

    /// `y_k = Σ_{j ≤ k} x_j²` over one block, every output assigned
    /// (`writes_every_output`); `skip` leaves the last output unwritten.
    struct Cumulative {
        outputs: usize,
        skip: bool,
    }

    impl VectorFunction for Cumulative {
        fn outputs(&self) -> usize {
            self.outputs
        }
        fn writes_every_output(&self) -> bool {
            true
        }
        fn eval(&mut self, x: &[&[f64]], y: &mut [f64]) {
            let written = y.len() - usize::from(self.skip);
            let mut sum = 0.0;
            for (yk, v) in y[..written].iter_mut().zip(x[0]) {
                sum += v * v;
                *yk = sum;
            }
        }
        fn vjp(&self, x: &[&[f64]], _y: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
            if let Some(bar) = &mut xbar[0] {
                let mut later = 0.0;
                for k in (0..ybar.len()).rev() {
                    later += ybar[k];
                    bar[k] += later * 2.0 * x[0][k];
                }
            }
        }
        fn jvp(&self, x: &[&[f64]], _y: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]) {
            let mut sum = 0.0;
            for (k, d) in ydot.iter_mut().enumerate() {
                sum += xdot[0].map_or(0.0, |t| 2.0 * x[0][k] * t[k]);
                *d = sum;
            }
        }
    }

    /// `Σ_k sin(y_k)` for `y` the [`Cumulative`] sums of the first `n`
    /// inputs, plus a constants-only op of the same length and a scalar
    /// term; `skip[0]` breaks the constants-only op's promise, `skip[1]`
    /// the recorded one's.
    struct Sums(usize, [bool; 2]);

    impl Differentiable for Sums {
        fn eval<T: Scalar>(&self, x: &[T]) -> T {
            let (n, [skip_constant, skip]) = (self.0, self.1);
            let mut y = Vec::new();
            let constants: Vec<T> = x[..n].iter().map(|v| T::constant(v.value())).collect();
            let op = Cumulative {
                outputs: n,
                skip: skip_constant,
            };
            T::vector_op(op, &[&constants], &mut y);
            let offset = y[n - 1];
            T::vector_op(Cumulative { outputs: n, skip }, &[&x[..n]], &mut y);
            y.iter().fold(x[0] * offset, |acc, &v| acc + v.sin())
        }
    }

    /// The bits of `Sums(n)`'s value and gradient.
    fn sums_bits(n: usize, x: &[f64]) -> Vec<u64> {
        let (value, grad) = TapeEngine.value_and_gradient(&Sums(n, [false; 2]), &x[..n]);
        std::iter::once(value)
            .chain(grad)
            .map(f64::to_bits)
            .collect()
    }

    /// The tape's kept buffers (the inputs, the blocks, their values, the
    /// outputs an op writes over an earlier recording's) leave nothing
    /// behind: recordings big after small and small after big give the
    /// bits of the same recording on a fresh thread's tape.
    #[test]
    fn recordings_after_any_other_give_the_bits_of_a_fresh_tape() {
        let x: Vec<f64> = (0..300).map(|k| 0.2 + 0.003 * f64::from(k)).collect();
        let runs = [300, 3, 120, 300, 1, 50];
        let fresh: Vec<Vec<u64>> = runs
            .iter()
            .map(|&n| {
                let x = x.clone();
                std::thread::spawn(move || sums_bits(n, &x)).join().unwrap()
            })
            .collect();
        for (&n, fresh) in runs.iter().zip(&fresh) {
            assert_eq!(&sums_bits(n, &x), fresh, "n = {n}");
        }
        // The op's vjp against the scalar sums': y_k = Σ_{j ≤ k} x_j².
        let (_, grad) = TapeEngine.value_and_gradient(&Sums(4, [false; 2]), &x[..4]);
        let (_, reference) = TapeEngine.value_and_gradient(&ScalarSums(4), &x[..4]);
        crate::ad::checks::close(&grad, &reference, 1e-14, "op against scalars");
    }

    /// [`Sums`] in scalar operations.
    struct ScalarSums(usize);

    impl Differentiable for ScalarSums {
        fn eval<T: Scalar>(&self, x: &[T]) -> T {
            let offset: f64 = x[..self.0].iter().map(|v| v.value() * v.value()).sum();
            let mut sum = T::constant(0.0);
            let mut total = x[0] * offset;
            for &v in &x[..self.0] {
                sum += v * v;
                total += sum.sin();
            }
            total
        }
    }

    /// A function that promises to write every output and leaves one is
    /// caught where debug assertions are on (the tests' builds), on the
    /// recorded path and on the constants-only one.
    #[cfg(debug_assertions)]
    #[test]
    fn a_broken_promise_to_write_every_output_is_caught() {
        let x = [0.5, 0.25, 2.0];
        for (n, skip) in [(1, [true, false]), (3, [true, false]), (3, [false, true])] {
            let caught =
                std::panic::catch_unwind(|| TapeEngine.value_and_gradient(&Sums(n, skip), &x[..n]));
            let message = caught.expect_err("the unwritten output is caught");
            let message = message
                .downcast_ref::<String>()
                .expect("a formatted message");
            assert!(
                message.contains("writes_every_output")
                    && message.contains(&format!("output {} of {n}", n - 1)),
                "{message}"
            );
        }
        // The tape is usable after the panic.
        let (value, _) = TapeEngine.value_and_gradient(&Sums(3, [false; 2]), &x);
        assert_eq!(value.to_bits(), Sums(3, [false; 2]).eval(&x).to_bits());
    }

    /// Ops on other ops' outputs: `a` and `b` (consecutive nodes), then
    /// ops on a run inside `a`, on all of `b`, and on a run across both.
    struct Chained;

    impl Differentiable for Chained {
        fn eval<T: Scalar>(&self, x: &[T]) -> T {
            let op = |outputs| Cumulative {
                outputs,
                skip: false,
            };
            let (mut a, mut b, mut c, mut d, mut e) = Default::default();
            T::vector_op(op(40), &[&x[..40]], &mut a);
            T::vector_op(op(40), &[&x[10..]], &mut b);
            T::vector_op(op(30), &[&a[5..35]], &mut c);
            T::vector_op(op(40), &[&b], &mut d);
            let across: Vec<T> = a[20..].iter().chain(&b[..20]).copied().collect();
            T::vector_op(op(40), &[&across], &mut e);
            let tail = c[29] * 1e-3 + d[39] * 1e-4 + e[39] * 1e-5;
            [a, b, c, d, e]
                .iter()
                .flatten()
                .fold(tail, |acc, &v| acc + (v * 1e-2).sin())
        }
    }

    /// A block within the recorded inputs the evaluation borrows is a
    /// run of them from its address alone (its first node the offset
    /// from the first recorded input); a block reaching past them on
    /// either side, a copy of them, or any block once they are handed back
    /// is not.
    #[test]
    fn a_block_of_the_lent_inputs_is_found_from_its_address() {
        let x: Vec<f64> = (0..30).map(|k| 0.1 * f64::from(k)).collect();
        for recorded in [0..30, 4..25, 7..7] {
            let inputs = start_tape(&x, recorded.clone());
            let vars = &inputs.vars;
            let copy = vars.clone();
            let found = |block: &[Var]| TAPE.with(|tape| tape.borrow().lent_run(block));
            let (start, end) = (recorded.start, recorded.end);
            for (from, to) in [
                (start, end),
                (start, start + 1),
                (end.saturating_sub(3), end),
            ] {
                if start <= from && from < to && to <= end {
                    assert_eq!(found(&vars[from..to]), Some((from - start) as u32));
                    assert_eq!(found(&copy[from..to]), None, "a copy");
                }
            }
            if start > 0 {
                assert_eq!(found(&vars[start - 1..end]), None, "one constant before");
            }
            if end < x.len() {
                assert_eq!(found(&vars[start..end + 1]), None, "one constant after");
            }
            keep_inputs(inputs);
            let inputs = TAPE.with(|tape| std::mem::take(&mut tape.borrow_mut().inputs));
            assert_eq!(found(&inputs.vars[start..end]), None, "handed back");
            TAPE.with(|tape| tape.borrow_mut().inputs = inputs);
        }
    }

    /// Ops on runs of the recorded inputs (found from their address), on
    /// a copy of them (found by the scan) and on runs that reach into the
    /// constants, in full and partial gradients of the same shape one
    /// after the other (the kept indices reused) and of other shapes: the
    /// bits of the value and the gradient of the same sums in scalar
    /// operations, within rounding (one op adds in another order).
    #[test]
    fn ops_on_the_lent_inputs_give_the_scalar_gradients() {
        /// `Squares` over three blocks, as one op or in scalars; with
        /// `copied`, the op reads every block from a copy of the inputs
        /// (found by the scan, not from their address).
        struct OnInputs(bool);
        impl Differentiable for OnInputs {
            fn eval<T: Scalar>(&self, x: &[T]) -> T {
                let copy = x.to_vec();
                let blocks: [&[T]; 3] = [&x[3..40], &copy[10..], &x[..12]];
                self.on(x, blocks)
            }
        }
        /// The same op, every block read from a copy.
        struct OnCopy;
        impl Differentiable for OnCopy {
            fn eval<T: Scalar>(&self, x: &[T]) -> T {
                let copy = x.to_vec();
                let blocks: [&[T]; 3] = [&copy[3..40], &copy[10..], &copy[..12]];
                OnInputs(true).on(x, blocks)
            }
        }
        impl OnInputs {
            fn on<T: Scalar>(&self, x: &[T], blocks: [&[T]; 3]) -> T {
                let squares = if self.0 {
                    let mut y = Vec::new();
                    T::vector_op(Squares, &blocks, &mut y);
                    y[0]
                } else {
                    (1..).zip(blocks).fold(T::constant(0.0), |acc, (c, b)| {
                        let sum = b.iter().fold(T::constant(0.0), |s, &v| s + v * v);
                        acc + sum * f64::from(c)
                    })
                };
                let tail = x[45..].iter().fold(squares, |acc, &v| acc + v.sin());
                tail * x[20]
            }
        }
        let x: Vec<f64> = (0..50).map(|k| 0.05 * f64::from(k) - 0.7).collect();
        for directions in [0..50, 0..50, 2..45, 2..45, 10..50, 0..50] {
            let run = |f: &OnInputs| {
                let mut out = vec![f64::NAN; directions.len()];
                let value =
                    TapeEngine.value_and_partial_gradient_into(f, &x, directions.clone(), &mut out);
                (value, out)
            };
            let ((value, grad), (_, scalar)) = (run(&OnInputs(true)), run(&OnInputs(false)));
            assert_eq!(value.to_bits(), OnInputs(true).eval(&x).to_bits());
            crate::ad::checks::close(&grad, &scalar, 1e-13, "op against scalars");
            let mut copied = vec![f64::NAN; directions.len()];
            let copied_value = TapeEngine.value_and_partial_gradient_into(
                &OnCopy,
                &x,
                directions.clone(),
                &mut copied,
            );
            assert_eq!(
                value.to_bits(),
                copied_value.to_bits(),
                "lent against copied"
            );
            let bits = |g: &[f64]| g.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&grad), bits(&copied), "lent against copied");
        }
    }

    /// A block that is a run of one earlier op's outputs reads them where
    /// they stand; a run across two ops' outputs is read into the arena;
    /// both give the duals' values and derivatives.
    #[test]
    fn a_block_of_an_earlier_ops_outputs_is_read_in_place() {
        let x: Vec<f64> = (0..50).map(|k| 0.1 + 0.02 * f64::from(k)).collect();
        let (value, grad) = TapeEngine.value_and_gradient(&Chained, &x);
        let in_place = TAPE.with(|tape| {
            let tape = tape.borrow();
            let of = |op: &Op| match &tape.blocks[op.blocks.start].values {
                Values::Outputs(range) => Some(range.clone()),
                Values::Read(_) => None,
            };
            tape.ops.iter().map(of).collect::<Vec<_>>()
        });
        assert_eq!(in_place, [None, None, Some(5..35), Some(40..80), None]);
        let (dual_value, dual) = crate::ForwardEngine::<8>::new().value_and_gradient(&Chained, &x);
        assert_eq!(value.to_bits(), dual_value.to_bits());
        assert_eq!(value.to_bits(), Chained.eval(&x).to_bits());
        crate::ad::checks::close(&grad, &dual, 1e-14, "tape against duals");
    }
}
