//! The normal distribution.

use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

use super::supports::Real;
use super::{Distribution, DistributionError, Reparameterized, Support, check};
use crate::scalar::Scalar;
use crate::special::LN_SQRT_2PI;

/// Normal (Gaussian) distribution `N(loc, scale²)`, parameterized by mean
/// `loc` and standard deviation `scale > 0`:
///
/// `log p(x) = -½ ((x - loc) / scale)² - ln scale - ½ ln 2π`.
///
/// Reparameterized: `x = loc + scale · ε`, `ε ~ N(0, 1)`.
///
/// ```
/// use iwhvi_core::distributions::{Distribution, Normal};
/// let d = Normal::new(0.0, 1.0).unwrap();
/// assert!((d.log_prob(0.0) + 0.5 * (2.0 * std::f64::consts::PI).ln()).abs() < 1e-15);
/// assert!(Normal::new(0.0, -1.0).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normal<T: Scalar = f64> {
    loc: T,
    scale: T,
}

impl<T: Scalar> Normal<T> {
    /// `N(loc, scale²)`.
    ///
    /// # Errors
    /// If `loc` is not finite or `scale` is not positive and finite.
    pub fn new(loc: T, scale: T) -> Result<Self, DistributionError> {
        Ok(Self {
            loc: check::finite("Normal", "loc", loc)?,
            scale: check::positive("Normal", "scale", scale)?,
        })
    }

    /// The mean.
    pub fn loc(&self) -> T {
        self.loc
    }

    /// The standard deviation.
    pub fn scale(&self) -> T {
        self.scale
    }
}

impl<T: Scalar> Distribution<T> for Normal<T> {
    type Value = T;
    type Support = Real;

    /// Two fused nodes where the operators would make eight: the
    /// standardised `z = (x − loc) / scale`, with the quotient rule's
    /// partials `(1, −1, −z) / scale`, then
    /// `−z²/2 − ln scale − ½ ln 2π` with partials `−z` in `z` and
    /// `−1/scale` in `scale`. Value, tangents and tape adjoints are the
    /// bits the operator form `-(z * z) * 0.5 - scale.ln() - LN_SQRT_2PI`
    /// gives (up to the sign of a zero tangent, and except where the tape's
    /// product of an adjoint and `z` is subnormal: the operator form then
    /// loses low bits that the fused form keeps): each partial is the
    /// product the chain rule through the eight operations would form,
    /// and one node would not be (the tape multiplies an adjoint by a
    /// partial: `ḡ · (−z/σ)` is not `(ḡ · −z) · (1/σ)`).
    #[inline]
    fn log_prob(&self, x: T) -> T {
        let (loc, scale) = (self.loc, self.scale);
        let (xv, s) = (x.value(), scale.value());
        let z = (xv - loc.value()) / s;
        let standard = T::with_partials_over(z, &[x, loc, scale], &[1.0, -1.0, -z], s);
        T::with_partials(
            standard_log_density(z, s),
            &[standard, scale],
            &[-z, -(1.0 / s)],
        )
    }

    fn support(&self) -> Support {
        Support::Real
    }
}

impl<T: Scalar> Reparameterized<T> for Normal<T> {
    fn sample_noise<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        rng.sample(StandardNormal)
    }

    /// One fused node, `loc + scale · noise` with partials `1` and
    /// `noise`: the bits of the operator form (a product node, then a sum
    /// node) on every scalar, up to the sign of a zero tangent.
    #[inline]
    fn rsample(&self, noise: f64) -> T {
        let value = self.loc.value() + self.scale.value() * noise;
        T::with_partials(value, &[self.loc, self.scale], &[1.0, noise])
    }
}

/// `−z²/2 − ln σ − ln √(2π)` at the standardised `z = (x − μ)/σ`: the
/// value of [`Normal::log_prob`]'s second fused node, which
/// [`NormalBatch`](crate::guide::NormalBatch)'s densities compute by the
/// same operations (so that the two give the same bits).
#[inline]
pub(crate) fn standard_log_density(z: f64, scale: f64) -> f64 {
    -(z * z) * 0.5 - scale.ln() - LN_SQRT_2PI
}

impl rand::distr::Distribution<f64> for Normal<f64> {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        self.rsample(self.sample_noise(rng))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fused_tests::{self as check, Fused};
    use super::*;
    use crate::Dual;
    use crate::tape::TapeEngine;

    /// `N(x; loc, scale)` of `[x, loc, scale]`.
    struct Density;

    impl Fused<3> for Density {
        fn fused<T: Scalar>(&self, [x, loc, scale]: [T; 3]) -> T {
            Normal { loc, scale }.log_prob(x)
        }
        fn operators<T: Scalar>(&self, [x, loc, scale]: [T; 3]) -> T {
            let z = (x - loc) / scale;
            -(z * z) * 0.5 - scale.ln() - LN_SQRT_2PI
        }
    }

    /// `loc + scale · noise` of `[loc, scale, noise]` (the noise a
    /// constant to the draw: its derivative is not compared).
    struct Draw;

    impl Fused<3> for Draw {
        fn fused<T: Scalar>(&self, [loc, scale, noise]: [T; 3]) -> T {
            Normal { loc, scale }.rsample(noise.value())
        }
        fn operators<T: Scalar>(&self, [loc, scale, noise]: [T; 3]) -> T {
            loc + scale * noise.value()
        }
    }

    #[test]
    fn rsample_is_the_operator_form_bit_for_bit() {
        let moderate = check::points(
            4,
            200,
            [check::moderate, check::moderate_positive, check::moderate],
        );
        let extreme = check::points(
            5,
            200,
            [check::extreme, check::extreme_positive, check::extreme],
        );
        for v in moderate.into_iter().chain(extreme) {
            check::assert_same_bits(&Draw, v);
        }
    }

    #[test]
    fn log_prob_is_the_operator_form_bit_for_bit() {
        let moderate = check::points(
            1,
            300,
            [check::moderate, check::moderate, check::moderate_positive],
        );
        let extreme = check::points(
            2,
            300,
            [check::extreme, check::extreme, check::extreme_positive],
        );
        let special = [
            [0.5, 0.5, 2.0],
            [3.0, -1.0, 1.0],
            [1.0, 0.0, 5e-324],
            [f64::MAX, -f64::MAX, 1.0],
            [-0.0, 0.0, 1e300],
        ];
        for v in moderate.into_iter().chain(extreme).chain(special) {
            check::assert_same_bits(&Density, v);
        }
    }

    #[test]
    fn a_subnormal_standardised_point_is_exact_on_the_tape() {
        // z = 1e-310: the operator form halves a subnormal adjoint product
        // (−ḡ/2 · z, then doubled) and loses its low bits; the fused form
        // forms −ḡ · z at once. Same value; the fused derivative exact.
        let v = [1e-310, 0.0, 1.0];
        assert_eq!(Density.fused(v).to_bits(), Density.operators(v).to_bits());
        struct AtX(bool);
        impl crate::Differentiable for AtX {
            fn eval<T: Scalar>(&self, x: &[T]) -> T {
                let v = [x[0], T::constant(0.0), T::constant(1.0)];
                if self.0 {
                    Density.fused(v)
                } else {
                    Density.operators(v)
                }
            }
        }
        let (_, fused) = TapeEngine.value_and_gradient(&AtX(true), &[1e-310]);
        let (_, operators) = TapeEngine.value_and_gradient(&AtX(false), &[1e-310]);
        assert_eq!(fused[0], -1e-310);
        assert!((operators[0] - fused[0]).abs() <= 1e-12 * 1e-310);
        assert_ne!(operators[0], fused[0]);
    }

    #[test]
    fn log_prob_derivatives_are_finite_differences() {
        let points = check::points(
            3,
            100,
            [check::moderate, check::moderate, check::moderate_positive],
        );
        for v in points {
            check::assert_finite_differences(&Density, v, 1.0, 1e-6);
        }
    }

    #[test]
    fn log_prob_records_two_nodes_and_rsample_one() {
        struct Both;
        impl crate::Differentiable for Both {
            fn eval<T: Scalar>(&self, v: &[T]) -> T {
                let lp = Density.fused([v[0], v[1], v[2]]);
                let draw = Draw.fused([v[1], v[2], T::constant(0.3)]);
                assert!(lp.value().is_finite() && draw.value().is_finite());
                lp
            }
        }
        TapeEngine.value_and_gradient(&Both, &[0.2, -0.1, 1.5]);
        // The three inputs; z (3 edges), the density (2), the draw (2).
        assert_eq!(crate::tape::recorded(), (6, 7));
    }

    #[test]
    fn log_prob_derivatives_are_the_analytic_ones() {
        // d/dx = −z/σ, d/dμ = z/σ, d/dσ = (z² − 1)/σ at z = (x − μ)/σ.
        let (x, loc, scale) = (1.3, -0.4, 0.7);
        let lp = Density.fused([
            Dual::<3>::variable(x, 0),
            Dual::variable(loc, 1),
            Dual::variable(scale, 2),
        ]);
        let z = (x - loc) / scale;
        let expected = [-z / scale, z / scale, (z * z - 1.0) / scale];
        for (t, e) in lp.tangent().iter().zip(expected) {
            assert!((t - e).abs() <= 1e-14 * e.abs(), "{t} vs {e}");
        }
    }
}
