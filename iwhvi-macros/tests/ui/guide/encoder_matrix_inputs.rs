use iwhvi::variational;
use nalgebra::DMatrix;

#[variational]
struct Regression {
    #[data]
    x: DMatrix<f64>,
    #[latent(Normal(0.0, 1.0), len = x.ncols())]
    z: Vec<f64>,
    #[observe(Normal(z[j], 1.0), for j)]
    y: Vec<f64>,
}

#[variational(guide = Regression)]
struct Guide {
    #[encoder(input = [x[j], x.col(j)], hidden = [4], activation = tanh, outputs = 2)]
    enc: Mlp,
    #[latent(Normal(enc(j)[0], enc(j)[1].exp()), for j)]
    z: Vec<f64>,
}

fn main() {}
