//! Reads of data (and of vector latents) at positions the data do not
//! have. A position written as a literal (`y[7]`, `x[2..5]`, `m.row(3)`,
//! `m[(0, 4)]`) is checked by the generated `new` (`DataError::OutOfRange`,
//! naming the field, the read and the term); a position computed from the
//! data or the loop index gives a term that is not finite, which `fit`
//! names before the first step (`FitError::InvalidStart`), never a panic.

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
fn reads_at_computed_positions_are_named_by_fit() {
    run_table(vec![
        case(
            "a[group[i]] past the latent's end",
            "InvalidStart(Likelihood { field: \"y\", element: Some(1) })",
            || start(&Groups::new(vec![0, 3], vec![0.1, 0.2]).unwrap()),
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
            "InvalidStart(Likelihood { field: \"y\", element: Some(2) })",
            || start(&Lagged::new(vec![1.0, 2.0, 3.0], vec![0.0, 0.5, 1.0]).unwrap()),
        ),
        case(
            "w.row(k) with k past the rows",
            "InvalidStart(Prior { latent: \"theta\"",
            || start(&ChosenRow::new(2, DMatrix::from_element(2, 2, 1.0)).unwrap()),
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
            "alpha[2..] one entry shorter than its latent",
            "InvalidStart(Prior { latent: \"rest\"",
            || start(&LiteralSlices::new(vec![1.0, 1.0, 1.0]).unwrap()),
        ),
        case(
            "alpha[from..from + 2] past the end",
            "InvalidStart(Prior { latent: \"theta\"",
            || start(&DataSlice::new(2, vec![1.0, 1.0, 1.0]).unwrap()),
        ),
    ]);
}
