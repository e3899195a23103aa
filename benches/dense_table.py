#!/usr/bin/env python3
"""Turn criterion's output of the `dense` bench into the table of
docs/PERFORMANCE.md ("Dense kernels: nalgebra, faer, gemm").

For each shape (K, d = D) it prints the median time of each product with
each implementation, the sum over the products one outer sample runs
(forward + adjoint + weight, or weight alone at K = 0), and the ratios to
nalgebra of that sum. `nalgebra-view` is timed for `weight` only; its sum
takes nalgebra's forward and adjoint. Given several criterion
directories (one per round of the bench, copied aside after each), each
figure is the median over the rounds of criterion's medians.

    python3 benches/dense_table.py [--criterion DIR ...]
"""

import argparse
import json
import pathlib
import statistics

KS = [0, 8, 64, 256]
DIMS = [10, 50, 200]
IMPS = ["nalgebra", "nalgebra-view", "faer", "gemm"]
PRODUCTS = ["forward", "adjoint", "weight"]


def median_ns(roots, product, imp, k, d):
    values = []
    for root in roots:
        path = root / f"dense_{product}" / imp / f"K{k}_d{d}" / "new" / "estimates.json"
        if path.exists():
            values.append(json.loads(path.read_text())["median"]["point_estimate"])
    return statistics.median(values) if values else None


def fmt(ns):
    if ns is None:
        return "-"
    if ns < 1e3:
        return f"{ns:.0f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.2f} µs" if ns < 1e4 else f"{ns / 1e3:.1f} µs"
    return f"{ns / 1e6:.2f} ms"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--criterion", nargs="+", default=["target/criterion"])
    roots = [pathlib.Path(r) for r in parser.parse_args().criterion]
    print(f"Medians over {len(roots)} round(s).\n")
    others = IMPS[1:]
    header = ["K", "d = D"] + IMPS + [f"{i} / nalgebra" for i in others]
    for title, products in [("one outer sample (sum)", PRODUCTS)] + [(p, [p]) for p in PRODUCTS]:
        print(f"{title}\n")
        print("| " + " | ".join(header) + " |")
        print("|" + "---:|" * len(header))
        for k in KS:
            for d in DIMS:
                sums = {}
                for i in IMPS:
                    # nalgebra-view differs from nalgebra in `weight` only.
                    times = [
                        median_ns(roots, p, i if p == "weight" or i != "nalgebra-view" else "nalgebra", k, d)
                        for p in products
                    ]
                    times = [t for t in times if t is not None]
                    sums[i] = sum(times) if times else None
                if sums["nalgebra"] is None:
                    continue
                row = [str(k), str(d)] + [fmt(sums[i]) for i in IMPS]
                row += [
                    f"{sums[i] / sums['nalgebra']:.2f}" if sums[i] is not None else "-"
                    for i in others
                ]
                print("| " + " | ".join(row) + " |")
        print()


if __name__ == "__main__":
    main()
