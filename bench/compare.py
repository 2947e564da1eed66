#!/usr/bin/python3
"""End-to-end comparison: `palette extract` beside the reference pipeline, on the same images.

    bench/compare.py [--images DIR] [-k 5] [--palette build/palette] [--min-images 300]

For each image set it prints (sets: JPEGs of 1920x1280 class, long side 1920..2560 px; every
JPEG with long side >= 1920 px, up to 6K and mostly progressive; every image of DIR):
  - images/s of the reference (its own per-image time, interpreter start-up excluded; median
    of --ref-runs passes) and of palette (the whole `palette extract` process, start-up
    included, over a list that repeats the set until it holds at least --min-images entries so
    start-up does not dominate; median of --runs runs);
  - the speed-up (ratio of the two);
  - palette quality for each: mean squared CIELAB distance from every counted pixel of the
    image shrunk to 256 px (long side, area filter) to its nearest palette colour, averaged
    over images (lower is better). Pixels with alpha < 128 are not counted, for both tools;
  - palette's own per-stage timings (--timings).
Needs Debian's python3-sklearn, python3-pil and python3-numpy. A benchmark, not a test: it
measures and prints, and never fails on time.
"""

import argparse
import csv
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_palette import reference_palette  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def srgb_to_lab(rgb):
    """CIELAB (D65) of an (..., 3) array of 8-bit sRGB values, as scikit-image's rgb2lab."""
    c = rgb.astype(np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.412453, 0.357580, 0.180423],
                  [0.212671, 0.715160, 0.072169],
                  [0.019334, 0.119193, 0.950227]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856451679035631, np.cbrt(xyz), xyz * 7.787037037037037 + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def counted_pixels_lab(path):
    """Lab of the counted pixels of the image shrunk to 256 px on its long side."""
    img = Image.open(path)
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    img = img.convert("RGBA" if has_alpha else "RGB")
    w, h = img.size
    scale = 256 / max(w, h)
    if scale < 1:
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BOX)
    a = np.asarray(img)
    px = a[..., :3].reshape(-1, 3)
    if has_alpha:
        px = px[a[..., 3].reshape(-1) >= 128]
    return srgb_to_lab(px)


def distortion(lab_pixels, hex_colors):
    """Mean squared Lab distance from each pixel to its nearest colour of the palette."""
    cols = [h for h in hex_colors if h]
    if not cols or len(lab_pixels) == 0:
        return float("nan")
    rgb = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in cols], dtype=np.float64)
    pal = srgb_to_lab(rgb)
    d = ((lab_pixels[:, None, :] - pal[None, :, :]) ** 2).sum(axis=2)
    return float(d.min(axis=1).mean())


def run_palette(binary, files, k, min_images, runs, extra):
    """Median wall time of `palette extract` over a list repeating `files`; returns
    (images/s, rows of the first pass, timings text)."""
    reps = max(1, -(-min_images // len(files)))
    listing = files * reps
    with tempfile.TemporaryDirectory() as tmp:
        lst = os.path.join(tmp, "list.txt")
        out = os.path.join(tmp, "out.csv")
        with open(lst, "w") as f:
            f.write("\n".join(listing) + "\n")
        walls, timings = [], ""
        for _ in range(runs):
            t0 = time.perf_counter()
            p = subprocess.run([binary, "extract", "@" + lst, "-k", str(k), "-o", out,
                                "--timings", "--progress", "never"] + extra,
                               capture_output=True, text=True)
            walls.append(time.perf_counter() - t0)
            if p.returncode not in (0, 1):
                sys.exit(f"palette failed ({p.returncode}): {p.stderr}")
            timings = p.stderr
        with open(out, newline="") as f:
            rows = list(csv.DictReader(f))
    palettes = {}
    for r in rows[:len(files)]:
        palettes[r["file"]] = [r[f"color_{i}"] for i in range(1, k + 1)]
    return len(listing) / statistics.median(walls), palettes, timings, len(listing)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", default=os.path.join(ROOT, "..", "shared", "bench-images"))
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("--palette", default=os.path.join(ROOT, "build", "palette"))
    ap.add_argument("--min-images", type=int, default=300,
                    help="palette runs over a list repeating the set to at least this many")
    ap.add_argument("--runs", type=int, default=3, help="palette runs per set (median)")
    ap.add_argument("--ref-runs", type=int, default=3,
                    help="reference passes over the images (median time per image)")
    ap.add_argument("--extra", default="", help="extra palette options, e.g. '--space rgb'")
    args = ap.parse_args()

    files = sorted(os.path.join(args.images, f) for f in os.listdir(args.images)
                   if f.lower().endswith(EXTS))
    if not files:
        sys.exit(f"no images in {args.images}")

    def long_side(p):
        with Image.open(p) as im:
            return max(im.size)

    jpegs = [(f, long_side(f)) for f in files if f.lower().endswith((".jpg", ".jpeg"))]
    sets = [("JPEG 1920-2560 px", [f for f, s in jpegs if 1920 <= s <= 2560]),
            ("JPEG >= 1920 px (to 6K)", [f for f, s in jpegs if s >= 1920]),
            ("all images (mixed)", files)]

    print(f"palette: {args.palette}  k={args.k}  images: {args.images}")
    print(f"CPU: {os.cpu_count()} cores", flush=True)

    # Reference: --ref-runs passes over every image, timed per image inside this process; the
    # median time of each image counts (this machine is shared and noisy).
    ref_times, ref_pal = {f: [] for f in files}, {}
    reference_palette(files[0], args.k)  # warm-up (imports, thread pools)
    for _ in range(args.ref_runs):
        for f in files:
            t0 = time.perf_counter()
            ref_pal[f] = reference_palette(f, args.k)
            ref_times[f].append(time.perf_counter() - t0)
    ref_time = {f: statistics.median(t) for f, t in ref_times.items()}

    lab = {f: counted_pixels_lab(f) for f in files}
    header = (f"{'set':24} {'images':>6} {'ref img/s':>10} {'palette img/s':>14} {'speed-up':>9}"
              f" {'ref Lab MSE':>12} {'palette Lab MSE':>16}")
    results, timing_texts = [], []
    for name, subset in sets:
        if not subset:
            continue
        extra = args.extra.split() if args.extra else []
        rate, pal, timings, n = run_palette(args.palette, subset, args.k, args.min_images,
                                            args.runs, extra)
        ref_rate = len(subset) / sum(ref_time[f] for f in subset)
        ref_q = statistics.mean(distortion(lab[f], ref_pal[f]) for f in subset)
        pal_q = statistics.mean(distortion(lab[f], pal[f]) for f in subset)
        results.append(f"{name:24} {len(subset):6d} {ref_rate:10.2f} {rate:14.1f}"
                       f" {rate / ref_rate:8.1f}x {ref_q:12.2f} {pal_q:16.2f}")
        timing_texts.append(f"--- palette --timings, {name}, {n} inputs (set repeated):\n"
                            + timings.strip())
    print()
    print(header)
    for r in results:
        print(r)
    print()
    for t in timing_texts:
        print(t)
        print()


if __name__ == "__main__":
    main()
