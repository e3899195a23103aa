#!/usr/bin/env bash
# Creates benches/peers/.venv (git-ignored) with the peers' pinned Python
# packages (JAX 0.10.2, NumPyro 0.22, float64), and the synthetic
# logistic-regression data under benches/peers/turn2/data.
#
# usage: benches/peers/setup.sh            (from anywhere; needs python3 ≥ 3.11 and PyPI)
# requirements-lock.txt is a copy of shared/peers/requirements-lock.txt.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
if [ ! -x "$here/.venv/bin/python" ]; then
    "$python" -m venv "$here/.venv"
fi
"$here/.venv/bin/python" -m pip install --quiet --upgrade pip
"$here/.venv/bin/python" -m pip install --quiet -r "$here/requirements-lock.txt"
mkdir -p "$here/turn2/data"
if [ ! -f "$here/turn2/data/x_f64.bin" ]; then
    (cd "$here/turn2" && "$here/.venv/bin/python" make_data.py)
fi
"$here/.venv/bin/python" -c 'import jax, numpyro; print("jax", jax.__version__, "numpyro", numpyro.__version__)'
