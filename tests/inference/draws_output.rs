//! Draws out: CmdStan CSV written and read back bit for bit, summaries'
//! standard errors and correlations against known values, and (when
//! Python's ArviZ is installed) ArviZ reading the file to the same means.

use std::process::Command;

use iwhvi::guide::{HierarchicalGuide, MeanField};
use iwhvi::model::Latents;
use iwhvi::posterior::{CmdStanCsvError, Draws, Posterior};
use iwhvi::variational;
use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::StandardNormal;

/// A scalar, a positive scalar and a vector latent.
#[variational]
struct Groups {
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfNormal(2.0))]
    tau: f64,
    #[latent(Normal(mu, tau), len = y.len())]
    theta: Vec<f64>,
    #[observe(Normal(theta[j], 1.0), for j)]
    y: Vec<f64>,
}

fn draws() -> Draws {
    let model = Groups::new(vec![1.0, -0.5, 2.0]).expect("valid data");
    let guide = MeanField::new(5);
    let mut rng = StdRng::seed_from_u64(3);
    let params = guide.init_params(&mut rng);
    let posterior = Posterior::new(&model, &guide, &params).expect("parameters fit the guide");
    posterior.sample(2000, &mut rng).unwrap()
}

#[test]
fn cmdstan_csv_round_trips_bit_for_bit() {
    let draws = draws();
    let mut csv = Vec::new();
    draws.write_cmdstan_csv(&mut csv).expect("finite draws");
    let text = String::from_utf8(csv).expect("UTF-8");
    let header = text
        .lines()
        .find(|l| !l.starts_with('#'))
        .expect("a header");
    assert_eq!(header, "lp__,mu,tau,theta.1,theta.2,theta.3");
    let back = Draws::read_cmdstan_csv(text.as_bytes()).expect("the file we wrote");
    assert_eq!(back.names(), draws.names());
    assert_eq!(back.len(), 2000);
    for i in 0..draws.len() {
        let (a, b): (Vec<u64>, Vec<u64>) = (
            draws.row(i).iter().map(|v| v.to_bits()).collect(),
            back.row(i).iter().map(|v| v.to_bits()).collect(),
        );
        assert_eq!(a, b, "draw {i}");
        assert_eq!(back.latents(i), draws.latents(i));
    }
}

#[test]
fn a_non_finite_draw_is_refused_at_write_time() {
    let rows = [1.0, f64::NAN].map(|x| Latents::from_pairs([("x".to_string(), vec![x])]));
    let err = Draws::from_latents(&rows)
        .write_cmdstan_csv(Vec::new())
        .expect_err("NaN cannot be written");
    assert!(matches!(err, CmdStanCsvError::NonFinite { draw: 1, ref name, .. } if name == "x"));
}

#[test]
fn correlation_and_standard_errors_match_known_values() {
    // x ~ N(0, 1), y = x + e with e ~ N(0, 1): corr(x, y) = 1/√2, sd(y) = √2.
    let mut rng = StdRng::seed_from_u64(11);
    let n = 40_000;
    let rows: Vec<Latents> = (0..n)
        .map(|_| {
            let x: f64 = rng.sample(StandardNormal);
            let e: f64 = rng.sample(StandardNormal);
            Latents::from_pairs([("x".to_string(), vec![x]), ("y".to_string(), vec![x + e])])
        })
        .collect();
    let draws = Draws::from_latents(&rows);
    let corr = draws.correlation();
    // The sampling sd of a correlation near 0.7 at n = 40,000 is about 0.0026.
    assert!(
        (corr[(0, 1)] - 0.5f64.sqrt()).abs() < 0.01,
        "{}",
        corr[(0, 1)]
    );
    assert_eq!(corr[(0, 1)], corr[(1, 0)]);
    let summary = draws.summary();
    let y = summary.get("y").expect("y");
    assert!((y.sd - 2f64.sqrt()).abs() < 0.03);
    assert_eq!(y.mcse_mean, y.sd / (n as f64).sqrt());
    // Too few draws: no sd, no standard error, rather than a plausible 0.
    let one = Draws::from_latents(&rows[..1]).summary();
    assert!(one.rows[0].sd.is_nan() && one.rows[0].mcse_mean.is_nan());
}

/// The Python with ArviZ: `IWHVI_ARVIZ_PYTHON`, else `python3`.
fn arviz_python() -> Option<String> {
    let python = std::env::var("IWHVI_ARVIZ_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import arviz"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(python)
}

#[test]
fn arviz_reads_the_file_to_the_same_means() {
    let Some(python) = arviz_python() else {
        eprintln!("skipped: no Python with ArviZ (set IWHVI_ARVIZ_PYTHON to one)");
        return;
    };
    let draws = draws();
    let path = std::env::temp_dir().join(format!("iwhvi-arviz-{}.csv", std::process::id()));
    draws.save_cmdstan_csv(&path).expect("written");
    let script = r#"
import json, sys
import arviz as az
idata = az.from_cmdstan(posterior=sys.argv[1])
post = idata.posterior
out = {}
for name in post.data_vars:
    values = post[name].values  # (chain, draw, ...)
    mean = values.reshape(values.shape[0] * values.shape[1], -1).mean(axis=0)
    out[name] = [float(m) for m in mean]
print(json.dumps(out))
"#;
    let output = Command::new(&python)
        .args(["-c", script, path.to_str().expect("UTF-8 path")])
        .output()
        .expect("python runs");
    std::fs::remove_file(&path).ok();
    assert!(
        output.status.success(),
        "ArviZ failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let means: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the script prints JSON");
    let summary = draws.summary();
    for (name, elements) in [
        ("mu", vec!["mu"]),
        ("tau", vec!["tau"]),
        ("theta", vec!["theta[0]", "theta[1]", "theta[2]"]),
    ] {
        let got = means[name]
            .as_array()
            .unwrap_or_else(|| panic!("ArviZ has no `{name}`: {means}"));
        assert_eq!(got.len(), elements.len(), "{name}");
        for (g, element) in got.iter().zip(elements) {
            let ours = summary.get(element).expect("an element").mean;
            let theirs = g.as_f64().expect("a number");
            assert!(
                (ours - theirs).abs() <= 1e-12 * ours.abs().max(1.0),
                "{element}: {ours} vs {theirs}"
            );
        }
    }
}

#[test]
fn resampled_draws_report_the_weights_effective_sample_size() {
    let model = Groups::new(vec![1.0, -0.5, 2.0]).expect("valid data");
    let guide = MeanField::new(5);
    let mut rng = StdRng::seed_from_u64(5);
    let params = guide.init_params(&mut rng);
    let posterior = Posterior::new(&model, &guide, &params).expect("parameters fit the guide");
    let resampled = posterior
        .sample_importance_resampled(2000, 2000, 4, &mut rng)
        .expect("finite weights");
    let summary = resampled.summary();
    let ess = resampled.effective_sample_size;
    assert!(
        ess > 1.0 && ess < 2000.0,
        "an untrained guide has unequal weights: {ess}"
    );
    for row in &summary.rows {
        assert_eq!(row.ess, ess);
        assert_eq!(row.mcse_mean, row.sd / ess.sqrt());
    }
    // The plain summary of the same draws counts every draw.
    assert_eq!(resampled.draws.summary().rows[0].ess, 2000.0);
}
