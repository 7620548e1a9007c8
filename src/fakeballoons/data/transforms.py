"""Segmentation transforms: one pipeline for every data source, image and mask together.

Transforms take and return the pair ``(tv_tensors.Image, tv_tensors.Mask)``, torchvision.transforms.v2
style, so masks resize with nearest neighbour and stay aligned with their image. ``Augment`` is the
augmentation as data (part of a training recipe). It becomes a per-sample torchvision pipeline for
datasets read through a DataLoader, and :meth:`Augment.apply_batch` does the same to whole batches
already on a GPU (the fast path for scenes rendered there).

Two ways to bring pairs to the training size (``TrainConfig.resize``):

- ``square`` (the report's): every pair resized to ``size`` x ``size``, aspect ratio not kept;
  validation pairs too, so metrics are computed at that size.
- ``short-side`` (the field's, as in torchvision's segmentation references and MMSegmentation):
  a training pair is rescaled, aspect ratio kept, so that its short side is ``size`` times a
  factor drawn from ``Augment.scale``, then a random ``size`` x ``size`` crop is cut (padded with
  black and the ignore index where the picture is smaller). A validation image is rescaled to
  short side ``size`` and its mask is left as it is: the model's predictions are upsampled to
  the mask's own resolution (:func:`fakeballoons.train.loop.evaluate`), masks are never resized.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..names import RESIZES


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device`` without the host waiting for the GPU: on CUDA it goes through
    pinned memory, copied on the current stream (``tensor.to("cuda")`` from pageable memory waits for
    everything queued on the stream first, a full sync in every training step)."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


@dataclass(frozen=True)
class Augment:
    """Random augmentation of training pairs (none by default)."""

    hflip: bool = False  # flip each pair horizontally with probability 0.5
    scale: tuple[float, float] = (1.0, 1.0)  # short-side: the range of the random rescale factor
    jitter: float = 0.0  # brightness, contrast and saturation each scaled by U[1 - j, 1 + j]
    hue: float = 0.0  # hue shifted by U[-h, h] turns (at most 0.5)
    grayscale: float = 0.0  # probability of turning a picture grey

    @property
    def photometric(self) -> bool:
        return self.jitter > 0 or self.hue > 0 or self.grayscale > 0

    def photometric_steps(self) -> list:
        from torchvision.transforms import v2

        steps = []
        if self.jitter > 0 or self.hue > 0:
            steps.append(v2.ColorJitter(brightness=self.jitter, contrast=self.jitter, saturation=self.jitter,
                                        hue=self.hue))
        if self.grayscale > 0:
            steps.append(v2.RandomGrayscale(self.grayscale))
        return steps

    def apply_batch(self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator,
                    ignore_index: int = 255):
        """The augmentation of a batch, images (B, 3, H, W) uint8 and labels (B, H, W), on their
        device; the random draws come from ``generator`` (a CPU generator), so they are reproducible.

        Square pictures with zoom-in scales (``scale`` from 1 up, as the presets' pretraining) or none
        are augmented as whole batches: about 1,500 torch operator calls per batch whatever its
        size, no host-device synchronisation (:func:`augment_batch`). Otherwise each pair goes
        through the same torchvision pipeline as on the CPU, one at a time (about 580 operator
        calls per picture: slow on a GPU; ``fakeballoons bench augment`` measures both)."""
        if self.scale == (1.0, 1.0) and not self.photometric:
            if self.hflip:
                flip = to_device(torch.rand(images.shape[0], generator=generator) < 0.5, images.device)
                images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
                labels = torch.where(flip.view(-1, 1, 1), labels.flip(-1), labels)
            return images, labels
        h, w = images.shape[-2:]
        if h == w and self.scale[0] >= 1.0:
            return augment_batch(images, labels, self, generator)
        from torchvision import tv_tensors

        if self.scale != (1.0, 1.0) and h != w:
            raise ValueError("a random scale of rendered batches needs square pictures")
        pipeline = pair_transforms(h, self, resize="short-side" if self.scale != (1.0, 1.0) else "square",
                                   ignore_index=ignore_index)
        seeds = torch.randint(0, 2**62, (images.shape[0],), generator=generator).tolist()
        out_images, out_labels = [], []
        for image, label, seed in zip(images, labels, seeds):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                x, y = pipeline(tv_tensors.Image(image), tv_tensors.Mask(label))
            out_images.append(x.as_subclass(torch.Tensor))
            out_labels.append(y.as_subclass(torch.Tensor))
        return torch.stack(out_images), torch.stack(out_labels)


# ----------------------------------------------------------------------------- whole batches at once

_GREY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights


def _grey(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) float -> (B, 1, H, W): torchvision's luma."""
    return x[:, 0:1] * _GREY[0] + x[:, 1:2] * _GREY[1] + x[:, 2:3] * _GREY[2]


def shift_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Float RGB pictures in [0, 1] (B, 3, H, W) with their hue turned by ``shift`` (B,) turns, as
    torchvision's ``adjust_hue`` (HSV, hue modulo 1) does for one picture and one shift."""
    maxc, _ = x.max(dim=1)
    minc, _ = x.min(dim=1)
    span = maxc - minc
    flat = span == 0
    safe = torch.where(flat, torch.ones_like(span), span)
    r, g, b = x.unbind(1)
    is_r, is_g = maxc == r, maxc == g
    rise = torch.where(is_r, g - b, torch.where(is_g, b - r, r - g)) / safe  # zero where flat
    sector = torch.where(is_r, 0.0, torch.where(is_g, 2.0, 4.0))
    hue = torch.remainder((sector + rise) / 6.0 + shift.view(-1, 1, 1), 1.0)
    sat = span / torch.where(maxc == 0, torch.ones_like(maxc), maxc)
    # HSV -> RGB without sectors: channel n is v - v s clamp(min(k, 4 - k), 0, 1), k = (n + 6 h) mod 6
    offsets = (5.0 - 2.0 * torch.arange(3, device=x.device, dtype=x.dtype)).view(1, 3, 1, 1)  # made there: no copy
    k = torch.remainder(offsets + 6.0 * hue.unsqueeze(1), 6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)
    return (maxc.unsqueeze(1) * (1.0 - sat.unsqueeze(1) * ramp)).clamp(0.0, 1.0)


def _colour_op(x: torch.Tensor, op: int, factor: torch.Tensor) -> torch.Tensor:
    """One of ColorJitter's four steps on float pictures, a factor per picture: 0 brightness,
    1 contrast (towards the mean luma), 2 saturation (towards each pixel's luma), 3 hue."""
    if op == 3:
        return shift_hue(x, factor)
    f = factor.view(-1, 1, 1, 1)
    if op == 0:
        return (x * f).clamp(0.0, 1.0)
    towards = _grey(x).mean(dim=(1, 2, 3), keepdim=True) if op == 1 else _grey(x)
    return (x * f + towards * (1.0 - f)).clamp(0.0, 1.0)


class BatchDraws(NamedTuple):
    """The random choices of :func:`augment_batch` for a batch of B pictures (CPU tensors)."""

    flip: torch.Tensor  # (B,) bool
    side: torch.Tensor  # (B,) int64: the rescaled side, round(H x U[scale])
    top: torch.Tensor  # (B,) int64: the crop's corner in the rescaled picture
    left: torch.Tensor
    order: torch.Tensor  # (B, 4) int64: ColorJitter's steps (0 brightness .. 3 hue) in the order applied
    factors: torch.Tensor  # (4, B) float: each step's factor (hue: a shift in turns)
    steps: tuple[bool, bool, bool, bool]  # which steps the augmentation has
    grey: torch.Tensor  # (B,) bool


def draw_batch(b: int, h: int, augment: Augment, generator: torch.Generator) -> BatchDraws:
    """The random choices of :func:`augment_batch`, from ``generator``: geometry first (so a
    colour change never moves a label), then colour."""
    if augment.scale[0] < 1.0:
        raise ValueError("augment_batch takes zoom-in scales (from 1 up)")
    flip = torch.rand(b, generator=generator) < 0.5 if augment.hflip else torch.zeros(b, dtype=torch.bool)
    if augment.scale != (1.0, 1.0):
        lo, hi = augment.scale
        side = torch.round(h * (lo + (hi - lo) * torch.rand(b, generator=generator, dtype=torch.float64)))
        side = side.long().clamp(min=h)
        top = (torch.rand(b, generator=generator, dtype=torch.float64) * (side - h + 1)).floor().long()
        left = (torch.rand(b, generator=generator, dtype=torch.float64) * (side - h + 1)).floor().long()
    else:
        side, top, left = torch.full((b,), h), torch.zeros(b, dtype=torch.long), torch.zeros(b, dtype=torch.long)
    j = augment.jitter
    steps = (j > 0, j > 0, j > 0, augment.hue > 0)
    if any(steps):
        order = torch.argsort(torch.rand(b, 4, generator=generator), dim=1)  # a random order per picture
        factors = torch.stack([torch.empty(b).uniform_(max(0.0, 1.0 - j), 1.0 + j, generator=generator)
                               for _ in range(3)] + [torch.empty(b).uniform_(-augment.hue, augment.hue,
                                                                             generator=generator)])
    else:
        order, factors = torch.zeros(b, 0, dtype=torch.long), torch.zeros(4, b)
    grey = torch.rand(b, generator=generator) < augment.grayscale if augment.grayscale > 0 else \
        torch.zeros(b, dtype=torch.bool)
    return BatchDraws(flip, side, top, left, order, factors, steps, grey)


def augment_batch(images: torch.Tensor, labels: torch.Tensor, augment: Augment, generator: torch.Generator,
                  draws: BatchDraws | None = None):
    """``augment`` applied to a batch of square pictures in whole-batch tensor operations.

    The same distribution as the per-pair torchvision pipeline (``pair_transforms`` with
    ``short-side``): each picture rescaled to side round(H x U[scale]) (bilinear, as
    ``F.interpolate``; zoom-in only, so antialiasing changes nothing) and a random H x H crop cut
    from it (its mask by nearest neighbour, as torchvision resizes masks), flipped with probability
    0.5, then ColorJitter's brightness, contrast, saturation and hue in a random order per picture,
    then grey with probability ``grayscale``. The colour steps run in floating point and round once
    at the end (torchvision rounds down to uint8 after each step: a difference of a grey level or
    two). Every random draw (:func:`draw_batch`, or ``draws``) is made on the CPU and sent to the
    device without waiting for it."""
    b, _, h, w = images.shape
    if h != w:
        raise ValueError("augment_batch takes square pictures")
    d = draws if draws is not None else draw_batch(b, h, augment, generator)
    device = images.device
    step = h / d.side.double()  # source pixels per output pixel
    out = torch.arange(h, dtype=torch.float64)
    rows = (d.top.unsqueeze(1) + out) * step.unsqueeze(1)  # (B, H): output row -> rescaled row -> source
    cols = (d.left.unsqueeze(1) + out) * step.unsqueeze(1)
    cols = torch.where(d.flip.unsqueeze(1), cols.flip(1), cols)
    # masks: nearest neighbour as F.interpolate(mode="nearest"): floor(dst * in / out)
    r_idx = to_device(rows.floor().long().clamp(max=h - 1), device)
    c_idx = to_device(cols.floor().long().clamp(max=w - 1), device)
    labels = labels[torch.arange(b, device=device).view(b, 1, 1), r_idx.unsqueeze(2), c_idx.unsqueeze(1)]
    x = images.float() / 255.0
    if augment.scale != (1.0, 1.0) or augment.hflip:
        # pictures: bilinear as F.interpolate(align_corners=False), by grid_sample at the output pixels' centres
        grid_y = (2.0 * (rows + 0.5 * step.unsqueeze(1)) / h - 1.0).float()
        grid_x = (2.0 * (cols + 0.5 * step.unsqueeze(1)) / w - 1.0).float()
        grid = torch.stack(torch.broadcast_tensors(grid_x.unsqueeze(1), grid_y.unsqueeze(2)), dim=-1)
        x = torch.nn.functional.grid_sample(x, to_device(grid, device), mode="bilinear", padding_mode="border",
                                            align_corners=False)
    if any(d.steps):
        factors = to_device(d.factors.float(), device)
        for slot in range(4):
            for op in range(4):
                if not d.steps[op]:
                    continue
                chosen = (d.order[:, slot] == op).nonzero().flatten()  # on the CPU: no device sync
                if len(chosen) == 0:
                    continue
                idx = to_device(chosen, device)
                x.index_copy_(0, idx, _colour_op(x.index_select(0, idx), op, factors[op].index_select(0, idx)))
    if augment.grayscale > 0:
        grey = to_device(d.grey, device)
        x = torch.where(grey.view(b, 1, 1, 1), _grey(x).expand_as(x), x)
    return (x * 255.0).round_().clamp_(0, 255).to(torch.uint8), labels


class _ShortSide:
    """Rescale an image (and, unless ``image_only``, its mask) so that the short side is ``size``
    times a factor drawn uniformly from ``scale``."""

    def __init__(self, size: int, scale: tuple[float, float] = (1.0, 1.0), image_only: bool = False):
        self.size, self.scale, self.image_only = size, scale, image_only

    def __call__(self, image, mask):
        from torchvision.transforms.v2 import functional as TF

        lo, hi = self.scale
        factor = lo + (hi - lo) * torch.rand(()).item() if hi > lo else lo
        h, w = image.shape[-2:]
        short = max(1, round(self.size * factor))
        new = (short, max(1, round(w * short / h))) if h <= w else (max(1, round(h * short / w)), short)
        image = TF.resize(image, list(new), antialias=True)
        if not self.image_only:
            mask = TF.resize(mask, list(new))  # a Mask: nearest neighbour
        return image, mask


def pair_transforms(size: int, augment: Augment | None = None, *, resize: str = "square", train: bool = True,
                    ignore_index: int = 255):
    """The transforms of training (``train``) or validation pairs: resized as ``resize`` says
    (see the module's text), then, for training pairs, ``augment``'s random steps."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    if resize not in RESIZES:
        raise ValueError(f"resize must be one of {RESIZES}, got {resize!r}")
    augment = augment if train and augment is not None else Augment()
    if resize == "square":
        steps = [v2.Resize((size, size), antialias=True)]
    elif train:
        steps = [_ShortSide(size, augment.scale),
                 v2.RandomCrop(size, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: ignore_index})]
    else:
        steps = [_ShortSide(size, image_only=True)]
    if augment.hflip:
        steps.append(v2.RandomHorizontalFlip())
    steps += augment.photometric_steps()
    return v2.Compose(steps)
