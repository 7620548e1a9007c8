"""The PNG encoders compared on default 512x512 scenes (docs/development/measurements.md, "PNG
encoding"), for each kind of file: the package's writer (up filter, ISA-L level 1) against the same
filter and chunks deflated by libdeflate at level 1 (the image writer before it), libpng through
imagecodecs at level 1 with the up filter (the instance maps' encoder before it) and Pillow at level
1 (the label maps' encoder before it). Median milliseconds per file over alternating repetitions,
one thread, and the mean file size; every file decodes to the same array. Run it on an idle
machine: python benchmarks/png_encoders.py"""

import io
import statistics
import time
from unittest import mock

import imagecodecs
import numpy as np
from PIL import Image

import fakeballoons as fb
from fakeballoons.data import formats
from fakeballoons.render import set_threads


class _Libdeflate:  # the package's chunks with libdeflate in place of ISA-L
    @staticmethod
    def compress(data, level):
        return imagecodecs.deflate_encode(data, level=1)


def with_libdeflate(encode):
    def run(*args):
        with mock.patch.object(formats, "isal_zlib", _Libdeflate):
            return encode(*args)
    return run


def libpng(array, *_):
    return bytes(imagecodecs.png_encode(np.ascontiguousarray(array), level=1, filter=imagecodecs.PNG.FILTER.UP))


def pillow(array, palette=None):
    img = Image.fromarray(array, mode="P" if palette is not None else None)
    if palette is not None:
        img.putpalette(palette.reshape(-1).tolist())
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def decoded(data):
    img = Image.open(io.BytesIO(data))
    return np.asarray(img)


def main(scenes=12, repeats=5):
    set_threads(1)
    config = fb.SceneConfig()
    samples = [fb.render(fb.sample_scene(config, 0, i), config) for i in range(scenes)]
    palette = formats.label_palette(config)
    kinds = {
        "image": ([s.image for s in samples], (), {"package (ISA-L)": formats.encode_image,
                                                   "libdeflate": with_libdeflate(formats.encode_image),
                                                   "libpng": libpng, "Pillow": pillow}),
        "label": ([s.label for s in samples], (palette,), {"package (ISA-L)": formats.encode_label,
                                                           "libdeflate": with_libdeflate(formats.encode_label),
                                                           "Pillow": pillow}),
        "instance": ([s.instance for s in samples], (), {"package (ISA-L)": formats.encode_instance,
                                                         "libdeflate": with_libdeflate(formats.encode_instance),
                                                         "libpng": libpng}),
    }
    for kind, (arrays, extra, encoders) in kinds.items():
        times = {name: [] for name in encoders}
        sizes = {name: [] for name in encoders}
        for _ in range(repeats):
            for name, encode in encoders.items():
                for array in arrays:
                    start = time.perf_counter()
                    data = encode(array, *extra)
                    times[name].append(time.perf_counter() - start)
                    sizes[name].append(len(data))
        for name, encode in encoders.items():
            for array in arrays:
                assert np.array_equal(decoded(encode(array, *extra)).astype(array.dtype), array), (kind, name)
        base = statistics.median(times["package (ISA-L)"])
        for name in encoders:
            t = statistics.median(times[name])
            size = statistics.mean(sizes[name]) / 1000
            print(f"{kind:8s} {name:16s} {1000 * t:6.2f} ms  {t / base:5.2f}x  {size:6.1f} KB")


if __name__ == "__main__":
    main()
