//! The numeric building blocks against outside truth: special functions,
//! densities and samplers, transforms, dual numbers and the linear algebra
//! through them (one test binary, one module per former test file).

mod common;

mod distributions_reference;
mod distributions_sampling;
mod dual_properties;
mod linalg_duals;
mod ode;
mod special_reference;
mod transforms;
