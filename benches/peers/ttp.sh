#!/usr/bin/env bash
# Time to an accurate posterior, ours vs NumPyro NUTS, alternated, one core each.
# usage: ROUNDS=3 ttp.sh OUTDIR   (run from the checkout, after cargo build --release --example accuracy)
set -u
out=${1:-/tmp/ttp}; mkdir -p "$out"
PY=${PYTHON:-$(cd "$(dirname "$0")" && pwd)/.venv/bin/python}
for r in $(seq 1 ${ROUNDS:-3}); do
  for name in kidiq-kidscore_momhsiq kilpisjarvi_mod-kilpisjarvi; do
    taskset -c 1 target/release/examples/accuracy --only $name --json > "$out/ours-$name-$r.json" 2>/dev/null
    (cd ../shared/peers/turn2 && taskset -c 1 $PY nuts_posteriordb.py --name $name --runs 2) > "$out/nuts-$name-$r.jsonl" 2>/dev/null
  done
done
