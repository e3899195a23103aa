//! Full-data steps of the `#[variational]` VAE of `vae_digits`
//! (`iwhvi_examples::macro_vae`, 1,500 images), for CPU time by
//! `/usr/bin/time`: the difference between two step counts is the cost of
//! the extra steps, without the loading and setup.
//!
//! ```sh
//! cargo bench --no-run --bench macro_steps
//! /usr/bin/time -f %U+%S taskset -c 1 target/release/deps/macro_steps-HASH hierarchical 4
//! /usr/bin/time -f %U+%S taskset -c 1 target/release/deps/macro_steps-HASH hierarchical 1
//! ```
//!
//! Arguments: `gaussian` (the ELBO) or `hierarchical` (DIWHVI, `M = 5`,
//! `K = 10`), then the number of steps.

use iwhvi::objective::Diwhvi;
use iwhvi_examples::digits;
use iwhvi_examples::macro_vae::{self, MacroEncoder, MacroTraining};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (encoder, objective) = match args.first().map(String::as_str) {
        Some("gaussian") => (MacroEncoder::Gaussian, Diwhvi::elbo()),
        Some("hierarchical") => (MacroEncoder::Hierarchical, Diwhvi::new(5, 10)),
        _ => {
            eprintln!("usage: macro_steps gaussian|hierarchical STEPS");
            std::process::exit(2);
        }
    };
    let Some(steps) = args.get(1).and_then(|s| s.parse().ok()) else {
        eprintln!("usage: macro_steps gaussian|hierarchical STEPS (a whole number)");
        std::process::exit(2);
    };
    let data = digits::load().expect("../shared/data/digits");
    let settings = MacroTraining {
        encoder,
        objective,
        steps,
        batch_size: None,
        learning_rate: 1e-3,
        seed: 2,
    };
    let trained = macro_vae::train(&data.train.pixels, 1, settings).expect("the steps");
    println!(
        "{} steps, last bound {:?}",
        trained.fit.steps,
        trained.fit.trace.last()
    );
}
