// A guide reaches its model through whatever brings the model into
// scope: a `use`, a renaming `use … as`, a `pub use` re-export.
use iwhvi::guide::HierarchicalGuide;

mod models {
    use iwhvi::variational;

    #[variational]
    pub struct Mean {
        #[latent(Normal(0.0, 1.0))]
        pub mu: f64,
        #[observe(Normal(mu, 1.0), for i)]
        pub y: Vec<f64>,
    }
}

mod reexport {
    pub use crate::models::Mean;
}

mod guides {
    use crate::models::Mean;
    use crate::models::Mean as Renamed;
    use iwhvi::variational;

    #[variational(guide = Mean)]
    pub struct Imported {
        #[latent(Normal(0.0, 1.0))]
        mu: f64,
    }

    #[variational(guide = Renamed)]
    pub struct ByAnotherName {
        #[latent(Normal(0.0, 1.0))]
        mu: f64,
    }

    #[variational(guide = crate::reexport::Mean)]
    pub struct ThroughAReexport {
        #[latent(Normal(0.0, 1.0))]
        mu: f64,
    }
}

fn main() {
    let model = models::Mean::new(vec![0.5, 1.5]).unwrap();
    assert_eq!(guides::Imported::new(&model).unwrap().latent_dim(), 1);
    assert_eq!(guides::ByAnotherName::new(&model).unwrap().latent_dim(), 1);
    assert_eq!(guides::ThroughAReexport::new(&model).unwrap().latent_dim(), 1);
}
