"""A preview sheet: a grid of images, each beside its label map in palette colours."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..config import SceneConfig
from . import formats


def preview_sheet(pairs, config: SceneConfig, columns: int = 4, thumb: int = 192) -> bytes:
    """PNG bytes of a grid of (image, label) thumbnails.

    Args:
        pairs: sequence of (image (3, H, W) uint8 tensor or (H, W, 3) array, label (H, W)).
        config: the scene configuration whose label palette colours the label maps.
        columns: image/label pairs per row.
        thumb: thumbnail edge in pixels.
    """
    palette = formats.label_palette(config)
    tiles = []
    for image, label in pairs:
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[0] == 3 and image.shape[2] != 3:
            image = image.transpose(1, 2, 0)
        label = np.asarray(label).astype(np.uint8)
        for arr, resample in ((image, Image.BILINEAR), (palette[label], Image.NEAREST)):
            tiles.append(Image.fromarray(np.ascontiguousarray(arr)).resize((thumb, thumb), resample))
    rows = max(1, -(-len(pairs) // columns))
    gap = 4
    sheet = Image.new("RGB", (columns * (2 * thumb + gap) + gap, rows * (thumb + gap) + gap), (32, 32, 32))
    for k in range(0, len(tiles), 2):
        r, c = divmod(k // 2, columns)
        x, y = gap + c * (2 * thumb + gap), gap + r * (thumb + gap)
        sheet.paste(tiles[k], (x, y))
        sheet.paste(tiles[k + 1], (x + thumb, y))
    return formats.encode_image(np.asarray(sheet))
