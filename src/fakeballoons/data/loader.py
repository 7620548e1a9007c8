"""Batches of a dataset for training and evaluation, in an order that is a pure function of (seed, epoch).

``batches`` is the one way the training loop reads data. Datasets read through a DataLoader get
their per-sample transforms there; scenes rendered on the fly are, on a GPU, rendered in whole
batches on the device and augmented there (``Augment.apply_batch``): the fast path lives here, in
the data layer, and the loop does not know which one it gets.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..errors import UserError
from .transforms import Augment, to_device

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # images uint8 (B,3,H,W), labels int64 (B,H,W), indices (B,)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of everything random in one epoch of a run (data order, augmentation, dropout)."""
    return seed * 1_000_003 + epoch


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """A shuffled order of n samples that is a pure function of (seed, epoch)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed(seed, epoch))).tolist()


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of sample ``index``'s random transforms in an epoch."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, np.uint64)[0] >> 1)


class _Indexed(Dataset):
    """The dataset's pairs with their indices, for per-image metrics that survive any batching.

    Each sample's random transforms draw from torch's generator seeded by (seed, epoch, index)
    inside a forked random state: augmentation is a pure function of the sample, whatever the
    worker count, batch order or other users of torch's global generator.
    """

    def __init__(self, ds, seed: int, epoch: int):
        self.ds, self.seed, self.epoch = ds, seed, epoch

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(self.seed, self.epoch, i))
            image, label = self.ds[i]
        return torch.as_tensor(image), torch.as_tensor(label), i


def batches(ds: Dataset, batch_size: int, *, train: bool, seed: int, epoch: int, device: torch.device,
            augment: Augment = Augment(), workers: int = 0, rank: int = 0, world: int = 1,
            skip: int = 0) -> Iterator[Batch]:
    """(images, labels, dataset indices) on ``device``, shuffled by (seed, epoch) when ``train``.

    With several processes each takes every world-th sample. A training epoch drops its last
    partial batch (if there is a full one). Datasets that render on a GPU (``render_indices``) do
    so there when ``device`` is CUDA, and get ``augment`` applied to whole batches. ``skip``
    batches are left out at the start, never read or rendered: the rest of an epoch resumed
    mid-way is the same as in an uninterrupted one.
    """
    n = len(ds)
    order = epoch_order(n, seed, epoch) if train else list(range(n))
    if device.type == "cuda" and hasattr(ds, "render_indices"):
        yield from _rendered_on_device(ds, order[rank::world], batch_size, train, seed, epoch, device, augment, skip)
        return
    if world > 1:
        sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=train, seed=seed)
        sampler.set_epoch(epoch)
        sampler = list(sampler)
    else:
        sampler = order
    sampler = sampler[skip * batch_size:]
    full = train and n >= batch_size  # an epoch of full batches only (a resumed one too)
    loader = DataLoader(_Indexed(ds, seed, epoch), batch_size=batch_size, sampler=sampler, num_workers=workers,
                        drop_last=full, pin_memory=device.type == "cuda")
    try:
        for images, labels, idx in loader:
            yield (images.to(device, non_blocking=True), labels.to(device, non_blocking=True),
                   idx.to(device, non_blocking=True))
    except UserError as exc:  # from a worker, torch wraps it in its traceback: keep the one line
        raise UserError(str(exc).strip().splitlines()[-1].split("UserError: ", 1)[-1]) from None


def _rendered_on_device(ds, mine: list[int], batch_size: int, train: bool, seed: int, epoch: int,
                        device: torch.device, augment: Augment, skip: int = 0) -> Iterator[Batch]:
    stop = len(mine) - len(mine) % batch_size if train and len(mine) >= batch_size else len(mine)
    for start in range(skip * batch_size, stop, batch_size):
        idx = mine[start:start + batch_size]
        images, labels = ds.render_indices(idx, device="cuda")
        if train:  # each batch's draws seeded by its place in the epoch: a resumed epoch draws the same
            generator = torch.Generator().manual_seed(sample_seed(seed, epoch, start))
            images, labels = augment.apply_batch(images, labels, generator, int(ds.ignore_index))
        yield images, labels, to_device(torch.tensor(idx), device)
