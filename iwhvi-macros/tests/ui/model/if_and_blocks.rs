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
    #[latent(Normal((|x: f64| x * 2.0)(mu), 1.0))]
    closure: f64,
}

fn main() {}
