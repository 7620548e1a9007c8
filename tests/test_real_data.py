"""Real-data training the field's way: aspect-preserving random scale and crop, flips and colour
jitter that keep image and mask aligned, and evaluation against masks at their own resolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision import tv_tensors

from fakeballoons.data.sources import DataConfig, open_data
from fakeballoons.data.transforms import Augment, pair_transforms
from fakeballoons.train.loop import Dist, evaluate, lr_factor
from fakeballoons.train.run import TrainConfig

PALETTE = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200]], dtype=np.uint8)
SIZES = [(37, 53), (64, 40), (50, 50), (23, 71)]  # (height, width): portrait, landscape, square


def _blocks(h: int, w: int, rng: np.random.Generator, block: int = 8) -> np.ndarray:
    """A label map of class blocks (block x block cells), some cells set to the ignore value 255."""
    cells = rng.integers(0, 3, size=(-(-h // block), -(-w // block)))
    label = np.kron(cells, np.ones((block, block), dtype=np.int64))[:h, :w].astype(np.uint8)
    label[rng.random((h, w)) < 0.02] = 255
    return label


def _folder(root, rng):
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for i, (h, w) in enumerate(SIZES):
            label = _blocks(h, w, rng)
            image = PALETTE[np.minimum(label, 2)]
            Image.fromarray(image).save(root / split / f"im{i}.png")
            Image.fromarray(label).save(root / f"{split}annot" / f"im{i}.png")
    return root


class Constant(nn.Module):
    """Predicts class ``k`` everywhere, at a quarter of the input's resolution (as segmentation models
    do before their final upsampling)."""

    def __init__(self, k: int, classes: int = 3):
        super().__init__()
        self.k, self.classes = k, classes
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        b, _, h, w = x.shape
        out = torch.zeros(b, self.classes, max(1, h // 4), max(1, w // 4)) + self.dummy
        out[:, self.k] = 1.0
        return {"out": out}


@pytest.mark.parametrize("k", [0, 2])
def test_native_evaluation_counts_every_mask_pixel_at_its_own_resolution(tmp_path, k):
    root = _folder(tmp_path / "f", np.random.default_rng(1))
    cfg = TrainConfig(resize="short-side", size=32, batch_size=4, workers=0, bootstrap=10)
    data = open_data(DataConfig(f"folder:{root}", classes=3), size=32, num_train=1, num_val=1, seed=0,
                     resize="short-side")
    assert data.native
    _, per_image = evaluate(Constant(k), data, cfg, torch.device("cpu"), Dist())
    for i, conf in zip(per_image["index"].tolist(), per_image["confusion"]):
        label = np.array(Image.open(root / "valannot" / f"im{i}.png"))
        expected = torch.zeros(3, 3, dtype=conf.dtype)
        for c in range(3):
            expected[c, k] = int((label == c).sum())  # rows: target; every pixel predicted k
        assert torch.equal(conf, expected), (i, SIZES[i])
    # and the square recipe resizes masks (so its counts differ): the check above can fail
    data_sq = open_data(DataConfig(f"folder:{root}", classes=3), size=32, num_train=1, num_val=1, seed=0)
    _, sq = evaluate(Constant(k), data_sq, TrainConfig(size=32, workers=0, bootstrap=10), torch.device("cpu"), Dist())
    assert int(sq["confusion"].sum()) < 32 * 32 * len(SIZES) + 1
    assert int(sq["confusion"].sum()) != int(per_image["confusion"].sum())


@pytest.mark.parametrize("seed", range(12))
def test_training_transforms_keep_image_and_mask_aligned(tmp_path, seed):
    """A mask drawn from the picture itself (its colour) survives scale, crop, padding and flips pixel
    for pixel, and colour jitter leaves the mask and the geometry alone."""
    rng = np.random.default_rng(seed)
    h, w = SIZES[seed % len(SIZES)]
    label = _blocks(h, w, rng, block=12)
    label[label == 255] = 0  # ignore only where padding puts it
    image = torch.from_numpy(PALETTE[label]).permute(2, 0, 1).contiguous()
    mask = torch.from_numpy(label.astype(np.int64))
    geometric = pair_transforms(32, Augment(hflip=True, scale=(0.5, 2.0)), resize="short-side", ignore_index=255)
    torch.manual_seed(seed)
    im, m = geometric(tv_tensors.Image(image), tv_tensors.Mask(mask))
    assert im.shape == (3, 32, 32) and m.shape == (32, 32)
    pixels = im.permute(1, 2, 0).numpy().astype(np.int64)
    ms = m.numpy()
    checked = 0
    for c, colour in enumerate(PALETTE):
        exact = (pixels == colour).all(-1)
        assert (ms[exact] == c).all(), f"class {c} pixels carry other labels"
        checked += int(exact.sum())
    pad = ms == 255
    assert (pixels[pad] == 0).all(), "padding must be black"
    assert checked + int(pad.sum()) >= 0.6 * 32 * 32  # most pixels are class interiors or padding
    # the same draws with colour jitter on top: same mask, same geometry (black padding, class regions)
    full = pair_transforms(32, Augment(hflip=True, scale=(0.5, 2.0), jitter=0.4, hue=0.1, grayscale=0.5),
                           resize="short-side", ignore_index=255)
    torch.manual_seed(seed)
    im2, m2 = full(tv_tensors.Image(image), tv_tensors.Mask(mask))
    assert torch.equal(m2, m)
    assert (im2.permute(1, 2, 0).numpy()[pad] == 0).all()
    assert not torch.equal(im2, im)  # the colours did change


def test_validation_keeps_masks_and_scales_images_to_the_short_side(tmp_path):
    root = _folder(tmp_path / "f", np.random.default_rng(2))
    data = open_data(DataConfig(f"folder:{root}", classes=3), size=20, num_train=1, num_val=1, seed=0,
                     resize="short-side")
    for i, (h, w) in enumerate(SIZES):
        image, label = data.val[i]
        assert tuple(label.shape) == (h, w)
        assert min(image.shape[-2:]) == 20
        assert abs(image.shape[-1] / image.shape[-2] - w / h) < 0.1


def test_train_config_refuses_bad_real_data_options():
    from fakeballoons.errors import ConfigError

    with pytest.raises(ConfigError, match="scale"):
        TrainConfig(scale=(0.5, 2.0))  # needs short-side
    with pytest.raises(ConfigError, match="scale"):
        TrainConfig(resize="short-side", scale=(2.0, 0.5))
    with pytest.raises(ConfigError, match="resize"):
        TrainConfig(resize="crop")
    with pytest.raises(ConfigError, match="hue"):
        TrainConfig(hue=0.7)
    with pytest.raises(ConfigError, match="warmup"):
        TrainConfig(epochs=2, warmup_epochs=3)
    assert "resize" not in TrainConfig().to_dict()  # extensions stay out of configs that do not use them


def test_warm_up_then_poly():
    cfg = TrainConfig(epochs=4, schedule="poly", warmup_epochs=1.0)
    f = [lr_factor(s, cfg, 10) for s in range(40)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(f[:9], f[1:10]))
    assert f[10] == pytest.approx(1.0) and all(a > b for a, b in zip(f[10:39], f[11:40]))
    plain = TrainConfig(epochs=4, schedule="poly")
    assert [lr_factor(s, plain, 10) for s in range(40)] == [(1 - s / 40) ** 0.9 for s in range(40)]


@pytest.mark.parametrize("aug", [Augment(hflip=True, jitter=0.4, hue=0.1),
                                 Augment(hflip=True, scale=(1.0, 2.0), jitter=0.4, grayscale=0.3)])
def test_batch_augmentation_on_rendered_scenes_is_reproducible_and_aligned(aug):
    """The GPU path's batch augmentation (run here on CPU tensors): reproducible from its generator,
    same shapes, and a label map drawn from the picture stays aligned under zoom crops and flips."""
    rng = np.random.default_rng(0)
    label = torch.from_numpy(np.stack([_blocks(32, 32, rng, block=8) for _ in range(4)]).astype(np.int64))
    label[label == 255] = 0
    images = torch.from_numpy(PALETTE[label.numpy()]).permute(0, 3, 1, 2).contiguous()
    a = aug.apply_batch(images, label, torch.Generator().manual_seed(3))
    b = aug.apply_batch(images, label, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].shape == images.shape and a[1].shape == label.shape
    assert not torch.equal(a[0], images)
    geometric = Augment(hflip=aug.hflip, scale=aug.scale)
    im, lb = geometric.apply_batch(images, label, torch.Generator().manual_seed(3))
    pixels = im.permute(0, 2, 3, 1).numpy().astype(np.int64)
    for c, colour in enumerate(PALETTE):
        exact = (pixels == colour).all(-1)
        assert (lb.numpy()[exact] == c).all()
    if aug.scale != (1.0, 1.0):  # both went through the per-pair pipeline: colour draws come after geometry
        assert torch.equal(lb, a[1])  # colour changes leave the labels alone


def _reference(image, label, d, i, augment):
    """Picture i of a batch through torchvision's own functions with the draws ``d``: rescale, crop,
    flip, ColorJitter's steps in the drawn order, grey; in floating point, rounded at the end."""
    from torchvision.transforms.v2 import functional as TF

    h = image.shape[-1]
    side, top, left = int(d.side[i]), int(d.top[i]), int(d.left[i])
    x = TF.resize(tv_tensors.Image(image.float() / 255), [side, side], antialias=True)
    y = TF.resize(tv_tensors.Mask(label), [side, side])
    x, y = x[..., top:top + h, left:left + h], y[..., top:top + h, left:left + h]
    if d.flip[i]:
        x, y = x.flip(-1), y.flip(-1)
    steps = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
    for op in d.order[i].tolist():
        if d.steps[op]:
            x = steps[op](x, float(d.factors[op, i]))
    if d.grey[i]:
        x = TF.rgb_to_grayscale(x, num_output_channels=3)
    return (x.as_subclass(torch.Tensor) * 255).round().clamp(0, 255).to(torch.uint8), y.as_subclass(torch.Tensor)


@pytest.mark.parametrize("aug", [Augment(hflip=True, scale=(1.0, 2.0), jitter=0.4, hue=0.1, grayscale=0.3),
                                 Augment(hflip=True, scale=(1.0, 2.0)),
                                 Augment(jitter=0.3, hue=0.05)])
def test_whole_batch_augmentation_is_torchvisions_picture_by_picture(aug):
    """The batched path of rendered batches (``augment_batch``) gives each picture what
    torchvision's functions give it with the same random choices: masks exactly, pictures within a
    grey level."""
    from fakeballoons.data.transforms import augment_batch, draw_batch

    rng = np.random.default_rng(2)
    b, h = 6, 24
    label = torch.from_numpy(np.stack([_blocks(h, h, rng, block=5) for _ in range(b)]).astype(np.int64))
    images = torch.from_numpy(rng.integers(0, 256, size=(b, 3, h, h), dtype=np.uint8))
    d = draw_batch(b, h, aug, torch.Generator().manual_seed(5))
    out_i, out_l = augment_batch(images, label, aug, torch.Generator(), draws=d)
    assert out_i.dtype == torch.uint8 and out_i.shape == images.shape and out_l.shape == label.shape
    for i in range(b):
        ref_i, ref_l = _reference(images[i], label[i], d, i, aug)
        assert torch.equal(out_l[i], ref_l)
        assert (out_i[i].int() - ref_i.int()).abs().max() <= 1
    # and apply_batch takes this path, with the same draws from the same generator
    a = aug.apply_batch(images, label, torch.Generator().manual_seed(5))
    assert torch.equal(a[0], out_i) and torch.equal(a[1], out_l)


def test_whole_batch_draws_have_the_pipelines_distribution():
    from fakeballoons.data.transforms import draw_batch

    aug = Augment(hflip=True, scale=(1.0, 2.0), jitter=0.4, hue=0.1, grayscale=0.3)
    d = draw_batch(4000, 32, aug, torch.Generator().manual_seed(0))
    assert d.side.min() >= 32 and d.side.max() <= 64 and abs(d.side.double().mean().item() - 48) < 0.5
    assert (d.top >= 0).all() and (d.top <= d.side - 32).all() and (d.left <= d.side - 32).all()
    assert d.top.max() == 32 and d.left.max() == 32  # every offset reachable at the largest scale
    assert abs(d.flip.double().mean().item() - 0.5) < 0.03 and abs(d.grey.double().mean().item() - 0.3) < 0.03
    assert (d.order.sort(dim=1).values == torch.arange(4)).all()  # each row a permutation ...
    assert abs((d.order[:, 0] == 3).double().mean().item() - 0.25) < 0.03  # ... of uniform order
    assert d.factors[:3].min() >= 0.6 and d.factors[:3].max() <= 1.4 and d.factors[3].abs().max() <= 0.1
    assert d.steps == (True, True, True, True)
