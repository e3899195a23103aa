#!/usr/bin/env bash
# Instructions per epoch of the `#[variational]` VAE (benches/macro_steps.rs,
# mode `batched`, 15 steps an epoch) under valgrind's cachegrind, for each
# binary given: (Ir(batched 465) − Ir(batched 15)) / 450 × 15, in millions.
# Robust on a loaded machine, unlike time; valgrind runs the AVX2 path, and
# memory latency does not show in instruction counts (time with
# benches/macro_steps_rounds.sh too).
#
# usage: benches/macro_steps_instructions.sh BINARY...
#   (build with `cargo bench --no-run --bench macro_steps`; copy a binary
#   aside before rebuilding another commit.)
set -euo pipefail
ir() {
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
        grep "I *refs" | awk '{gsub(",","",$4); print $4}'
}
for b in "$@"; do
    h=$(ir "$b" batched 465)
    l=$(ir "$b" batched 15)
    python3 -c "print('$(basename "$b")', 'M instructions per epoch', round(($h - $l) / 450 * 15 / 1e6, 3), $h, $l)"
done
