//! `fit`'s memory budget over the step's noise: the guide's and the
//! model's semi-implicit prior noise together, as every other caller of
//! the bound counts them ([`StepNoise::try_for_model`]).

use super::{FitConfig, FitError, fit};
use crate::Scalar;
use crate::guide::MeanField;
use crate::input::{InputError, bound_memory};
use crate::model::{LatentSpec, Layout, Model};
use crate::objective::{Diwhvi, StepNoise};
use crate::optim::Adam;
use crate::transforms::Transform;

/// `z ~ N(0, I₂)`, declaring `noise` prior-noise values per outer sample
/// (its log joint ignores them).
struct WithPriorNoise {
    noise: usize,
}

impl Model for WithPriorNoise {
    fn layout(&self) -> Layout {
        Layout::new(vec![LatentSpec::vector("z", 2, Transform::Identity)])
    }
    fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
        -(u[0].square() + u[1].square()) * 0.5
    }
    fn prior_noise_dim(&self) -> usize {
        self.noise
    }
}

fn fit_within(budget: u64) -> Result<crate::fit::Fit, FitError> {
    let config = FitConfig::new(Diwhvi::new(4, 0))
        .max_steps(3)
        .memory_budget(budget)
        .progress(false);
    let model = WithPriorNoise { noise: 3 };
    fit(&model, &MeanField::new(2), Adam::new(0.01), &config)
}

#[test]
fn a_fit_counts_the_guides_noise_and_the_prior_noise_against_its_budget() {
    let objective = Diwhvi::new(4, 0);
    let guide_bytes = bound_memory(&MeanField::new(2), objective, false);
    // 3 prior-noise values per outer sample, 4 outer samples.
    let needed = guide_bytes + 8 * 4 * 3;
    let budget = u64::try_from(needed).unwrap();
    // Each part alone fits in one byte less; together they do not.
    assert!(guide_bytes < needed - 1 && 8 * 4 * 3 < needed - 1);
    match fit_within(budget - 1) {
        Err(FitError::Input(InputError::TooLarge { what, bytes, .. })) => {
            assert_eq!(bytes, needed);
            assert!(
                what.contains("semi-implicit prior noise (3 per outer sample)"),
                "{what}"
            );
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // The same error as the bound's own check names.
    let model = WithPriorNoise { noise: 3 };
    let direct = StepNoise::try_for_model(&model, &MeanField::new(2), objective, budget - 1);
    assert!(matches!(direct, Err(InputError::TooLarge { bytes, .. }) if bytes == needed));
    assert_eq!(fit_within(budget).unwrap().steps, 3);
}

/// `all_finite` (the step's gradient check, sixteen lanes at a time)
/// answers as a test of every entry does: a non-finite entry anywhere (in
/// a lane of a chunk or in the tail) of vectors of every length around
/// the chunk's, and the largest and smallest finite values.
#[test]
fn all_finite_finds_each_non_finite_entry() {
    for len in 0..50 {
        let base: Vec<f64> = (0..len)
            .map(|i| match i % 4 {
                0 => f64::MAX,
                1 => -f64::MIN_POSITIVE,
                2 => -0.0,
                _ => i as f64 * -1.5,
            })
            .collect();
        assert!(super::all_finite(&base), "len {len}");
        for at in 0..len {
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                let mut xs = base.clone();
                xs[at] = bad;
                assert_eq!(
                    super::all_finite(&xs),
                    xs.iter().all(|x| x.is_finite()),
                    "len {len}, {bad} at {at}"
                );
            }
        }
    }
}
