use iwhvi::variational;

#[variational]
struct Model {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[latent(Normal(0.0, 1.0))]
    nu: f64,
    #[latent(HalfNormal(1.0))]
    tau: f64,
}

#[variational(guide = Model)]
struct Guide {
    #[param(init = 0.0)]
    loc: f64,
    #[param(init = 4.0)]
    df: f64,
    // The degrees of freedom are a whole-number literal: the exact draw
    // takes 1 + ν standard normals.
    #[latent(StudentT(df, loc, 1.0))]
    mu: f64,
    #[latent(StudentT(2.5, loc, 1.0))]
    nu: f64,
    // A Student-t puts mass on negative values.
    #[latent(StudentT(4.0, loc, 1.0))]
    tau: f64,
}

fn main() {}
