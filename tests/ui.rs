//! Compile-time checks of `#[variational]`: each case under `tests/ui/`
//! with the compiler's message beside it (`.stderr`, refreshed with
//! `TRYBUILD=overwrite` after reading the diff).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/model/*.rs");
    t.compile_fail("tests/ui/guide/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
