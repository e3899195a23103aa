//! A fitted guide with its parameters and the model's layout: built,
//! checked, saved and loaded.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::guide::HierarchicalGuide;
use crate::model::Layout;

/// A guide with its fitted parameters and the model's latent layout:
/// everything needed to draw named latents, without the model's data.
/// Saves to and loads from JSON.
///
/// ```
/// use iwhvi_core::guide::MeanField;
/// use iwhvi_core::model::{Layout, LatentSpec};
/// use iwhvi_core::posterior::FittedGuide;
/// use iwhvi_core::transforms::Transform;
/// use rand::SeedableRng;
///
/// let layout = Layout::new(vec![LatentSpec::scalar("sigma", Transform::Exp)]);
/// let fitted = FittedGuide::new(MeanField::new(1), vec![0.0, -20.0], layout).unwrap();
/// let json = fitted.to_json().unwrap();
/// let loaded: FittedGuide<MeanField> = FittedGuide::from_json(&json).unwrap();
/// let draws = loaded.sample(3, &mut rand::rngs::StdRng::seed_from_u64(0));
/// assert!(draws.column("sigma").unwrap().iter().all(|s| (s - 1.0).abs() < 1e-6));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FittedGuide<G> {
    /// The guide (its configuration).
    pub guide: G,
    /// Its fitted parameters.
    pub params: Vec<f64>,
    /// The model's latents, to name and constrain draws.
    pub layout: Layout,
}

/// Why a fitted guide could not be built, saved or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// Reading or writing the file.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The JSON did not describe a fitted guide of this type.
    #[error("not a fitted guide of this type: {0}")]
    Json(#[from] serde_json::Error),
    /// The parameters do not fit the guide.
    #[error("the guide has {expected} parameters but {found} were given")]
    ParameterCount {
        /// What the guide needs.
        expected: usize,
        /// What was given or loaded.
        found: usize,
    },
    /// The model's layout differs from the one the guide was fitted with
    /// (other latents, shapes or supports).
    #[error("the model's layout is not the one the guide was fitted with")]
    LayoutMismatch,
    /// The guide is for another number of latents than the layout names.
    #[error("the guide is for {guide} unconstrained latents but the model's layout has {layout}")]
    DimensionMismatch {
        /// The guide's `D`.
        guide: usize,
        /// The layout's `D`.
        layout: usize,
    },
}

impl<G: HierarchicalGuide> FittedGuide<G> {
    /// A fitted guide.
    ///
    /// # Errors
    /// [`PersistError::ParameterCount`] or [`PersistError::DimensionMismatch`]
    /// when the parameters or the layout do not fit the guide.
    pub fn new(guide: G, params: Vec<f64>, layout: Layout) -> Result<Self, PersistError> {
        let expected = guide.param_layout().len();
        if params.len() != expected {
            return Err(PersistError::ParameterCount {
                expected,
                found: params.len(),
            });
        }
        if guide.latent_dim() != layout.dim() {
            return Err(PersistError::DimensionMismatch {
                guide: guide.latent_dim(),
                layout: layout.dim(),
            });
        }
        Ok(Self {
            guide,
            params,
            layout,
        })
    }
}

impl<G: HierarchicalGuide + Serialize + DeserializeOwned> FittedGuide<G> {
    /// The fitted guide as JSON.
    ///
    /// # Errors
    /// [`PersistError::Json`].
    pub fn to_json(&self) -> Result<String, PersistError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// A fitted guide from JSON.
    ///
    /// # Errors
    /// [`PersistError::Json`], [`PersistError::ParameterCount`],
    /// [`PersistError::DimensionMismatch`].
    pub fn from_json(json: &str) -> Result<Self, PersistError> {
        let fitted: Self = serde_json::from_str(json)?;
        Self::new(fitted.guide, fitted.params, fitted.layout)
    }

    /// Writes the JSON to `path`.
    ///
    /// # Errors
    /// [`PersistError`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), PersistError> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json()?).map_err(|source| PersistError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Reads a fitted guide from `path`.
    ///
    /// # Errors
    /// [`PersistError`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PersistError> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path).map_err(|source| PersistError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&json)
    }
}
