//! `#[variational(guide = Model)]`: guides declared as structs, checked
//! against their model at compile time, equal to the auto guides where
//! they coincide.

use iwhvi::fit::{FitConfig, fit};
use iwhvi::guide::{HierarchicalGuide, MeanField};
use iwhvi::objective::{Diwhvi, DiwhviObjective, StepNoise, estimate_bound};
use iwhvi::optim::Adam;
use iwhvi::variational;
use iwhvi::{Differentiable, Scalar};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Counts this thread's heap allocations, so that a test can show a guide
/// method allocates nothing (the trait's contract: the caller owns the
/// workspace).
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

// SAFETY: defers every call to the system allocator; only counts.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller upholds `alloc`'s contract.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations() -> usize {
    ALLOCATIONS.with(std::cell::Cell::get)
}

use iwhvi_examples::centred::{Centred, FunnelGuide};
use iwhvi_examples::hand_written;

#[variational]
struct EightSchools {
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

/// A structured guide: theta_tilde's conditional depends on the sampled tau.
#[variational(guide = EightSchools)]
struct Structured {
    #[param(init = 0.0)]
    mu_loc: f64,
    #[param(init = 0.0)]
    mu_log_scale: f64,
    #[param(init = 1.0)]
    tau_loc: f64,
    #[param(init = -1.0)]
    tau_log_scale: f64,
    #[param(init = 0.0, len = theta_tilde)]
    theta_loc: Vec<f64>,
    #[param(init = 0.0, len = theta_tilde)]
    theta_coupling: Vec<f64>,
    #[param(init = -1.0, len = theta_tilde)]
    theta_log_scale: Vec<f64>,
    #[latent(Normal(mu_loc, mu_log_scale.exp()))]
    mu: f64,
    #[latent(LogNormal(tau_loc, tau_log_scale.exp()))]
    tau: f64,
    #[latent(Normal(theta_loc[j] + theta_coupling[j] * tau.ln(), theta_log_scale[j].exp()), for j)]
    theta_tilde: Vec<f64>,
}

/// `a` and `b` give the same bound (to 1e-10) and gradient (to 1e-8) at
/// `params` on one draw of the step's noise.
fn assert_same_bound<Mo: iwhvi::model::Model, A: HierarchicalGuide, B: HierarchicalGuide>(
    model: &Mo,
    a: &A,
    b: &B,
    objective: Diwhvi,
    params: &[f64],
    rng: &mut StdRng,
) {
    let noise = StepNoise::draw(b, objective, rng);
    let (va, ga) = iwhvi::gradient(&DiwhviObjective::new(model, a, &noise), params);
    let (vb, gb) = iwhvi::gradient(&DiwhviObjective::new(model, b, &noise), params);
    assert!(
        (va - vb).abs() <= 1e-10 * (1.0 + vb.abs()),
        "{objective:?}: {va} vs {vb}"
    );
    for (i, (x, y)) in ga.iter().zip(&gb).enumerate() {
        assert!(
            (x - y).abs() <= 1e-8 * (1.0 + y.abs()),
            "{objective:?} ∂θ{i}: {x} vs {y}"
        );
    }
}

fn model() -> EightSchools {
    EightSchools::new(hand_written::SIGMA.to_vec(), hand_written::Y.to_vec()).unwrap()
}

#[test]
fn a_structured_guide_is_a_valid_density_and_fits() {
    let model = model();
    let guide = Structured::new(&model).unwrap();
    assert_eq!(guide.latent_dim(), 10);
    assert_eq!(guide.param_layout().len(), 4 + 3 * 8);
    let mut rng = StdRng::seed_from_u64(1);
    let params = guide.init_params(&mut rng);
    let noise = StepNoise::draw(&guide, Diwhvi::elbo(), &mut rng);
    let (_, u) = iwhvi::objective::upper_bound_log_q(&guide, &params, &noise, 0).unwrap();
    assert_eq!(u.len(), 10);
    let config = FitConfig::new(Diwhvi::new(1, 0))
        .max_steps(3000)
        .seed(2)
        .progress(false);
    let structured = fit(&model, &guide, Adam::new(0.02), &config).unwrap();
    let mean_field = fit(&model, &MeanField::new(10), Adam::new(0.02), &config).unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let a = estimate_bound(
        &model,
        &guide,
        &structured.params,
        Diwhvi::new(8, 0),
        500,
        &mut rng,
    )
    .unwrap();
    let b = estimate_bound(
        &model,
        &MeanField::new(10),
        &mean_field.params,
        Diwhvi::new(8, 0),
        500,
        &mut rng,
    )
    .unwrap();
    assert!(a.mean.is_finite() && b.mean.is_finite());
    assert!(
        a.mean > b.mean - 3.0 * (a.std_error.powi(2) + b.std_error.powi(2)).sqrt(),
        "structured {a} vs mean-field {b}"
    );
}

#[test]
fn the_gradient_of_a_macro_guide_matches_finite_differences() {
    let model = model();
    let guide = Structured::new(&model).unwrap();
    let mut rng = StdRng::seed_from_u64(4);
    let params: Vec<f64> = guide
        .init_params(&mut rng)
        .iter()
        .map(|p| p + 0.1)
        .collect();
    let noise = StepNoise::draw(&guide, Diwhvi::new(2, 0), &mut rng);
    let objective = DiwhviObjective::new(&model, &guide, &noise);
    let (value, gradient) = iwhvi::gradient(&objective, &params);
    assert_eq!(value, objective.eval(&params));
    for i in 0..params.len() {
        let h = 1e-6;
        let (mut plus, mut minus) = (params.clone(), params.clone());
        plus[i] += h;
        minus[i] -= h;
        let fd = (objective.eval(&plus) - objective.eval(&minus)) / (2.0 * h);
        assert!(
            (gradient[i] - fd).abs() <= 1e-5 * (1.0 + fd.abs()),
            "∂/∂θ{i}: {} vs {fd}",
            gradient[i]
        );
    }
}

/// Mean-field written by hand: LogNormal on the positive tau is, in the
/// unconstrained space, the same Normal as the built-in guide's.
#[variational(guide = EightSchools)]
struct MeanFieldByHand {
    #[param(init = 0.0)]
    mu_loc: f64,
    #[param(init = 0.0)]
    tau_loc: f64,
    #[param(init = 0.0, len = theta_tilde)]
    theta_loc: Vec<f64>,
    #[param(init = 0.0)]
    mu_log_scale: f64,
    #[param(init = 0.0)]
    tau_log_scale: f64,
    #[param(init = 0.0, len = theta_tilde)]
    theta_log_scale: Vec<f64>,
    #[latent(Normal(mu_loc, mu_log_scale.exp()))]
    mu: f64,
    #[latent(LogNormal(tau_loc, tau_log_scale.exp()))]
    tau: f64,
    #[latent(Normal(theta_loc[j], theta_log_scale[j].exp()), for j)]
    theta_tilde: Vec<f64>,
}

#[test]
fn a_macro_mean_field_guide_gives_the_built_in_guides_bounds() {
    let model = model();
    let by_hand = MeanFieldByHand::new(&model).unwrap();
    let built_in = MeanField::new(10);
    assert_eq!(by_hand.param_layout().len(), built_in.param_layout().len());
    let mut rng = StdRng::seed_from_u64(5);
    for objective in [Diwhvi::elbo(), Diwhvi::new(4, 0), Diwhvi::new(16, 0)] {
        let params: Vec<f64> = (0..20).map(|i| 0.3 * ((i as f64) * 0.7).sin()).collect();
        assert_same_bound(&model, &by_hand, &built_in, objective, &params, &mut rng);
    }
}

#[test]
fn on_the_centred_funnel_a_structured_guide_beats_mean_field() {
    let model = Centred::new(hand_written::SIGMA.to_vec(), hand_written::Y.to_vec()).unwrap();
    let guide = FunnelGuide::new(&model).unwrap();
    let mean_field = MeanField::new(10);
    let config = FitConfig::new(Diwhvi::new(4, 0))
        .max_steps(3000)
        .seed(1)
        .progress(false);
    let structured = fit(&model, &guide, Adam::new(0.01), &config).unwrap();
    let plain = fit(&model, &mean_field, Adam::new(0.01), &config).unwrap();
    let mut rng = StdRng::seed_from_u64(6);
    let a = estimate_bound(
        &model,
        &guide,
        &structured.params,
        Diwhvi::new(8, 0),
        400,
        &mut rng,
    )
    .unwrap();
    let b = estimate_bound(
        &model,
        &mean_field,
        &plain.params,
        Diwhvi::new(8, 0),
        400,
        &mut rng,
    )
    .unwrap();
    let se = (a.std_error.powi(2) + b.std_error.powi(2)).sqrt();
    assert!(
        a.mean - b.mean > 4.0 * se,
        "structured {a} vs mean-field {b}"
    );
    // Both are lower bounds on log p(y) = -31.311 (quadrature, ../shared/peers).
    assert!(a.mean < -31.311 + 3.0 * a.std_error, "{a}");
}

/// A location x and a positive scale s, observed through y ~ N(x, s).
#[variational]
struct LocationScale {
    #[latent(Normal(0.0, 2.0))]
    x: f64,
    #[latent(LogNormal(0.0, 1.0))]
    s: f64,
    #[observe(Normal(x, s), for j)]
    y: Vec<f64>,
}

/// `SemiImplicit::new(2, 1)` with linear conditioning and a learned linear
/// reverse model, written out: u | psi ~ N(W psi + b, diag exp(l)),
/// psi | u ~ N(V u + c, exp(r)); parameters in the auto guide's order.
#[variational(guide = LocationScale)]
struct SemiImplicitByHand {
    #[param(init = 0.0)]
    w0: f64,
    #[param(init = 0.0)]
    w1: f64,
    #[param(init = 0.0)]
    b0: f64,
    #[param(init = 0.0)]
    b1: f64,
    #[param(init = 0.0)]
    l0: f64,
    #[param(init = 0.0)]
    l1: f64,
    #[param(init = 0.0)]
    v0: f64,
    #[param(init = 0.0)]
    v1: f64,
    #[param(init = 0.0)]
    c: f64,
    #[param(init = 0.0)]
    r: f64,
    #[mixing]
    #[reverse(Normal(v0 * x + v1 * s.ln() + c, r.exp()))]
    psi: f64,
    #[latent(Normal(w0 * psi + b0, l0.exp()))]
    x: f64,
    #[latent(LogNormal(w1 * psi + b1, l1.exp()))]
    s: f64,
}

#[test]
fn a_macro_semi_implicit_guide_gives_the_auto_guides_bounds() {
    use iwhvi::guide::{Conditioning, Reverse, SemiImplicit};
    let model = LocationScale::new(vec![1.2, -0.3, 2.5, 0.8]).unwrap();
    let by_hand = SemiImplicitByHand::new(&model).unwrap();
    let auto = SemiImplicit::new(2, 1)
        .with_conditioning(Conditioning::Linear)
        .with_reverse(Reverse::Learned(Conditioning::Linear));
    assert_eq!(by_hand.param_layout().len(), auto.param_layout().len());
    assert!(by_hand.has_reverse_model() && auto.has_reverse_model());
    let mut rng = StdRng::seed_from_u64(7);
    for objective in [Diwhvi::new(1, 0), Diwhvi::new(1, 8), Diwhvi::new(3, 5)] {
        let params: Vec<f64> = (0..10)
            .map(|i| 0.4 * ((i as f64) * 1.3 + 0.2).cos())
            .collect();
        assert_same_bound(&model, &by_hand, &auto, objective, &params, &mut rng);
    }
}

/// A struct guide reports its reverse model's parameters (`v0`, `v1`, `c`,
/// `r`) as the auto guide does, so the doubly-reparameterized estimator
/// applies to them instead of falling back to the plain one: on one draw it
/// differs from the plain gradient there (and only there), and over many
/// draws it has the plain gradient's mean.
#[test]
fn a_macro_guide_takes_the_doubly_reparameterized_estimator() {
    use iwhvi::ForwardEngine;
    use iwhvi::guide::{Conditioning, Reverse, SemiImplicit};
    use iwhvi::objective::{GradientEstimator, value_and_gradient_with};
    let model = LocationScale::new(vec![1.2, -0.3, 2.5, 0.8]).unwrap();
    let guide = SemiImplicitByHand::new(&model).unwrap();
    let auto = SemiImplicit::new(2, 1)
        .with_conditioning(Conditioning::Linear)
        .with_reverse(Reverse::Learned(Conditioning::Linear));
    assert_eq!(guide.reverse_params(), 6..10);
    assert_eq!(guide.reverse_params(), auto.reverse_params());
    let params: Vec<f64> = (0..10)
        .map(|i| 0.4 * ((i as f64) * 1.3 + 0.2).cos())
        .collect();
    let objective = Diwhvi::new(1, 4);
    let gradient = |estimator, rng: &mut StdRng| {
        let noise = StepNoise::draw(&guide, objective, rng);
        let mut g = vec![0.0; params.len()];
        let engine = ForwardEngine::<16>::new();
        value_and_gradient_with(&model, &guide, &params, &noise, &engine, estimator, &mut g)
            .expect("the guide reports its reverse parameters");
        g
    };
    let estimators = [
        GradientEstimator::Reparameterized,
        GradientEstimator::DoublyReparameterized,
    ];
    let [plain, dreg] = estimators.map(|e| gradient(e, &mut StdRng::seed_from_u64(3)));
    for i in 0..6 {
        assert!((plain[i] - dreg[i]).abs() <= 1e-12 * (1.0 + plain[i].abs()));
    }
    assert!((6..10).any(|i| (plain[i] - dreg[i]).abs() > 1e-6));
    let n = 3000;
    let [plain, dreg] = estimators.map(|e| {
        let mut rng = StdRng::seed_from_u64(11);
        (0..n).map(|_| gradient(e, &mut rng)).collect::<Vec<_>>()
    });
    for i in 6..10 {
        let stats = |d: &Vec<Vec<f64>>| {
            let mean = d.iter().map(|g| g[i]).sum::<f64>() / n as f64;
            let var = d.iter().map(|g| (g[i] - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            (mean, var / n as f64)
        };
        let ((a, va), (b, vb)) = (stats(&plain), stats(&dreg));
        assert!(
            (a - b).abs() < 4.5 * (va + vb).sqrt() + 1e-12,
            "parameter {i}: plain {a} ± {} vs doubly-reparameterized {b} ± {}",
            va.sqrt(),
            vb.sqrt()
        );
    }
}

/// The same without a reverse model: SIVI's `Reverse::Prior`.
#[variational(guide = LocationScale)]
struct SiviByHand {
    #[param(init = 0.0)]
    w0: f64,
    #[param(init = 0.0)]
    w1: f64,
    #[param(init = 0.0)]
    b0: f64,
    #[param(init = 0.0)]
    b1: f64,
    #[param(init = 0.0)]
    l0: f64,
    #[param(init = 0.0)]
    l1: f64,
    #[mixing]
    psi: f64,
    #[latent(Normal(w0 * psi + b0, l0.exp()))]
    x: f64,
    #[latent(LogNormal(w1 * psi + b1, l1.exp()))]
    s: f64,
}

#[test]
fn a_macro_sivi_guide_gives_the_auto_guides_bounds() {
    use iwhvi::guide::{Conditioning, Reverse, SemiImplicit};
    let model = LocationScale::new(vec![1.2, -0.3, 2.5, 0.8]).unwrap();
    let by_hand = SiviByHand::new(&model).unwrap();
    let auto = SemiImplicit::new(2, 1)
        .with_conditioning(Conditioning::Linear)
        .with_reverse(Reverse::Prior);
    assert!(!by_hand.has_reverse_model() && !auto.has_reverse_model());
    let mut rng = StdRng::seed_from_u64(8);
    for objective in [Diwhvi::new(1, 4), Diwhvi::new(2, 6)] {
        let params: Vec<f64> = (0..6)
            .map(|i| 0.5 * ((i as f64) * 0.9 - 0.4).sin())
            .collect();
        assert_same_bound(&model, &by_hand, &auto, objective, &params, &mut rng);
    }
}

/// A full-rank Gaussian block, written as a chain of conditionals (its
/// Cholesky factorisation): u0 ~ N(m0, e^d0), u1 | u0 ~ N(m1 + l10 (u0 -
/// m0) / e^d0, e^d1), with u1 = ln s. Parameters in `FullRank`'s order.
#[variational(guide = LocationScale)]
struct FullRankByHand {
    #[param(init = 0.0)]
    m0: f64,
    #[param(init = 0.0)]
    m1: f64,
    #[param(init = 0.0)]
    d0: f64,
    #[param(init = 0.0)]
    d1: f64,
    #[param(init = 0.0)]
    l10: f64,
    #[latent(Normal(m0, d0.exp()))]
    x: f64,
    #[latent(LogNormal(m1 + l10 * (x - m0) / d0.exp(), d1.exp()))]
    s: f64,
}

#[test]
fn a_macro_full_rank_block_gives_the_full_rank_guides_bounds() {
    use iwhvi::guide::FullRank;
    let model = LocationScale::new(vec![1.2, -0.3, 2.5, 0.8]).unwrap();
    let by_hand = FullRankByHand::new(&model).unwrap();
    let auto = FullRank::new(2);
    let mut rng = StdRng::seed_from_u64(9);
    for objective in [Diwhvi::elbo(), Diwhvi::new(8, 0)] {
        let params = [0.3, -0.2, -0.5, 0.1, 0.7];
        assert_same_bound(&model, &by_hand, &auto, objective, &params, &mut rng);
    }
}

#[test]
fn macro_guide_methods_do_not_allocate() {
    use iwhvi::guide::Workspace;
    let model = Centred::new(hand_written::SIGMA.to_vec(), hand_written::Y.to_vec()).unwrap();
    let funnel = FunnelGuide::new(&model).unwrap();
    let model = LocationScale::new(vec![1.2, -0.3, 2.5, 0.8]).unwrap();
    let semi = SemiImplicitByHand::new(&model).unwrap();
    fn check<G: HierarchicalGuide>(guide: &G) {
        let params = vec![iwhvi::Dual::<4>::constant(0.1); guide.param_layout().len()];
        let noise = vec![0.3; guide.latent_dim().max(guide.mixing_dim())];
        let mut psi = vec![iwhvi::Dual::<4>::constant(0.2); guide.mixing_dim()];
        let mut u = vec![iwhvi::Dual::<4>::constant(0.0); guide.latent_dim()];
        let mut workspace = Workspace::new(guide);
        let before = allocations();
        guide.prepare(&params, &mut workspace);
        guide.sample_conditional(&params, &psi, &noise, &mut u, &mut workspace);
        let lq = guide.log_conditional(&params, &psi, &u, &mut workspace);
        guide.prepare_reverse(&params, &u, &mut workspace);
        guide.sample_reverse(&params, &u, &noise, &mut psi, &mut workspace);
        let lr = guide.log_reverse(&params, &u, &psi, &mut workspace);
        assert_eq!(allocations(), before, "a guide method allocated");
        assert!(lq.value().is_finite() && lr.value().is_finite());
    }
    check(&funnel);
    check(&semi);
}

/// A struct guide saves and loads with its fit: the loaded `FittedGuide`
/// equals the saved one and draws the same latents.
#[test]
fn a_struct_guide_saves_and_loads_bit_for_bit() {
    use iwhvi::posterior::{FittedGuide, Posterior};
    let model = Centred::new(vec![15.0, 10.0, 16.0], vec![28.0, 8.0, -3.0]).unwrap();
    let guide = FunnelGuide::new(&model).unwrap();
    let config = FitConfig::new(Diwhvi::elbo())
        .max_steps(200)
        .seed(1)
        .progress(false);
    let fitted = fit(&model, &guide, Adam::new(0.02), &config).unwrap();
    let posterior = Posterior::new(&model, &guide, &fitted.params).unwrap();
    let json = posterior.fitted().to_json().unwrap();
    let loaded = FittedGuide::<FunnelGuide>::from_json(&json).unwrap();
    assert_eq!(&loaded, posterior.fitted());
    let a = loaded.sample(50, &mut StdRng::seed_from_u64(9)).unwrap();
    let b = posterior.sample(50, &mut StdRng::seed_from_u64(9)).unwrap();
    for i in 0..50 {
        assert_eq!(a.row(i), b.row(i));
    }
    // The guide saves its configuration only (the model instance's layout):
    // no derived offsets or lengths, which loading derives again.
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let saved_guide = value["guide"].as_object().unwrap();
    assert_eq!(
        saved_guide.keys().collect::<Vec<_>>(),
        ["layout"],
        "{saved_guide:?}"
    );
    // An edited file is a typed error naming the guide: a derived field
    // written in, or a layout without a latent the guide targets.
    let mut extra = value.clone();
    extra["guide"]["__offsets"] = serde_json::json!([0, 1, 2]);
    match FittedGuide::<FunnelGuide>::from_json(&extra.to_string()) {
        Err(iwhvi::posterior::PersistError::Field { field, .. }) => assert_eq!(field, "guide"),
        other => panic!("expected an error in `guide`, got {other:?}"),
    }
    let renamed = json.replacen("\"tau\"", "\"tau_renamed\"", 1);
    assert_ne!(renamed, json, "the saved guide's layout names tau");
    match FittedGuide::<FunnelGuide>::from_json(&renamed) {
        Err(iwhvi::posterior::PersistError::Field { field, message }) => {
            assert_eq!(field, "guide");
            assert!(message.contains("tau"), "{message}");
        }
        other => panic!("expected an error in `guide`, got {other:?}"),
    }
}

/// Two real latents, for Student-t conditionals.
#[variational]
struct TwoReal {
    #[latent(Normal(0.0, 2.0))]
    x: f64,
    #[latent(Normal(x, 1.0))]
    y: f64,
    #[observe(Normal(x + y, 1.0), for j)]
    obs: Vec<f64>,
}

/// `SemiImplicit::new(2, 1)` with Student-t conditionals (ν = 4), linear
/// conditioning and a learned linear reverse model, written out with
/// `#[latent(StudentT(4.0, …))]`; parameters in the auto guide's order.
#[variational(guide = TwoReal)]
struct StudentSemiImplicitByHand {
    #[param(init = 0.0)]
    w0: f64,
    #[param(init = 0.0)]
    w1: f64,
    #[param(init = 0.0)]
    b0: f64,
    #[param(init = 0.0)]
    b1: f64,
    #[param(init = 0.0)]
    l0: f64,
    #[param(init = 0.0)]
    l1: f64,
    #[param(init = 0.0)]
    v0: f64,
    #[param(init = 0.0)]
    v1: f64,
    #[param(init = 0.0)]
    c: f64,
    #[param(init = 0.0)]
    r: f64,
    #[mixing]
    #[reverse(Normal(v0 * x + v1 * y + c, r.exp()))]
    psi: f64,
    #[latent(StudentT(4.0, w0 * psi + b0, l0.exp()))]
    x: f64,
    #[latent(StudentT(4, w1 * psi + b1, l1.exp()))]
    y: f64,
}

/// The struct guide's Student-t conditionals draw what
/// `SemiImplicit::with_conditional_family(StudentT { df })` draws from the
/// same noise (same noise size and layout) and have its density: the same
/// bounds and gradients.
#[test]
fn struct_guide_student_t_conditionals_equal_the_semi_implicit_ones() {
    use iwhvi::guide::{ConditionalFamily, Conditioning, Reverse, SemiImplicit};
    let model = TwoReal::new(vec![1.2, -0.3, 2.5]).unwrap();
    let by_hand = StudentSemiImplicitByHand::new(&model).unwrap();
    let df = std::num::NonZeroU8::new(4).unwrap();
    let auto = SemiImplicit::new(2, 1)
        .with_conditioning(Conditioning::Linear)
        .with_reverse(Reverse::Learned(Conditioning::Linear))
        .with_conditional_family(ConditionalFamily::StudentT { df });
    assert_eq!(by_hand.conditional_noise_dim(), 2 * (1 + 4));
    assert_eq!(
        by_hand.conditional_noise_dim(),
        auto.conditional_noise_dim()
    );
    let mut rng = StdRng::seed_from_u64(17);
    for objective in [Diwhvi::new(1, 0), Diwhvi::new(1, 8), Diwhvi::new(3, 5)] {
        let params: Vec<f64> = (0..10)
            .map(|i| 0.4 * ((i as f64) * 1.7 + 0.3).sin())
            .collect();
        assert_same_bound(&model, &by_hand, &auto, objective, &params, &mut rng);
    }
}

/// Student-t conditionals of different ν beside a Gaussian one.
#[variational(guide = TwoReal)]
struct MixedTails {
    #[param(init = 0.0)]
    loc: f64,
    #[param(init = 0.0)]
    log_scale: f64,
    #[latent(StudentT(3.0, loc, log_scale.exp()))]
    x: f64,
    #[latent(StudentT(7.0, loc * 0.5 + x, 2.0))]
    y: f64,
}

/// The density against the closed form, the draws against
/// `student_t_noise` on the documented noise layout, and the bound's
/// gradient against central differences.
#[test]
fn struct_guide_student_t_density_draws_and_gradient() {
    use iwhvi::guide::Workspace;
    use iwhvi::special::ln_gamma;
    let model = TwoReal::new(vec![0.4, 1.1]).unwrap();
    let guide = MixedTails::new(&model).unwrap();
    // 2 numerators, then 3 for x and 7 for y.
    assert_eq!(guide.conditional_noise_dim(), 2 + 3 + 7);
    let t_log_density = |df: f64, x: f64, loc: f64, scale: f64| {
        let z = (x - loc) / scale;
        ln_gamma((df + 1.0) * 0.5)
            - ln_gamma(df * 0.5)
            - 0.5 * (df * std::f64::consts::PI).ln()
            - scale.ln()
            - (df + 1.0) * 0.5 * (z * z / df).ln_1p()
    };
    let params = [0.3, -0.4];
    let (loc, scale) = (0.3, (-0.4f64).exp());
    let mut workspace = Workspace::new(&guide);
    guide.prepare(&params, &mut workspace);
    let u = [0.9, -1.3];
    let lq = guide.log_conditional(&params, &[], &u, &mut workspace);
    let expected =
        t_log_density(3.0, u[0], loc, scale) + t_log_density(7.0, u[1], loc * 0.5 + u[0], 2.0);
    assert!((lq - expected).abs() < 1e-12, "{lq} vs {expected}");
    let noise: Vec<f64> = (0..12).map(|k| ((k as f64) * 0.77 + 0.1).sin()).collect();
    let mut draw = [0.0; 2];
    guide.sample_conditional(&params, &[], &noise, &mut draw, &mut workspace);
    let t0 = iwhvi::__private::student_t_noise(noise[0], &noise[2..5]);
    let t1 = iwhvi::__private::student_t_noise(noise[1], &noise[5..12]);
    assert_eq!(draw[0], loc + scale * t0);
    assert_eq!(draw[1], loc * 0.5 + draw[0] + 2.0 * t1);
    // The bound's gradient in the guide's parameters.
    let objective = Diwhvi::new(2, 0);
    let noise = StepNoise::draw(&guide, objective, &mut StdRng::seed_from_u64(5));
    let f = DiwhviObjective::new(&model, &guide, &noise);
    let (_, g) = iwhvi::gradient(&f, &params);
    for k in 0..2 {
        let h = 1e-6;
        let (mut up, mut down) = (params, params);
        up[k] += h;
        down[k] -= h;
        let fd = (f.eval(&up[..]) - f.eval(&down[..])) / (2.0 * h);
        assert!(
            (g[k] - fd).abs() < 1e-6 * (1.0 + fd.abs()),
            "∂{k}: {} vs {fd}",
            g[k]
        );
    }
}
