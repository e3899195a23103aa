//! Cost growth of a `fit` step in the latent dimension D (issue 12's
//! "cost growth in N, M, K and D"): the non-centred hierarchical model of
//! eight schools with J schools (D = J + 2 latents: mu, tau and J
//! standardised effects), J ∈ {8, 30, 98, 314} so that D ∈ {10, 32, 100,
//! 316}, about half a decade apart.
//!
//! One iteration is a whole `fit` of `STEPS` steps under the default
//! `Engine::Auto` on one thread, so each figure is what a user's fit costs
//! per step at that D (the engine `Engine::Auto` picks changes with D: the
//! model's gradient on forward lanes up to D = 16, on the tape above).
//! Variants:
//! - `mf_elbo`: `MeanField::new(D)` on the ELBO (M = 1, K = 0);
//! - `si_M1_K16`, `si_M8_K16`: `SemiImplicit::new(D, 10)` (ten mixing
//!   dimensions) on DIWHVI with (M, K) = (1, 16) and (8, 16), the fused
//!   objective.
//!
//! Data: sigma_j = 10 + 5·(j mod 3), y_j = 8·sin(j), fixed (no RNG).
//!
//! ```sh
//! cargo bench -p iwhvi-benches --bench dim_sweep --no-run
//! taskset -c 1 $(ls -t target/release/deps/dim_sweep-* | grep -v '\.d$' | head -1) --bench
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use iwhvi::fit::{FitConfig, fit};
use iwhvi::gradient::Parallelism;
use iwhvi::guide::{HierarchicalGuide, MeanField, SemiImplicit};
use iwhvi::objective::Diwhvi;
use iwhvi::optim::Adam;
use iwhvi::variational;

/// Eight schools, non-centred, with any number of schools.
#[variational]
struct Schools {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfCauchy(5.0))]
    tau: f64,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    theta_tilde: Vec<f64>,
    #[observe(Normal(mu + tau * theta_tilde[j], sigma[j]), for j)]
    y: Vec<f64>,
}

/// Steps per timed fit.
const STEPS: usize = 50;
/// Schools per model: D = J + 2.
const SCHOOLS: [usize; 4] = [8, 30, 98, 314];

fn schools(j: usize) -> Schools {
    let sigma = (0..j).map(|i| 10.0 + 5.0 * (i % 3) as f64).collect();
    let y = (0..j).map(|i| 8.0 * (i as f64).sin()).collect();
    Schools::new(sigma, y).expect("valid data")
}

fn time_fit<G: HierarchicalGuide>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    label: &str,
    model: &Schools,
    guide: &G,
    objective: Diwhvi,
) {
    let d = guide.latent_dim();
    let config = FitConfig::new(objective)
        .max_steps(STEPS)
        .seed(1)
        .parallelism(Parallelism::SingleThread)
        .progress(false);
    group.bench_function(BenchmarkId::new(label, format!("D{d}")), |b| {
        b.iter(|| black_box(fit(model, guide, Adam::new(0.01), &config).expect("fits")))
    });
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("dim_sweep");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for j in SCHOOLS {
        let model = schools(j);
        let d = j + 2;
        time_fit(
            &mut group,
            "mf_elbo",
            &model,
            &MeanField::new(d),
            Diwhvi::elbo(),
        );
        let si = SemiImplicit::new(d, 10);
        time_fit(&mut group, "si_M1_K16", &model, &si, Diwhvi::new(1, 16));
        time_fit(&mut group, "si_M8_K16", &model, &si, Diwhvi::new(8, 16));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
