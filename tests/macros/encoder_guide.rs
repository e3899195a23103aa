//! `#[encoder(...)]` in a guide struct (issue 16, amortised guides): the
//! generated guide against a hand-written computation, its gradient
//! against finite differences, and a fit of eight schools' `theta_tilde`
//! through an encoder of `(y_j, sigma_j)` against the NUTS reference.

use iwhvi::guide::{HierarchicalGuide, Workspace};
use iwhvi::objective::{Diwhvi, DiwhviObjective, StepNoise};
use iwhvi::variational;
use iwhvi_examples::hand_written;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::fixtures::{
    HIDDEN, encoder_by_hand, gradient_matches_finite_differences, log_normal_density,
};

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

/// `theta_tilde_j ~ N(h_j(0), exp h_j(1))`, `h_j = enc(y_j, sigma_j)`, an
/// MLP shared by the schools; `mu` and `tau` with ordinary conditionals.
#[variational(guide = Schools)]
struct Amortised {
    #[param(init = 0.0)]
    mu_loc: f64,
    #[param(init = 0.0)]
    mu_log_scale: f64,
    #[param(init = 1.0)]
    tau_loc: f64,
    #[param(init = -1.0)]
    tau_log_scale: f64,
    #[encoder(input = [y[j], sigma[j]], hidden = [8], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[latent(Normal(mu_loc, mu_log_scale.exp()))]
    mu: f64,
    #[latent(LogNormal(tau_loc, tau_log_scale.exp()))]
    tau: f64,
    #[latent(Normal(enc(j)[0], enc(j)[1].exp()), for j)]
    theta_tilde: Vec<f64>,
}

fn model() -> Schools {
    Schools::new(hand_written::SIGMA.to_vec(), hand_written::Y.to_vec()).unwrap()
}

#[test]
fn the_encoder_guide_matches_a_hand_written_one() {
    let model = model();
    let guide = Amortised::new(&model).unwrap();
    let layout = guide.param_layout();
    let names: Vec<&str> = layout.blocks().iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "mu_loc",
            "mu_log_scale",
            "tau_loc",
            "tau_log_scale",
            "enc.w0",
            "enc.b0",
            "enc.w1",
            "enc.b1"
        ]
    );
    assert_eq!(layout.blocks()[4].shape, [2, HIDDEN]);
    assert_eq!(layout.blocks()[6].shape, [HIDDEN, 2]);
    assert_eq!(layout.len(), 4 + (2 + 1) * HIDDEN + (HIDDEN + 1) * 2);
    let mut rng = StdRng::seed_from_u64(3);
    // Random parameters (biases too), so that every weight matters.
    let params: Vec<f64> = (0..layout.len())
        .map(|_| iwhvi::__private::normal_init(&mut rng, 0.3))
        .collect();
    let noise: Vec<f64> = (0..10)
        .map(|_| iwhvi::__private::normal_init(&mut rng, 1.0))
        .collect();
    let mut workspace = Workspace::new(&guide);
    let mut u = vec![0.0; 10];
    guide.sample_conditional(&params, &[], &noise, &mut u, &mut workspace);
    let lq = guide.log_conditional(&params, &[], &u, &mut workspace);

    let (mu_loc, mu_s, tau_loc, tau_s) = (params[0], params[1].exp(), params[2], params[3].exp());
    let mu = mu_loc + mu_s * noise[0];
    let log_tau = tau_loc + tau_s * noise[1];
    let mut want_lq = log_normal_density(mu, mu_loc, mu_s)
        // log-normal density of tau, times the Jacobian tau of u = ln tau
        + log_normal_density(log_tau, tau_loc, tau_s);
    assert!((u[0] - mu).abs() < 1e-12 && (u[1] - log_tau).abs() < 1e-12);
    for j in 0..8 {
        let h = encoder_by_hand(&params[4..], [hand_written::Y[j], hand_written::SIGMA[j]]);
        let theta = h[0] + h[1].exp() * noise[2 + j];
        assert!(
            (u[2 + j] - theta).abs() < 1e-10,
            "{j}: {} vs {theta}",
            u[2 + j]
        );
        want_lq += log_normal_density(theta, h[0], h[1].exp());
    }
    assert!((lq - want_lq).abs() < 1e-10, "{lq} vs {want_lq}");
}

#[test]
fn the_encoder_weights_are_initialised_like_the_amortised_networks() {
    let guide = Amortised::new(&model()).unwrap();
    let params = guide.init_params(&mut StdRng::seed_from_u64(5));
    let (w0, b0) = (
        &params[4..4 + 2 * HIDDEN],
        &params[4 + 2 * HIDDEN..4 + 3 * HIDDEN],
    );
    let out = &params[4 + 3 * HIDDEN..];
    assert_eq!(&params[..4], &[0.0, 0.0, 1.0, -1.0]);
    assert!(b0.iter().all(|&b| b == 0.0) && out[2 * HIDDEN..].iter().all(|&b| b == 0.0));
    // N(0, 1/2) on the first layer, 0.1 N(0, 1/H) on the output layer.
    let rms = |w: &[f64]| (w.iter().map(|x| x * x).sum::<f64>() / w.len() as f64).sqrt();
    assert!(rms(w0) > 0.3 && rms(w0) < 1.2, "{}", rms(w0));
    let last = rms(&out[..2 * HIDDEN]);
    assert!(last > 0.01 && last < 0.07, "{last}");
}

/// The DIWHVI objective on one draw of noise: both engines against central
/// differences, every parameter (the encoder's weights included).
#[test]
fn the_encoder_guide_gradient_matches_finite_differences() {
    let model = model();
    let guide = Amortised::new(&model).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let params: Vec<f64> = guide
        .init_params(&mut rng)
        .iter()
        .map(|p| p + iwhvi::__private::normal_init(&mut rng, 0.2))
        .collect();
    let noise = StepNoise::draw(&guide, Diwhvi::new(2, 0), &mut rng);
    let objective = DiwhviObjective::new(&model, &guide, &noise);
    gradient_matches_finite_differences(&objective, &params);
}

#[test]
fn an_encoder_guide_saves_and_loads_its_inputs() {
    let guide = Amortised::new(&model()).unwrap();
    let json = serde_json::to_string(&guide).unwrap();
    let back: Amortised = serde_json::from_str(&json).unwrap();
    assert_eq!(back, guide);
    // Inputs of the wrong size are an error, not a guide that panics.
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut edited = value.clone();
    edited[1][0].as_array_mut().unwrap().pop();
    assert!(serde_json::from_value::<Amortised>(edited).is_err());
}

/// A model whose points are the rows of a data matrix `x`.
#[variational]
struct ByRow {
    #[data]
    x: nalgebra::DMatrix<f64>,
    #[latent(Normal(0.0, 1.0), len = x.nrows())]
    z: Vec<f64>,
    #[observe(Normal(z[j], 1.0), for j)]
    y: Vec<f64>,
}

/// The same model with one point per column of `x`.
#[variational]
struct ByColumn {
    #[data]
    x: nalgebra::DMatrix<f64>,
    #[latent(Normal(0.0, 1.0), len = x.ncols())]
    z: Vec<f64>,
    #[observe(Normal(z[j], 1.0), for j)]
    y: Vec<f64>,
}

#[variational(guide = ByRow)]
struct RowEncoder {
    #[encoder(input = [x.row(j), y[j]], hidden = [4], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[latent(Normal(enc(j)[0], enc(j)[1].exp()), for j)]
    z: Vec<f64>,
}

#[variational(guide = ByColumn)]
struct ColumnEncoder {
    #[encoder(input = [x.column(j), y[j]], hidden = [4], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[latent(Normal(enc(j)[0], enc(j)[1].exp()), for j)]
    z: Vec<f64>,
}

/// A guide reading `x.column(j)` of the row model: two points by `x`'s
/// columns, three by `y`.
#[variational(guide = ByRow)]
struct MismatchedColumns {
    #[encoder(input = [x.column(j), y[j]], hidden = [4], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[latent(Normal(enc(j)[0], enc(j)[1].exp()), for j)]
    z: Vec<f64>,
}

#[test]
fn an_encoder_reads_a_data_matrix_by_columns_as_its_transpose_by_rows() {
    let x = nalgebra::DMatrix::from_row_slice(3, 2, &[1.0, 0.0, 0.5, 2.0, -1.0, 1.0]);
    let y = vec![0.3, -0.2, 1.1];
    let by_row = ByRow::new(x.clone(), y.clone()).unwrap();
    let by_column = ByColumn::new(x.transpose(), y.clone()).unwrap();
    let (rows, columns) = (
        RowEncoder::new(&by_row).unwrap(),
        ColumnEncoder::new(&by_column).unwrap(),
    );
    assert_eq!(rows.param_layout().len(), 4 * 4 + 5 * 2);
    assert_eq!(columns.param_layout().len(), rows.param_layout().len());
    let mut rng = StdRng::seed_from_u64(8);
    let phi: Vec<f64> = (0..rows.param_layout().len())
        .map(|_| iwhvi::__private::normal_init(&mut rng, 0.5))
        .collect();
    let noise = [0.4, -1.3, 0.8];
    let draw = |guide: &dyn Fn(&mut Vec<f64>) -> f64| {
        let mut z = vec![0.0; 3];
        let log_q = guide(&mut z);
        (z, log_q)
    };
    let (z_rows, q_rows) = draw(&|z| {
        let mut ws = Workspace::new(&rows);
        rows.prepare(&phi, &mut ws);
        rows.sample_conditional(&phi, &[], &noise, z, &mut ws);
        rows.log_conditional(&phi, &[], z, &mut ws)
    });
    let (z_columns, q_columns) = draw(&|z| {
        let mut ws = Workspace::new(&columns);
        columns.prepare(&phi, &mut ws);
        columns.sample_conditional(&phi, &[], &noise, z, &mut ws);
        columns.log_conditional(&phi, &[], z, &mut ws)
    });
    // The same inputs point by point: the same bits.
    assert_eq!(z_rows, z_columns);
    assert_eq!(q_rows.to_bits(), q_columns.to_bits());
    assert!(q_rows.is_finite() && z_rows.iter().any(|&z| z != 0.0));
    // Columns are counted as the points: `x`'s 2 columns against `y`'s 3.
    let err = MismatchedColumns::new(&by_row).unwrap_err();
    assert!(
        matches!(
            err,
            iwhvi::guide::GuideError::EncoderRows {
                what: "y",
                rows: 3,
                expected: 2,
                ..
            }
        ),
        "{err:?}"
    );
}

/// Eight schools (non-centred, posteriordb's parametrisation) with the
/// schools' `theta_tilde` amortised by the encoder: fitted with the ELBO
/// and reweighted by importance resampling, against the NUTS reference,
/// for `mu`, `tau` and `theta[j] = mu + tau · theta_tilde[j]`. The goal is
/// the accuracy suite's (docs/ACCURACY.md): every mean within 0.1
/// reference sd and every sd ratio in [0.8, 1.2], on the reweighted
/// moments.
#[test]
fn an_amortised_guide_fits_eight_schools() {
    use iwhvi::fit::{FitConfig, fit};
    use iwhvi::optim::Adam;
    use iwhvi::posterior::Posterior;
    let model = model();
    let guide = Amortised::new(&model).unwrap();
    let config = FitConfig::new(Diwhvi::elbo())
        .max_steps(4000)
        .seed(11)
        .progress(false);
    let fitted = fit(&model, &guide, Adam::new(0.02), &config).unwrap();
    let posterior = Posterior::new(&model, &guide, &fitted.params).unwrap();
    let resampled = posterior
        .sample_importance_resampled(20_000, 20_000, 0, &mut StdRng::seed_from_u64(12))
        .unwrap();
    let draws = &resampled.draws;
    let (mu, tau) = (draws.column("mu").unwrap(), draws.column("tau").unwrap());
    let moments = |x: &[f64]| {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var.sqrt())
    };
    let mut ours = Vec::new();
    for j in 0..8 {
        let tilde = draws.column(&format!("theta_tilde[{j}]")).unwrap();
        let theta: Vec<f64> = (0..tilde.len())
            .map(|i| mu[i] + tau[i] * tilde[i])
            .collect();
        ours.push((format!("theta[{}]", j + 1), moments(&theta)));
    }
    ours.push(("mu".to_string(), moments(&mu)));
    ours.push(("tau".to_string(), moments(&tau)));
    let path = format!(
        "{}/../../../shared/posteriordb/eight_schools-eight_schools_noncentered/reference.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut report = Vec::new();
    for (name, (mean, sd)) in &ours {
        let p = &json["parameters"][name.as_str()];
        let (rm, rs) = (p["mean"].as_f64().unwrap(), p["sd"].as_f64().unwrap());
        report.push((name.clone(), (mean - rm).abs() / rs, sd / rs));
    }
    eprintln!(
        "amortised eight schools: k̂ {:.2}, ESS {:.0}, (name, |Δmean|/sd, sd ratio) {report:?}",
        resampled.pareto_k, resampled.effective_sample_size
    );
    for (name, mean_error, sd_ratio) in &report {
        assert!(*mean_error < 0.1, "{name}: mean off by {mean_error} sd");
        assert!(
            (0.8..=1.2).contains(sd_ratio),
            "{name}: sd ratio {sd_ratio}"
        );
    }
}
