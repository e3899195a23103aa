# Copied from shared/peers/turn2/logreg_numpyro.py (the project's shared peer scripts, session 2026-11-30), unchanged.
"""NumPyro peer for the logistic-regression scaling test (float64 unless --f32).

beta_j ~ N(0, 2.5), y_i ~ Bernoulli(logits = x_i . beta), D = 10; data: first N rows of
data/x_f64.bin, data/y_u8.bin (make_data.py; the Rust side reads the same files).
Guide AutoNormal, Trace_ELBO (1 particle), numpyro.optim.Adam(0.01).

Per-step timings (median of --repeats blocks of --block steps, as in ../RESULTS.md):
  scan    : --block steps fused in one jit(lax.scan(svi.update)) call
  pyloop  : a Python for loop over jit(svi.update), one block_until_ready per block
Whole-run wall times for --run-steps steps (what a user of svi.run sees):
  run_noprog_s : svi.run(key, S, X, y, progress_bar=False)   (init + trace/compile + lax.scan)
  run_prog_s   : svi.run(key, S, X, y)  default progress_bar=True (python loop over a jitted body)
  each is called twice; *_2 is the second call (the jit cache may or may not be reused).
Prints one JSON line.
"""
import argparse
import json
import os
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=1000)
ap.add_argument("--f32", action="store_true")
ap.add_argument("--block", type=int, default=200)
ap.add_argument("--repeats", type=int, default=7)
ap.add_argument("--run-steps", type=int, default=0, help="0: skip svi.run timings")
ap.add_argument("--modes", default="scan,pyloop")
a = ap.parse_args()

import jax  # noqa: E402
if not a.f32:
    jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
from jax import lax, random  # noqa: E402
from numpyro.infer import SVI, Trace_ELBO  # noqa: E402
from numpyro.infer.autoguide import AutoNormal  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import es_common as C  # noqa: E402

D = 10
HERE = os.path.dirname(os.path.abspath(__file__))
dt = np.float32 if a.f32 else np.float64
X = np.fromfile(os.path.join(HERE, "data", "x_f64.bin"), dtype="<f8", count=a.n * D).reshape(a.n, D)
y = np.fromfile(os.path.join(HERE, "data", "y_u8.bin"), dtype=np.uint8, count=a.n)
X = jnp.asarray(X.astype(dt))
y = jnp.asarray(y.astype(dt))


def model(X, y=None):
    beta = numpyro.sample("beta", dist.Normal(0.0, 2.5).expand([X.shape[1]]).to_event(1))
    with numpyro.plate("data", X.shape[0]):
        numpyro.sample("obs", dist.Bernoulli(logits=X @ beta), obs=y)


guide = AutoNormal(model)
svi = SVI(model, guide, numpyro.optim.Adam(0.01), Trace_ELBO())
out = {"n": a.n, "x64": not a.f32, "cpus_allowed": len(os.sched_getaffinity(0)),
       "block": a.block, "repeats": a.repeats}
modes = a.modes.split(",")

state0 = svi.init(random.PRNGKey(1), X, y)
update = jax.jit(lambda st: svi.update(st, X, y))
t0 = time.perf_counter()
st, _ = update(state0)
jax.block_until_ready(st)
out["compile_update_s"] = time.perf_counter() - t0
for _ in range(200):
    st, loss = update(st)
jax.block_until_ready(st)

if "pyloop" in modes:
    def py_block():
        s = st
        for _ in range(a.block):
            s, _ = update(s)
        jax.block_until_ready(s)
    py_block()
    t, ts = C.median_time_per_step(py_block, a.block, a.repeats)
    out["pyloop_us"] = t * 1e6
    out["pyloop_blocks_us"] = [v * 1e6 for v in ts]

if "scan" in modes:
    def body(s, _):
        return svi.update(s, X, y)
    scan_block = jax.jit(lambda s: lax.scan(body, s, None, length=a.block))
    t0 = time.perf_counter()
    jax.block_until_ready(scan_block(st))
    out["compile_scan_s"] = time.perf_counter() - t0
    t, ts = C.median_time_per_step(lambda: jax.block_until_ready(scan_block(st)), a.block, a.repeats)
    out["scan_us"] = t * 1e6
    out["scan_blocks_us"] = [v * 1e6 for v in ts]

if a.run_steps > 0:
    for label, prog in (("run_noprog", False), ("run_prog", True)):
        walls = []
        for rep in range(2):
            t0 = time.perf_counter()
            res = svi.run(random.PRNGKey(10 + rep), a.run_steps, X, y, progress_bar=prog)
            jax.block_until_ready(res.params)
            walls.append(time.perf_counter() - t0)
        out[label + "_s"] = walls[0]
        out[label + "_s_2"] = walls[1]
        out[label + "_final_loss_mean_last10pct"] = float(jnp.mean(res.losses[-max(1, a.run_steps // 10):]))
out["last_loss"] = float(loss)
print(json.dumps(out), flush=True)
