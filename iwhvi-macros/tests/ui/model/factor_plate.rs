use iwhvi::variational;

#[variational]
struct Penalised {
    #[data]
    w: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = w.len())]
    z: Vec<f64>,
    // A plate of factors needs its length.
    #[factor(-w[i] * z[i] * z[i], for i)]
    no_length: (),
    // The index clashes with a field's name.
    #[factor(-w[z] * 2.0, for z, len = w.len())]
    clash: (),
    // An option given twice.
    #[factor(-w[i], for i, len = w.len(), len = 3)]
    twice: (),
    // A length without an index.
    #[factor(-z[0] * z[0], len = w.len())]
    no_index: (),
    // A length is data alone.
    #[factor(-w[i], for i, len = z[0])]
    latent_length: (),
}

fn main() {}
