use iwhvi::model::Model;
use iwhvi::variational;
use nalgebra::DMatrix;

#[variational]
struct Model2 {
    #[data]
    alpha: DMatrix<f64>,
    #[data]
    conc: Vec<f64>,
    #[data]
    cov: DMatrix<f64>,
    #[latent(Normal(0.0, 1.0), len = 3)]
    beta: Vec<f64>,
    // simplex[K] p ~ dirichlet(alpha[1]');
    #[latent(Dirichlet(alpha.row(0)), len = alpha.ncols())]
    p: Vec<f64>,
    // simplex[K - 1] q ~ dirichlet(conc[2:K]);
    #[latent(Dirichlet(&conc[1..]), len = conc.len() - 1)]
    q: Vec<f64>,
    // vector[2] z ~ multi_normal(col(alpha, 2) + beta[1:2], cov);
    #[latent(MultivariateNormal(alpha.column(1) + &beta[..2], cov))]
    z: [f64; 2],
    #[latent(MultivariateNormal([beta[0], 2.0 * beta[1]], cov))]
    written_out: [f64; 2],
}

fn main() {
    let cov = DMatrix::identity(2, 2);
    let model = Model2::new(DMatrix::from_element(2, 2, 1.5), vec![1.0; 3], cov).unwrap();
    assert_eq!(model.dim(), 9);
}
