//! Reads of data (and of vector latents) at positions the data do not
//! have. A position written as a literal (`y[7]`, `x[2..5]`, `m.row(3)`,
//! `m[(0, 4)]`) is checked by the generated `new` (`DataError::OutOfRange`,
//! naming the field, the read and the term); so is a position computed
//! from the data or the loop index, at every element of the loop
//! (`DataError::OutOfRangeAt`, with the position and the element). A read
//! that `new` cannot evaluate (under an `if` branch) gives a term that is
//! not finite, which `fit` names before the first step
//! (`FitError::InvalidStart`), never a panic; so does one in the condition
//! of an `if` (`gaps.rs`).

use iwhvi::fit::{FitConfig, FitError, fit};
use iwhvi::guide::MeanField;
use iwhvi::model::Model;
use iwhvi::objective::Diwhvi;
use iwhvi::optim::Adam;
use iwhvi::variational;
use nalgebra::DMatrix;

use super::{Case, outcome, run_table};

fn case(name: &'static str, expected: &'static str, f: impl Fn() -> String + 'static) -> Case {
    (name, expected, Box::new(f))
}

/// The fit's outcome, with the term `InvalidStart` names written out
/// (`InvalidStart(Likelihood { field: "y", .. })`).
fn start<M: Model>(model: &M) -> String {
    let config = FitConfig::new(Diwhvi::elbo()).max_steps(5).progress(false);
    match fit(
        model,
        &MeanField::new(model.dim()),
        Adam::new(0.01),
        &config,
    ) {
        Err(FitError::InvalidStart {
            term: Some(invalid),
            ..
        }) => format!("InvalidStart({:?})", invalid.term),
        other => outcome(other),
    }
}

/// A literal index of a data vector, as a scale.
#[variational]
struct LiteralIndex {
    #[data]
    scales: Vec<f64>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(mu, scales[2]), for i)]
    y: Vec<f64>,
}

/// Slices with literal bounds: closed, open at the start, open at the end.
#[variational]
struct LiteralSlices {
    #[data]
    alpha: Vec<f64>,
    #[latent(Dirichlet(alpha[..=2]))]
    first: [f64; 3],
    #[latent(Dirichlet(alpha[2..]))]
    rest: [f64; 2],
}

/// A slice whose start is after its end.
#[variational]
struct BackwardSlice {
    #[data]
    alpha: Vec<f64>,
    #[latent(Dirichlet(alpha[3..1]))]
    theta: [f64; 2],
}

/// A literal row, column and entry of a data matrix.
#[variational]
struct LiteralMatrix {
    #[data]
    w: DMatrix<f64>,
    #[latent(Dirichlet(w.row(1)))]
    by_row: [f64; 3],
    #[latent(Dirichlet(w.column(2)))]
    by_column: [f64; 2],
    #[latent(HalfNormal(w[(1, 2)]))]
    scale: f64,
}

/// A group index from the data into a vector latent.
#[variational]
struct Groups {
    #[latent(Normal(0.0, 1.0))]
    a: [f64; 3],
    #[data]
    group: Vec<usize>,
    #[observe(Normal(a[group[i]], 1.0), for i)]
    y: Vec<f64>,
}

/// The next entry of a data vector, read at every element.
#[variational]
struct Lagged {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[data]
    x: Vec<f64>,
    #[observe(Normal(mu + x[i + 1], 1.0), for i)]
    y: Vec<f64>,
}

/// A row of a data matrix chosen by a data scalar.
#[variational]
struct ChosenRow {
    #[data]
    k: usize,
    #[data]
    w: DMatrix<f64>,
    #[latent(Dirichlet(w.row(k)))]
    theta: [f64; 2],
}

/// A slice whose bounds come from the data.
#[variational]
struct DataSlice {
    #[data]
    from: usize,
    #[data]
    alpha: Vec<f64>,
    #[latent(Dirichlet(alpha[from..from + 2]))]
    theta: [f64; 2],
}

#[test]
fn reads_at_literal_positions_are_checked_by_new() {
    run_table(vec![
        case(
            "y[2] of two entries",
            "OutOfRange { field: \"scales\", access: \"scales[2]\", len: 2, unit: \"entries\", term: \"y\" }",
            || outcome(LiteralIndex::new(vec![1.0, 1.0], vec![0.5])),
        ),
        case("y[2] of three entries", "ok", || {
            outcome(LiteralIndex::new(vec![1.0, 1.0, 2.0], vec![0.5]))
        }),
        case(
            "alpha[..=2] of two entries",
            "OutOfRange { field: \"alpha\", access: \"alpha[..=2]\", len: 2, unit: \"entries\", term: \"first\" }",
            || outcome(LiteralSlices::new(vec![1.0, 1.0])),
        ),
        case("literal slices in range", "ok", || {
            outcome(LiteralSlices::new(vec![1.0, 1.0, 1.0, 2.0]))
        }),
        case(
            "alpha[3..1]: a start after its end",
            "OutOfRange { field: \"alpha\", access: \"alpha[3..1]\"",
            || outcome(BackwardSlice::new(vec![1.0; 5])),
        ),
        case(
            "w.row(1) of a matrix of one row",
            "OutOfRange { field: \"w\", access: \"w.row(1)\", len: 1, unit: \"rows\", term: \"by_row\" }",
            || outcome(LiteralMatrix::new(DMatrix::from_element(1, 3, 1.0))),
        ),
        case(
            "w.column(2) of a matrix of two columns",
            "OutOfRange { field: \"w\", access: \"w.column(2)\", len: 2, unit: \"columns\", term: \"by_column\" }",
            || outcome(LiteralMatrix::new(DMatrix::from_element(2, 2, 1.0))),
        ),
        case("a literal row, column and entry in range", "ok", || {
            let w = DMatrix::from_row_slice(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
            outcome(LiteralMatrix::new(w))
        }),
    ]);
}

#[test]
fn reads_at_computed_positions_are_checked_by_new() {
    run_table(vec![
        case(
            "a[group[i]] past the latent's end",
            "OutOfRangeAt { field: \"a\", access: \"a[group[i]]\", position: 3, element: Some(1), len: 3, unit: \"entries\", term: \"y\" }",
            || outcome(Groups::new(vec![0, 3], vec![0.1, 0.2])),
        ),
        case("a[group[i]] in range", "ok", || {
            outcome(fit(
                &Groups::new(vec![0, 2], vec![0.1, 0.2]).unwrap(),
                &MeanField::new(3),
                Adam::new(0.01),
                &FitConfig::new(Diwhvi::elbo()).max_steps(5).progress(false),
            ))
        }),
        case(
            "x[i + 1] at the last element",
            "OutOfRangeAt { field: \"x\", access: \"x[i+1]\", position: 3, element: Some(2), len: 3, unit: \"entries\", term: \"y\" }",
            || outcome(Lagged::new(vec![1.0, 2.0, 3.0], vec![0.0, 0.5, 1.0])),
        ),
        case(
            "w.row(k) with k past the rows",
            "OutOfRangeAt { field: \"w\", access: \"w.row(k)\", position: 2, element: None, len: 2, unit: \"rows\", term: \"theta\" }",
            || outcome(ChosenRow::new(2, DMatrix::from_element(2, 2, 1.0))),
        ),
        case("w.row(k) in range", "ok", || {
            let model = ChosenRow::new(1, DMatrix::from_element(2, 2, 1.0)).unwrap();
            let config = FitConfig::new(Diwhvi::elbo()).max_steps(5).progress(false);
            outcome(fit(
                &model,
                &MeanField::new(model.dim()),
                Adam::new(0.01),
                &config,
            ))
        }),
        case(
            "alpha[from..from + 2] past the end",
            "OutOfRangeAt { field: \"alpha\", access: \"alpha[from..from+2]\", position: 4, element: None, len: 3, unit: \"entries\", term: \"theta\" }",
            || outcome(DataSlice::new(2, vec![1.0, 1.0, 1.0])),
        ),
        case("alpha[from..from + 2] in range", "ok", || {
            outcome(DataSlice::new(1, vec![1.0, 1.0, 1.0]))
        }),
        // Raw context: indices inside indices, lengths, counts, bounds,
        // matrix entries, integer arithmetic.
        case(
            "x[idx[i + 1]]: the inner index past idx's end",
            "OutOfRangeAt { field: \"idx\", access: \"idx[i+1]\", position: 2, element: Some(1), len: 2, unit: \"entries\", term: \"y\" }",
            || outcome(NextIndex::new(vec![0, 1], vec![0.5, 1.0], vec![0.1, 0.2])),
        ),
        case(
            "x[idx[i + 1]]: the outer index past x's end",
            "OutOfRangeAt { field: \"x\", access: \"x[idx[i+1]]\", position: 5, element: Some(0), len: 2, unit: \"entries\", term: \"y\" }",
            || outcome(NextIndex::new(vec![0, 5, 1], vec![0.5, 1.0], vec![0.1, 0.2, 0.3])),
        ),
        case(
            "x[idx[i]] with idx shorter than y: its length, not a position",
            "LengthMismatch { field: \"idx\"",
            || outcome(Indexed::new(vec![0], vec![0.5, 1.0], vec![0.1, 0.2])),
        ),
        case(
            "x[idx[i]] past x's end",
            "OutOfRangeAt { field: \"x\", access: \"x[idx[i]]\", position: 2, element: Some(1), len: 2, unit: \"entries\", term: \"y\" }",
            || outcome(Indexed::new(vec![0, 2], vec![0.5, 1.0], vec![0.1, 0.2])),
        ),
        case("x[idx[i + 1]] in range", "ok", || {
            outcome(NextIndex::new(vec![0, 1, 1, 0], vec![0.5, 1.0], vec![0.1, 0.2, 0.3]))
        }),
        case(
            "len = n[k] with k past n's end",
            "OutOfRangeAt { field: \"n\", access: \"n[k]\", position: 2, element: None, len: 2, unit: \"entries\", term: \"theta\" }",
            || outcome(LengthFromData::new(2, vec![3, 4])),
        ),
        case("len = n[k] in range", "ok", || {
            let model = LengthFromData::new(1, vec![3, 4]).unwrap();
            if model.dim() == 4 { "ok".to_string() } else { format!("dim {}", model.dim()) }
        }),
        case(
            "Binomial(trials[idx[i]], p) with idx[i] past trials' end",
            "OutOfRangeAt { field: \"trials\", access: \"trials[idx[i]]\", position: 7, element: Some(1), len: 2, unit: \"entries\", term: \"y\" }",
            || outcome(CountFromData::new(vec![5, 6], vec![0, 7], vec![1, 2])),
        ),
        case(
            "lower = lo[k] with k past lo's end",
            "OutOfRangeAt { field: \"lo\", access: \"lo[k]\", position: 4, element: None, len: 1, unit: \"entries\", term: \"sigma\" }",
            || outcome(BoundFromData::new(4, vec![0.5])),
        ),
        case(
            "m[(r[i], c[i])] with c[i] past the columns",
            "OutOfRangeAt { field: \"m\", access: \"m[(r[i],c[i])]\", position: 2, element: Some(0), len: 2, unit: \"columns\", term: \"y\" }",
            || {
                outcome(MatrixEntries::new(
                    DMatrix::from_element(2, 2, 1.0),
                    vec![0],
                    vec![2],
                    vec![0.3],
                ))
            },
        ),
        case(
            "x[i - 1] at i = 0 (an overflow, not a panic)",
            &*Box::leak(format!("OutOfRangeAt {{ field: \"x\", access: \"x[i-1]\", position: {}, element: Some(0)", usize::MAX).into_boxed_str()),
            || outcome(Previous::new(vec![1.0, 2.0], vec![0.0, 0.5])),
        ),
        case(
            "x[i / k] with k = 0 (a division by zero, not a panic)",
            &*Box::leak(format!("OutOfRangeAt {{ field: \"x\", access: \"x[i/k]\", position: {}, element: Some(0)", usize::MAX).into_boxed_str()),
            || outcome(Divided::new(0, vec![1.0, 2.0], vec![0.0, 0.5])),
        ),
        case(
            "a learned parameter's len = n[k] with k past n's end",
            "OutOfRangeAt { field: \"n\", access: \"n[k]\", position: 3, element: None, len: 1, unit: \"entries\", term: \"w\" }",
            || outcome(ParamLength::new(3, vec![2], vec![0.1])),
        ),
        case(
            "a learned matrix's w.row(k) with k past its rows",
            "OutOfRangeAt { field: \"w\", access: \"w.row(k)\", position: 5, element: None, len: 2, unit: \"rows\", term: \"theta\" }",
            || outcome(LearnedRow::new(5)),
        ),
    ]);
}

#[test]
fn reads_new_cannot_evaluate_are_named_by_fit() {
    run_table(vec![
        case(
            "a[group[i]] under an if branch, past the latent's end",
            "InvalidStart(Likelihood { field: \"y\", element: Some(1) })",
            || start(&GroupsIf::new(vec![0, 3], vec![0.1, 0.2]).unwrap()),
        ),
        case(
            "x[idx[i + 1]] under an if branch, past idx's end",
            "InvalidStart(Likelihood { field: \"y\", element: Some(1) })",
            || start(&NextIndexIf::new(vec![0, 1], vec![0.5, 1.0], vec![0.1, 0.2]).unwrap()),
        ),
        case("x[i - 1] guarded by i > 0", "ok", || {
            outcome(fit(
                &PreviousGuarded::new(vec![1.0, 2.0], vec![0.0, 0.5]).unwrap(),
                &MeanField::new(1),
                Adam::new(0.01),
                &FitConfig::new(Diwhvi::elbo()).max_steps(5).progress(false),
            ))
        }),
        case("a learned matrix's w.row(k) in range", "ok", || {
            start(&LearnedRow::new(1).unwrap())
        }),
        case(
            "alpha[2..] one entry shorter than its latent",
            "InvalidStart(Prior { latent: \"rest\"",
            || start(&LiteralSlices::new(vec![1.0, 1.0, 1.0]).unwrap()),
        ),
    ]);
}

/// An index read at the next element, in raw context (`idx[i + 1]`).
#[variational]
struct NextIndex {
    #[data]
    idx: Vec<usize>,
    #[data]
    x: Vec<f64>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(mu + x[idx[i + 1]], 1.0), for i)]
    y: Vec<f64>,
}

/// The same read, under an `if` branch that always runs: `new` cannot
/// know that it runs.
#[variational]
struct NextIndexIf {
    #[data]
    idx: Vec<usize>,
    #[data]
    x: Vec<f64>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(if mu > -1.0e300 { mu + x[idx[i + 1]] } else { mu }, 1.0), for i)]
    y: Vec<f64>,
}

/// A group index into a vector latent under an `if` branch.
#[variational]
struct GroupsIf {
    #[latent(Normal(0.0, 1.0))]
    a: [f64; 3],
    #[data]
    group: Vec<usize>,
    #[observe(Normal(if a[0] > -1.0e300 { a[group[i]] } else { 0.0 }, 1.0), for i)]
    y: Vec<f64>,
}

/// A latent's length read from the data (`len = n[k]`).
#[variational]
struct LengthFromData {
    #[data]
    k: usize,
    #[data]
    n: Vec<usize>,
    #[latent(Normal(0.0, 1.0), len = n[k])]
    theta: Vec<f64>,
}

/// A count read through a data index (`trials[idx[i]]`).
#[variational]
struct CountFromData {
    #[data]
    trials: Vec<u64>,
    #[data]
    idx: Vec<usize>,
    #[latent(Beta(1.0, 1.0))]
    p: f64,
    #[observe(Binomial(trials[idx[i]], p), for i)]
    y: Vec<u64>,
}

/// A bound read from the data (`lower = lo[k]`).
#[variational]
struct BoundFromData {
    #[data]
    k: usize,
    #[data]
    lo: Vec<f64>,
    #[latent(Normal(1.0, 1.0), lower = lo[k])]
    sigma: f64,
}

/// Matrix entries at data positions.
#[variational]
struct MatrixEntries {
    #[data]
    m: DMatrix<f64>,
    #[data]
    r: Vec<usize>,
    #[data]
    c: Vec<usize>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(mu + m[(r[i], c[i])], 1.0), for i)]
    y: Vec<f64>,
}

/// The previous entry, unguarded: `i - 1` at `i = 0`.
#[variational]
struct Previous {
    #[data]
    x: Vec<f64>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(mu + x[i - 1], 1.0), for i)]
    y: Vec<f64>,
}

/// The previous entry, guarded by `i > 0`.
#[variational]
struct PreviousGuarded {
    #[data]
    x: Vec<f64>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(if i > 0 { mu + x[i - 1] } else { mu }, 1.0), for i)]
    y: Vec<f64>,
}

/// A position divided by a data scalar.
#[variational]
struct Divided {
    #[data]
    k: usize,
    #[data]
    x: Vec<f64>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(mu + x[i / k], 1.0), for i)]
    y: Vec<f64>,
}

/// A learned parameter's length read from the data.
#[variational]
struct ParamLength {
    #[data]
    k: usize,
    #[data]
    n: Vec<usize>,
    #[param(init = 0.0, len = n[k])]
    w: Vec<f64>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(mu, 1.0), for i)]
    y: Vec<f64>,
}

/// A row of a learned matrix chosen by a data scalar.
#[variational]
struct LearnedRow {
    #[data]
    k: usize,
    #[param(init = 0.5, lower = 0.0, rows = 2, cols = 2)]
    w: DMatrix<f64>,
    #[latent(Dirichlet(w.row(k)))]
    theta: [f64; 2],
}

/// A data index into a data vector (`x[idx[i]]`).
#[variational]
struct Indexed {
    #[data]
    idx: Vec<usize>,
    #[data]
    x: Vec<f64>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(mu + x[idx[i]], 1.0), for i)]
    y: Vec<f64>,
}
