use nalgebra::DMatrix;
use iwhvi::guide::HierarchicalGuide;
use iwhvi::variational;

#[variational]
struct Regression {
    #[data]
    x: DMatrix<f64>,
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    z: Vec<f64>,
    #[observe(Normal(z[j], sigma[j]), for j)]
    y: Vec<f64>,
}

/// `z_j ~ N(enc(x_j, y_j)[0], exp enc(x_j, y_j)[1])`: one network for every point.
#[variational(guide = Regression)]
struct Amortised {
    #[encoder(input = [x.row(j), y[j]], hidden = [8, 8], activation = softplus, outputs = 2)]
    enc: Mlp,
    #[latent(Normal(enc(j)[0], enc(j)[1].exp()), for j)]
    z: Vec<f64>,
}

fn main() {
    let x = DMatrix::from_row_slice(3, 2, &[1.0, 0.0, 0.5, 2.0, -1.0, 1.0]);
    let model = Regression::new(x, vec![1.0; 3], vec![0.3, -0.2, 1.1]).unwrap();
    let guide = Amortised::new(&model).unwrap();
    // Inputs of width 2 + 1: (3 + 1) × 8 + (8 + 1) × 8 + (8 + 1) × 2 weights.
    assert_eq!(guide.param_layout().len(), 4 * 8 + 9 * 8 + 9 * 2);
    assert_eq!(guide.latent_dim(), 3);
}
