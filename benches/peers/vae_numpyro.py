"""NumPyro peer of `vae_digits` / `benches/vae_epoch.rs` (gaussian_elbo), float64 unless --f32.

The VAE: 1,500 binarised 8x8 digits (pixel > 8) from ../shared/data/digits (beside the
repository), latent size 2, prior N(0, I), decoder z -> 64 tanh -> 64 Bernoulli logits,
Gaussian encoder x -> 64 tanh -> (mu, log sd) of z; every weight N(0, 1/fan_in) (the
encoder's and decoder's... output layers as in Vae::init_params), biases 0. Model and guide
are NumPyro programs with numpyro.param weights; one step is svi.update with Trace_ELBO
(1 particle) on a minibatch of 100 scaled by N / 100 (numpyro.handlers.scale), Adam(1e-3).

One epoch = a fresh permutation, then 15 steps fused in one jit(lax.scan(svi.update)) call.
Reported: median wall milliseconds per epoch over --repeats epochs (after a compile call and
--warmup epochs), and the mean per-image ELBO of the last epoch after --train-epochs epochs (a
check that the peer learns what ours learns). Prints one JSON line.

Usage: .venv/bin/python vae_numpyro.py [--repeats 50] [--train-epochs 200]
  pinned as the benches are: taskset -c 1 .venv/bin/python vae_numpyro.py
"""
import argparse
import json
import math
import os
import time

ap = argparse.ArgumentParser()
ap.add_argument("--f32", action="store_true")
ap.add_argument("--repeats", type=int, default=50)
ap.add_argument("--warmup", type=int, default=5)
ap.add_argument("--train-epochs", type=int, default=0, help="0: skip the learning check")
ap.add_argument("--latent", type=int, default=2)
a = ap.parse_args()

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
import jax  # noqa: E402

if not a.f32:
    jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
from jax import lax, random  # noqa: E402
from numpyro.infer import SVI, Trace_ELBO  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DIGITS = os.path.join(HERE, "..", "..", "..", "shared", "data", "digits", "digits.json")
with open(DIGITS) as f:
    raw = json.load(f)
dt = np.float32 if a.f32 else np.float64
X = (np.asarray(raw["train"]["images"], dtype=np.float64) > 8).astype(dt)
N, P = X.shape
B, H, L = 100, 64, a.latent
STEPS = N // B


def init(key, fan_in, fan_out, scale=1.0):
    return scale * random.normal(key, (fan_in, fan_out), dtype=dt) / math.sqrt(fan_in)


keys = random.split(random.PRNGKey(0), 4)
INIT = {
    "enc_w1": init(keys[0], P, H), "enc_b1": jnp.zeros(H, dt),
    "enc_w2": init(keys[1], H, 2 * L, 0.1), "enc_b2": jnp.zeros(2 * L, dt),
    "dec_w1": init(keys[2], L, H), "dec_b1": jnp.zeros(H, dt),
    "dec_w2": init(keys[3], H, P), "dec_b2": jnp.zeros(P, dt),
}


def model(x):
    w1 = numpyro.param("dec_w1", INIT["dec_w1"])
    b1 = numpyro.param("dec_b1", INIT["dec_b1"])
    w2 = numpyro.param("dec_w2", INIT["dec_w2"])
    b2 = numpyro.param("dec_b2", INIT["dec_b2"])
    with numpyro.handlers.scale(scale=N / x.shape[0]), numpyro.plate("batch", x.shape[0]):
        z = numpyro.sample("z", dist.Normal(jnp.zeros(L, dt), 1.0).to_event(1))
        logits = jnp.tanh(z @ w1 + b1) @ w2 + b2
        numpyro.sample("x", dist.Bernoulli(logits=logits).to_event(1), obs=x)


def guide(x):
    w1 = numpyro.param("enc_w1", INIT["enc_w1"])
    b1 = numpyro.param("enc_b1", INIT["enc_b1"])
    w2 = numpyro.param("enc_w2", INIT["enc_w2"])
    b2 = numpyro.param("enc_b2", INIT["enc_b2"])
    out = jnp.tanh(x @ w1 + b1) @ w2 + b2
    with numpyro.handlers.scale(scale=N / x.shape[0]), numpyro.plate("batch", x.shape[0]):
        numpyro.sample("z", dist.Normal(out[:, :L], jnp.exp(out[:, L:])).to_event(1))


svi = SVI(model, guide, numpyro.optim.Adam(1e-3), Trace_ELBO())
Xj = jnp.asarray(X)
state = svi.init(random.PRNGKey(1), Xj[:B])


@jax.jit
def epoch(state, key):
    batches = Xj[random.permutation(key, N)[: STEPS * B]].reshape(STEPS, B, P)

    def step(st, xb):
        st, loss = svi.update(st, xb)
        return st, loss

    state, losses = lax.scan(step, state, batches)
    return state, losses


out = {"x64": not a.f32, "cpus_allowed": len(os.sched_getaffinity(0)), "n": N, "batch": B,
       "steps_per_epoch": STEPS, "latent": L, "repeats": a.repeats}
key = random.PRNGKey(2)
t0 = time.perf_counter()
key, sub = random.split(key)
st, losses = epoch(state, sub)
jax.block_until_ready(st)
out["compile_s"] = time.perf_counter() - t0
for _ in range(a.warmup):
    key, sub = random.split(key)
    st, losses = epoch(st, sub)
jax.block_until_ready(st)
times = []
for _ in range(a.repeats):
    key, sub = random.split(key)
    t = time.perf_counter()
    st, losses = epoch(st, sub)
    jax.block_until_ready(st)
    times.append(time.perf_counter() - t)
out["epoch_ms_median"] = 1e3 * float(np.median(times))
out["epoch_ms_min"] = 1e3 * float(np.min(times))
if a.train_epochs:
    st = state
    for _ in range(a.train_epochs):
        key, sub = random.split(key)
        st, losses = epoch(st, sub)
    # The loss is the negative ELBO of the batch scaled to N images.
    out["train_epochs"] = a.train_epochs
    out["last_epoch_elbo_per_image"] = float(-jnp.mean(losses) / N)
print(json.dumps(out))
