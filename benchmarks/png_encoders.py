"""The image PNG encoders compared on default 512x512 scenes (docs/development/measurements.md, "PNG
encoding"): the package's writer (up filter, libdeflate level 1) against libpng through imagecodecs
at the same level and filter (the encoder before it) and Pillow at level 1. Median milliseconds
per image over alternating repetitions, one thread, and the mean file size; every file decodes to
the same pixels. Run it on an idle machine: python benchmarks/png_encoders.py"""

import io
import statistics
import time

import imagecodecs
import numpy as np
from PIL import Image

import fakeballoons as fb
from fakeballoons.data import formats
from fakeballoons.render import set_threads


def libpng(image):
    return bytes(imagecodecs.png_encode(image, level=1, filter=imagecodecs.PNG.FILTER.UP))


def pillow(image):
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def main(scenes=12, repeats=5):
    set_threads(1)
    config = fb.SceneConfig()
    images = [fb.render(fb.sample_scene(config, 0, i), config).image for i in range(scenes)]
    encoders = {"package (libdeflate)": formats.encode_image, "libpng + zlib": libpng, "Pillow": pillow}
    times = {name: [] for name in encoders}
    sizes = {name: [] for name in encoders}
    for _ in range(repeats):
        for name, encode in encoders.items():
            for image in images:
                start = time.perf_counter()
                data = encode(image)
                times[name].append(time.perf_counter() - start)
                sizes[name].append(len(data))
    for name in encoders:
        for image in images:
            assert np.array_equal(imagecodecs.png_decode(encoders[name](image)), image), name
    base = statistics.median(times["package (libdeflate)"])
    for name in encoders:
        t = statistics.median(times[name])
        print(f"{name:22s} {1000 * t:6.2f} ms  {t / base:4.2f}x  {statistics.mean(sizes[name]) / 1000:6.1f} KB")


if __name__ == "__main__":
    main()
