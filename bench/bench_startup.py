#!/usr/bin/env python3
"""Start-up of palette, whole process: `palette extract` on one small image and
`palette --version`, median of RUNS runs each, for one or more palette binaries side by side
(runs interleaved, so that a noisy machine treats them alike), with where the time goes:
shared libraries loaded, the dynamic loader's relocation time (LD_DEBUG=statistics), and the
CPU time of the process (user + system).

    bench/bench_startup.py [--runs 20] [--image FILE] [PALETTE ...]   (default build/palette)

The default image is a 64x48 binary PPM written on the fly (palette reads PNM itself), so the
run measures start-up, not decoding; pass --image samples/coffee.jpg for a small JPEG.
"""
import argparse
import os
import re
import resource
import statistics
import subprocess
import tempfile
import time


def run_once(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall * 1000, cpu * 1000


def loader_stats(binary):
    env = dict(os.environ, LD_DEBUG="statistics")
    p = subprocess.run([binary, "--version"], capture_output=True, text=True, env=env)
    cycles = re.search(r"total startup time in dynamic loader: (\d+)", p.stderr)
    relocs = re.search(r"final number of relocations: (\d+)", p.stderr)
    libs = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    return (len([l for l in libs.splitlines() if l.strip()]),
            int(relocs.group(1)) if relocs else -1,
            int(cycles.group(1)) if cycles else -1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--image")
    ap.add_argument("palettes", nargs="*", default=["build/palette"])
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        image = a.image
        if not image:
            image = os.path.join(tmp, "small.ppm")
            with open(image, "wb") as f:
                f.write(b"P6\n64 48\n255\n" + bytes((x * 7 + y * 13) % 256
                                                    for y in range(48) for x in range(64 * 3)))
        cases = [("extract", ["extract", image, "-o", os.path.join(tmp, "out.csv")]),
                 ("--version", ["--version"])]
        results = {(p, c): [] for p in a.palettes for c, _ in cases}
        for _ in range(a.runs):
            for p in a.palettes:
                for c, args in cases:
                    results[(p, c)].append(run_once([p] + args))
        print(f"{a.runs} runs each, interleaved; image: "
              f"{a.image or '64x48 PPM'}\n")
        print("| palette | shared libraries | relocations | loader Mcycles | "
              "extract wall ms | extract CPU ms | --version wall ms | --version CPU ms |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for p in a.palettes:
            libs, relocs, cycles = loader_stats(p)
            row = [p, str(libs), str(relocs), f"{cycles / 1e6:.1f}"]
            for c, _ in cases:
                row.append(f"{statistics.median(w for w, _ in results[(p, c)]):.1f}")
                row.append(f"{statistics.median(u for _, u in results[(p, c)]):.1f}")
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
