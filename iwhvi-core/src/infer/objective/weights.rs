//! The importance weights: the one routine every bound and gradient
//! estimator reads.
//!
//! At each outer draw `ψ₀ ~ q(ψ)`, `u ~ q(u | ψ₀)` and the reverse draws
//! `ψ₁ … ψ_K ~ τ(ψ | u)`, the weights are
//! `w_k = log q(u|ψ_k) + log q(ψ_k) − log τ(ψ_k|u)` (for a guide without
//! mixing variables, the single weight `w₀ = log q(u)`), and the outer
//! log weight of the draw is `log p(x, u) − U_K(u)` with
//! `U_K = ` [`Rows::upper`]. For a guide that reports
//! [`MixingGroups`](crate::guide::MixingGroups) the weights are an
//! `N × (K + 1)` matrix, one row per group (a group without mixing
//! coordinates has one exact weight), and
//! `U_K = Σ_n logsumexp_k w_{n,k} − N log(K + 1)`. The estimators
//! differ only in which densities read the parameters with their
//! derivatives and which read them stopped ([`Stop`]); the draws always
//! carry their derivatives.

use std::ops::Range;

use super::StepNoise;
use crate::guide::{HierarchicalGuide, MixingGroup, MixingGroups, Workspace};
use crate::scalar::Scalar;

/// Which copy of the parameters a density reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Grad {
    /// The parameters themselves: the density carries their derivatives.
    Live,
    /// Their values as constants (stop-gradient): the density's
    /// derivatives flow only through its arguments `u` and `ψ`.
    Stopped,
}

/// Which densities of the weights read the parameters stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// None: the weights of the bound itself.
    Nothing,
    /// `log τ(ψ_k | u)` of the reverse draws `k ≥ 1` (the
    /// doubly-reparameterized weights): `ψ_k` keeps its path through
    /// `τ`'s sampler, the density's direct dependence on the parameters
    /// is stopped. `w₀` (whose `ψ₀` comes from `q(ψ)`) stays live.
    InnerReverse,
    /// Every density (sticking the landing): derivatives flow only
    /// through the draws.
    Everything,
}

/// The parameter copy each density of one weight reads.
#[derive(Clone, Copy, Debug)]
struct Reads {
    conditional: Grad,
    mixing: Grad,
    reverse: Grad,
}

impl Stop {
    /// What the densities of weight `w_k` read (`k = 0`: the weight of
    /// `ψ₀`).
    fn reads(self, k: usize) -> Reads {
        let all = |grad| Reads {
            conditional: grad,
            mixing: grad,
            reverse: grad,
        };
        match self {
            Self::Nothing => all(Grad::Live),
            Self::InnerReverse if k == 0 => all(Grad::Live),
            Self::InnerReverse => Reads {
                reverse: Grad::Stopped,
                ..all(Grad::Live)
            },
            Self::Everything => all(Grad::Stopped),
        }
    }
}

/// The stopped copy of the parameters and its own workspace.
struct Stopped<T> {
    params: Vec<T>,
    workspace: Workspace<T>,
}

/// Work buffers of one evaluation, allocated once and reused across its
/// outer samples.
pub(super) struct Buffers<T> {
    psi0: Vec<T>,
    psi: Vec<T>,
    /// The current draw of `u`.
    pub(super) u: Vec<T>,
    workspace: Workspace<T>,
    /// The stopped copy, when some density reads it.
    stopped: Option<Stopped<T>>,
    /// The weights `w_0 … w_K` of the current `u`, row after row (one
    /// row per mixing group; one row without groups).
    pub(super) weights: Vec<T>,
    /// Where each row of `weights` ends.
    ends: Vec<usize>,
}

impl<T: Scalar> Buffers<T> {
    /// Buffers for `guide`, its workspaces prepared for `params` (and for
    /// their stopped copy when `stop` reads one).
    pub(super) fn new<G: HierarchicalGuide>(guide: &G, params: &[T], stop: Stop) -> Self {
        let mut workspace = Workspace::new(guide);
        guide.prepare(params, &mut workspace);
        Self::with_workspace(guide, params, stop, workspace)
    }

    /// Buffers for the groups `groups` of a guide that samples by group
    /// ([`HierarchicalGuide::samples_by_group`]): its workspace prepared
    /// for them alone, the bound's own weights (no stopped copy).
    pub(super) fn for_groups<G: HierarchicalGuide>(
        guide: &G,
        params: &[T],
        groups: &[usize],
    ) -> Self {
        let mut workspace = Workspace::with_lens(guide.group_workspace_lens());
        guide.prepare_groups(params, groups, &mut workspace);
        Self::with_workspace(guide, params, Stop::Nothing, workspace)
    }

    fn with_workspace<G: HierarchicalGuide>(
        guide: &G,
        params: &[T],
        stop: Stop,
        workspace: Workspace<T>,
    ) -> Self {
        let stopped_params = (stop != Stop::Nothing)
            .then(|| params.iter().map(|p| T::constant(p.value())).collect());
        let zero = T::constant(0.0);
        let stopped = stopped_params.map(|params: Vec<T>| {
            let mut workspace = Workspace::new(guide);
            guide.prepare(&params, &mut workspace);
            Stopped { params, workspace }
        });
        Self {
            psi0: vec![zero; guide.mixing_dim()],
            psi: vec![zero; guide.mixing_dim()],
            u: crate::guide::filled(zero, guide.latent_dim()),
            workspace,
            stopped,
            weights: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// The weights of the current `u` as rows.
    pub(super) fn rows(&self) -> Rows<'_, T> {
        Rows {
            values: &self.weights,
            ends: &self.ends,
        }
    }

    /// `ψ₀` and `u` of outer sample `m`.
    pub(super) fn draw_outer<G: HierarchicalGuide>(
        &mut self,
        guide: &G,
        params: &[T],
        noise: &StepNoise,
        m: usize,
    ) {
        guide.sample_mixing_prepared(params, noise.mixing(m), &mut self.psi0, &mut self.workspace);
        guide.sample_conditional(
            params,
            &self.psi0,
            noise.conditional(m),
            &mut self.u,
            &mut self.workspace,
        );
    }

    /// `ψ₀` and the latents of the groups `which` of outer sample `m`,
    /// drawn group by group (each group's mixing coordinates by
    /// [`HierarchicalGuide::sample_mixing_group`], then its latents at them
    /// by [`HierarchicalGuide::sample_conditional_group`]) from the same
    /// noise entries as [`Buffers::draw_outer`]; the other coordinates of
    /// `ψ₀` and `u` are stale. Without mixing coordinates the groups are
    /// independent and drawn as one batch
    /// ([`HierarchicalGuide::sample_conditional_groups`]).
    pub(super) fn draw_groups<G: HierarchicalGuide>(
        &mut self,
        guide: &G,
        params: &[T],
        noise: &StepNoise,
        (m, which): (usize, &[usize]),
    ) {
        if guide.mixing_dim() == 0 {
            guide.sample_conditional_groups(
                params,
                which,
                noise.conditional(m),
                &mut self.u,
                &mut self.workspace,
            );
            return;
        }
        // Cannot fail: a guide that samples by group reports its groups.
        let groups = guide
            .mixing_groups()
            .expect("a guide that samples by group reports its mixing groups")
            .groups();
        for &n in which {
            let psi = groups[n].psi.clone();
            if !psi.is_empty() {
                guide.sample_mixing_group(
                    params,
                    n,
                    noise.mixing(m),
                    &mut self.psi0,
                    &mut self.workspace,
                );
            }
            guide.sample_conditional_group(
                params,
                n,
                &self.psi0[psi],
                noise.conditional(m),
                &mut self.u,
                &mut self.workspace,
            );
        }
    }

    /// `log q(u | ψ₀)`: the conditional density of the current `u` at the
    /// mixing draw `ψ₀` that made it.
    pub(super) fn log_conditional_at_psi0<G: HierarchicalGuide>(
        &mut self,
        guide: &G,
        params: &[T],
    ) -> T {
        guide.log_conditional(params, &self.psi0, &self.u, &mut self.workspace)
    }

    /// The weights `w_0 … w_K` of the current `u` into `self.weights`
    /// (one row per mixing group when the guide reports groups), each
    /// density reading the parameter copy `stop` gives it.
    pub(super) fn inner_weights<G: HierarchicalGuide>(
        &mut self,
        guide: &G,
        params: &[T],
        noise: &StepNoise,
        m: usize,
        stop: Stop,
    ) {
        self.weights.clear();
        self.ends.clear();
        if guide.mixing_dim() == 0 {
            // One exact weight, `log q(u)`.
            self.push_row(Densities::whole(guide), params, noise, m, stop);
            return;
        }
        self.prepare_reverse(guide, params);
        let groups = guide.mixing_groups();
        let rows = groups.map_or(1, MixingGroups::len);
        self.weights.reserve(rows * (noise.objective().k() + 1));
        match groups {
            Some(groups) => {
                for (index, group) in groups.groups().iter().enumerate() {
                    let of = Densities::group(guide, index, group);
                    self.push_row(of, params, noise, m, stop);
                }
            }
            None => self.push_row(Densities::whole(guide), params, noise, m, stop),
        }
    }

    /// The rows of the groups `which` alone (in that order) for the
    /// current `u`, with the bound's own weights (no stopped densities):
    /// the per-point objective's, which reads only a batch's groups.
    /// The guide must report [`MixingGroups`](crate::guide::MixingGroups).
    /// Without mixing coordinates each row is one exact weight, and the
    /// batch's are computed at once
    /// ([`HierarchicalGuide::log_conditional_groups`]).
    pub(super) fn group_weights<G: HierarchicalGuide>(
        &mut self,
        guide: &G,
        params: &[T],
        noise: &StepNoise,
        m: usize,
        which: &[usize],
    ) {
        self.weights.clear();
        self.ends.clear();
        if guide.mixing_dim() == 0 {
            guide.log_conditional_groups(
                params,
                which,
                &self.u,
                &mut self.workspace,
                &mut self.weights,
            );
            // A row per group, in `which`'s order: an override that
            // pushed another count would pair each point with another
            // point's density (a plausible wrong bound), so it stops here.
            assert_eq!(
                self.weights.len(),
                which.len(),
                "{}::log_conditional_groups pushed {} densities for {} groups: \
                 it must push exactly one per group, in the order asked",
                std::any::type_name::<G>(),
                self.weights.len(),
                which.len()
            );
            self.ends.extend(1..=self.weights.len());
            return;
        }
        self.prepare_reverse(guide, params);
        // Cannot fail: the per-point objective is built only for a guide
        // that reports its groups.
        let groups = guide
            .mixing_groups()
            .expect("group weights are asked only of a guide with mixing groups")
            .groups();
        for &n in which {
            let of = Densities::group(guide, n, &groups[n]);
            self.push_row(of, params, noise, m, Stop::Nothing);
        }
    }

    /// The reverse model's preparation for the current `u`, on both
    /// parameter copies.
    fn prepare_reverse<G: HierarchicalGuide>(&mut self, guide: &G, params: &[T]) {
        guide.prepare_reverse(params, &self.u, &mut self.workspace);
        if let Some(stopped) = &mut self.stopped {
            guide.prepare_reverse(&stopped.params, &self.u, &mut stopped.workspace);
        }
    }

    /// The row `w_0 … w_K` of outer draw `m` for the densities `of` (the
    /// whole guide's, or one group's): one exact weight when they have no
    /// mixing coordinates.
    fn push_row<G: HierarchicalGuide>(
        &mut self,
        of: Densities<'_, G>,
        params: &[T],
        noise: &StepNoise,
        m: usize,
        stop: Stop,
    ) {
        let Self {
            psi0,
            psi,
            u,
            workspace,
            stopped,
            weights,
            ends,
        } = self;
        let reads = stop.reads(0);
        let coordinates = of.psi(psi0.len());
        if coordinates.is_empty() {
            // No mixing coordinates: the exact density, once.
            let (p, ws) = copy(params, workspace, stopped, reads.conditional);
            weights.push(of.log_conditional(p, &[], u, ws));
            ends.push(weights.len());
            return;
        }
        let psi0 = &psi0[coordinates.clone()];
        weights.push(of.weight(params, psi0, u, workspace, stopped, reads));
        let psi = &mut psi[coordinates];
        for k in 0..noise.objective().k() {
            let noise = of.reverse_noise(noise.reverse(m, k));
            of.sample_reverse(params, u, noise, psi, workspace);
            let reads = stop.reads(k + 1);
            weights.push(of.weight(params, psi, u, workspace, stopped, reads));
        }
        ends.push(weights.len());
    }
}

/// The densities one row of weights reads: the whole guide's
/// (`log q(u|ψ)`, `log q(ψ)`, `τ(ψ|u)`), or one mixing group's (the
/// `*_group` methods, on the group's coordinates of `ψ` and of the
/// reverse noise).
struct Densities<'g, G> {
    guide: &'g G,
    /// The group and its index; `None` for the whole guide.
    group: Option<(usize, &'g MixingGroup)>,
}

impl<G> Clone for Densities<'_, G> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<G> Copy for Densities<'_, G> {}

impl<'g, G: HierarchicalGuide> Densities<'g, G> {
    fn whole(guide: &'g G) -> Self {
        Self { guide, group: None }
    }

    fn group(guide: &'g G, index: usize, group: &'g MixingGroup) -> Self {
        Self {
            guide,
            group: Some((index, group)),
        }
    }

    /// The coordinates of `ψ` (of length `mixing_dim`) the row reads.
    fn psi(self, mixing_dim: usize) -> Range<usize> {
        self.group
            .map_or(0..mixing_dim, |(_, group)| group.psi.clone())
    }

    /// The entries of one reverse draw's noise the row reads.
    fn reverse_noise(self, noise: &[f64]) -> &[f64] {
        match self.group {
            Some((_, group)) => &noise[group.reverse_noise.clone()],
            None => noise,
        }
    }

    /// `log q(u|ψ)`, or the group's `log q(u_n|ψ_n, u)`.
    #[inline]
    fn log_conditional<T: Scalar>(
        self,
        params: &[T],
        psi: &[T],
        u: &[T],
        workspace: &mut Workspace<T>,
    ) -> T {
        match self.group {
            Some((n, _)) => self
                .guide
                .log_conditional_group(params, n, psi, u, workspace),
            None => self.guide.log_conditional(params, psi, u, workspace),
        }
    }

    /// A draw of `ψ ~ τ(ψ|u)`, or of the group's `ψ_n ~ τ(ψ_n|u)`.
    #[inline]
    fn sample_reverse<T: Scalar>(
        self,
        params: &[T],
        u: &[T],
        noise: &[f64],
        psi: &mut [T],
        workspace: &mut Workspace<T>,
    ) {
        match self.group {
            Some((n, _)) => self
                .guide
                .sample_reverse_group(params, n, u, noise, psi, workspace),
            None => self.guide.sample_reverse(params, u, noise, psi, workspace),
        }
    }

    /// `log q(ψ)`, or the group's `log q(ψ_n)`.
    #[inline]
    fn log_mixing<T: Scalar>(self, params: &[T], psi: &[T], workspace: &mut Workspace<T>) -> T {
        match self.group {
            Some((n, _)) => self.guide.log_mixing_group(params, n, psi, workspace),
            None => self.guide.log_mixing_prepared(params, psi, workspace),
        }
    }

    /// `log τ(ψ|u)`, or the group's `log τ(ψ_n|u)`.
    #[inline]
    fn log_reverse<T: Scalar>(
        self,
        params: &[T],
        u: &[T],
        psi: &[T],
        workspace: &mut Workspace<T>,
    ) -> T {
        match self.group {
            Some((n, _)) => self.guide.log_reverse_group(params, n, u, psi, workspace),
            None => self.guide.log_reverse(params, u, psi, workspace),
        }
    }

    /// `w = log q(u|ψ) + log q(ψ) − log τ(ψ|u)` (a group's:
    /// `w_n = log q(u_n|ψ_n, u) + log q(ψ_n) − log τ(ψ_n|u)`), each density
    /// reading the copy `reads` names.
    #[inline]
    fn weight<T: Scalar>(
        self,
        params: &[T],
        psi: &[T],
        u: &[T],
        workspace: &mut Workspace<T>,
        stopped: &mut Option<Stopped<T>>,
        reads: Reads,
    ) -> T {
        let (p, ws) = copy(params, workspace, stopped, reads.conditional);
        let log_conditional = self.log_conditional(p, psi, u, ws);
        let (p, ws) = copy(params, workspace, stopped, reads.mixing);
        let head = log_conditional + self.log_mixing(p, psi, ws);
        let (p, ws) = copy(params, workspace, stopped, reads.reverse);
        head - self.log_reverse(p, u, psi, ws)
    }
}

/// The parameters and workspace a density reading `grad` uses.
fn copy<'a, T>(
    params: &'a [T],
    workspace: &'a mut Workspace<T>,
    stopped: &'a mut Option<Stopped<T>>,
    grad: Grad,
) -> (&'a [T], &'a mut Workspace<T>) {
    match grad {
        Grad::Live => (params, workspace),
        Grad::Stopped => {
            // Cannot fail: `Buffers::new` makes the stopped copy whenever
            // its `Stop` stops any density, and only then is `Grad::Stopped`
            // asked for.
            let stopped = stopped
                .as_mut()
                .expect("buffers built for a stop hold the stopped copy");
            (&stopped.params, &mut stopped.workspace)
        }
    }
}

/// Draws each outer sample `u_m` of the step's noise, computes its weights
/// under `stop` and hands both to `visit(m, u_m, weights)`.
pub(super) fn for_each_outer_draw<G: HierarchicalGuide, T: Scalar>(
    guide: &G,
    params: &[T],
    noise: &StepNoise,
    stop: Stop,
    mut visit: impl FnMut(usize, &[T], Rows<'_, T>),
) {
    let mut buffers = Buffers::new(guide, params, stop);
    for m in 0..noise.objective().m() {
        buffers.draw_outer(guide, params, noise, m);
        buffers.inner_weights(guide, params, noise, m, stop);
        visit(m, &buffers.u, buffers.rows());
    }
}

/// The weights of one draw of `u`, as rows: one row `w_0 … w_K` for a
/// guide without [`MixingGroups`](crate::guide::MixingGroups), one row per
/// group for a guide with them (a single weight for a group without mixing
/// coordinates).
#[derive(Clone, Copy)]
pub(super) struct Rows<'a, T> {
    /// All the weights, row after row.
    pub(super) values: &'a [T],
    /// Where each row ends.
    ends: &'a [usize],
}

impl<'a, T: Scalar> Rows<'a, T> {
    /// The rows in order.
    pub(super) fn iter(self) -> impl Iterator<Item = &'a [T]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let row = &self.values[start..end];
            start = end;
            row
        })
    }

    /// The same rows over other values of the same layout (e.g. the
    /// weights' values without their derivatives).
    pub(super) fn with_values<'b, S>(self, values: &'b [S]) -> Rows<'b, S>
    where
        'a: 'b,
    {
        debug_assert_eq!(values.len(), self.values.len());
        Rows {
            values,
            ends: self.ends,
        }
    }

    /// `U_K = Σ_rows [logsumexp(row) − log(len row)]`: exact `log q(u)` for a
    /// non-hierarchical guide (one weight).
    pub(super) fn upper(self) -> T {
        self.sum(|row| upper(row))
    }

    /// `L_K = Σ_rows [logsumexp(row[1..]) − log(len row − 1)]`, a row of one
    /// weight (a group without mixing coordinates, exact) counting as
    /// itself. Only meaningful for `K ≥ 1`.
    pub(super) fn lower(self) -> T {
        self.sum(|row| {
            if row.len() == 1 {
                row[0]
            } else {
                upper(&row[1..])
            }
        })
    }

    /// `Σ_rows f(row)`, starting from the first row's term (so that one row
    /// gives `f(row)` exactly).
    fn sum(self, f: impl Fn(&[T]) -> T) -> T {
        let mut rows = self.iter();
        let first = rows.next().map_or_else(|| T::constant(0.0), &f);
        rows.fold(first, |total, row| total + f(row))
    }
}

/// `U_K = logsumexp(w) − log(len w)` of one row of weights: for one
/// finite nonzero weight the weight itself (`w + ln 1 − 0`, the same bits,
/// and the same derivative, 1), without the two nodes the tape would
/// record (one weight of a Gaussian guide's group, `M = 1`).
#[inline]
pub(super) fn upper<T: Scalar>(weights: &[T]) -> T {
    match weights {
        [w] if w.value().is_finite() && w.value() != 0.0 => *w,
        _ => T::log_sum_exp(weights) - (weights.len() as f64).ln(),
    }
}
