//! Models: a log joint density over unconstrained latents, and the layout
//! that names them.
//!
//! A model's latents are fitted in an unconstrained space `u ∈ R^D`. Each
//! latent is a block of `u` mapped onto its support by a
//! [`Transform`]; `log_joint(u)` is `log p(x, z = T(u)) + log|det J_T(u)|`,
//! the density of `u`. The [`Layout`] records the blocks, so that a draw of
//! `u` can be reported as named, constrained latents.
//!
//! `#[variational]` generates [`Model`] implementations; until then, and
//! for models it cannot express, they are written by hand:
//!
//! ```
//! use iwhvi_core::distributions::{Distribution, Gamma, Normal};
//! use iwhvi_core::model::{Layout, LatentSpec, Model};
//! use iwhvi_core::transforms::Transform;
//! use iwhvi_core::Scalar;
//!
//! /// y ~ N(mu, sigma), mu ~ N(0, 10), sigma ~ Gamma(2, 1).
//! struct NormalModel {
//!     y: Vec<f64>,
//! }
//!
//! impl Model for NormalModel {
//!     fn layout(&self) -> Layout {
//!         Layout::new(vec![
//!             LatentSpec::scalar("mu", Transform::Identity),
//!             LatentSpec::scalar("sigma", Transform::Exp),
//!         ])
//!     }
//!
//!     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
//!         let mu = u[0];
//!         let (sigma, log_jacobian) = Transform::Exp.forward_scalar(u[1]);
//!         let mut lp = Normal::new(T::constant(0.0), T::constant(10.0)).unwrap().log_prob(mu)
//!             + Gamma::new(T::constant(2.0), T::constant(1.0)).unwrap().log_prob(sigma)
//!             + log_jacobian;
//!         let likelihood = Normal::new(mu, sigma).unwrap();
//!         for &y in &self.y {
//!             lp += likelihood.log_prob(T::constant(y));
//!         }
//!         lp
//!     }
//! }
//!
//! let model = NormalModel { y: vec![0.5, 1.5] };
//! assert_eq!(model.dim(), 2);
//! let latents = model.layout().constrain(&[1.0, 0.0]).unwrap();
//! assert_eq!(latents.get("sigma").unwrap(), &[1.0]);
//! ```

use std::collections::BTreeMap;
use std::ops::Range;

use crate::scalar::Scalar;
use crate::transforms::{Transform, TransformError};

/// A Bayesian model as the runtime sees it: the log joint density of its
/// unconstrained latents `u ∈ R^D`, generic over the scalar, and the
/// layout that names them.
pub trait Model: Sync {
    /// The unconstrained dimension when it is known at compile time (every
    /// shape fixed; `#[variational]` will set it), else `None`.
    const STATIC_DIM: Option<usize> = None;

    /// The latents' names, shapes and transforms.
    fn layout(&self) -> Layout;

    /// `log p(x, T(u)) + log|det J_T(u)|`: the log joint in unconstrained
    /// space, Jacobians included. `u.len()` is [`Model::dim`].
    ///
    /// A requirement on the caller, not checked here (this is the inner
    /// evaluation, run once per draw and gradient pass): every function of
    /// this library that passes it a vector it was given (a start point,
    /// a guide's draws, a Laplace initial point) checks the length first
    /// and returns a typed error. To evaluate it at a point of your own,
    /// call [`Model::try_log_joint`].
    ///
    /// # Panics
    /// An implementation may panic (a `#[variational]` model does, on a
    /// slice index) when `u.len() != dim`.
    fn log_joint<T: Scalar>(&self, u: &[T]) -> T;

    /// [`Model::log_joint`] at `u` in `f64`, after checking `u.len()`
    /// against [`Model::dim`]: the checked entry for a caller's own point.
    ///
    /// # Errors
    /// [`LayoutError::WrongLength`] when `u.len()` is not [`Model::dim`].
    ///
    /// ```
    /// use iwhvi_core::model::{LatentSpec, Layout, LayoutError, Model};
    /// use iwhvi_core::transforms::Transform;
    /// use iwhvi_core::Scalar;
    ///
    /// struct Std;
    /// impl Model for Std {
    ///     fn layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("z", Transform::Identity)])
    ///     }
    ///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
    ///         -u[0].square() * 0.5
    ///     }
    /// }
    /// assert_eq!(Std.try_log_joint(&[2.0]), Ok(-2.0));
    /// assert_eq!(
    ///     Std.try_log_joint(&[2.0, 1.0]),
    ///     Err(LayoutError::WrongLength { expected: 1, found: 2 })
    /// );
    /// ```
    fn try_log_joint(&self, u: &[f64]) -> Result<f64, LayoutError> {
        let dim = self.dim();
        if u.len() != dim {
            return Err(LayoutError::WrongLength {
                expected: dim,
                found: u.len(),
            });
        }
        Ok(self.log_joint(u))
    }

    /// Derived quantities (Stan's generated quantities): deterministic
    /// functions of the constrained latents, reported with the posterior.
    /// None by default.
    fn derived(&self, latents: &Latents) -> Latents {
        let _ = latents;
        Latents::default()
    }

    /// The first term of the log joint at `u` that is `−∞` or NaN, named
    /// (the prior of which latent, which element of which observed field,
    /// which factor), with the distribution constructor's error when a
    /// parameter is invalid there; `None` when every term is finite. `fit`
    /// asks for it once, when the log joint at the guide's starting point
    /// is not finite. `#[variational]` models name their terms; the
    /// default (for hand-written models) names none.
    ///
    /// # Panics
    /// As [`Model::log_joint`], an implementation may panic when
    /// `u.len() != dim`; `fit` passes the guide's starting point, whose
    /// length it has checked.
    fn first_invalid_term(&self, u: &[f64]) -> Option<InvalidTerm> {
        let _ = u;
        None
    }

    /// The unconstrained dimension `D`: [`Model::STATIC_DIM`] when known,
    /// else from the layout (known at run time, e.g. from data lengths).
    fn dim(&self) -> usize {
        Self::STATIC_DIM.unwrap_or_else(|| self.layout().dim())
    }

    /// The model's learned parameters `θ` (`#[param(init = …)]` fields):
    /// names, shapes and the transforms from their unconstrained
    /// coordinates `ϑ ∈ R^{D_θ}`, `θ = T(ϑ)`. Empty by default (a model
    /// with nothing to learn).
    ///
    /// A learned parameter is a point, not a random variable: its
    /// transform only keeps it in its domain while it is optimised, and no
    /// log Jacobian enters the log joint.
    fn theta_layout(&self) -> Layout {
        Layout::default()
    }

    /// `D_θ`, the number of unconstrained coordinates of the learned
    /// parameters ([`Model::theta_layout`]'s dimension; 0 by default).
    fn theta_dim(&self) -> usize {
        self.theta_layout().dim()
    }

    /// The current learned parameters, unconstrained (`ϑ = T⁻¹(θ)`, in
    /// [`Model::theta_layout`]'s order): where [`fit`](crate::fit::fit)
    /// starts them. Empty by default.
    fn theta(&self) -> Vec<f64> {
        Vec::new()
    }

    /// Sets the learned parameters from unconstrained values `ϑ` (as
    /// [`Fit::theta`](crate::fit::Fit::theta) holds them), so that
    /// [`Model::log_joint`] and everything built on it (`log_evidence`,
    /// `estimate_bound`, a further fit) use `θ = T(ϑ)`.
    ///
    /// # Errors
    /// [`LayoutError::WrongLength`] when `theta.len()` is not
    /// [`Model::theta_dim`] (the default accepts only the empty slice).
    fn set_theta(&mut self, theta: &[f64]) -> Result<(), LayoutError> {
        if theta.is_empty() {
            Ok(())
        } else {
            Err(LayoutError::WrongLength {
                expected: 0,
                found: theta.len(),
            })
        }
    }

    /// `log p_θ(x, T(u)) + log|det J_T(u)|` at the learned parameters
    /// `θ = T(ϑ)` given unconstrained as `theta` (length
    /// [`Model::theta_dim`]) instead of the model's current ones: the
    /// function whose gradient in `ϑ` the fit follows. At
    /// `theta = self.theta()` it equals [`Model::log_joint`] (to rounding
    /// of `T(T⁻¹(θ))`). The default ignores `theta` (no learned
    /// parameters).
    ///
    /// ```
    /// use iwhvi_core::Scalar;
    /// use iwhvi_core::model::{LatentSpec, Layout, LayoutError, Model};
    /// use iwhvi_core::transforms::Transform;
    ///
    /// /// z ~ N(mu, 1), y ~ N(z, 1), with mu learned.
    /// struct Learned { y: f64, mu: f64 }
    ///
    /// impl Model for Learned {
    ///     fn layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("z", Transform::Identity)])
    ///     }
    ///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
    ///         self.log_joint_theta(&[T::constant(self.mu)], u)
    ///     }
    ///     fn theta_layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("mu", Transform::Identity)])
    ///     }
    ///     fn theta(&self) -> Vec<f64> {
    ///         vec![self.mu]
    ///     }
    ///     fn set_theta(&mut self, theta: &[f64]) -> Result<(), LayoutError> {
    ///         match theta {
    ///             [mu] => { self.mu = *mu; Ok(()) }
    ///             _ => Err(LayoutError::WrongLength { expected: 1, found: theta.len() }),
    ///         }
    ///     }
    ///     fn log_joint_theta<T: Scalar>(&self, theta: &[T], u: &[T]) -> T {
    ///         let (z, mu) = (u[0], theta[0]);
    ///         -(z - mu).square() * 0.5 - (T::constant(self.y) - z).square() * 0.5
    ///     }
    /// }
    ///
    /// let mut model = Learned { y: 1.0, mu: 0.0 };
    /// assert_eq!(model.theta_dim(), 1);
    /// assert_eq!(model.log_joint_theta(&[0.5], &[1.0]), -0.125);
    /// model.set_theta(&[0.5]).unwrap();
    /// assert_eq!(model.log_joint(&[1.0]), -0.125);
    /// ```
    fn log_joint_theta<T: Scalar>(&self, theta: &[T], u: &[T]) -> T {
        let _ = theta;
        self.log_joint(u)
    }

    /// How many standard normal draws one evaluation of the log joint
    /// consumes: a model with semi-implicit priors (`#[prior_mixing]`,
    /// [`semi_implicit_prior`](crate::semi_implicit_prior)) estimates
    /// their log densities by importance sampling over their mixing
    /// variables, `K` draws each. 0 by default (an exact log joint).
    ///
    /// `fit`, `estimate_bound` and `log_evidence` draw this much fresh noise
    /// for each outer sample of each step or replicate
    /// ([`StepNoise::with_prior_noise`](crate::objective::StepNoise::with_prior_noise))
    /// and evaluate [`Model::log_joint_with_noise`], an unbiased estimate of
    /// the joint density, so that their bounds remain lower bounds on
    /// `log p(x)`.
    fn prior_noise_dim(&self) -> usize {
        0
    }

    /// The log joint with the semi-implicit priors' importance sampling
    /// driven by `noise` (standard normal, length
    /// [`Model::prior_noise_dim`]; a shorter slice falls back to the
    /// model's fixed reference noise): `exp` of it is an unbiased
    /// estimate of `p(x, T(u)) |det J_T(u)|`. The default ignores `noise`
    /// and is [`Model::log_joint`].
    ///
    /// ```
    /// use iwhvi_core::Scalar;
    /// use iwhvi_core::model::{LatentSpec, Layout, Model};
    /// use iwhvi_core::transforms::Transform;
    ///
    /// struct Exact;
    /// impl Model for Exact {
    ///     fn layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("z", Transform::Identity)])
    ///     }
    ///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
    ///         -u[0].square() * 0.5
    ///     }
    /// }
    /// assert_eq!(Exact.prior_noise_dim(), 0);
    /// assert_eq!(Exact.log_joint_with_noise(&[2.0], &[]), -2.0);
    /// ```
    fn log_joint_with_noise<T: Scalar>(&self, u: &[T], noise: &[f64]) -> T {
        let _ = noise;
        self.log_joint(u)
    }

    /// [`Model::log_joint_theta`] with the semi-implicit priors driven by
    /// `noise`, as [`Model::log_joint_with_noise`]: the function whose
    /// gradient in `(u, ϑ)` a fit follows. The default is
    /// [`Model::log_joint_with_noise`] for a model without learned
    /// parameters (`theta` empty), and otherwise `log_joint_theta`, which
    /// ignores `noise`.
    ///
    /// ```
    /// use iwhvi_core::Scalar;
    /// use iwhvi_core::model::{LatentSpec, Layout, Model};
    /// use iwhvi_core::transforms::Transform;
    ///
    /// struct Exact;
    /// impl Model for Exact {
    ///     fn layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("z", Transform::Identity)])
    ///     }
    ///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
    ///         -u[0].square() * 0.5
    ///     }
    /// }
    /// assert_eq!(Exact.log_joint_theta_with_noise(&[], &[2.0], &[0.3]), -2.0);
    /// ```
    fn log_joint_theta_with_noise<T: Scalar>(&self, theta: &[T], u: &[T], noise: &[f64]) -> T {
        if theta.is_empty() {
            self.log_joint_with_noise(u, noise)
        } else {
            self.log_joint_theta(theta, u)
        }
    }

    /// The plate this model can subsample in a minibatch fit
    /// ([`FitConfig::batch_size`](crate::fit::FitConfig::batch_size)):
    /// its observed fields and length `N`. The default says that the
    /// model cannot be subsampled
    /// ([`NOT_SUBSAMPLED`](crate::subsample::NOT_SUBSAMPLED)), and `fit`
    /// then refuses a batch size with
    /// [`InputError::InvalidSetting`](crate::input::InputError::InvalidSetting)
    /// naming this reason.
    ///
    /// # Errors
    /// Why the model cannot be subsampled (a model with two plates of
    /// different lengths, for instance).
    ///
    /// ```
    /// use iwhvi_core::Scalar;
    /// use iwhvi_core::model::{LatentSpec, Layout, Model};
    /// use iwhvi_core::subsample::NOT_SUBSAMPLED;
    /// use iwhvi_core::transforms::Transform;
    ///
    /// struct Plain;
    /// impl Model for Plain {
    ///     fn layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("z", Transform::Identity)])
    ///     }
    ///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
    ///         -u[0].square() * 0.5
    ///     }
    /// }
    /// assert_eq!(Plain.subsample_plate(), Err(NOT_SUBSAMPLED));
    /// ```
    fn subsample_plate(&self) -> Result<crate::subsample::SubsamplePlate, &'static str> {
        Err(crate::subsample::NOT_SUBSAMPLED)
    }

    /// The log joint on a minibatch of the plate that
    /// [`Model::subsample_plate`] declares, at learned parameters `theta`
    /// and prior noise `noise` (as [`Model::log_joint_theta_with_noise`]):
    ///
    /// ```text
    /// [global terms] + batch.scale() · Σ_{n ∈ batch} [plate terms of n],
    /// ```
    ///
    /// the global terms being every term outside the plate (priors,
    /// factors, Jacobians). For a uniform subset of size `b` with scale
    /// `N / b` it is an unbiased estimate of the full log joint. Called
    /// only when [`Model::subsample_plate`] is `Ok`; the default (for
    /// models that cannot be subsampled) ignores the batch and returns
    /// [`Model::log_joint_theta_with_noise`].
    ///
    /// ```
    /// use iwhvi_core::Scalar;
    /// use iwhvi_core::model::{LatentSpec, Layout, Model};
    /// use iwhvi_core::subsample::{Batch, SubsamplePlate};
    /// use iwhvi_core::transforms::Transform;
    ///
    /// /// mu ~ N(0, 1), y_n ~ N(mu, 1).
    /// struct Mean { y: Vec<f64> }
    /// impl Model for Mean {
    ///     fn layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("mu", Transform::Identity)])
    ///     }
    ///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
    ///         let all: Vec<usize> = (0..self.y.len()).collect();
    ///         self.log_joint_subset(&[], u, &[], &Batch::new(&all, self.y.len()))
    ///     }
    ///     fn subsample_plate(&self) -> Result<SubsamplePlate, &'static str> {
    ///         Ok(SubsamplePlate { observed: vec!["y".into()], len: self.y.len() })
    ///     }
    ///     fn log_joint_subset<T: Scalar>(&self, _: &[T], u: &[T], _: &[f64], batch: &Batch<'_>) -> T {
    ///         let mut plate = T::constant(0.0);
    ///         for &n in batch.indices() {
    ///             plate += -(T::constant(self.y[n]) - u[0]).square() * 0.5;
    ///         }
    ///         -u[0].square() * 0.5 + plate * batch.scale()
    ///     }
    /// }
    /// let model = Mean { y: vec![1.0, 3.0] };
    /// // The global term -0.5 plus 2 · (-0.5 · (3 - 1)²) on the batch {1}.
    /// assert_eq!(model.log_joint_subset(&[], &[1.0], &[], &Batch::new(&[1], 2)), -4.5);
    /// ```
    fn log_joint_subset<T: Scalar>(
        &self,
        theta: &[T],
        u: &[T],
        noise: &[f64],
        batch: &crate::subsample::Batch<'_>,
    ) -> T {
        let _ = batch;
        self.log_joint_theta_with_noise(theta, u, noise)
    }

    /// The latents local to the plate of [`Model::subsample_plate`]
    /// (names of vector latents `z[j]` declared `for j` over the plate):
    /// element `n` of the plate owns coordinate `n` of each one's block of
    /// `u`, and every term that reads it (its prior and Jacobian, the
    /// plate's likelihood terms of `n`, other local latents' priors at `n`)
    /// is a plate term of `n` in [`Model::log_joint_subset`], counted only
    /// for the batch's elements and scaled by `N / b` with them:
    ///
    /// ```text
    /// log p̂ = log p(g) + (N / b) Σ_{n ∈ B} [log p(z_n | g) + log p(x_n | z_n, g)].
    /// ```
    ///
    /// The default is none (every latent global, its terms counted whole).
    /// A minibatch fit with `M > 1` needs every latent local
    /// ([`FitConfig::batch_size`](crate::fit::FitConfig::batch_size)).
    ///
    /// ```
    /// use iwhvi_core::Scalar;
    /// use iwhvi_core::model::{LatentSpec, Layout, Model};
    /// use iwhvi_core::transforms::Transform;
    ///
    /// struct Plain;
    /// impl Model for Plain {
    ///     fn layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::scalar("z", Transform::Identity)])
    ///     }
    ///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
    ///         -u[0].square() * 0.5
    ///     }
    /// }
    /// assert!(Plain.local_latents().is_empty());
    /// ```
    fn local_latents(&self) -> Vec<String> {
        Vec::new()
    }

    /// The log joint on a batch split by element: returns the global terms
    /// `log p(g)` and writes into `points[i]` the plate terms of the
    /// batch's `i`-th element `n`, unscaled
    /// (`log p(z_n | g) + log p(x_n | z_n, g)` for a model with
    /// [`Model::local_latents`]), so that
    /// `log_joint_subset = global + batch.scale() · Σ_i points[i]` up to
    /// rounding. `points` has `batch.len()` entries. The default calls
    /// [`Model::log_joint_subset`] once on the empty batch and once per
    /// element (scale 1), subtracting the global part.
    ///
    /// ```
    /// use iwhvi_core::Scalar;
    /// use iwhvi_core::model::{LatentSpec, Layout, Model};
    /// use iwhvi_core::subsample::{Batch, SubsamplePlate};
    /// use iwhvi_core::transforms::Transform;
    ///
    /// /// z_n ~ N(0, 1), y_n ~ N(z_n, 1): every latent local.
    /// struct Local { y: Vec<f64> }
    /// impl Model for Local {
    ///     fn layout(&self) -> Layout {
    ///         Layout::new(vec![LatentSpec::vector("z", self.y.len(), Transform::Identity)])
    ///     }
    ///     fn log_joint<T: Scalar>(&self, u: &[T]) -> T {
    ///         let all: Vec<usize> = (0..self.y.len()).collect();
    ///         self.log_joint_subset(&[], u, &[], &Batch::new(&all, self.y.len()))
    ///     }
    ///     fn subsample_plate(&self) -> Result<SubsamplePlate, &'static str> {
    ///         Ok(SubsamplePlate { observed: vec!["y".into()], len: self.y.len() })
    ///     }
    ///     fn local_latents(&self) -> Vec<String> {
    ///         vec!["z".into()]
    ///     }
    ///     fn log_joint_subset<T: Scalar>(&self, _: &[T], u: &[T], _: &[f64], batch: &Batch<'_>) -> T {
    ///         let mut plate = T::constant(0.0);
    ///         for &n in batch.indices() {
    ///             plate += -u[n].square() * 0.5 - (T::constant(self.y[n]) - u[n]).square() * 0.5;
    ///         }
    ///         plate * batch.scale()
    ///     }
    /// }
    /// let model = Local { y: vec![1.0, 3.0] };
    /// let mut points = [0.0; 2];
    /// let global = model.log_joint_points(&[], &[0.0, 1.0], &[], &Batch::new(&[0, 1], 2), &mut points);
    /// assert_eq!((global, points), (0.0, [-0.5, -2.5]));
    /// ```
    fn log_joint_points<T: Scalar>(
        &self,
        theta: &[T],
        u: &[T],
        noise: &[f64],
        batch: &crate::subsample::Batch<'_>,
        points: &mut [T],
    ) -> T {
        use crate::subsample::Batch;
        let global = self.log_joint_subset(theta, u, noise, &Batch::with_scale(&[], 1.0));
        for (point, n) in points.iter_mut().zip(batch.indices()) {
            let one = Batch::with_scale(std::slice::from_ref(n), 1.0);
            *point = self.log_joint_subset(theta, u, noise, &one) - global;
        }
        global
    }
}

/// What a model declares about one latent: its name, its (constrained)
/// shape and the transform onto its support.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatentSpec {
    /// The latent's name.
    pub name: String,
    /// Its constrained shape (`[]` for a scalar).
    pub shape: Vec<usize>,
    /// The transform from its unconstrained coordinates.
    pub transform: Transform,
    /// Interval bounds that depend on earlier scalar latents (Stan's
    /// `real<lower = 0, upper = 1 - alpha1> beta1`); when set, `transform`
    /// is ignored and the scaled sigmoid runs between these bounds.
    #[serde(default)]
    pub dependent_bounds: Option<DependentBounds>,
    /// One elementwise transform per constrained entry (bounds, offsets or
    /// multipliers given per element from data); when set, `transform`
    /// only fixes the dimension (an elementwise one keeps it).
    #[serde(default)]
    pub per_element: Option<Vec<Transform>>,
    /// An affine transform (`offset`/`multiplier`) whose offset and
    /// multiplier move with earlier scalar latents (Stan's
    /// `vector<offset = mu, multiplier = tau>[J] theta`); when set,
    /// `transform` is ignored.
    #[serde(default)]
    pub dependent_affine: Option<DependentAffine>,
}

/// `constant + Σ coefficient · latent` over earlier scalar latents.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AffineBound {
    /// The constant term.
    pub constant: f64,
    /// `(latent name, coefficient)` pairs.
    pub terms: Vec<(String, f64)>,
}

impl AffineBound {
    /// A constant bound.
    pub fn constant(value: f64) -> Self {
        Self {
            constant: value,
            terms: Vec::new(),
        }
    }

    /// Its value given the latents constrained so far, for the bound of
    /// `latent`.
    fn at(&self, values: &BTreeMap<String, Vec<f64>>, latent: &str) -> Result<f64, LayoutError> {
        let mut total = self.constant;
        for (name, coefficient) in &self.terms {
            let value = match values.get(name).map(Vec::as_slice) {
                Some(&[value]) => value,
                _ => {
                    return Err(LayoutError::BoundOnUnavailableLatent {
                        latent: latent.to_string(),
                        depends_on: name.clone(),
                    });
                }
            };
            total += coefficient * value;
        }
        Ok(total)
    }
}

/// The interval `(low, high)` of a latent whose bounds move with earlier
/// latents.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DependentBounds {
    /// The lower bound.
    pub low: AffineBound,
    /// The upper bound.
    pub high: AffineBound,
}

/// The offset and multiplier of an affine transform that move with
/// earlier latents: `z = offset + multiplier · u`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DependentAffine {
    /// The offset.
    pub offset: AffineBound,
    /// The multiplier (positive where the model is defined).
    pub multiplier: AffineBound,
}

impl LatentSpec {
    /// A scalar latent.
    pub fn scalar(name: &str, transform: Transform) -> Self {
        Self {
            name: name.to_string(),
            shape: Vec::new(),
            transform,
            dependent_bounds: None,
            per_element: None,
            dependent_affine: None,
        }
    }

    /// A vector latent of `len` constrained entries.
    pub fn vector(name: &str, len: usize, transform: Transform) -> Self {
        Self {
            name: name.to_string(),
            shape: vec![len],
            transform,
            dependent_bounds: None,
            per_element: None,
            dependent_affine: None,
        }
    }

    /// The number of constrained entries.
    pub fn constrained_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The transform at the latents constrained so far (resolving
    /// dependent bounds).
    fn effective_transform(
        &self,
        values: &BTreeMap<String, Vec<f64>>,
    ) -> Result<Transform, LayoutError> {
        if let Some(affine) = &self.dependent_affine {
            return Ok(Transform::Affine {
                offset: affine.offset.at(values, &self.name)?,
                multiplier: affine.multiplier.at(values, &self.name)?,
            });
        }
        match &self.dependent_bounds {
            None => Ok(self.transform),
            Some(bounds) => Ok(Transform::Interval {
                low: bounds.low.at(values, &self.name)?,
                high: bounds.high.at(values, &self.name)?,
            }),
        }
    }

    /// `z = T(u)` at the latents constrained so far.
    fn forward(
        &self,
        values: &BTreeMap<String, Vec<f64>>,
        u: &[f64],
        z: &mut [f64],
    ) -> Result<(), LayoutError> {
        match &self.per_element {
            Some(each) => {
                crate::transforms::forward_elementwise(each, u, z);
            }
            None => {
                self.effective_transform(values)?.forward(u, z);
            }
        }
        Ok(())
    }

    /// `u = T⁻¹(z)` at the latents constrained so far.
    fn inverse(
        &self,
        values: &BTreeMap<String, Vec<f64>>,
        z: &[f64],
        u: &mut [f64],
    ) -> Result<(), LayoutError> {
        let outside = |source| LayoutError::OutsideSupport {
            name: self.name.clone(),
            source,
        };
        match &self.per_element {
            Some(each) => crate::transforms::inverse_elementwise(each, z, u).map_err(outside),
            None => self
                .effective_transform(values)?
                .inverse(z, u)
                .map_err(outside),
        }
    }
}

/// One latent's place in `u`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatentBlock {
    /// What the model declared.
    pub spec: LatentSpec,
    /// Its coordinates in `u`.
    pub unconstrained: Range<usize>,
}

/// The latents of a model, in order, with their places in `u`.
///
/// Saved (serde) as its latents' specs alone, `{"latents": [...]}`; the
/// places in `u` and `D` are derived again on loading, through
/// [`Layout::try_new`] with the checks of [`SavedLayout`].
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "SavedLayout", into = "SavedLayout")]
pub struct Layout {
    blocks: Vec<LatentBlock>,
    dim: usize,
}

/// What a saved [`Layout`] holds: the latents' specs. Loading checks
/// what a model's declaration guarantees: every shape has at most
/// [`SavedLayout::MAX_ELEMENTS`] elements, bounds are finite with
/// `low < high`, and a dependent bound reads only scalar latents declared
/// before it, with finite coefficients.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedLayout {
    /// The latents, in order.
    pub latents: Vec<LatentSpec>,
}

impl SavedLayout {
    /// The most constrained elements one latent of a saved layout may have
    /// (2³²).
    pub const MAX_ELEMENTS: usize = 1 << 32;
}

impl From<Layout> for SavedLayout {
    fn from(layout: Layout) -> Self {
        Self {
            latents: layout.blocks.into_iter().map(|b| b.spec).collect(),
        }
    }
}

impl TryFrom<SavedLayout> for Layout {
    type Error = String;

    fn try_from(saved: SavedLayout) -> Result<Self, String> {
        let mut scalars: Vec<&str> = Vec::new();
        for spec in &saved.latents {
            let elements = spec
                .shape
                .iter()
                .try_fold(1usize, |n, &s| n.checked_mul(s))
                .filter(|&n| n <= SavedLayout::MAX_ELEMENTS);
            if elements.is_none() {
                return Err(format!(
                    "latent `{}`: shape {:?} has more than 2^32 elements",
                    spec.name, spec.shape
                ));
            }
            let bounds_ok = match spec.transform {
                Transform::LowerBound { low } => low.is_finite(),
                Transform::UpperBound { high } => high.is_finite(),
                Transform::Interval { low, high } => {
                    low.is_finite() && high.is_finite() && low < high
                }
                _ => true,
            };
            if !bounds_ok {
                return Err(format!(
                    "latent `{}`: the bounds of {:?} are not finite with low < high",
                    spec.name, spec.transform
                ));
            }
            if let Some(bounds) = &spec.dependent_bounds {
                for bound in [&bounds.low, &bounds.high] {
                    let finite = bound.constant.is_finite()
                        && bound.terms.iter().all(|(_, c)| c.is_finite());
                    let known = bound
                        .terms
                        .iter()
                        .all(|(name, _)| scalars.contains(&name.as_str()));
                    if !finite || !known {
                        return Err(format!(
                            "latent `{}`: a dependent bound is not finite or reads a latent that is not a scalar declared before it",
                            spec.name
                        ));
                    }
                }
            }
            if spec.shape.is_empty() {
                scalars.push(&spec.name);
            }
        }
        Self::try_new(saved.latents).map_err(|e| e.to_string())
    }
}

/// Why a layout could not map a value.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// The unconstrained vector has the wrong length.
    #[error("the model has {expected} unconstrained coordinates, got a vector of {found}")]
    WrongLength {
        /// `D`.
        expected: usize,
        /// What was given.
        found: usize,
    },
    /// A latent's shape does not fit its transform.
    #[error("latent `{name}`: shape {shape:?} does not fit transform {transform}")]
    ShapeDoesNotFitTransform {
        /// The latent.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
        /// The transform's name.
        transform: &'static str,
    },
    /// A named latent is missing from the values given.
    #[error("no value given for latent `{0}`")]
    Missing(String),
    /// A latent's bound refers to a latent that is not a scalar declared
    /// before it.
    #[error(
        "latent `{latent}`: its bound uses `{depends_on}`, which is not a scalar latent declared before it"
    )]
    BoundOnUnavailableLatent {
        /// The latent with the bound.
        latent: String,
        /// The latent its bound uses.
        depends_on: String,
    },
    /// A latent's value is outside its support.
    #[error("latent `{name}`: {source}")]
    OutsideSupport {
        /// The latent.
        name: String,
        /// What the transform found.
        source: TransformError,
    },
    /// A value given as learned parameters
    /// ([`Model::set_theta`](crate::model::Model::set_theta)) is NaN or
    /// infinite: every later evaluation would be NaN, and `fit` would
    /// name a term rather than the parameter.
    #[error("learned parameter coordinate {index} is {value}, which is not finite")]
    NotFinite {
        /// Its position in `ϑ`.
        index: usize,
        /// The value.
        value: f64,
    },
}

impl Layout {
    /// Lays the latents out in order.
    ///
    /// # Panics
    /// If a shape does not fit its transform (a simplex of 0 entries, a
    /// non-square Cholesky factor); [`Layout::try_new`] returns the error.
    pub fn new(specs: Vec<LatentSpec>) -> Self {
        Self::try_new(specs).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Lays the latents out in order.
    ///
    /// # Errors
    /// [`LayoutError::ShapeDoesNotFitTransform`].
    pub fn try_new(specs: Vec<LatentSpec>) -> Result<Self, LayoutError> {
        let mut blocks = Vec::with_capacity(specs.len());
        let mut offset = 0;
        for spec in specs {
            let per_element_fits = spec.per_element.as_ref().is_none_or(|each| {
                each.len() == spec.constrained_len()
                    && spec.transform.is_elementwise()
                    && each.iter().all(Transform::is_elementwise)
            });
            let len = spec
                .transform
                .unconstrained_len(spec.constrained_len())
                .filter(|_| per_element_fits)
                .ok_or_else(|| LayoutError::ShapeDoesNotFitTransform {
                    name: spec.name.clone(),
                    shape: spec.shape.clone(),
                    transform: spec.transform.name(),
                })?;
            blocks.push(LatentBlock {
                spec,
                unconstrained: offset..offset + len,
            });
            offset += len;
        }
        Ok(Self {
            blocks,
            dim: offset,
        })
    }

    /// The unconstrained dimension `D`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The latents in order.
    pub fn blocks(&self) -> &[LatentBlock] {
        &self.blocks
    }

    /// A name for every constrained element: `mu`, `theta[0]`, `L[1,0]`.
    pub fn element_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for block in &self.blocks {
            let spec = &block.spec;
            match spec.shape.as_slice() {
                [] => names.push(spec.name.clone()),
                [n] => names.extend((0..*n).map(|i| format!("{}[{i}]", spec.name))),
                shape => {
                    let total: usize = shape.iter().product();
                    for flat in 0..total {
                        let mut index = Vec::with_capacity(shape.len());
                        let mut rest = flat;
                        for &s in shape.iter().rev() {
                            index.push(rest % s);
                            rest /= s;
                        }
                        index.reverse();
                        let index: Vec<String> = index.iter().map(usize::to_string).collect();
                        names.push(format!("{}[{}]", spec.name, index.join(",")));
                    }
                }
            }
        }
        names
    }

    /// The named constrained latents of an unconstrained point.
    ///
    /// # Errors
    /// [`LayoutError::WrongLength`], or
    /// [`LayoutError::BoundOnUnavailableLatent`] for a hand-built layout
    /// whose bound uses a latent that is not an earlier scalar.
    pub fn constrain(&self, u: &[f64]) -> Result<Latents, LayoutError> {
        if u.len() != self.dim {
            return Err(LayoutError::WrongLength {
                expected: self.dim,
                found: u.len(),
            });
        }
        let mut values = BTreeMap::new();
        let mut order = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let mut z = vec![0.0; block.spec.constrained_len()];
            block
                .spec
                .forward(&values, &u[block.unconstrained.clone()], &mut z)?;
            values.insert(block.spec.name.clone(), z);
            order.push(block.spec.name.clone());
        }
        Ok(Latents { values, order })
    }

    /// The unconstrained point of named constrained latents.
    ///
    /// # Errors
    /// [`LayoutError::Missing`], [`LayoutError::OutsideSupport`] or
    /// [`LayoutError::BoundOnUnavailableLatent`] naming the latent.
    pub fn unconstrain(&self, latents: &Latents) -> Result<Vec<f64>, LayoutError> {
        let mut u = vec![0.0; self.dim];
        let mut seen = BTreeMap::new();
        for block in &self.blocks {
            let name = &block.spec.name;
            let z = latents
                .get(name)
                .ok_or_else(|| LayoutError::Missing(name.clone()))?;
            block
                .spec
                .inverse(&seen, z, &mut u[block.unconstrained.clone()])?;
            seen.insert(name.clone(), z.to_vec());
        }
        Ok(u)
    }
}

/// Named constrained latents (each flattened in row-major order).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Latents {
    values: BTreeMap<String, Vec<f64>>,
    order: Vec<String>,
}

impl Latents {
    /// Latents from `(name, value)` pairs, in the order given.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, Vec<f64>)>) -> Self {
        let mut latents = Self::default();
        for (name, value) in pairs {
            latents.order.push(name.clone());
            latents.values.insert(name, value);
        }
        latents
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// One latent's value.
    pub fn get(&self, name: &str) -> Option<&[f64]> {
        self.values.get(name).map(Vec::as_slice)
    }

    /// The latents in the model's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[f64])> {
        self.order
            .iter()
            .map(|name| (name.as_str(), self.values[name].as_slice()))
    }

    /// All constrained elements in order, matching
    /// [`Layout::element_names`].
    pub fn flatten(&self) -> Vec<f64> {
        self.iter().flat_map(|(_, v)| v.iter().copied()).collect()
    }
}

/// A term of the log joint, as [`Model::first_invalid_term`] names it.
///
/// ```
/// use iwhvi_core::model::Term;
/// let term = Term::Likelihood { field: "y", element: Some(3) };
/// assert_eq!(term.to_string(), "the likelihood of `y[3]`");
/// let term = Term::FactorRows { field: "lik", terms: 4, rows: 5 };
/// assert_eq!(term.to_string(), "the factor `lik` (4 terms for 5 rows)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Term {
    /// The prior density of a latent (of one element, for an elementwise
    /// prior over a vector).
    Prior {
        /// The latent.
        latent: &'static str,
        /// The element, for an elementwise prior.
        element: Option<usize>,
    },
    /// The log Jacobian of a latent's transform.
    Transform {
        /// The latent.
        latent: &'static str,
    },
    /// The likelihood of an observed field (of one element, for a vector
    /// observed with `for i`).
    Likelihood {
        /// The observed field.
        field: &'static str,
        /// The element.
        element: Option<usize>,
    },
    /// A free `#[factor]` term (of one element, for a plate of factors
    /// over `for i`).
    Factor {
        /// The factor's field.
        field: &'static str,
        /// The element, for a plate of factors.
        element: Option<usize>,
    },
    /// A plate of factors over a batch (`for rows in batch`) whose term
    /// returned a number of terms other than one per row: the log joint
    /// is NaN there.
    FactorRows {
        /// The factor's field.
        field: &'static str,
        /// The number of terms it returned.
        terms: usize,
        /// The number of rows it was given.
        rows: usize,
    },
}

impl std::fmt::Display for Term {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Term::Prior {
                latent,
                element: None,
            } => write!(f, "the prior of `{latent}`"),
            Term::Prior {
                latent,
                element: Some(i),
            } => write!(f, "the prior of `{latent}[{i}]`"),
            Term::Transform { latent } => write!(f, "the log Jacobian of `{latent}`'s transform"),
            Term::Likelihood {
                field,
                element: None,
            } => write!(f, "the likelihood of `{field}`"),
            Term::Likelihood {
                field,
                element: Some(i),
            } => write!(f, "the likelihood of `{field}[{i}]`"),
            Term::Factor {
                field,
                element: None,
            } => write!(f, "the factor `{field}`"),
            Term::Factor {
                field,
                element: Some(i),
            } => write!(f, "the factor `{field}[{i}]`"),
            Term::FactorRows { field, terms, rows } => {
                write!(f, "the factor `{field}` ({terms} terms for {rows} rows)")
            }
        }
    }
}

/// A term of the log joint that is `−∞` or NaN at a point, and why when a
/// distribution's parameter is invalid there.
///
/// ```
/// use iwhvi_core::distributions::Normal;
/// use iwhvi_core::model::{InvalidTerm, Term};
/// let invalid = InvalidTerm {
///     term: Term::Prior { latent: "theta", element: Some(0) },
///     value: f64::NEG_INFINITY,
///     cause: Normal::new(0.0, 0.0).err(),
/// };
/// assert_eq!(
///     invalid.to_string(),
///     "the prior of `theta[0]` is -inf: Normal: parameter `scale` must be positive and finite, got 0"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{term} is {value}{}", cause.as_ref().map_or_else(String::new, |c| format!(": {c}")))]
pub struct InvalidTerm {
    /// The term.
    pub term: Term,
    /// Its value there (`−∞` or NaN).
    pub value: f64,
    /// The distribution's error, when its constructor rejects a parameter
    /// there; `None` when the parameters are valid and the value lies
    /// outside the support (or the term is not a distribution's).
    pub cause: Option<crate::distributions::DistributionError>,
}

/// Why a model's data were rejected by its constructor.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A value is not a number or is infinite.
    #[error("data field `{field}`: entry {index} is {value}, which is not finite")]
    NotFinite {
        /// The field.
        field: &'static str,
        /// The entry (0 for a scalar).
        index: usize,
        /// Its value.
        value: f64,
    },
    /// Two fields whose lengths must agree do not.
    #[error(
        "data field `{field}` has length {found} but `{other}` has length {expected}; they are indexed together"
    )]
    LengthMismatch {
        /// The field.
        field: &'static str,
        /// Its length.
        found: usize,
        /// The field it must match.
        other: &'static str,
        /// That field's length.
        expected: usize,
    },
    /// An observation lies outside its likelihood's support.
    #[error(
        "observed field `{field}`: entry {index} is {value}, outside the support of {distribution} ({support})"
    )]
    OutsideSupport {
        /// The observed field.
        field: &'static str,
        /// The entry.
        index: usize,
        /// Its value.
        value: f64,
        /// The likelihood.
        distribution: &'static str,
        /// The support, in words.
        support: &'static str,
    },
    /// A data value used as a distribution's parameter lies outside that
    /// parameter's domain (a scale of 0, a probability above 1), so the
    /// term that uses it could never be evaluated.
    #[error(
        "data field `{field}`: entry {index} is {value}, but it is the `{parameter}` of the {distribution} of `{term}`, which must be {requirement}"
    )]
    InvalidParameter {
        /// The data field.
        field: &'static str,
        /// The entry (0 for a scalar).
        index: usize,
        /// Its value.
        value: f64,
        /// The latent (its prior) or observed field (its likelihood) whose
        /// distribution takes the value.
        term: &'static str,
        /// The distribution, e.g. `"Normal"`.
        distribution: &'static str,
        /// The parameter, e.g. `"scale"`.
        parameter: &'static str,
        /// What it must be, as the distribution's constructor says it.
        requirement: &'static str,
    },
    /// A latent whose length the data set has a shape its transform cannot
    /// take (a simplex of no entries): the model could not lay out its
    /// latents.
    #[error("the data give a latent a shape it cannot take: {0}")]
    LatentShape(LayoutError),
    /// The model reads a data field at a position written as a literal
    /// (`y[7]`, `x[2..5]`, `x.row(3)`, `x[(0, 4)]`) that the data given
    /// do not have: the read would be out of range at every evaluation.
    #[error(
        "`{term}` reads `{access}`, but data field `{field}` has {len} {unit}: give data that long, or change the position in the model"
    )]
    OutOfRange {
        /// The data field read.
        field: &'static str,
        /// The read, as written in the model (`"x[2..5]"`).
        access: &'static str,
        /// The size of the axis read: the field's length, or its number
        /// of rows or columns.
        len: usize,
        /// What `len` counts: `"entries"`, `"rows"` or `"columns"`.
        unit: &'static str,
        /// The latent, observed field, factor or derived quantity whose
        /// attribute reads it.
        term: &'static str,
    },
    /// The model reads a data field or a vector latent at a position
    /// computed from the data and the loop index (`x[idx[k]]`,
    /// `len = n[k]`, `a[group[i]]`, `x[i + 1]`, `m.row(k)`,
    /// `alpha[from..from + 3]`) that falls outside it, for the data given:
    /// the read would be out of range at every evaluation. Integer
    /// arithmetic that overflows (`i - 1` at `i = 0`) is a position past
    /// every end.
    #[error(
        "`{term}` reads `{access}` at {}{}, but `{field}` has {len} {unit}: fix the data it is computed from, or the position in the model",
        position_text(*.position),
        .element.map_or_else(String::new, |e| format!(" (element {e})"))
    )]
    OutOfRangeAt {
        /// The data field or vector latent read.
        field: &'static str,
        /// The read, as written in the model (`"x[idx[i]]"`).
        access: &'static str,
        /// The position computed (for a slice, its end, one past the last
        /// entry read).
        position: usize,
        /// The element of the attribute's loop (`for i`) at which it is
        /// read, `None` outside a loop.
        element: Option<usize>,
        /// The size of the axis read: the length, or the number of rows
        /// or columns.
        len: usize,
        /// What `len` counts: `"entries"`, `"rows"` or `"columns"`.
        unit: &'static str,
        /// The latent, observed field, factor or derived quantity whose
        /// attribute reads it.
        term: &'static str,
    },
    /// A learned parameter (`#[param]`) whose length the data give would
    /// need more memory than the budget
    /// ([`DEFAULT_MEMORY_BUDGET`](crate::input::DEFAULT_MEMORY_BUDGET)):
    /// `new` refuses before allocating it.
    #[error(
        "learned parameter `{field}` would hold {values} values, {bytes} bytes, over the memory budget of {budget} bytes: check the data its length is taken from"
    )]
    TooLarge {
        /// The learned parameter.
        field: &'static str,
        /// Its number of values (rows × columns for a matrix, saturating).
        values: u128,
        /// The bytes they need (saturating).
        bytes: u128,
        /// The budget.
        budget: u64,
    },
}

/// How [`DataError::OutOfRangeAt`] names its position: a negative, NaN or
/// overflowing position arrives as `usize::MAX`, which a user would not
/// recognise as the value they computed.
fn position_text(position: usize) -> String {
    if position == usize::MAX {
        "a position past every end (negative, NaN or overflowing)".to_string()
    } else {
        format!("position {position}")
    }
}
