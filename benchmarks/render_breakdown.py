"""Where the report kernel's CPU time goes, one thread, on 16 default 512-px scenes
(docs/development/measurements.md, "Generation after forked workers, the pixel test and ISA-L PNGs"):
the tiles of the refined 8-px lists by kind (all sky, settled to one object, mixed), the share of
the mixed tiles' pixels that the pixel test (``settle_pixel``) settles without casting, the render
time with every tile's list and with only some kinds kept (the others made sky), and with the pixel
test off (the camera's footprint NaN). Run it on an idle machine: python benchmarks/render_breakdown.py"""

import dataclasses
import importlib
import time

import numba
import numpy as np

from fakeballoons import SceneConfig, sample_scene
from fakeballoons.render import cpu, render_tile_lists, set_threads
from fakeballoons.render import fields as K

P = importlib.import_module("fakeballoons.render.pack")  # the module; fakeballoons.render.pack is a function
settle = cpu.report.settle_pixel


@numba.njit
def settled_counts(height, width, tile, tiles_x, per_scene, cam, objs, tile_start, tile_objs, batch):
    """Pixels of mixed tiles: left to cast, settled sky, settled to an object."""
    counts = np.zeros(3, np.int64)
    for b in range(batch):
        for py in range(height):
            for px in range(width):
                t = b * per_scene + (py // tile) * tiles_x + px // tile
                lo, hi = tile_start[t], tile_start[t + 1]
                if lo == hi or tile_objs[lo] < 0:
                    continue
                v = settle(px + 0.5, py + 0.5, width, height, cam, objs, tile_objs, lo, hi)
                counts[0 if v == -3 else 1 if v == K.SKY else 2] += 1
    return counts


def main(scenes=16, repeats=5):
    set_threads(1)
    config = SceneConfig(height=512, width=512)
    packed = P.refine_tiles(P.pack([sample_scene(config, 0, i) for i in range(scenes)], config))
    starts, objs = packed.tile_start, packed.tile_objs
    n = len(starts) - 1
    sizes = np.diff(starts)
    settled = np.zeros(n, bool)
    settled[sizes == 1] = objs[starts[:-1][sizes == 1]] < 0
    mixed = (sizes > 0) & ~settled
    print(f"tiles: sky {np.mean(sizes == 0):.1%}, settled {settled.mean():.1%}, mixed {mixed.mean():.1%} "
          f"(mean {sizes[mixed].mean():.2f} objects)")
    left, sky, one = settled_counts(config.height, config.width, packed.tile_size, packed.tiles_x,
                                    packed.tiles_per_scene, packed.cam, packed.objs, starts, objs, scenes)
    print(f"pixels of mixed tiles: {left + sky + one}; the pixel test settles {sky} to sky and {one} to one "
          f"object ({(sky + one) / (left + sky + one):.1%}); {left} are cast")

    def keep(mask):
        kept = np.where(mask, sizes, 0)
        lists = [objs[starts[i]:starts[i + 1]] for i in range(n) if mask[i]]
        return dataclasses.replace(packed, tile_start=np.concatenate([[0], np.cumsum(kept)]).astype(np.int64),
                                   tile_objs=np.concatenate(lists or [np.zeros(0, np.int64)]).astype(np.int64))

    cam = packed.cam.copy()
    cam[K.FOOT_PX:K.FOOT_Y + 1] = np.nan
    variants = {"all tiles": packed, "every pixel sky": keep(np.zeros(n, bool)), "sky + settled tiles": keep(settled),
                "sky + mixed tiles": keep(mixed), "all, no pixel test": dataclasses.replace(packed, cam=cam)}
    reference = render_tile_lists(packed)  # compiles or loads the kernel: not timed
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, variant in variants.items():
            start = time.process_time()
            out = render_tile_lists(variant)
            times[name].append((time.process_time() - start) / scenes * 1000)
            if name.startswith("all"):
                assert all(np.array_equal(a, b) for a, b in zip((out.image, out.label, out.instance),
                                                                (reference.image, reference.label, reference.instance)))
    for name, values in times.items():
        print(f"{name:20s} median {np.median(values):6.2f} ms a scene  {[round(v, 1) for v in values]}")


if __name__ == "__main__":
    main()
