//! The Pareto smoothed importance sampling diagnostic.

/// `k̂ <` 0.5: **good**, the importance estimates are reliable (the PSIS
/// paper's thresholds; the whole reading is in [`pareto_k_hat`]).
///
/// ```
/// use iwhvi_core::posterior::{PARETO_K_GOOD, PARETO_K_OK};
/// assert!(PARETO_K_GOOD < PARETO_K_OK);
/// ```
pub const PARETO_K_GOOD: f64 = 0.5;

/// `k̂` from [`PARETO_K_GOOD`] (0.5) to 0.7: **ok**, usable but slow to
/// converge; above 0.7: **unreliable** (see [`pareto_k_hat`]).
///
/// ```
/// use iwhvi_core::posterior::PARETO_K_OK;
/// let verdict = |k: f64| if k > PARETO_K_OK { "unreliable" } else { "usable" };
/// assert_eq!(verdict(0.86), "unreliable");
/// ```
pub const PARETO_K_OK: f64 = 0.7;

/// The Pareto smoothed importance sampling diagnostic `k̂` of log
/// importance weights (Vehtari, Simpson, Gelman, Yao & Gabry, "Pareto
/// smoothed importance sampling"): a generalized Pareto distribution fitted
/// by Zhang & Stephens' empirical Bayes method to the largest
/// `min(S/5, 3√S)` weights, with the weakly informative prior on `k`.
/// Reading it (the thresholds of the PSIS paper, as in ArviZ and the
/// `loo` package; this is the one statement of them, which every other
/// mention follows): `k̂ <` [`PARETO_K_GOOD`] (0.5), **good**: the
/// importance estimates are reliable; 0.5 to [`PARETO_K_OK`] (0.7),
/// **ok**: usable but slow to converge (use more draws); above 0.7,
/// **unreliable**: improve the guide before trusting them. `+∞` when the
/// tail is too short to fit, and when a log weight is NaN or `+∞` (there is
/// then no estimate to trust; a weight of `−∞`, a draw outside the
/// support, is zero and counts as such).
///
/// ```
/// use iwhvi_core::posterior::{PARETO_K_GOOD, pareto_k_hat};
/// // Bounded weights (e^x for x evenly in [0, 1)): a short tail.
/// let log_weights: Vec<f64> = (0..1000).map(|i| i as f64 / 1000.0).collect();
/// assert!(pareto_k_hat(&log_weights) < PARETO_K_GOOD);
/// // A NaN weight: no estimate, read as unreliable.
/// let mut bad = log_weights.clone();
/// bad[3] = f64::NAN;
/// assert_eq!(pareto_k_hat(&bad), f64::INFINITY);
/// ```
pub fn pareto_k_hat(log_weights: &[f64]) -> f64 {
    let n = log_weights.len();
    let tail_len = ((0.2 * n as f64).min(3.0 * (n as f64).sqrt())).ceil() as usize;
    if n < 2
        || tail_len + 1 > n
        || log_weights
            .iter()
            .any(|w| w.is_nan() || *w == f64::INFINITY)
    {
        return f64::INFINITY;
    }
    let max = log_weights
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let mut sorted: Vec<f64> = log_weights.iter().map(|w| w - max).collect();
    sorted.sort_by(f64::total_cmp);
    let cutoff = sorted[n - tail_len - 1].max(f64::MIN_POSITIVE.ln());
    let exp_cutoff = cutoff.exp();
    let tail: Vec<f64> = sorted
        .iter()
        .filter(|&&x| x > cutoff)
        .map(|x| x.exp() - exp_cutoff)
        .collect();
    if tail.len() <= 4 {
        return f64::INFINITY;
    }
    generalized_pareto_fit(&tail).0
}

/// Zhang & Stephens (2009) empirical Bayes fit of a generalized Pareto
/// distribution to sorted positive exceedances; returns `(k, σ)` with the
/// prior on `k` of Vehtari et al. (weight 10 towards 0.5).
fn generalized_pareto_fit(x: &[f64]) -> (f64, f64) {
    let n = x.len();
    let nf = n as f64;
    let m = 30 + (nf.sqrt()) as usize;
    let quartile = x[((nf / 4.0 + 0.5) as usize).saturating_sub(1)];
    let last = x[n - 1];
    let thetas: Vec<f64> = (1..=m)
        .map(|j| (1.0 - (m as f64 / (j as f64 - 0.5)).sqrt()) / (3.0 * quartile) + 1.0 / last)
        .collect();
    let profile: Vec<f64> = thetas
        .iter()
        .map(|&b| {
            let k = x.iter().map(|&xi| (-b * xi).ln_1p()).sum::<f64>() / nf;
            nf * ((-b / k).ln() - k - 1.0)
        })
        .collect();
    let mut weights: Vec<f64> = profile
        .iter()
        .map(|&li| 1.0 / profile.iter().map(|&lj| (lj - li).exp()).sum::<f64>())
        .collect();
    for w in &mut weights {
        if *w < 10.0 * f64::EPSILON {
            *w = 0.0;
        }
    }
    let total: f64 = weights.iter().sum();
    let b_post: f64 = thetas
        .iter()
        .zip(&weights)
        .map(|(b, w)| b * w / total)
        .sum();
    let k = x.iter().map(|&xi| (-b_post * xi).ln_1p()).sum::<f64>() / nf;
    let sigma = -k / b_post;
    ((nf * k + 10.0 * 0.5) / (nf + 10.0), sigma)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    #[test]
    fn k_hat_separates_light_from_heavy_tails() {
        let mut rng = StdRng::seed_from_u64(1);
        // Light tails: log-weights of a normal (weights lognormal with sd 0.3).
        let light: Vec<f64> = (0..4000)
            .map(|_| 0.3 * rng.sample::<f64, _>(rand_distr::StandardNormal))
            .collect();
        // Pareto weights with tail index 1/k = 1/0.9: log w = -0.9 ln U.
        let heavy: Vec<f64> = (0..4000).map(|_| -0.9 * rng.random::<f64>().ln()).collect();
        let (k_light, k_heavy) = (pareto_k_hat(&light), pareto_k_hat(&heavy));
        assert!(k_light < 0.3, "k̂ of light tails {k_light}");
        assert!(
            (k_heavy - 0.9).abs() < 0.15,
            "k̂ of Pareto(k = 0.9) weights {k_heavy}"
        );
    }
}
