//! Sparse forward-mode dual numbers: a value and the partial derivatives in
//! the few inputs it depends on, out of many.
//!
//! The plate driver evaluates each element's arguments once on
//! [`Sparse<C>`] with every operand seeded as its own input: an element
//! whose predictor reads `mu`, `tau` and `theta[j]` of a thousand latents
//! carries three partials, not a thousand (or a thousand sixteen lanes at a
//! time). This is the "small local forward-mode pass over only the inputs
//! it touches" of preaccumulation: the cost per element is its own work
//! times the inputs it touches, so a plate whose elements each touch a few
//! of `m` operands costs `O(N)` instead of the dense passes' `O(N m / W)`.
//!
//! A value that would depend on more than `C` inputs *overflows*: its
//! partials are dropped and [`Sparse::overflowed`] says so, and the caller
//! falls back to dense passes. Each partial is computed by the same
//! arithmetic as [`Dual`](crate::Dual)'s lane for that input (the same
//! rules, products, sums and reciprocal), so the two agree bit for bit up
//! to the sign of a zero.

use std::fmt;

use super::rules::{self, ChainRule, Partials, Rule};
use crate::scalar::Scalar;

/// A value with partial derivatives in at most `C` inputs, by input index
/// (ascending), on the stack; `Copy`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sparse<const C: usize> {
    /// The value.
    pub value: f64,
    /// Entries in use (`index[..len]`, `partial[..len]`).
    len: u8,
    /// More than `C` inputs: the partials are unknown.
    overflow: bool,
    /// The inputs, ascending.
    index: [u32; C],
    /// `∂value/∂input[index[k]]`.
    partial: [f64; C],
}

impl<const C: usize> Sparse<C> {
    /// The constant `value`: no partials.
    #[inline(always)]
    pub const fn constant(value: f64) -> Self {
        Self {
            value,
            len: 0,
            overflow: false,
            index: [0; C],
            partial: [0.0; C],
        }
    }

    /// Input number `input`, at `value`: partial 1 in itself.
    #[inline]
    pub fn variable(value: f64, input: usize) -> Self {
        let mut x = Self::constant(value);
        x.index[0] = u32::try_from(input).expect("at most u32::MAX inputs");
        x.partial[0] = 1.0;
        x.len = 1;
        x
    }

    /// True when the value depends on more than `C` inputs.
    #[inline(always)]
    pub const fn overflowed(&self) -> bool {
        self.overflow
    }

    /// True for a constant: no partials and no overflow.
    #[inline(always)]
    pub const fn is_constant(&self) -> bool {
        self.len == 0 && !self.overflow
    }

    /// The `(input, partial)` pairs, inputs ascending (empty when
    /// overflowed).
    #[inline]
    pub fn entries(&self) -> impl Iterator<Item = (usize, f64)> + '_ {
        let len = if self.overflow { 0 } else { self.len as usize };
        self.index[..len]
            .iter()
            .zip(&self.partial[..len])
            .map(|(&i, &p)| (i as usize, p))
    }

    /// An overflowed value.
    #[inline(always)]
    fn overflowed_with(value: f64) -> Self {
        let mut x = Self::constant(value);
        x.overflow = true;
        x
    }

    /// Appends an entry; false when full.
    #[inline(always)]
    fn push(&mut self, input: u32, partial: f64) -> bool {
        let k = self.len as usize;
        if k == C {
            return false;
        }
        self.index[k] = input;
        self.partial[k] = partial;
        self.len += 1;
        true
    }

    /// Every partial times `inverse` unless `divisor` is 1, as
    /// [`Dual`](crate::Dual) divides its tangent.
    #[inline(always)]
    fn divide(mut self, divisor: f64) -> Self {
        if divisor != 1.0 {
            let inverse = 1.0 / divisor;
            for p in &mut self.partial[..self.len as usize] {
                *p *= inverse;
            }
        }
        self
    }
}

impl<const C: usize> fmt::Display for Sparse<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value)?;
        for (i, p) in self.entries() {
            write!(f, " + {p}ε{i}")?;
        }
        Ok(())
    }
}

rules::scalar_operators!([const C: usize] Sparse<C>);

impl<const C: usize> ChainRule for Sparse<C> {
    const SHARES_DIVISOR: bool = true;

    #[inline]
    fn unary<R: Rule<1>>(rule: R, x: Self) -> Self {
        let value = rule.value([x.value]);
        if x.is_constant() || rule.constant_result() {
            return Self::constant(value);
        }
        if x.overflow {
            return Self::overflowed_with(value);
        }
        let Partials {
            scaled: [d],
            divisor,
        } = rule.partials([x.value], value);
        let mut out = x;
        out.value = value;
        for p in &mut out.partial[..x.len as usize] {
            *p *= d;
        }
        // `Dual` computes `d · t`; the same product, operands swapped.
        out.divide(divisor)
    }

    #[inline]
    fn binary<R: Rule<2>>(rule: R, a: Self, b: Self) -> Self {
        let value = rule.value([a.value, b.value]);
        if (a.is_constant() && b.is_constant()) || rule.constant_result() {
            return Self::constant(value);
        }
        if a.overflow || b.overflow {
            return Self::overflowed_with(value);
        }
        let Partials {
            scaled: [da, db],
            divisor,
        } = rule.partials([a.value, b.value], value);
        // The same cases as `Dual::binary`: both sides (a missing input's
        // tangent is 0), or one side alone.
        let (use_a, use_b) = (!a.is_constant() || R::LINEAR, !b.is_constant() || R::LINEAR);
        let mut out = Self::constant(value);
        let (mut i, mut j) = (0, 0);
        let (na, nb) = (a.len as usize, b.len as usize);
        while i < na || j < nb {
            let next_a = (i < na).then(|| a.index[i]);
            let next_b = (j < nb).then(|| b.index[j]);
            let (input, ta, tb) = match (next_a, next_b) {
                (Some(x), Some(y)) if x == y => {
                    i += 1;
                    j += 1;
                    (x, a.partial[i - 1], b.partial[j - 1])
                }
                (Some(x), Some(y)) if x < y => {
                    i += 1;
                    (x, a.partial[i - 1], 0.0)
                }
                (Some(x), None) => {
                    i += 1;
                    (x, a.partial[i - 1], 0.0)
                }
                (_, Some(y)) => {
                    j += 1;
                    (y, 0.0, b.partial[j - 1])
                }
                (None, None) => unreachable!("the loop runs while an entry is left"),
            };
            let t = match (use_a, use_b) {
                (true, true) => da * ta + db * tb,
                (true, false) => da * ta,
                _ => db * tb,
            };
            if !out.push(input, t) {
                return Self::overflowed_with(value);
            }
        }
        out.divide(divisor)
    }

    #[inline]
    fn combine(value: f64, terms: impl Iterator<Item = (Self, f64)>, divisor: f64) -> Self {
        let mut out = Self::constant(value);
        let mut active = false;
        for (operand, partial) in terms {
            if operand.is_constant() {
                continue;
            }
            active = true;
            if operand.overflow {
                out.overflow = true;
                continue;
            }
            for (input, v) in operand.entries() {
                let input = input as u32;
                let len = out.len as usize;
                match out.index[..len].binary_search(&input) {
                    Ok(k) => out.partial[k] += partial * v,
                    Err(k) => {
                        if len == C {
                            out.overflow = true;
                            break;
                        }
                        out.index.copy_within(k..len, k + 1);
                        out.partial.copy_within(k..len, k + 1);
                        out.index[k] = input;
                        // `Dual` adds into a zero lane: 0 + partial · v.
                        out.partial[k] = 0.0 + partial * v;
                        out.len += 1;
                    }
                }
            }
        }
        if !active {
            return Self::constant(value);
        }
        if out.overflow {
            return Self::overflowed_with(value);
        }
        out.divide(divisor)
    }
}

impl<const C: usize> num_traits::Zero for Sparse<C> {
    #[inline(always)]
    fn zero() -> Self {
        Self::constant(0.0)
    }
    /// Zero value and no partials (an overflowed value is never zero).
    #[inline]
    fn is_zero(&self) -> bool {
        self.value == 0.0
            && !self.overflow
            && self.partial[..self.len as usize].iter().all(|p| *p == 0.0)
    }
}

impl<const C: usize> num_traits::One for Sparse<C> {
    #[inline(always)]
    fn one() -> Self {
        Self::constant(1.0)
    }
}

impl<const C: usize> Scalar for Sparse<C> {
    #[inline]
    fn is_finite(self) -> bool {
        self.value.is_finite()
            && self.partial[..self.len as usize]
                .iter()
                .all(|p| p.is_finite())
    }

    rules::rule_methods!(value_field);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dual::Dual;

    /// `f` on `Sparse<8>` and on `Dual<6>`, inputs `0..6` at `x`: the same
    /// value and, input by input, the same partials, bit for bit.
    fn agree(
        x: [f64; 6],
        f: impl Fn(&[Sparse<8>]) -> Sparse<8>,
        g: impl Fn(&[Dual<6>]) -> Dual<6>,
    ) {
        let sparse: Vec<Sparse<8>> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| Sparse::variable(v, i))
            .collect();
        let dual: Vec<Dual<6>> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| Dual::variable(v, i))
            .collect();
        let (s, d) = (f(&sparse), g(&dual));
        assert!(!s.overflowed());
        assert_eq!(s.value.to_bits(), d.value.to_bits());
        let mut dense = [0.0; 6];
        for (i, p) in s.entries() {
            dense[i] = p;
        }
        for (i, (a, b)) in dense.iter().zip(d.tangent()).enumerate() {
            assert!(
                a == &b || (a.abs() == 0.0 && b.abs() == 0.0),
                "input {i}: {a} vs {b}"
            );
            if *a != 0.0 {
                assert_eq!(a.to_bits(), b.to_bits(), "input {i}");
            }
        }
    }

    macro_rules! both {
        ($x:expr, |$v:ident| $body:expr) => {
            agree($x, |$v| $body, |$v| $body)
        };
    }

    #[test]
    fn partials_equal_the_dense_duals_bit_for_bit() {
        let x = [0.3, -1.2, 2.5, 0.7, 4.0, -0.1];
        both!(x, |v| v[0] + v[1] * v[3]);
        both!(x, |v| (v[4] - v[1]) / v[2]);
        both!(x, |v| v[2].ln() * v[3].exp() - v[0].sin());
        both!(x, |v| v[2].powf(v[3]) + v[4].powi(3));
        both!(x, |v| Scalar::log_sum_exp(&[v[0], v[5], v[1] * 2.0]));
        both!(x, |v| Scalar::dot(&v[0..3], &v[3..6]) / 3.0);
        both!(x, |v| (v[0] * 2.0 + 1.0) * (v[0] - v[5]));
        both!(x, |v| Scalar::with_partials(
            1.5,
            &[v[1], v[4], v[1]],
            &[2.0, -1.0, 0.5]
        ));
    }

    #[test]
    fn more_inputs_than_capacity_overflow_and_constants_stay_constant() {
        let v: Vec<Sparse<2>> = (0..3).map(|i| Sparse::variable(i as f64, i)).collect();
        assert!(!(v[0] + v[2]).overflowed());
        let all = v[0] + v[1] + v[2];
        assert!(all.overflowed() && !all.is_constant());
        assert!((all * 2.0).exp().overflowed());
        assert!(Scalar::dot(&v, &v).overflowed());
        let c = Sparse::<2>::constant(2.0);
        assert!((c * c + c.ln()).is_constant());
        assert_eq!((c * v[1]).entries().collect::<Vec<_>>(), [(1, 2.0)]);
    }
}
