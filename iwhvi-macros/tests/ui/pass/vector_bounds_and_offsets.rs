use iwhvi::model::Model;
use iwhvi::variational;

#[variational]
struct Schools {
    #[data]
    sigma: Vec<f64>,
    #[data]
    floor: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfCauchy(5.0))]
    tau: f64,
    // Stan: vector<offset = mu, multiplier = tau>[J] theta;
    #[latent(Normal(mu, tau), len = sigma.len(), offset = mu, multiplier = tau)]
    theta: Vec<f64>,
    // Stan: array[4] real<lower = 0> rates;
    #[latent(Exponential(1.0), lower = 0.0)]
    rates: [f64; 4],
    // Stan: vector<lower = floor>[J] above;
    #[latent(Normal(0.0, 10.0), len = floor.len(), lower = floor)]
    above: Vec<f64>,
    #[observe(Normal(theta[j] + above[j] - rates[0], sigma[j]), for j)]
    y: Vec<f64>,
}

fn main() {
    let model = Schools::new(vec![1.0; 8], vec![0.0; 8], vec![0.0; 8]).unwrap();
    assert_eq!(model.dim(), 22);
}
