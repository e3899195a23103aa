use iwhvi::model::Model as _;
use iwhvi::variational;
use nalgebra::DMatrix;

// Stan's varying slopes, non-centred: `cholesky_factor_corr[2] l;
// l ~ lkj_corr_cholesky(2); beta = mu + diag_pre_multiply(tau, l) * z`.
#[variational]
struct Model {
    #[data]
    k: usize,
    #[latent(HalfNormal(1.0), len = k)]
    tau: Vec<f64>,
    #[latent(LkjCholesky(2.0), dim = k)]
    l: DMatrix<f64>,
    #[latent(Normal(0.0, 1.0), len = k)]
    mu: Vec<f64>,
    #[latent(MultivariateNormalCholesky(mu, diag_pre_multiply(tau, l)), len = k)]
    beta: Vec<f64>,
    #[observe(Normal(beta[0] + l[(1, 0)], 1.0))]
    y: f64,
    #[derived(l[(1, 0)])]
    rho: f64,
}

fn main() {
    let model = Model::new(2, 0.5).unwrap();
    assert_eq!(model.dim(), 2 + 1 + 2 + 2);
    assert!(model.log_joint(&[0.1; 7][..]).is_finite());
}
