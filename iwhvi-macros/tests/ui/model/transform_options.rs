use iwhvi::variational;

#[variational]
struct Model {
    #[data]
    lo: Vec<f64>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[latent(HalfNormal(1.0))]
    tau: f64,
    #[latent(Normal(0.0, 1.0), lower = 0.0, multiplier = 2.0)]
    both: f64,
    #[latent(Normal(0.0, 1.0), len = 3, constraint = ordered, lower = 0.0)]
    sorted: Vec<f64>,
    #[latent(Dirichlet(lo), len = lo.len(), upper = 0.5)]
    weights: Vec<f64>,
    #[latent(HalfNormal(1.0), offset = 1.0)]
    scale: f64,
    #[latent(Normal(0.0, 1.0), len = lo.len(), lower = mu)]
    moving: Vec<f64>,
    #[latent(Normal(mu, tau), len = lo.len(), for i, offset = mu * lo[i])]
    each: Vec<f64>,
    #[latent(Normal(mu, tau), offset = mu, multiplier = tau.exp())]
    curved: f64,
}

fn main() {}
