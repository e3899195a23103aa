#!/usr/bin/env bash
# Alternates the NumPyro VAE peer (vae_numpyro.py) with our `vae_epoch`
# bench, each pinned to core 1, ROUNDS times (default 3); prints one line per
# run. Medians and ratios: see docs/PERFORMANCE.md, "VAE on the digits".
#
# usage: benches/peers/vae_alternate.sh    (after benches/peers/setup.sh)
#        FILTER='vae_epoch/gaussian_elbo$|macro_epoch_marginal' benches/peers/vae_alternate.sh
#        (FILTER: criterion's filter of our bench entries; default all)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-$here/.venv/bin/python}"
rounds="${ROUNDS:-3}"
cd "$root"
bench="$(cargo bench --no-run --bench vae_epoch 2>&1 | sed -n 's/.*Executable .*(\(.*\))/\1/p' | tail -1)"
for round in $(seq 1 "$rounds"); do
    echo "round $round"
    taskset -c 1 "$python" "$here/vae_numpyro.py" --repeats 50
    taskset -c 1 "$bench" --bench ${FILTER:+"$FILTER"} 2>/dev/null | grep -E "^vae_epoch/|time:" | paste -sd' ' | tr -s ' '
done
