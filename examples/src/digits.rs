//! The digits of `../shared/data/digits` (UCI's optical recognition of
//! handwritten digits, as packaged by scikit-learn; CC BY 4.0): 1,500
//! training and 297 test 8×8 images, binarised (pixel > 8), and the VAE
//! that `vae_digits` and the `vae_epoch` bench train on them.

use iwhvi::amortised::{Activation, AmortisedError, EncoderKind, Vae};

/// Pixels per image.
pub const PIXELS: usize = 64;
/// The networks' hidden widths (one layer).
pub const HIDDEN: [usize; 1] = [64];
/// The networks' activation.
pub const ACTIVATION: Activation = Activation::Tanh;
/// Images per step.
pub const BATCH: usize = 100;

/// Binarised images (`n × 64`, row-major, values 0 or 1) and their labels.
pub struct Split {
    /// Pixels, 1 where the intensity is above 8.
    pub pixels: Vec<f64>,
    /// Digit of each image.
    pub labels: Vec<u8>,
}

impl Split {
    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// The fixed training and test splits.
pub struct Digits {
    /// 1,500 images.
    pub train: Split,
    /// 297 images.
    pub test: Split,
}

/// Reads `../shared/data/digits/digits.json` (beside the repository).
///
/// # Errors
/// A message when the file is missing or malformed.
pub fn load() -> Result<Digits, String> {
    let path = crate::repo_root().join("../shared/data/digits/digits.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let split = |name: &str| -> Result<Split, String> {
        let part = &json[name];
        let images = part["images"]
            .as_array()
            .ok_or(format!("{name}.images is missing"))?;
        let labels = part["labels"]
            .as_array()
            .ok_or(format!("{name}.labels is missing"))?;
        let mut pixels = Vec::with_capacity(images.len() * PIXELS);
        for image in images {
            let row = image.as_array().ok_or("an image is not an array")?;
            if row.len() != PIXELS {
                return Err(format!("an image of {} pixels", row.len()));
            }
            for p in row {
                let v = p.as_f64().ok_or("a pixel is not a number")?;
                pixels.push(if v > 8.0 { 1.0 } else { 0.0 });
            }
        }
        let labels = labels
            .iter()
            .map(|l| l.as_u64().map(|l| l as u8).ok_or("a label is not a number"))
            .collect::<Result<Vec<u8>, _>>()?;
        if labels.len() * PIXELS != pixels.len() {
            return Err(format!(
                "{name}: {} labels for {} images",
                labels.len(),
                images.len()
            ));
        }
        Ok(Split { pixels, labels })
    };
    Ok(Digits {
        train: split("train")?,
        test: split("test")?,
    })
}

/// The VAE on the digits: `latent` dimensions, every network 64 → 64 (tanh)
/// → outputs, the given encoder.
///
/// # Errors
/// As [`Vae::new`].
pub fn vae(latent: usize, kind: EncoderKind) -> Result<Vae, AmortisedError> {
    Vae::new(PIXELS, latent, kind, &HIDDEN, ACTIVATION)
}
