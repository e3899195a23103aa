//! The pass case `iwhvi-macros/tests/ui/pass/vector_arguments.rs` (docs/COMPILE_CHECKS.md), a crate
//! root of its own, compiled and run as a test: the pass cases are test
//! targets rather than trybuild cases so that trybuild, with compile-fail
//! cases only, checks instead of building every dependency again.

include!("../../../iwhvi-macros/tests/ui/pass/vector_arguments.rs");

#[test]
fn compiles_and_runs() {
    main();
}
