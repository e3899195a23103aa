//! Compile-time checks of `#[variational]`: each compile-fail case under
//! `tests/ui/{model,guide}/` with the compiler's message beside it (`.stderr`, refreshed with
//! `TRYBUILD=overwrite` after reading the diff); and `docs/COMPILE_CHECKS.md`
//! held to the cases, so that its quoted messages cannot drift.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Set in the child process that runs the cases (see [`ui`]).
const CHILD: &str = "IWHVI_UI_CHILD";

/// The rustc flags of trybuild's second `cargo check` (its
/// `build.rustflags`, plus the `--diagnostic-width=140` it adds to the
/// cases' run), separated by 0x1F as `CARGO_ENCODED_RUSTFLAGS` wants them.
const TRYBUILD_RUSTFLAGS: &str =
    "--cfg\x1ftrybuild\x1f--verbose\x1f-A\x1fdead_code\x1f--diagnostic-width=140";

/// The compile-fail cases, checked by trybuild, each message compared with
/// its `.stderr`.
///
/// trybuild checks the dependencies once (`cargo check` of an empty main)
/// and then the cases with one more rustc flag, `--diagnostic-width=140`;
/// the changed flags made Cargo check every dependency a second time, a
/// third of the test's CPU time (docs/PERFORMANCE.md, "Session 10").
/// `CARGO_ENCODED_RUSTFLAGS`, which trybuild leaves in place and which
/// Cargo prefers to its `--config` flags, gives both runs the second run's
/// flags, so the cases see exactly the flags they saw before. It is set on
/// a child run of this test (this binary, filtered to `ui`) rather than
/// with `std::env::set_var` in a process whose other tests run on threads;
/// the child's output (trybuild's report) is shown when it fails.
#[test]
fn ui() {
    if std::env::var_os(CHILD).is_none() {
        let child = Command::new(std::env::current_exe().expect("the test binary"))
            .args(["ui", "--exact", "--test-threads=1"])
            .env(CHILD, "1")
            .env("CARGO_ENCODED_RUSTFLAGS", TRYBUILD_RUSTFLAGS)
            .output()
            .expect("the test binary runs");
        assert!(
            child.status.success(),
            "the compile-fail cases failed:\n{}{}",
            String::from_utf8_lossy(&child.stdout),
            String::from_utf8_lossy(&child.stderr)
        );
        return;
    }
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/model/*.rs");
    t.compile_fail("tests/ui/guide/*.rs");
    // The pass cases (tests/ui/pass/) run as test targets of their own
    // (tests/macros/pass/, package `iwhvi-macro-tests`), so that trybuild
    // checks rather than builds.
}

/// One section of the page: the case it pins, its snippet and its quoted
/// message (none for a pass case).
struct Section {
    title: String,
    case: PathBuf,
    snippet: String,
    message: Option<String>,
}

/// The fenced blocks of `text` whose opening line starts with
/// "```" followed by `info`.
fn blocks<'a>(text: &'a str, info: &'a str) -> impl Iterator<Item = String> + 'a {
    let mut lines = text.lines();
    std::iter::from_fn(move || {
        lines
            .by_ref()
            .find(|l| l.starts_with("```") && l[3..].starts_with(info))?;
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        Some(body.join("\n"))
    })
}

fn sections(page: &str) -> Vec<Section> {
    page.split("\n### ")
        .skip(1)
        .filter_map(|section| {
            let title = section.lines().next().unwrap_or_default().to_string();
            let words: Vec<&str> = section.split_whitespace().collect();
            let at = words.windows(2).position(|w| w == ["Pinned", "by"])?;
            let case = words[at + 2].trim_matches(|c| c == '`' || c == '.');
            Some(Section {
                title,
                case: PathBuf::from(case),
                snippet: blocks(section, "rust").next()?,
                message: blocks(section, "text").next(),
            })
        })
        .collect()
}

fn cases(folder: &str) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(folder)
        .expect("the ui folder")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    cases.sort();
    cases
}

fn read(path: &Path) -> String {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.trim_end().to_string()
}

/// Every ui case is a section of `docs/COMPILE_CHECKS.md` whose snippet is
/// the case and whose quoted message is the case's `.stderr`, word for word.
#[test]
fn compile_checks_page_quotes_the_cases() {
    let page = std::fs::read_to_string("../docs/COMPILE_CHECKS.md").expect("the page");
    let sections = sections(&page);
    let mut problems = Vec::new();
    for case in ["tests/ui/model", "tests/ui/guide", "tests/ui/pass"]
        .iter()
        .flat_map(|folder| cases(folder))
    {
        let Some(section) = sections.iter().find(|s| s.case == case) else {
            problems.push(format!("{} has no section", case.display()));
            continue;
        };
        if section.snippet.trim_end() != read(&case) {
            problems.push(format!(
                "`{}`: the snippet differs from {}",
                section.title,
                case.display()
            ));
        }
        let stderr = case.with_extension("stderr");
        let expected = stderr.exists().then(|| read(&stderr));
        let quoted = section.message.as_ref().map(|m| m.trim_end().to_string());
        if quoted != expected {
            problems.push(format!(
                "`{}`: the quoted message differs from {}",
                section.title,
                stderr.display()
            ));
        }
    }
    for section in &sections {
        if !section.case.exists() {
            problems.push(format!(
                "`{}` pins {}, which does not exist",
                section.title,
                section.case.display()
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/COMPILE_CHECKS.md has drifted:\n{}",
        problems.join("\n")
    );
}

/// Every pass case has its test target in the package `iwhvi-macro-tests`:
/// `tests/macros/pass/<case>.rs`, which includes it, listed in that
/// package's manifest as `pass_<case>` (trybuild no longer sees the pass
/// cases).
#[test]
fn every_pass_case_runs_as_a_test() {
    let manifest = std::fs::read_to_string("../tests/macros/Cargo.toml").expect("the manifest");
    let missing: Vec<String> = cases("tests/ui/pass")
        .iter()
        .filter_map(|case| {
            let name = case.file_stem()?.to_str()?;
            let shim = PathBuf::from(format!("../tests/macros/pass/{name}.rs"));
            let text = std::fs::read_to_string(&shim).unwrap_or_default();
            let target = format!("name = \"pass_{name}\"\npath = \"pass/{name}.rs\"");
            let included = format!("include!(\"../../../iwhvi-macros/tests/ui/pass/{name}.rs\")");
            (!text.contains(&included) || !manifest.contains(&target))
                .then(|| shim.display().to_string())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "pass cases without a test target that includes them: {missing:?} \
         (copy tests/macros/pass/eight_schools.rs and its [[test]] in tests/macros/Cargo.toml)"
    );
}
