#!/usr/bin/env python3
"""How much --ignore background helps on product shots: the mean CIELAB distance (ΔE*ab) of the
object's pixels to their nearest palette colour, with and without it, for k = 3, 4, 5.

  bench/bench_ignore.py [--palette build/palette] [--images 12]

The shots are generated (deterministic): a shaded three-band ellipse on a plain, slightly noisy
near-white or light-grey backdrop, 480x360, as binary PPM. The object's pixels are those that
differ from the corner's colour by more than 12 in some channel; every 7th pixel is measured.
Pure Python (no numpy), so it takes a few seconds.
"""
import argparse
import csv
import math
import os
import random
import subprocess
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--palette", default="build/palette")
ap.add_argument("--images", type=int, default=12)
a = ap.parse_args()


def lin(v):
    v /= 255.0
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def lab(c):
    r, g, b = (lin(x) for x in c)
    x = (0.412453 * r + 0.357580 * g + 0.180423 * b) / 0.950456
    y = 0.212671 * r + 0.715160 * g + 0.072169 * b
    z = (0.019334 * r + 0.119193 * g + 0.950227 * b) / 1.088754
    f = lambda t: t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116
    return (116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z)))


def shots(folder, n):
    rng = random.Random(3)
    for i in range(n):
        w, h = 480, 360
        bg = [rng.randint(235, 255)] * 3 if i % 3 != 1 else [rng.randint(200, 230)] * 3
        cols = [[rng.randint(0, 255) for _ in range(3)] for _ in range(3)]
        cx, cy, rx, ry = w / 2, h / 2, rng.randint(80, 150), rng.randint(60, 120)
        px = bytearray()
        for y in range(h):
            for x in range(w):
                d = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2
                if d <= 1:
                    c = cols[0] if x < cx - rx / 3 else cols[1] if x < cx + rx / 3 else cols[2]
                    s = 0.75 + 0.25 * (1 - d)
                    px += bytes(min(255, int(v * s)) for v in c)
                else:
                    px += bytes(min(255, max(0, v + rng.randint(-3, 3))) for v in bg)
        with open(os.path.join(folder, f"shot{i:02d}.ppm"), "wb") as f:
            f.write(b"P6\n%d %d\n255\n" % (w, h) + px)


def palettes(path):
    out = {}
    for row in csv.DictReader(open(path)):
        cols = [row[k] for k in row if k.startswith("color_") and row[k]]
        out[row["file"]] = [lab((int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16))) for c in cols]
    return out


def object_error(pals):
    total, n, cache = 0.0, 0, {}
    for f, pal in sorted(pals.items()):
        data = open(f, "rb").read()
        header = data.split(b"\n", 3)
        px, corner = header[3], header[3][0:3]
        for i in range(0, len(px), 21):
            p = px[i:i + 3]
            if max(abs(p[j] - corner[j]) for j in range(3)) <= 12:
                continue
            L = cache.get(p) or cache.setdefault(p, lab(tuple(p)))
            total += min(math.dist(L, q) for q in pal)
            n += 1
    return total / max(n, 1)


with tempfile.TemporaryDirectory() as d:
    shots(d, a.images)
    files = sorted(os.path.join(d, f) for f in os.listdir(d))
    print(f"{a.images} generated product shots (480x360), mean ΔE*ab of the object's pixels")
    print()
    print("| k | without --ignore | --ignore background |")
    print("| --- | --- | --- |")
    for k in (3, 4, 5):
        res = []
        for extra in ([], ["--ignore", "background"]):
            out = os.path.join(d, "out.csv")
            subprocess.run([a.palette, "extract", *files, "-k", str(k), "-o", out, "-q", *extra],
                           check=False)
            res.append(object_error(palettes(out)))
        print(f"| {k} | {res[0]:.2f} | {res[1]:.2f} |")
