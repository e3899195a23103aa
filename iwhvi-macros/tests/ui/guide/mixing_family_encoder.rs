use iwhvi::variational;

#[variational]
struct Local {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    z: Vec<f64>,
    #[observe(Normal(z[j], sigma[j]), for j)]
    y: Vec<f64>,
}

#[variational(guide = Local)]
struct Guide {
    #[encoder(input = [y[j]], context = [z[j]], hidden = [4], outputs = 2)]
    mix: Mlp,
    #[mixing(Normal(mix(j)[0], mix(j)[1].exp()), len = z, for j)]
    #[reverse(Normal(0.5 * z[j], 1.0), for j)]
    psi: Vec<f64>,
    #[latent(Normal(psi[j], 1.0), for j)]
    z: Vec<f64>,
}

#[variational(guide = Local)]
struct Indexed {
    #[encoder(input = [y[j]], hidden = [4], outputs = 2)]
    mix: Mlp,
    #[mixing(Normal(mix(k)[0], 1.0), len = z, for j)]
    #[reverse(Normal(0.5 * z[j], 1.0), for j)]
    psi: Vec<f64>,
    #[latent(Normal(psi[j], 1.0), for j)]
    z: Vec<f64>,
}

fn main() {}
