#!/usr/bin/env python3
"""Writes a synthetic results file like `palette extract` writes, for timing `palette find`.

  bench/make_results.py ROWS OUT.csv [--k 5] [--format csv|jsonl] [--seed 1]

Palettes are drawn around a few thousand "scene" colours (so colours repeat loosely, as in a
real photo library), shares sorted descending and summing to 1 at 4 decimals; about 1 row in
200 is an error row. Deterministic for a given seed.
"""
import argparse
import json
import random

ap = argparse.ArgumentParser()
ap.add_argument("rows", type=int)
ap.add_argument("out")
ap.add_argument("--k", type=int, default=5)
ap.add_argument("--format", choices=["csv", "jsonl"], default="csv")
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()
rng = random.Random(a.seed)
scenes = [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(4000)]


def jitter(c):
    return tuple(min(255, max(0, v + rng.randint(-24, 24))) for v in c)


with open(a.out, "w", newline="") as f:
    if a.format == "csv":
        f.write("file," + ",".join(f"color_{i + 1}" for i in range(a.k)) + "," +
                ",".join(f"share_{i + 1}" for i in range(a.k)) + ",error\n")
    for r in range(a.rows):
        name = f"photos/{2000 + r % 25}/{r % 97:02d}/IMG_{r:08d}.jpg"
        if rng.randrange(200) == 0:
            if a.format == "csv":
                f.write(name + "," * (2 * a.k) + ",cannot decode: not a JPEG\n")
            else:
                f.write(json.dumps({"file": name, "colors": [], "shares": [],
                                    "error": "cannot decode: not a JPEG"}) + "\n")
            continue
        base = rng.choice(scenes)
        colors = ["#%02x%02x%02x" % (jitter(base) if i < 2 else rng.choice(scenes))
                  for i in range(a.k)]
        w = sorted((rng.random() ** 2 + 0.01 for _ in range(a.k)), reverse=True)
        t = sum(w)
        shares = [round(x / t, 4) for x in w]
        shares[0] = round(shares[0] + 1 - sum(shares), 4)
        shares = [f"{s:.4f}" for s in shares]
        if a.format == "csv":
            f.write(name + "," + ",".join(colors) + "," + ",".join(shares) + ",\n")
        else:
            f.write(json.dumps({"file": name, "colors": colors,
                                "shares": [float(s) for s in shares], "error": None}) + "\n")
