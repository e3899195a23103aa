#!/usr/bin/env bash
# Alternates the peers (JAX DIWHVI step, NumPyro logistic regression) with
# our criterion benches on one pinned core, for ROUNDS rounds, then prints
# the medians over rounds and the ratios (tables.py). Not run by CI.
#
# usage (from anywhere; run benches/peers/setup.sh once first):
#   benches/peers/alternate.sh
#   ROUNDS=1 SETTINGS="8,64" SIZES="10000" benches/peers/alternate.sh
# environment:
#   ROUNDS    rounds (default 3)
#   CPU       the core everything is pinned to (default 1)
#   SETTINGS  eight-schools M,K settings (default "1,0 1,8 1,64 8,0 8,8 8,64")
#   SIZES     logistic-regression N (default "100 1000 10000 100000")
#   DIWHVI    regex of diwhvi_step variants (default "forward-single|tape|fused|auto")
#   LOGISTIC  regex of logistic_step variants (default "mf_forward|mf_tape|si_forward|si_tape|si_fused")
#   OUT       results folder (default benches/peers/results/<UTC time>, git-ignored)
#
# Our side: the criterion benches diwhvi_step (eight schools, the JAX
# peer's step) and logistic_step (the NumPyro peer's step), built once
# before any timing; each run's criterion median (target/criterion/…/new/
# estimates.json) is copied into OUT. The peers print one JSON line each
# (scan_us: median over 7 blocks of 200 lax.scan steps).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="$here/.venv/bin/python"
[ -x "$py" ] || { echo "run $here/setup.sh first" >&2; exit 1; }
ROUNDS="${ROUNDS:-3}"
CPU="${CPU:-1}"
SETTINGS="${SETTINGS:-1,0 1,8 1,64 8,0 8,8 8,64}"
SIZES="${SIZES:-100 1000 10000 100000}"
DIWHVI="${DIWHVI:-forward-single|tape|fused|auto}"
LOGISTIC="${LOGISTIC:-mf_forward|mf_tape|si_forward|si_tape|si_fused}"
OUT="${OUT:-$here/results/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"

cd "$root"
# Build first; never build while timing.
cargo bench --no-run --bench diwhvi_step --bench logistic_step 2>&1 | tail -2
bin() { ls -t target/release/deps/"$1"-* | grep -v '\.d$' | head -1; }
B="$(bin diwhvi_step)"
L="$(bin logistic_step)"
echo "diwhvi_step: $B; logistic_step: $L; pinned to CPU $CPU; $ROUNDS rounds; results in $OUT"
git rev-parse --short HEAD > "$OUT/commit" 2>/dev/null || true

# Copies criterion's estimates of every id under $1 (a group/function
# path) matching the run into OUT/rust.jsonl with the round.
collect() {
    local group="$1" round="$2" pattern="$3"
    "$py" - "$group" "$round" "$pattern" >> "$OUT/rust.jsonl" <<'PY'
import json, os, re, sys
group, rnd, pattern = sys.argv[1], int(sys.argv[2]), re.compile(sys.argv[3])
base = os.path.join("target", "criterion", group)
for dirpath, _, files in os.walk(base):
    if "estimates.json" in files and dirpath.endswith(os.sep + "new"):
        bench_id = os.path.relpath(os.path.dirname(dirpath), os.path.join("target", "criterion"))
        if pattern.search(bench_id):
            est = json.load(open(os.path.join(dirpath, "estimates.json")))
            print(json.dumps({"id": bench_id, "round": rnd, "median_ns": est["median"]["point_estimate"]}))
PY
}

for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round"
    for s in $SETTINGS; do
        m="${s%,*}"; k="${s#*,}"
        taskset -c "$CPU" "$py" "$here/turn2/jax_diwhvi_time.py" --settings "$s" --no-pyloop \
            | sed "s/^{/{\"round\": $round, /" | tee -a "$OUT/jax.jsonl"
        filter="diwhvi_step/($DIWHVI)/M${m}_K${k}\$"
        taskset -c "$CPU" "$B" --bench "$filter" 2>&1 | grep -E "^diwhvi_step|time:" || true
        collect diwhvi_step "$round" "^diwhvi_step/($DIWHVI)/M${m}_K${k}\$"
    done
    for n in $SIZES; do
        (cd "$here/turn2" && taskset -c "$CPU" "$py" logreg_numpyro.py --n "$n" --modes scan) \
            | sed "s/^{/{\"round\": $round, /" | tee -a "$OUT/numpyro.jsonl"
        filter="logistic_step/($LOGISTIC)/$n\$"
        taskset -c "$CPU" "$L" --bench "$filter" 2>&1 | grep -E "^logistic_step|time:" || true
        collect logistic_step "$round" "^logistic_step/($LOGISTIC)/$n\$"
    done
done

"$py" "$here/tables.py" "$OUT"
