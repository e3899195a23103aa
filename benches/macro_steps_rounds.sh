#!/usr/bin/env bash
# CPU time of the extra steps of `macro_steps` (benches/macro_steps.rs),
# alternating several builds of it, each run pinned to core 1: for each
# round and binary, task-clock(HI steps) - task-clock(LO steps), printed
# in ms per epoch (MODE batched: 15 steps an epoch) or per step (other
# modes), then the two raw task-clock figures.
#
# usage: benches/macro_steps_rounds.sh ROUNDS MODE HI LO BINARY...
#   e.g. benches/macro_steps_rounds.sh 3 batched 150 15 /tmp/before target/release/deps/macro_steps-HASH
# (build with `cargo bench --no-run --bench macro_steps`; copy a binary
# aside before rebuilding another commit.)
set -euo pipefail
rounds=$1; mode=$2; hi=$3; lo=$4; shift 4
tc() { perf stat -x, -e task-clock taskset -c 1 "$@" 2>&1 >/dev/null | grep task-clock | cut -d, -f1; }
for r in $(seq "$rounds"); do
    for b in "$@"; do
        h=$(tc "$b" "$mode" "$hi"); l=$(tc "$b" "$mode" "$lo")
        python3 -c "
per = 15 if '$mode' == 'batched' else 1
print($r, '$(basename "$b")', '$mode', round(($h - $l) / ($hi - $lo) * per, 2), $h, $l)"
    done
done
