"""The one module that touches disk: PNG encoders/decoders and atomic writes.

Conventions (SPEC.md section 3):

- image: RGB uint8 PNG.
- label: palette ("P") PNG, one uint8 per pixel: 0 background (black), 1..K the classes (each in its
  label colour HSL(h_k, 1, 0.5)), ignore_index (white). It loads as indices and looks like Figure 3.
- instance: 16-bit greyscale PNG, 0 background, object index + 1.
- COCO instance masks: run-length encoded by pycocotools.

Encoding is deterministic: the same array always gives the same bytes. RGB and 16-bit PNGs are
written by imagecodecs (libpng with zlib-ng) at compression level 1 with the "up" row filter:
measured on 512x512 scenes, 6.5 ms and 224 KB per image against 19 ms and 232 KB for Pillow at
level 1 (54 ms, 189 KB at Pillow's default level 6). Palette PNGs, which imagecodecs does not
write, go through Pillow.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

import hashlib
import json

import imagecodecs
import numpy as np
from PIL import Image

from ..errors import UserError

PNG_COMPRESS_LEVEL = 1
JPEG_QUALITY = 95
IGNORE_COLOUR = (255, 255, 255)


def label_palette(colours: Sequence[tuple[int, int, int]], ignore_index: int = 255) -> list[int]:
    """Flat 768-entry palette: index 0 black, k the colour of class k, ignore_index white."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for k, colour in enumerate(colours, start=1):
        palette[k] = colour
    palette[ignore_index] = IGNORE_COLOUR
    return palette.reshape(-1).tolist()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def _fast_png(array: np.ndarray) -> bytes:
    return bytes(imagecodecs.png_encode(np.ascontiguousarray(array), level=PNG_COMPRESS_LEVEL,
                                        filter=imagecodecs.PNG.FILTER.UP))


def _check_image(image: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")


def encode_image(image: np.ndarray) -> bytes:
    """image: (H, W, 3) uint8 -> RGB PNG bytes."""
    _check_image(image)
    return _fast_png(image)


def encode_jpeg(image: np.ndarray) -> bytes:
    """image: (H, W, 3) uint8 -> JPEG bytes (quality JPEG_QUALITY, for the Pascal VOC layout)."""
    _check_image(image)
    buf = io.BytesIO()
    Image.fromarray(image, mode="RGB").save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def encode_label(label: np.ndarray, palette: list[int]) -> bytes:
    """label: (H, W) uint8 -> palette PNG bytes."""
    if label.dtype != np.uint8 or label.ndim != 2:
        raise ValueError(f"label must be (H, W) uint8, got {label.shape} {label.dtype}")
    img = Image.fromarray(label, mode="P")
    img.putpalette(palette)
    return _png(img)


def encode_instance(instance: np.ndarray) -> bytes:
    """instance: (H, W) uint16 -> 16-bit greyscale PNG bytes."""
    if instance.dtype != np.uint16 or instance.ndim != 2:
        raise ValueError(f"instance must be (H, W) uint16, got {instance.shape} {instance.dtype}")
    return _fast_png(instance)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def coco_annotations(instance: np.ndarray, classes: Sequence[int]) -> list[dict]:
    """COCO instance annotations (without ids) of every object visible in an instance map.

    Args:
        instance: (H, W) uint16, 0 background, object index + 1.
        classes: class id (1..K) of each object, in object order.

    Returns:
        One dict per visible object, in object order: ``instance`` (object index + 1),
        ``category_id``, ``segmentation`` (compressed RLE, counts as str), ``area``, ``bbox``
        [x, y, w, h] and ``iscrowd`` 0.
    """
    from pycocotools import mask as mask_utils

    ids = np.unique(instance)
    ids = ids[ids > 0]
    if len(ids) == 0:
        return []
    # pycocotools wants (H, W, n) uint8 in Fortran order, which is (n, W, H) in C order: compare
    # into that directly (4x faster than broadcasting and converting, measured at 512x512).
    transposed = np.ascontiguousarray(instance.T)
    buf = np.empty((len(ids), instance.shape[1], instance.shape[0]), dtype=np.uint8)
    for k, inst in enumerate(ids):
        np.equal(transposed, inst, out=buf[k].view(bool))
    rles = mask_utils.encode(buf.transpose(2, 1, 0))
    areas = mask_utils.area(rles)
    boxes = mask_utils.toBbox(rles)
    out = []
    for inst, rle, area, box in zip(ids.tolist(), rles, areas.tolist(), boxes.tolist()):
        out.append({
            "instance": inst, "category_id": int(classes[inst - 1]),
            "segmentation": {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")},
            "area": int(area), "bbox": [float(v) for v in box], "iscrowd": 0,
        })
    return out


def read_json(path, what: str = "file"):
    """Parse a JSON file; a missing or corrupt one is a UserError naming it."""
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{what} {path} is not valid JSON: {exc}") from None


def read_jsonl(path, what: str = "file"):
    """Yield the objects of a JSON-lines file; a missing or corrupt one is a UserError naming it."""
    try:
        with open(path) as fh:
            for n, line in enumerate(fh, start=1):
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise UserError(f"{what} {path} line {n} is not valid JSON: {exc}") from None
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None


def _open(path: str | os.PathLike) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
    except FileNotFoundError:
        raise UserError(f"file not found: {path}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UserError(f"cannot read image {path}: {exc}") from None
    return img


def read_image(path) -> np.ndarray:
    """RGB PNG -> (H, W, 3) uint8."""
    return np.asarray(_open(path).convert("RGB"))


def read_label(path) -> np.ndarray:
    """Palette (or greyscale) label PNG -> (H, W) uint8 indices."""
    img = _open(path)
    if img.mode not in ("P", "L"):
        raise UserError(f"{path} is not an index label map (PNG mode {img.mode}, expected P or L)")
    return np.asarray(img, dtype=np.uint8)


def read_instance(path) -> np.ndarray:
    """16-bit instance PNG -> (H, W) uint16."""
    img = _open(path)
    arr = np.asarray(img)
    if arr.ndim != 2:
        raise UserError(f"{path} is not a single-channel instance map")
    return arr.astype(np.uint16)


def check_writable(path: str | os.PathLike) -> Path:
    """The path, if a file can be created there; else a UserError naming what is wrong."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise UserError(f"cannot write {path}: directory {parent} does not exist (create it first)")
    if not parent.is_dir():
        raise UserError(f"cannot write {path}: {parent} is not a directory")
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a directory")
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write {path}: directory {parent} is not writable")
    return path


def write_files_atomic(files: Iterable[tuple[str | os.PathLike, bytes]]) -> None:
    """Write several files all or nothing: each goes to a temporary name, then all are renamed.

    If anything fails before the renames, every temporary file is removed and no target is touched.
    """
    files = [(check_writable(p), data) for p, data in files]
    temps: list[tuple[str, Path]] = []
    try:
        for path, data in files:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            temps.append((tmp, path))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
    except OSError as exc:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        raise UserError(f"cannot write {files[len(temps) - 1][0]}: {exc.strerror or exc}") from None
    for tmp, path in temps:
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
