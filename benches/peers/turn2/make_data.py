# Copied from shared/peers/turn2/make_data.py (the project's shared peer scripts, session 2026-11-30), unchanged.
"""Synthetic logistic-regression data shared by the Rust and NumPyro timings.

X: N_MAX x D, column 0 = 1 (intercept), columns 1..9 ~ N(0, 1) iid; beta_true fixed;
y_i ~ Bernoulli(sigmoid(x_i . beta_true)).  Row-major float64 little-endian in
data/x_f64.bin, y as uint8 in data/y_u8.bin.  Smaller N use the first N rows.
"""
import os
import numpy as np

N_MAX, D = 100_000, 10
BETA_TRUE = np.array([-0.5, 1.2, -0.8, 0.4, 0.0, 0.3, -0.2, 0.6, -1.0, 0.1])
here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(2024)
X = np.empty((N_MAX, D))
X[:, 0] = 1.0
X[:, 1:] = rng.standard_normal((N_MAX, D - 1))
p = 1.0 / (1.0 + np.exp(-(X @ BETA_TRUE)))
y = (rng.random(N_MAX) < p).astype(np.uint8)
X.astype("<f8").tofile(os.path.join(here, "data", "x_f64.bin"))
y.tofile(os.path.join(here, "data", "y_u8.bin"))
print("wrote", N_MAX, "rows; mean y", y.mean())
