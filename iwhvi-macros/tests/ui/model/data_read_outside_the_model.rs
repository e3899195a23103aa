mod model {
    use iwhvi::variational;

    #[variational]
    pub struct Regression {
        #[data]
        pub x: Vec<f64>,
        #[latent(Normal(0.0, 1.0))]
        slope: f64,
        #[observe(Normal(slope * x[i], 1.0), for i)]
        pub y: Vec<f64>,
    }
}

fn main() {
    let model = model::Regression::new(vec![1.0, 2.0], vec![0.5, 1.5]).unwrap();
    let _ = model.x.len();
    let _ = model.x().len(); // the accessor reads it
}
