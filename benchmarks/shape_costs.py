"""Where the `shapes` preset's render time goes: one shape family at a time.

    python benchmarks/shape_costs.py [--scenes 40] [--size 512] [--texture none]

Renders the `shapes` scene preset with every class set to one family (same sizes, rotations,
colours and textures otherwise), the preset itself and the report's scenes, on one thread with
Perlin noise, and prints per configuration: the median kernel time of ``render_packed`` over the
scenes (packing excluded), and the mean fraction of pixels an object covers. Never a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import numpy as np

from fakeballoons.classes import SHAPES
from fakeballoons.commands import load_scene
from fakeballoons.render import render_packed, set_threads
from fakeballoons.render.pack import pack_sampled


def _one_family(config, shape):
    return config.replace(classes=tuple(dataclasses.replace(c, shape=shape) for c in config.classes))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=40)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--texture", choices=("preset", "none"), default="preset",
                   help="none: every object untextured (t = 1), to see what the texture costs")
    args = p.parse_args(argv)
    set_threads(1)
    extra = {} if args.texture == "preset" else {"texture": "none"}
    shapes = load_scene("shapes").replace(height=args.size, width=args.size, noise="perlin", **extra)
    configs = [("report", load_scene("report").replace(height=args.size, width=args.size, noise="perlin", **extra)),
               ("shapes", shapes)] + [(f"shapes, all {s}", _one_family(shapes, s)) for s in SHAPES]
    for name, config in configs:
        packs = [pack_sampled(config, 0, [i]) for i in range(args.scenes)]
        render_packed(packs[0])  # compile or load the cache
        times, covered = [], []
        for packed in packs:
            start = time.perf_counter()
            batch = render_packed(packed)
            times.append(time.perf_counter() - start)
            covered.append(float(np.mean((batch.label > 0) & (batch.label < 255))))
        print(f"{name:22s} kernel median {statistics.median(times) * 1e3:6.2f} ms  "
              f"covered {statistics.mean(covered):.3f}", flush=True)


if __name__ == "__main__":
    main()
