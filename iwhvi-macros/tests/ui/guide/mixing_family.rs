use iwhvi::variational;

#[variational]
struct Mean {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[observe(Normal(mu, 1.0), for i)]
    y: Vec<f64>,
}

#[variational(guide = Mean)]
struct Guide {
    #[mixing(StudentT(3.0, 0.0, 1.0))]
    #[reverse(Normal(0.5 * mu, 1.0))]
    a: f64,
    #[mixing(Normal(mu, 1.0), len = 2)]
    #[reverse(Normal(0.5 * mu, 1.0), for k)]
    b: Vec<f64>,
    #[mixing(Normal(a, 1.0))]
    #[reverse(Normal(0.5 * mu, 1.0))]
    c: f64,
    #[latent(Normal(a + b[0] + c, 1.0))]
    mu: f64,
}

fn main() {}
