"""The one module that touches disk: encoders and decoders, JSON readers, atomic writers (these
live in :mod:`.files` and are re-exported here).

Conventions:

- image: RGB uint8 PNG.
- label: palette ("P") PNG, one uint8 per pixel: 0 background (black), 1..K the classes (each in its
  label colour HSL(h_k, 1, 0.5)), ignore_index (white). It loads as indices and looks like Figure 3.
- instance: 16-bit greyscale PNG, 0 background, object index + 1.
- COCO instance masks: run-length encoded by pycocotools.

Every file the package writes goes through the atomic writers here: the bytes go to a temporary
file ``.NAME.HOST.PID.RANDOM.tmp`` beside the target, which is renamed over it only when complete,
so a killed process never leaves a half-written file under a real name (and the temporaries of
dead processes can be recognised and removed). Files from outside (manifests, configs,
checkpoints) are untrusted: the readers turn every way they can be wrong into one UserError line.

Encoding is deterministic: the same array always gives the same bytes (for one version of
ISA-L). The PNGs are written here: every row "up"-filtered, then deflated by Intel's ISA-L (the
``isal`` package) at its level 1 into one IDAT chunk. On default 512x512 scenes that is about 1.8
times faster than libdeflate at level 1 for the images (files 6% larger) and about 8 times faster
than libpng's zlib for the label and instance maps (files smaller); see the measurements page of
the development docs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import warnings
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from isal import isal_zlib
from PIL import Image

from ..errors import UserError
from .files import (  # noqa: F401 - the writers are part of this module's interface
    HOST,
    append_line,
    check_writable,
    create_exclusive,
    sync_paths,
    temp_name,
    temp_owner,
    write_atomic,
    write_files_atomic,
    write_stream_atomic,
)

if TYPE_CHECKING:
    from ..config import SceneConfig
    from ..render import Sample

ISAL_LEVEL = 1  # ISA-L's levels are 0-3: 1 is as fast as 0 here, with smaller files
JPEG_QUALITY = 95
IGNORE_COLOUR = (255, 255, 255)


def label_palette(config: SceneConfig) -> np.ndarray:
    """(256, 3) uint8 palette of a configuration's label maps: 0 black, class k its label colour
    HSL(h_k, 1, 0.5), the ignore index white, every other entry black."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for k, colour in enumerate(config.label_colours, start=1):
        palette[k] = colour
    palette[config.antialias.ignore_index] = IGNORE_COLOUR
    return palette


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FILTER_UP = 2  # PNG's "up" row filter: each byte minus the byte above it


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def _png_bytes(rows: np.ndarray, width: int, bit_depth: int, colour_type: int,
               palette: np.ndarray | None = None) -> bytes:
    """A PNG from its raw scanlines (H, row bytes) uint8: every row "up"-filtered, deflated by ISA-L
    into one IDAT chunk, a PLTE chunk before it for a palette image."""
    height = rows.shape[0]
    filtered = np.empty((height, rows.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = _FILTER_UP
    filtered[:1, 1:] = rows[:1]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8: modulo 256, as PNG's filters are
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    chunks = [_PNG_SIGNATURE, _png_chunk(b"IHDR", header)]
    if palette is not None:
        chunks.append(_png_chunk(b"PLTE", np.ascontiguousarray(palette, dtype=np.uint8).tobytes()))
    chunks += [_png_chunk(b"IDAT", isal_zlib.compress(filtered, ISAL_LEVEL)), _png_chunk(b"IEND", b"")]
    return b"".join(chunks)


def _rgb_png(image: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> RGB PNG (8 bits, colour type 2)."""
    height, width = image.shape[:2]
    return _png_bytes(np.ascontiguousarray(image).reshape(height, 3 * width), width, 8, 2)


def _check_image(image: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")


def encode_image(image: np.ndarray) -> bytes:
    """image: (H, W, 3) uint8 -> RGB PNG bytes."""
    _check_image(image)
    return _rgb_png(image)


def encode_jpeg(image: np.ndarray) -> bytes:
    """image: (H, W, 3) uint8 -> JPEG bytes (quality JPEG_QUALITY, for the Pascal VOC layout)."""
    _check_image(image)
    buf = io.BytesIO()
    Image.fromarray(image, mode="RGB").save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def encode_label(label: np.ndarray, palette: np.ndarray) -> bytes:
    """label: (H, W) uint8, palette (256, 3) uint8 -> palette PNG bytes."""
    if label.dtype != np.uint8 or label.ndim != 2:
        raise ValueError(f"label must be (H, W) uint8, got {label.shape} {label.dtype}")
    return _png_bytes(np.ascontiguousarray(label), label.shape[1], 8, 3, palette.reshape(256, 3))


def encode_instance(instance: np.ndarray) -> bytes:
    """instance: (H, W) uint16 -> 16-bit greyscale PNG bytes."""
    if instance.dtype != np.uint16 or instance.ndim != 2:
        raise ValueError(f"instance must be (H, W) uint16, got {instance.shape} {instance.dtype}")
    return _png_bytes(instance.astype(">u2").view(np.uint8), instance.shape[1], 16, 0)  # PNG is big-endian


def encode_sample(sample: Sample, config: SceneConfig, image_format: str = "png") -> dict[str, bytes]:
    """The files of one rendered sample, by kind: ``image`` (RGB PNG, or JPEG for ``"jpeg"``, as
    Pascal VOC keeps them), ``label`` (palette PNG) and, with PNG images, ``instance`` (16-bit PNG).
    ``render``, ``generate`` and the viewer all write samples through this."""
    out = {"image": encode_jpeg(sample.image) if image_format == "jpeg" else encode_image(sample.image),
           "label": encode_label(sample.label, label_palette(config))}
    if image_format != "jpeg":
        out["instance"] = encode_instance(sample.instance)
    return out


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

    # COCO's run-length encoding runs down the columns. One pass finds the runs of every instance at
    # once (where the column-major sequence changes value); each instance's counts, alternating
    # zeros and ones from a zero run as pycocotools' own encoder writes them, go to pycocotools to be
    # compressed: the same RLE as encoding one binary mask per instance, in a quarter of the time.
    h, w = instance.shape
    flat = np.ascontiguousarray(instance.T).reshape(-1)
    if flat.size == 0:
        return []
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate(([0], edges))
    ends = np.append(edges, flat.size)
    values = flat[starts]
    ids = np.unique(values)
    ids = ids[ids > 0]
    if len(ids) == 0:
        return []
    uncompressed = []
    for inst in ids.tolist():
        mine = values == inst
        s = starts[mine]
        e = ends[mine]
        n = len(s)
        counts = np.empty(2 * n + int(e[-1] < flat.size), dtype=np.int64)
        counts[0] = s[0]
        counts[2:2 * n:2] = s[1:] - e[:-1]
        counts[1:2 * n:2] = e - s
        if e[-1] < flat.size:
            counts[-1] = flat.size - e[-1]
        uncompressed.append({"size": [h, w], "counts": counts.tolist()})
    rles = mask_utils.frPyObjects(uncompressed, h, w)
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


def read_json(path, what: str = "file", kind: type | None = dict) -> Any:
    """Parse a JSON file; a missing, unreadable, corrupt or oversized one (over
    :data:`~fakeballoons.codec.MAX_JSON_BYTES`), one that is not a regular file (a device, a pipe)
    or, with ``kind``, one that does not hold a ``kind`` is a UserError naming it."""
    from ..codec import read_json_bytes

    raw = read_json_bytes(path, what)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise UserError(f"{what} {path} is not valid JSON: {exc}") from None
    if kind is not None and not isinstance(data, kind):
        raise UserError(f"{what} {path} does not hold a JSON {kind.__name__}")
    return data


def read_jsonl(path, what: str = "file", kind: type | None = dict) -> Iterator[Any]:
    """Yield the objects of a JSON-lines file; a missing or corrupt one, one that is not a regular
    file, or a line over :data:`~fakeballoons.codec.MAX_JSON_BYTES` is a UserError naming the file
    (and the line)."""
    import stat

    from ..codec import MAX_JSON_BYTES

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # before opening: opening a pipe waits for a writer
            raise UserError(f"{what} {path} is not a regular file")
        with open(path, "rb") as fh:
            n = 0
            while line := fh.readline(MAX_JSON_BYTES + 1):
                n += 1
                if len(line) > MAX_JSON_BYTES:
                    raise UserError(f"{what} {path} line {n} is over {MAX_JSON_BYTES // 2**20} MB long")
                if not line.strip():
                    continue
                try:
                    item = json.loads(line.decode("utf-8"))
                except (ValueError, RecursionError) as exc:
                    raise UserError(f"{what} {path} line {n} is not valid JSON: {exc}") from None
                if kind is not None and not isinstance(item, kind):
                    raise UserError(f"{what} {path} line {n} does not hold a JSON {kind.__name__}")
                yield item
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def json_bytes(obj, indent: int | None = None) -> bytes:
    """Compact JSON (``indent=None``, one line, no newline) or indented JSON with a final newline."""
    if indent is None:
        return json.dumps(obj, separators=(",", ":")).encode()
    return (json.dumps(obj, indent=indent) + "\n").encode()


def _open(path: str | os.PathLike, load: bool = True) -> Image.Image:
    """Open an image file (and decode it, with ``load``). Pillow's decompression-bomb limit (about
    179 megapixels) is an error here, not a warning: a header claiming 30000x30000 is refused
    before any memory is spent on it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            if load:
                img.load()
    except FileNotFoundError:
        raise UserError(f"file not found: {path}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UserError(f"refused image {path}: {exc}") from None
    except (OSError, SyntaxError, ValueError, MemoryError) as exc:
        raise UserError(f"cannot read image {path}: {exc}") from None
    return img


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) of an image file from its header, without decoding it (a cheap check of
    training data before the first step); an unreadable file is a UserError naming it."""
    img = _open(path, load=False)
    with img:
        return img.height, img.width


#: The largest photograph read as training or evaluation data (about 4096x4096): a validation
#: image is evaluated at its own resolution, a class score per pixel, so one 9400x9400 picture
#: alone would take gigabytes.
MAX_DATA_PIXELS = 4096 * 4096


def check_data_image(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) of an image (or mask) of a dataset on disk, after a cheap check of all of
    it: a PNG's chunks and their checksums, a JPEG decoded at an eighth of its size. A file that is
    corrupt, cut short or larger than MAX_DATA_PIXELS is a UserError naming it, when the dataset
    opens rather than when an epoch reaches it."""
    img = _open(path, load=False)
    with img:
        size = img.height, img.width
        if size[0] * size[1] > MAX_DATA_PIXELS:
            raise UserError(f"image {path} is {size[1]}x{size[0]} pixels, over the {MAX_DATA_PIXELS / 1e6:.1f} "
                            f"megapixels read as data (4096x4096); downscale it (and its mask, nearest neighbour)")
        try:
            if img.format == "JPEG":
                img.draft(img.mode, (max(1, size[1] // 8), max(1, size[0] // 8)))
                img.load()
            else:
                img.verify()
        except (OSError, SyntaxError, ValueError, MemoryError, EOFError) as exc:
            raise UserError(f"cannot read image {path}: corrupt or cut short ({exc})") from None
    return size


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


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """``torch.save`` atomically. Keep ``obj`` to tensors and plain data, so that
    :func:`load_torch` can read it without running code."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    write_atomic(path, buf.getvalue())


def load_torch(path: str | os.PathLike, what: str = "checkpoint", *, mmap: bool = False) -> Any:
    """``torch.load`` of an untrusted file, on the CPU: tensors and plain data only
    (``weights_only=True``: a crafted file cannot run code); every failure is one UserError line."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}" if not path.exists() else f"{what} {path} is not a file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unpickling failed"
        raise UserError(f"{what} {path} holds more than tensors and plain data, or is corrupt; "
                        f"refused to load it ({first})") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a corrupt file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read {what} {path}: {first}") from None


def figure_png(fig) -> bytes:
    """PNG bytes of a matplotlib figure (to be written with :func:`write_atomic`)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()
