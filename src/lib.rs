//! # iwhvi
//!
//! Bayesian inference with *hierarchical* variational families, trained with
//! the doubly importance weighted hierarchical bound (DIWHVI) of Sobolev &
//! Vetrov, "Importance Weighted Hierarchical Variational Inference"
//! (NeurIPS 2019). Gradients come from hand-written dual numbers.
//!
//! A tour of the crate:
//!
//! - [`variational`]: declare a model as a struct; get its log density,
//!   validating constructor, typed latents and samplers;
//! - [`model`]: the [`Model`](model::Model) trait behind it, for models
//!   written by hand;
//! - [`guide`]: hierarchical variational families ([`guide::SemiImplicit`],
//!   [`guide::MeanField`], [`guide::FullRank`], your own);
//! - [`objective`]: the DIWHVI bound (ELBO, IWAE, HVM, SIVI and IWHVI as its
//!   settings), bounds on `log q`, log-evidence estimates;
//! - [`fit`](mod@fit) and [`optim`]: the fitting loop and its optimizers;
//! - [`posterior`]: draws, importance resampling, PSIS k̂, summaries,
//!   saving and loading;
//! - [`distributions`], [`transforms`], [`special`], [`linalg`]: the numeric
//!   building blocks, generic over the [`Scalar`] trait;
//! - [`Dual`], [`ForwardEngine`] and [`tape`]: forward-mode dual
//!   numbers and the chunked engine, and the reverse-mode tape
//!   ([`tape::TapeEngine`]), both behind the [`GradientEngine`] trait.
//!
//! The smallest use of the engine: write a function once over `T: Scalar`,
//! and [`gradient()`](mod@gradient) differentiates it.
//!
//! ```
//! use iwhvi::{gradient, Differentiable, Scalar};
//!
//! struct Quadratic;
//! impl Differentiable for Quadratic {
//!     fn eval<T: Scalar>(&self, x: &[T]) -> T {
//!         x.iter().map(|&xi| xi.square()).sum::<T>() * 0.5
//!     }
//! }
//!
//! let (value, grad) = gradient(&Quadratic, &[1.0, -2.0, 3.0]);
//! assert_eq!(value, 7.0);
//! assert_eq!(grad, vec![1.0, -2.0, 3.0]);
//! ```
#![deny(missing_docs)]

pub use iwhvi_core::*;

/// Declares a Bayesian model as a struct and generates its log density.
///
/// Every field has one role:
///
/// - `#[data]`: data (`f64`, integers, `bool`, `[T; N]`, `Vec<T>`);
/// - `#[latent(Family(args…))]`: a latent variable with its prior, a scalar
///   `f64`, a fixed `[f64; N]`, or a `Vec<f64>` whose length comes from the
///   data (`#[latent(Normal(0.0, 1.0), len = y.len())]`); it is fitted in
///   unconstrained space through the default transform of its prior's
///   support (`exp` for positive families, a scaled sigmoid for intervals).
///   A vector latent may name its element index for the prior
///   (`#[latent(Normal(prior_mean[k], 1.0), len = n, for k)]`) and take a
///   constraint: `constraint = ordered`, `positive_ordered` or `simplex`
///   (the prior is then the elementwise density restricted to the
///   constrained set; a simplex takes `Flat()`, the uniform distribution);
/// - `#[observe(Family(args…))]`: data with a likelihood; over a vector,
///   element-wise with an index, `#[observe(Normal(mu + x[i] * beta, sigma), for i)]`;
/// - `#[factor(log_density)]` on a field of type `()`: a free term added to
///   the log joint (Stan's `target +=`), for likelihoods that are not one
///   distribution; typically a helper method of the model,
///   `#[factor(self.forward_algorithm(mu, sigma))]`, written as
///   `fn forward_algorithm<T: Scalar>(&self, mu: T, sigma: &[T]) -> T`
///   (latents arrive as scalars or slices, data by reference).
///   A plate of factors, one term per element: `#[factor(term, for i,
///   len = n)]` (Stan's `for (i in 1:N) target += f(i);`), or the batch's
///   terms in one call, `#[factor(self.f(rows, z[rows]), for rows in batch,
///   len = n)]`: `rows: &[usize]` the batch's elements (`0..n` on the whole
///   data), `z[rows]` the gathered `&[T]`, and the method returns one term
///   per row (`Vec<T>`, entry `k` for row `rows[k]`, depending on that
///   row's local values alone: the macro cannot check it); a result of
///   another length makes the log joint NaN and is named by
///   `first_invalid_term` (`Term::FactorRows`);
///
/// - `#[derived(expr)]` on an `f64`, or `#[derived(expr, for i)]` on an
///   `[f64; N]`: a deterministic function of the latents (Stan's generated
///   quantities), returned by `Name::derived_quantities(&latents)` and
///   reported with the posterior by `Posterior::derived(&draws)`.
/// - `#[prior_mixing(Family(args…), of = z, k = K)]` on an `f64`: the
///   mixing variable `ζ` of latent `z`'s *semi-implicit prior*
///   `p(z) = ∫ p(z | ζ) p(ζ) dζ`, with `ζ ~ Family(args…)` and `z`'s
///   `#[latent(…)]` prior read as `p(z | ζ)` (DSIVI). Only `z`'s prior may
///   read `ζ`. The log joint holds the importance-sampled lower bound
///   `E log (1/K) Σ_k p(z | ζ_k) p(ζ_k) / ν(ζ_k | z) ≤ log p(z)` (Jensen on
///   an unbiased estimate of `p(z)`), with `K` draws of a Gaussian proposal
///   `ν` on `ζ`'s unconstrained coordinate whose mean and log-scale are
///   affine in `z`'s, learned as the model parameter `<ζ>_proposal`; every
///   bound built on it (`fit`'s objective, `estimate_bound`,
///   `log_evidence`) stays a lower bound on `log p(x)`. See
///   [`semi_implicit_prior`] and the user guide's "Semi-implicit priors".
///
/// Scalar latents take Stan-style bounds, `lower = …` and `upper = …`:
/// from data and literals, or affine in earlier latents
/// (`#[latent(Flat(), lower = 0.0, upper = 1.0 - alpha1)]`).
///
/// `Flat()` and `FlatPositive()` are improper flat priors (Stan's "no
/// prior statement"): they add nothing but the transform's Jacobian. A
/// family named by a path (`my::Gumbel(loc, scale)`) is user-defined: a
/// type `my::Gumbel<T: Scalar>` with `new(…) -> Result<Self,
/// DistributionError>`, implementing `distributions::Distribution<T>` (its
/// support type gives the latent's transform) and, for the samplers,
/// `rand::distr::Distribution<f64>` for `T = f64`.
///
/// Arguments are Rust expressions over data, latents declared above, the
/// index and literals; data and literals mix freely with the latents (they
/// are lifted to the scalar type), and indices such as `a[county[i]]` stay
/// plain integers. Families are those of [`distributions`] with scalar
/// parameters, and `Dirichlet(alpha)`, `MultivariateNormal(loc, covariance)`
/// and `MultivariateNormalCholesky(loc, scale_tril)` over whole vectors
/// (vector arguments name a vector latent or data vector, matrix arguments
/// a `DMatrix<f64>` data field): as priors of vector latents (a Dirichlet
/// latent lives on the simplex), or observing a whole vector at once.
///
/// The attribute removes the latent and factor fields from the struct and
/// generates:
/// - `Name::new(data…) -> Result<Name, DataError>`: finite reals, equal
///   lengths of vectors indexed together, observations inside their
///   likelihood's support;
/// - `Name::from_json(text)`, `Name::load_json(path)` and
///   `Name::from_stan_data(&data)`: the same model with its data fields read
///   by name from Stan-format JSON ([`data::StanData`]), errors naming the
///   variable;
/// - `NameLatents`, a typed struct of the constrained latents, with
///   `Name::latents(&u)`, its inverse `Name::unconstrain(&latents)`, and
///   `Name::typed_latents(&named)` (from a row of posterior draws);
/// - `Name::sample_prior(&mut rng)` (ancestral sampling) and
///   `Name::simulate(&latents, &mut rng) -> NameObservations` (prior or
///   posterior predictive draws of the observed fields);
/// - `impl Model for Name`: the layout (a name for every element) and the
///   log joint in unconstrained space, Jacobians included.
///
/// Mistakes are compile errors on the attribute's own tokens, all of them
/// in one build: unknown distributions (with the closest name), wrong
/// numbers of arguments, undeclared names (with the closest name), latents
/// used before their declaration, an index outside `#[observe(…, for i)]`,
/// unsupported field types, discrete priors on latents, counts under a
/// continuous likelihood and the reverse.
///
/// ```
/// use iwhvi::model::Model;
/// use iwhvi::variational;
///
/// #[variational]
/// struct EightSchools {
///     #[data]
///     sigma: Vec<f64>,
///     #[latent(Normal(0.0, 5.0))]
///     mu: f64,
///     #[latent(HalfCauchy(5.0))]
///     tau: f64,
///     #[latent(Normal(0.0, 1.0), len = sigma.len())]
///     theta_tilde: Vec<f64>,
///     #[observe(Normal(mu + tau * theta_tilde[j], sigma[j]), for j)]
///     y: Vec<f64>,
/// }
///
/// let model = EightSchools::new(
///     vec![15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0],
///     vec![28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0],
/// )
/// .unwrap();
/// assert_eq!(model.dim(), 10);
/// let latents = model.latents(&[0.0; 10]).unwrap();
/// assert_eq!(latents.tau, 1.0);
/// assert!(model.log_joint(&[0.0; 10]).is_finite());
/// assert!(EightSchools::new(vec![1.0; 8], vec![0.0; 7]).is_err());
/// ```
///
/// # Guides
///
/// `#[variational(guide = Model)]` on a second struct declares a
/// hierarchical guide `q(ψ) q(z | ψ)` with reverse model `τ(ψ | z)` for
/// `Model` and implements [`guide::HierarchicalGuide`] for it. Its fields:
///
/// - `#[param(init = 0.0)]` or `#[param(init = normal(0.1))]`: a learnable
///   parameter (`f64`, or `Vec<f64>` with `len = <latent name>` or
///   `len = <constant>`, numbers and named constants), initialised to the
///   constant or to `sd · N(0, 1)`;
/// - `#[mixing]` (`f64`) or `#[mixing(len = d)]` (`Vec<f64>`): a mixing
///   variable `ψ ~ N(0, I)`;
/// - `#[reverse(Normal(mean, sd))]` (with `, for k` over a vector) beside
///   `#[mixing]`: its reverse model `τ(ψ | z)`, an expression over the
///   parameters and the latents. Give every mixing variable one (IWHVI,
///   DIWHVI) or none (then `τ = q(ψ)`: SIVI's bound). The reverse model's
///   parameters are its own, declared together: the guide reports them
///   (`reverse_params`) for the doubly-reparameterized estimator;
/// - `#[latent(Family(args…))]`, named and shaped like the model's latent
///   (`, for j` over a vector): the conditional `q(z | ψ, earlier
///   latents)`, `Normal` for real latents and `LogNormal` for positive
///   ones; the arguments are expressions over parameters, mixing variables
///   and the latents declared above it in the guide.
///
/// Without mixing variables the guide is a structured (non-hierarchical)
/// one; a full-rank Gaussian block is its Cholesky factorisation written
/// as a chain, `u₁ | u₀ ~ Normal(m₁ + l₁₀ (u₀ − m₀) / s₀, s₁)`.
///
/// The guide works in the model's unconstrained space: a `LogNormal` on a
/// positive latent `z = exp(u)` is sampled as `u` and its log density
/// carries the Jacobian, `log q(u) = log LogNormal(exp(u)) + u`.
///
/// Checked at compile time against the model, with errors on the guide's
/// own tokens: every model latent has exactly one conditional (a missing
/// one is named with the model; a misspelled one gets the closest
/// uncovered latent suggested); vectors are vectors and scalars scalars;
/// `Normal` on a positive latent asks for `LogNormal` (and the reverse);
/// reverse models on all mixing variables or none, only on mixing
/// variables, indexed only over vectors; parameters used but undeclared,
/// declared but unused, or declared twice.
///
/// The model's expansion defines a hidden `macro_rules!` callback that
/// carries its latents to the guide's expansion, re-exported under the
/// model's own name in the macro namespace, so whatever brings the model
/// into scope brings its callback too: a guide may sit above the model, in
/// another module (`guide = super::models::Mean`), or name the model
/// through a `use`, a renaming `use … as` or a `pub use` re-export; a model
/// of the same name in a parent module does not interfere. The callback is
/// `pub(crate)`: a guide must be declared in its model's crate (a guide in
/// another crate fails with "cannot find macro `Mean`").
/// `Guide::new(&model)` reads the lengths of vector latents from the model's layout and fails with a
/// [`guide::GuideError`] if the model instance does not match.
///
/// ```
/// use iwhvi::guide::HierarchicalGuide;
/// use iwhvi::objective::{Diwhvi, DiwhviObjective, StepNoise};
/// use iwhvi::variational;
/// use iwhvi::Differentiable;
/// use rand::SeedableRng;
///
/// #[variational]
/// struct Centred {
///     #[data]
///     sigma: Vec<f64>,
///     #[latent(Normal(0.0, 5.0))]
///     mu: f64,
///     #[latent(HalfCauchy(5.0))]
///     tau: f64,
///     #[latent(Normal(mu, tau), len = sigma.len())]
///     theta: Vec<f64>,
///     #[observe(Normal(theta[j], sigma[j]), for j)]
///     y: Vec<f64>,
/// }
///
/// /// theta_j | mu, tau, psi follows the funnel; one mixing variable with
/// /// a reverse model.
/// #[variational(guide = Centred)]
/// struct Funnel {
///     #[param(init = 0.0)]
///     mu_loc: f64,
///     #[param(init = 0.0)]
///     mix: f64,
///     #[param(init = 1.0)]
///     tau_loc: f64,
///     #[param(init = 0.0, len = theta)]
///     a: Vec<f64>,
///     #[param(init = 0.0)]
///     back: f64,
///     #[mixing]
///     #[reverse(Normal(back * mu, 1.0))]
///     psi: f64,
///     #[latent(Normal(mu_loc + mix * psi, 1.0))]
///     mu: f64,
///     #[latent(LogNormal(tau_loc, 0.5))]
///     tau: f64,
///     #[latent(Normal(mu + tau * a[j], tau), for j)]
///     theta: Vec<f64>,
/// }
///
/// let model = Centred::new(vec![15.0, 10.0, 16.0], vec![28.0, 8.0, -3.0]).unwrap();
/// let guide = Funnel::new(&model).unwrap();
/// assert_eq!((guide.latent_dim(), guide.mixing_dim()), (5, 1));
/// assert_eq!(guide.param_layout().len(), 7);
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let params = guide.init_params(&mut rng);
/// let noise = StepNoise::draw(&guide, Diwhvi::new(4, 8), &mut rng);
/// let bound = DiwhviObjective::new(&model, &guide, &noise).eval(&params);
/// assert!(bound.is_finite());
/// ```
pub use iwhvi_macros::variational;

#[cfg(feature = "plot")]
pub mod plot;

/// The `rand` crate this library's API takes its random number generators
/// from (version 0.10). Use it through this path (`iwhvi::rand::rngs::StdRng`,
/// `iwhvi::rand::SeedableRng`) rather than adding `rand` to your own
/// `Cargo.toml`: two versions of `rand` in one build have different `Rng`
/// traits, and a generator from the other one is rejected with
/// "the trait bound `StdRng: rand_core::Rng` is not satisfied".
///
/// ```
/// use iwhvi::distributions::{Normal, Reparameterized};
/// use iwhvi::rand::SeedableRng;
///
/// let mut rng = iwhvi::rand::rngs::StdRng::seed_from_u64(7);
/// let normal = Normal::new(1.0, 2.0).unwrap();
/// let noise = Reparameterized::<f64>::sample_noise(&normal, &mut rng);
/// assert_eq!(normal.rsample(noise), 1.0 + 2.0 * noise);
/// ```
pub use rand;

#[doc(hidden)]
pub mod __private {
    //! Paths for generated code: `::iwhvi::__private::…` reaches the runtime
    //! and the crates it builds on whatever the user's crate imports or
    //! shadows. Only re-exports: the helpers' logic lives in
    //! `iwhvi_core::generated`. Not a public API.
    pub use iwhvi_core;
    pub use iwhvi_core::Scalar;
    pub use iwhvi_core::distributions::{
        self, Distribution, MultivariateDistribution, log_prob_multi_or_neg_inf,
        log_prob_or_neg_inf,
    };
    pub use iwhvi_core::generated::SavedStructGuide;
    pub use iwhvi_core::generated::student_t_noise;
    pub use iwhvi_core::generated::{
        AsIndex, OutOfRange, as_index, raw_add, raw_at, raw_at_matrix, raw_div, raw_mul, raw_rem,
        raw_sub,
    };
    pub use iwhvi_core::generated::{
        BatchLocal, ConstantNormal, DrawVector, ReferenceLogJoint, accumulate, checked_log_prob,
        checked_log_prob_multi, checked_value, constrain_blocks, constrain_elementwise,
        default_transform, gather_rows, inverse_scalar, normal_init, rsample_or_nan, scratch,
    };
    pub use iwhvi_core::generated::{raw_at_flagged, raw_at_matrix_flagged};
    pub use iwhvi_core::guide::{
        GuideError, HierarchicalGuide, NormalBatch, ParamLayout, Workspace, WorkspaceLens,
    };
    pub use iwhvi_core::input::check_learned_size;
    pub use iwhvi_core::model::{DataError, InvalidTerm, LatentSpec, Layout, Model, Term};
    pub use iwhvi_core::plate;
    pub use iwhvi_core::transforms::Transform;
    pub use iwhvi_macros::guide;
    pub use nalgebra;
    pub use rand;
    pub use serde;
}

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The user guide's examples (`docs/USER_GUIDE.md`), compiled and run as
/// doctests.
#[doc = include_str!("../docs/USER_GUIDE.md")]
#[cfg(doctest)]
pub struct UserGuideDoctests;
