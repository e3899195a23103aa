// A guide in another module than its model, naming it by path; and a
// model and its guide inside a function body.
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

mod guides {
    use iwhvi::variational;

    #[variational(guide = super::models::Mean)]
    pub struct MeanGuide {
        #[param(init = 0.0)]
        loc: f64,
        #[latent(Normal(loc, 1.0))]
        mu: f64,
    }
}

fn main() {
    let model = models::Mean::new(vec![0.5, 1.5]).unwrap();
    let guide = guides::MeanGuide::new(&model).unwrap();
    assert_eq!(guide.latent_dim(), 1);

    #[iwhvi::variational]
    struct Local {
        #[latent(HalfNormal(1.0))]
        tau: f64,
    }
    #[iwhvi::variational(guide = Local)]
    struct LocalGuide {
        #[latent(LogNormal(0.0, 1.0))]
        tau: f64,
    }
    assert_eq!(LocalGuide::new(&Local::new().unwrap()).unwrap().latent_dim(), 1);
}
