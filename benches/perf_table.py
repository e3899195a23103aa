#!/usr/bin/env python3
"""Turn criterion's output of `cargo bench --bench gradient` into the tables
of docs/PERFORMANCE.md.

For each function and P it prints the f64 evaluation time and, for every
gradient variant, its time and the ratio t_gradient / (P * t_f64).

    cargo bench --bench gradient && python3 benches/perf_table.py [--criterion DIR]
"""

import argparse
import json
import pathlib

GROUPS = ["hier_normal", "lse_gauss"]
SIZES = [10, 100, 1000]


def mean_ns(root, group, variant, p):
    path = root / group / variant / str(p) / "new" / "estimates.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["mean"]["point_estimate"]


def fmt_time(ns):
    if ns is None:
        return "-"
    if ns < 1e3:
        return f"{ns:.0f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns / 1e6:.2f} ms"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--criterion", default="target/criterion", help="criterion output folder")
    args = parser.parse_args()
    root = pathlib.Path(args.criterion)
    for group in GROUPS:
        variants = sorted(
            (d.name for d in (root / group).iterdir() if d.is_dir() and d.name not in ("f64", "report")),
            key=lambda v: (v.startswith("num-dual"), int(v.split("-W")[1].split("-")[0]), v),
        )
        print(f"\n#### {group}: t_gradient / (P · t_f64)  (gradient time in brackets)\n")
        print("| variant | " + " | ".join(f"P = {p}" for p in SIZES) + " |")
        print("|---|" + "---|" * len(SIZES))
        f64_row = [mean_ns(root, group, "f64", p) for p in SIZES]
        print("| one f64 evaluation | " + " | ".join(fmt_time(t) for t in f64_row) + " |")
        for v in variants:
            cells = []
            for p, base in zip(SIZES, f64_row):
                t = mean_ns(root, group, v, p)
                if t is None or base is None:
                    cells.append("-")
                else:
                    cells.append(f"**{t / (p * base):.3f}** ({fmt_time(t)})")
            print(f"| {v} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
