"""Every PNG writer against its reader, and all-or-nothing writes."""

import os

import numpy as np
import pytest
from PIL import Image

from fakeballoons import SceneConfig, UserError
from fakeballoons.data import formats


def test_image_round_trip(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    formats.write_files_atomic([(tmp_path / "a.png", formats.encode_image(img))])
    np.testing.assert_array_equal(formats.read_image(tmp_path / "a.png"), img)
    assert Image.open(tmp_path / "a.png").mode == "RGB"


def test_label_palette_png(tmp_path):
    config = SceneConfig()
    label = np.array([[0, 1, 2], [3, 255, 0]], dtype=np.uint8)
    palette = formats.label_palette(config)
    formats.write_files_atomic([(tmp_path / "l.png", formats.encode_label(label, palette))])
    img = Image.open(tmp_path / "l.png")
    assert img.mode == "P"
    np.testing.assert_array_equal(formats.read_label(tmp_path / "l.png"), label)
    rgb = np.asarray(img.convert("RGB"))
    assert [tuple(rgb[0, i]) for i in range(3)] == [(0, 0, 0), (0, 255, 128), (42, 0, 255)]
    assert tuple(rgb[1, 0]) == (255, 0, 42) and tuple(rgb[1, 1]) == (255, 255, 255)


def test_instance_16_bit(tmp_path):
    inst = np.array([[0, 1, 300], [65535, 2, 0]], dtype=np.uint16)
    formats.write_files_atomic([(tmp_path / "i.png", formats.encode_instance(inst))])
    back = formats.read_instance(tmp_path / "i.png")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, inst)


@pytest.mark.parametrize("shape", [(1, 1), (2, 1), (1, 5), (37, 3), (64, 129)])
def test_own_png_writer_against_two_decoders(shape):
    """The package's PNG writer (up filter, ISA-L) for RGB images, 16-bit instance maps and palette
    label maps: libpng (imagecodecs) and Pillow, which also checks every chunk's CRC, read back the
    array (libpng a palette map's colours); extreme values survive the filter's wrap-around."""
    import io

    import imagecodecs

    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    rgb[0, 0] = 255
    rgb[-1, -1] = 0
    grey = rng.integers(0, 65536, shape, dtype=np.uint16)
    grey[0, 0] = 65535
    for array, encode, mode in ((rgb, formats.encode_image, "RGB"), (grey, formats.encode_instance, "I;16")):
        data = encode(array)
        np.testing.assert_array_equal(imagecodecs.png_decode(data), array)
        Image.open(io.BytesIO(data)).verify()
        img = Image.open(io.BytesIO(data))
        assert img.mode.startswith(mode.split(";")[0])
        np.testing.assert_array_equal(np.asarray(img).astype(array.dtype), array)
    label = rng.integers(0, 256, shape, dtype=np.uint8)
    label[0, 0] = 255
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    data = formats.encode_label(label, palette)
    np.testing.assert_array_equal(imagecodecs.png_decode(data), palette[label])
    Image.open(io.BytesIO(data)).verify()
    img = Image.open(io.BytesIO(data))
    assert img.mode == "P" and np.array_equal(np.asarray(img), label)
    assert np.array_equal(np.asarray(img.getpalette(), dtype=np.uint8).reshape(-1, 3), palette)


def test_encoders_check_dtypes():
    with pytest.raises(ValueError):
        formats.encode_image(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError):
        formats.encode_label(np.zeros((4, 4), np.int64), formats.label_palette(SceneConfig()))
    with pytest.raises(ValueError):
        formats.encode_instance(np.zeros((4, 4), np.uint8))


def test_encoding_is_deterministic():
    img = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert formats.encode_image(img) == formats.encode_image(img.copy())


def test_atomic_group_leaves_nothing_on_failure(tmp_path):
    (tmp_path / "keep.png").write_bytes(b"old")
    with pytest.raises(UserError, match="does not exist"):
        formats.write_files_atomic([(tmp_path / "keep.png", b"new"), (tmp_path / "no" / "x.png", b"x")])
    assert (tmp_path / "keep.png").read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["keep.png"]


def test_corrupt_and_missing_files(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(UserError, match="cannot read image"):
        formats.read_image(tmp_path / "bad.png")
    with pytest.raises(UserError, match="file not found"):
        formats.read_label(tmp_path / "none.png")
