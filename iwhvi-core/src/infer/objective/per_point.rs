//! The per-point bound of a model whose latents are all local to its plate
//! and a guide that factorises per point (issue 16, minibatches with
//! `M > 1`).
//!
//! With `p(x, z) = c · Π_n p(x_n, z_n)` (`c` the terms outside the plate,
//! which read no latent) and `q(z) = Π_n q(z_n)` (one or more
//! [`MixingGroups`](crate::guide::MixingGroups) per point, with inner bound
//! `U_K^(n)`), the bound is
//!
//! ```text
//! L = log c + Σ_n [ logsumexp_m (log p(x_n, z_{n,m}) − U_K^(n)(z_{n,m})) − log M ],
//! ```
//!
//! `M` outer draws of each point's latents. Each term is point `n`'s own
//! DIWHVI bound, `≤ log p(x_n)` in expectation (§1 of the design note,
//! with one point), so `E L ≤ log c + Σ_n log p(x_n) = log p(x)`: it
//! needs `p(x) = c Π_n p(x_n)`, that is no global latent. For `M = 1` it
//! is the ordinary bound. For `M > 1` it is another bound than the
//! coupled `logsumexp_m Σ_n (…) − log M`, and a tighter one: with
//! `r_{n,m} = p(x_n, z_{n,m}) / exp U_K^(n)`, the per-point estimate
//! `Π_n (1/M) Σ_m r_{n,m}` averages `Π_n r_{n,m_n}` over all `M^N` choices
//! of one draw per point, the coupled one over the `M` diagonal choices;
//! relabelling each point's draws independently leaves their law
//! unchanged, so the per-point estimate is the coupled one's conditional
//! expectation given each point's set of draws, and by Jensen
//! `E log(coupled) ≤ E log(per-point) ≤ log p(x)`. On a batch `B` of `b`
//! points the terms
//! of the batch alone, scaled by `N / b`, estimate it without bias, and
//! only the batch's groups are evaluated (and, for a guide that
//! [samples by group](crate::guide::HierarchicalGuide::samples_by_group),
//! prepared and drawn: `O(b)` in `N`, from the same noise entries as the
//! whole draw, so the values are the same bits).

use super::ObjectiveError;
use super::StepNoise;
use super::noise::NoiseEntries;
use super::weights::{Buffers, Rows, Stop, upper};
use crate::generated::accumulate;
use crate::gradient::Differentiable;
use crate::guide::HierarchicalGuide;
use crate::input::{InputError, check_dimensions, check_params};
use crate::model::Model;
use crate::scalar::Scalar;
use crate::subsample::Batch;
use crate::vector::VectorFunction;

/// Which of the guide's mixing groups belong to each point of the plate
/// and which are global: the check that the guide factorises per point
/// (and, for `M > 1`, that the model has no global latent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PointGroups {
    /// For each point `n`, its groups in order.
    of_point: Vec<Vec<usize>>,
    /// The groups of the global latents (none when every latent is local).
    global: Vec<usize>,
    /// `Some(first)` when every point `n` has the one group `first + n`
    /// (an amortised guide's layout): a batch's list is then computed,
    /// not copied point by point.
    single: Option<usize>,
}

/// Why a model and guide do not factorise per point.
const GLOBAL_LATENT: &str = "the per-point bound (minibatches with M > 1) needs every latent \
     local to the plate (declared `for j` over it): with a global latent the logsumexp over \
     outer samples couples the plate's elements, and the subsampled bound is biased; use M = 1 \
     (ELBO, IWHVI) or no batches";

impl PointGroups {
    /// The groups of each of the plate's `n` points; with `allow_global`
    /// (for `M = 1`) latents outside the plate and their groups are global,
    /// without it a global latent is refused.
    ///
    /// # Errors
    /// Why the model and guide do not factorise per point: a global latent
    /// (without `allow_global`), a local latent of another length than the
    /// plate, a guide without mixing groups, a group that spans two points
    /// or a point and the global latents, or (without `allow_global`) a
    /// group with mixing coordinates but no latents.
    pub(crate) fn new<Mo: Model, G: HierarchicalGuide>(
        model: &Mo,
        guide: &G,
        n: usize,
        allow_global: bool,
    ) -> Result<Self, &'static str> {
        let layout = model.layout();
        let local = model.local_latents();
        let mut owner: Vec<Option<usize>> = vec![None; layout.dim()];
        for block in layout.blocks() {
            if !local.contains(&block.spec.name) {
                continue;
            }
            if block.unconstrained.len() != n {
                return Err(
                    "a local latent's block of u does not have one coordinate per \
                     element of the plate",
                );
            }
            for (k, at) in block.unconstrained.clone().enumerate() {
                owner[at] = Some(k);
            }
        }
        if !allow_global && owner.iter().any(Option::is_none) {
            return Err(GLOBAL_LATENT);
        }
        let Some(groups) = guide.mixing_groups() else {
            return Err(
                "the per-point bound (minibatches with M > 1) needs a guide that factorises per \
                 point (HierarchicalGuide::mixing_groups, e.g. a guide whose conditionals are all \
                 `for j`, or one with `#[mixing(…, for j)]`); this guide reports no groups",
            );
        };
        let mut of_point = vec![Vec::new(); n];
        let mut global = Vec::new();
        for (g, group) in groups.groups().iter().enumerate() {
            let Some(&first) = group.latents.first() else {
                if group.psi.is_empty() {
                    continue;
                }
                if !allow_global {
                    return Err("a mixing group of the guide has mixing coordinates but no \
                         latents: it belongs to no point of the plate");
                }
                global.push(g);
                continue;
            };
            let point = owner[first];
            if group.latents.iter().any(|&i| owner[i] != point) {
                return Err(
                    "a mixing group of the guide holds latents of two points of the \
                     plate, or of a point and the global latents: the guide does not factorise \
                     per point",
                );
            }
            match point {
                Some(point) => of_point[point].push(g),
                None => global.push(g),
            }
        }
        let first = of_point.first().and_then(|groups| groups.first().copied());
        let single = first.filter(|&first| {
            of_point
                .iter()
                .enumerate()
                .all(|(n, groups)| groups.len() == 1 && groups[0] == first + n)
        });
        Ok(Self {
            of_point,
            global,
            single,
        })
    }

    /// True when some group belongs to a point (else the per-point form
    /// is the ordinary bound with every group counted whole).
    pub(crate) fn has_point_groups(&self) -> bool {
        self.of_point.iter().any(|groups| !groups.is_empty())
    }

    /// The global groups, then the groups of the batch's points in batch
    /// order, and where the global ones and each point's end in that list.
    fn of_batch(&self, batch: &Batch<'_>) -> (Vec<usize>, Vec<usize>) {
        let mut groups = Vec::with_capacity(self.global.len() + batch.len());
        groups.extend_from_slice(&self.global);
        let mut ends = Vec::with_capacity(batch.len() + 1);
        ends.push(groups.len());
        if let Some(first) = self.single {
            let global = groups.len();
            groups.extend(batch.indices().iter().map(|&n| first + n));
            ends.extend((1..=batch.len()).map(|i| global + i));
            return (groups, ends);
        }
        for &n in batch.indices() {
            extend_short(&mut groups, &self.of_point[n]);
            ends.push(groups.len());
        }
        (groups, ends)
    }
}

/// The noise entries of the global groups and of each point's groups
/// ([`HierarchicalGuide::group_noise`] and each group's
/// [`MixingGroup::reverse_noise`](crate::guide::MixingGroup::reverse_noise)),
/// gathered from the guide once per fit, so that a minibatch step lists
/// its batch's in `O(b)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PointNoise {
    global: NoiseEntries,
    /// Every point's entries, point after point.
    points: NoiseEntries,
    /// Where each point's entries start in `points` (mixing, conditional,
    /// reverse), and where the last ends.
    starts: Vec<[usize; 3]>,
    /// For each kind (mixing, conditional, reverse), `Some(c)` when every
    /// point has `c` entries of it: point `n`'s are then at `n·c`, found
    /// without reading `starts`.
    uniform: [Option<usize>; 3],
}

impl PointNoise {
    /// The entries of `points`' groups; `None` when the guide does not
    /// report some group's (its steps then draw all of their noise).
    ///
    /// # Errors
    /// [`ObjectiveError::GroupNoiseOutOfRange`] when a reported entry is
    /// past the end of its draw's noise.
    pub(crate) fn new<G: HierarchicalGuide>(
        guide: &G,
        points: &PointGroups,
    ) -> Result<Option<Self>, ObjectiveError> {
        let Some(mixing_groups) = guide.mixing_groups() else {
            return Ok(None);
        };
        let groups = mixing_groups.groups();
        let lens = [
            guide.mixing_noise_dim(),
            guide.conditional_noise_dim(),
            guide.reverse_noise_dim(),
        ];
        let read = |list: &[usize], into: &mut NoiseEntries| -> Result<bool, ObjectiveError> {
            for &g in list {
                let before = [into.mixing.len(), into.conditional.len()];
                if !guide.group_noise(g, &mut into.mixing, &mut into.conditional) {
                    return Ok(false);
                }
                let reverse = groups[g].reverse_noise.clone();
                let added = [
                    ("mixing", into.mixing[before[0]..].iter().max().copied()),
                    (
                        "conditional",
                        into.conditional[before[1]..].iter().max().copied(),
                    ),
                    ("reverse", reverse.clone().last()),
                ];
                into.reverse.extend(reverse);
                for ((which, largest), len) in added.into_iter().zip(lens) {
                    if let Some(entry) = largest.filter(|&e| e >= len) {
                        return Err(ObjectiveError::GroupNoiseOutOfRange {
                            group: g,
                            which,
                            entry,
                            len,
                        });
                    }
                }
            }
            Ok(true)
        };
        let mut global = NoiseEntries::default();
        let mut all = NoiseEntries::default();
        let mut starts = vec![[0; 3]];
        if !read(&points.global, &mut global)? {
            return Ok(None);
        }
        for point in &points.of_point {
            if !read(point, &mut all)? {
                return Ok(None);
            }
            starts.push([all.mixing.len(), all.conditional.len(), all.reverse.len()]);
        }
        Ok(Some(Self::with_starts(global, all, starts)))
    }

    /// The entries and where each point's start, with each kind's count per
    /// point when it is the same for every point.
    fn with_starts(global: NoiseEntries, points: NoiseEntries, starts: Vec<[usize; 3]>) -> Self {
        let uniform = std::array::from_fn(|kind| {
            let count = starts.get(1).map_or(0, |s| s[kind] - starts[0][kind]);
            starts
                .windows(2)
                .all(|w| w[1][kind] - w[0][kind] == count)
                .then_some(count)
        });
        Self {
            global,
            points,
            starts,
            uniform,
        }
    }

    /// The entries a step on `batch` reads into `entries`: the global
    /// groups', then each of the batch's points' in batch order.
    /// Kind after kind (each its own list, so the order within each is the
    /// same as point after point): a kind no point has is skipped, and one
    /// every point has as many of is read at `n·c` (`uniform`).
    pub(crate) fn of_batch(&self, batch: &Batch<'_>, entries: &mut NoiseEntries) {
        entries.clone_from(&self.global);
        let kinds = [
            (&mut entries.mixing, &self.points.mixing),
            (&mut entries.conditional, &self.points.conditional),
            (&mut entries.reverse, &self.points.reverse),
        ];
        for (kind, (into, from)) in kinds.into_iter().enumerate() {
            if from.is_empty() {
                continue;
            }
            match self.uniform[kind] {
                Some(count) => {
                    into.reserve(count * batch.len());
                    for &n in batch.indices() {
                        extend_short(into, &from[n * count..(n + 1) * count]);
                    }
                }
                None => {
                    for &n in batch.indices() {
                        let (start, end) = (self.starts[n][kind], self.starts[n + 1][kind]);
                        extend_short(into, &from[start..end]);
                    }
                }
            }
        }
    }
}

/// `into.extend_from_slice(from)` for the few entries of one point, one
/// push each: a `memcpy` call per point cost more than the copy.
#[inline]
fn extend_short(into: &mut Vec<usize>, from: &[usize]) {
    if from.len() > 16 {
        into.extend_from_slice(from);
        return;
    }
    for &entry in from {
        into.push(entry);
    }
}

/// The per-point bound on one step's batch, as a function of the joint
/// vector `[φ; ϑ]` (the guide's parameters, then the model's learned ones
/// in unconstrained coordinates):
///
/// ```text
/// log p(g) − U_K^(g) + (N / b) Σ_{n ∈ B} [logsumexp_m (log p(x_n, z_{n,m} | g) − U_K^(n)) − log M],
/// ```
///
/// the global part (`log p(g)` the model's terms outside the plate,
/// `U_K^(g)` the global groups' inner bound) from the first outer draw:
/// with global latents only `M = 1` is unbiased ([`PointGroups::new`]).
pub(crate) struct PerPointObjective<'a, Mo, G> {
    pub(crate) model: &'a Mo,
    pub(crate) guide: &'a G,
    pub(crate) noise: &'a StepNoise,
    pub(crate) batch: Batch<'a>,
    pub(crate) points: &'a PointGroups,
    /// The guide's number of parameters `p`.
    pub(crate) guide_params: usize,
}

impl<Mo: Model, G: HierarchicalGuide> Differentiable for PerPointObjective<'_, Mo, G> {
    fn eval<T: Scalar>(&self, joint: &[T]) -> T {
        let (params, theta) = joint.split_at(self.guide_params);
        let (guide, noise, batch) = (self.guide, self.noise, &self.batch);
        let outer = noise.objective().m();
        let (groups, ends) = self.points.of_batch(batch);
        // O(b): the batch's groups alone are prepared and drawn (their
        // mixing coordinates, then their latents).
        let by_group = guide.samples_by_group();
        let mut buffers = if by_group {
            Buffers::for_groups(guide, params, &groups)
        } else {
            Buffers::new(guide, params, Stop::Nothing)
        };
        let zero = T::constant(0.0);
        let mut points = vec![zero; batch.len()];
        // `log_w[i · M + m]`: point `i` of the batch, outer draw `m`.
        let mut log_w = vec![zero; batch.len() * outer];
        let mut global = zero;
        for m in 0..outer {
            if by_group {
                buffers.draw_groups(guide, params, noise, (m, &groups));
            } else {
                buffers.draw_outer(guide, params, noise, m);
            }
            buffers.group_weights(guide, params, noise, m, &groups);
            let u = &buffers.u;
            let terms =
                self.model
                    .log_joint_points(theta, u, noise.prior_noise(m), batch, &mut points);
            // `ends[0]`: the global groups' rows come first.
            let mut rows = buffers.rows().iter();
            if outer == 1
                && let Some(log_q) = single_weights(&points, buffers.rows(), &ends)
            {
                // The global part, then the points' sum as one op.
                let global = global_part(terms, rows.take(ends[0]));
                let mut sum = Vec::with_capacity(1);
                T::vector_op(PointSum, &[&points, log_q], &mut sum);
                return global + sum[0] * batch.scale();
            }
            let global_rows = rows.by_ref().take(ends[0]);
            if m == 0 {
                global = global_part(terms, global_rows);
            } else {
                global_rows.for_each(drop);
            }
            for (i, ends) in ends.windows(2).enumerate() {
                let mut log_q = zero;
                for row in rows.by_ref().take(ends[1] - ends[0]) {
                    accumulate(&mut log_q, upper(row));
                }
                log_w[i * outer + m] = points[i] - log_q;
            }
        }
        let mut total = zero;
        for per_point in log_w.chunks(outer) {
            accumulate(&mut total, upper(per_point));
        }
        global + total * batch.scale()
    }
}

/// The points' weights `log q(z_i)` when a batch's points have one exact
/// weight each (`M = 1`, one group of one weight per point, after the
/// global rows), each finite and nonzero, and each `log_w_i =
/// points_i − log q(z_i)` too: then `U` of each row and of each point's
/// one outer draw is the weight itself, and the sum of the `log_w_i` is
/// [`PointSum`], one vector operation with the value and the tape's
/// adjoints of the scalar path (which records two nodes per point).
/// `None` (the scalar path) otherwise.
fn single_weights<'a, T: Scalar>(
    points: &[T],
    rows: Rows<'a, T>,
    ends: &[usize],
) -> Option<&'a [T]> {
    if ends.windows(2).any(|w| w[1] - w[0] != 1) {
        return None;
    }
    let global: usize = rows.iter().take(ends[0]).map(<[T]>::len).sum();
    let log_q = &rows.values[global..];
    let usable = |x: f64| x.is_finite() && x != 0.0;
    (log_q.len() == points.len()
        && points
            .iter()
            .zip(log_q)
            .all(|(p, q)| usable(q.value()) && usable(p.value() - q.value())))
    .then_some(log_q)
}

/// `y = Σ_i (p_i − q_i)` of the blocks `[p, q]`, summed in order from the
/// first difference (`accumulate`'s sum): each difference's node has
/// edges `1` and `−1`, each sum's `1` and `1`.
struct PointSum;

impl VectorFunction for PointSum {
    fn outputs(&self) -> usize {
        1
    }

    fn eval(&mut self, x: &[&[f64]], y: &mut [f64]) {
        let mut total = 0.0;
        for (&p, &q) in x[0].iter().zip(x[1]) {
            accumulate(&mut total, p - q);
        }
        y[0] = total;
    }

    fn vjp(&self, _: &[&[f64]], _: &[f64], ybar: &[f64], xbar: &mut [Option<&mut [f64]>]) {
        let a = ybar[0];
        if a == 0.0 {
            return;
        }
        let [p_bar, q_bar] = xbar else {
            unreachable!("two blocks")
        };
        if let Some(p_bar) = p_bar.as_deref_mut() {
            for p in p_bar.iter_mut() {
                *p += a * 1.0;
            }
        }
        if let Some(q_bar) = q_bar.as_deref_mut() {
            for q in q_bar.iter_mut() {
                *q += -a;
            }
        }
    }

    fn jvp(&self, _: &[&[f64]], _: &[f64], xdot: &[Option<&[f64]>], ydot: &mut [f64]) {
        let len = xdot.iter().flatten().map(|d| d.len()).max().unwrap_or(0);
        let mut total = 0.0;
        for i in 0..len {
            let p = xdot[0].map_or(0.0, |d| d[i]);
            let q = xdot[1].map_or(0.0, |d| d[i]);
            total += p - q;
        }
        ydot[0] = total;
    }
}

/// The global part `log p(g) − U_K^(g)`: the model's `terms` outside the
/// plate less the global groups' inner bounds (the sum of `upper` over
/// their `rows`); with no global group `terms` itself, without a node.
fn global_part<'r, T: Scalar + 'r>(terms: T, rows: impl Iterator<Item = &'r [T]>) -> T {
    let mut log_q = T::constant(0.0);
    for row in rows {
        accumulate(&mut log_q, upper(row));
    }
    if is_positive_zero(log_q) {
        terms
    } else {
        terms - log_q
    }
}

/// True for the constant `+0` (an empty sum), which subtracts exactly.
#[inline]
fn is_positive_zero<T: Scalar>(x: T) -> bool {
    num_traits::Zero::is_zero(&x) && x.value().to_bits() == 0
}

/// The per-point bound of `model` and `guide` at the guide's `params` (and
/// the model's own learned parameters [`Model::theta`]) on the points
/// `batch` of the model's plate, on the step's `noise`: the value a
/// minibatch fit with `M > 1` (or `M = 1` and a guide with per-point
/// groups) climbs,
///
/// ```text
/// log c + (N / b) Σ_{n ∈ B} [ logsumexp_m (log p(x_n, z_{n,m}) − U_K^(n)(z_{n,m})) − log M ],
/// ```
///
/// `U_K^(n)` point `n`'s inner bound over its mixing groups (`log q(z_n)`
/// exactly for a group without mixing coordinates), `N` the plate's
/// length and `b = |B|`. With every point in `batch` it is the bound on
/// the full data; with `M = 1` it equals the ordinary bound
/// ([`DiwhviObjective`](super::DiwhviObjective)) on the same noise.
///
/// ```
/// use iwhvi_core::gradient::Differentiable;
/// use iwhvi_core::guide::{MixingGroup, MixingGroups};
/// use iwhvi_core::objective::{Diwhvi, DiwhviObjective, StepNoise, per_point_bound};
/// use rand::{SeedableRng, rngs::StdRng};
/// # use iwhvi_core::guide::{HierarchicalGuide, ParamLayout, Workspace, diag_normal_log_density as normal};
/// # use iwhvi_core::model::{LatentSpec, Layout, Model};
/// # use iwhvi_core::scalar::Scalar;
/// # use iwhvi_core::subsample::{Batch, SubsamplePlate};
/// # use iwhvi_core::transforms::Transform;
/// // `Points`: z_n ~ N(0, 1), x_n ~ N(z_n, 1) for x = (0.5, -1), every latent local.
/// # struct Points;
/// # impl Model for Points {
/// #     fn layout(&self) -> Layout { Layout::new(vec![LatentSpec::vector("z", 2, Transform::Identity)]) }
/// #     fn log_joint<T: Scalar>(&self, u: &[T]) -> T { self.log_joint_subset(&[], u, &[], &Batch::new(&[0, 1], 2)) }
/// #     fn subsample_plate(&self) -> Result<SubsamplePlate, &'static str> {
/// #         Ok(SubsamplePlate { observed: vec!["x".into()], len: 2 })
/// #     }
/// #     fn local_latents(&self) -> Vec<String> { vec!["z".into()] }
/// #     fn log_joint_subset<T: Scalar>(&self, _: &[T], u: &[T], _: &[f64], b: &Batch<'_>) -> T {
/// #         let (zero, x) = (T::constant(0.0), [0.5, -1.0]);
/// #         let mut total = zero;
/// #         for &n in b.indices() {
/// #             total += normal(&[u[n]], &[zero], &[zero]) + normal(&[T::constant(x[n])], &[u[n]], &[zero]);
/// #         }
/// #         total * b.scale()
/// #     }
/// # }
/// // `PerPointNormal`: q(z) = Π_n N(z_n; loc_n, exp(log_scale_n)²), one group per point.
/// # struct PerPointNormal(MixingGroups);
/// # impl HierarchicalGuide for PerPointNormal {
/// #     fn latent_dim(&self) -> usize { 2 }
/// #     fn mixing_dim(&self) -> usize { 0 }
/// #     fn has_reverse_model(&self) -> bool { false }
/// #     fn param_layout(&self) -> ParamLayout {
/// #         let mut layout = ParamLayout::default();
/// #         layout.push("loc", &[2]);
/// #         layout.push("log_scale", &[2]);
/// #         layout
/// #     }
/// #     fn init_params<R: rand::Rng + ?Sized>(&self, _: &mut R) -> Vec<f64> { vec![0.0; 4] }
/// #     fn sample_conditional<T: Scalar>(&self, p: &[T], _: &[T], e: &[f64], u: &mut [T], _: &mut Workspace<T>) {
/// #         for n in 0..2 { u[n] = p[n] + p[2 + n].exp() * e[n]; }
/// #     }
/// #     fn log_conditional<T: Scalar>(&self, p: &[T], _: &[T], u: &[T], _: &mut Workspace<T>) -> T {
/// #         normal(u, &p[..2], &p[2..])
/// #     }
/// #     fn mixing_groups(&self) -> Option<&MixingGroups> { Some(&self.0) }
/// #     fn log_conditional_group<T: Scalar>(&self, p: &[T], n: usize, _: &[T], u: &[T], _: &mut Workspace<T>) -> T {
/// #         normal(&[u[n]], &[p[n]], &[p[2 + n]])
/// #     }
/// # }
/// let group = |n: usize| MixingGroup { psi: 0..0, latents: vec![n], reverse_noise: 0..0 };
/// let guide = PerPointNormal(MixingGroups::new(2, 0, 0, vec![group(0), group(1)])?);
/// let params = [0.2, -0.4, -0.3, -0.5];
/// let mut rng = StdRng::seed_from_u64(1);
/// // M = 1 on every point: the ELBO, as the ordinary bound computes it.
/// let noise = StepNoise::draw(&guide, Diwhvi::elbo(), &mut rng);
/// let elbo = DiwhviObjective::new(&Points, &guide, &noise).eval(&params[..]);
/// let value = per_point_bound(&Points, &guide, &params, &noise, &[0, 1])?;
/// assert!((value - elbo).abs() < 1e-12);
/// // M = 4 on point 1 alone, its term scaled by N / b = 2.
/// let noise = StepNoise::draw(&guide, Diwhvi::iwae(4), &mut rng);
/// assert!(per_point_bound(&Points, &guide, &params, &noise, &[1])?.is_finite());
/// // A point outside the plate is refused.
/// assert!(per_point_bound(&Points, &guide, &params, &noise, &[2]).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`InputError::DimensionMismatch`], the parameter errors of
/// [`check_params`], [`InputError::NoiseMismatch`] for noise drawn for
/// another guide, and [`InputError::InvalidSetting`] naming `batch` (an
/// index past the plate or repeated, or an empty batch), `model` (no plate
/// to subsample, or prior noise the step's noise lacks) or `guide` (the
/// model and guide do not factorise per point, with the reason).
pub fn per_point_bound<Mo: Model, G: HierarchicalGuide>(
    model: &Mo,
    guide: &G,
    params: &[f64],
    noise: &StepNoise,
    batch: &[usize],
) -> Result<f64, InputError> {
    let refuse = |setting, value: String, requirement| InputError::InvalidSetting {
        setting,
        value,
        requirement,
    };
    check_dimensions(model, guide)?;
    check_params(guide, params)?;
    noise.check_fits(guide, 0)?;
    let plate = model
        .subsample_plate()
        .map_err(|why| refuse("model", "no plate".into(), why))?;
    let points = PointGroups::new(model, guide, plate.len, noise.objective().m() == 1)
        .map_err(|why| refuse("guide", "its mixing groups".into(), why))?;
    if noise.prior_noise(0).len() != model.prior_noise_dim() {
        return Err(refuse(
            "model",
            format!("prior_noise_dim() = {}", model.prior_noise_dim()),
            "the step's noise carries the model's prior noise (StepNoise::with_prior_noise)",
        ));
    }
    let batch = Batch::try_new(batch, plate.len)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| {
            refuse(
                "batch",
                format!("{batch:?}"),
                "distinct indices below the plate's length N, at least one",
            )
        })?;
    let mut joint = params.to_vec();
    joint.extend(model.theta());
    let objective = PerPointObjective {
        model,
        guide,
        noise,
        batch,
        points: &points,
        guide_params: params.len(),
    };
    Ok(objective.eval(&joint))
}

#[cfg(test)]
mod point_noise_tests {
    use super::{NoiseEntries, PointNoise};
    use crate::subsample::Batch;

    /// `of_batch` lists each of the batch's points' entries, point after
    /// point, after the global ones, as reading `starts` point by point
    /// does: with counts that differ by point (no `uniform` count) and the
    /// same for every point, a kind no point has, and batches in any order.
    #[test]
    fn of_batch_lists_the_points_entries_in_batch_order() {
        let global = NoiseEntries {
            mixing: vec![90],
            conditional: vec![91, 92],
            reverse: Vec::new(),
        };
        // Point n: mixing entries 10n .. 10n + (n % 3), conditional 100 + 2n
        // and 101 + 2n, no reverse entries.
        let n = 7;
        let (mut points, mut starts) = (NoiseEntries::default(), vec![[0; 3]]);
        for p in 0..n {
            points.mixing.extend((0..p % 3).map(|k| 10 * p + k));
            points.conditional.extend([100 + 2 * p, 101 + 2 * p]);
            starts.push([points.mixing.len(), points.conditional.len(), 0]);
        }
        let noise = PointNoise::with_starts(global.clone(), points.clone(), starts.clone());
        assert_eq!(noise.uniform, [None, Some(2), Some(0)]);
        for batch in [vec![3, 0, 6], vec![5], (0..n).rev().collect(), vec![2, 1]] {
            let mut expected = global.clone();
            for &p in &batch {
                let ([m0, c0, _], [m1, c1, _]) = (starts[p], starts[p + 1]);
                expected.mixing.extend_from_slice(&points.mixing[m0..m1]);
                expected
                    .conditional
                    .extend_from_slice(&points.conditional[c0..c1]);
            }
            let mut entries = NoiseEntries {
                mixing: vec![1, 2, 3],
                conditional: vec![4],
                reverse: vec![5],
            };
            noise.of_batch(&Batch::new(&batch, n), &mut entries);
            assert_eq!(entries, expected, "{batch:?}");
        }
    }
}
