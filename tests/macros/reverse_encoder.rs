//! A reverse model that calls an encoder (issue 16): `τ(ψ_j | z_j, x_j)`
//! a network of the data point and of the point's latent, declared as
//! `#[encoder(input = [...], context = [z[j]], ...)]`. The generated guide
//! against a hand-written computation, its reverse parameters, the
//! DIWHVI gradient against finite differences on both engines, and a
//! small fit below and close to the exact `log p(y)`.

use iwhvi::guide::{HierarchicalGuide, Workspace};
use iwhvi::objective::{Diwhvi, DiwhviObjective, StepNoise};
use iwhvi::tape::TapeEngine;
use iwhvi::{Differentiable, ForwardEngine, Scalar, variational};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::fixtures::{
    Local, fitted_is_below_and_close, gradient_matches_finite_differences, local,
    local_log_evidence, log_normal_density, random_params,
};

/// `ψ_j ~ N(0, 1)`, `z_j | ψ_j ~ N(h_j(0) + a ψ_j, exp h_j(1))` with
/// `h_j = enc(y_j, sigma_j)`, and `τ(ψ_j | z_j) = N(g_j(0), exp g_j(1))`
/// with `g_j = rev(y_j, sigma_j; z_j)`.
#[variational(guide = Local)]
struct ReverseNet {
    #[param(init = 0.5)]
    a: f64,
    #[encoder(input = [y[j], sigma[j]], hidden = [6], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[encoder(input = [y[j], sigma[j]], context = [z[j]], hidden = [4], activation = tanh, outputs = 2)]
    rev: Mlp,
    #[mixing(len = z, for j)]
    #[reverse(Normal(rev(j)[0], rev(j)[1].exp()), for j)]
    psi: Vec<f64>,
    #[latent(Normal(enc(j)[0] + a * psi[j], enc(j)[1].exp()), for j)]
    z: Vec<f64>,
}

/// The three networks of a hierarchical VAE encoder: `ψ_j ~ N(0, 1)`,
/// `q(z_j | ψ_j, x_j) = N(h(0), exp h(1))` with `h = enc(y_j, sigma_j; ψ_j)`,
/// and `τ(ψ_j | z_j, x_j)` as in [`ReverseNet`].
#[variational(guide = Local)]
struct ThreeNetworks {
    #[encoder(input = [y[j], sigma[j]], context = [psi[j]], hidden = [6], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[encoder(input = [y[j], sigma[j]], context = [z[j]], hidden = [4], activation = tanh, outputs = 2)]
    rev: Mlp,
    #[mixing(len = z, for j)]
    #[reverse(Normal(rev(j)[0], rev(j)[1].exp()), for j)]
    psi: Vec<f64>,
    #[latent(Normal(enc(j)[0], enc(j)[1].exp()), for j)]
    z: Vec<f64>,
}

const Y: [f64; 5] = [1.2, -0.4, 2.5, 0.3, -1.8];
const SIGMA: [f64; 5] = [0.5, 1.0, 0.8, 1.5, 0.6];

fn model() -> Local {
    local(&Y, &SIGMA)
}

/// A one-hidden-layer tanh network by hand, two outputs: `W0` (inputs ×
/// H, row-major), then `Wc` (context × H), `b0`, `W1` (H × 2), `b1`.
fn network_by_hand(w: &[f64], hidden: usize, x: &[f64], c: &[f64]) -> [f64; 2] {
    let (w0, rest) = w.split_at(x.len() * hidden);
    let (wc, rest) = rest.split_at(c.len() * hidden);
    let (b0, rest) = rest.split_at(hidden);
    let (w1, b1) = rest.split_at(hidden * 2);
    let h: Vec<f64> = (0..hidden)
        .map(|k| {
            let data: f64 = (0..x.len()).map(|i| x[i] * w0[i * hidden + k]).sum();
            let context: f64 = (0..c.len()).map(|i| c[i] * wc[i * hidden + k]).sum();
            (b0[k] + data + context).tanh()
        })
        .collect();
    let out = |o: usize| b1[o] + (0..hidden).map(|k| h[k] * w1[k * 2 + o]).sum::<f64>();
    [out(0), out(1)]
}

/// The flat ranges of the blocks whose names start with `prefix`.
fn blocks<G: HierarchicalGuide>(guide: &G, prefix: &str) -> std::ops::Range<usize> {
    let layout = guide.param_layout();
    let ranges: Vec<_> = layout
        .blocks()
        .iter()
        .filter(|b| b.name.starts_with(prefix))
        .map(|b| b.range.clone())
        .collect();
    ranges[0].start..ranges[ranges.len() - 1].end
}

#[test]
fn the_reverse_encoder_is_the_reverse_models_and_matches_a_hand_written_one() {
    let model = model();
    let guide = ReverseNet::new(&model).unwrap();
    let enc = blocks(&guide, "enc.");
    // `a ψ_j` outside the network, which sees the data alone.
    let conditional = |params: &[f64], j: usize, psi: f64| {
        let h = network_by_hand(&params[enc.clone()], 6, &[Y[j], SIGMA[j]], &[]);
        (h[0] + params[0] * psi, h[1].exp())
    };
    matches_by_hand(&guide, conditional);
}

#[test]
fn a_guide_with_three_networks_matches_a_hand_written_one() {
    let model = model();
    let guide = ThreeNetworks::new(&model).unwrap();
    let enc = blocks(&guide, "enc.");
    assert_eq!(enc.len(), 2 * 6 + 6 + 6 + 6 * 2 + 2);
    // ψ_j enters the network as its context.
    let conditional = |params: &[f64], j: usize, psi: f64| {
        let h = network_by_hand(&params[enc.clone()], 6, &[Y[j], SIGMA[j]], &[psi]);
        (h[0], h[1].exp())
    };
    matches_by_hand(&guide, conditional);
}

/// The guide's densities and draws against a hand-written computation:
/// `conditional(params, j, ψ_j)` the location and scale of `q(z_j | ψ_j)`,
/// and the reverse model of [`ReverseNet`].
fn matches_by_hand<G: HierarchicalGuide>(
    guide: &G,
    conditional: impl Fn(&[f64], usize, f64) -> (f64, f64),
) {
    let n = Y.len();
    let rev = blocks(guide, "rev.");
    // Its weights: data part, context part, then as any encoder.
    assert_eq!(rev.len(), 2 * 4 + 4 + 4 + 4 * 2 + 2);
    assert_eq!(guide.reverse_params(), rev);
    let params = random_params(guide, 3);
    let mut rng = StdRng::seed_from_u64(4);
    let mut normal = || iwhvi::__private::normal_init(&mut rng, 1.0);
    let psi: Vec<f64> = (0..n).map(|_| normal()).collect();
    let eps: Vec<f64> = (0..n).map(|_| normal()).collect();
    let reverse_noise: Vec<f64> = (0..n).map(|_| normal()).collect();
    let (mut want_lq, mut want_lr) = (0.0, 0.0);
    let mut want_drawn = Vec::new();
    let mut u_by_hand = Vec::new();
    for j in 0..n {
        let (loc, scale) = conditional(&params, j, psi[j]);
        let z = loc + scale * eps[j];
        u_by_hand.push(z);
        want_lq += log_normal_density(z, loc, scale);
        let g = network_by_hand(&params[rev.clone()], 4, &[Y[j], SIGMA[j]], &[z]);
        want_lr += log_normal_density(psi[j], g[0], g[1].exp());
        want_drawn.push(g[0] + g[1].exp() * reverse_noise[j]);
    }
    // Unprepared workspaces (each method computes what it needs) and
    // prepared ones (the caches) give the same values.
    for prepared in [false, true] {
        let mut ws = Workspace::new(guide);
        if prepared {
            guide.prepare(&params, &mut ws);
        }
        let mut u = vec![0.0; n];
        guide.sample_conditional(&params, &psi, &eps, &mut u, &mut ws);
        for j in 0..n {
            assert!(
                (u[j] - u_by_hand[j]).abs() < 1e-10,
                "{j}: {} vs {}",
                u[j],
                u_by_hand[j]
            );
        }
        if prepared {
            guide.prepare_reverse(&params, &u, &mut ws);
        }
        let lq = guide.log_conditional(&params, &psi, &u, &mut ws);
        let lr = guide.log_reverse(&params, &u, &psi, &mut ws);
        assert!((lq - want_lq).abs() < 1e-10, "{lq} vs {want_lq}");
        assert!((lr - want_lr).abs() < 1e-10, "{lr} vs {want_lr}");
        let mut drawn = vec![0.0; n];
        guide.sample_reverse(&params, &u, &reverse_noise, &mut drawn, &mut ws);
        let (mut group_lq, mut group_lr) = (0.0, 0.0);
        for j in 0..n {
            assert!((drawn[j] - want_drawn[j]).abs() < 1e-10);
            let at = &psi[j..j + 1];
            group_lq += guide.log_conditional_group(&params, j, at, &u, &mut ws);
            group_lr += guide.log_reverse_group(&params, j, &u, at, &mut ws);
            let mut one = [0.0];
            let noise = &reverse_noise[j..j + 1];
            guide.sample_reverse_group(&params, j, &u, noise, &mut one, &mut ws);
            assert!((one[0] - want_drawn[j]).abs() < 1e-10);
        }
        assert!(
            (group_lq - want_lq).abs() < 1e-10,
            "{group_lq} vs {want_lq}"
        );
        assert!(
            (group_lr - want_lr).abs() < 1e-10,
            "{group_lr} vs {want_lr}"
        );
        // A new draw of `u` makes the cache stale: without
        // `prepare_reverse`, the group densities still answer at the new `u`.
        let flipped: Vec<f64> = eps.iter().map(|e| -e).collect();
        let mut moved = vec![0.0; n];
        guide.sample_conditional(&params, &psi, &flipped, &mut moved, &mut ws);
        let (mut got, mut want) = (0.0, 0.0);
        for j in 0..n {
            let g = network_by_hand(&params[rev.clone()], 4, &[Y[j], SIGMA[j]], &[moved[j]]);
            want += log_normal_density(psi[j], g[0], g[1].exp());
            got += guide.log_reverse_group(&params, j, &moved, &psi[j..j + 1], &mut ws);
        }
        assert!((got - want).abs() < 1e-10, "{got} vs {want}");
    }
}

#[test]
fn the_reverse_encoder_bound_gradient_matches_finite_differences() {
    let model = model();
    bound_gradient_matches_finite_differences(&model, &ReverseNet::new(&model).unwrap());
}

#[test]
fn the_three_networks_bound_gradient_matches_finite_differences() {
    let model = model();
    bound_gradient_matches_finite_differences(&model, &ThreeNetworks::new(&model).unwrap());
}

/// The DIWHVI bound's gradient on the forward and tape engines against
/// central finite differences.
fn bound_gradient_matches_finite_differences<G: HierarchicalGuide>(model: &Local, guide: &G) {
    let params = random_params(guide, 7);
    let mut rng = StdRng::seed_from_u64(8);
    let noise = StepNoise::draw(guide, Diwhvi::new(2, 3), &mut rng);
    let objective = DiwhviObjective::new(model, guide, &noise);
    let tape = gradient_matches_finite_differences(&objective, &params);
    // The reverse network's weights move the bound (they are not dead).
    let rev = guide.reverse_params();
    assert!(rev.clone().any(|i| tape[i].abs() > 1e-6));
}

// Five points: within 0.06 nats per point (measured: 0.13 in all).
#[test]
fn a_fitted_guide_with_a_reverse_encoder_is_below_and_close_to_the_exact_evidence() {
    let model = model();
    let guide = ReverseNet::new(&model).unwrap();
    let exact = local_log_evidence(&Y, &SIGMA);
    fitted_is_below_and_close((&model, &guide, "reverse-encoder"), (4, 2000), exact);
}

#[test]
fn a_fitted_guide_with_three_networks_is_below_and_close_to_the_exact_evidence() {
    let model = model();
    let guide = ThreeNetworks::new(&model).unwrap();
    let exact = local_log_evidence(&Y, &SIGMA);
    fitted_is_below_and_close((&model, &guide, "three-network"), (4, 2000), exact);
}

/// `Σ_j [log q(z_j | ψ_j) + log τ(ψ_j | z_j)]` by groups, then the whole
/// `log q(z | ψ)` and `log τ(ψ | z)`, of [`ThreeNetworks`] at fixed `ψ` and
/// `z` as a function of the parameters: on a workspace that `prepare`
/// filled (each network's first layer starts from the point's data part,
/// `b₀ + W₀ᵀ x_j`, computed once) or on a fresh one (each call from the
/// point's inputs).
struct GroupSum<'a> {
    guide: &'a ThreeNetworks,
    prepared: bool,
    psi: Vec<f64>,
    u: Vec<f64>,
}

impl Differentiable for GroupSum<'_> {
    fn eval<T: Scalar>(&self, p: &[T]) -> T {
        let mut ws = Workspace::new(self.guide);
        if self.prepared {
            self.guide.prepare(p, &mut ws);
        }
        let psi: Vec<T> = self.psi.iter().map(|&v| T::constant(v)).collect();
        let u: Vec<T> = self.u.iter().map(|&v| T::constant(v)).collect();
        self.guide.prepare_reverse(p, &u, &mut ws);
        let mut total = T::constant(0.0);
        for j in 0..u.len() {
            let at = &psi[j..j + 1];
            total += self.guide.log_conditional_group(p, j, at, &u, &mut ws);
            total += self.guide.log_reverse_group(p, j, &u, at, &mut ws) * 0.7;
        }
        total += self.guide.log_conditional(p, &psi, &u, &mut ws) * 1.3;
        total + self.guide.log_reverse(p, &u, &psi, &mut ws) * 0.4
    }
}

#[test]
fn the_first_layer_parts_give_the_plain_paths_values_and_gradients() {
    let model = model();
    let guide = ThreeNetworks::new(&model).unwrap();
    let params = random_params(&guide, 11);
    let psi: Vec<f64> = (0..Y.len()).map(|j| 0.3 * j as f64 - 0.5).collect();
    let u: Vec<f64> = (0..Y.len()).map(|j| Y[j] * 0.8 - 0.1).collect();
    let of = |prepared| GroupSum {
        guide: &guide,
        prepared,
        psi: psi.clone(),
        u: u.clone(),
    };
    let (parts, plain) = (of(true), of(false));
    // The same additions in the same order: the same bits.
    assert_eq!(parts.eval(&params).to_bits(), plain.eval(&params).to_bits());
    let (tv, tape) = TapeEngine.value_and_gradient(&parts, &params);
    let (pv, reference) = TapeEngine.value_and_gradient(&plain, &params);
    let (dv, forward) = ForwardEngine::<8>::new().value_and_gradient(&parts, &params);
    assert_eq!((tv.to_bits(), dv.to_bits()), (pv.to_bits(), pv.to_bits()));
    for i in 0..params.len() {
        let tolerance = 1e-12 * (1.0 + reference[i].abs());
        assert!(
            (tape[i] - reference[i]).abs() <= tolerance,
            "∂{i} (tape): {} vs {}",
            tape[i],
            reference[i]
        );
        assert!(
            (forward[i] - reference[i]).abs() <= tolerance,
            "∂{i} (duals): {} vs {}",
            forward[i],
            reference[i]
        );
    }
    // The prepared workspace's parts are what the networks read: moved,
    // the group densities move (both networks have a context).
    let mut ws = Workspace::new(&guide);
    guide.prepare(&params, &mut ws);
    guide.prepare_reverse(&params, &u, &mut ws);
    let at = &psi[1..2];
    let before = guide.log_conditional_group(&params, 1, at, &u, &mut ws);
    ws.params[1..].iter_mut().for_each(|v| *v += 0.5);
    let after = guide.log_conditional_group(&params, 1, at, &u, &mut ws);
    assert!((after - before).abs() > 1e-3, "{after} vs {before}");
    let mut moved = Workspace::new(&guide);
    moved.params.clone_from(&ws.params);
    guide.prepare_reverse(&params, &u, &mut moved);
    let (fresh, stale) = (
        guide.log_reverse_group(&params, 1, &u, at, &mut Workspace::new(&guide)),
        guide.log_reverse_group(&params, 1, &u, at, &mut moved),
    );
    assert!((fresh - stale).abs() > 1e-3, "{fresh} vs {stale}");
}
