//! [`log_density_rows`]: a plate kernel over a `rows × cols` block, one
//! log density per row, as one [`VectorFunction`] (one op on the tape for
//! all the rows).

use super::{Arg, BLOCK, PlateKernel};
use crate::scalar::Scalar;
use crate::vector::VectorFunction;

/// `out[r] = Σ_c log f(obs[r · cols + c] | args…[r · cols + c])` for `r`
/// in `0..rows`, `cols = obs.len() / rows`: the per-row sums of a plate
/// kernel over a `rows × cols` block stored row after row (e.g. a
/// Bernoulli-logit likelihood of a minibatch's images over a decoder's
/// logits), as one [`Scalar::vector_op`] with `rows` outputs. A slice
/// argument holds one value per element (`rows × cols`, row after row), an
/// [`Arg::Const`] one value for every element of every row. `out` is
/// cleared and receives the `rows` values.
///
/// Each row's value is [`log_density`](super::log_density)`(kernel,
/// T::constant(0.0), row's obs, row's args)` bit for bit (the kernel in
/// blocks of [`BLOCK`] from the row's first element). Derivatives: `∂out[r]
/// / ∂args[a][r · cols + c]` is the kernel's partial of element `(r, c)`;
/// a broadcast argument's adjoint is `Σ_r ȳ_r ∂out[r]/∂a`. On the tape and
/// on duals the kernel runs once, in the forward pass, computing the values
/// and its partials together (`eval_for_derivatives`); only a plain `eval`
/// followed by `vjp` runs it again for the partials.
///
/// # Panics
/// If `args.len() != K::ARGS`, `rows` does not divide `obs.len()` (with
/// `rows = 0`, `obs` must be empty), or a slice argument's length is not
/// `obs.len()`: programming errors of the caller, as in `log_density`.
///
/// ```
/// use iwhvi_core::plate::{self, Arg, BernoulliLogitKernel};
/// use iwhvi_core::Scalar;
///
/// // Two images of three pixels, their logits: one value per image.
/// let pixels = [1, 0, 1, 0, 0, 1];
/// let logits = [0.5, -1.0, 2.0, 0.0, 0.3, -0.2];
/// let mut per_image = Vec::new();
/// plate::log_density_rows(&BernoulliLogitKernel, &pixels, &[Arg::Slice(&logits[..])], 2, &mut per_image);
/// let first = plate::log_density(&BernoulliLogitKernel, 0.0, &pixels[..3], &[Arg::Slice(&logits[..3])]);
/// assert_eq!(per_image.len(), 2);
/// assert_eq!(per_image[0], first);
/// ```
pub fn log_density_rows<T: Scalar, K>(
    kernel: &K,
    obs: &[K::Obs],
    args: &[Arg<'_, T>],
    rows: usize,
    out: &mut Vec<T>,
) where
    K: PlateKernel + Clone + 'static,
    K::Obs: 'static,
{
    log_density_rows_owned(kernel, obs.to_vec(), args, rows, out);
}

/// [`log_density_rows`] with the observations handed over: the operation
/// keeps `obs` as it is instead of a copy (observations the caller
/// gathers for the call, e.g. a minibatch's images). The same values and
/// derivatives, bit for bit.
///
/// # Panics
/// As [`log_density_rows`].
///
/// ```
/// use iwhvi_core::plate::{self, Arg, BernoulliLogitKernel};
///
/// let logits = [0.5, -1.0, 2.0, 0.0, 0.3, -0.2];
/// let pixels: Vec<u64> = vec![1, 0, 1, 0, 0, 1];
/// let (mut borrowed, mut owned) = (Vec::new(), Vec::new());
/// plate::log_density_rows(&BernoulliLogitKernel, &pixels, &[Arg::Slice(&logits[..])], 2, &mut borrowed);
/// plate::log_density_rows_owned(&BernoulliLogitKernel, pixels, &[Arg::Slice(&logits[..])], 2, &mut owned);
/// assert_eq!(owned, borrowed);
/// ```
pub fn log_density_rows_owned<T: Scalar, K>(
    kernel: &K,
    obs: Vec<K::Obs>,
    args: &[Arg<'_, T>],
    rows: usize,
    out: &mut Vec<T>,
) where
    K: PlateKernel + Clone + 'static,
    K::Obs: 'static,
{
    // A slice of the wrong length is a programming error of the caller,
    // as in `log_density`.
    assert_eq!(
        args.len(),
        K::ARGS,
        "log_density_rows: {} arguments expected",
        K::ARGS
    );
    let n = obs.len();
    assert!(
        (rows == 0 && n == 0) || (rows > 0 && n % rows == 0),
        "log_density_rows: {n} observations are not {rows} rows"
    );
    let mut shapes = Vec::with_capacity(args.len());
    let mut blocks: Vec<&[T]> = Vec::with_capacity(args.len());
    for arg in args {
        match arg {
            Arg::Const(v) => {
                shapes.push(true);
                blocks.push(std::slice::from_ref(v));
            }
            Arg::Slice(values) => {
                assert_eq!(
                    values.len(),
                    n,
                    "log_density_rows: a slice argument of the wrong length"
                );
                shapes.push(false);
                blocks.push(values);
            }
        }
    }
    let op = RowsOp {
        kernel: kernel.clone(),
        obs,
        rows,
        broadcast: shapes,
        kept: None,
    };
    T::vector_op(op, &blocks, out);
}

/// [`log_density_rows`] over some rows of a table: `out[k] = Σ_c log
/// f(table[rows[k] · cols + c] | args…[k · cols + c])`, the table holding
/// its rows one after the other, `cols` observations each (e.g. a data
/// set's images, one per column of a column-major `DMatrix`, and a
/// minibatch's `rows` of it). The rows' observations are copied as they
/// are into the operation (one slice copy per row, no conversion); the
/// arguments are the batch's, row `k` after row `k` (`rows.len() × cols`
/// values for a slice). The same values and derivatives as
/// `log_density_rows` on the gathered rows, bit for bit.
///
/// # Panics
/// As [`log_density_rows`], and if a row is past the end of the table
/// (`(rows[k] + 1) · cols > table.len()`): programming errors of the
/// caller (rows come from the data's own plate).
///
/// ```
/// use iwhvi_core::plate::{self, Arg, BernoulliLogitReal};
///
/// // Three images of two pixels, one after the other; the batch {2, 0}.
/// let images = [1.0, 0.0, 0.0, 0.0, 1.0, 1.0];
/// let logits = [0.5, -1.0, 2.0, 0.0];
/// let (mut gathered, mut copied) = (Vec::new(), Vec::new());
/// let args = [Arg::Slice(&logits[..])];
/// plate::log_density_gathered_rows(&BernoulliLogitReal, &images, 2, &[2, 0], &args, &mut gathered);
/// let batch = [1.0, 1.0, 1.0, 0.0];
/// plate::log_density_rows(&BernoulliLogitReal, &batch, &args, 2, &mut copied);
/// assert_eq!(gathered, copied);
/// ```
pub fn log_density_gathered_rows<T: Scalar, K>(
    kernel: &K,
    table: &[K::Obs],
    cols: usize,
    rows: &[usize],
    args: &[Arg<'_, T>],
    out: &mut Vec<T>,
) where
    K: PlateKernel + Clone + 'static,
    K::Obs: 'static,
{
    if let Some(&r) = rows
        .iter()
        .find(|&&r| row_range(r, cols, table.len()).is_none())
    {
        panic!("log_density_gathered_rows: row {r} is past the end of the table");
    }
    let obs = gather_table_rows(table, cols, rows);
    log_density_rows_owned(kernel, obs, args, rows.len(), out);
}

/// How many rows ahead [`gather_table_rows`] asks the cache for.
const PREFETCH_ROWS_AHEAD: usize = 4;

/// Rows `picked[k]` of a table of `width`-wide rows stored one after the
/// other, copied in that order: `out[k · width + c] = table[picked[k] ·
/// width + c]`. The rows of a minibatch are scattered over the table, so
/// each copy waits on memory; on x86_64 the rows a few ahead are
/// prefetched (one hint per cache line) while the current one is copied,
/// which only changes when the bytes arrive, never which.
///
/// # Panics
/// If a row is past the end of the table (`(picked[k] + 1) · width >
/// table.len()`).
pub(crate) fn gather_table_rows<T: Copy>(table: &[T], width: usize, picked: &[usize]) -> Vec<T> {
    let mut rows = Vec::with_capacity(picked.len() * width);
    for (k, &p) in picked.iter().enumerate() {
        if let Some(&ahead) = picked.get(k + PREFETCH_ROWS_AHEAD) {
            prefetch_row(table, width, ahead);
        }
        let Some(row) = row_range(p, width, table.len()) else {
            panic!("gather_table_rows: row {p} is past the end of the table");
        };
        rows.extend_from_slice(&table[row]);
    }
    rows
}

/// Where row `row` of a table of `width`-wide rows lies, if it lies
/// within `len` entries (an overflowing index is past the end, never a
/// wrapped-around row).
fn row_range(row: usize, width: usize, len: usize) -> Option<std::ops::Range<usize>> {
    let start = row.checked_mul(width)?;
    let end = start.checked_add(width)?;
    (end <= len).then_some(start..end)
}

/// A hint to bring row `row` of the table into the cache (nothing when
/// the row is past the end, or off x86_64).
#[inline(always)]
fn prefetch_row<T>(table: &[T], width: usize, row: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let Some(slice) = row_range(row, width, table.len()).map(|r| &table[r]) else {
            return;
        };
        let bytes = std::mem::size_of_val(slice);
        let start = slice.as_ptr().cast::<i8>();
        for offset in (0..bytes).step_by(64) {
            // SAFETY: SSE is part of every x86_64 target; a prefetch is a
            // hint that never faults, and the address (`offset < bytes`)
            // lies within the row's slice anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (table, width, row);
}

/// [`log_density_rows`]'s op: one block per argument (one value for a
/// broadcast, `rows × cols` for a slice).
struct RowsOp<K: PlateKernel> {
    kernel: K,
    obs: Vec<K::Obs>,
    rows: usize,
    /// Per argument: a broadcast?
    broadcast: Vec<bool>,
    /// Every row's partials, kept by
    /// [`eval_for_derivatives`](VectorFunction::eval_for_derivatives) (the
    /// kernel computes them with the values): per argument, row after row,
    /// one value per row (a broadcast) or `cols`.
    kept: Option<Vec<Vec<f64>>>,
}

impl<K: PlateKernel> RowsOp<K> {
    fn cols(&self) -> usize {
        self.obs.len() / self.rows.max(1)
    }

    /// The arguments of row `r`'s elements `range` (columns).
    fn args<'a>(&self, x: &[&'a [f64]], r: usize, range: std::ops::Range<usize>) -> Vec<Arg<'a>> {
        let base = r * self.cols();
        x.iter()
            .zip(&self.broadcast)
            .map(|(block, &broadcast)| {
                if broadcast {
                    Arg::Const(block[0])
                } else {
                    Arg::Slice(&block[base + range.start..base + range.end])
                }
            })
            .collect()
    }

    /// Per argument, how many partials a row has: one (a broadcast) or
    /// `cols`.
    fn widths(&self) -> impl Iterator<Item = usize> + '_ {
        let cols = self.cols();
        self.broadcast
            .iter()
            .map(move |&b| if b { 1 } else { cols })
    }

    /// Every row's partials, per argument, row after row (one value per
    /// row for a broadcast, `cols` for a slice), each argument's in one
    /// buffer reserved once: a row's partials start at zero, appended, and
    /// the kernel adds them where they stand (no per-row buffer or copy).
    /// With `y`, row `r`'s value (the kernel's, as in `eval`) goes to
    /// `y[r]`.
    fn all_partials(&self, x: &[&[f64]], mut y: Option<&mut [f64]>) -> Vec<Vec<f64>> {
        let rows = self.rows;
        let mut all: Vec<Vec<f64>> = self
            .widths()
            .map(|w| Vec::with_capacity(w * rows))
            .collect();
        for r in 0..rows {
            for (g, w) in all.iter_mut().zip(self.widths()) {
                g.resize((r + 1) * w, 0.0);
            }
            let value = self.partials(x, r, &mut all);
            if let Some(y) = y.as_deref_mut() {
                y[r] = value;
            }
        }
        all
    }

    /// Every row's partials: kept by
    /// [`eval_for_derivatives`](VectorFunction::eval_for_derivatives), or
    /// computed now ([`RowsOp::all_partials`]).
    fn kept_or_computed<'a>(
        &'a self,
        x: &[&[f64]],
        computed: &'a mut Vec<Vec<f64>>,
    ) -> &'a [Vec<f64>] {
        match &self.kept {
            Some(kept) => kept,
            None => {
                *computed = self.all_partials(x, None);
                computed
            }
        }
    }

    /// Row `r`'s partials added into its places in `all` (per argument,
    /// `all[a][r]` for a broadcast or `all[a][r · cols..(r + 1) · cols]`,
    /// zeroed by the caller); returns the row's value (the kernel's, as in
    /// `eval`).
    fn partials(&self, x: &[&[f64]], r: usize, all: &mut [Vec<f64>]) -> f64 {
        let cols = self.cols();
        let obs = &self.obs[r * cols..(r + 1) * cols];
        let mut acc = 0.0;
        for start in (0..cols).step_by(BLOCK) {
            let end = (start + BLOCK).min(cols);
            let mut grad: Vec<&mut [f64]> = all
                .iter_mut()
                .zip(&self.broadcast)
                .map(|(g, &broadcast)| {
                    if broadcast {
                        &mut g[r..=r]
                    } else {
                        &mut g[r * cols + start..r * cols + end]
                    }
                })
                .collect();
            let args = self.args(x, r, start..end);
            acc = self.kernel.block(acc, &obs[start..end], &args, &mut grad);
        }
        acc
    }
}

impl<K> VectorFunction for RowsOp<K>
where
    K: PlateKernel + 'static,
    K::Obs: 'static,
{
    fn outputs(&self) -> usize {
        self.rows
    }

    /// One value assigned per row.
    fn writes_every_output(&self) -> bool {
        true
    }

    fn eval(&mut self, x: &[&[f64]], y: &mut [f64]) {
        let cols = self.cols();
        for (r, value) in y.iter_mut().enumerate() {
            let obs = &self.obs[r * cols..(r + 1) * cols];
            let mut acc = 0.0;
            for start in (0..cols).step_by(BLOCK) {
                let end = (start + BLOCK).min(cols);
                let args = self.args(x, r, start..end);
                acc = self.kernel.block_value(acc, &obs[start..end], &args);
            }
            *value = acc;
        }
    }

    /// The values through the kernel's pass with partials (the same bits:
    /// a kernel's value does not depend on whether it writes partials),
    /// every row's partials kept for `vjp` / `jvp`.
    fn eval_for_derivatives(&mut self, x: &[&[f64]], y: &mut [f64]) {
        self.kept = Some(self.all_partials(x, Some(y)));
    }

    fn vjp(&self, x: &[&[f64]], _y: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
        let cols = self.cols();
        let mut computed = Vec::new();
        let all = self.kept_or_computed(x, &mut computed);
        for (r, &yb) in ybar.iter().enumerate() {
            if yb == 0.0 {
                continue;
            }
            let parts = xbar.iter_mut().zip(all).zip(&self.broadcast);
            for ((bar, all), &broadcast) in parts {
                let Some(bar) = bar.as_deref_mut() else {
                    continue;
                };
                let (bar, g) = if broadcast {
                    (&mut bar[..1], &all[r..=r])
                } else {
                    let row = r * cols..(r + 1) * cols;
                    (&mut bar[row.clone()], &all[row])
                };
                bar.iter_mut().zip(g).for_each(|(b, &p)| *b += yb * p);
            }
        }
    }

    fn jvp(&self, x: &[&[f64]], _y: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]) {
        let cols = self.cols();
        let mut computed = Vec::new();
        let all = self.kept_or_computed(x, &mut computed);
        for (r, d) in ydot.iter_mut().enumerate() {
            let mut sum = 0.0;
            for ((dot, all), &broadcast) in xdot.iter().zip(all).zip(&self.broadcast) {
                let Some(dot) = dot else {
                    continue;
                };
                let (dot, g) = if broadcast {
                    (&dot[..1], &all[r..=r])
                } else {
                    let row = r * cols..(r + 1) * cols;
                    (&dot[row.clone()], &all[row])
                };
                sum += g.iter().zip(dot).map(|(p, t)| p * t).sum::<f64>();
            }
            *d = sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ad::checks::{close, finite_differences};
    use crate::plate::{BernoulliLogitKernel, BernoulliLogitReal, NormalKernel, log_density};
    use crate::tape::TapeEngine;
    use crate::{Differentiable, ForwardEngine};

    /// `Σ_r c_r out[r]` of a Normal plate over `ROWS × COLS` with a
    /// per-element location (`p[..n]`, through a nonlinearity) and a
    /// broadcast scale (`p[n]`), and of a Bernoulli-logit plate over the
    /// same logits: by `log_density_rows`, or by one `log_density` per row.
    struct PerRow {
        batched: bool,
    }

    const ROWS: usize = 3;
    // Past one kernel block, so that a row runs in two.
    const COLS: usize = BLOCK + 5;

    impl Differentiable for PerRow {
        fn eval<T: Scalar>(&self, p: &[T]) -> T {
            let n = ROWS * COLS;
            let loc: Vec<T> = p[..n].iter().map(|&v| v.sin() * 2.0).collect();
            let scale = p[n].exp();
            let y: Vec<f64> = (0..n).map(|k| ((k * 13 % 17) as f64 - 8.0) * 0.3).collect();
            let bits: Vec<u64> = (0..n).map(|k| (k * 7 % 3 == 0) as u64).collect();
            let normal = [Arg::Slice(&loc[..]), Arg::Const(scale)];
            let logit = [Arg::Slice(&loc[..])];
            let (mut a, mut b) = (Vec::new(), Vec::new());
            if self.batched {
                log_density_rows(&NormalKernel, &y, &normal, ROWS, &mut a);
                log_density_rows(&BernoulliLogitKernel, &bits, &logit, ROWS, &mut b);
            } else {
                for r in 0..ROWS {
                    let row = r * COLS..(r + 1) * COLS;
                    let args = [Arg::Slice(&loc[row.clone()]), Arg::Const(scale)];
                    a.push(log_density(
                        &NormalKernel,
                        T::constant(0.0),
                        &y[row.clone()],
                        &args,
                    ));
                    let args = [Arg::Slice(&loc[row.clone()])];
                    b.push(log_density(
                        &BernoulliLogitKernel,
                        T::constant(0.0),
                        &bits[row],
                        &args,
                    ));
                }
            }
            a.iter()
                .chain(&b)
                .zip(1..)
                .fold(T::constant(0.0), |acc, (&v, k)| {
                    acc + v * (0.3 * f64::from(k) - 1.0)
                })
        }
    }

    /// A Normal rows op over `ROWS × COLS` (per-element location, broadcast
    /// scale), its blocks, and the observations.
    fn normal_op() -> (RowsOp<NormalKernel>, Vec<Vec<f64>>) {
        let n = ROWS * COLS;
        let y: Vec<f64> = (0..n).map(|k| ((k * 13 % 17) as f64 - 8.0) * 0.3).collect();
        let loc: Vec<f64> = (0..n)
            .map(|k| ((k * 31 % 41) as f64 / 41.0 - 0.5) * 3.0)
            .collect();
        let op = RowsOp {
            kernel: NormalKernel,
            obs: y,
            rows: ROWS,
            broadcast: vec![false, true],
            kept: None,
        };
        (op, vec![loc, vec![0.7]])
    }

    #[test]
    fn kept_partials_give_the_bits_of_partials_computed_in_the_sweep() {
        let (mut fresh, blocks) = normal_op();
        let (mut keeping, _) = normal_op();
        let x: Vec<&[f64]> = blocks.iter().map(Vec::as_slice).collect();
        let (mut y, mut y_kept) = (vec![0.0; ROWS], vec![0.0; ROWS]);
        fresh.eval(&x, &mut y);
        keeping.eval_for_derivatives(&x, &mut y_kept);
        assert!(keeping.kept.is_some() && fresh.kept.is_none());
        let bits = |v: &[f64]| v.iter().map(|a| a.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&y), bits(&y_kept), "values");
        let ybar: Vec<f64> = (0..ROWS).map(|r| 0.5 - r as f64).collect();
        let adjoints = |op: &RowsOp<NormalKernel>| {
            let (mut loc, mut scale) = (vec![0.25; ROWS * COLS], vec![1.5]);
            op.vjp(&x, &y, &ybar, &mut [Some(&mut loc), Some(&mut scale)]);
            [loc, scale].concat()
        };
        assert_eq!(bits(&adjoints(&fresh)), bits(&adjoints(&keeping)), "vjp");
        let dots = (vec![0.3; ROWS * COLS], vec![-2.0]);
        let tangents = |op: &RowsOp<NormalKernel>| {
            let mut ydot = vec![0.0; ROWS];
            op.jvp(&x, &y, &[Some(&dots.0), Some(&dots.1)], &mut ydot);
            ydot
        };
        assert_eq!(bits(&tangents(&fresh)), bits(&tangents(&keeping)), "jvp");
    }

    /// The kept partials, written in place in one buffer per argument,
    /// are each row's own bits: the kernel's pass over row `r` alone, into
    /// buffers zeroed for it (a broadcast's partial summed over the row's
    /// blocks), with the row's value.
    #[test]
    fn kept_partials_are_each_rows_own_bits() {
        let (mut op, blocks) = normal_op();
        let x: Vec<&[f64]> = blocks.iter().map(Vec::as_slice).collect();
        let mut y = vec![f64::NAN; ROWS];
        op.eval_for_derivatives(&x, &mut y);
        let kept = op.kept.clone().expect("kept by eval_for_derivatives");
        let bits = |v: &[f64]| v.iter().map(|a| a.to_bits()).collect::<Vec<_>>();
        for r in 0..ROWS {
            let (mut loc, mut scale) = (vec![0.0; COLS], vec![0.0]);
            let mut acc = 0.0;
            for start in (0..COLS).step_by(BLOCK) {
                let cells = r * COLS + start..r * COLS + (start + BLOCK).min(COLS);
                let args = [Arg::Slice(&x[0][cells.clone()]), Arg::Const(x[1][0])];
                let end = start + cells.len();
                let mut grad = [&mut loc[start..end], &mut scale[..]];
                acc = NormalKernel.block(acc, &op.obs[cells], &args, &mut grad);
            }
            assert_eq!(acc.to_bits(), y[r].to_bits(), "row {r}'s value");
            let row = r * COLS..(r + 1) * COLS;
            assert_eq!(bits(&loc), bits(&kept[0][row]), "row {r}'s loc partials");
            assert_eq!(scale[0].to_bits(), kept[1][r].to_bits(), "row {r}'s scale");
        }
    }

    #[test]
    fn rows_are_log_density_per_row_on_every_engine() {
        let (batched, per_row) = (PerRow { batched: true }, PerRow { batched: false });
        let p: Vec<f64> = (0..=ROWS * COLS)
            .map(|k| ((k * 31 % 41) as f64 / 41.0 - 0.5) * 1.5)
            .collect();
        let value = batched.eval(&p);
        assert_eq!(value.to_bits(), per_row.eval(&p).to_bits(), "f64 values");
        let (tv, tape) = TapeEngine.value_and_gradient(&batched, &p);
        let (rv, reference) = TapeEngine.value_and_gradient(&per_row, &p);
        assert_eq!(tv.to_bits(), rv.to_bits(), "tape values");
        close(&tape, &reference, 1e-13, "tape against log_density per row");
        let (dv, forward) = ForwardEngine::<8>::new().value_and_gradient(&batched, &p);
        assert_eq!(dv.to_bits(), value.to_bits(), "dual values");
        close(
            &forward,
            &reference,
            1e-13,
            "duals against log_density per row",
        );
        // Finite differences on a few coordinates (each needs two passes).
        let fd = finite_differences(&batched, &p);
        close(&tape, &fd, 1e-6, "finite differences");
        // The broadcast scale alone, and the locations alone.
        let n = ROWS * COLS;
        for directions in [n..n + 1, 0..n] {
            let mut out = vec![0.0; directions.len()];
            TapeEngine.value_and_partial_gradient_into(&batched, &p, directions.clone(), &mut out);
            close(&out, &reference[directions], 1e-13, "tape, partial");
        }
    }

    /// `Σ_k c_k out[k]` of a Bernoulli-logit plate over the rows `PICKED`
    /// of a table, by `log_density_gathered_rows` or on a copy of them.
    struct Picked {
        gathered: bool,
    }

    const PICKED: [usize; 3] = [4, 1, 4];

    fn table() -> Vec<f64> {
        (0..5 * COLS).map(|k| f64::from(k * 7 % 3 == 0)).collect()
    }

    impl Differentiable for Picked {
        fn eval<T: Scalar>(&self, p: &[T]) -> T {
            let logits: Vec<T> = p.iter().map(|&v| v * 2.0 - 0.5).collect();
            let (table, mut out) = (table(), Vec::new());
            let args = [Arg::Slice(&logits[..])];
            if self.gathered {
                log_density_gathered_rows(
                    &BernoulliLogitReal,
                    &table,
                    COLS,
                    &PICKED,
                    &args,
                    &mut out,
                );
            } else {
                let copy: Vec<f64> = PICKED
                    .iter()
                    .flat_map(|&r| table[r * COLS..(r + 1) * COLS].to_vec())
                    .collect();
                log_density_rows(&BernoulliLogitReal, &copy, &args, PICKED.len(), &mut out);
            }
            out.iter()
                .zip(1..)
                .fold(T::constant(0.0), |acc, (&v, k)| acc + v * f64::from(k))
        }
    }

    #[test]
    fn gather_table_rows_copies_the_picked_rows_in_order() {
        // Rows wider than a cache line, picked out of order, with repeats
        // and the last row, more of them than the prefetch distance.
        let (width, count) = (11, 9);
        let table: Vec<f64> = (0..width * count).map(|i| i as f64 * 0.5 - 3.0).collect();
        let picked = [8, 0, 3, 3, 7, 1, 8, 2, 5, 4, 6];
        let gathered = gather_table_rows(&table, width, &picked);
        let mut expected = Vec::new();
        for &p in &picked {
            for c in 0..width {
                expected.push(table[p * width + c]);
            }
        }
        assert_eq!(gathered, expected);
        assert!(gather_table_rows(&table, width, &[]).is_empty());
        assert_eq!(gather_table_rows(&[1u64, 2, 3], 3, &[0]), vec![1, 2, 3]);
    }

    #[test]
    #[should_panic(expected = "gather_table_rows: row 2 is past the end of the table")]
    fn gather_table_rows_rejects_a_row_past_the_end() {
        gather_table_rows(&[1.0, 2.0, 3.0, 4.0], 2, &[0, 2]);
    }

    #[test]
    fn a_row_whose_index_overflows_is_past_the_end_not_wrapped_around() {
        assert_eq!(row_range(1, 2, 4), Some(2..4));
        assert_eq!(row_range(2, 2, 4), None);
        // 2^63 · 2 wraps to 0 in release: the row must not be row 0.
        assert_eq!(row_range(1 << 63, 2, 4), None);
        assert_eq!(row_range(usize::MAX, 1, 4), None);
    }

    #[test]
    fn gathered_rows_are_the_rows_of_a_copy_bit_for_bit() {
        let p: Vec<f64> = (0..PICKED.len() * COLS)
            .map(|k| ((k * 31 % 41) as f64 / 41.0 - 0.5) * 3.0)
            .collect();
        let (gathered, copied) = (Picked { gathered: true }, Picked { gathered: false });
        assert_eq!(gathered.eval(&p).to_bits(), copied.eval(&p).to_bits());
        let bits = |(v, g): (f64, Vec<f64>)| {
            (
                v.to_bits(),
                g.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            )
        };
        let tape = (
            TapeEngine.value_and_gradient(&gathered, &p),
            TapeEngine.value_and_gradient(&copied, &p),
        );
        assert!(tape.0.1.iter().any(|g| *g != 0.0));
        assert_eq!(bits(tape.0), bits(tape.1), "tape");
        let duals = (
            ForwardEngine::<8>::new().value_and_gradient(&gathered, &p),
            ForwardEngine::<8>::new().value_and_gradient(&copied, &p),
        );
        assert_eq!(bits(duals.0), bits(duals.1), "duals");
    }

    #[test]
    #[should_panic(expected = "log_density_gathered_rows: row 5 is past the end of the table")]
    fn a_row_past_the_table_is_a_programming_error() {
        log_density_gathered_rows(
            &BernoulliLogitReal,
            &table(),
            COLS,
            &[0, 5],
            &[Arg::Const(0.0)],
            &mut Vec::new(),
        );
    }

    #[test]
    fn no_rows_give_no_values() {
        let mut out = vec![1.0];
        log_density_rows(
            &NormalKernel,
            &[],
            &[Arg::Const(0.0), Arg::Const(1.0)],
            0,
            &mut out,
        );
        assert!(out.is_empty());
    }

    #[test]
    #[should_panic(expected = "log_density_rows: 5 observations are not 2 rows")]
    fn rows_must_divide_the_observations() {
        let y = [0.0; 5];
        log_density_rows(
            &NormalKernel,
            &y,
            &[Arg::Const(0.0), Arg::Const(1.0)],
            2,
            &mut Vec::new(),
        );
    }
}
