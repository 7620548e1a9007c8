"""torch Datasets over rendered scenes: on the fly, or from a directory.

Every dataset yields ``(image, label)``. With ``transforms=None``, image is a uint8 tensor
(3, H, W) and label an int64 tensor (H, W) at native size, 255 = ignore. A transform takes and
returns the pair, torchvision.transforms.v2 style: it is called as
``transforms(tv_tensors.Image(image), tv_tensors.Mask(label))``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..config import DEFAULT_CLASSES, ClassPrior, SceneConfig
from ..errors import ConfigError, UserError
from ..render import render, render_sampled, set_threads
from ..scene import Scene, sample_scene
from . import formats
from .recipe import Layout, Recipe

Transforms = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def to_tensors(image: np.ndarray, label: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, W, 3) uint8 and (H, W) uint8 arrays -> (3, H, W) uint8 and (H, W) int64 tensors."""
    return (torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            torch.from_numpy(label.astype(np.int64)))


def apply_transforms(transforms: Transforms | None, image: torch.Tensor, label: torch.Tensor):
    if transforms is None:
        return image, label
    from torchvision import tv_tensors

    return transforms(tv_tensors.Image(image), tv_tensors.Mask(label))


def _one_thread_in_loader_workers() -> None:
    """In a DataLoader worker, render on one thread: the workers already use the cores."""
    info = torch.utils.data.get_worker_info()
    if info is not None and getattr(_one_thread_in_loader_workers, "worker", None) != info.id:
        set_threads(1)
        _one_thread_in_loader_workers.worker = info.id


class FakeBalloons(Dataset):
    """Scenes rendered on the fly; sample i is file i of ``generate`` with the same recipe.

    Args:
        config: scene configuration (default: the report's scenes).
        num: size of the whole dataset (train + val), as ``generate --num``.
        seed: dataset seed.
        split: "train" (the first indices), "val" (the last round(num * val_fraction)) or "all".
        val_fraction: as ``generate --val-fraction``.
        transforms: callable on (image, label), torchvision.transforms.v2 style.
    """

    def __init__(self, config: SceneConfig | None = None, *, num: int = 10_000, seed: int = 0,
                 split: str = "train", val_fraction: float = 0.1, transforms: Transforms | None = None):
        self.recipe = Recipe(config or SceneConfig(), num=num, seed=seed, val_fraction=val_fraction)
        self.config = self.recipe.config
        self.split = split
        self.indices = self.recipe.split_range(split)
        self.transforms = transforms
        self.classes = ["background"] + [c.name for c in self.config.classes]
        self.ignore_index = self.config.antialias.ignore_index

    @classmethod
    def like(cls, root: str | Path, split: str = "train", transforms: Transforms | None = None) -> FakeBalloons:
        """The on-the-fly twin of a generated directory (same config, seed, size and splits)."""
        recipe = Recipe.from_manifest(formats.read_json(Path(root) / "dataset.json", "dataset manifest"))
        return cls(recipe.config, num=recipe.num, seed=recipe.seed, split=split,
                   val_fraction=recipe.val_fraction, transforms=transforms)

    def __len__(self) -> int:
        return len(self.indices)

    def scene(self, i: int) -> Scene:
        return sample_scene(self.config, self.recipe.seed, self.indices[i])

    def __getitem__(self, i: int):
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} samples")
        _one_thread_in_loader_workers()
        sample = render(self.scene(i), self.config)
        return apply_transforms(self.transforms, *to_tensors(sample.image, sample.label))

    def batches(self, batch_size: int, *, device: str = "cuda", shuffle: bool = False, seed: int = 0,
                epoch: int = 0, drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Whole batches rendered in one launch, left on ``device``; no host round trip on CUDA.

        Yields:
            images (B, 3, H, W) uint8 and labels (B, H, W) int64. Transforms are not applied;
            a GPU training loop does its own (resizing, normalisation) on the batch.
        """
        from .loader import epoch_order

        if batch_size < 1:
            raise ConfigError("batch_size", f"must be >= 1, got {batch_size}")
        n = len(self)
        order = epoch_order(n, seed, epoch) if shuffle else list(range(n))
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            yield self.render_indices(order[start:start + batch_size], device)

    def render_indices(self, indices: Sequence[int], device: str = "cuda") -> tuple[torch.Tensor, torch.Tensor]:
        """Samples ``indices`` (of this split) rendered in one launch: (B, 3, H, W) uint8, (B, H, W) int64."""
        batch = render_sampled(self.config, self.recipe.seed, [self.indices[i] for i in indices], device=device)
        if isinstance(batch.image, torch.Tensor):
            images, labels = batch.image, batch.label
        else:  # CPU, or the CUDA simulator: NumPy arrays
            images, labels = torch.from_numpy(batch.image), torch.from_numpy(batch.label)
        return images.permute(0, 3, 1, 2).contiguous(), labels.long()


class FakeBalloonsFolder(Dataset):
    """A generated directory (png or voc format), or the report's original published format.

    The original format is a flat folder of ``<id>.png`` images and ``<id>.label.png`` label
    images whose colours are HSL(h_k, 1, 0.5): (0, 255, 128) -> 1, (42, 0, 255) -> 2,
    (255, 0, 42) -> 3, black -> 0, and any other (blended edge) colour -> 255. It has no splits:
    the ids sorted, the last tenth is "val" (as the report set a tenth aside), the rest "train".

    Args:
        root: the directory.
        split: "train", "val" or "all".
        transforms: callable on (image, label), torchvision.transforms.v2 style.
        classes: class priors whose colours decode an original-format folder (default: the report's).
    """

    def __init__(self, root: str | Path, split: str = "train", transforms: Transforms | None = None,
                 classes: Sequence[ClassPrior] = DEFAULT_CLASSES):
        self.root = Path(root)
        self.split = split
        self.transforms = transforms
        if not self.root.is_dir():
            raise UserError(f"dataset directory not found: {self.root}")
        manifest = self.root / "dataset.json"
        if manifest.exists():
            recipe = Recipe.from_manifest(formats.read_json(manifest, "dataset manifest"), str(manifest))
            layout = Layout(self.root, recipe)
            self.items = _SampleFiles(layout, recipe.split_range(split))  # computed per index, not listed
            self.original = False
            self.config = recipe.config
            self.layout = layout
        else:
            labels = sorted(self.root.glob("*.label.png"))
            if not labels:
                raise UserError(f"{self.root} holds neither a dataset.json nor <id>.label.png files")
            ids = [p.name[: -len(".label.png")] for p in labels]
            n_val = int(round(len(ids) * 0.1))
            chosen = {"train": ids[: len(ids) - n_val], "val": ids[len(ids) - n_val:], "all": ids}
            if split not in chosen:
                raise UserError(f"split must be 'train', 'val' or 'all', got {split!r}")
            self.items = [(self.root / f"{i}.png", self.root / f"{i}.label.png") for i in chosen[split]]
            self.original = True
            self.config = SceneConfig(classes=tuple(classes))
        self.classes = ["background"] + [c.name for c in self.config.classes]
        self.ignore_index = self.config.antialias.ignore_index
        self.colours = self.config.label_colours

    def __len__(self) -> int:
        return len(self.items)

    def check(self) -> None:
        """Before training: a generated dataset is complete, and every file's header is readable
        and has the size the dataset says (an image's label map, the configured size)."""
        if not self.original:
            from .verify import incomplete_chunks

            missing, _ = incomplete_chunks(self.layout)
            if missing:
                raise UserError(f"{self.root} is an unfinished dataset ({missing} of {self.layout.recipe.num_chunks} "
                                "chunks incomplete); rerun the generate command that made it")
        for image_path, label_path in self.items:
            image = formats.image_size(image_path)
            want = image if self.original else (self.config.height, self.config.width)
            for path, got in ((image_path, image), (label_path, formats.image_size(label_path))):
                if got != want:
                    raise UserError(f"{path}: size {got} differs from the expected {want}")

    def __getitem__(self, i: int):
        image_path, label_path = self.items[i]
        image = formats.read_image(image_path)
        if self.original:
            label = decode_colour_label(formats.read_image(label_path), self.colours)
        else:
            label = formats.read_label(label_path)
        return apply_transforms(self.transforms, *to_tensors(image, label))


class _SampleFiles(Sequence):
    """The (image, label) paths of a generated dataset's samples ``indices``, made when asked for:
    a manifest's sample count costs no memory before any file is read."""

    def __init__(self, layout: Layout, indices: range):
        self.layout, self.indices = layout, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        files = self.layout.sample_files(self.indices[i])
        return files["image"], files["label"]


def decode_colour_label(rgb: np.ndarray, colours: Sequence[tuple[int, int, int]], ignore: int = 255) -> np.ndarray:
    """(H, W, 3) colour label image -> (H, W) uint8: black 0, colour k -> k, anything else ignore."""
    key = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    label = np.full(key.shape, ignore, dtype=np.uint8)
    label[key == 0] = 0
    for k, (r, g, b) in enumerate(colours, start=1):
        label[key == ((r << 16) | (g << 8) | b)] = k
    return label
