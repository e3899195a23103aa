//! Property tests: derivatives of randomly generated compositions of the
//! elementary functions, through the chunked gradient engine, against
//! fourth-order central finite differences.

use crate::common::central_difference;
use iwhvi::{Differentiable, Dual, ForwardEngine, Parallelism, Scalar};
use proptest::prelude::*;

/// Number of free variables in a generated expression.
const VARS: usize = 5;

/// A random expression. Each unary node first maps its argument into the
/// function's domain with a smooth map, so that every generated expression
/// is differentiable everywhere (finite differences need smoothness).
#[derive(Clone, Debug)]
enum Expr {
    Var(usize),
    Const(f64),
    Add(Box<Expr>, Box<Expr>),
    Sub(Box<Expr>, Box<Expr>),
    Mul(Box<Expr>, Box<Expr>),
    Div(Box<Expr>, Box<Expr>),
    Pow(Box<Expr>, Box<Expr>),
    Powi(Box<Expr>, i32),
    LogSumExp(Vec<Expr>),
    Unary(Func, Box<Expr>),
}

#[derive(Clone, Copy, Debug)]
enum Func {
    Exp,
    Ln,
    Ln1p,
    ExpM1,
    Sqrt,
    Sin,
    Cos,
    Tan,
    Tanh,
    Atan,
    Sinh,
    Cosh,
    Recip,
    Sigmoid,
    Softplus,
    LogSigmoid,
    LnGamma,
    Digamma,
    Trigamma,
    Erf,
    Erfc,
    StdNormalLogCdf,
}

const FUNCS: [Func; 22] = [
    Func::Exp,
    Func::Ln,
    Func::Ln1p,
    Func::ExpM1,
    Func::Sqrt,
    Func::Sin,
    Func::Cos,
    Func::Tan,
    Func::Tanh,
    Func::Atan,
    Func::Sinh,
    Func::Cosh,
    Func::Recip,
    Func::Sigmoid,
    Func::Softplus,
    Func::LogSigmoid,
    Func::LnGamma,
    Func::Digamma,
    Func::Trigamma,
    Func::Erf,
    Func::Erfc,
    Func::StdNormalLogCdf,
];

impl Expr {
    fn eval<T: Scalar>(&self, x: &[T]) -> T {
        match self {
            Expr::Var(i) => x[*i],
            Expr::Const(c) => T::constant(*c),
            Expr::Add(a, b) => a.eval(x) + b.eval(x),
            Expr::Sub(a, b) => a.eval(x) - b.eval(x),
            Expr::Mul(a, b) => a.eval(x) * b.eval(x),
            Expr::Div(a, b) => a.eval(x) / (b.eval(x).square() + 1.0),
            Expr::Pow(a, b) => (a.eval(x).softplus() + 0.1).powf(b.eval(x).tanh()),
            Expr::Powi(a, n) => (a.eval(x).square() + 1.0).powi(*n),
            Expr::LogSumExp(terms) => {
                let values: Vec<T> = terms.iter().map(|t| t.eval(x)).collect();
                T::log_sum_exp(&values)
            }
            Expr::Unary(f, a) => {
                let a = a.eval(x);
                let bounded = a.tanh();
                let positive = a.softplus() + 0.5;
                match f {
                    Func::Exp => (bounded * 3.0).exp(),
                    Func::Ln => positive.ln(),
                    Func::Ln1p => a.square().ln_1p(),
                    Func::ExpM1 => bounded.exp_m1(),
                    Func::Sqrt => (a.square() + 1.0).sqrt(),
                    Func::Sin => a.sin(),
                    Func::Cos => a.cos(),
                    Func::Tan => bounded.tan(),
                    Func::Tanh => a.tanh(),
                    Func::Atan => a.atan(),
                    Func::Sinh => (bounded * 3.0).sinh(),
                    Func::Cosh => (bounded * 3.0).cosh(),
                    Func::Recip => positive.recip(),
                    Func::Sigmoid => a.sigmoid(),
                    Func::Softplus => a.softplus(),
                    Func::LogSigmoid => a.log_sigmoid(),
                    Func::LnGamma => positive.ln_gamma(),
                    Func::Digamma => positive.digamma(),
                    Func::Trigamma => positive.trigamma(),
                    Func::Erf => a.erf(),
                    Func::Erfc => a.erfc(),
                    Func::StdNormalLogCdf => (bounded * 30.0).std_normal_log_cdf(),
                }
            }
        }
    }
}

impl Differentiable for Expr {
    fn eval<T: Scalar>(&self, x: &[T]) -> T {
        Expr::eval(self, x)
    }
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        (0..VARS).prop_map(Expr::Var),
        (-2.0..2.0f64).prop_map(Expr::Const),
    ];
    leaf.prop_recursive(5, 48, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Add(a.into(), b.into())),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Sub(a.into(), b.into())),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Mul(a.into(), b.into())),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Div(a.into(), b.into())),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Pow(a.into(), b.into())),
            (inner.clone(), -3..4i32).prop_map(|(a, n)| Expr::Powi(a.into(), n)),
            prop::collection::vec(inner.clone(), 1..4).prop_map(Expr::LogSumExp),
            (0..FUNCS.len(), inner).prop_map(|(f, a)| Expr::Unary(FUNCS[f], a.into())),
        ]
    })
}

fn point() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(-2.0..2.0f64, VARS)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The engine's gradient agrees with central finite differences.
    #[test]
    fn gradient_matches_finite_differences(e in expr(), x in point()) {
        let f64_value = e.eval(&x);
        prop_assume!(f64_value.is_finite() && f64_value.abs() < 1e6);
        let (value, grad) = ForwardEngine::<4>::new().value_and_gradient(&e, &x);
        prop_assert_eq!(value, f64_value);
        for (i, &g) in grad.iter().enumerate() {
            let fd = central_difference(|y| e.eval(y), &x, i);
            prop_assume!(fd.is_finite());
            let scale = 1.0 + fd.abs().max(g.abs()) + f64_value.abs();
            prop_assert!(
                (g - fd).abs() <= 1e-6 * scale,
                "∂/∂x{} = {} but finite difference {} for {:?} at {:?}", i, g, fd, e, x
            );
        }
    }

    /// Every width, every remainder, threads or not: the same bits.
    #[test]
    fn gradient_is_bit_identical_across_widths_and_threads(e in expr(), x in point()) {
        let reference = ForwardEngine::<1>::new()
            .with_parallelism(Parallelism::SingleThread)
            .value_and_gradient(&e, &x);
        let all_cores = Parallelism::AllCores;
        prop_assert_eq!(&ForwardEngine::<2>::new().with_parallelism(all_cores).value_and_gradient(&e, &x), &reference);
        prop_assert_eq!(&ForwardEngine::<3>::new().with_parallelism(all_cores).value_and_gradient(&e, &x), &reference);
        prop_assert_eq!(
            &ForwardEngine::<4>::new().with_parallelism(Parallelism::SingleThread).value_and_gradient(&e, &x),
            &reference
        );
        prop_assert_eq!(&ForwardEngine::<8>::new().value_and_gradient(&e, &x), &reference);
        prop_assert_eq!(&ForwardEngine::<1>::new().with_parallelism(all_cores).value_and_gradient(&e, &x), &reference);
    }

    /// The reverse-mode tape gives the forward-mode gradient.
    #[test]
    fn reverse_mode_agrees_with_forward_mode(e in expr(), x in point()) {
        let (value, forward) = ForwardEngine::<4>::new().value_and_gradient(&e, &x);
        prop_assume!(value.is_finite() && forward.iter().all(|g| g.is_finite()));
        let (reverse_value, reverse) = iwhvi::tape::TapeEngine.value_and_gradient(&e, &x);
        prop_assert_eq!(reverse_value, value);
        for (i, (f, r)) in forward.iter().zip(&reverse).enumerate() {
            prop_assert!((f - r).abs() <= 1e-12 * (1.0 + f.abs()), "∂/∂x{}: forward {} vs reverse {}", i, f, r);
        }
    }

    /// A partial reverse-mode gradient (only some inputs on the tape) is
    /// exactly the full gradient's slice.
    #[test]
    fn partial_reverse_gradients_are_slices_of_the_full_one(e in expr(), x in point(), cut in 0usize..4) {
        let engine = iwhvi::tape::TapeEngine;
        let (value, full) = engine.value_and_gradient(&e, &x);
        let directions = cut.min(x.len())..x.len();
        let mut out = vec![0.0; directions.len()];
        let partial_value = engine.value_and_partial_gradient_into(&e, &x, directions.clone(), &mut out);
        prop_assert!(partial_value == value || (value.is_nan() && partial_value.is_nan()));
        for (a, b) in out.iter().zip(&full[directions]) {
            prop_assert!(a == b || (a.is_nan() && b.is_nan()), "{} vs {}", a, b);
        }
    }

    /// A directional derivative is the gradient's dot product with the direction.
    #[test]
    fn jvp_is_gradient_dot_direction(e in expr(), x in point(), v in point()) {
        let engine = ForwardEngine::<4>::new();
        let (value, grad) = engine.value_and_gradient(&e, &x);
        prop_assume!(value.is_finite() && grad.iter().all(|g| g.is_finite()));
        let (jvp_value, slope) = engine.jvp(&e, &x, &v);
        let dot: f64 = grad.iter().zip(&v).map(|(g, v)| g * v).sum();
        prop_assert_eq!(jvp_value, value);
        let scale = 1.0 + grad.iter().zip(&v).map(|(g, v)| (g * v).abs()).sum::<f64>();
        prop_assert!((slope - dot).abs() <= 1e-12 * scale, "jvp {} vs ∇f·v {}", slope, dot);
        let (_, slopes) = engine.jvps(&e, &x, &[&v, &x]);
        prop_assert_eq!(slopes[0], slope);
    }
}

#[test]
fn abs_derivative_is_the_sign() {
    for (x, d) in [(-2.0, -1.0), (3.0, 1.0), (0.0, 0.0)] {
        assert_eq!(Dual::<1>::variable(x, 0).abs().tangent(), [d]);
    }
}

#[test]
fn mixed_arithmetic_with_f64_on_either_side() {
    let x = Dual::<1>::variable(2.0, 0);
    let cases = [
        (x + 3.0, 3.0 + x, 5.0, 1.0),
        (x - 3.0, -(3.0 - x), -1.0, 1.0),
        (x * 3.0, 3.0 * x, 6.0, 3.0),
        (x / 4.0, (4.0 / x).recip(), 0.5, 0.25),
    ];
    for (right, left, value, derivative) in cases {
        assert_eq!((right.value, right.tangent()), (value, [derivative]));
        assert_eq!(left.value, value);
        assert!((left.tangent()[0] - derivative).abs() < 1e-15);
    }
    let mut y = x;
    y += 1.0;
    y *= x;
    y -= 2.0;
    y /= 2.0;
    // y = ((x + 1) x - 2) / 2, y' = (2x + 1) / 2
    assert_eq!((y.value, y.tangent()), (2.0, [2.5]));
}

#[test]
fn empty_parameter_vector_has_empty_gradient() {
    struct Constant;
    impl Differentiable for Constant {
        fn eval<T: Scalar>(&self, _: &[T]) -> T {
            T::constant(4.0)
        }
    }
    assert_eq!(iwhvi::gradient(&Constant, &[]), (4.0, vec![]));
}

#[test]
fn remainder_chunks_cover_every_parameter() {
    /// f(x) = Σᵢ (i + 1) xᵢ², ∂f/∂xᵢ = 2 (i + 1) xᵢ.
    struct Weighted;
    impl Differentiable for Weighted {
        fn eval<T: Scalar>(&self, x: &[T]) -> T {
            x.iter()
                .enumerate()
                .map(|(i, &xi)| xi.square() * (i + 1) as f64)
                .sum()
        }
    }
    for p in 1..=37 {
        let x: Vec<f64> = (0..p).map(|i| 0.5 + i as f64).collect();
        let want: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, xi)| 2.0 * (i + 1) as f64 * xi)
            .collect();
        let engine = ForwardEngine::<8>::new();
        assert_eq!(engine.passes(p), p.div_ceil(8));
        assert_eq!(engine.value_and_gradient(&Weighted, &x).1, want, "P = {p}");
    }
}

#[test]
fn many_passes_on_all_cores_give_the_single_threaded_bits() {
    /// f(x) = log Σᵢ exp(sin(xᵢ) xᵢ₊₁) + Σᵢ ln Γ(1 + xᵢ²)
    struct Coupled;
    impl Differentiable for Coupled {
        fn eval<T: Scalar>(&self, x: &[T]) -> T {
            let terms: Vec<T> = x.windows(2).map(|w| w[0].sin() * w[1]).collect();
            T::log_sum_exp(&terms)
                + x.iter()
                    .map(|&xi| (xi.square() + 1.0).ln_gamma())
                    .sum::<T>()
        }
    }
    let x: Vec<f64> = (0..203).map(|i| (i as f64 * 0.37).sin() * 2.0).collect();
    let single = ForwardEngine::<4>::new()
        .with_parallelism(Parallelism::SingleThread)
        .value_and_gradient(&Coupled, &x);
    let parallel = ForwardEngine::<4>::new()
        .with_parallelism(Parallelism::AllCores)
        .value_and_gradient(&Coupled, &x);
    assert_eq!(single.0.to_bits(), parallel.0.to_bits());
    for (a, b) in single.1.iter().zip(&parallel.1) {
        assert_eq!(a.to_bits(), b.to_bits());
    }
}

/// `x^c` with a constant exponent is differentiable at negative `x`
/// (integer `c`): forward mode agrees with the reverse tape, no NaN from
/// the exponent's `ln x` term.
#[test]
fn powf_with_a_constant_exponent_at_a_negative_base() {
    struct Square;
    impl Differentiable for Square {
        fn eval<T: Scalar>(&self, x: &[T]) -> T {
            x[0].powf(T::constant(2.0))
        }
    }
    let (value, forward) = ForwardEngine::<4>::new().value_and_gradient(&Square, &[-2.0]);
    let (_, reverse) = iwhvi::tape::TapeEngine.value_and_gradient(&Square, &[-2.0]);
    assert_eq!(value, 4.0);
    assert_eq!(forward, vec![-4.0]);
    assert_eq!(reverse, forward);
}

/// The fused reductions (`dot`, `scaled_squared_distance`, `log_sum_exp`),
/// with constants among their operands, give both engines the same
/// gradient, the finite-difference one, and the value of their unfused
/// `f64` form.
#[test]
fn fused_reductions_agree_across_engines_with_constant_operands() {
    struct Fused;
    impl Differentiable for Fused {
        fn eval<T: Scalar>(&self, x: &[T]) -> T {
            let a = [x[0], T::constant(0.7), x[1]];
            let b = [x[2], x[3], T::constant(-1.3)];
            let scale = [x[4], T::constant(2.0), x[0]];
            let mean = [T::constant(0.2), x[1], x[2]];
            let lse = T::log_sum_exp(&[x[3], T::constant(0.5), x[4] * x[0]]);
            T::dot(&a, &b) + T::scaled_squared_distance(&b, &mean, &scale) * lse
        }
    }
    let x = [0.9, -1.4, 0.6, 1.1, -0.35];
    let unfused = {
        let [x0, x1, x2, x3, x4] = x;
        let lse = ((x3.exp() + 0.5f64.exp()) + (x4 * x0).exp()).ln();
        let dot = ((0.0 + x0 * x2) + 0.7 * x3) + x1 * -1.3;
        let ssd = ((0.0 + ((x2 - 0.2) * x4).powi(2)) + ((x3 - x1) * 2.0).powi(2))
            + ((-1.3 - x2) * x0).powi(2);
        dot + ssd * lse
    };
    let (value, forward) = ForwardEngine::<2>::new().value_and_gradient(&Fused, &x);
    let (tape_value, tape) = iwhvi::tape::TapeEngine.value_and_gradient(&Fused, &x);
    assert_eq!(value, Fused.eval(&x));
    assert_eq!(tape_value, value);
    assert!((value - unfused).abs() <= 1e-12 * unfused.abs());
    for i in 0..x.len() {
        let fd = central_difference(|y| Fused.eval(y), &x, i);
        let scale = 1.0 + fd.abs();
        assert!(
            (forward[i] - fd).abs() <= 1e-7 * scale,
            "∂/∂x{i}: forward {} vs {fd}",
            forward[i]
        );
        assert!(
            (tape[i] - forward[i]).abs() <= 1e-13 * scale,
            "∂/∂x{i}: tape {} vs forward {}",
            tape[i],
            forward[i]
        );
    }
}
