"""Markdown tables of two `galad value audit --all --json` results side by side (the README of
experiments/results/value_audit/ quotes them): per game, AUROC and precision/recall at the audit's threshold, both
context modes; the means; harm recall by verb.

Usage: python experiments/value_audit_tables.py DEFAULT.json GAMES.json
"""

from __future__ import annotations

import json
import sys

import numpy as np


def cell(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def main(a_path: str, b_path: str) -> None:
    a, b = (json.load(open(p, encoding="utf-8")) for p in (a_path, b_path))
    names = ("default", "galad:games")
    print(f"Threshold {a['threshold']}; ground truth: {a['target']} markers by lookahead; "
          f"{a['states_per_game']} states per game.\n")
    print("| game | pairs | harmful | " + " | ".join(f"{n} {m} AUROC | {n} {m} prec / recall"
                                                   for n in names for m in ("action", "context")) + " |")
    print("|---|---|---|" + "---|" * 8)
    for g, ra in a["games"].items():
        rb = b["games"][g]
        cells = []
        for r in (ra, rb):
            for m in ("action", "context"):
                cells += [cell(r[m]["auroc"]), f"{cell(r[m]['precision'])} / {cell(r[m]['recall'])}"]
        print(f"| {g} | {ra['pairs']} | {ra['positives']} | " + " | ".join(cells) + " |")
    means = []
    for r in (a, b):
        for m in ("action", "context"):
            real = [x[m]["auroc"] for g, x in r["games"].items() if g != "demo" and x[m]["auroc"] is not None]
            means += [f"**{np.mean(real):.3f}** (25 real games; with the demo {cell(r['mean_auroc'][m])})", ""]
    print("| **mean AUROC** | | | " + " | ".join(means) + " |")
    print()
    print("Harm recall by verb at the threshold (pooled over the games), the ten verbs with the most harmful pairs:\n")
    print("| verb | harmful | " + " | ".join(f"{n} {m} recall | {n} {m} harmless flagged"
                                            for n in names for m in ("action", "context")) + " |")
    print("|---|---|" + "---|" * 8)
    for i, v in enumerate(a["verbs"]["action"]):
        cells = []
        for r in (a, b):
            for m in ("action", "context"):
                row = next((x for x in r["verbs"][m] if x["verb"] == v["verb"]), None)
                cells += [cell(row and row["recall"]), cell(row and row["harmless_flagged"])]
        print(f"| {v['verb']} | {v['harmful']} | " + " | ".join(cells) + " |")
    print()
    for name, r in zip(names, (a, b)):
        print(f"{name}: model {r['model']}; games a scoring model read: {r['trained_on'] or 'none'}; "
              f"not installed: {r['missing'] or 'none'}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
