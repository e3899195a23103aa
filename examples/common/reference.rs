//! posteriordb's reference posteriors (NUTS, 10,000 draws) as the
//! examples print them, read from `../shared/posteriordb` beside the
//! checkout.

/// The reference (mean, sd) of each named parameter of `posterior`
/// (posteriordb's names, 1-based: `theta[1]`), or `None` when
/// `../shared` is not there.
pub fn posteriordb(posterior: &str, names: &[&str]) -> Option<Vec<(f64, f64)>> {
    let path = format!(
        "{}/../shared/posteriordb/{posterior}/reference.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    names
        .iter()
        .map(|name| {
            let p = &json["parameters"][*name];
            Some((p["mean"].as_f64()?, p["sd"].as_f64()?))
        })
        .collect()
}
