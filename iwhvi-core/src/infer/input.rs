//! What the inference entry points check before they compute: parameter
//! vectors against the guide, the guide against the model, counts and
//! settings against what they mean, and sizes against a memory budget.
//! One error type, [`InputError`], for all of it; [`FitError`](crate::fit::FitError),
//! [`PersistError`](crate::posterior::PersistError) and the diagnostics
//! ([`DiagnosticsError`](crate::objective::DiagnosticsError) is this type)
//! carry it.
//!
//! ```
//! use iwhvi_core::guide::MeanField;
//! use iwhvi_core::input::InputError;
//! use iwhvi_core::model::{Layout, LatentSpec, Model};
//! use iwhvi_core::objective::{estimate_bound, Diwhvi};
//! use iwhvi_core::transforms::Transform;
//! use iwhvi_core::Scalar;
//! use rand::SeedableRng;
//!
//! struct StdNormal;
//! impl Model for StdNormal {
//!     fn layout(&self) -> Layout {
//!         Layout::new(vec![LatentSpec::scalar("z", Transform::Identity)])
//!     }
//!     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
//!         iwhvi_core::guide::std_normal_log_density(u)
//!     }
//! }
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! // A mean-field guide on one latent has 2 parameters, not 3.
//! let error = estimate_bound(&StdNormal, &MeanField::new(1), &[0.0; 3], Diwhvi::elbo(), 10, &mut rng);
//! assert_eq!(error, Err(InputError::WrongParameterCount { expected: 2, found: 3 }));
//! ```

use crate::guide::HierarchicalGuide;
use crate::model::Model;
use crate::objective::Diwhvi;

/// The memory, in bytes, that one evaluation of a bound (its step noise
/// and, on the reverse-mode tape, its tape) may ask for before the
/// evaluation functions and [`fit`](crate::fit::fit) refuse with
/// [`InputError::TooLarge`]: 4 GiB. [`FitConfig::memory_budget`](crate::fit::FitConfig::memory_budget)
/// raises or lowers it for a fit; [`check_size`] takes it as an argument.
pub const DEFAULT_MEMORY_BUDGET: u64 = 4 << 30;

/// Bytes per tape entry per guide parameter and weight in the estimate of
/// [`bound_memory`]: a node start (4 bytes), an adjoint (8) and about two
/// edges (2 × 16).
const TAPE_BYTES_PER_ENTRY: u128 = 44;

/// Why an inference entry point refused what it was given.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The parameter vector does not fit the guide.
    #[error("the guide has {expected} parameters but {found} were given")]
    WrongParameterCount {
        /// The guide's parameter count.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A parameter is NaN or infinite.
    #[error("parameter {index} ({name}) is {value}: every parameter must be finite")]
    NonFiniteParameter {
        /// Its index in the parameter vector.
        index: usize,
        /// Its block in the guide's parameter layout, with the element.
        name: String,
        /// The value.
        value: f64,
    },
    /// The guide is for another number of latents than the model.
    #[error("the guide is for {guide} unconstrained latents but the model has {model}")]
    DimensionMismatch {
        /// The model's `D` (or the saved layout's).
        model: usize,
        /// The guide's `D`.
        guide: usize,
    },
    /// `M = 0`: the bound needs at least one outer sample.
    #[error("the bound needs at least one outer sample: M = 0 was given")]
    NoOuterSamples,
    /// No inner samples: the lower bound on `log q` needs `K ≥ 1`.
    #[error("the lower bound on log q needs at least one inner sample: K = 0 was given")]
    NoInnerSamples,
    /// Fewer than two draws or replicates: no standard error.
    #[error("{0} draws were asked for; at least two are needed for a standard error")]
    TooFewDraws(usize),
    /// Step noise of another guide or objective than the call's.
    #[error(
        "the step noise was drawn for another guide or objective: {noise} noise values per draw, the guide needs {guide}"
    )]
    NoiseMismatch {
        /// The noise lengths per draw (mixing, conditional, reverse) of the noise.
        noise: String,
        /// What the guide needs.
        guide: String,
    },
    /// An outer-sample index past the noise's `M`.
    #[error("outer sample {index} was asked for but the noise has M = {m}")]
    OuterSampleOutOfRange {
        /// The index asked for.
        index: usize,
        /// The noise's `M`.
        m: usize,
    },
    /// A setting outside the values it can take.
    #[error("{setting} = {value} is invalid: {requirement}")]
    InvalidSetting {
        /// The setting, as its builder or field is named.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What it must be.
        requirement: &'static str,
    },
    /// The request would need more memory than the budget allows.
    #[error(
        "{what} needs about {bytes} bytes ({gib:.2} GiB), over the budget of {budget} bytes; \
         lower M or K, or raise the budget (FitConfig::memory_budget)",
        gib = *bytes as f64 / (1u64 << 30) as f64
    )]
    TooLarge {
        /// What asked for it.
        what: String,
        /// The bytes it needs (saturating).
        bytes: u128,
        /// The budget.
        budget: u64,
    },
    /// The guide's [`MixingGroups`](crate::guide::MixingGroups) were built
    /// for other dimensions than the guide reports.
    #[error(
        "the guide's mixing groups were built for (D, d, reverse noise) = {groups:?} but the guide \
         has {guide:?}"
    )]
    MixingGroupsMismatch {
        /// The dimensions the groups were checked against.
        groups: [usize; 3],
        /// The guide's `D`, `d` and reverse noise per draw.
        guide: [usize; 3],
    },
}

/// Checks `params` against `guide`: its length, and that every entry is
/// finite; and the guide's [`MixingGroups`](crate::guide::MixingGroups),
/// when it reports them, against its dimensions.
///
/// # Errors
/// [`InputError::WrongParameterCount`], [`InputError::NonFiniteParameter`],
/// [`InputError::MixingGroupsMismatch`].
///
/// ```
/// use iwhvi_core::guide::MeanField;
/// use iwhvi_core::input::{check_params, InputError};
/// assert!(check_params(&MeanField::new(2), &[0.0; 4]).is_ok());
/// assert!(matches!(
///     check_params(&MeanField::new(2), &[0.0, f64::NAN, 0.0, 0.0]),
///     Err(InputError::NonFiniteParameter { index: 1, .. })
/// ));
/// ```
pub fn check_params<G: HierarchicalGuide + ?Sized>(
    guide: &G,
    params: &[f64],
) -> Result<(), InputError> {
    let layout = guide.param_layout();
    if params.len() != layout.len() {
        return Err(InputError::WrongParameterCount {
            expected: layout.len(),
            found: params.len(),
        });
    }
    if let Some(index) = params.iter().position(|p| !p.is_finite()) {
        let name = layout
            .blocks()
            .iter()
            .find(|block| block.range.contains(&index))
            .map_or_else(
                || format!("[{index}]"),
                |block| format!("{}[{}]", block.name, index - block.range.start),
            );
        return Err(InputError::NonFiniteParameter {
            index,
            name,
            value: params[index],
        });
    }
    if let Some(groups) = guide.mixing_groups() {
        let dims = [
            guide.latent_dim(),
            guide.mixing_dim(),
            guide.reverse_noise_dim(),
        ];
        if groups.dims() != dims {
            return Err(InputError::MixingGroupsMismatch {
                groups: groups.dims(),
                guide: dims,
            });
        }
    }
    Ok(())
}

/// Checks that `guide` is for the model's number of unconstrained latents.
///
/// # Errors
/// [`InputError::DimensionMismatch`].
pub fn check_dimensions<Mo: Model + ?Sized, G: HierarchicalGuide + ?Sized>(
    model: &Mo,
    guide: &G,
) -> Result<(), InputError> {
    if model.dim() != guide.latent_dim() {
        return Err(InputError::DimensionMismatch {
            model: model.dim(),
            guide: guide.latent_dim(),
        });
    }
    Ok(())
}

/// The bytes one evaluation of `objective` on `guide` needs, estimated:
/// its step noise, `8 · M · (d_mix + d_cond + K · d_rev)` (the guide's
/// noise lengths per draw), and, when `tape` is true, the reverse-mode
/// tape, about `44 · M · (K + 1) · P` for `P` guide parameters (every
/// weight reads every parameter about once). Saturates instead of
/// overflowing.
///
/// ```
/// use iwhvi_core::guide::SemiImplicit;
/// use iwhvi_core::input::bound_memory;
/// use iwhvi_core::objective::Diwhvi;
/// let guide = SemiImplicit::new(10, 10);
/// // M = 1, K = 64: 8 · (10 + 10 + 64 · 10) bytes of noise.
/// assert_eq!(bound_memory(&guide, Diwhvi::new(1, 64), false), 8 * 660);
/// ```
pub fn bound_memory<G: HierarchicalGuide + ?Sized>(
    guide: &G,
    objective: Diwhvi,
    tape: bool,
) -> u128 {
    let (m, k) = (objective.m() as u128, objective.k() as u128);
    let k = if guide.mixing_dim() == 0 { 0 } else { k };
    let per_draw = guide.mixing_noise_dim() as u128 + guide.conditional_noise_dim() as u128;
    let reverse = guide.reverse_noise_dim() as u128;
    let noise = m
        .saturating_mul(per_draw.saturating_add(k.saturating_mul(reverse)))
        .saturating_mul(8);
    if !tape {
        return noise;
    }
    let params = guide.param_layout().len() as u128;
    let tape_bytes = m
        .saturating_mul(k.saturating_add(1))
        .saturating_mul(params.max(1))
        .saturating_mul(TAPE_BYTES_PER_ENTRY);
    noise.saturating_add(tape_bytes)
}

/// Checks [`bound_memory`] against `budget` bytes.
///
/// # Errors
/// [`InputError::TooLarge`], saying how many bytes the request needs.
///
/// ```
/// use iwhvi_core::guide::SemiImplicit;
/// use iwhvi_core::input::{check_size, InputError, DEFAULT_MEMORY_BUDGET};
/// use iwhvi_core::objective::Diwhvi;
/// let guide = SemiImplicit::new(10, 10);
/// assert!(check_size(&guide, Diwhvi::new(1, 64), false, DEFAULT_MEMORY_BUDGET).is_ok());
/// let huge = Diwhvi::new(1, usize::MAX / 2);
/// assert!(matches!(check_size(&guide, huge, false, DEFAULT_MEMORY_BUDGET), Err(InputError::TooLarge { .. })));
/// ```
pub fn check_size<G: HierarchicalGuide + ?Sized>(
    guide: &G,
    objective: Diwhvi,
    tape: bool,
    budget: u64,
) -> Result<(), InputError> {
    let bytes = bound_memory(guide, objective, tape);
    if bytes > u128::from(budget) {
        return Err(InputError::TooLarge {
            what: format!(
                "the bound with M = {}, K = {}{}",
                objective.m(),
                objective.k(),
                if tape {
                    " on the reverse-mode tape"
                } else {
                    ""
                }
            ),
            bytes,
            budget,
        });
    }
    Ok(())
}

/// Checks a count of draws that must be at least two.
pub(crate) fn check_draws(draws: usize) -> Result<(), InputError> {
    if draws < 2 {
        return Err(InputError::TooFewDraws(draws));
    }
    Ok(())
}

/// The bytes of `count` values of `width` f64s each, `8 · count · width`
/// (saturating, so a huge count cannot wrap), when they exceed `budget`;
/// `None` when they fit. The one byte count behind [`check_values`],
/// [`check_learned_size`] and the checks that report in errors of their own.
pub(crate) fn bytes_over_budget(count: usize, width: usize, budget: u64) -> Option<u128> {
    let bytes = value_bytes(count, width);
    (bytes > u128::from(budget)).then_some(bytes)
}

/// `8 · count · width`, the bytes of `count` values of `width` f64s each
/// (saturating).
pub(crate) fn value_bytes(count: usize, width: usize) -> u128 {
    (count as u128)
        .saturating_mul(width as u128)
        .saturating_mul(8)
}

/// Checks `count` values of `width` f64s each (`8 · count · width` bytes,
/// a width of 0 counted as 1) against `budget`.
pub(crate) fn check_values(
    what: impl FnOnce() -> String,
    count: usize,
    width: usize,
    budget: u64,
) -> Result<(), InputError> {
    match bytes_over_budget(count, width.max(1), budget) {
        Some(bytes) => Err(InputError::TooLarge {
            what: what(),
            bytes,
            budget,
        }),
        None => Ok(()),
    }
}

/// Checks a learned parameter of `rows × columns` values (a vector:
/// `columns = 1`) against [`DEFAULT_MEMORY_BUDGET`], before the generated
/// `new` allocates it: its length may come from the data.
///
/// ```
/// use iwhvi_core::input::check_learned_size;
/// use iwhvi_core::model::DataError;
/// assert!(check_learned_size("w", 1000, 3).is_ok());
/// assert!(matches!(
///     check_learned_size("w", usize::MAX, 2),
///     Err(DataError::TooLarge { field: "w", .. })
/// ));
/// ```
///
/// # Errors
/// [`DataError::TooLarge`](crate::model::DataError::TooLarge), with the values and bytes it would need.
pub fn check_learned_size(
    field: &'static str,
    rows: usize,
    columns: usize,
) -> Result<(), crate::model::DataError> {
    match bytes_over_budget(rows, columns, DEFAULT_MEMORY_BUDGET) {
        Some(bytes) => Err(crate::model::DataError::TooLarge {
            field,
            // Exact: a product of two `usize` fits a `u128`.
            values: rows as u128 * columns as u128,
            bytes,
            budget: DEFAULT_MEMORY_BUDGET,
        }),
        None => Ok(()),
    }
}
