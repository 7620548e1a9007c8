"""Where one generated pair's time goes, stage by stage, in one process on one thread: sampling,
packing, tile refinement, the render kernel, the three PNGs, their hashes, the COCO annotations, the
record and the atomic writes (docs/development/measurements.md, "Generation after sky rows").
Median milliseconds of 50 default 512-px pairs after 10 of warm-up. Run it on an idle machine:
python benchmarks/generate_stages.py [OUT_DIR]"""

import importlib
import sys
import tempfile
import time

import numpy as np

from fakeballoons import SceneConfig, sample_scene
from fakeballoons.data import formats
from fakeballoons.data.generate import keep_freed_memory
from fakeballoons.render import render_tile_lists, set_threads

P = importlib.import_module("fakeballoons.render.pack")  # the module; fakeballoons.render.pack is a function


def main(out: str, pairs: int = 60, warm: int = 10) -> None:
    set_threads(1)
    keep_freed_memory()
    config = SceneConfig(height=512, width=512)
    palette = formats.label_palette(config)
    times: dict[str, list[float]] = {}

    def lap(stage: str, start: float) -> float:
        now = time.perf_counter()
        times.setdefault(stage, []).append(now - start)
        return now

    for i in range(pairs):
        t = time.perf_counter()
        scene = sample_scene(config, 0, i)
        t = lap("sample", t)
        packed = P.pack([scene], config)
        t = lap("pack", t)
        refined = P.refine_tiles(packed)
        t = lap("refine", t)
        batch = render_tile_lists(refined)
        t = lap("kernel", t)
        image = formats.encode_image(batch.image[0])
        t = lap("png image", t)
        label = formats.encode_label(batch.label[0], palette)
        t = lap("png label", t)
        instance = formats.encode_instance(batch.instance[0])
        t = lap("png instance", t)
        hashes = [formats.sha256(data) for data in (image, label, instance)]
        t = lap("sha256", t)
        annotations = formats.coco_annotations(batch.instance[0], [o.class_id for o in scene.objects])
        t = lap("coco", t)
        formats.json_bytes({"scene": scene.to_dict(), "sha256": hashes, "annotations": annotations})
        t = lap("record", t)
        formats.write_files_atomic([(f"{out}/{i:06d}_{kind}.png", data)  # new files, as generate writes
                                    for kind, data in zip(("image", "label", "instance"), (image, label, instance))])
        lap("write", t)
    total = 0.0
    for stage, values in times.items():
        median = 1000 * float(np.median(values[warm:]))
        total += median
        print(f"{stage:14s} {median:6.2f} ms")
    print(f"{'sum':14s} {total:6.2f} ms a pair")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(tmp)
