//! Data in Stan's JSON format (what CmdStan reads with `data file=…`, and
//! what posteriordb ships): one JSON object whose keys are the data
//! variables; a scalar is a number, an array a (nested) JSON array, a
//! matrix an array of its rows; reals may be written `"NaN"`, `"Inf"` or
//! `"-Inf"`.
//!
//! [`StanData`] holds a parsed file; [`StanData::get`] converts one
//! variable into a Rust value through [`FromStanData`], with a
//! [`StanDataError`] that names the variable (and the element) at fault
//! (not to be confused with [`model::DataError`](crate::model::DataError),
//! a model constructor's verdict on the values it is given, which
//! [`StanDataError::Invalid`] carries).
//!
//! ```
//! use iwhvi_core::data::StanData;
//! use nalgebra::DMatrix;
//!
//! let data = StanData::from_json_str(r#"{"N": 3, "y": [1, 0, 1], "x": [[1.0, 2.5], [0.5, "-Inf"], [2, 3]]}"#)?;
//! let n: usize = data.get("N")?;
//! let y: Vec<u64> = data.get("y")?;
//! let x: DMatrix<f64> = data.get("x")?;
//! assert_eq!((n, y, x.nrows(), x.ncols()), (3, vec![1, 0, 1], 3, 2));
//! assert_eq!(x[(1, 1)], f64::NEG_INFINITY);
//! assert_eq!(
//!     data.get::<Vec<f64>>("sigma").unwrap_err().to_string(),
//!     "the data have no variable `sigma` (they have: N, x, y)"
//! );
//! # Ok::<(), iwhvi_core::data::StanDataError>(())
//! ```

use std::io::Read;
use std::path::Path;

use nalgebra::{DMatrix, DVector};
use serde_json::{Map, Value};

/// Why data could not be read or converted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StanDataError {
    /// Reading the file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The text is not JSON.
    #[error("the data are not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON is not an object of named variables.
    #[error("Stan data are a JSON object of named variables, not {0}")]
    NotAnObject(&'static str),
    /// A variable the model needs is not in the data.
    #[error("the data have no variable `{name}` (they have: {present})")]
    Missing {
        /// The variable.
        name: String,
        /// The variables present, comma-separated.
        present: String,
    },
    /// A value of the wrong kind (a string or an array where a number is
    /// needed, a real where an integer is).
    #[error("`{path}` should be {expected}, but is {found}")]
    WrongType {
        /// The variable, with the element's indices (`y[3]`).
        path: String,
        /// What was needed.
        expected: &'static str,
        /// What was there.
        found: String,
    },
    /// No variable has the field's exact name, and several match it up to
    /// case.
    #[error(
        "no variable is named `{field}`, and several differ from it only in case ({candidates}): rename one"
    )]
    Ambiguous {
        /// The field.
        field: String,
        /// Two of the variables that match up to case.
        candidates: String,
    },
    /// The values were read, but the model's constructor rejects them (a
    /// NaN, mismatched lengths, an observation outside its support).
    #[error(transparent)]
    Invalid(#[from] crate::model::DataError),
    /// An array of the wrong length, or a matrix with ragged rows.
    #[error("`{path}` should have {expected} elements, but has {found}")]
    WrongLength {
        /// The variable, with the indices of the array at fault.
        path: String,
        /// The length needed.
        expected: usize,
        /// The length found.
        found: usize,
    },
}

/// What JSON value this is, for error messages.
fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(a) => format!("an array of {} elements", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

/// A Rust type that a Stan data variable converts into.
pub trait FromStanData: Sized {
    /// Converts `value`, the variable (or element) at `path`.
    ///
    /// # Errors
    /// [`StanDataError::WrongType`] or [`StanDataError::WrongLength`] naming `path`.
    fn from_stan(path: &str, value: &Value) -> Result<Self, StanDataError>;
}

impl FromStanData for f64 {
    /// A number, or `"NaN"`, `"Inf"`, `"+Inf"`, `"-Inf"` (also
    /// `"Infinity"`, as CmdStan writes them).
    fn from_stan(path: &str, value: &Value) -> Result<Self, StanDataError> {
        let wrong = || StanDataError::WrongType {
            path: path.into(),
            expected: "a real number",
            found: kind(value),
        };
        match value {
            Value::Number(n) => n.as_f64().ok_or_else(wrong),
            Value::String(s) => match s.as_str() {
                "NaN" | "nan" => Ok(f64::NAN),
                "Inf" | "+Inf" | "inf" | "Infinity" | "+Infinity" => Ok(f64::INFINITY),
                "-Inf" | "-inf" | "-Infinity" => Ok(f64::NEG_INFINITY),
                _ => Err(wrong()),
            },
            _ => Err(wrong()),
        }
    }
}

/// An integer type: the JSON number must be an integer that fits.
macro_rules! integer {
    ($($t:ty => $what:literal),*) => {$(
        impl FromStanData for $t {
            #[doc = concat!("An integer number that fits in `", stringify!($t), "`.")]
            fn from_stan(path: &str, value: &Value) -> Result<Self, StanDataError> {
                let wrong = || StanDataError::WrongType {
                    path: path.into(),
                    expected: $what,
                    found: kind(value),
                };
                let Value::Number(n) = value else { return Err(wrong()) };
                if let Some(i) = n.as_i64() {
                    return <$t>::try_from(i).map_err(|_| wrong());
                }
                if let Some(u) = n.as_u64() {
                    return <$t>::try_from(u).map_err(|_| wrong());
                }
                // An integer written with a decimal point (`3.0`) is one.
                match n.as_f64() {
                    Some(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => {
                        <$t>::try_from(x as i64).map_err(|_| wrong())
                    }
                    _ => Err(wrong()),
                }
            }
        }
    )*};
}
integer!(
    i64 => "an integer",
    i32 => "an integer in the range of i32",
    u64 => "a non-negative integer",
    u32 => "a non-negative integer in the range of u32",
    usize => "a non-negative integer"
);

impl FromStanData for bool {
    /// `0` or `1` (Stan has no booleans), or `true`/`false`.
    fn from_stan(path: &str, value: &Value) -> Result<Self, StanDataError> {
        match value {
            Value::Bool(b) => Ok(*b),
            _ => match u64::from_stan(path, value) {
                Ok(0) => Ok(false),
                Ok(1) => Ok(true),
                _ => Err(StanDataError::WrongType {
                    path: path.into(),
                    expected: "0 or 1",
                    found: kind(value),
                }),
            },
        }
    }
}

/// The elements of an array, each converted with its index in the path.
fn elements<T: FromStanData>(path: &str, value: &Value) -> Result<Vec<T>, StanDataError> {
    let Value::Array(items) = value else {
        return Err(StanDataError::WrongType {
            path: path.into(),
            expected: "an array",
            found: kind(value),
        });
    };
    items
        .iter()
        .enumerate()
        // The element's path is only formatted for an error: converting it
        // again under its own name gives the same error, named.
        .map(|(i, item)| {
            T::from_stan(path, item).or_else(|_| T::from_stan(&format!("{path}[{i}]"), item))
        })
        .collect()
}

impl<T: FromStanData> FromStanData for Vec<T> {
    /// A JSON array (of any length), element by element.
    fn from_stan(path: &str, value: &Value) -> Result<Self, StanDataError> {
        elements(path, value)
    }
}

impl<T: FromStanData, const N: usize> FromStanData for [T; N] {
    /// A JSON array of exactly `N` elements.
    fn from_stan(path: &str, value: &Value) -> Result<Self, StanDataError> {
        let items: Vec<T> = elements(path, value)?;
        let found = items.len();
        items.try_into().map_err(|_| StanDataError::WrongLength {
            path: path.into(),
            expected: N,
            found,
        })
    }
}

impl FromStanData for DVector<f64> {
    /// A JSON array of reals.
    fn from_stan(path: &str, value: &Value) -> Result<Self, StanDataError> {
        Ok(DVector::from_vec(elements(path, value)?))
    }
}

impl FromStanData for DMatrix<f64> {
    /// A JSON array of rows, each an array of reals, all of one length
    /// (Stan's layout for `matrix[N, K]`); `[]` is the `0 × 0` matrix.
    fn from_stan(path: &str, value: &Value) -> Result<Self, StanDataError> {
        let rows: Vec<Vec<f64>> = elements(path, value)?;
        let ncols = rows.first().map_or(0, Vec::len);
        for (i, row) in rows.iter().enumerate() {
            if row.len() != ncols {
                return Err(StanDataError::WrongLength {
                    path: format!("{path}[{i}]"),
                    expected: ncols,
                    found: row.len(),
                });
            }
        }
        Ok(DMatrix::from_fn(rows.len(), ncols, |i, j| rows[i][j]))
    }
}

/// A parsed Stan data file: named JSON values, converted on demand.
#[derive(Clone, Debug, PartialEq)]
pub struct StanData {
    fields: Map<String, Value>,
}

impl StanData {
    /// Parses Stan-format JSON text.
    ///
    /// # Errors
    /// [`StanDataError::Json`], or [`StanDataError::NotAnObject`].
    pub fn from_json_str(text: &str) -> Result<Self, StanDataError> {
        Self::from_value(serde_json::from_str(text)?)
    }

    /// Parses Stan-format JSON from a reader.
    ///
    /// # Errors
    /// As [`from_json_str`](StanData::from_json_str).
    pub fn from_reader<R: Read>(reader: R) -> Result<Self, StanDataError> {
        Self::from_value(serde_json::from_reader(reader)?)
    }

    /// Reads and parses the file at `path`.
    ///
    /// # Errors
    /// [`StanDataError::Io`], or as [`from_json_str`](StanData::from_json_str).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, StanDataError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| StanDataError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json_str(&text)
    }

    fn from_value(value: Value) -> Result<Self, StanDataError> {
        match value {
            Value::Object(fields) => Ok(Self { fields }),
            Value::Array(_) => Err(StanDataError::NotAnObject("an array")),
            _ => Err(StanDataError::NotAnObject("a single value")),
        }
    }

    /// The variables present.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// The variable for the Rust field `field`: the variable of that exact
    /// name, or else the one variable whose name differs from it only in
    /// case (Stan programs name sizes `N`, `K`, `J`; Rust fields are
    /// lower case). What `#[variational]`'s `from_json` reads each data
    /// field with.
    ///
    /// # Errors
    /// As [`get`](StanData::get); [`StanDataError::Ambiguous`] when two or
    /// more variables match up to case and none exactly.
    ///
    /// ```
    /// use iwhvi_core::data::StanData;
    /// let data = StanData::from_json_str(r#"{"K": 3, "y": [1.5]}"#)?;
    /// assert_eq!(data.get_field::<usize>("k")?, 3);
    /// # Ok::<(), iwhvi_core::data::StanDataError>(())
    /// ```
    pub fn get_field<T: FromStanData>(&self, field: &str) -> Result<T, StanDataError> {
        if self.fields.contains_key(field) {
            return self.get(field);
        }
        let mut matches = self
            .fields
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(field));
        match (matches.next(), matches.next()) {
            (Some((name, value)), None) => T::from_stan(name, value),
            (None, _) => Err(self.missing(field)),
            (Some((first, _)), Some((second, _))) => Err(StanDataError::Ambiguous {
                field: field.into(),
                candidates: format!("{first}, {second}"),
            }),
        }
    }

    fn missing(&self, name: &str) -> StanDataError {
        StanDataError::Missing {
            name: name.into(),
            present: self.names().collect::<Vec<_>>().join(", "),
        }
    }

    /// The variable `name`, converted to `T`.
    ///
    /// # Errors
    /// [`StanDataError::Missing`] when there is no such variable, or the
    /// conversion's error (naming the element at fault).
    pub fn get<T: FromStanData>(&self, name: &str) -> Result<T, StanDataError> {
        let value = self.fields.get(name).ok_or_else(|| self.missing(name))?;
        T::from_stan(name, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> StanData {
        StanData::from_json_str(
            r#"{"n": 2, "r": 1.5, "i": [1, 2.0, 3], "b": [0, 1], "neg": -1, "m": [[1, 2], [3]],
                "s": "text", "nan": ["NaN", "Inf", "-Infinity"], "a3": [1.0, 2.0]}"#,
        )
        .expect("valid JSON")
    }

    #[test]
    fn values_convert_and_errors_name_the_element() {
        let d = data();
        assert_eq!(d.get::<usize>("n").unwrap(), 2);
        assert_eq!(d.get::<f64>("n").unwrap(), 2.0);
        assert_eq!(d.get::<Vec<u64>>("i").unwrap(), vec![1, 2, 3]);
        assert_eq!(d.get::<Vec<bool>>("b").unwrap(), vec![false, true]);
        let nan: Vec<f64> = d.get("nan").unwrap();
        assert!(nan[0].is_nan() && nan[1] == f64::INFINITY && nan[2] == f64::NEG_INFINITY);
        let err = d.get::<u64>("neg").unwrap_err().to_string();
        assert_eq!(
            err,
            "`neg` should be a non-negative integer, but is the number -1"
        );
        let err = d.get::<Vec<u64>>("r").unwrap_err().to_string();
        assert_eq!(err, "`r` should be an array, but is the number 1.5");
        let err = d.get::<usize>("r").unwrap_err().to_string();
        assert_eq!(
            err,
            "`r` should be a non-negative integer, but is the number 1.5"
        );
        let err = d.get::<DMatrix<f64>>("m").unwrap_err().to_string();
        assert_eq!(err, "`m[1]` should have 2 elements, but has 1");
        let err = d.get::<[f64; 3]>("a3").unwrap_err().to_string();
        assert_eq!(err, "`a3` should have 3 elements, but has 2");
        let err = d.get::<Vec<f64>>("s").unwrap_err().to_string();
        assert_eq!(err, "`s` should be an array, but is the string \"text\"");
        let err = d.get::<Vec<bool>>("i").unwrap_err().to_string();
        assert_eq!(err, "`i[1]` should be 0 or 1, but is the number 2.0");
        assert!(matches!(
            StanData::from_json_str("[1, 2]"),
            Err(StanDataError::NotAnObject("an array"))
        ));
        assert!(matches!(
            StanData::from_json_str("{"),
            Err(StanDataError::Json(_))
        ));
    }
}
