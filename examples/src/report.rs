//! What every example prints: a readable summary on stdout, or, with
//! `--json` on the command line, one JSON object holding the same figures
//! (and nothing else on stdout), for scripts and checks.
//!
//! ```ignore
//! let mut report = Report::from_args();
//! report.line("eight schools");
//! report.figure("log_evidence", -31.30);
//! report.finish();
//! ```

use serde_json::{Map, Value};

/// The figures of one example run, and where its text goes.
pub struct Report {
    json: bool,
    figures: Map<String, Value>,
}

impl Report {
    /// `--json` among the arguments selects JSON output; any other
    /// argument is an error naming it.
    pub fn from_args() -> Self {
        let mut json = false;
        for arg in std::env::args().skip(1) {
            match arg.as_str() {
                "--json" => json = true,
                other => {
                    eprintln!("unknown argument {other:?}: the only option is --json");
                    std::process::exit(2);
                }
            }
        }
        Report {
            json,
            figures: Map::new(),
        }
    }

    /// A report printing JSON when `json` (for examples that parse
    /// their own arguments).
    pub fn new(json: bool) -> Self {
        Report {
            json,
            figures: Map::new(),
        }
    }

    /// True when the run prints JSON (so text output is suppressed).
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints one line of the readable summary (nothing with `--json`).
    pub fn line(&self, text: impl std::fmt::Display) {
        if !self.json {
            println!("{text}");
        }
    }

    /// Records a figure under `key` (a path of keys is written as nested
    /// objects: `figure("mean_field.bound", ..)`).
    pub fn figure(&mut self, key: &str, value: impl serde::Serialize) {
        let value = serde_json::to_value(value).expect("figures are plain data");
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().expect("a non-empty key");
        let mut map = &mut self.figures;
        for part in parts {
            map = map
                .entry(part.to_string())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("a key path does not pass through a figure");
        }
        map.insert(last.to_string(), value);
    }

    /// Prints the JSON object when `--json` was given.
    pub fn finish(self) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&Value::Object(self.figures))
                    .expect("figures serialize")
            );
        }
    }
}
