"""Medians over rounds and ratios from one benches/peers/alternate.sh run.

usage: python tables.py RESULTS_DIR   (reads jax.jsonl, numpyro.jsonl, rust.jsonl)
Prints two Markdown tables (µs per step): eight-schools DIWHVI against the
JAX peer's scan time, logistic regression against NumPyro's scan time.
Each cell is the median over rounds (ours: criterion's median of each run;
the peers': scan_us, the median of 7 blocks of 200 scanned steps); a ratio
is ours / the peer's (below 1: we are faster).
"""
import json
import os
import statistics
import sys
from collections import defaultdict

out = sys.argv[1]


def lines(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip().startswith("{")]


ours = defaultdict(list)  # id -> [µs per round]
for r in lines("rust.jsonl"):
    ours[r["id"]].append(r["median_ns"] / 1e3)
jax = defaultdict(list)
for r in lines("jax.jsonl"):
    jax[(r["M"], r["K"])].append(r["scan_us"])
numpyro = defaultdict(list)
for r in lines("numpyro.jsonl"):
    numpyro[r["n"]].append(r["scan_us"])


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt(x):
    return "—" if x != x else (f"{x:,.1f}" if x < 1e4 else f"{x:,.0f}")


def table(title, key_name, peers, ids_for, peer_name):
    variants = sorted({v for k in peers for v in ids_for(k)})
    print(f"\n### {title} (µs per step, median of rounds)\n")
    head = [key_name] + variants + [peer_name] + [f"{v} / peer" for v in variants]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for key in sorted(peers):
        p = med(peers[key])
        row = [str(key)]
        vals = [med(ours.get(ids_for(key).get(v, ""), [])) for v in variants]
        row += [fmt(v) for v in vals] + [fmt(p)]
        row += ["—" if v != v or p != p else f"{v / p:.2f}" for v in vals]
        print("| " + " | ".join(row) + " |")
    rounds = max((len(v) for v in peers.values()), default=0)
    print(f"\n({rounds} round(s); ours from criterion, the peer's scan_us)")


def diwhvi_ids(key):
    m, k = key
    ids = {}
    for i in ours:
        parts = i.split("/")
        if parts[0] == "diwhvi_step" and parts[-1] == f"M{m}_K{k}":
            ids[parts[1]] = i
    return ids


def logistic_ids(n):
    ids = {}
    for i in ours:
        parts = i.split("/")
        if parts[0] == "logistic_step" and parts[-1] == str(n):
            ids[parts[1]] = i
    return ids


if jax:
    table("Eight schools DIWHVI step", "M, K", jax, diwhvi_ids, "JAX scan")
if numpyro:
    table("Logistic regression, D = 10", "N", numpyro, logistic_ids, "NumPyro scan")
