//! A trained [`Vae`] saved to JSON and loaded back: its architecture (the
//! sizes, encoder kind, hidden widths, activation and decoder likelihood,
//! from which [`Vae::new`] rebuilds every network) and its parameters,
//! exactly (floats written shortest and read back to the same bits).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::AmortisedError;
use super::mlp::Activation;
use super::vae::{Decoder, EncoderKind, Vae};

/// The tag of the format, checked on load.
const FORMAT: &str = "iwhvi-vae/1";

/// What rebuilds the networks.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Architecture {
    data_dim: usize,
    latent: usize,
    kind: EncoderKind,
    hidden: Vec<usize>,
    activation: Activation,
    decoder: Decoder,
}

/// The saved form, written in this order.
#[derive(Serialize)]
struct Saved<'a> {
    format: &'static str,
    architecture: Architecture,
    params: &'a [f64],
}

fn field(field: &str, message: impl ToString) -> AmortisedError {
    AmortisedError::Field {
        field: field.into(),
        message: message.to_string(),
    }
}

impl Vae {
    /// This VAE and its parameters as JSON: `format`, `architecture`
    /// (`data_dim`, `latent`, `kind`, `hidden`, `activation`, `decoder`) and
    /// `params`.
    ///
    /// # Errors
    /// [`AmortisedError::ParamsLength`] or [`AmortisedError::NonFinite`]
    /// (JSON has no NaN: a diverged fit is refused here, not written).
    ///
    /// ```
    /// use iwhvi_core::amortised::{Activation, AmortisedError, Decoder, EncoderKind, Vae};
    /// use iwhvi_core::rand::{SeedableRng, rngs::StdRng};
    ///
    /// let vae = Vae::new(4, 2, EncoderKind::Hierarchical { mixing_dim: 2 }, &[8], Activation::Tanh)?
    ///     .with_decoder(Decoder::Binomial { trials: 16 })?;
    /// let params = vae.init_params(&mut StdRng::seed_from_u64(0));
    /// let json = vae.to_json(&params)?;
    /// let (loaded, loaded_params) = Vae::from_json(&json)?;
    /// assert_eq!((loaded, loaded_params), (vae.clone(), params.clone()));
    /// let mut bad = params;
    /// bad[3] = f64::NAN;
    /// assert!(matches!(vae.to_json(&bad), Err(AmortisedError::NonFinite { index: 3, .. })));
    /// # Ok::<(), AmortisedError>(())
    /// ```
    pub fn to_json(&self, params: &[f64]) -> Result<String, AmortisedError> {
        self.check_params(params)?;
        let saved = Saved {
            format: FORMAT,
            architecture: Architecture {
                data_dim: self.data_dim(),
                latent: self.latent(),
                kind: self.kind(),
                hidden: self.hidden().to_vec(),
                activation: self.activation(),
                decoder: self.decoder(),
            },
            params,
        };
        serde_json::to_string_pretty(&saved).map_err(|e| field("params", e))
    }

    /// A VAE and its parameters from [`Vae::to_json`]'s text, the networks
    /// rebuilt by [`Vae::new`] from the architecture.
    ///
    /// # Errors
    /// [`AmortisedError::Field`] naming the field that is missing, unknown
    /// or invalid (`file` for text that is not a JSON object; `format`,
    /// `architecture` with the setting at fault, `params` of the wrong
    /// length or with a non-finite value).
    ///
    /// ```
    /// use iwhvi_core::amortised::{AmortisedError, Vae};
    /// let json = r#"{"format": "iwhvi-vae/1", "architecture": {"data_dim": 0, "latent": 2,
    ///     "kind": "Gaussian", "hidden": [8], "activation": "Tanh", "decoder": "Bernoulli"}, "params": []}"#;
    /// match Vae::from_json(json) {
    ///     Err(AmortisedError::Field { field, .. }) => assert_eq!(field, "architecture"),
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    pub fn from_json(json: &str) -> Result<(Vae, Vec<f64>), AmortisedError> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| field("file", e))?;
        let serde_json::Value::Object(mut fields) = value else {
            return Err(field("file", "not a JSON object"));
        };
        let mut take = |name: &str| fields.remove(name).ok_or_else(|| field(name, "missing"));
        match take("format")? {
            serde_json::Value::String(f) if f == FORMAT => {}
            other => {
                return Err(field(
                    "format",
                    format!("expected \"{FORMAT}\", found {other}"),
                ));
            }
        }
        let architecture: Architecture =
            serde_json::from_value(take("architecture")?).map_err(|e| field("architecture", e))?;
        let params: Vec<f64> =
            serde_json::from_value(take("params")?).map_err(|e| field("params", e))?;
        if let Some(unknown) = fields.keys().next() {
            return Err(field(unknown, "not a field of a saved VAE"));
        }
        let a = architecture;
        let vae = Vae::new(a.data_dim, a.latent, a.kind, &a.hidden, a.activation)
            .and_then(|v| v.with_decoder(a.decoder))
            .map_err(|e| field("architecture", e))?;
        vae.check_params(&params).map_err(|e| field("params", e))?;
        Ok((vae, params))
    }

    /// Writes [`Vae::to_json`] to `path`.
    ///
    /// # Errors
    /// As [`Vae::to_json`], or [`AmortisedError::Io`].
    pub fn save(&self, params: &[f64], path: impl AsRef<Path>) -> Result<(), AmortisedError> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json(params)?).map_err(|e| AmortisedError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Reads a VAE and its parameters from `path`.
    ///
    /// # Errors
    /// As [`Vae::from_json`], or [`AmortisedError::Io`].
    pub fn load(path: impl AsRef<Path>) -> Result<(Vae, Vec<f64>), AmortisedError> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path).map_err(|e| AmortisedError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_json(&json)
    }
}
