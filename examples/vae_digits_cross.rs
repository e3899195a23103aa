//! Why `vae_digits`' `#[variational]` hierarchical row trails the
//! runtime's (issue 16): both VAEs trained as `vae_digits` trains them
//! (DIWHVI `M = 5`, `K = 10`, minibatches of 100, Adam 10⁻³, 50 epochs)
//! over several seeds, each pair evaluated by both estimators of
//! `log p(x)` on the test images (DIWHVI, `M = 1000`, `K = 100`): the
//! runtime's `iwhvi::amortised::log_likelihood` and the macro's
//! `macro_vae::hierarchical_log_likelihood`, the parameters carried
//! across by `macro_vae::hierarchical_to_runtime` and
//! `runtime_to_hierarchical`.
//!
//! Seed `s` (`0, 1, …`) starts both fits from initialisation seed
//! `10 s + 1` and runs them with seed `10 s + 2` (`s = 0` is
//! `vae_digits`' own run). Each line: the final training bounds (last 10
//! epochs or steps), the test log-likelihoods by the runtime's estimator
//! and their paired difference; with `--cross`, the macro estimator's
//! figure for each set of parameters too, as a paired difference from
//! the runtime estimator's (slow: about 100 s a set). The summary: the
//! mean over seeds, its spread and standard error.
//!
//! ```sh
//! cargo run --release --example vae_digits_cross -- --seeds 10
//! cargo run --release --example vae_digits_cross -- --seeds 1 --cross
//! ```

use iwhvi::amortised::{Estimate, TrainSettings, VaeBound, log_likelihood, train};
use iwhvi::objective::Diwhvi;
use rand::SeedableRng;
use rand::rngs::StdRng;

use iwhvi_examples::digits::{self, BATCH, Digits};
use iwhvi_examples::macro_vae::{self, MacroEncoder, MacroTraining};

/// Command-line settings.
struct Args {
    seeds: usize,
    epochs: usize,
    cross: bool,
}

fn args() -> Args {
    let mut parsed = Args {
        seeds: 1,
        epochs: 50,
        cross: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seeds" => parsed.seeds = iwhvi_examples::positive_arg(&mut it, "--seeds"),
            "--epochs" => parsed.epochs = iwhvi_examples::positive_arg(&mut it, "--epochs"),
            "--cross" => parsed.cross = true,
            other => {
                eprintln!(
                    "unknown argument {other:?}: the options are --seeds N, --epochs N, --cross"
                );
                std::process::exit(2);
            }
        }
    }
    parsed
}

/// The test evaluation of `vae_digits`' hierarchical rows.
const EVAL: VaeBound = VaeBound {
    outer: 1000,
    inner: 100,
};

/// `mean ± standard error` of the pointwise differences `a − b`.
fn paired(a: &[f64], b: &[f64]) -> Estimate {
    Estimate::from_points(a.iter().zip(b).map(|(x, y)| x - y).collect())
}

/// The mean of the last ten entries.
fn tail_mean(values: &[f64]) -> f64 {
    let tail = &values[values.len().saturating_sub(10)..];
    tail.iter().sum::<f64>() / tail.len() as f64
}

/// The runtime's fit (as `vae_digits`' `hierarchical_diwhvi` row): its
/// parameters and final training bound.
fn runtime_fit(data: &Digits, epochs: usize, init: u64, seed: u64) -> (Vec<f64>, f64) {
    let vae = macro_vae::runtime_hierarchical_vae();
    let mut params = vae.init_params(&mut StdRng::seed_from_u64(init));
    vae.init_decoder_bias(&mut params, &data.train.pixels)
        .expect("binary data");
    let settings = TrainSettings {
        epochs,
        batch_size: BATCH,
        bound: VaeBound {
            outer: 5,
            inner: 10,
        },
        learning_rate: 1e-3,
        seed,
    };
    let report = train(&vae, &mut params, &data.train.pixels, &settings).expect("training");
    (params, tail_mean(&report.epoch_bounds))
}

/// The macro's fit (as `vae_digits`' `macro_hierarchical_diwhvi` row):
/// its parameters in the runtime's layout and final training bound.
fn macro_fit(data: &Digits, epochs: usize, init: u64, seed: u64) -> (Vec<f64>, f64) {
    let settings = MacroTraining {
        encoder: MacroEncoder::Hierarchical,
        objective: Diwhvi::new(5, 10),
        steps: epochs * data.train.len().div_ceil(BATCH),
        batch_size: Some(BATCH),
        learning_rate: 1e-3,
        seed,
    };
    let trained =
        macro_vae::train_configured(&data.train.pixels, init, settings, |c| c.full_bound(false))
            .expect("training");
    let bound = tail_mean(&trained.fit.trace) / data.train.len() as f64;
    let params =
        macro_vae::hierarchical_to_runtime(&trained.params).expect("the macro VAE's parameters");
    (params, bound)
}

/// The macro estimator's figure minus the runtime's (`runtime`, per test
/// image) on the same parameters (the runtime's layout).
fn cross(data: &Digits, params: &[f64], runtime: &[f64]) -> Estimate {
    let mapped = macro_vae::runtime_to_hierarchical(params).expect("the runtime VAE's parameters");
    let per_image = macro_vae::hierarchical_log_likelihood(
        &data.test.pixels,
        &mapped,
        EVAL.outer,
        EVAL.inner,
        3,
    )
    .expect("evaluation");
    paired(&per_image, runtime)
}

fn summary(name: &str, values: &[f64]) {
    let e = Estimate::from_points(values.to_vec());
    let sd = e.standard_error * (values.len() as f64).sqrt();
    println!(
        "{name}: mean {:.3}, sd over seeds {sd:.3}, standard error {:.3}",
        e.mean, e.standard_error
    );
}

fn main() {
    let args = args();
    let data = match digits::load() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let vae = macro_vae::runtime_hierarchical_vae();
    let (mut runtime_tests, mut macro_tests, mut differences) = (vec![], vec![], vec![]);
    println!("seed | train bound runtime, macro | test runtime, macro | macro − runtime (paired)");
    for s in 0..args.seeds as u64 {
        let (init, seed) = (10 * s + 1, 10 * s + 2);
        let (rp, rb) = runtime_fit(&data, args.epochs, init, seed);
        let (mp, mb) = macro_fit(&data, args.epochs, init, seed);
        let r = log_likelihood(&vae, &rp, &data.test.pixels, EVAL, 3).expect("evaluation");
        let m = log_likelihood(&vae, &mp, &data.test.pixels, EVAL, 3).expect("evaluation");
        let d = paired(&m.per_point, &r.per_point);
        println!(
            "{s} | {rb:.3}, {mb:.3} | {:.3} ± {:.3}, {:.3} ± {:.3} | {:+.3} ± {:.3}",
            r.mean, r.standard_error, m.mean, m.standard_error, d.mean, d.standard_error
        );
        if args.cross {
            for (name, params, by_runtime) in [("runtime", &rp, &r), ("macro", &mp, &m)] {
                let c = cross(&data, params, &by_runtime.per_point);
                println!(
                    "  {name}-trained: macro estimator − runtime estimator {:+.3} ± {:.3}",
                    c.mean, c.standard_error
                );
            }
        }
        runtime_tests.push(r.mean);
        macro_tests.push(m.mean);
        differences.push(d.mean);
    }
    if args.seeds > 1 {
        summary("runtime test log p(x)", &runtime_tests);
        summary("macro test log p(x)", &macro_tests);
        summary("macro − runtime", &differences);
    }
}
