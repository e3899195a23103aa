# Copied from shared/peers/diwhvi_jax.py (the project's shared peer scripts, session 2026-11-30), unchanged.
"""DIWHVI (Sobolev & Vetrov 2019) in plain JAX for eight schools (non-centred).

Latent z in R^10 (unconstrained): z = (mu, log tau, theta_tilde[0..7]).
Semi-implicit guide:
    psi ~ q(psi) = N(0, I_d),  d = 10
    q(z | psi)   = N(z | m + W psi, diag(exp(2 s)))
reverse model (learned):
    tau(psi | z) = N(psi | A z + b, diag(exp(2 r)))
Bound (per step, fresh noise):
    psi_m0 ~ q(psi), z_m ~ q(z|psi_m0), psi_mk ~ tau(psi|z_m), k = 1..K
    log q^_m = logsumexp_{k=0..K}[log q(z_m|psi_mk) + log q(psi_mk) - log tau(psi_mk|z_m)] - log(K+1)
    log w_m  = log p(y, z_m) - log q^_m
    bound    = logsumexp_m log w_m - log M
All sampling is reparameterised; Adam(lr=0.01, b1=.9, b2=.999, eps=1e-8) on -bound.

Usage:  .venv/bin/python diwhvi_jax.py [--x64] [--steps 5000]
Writes results_diwhvi[_x64].json next to this file.
"""
import argparse
import math
import time

ap = argparse.ArgumentParser()
ap.add_argument("--tag", default="", help="suffix for the results file")
ap.add_argument("--x64", action="store_true")
ap.add_argument("--steps", type=int, default=5000)
ap.add_argument("--Ms", default="1,8")
ap.add_argument("--Ks", default="0,8,64")
ap.add_argument("--time-block", type=int, default=200)
ap.add_argument("--time-repeats", type=int, default=7)
ap.add_argument("--n-eval", type=int, default=200)
args = ap.parse_args()

import jax  # noqa: E402

if args.x64:
    jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax, random  # noqa: E402
from jax.scipy.special import logsumexp  # noqa: E402

import es_common as C  # noqa: E402

D = 10
Y = jnp.asarray(C.Y)
SIGMA = jnp.asarray(C.SIGMA)
LOG2PI = math.log(2 * math.pi)


# ----------------------------------------------------------------- model
def log_normal(x, loc, scale):
    return -0.5 * LOG2PI - jnp.log(scale) - 0.5 * ((x - loc) / scale) ** 2


def log_joint(z):
    """log p(y, z) for unconstrained z (..., 10), including the log-Jacobian of tau = exp(z1)."""
    mu = z[..., 0]
    log_tau = z[..., 1]
    tau = jnp.exp(log_tau)
    tt = z[..., 2:]
    lp = log_normal(mu, 0.0, C.MU_SCALE)
    lp += math.log(2.0 / (math.pi * C.TAU_SCALE)) - jnp.log1p((tau / C.TAU_SCALE) ** 2) + log_tau
    lp += jnp.sum(log_normal(tt, 0.0, 1.0), -1)
    theta = mu[..., None] + tau[..., None] * tt
    lp += jnp.sum(log_normal(Y, theta, SIGMA), -1)
    return lp


# ----------------------------------------------------------------- guide
def diag_logpdf(x, mean, log_sd):
    return jnp.sum(-0.5 * LOG2PI - log_sd - 0.5 * ((x - mean) * jnp.exp(-log_sd)) ** 2, -1)


def std_logpdf(x):
    return jnp.sum(-0.5 * LOG2PI - 0.5 * x * x, -1)


def init_params(key):
    return {
        "m": jnp.zeros(D),
        "W": 0.1 * random.normal(key, (D, D)),
        "s": jnp.zeros(D),
        "A": jnp.zeros((D, D)),
        "b": jnp.zeros(D),
        "r": jnp.zeros(D),
    }


def diwhvi_bound(p, key, M, K):
    k0, k1, k2 = random.split(key, 3)
    psi0 = random.normal(k0, (M, D))
    z = p["m"] + psi0 @ p["W"].T + jnp.exp(p["s"]) * random.normal(k1, (M, D))     # (M, D)
    tmean = z @ p["A"].T + p["b"]                                                   # (M, D)
    psik = tmean[:, None, :] + jnp.exp(p["r"]) * random.normal(k2, (M, K, D))        # (M, K, D)
    psi = jnp.concatenate([psi0[:, None, :], psik], axis=1)                         # (M, K+1, D)
    zmean = p["m"] + psi @ p["W"].T                                                 # (M, K+1, D)
    lq_z = diag_logpdf(z[:, None, :], zmean, p["s"])                                # (M, K+1)
    lq_psi = std_logpdf(psi)
    l_tau = diag_logpdf(psi, tmean[:, None, :], p["r"])
    log_q_hat = logsumexp(lq_z + lq_psi - l_tau, axis=1) - math.log(K + 1)          # (M,)
    log_w = log_joint(z) - log_q_hat
    return logsumexp(log_w) - math.log(M)


def sample_z(p, key, n):
    k0, k1 = random.split(key)
    psi = random.normal(k0, (n, D))
    return p["m"] + psi @ p["W"].T + jnp.exp(p["s"]) * random.normal(k1, (n, D))


# ----------------------------------------------------------------- Adam
def adam_init(p):
    z = jax.tree_util.tree_map(jnp.zeros_like, p)
    return (jnp.zeros((), jnp.int32), z, z)


def adam_update(g, st, p, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
    t, m, v = st
    t = t + 1
    m = jax.tree_util.tree_map(lambda m_, g_: b1 * m_ + (1 - b1) * g_, m, g)
    v = jax.tree_util.tree_map(lambda v_, g_: b2 * v_ + (1 - b2) * g_ * g_, v, g)
    tf = t.astype(jnp.result_type(float))
    c1 = 1 - b1 ** tf
    c2 = 1 - b2 ** tf
    p = jax.tree_util.tree_map(lambda p_, m_, v_: p_ - lr * (m_ / c1) / (jnp.sqrt(v_ / c2) + eps), p, m, v)
    return p, (t, m, v)


def make_step(M, K):
    def step(carry):
        p, opt, key = carry
        key, sub = random.split(key)
        val, g = jax.value_and_grad(lambda q: -diwhvi_bound(q, sub, M, K))(p)
        p, opt = adam_update(g, opt, p)
        return (p, opt, key), -val
    return step


def run_config(M, K):
    step = make_step(M, K)
    step_j = jax.jit(step)

    def scan_block(carry):
        return lax.scan(lambda c, _: step(c), carry, None, length=args.time_block)
    scan_j = jax.jit(scan_block)

    p0 = init_params(random.PRNGKey(0))
    carry = (p0, adam_init(p0), random.PRNGKey(1))

    t0 = time.perf_counter()
    carry, b = step_j(carry)
    jax.block_until_ready(carry)
    compile_s = time.perf_counter() - t0
    bounds = [b]
    t0 = time.perf_counter()
    for _ in range(args.steps - 1):
        carry, b = step_j(carry)
        bounds.append(b)
    jax.block_until_ready(carry)
    train_s = time.perf_counter() - t0
    bounds = np.asarray(jax.device_get(bounds))

    def py_block():
        c = carry
        for _ in range(args.time_block):
            c, _ = step_j(c)
        jax.block_until_ready(c)
    py_block()
    t_py, _ = C.median_time_per_step(py_block, args.time_block, args.time_repeats)
    jax.block_until_ready(scan_j(carry))
    t_scan, _ = C.median_time_per_step(lambda: jax.block_until_ready(scan_j(carry)),
                                       args.time_block, args.time_repeats)

    p = carry[0]
    ev = lambda key, m, k: jax.jit(jax.vmap(lambda kk: diwhvi_bound(p, kk, m, k)))(  # noqa: E731
        random.split(key, args.n_eval))
    b_256 = ev(random.PRNGKey(10), 1, 256)
    b_tr = ev(random.PRNGKey(11), M, K)
    # a near-IS value: many outer samples, large inner K (20 evaluations)
    b_big = jax.jit(jax.vmap(lambda kk: diwhvi_bound(p, kk, 1000, 256)))(random.split(random.PRNGKey(12), 20))

    z = sample_z(p, random.PRNGKey(13), 100000)
    mu = z[:, 0]
    tau = jnp.exp(z[:, 1])
    th0 = mu + tau * z[:, 2]
    return {
        "M": M, "K": K,
        "time_per_step_pyloop_us": t_py * 1e6,
        "time_per_step_scan_us": t_scan * 1e6,
        "train_wall_s": train_s, "first_step_compile_s": compile_s,
        "bound_M1_K256_mean200": float(jnp.mean(b_256)), "bound_M1_K256_sd200": float(jnp.std(b_256)),
        "bound_trainMK_mean200": float(jnp.mean(b_tr)), "bound_trainMK_sd200": float(jnp.std(b_tr)),
        "bound_M1000_K256_mean20": float(jnp.mean(b_big)),
        "train_bound_last500_mean": float(np.mean(bounds[-500:])),
        "mu_mean": float(jnp.mean(mu)), "mu_sd": float(jnp.std(mu)),
        "tau_mean": float(jnp.mean(tau)), "tau_sd": float(jnp.std(tau)),
        "theta0_mean": float(jnp.mean(th0)), "theta0_sd": float(jnp.std(th0)),
        "q_sd_logtau": float(jnp.std(z[:, 1])),
    }


def main():
    info = C.machine_info()
    info["x64"] = bool(args.x64)
    print("machine:", info)
    exact = C.exact_reference()
    print("exact (quadrature):", exact)
    ref = C.load_json("results_eight_schools.json")
    nuts = ref["nuts"] if ref else None
    if nuts:
        print("NUTS ref: mu %.3f tau %.3f" % (nuts["mu_mean"], nuts["tau_mean"]))
    runs = []
    for M in [int(x) for x in args.Ms.split(",")]:
        for K in [int(x) for x in args.Ks.split(",")]:
            r = run_config(M, K)
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
            runs.append(r)
    res = {"machine": info, "args": vars(args), "exact": exact, "nuts": nuts, "diwhvi": runs}
    path = C.save_json("results_diwhvi%s%s.json" % ("_x64" if args.x64 else "", args.tag), res)
    print("wrote", path)


if __name__ == "__main__":
    main()
