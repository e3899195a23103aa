//! The expansion is lint-clean and uses absolute paths only: this file
//! denies warnings and shadows the prelude names generated code could
//! otherwise pick up.
#![deny(warnings, missing_docs, unused_qualifications)]
#![allow(dead_code)]

#[allow(unused_imports)]
mod shadowing {
    /// Shadows `Option`.
    pub struct Option;
    /// Shadows `Result`.
    pub struct Result;
    /// Shadows `Box`.
    pub struct Box;
    /// Shadows `Vec`.
    pub struct Vec;
    /// Shadows `f64` helpers.
    pub fn exp() {}
}
#[allow(unused_imports)]
use shadowing::*;

use iwhvi::variational;

/// A hierarchical regression with an index into a latent vector.
#[variational]
pub struct Radon {
    /// Predictor.
    #[data]
    pub x: std::vec::Vec<f64>,
    /// County of each house.
    #[data]
    pub county: std::vec::Vec<usize>,
    /// Number of counties.
    #[data]
    pub counties: usize,
    #[latent(Normal(0.0, 10.0))]
    mu_a: f64,
    #[latent(HalfNormal(5.0))]
    sigma_a: f64,
    #[latent(Normal(mu_a, sigma_a), len = counties)]
    a: std::vec::Vec<f64>,
    #[latent(Normal(0.0, 10.0))]
    b: f64,
    #[latent(Exponential(1.0))]
    sigma_y: f64,
    /// Log radon.
    #[observe(Normal(a[county[i]] + b * x[i], sigma_y), for i)]
    pub y: std::vec::Vec<f64>,
}

#[test]
fn expands_without_warnings() {
    use iwhvi::model::Model;
    let model = Radon::new(vec![0.0, 1.0, 0.0], vec![0, 1, 1], 2, vec![1.2, 0.4, 0.9]).unwrap();
    assert_eq!(model.dim(), 6);
    assert!(model.log_joint(&[0.1; 6]).is_finite());
}
