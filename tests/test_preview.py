"""preview_sheet: streamed pairs, bounded size, the same sheet as before for a list."""

import gc
import weakref

import numpy as np
import pytest

from fakeballoons import SceneConfig, UserError
from fakeballoons.data import formats
from fakeballoons.data.preview import preview_sheet

CONFIG = SceneConfig(height=32, width=32)


def test_pairs_are_drawn_as_they_come(tmp_path):
    """A generator of pairs is consumed one at a time: no earlier full-size pair is still held
    when the next is made (--count 900 at 512x512 once peaked at 4.4 GB)."""
    alive = []

    def pairs():
        for k in range(6):
            gc.collect()  # the consumer may still hold the pair before this one, no earlier
            assert not any(ref() is not None for ref in alive[:-1]), f"pair {k - 2} is still held"
            image = np.full((32, 32, 3), 40 * k, np.uint8)
            alive.append(weakref.ref(image))
            pair = (image, np.full((32, 32), k % 4, np.uint8))
            del image
            yield pair
            del pair

    path = tmp_path / "s.png"
    path.write_bytes(preview_sheet(pairs(), CONFIG, columns=3, thumb=16, count=6))
    assert formats.read_image(path).shape == (2 * 20 + 4, 3 * 36 + 4, 3)


def test_a_sheet_past_the_limit_is_refused_before_drawing():
    with pytest.raises(UserError, match="ask for fewer pairs or smaller thumbnails"):
        preview_sheet(iter(()), CONFIG, columns=4, thumb=1024, count=1000)


def test_a_list_gives_the_sheet_it_always_did(tmp_path):
    pairs = [(np.full((32, 32, 3), 200, np.uint8), np.ones((32, 32), np.uint8))] * 5
    path = tmp_path / "s.png"
    path.write_bytes(preview_sheet(pairs, CONFIG, columns=2, thumb=16))
    sheet = formats.read_image(path)
    assert sheet.shape == (3 * 20 + 4, 2 * 36 + 4, 3)
    assert (sheet[4, 4] == 200).all() and tuple(sheet[4, 4 + 16]) == CONFIG.label_colours[0]
    assert (sheet[-10, -10] == 32).all()  # the sixth place stays background
