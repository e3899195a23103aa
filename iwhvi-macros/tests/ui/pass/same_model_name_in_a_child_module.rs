// Two models of the same name, one in a child module: each guide reaches
// its own.
use iwhvi::guide::HierarchicalGuide;
use iwhvi::variational;

#[variational]
struct Mean {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
}

#[variational(guide = Mean)]
struct MeanGuide {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
}

mod tests {
    use iwhvi::variational;

    #[variational]
    pub struct Mean {
        #[latent(Normal(0.0, 1.0))]
        mu: f64,
        #[latent(HalfNormal(1.0))]
        sigma: f64,
    }

    #[variational(guide = Mean)]
    pub struct MeanGuide {
        #[latent(Normal(0.0, 1.0))]
        mu: f64,
        #[latent(LogNormal(0.0, 1.0))]
        sigma: f64,
    }
}

fn main() {
    let guide = MeanGuide::new(&Mean::new().unwrap()).unwrap();
    assert_eq!(guide.latent_dim(), 1);
    let inner = tests::MeanGuide::new(&tests::Mean::new().unwrap()).unwrap();
    assert_eq!(inner.latent_dim(), 2);
}
