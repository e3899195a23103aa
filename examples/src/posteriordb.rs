//! The ten posteriors of `../shared/posteriordb`, declared with
//! `#[variational]` (each model as restated in its `model.md`), with
//! constructors that read the data copied into `examples/data/posteriordb`
//! (source and licence in its README) with the generated `load_json`. Shared by the accuracy suite
//! (`examples/accuracy.rs`), the log-joint tests
//! (`tests/inference/posteriordb_models.rs`) and
//! `tests/inference/laplace_preconditioning.rs`.

use iwhvi::data::StanData;
use iwhvi::distributions::{Distribution, Normal};
use iwhvi::variational;

/// The path of `posterior`'s data file (posteriordb's name, e.g.
/// `arK-arK`).
pub fn data_path(posterior: &str) -> std::path::PathBuf {
    crate::repo_root().join(format!("examples/data/posteriordb/{posterior}/data.json"))
}

/// The data of `posterior`, as Stan-format JSON.
pub fn data(posterior: &str) -> StanData {
    let path = data_path(posterior);
    StanData::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `M::load_json` on `posterior`'s data file (the generated reader: each
/// data field from the variable of its name).
fn load<M>(
    posterior: &str,
    load_json: fn(std::path::PathBuf) -> Result<M, iwhvi::data::StanDataError>,
) -> M {
    let path = data_path(posterior);
    load_json(path.clone()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[variational]
pub struct EightSchoolsCentered {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfCauchy(5.0))]
    tau: f64,
    #[latent(Normal(mu, tau), len = sigma.len())]
    theta: Vec<f64>,
    #[observe(Normal(theta[j], sigma[j]), for j)]
    y: Vec<f64>,
}

#[variational]
pub struct EightSchoolsNoncentered {
    #[data]
    sigma: Vec<f64>,
    #[latent(Normal(0.0, 1.0), len = sigma.len())]
    theta_trans: Vec<f64>,
    #[latent(Normal(0.0, 5.0))]
    mu: f64,
    #[latent(HalfCauchy(5.0))]
    tau: f64,
    #[observe(Normal(mu + tau * theta_trans[j], sigma[j]), for j)]
    y: Vec<f64>,
    /// The school effects, as posteriordb reports them.
    #[derived(mu + tau * theta_trans[j], for j)]
    theta: [f64; 8],
}

#[variational]
pub struct KidIq {
    #[data]
    mom_hs: Vec<f64>,
    #[data]
    mom_iq: Vec<f64>,
    #[latent(Flat())]
    beta: [f64; 3],
    #[latent(HalfCauchy(2.5))]
    sigma: f64,
    #[observe(Normal(beta[0] + beta[1] * mom_hs[n] + beta[2] * mom_iq[n], sigma), for n)]
    kid_score: Vec<f64>,
}

#[variational]
pub struct Kilpisjarvi {
    #[data]
    x: Vec<f64>,
    #[data]
    pmualpha: f64,
    #[data]
    psalpha: f64,
    #[data]
    pmubeta: f64,
    #[data]
    psbeta: f64,
    #[latent(Normal(pmualpha, psalpha))]
    alpha: f64,
    #[latent(Normal(pmubeta, psbeta))]
    beta: f64,
    #[latent(FlatPositive())]
    sigma: f64,
    #[observe(Normal(alpha + beta * x[n], sigma), for n)]
    y: Vec<f64>,
}

/// An AR(K) likelihood is no single distribution: it enters as a `factor`
/// computed by a helper method, generic over the scalar.
#[variational]
pub struct ArK {
    #[data]
    k: usize,
    #[data]
    y: Vec<f64>,
    #[latent(Normal(0.0, 10.0))]
    alpha: f64,
    #[latent(Normal(0.0, 10.0), len = k)]
    beta: Vec<f64>,
    #[latent(HalfCauchy(2.5))]
    sigma: f64,
    #[factor(self.autoregression(alpha, beta, sigma))]
    likelihood: (),
}

impl ArK {
    /// Σ_{t ≥ K} log N(y_t | alpha + Σ_k beta_k y_{t-k-1}, sigma).
    fn autoregression<T: iwhvi::Scalar>(&self, alpha: T, beta: &[T], sigma: T) -> T {
        let mut lp = T::constant(0.0);
        for t in self.k..self.y.len() {
            let mut mean = alpha;
            for (k, &b) in beta.iter().enumerate() {
                mean += b * self.y[t - k - 1];
            }
            lp += iwhvi::distributions::log_prob_or_neg_inf(
                Normal::new(mean, sigma),
                T::constant(self.y[t]),
            );
        }
        lp
    }
}

/// A latent Gaussian process: the log-rates `f = L f̃` with `L` the
/// Cholesky factor of a squared-exponential kernel, computed in a helper
/// method on any scalar (the dual-aware Cholesky of `iwhvi::linalg`).
#[variational]
pub struct GpPoisRegr {
    #[data]
    x: Vec<f64>,
    #[data]
    k: Vec<u64>,
    #[latent(Gamma(25.0, 4.0))]
    rho: f64,
    #[latent(HalfNormal(2.0))]
    alpha: f64,
    #[latent(Normal(0.0, 1.0), len = x.len())]
    f_tilde: Vec<f64>,
    #[factor(self.poisson_gp(rho, alpha, f_tilde))]
    likelihood: (),
    /// The log-rates `f = L f̃`, as posteriordb reports them.
    #[derived(self.log_rate(rho, alpha, f_tilde, i), for i)]
    f: [f64; 11],
}

impl GpPoisRegr {
    /// Σᵢ log Poisson(kᵢ | exp(fᵢ)) with f = chol(C) f̃,
    /// C = α² exp(−(xᵢ − xⱼ)² / 2ρ²) + 1e-10 I.
    fn poisson_gp<T: iwhvi::Scalar>(&self, rho: T, alpha: T, f_tilde: &[T]) -> T {
        use iwhvi::distributions::PoissonLog;
        let Some(f) = self.log_rates(rho, alpha, f_tilde) else {
            return T::constant(f64::NEG_INFINITY);
        };
        f.iter()
            .zip(&self.k)
            .map(|(&fi, &ki)| iwhvi::distributions::log_prob_or_neg_inf(PoissonLog::new(fi), ki))
            .sum()
    }

    /// f = chol(C) f̃, or `None` when C is not numerically positive definite.
    fn log_rates<T: iwhvi::Scalar>(
        &self,
        rho: T,
        alpha: T,
        f_tilde: &[T],
    ) -> Option<nalgebra::DVector<T>> {
        let n = self.x.len();
        let kernel = nalgebra::DMatrix::from_fn(n, n, |i, j| {
            let d = self.x[i] - self.x[j];
            let jitter = if i == j { 1e-10 } else { 0.0 };
            alpha.square() * (-(rho.square() * 2.0).recip() * (d * d)).exp() + jitter
        });
        let l = iwhvi::linalg::cholesky(&kernel).ok()?;
        Some(l * nalgebra::DVector::from_column_slice(f_tilde))
    }

    /// fᵢ (NaN where C is not positive definite).
    fn log_rate(&self, rho: f64, alpha: f64, f_tilde: &[f64], i: usize) -> f64 {
        self.log_rates(rho, alpha, f_tilde)
            .map_or(f64::NAN, |f| f[i])
    }
}

/// A hidden Markov model: simplex rows of the transition matrix (flat
/// priors), positive ordered emission means with index-dependent priors,
/// and the forward algorithm as a factor.
#[variational]
pub struct HmmExample {
    #[data]
    k: usize,
    #[data]
    y: Vec<f64>,
    #[latent(Flat(), len = k, constraint = simplex)]
    theta1: Vec<f64>,
    #[latent(Flat(), len = k, constraint = simplex)]
    theta2: Vec<f64>,
    // The prior centres as the Stan program writes them: mu[1] ~ N(3, 1),
    // mu[2] ~ N(10, 1) (posteriordb's K is 2).
    #[latent(Normal(if j == 0 { 3.0 } else { 10.0 }, 1.0), len = k, constraint = positive_ordered, for j)]
    mu: Vec<f64>,
    #[factor(self.forward_algorithm(theta1, theta2, mu))]
    likelihood: (),
}

impl HmmExample {
    /// log p(y | θ, μ) by the forward recursion in log space.
    fn forward_algorithm<T: iwhvi::Scalar>(&self, theta1: &[T], theta2: &[T], mu: &[T]) -> T {
        let rows = [theta1, theta2];
        let emission = |t: usize, k: usize| {
            -((T::constant(self.y[t]) - mu[k]).square()) * 0.5 - iwhvi::special::LN_SQRT_2PI
        };
        let mut alpha: Vec<T> = (0..self.k).map(|k| emission(0, k)).collect();
        for t in 1..self.y.len() {
            let next: Vec<T> = (0..self.k)
                .map(|k| {
                    let terms: Vec<T> = (0..self.k).map(|j| alpha[j] + rows[j][k].ln()).collect();
                    T::log_sum_exp(&terms) + emission(t, k)
                })
                .collect();
            alpha = next;
        }
        T::log_sum_exp(&alpha)
    }
}

/// A two-component Gaussian mixture with ordered means.
#[variational]
pub struct LowDimGaussMix {
    #[data]
    y: Vec<f64>,
    #[latent(Normal(0.0, 2.0), constraint = ordered)]
    mu: [f64; 2],
    #[latent(HalfNormal(2.0))]
    sigma: [f64; 2],
    #[latent(Beta(5.0, 5.0))]
    theta: f64,
    #[factor(self.mixture(mu, sigma, theta))]
    likelihood: (),
}

impl LowDimGaussMix {
    /// Σₙ log(θ N(yₙ | μ₁, σ₁) + (1 − θ) N(yₙ | μ₂, σ₂)).
    fn mixture<T: iwhvi::Scalar>(&self, mu: &[T], sigma: &[T], theta: T) -> T {
        let (a, b) = (Normal::new(mu[0], sigma[0]), Normal::new(mu[1], sigma[1]));
        let (Ok(a), Ok(b)) = (a, b) else {
            return T::constant(f64::NEG_INFINITY);
        };
        let (log_w, log_1mw) = (theta.ln(), (-theta).ln_1p());
        self.y
            .iter()
            .map(|&y| {
                T::log_sum_exp(&[
                    log_w + a.log_prob(T::constant(y)),
                    log_1mw + b.log_prob(T::constant(y)),
                ])
            })
            .sum()
    }
}

/// Bayesian linear regression with a design matrix (nalgebra data) and
/// the linear predictor from a helper method.
#[variational]
pub struct Sblrc {
    #[data]
    x: nalgebra::DMatrix<f64>,
    #[latent(Normal(0.0, 10.0), len = x.ncols())]
    beta: Vec<f64>,
    #[latent(HalfNormal(10.0))]
    sigma: f64,
    #[observe(Normal(self.linear_predictor(n, beta), sigma), for n)]
    y: nalgebra::DVector<f64>,
}

impl Sblrc {
    /// (X β)ₙ.
    fn linear_predictor<T: iwhvi::Scalar>(&self, n: usize, beta: &[T]) -> T {
        beta.iter()
            .enumerate()
            .map(|(d, &b)| b * self.x[(n, d)])
            .sum()
    }
}

/// GARCH(1, 1): flat priors, and a bound on `beta1` that moves with
/// `alpha1` (0 < beta1 < 1 − alpha1).
#[variational]
pub struct Garch11 {
    #[data]
    y: Vec<f64>,
    #[data]
    sigma1: f64,
    #[latent(Flat())]
    mu: f64,
    #[latent(FlatPositive())]
    alpha0: f64,
    #[latent(Flat(), lower = 0.0, upper = 1.0)]
    alpha1: f64,
    #[latent(Flat(), lower = 0.0, upper = 1.0 - alpha1)]
    beta1: f64,
    #[factor(self.volatility(mu, alpha0, alpha1, beta1))]
    likelihood: (),
}

impl Garch11 {
    /// Σₜ log N(yₜ | mu, sₜ) with the GARCH(1, 1) volatility recursion.
    fn volatility<T: iwhvi::Scalar>(&self, mu: T, alpha0: T, alpha1: T, beta1: T) -> T {
        let mut s = T::constant(self.sigma1);
        let mut lp = T::constant(0.0);
        for t in 0..self.y.len() {
            if t > 0 {
                s = (alpha0 + alpha1 * (-mu + self.y[t - 1]).square() + beta1 * s.square()).sqrt();
            }
            lp += iwhvi::distributions::log_prob_or_neg_inf(
                Normal::new(mu, s),
                T::constant(self.y[t]),
            );
        }
        lp
    }
}

impl EightSchoolsCentered {
    /// On posteriordb's data.
    pub fn posteriordb() -> Self {
        load("eight_schools-eight_schools_centered", Self::load_json)
    }
}

impl EightSchoolsNoncentered {
    /// On posteriordb's data.
    pub fn posteriordb() -> Self {
        load("eight_schools-eight_schools_noncentered", Self::load_json)
    }
}

impl KidIq {
    /// On posteriordb's data.
    pub fn posteriordb() -> Self {
        load("kidiq-kidscore_momhsiq", Self::load_json)
    }
}

impl Kilpisjarvi {
    /// On posteriordb's data.
    pub fn posteriordb() -> Self {
        load("kilpisjarvi_mod-kilpisjarvi", Self::load_json)
    }
}

impl ArK {
    /// On posteriordb's data.
    pub fn posteriordb() -> Self {
        load("arK-arK", Self::load_json)
    }
}

impl GpPoisRegr {
    /// On posteriordb's data.
    pub fn posteriordb() -> Self {
        load("gp_pois_regr-gp_pois_regr", Self::load_json)
    }
}

impl HmmExample {
    /// On posteriordb's data.
    pub fn posteriordb() -> Self {
        load("hmm_example-hmm_example", Self::load_json)
    }
}

impl LowDimGaussMix {
    /// On posteriordb's data.
    pub fn posteriordb() -> Self {
        load("low_dim_gauss_mix-low_dim_gauss_mix", Self::load_json)
    }
}

impl Sblrc {
    /// On posteriordb's data.
    pub fn posteriordb() -> Self {
        load("sblrc-blr", Self::load_json)
    }
}

impl Garch11 {
    /// On posteriordb's data.
    pub fn posteriordb() -> Self {
        load("garch-garch11", Self::load_json)
    }
}
