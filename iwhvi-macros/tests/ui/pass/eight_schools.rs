use iwhvi::model::Model;
use iwhvi::variational;

#[variational]
struct EightSchools {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfCauchy(5.0))]
    tau: f64,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    theta_tilde: Vec<f64>,
    #[observe(Normal(mu + tau * theta_tilde[j], sigma[j]), for j)]
    y: Vec<f64>,
}

fn main() {
    let model = EightSchools::new(vec![1.0; 8], vec![0.0; 8]).unwrap();
    assert_eq!(model.dim(), 10);
}
