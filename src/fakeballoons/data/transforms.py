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

import torch


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device`` without the host waiting for the GPU: on CUDA it goes through
    pinned memory, copied on the current stream (``tensor.to("cuda")`` from pageable memory waits for
    everything queued on the stream first, a full sync in every training step)."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


RESIZES = ("square", "short-side")


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
        """The augmentation of a batch, images (B, 3, H, W) and labels (B, H, W), on their device;
        the random draws come from ``generator`` (a CPU generator), so they are reproducible.
        Flips alone are applied to the whole batch at once; with a random scale or colour changes
        each pair goes through the same torchvision pipeline as on the CPU (on the device): rescaled
        (short side H x U[scale]) and cropped back to H x W, flipped, recoloured."""
        if self.scale == (1.0, 1.0) and not self.photometric:
            if self.hflip:
                flip = to_device(torch.rand(images.shape[0], generator=generator) < 0.5, images.device)
                images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
                labels = torch.where(flip.view(-1, 1, 1), labels.flip(-1), labels)
            return images, labels
        from torchvision import tv_tensors

        h, w = images.shape[-2:]
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
