//! `#[unconstrained]` struct-guide conditionals: a Normal over a latent's
//! unconstrained coordinates, the latent's own transform applied by the
//! library, for latents a Normal or LogNormal cannot target (a Beta
//! latent on (0, 1), a Dirichlet latent on the simplex).

use iwhvi::fit::{FitConfig, fit};
use iwhvi::guide::{HierarchicalGuide, MeanField};
use iwhvi::objective::{Diwhvi, DiwhviObjective, StepNoise};
use iwhvi::optim::Adam;
use iwhvi::posterior::Posterior;
use iwhvi::{Scalar, variational};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// A Beta–binomial and a Dirichlet–multinomial, conjugate:
/// `p | data ~ Beta(2 + s, 3 + f)`, `θ | data ~ Dirichlet(α + counts)`.
#[variational]
struct Shares {
    #[data]
    successes: f64,
    #[data]
    failures: f64,
    #[data]
    alpha: Vec<f64>,
    #[data]
    counts: Vec<f64>,
    #[latent(Beta(2.0, 3.0))]
    p: f64,
    #[latent(Dirichlet(alpha), len = alpha.len())]
    theta: Vec<f64>,
    #[factor(p.ln() * successes + (1.0 - p).ln() * failures)]
    binomial: (),
    #[factor(self.multinomial(theta))]
    multinomial: (),
}

impl Shares {
    fn multinomial<T: Scalar>(&self, theta: &[T]) -> T {
        theta
            .iter()
            .zip(&self.counts)
            .fold(T::constant(0.0), |acc, (&t, &c)| acc + t.ln() * c)
    }
}

/// The mean-field family written as a struct guide over `u`: its
/// parameters laid out as `MeanField`'s (`loc`, then `log_scale`).
#[variational(guide = Shares)]
struct OnU {
    #[param(init = 0.0, len = 3)]
    loc: Vec<f64>,
    #[param(init = -2.302_585_092_994_045_5, len = 3)]
    log_scale: Vec<f64>,
    #[latent(Normal(loc[0], log_scale[0].exp()))]
    #[unconstrained]
    p: f64,
    #[latent(Normal(loc[1 + j], log_scale[1 + j].exp()), for j)]
    #[unconstrained]
    theta: Vec<f64>,
}

/// A structured guide: θ's conditional depends on the drawn p (a value in
/// (0, 1), its constrained value), to show later conditionals see it.
#[variational(guide = Shares)]
struct Coupled {
    #[param(init = 0.0)]
    p_loc: f64,
    #[param(init = -1.0)]
    p_log_scale: f64,
    #[param(init = 0.0, len = theta)]
    theta_loc: Vec<f64>,
    #[param(init = 0.0, len = theta)]
    theta_on_p: Vec<f64>,
    #[param(init = -1.0, len = theta)]
    theta_log_scale: Vec<f64>,
    #[latent(Normal(p_loc, p_log_scale.exp()))]
    #[unconstrained]
    p: f64,
    #[latent(Normal(theta_loc[j] + theta_on_p[j] * p, theta_log_scale[j].exp()), for j)]
    #[unconstrained]
    theta: Vec<f64>,
}

const ALPHA: [f64; 3] = [2.0, 1.0, 3.0];
const COUNTS: [f64; 3] = [10.0, 4.0, 7.0];

fn model() -> Shares {
    Shares::new(12.0, 8.0, ALPHA.to_vec(), COUNTS.to_vec()).unwrap()
}

#[test]
fn an_unconstrained_struct_guide_is_the_mean_field_family() {
    let model = model();
    let guide = OnU::new(&model).unwrap();
    let mean_field = MeanField::new(3);
    assert_eq!(guide.latent_dim(), 3); // p, and θ's 2 stick-breaking coordinates
    assert_eq!(guide.param_layout().len(), mean_field.param_layout().len());
    let mut rng = StdRng::seed_from_u64(3);
    assert_eq!(
        guide.init_params(&mut rng),
        mean_field.init_params(&mut rng)
    );
    let params = [0.3, -0.4, 0.8, -1.2, -0.7, -0.9];
    for objective in [Diwhvi::elbo(), Diwhvi::new(4, 0)] {
        let noise = StepNoise::draw(&mean_field, objective, &mut rng);
        let (a, ga) = iwhvi::gradient(&DiwhviObjective::new(&model, &guide, &noise), &params);
        let (b, gb) = iwhvi::gradient(&DiwhviObjective::new(&model, &mean_field, &noise), &params);
        assert!(
            a.is_finite() && (a - b).abs() <= 1e-10 * (1.0 + b.abs()),
            "{a} vs {b}"
        );
        for (x, y) in ga.iter().zip(&gb) {
            assert!((x - y).abs() <= 1e-8 * (1.0 + y.abs()), "{ga:?} vs {gb:?}");
        }
    }
}

#[test]
fn a_struct_guide_fits_a_beta_and_a_simplex_latent() {
    let model = model();
    let guide = Coupled::new(&model).unwrap();
    let config = FitConfig::new(Diwhvi::elbo())
        .max_steps(8000)
        .seed(5)
        .progress(false);
    let fitted = fit(&model, &guide, Adam::new(0.005), &config).unwrap();
    let posterior = Posterior::new(&model, &guide, &fitted.params).unwrap();
    let draws = posterior
        .sample(20_000, &mut StdRng::seed_from_u64(6))
        .unwrap();
    let mean = |name: &str| {
        let column = draws.column(name).unwrap();
        column.iter().sum::<f64>() / column.len() as f64
    };
    // Closed forms: Beta(14, 11) and Dirichlet(12, 5, 10).
    let p_mean = 14.0 / 25.0;
    assert!(
        (mean("p") - p_mean).abs() < 0.01,
        "p: {} vs {p_mean}",
        mean("p")
    );
    let total: f64 = ALPHA.iter().zip(&COUNTS).map(|(a, c)| a + c).sum();
    let mut sum = 0.0;
    for k in 0..3 {
        let exact = (ALPHA[k] + COUNTS[k]) / total;
        let got = mean(&format!("theta[{k}]"));
        assert!((got - exact).abs() < 0.015, "theta[{k}]: {got} vs {exact}");
        sum += got;
    }
    assert!(
        (sum - 1.0).abs() < 1e-12,
        "the draws lie on the simplex: Σ = {sum}"
    );
    let p_sd = (14.0 * 11.0 / (25.0f64.powi(2) * 26.0)).sqrt();
    let column = draws.column("p").unwrap();
    let sd =
        (column.iter().map(|x| (x - mean("p")).powi(2)).sum::<f64>() / column.len() as f64).sqrt();
    assert!((sd / p_sd - 1.0).abs() < 0.1, "p's sd {sd} vs {p_sd}");
}

/// An LKJ prior on a 3 × 3 correlation Cholesky factor (a matrix latent
/// with 3 unconstrained coordinates) and a likelihood reading its entries.
#[variational]
struct Correlation {
    #[latent(LkjCholesky(2.0), dim = 3)]
    l: nalgebra::DMatrix<f64>,
    #[factor(5.0 * l[(1, 0)] - 3.0 * l[(2, 1)])]
    tilt: (),
}

/// Mean-field over the factor's unconstrained coordinates, as a struct
/// guide.
#[variational(guide = Correlation)]
struct CorrelationOnU {
    #[param(init = 0.0, len = 3)]
    loc: Vec<f64>,
    #[param(init = -2.302_585_092_994_045_5, len = 3)]
    log_scale: Vec<f64>,
    #[latent(Normal(loc[j], log_scale[j].exp()), for j)]
    #[unconstrained]
    l: Vec<f64>,
}

#[test]
fn a_struct_guide_targets_a_correlation_factor_through_its_coordinates() {
    let model = Correlation::new().unwrap();
    let guide = CorrelationOnU::new(&model).unwrap();
    let mean_field = MeanField::new(3);
    assert_eq!(guide.latent_dim(), 3);
    let mut rng = StdRng::seed_from_u64(7);
    let params = [0.3, -0.4, 0.8, -1.2, -0.7, -0.9];
    let noise = StepNoise::draw(&mean_field, Diwhvi::new(4, 0), &mut rng);
    let (a, ga) = iwhvi::gradient(&DiwhviObjective::new(&model, &guide, &noise), &params);
    let (b, gb) = iwhvi::gradient(&DiwhviObjective::new(&model, &mean_field, &noise), &params);
    assert!(
        a.is_finite() && (a - b).abs() <= 1e-10 * (1.0 + b.abs()),
        "{a} vs {b}"
    );
    for (x, y) in ga.iter().zip(&gb) {
        assert!((x - y).abs() <= 1e-8 * (1.0 + y.abs()), "{ga:?} vs {gb:?}");
    }
}
