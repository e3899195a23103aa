use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::mlp::MlpScratch;
use super::*;

/// Central differences of `f` at `p`, step `h`.
fn finite_differences(p: &[f64], h: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut q = p.to_vec();
    (0..p.len())
        .map(|i| {
            q[i] = p[i] + h;
            let up = f(&q);
            q[i] = p[i] - h;
            let down = f(&q);
            q[i] = p[i];
            (up - down) / (2.0 * h)
        })
        .collect()
}

fn assert_gradients_close(analytic: &[f64], numeric: &[f64], tol: f64, what: &str) {
    assert_eq!(analytic.len(), numeric.len());
    let scale = numeric.iter().fold(1e-3f64, |a, g| a.max(g.abs()));
    for (i, (a, n)) in analytic.iter().zip(numeric).enumerate() {
        assert!(
            (a - n).abs() <= tol * scale,
            "{what}: parameter {i}: analytic {a} vs finite differences {n} (scale {scale})"
        );
    }
}

fn binary_data(rng: &mut StdRng, n: usize, d: usize) -> Vec<f64> {
    (0..n * d)
        .map(|_| if rng.random::<f64>() < 0.4 { 1.0 } else { 0.0 })
        .collect()
}

#[test]
fn mlp_backward_matches_finite_differences() {
    let mut rng = StdRng::seed_from_u64(11);
    for activation in [Activation::Tanh, Activation::Softplus, Activation::Relu] {
        let (inputs, context, rows, groups) = (3, 4, 6, 2);
        let net = Mlp::new(inputs, context, &[5, 4], 3, activation, 2);
        let mut params: Vec<f64> = (0..net.len() + 2)
            .map(|_| rng.random::<f64>() - 0.5)
            .collect();
        params[0] = 7.0;
        let input: Vec<f64> = (0..rows * inputs)
            .map(|_| rng.random::<f64>() * 2.0 - 1.0)
            .collect();
        let ctx: Vec<f64> = (0..groups * context).map(|_| rng.random::<f64>()).collect();
        let weights: Vec<f64> = (0..rows * 3).map(|_| rng.random::<f64>() - 0.5).collect();
        // f = Σ weights ⊙ net(input; ctx), as a function of params and input.
        let f = |p: &[f64], x: &[f64]| {
            let mut s = MlpScratch::default();
            net.forward(p, x, &ctx, rows, groups, &mut s);
            s.out.iter().zip(&weights).map(|(o, w)| o * w).sum::<f64>()
        };
        let mut s = MlpScratch::default();
        net.forward(&params, &input, &ctx, rows, groups, &mut s);
        let mut bar = weights.clone();
        let mut grad = vec![0.0; params.len()];
        let mut input_bar = vec![0.0; input.len()];
        net.backward(
            &params,
            &input,
            &ctx,
            rows,
            groups,
            &mut s,
            &mut bar,
            &mut grad,
            Some(&mut input_bar),
        );
        assert_eq!(grad[..2], [0.0, 0.0], "nothing outside the network");
        let numeric = finite_differences(&params, 1e-6, |p| f(p, &input));
        assert_gradients_close(&grad, &numeric, 1e-6, &format!("{activation:?} params"));
        let numeric = finite_differences(&input, 1e-6, |x| f(&params, x));
        assert_gradients_close(&input_bar, &numeric, 1e-6, &format!("{activation:?} input"));
        // One row through `apply` gives the batched row.
        let one = net.apply(&params, &input[..inputs], &ctx[..context]);
        net.forward(&params, &input, &ctx, rows, groups, &mut s);
        assert_eq!(one, s.out[..3].to_vec());
    }
}

fn check_vae_gradient(kind: EncoderKind, bound: VaeBound, activation: Activation) {
    let mut rng = StdRng::seed_from_u64(5);
    let vae = Vae::new(5, 2, kind, &[4], activation).unwrap();
    let mut params = vae.init_params(&mut rng);
    // Larger output weights than the initialisation, so that every term
    // matters.
    for p in params.iter_mut() {
        *p += 0.3 * (rng.random::<f64>() - 0.5);
    }
    let x = binary_data(&mut rng, 3, 5);
    let noise = vae.draw_noise(3, bound, &mut rng);
    let mut ws = Workspace::default();
    let scale = 2.5;
    let mut grad = vec![0.0; vae.len()];
    let value = vae
        .bound_and_gradient(&params, &x, bound, &noise, scale, Some(&mut grad), &mut ws)
        .unwrap();
    let value_only = vae
        .bound_and_gradient(&params, &x, bound, &noise, scale, None, &mut ws)
        .unwrap();
    assert_eq!(value.to_bits(), value_only.to_bits());
    let numeric = finite_differences(&params, 1e-6, |p| {
        let mut ws = Workspace::default();
        scale
            * vae
                .bound_and_gradient(p, &x, bound, &noise, 1.0, None, &mut ws)
                .unwrap()
    });
    assert_gradients_close(&grad, &numeric, 1e-6, &format!("{kind:?} {bound:?}"));
}

#[test]
fn gaussian_elbo_gradient_matches_finite_differences() {
    check_vae_gradient(
        EncoderKind::Gaussian,
        VaeBound { outer: 1, inner: 0 },
        Activation::Tanh,
    );
}

#[test]
fn gaussian_iwae_gradient_matches_finite_differences() {
    check_vae_gradient(
        EncoderKind::Gaussian,
        VaeBound { outer: 4, inner: 0 },
        Activation::Softplus,
    );
}

#[test]
fn hierarchical_diwhvi_gradient_matches_finite_differences() {
    for bound in [
        VaeBound { outer: 1, inner: 0 },
        VaeBound { outer: 1, inner: 3 },
        VaeBound { outer: 3, inner: 4 },
    ] {
        check_vae_gradient(
            EncoderKind::Hierarchical { mixing_dim: 3 },
            bound,
            Activation::Tanh,
        );
    }
}

#[test]
fn sivi_gradient_matches_finite_differences() {
    check_vae_gradient(
        EncoderKind::SemiImplicit { mixing_dim: 2 },
        VaeBound { outer: 2, inner: 3 },
        Activation::Softplus,
    );
}

/// The gradient of the point's bound is the sum of its parts: a batch's
/// bound and gradient equal the sum over its points computed one by one
/// (up to rounding).
#[test]
fn a_batch_is_the_sum_of_its_points() {
    let mut rng = StdRng::seed_from_u64(9);
    let vae = Vae::new(
        5,
        2,
        EncoderKind::Hierarchical { mixing_dim: 2 },
        &[6],
        Activation::Tanh,
    )
    .unwrap();
    let params = vae.init_params(&mut rng);
    let bound = VaeBound { outer: 2, inner: 3 };
    let x = binary_data(&mut rng, 4, 5);
    let mut ws = Workspace::default();
    let mut noise_rng = StdRng::seed_from_u64(1);
    let noise = vae.draw_noise(4, bound, &mut noise_rng);
    let mut grad = vec![0.0; vae.len()];
    let total = vae
        .bound_and_gradient(&params, &x, bound, &noise, 1.0, Some(&mut grad), &mut ws)
        .unwrap();
    // The noise is drawn point by point, so a fresh generator drawing one
    // point at a time reproduces each point's share.
    let mut noise_rng = StdRng::seed_from_u64(1);
    let mut sum = 0.0;
    let mut sum_grad = vec![0.0; vae.len()];
    for n in 0..4 {
        let one = vae.draw_noise(1, bound, &mut noise_rng);
        sum += vae
            .bound_and_gradient(
                &params,
                &x[n * 5..(n + 1) * 5],
                bound,
                &one,
                1.0,
                Some(&mut sum_grad),
                &mut ws,
            )
            .unwrap();
    }
    assert!((total - sum).abs() < 1e-10 * total.abs());
    assert_gradients_close(&grad, &sum_grad, 1e-10, "batch against points");
}

/// The minibatch estimator `(N/B) Σ_{n ∈ batch} bound(x_n)` has the mean
/// of the full-data bound `Σ_n bound(x_n)`: both averaged over many draws,
/// the difference is within four standard errors.
#[test]
fn minibatch_estimator_is_unbiased_for_the_full_data_bound() {
    let mut rng = StdRng::seed_from_u64(21);
    let (n, b, d) = (40, 5, 6);
    let vae = Vae::new(
        d,
        2,
        EncoderKind::Hierarchical { mixing_dim: 2 },
        &[8],
        Activation::Tanh,
    )
    .unwrap();
    let mut params = vae.init_params(&mut rng);
    for p in params.iter_mut() {
        *p += 0.5 * (rng.random::<f64>() - 0.5);
    }
    // Points of very different likelihoods, so that a wrong scale or a
    // biased choice of points would show.
    let data: Vec<f64> = (0..n * d)
        .map(|i| {
            if (i / d) % 3 == 0 || rng.random::<f64>() < 0.2 {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let bound = VaeBound { outer: 2, inner: 3 };
    let mut ws = Workspace::default();
    let reps = 2000;
    let stats = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64;
        (m, (var / v.len() as f64).sqrt())
    };
    let full: Vec<f64> = (0..200)
        .map(|_| {
            let noise = vae.draw_noise(n, bound, &mut rng);
            vae.bound_and_gradient(&params, &data, bound, &noise, 1.0, None, &mut ws)
                .unwrap()
        })
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    let mini: Vec<f64> = (0..reps)
        .map(|_| {
            use rand::seq::SliceRandom;
            order.shuffle(&mut rng);
            let batch: Vec<f64> = order[..b]
                .iter()
                .flat_map(|&i| data[i * d..(i + 1) * d].to_vec())
                .collect();
            let noise = vae.draw_noise(b, bound, &mut rng);
            (n as f64 / b as f64)
                * vae
                    .bound_and_gradient(&params, &batch, bound, &noise, 1.0, None, &mut ws)
                    .unwrap()
        })
        .collect();
    let (fm, fs) = stats(&full);
    let (mm, ms) = stats(&mini);
    let se = (fs * fs + ms * ms).sqrt();
    assert!(
        (fm - mm).abs() < 4.0 * se,
        "full {fm} ± {fs}, minibatch {mm} ± {ms}"
    );
    // The test has power: the spread of minibatch values is much wider
    // than the tolerance.
    assert!(ms * (reps as f64).sqrt() > 10.0 * se);
}

#[test]
fn training_raises_the_bound_and_reproduces_bit_for_bit() {
    let mut rng = StdRng::seed_from_u64(2);
    let data = binary_data(&mut rng, 60, 8);
    for kind in [
        EncoderKind::Gaussian,
        EncoderKind::Hierarchical { mixing_dim: 2 },
        EncoderKind::SemiImplicit { mixing_dim: 2 },
    ] {
        let vae = Vae::new(8, 2, kind, &[8], Activation::Tanh).unwrap();
        let init = vae.init_params(&mut StdRng::seed_from_u64(3));
        let settings = TrainSettings {
            epochs: 30,
            batch_size: 20,
            bound: VaeBound { outer: 2, inner: 3 },
            learning_rate: 1e-2,
            seed: 4,
        };
        let mut a = init.clone();
        let ra = train(&vae, &mut a, &data, &settings).unwrap();
        let mut b = init.clone();
        let rb = train(&vae, &mut b, &data, &settings).unwrap();
        assert_eq!(
            a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(ra, rb);
        assert_eq!(ra.steps, 90);
        let first = ra.epoch_bounds[..3].iter().sum::<f64>();
        let last = ra.epoch_bounds[27..].iter().sum::<f64>();
        assert!(last > first + 0.3, "{kind:?}: {first} → {last}");
    }
}

/// With a decoder that ignores z (zero weights), `p(x) = Π_j Bernoulli(x_j;
/// sigmoid b_j)` exactly, and every estimator returns it whatever the
/// encoder: the log weights' `z`-terms cancel in expectation only for the
/// exact posterior, so this checks the estimate's constant terms.
#[test]
fn log_likelihood_is_exact_for_a_decoder_that_ignores_z() {
    let vae = Vae::new(3, 2, EncoderKind::Gaussian, &[4], Activation::Tanh).unwrap();
    let mut params = vec![0.0; vae.len()];
    let data = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0];
    vae.init_decoder_bias(&mut params, &data).unwrap();
    // Encoder outputs are 0 with zero weights: q(z | x) = N(0, I) = p(z),
    // so every log weight is log p(x) exactly.
    let ll = log_likelihood(
        &vae,
        &params,
        &data,
        VaeBound {
            outer: 10,
            inner: 0,
        },
        0,
    )
    .unwrap();
    let p = [0.5, 1e-3, 1.0 - 1e-3];
    let exact = |x: &[f64]| {
        x.iter()
            .zip(&p)
            .map(|(&xj, &pj): (&f64, &f64)| if xj > 0.5 { pj.ln() } else { (1.0 - pj).ln() })
            .sum::<f64>()
    };
    for (i, &v) in ll.per_point.iter().enumerate() {
        let e = exact(&data[i * 3..(i + 1) * 3]);
        assert!((v - e).abs() < 1e-9, "{v} vs {e}");
    }
}

/// The hierarchical estimate rises with K towards the truth (DIWHVI's
/// upper bound on log q falls with K), on average over the data.
#[test]
fn hierarchical_estimate_rises_with_k() {
    let mut rng = StdRng::seed_from_u64(31);
    let vae = Vae::new(
        6,
        2,
        EncoderKind::Hierarchical { mixing_dim: 2 },
        &[8],
        Activation::Tanh,
    )
    .unwrap();
    let mut params = vae.init_params(&mut rng);
    for p in params.iter_mut() {
        *p += 0.8 * (rng.random::<f64>() - 0.5);
    }
    let data = binary_data(&mut rng, 30, 6);
    let low = log_likelihood(&vae, &params, &data, VaeBound { outer: 1, inner: 0 }, 7).unwrap();
    let high = log_likelihood(
        &vae,
        &params,
        &data,
        VaeBound {
            outer: 1,
            inner: 64,
        },
        7,
    )
    .unwrap();
    assert!(high.mean > low.mean, "{} vs {}", high.mean, low.mean);
}

#[test]
fn tanh_is_close_to_std() {
    let mut worst = 0.0f64;
    for i in -200_000..=200_000 {
        let x = i as f64 * 1e-4 + 3.7e-7;
        for x in [x, x * 1e-5] {
            let ours = Activation::Tanh.apply(x);
            let reference = x.tanh();
            worst = worst.max(((ours - reference) / reference).abs());
        }
    }
    assert!(worst < 1e-12, "worst relative error {worst:e}");
    assert_eq!(Activation::Tanh.apply(800.0), 1.0);
    assert_eq!(Activation::Tanh.apply(-800.0), -1.0);
}

#[test]
fn bad_input_is_a_typed_error() {
    let vae = Vae::new(3, 1, EncoderKind::Gaussian, &[2], Activation::Tanh).unwrap();
    let params = vec![0.0; vae.len()];
    assert!(matches!(
        vae.check_data(&[0.0, 1.0]),
        Err(AmortisedError::DataLength { .. })
    ));
    assert!(matches!(
        vae.check_data(&[0.0, f64::NAN, 1.0]),
        Err(AmortisedError::Pixel { index: 1, .. })
    ));
    let mut short = vec![0.0; 3];
    assert!(matches!(
        train(&vae, &mut short, &[0.0; 3], &TrainSettings::default()),
        Err(AmortisedError::ParamsLength { .. })
    ));
    let mut p = params.clone();
    let zero_batch = TrainSettings {
        batch_size: 0,
        ..TrainSettings::default()
    };
    assert!(train(&vae, &mut p, &[0.0; 3], &zero_batch).is_err());
    let noise = vae.draw_noise(
        2,
        VaeBound { outer: 1, inner: 0 },
        &mut StdRng::seed_from_u64(0),
    );
    let mut ws = Workspace::default();
    assert_eq!(
        vae.bound_and_gradient(
            &params,
            &[0.0; 3],
            VaeBound { outer: 1, inner: 0 },
            &noise,
            1.0,
            None,
            &mut ws
        ),
        Err(AmortisedError::NoiseShape)
    );
    assert!(log_likelihood(&vae, &params, &[0.0; 3], VaeBound { outer: 0, inner: 0 }, 0).is_err());
    let one = VaeBound { outer: 1, inner: 0 };
    assert!(log_likelihood(&vae, &params, &[], one, 0).is_err());
    assert!(train(&vae, &mut p, &[], &TrainSettings::default()).is_err());
}

/// The binomial decoder's bound and gradient against finite differences,
/// for every encoder.
#[test]
fn binomial_decoder_gradient_matches_finite_differences() {
    for (kind, bound) in [
        (EncoderKind::Gaussian, VaeBound { outer: 3, inner: 0 }),
        (
            EncoderKind::Hierarchical { mixing_dim: 2 },
            VaeBound { outer: 2, inner: 3 },
        ),
        (
            EncoderKind::SemiImplicit { mixing_dim: 2 },
            VaeBound { outer: 2, inner: 3 },
        ),
    ] {
        let mut rng = StdRng::seed_from_u64(8);
        let vae = Vae::new(5, 2, kind, &[4], Activation::Tanh)
            .unwrap()
            .with_decoder(Decoder::Binomial { trials: 16 })
            .unwrap();
        let mut params = vae.init_params(&mut rng);
        for p in params.iter_mut() {
            *p += 0.3 * (rng.random::<f64>() - 0.5);
        }
        let x: Vec<f64> = (0..15)
            .map(|_| rng.random_range(0..=16u32) as f64)
            .collect();
        assert_eq!(vae.check_data(&x).unwrap(), 3);
        let noise = vae.draw_noise(3, bound, &mut rng);
        let mut ws = Workspace::default();
        let mut grad = vec![0.0; vae.len()];
        let value = vae
            .bound_and_gradient(&params, &x, bound, &noise, 1.5, Some(&mut grad), &mut ws)
            .unwrap();
        assert!(value.is_finite());
        let numeric = finite_differences(&params, 1e-6, |p| {
            let mut ws = Workspace::default();
            1.5 * vae
                .bound_and_gradient(p, &x, bound, &noise, 1.0, None, &mut ws)
                .unwrap()
        });
        assert_gradients_close(&grad, &numeric, 1e-6, &format!("binomial {kind:?}"));
    }
}

/// With an encoder equal to the prior and a decoder that ignores `z`, the
/// binomial decoder's estimate is `log p(x)` exactly, binomial
/// coefficients included; one trial is the Bernoulli decoder, bit for bit.
#[test]
fn binomial_log_likelihood_is_exact_for_a_decoder_that_ignores_z() {
    let vae = Vae::new(3, 2, EncoderKind::Gaussian, &[4], Activation::Tanh)
        .unwrap()
        .with_decoder(Decoder::Binomial { trials: 4 })
        .unwrap();
    let mut params = vec![0.0; vae.len()];
    let data = [1.0, 0.0, 4.0, 3.0, 2.0, 4.0];
    vae.init_decoder_bias(&mut params, &data).unwrap();
    let bound = VaeBound {
        outer: 10,
        inner: 0,
    };
    let ll = log_likelihood(&vae, &params, &data, bound, 0).unwrap();
    // Column means over 4 trials: ½, ¼, 1 (clamped).
    let p = [0.5, 0.25, 1.0 - 1e-3];
    let binomial = |x: f64, p: f64| {
        crate::distributions::Distribution::log_prob(
            &crate::distributions::Binomial::new(4, p).unwrap(),
            x as u64,
        )
    };
    for (i, &v) in ll.per_point.iter().enumerate() {
        let e: f64 = (0..3).map(|j| binomial(data[i * 3 + j], p[j])).sum();
        assert!((v - e).abs() < 1e-9, "{v} vs {e}");
    }
    // One trial: the Bernoulli decoder's bits.
    let bernoulli = Vae::new(3, 2, EncoderKind::Gaussian, &[4], Activation::Tanh).unwrap();
    let one = bernoulli
        .clone()
        .with_decoder(Decoder::Binomial { trials: 1 })
        .unwrap();
    let x = [1.0, 0.0, 1.0];
    let params = bernoulli.init_params(&mut StdRng::seed_from_u64(2));
    let noise = bernoulli.draw_noise(1, bound, &mut StdRng::seed_from_u64(3));
    let mut ws = Workspace::default();
    let (mut g1, mut g2) = (vec![0.0; bernoulli.len()], vec![0.0; bernoulli.len()]);
    let a = bernoulli
        .bound_and_gradient(&params, &x, bound, &noise, 1.0, Some(&mut g1), &mut ws)
        .unwrap();
    let b = one
        .bound_and_gradient(&params, &x, bound, &noise, 1.0, Some(&mut g2), &mut ws)
        .unwrap();
    assert_eq!((a.to_bits(), g1), (b.to_bits(), g2));
    assert!(matches!(
        vae.check_data(&[1.0, 5.0, 0.0]),
        Err(AmortisedError::Count {
            index: 1,
            trials: 4,
            ..
        })
    ));
}

/// A trained VAE saved and loaded: the same architecture and the same
/// parameters to the bit, so the same bound; bad files are errors naming
/// the field.
#[test]
fn vae_saves_and_loads_exactly() {
    let mut rng = StdRng::seed_from_u64(4);
    let vae = Vae::new(
        6,
        2,
        EncoderKind::Hierarchical { mixing_dim: 2 },
        &[8, 5],
        Activation::Relu,
    )
    .unwrap()
    .with_decoder(Decoder::Binomial { trials: 16 })
    .unwrap();
    let params: Vec<f64> = vae
        .init_params(&mut rng)
        .iter()
        .map(|p| p + 1e-3 * rng.random::<f64>() / 3.0)
        .collect();
    let path = std::env::temp_dir().join(format!("iwhvi-vae-{}.json", std::process::id()));
    vae.save(&params, &path).unwrap();
    let (loaded, loaded_params) = Vae::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loaded, vae);
    assert_eq!(
        loaded_params
            .iter()
            .map(|p| p.to_bits())
            .collect::<Vec<_>>(),
        params.iter().map(|p| p.to_bits()).collect::<Vec<_>>()
    );
    let x: Vec<f64> = (0..6).map(|j| (j * 3) as f64).collect();
    let bound = VaeBound { outer: 3, inner: 2 };
    let noise = vae.draw_noise(1, bound, &mut rng);
    let mut ws = Workspace::default();
    let a = vae.bound_and_gradient(&params, &x, bound, &noise, 1.0, None, &mut ws);
    let b = loaded.bound_and_gradient(&loaded_params, &x, bound, &noise, 1.0, None, &mut ws);
    assert_eq!(a.unwrap().to_bits(), b.unwrap().to_bits());

    let json = vae.to_json(&params).unwrap();
    let field_of = |text: &str| match Vae::from_json(text) {
        Err(AmortisedError::Field { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(field_of("[1, 2]"), "file");
    assert_eq!(field_of("not json"), "file");
    assert_eq!(
        field_of(&json.replace("iwhvi-vae/1", "iwhvi-vae/0")),
        "format"
    );
    assert_eq!(
        field_of(&json.replace("\"latent\": 2", "\"latent\": 0")),
        "architecture"
    );
    assert_eq!(
        field_of(&json.replace("\"trials\": 16", "\"trials\": 0")),
        "architecture"
    );
    assert_eq!(
        field_of(&json.replace("\"Relu\"", "\"Sigmoid\"")),
        "architecture"
    );
    assert_eq!(
        field_of(&json.replace("\"params\": [", "\"params\": [0.5, ")),
        "params"
    );
    assert_eq!(
        field_of(&json.replace("\"format\"", "\"extra\": 1, \"format\"")),
        "extra"
    );
    assert_eq!(
        field_of(&json.replace("\"params\"", "\"weights\"")),
        "params",
        "a missing field is named"
    );
    let mut bad = params.clone();
    bad[5] = f64::INFINITY;
    assert!(matches!(
        vae.to_json(&bad),
        Err(AmortisedError::NonFinite { index: 5, .. })
    ));
    assert!(matches!(
        Vae::load(std::env::temp_dir().join("iwhvi-no-such-vae.json")),
        Err(AmortisedError::Io { .. })
    ));
}
