use iwhvi::model::Model;
use iwhvi::{variational, Scalar};

/// A function generic over the scalar: its arguments are scalars `T`.
fn softplus_floor<T: Scalar>(x: T, floor: T) -> T {
    x.softplus() + floor
}

#[variational]
struct Model2 {
    #[data]
    group: Vec<u32>,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[latent(HalfNormal(1.0))]
    tau: f64,
    // real s = tau + 1; theta ~ normal(mu > 0 ? mu : -mu, s * s);
    #[latent(Normal(if mu > 0.0 { mu } else { -mu }, { let s = tau + 1.0; s * s }))]
    theta: f64,
    #[observe(Normal(if group[i] == 1 && theta > 0.0 { mu } else { theta }, softplus_floor(tau, 0.1)), for i)]
    y: Vec<f64>,
    // target += -0.5 * square(theta - mu), with closures.
    #[factor({ let sq = |x| x * x; -0.5 * sq(theta - mu) + (|x: f64| x * 0.0)(tau) })]
    shrink: (),
}

fn main() {
    let model = Model2::new(vec![1, 2], vec![0.5, -0.5]).unwrap();
    assert!(model.log_joint(&[0.1, 0.2, 0.3]).is_finite());
}
