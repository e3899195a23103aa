use iwhvi::guide::HierarchicalGuide;
use iwhvi::variational;

#[variational]
struct Schools {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfCauchy(5.0))]
    tau: f64,
    #[latent(Normal(mu, tau), len = sigma.len())]
    theta: Vec<f64>,
    #[observe(Normal(theta[j], sigma[j]), for j)]
    y: Vec<f64>,
}

/// `q(theta_j | psi_j, mu) = N(mu + enc(j)[0] + a psi_j, exp enc(j)[1])`, one
/// mixing variable per school, with `τ(psi_j | theta_j) = N(r theta_j, exp log_rho)`.
#[variational(guide = Schools)]
struct PerSchool {
    #[param(init = 0.0)]
    mu_loc: f64,
    #[param(init = 0.5)]
    a: f64,
    #[param(init = 0.0)]
    r: f64,
    #[param(init = 0.0)]
    log_rho: f64,
    #[encoder(input = [y[j], sigma[j]], hidden = [4], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[mixing(len = theta, for j)]
    #[reverse(Normal(r * theta[j], log_rho.exp()), for j)]
    psi: Vec<f64>,
    #[latent(Normal(mu_loc, 1.0))]
    mu: f64,
    #[latent(LogNormal(0.0, 1.0))]
    tau: f64,
    #[latent(Normal(mu + enc(j)[0] + a * psi[j], enc(j)[1].exp()), for j)]
    theta: Vec<f64>,
}

fn main() {
    let model = Schools::new(vec![15.0, 10.0, 16.0], vec![28.0, 8.0, -3.0]).unwrap();
    let guide = PerSchool::new(&model).unwrap();
    // One group for mu and tau, then one per school.
    let groups = guide.mixing_groups().unwrap();
    assert_eq!(groups.len(), 1 + 3);
    assert_eq!(groups.groups()[0].latents, [0, 1]);
    assert_eq!(groups.groups()[2].latents, [3]);
    assert_eq!(guide.mixing_dim(), 3);
}
