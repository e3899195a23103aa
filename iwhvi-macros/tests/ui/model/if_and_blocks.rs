use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[latent(Normal(if mu > 0.0 { mu }, 1.0))]
    no_else: f64,
    #[latent(Normal({ let (a, b) = (mu, mu); a + b }, 1.0))]
    pattern: f64,
    #[latent(Normal({ let a = mu; }, 1.0))]
    no_value: f64,
    #[latent(Normal({ let first = |v: &[f64]| v[0]; first(mu) }, 1.0))]
    vector_closure: f64,
    #[latent(Normal({ let sq = |x| x * x; sq(mu, mu) + sq }, 1.0))]
    closure_misused: f64,
    #[latent(Normal(match 1 { _ => mu }, 1.0))]
    matched: f64,
}

fn main() {}
