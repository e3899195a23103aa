"""Reference solution of the Lotka-Volterra system for tests/numerics/ode.rs.

    dz1/dt = (alpha - beta z2) z1,   dz2/dt = (-gamma + delta z1) z2

at the parameter point below, from SciPy's DOP853 (an 8th-order method, not
the Dormand-Prince 5(4) pair the library implements) with rtol = atol =
1e-13, printed as JSON. Regenerate with:

    python3 tests/numerics/data/lotka_volterra_reference.py > tests/numerics/data/lotka_volterra_reference.json
"""
import json

import numpy as np
import scipy
from scipy.integrate import solve_ivp

theta = [0.55, 0.028, 0.80, 0.024]  # alpha, beta, gamma, delta
z_init = [33.0, 6.2]
times = [float(t) for t in range(1, 21)]


def rhs(t, z):
    alpha, beta, gamma, delta = theta
    return [(alpha - beta * z[1]) * z[0], (-gamma + delta * z[0]) * z[1]]


sol = solve_ivp(rhs, (0.0, times[-1]), z_init, method="DOP853", t_eval=times, rtol=1e-13, atol=1e-13)
assert sol.success
print(json.dumps({
    "source": f"scipy {scipy.__version__} solve_ivp DOP853 rtol=atol=1e-13",
    "theta": theta,
    "z_init": z_init,
    "times": times,
    "z": [[float(a), float(b)] for a, b in zip(sol.y[0], sol.y[1])],
}, indent=1))
