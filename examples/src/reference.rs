//! posteriordb's reference posteriors (NUTS, 10,000 draws) as the
//! examples print them, read from `../shared/posteriordb` beside the
//! checkout.

/// The reference (mean, sd) of each named parameter of `posterior`
/// (posteriordb's names, 1-based: `theta[1]`), or `None` when
/// `../shared` is not there.
pub fn posteriordb(posterior: &str, names: &[&str]) -> Option<Vec<(f64, f64)>> {
    let path = format!(
        "{}/../shared/posteriordb/{posterior}/reference.json",
        crate::repo_root().display()
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

/// Prints one row per label: the guide's (mean, sd), the importance-
/// resampled (mean, sd), and the reference's when there is one.
pub fn print_comparison(
    labels: &[&str],
    guide: &[(f64, f64)],
    reweighted: &[(f64, f64)],
    reference: Option<&[(f64, f64)]>,
) {
    println!(
        "  {:<10} {:>17} {:>22} {:>17}",
        "", "guide mean / sd", "reweighted mean / sd", "NUTS mean / sd"
    );
    for (i, label) in labels.iter().enumerate() {
        let nuts = reference.map_or("(no ../shared)".to_string(), |r| {
            format!("{:.2} / {:.2}", r[i].0, r[i].1)
        });
        println!(
            "  {label:<10} {:>8.2} / {:<6.2} {:>11.2} / {:<8.2} {nuts:>17}",
            guide[i].0, guide[i].1, reweighted[i].0, reweighted[i].1
        );
    }
}
