//! A fitted guide with its parameters and the model's layout: built,
//! checked, saved and loaded.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::guide::HierarchicalGuide;
use crate::input::{InputError, check_params};
use crate::model::{Latents, Layout, LayoutError};

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
/// let draws = loaded.sample(3, &mut rand::rngs::StdRng::seed_from_u64(0)).unwrap();
/// assert!(draws.column("sigma").unwrap().iter().all(|s| (s - 1.0).abs() < 1e-6));
/// ```
///
/// The fields are private and checked by [`FittedGuide::new`]: a fitted
/// guide always has finite parameters of the guide's length, and a layout
/// of the guide's `D`. A saved file names the guide's type and holds the
/// guide's configuration (only what cannot be derived), the parameters and
/// the layout; loading rebuilds each through its constructor, so a file
/// loads to exactly the guide that was saved or is a [`PersistError`]
/// naming the field.
#[derive(Clone, Debug, PartialEq)]
pub struct FittedGuide<G> {
    pub(super) guide: G,
    pub(super) params: Vec<f64>,
    pub(super) layout: Layout,
    pub(super) learned: Option<LearnedParams>,
}

/// The model's learned parameters (`#[param]` fields) as a fit left them:
/// their layout ([`Model::theta_layout`](crate::model::Model::theta_layout))
/// and their unconstrained values `ϑ`, saved beside the guide that was
/// fitted with them (see [`FittedGuide::with_learned`]).
///
/// ```
/// use iwhvi_core::model::{Layout, LatentSpec};
/// use iwhvi_core::posterior::LearnedParams;
/// use iwhvi_core::transforms::Transform;
///
/// let layout = Layout::new(vec![LatentSpec::scalar("sigma", Transform::LowerBound { low: 0.0 })]);
/// let learned = LearnedParams::new(layout, vec![0.0]).unwrap();
/// assert_eq!(learned.constrained().unwrap().get("sigma").unwrap(), &[1.0]);
/// assert!(LearnedParams::new(Layout::default(), vec![1.0]).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnedParams {
    layout: Layout,
    theta: Vec<f64>,
}

impl LearnedParams {
    /// Learned parameters `theta` (unconstrained) of the given layout.
    ///
    /// # Errors
    /// [`PersistError::Field`] (`learned`) when `theta` is not the
    /// layout's dimension or not finite.
    pub fn new(layout: Layout, theta: Vec<f64>) -> Result<Self, PersistError> {
        if theta.len() != layout.dim() || theta.iter().any(|t| !t.is_finite()) {
            return Err(PersistError::Field {
                field: "learned".into(),
                message: format!(
                    "{} values for a layout of dimension {}, each finite, expected {theta:?}",
                    theta.len(),
                    layout.dim()
                ),
            });
        }
        Ok(Self { layout, theta })
    }

    /// Their layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Their unconstrained values `ϑ`, as
    /// [`Model::set_theta`](crate::model::Model::set_theta) takes them.
    pub fn theta(&self) -> &[f64] {
        &self.theta
    }

    /// Named and constrained, `θ = T(ϑ)`.
    ///
    /// # Errors
    /// Never for values built by [`LearnedParams::new`]; the layout's
    /// error otherwise.
    pub fn constrained(&self) -> Result<Latents, LayoutError> {
        self.layout.constrain(&self.theta)
    }
}

/// The saved form, written in this order.
#[derive(Serialize)]
struct Saved<'a, G> {
    guide_type: String,
    guide: &'a G,
    params: &'a [f64],
    layout: &'a Layout,
    #[serde(skip_serializing_if = "Option::is_none")]
    learned: Option<&'a LearnedParams>,
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
    /// The text is not JSON, or not a JSON object.
    #[error("not a fitted guide: {0}")]
    Json(#[from] serde_json::Error),
    /// One field of the file is missing, unknown or holds a value of the
    /// wrong form (for the guide: one its constructor rejects).
    #[error("field `{field}` of the saved guide: {message}")]
    Field {
        /// The top-level field: `guide_type`, `guide`, `params`, `layout`,
        /// or the name of a field the format does not have.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The file holds a guide of another type than the one asked for.
    #[error("the file holds a {found} guide, not a {expected}")]
    GuideType {
        /// The type asked for.
        expected: String,
        /// The type the file names.
        found: String,
    },
    /// The parameters or the layout do not fit the guide (wrong count,
    /// non-finite, another `D`).
    #[error(transparent)]
    Input(#[from] InputError),
    /// The model's layout differs from the one the guide was fitted with
    /// (other latents, shapes or supports).
    #[error("the model's layout is not the one the guide was fitted with")]
    LayoutMismatch,
    /// A fitted guide's learned parameters differ from the model's it is
    /// put beside ([`Posterior::from_fitted`](super::Posterior::from_fitted)).
    /// Names sizes and the first differing position, not the values
    /// (a `ϑ` may hold thousands).
    #[error(
        "the fitted guide was fitted at other learned parameters than the model's ({}): set the saved ones into the model first (Model::set_theta)",
        learned_difference(*.saved_len, *.model_len, *.first_difference)
    )]
    LearnedMismatch {
        /// How many learned values the fitted guide holds.
        saved_len: usize,
        /// How many the model holds.
        model_len: usize,
        /// The first position `i` where `ϑ[i]` differs (or is missing on
        /// one side); `None` when the values are the same and only their
        /// layout (names or shapes) differs.
        first_difference: Option<usize>,
    },
    /// Rows of named values that differ in their names or lengths
    /// ([`Draws::try_from_latents`](super::Draws::try_from_latents)): a
    /// table of draws needs one column per element, the same in every row.
    #[error("row {row} has latents {found}, the first row has {expected}")]
    RowMismatch {
        /// The first row that differs from the first.
        row: usize,
        /// Its names and lengths.
        found: String,
        /// The first row's.
        expected: String,
    },
    /// Draws given to [`Posterior::derived`](super::Posterior::derived) or
    /// [`Posterior::predictive`](super::Posterior::predictive) are not of
    /// the posterior's model: their latent number `latent` (in the
    /// layout's order) differs from the model's.
    #[error(
        "the draws are not of this model: their latent {latent} is {draws}, the model's is {model} (draw from this posterior, or from a guide fitted to this model)"
    )]
    DrawsMismatch {
        /// Which latent differs, counted from 0 in the layout's order.
        latent: usize,
        /// The draws' latent there: its name and number of values, or
        /// `none`.
        draws: String,
        /// The model's latent there, in the same form.
        model: String,
    },
}

impl PersistError {
    /// [`PersistError::LearnedMismatch`] for a saved `ϑ` beside the
    /// model's: their lengths and the first `i` where `saved[i] != model[i]`
    /// (a position only one of them has counts as differing).
    pub(crate) fn learned_mismatch(saved: &[f64], model: &[f64]) -> Self {
        let first_difference =
            (0..saved.len().max(model.len())).find(|&i| saved.get(i) != model.get(i));
        PersistError::LearnedMismatch {
            saved_len: saved.len(),
            model_len: model.len(),
            first_difference,
        }
    }
}

/// The parenthesis of [`PersistError::LearnedMismatch`]'s message.
fn learned_difference(saved: usize, model: usize, first: Option<usize>) -> String {
    let sizes = format!("{saved} saved values, {model} in the model");
    match first {
        Some(i) => format!("{sizes}; the first difference at ϑ[{i}]"),
        None => format!("{sizes}; the same values in another layout"),
    }
}

/// The name a saved file gives the guide's type: its type name without
/// module paths (`MeanField`, `Preconditioned<SemiImplicit>`).
fn guide_type_name<G>() -> String {
    let full = std::any::type_name::<G>();
    let mut out = String::with_capacity(full.len());
    let mut word = String::new();
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            word.clear();
        } else {
            out.push_str(&word);
            word.clear();
            out.push(c);
        }
    }
    out.push_str(&word);
    out
}

impl<G: HierarchicalGuide> FittedGuide<G> {
    /// A fitted guide.
    ///
    /// # Errors
    /// [`PersistError::Input`] when the parameters do not fit the guide
    /// ([`InputError::WrongParameterCount`], [`InputError::NonFiniteParameter`])
    /// or the layout is for another `D` ([`InputError::DimensionMismatch`]).
    pub fn new(guide: G, params: Vec<f64>, layout: Layout) -> Result<Self, PersistError> {
        check_params(&guide, &params)?;
        if guide.latent_dim() != layout.dim() {
            return Err(InputError::DimensionMismatch {
                model: layout.dim(),
                guide: guide.latent_dim(),
            }
            .into());
        }
        Ok(Self {
            guide,
            params,
            layout,
            learned: None,
        })
    }

    /// With the model's learned parameters beside the guide (saved and
    /// loaded with it): `layout` is the model's
    /// [`theta_layout`](crate::model::Model::theta_layout) and `theta`
    /// the fit's [`Fit::theta`](crate::fit::Fit::theta). A layout of
    /// dimension 0 stores nothing.
    ///
    /// # Errors
    /// As [`LearnedParams::new`].
    ///
    /// ```
    /// use iwhvi_core::guide::MeanField;
    /// use iwhvi_core::model::{Layout, LatentSpec};
    /// use iwhvi_core::posterior::FittedGuide;
    /// use iwhvi_core::transforms::Transform;
    ///
    /// let layout = Layout::new(vec![LatentSpec::scalar("z", Transform::Identity)]);
    /// let theta_layout = Layout::new(vec![LatentSpec::scalar("mu", Transform::Identity)]);
    /// let fitted = FittedGuide::new(MeanField::new(1), vec![0.5, 0.0], layout)
    ///     .unwrap()
    ///     .with_learned(theta_layout, vec![1.25])
    ///     .unwrap();
    /// let loaded: FittedGuide<MeanField> = FittedGuide::from_json(&fitted.to_json().unwrap()).unwrap();
    /// assert_eq!(loaded.learned().unwrap().theta(), &[1.25]);
    /// assert_eq!(loaded, fitted);
    /// ```
    pub fn with_learned(mut self, layout: Layout, theta: Vec<f64>) -> Result<Self, PersistError> {
        self.learned = if layout.dim() == 0 && theta.is_empty() {
            None
        } else {
            Some(LearnedParams::new(layout, theta)?)
        };
        Ok(self)
    }

    /// The model's learned parameters saved with the guide, if any.
    pub fn learned(&self) -> Option<&LearnedParams> {
        self.learned.as_ref()
    }

    /// The guide (its configuration).
    pub fn guide(&self) -> &G {
        &self.guide
    }

    /// The fitted parameters.
    pub fn params(&self) -> &[f64] {
        &self.params
    }

    /// The model's latents, to name and constrain draws.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The guide, the parameters and the layout.
    pub fn into_parts(self) -> (G, Vec<f64>, Layout) {
        (self.guide, self.params, self.layout)
    }
}

impl<G: HierarchicalGuide + Serialize + DeserializeOwned> FittedGuide<G> {
    /// The fitted guide as JSON: `guide_type`, `guide`, `params`, `layout`.
    ///
    /// # Errors
    /// [`PersistError::Input`] with [`InputError::NonFiniteParameter`] if a
    /// parameter is not finite (JSON has no NaN; [`FittedGuide::new`]
    /// already refuses one, so this is a second line);
    /// [`PersistError::Json`] if the guide cannot be written.
    pub fn to_json(&self) -> Result<String, PersistError> {
        check_params(&self.guide, &self.params)?;
        Ok(serde_json::to_string_pretty(&Saved {
            guide_type: guide_type_name::<G>(),
            guide: &self.guide,
            params: &self.params,
            layout: &self.layout,
            learned: self.learned.as_ref(),
        })?)
    }

    /// A fitted guide from JSON, each field rebuilt through its
    /// constructor and the whole through [`FittedGuide::new`].
    ///
    /// # Errors
    /// [`PersistError::Json`] for text that is not a JSON object;
    /// [`PersistError::GuideType`] for a file of another guide type;
    /// [`PersistError::Field`] naming a missing, unknown or invalid field;
    /// [`PersistError::Input`] when the fields do not fit together.
    ///
    /// ```
    /// use iwhvi_core::guide::{FullRank, MeanField};
    /// use iwhvi_core::model::{Layout, LatentSpec};
    /// use iwhvi_core::posterior::{FittedGuide, PersistError};
    /// use iwhvi_core::transforms::Transform;
    ///
    /// let layout = Layout::new(vec![LatentSpec::scalar("x", Transform::Identity)]);
    /// let json = FittedGuide::new(MeanField::new(1), vec![0.5, 0.0], layout).unwrap().to_json().unwrap();
    /// match FittedGuide::<FullRank>::from_json(&json) {
    ///     Err(PersistError::GuideType { expected, found }) => {
    ///         assert_eq!((expected.as_str(), found.as_str()), ("FullRank", "MeanField"));
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    pub fn from_json(json: &str) -> Result<Self, PersistError> {
        let value: serde_json::Value = serde_json::from_str(json)?;
        let serde_json::Value::Object(mut fields) = value else {
            return Err(PersistError::Field {
                field: "guide_type".into(),
                message: "the file is not a JSON object".into(),
            });
        };
        let expected = guide_type_name::<G>();
        match fields.remove("guide_type") {
            Some(serde_json::Value::String(found)) if found == expected => {}
            Some(serde_json::Value::String(found)) => {
                return Err(PersistError::GuideType { expected, found });
            }
            Some(other) => {
                return Err(PersistError::Field {
                    field: "guide_type".into(),
                    message: format!("a type name was expected, found {other}"),
                });
            }
            None => {
                return Err(PersistError::Field {
                    field: "guide_type".into(),
                    message: "missing".into(),
                });
            }
        }
        fn take<T: DeserializeOwned>(
            fields: &mut serde_json::Map<String, serde_json::Value>,
            field: &'static str,
        ) -> Result<T, PersistError> {
            let value = fields.remove(field).ok_or_else(|| PersistError::Field {
                field: field.into(),
                message: "missing".into(),
            })?;
            serde_json::from_value(value).map_err(|e| PersistError::Field {
                field: field.into(),
                message: e.to_string(),
            })
        }
        let guide: G = take(&mut fields, "guide")?;
        let params: Vec<f64> = take(&mut fields, "params")?;
        let layout: Layout = take(&mut fields, "layout")?;
        let learned: Option<LearnedParams> = if fields.contains_key("learned") {
            Some(take(&mut fields, "learned")?)
        } else {
            None
        };
        if let Some(unknown) = fields.keys().next() {
            return Err(PersistError::Field {
                field: unknown.clone(),
                message: "not a field of a saved guide".into(),
            });
        }
        let fitted = Self::new(guide, params, layout)?;
        match learned {
            Some(l) => fitted.with_learned(l.layout, l.theta),
            None => Ok(fitted),
        }
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

#[cfg(test)]
mod tests {
    use super::PersistError;

    fn mismatch(saved: &[f64], model: &[f64]) -> (Option<usize>, String) {
        let error = PersistError::learned_mismatch(saved, model);
        let PersistError::LearnedMismatch {
            first_difference, ..
        } = error
        else {
            unreachable!("learned_mismatch builds a LearnedMismatch")
        };
        (first_difference, error.to_string())
    }

    #[test]
    fn a_learned_mismatch_names_sizes_and_the_first_difference_not_the_values() {
        let (first, message) = mismatch(&[1.0, 2.0, 3.25], &[1.0, 2.5, 3.5]);
        assert_eq!(first, Some(1));
        assert!(
            message.contains("3 saved values, 3 in the model; the first difference at ϑ[1]"),
            "{message}"
        );
        assert!(!message.contains("3.25"), "{message}");
        // A position only one side has differs.
        assert_eq!(mismatch(&[1.0], &[1.0, 2.0]).0, Some(1));
        assert_eq!(mismatch(&[1.0, 2.0], &[]).0, Some(0));
        // Same values: the layouts differ.
        let (first, message) = mismatch(&[0.5], &[0.5]);
        assert_eq!(first, None);
        assert!(
            message.contains("the same values in another layout"),
            "{message}"
        );
    }
}
