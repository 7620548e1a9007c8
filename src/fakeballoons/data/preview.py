"""A preview sheet: a grid of images, each beside its label map in palette colours."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from PIL import Image

from ..config import SceneConfig
from ..errors import UserError
from . import formats

#: The largest sheet drawn, in pixels (about 300 MB as RGB): beyond it a sheet is no preview.
MAX_SHEET_PIXELS = 100_000_000


def preview_sheet(pairs: Iterable, config: SceneConfig, columns: int = 4, thumb: int = 192,
                  count: int | None = None) -> bytes:
    """PNG bytes of a grid of (image, label) thumbnails.

    The pairs are drawn into the sheet one at a time as they come, so a generator of pairs keeps
    only one full-size pair in memory, whatever their number.

    Args:
        pairs: iterable of (image (3, H, W) uint8 tensor or (H, W, 3) array, label (H, W)).
        config: the scene configuration whose label palette colours the label maps.
        columns: image/label pairs per row.
        thumb: thumbnail edge in pixels.
        count: the number of pairs (needed when ``pairs`` has no len()).
    """
    n = len(pairs) if count is None else count
    palette = formats.label_palette(config)
    rows = max(1, -(-n // columns))
    gap = 4
    size = (columns * (2 * thumb + gap) + gap, rows * (thumb + gap) + gap)
    if size[0] * size[1] > MAX_SHEET_PIXELS:
        raise UserError(f"a sheet of {n} pairs at --thumb {thumb} would be {size[0]}x{size[1]} pixels; "
                        f"ask for fewer pairs or smaller thumbnails (at most {MAX_SHEET_PIXELS // 10**6} megapixels)")
    sheet = Image.new("RGB", size, (32, 32, 32))
    for k, (image, label) in enumerate(pairs):
        if k >= n:
            break
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[0] == 3 and image.shape[2] != 3:
            image = image.transpose(1, 2, 0)
        label = np.asarray(label).astype(np.uint8)
        r, c = divmod(k, columns)
        x, y = gap + c * (2 * thumb + gap), gap + r * (thumb + gap)
        sheet.paste(Image.fromarray(np.ascontiguousarray(image)).resize((thumb, thumb), Image.BILINEAR), (x, y))
        sheet.paste(Image.fromarray(palette[label]).resize((thumb, thumb), Image.NEAREST), (x + thumb, y))
    return formats.encode_image(np.asarray(sheet))
