//! Steps of the `#[variational]` VAE of `vae_digits`
//! (`iwhvi_examples::macro_vae`, 1,500 images), for CPU time by
//! `/usr/bin/time`: the difference between two step counts is the cost of
//! the extra steps, without the loading and setup.
//!
//! ```sh
//! cargo bench --no-run --bench macro_steps
//! /usr/bin/time -f %U+%S taskset -c 1 target/release/deps/macro_steps-HASH hierarchical 4
//! /usr/bin/time -f %U+%S taskset -c 1 target/release/deps/macro_steps-HASH hierarchical 1
//! # an epoch of minibatches (15 steps of 100): 30 against 15 steps
//! /usr/bin/time -f %U+%S taskset -c 1 target/release/deps/macro_steps-HASH batched 30
//! /usr/bin/time -f %U+%S taskset -c 1 target/release/deps/macro_steps-HASH batched 15
//! # the closing full-data bound: with it against without
//! /usr/bin/time -f %U+%S taskset -c 1 target/release/deps/macro_steps-HASH batched 15 full-bound
//! # minibatch steps of the hierarchical encoder: 20 against 10 steps
//! /usr/bin/time -f %U+%S taskset -c 1 target/release/deps/macro_steps-HASH hierarchical-batched 20
//! /usr/bin/time -f %U+%S taskset -c 1 target/release/deps/macro_steps-HASH hierarchical-batched 10
//! ```
//!
//! Arguments: `gaussian` (the ELBO, every image each step),
//! `hierarchical` (DIWHVI, `M = 5`, `K = 10`, every image), `batched`
//! (the ELBO, minibatches of 100) or `hierarchical-batched` (DIWHVI,
//! `M = 5`, `K = 10`, minibatches of 100: the per-point bound), the
//! minibatch ones without the closing full-data bound unless `full-bound`
//! follows the step count, then the number of steps.

use iwhvi::objective::Diwhvi;
use iwhvi_examples::digits;
use iwhvi_examples::macro_vae::{self, MacroEncoder, MacroTraining};

const USAGE: &str =
    "usage: macro_steps gaussian|hierarchical|batched|hierarchical-batched STEPS [full-bound]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (encoder, objective, batch_size) = match args.first().map(String::as_str) {
        Some("gaussian") => (MacroEncoder::Gaussian, Diwhvi::elbo(), None),
        Some("hierarchical") => (MacroEncoder::Hierarchical, Diwhvi::new(5, 10), None),
        Some("batched") => (MacroEncoder::Gaussian, Diwhvi::elbo(), Some(digits::BATCH)),
        Some("hierarchical-batched") => (
            MacroEncoder::Hierarchical,
            Diwhvi::new(5, 10),
            Some(digits::BATCH),
        ),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let Some(steps) = args.get(1).and_then(|s| s.parse().ok()) else {
        eprintln!("{USAGE} (STEPS a whole number)");
        std::process::exit(2);
    };
    let full_bound = match args.get(2).map(String::as_str) {
        None => false,
        Some("full-bound") => true,
        Some(_) => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let data = digits::load().expect("../shared/data/digits");
    let settings = MacroTraining {
        encoder,
        objective,
        steps,
        batch_size,
        learning_rate: 1e-3,
        seed: 2,
    };
    let trained = macro_vae::train_configured(&data.train.pixels, 1, settings, |c| {
        c.full_bound(full_bound)
    })
    .expect("the steps");
    println!(
        "{} steps, last bound {:?}, full bound {:?}",
        trained.fit.steps,
        trained.fit.trace.last(),
        trained.fit.full_bound.map(|e| e.mean)
    );
}
