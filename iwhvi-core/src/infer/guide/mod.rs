//! Hierarchical variational families ("guides").
//!
//! A guide draws a mixing variable `ψ ~ q(ψ)` and the model's unconstrained
//! latents `u ~ q(u | ψ)`; a reverse model `τ(ψ | u)` approximates the
//! posterior of `ψ` and tightens the bounds of the
//! [objectives](crate::objective). All three are explicit densities with
//! reparameterized samplers driven by standard normal noise, and every
//! learnable number lives in one flat parameter vector with named blocks
//! ([`ParamLayout`]).
//!
//! A guide without mixing variables (`mixing_dim() == 0`: mean-field or
//! full-rank Gaussians, structured guides) is the non-hierarchical special
//! case: `q(u | ψ) = q(u)`. A guide without a reverse model uses
//! `τ(ψ | u) := q(ψ)`, the SIVI setting.
//!
//! Auto guides, generic over any model: [`MeanField`], [`FullRank`],
//! [`SemiImplicit`]; [`Preconditioned`] wraps any of them in a fixed
//! affine map (e.g. from a [Laplace approximation](crate::laplace)). [`LaplaceMixture`] is the paper's toy, a hierarchical
//! family with a known marginal and an exact reverse model.

use std::ops::Range;

use rand::Rng;

use crate::objective::fused::FusedDiwhvi;
use crate::scalar::Scalar;
use crate::special::LN_SQRT_2PI;

mod batch;
mod full_rank;
mod groups;
mod laplace_mixture;
mod mean_field;
mod network;
mod preconditioned;
mod semi_implicit;

pub use batch::NormalBatch;
pub use full_rank::FullRank;
pub use groups::{MixingGroup, MixingGroups, MixingGroupsError};
pub use laplace_mixture::{LaplaceMixture, LaplaceReverse};
pub use mean_field::MeanField;
pub use network::Conditioning;
pub use preconditioned::{PreconditionError, Preconditioned};
pub use semi_implicit::{ConditionalFamily, Reverse, SemiImplicit};
pub(crate) use semi_implicit::{student_t_constant, student_t_draw};

/// The largest size (latents, mixing dimensions, hidden units) a saved
/// guide of this crate may declare, 2²⁰: loading a file checks it before
/// laying out the parameters, so an edited size is an error, not an
/// overflow.
pub const MAX_SAVED_DIM: usize = 1 << 20;

/// Checks the sizes of a saved guide against [`MAX_SAVED_DIM`].
fn check_saved_dims(sizes: &[(&str, usize)]) -> Result<(), String> {
    for &(name, size) in sizes {
        if size > MAX_SAVED_DIM {
            return Err(format!(
                "{name} = {size} is over the largest saved size, 2^20"
            ));
        }
    }
    Ok(())
}

/// A hierarchical variational family over `u ∈ R^D`.
///
/// Samplers receive standard normal noise (of the lengths the
/// `*_noise_dim` methods give; by default the dimension of what they draw)
/// and write their draw into the given buffer; densities
/// return log densities. `params` is the flat parameter vector laid out by
/// [`HierarchicalGuide::param_layout`]. The caller owns a [`Workspace`],
/// so that no method allocates, and calls [`HierarchicalGuide::prepare`]
/// once per evaluation and [`HierarchicalGuide::prepare_reverse`] once per
/// draw of `u`.
pub trait HierarchicalGuide: Sync {
    /// `D`, the model's unconstrained dimension.
    fn latent_dim(&self) -> usize;

    /// `d`, the dimension of the mixing variable `ψ` (0 for a
    /// non-hierarchical guide).
    fn mixing_dim(&self) -> usize;

    /// False when there is no learned reverse model and `τ(ψ | u) := q(ψ)`
    /// (SIVI).
    fn has_reverse_model(&self) -> bool;

    /// The named blocks of the parameter vector.
    fn param_layout(&self) -> ParamLayout;

    /// Initial parameters.
    ///
    /// Takes any generator of [`iwhvi::rand`](crate::rand) (the `rand` 0.10 that
    /// this library re-exports, so that versions cannot clash), e.g.
    /// `iwhvi::rand::rngs::StdRng`.
    fn init_params<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<f64>;

    /// [`HierarchicalGuide::init_params`] moved so that the draws of `u`
    /// centre on `point` (unconstrained, length `D`) instead of `u = 0`:
    /// the same parameters, with the location `m` of `u = m + …` set to
    /// `point` (for [`Preconditioned`], the inner guide's at
    /// `z = L⁻¹(point − û)`). `None` (the default) for a guide that cannot
    /// place itself; [`FitConfig::init`](crate::fit::FitConfig::init)
    /// then fails with [`FitError::InitUnsupported`](crate::fit::FitError::InitUnsupported).
    /// The built-in [`MeanField`], [`FullRank`], [`SemiImplicit`] and
    /// [`Preconditioned`] place themselves.
    ///
    /// Takes any generator of [`iwhvi::rand`](crate::rand) (the `rand` 0.10 that
    /// this library re-exports, so that versions cannot clash), e.g.
    /// `iwhvi::rand::rngs::StdRng`.
    ///
    /// ```
    /// use iwhvi_core::guide::{HierarchicalGuide, MeanField};
    /// use rand::SeedableRng;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let params = MeanField::new(2).init_params_at(&mut rng, &[1.5, -0.5]).unwrap();
    /// assert_eq!(&params[..2], &[1.5, -0.5]); // the "loc" block
    /// ```
    fn init_params_at<R: Rng + ?Sized>(&self, rng: &mut R, point: &[f64]) -> Option<Vec<f64>> {
        let _ = (rng, point);
        None
    }

    /// The standard normal draws [`HierarchicalGuide::sample_mixing`]
    /// takes (default `d`).
    fn mixing_noise_dim(&self) -> usize {
        self.mixing_dim()
    }

    /// The standard normal draws [`HierarchicalGuide::sample_conditional`]
    /// takes (default `D`).
    fn conditional_noise_dim(&self) -> usize {
        self.latent_dim()
    }

    /// The standard normal draws [`HierarchicalGuide::sample_reverse`]
    /// takes (default `d`; an exact posterior sampler may need more).
    fn reverse_noise_dim(&self) -> usize {
        self.mixing_dim()
    }

    /// The parameters of the reverse model `τ` (a contiguous range of the
    /// parameter vector; empty without a learned reverse model). The
    /// doubly-reparameterized estimator
    /// ([`GradientEstimator`](crate::objective::GradientEstimator)) takes
    /// their gradient from its surrogate, in which `log p(x, u)` enters as
    /// a constant: the range must hold only parameters that `τ` alone
    /// reads (not `q(ψ)` or `q(u | ψ)`, through which `u` moves). A
    /// guide with mixing variables that leaves it empty cannot use that
    /// estimator (it is rejected with
    /// [`ObjectiveError::NoReverseParams`](crate::objective::ObjectiveError::NoReverseParams)).
    fn reverse_params(&self) -> std::ops::Range<usize> {
        0..0
    }

    /// The fused objective ([`FusedDiwhvi`]) of this guide, when it
    /// covers it: `Some` for [`SemiImplicit`] and
    /// `Preconditioned<SemiImplicit>`, `None` (the default) for every other
    /// guide. [`Engine::Auto`](crate::fit::Engine::Auto) reads it to pick
    /// the fused path; a guide outside this crate has no reason to
    /// override it.
    #[doc(hidden)]
    fn fused(&self) -> Option<FusedDiwhvi<'_>> {
        None
    }

    /// [`HierarchicalGuide::fused`] of `wrapper`, a [`Preconditioned`]
    /// around this guide: `Some` for [`SemiImplicit`] alone (the generic
    /// wrapper cannot name its inner type, so it asks the inner guide).
    #[doc(hidden)]
    fn fused_preconditioned<'a>(
        &'a self,
        wrapper: &'a Preconditioned<Self>,
    ) -> Option<FusedDiwhvi<'a>>
    where
        Self: Sized,
    {
        let _ = wrapper;
        None
    }

    /// The lengths of the [`Workspace`] the methods below need.
    fn workspace_lens(&self) -> WorkspaceLens {
        WorkspaceLens::default()
    }

    /// The lengths of the [`Workspace`] a minibatch step's group methods
    /// need: [`HierarchicalGuide::prepare_groups`] and the `*_group` and
    /// `*_groups` methods of a guide that
    /// [samples by group](HierarchicalGuide::samples_by_group), on the
    /// workspace the per-point bound builds each step
    /// ([`Workspace::with_lens`]). Default:
    /// [`HierarchicalGuide::workspace_lens`]. A guide whose group methods
    /// need less (`#[variational]`'s grow `scratch` themselves when they
    /// use it) says so, and a step does not fill a buffer over the whole
    /// plate that its batch never reads.
    ///
    /// ```
    /// use iwhvi_core::guide::{HierarchicalGuide, MeanField};
    /// let guide = MeanField::new(2);
    /// assert_eq!(guide.group_workspace_lens(), guide.workspace_lens());
    /// ```
    fn group_workspace_lens(&self) -> WorkspaceLens {
        self.workspace_lens()
    }

    /// Computes what depends on the parameters alone (inverse scales,
    /// log-normalisers) into `workspace.params`. The objective calls it
    /// once per evaluation, before any other method.
    fn prepare<T: Scalar>(&self, params: &[T], workspace: &mut Workspace<T>) {
        let (_, _) = (params, workspace);
    }

    /// Computes what the reverse model needs at `u` and not at `ψ` (its
    /// mean) into `workspace.reverse`. The objective calls it once per
    /// draw of `u`, before [`HierarchicalGuide::sample_reverse`] and
    /// [`HierarchicalGuide::log_reverse`] at that `u`.
    fn prepare_reverse<T: Scalar>(&self, params: &[T], u: &[T], workspace: &mut Workspace<T>) {
        let (_, _, _) = (params, u, workspace);
    }

    /// `ψ = g(ε)`: a draw of the mixing variable (default `q(ψ) = N(0, I)`,
    /// `ψ = ε`).
    fn sample_mixing<T: Scalar>(&self, params: &[T], noise: &[f64], psi: &mut [T]) {
        let _ = params;
        for (p, &e) in psi.iter_mut().zip(noise) {
            *p = T::constant(e);
        }
    }

    /// `log q(ψ)` (default: standard normal).
    fn log_mixing<T: Scalar>(&self, params: &[T], psi: &[T]) -> T {
        let _ = params;
        std_normal_log_density(psi)
    }

    /// [`HierarchicalGuide::sample_mixing`] with the `workspace` that
    /// [`HierarchicalGuide::prepare`] filled for `params`, the same draw
    /// bit for bit: a learned `q(ψ | x)` reads its network's outputs there
    /// instead of running the network again. The objectives call it once
    /// per outer draw. Default: `sample_mixing`.
    ///
    /// ```
    /// use iwhvi_core::guide::{HierarchicalGuide, MeanField, Workspace};
    /// let guide = MeanField::new(1);
    /// let mut ws = Workspace::new(&guide);
    /// let mut psi = [0.0f64];
    /// guide.sample_mixing_prepared(&[0.0, 0.0], &[0.7], &mut psi, &mut ws);
    /// assert_eq!(psi, [0.7]);
    /// ```
    fn sample_mixing_prepared<T: Scalar>(
        &self,
        params: &[T],
        noise: &[f64],
        psi: &mut [T],
        workspace: &mut Workspace<T>,
    ) {
        let _ = workspace;
        self.sample_mixing(params, noise, psi);
    }

    /// [`HierarchicalGuide::log_mixing`] with the `workspace` that
    /// [`HierarchicalGuide::prepare`] filled for `params` (as
    /// [`HierarchicalGuide::sample_mixing_prepared`]). Default:
    /// `log_mixing`.
    ///
    /// ```
    /// use iwhvi_core::guide::{HierarchicalGuide, MeanField, Workspace};
    /// let guide = MeanField::new(1);
    /// let mut ws = Workspace::new(&guide);
    /// let lp = guide.log_mixing_prepared(&[0.0f64; 2], &[0.0], &mut ws);
    /// assert_eq!(lp, guide.log_mixing(&[0.0f64; 2], &[0.0]));
    /// ```
    fn log_mixing_prepared<T: Scalar>(
        &self,
        params: &[T],
        psi: &[T],
        workspace: &mut Workspace<T>,
    ) -> T {
        let _ = workspace;
        self.log_mixing(params, psi)
    }

    /// A draw of `u ~ q(u | ψ)` for standard normal `noise`.
    fn sample_conditional<T: Scalar>(
        &self,
        params: &[T],
        psi: &[T],
        noise: &[f64],
        u: &mut [T],
        workspace: &mut Workspace<T>,
    );

    /// `log q(u | ψ)`.
    fn log_conditional<T: Scalar>(
        &self,
        params: &[T],
        psi: &[T],
        u: &[T],
        workspace: &mut Workspace<T>,
    ) -> T;

    /// A draw of `ψ ~ τ(ψ | u)` for standard normal `noise`; without a
    /// reverse model, a draw of `q(ψ)`.
    fn sample_reverse<T: Scalar>(
        &self,
        params: &[T],
        u: &[T],
        noise: &[f64],
        psi: &mut [T],
        workspace: &mut Workspace<T>,
    ) {
        let (_, _) = (u, workspace);
        self.sample_mixing(params, noise, psi);
    }

    /// `log τ(ψ | u)`; without a reverse model, `log q(ψ)`.
    fn log_reverse<T: Scalar>(
        &self,
        params: &[T],
        u: &[T],
        psi: &[T],
        workspace: &mut Workspace<T>,
    ) -> T {
        let (_, _) = (u, workspace);
        self.log_mixing(params, psi)
    }

    /// The factorisation of a guide with one mixing variable per group of
    /// latents ([`MixingGroups`]): `None` (the default) for a guide whose
    /// inner bound is one importance sum over the whole of `ψ`.
    ///
    /// When it is `Some` (and `d > 0`), the objectives compute the
    /// factorised inner bound
    /// `U_K(u) = Σ_n logsumexp_{k=0..K} w_{n,k} − N log(K + 1)` (a group
    /// without mixing coordinates contributes its exact weight once) with
    /// `w_{n,k} = log q(u_n | ψ_{n,k}, u) + log q(ψ_{n,k}) − log τ(ψ_{n,k} | u)`
    /// from the `*_group` methods below, `ψ_{n,0}` the group's part of the
    /// outer draw and `ψ_{n,k≥1}` drawn by
    /// [`HierarchicalGuide::sample_reverse_group`] from the group's entries
    /// of the `k`-th reverse noise. The whole-`ψ` methods must stay
    /// consistent with the groups (`log_conditional` the sum of the
    /// groups', and so on): the outer draw and the diagnostics use them.
    ///
    /// ```
    /// use iwhvi_core::guide::{HierarchicalGuide, MeanField};
    /// assert!(MeanField::new(3).mixing_groups().is_none());
    /// ```
    fn mixing_groups(&self) -> Option<&MixingGroups> {
        None
    }

    /// `log q(u_n | ψ_n, u)`: the conditional density of group `group`'s
    /// latents (the coordinates [`MixingGroup::latents`] of `u`) at its
    /// mixing coordinates `psi` (length `|ψ_n|`, empty for a group without
    /// mixing coordinates). `u` is the whole draw.
    ///
    /// # Panics
    /// The default panics: a guide that reports
    /// [`HierarchicalGuide::mixing_groups`] must override it (a programming
    /// error of the guide's author, found by the first evaluation).
    ///
    /// ```
    /// use iwhvi_core::guide::{HierarchicalGuide, MeanField};
    /// // Guides without groups never have it called.
    /// assert!(MeanField::new(1).mixing_groups().is_none());
    /// ```
    fn log_conditional_group<T: Scalar>(
        &self,
        params: &[T],
        group: usize,
        psi: &[T],
        u: &[T],
        workspace: &mut Workspace<T>,
    ) -> T {
        let _ = (params, psi, u, workspace);
        panic!(
            "the guide {} reports mixing groups but does not implement \
             HierarchicalGuide::log_conditional_group (asked for group {group})",
            std::any::type_name::<Self>()
        )
    }

    /// `log q(ψ_n)` of group `group` (default: standard normal,
    /// `−½ |ψ_n|² − |ψ_n| log √(2π)`), with the `workspace` that
    /// [`HierarchicalGuide::prepare`] filled for `params` (a learned
    /// `q(ψ_n | x_n)` reads its network's outputs there).
    ///
    /// ```
    /// use iwhvi_core::guide::{HierarchicalGuide, MeanField, Workspace};
    /// let guide = MeanField::new(1);
    /// let mut ws = Workspace::new(&guide);
    /// let lp = guide.log_mixing_group(&[0.0f64; 2], 0, &[0.0], &mut ws);
    /// assert!((lp + 0.5 * (2.0 * std::f64::consts::PI).ln()).abs() < 1e-15);
    /// ```
    fn log_mixing_group<T: Scalar>(
        &self,
        params: &[T],
        group: usize,
        psi: &[T],
        workspace: &mut Workspace<T>,
    ) -> T {
        let _ = (params, group, workspace);
        std_normal_log_density(psi)
    }

    /// A draw of `ψ_n ~ τ(ψ_n | u)` for group `group` from the group's
    /// entries ([`MixingGroup::reverse_noise`]) of one reverse draw's
    /// standard normal noise. The default draws from `N(0, I)`
    /// (`ψ_n = ε`), the proposal of [`HierarchicalGuide::log_reverse_group`]'s
    /// default: a valid, if loose, bound for any guide.
    ///
    /// ```
    /// use iwhvi_core::guide::{HierarchicalGuide, MeanField, Workspace};
    /// let guide = MeanField::new(1);
    /// let mut psi = [0.0f64];
    /// let mut ws = Workspace::new(&guide);
    /// guide.sample_reverse_group(&[0.0, 0.0], 0, &[0.0], &[0.7], &mut psi, &mut ws);
    /// assert_eq!(psi, [0.7]);
    /// ```
    fn sample_reverse_group<T: Scalar>(
        &self,
        params: &[T],
        group: usize,
        u: &[T],
        noise: &[f64],
        psi: &mut [T],
        workspace: &mut Workspace<T>,
    ) {
        let _ = (params, group, u, workspace);
        for (p, &e) in psi.iter_mut().zip(noise) {
            *p = T::constant(e);
        }
    }

    /// `log τ(ψ_n | u)` of group `group` (default: the standard normal
    /// density of [`HierarchicalGuide::sample_reverse_group`]'s default).
    ///
    /// ```
    /// use iwhvi_core::guide::{HierarchicalGuide, MeanField, Workspace};
    /// let guide = MeanField::new(1);
    /// let mut ws = Workspace::new(&guide);
    /// let lt = guide.log_reverse_group(&[0.0f64, 0.0], 0, &[0.0], &[1.0], &mut ws);
    /// assert!((lt + 0.5 + 0.5 * (2.0 * std::f64::consts::PI).ln()).abs() < 1e-15);
    /// ```
    fn log_reverse_group<T: Scalar>(
        &self,
        params: &[T],
        group: usize,
        u: &[T],
        psi: &[T],
        workspace: &mut Workspace<T>,
    ) -> T {
        let _ = (params, group, u, workspace);
        std_normal_log_density(psi)
    }

    /// True when the guide draws its groups one at a time
    /// ([`HierarchicalGuide::sample_mixing_group`] for a group's mixing
    /// coordinates, then [`HierarchicalGuide::sample_conditional_group`],
    /// after [`HierarchicalGuide::prepare_groups`]), so that a minibatch
    /// step on the per-point bound draws and evaluates its batch's groups
    /// only (`O(b)` in the number of points). Default: false (the step
    /// draws the whole `ψ` and `u`).
    ///
    /// ```
    /// use iwhvi_core::guide::{HierarchicalGuide, MeanField};
    /// assert!(!MeanField::new(2).samples_by_group());
    /// ```
    fn samples_by_group(&self) -> bool {
        false
    }

    /// [`HierarchicalGuide::prepare`] for the methods of the groups
    /// `groups` alone (their `sample_mixing_group`,
    /// `sample_conditional_group` and the other `*_group` methods): what
    /// depends on the parameters is
    /// computed for those groups only. Whole-vector methods called on such
    /// a workspace compute for themselves. Default: `prepare`.
    ///
    /// ```
    /// use iwhvi_core::guide::{HierarchicalGuide, MeanField, Workspace};
    /// let guide = MeanField::new(2);
    /// let mut ws = Workspace::new(&guide);
    /// guide.prepare_groups(&[0.0f64; 4], &[1], &mut ws);
    /// ```
    fn prepare_groups<T: Scalar>(
        &self,
        params: &[T],
        groups: &[usize],
        workspace: &mut Workspace<T>,
    ) {
        let _ = groups;
        self.prepare(params, workspace);
    }

    /// Group `group`'s mixing coordinates (its [`MixingGroup::psi`] entries
    /// of the whole `psi`, of length `d`) drawn from the outer draw's whole
    /// mixing `noise`, bit for bit as
    /// [`HierarchicalGuide::sample_mixing_prepared`] draws them (the same
    /// noise entries; `ψ_n = ε_n` for `q(ψ_n) = N(0, I)`,
    /// `ψ_n = μ_n + σ_n ε_n` for a learned `q(ψ_n | x_n)`), with the
    /// `workspace` that [`HierarchicalGuide::prepare_groups`] filled for a
    /// list holding `group`; the other entries of `psi` are left as they
    /// are. Called only when [`HierarchicalGuide::samples_by_group`] is
    /// true, for a group with mixing coordinates.
    ///
    /// # Panics
    /// The default panics: a guide that says it samples by group and has
    /// mixing coordinates must override it (a programming error of the
    /// guide's author, found by the first evaluation).
    ///
    /// ```
    /// use iwhvi_core::guide::{HierarchicalGuide, MeanField};
    /// // Guides that do not sample by group never have it called.
    /// assert!(!MeanField::new(1).samples_by_group());
    /// ```
    fn sample_mixing_group<T: Scalar>(
        &self,
        params: &[T],
        group: usize,
        noise: &[f64],
        psi: &mut [T],
        workspace: &mut Workspace<T>,
    ) {
        let _ = (params, noise, psi, workspace);
        panic!(
            "the guide {} says it samples by group but does not implement \
             HierarchicalGuide::sample_mixing_group (asked for group {group})",
            std::any::type_name::<Self>()
        );
    }

    /// Group `group`'s latents (its [`MixingGroup::latents`] coordinates of
    /// `u`) at the group's mixing coordinates `psi` (length `|ψ_n|`, empty
    /// for a group without them, as for
    /// [`HierarchicalGuide::log_conditional_group`]) drawn from the draw's
    /// whole conditional `noise`, bit for bit as
    /// [`HierarchicalGuide::sample_conditional`] draws them at a `ψ` that
    /// holds `psi` (the same noise entries); the other coordinates of `u`
    /// are left as they are. Called only when
    /// [`HierarchicalGuide::samples_by_group`] is true.
    ///
    /// # Panics
    /// The default panics: a guide that says it samples by group must
    /// override it (a programming error of the guide's author, found by the
    /// first evaluation).
    ///
    /// ```
    /// use iwhvi_core::guide::{HierarchicalGuide, MeanField};
    /// // Guides that do not sample by group never have it called.
    /// assert!(!MeanField::new(1).samples_by_group());
    /// ```
    fn sample_conditional_group<T: Scalar>(
        &self,
        params: &[T],
        group: usize,
        psi: &[T],
        noise: &[f64],
        u: &mut [T],
        workspace: &mut Workspace<T>,
    ) {
        let _ = (params, psi, noise, u, workspace);
        panic!(
            "the guide {} says it samples by group but does not implement \
             HierarchicalGuide::sample_conditional_group (asked for group {group})",
            std::any::type_name::<Self>()
        );
    }

    /// [`HierarchicalGuide::sample_conditional_group`] for each of the
    /// groups `groups` in turn, none of them with mixing coordinates (a
    /// guide with `mixing_dim() == 0`): a batch of independent groups
    /// drawn from the draw's whole conditional `noise`, the same bits as
    /// the loop over them (the default). A guide may override it to draw
    /// the batch as a few vector operations (`#[variational]`'s amortised
    /// guides: [`NormalBatch`]). Called only when
    /// [`HierarchicalGuide::samples_by_group`] is true.
    ///
    /// ```
    /// # use iwhvi_core::guide::{HierarchicalGuide, MixingGroup, MixingGroups, ParamLayout, Workspace};
    /// # use iwhvi_core::guide::diag_normal_log_density as normal;
    /// # use iwhvi_core::scalar::Scalar;
    /// // q(u) = Π_n N(u_n; loc_n, exp(s_n)²), one group per coordinate; the
    /// // batch methods are the trait's defaults.
    /// # struct PerPoint(MixingGroups);
    /// # impl HierarchicalGuide for PerPoint {
    /// #     fn latent_dim(&self) -> usize { 3 }
    /// #     fn mixing_dim(&self) -> usize { 0 }
    /// #     fn has_reverse_model(&self) -> bool { false }
    /// #     fn param_layout(&self) -> ParamLayout {
    /// #         let mut layout = ParamLayout::default();
    /// #         layout.push("loc", &[3]);
    /// #         layout.push("log_scale", &[3]);
    /// #         layout
    /// #     }
    /// #     fn init_params<R: rand::Rng + ?Sized>(&self, _: &mut R) -> Vec<f64> { vec![0.0; 6] }
    /// #     fn sample_conditional<T: Scalar>(&self, p: &[T], _: &[T], e: &[f64], u: &mut [T], _: &mut Workspace<T>) {
    /// #         for n in 0..3 { u[n] = p[n] + p[3 + n].exp() * e[n]; }
    /// #     }
    /// #     fn log_conditional<T: Scalar>(&self, p: &[T], _: &[T], u: &[T], _: &mut Workspace<T>) -> T {
    /// #         normal(u, &p[..3], &p[3..])
    /// #     }
    /// #     fn mixing_groups(&self) -> Option<&MixingGroups> { Some(&self.0) }
    /// #     fn samples_by_group(&self) -> bool { true }
    /// #     fn sample_conditional_group<T: Scalar>(
    /// #         &self, p: &[T], n: usize, _: &[T], e: &[f64], u: &mut [T], _: &mut Workspace<T>,
    /// #     ) {
    /// #         u[n] = p[n] + p[3 + n].exp() * e[n];
    /// #     }
    /// #     fn log_conditional_group<T: Scalar>(&self, p: &[T], n: usize, _: &[T], u: &[T], _: &mut Workspace<T>) -> T {
    /// #         normal(&[u[n]], &[p[n]], &[p[3 + n]])
    /// #     }
    /// # }
    /// let group = |n: usize| MixingGroup { psi: 0..0, latents: vec![n], reverse_noise: 0..0 };
    /// let guide = PerPoint(MixingGroups::new(3, 0, 0, (0..3).map(group).collect())?);
    /// let params = [0.2, -0.4, 1.0, -0.3, -0.5, 0.1];
    /// let mut workspace = Workspace::<f64>::new(&guide);
    /// // The batch {2, 0} drawn at once: its entries are the per-group draws',
    /// // the others untouched.
    /// let noise = [0.7, -1.2, 0.4];
    /// let mut batch = [f64::NAN; 3];
    /// guide.sample_conditional_groups(&params, &[2, 0], &noise, &mut batch, &mut workspace);
    /// let mut one = [f64::NAN; 3];
    /// guide.sample_conditional_group(&params, 2, &[], &noise, &mut one, &mut workspace);
    /// guide.sample_conditional_group(&params, 0, &[], &noise, &mut one, &mut workspace);
    /// assert_eq!(batch[0].to_bits(), one[0].to_bits());
    /// assert_eq!(batch[2].to_bits(), one[2].to_bits());
    /// assert!(batch[1].is_nan());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn sample_conditional_groups<T: Scalar>(
        &self,
        params: &[T],
        groups: &[usize],
        noise: &[f64],
        u: &mut [T],
        workspace: &mut Workspace<T>,
    ) {
        for &group in groups {
            self.sample_conditional_group(params, group, &[], noise, u, workspace);
        }
    }

    /// [`HierarchicalGuide::log_conditional_group`] of each of the groups
    /// `groups` in turn, none of them with mixing coordinates, appended
    /// to `out` (one value per group, `log q(u_n)`): the default loops
    /// over them; a guide may override it to compute the batch as a few
    /// vector operations, with the same values (`#[variational]`'s
    /// amortised guides: [`NormalBatch`]).
    ///
    /// An override must push exactly one value per group, in `groups`'
    /// order: the per-point objective stops with a panic naming the guide
    /// otherwise (another count would pair each point with another's
    /// density).
    ///
    /// ```
    /// # use iwhvi_core::guide::{HierarchicalGuide, MixingGroup, MixingGroups, ParamLayout, Workspace};
    /// # use iwhvi_core::guide::diag_normal_log_density as normal;
    /// # use iwhvi_core::scalar::Scalar;
    /// // q(u) = Π_n N(u_n; loc_n, exp(s_n)²), one group per coordinate; the
    /// // batch methods are the trait's defaults.
    /// # struct PerPoint(MixingGroups);
    /// # impl HierarchicalGuide for PerPoint {
    /// #     fn latent_dim(&self) -> usize { 3 }
    /// #     fn mixing_dim(&self) -> usize { 0 }
    /// #     fn has_reverse_model(&self) -> bool { false }
    /// #     fn param_layout(&self) -> ParamLayout {
    /// #         let mut layout = ParamLayout::default();
    /// #         layout.push("loc", &[3]);
    /// #         layout.push("log_scale", &[3]);
    /// #         layout
    /// #     }
    /// #     fn init_params<R: rand::Rng + ?Sized>(&self, _: &mut R) -> Vec<f64> { vec![0.0; 6] }
    /// #     fn sample_conditional<T: Scalar>(&self, p: &[T], _: &[T], e: &[f64], u: &mut [T], _: &mut Workspace<T>) {
    /// #         for n in 0..3 { u[n] = p[n] + p[3 + n].exp() * e[n]; }
    /// #     }
    /// #     fn log_conditional<T: Scalar>(&self, p: &[T], _: &[T], u: &[T], _: &mut Workspace<T>) -> T {
    /// #         normal(u, &p[..3], &p[3..])
    /// #     }
    /// #     fn mixing_groups(&self) -> Option<&MixingGroups> { Some(&self.0) }
    /// #     fn samples_by_group(&self) -> bool { true }
    /// #     fn sample_conditional_group<T: Scalar>(
    /// #         &self, p: &[T], n: usize, _: &[T], e: &[f64], u: &mut [T], _: &mut Workspace<T>,
    /// #     ) {
    /// #         u[n] = p[n] + p[3 + n].exp() * e[n];
    /// #     }
    /// #     fn log_conditional_group<T: Scalar>(&self, p: &[T], n: usize, _: &[T], u: &[T], _: &mut Workspace<T>) -> T {
    /// #         normal(&[u[n]], &[p[n]], &[p[3 + n]])
    /// #     }
    /// # }
    /// let group = |n: usize| MixingGroup { psi: 0..0, latents: vec![n], reverse_noise: 0..0 };
    /// let guide = PerPoint(MixingGroups::new(3, 0, 0, (0..3).map(group).collect())?);
    /// let params = [0.2, -0.4, 1.0, -0.3, -0.5, 0.1];
    /// let mut workspace = Workspace::<f64>::new(&guide);
    /// let u = [0.1, -0.2, 0.3];
    /// // One log density per group of the batch {2, 0}, in that order.
    /// let mut out = Vec::new();
    /// guide.log_conditional_groups(&params, &[2, 0], &u, &mut workspace, &mut out);
    /// assert_eq!(out.len(), 2);
    /// assert_eq!(out[0], guide.log_conditional_group(&params, 2, &[], &u, &mut workspace));
    /// assert_eq!(out[1], guide.log_conditional_group(&params, 0, &[], &u, &mut workspace));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn log_conditional_groups<T: Scalar>(
        &self,
        params: &[T],
        groups: &[usize],
        u: &[T],
        workspace: &mut Workspace<T>,
        out: &mut Vec<T>,
    ) {
        for &group in groups {
            out.push(self.log_conditional_group(params, group, &[], u, workspace));
        }
    }

    /// The entries of one outer draw's mixing noise (of length
    /// [`HierarchicalGuide::mixing_noise_dim`]) and of its conditional
    /// noise ([`HierarchicalGuide::conditional_noise_dim`]) that group
    /// `group`'s mixing coordinates and latents are drawn from, appended
    /// to `mixing` and `conditional`; true when the guide reports them.
    ///
    /// A minibatch step on the per-point bound then draws only the noise
    /// its batch's groups and the global groups read (these entries and
    /// each group's [`MixingGroup::reverse_noise`], for every outer and
    /// reverse draw): `O(b)` standard normals instead of `O(N)`. The other
    /// entries keep earlier draws, so a guide may report only when, for
    /// every group, `ψ_n` and `u_n` (whole draws and draws by group alike)
    /// are functions of the parameters and of these entries alone, and
    /// the group's densities read no other group's `ψ` or latents.
    /// Default: false (the step draws all of its noise). The guides of
    /// `#[variational]` that draw by group report their entries. `fit`
    /// refuses an entry past the end of its draw's noise with
    /// [`ObjectiveError::GroupNoiseOutOfRange`](crate::objective::ObjectiveError::GroupNoiseOutOfRange),
    /// naming the group.
    ///
    /// ```
    /// use iwhvi_core::guide::{HierarchicalGuide, MeanField};
    /// let (mut mixing, mut conditional) = (Vec::new(), Vec::new());
    /// // A guide without groups reports nothing: its steps draw all their noise.
    /// assert!(!MeanField::new(2).group_noise(0, &mut mixing, &mut conditional));
    /// assert!(mixing.is_empty() && conditional.is_empty());
    /// ```
    fn group_noise(
        &self,
        group: usize,
        mixing: &mut Vec<usize>,
        conditional: &mut Vec<usize>,
    ) -> bool {
        let _ = (group, mixing, conditional);
        false
    }
}

/// How long each buffer of a [`Workspace`] must be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkspaceLens {
    /// Entries of [`Workspace::params`].
    pub params: usize,
    /// Entries of [`Workspace::reverse`].
    pub reverse: usize,
    /// Entries of [`Workspace::scratch`].
    pub scratch: usize,
    /// Entries of [`Workspace::latent`] (a wrapper's own copy of `u` in
    /// its inner guide's coordinates; 0 for ordinary guides).
    pub latent: usize,
}

/// The buffers a guide computes in, owned by the caller so that no guide
/// method allocates: `params` holds what [`HierarchicalGuide::prepare`]
/// derived from the parameters, `reverse` what
/// [`HierarchicalGuide::prepare_reverse`] derived at the current `u`, and
/// `scratch` is free for any method.
#[derive(Clone, Debug, PartialEq)]
pub struct Workspace<T> {
    /// Derived from the parameters, once per evaluation.
    pub params: Vec<T>,
    /// Derived at the current `u`, once per draw of `u`.
    pub reverse: Vec<T>,
    /// Free scratch.
    pub scratch: Vec<T>,
    /// A wrapper guide's buffer for `u` mapped into its inner guide's
    /// coordinates ([`Preconditioned`]); ordinary guides leave it empty.
    pub latent: Vec<T>,
}

impl<T: Scalar> Workspace<T> {
    /// Buffers of the lengths `guide` asks for
    /// ([`HierarchicalGuide::workspace_lens`]).
    pub fn new<G: HierarchicalGuide + ?Sized>(guide: &G) -> Self {
        Self::with_lens(guide.workspace_lens())
    }

    /// Buffers of the lengths `lens`, zeros.
    ///
    /// ```
    /// use iwhvi_core::guide::{Workspace, WorkspaceLens};
    /// let lens = WorkspaceLens { params: 3, scratch: 2, ..Default::default() };
    /// let workspace = Workspace::<f64>::with_lens(lens);
    /// assert_eq!((workspace.params, workspace.scratch), (vec![0.0; 3], vec![0.0; 2]));
    /// assert!(workspace.reverse.is_empty() && workspace.latent.is_empty());
    /// ```
    pub fn with_lens(lens: WorkspaceLens) -> Self {
        let zero = T::constant(0.0);
        Self {
            params: filled(zero, lens.params),
            reverse: filled(zero, lens.reverse),
            scratch: filled(zero, lens.scratch),
            latent: filled(zero, lens.latent),
        }
    }
}

/// `vec![value; len]` by copies of what is filled so far, each twice as
/// long as the last: a few `memcpy` calls where the element-wise fill of a
/// scalar type with padding (the tape's `Var`, two stores per entry) cost
/// a per-step share of a minibatch fit whose workspace is laid out over
/// the whole plate.
pub(crate) fn filled<T: Copy>(value: T, len: usize) -> Vec<T> {
    let mut values = Vec::with_capacity(len);
    if len == 0 {
        return values;
    }
    values.push(value);
    while values.len() < len {
        let more = values.len().min(len - values.len());
        values.extend_from_within(..more);
    }
    values
}

/// Why a guide declared with `#[variational(guide = …)]` cannot serve a
/// model instance.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuideError {
    /// The model has no latent of that name.
    #[error("the model has no latent `{latent}`")]
    UnknownLatent {
        /// The latent.
        latent: &'static str,
    },
    /// The latent's transform is not elementwise (a simplex, an ordered
    /// vector) and its conditional is over the constrained value, or the
    /// latent has bounds that move with other latents.
    #[error(
        "latent `{latent}` has a constraint its conditional cannot target: for a simplex or an ordered \
         vector, mark the conditional #[unconstrained] (a Normal over the latent's unconstrained \
         coordinates); bounds that move with other latents are not supported by struct guides yet"
    )]
    Unsupported {
        /// The latent.
        latent: &'static str,
    },
    /// An encoder's inputs do not have one row per element of the latents
    /// that call it (`#[encoder]` in a guide struct): `what` (a data
    /// field, or a latent) has `rows` where the encoder has `expected`.
    #[error(
        "encoder `{encoder}`: `{what}` has {rows} elements where the encoder has {expected} points"
    )]
    EncoderRows {
        /// The encoder's name.
        encoder: &'static str,
        /// The data field or latent that does not match.
        what: &'static str,
        /// Its number of elements.
        rows: usize,
        /// The encoder's number of points.
        expected: usize,
    },
    /// An encoder has nothing to read (`#[encoder]` in a guide struct):
    /// its input data have no points, or no columns.
    #[error(
        "encoder `{encoder}` has no inputs to read: its data have no points or no columns; give it data, or remove the encoder"
    )]
    EncoderEmpty {
        /// The encoder's name.
        encoder: &'static str,
    },
    /// A loaded guide's inputs of an encoder are missing, or are not a
    /// whole number of values per point: the saved file was edited, or is
    /// of another guide.
    #[error(
        "encoder `{encoder}`: the saved inputs ({values} values for {rows} points) are missing or malformed: the file was edited, or is of another guide"
    )]
    EncoderSavedInputs {
        /// The encoder's name.
        encoder: &'static str,
        /// The number of values saved for it.
        values: usize,
        /// The number of points saved for it.
        rows: usize,
    },
    /// A local latent (one whose conditional reads a per-point mixing
    /// variable, `#[mixing(len = …, for j)]`) has another number of
    /// elements than the mixing variable has points.
    #[error(
        "per-point mixing variable `{mixing}` has {points} points but local latent `{latent}` has {rows} elements"
    )]
    PointRows {
        /// The per-point mixing variable.
        mixing: &'static str,
        /// The local latent.
        latent: &'static str,
        /// The latent's number of elements.
        rows: usize,
        /// The mixing variable's number of points.
        points: usize,
    },
    /// The guide's mixing groups do not factorise it (a bug of the
    /// generated code if it happens; reported rather than panicking).
    #[error(transparent)]
    MixingGroups(#[from] MixingGroupsError),
}

/// One named block of a parameter vector.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParamBlock {
    /// Its name, e.g. `"conditional.weight"`.
    pub name: String,
    /// Its shape (row-major), e.g. `[D, d]`.
    pub shape: Vec<usize>,
    /// Where it lives in the flat vector.
    pub range: Range<usize>,
}

/// The named blocks of a flat parameter vector, in order.
///
/// ```
/// use iwhvi_core::guide::ParamLayout;
/// let mut layout = ParamLayout::default();
/// let loc = layout.push("loc", &[3]);
/// let weight = layout.push("weight", &[3, 2]);
/// assert_eq!((loc, weight.clone()), (0..3, 3..9));
/// assert_eq!(layout.len(), 9);
/// assert_eq!(layout.get("weight").unwrap().range, weight);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParamLayout {
    blocks: Vec<ParamBlock>,
    len: usize,
}

impl ParamLayout {
    /// Appends a block and returns its range.
    pub fn push(&mut self, name: &str, shape: &[usize]) -> Range<usize> {
        let size: usize = shape.iter().product();
        let range = self.len..self.len + size;
        self.blocks.push(ParamBlock {
            name: name.to_string(),
            shape: shape.to_vec(),
            range: range.clone(),
        });
        self.len += size;
        range
    }

    /// The total number of parameters.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The blocks in order.
    pub fn blocks(&self) -> &[ParamBlock] {
        &self.blocks
    }

    /// The block of that name.
    pub fn get(&self, name: &str) -> Option<&ParamBlock> {
        self.blocks.iter().find(|b| b.name == name)
    }
}

/// `Σᵢ log N(xᵢ; 0, 1)`.
#[inline]
pub fn std_normal_log_density<T: Scalar>(x: &[T]) -> T {
    -T::dot(x, x) * 0.5 - LN_SQRT_2PI * x.len() as f64
}

/// `Σᵢ log N(xᵢ; meanᵢ, exp(log_sdᵢ)²)`.
#[inline]
pub fn diag_normal_log_density<T: Scalar>(x: &[T], mean: &[T], log_sd: &[T]) -> T {
    let mut total = T::constant(-LN_SQRT_2PI * x.len() as f64);
    for ((&xi, &mi), &si) in x.iter().zip(mean).zip(log_sd) {
        let z = (xi - mi) * (-si).exp();
        total -= z * z * 0.5 + si;
    }
    total
}

#[cfg(test)]
mod filled_tests {
    use super::filled;
    use crate::Scalar;
    use crate::tape::Var;

    /// `filled` is `vec![value; len]` at every length around the powers of
    /// two, for a padded scalar (the tape's constants) and for `f64`.
    #[test]
    fn filled_is_the_vec_macro() {
        for len in 0..70 {
            let var = filled(Var::constant(-1.5), len);
            assert_eq!(var.len(), len);
            assert!(var.iter().all(|v| v.value() == -1.5 && v.is_constant()));
            assert_eq!(filled(2.5f64, len), vec![2.5f64; len]);
            assert!(var.capacity() >= len);
        }
    }
}
