//! The factorisation of a guide with one mixing variable per group of
//! latents (per data point, for local latents): which coordinates of `ψ`,
//! of `u` and of the reverse noise belong to each group.
//!
//! A guide that reports [`MixingGroups`]
//! ([`HierarchicalGuide::mixing_groups`](super::HierarchicalGuide::mixing_groups))
//! has the form
//!
//! ```text
//! q(ψ) = Π_n q(ψ_n),   q(u | ψ) = Π_n q(u_n | ψ_n, u),   τ(ψ | u) = Π_n τ(ψ_n | u),
//! ```
//!
//! where group `n`'s conditional reads its own `ψ_n` and no other group's
//! mixing variable (it may read other groups' latents, in an order that
//! makes the product a density), and the objective's inner bound
//! factorises over the groups:
//!
//! ```text
//! w_{n,k} = log q(u_n | ψ_{n,k}, u) + log q(ψ_{n,k}) − log τ(ψ_{n,k} | u),
//! U_K(u) = Σ_n [ logsumexp_{k=0..K} w_{n,k} − log(K + 1) ],
//! ```
//!
//! with `E[exp(−U_K(u))] = 1 / q(u)`, so that DIWHVI stays a lower bound on
//! `log p(x)`, and its gap is the sum of the groups' gaps rather than that
//! of one importance sum over the whole of `ψ`. A group with no mixing
//! coordinates (a non-hierarchical block, e.g. global latents with a
//! Gaussian guide) has the single exact weight `log q(u_n | u)`.

use std::ops::Range;

/// One group of a factorised guide: the coordinates of `ψ`, of `u` and of
/// the reverse noise ([`HierarchicalGuide::reverse_noise_dim`](super::HierarchicalGuide::reverse_noise_dim))
/// that belong to it.
///
/// ```
/// use iwhvi_core::guide::MixingGroup;
/// let group = MixingGroup { psi: 2..4, latents: vec![1, 5], reverse_noise: 2..4 };
/// assert_eq!(group.psi.len(), 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MixingGroup {
    /// Its mixing coordinates `ψ_n` (empty for a non-hierarchical block).
    pub psi: Range<usize>,
    /// The coordinates of `u` its conditional draws, `u_n` (in any order;
    /// e.g. element `n` of each local latent).
    pub latents: Vec<usize>,
    /// The entries of each reverse draw's noise its reverse model reads.
    pub reverse_noise: Range<usize>,
}

/// Why a list of [`MixingGroup`]s does not factorise a guide.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MixingGroupsError {
    /// The groups' mixing ranges are not consecutive from 0 to `d`.
    #[error(
        "group {group}: its mixing coordinates {found:?} should start at {expected} \
         (the groups' mixing ranges must tile 0..d in order)"
    )]
    MixingNotTiled {
        /// The group.
        group: usize,
        /// Its range.
        found: Range<usize>,
        /// Where it should start.
        expected: usize,
    },
    /// The mixing ranges end before or after `d`.
    #[error("the groups' mixing coordinates end at {end} but the guide has d = {mixing_dim}")]
    MixingDim {
        /// Where the last range ends.
        end: usize,
        /// The guide's `d`.
        mixing_dim: usize,
    },
    /// A latent in two groups or in none.
    #[error(
        "latent coordinate {index} is in {count} groups: each of the D = {latent_dim} coordinates \
         must be in exactly one"
    )]
    Latents {
        /// The coordinate.
        index: usize,
        /// How many groups hold it.
        count: usize,
        /// The guide's `D`.
        latent_dim: usize,
    },
    /// A group's reverse-noise range is reversed or past the noise per
    /// draw, or one of its latents is past `D`.
    #[error("group {group}: {what} {range:?} is reversed or past {bound}")]
    Range {
        /// The group.
        group: usize,
        /// `"latent"` or `"reverse noise"`.
        what: &'static str,
        /// The range (`i..i + 1` for a latent `i`).
        range: Range<usize>,
        /// The length it must stay within.
        bound: usize,
    },
    /// Two groups' reverse-noise ranges overlap.
    #[error("groups {first} and {second} read overlapping reverse noise")]
    ReverseNoiseOverlap {
        /// The earlier group.
        first: usize,
        /// The later group.
        second: usize,
    },
}

/// The groups of a factorised guide, checked against its dimensions when
/// built.
///
/// A guide that reports them has the form
/// `q(ψ) = Π_n q(ψ_n)`, `q(u | ψ) = Π_n q(u_n | ψ_n, u)`,
/// `τ(ψ | u) = Π_n τ(ψ_n | u)` (group `n`'s conditional reads its own
/// `ψ_n` only), and the objective's inner bound factorises:
/// `U_K(u) = Σ_n [logsumexp_{k=0..K} w_{n,k} − log(K + 1)]` with
/// `w_{n,k} = log q(u_n | ψ_{n,k}, u) + log q(ψ_{n,k}) − log τ(ψ_{n,k} | u)`
/// and `E[exp(−U_K(u))] = 1 / q(u)` (see
/// [`HierarchicalGuide::mixing_groups`](super::HierarchicalGuide::mixing_groups)).
///
/// ```
/// use iwhvi_core::guide::{MixingGroup, MixingGroups, MixingGroupsError};
/// // Two points, each with one latent and a one-dimensional ψ.
/// let group = |n: usize| MixingGroup { psi: n..n + 1, latents: vec![n], reverse_noise: n..n + 1 };
/// let groups = MixingGroups::new(2, 2, 2, vec![group(0), group(1)])?;
/// assert_eq!(groups.len(), 2);
/// // A latent in no group is refused.
/// assert!(matches!(
///     MixingGroups::new(3, 2, 2, vec![group(0), group(1)]),
///     Err(MixingGroupsError::Latents { index: 2, count: 0, .. })
/// ));
/// # Ok::<(), MixingGroupsError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MixingGroups {
    groups: Vec<MixingGroup>,
    /// `(D, d, reverse noise per draw)` the groups were checked against.
    dims: [usize; 3],
}

impl MixingGroups {
    /// The groups of a guide with `latent_dim` latents, `mixing_dim` mixing
    /// coordinates and `reverse_noise_dim` noise values per reverse draw.
    ///
    /// # Errors
    /// [`MixingGroupsError`] unless the mixing ranges tile `0..d` in order,
    /// every latent coordinate is in exactly one group, and the
    /// reverse-noise ranges are disjoint and within `reverse_noise_dim`.
    pub fn new(
        latent_dim: usize,
        mixing_dim: usize,
        reverse_noise_dim: usize,
        groups: Vec<MixingGroup>,
    ) -> Result<Self, MixingGroupsError> {
        let mut next = 0;
        let mut holders = vec![0usize; latent_dim];
        for (n, group) in groups.iter().enumerate() {
            if group.psi.start != next || group.psi.end < group.psi.start {
                return Err(MixingGroupsError::MixingNotTiled {
                    group: n,
                    found: group.psi.clone(),
                    expected: next,
                });
            }
            next = group.psi.end;
            let range = &group.reverse_noise;
            if range.end < range.start || range.end > reverse_noise_dim {
                return Err(MixingGroupsError::Range {
                    group: n,
                    what: "reverse noise",
                    range: range.clone(),
                    bound: reverse_noise_dim,
                });
            }
            for &i in &group.latents {
                let Some(holder) = holders.get_mut(i) else {
                    return Err(MixingGroupsError::Range {
                        group: n,
                        what: "latent",
                        range: i..i + 1,
                        bound: latent_dim,
                    });
                };
                *holder += 1;
            }
        }
        if next != mixing_dim {
            return Err(MixingGroupsError::MixingDim {
                end: next,
                mixing_dim,
            });
        }
        if let Some((index, &count)) = holders.iter().enumerate().find(|(_, c)| **c != 1) {
            return Err(MixingGroupsError::Latents {
                index,
                count,
                latent_dim,
            });
        }
        let mut by_noise: Vec<(usize, &Range<usize>)> = groups
            .iter()
            .map(|g| &g.reverse_noise)
            .enumerate()
            .filter(|(_, r)| !r.is_empty())
            .collect();
        by_noise.sort_by_key(|(_, r)| r.start);
        for pair in by_noise.windows(2) {
            if pair[0].1.end > pair[1].1.start {
                let (first, second) = (pair[0].0.min(pair[1].0), pair[0].0.max(pair[1].0));
                return Err(MixingGroupsError::ReverseNoiseOverlap { first, second });
            }
        }
        Ok(Self {
            groups,
            dims: [latent_dim, mixing_dim, reverse_noise_dim],
        })
    }

    /// The number of groups `N`.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// True when there are no groups.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The groups in order.
    pub fn groups(&self) -> &[MixingGroup] {
        &self.groups
    }

    /// `(D, d, reverse noise per draw)`: the dimensions the groups were
    /// checked against ([`check_params`](crate::input::check_params)
    /// compares them with the guide's).
    pub fn dims(&self) -> [usize; 3] {
        self.dims
    }
}
