//! Empty: the package exists for its test binary, `main.rs` (`cargo test
//! -p iwhvi-macro-tests`), which the root manifest's test profile builds
//! unoptimised.
