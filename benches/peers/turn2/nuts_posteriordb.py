# Copied from shared/peers/turn2/nuts_posteriordb.py (the project's shared peer scripts, session 2026-11-30), changed only where it looks for posteriordb (PDB below: $POSTERIORDB, then the shared folder beside the repository).
"""NumPyro NUTS on two posteriordb posteriors, scored like the project's accuracy suite.

Models written from ../../shared/posteriordb/<name>/model.md (float64):
  kidiq-kidscore_momhsiq : beta (3) flat (improper), sigma ~ HalfCauchy(2.5),
                           kid_score_n ~ N(beta1 + beta2 mom_hs_n + beta3 mom_iq_n, sigma)
  kilpisjarvi_mod-kilpisjarvi : alpha ~ N(pmualpha, psalpha), beta ~ N(pmubeta, psbeta),
                           sigma flat on (0, inf) (improper), y_n ~ N(alpha + beta x_n, sigma)
NUTS: 4 chains x (--warmup + --draws), chain_method='sequential', default settings
(diagonal mass matrix, max_tree_depth 10, target_accept 0.8) unless --dense.

Run 1 (fresh MCMC object, fresh process): wall time including tracing/compilation.
Run 2 (same MCMC object, mcmc.run again with another key). NOTE: with
chain_method='sequential' numpyro 0.22 / jax 0.10.2 recompile jit(_fori_collect_loop)
for every chain, in run 2 as well (seen with jax_log_compiles), so run 2 does not exclude
compilation. Each run therefore also reports compile_s = the summed durations JAX logs for
"XLA compilation" and "jaxpr to MLIR module conversion" during that run (trace_s: the
summed "tracing" durations, possibly nested), and wall_minus_compile_s = wall_s - compile_s
(tracing not subtracted: an upper bound on the time spent sampling).
Accuracy: for every reference parameter, |mean - ref mean| / ref sd <= 0.1 and
sd / ref sd in [0.8, 1.2] (pooled draws, sd with ddof=1, like reference.json).
Prints one JSON line per run.
"""
import argparse
import json
import os
import time

ap = argparse.ArgumentParser()
ap.add_argument("--name", required=True)
ap.add_argument("--chains", type=int, default=4)
ap.add_argument("--warmup", type=int, default=1000)
ap.add_argument("--draws", type=int, default=1000)
ap.add_argument("--dense", action="store_true")
ap.add_argument("--runs", type=int, default=2)
a = ap.parse_args()

import logging  # noqa: E402
import re  # noqa: E402
import jax  # noqa: E402
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_log_compiles", True)
COMPILE_LOG = []


class _CompileTimes(logging.Handler):
    pat = re.compile(r"^Finished (XLA compilation|jaxpr to MLIR module conversion|tracing) .* in ([0-9.eE+-]+) sec")

    def emit(self, rec):
        m = self.pat.match(rec.getMessage())
        if m:
            COMPILE_LOG.append((m.group(1), float(m.group(2)), rec.getMessage()[:100]))


_lg = logging.getLogger("jax")
_lg.addHandler(_CompileTimes())
_lg.setLevel(logging.DEBUG)
_lg.propagate = False
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
from numpyro.distributions import constraints  # noqa: E402
from numpyro.infer import MCMC, NUTS  # noqa: E402
from numpyro.diagnostics import summary  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
PDB = next(p for p in (os.environ.get("POSTERIORDB", ""), os.path.join(_HERE, "..", "..", "..", "..", "shared", "posteriordb"), os.path.join(_HERE, "..", "..", "shared", "posteriordb"), os.path.join(_HERE, "..", "..", "posteriordb")) if p and os.path.isdir(p))
data = json.load(open(os.path.join(PDB, a.name, "data.json")))
ref = json.load(open(os.path.join(PDB, a.name, "reference.json")))["parameters"]


def kidiq(mom_hs, mom_iq, kid_score=None):
    beta = numpyro.sample("beta", dist.ImproperUniform(constraints.real, (), (3,)))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
    mu = beta[0] + beta[1] * mom_hs + beta[2] * mom_iq
    with numpyro.plate("N", mom_hs.shape[0]):
        numpyro.sample("kid_score", dist.Normal(mu, sigma), obs=kid_score)


def kilpisjarvi(x, pmualpha, psalpha, pmubeta, psbeta, y=None):
    alpha = numpyro.sample("alpha", dist.Normal(pmualpha, psalpha))
    beta = numpyro.sample("beta", dist.Normal(pmubeta, psbeta))
    sigma = numpyro.sample("sigma", dist.ImproperUniform(constraints.positive, (), ()))
    with numpyro.plate("N", x.shape[0]):
        numpyro.sample("y", dist.Normal(alpha + beta * x, sigma), obs=y)


if a.name == "kidiq-kidscore_momhsiq":
    model = kidiq
    margs = (jnp.asarray(data["mom_hs"], dtype=jnp.float64), jnp.asarray(data["mom_iq"], dtype=jnp.float64),
             jnp.asarray(data["kid_score"], dtype=jnp.float64))
elif a.name == "kilpisjarvi_mod-kilpisjarvi":
    model = kilpisjarvi
    margs = (jnp.asarray(data["x"], dtype=jnp.float64), float(data["pmualpha"]), float(data["psalpha"]),
             float(data["pmubeta"]), float(data["psbeta"]), jnp.asarray(data["y"], dtype=jnp.float64))
else:
    raise SystemExit("unknown posterior")


def element(samples, pname):
    """posteriordb's 'beta[2]' (1-based) -> samples['beta'][:, 1]."""
    if "[" in pname:
        base, idx = pname[:-1].split("[")
        return np.asarray(samples[base])[:, int(idx) - 1]
    return np.asarray(samples[pname])


mcmc = MCMC(NUTS(model, dense_mass=a.dense), num_warmup=a.warmup, num_samples=a.draws,
            num_chains=a.chains, chain_method="sequential", progress_bar=False)
for run in range(a.runs):
    COMPILE_LOG.clear()
    t0 = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(run), *margs, extra_fields=("diverging", "num_steps"))
    jax.block_until_ready(mcmc.get_samples())
    wall = time.perf_counter() - t0
    compile_s = sum(d for k, d, _ in COMPILE_LOG if k != "tracing")
    trace_s = sum(d for k, d, _ in COMPILE_LOG if k == "tracing")
    n_loop_compiles = sum(1 for k, _, m in COMPILE_LOG if k == "XLA compilation" and "_fori_collect_loop" in m)
    s = mcmc.get_samples()
    rows, ok = {}, True
    for pname, r in ref.items():
        v = element(s, pname)
        err = abs(v.mean() - r["mean"]) / r["sd"]
        ratio = v.std(ddof=1) / r["sd"]
        meets = err <= 0.1 and 0.8 <= ratio <= 1.2
        ok &= bool(meets)
        rows[pname] = {"mean_err_sd": float(err), "sd_ratio": float(ratio), "meets": bool(meets)}
    ef = mcmc.get_extra_fields()
    sm = summary(mcmc.get_samples(group_by_chain=True), prob=0.9)
    steps = np.asarray(ef["num_steps"])
    print(json.dumps({
        "posterior": a.name, "run": run + 1, "dense_mass": a.dense,
        "chains": a.chains, "warmup": a.warmup, "draws": a.draws,
        "wall_s": wall, "compile_s": compile_s, "trace_s": trace_s,
        "wall_minus_compile_s": wall - compile_s, "fori_collect_loop_compiles": n_loop_compiles,
        "meets_goal": ok,
        "max_mean_err_sd": max(r["mean_err_sd"] for r in rows.values()),
        "sd_ratio_min": min(r["sd_ratio"] for r in rows.values()),
        "sd_ratio_max": max(r["sd_ratio"] for r in rows.values()),
        "per_param": rows,
        "divergences": int(np.sum(ef["diverging"])),
        "mean_leapfrog_steps": float(steps.mean()), "max_leapfrog_steps": int(steps.max()),
        "frac_at_treedepth_10": float(np.mean(steps >= 1023)),
        "min_n_eff": float(min(np.min(v["n_eff"]) for v in sm.values())),
        "max_r_hat": float(max(np.max(v["r_hat"]) for v in sm.values())),
        "cpus_allowed": len(os.sched_getaffinity(0)),
    }), flush=True)
