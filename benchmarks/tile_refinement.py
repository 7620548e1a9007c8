"""Per-scene render time, one thread, of the report kernel with tile lists refined at 16, 8 and 4 px
against the 16-px lists as binned (docs/development/measurements.md, "Generation after tile
refinement"). Run it on an idle machine: python benchmarks/tile_refinement.py"""

import importlib
import time

import numpy as np

from fakeballoons import SceneConfig, sample_scene
from fakeballoons.render import render_tile_lists, set_threads

P = importlib.import_module("fakeballoons.render.pack")  # the module; fakeballoons.render.pack is a function


def render_lists(packed):
    batch = render_tile_lists(packed)
    return batch.image, batch.label, batch.instance


def main():
    set_threads(1)
    config = SceneConfig(height=512, width=512)
    scenes = [sample_scene(config, 0, i) for i in range(16)]
    binned = P.pack(scenes, config)  # 16-px tiles, as the GPU's host packs them
    render_lists(P.refine_tiles(binned, 8))  # compiles or loads the kernels: not timed
    variants = {"as binned 16": binned}
    for tile in (16, 8, 4):
        start = time.process_time()
        for _ in range(5):
            refined = P.refine_tiles(binned, tile)
        ms = (time.process_time() - start) / (5 * len(scenes)) * 1000
        sizes = np.diff(refined.tile_start)
        settled = np.count_nonzero(refined.tile_objs < 0) / len(sizes)
        print(f"tile {tile:2d}: refine {ms:.2f} ms a scene, sky tiles {np.mean(sizes == 0):.0%}, "
              f"settled tiles {settled:.0%}")
        variants[f"refined {tile}"] = refined
    times = {name: [] for name in variants}
    reference = None
    for _ in range(4):
        for name, packed in variants.items():
            start = time.process_time()
            out = render_lists(packed)
            times[name].append((time.process_time() - start) / len(scenes) * 1000)
            reference = reference or out
            assert all(np.array_equal(a, b) for a, b in zip(out, reference)), name
    for name, values in times.items():
        print(f"{name:14s} median {np.median(values):6.2f} ms a scene  {[round(v, 1) for v in values]}")


if __name__ == "__main__":
    main()
