# Copied from shared/peers/turn2/jax_diwhvi_time.py (the project's shared peer scripts, session 2026-11-30), unchanged.
"""Time the JAX DIWHVI peer (../diwhvi_jax.py, float64) per step, scan and py-loop,
with exactly its step function and timing convention (200 steps per block, median of 7),
without its 5000-step training or evaluation (timing only; nothing written next to it).

usage: python jax_diwhvi_time.py --settings 1,0 [1,8 ...] [--block 200] [--repeats 7]
Prints one JSON line per setting.
"""
import argparse
import json
import os
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--settings", nargs="+", default=["1,0"])
ap.add_argument("--block", type=int, default=200)
ap.add_argument("--repeats", type=int, default=7)
ap.add_argument("--warm-steps", type=int, default=200, help="py-loop steps before timing (evolves params)")
ap.add_argument("--no-pyloop", action="store_true")
a = ap.parse_args()

PEERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, PEERS)
sys.argv = ["diwhvi_jax.py", "--x64", "--time-block", str(a.block), "--time-repeats", str(a.repeats)]
import diwhvi_jax as DJ  # noqa: E402  (enables x64 on import)
import jax  # noqa: E402
from jax import lax, random  # noqa: E402
import es_common as C  # noqa: E402

assert jax.config.jax_enable_x64

for s in a.settings:
    M, K = (int(v) for v in s.split(","))
    step = DJ.make_step(M, K)
    step_j = jax.jit(step)
    scan_j = jax.jit(lambda carry: lax.scan(lambda c, _: step(c), carry, None, length=a.block))
    p0 = DJ.init_params(random.PRNGKey(0))
    carry = (p0, DJ.adam_init(p0), random.PRNGKey(1))
    t0 = time.perf_counter()
    carry, _ = step_j(carry)
    jax.block_until_ready(carry)
    compile_step = time.perf_counter() - t0
    for _ in range(a.warm_steps):
        carry, _ = step_j(carry)
    jax.block_until_ready(carry)
    out = {"M": M, "K": K, "compile_step_s": compile_step,
           "cpus_allowed": len(os.sched_getaffinity(0)),
           "x64": bool(jax.config.jax_enable_x64)}
    if not a.no_pyloop:
        def py_block():
            c = carry
            for _ in range(a.block):
                c, _ = step_j(c)
            jax.block_until_ready(c)
        py_block()
        t_py, ts_py = C.median_time_per_step(py_block, a.block, a.repeats)
        out["pyloop_us"] = t_py * 1e6
        out["pyloop_blocks_us"] = [t * 1e6 for t in ts_py]
    t0 = time.perf_counter()
    jax.block_until_ready(scan_j(carry))
    out["compile_scan_s"] = time.perf_counter() - t0
    t_scan, ts = C.median_time_per_step(lambda: jax.block_until_ready(scan_j(carry)), a.block, a.repeats)
    out["scan_us"] = t_scan * 1e6
    out["scan_blocks_us"] = [t * 1e6 for t in ts]
    print(json.dumps(out), flush=True)
