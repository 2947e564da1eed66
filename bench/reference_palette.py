#!/usr/bin/python3
"""The original tool's pipeline, reproduced as the reference palette is compared against.

PIL open -> convert("RGB") -> resize to 100x100 -> scikit-learn KMeans(n_clusters=k) with its
defaults -> cluster_centers_ -> hex. Uses Debian's python3-sklearn and python3-pil.

As a script: prints one CSV row per image (file, colours) and the per-image times on stderr.
"""

import sys
import time
import warnings

import numpy as np
from PIL import Image
from sklearn.cluster import KMeans


def reference_palette(path, k):
    """The k cluster centres of the image as '#rrggbb' strings, as the original tool did it."""
    img = Image.open(path).convert("RGB").resize((100, 100))
    pixels = np.asarray(img, dtype=np.float64).reshape(-1, 3)
    with warnings.catch_warnings():
        # scikit-learn 1.2 warns that the default n_init will change; we want its defaults.
        warnings.simplefilter("ignore")
        km = KMeans(n_clusters=k).fit(pixels)
    out = []
    for c in km.cluster_centers_:
        r, g, b = (int(round(min(255.0, max(0.0, v)))) for v in c)
        out.append(f"#{r:02x}{g:02x}{b:02x}")
    return out


def main():
    k = int(sys.argv[1])
    for path in sys.argv[2:]:
        t0 = time.perf_counter()
        colors = reference_palette(path, k)
        dt = time.perf_counter() - t0
        print(path + "," + ",".join(colors))
        print(f"{dt * 1000:.1f} ms {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
