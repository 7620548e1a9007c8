"""Segmentation transforms: one pipeline for every data source, image and mask together.

Transforms take and return the pair ``(tv_tensors.Image, tv_tensors.Mask)``, torchvision.transforms.v2
style, so masks resize with nearest neighbour and stay aligned with their image. ``Augment`` is the
augmentation as data (part of a training recipe). It becomes a per-sample torchvision pipeline for
datasets read through a DataLoader, and :meth:`Augment.apply_batch` does the same to whole batches
already on a GPU (the fast path for scenes rendered there).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Augment:
    """Random augmentation of training pairs (none by default)."""

    hflip: bool = False  # flip each pair horizontally with probability 0.5

    def apply_batch(self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        """The augmentation of a batch, images (B, 3, H, W) and labels (B, H, W), on their device;
        the random draws come from ``generator`` (a CPU generator), so they are reproducible."""
        if self.hflip:
            flip = (torch.rand(images.shape[0], generator=generator) < 0.5).to(images.device)
            images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
            labels = torch.where(flip.view(-1, 1, 1), labels.flip(-1), labels)
        return images, labels


def pair_transforms(size: int, augment: Augment | None = None):
    """Resize to ``size`` x ``size`` (masks with nearest neighbour), then ``augment``'s random steps."""
    from torchvision.transforms import v2

    steps = [v2.Resize((size, size), antialias=True)]
    if augment is not None and augment.hflip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps)
