"""Training data: resolve a DATA argument to train/val datasets and iterate batches with indices.

DATA is one of

- ``synthetic:perlin`` or ``synthetic:sc``: rendered on the fly at the training size (on the GPU
  when training on one), ``num_train`` + ``num_val`` pairs;
- a directory: a generated dataset or the report's original format (``FakeBalloonsFolder``);
- ``coco:ROOT``: COCO 2017 as VOC-20 (``CocoVOC``), ``num_train`` / ``num_val`` images sampled;
- ``voc:ROOT``: Pascal VOC 2012 (the directory holding ``VOCdevkit``);
- ``folder:ROOT``: ``ROOT/{train,trainannot,val,valannot}`` image/mask folders
  (``SegmentationFolder``), with ``FolderOptions`` (number of classes, ignore value, remap).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..config import SceneConfig
from ..data.datasets import FakeBalloons, FakeBalloonsFolder, epoch_order
from ..errors import UserError
from .config import TrainConfig

SYNTHETIC = "synthetic:"


@dataclass(frozen=True)
class FolderOptions:
    """What a ``folder:`` DATA needs to know about its masks."""

    num_classes: int | None = None
    ignore_index: int = 255
    remap: str | None = None  # "11:255,3:1"


@dataclass
class Data:
    train: Dataset
    val: Dataset
    classes: list[str]  # names, background first; the model has len(classes) outputs
    ignore_index: int
    synthetic: bool


def _resize_transforms(size: int, hflip: bool):
    from torchvision.transforms import v2

    steps = [v2.Resize((size, size), antialias=True)]  # masks (tv_tensors.Mask) resize with nearest
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps)


def build_data(spec: str, cfg: TrainConfig, scene: SceneConfig | None = None,
               folder: FolderOptions = FolderOptions()) -> Data:
    """Train and val datasets for DATA ``spec``."""
    from ..data.downstream import CocoVOC, PascalVOC, SegmentationFolder, parse_remap

    train_t, val_t = _resize_transforms(cfg.size, cfg.hflip), _resize_transforms(cfg.size, False)
    if spec.startswith("coco:"):
        root = spec[len("coco:"):]
        train = CocoVOC(root, "train", limit=cfg.num_train, seed=cfg.seed, transforms=train_t)
        val = CocoVOC(root, "val", limit=cfg.num_val, seed=cfg.seed, transforms=val_t)
        return Data(train, val, train.classes, 255, synthetic=False)
    if spec.startswith("voc:"):
        root = spec[len("voc:"):]
        train, val = PascalVOC(root, "train", train_t), PascalVOC(root, "val", val_t)
        return Data(train, val, train.classes, 255, synthetic=False)
    if spec.startswith("folder:"):
        root = Path(spec[len("folder:"):])
        if folder.num_classes is None:
            raise UserError("DATA folder:... needs --classes K (the number of classes, background included)")
        kw = dict(num_classes=folder.num_classes, ignore_index=folder.ignore_index, remap=parse_remap(folder.remap))
        train = SegmentationFolder(root / "train", root / "trainannot", transforms=train_t, **kw)
        val = SegmentationFolder(root / "val", root / "valannot", transforms=val_t, **kw)
        train.check_labels()
        val.check_labels()
        return Data(train, val, train.classes, folder.ignore_index, synthetic=False)
    if spec.startswith(SYNTHETIC):
        noise = spec[len(SYNTHETIC):]
        base = scene or SceneConfig()
        try:
            config = base.replace(noise=noise, height=cfg.size, width=cfg.size)
        except UserError as exc:
            raise UserError(f"DATA {spec!r}: {exc}") from None
        num = cfg.num_train + cfg.num_val
        kw = dict(num=num, seed=cfg.seed, val_fraction=cfg.num_val / num)
        train = FakeBalloons(config, split="train", **kw)
        val = FakeBalloons(config, split="val", **kw)
        return Data(train, val, train.classes, train.ignore_index, synthetic=True)
    root = Path(spec)
    if not root.exists():
        raise UserError(f"DATA {spec} does not exist (give a dataset directory or synthetic:perlin|sc)")
    train = FakeBalloonsFolder(root, "train", transforms=train_t)
    val = FakeBalloonsFolder(root, "val", transforms=val_t)
    if len(train) == 0 or len(val) == 0:
        raise UserError(f"DATA {spec}: the train and val splits must both be non-empty "
                        f"(have {len(train)} and {len(val)})")
    return Data(train, val, train.classes, train.ignore_index, synthetic=False)


class _Indexed(Dataset):
    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        image, label = self.ds[i]
        return torch.as_tensor(image), torch.as_tensor(label), i


def batches(ds: Dataset, cfg: TrainConfig, *, train: bool, epoch: int, device: torch.device,
            rank: int = 0, world: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(images uint8 (B,3,H,W), labels int64 (B,H,W), dataset indices (B,)) on ``device``.

    The order is a pure function of (seed, epoch): the same in an uninterrupted and a resumed run.
    With several processes each takes every world-th sample. Synthetic data on CUDA is rendered
    there in whole batches.
    """
    n = len(ds)
    order = epoch_order(n, cfg.seed, epoch) if train else list(range(n))
    if isinstance(ds, FakeBalloons) and device.type == "cuda":
        mine = order[rank::world]
        stop = len(mine) - len(mine) % cfg.batch_size if train and len(mine) >= cfg.batch_size else len(mine)
        for start in range(0, stop, cfg.batch_size):
            idx = mine[start:start + cfg.batch_size]
            images, labels = ds.render_indices(idx, device="cuda")
            yield images, labels, torch.tensor(idx, device=device)
        return
    if world > 1:
        sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=train, seed=cfg.seed)
        sampler.set_epoch(epoch)
        loader_order = None
    else:
        sampler, loader_order = None, order
    loader = DataLoader(_Indexed(ds), batch_size=cfg.batch_size, sampler=sampler or loader_order,
                        num_workers=cfg.workers, drop_last=train and n >= cfg.batch_size,
                        pin_memory=device.type == "cuda", persistent_workers=False)
    for images, labels, idx in loader:
        yield (images.to(device, non_blocking=True), labels.to(device, non_blocking=True),
               idx.to(device, non_blocking=True))
