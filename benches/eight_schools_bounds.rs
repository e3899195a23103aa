//! The bounds DIWHVI reaches on eight schools after 5000 Adam steps, beside
//! the JAX peer's (`../shared/peers/RESULTS.md`, float64 table), and the
//! peak memory of each training run.
//!
//! Each (M, K) setting trains in its own process so that its peak RSS
//! (`VmHWM`) is its own. Same model, guide (affine semi-implicit, d = 10,
//! 240 parameters, W ~ 0.1 N(0, 1), the rest 0), optimizer (Adam, lr 0.01)
//! and evaluation as the peer: 200 bound draws at M = 1, K = 256 and at
//! the training (M, K); moments from 100,000 guide draws.
//!
//! ```sh
//! cargo bench --bench eight_schools_bounds                    # every setting, both engines
//! cargo bench --bench eight_schools_bounds -- 8 64 reverse    # one setting, one JSON line
//! ```

use std::process::Command;
use std::time::Instant;

use iwhvi::fit::{Engine, FitConfig, fit};
use iwhvi::guide::SemiImplicit;
use iwhvi::objective::{Diwhvi, estimate_bound};
use iwhvi::optim::Adam;
use iwhvi::posterior::Posterior;
use rand::SeedableRng;
use rand::rngs::StdRng;

use iwhvi_examples::hand_written::EightSchools;

const SETTINGS: [(usize, usize); 6] = [(1, 0), (1, 8), (1, 64), (8, 0), (8, 8), (8, 64)];

/// Peak resident set size of this process, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (
        mean,
        (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt(),
    )
}

fn run(m: usize, k: usize, engine: Engine) {
    let guide = SemiImplicit::new(10, 10);
    let config = FitConfig::new(Diwhvi::new(m, k))
        .max_steps(5000)
        .seed(0)
        .progress(false)
        .engine(engine);
    let started = Instant::now();
    let fitted = fit(&EightSchools, &guide, Adam::new(0.01), &config).expect("the fit runs");
    let train_s = started.elapsed().as_secs_f64();
    let mut rng = StdRng::seed_from_u64(10);
    let at_256 = estimate_bound(
        &EightSchools,
        &guide,
        &fitted.params,
        Diwhvi::new(1, 256),
        200,
        &mut rng,
    )
    .expect("the fitted parameters fit the guide");
    let at_train = estimate_bound(
        &EightSchools,
        &guide,
        &fitted.params,
        Diwhvi::new(m, k),
        200,
        &mut rng,
    )
    .expect("the fitted parameters fit the guide");
    let last_500 = fitted.trace[fitted.trace.len() - 500..].iter().sum::<f64>() / 500.0;
    let draws = Posterior::new(&EightSchools, &guide, &fitted.params)
        .expect("the fitted parameters fit the guide")
        .sample(100_000, &mut rng)
        .expect("100,000 draws fit in memory");
    let (mu, tau) = (draws.column("mu").unwrap(), draws.column("tau").unwrap());
    let theta0: Vec<f64> = draws
        .column("theta_tilde[0]")
        .unwrap()
        .iter()
        .zip(mu.iter().zip(&tau))
        .map(|(t, (m, s))| m + s * t)
        .collect();
    let ((mu_m, mu_s), (tau_m, tau_s), (th_m, th_s)) =
        (mean_sd(&mu), mean_sd(&tau), mean_sd(&theta0));
    println!(
        "{{\"engine\": \"{engine:?}\", \"M\": {m}, \"K\": {k}, \"train_s\": {train_s:.3}, \"bound_M1_K256_mean\": {:.4}, \"bound_M1_K256_se\": {:.4}, \
         \"bound_train_mean\": {:.4}, \"bound_train_se\": {:.4}, \"train_last500\": {last_500:.4}, \
         \"mu\": [{mu_m:.3}, {mu_s:.3}], \"tau\": [{tau_m:.3}, {tau_s:.3}], \"theta0\": [{th_m:.3}, {th_s:.3}], \
         \"peak_rss_mib\": {:.1}, \"rejected_steps\": {}}}",
        at_256.mean,
        at_256.std_error,
        at_train.mean,
        at_train.std_error,
        peak_rss_mib(),
        fitted.rejected_steps,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let numbers: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let engine = if args.iter().any(|a| a == "tape") {
        Engine::Tape
    } else {
        Engine::Forward
    };
    if let [m, k] = numbers[..] {
        return run(m, k, engine);
    }
    let exe = std::env::current_exe().expect("own path");
    for engine in ["forward", "tape"] {
        for (m, k) in SETTINGS {
            let out = Command::new(&exe)
                .args([m.to_string(), k.to_string(), engine.to_string()])
                .output()
                .expect("run a setting");
            print!("{}", String::from_utf8_lossy(&out.stdout));
            if !out.status.success() {
                eprint!("{}", String::from_utf8_lossy(&out.stderr));
                eprintln!("setting M = {m}, K = {k} ({engine}) failed: {}", out.status);
            }
        }
    }
}
