use iwhvi::model::Model;
use iwhvi::variational;

/// Stan's transformed parameters, line by line.
#[variational]
struct Schools {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfCauchy(5.0))]
    tau: f64,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    theta_tilde: Vec<f64>,
    // vector[J] theta = mu + tau * theta_tilde;
    #[transformed(theta_tilde * tau + mu)]
    theta: Vec<f64>,
    // real precision = 1 / square(tau);
    #[transformed(1.0 / tau.square())]
    precision: f64,
    // array[2] real first = { theta[1], theta[2] };
    #[transformed(theta[k], for k)]
    first: [f64; 2],
    #[observe(Normal(theta[j], sigma[j]), for j)]
    y: Vec<f64>,
    #[factor(-0.5 * precision.ln() + first[0] * 0.0)]
    extra: (),
}

#[variational(guide = Schools)]
struct Guide {
    #[param(init = 0.0)]
    loc: f64,
    #[latent(Normal(loc, 1.0))]
    mu: f64,
    #[latent(LogNormal(loc, 1.0))]
    tau: f64,
    #[latent(Normal(loc, 1.0), for j)]
    theta_tilde: Vec<f64>,
}

fn main() {
    let model = Schools::new(vec![1.0, 2.0], vec![0.5, -0.5]).unwrap();
    assert_eq!(model.dim(), 4);
    assert!(model.log_joint(&[0.1, 0.2, 0.3, 0.4]).is_finite());
    let latents = model.latents(&[0.1, 0.2, 0.3, 0.4]).unwrap();
    let derived = model.derived_quantities(&latents);
    assert_eq!(derived.first[1], derived.theta[1]);
    let _ = Guide::new(&model);
}
