"""Rendered frames for the viewer: one render gives the picture, the label map and the legend, and a
small cache keyed by the settings serves the PNG downloads of what is on screen without rendering again.

Renders are serialised by one lock: numba's parallel CPU kernels must not run from two threads at
once. Previews (128 pixels or less) render on one thread, where waking a second thread costs more
than it saves; full frames use every thread.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import OrderedDict

import numba
import numpy as np

from ..config import SceneConfig
from ..data import formats
from ..errors import UserError
from ..render import Sample, render
from ..scene import Scene

__all__ = ["CACHE_ENTRIES", "Frame", "FrameCache", "overlay"]

CACHE_ENTRIES = 12  # at 512x512 about 1.8 MB each: arrays and encoded PNGs
PREVIEW_PIXELS = 128 * 128


def overlay(image: np.ndarray, label: np.ndarray, config: SceneConfig) -> np.ndarray:
    """The image with every labelled pixel blended half and half with its label colour."""
    palette = formats.label_palette(config).astype(np.float64)
    out = image.astype(np.float64)
    mask = label > 0
    out[mask] = 0.5 * out[mask] + 0.5 * palette[label[mask]]
    return np.round(out).astype(np.uint8)


class Frame:
    """One rendered scene and its encodings, made on first use."""

    def __init__(self, sample: Sample, config: SceneConfig, render_ms: float):
        self.sample, self.config, self.render_ms = sample, config, render_ms
        self._png: dict[str, bytes] = {}

    def png(self, output: str) -> bytes:
        """``image`` and ``label``: the bytes ``fakeballoons render`` writes; ``overlay``: the image
        with the label colours blended in."""
        if output not in self._png:
            if output == "overlay":
                data = formats.encode_image(overlay(self.sample.image, self.sample.label, self.config))
            elif output == "label":
                data = formats.encode_label(self.sample.label, formats.label_palette(self.config))
            else:
                data = formats.encode_image(self.sample.image)
            self._png[output] = data
        return self._png[output]

    def legend(self) -> dict:
        """The labels in the picture: background, each class present (its name and colour) and the
        ignore band on object edges, with their pixel counts."""
        counts = np.bincount(self.sample.label.ravel(), minlength=256)
        ignore = self.config.antialias.ignore_index
        colours = self.config.label_colours
        classes = [{"label": k, "name": c.name, "colour": list(colours[k - 1]), "pixels": int(counts[k])}
                   for k, c in enumerate(self.config.classes, start=1)]
        return {"background": int(counts[0]), "ignore": {"label": ignore, "pixels": int(counts[ignore])},
                "classes": classes}

    @property
    def nbytes(self) -> int:
        s = self.sample
        return s.image.nbytes + s.label.nbytes + s.instance.nbytes + sum(len(b) for b in self._png.values())


class FrameCache:
    """The last CACHE_ENTRIES frames, keyed by (scene, configuration); rendering under one lock."""

    def __init__(self, entries: int = CACHE_ENTRIES):
        self.entries = entries
        self._frames: OrderedDict[tuple[Scene, SceneConfig], Frame] = OrderedDict()
        self.lock = threading.Lock()  # numba's parallel kernels must not run from two threads at once

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for f in self._frames.values())

    def get(self, scene: Scene, config: SceneConfig) -> Frame:
        key = (scene, config)
        with self.lock:
            frame = self._frames.get(key)
            if frame is not None:
                self._frames.move_to_end(key)
                return frame
            previous = numba.get_num_threads()  # numba's thread count is per calling thread
            preview = config.height * config.width <= PREVIEW_PIXELS
            numba.set_num_threads(1 if preview else numba.config.NUMBA_NUM_THREADS)
            try:
                t0 = time.perf_counter()
                sample = render(scene, config)
                frame = Frame(sample, config, (time.perf_counter() - t0) * 1e3)
            finally:
                numba.set_num_threads(previous)
            self._frames[key] = frame
            while len(self._frames) > self.entries:
                self._frames.popitem(last=False)
            return frame

    def encode(self, frame: Frame, output: str) -> bytes:
        with self.lock:  # a frame's encodings are made once, under the lock that guards the cache
            return frame.png(output)


def scene_json(scene: Scene) -> dict:
    """``scene.to_dict()``; a UserError if any number in it is not finite (JSON cannot hold it)."""
    data = scene.to_dict()
    try:
        json.dumps(data, allow_nan=False)
    except ValueError:
        raise UserError("the scene has a number that is not finite; use smaller spreads in the class table") from None
    return data


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
