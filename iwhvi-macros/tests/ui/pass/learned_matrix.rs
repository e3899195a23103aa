use iwhvi::model::Model as _;
use iwhvi::variational;
use iwhvi::Scalar;
use nalgebra::DMatrix;

// A linear decoder with learned weights: `y_i ~ N(W z + b, 1)` for the
// rows `y_i` of a data matrix, `z ~ N(0, I)` one latent per column of `W`.
#[variational]
struct Decoder {
    #[data]
    k: usize,
    #[data]
    y: DMatrix<f64>,
    #[param(init = 0.1, rows = y.ncols(), cols = k)]
    w: DMatrix<f64>,
    #[param(init = 0.0, len = y.ncols())]
    b: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = k)]
    z: Vec<f64>,
    #[factor(self.fit_rows(w, b, z))]
    likelihood: (),
    #[derived(w[(0, 0)] * z[0] + b[0])]
    first_mean: f64,
}

impl Decoder {
    /// `Σ_i log N(y_i; W z + b, I)` up to a constant: the product in Rust.
    fn fit_rows<T: Scalar>(&self, w: &DMatrix<T>, b: &[T], z: &[T]) -> T {
        let mut total = T::constant(0.0);
        for i in 0..self.y.nrows() {
            for r in 0..w.nrows() {
                let mut mean = b[r];
                for c in 0..w.ncols() {
                    mean += w[(r, c)] * z[c];
                }
                total += -(mean - self.y[(i, r)]).square() * 0.5;
            }
        }
        total
    }
}

fn main() {
    let model = Decoder::new(2, DMatrix::from_element(4, 3, 0.5)).unwrap();
    assert_eq!(model.w.shape(), (3, 2));
    assert_eq!(model.theta_dim(), 3 * 2 + 3);
    assert!(model.log_joint(&[0.1, -0.2][..]).is_finite());
}
