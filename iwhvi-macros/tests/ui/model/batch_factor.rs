use iwhvi::variational;

#[variational]
struct Batched {
    #[data]
    y: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = y.len())]
    z: Vec<f64>,
    // Over something other than the batch.
    #[factor(self.lik(rows, z[rows]), for rows in y, len = y.len())]
    not_batch: (),
    // A batch without the plate's length.
    #[factor(self.lik(rows, z[rows]), for rows in batch)]
    no_length: (),
    // The rows read by another attribute.
    #[factor(-z[rows] * z[rows], for i, len = y.len())]
    elsewhere: (),
    // One row's index in a batch's term.
    #[factor(self.lik(rows, z[n]), for rows in batch, len = y.len())]
    per_row: (),
    // The rows as a scalar index.
    #[factor(self.lik(rows, z[rows[0]]), for rows in batch, len = y.len())]
    scalar_rows: (),
    // The rows' name clashes with a field's.
    #[factor(self.lik(y, z[y]), for y in batch, len = y.len())]
    clash: (),
    // A term that is not a call.
    #[factor(-z[rows], for rows in batch, len = y.len())]
    not_a_call: (),
}

impl Batched {
    fn lik<T: iwhvi::Scalar>(&self, rows: &[usize], z: &[T]) -> Vec<T> {
        rows.iter().zip(z).map(|(_, &z)| -z * z).collect()
    }
}

fn main() {}
