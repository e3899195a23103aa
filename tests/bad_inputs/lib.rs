//! Empty: the package exists for its test binary, `main.rs` (`cargo test
//! -p iwhvi-bad-input-tests`), which the root manifest's test profile
//! builds unoptimised.
