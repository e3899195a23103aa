// A model path that does not resolve is one error at the path; the guide
// struct is still declared, so naming it adds nothing.
use iwhvi::variational;

#[variational]
struct Mean {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
}

#[variational(guide = Meen)]
struct MeanGuide {
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
}

fn keep(guide: MeanGuide) -> MeanGuide {
    guide
}

fn main() {
    let _ = keep;
}
