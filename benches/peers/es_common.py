# Copied from shared/peers/es_common.py (the project's shared peer scripts, session 2026-11-30), unchanged.
"""Shared pieces for the eight-schools peer benchmarks.

* data (J=8)
* an exact reference by 1-D quadrature over tau (mu and theta integrated
  analytically), in float64 numpy/scipy: log p(y), posterior mean/sd of
  mu, tau, theta[0].  This is independent of NUTS and of any VI method.
* timing helpers.
"""
import json
import math
import os
import platform
import statistics
import time

import numpy as np
from scipy import integrate

J = 8
Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
MU_SCALE = 5.0
TAU_SCALE = 5.0

HERE = os.path.dirname(os.path.abspath(__file__))


def _log_f_tau(tau):
    """log [ p(tau) * int dmu p(mu) prod_j N(y_j | mu, sqrt(sigma_j^2 + tau^2)) ]
    plus the pieces needed for posterior moments given tau."""
    v = np.concatenate([[MU_SCALE**2], SIGMA**2 + tau**2])  # prior on mu as a pseudo-observation 0
    yy = np.concatenate([[0.0], Y])
    P = np.sum(1.0 / v)
    S1 = np.sum(yy / v)
    S2 = np.sum(yy**2 / v)
    n = len(v)
    log_int_mu = (-0.5 * (n - 1) * math.log(2 * math.pi) - 0.5 * np.sum(np.log(v))
                  - 0.5 * math.log(P) - 0.5 * (S2 - S1**2 / P))
    # half-Cauchy(tau; 5)
    log_ptau = math.log(2.0 / (math.pi * TAU_SCALE)) - math.log1p((tau / TAU_SCALE) ** 2)
    m_mu = S1 / P          # E[mu | tau, y]
    v_mu = 1.0 / P         # Var[mu | tau, y]
    return log_ptau + log_int_mu, m_mu, v_mu


def exact_reference():
    """Exact (quadrature) log p(y) and posterior moments."""
    # normalising shift for numerical safety
    shift, _, _ = _log_f_tau(3.0)

    def f(tau):
        lf, _, _ = _log_f_tau(tau)
        return math.exp(lf - shift)

    def moment(g):
        def h(tau):
            lf, m, vm = _log_f_tau(tau)
            return math.exp(lf - shift) * g(tau, m, vm)
        a, _ = integrate.quad(h, 0.0, 50.0, limit=400, epsabs=0, epsrel=1e-12)
        b, _ = integrate.quad(h, 50.0, np.inf, limit=400, epsabs=0, epsrel=1e-12)
        return a + b

    Z = moment(lambda t, m, vm: 1.0)
    logpy = math.log(Z) + shift
    E_tau = moment(lambda t, m, vm: t) / Z
    E_tau2 = moment(lambda t, m, vm: t * t) / Z
    E_mu = moment(lambda t, m, vm: m) / Z
    E_mu2 = moment(lambda t, m, vm: vm + m * m) / Z

    # theta_0 | mu, tau, y ~ N((y0/s0^2 + mu/t^2)/(1/s0^2 + 1/t^2), 1/(1/s0^2+1/t^2))
    s0 = SIGMA[0]
    y0 = Y[0]

    def th_mean(t, m, vm):
        w = t * t / (s0 * s0 + t * t)  # weight on y0
        return w * y0 + (1 - w) * m

    def th_second(t, m, vm):
        w = t * t / (s0 * s0 + t * t)
        cond_var = 1.0 / (1.0 / s0**2 + 1.0 / max(t * t, 1e-300))
        mean = w * y0 + (1 - w) * m
        var = cond_var + (1 - w) ** 2 * vm
        return var + mean * mean

    E_th = moment(th_mean) / Z
    E_th2 = moment(th_second) / Z
    return {
        "log_p_y": logpy,
        "mu_mean": E_mu, "mu_sd": math.sqrt(E_mu2 - E_mu**2),
        "tau_mean": E_tau, "tau_sd": math.sqrt(E_tau2 - E_tau**2),
        "theta0_mean": E_th, "theta0_sd": math.sqrt(E_th2 - E_th**2),
    }


def median_time_per_step(run_block, n_steps, repeats):
    """run_block() must run n_steps steps and block until done.
    Returns (median seconds/step, list of per-step times per repeat)."""
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run_block()
        ts.append((time.perf_counter() - t0) / n_steps)
    return statistics.median(ts), ts


def machine_info():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import jax
    out = {"nproc": os.cpu_count(), "cpus_allowed": len(os.sched_getaffinity(0)), "cpu": cpu, "python": platform.python_version(),
           "jax": jax.__version__}
    try:
        import numpyro
        out["numpyro"] = numpyro.__version__
    except ImportError:
        pass
    return out


def save_json(name, obj):
    path = os.path.join(HERE, name)
    with open(path, "w") as fh:
        json.dump(obj, fh, indent=2, default=float)
    return path


def load_json(name):
    path = os.path.join(HERE, name)
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        return json.load(fh)


if __name__ == "__main__":
    print(json.dumps(exact_reference(), indent=2))
