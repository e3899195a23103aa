//! The VAE of `vae_digits` declared with `#[variational]`
//! (`iwhvi_examples::macro_vae`) against the hand-written runtime VAE of
//! `iwhvi::amortised`, with the same parameters copied across: the ELBO
//! on the same images and the same standard normal noise, its gradient in
//! every parameter, and the library's bound estimate against the runtime
//! one over many draws.

use iwhvi::amortised::{VaeBound, Workspace as VaeWorkspace};
use iwhvi::guide::{HierarchicalGuide, Workspace};
use iwhvi::model::Model;
use iwhvi::objective::{Diwhvi, estimate_bound};
use iwhvi::tape::TapeEngine;
use iwhvi::{Differentiable, Scalar};
use iwhvi_examples::digits::{self, PIXELS};
use iwhvi_examples::macro_vae::{self, DigitsVae, GaussianEncoder, HierarchicalEncoder};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Training images of the test: few, so that it runs in seconds unoptimised.
const IMAGES: usize = 12;

const ELBO: VaeBound = VaeBound { outer: 1, inner: 0 };

fn pixels() -> Vec<f64> {
    let data = digits::load().expect("the digits beside the repository");
    data.train.pixels[..IMAGES * PIXELS].to_vec()
}

/// Runtime parameters with every weight and bias moved off its start, so
/// that each one matters.
fn params() -> Vec<f64> {
    let vae = macro_vae::runtime_vae();
    let mut rng = StdRng::seed_from_u64(11);
    vae.init_params(&mut rng)
        .iter()
        .map(|p| p + iwhvi::__private::normal_init(&mut rng, 0.1))
        .collect()
}

/// The runtime's noise for `IMAGES` images (image by image, its two
/// coordinates together) from `seed`, and the same numbers in the guide's
/// order (every `z0`, then every `z1`).
fn noise(seed: u64) -> (iwhvi::amortised::VaeNoise, Vec<f64>) {
    let vae = macro_vae::runtime_vae();
    let runtime = vae.draw_noise(IMAGES, ELBO, &mut StdRng::seed_from_u64(seed));
    let mut rng = StdRng::seed_from_u64(seed);
    let by_image: Vec<f64> = (0..2 * IMAGES)
        .map(|_| iwhvi::__private::normal_init(&mut rng, 1.0))
        .collect();
    let guide_order = (0..2)
        .flat_map(|c| (0..IMAGES).map(move |n| (n, c)))
        .map(|(n, c)| by_image[2 * n + c])
        .collect();
    (runtime, guide_order)
}

/// The macro model and guide's one-draw ELBO, `log p_θ(x, z) − log q_φ(z | x)`
/// with `z` the guide's draw at fixed noise, in all parameters
/// `(φ, θ)` (the runtime's order: encoder, then decoder).
struct MacroElbo<'a> {
    model: &'a DigitsVae,
    guide: &'a GaussianEncoder,
    noise: &'a [f64],
}

impl Differentiable for MacroElbo<'_> {
    fn eval<T: Scalar>(&self, all: &[T]) -> T {
        let (phi, theta) = all.split_at(macro_vae::encoder_len());
        let mut workspace = Workspace::new(self.guide);
        self.guide.prepare(phi, &mut workspace);
        let mut z = vec![T::constant(0.0); self.model.dim()];
        self.guide
            .sample_conditional(phi, &[], self.noise, &mut z, &mut workspace);
        let log_q = self.guide.log_conditional(phi, &[], &z, &mut workspace);
        self.model.log_joint_theta(theta, &z) - log_q
    }
}

#[test]
fn the_macro_vae_has_the_runtime_elbo_and_gradient_at_the_same_noise() {
    let pixels = pixels();
    let params = params();
    let vae = macro_vae::runtime_vae();
    let (runtime_noise, guide_noise) = noise(5);
    let mut want_grad = vec![0.0; vae.len()];
    let want = vae
        .bound_and_gradient(
            &params,
            &pixels,
            ELBO,
            &runtime_noise,
            1.0,
            Some(&mut want_grad),
            &mut VaeWorkspace::default(),
        )
        .unwrap();

    let model = macro_vae::model_with(&pixels, &params);
    let guide = GaussianEncoder::new(&model).unwrap();
    assert_eq!(guide.param_layout().len(), macro_vae::encoder_len());
    assert_eq!(model.theta(), macro_vae::split_params(&params).1);
    let elbo = MacroElbo {
        model: &model,
        guide: &guide,
        noise: &guide_noise,
    };
    let value = elbo.eval(&params);
    assert!(want < -100.0, "{want}: a bound of 12 images of 64 pixels");
    assert!((value - want).abs() < 1e-10, "{value} vs {want}");
    let (tape_value, grad) = TapeEngine.value_and_gradient(&elbo, &params);
    assert!((tape_value - want).abs() < 1e-10);
    for (i, (g, w)) in grad.iter().zip(&want_grad).enumerate() {
        assert!(
            (g - w).abs() < 1e-9 * (1.0 + w.abs()),
            "∂{i}: {g} (macro) vs {w} (runtime)"
        );
    }
    // A different decoder moves the macro's value: θ is read.
    let mut other = params.clone();
    *other.last_mut().unwrap() += 0.5;
    assert!((elbo.eval(&other) - want).abs() > 1e-3);
}

#[test]
fn the_macro_vae_bound_estimate_agrees_with_the_runtime_over_many_draws() {
    let pixels = pixels();
    let params = params();
    let vae = macro_vae::runtime_vae();
    let draws = 400;
    let mut rng = StdRng::seed_from_u64(21);
    let mut ws = VaeWorkspace::default();
    let runtime: Vec<f64> = (0..draws)
        .map(|_| {
            let noise = vae.draw_noise(IMAGES, ELBO, &mut rng);
            vae.bound_and_gradient(&params, &pixels, ELBO, &noise, 1.0, None, &mut ws)
                .unwrap()
        })
        .collect();
    let mean = runtime.iter().sum::<f64>() / draws as f64;
    let var = runtime.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (draws - 1) as f64;
    let runtime_se = (var / draws as f64).sqrt();

    let model = macro_vae::model_with(&pixels, &params);
    let guide = GaussianEncoder::new(&model).unwrap();
    let (phi, _) = macro_vae::split_params(&params);
    let estimate = estimate_bound(&model, &guide, phi, Diwhvi::elbo(), draws, &mut rng).unwrap();
    let se = (runtime_se.powi(2) + estimate.std_error.powi(2)).sqrt();
    assert!(se > 0.0 && se < 0.01 * mean.abs(), "{se} vs {mean}");
    assert!(
        (estimate.mean - mean).abs() < 4.0 * se,
        "macro {} ± {} vs runtime {mean} ± {runtime_se}",
        estimate.mean,
        estimate.std_error
    );
}

/// The hierarchical encoder whose conditional ignores `ψ` (its network's
/// context weights zero, its other weights the Gaussian encoder's) and
/// whose reverse model is `q(ψ | x)` itself (`rev` with `mix`'s weights
/// and zero context weights) is the Gaussian encoder: every inner weight
/// `log q(z | ψ_k, x) + log q(ψ_k | x) − log τ(ψ_k | z, x)` is
/// `log q(z | x)`, so its DIWHVI bound is the ELBO draw by draw, and the
/// two estimates agree within their standard errors; with `τ` moved off
/// `q(ψ | x)` it is another bound (the power of the comparison).
#[test]
fn the_hierarchical_encoder_with_no_mixing_is_the_gaussian_one() {
    let pixels = pixels();
    let params = params();
    let model = macro_vae::model_with(&pixels, &params);
    let gaussian = GaussianEncoder::new(&model).unwrap();
    let hierarchical = HierarchicalEncoder::new(&model).unwrap();
    let (phi, _) = macro_vae::split_params(&params);
    let gaussian_blocks = gaussian.param_layout();
    let block = |name: &str| -> &[f64] {
        let b = gaussian_blocks
            .blocks()
            .iter()
            .find(|b| b.name == name)
            .unwrap();
        &phi[b.range.clone()]
    };
    let layout = hierarchical.param_layout();
    let mut rng = StdRng::seed_from_u64(31);
    // q(ψ | x)'s network, drawn once; τ copies it.
    let mix: Vec<(String, Vec<f64>)> = layout
        .blocks()
        .iter()
        .filter(|b| b.name.starts_with("mix."))
        .map(|b| {
            let values = (0..b.range.len())
                .map(|_| iwhvi::__private::normal_init(&mut rng, 0.1))
                .collect();
            (b.name.clone(), values)
        })
        .collect();
    let mix_block = |name: &str| mix.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let mut lifted = Vec::new();
    for b in layout.blocks() {
        let name = b.name.as_str();
        let values: Vec<f64> = match name {
            "enc.w0" | "enc.b0" | "enc.w1" | "enc.b1" => block(name).to_vec(),
            // The conditional's and τ's context weights zero: neither reads
            // ψ (or z).
            "enc.c0" | "rev.c0" => vec![0.0; b.range.len()],
            _ if name.starts_with("mix.") => mix_block(name),
            _ if name.starts_with("rev.") => mix_block(&name.replacen("rev.", "mix.", 1)),
            other => panic!("unexpected block {other}"),
        };
        assert_eq!(values.len(), b.range.len(), "{}", b.name);
        lifted.extend(values);
    }
    let draws = 300;
    let elbo = estimate_bound(&model, &gaussian, phi, Diwhvi::elbo(), draws, &mut rng).unwrap();
    let diwhvi = estimate_bound(
        &model,
        &hierarchical,
        &lifted,
        Diwhvi::new(1, 4),
        draws,
        &mut rng,
    )
    .unwrap();
    let se = (elbo.std_error.powi(2) + diwhvi.std_error.powi(2)).sqrt();
    assert!(
        (elbo.mean - diwhvi.mean).abs() < 4.0 * se,
        "ELBO {elbo} vs DIWHVI {diwhvi}"
    );
    // τ's means and log scales moved by 3: a looser bound.
    let bias = layout
        .blocks()
        .iter()
        .find(|b| b.name == "rev.b1")
        .unwrap()
        .range
        .clone();
    let mut moved = lifted.clone();
    for i in bias {
        moved[i] += 3.0;
    }
    let other = estimate_bound(
        &model,
        &hierarchical,
        &moved,
        Diwhvi::new(1, 4),
        draws,
        &mut rng,
    )
    .unwrap();
    let se = (elbo.std_error.powi(2) + other.std_error.powi(2)).sqrt();
    assert!(
        (elbo.mean - other.mean).abs() > 4.0 * se,
        "ELBO {elbo} vs moved DIWHVI {other}"
    );
}

/// The likelihood is one factor per image: a plate, so `z0` and `z1` are
/// local, and the images' points plus the global terms are the log joint.
#[test]
fn the_macro_vae_likelihood_is_a_plate_of_images() {
    let model = macro_vae::model_with(&pixels(), &params());
    assert_eq!(model.local_latents(), ["z0", "z1"]);
    let plate = model.subsample_plate().unwrap();
    assert_eq!(
        (plate.observed, plate.len),
        (vec!["likelihood".to_string()], IMAGES)
    );
    let u: Vec<f64> = (0..model.dim())
        .map(|k| 0.4 * (k as f64 * 0.9).sin())
        .collect();
    let theta = model.theta();
    let all: Vec<usize> = (0..IMAGES).collect();
    let mut points = vec![0.0; IMAGES];
    let global = model.log_joint_points(
        &theta,
        &u,
        &[],
        &iwhvi::subsample::Batch::new(&all, IMAGES),
        &mut points,
    );
    let split = global + points.iter().sum::<f64>();
    let full = model.log_joint_theta(&theta, &u);
    assert!(
        (split - full).abs() < 1e-10 * full.abs(),
        "{split} vs {full}"
    );
    // Each image's point is its own: moving z0[3] moves point 3 alone.
    let mut moved = u.clone();
    moved[3] += 0.5;
    let mut after = vec![0.0; IMAGES];
    model.log_joint_points(
        &theta,
        &moved,
        &[],
        &iwhvi::subsample::Batch::new(&all, IMAGES),
        &mut after,
    );
    for (n, (a, b)) in points.iter().zip(&after).enumerate() {
        assert_eq!(a == b, n != 3, "image {n}");
    }
}
