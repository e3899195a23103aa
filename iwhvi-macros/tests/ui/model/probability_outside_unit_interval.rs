use iwhvi::variational;

#[variational]
struct Model {
    #[data]
    n: Vec<u64>,
    #[observe(Bernoulli(1.5), for i)]
    heads: Vec<bool>,
    #[observe(Binomial(n[i], -0.25), for i)]
    successes: Vec<u64>,
    #[observe(Binomial(-3, 0.5))]
    failures: u64,
}

fn main() {}
