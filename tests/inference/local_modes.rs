//! Local modes: a posterior whose default start `u = 0` sits on a small
//! mode, far from the one that holds the mass. The default fit stays in
//! the small mode; both multi-start rules of `FitConfig::init` find the
//! large one and say that the starts disagree.

use iwhvi::Scalar;
use iwhvi::fit::{Fit, FitConfig, FitError, FitWarning, Init, Pilots, STARTS_DISAGREE_NATS, fit};
use iwhvi::guide::{MeanField, SemiImplicit};
use iwhvi::laplace::MultiStart;
use iwhvi::model::{LatentSpec, Layout, Model};
use iwhvi::objective::Diwhvi;
use iwhvi::optim::Adam;
use iwhvi::special::LN_SQRT_2PI;
use iwhvi::transforms::Transform;

/// Weight of the small mode.
const SMALL: f64 = 1e-3;
/// Location and sd of the large mode.
const LARGE_AT: f64 = 2.5;
const LARGE_SD: f64 = 0.5;

/// `u₀ ~ 0.001 N(0, 0.1²) + 0.999 N(2.5, 0.5²)` and `u₁ ~ N(0, 1)`, a
/// normalised density: `log p(x) = 0`, and a Gaussian guide fitted to the
/// small mode has an ELBO near `ln 0.001 = −6.9`, one fitted to the large
/// mode near `ln 0.999 ≈ 0`.
struct SmallModeAtZero;

impl Model for SmallModeAtZero {
    fn layout(&self) -> Layout {
        Layout::new(vec![LatentSpec::vector("u", 2, Transform::Identity)])
    }

    fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
        let bump = |m: f64, s: f64, w: f64| {
            -((u[0] - m) / s).square() * 0.5 + ((w / s).ln() - LN_SQRT_2PI)
        };
        T::log_sum_exp(&[bump(0.0, 0.1, SMALL), bump(LARGE_AT, LARGE_SD, 1.0 - SMALL)])
            - u[1].square() * 0.5
            - LN_SQRT_2PI
    }
}

fn config(init: Init) -> FitConfig {
    FitConfig::new(Diwhvi::elbo())
        .max_steps(3000)
        .seed(7)
        .progress(false)
        .init(init)
}

/// The mean of the last 500 step bounds.
fn final_bound(fit: &Fit) -> f64 {
    let last = &fit.trace[fit.trace.len() - 500..];
    last.iter().sum::<f64>() / last.len() as f64
}

fn assert_in_large_mode(fit: &Fit, what: &str) {
    let (loc, log_scale) = (fit.params[0], fit.params[2]);
    assert!((loc - LARGE_AT).abs() < 0.1, "{what}: u₀'s mean {loc}");
    assert!(
        (log_scale.exp() - LARGE_SD).abs() < 0.1,
        "{what}: u₀'s sd {}",
        log_scale.exp()
    );
    let bound = final_bound(fit);
    assert!(
        bound > -0.3 && bound < 0.1,
        "{what}: ELBO {bound}, log p(x) = 0"
    );
    assert!(
        matches!(
            fit.warnings.as_slice(),
            [FitWarning::StartsDisagree { best, worst, .. }] if best - worst > STARTS_DISAGREE_NATS
        ),
        "{what}: warnings {:?}",
        fit.warnings
    );
}

#[test]
fn the_default_start_stays_in_the_small_mode_and_says_nothing() {
    let result = fit(
        &SmallModeAtZero,
        &MeanField::new(2),
        Adam::new(0.02),
        &config(Init::Guide),
    )
    .unwrap();
    let loc = result.params[0];
    assert!(loc.abs() < 0.1, "u₀'s mean {loc}");
    let bound = final_bound(&result);
    assert!(
        (bound - SMALL.ln()).abs() < 0.5,
        "ELBO {bound} vs ln {SMALL} = {}",
        SMALL.ln()
    );
    assert!(result.warnings.is_empty());
}

#[test]
fn the_laplace_multistart_rule_finds_the_large_mode() {
    let result = fit(
        &SmallModeAtZero,
        &MeanField::new(2),
        Adam::new(0.02),
        &config(Init::Laplace(MultiStart::default())),
    )
    .unwrap();
    assert_in_large_mode(&result, "Laplace multi-start");
}

#[test]
fn pilot_fits_find_the_large_mode() {
    let rule = Pilots {
        starts: 6,
        steps: 300,
        ..Pilots::default()
    };
    let result = fit(
        &SmallModeAtZero,
        &MeanField::new(2),
        Adam::new(0.02),
        &config(Init::Pilots(rule)),
    )
    .unwrap();
    assert_in_large_mode(&result, "pilot fits");
}

#[test]
fn a_semi_implicit_guide_starts_where_it_is_told() {
    let guide = SemiImplicit::new(2, 2);
    let result = fit(
        &SmallModeAtZero,
        &guide,
        Adam::new(0.01),
        &config(Init::At(vec![LARGE_AT, 0.0])).max_steps(1500),
    )
    .unwrap();
    let bound = final_bound(&result);
    assert!(bound > -0.5, "ELBO {bound} from the large mode");
}

#[test]
fn a_bad_starting_point_is_a_typed_error() {
    let guide = MeanField::new(2);
    let short = fit(
        &SmallModeAtZero,
        &guide,
        Adam::new(0.02),
        &config(Init::At(vec![1.0])),
    );
    assert!(matches!(
        short,
        Err(FitError::InitLength {
            expected: 2,
            found: 1
        })
    ));
    let nan = fit(
        &SmallModeAtZero,
        &guide,
        Adam::new(0.02),
        &config(Init::At(vec![1.0, f64::NAN])),
    );
    assert!(matches!(nan, Err(FitError::InitNotFinite { index: 1, .. })));
}

#[test]
fn a_multistart_fit_is_reproducible() {
    let run = || {
        fit(
            &SmallModeAtZero,
            &MeanField::new(2),
            Adam::new(0.02),
            &config(Init::Pilots(Pilots {
                starts: 3,
                steps: 100,
                ..Pilots::default()
            }))
            .max_steps(200),
        )
        .unwrap()
    };
    let (a, b) = (run(), run());
    assert_eq!(a.params, b.params);
    assert_eq!(a.trace, b.trace);
}

#[test]
fn a_preconditioned_guide_places_its_inner_guide_in_whitened_coordinates() {
    use iwhvi::guide::{HierarchicalGuide, Preconditioned};
    use rand::SeedableRng;
    // u = û + L z with û = (1, −1), L = [[2, 0], [0.5, 0.25]].
    let guide = Preconditioned::new(
        MeanField::new(2),
        vec![1.0, -1.0],
        vec![2.0, 0.0, 0.5, 0.25],
    )
    .unwrap();
    let point = [4.0, 0.5];
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let params = guide.init_params_at(&mut rng, &point).unwrap();
    let z = &params[..2];
    let u = [1.0 + 2.0 * z[0], -1.0 + 0.5 * z[0] + 0.25 * z[1]];
    assert!(
        (u[0] - point[0]).abs() < 1e-12 && (u[1] - point[1]).abs() < 1e-12,
        "{u:?}"
    );
}
