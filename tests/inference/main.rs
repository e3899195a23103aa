//! Inference end to end: objectives and their gradient estimators, fits,
//! Laplace and preconditioned guides, closed-form posteriors and the
//! posteriordb models (one test binary, one module per former test file,
//! and `fixtures`, what several of them share).

mod draws_output;
mod factor_plate;
mod fit_behaviour;
mod fixtures;
mod gradient_estimators;
mod inference_closed_form;
mod laplace_preconditioning;
mod laplace_toy;
mod learned_matrix;
mod learned_params;
mod local_modes;
mod minibatch;
mod minibatch_local;
mod posteriordb_models;
mod semi_implicit_prior;
mod varying_slopes;
