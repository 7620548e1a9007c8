"""Data sources: a DATA string resolved once, by one table from prefix to dataset factory.

``DataConfig`` is the data part of a training run (written into its ``config.json``). Its
``source`` is one of

- ``synthetic`` or ``synthetic:NOISE``: scenes rendered on the fly (``FakeBalloons``) with the
  run's scene configuration (``scene``, default: the report's), at the training size, the noise
  function set by NOISE if given; on a GPU they are rendered there in whole batches;
- ``coco:ROOT``: COCO 2017 as VOC-20 (``CocoVOC``), ``num_train`` / ``num_val`` images sampled;
- ``voc:ROOT``: Pascal VOC 2012 (the directory holding ``VOCdevkit``);
- ``folder:ROOT``: ``ROOT/{train,trainannot,val,valannot}`` image/mask folders
  (``SegmentationFolder``), which need ``classes`` (and may set ``ignore_index`` and ``remap``);
- a directory: a generated dataset or a folder in the report's original format (``FakeBalloonsFolder``).

Adding a source is one row of ``SOURCES``. Every source gets the same ``(image, mask)``
transforms (:mod:`.transforms`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from torch.utils.data import Dataset

from ..codec import check_number, extension
from ..config import NOISE_FUNCTIONS, SceneConfig, canonical_noise
from ..errors import ConfigError, UserError
from ..names import DATA_KINDS
from .transforms import Augment, pair_transforms


@dataclass(frozen=True)
class DataConfig:
    """Where a run's training and validation pairs come from."""

    source: str
    scene: SceneConfig | None = None  # synthetic: the scene configuration (default: the report's)
    classes: int | None = None  # folder: the number of classes, background included
    ignore_index: int = 255  # folder: the mask value to ignore
    remap: tuple[tuple[int, int], ...] = ()  # folder: mask values to replace first, e.g. ((11, 255),)
    # photographs (not synthetic): the share of the training split held out, trained on by no run and
    # scored instead of val, to choose learning rates and designs without looking at val (0: none)
    holdout: float = extension(0.0)
    # photographs: the share of the (remaining) training split trained on, e.g. 0.1 for a tenth
    fraction: float = extension(1.0)

    def __post_init__(self):
        kind, arg = split_source(self.source)
        SOURCES[kind].check(arg)
        if kind == "folder" and self.classes is None:
            raise ConfigError("classes", "DATA folder:... needs the number of classes, background included")
        if self.classes is not None and not 1 <= self.classes <= 255:
            raise ConfigError("classes", f"must be from 1 to 255, got {self.classes}")
        if not 0 <= self.ignore_index <= 255:
            raise ConfigError("ignore_index", f"must be from 0 to 255, got {self.ignore_index}")
        for a, b in self.remap:
            if not (0 <= a <= 255 and 0 <= b <= 255):
                raise ConfigError("remap", f"values must be in 0..255, got {a}:{b}")
        if self.scene is not None and kind != "synthetic":
            raise ConfigError("scene", f"a scene configuration is for synthetic data, not {self.source!r}")
        check_number("holdout", self.holdout, 0.0, 0.9)
        check_number("fraction", self.fraction, 0.0, 1.0)
        if self.fraction == 0:
            raise ConfigError("fraction", "must be above 0 (the share of the training photographs trained on)")
        if kind == "synthetic" and (self.holdout or self.fraction != 1):
            raise ConfigError("holdout" if self.holdout else "fraction", "is for photographs; rendered scenes have "
                                                                          "--num-train and --num-val")

    @property
    def kind(self) -> str:
        """The source's row of ``SOURCES``: "synthetic", "coco", "voc", "folder" or "directory"."""
        return split_source(self.source)[0]


@dataclass
class Data:
    """The opened datasets of a run; each yields (image uint8 (3, H, W), label int64 (H, W))."""

    train: Dataset
    val: Dataset
    classes: list[str]  # names, background first; the model has len(classes) outputs
    ignore_index: int
    augment: Augment = field(default_factory=Augment)  # for batches rendered on a GPU
    native: bool = False  # validation pairs at their own sizes (masks not resized): evaluated one at a time


@dataclass(frozen=True)
class Request:
    """What a source factory is asked for: one split, at one size (``open_data`` sets the transforms)."""

    data: DataConfig
    arg: str  # the text after "prefix:"
    split: str  # "train" or "val"
    size: int
    num_train: int  # synthetic: training pairs; coco: training images sampled
    num_val: int  # synthetic: validation pairs; coco: validation images sampled
    seed: int


@dataclass(frozen=True)
class Source:
    """One kind of data: ``open(request) -> Dataset``, and a check of its argument."""

    open: Callable[[Request], Dataset]
    help: str
    check: Callable[[str], None] = lambda arg: None


def synthetic_scene(data: DataConfig, size: int) -> SceneConfig:
    """The scene configuration rendered for synthetic DATA at training size ``size``."""
    noise = split_source(data.source)[1]
    changes = {"height": size, "width": size}
    if noise:
        changes["noise"] = canonical_noise(noise)
    return (data.scene or SceneConfig()).replace(**changes)


def _synthetic(req: Request) -> Dataset:
    from .datasets import FakeBalloons
    from .recipe import MAX_NUM

    # training pairs are indices [0, num_train), validation pairs the num_val after them
    num = req.num_train + req.num_val
    if num > MAX_NUM:
        raise ConfigError("num_train", f"with num_val, at most {MAX_NUM} synthetic pairs in all; got "
                                       f"{req.num_train} + {req.num_val}")
    return FakeBalloons(synthetic_scene(req.data, req.size), num=num, seed=req.seed, split=req.split,
                        val_fraction=req.num_val / num)


def _check_noise(noise: str) -> None:
    if noise and canonical_noise(noise) is None:
        raise ConfigError("source", f"synthetic:NOISE takes a noise function, one of {list(NOISE_FUNCTIONS)}; "
                                    f"got {noise!r}")


def _coco(req: Request) -> Dataset:
    from .downstream import CocoVOC

    limit = req.num_train if req.split == "train" else req.num_val
    return CocoVOC(req.arg, req.split, limit=limit, seed=req.seed)


def _voc(req: Request) -> Dataset:
    from .downstream import PascalVOC

    return PascalVOC(req.arg, req.split)


def _folder(req: Request) -> Dataset:
    from .downstream import SegmentationFolder

    root = Path(req.arg)
    d = req.data
    return SegmentationFolder(root / req.split, root / f"{req.split}annot", num_classes=d.classes,
                              ignore_index=d.ignore_index, remap=dict(d.remap),
                              class_names=_class_names(root, d.classes))


def _class_names(root: Path, classes: int) -> list[str] | None:
    """The names in ROOT/classes.json (``{"classes": [name, ...]}``, optional), for reports."""
    path = root / "classes.json"
    if not path.exists():
        return None
    from . import formats

    data = formats.read_json(path, "class names")
    names = data.get("classes") if isinstance(data, dict) else None
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise UserError(f'{path} must hold {{"classes": [name, ...]}}; fix or remove it')
    if len(names) != classes:
        raise UserError(f"{path} names {len(names)} classes but --classes is {classes}; make them agree")
    return names


def _directory(req: Request) -> Dataset:
    from .datasets import FakeBalloonsFolder

    root = Path(req.arg)
    if not root.exists():
        raise UserError(f"DATA {req.arg} does not exist (give a dataset directory, synthetic:NOISE, "
                        f"or one of {', '.join(p + ':ROOT' for p in SOURCES if p not in ('synthetic', 'directory'))})")
    return FakeBalloonsFolder(root, req.split)


def _check_path(arg: str) -> None:
    if not arg:
        raise ConfigError("source", "needs a path after the prefix, e.g. folder:/data/camvid")


#: Every kind of data, by DATA prefix ("directory" is DATA without a known prefix).
SOURCES: dict[str, Source] = {
    "synthetic": Source(_synthetic, DATA_KINDS["synthetic"], _check_noise),
    "coco": Source(_coco, DATA_KINDS["coco"], _check_path),
    "voc": Source(_voc, DATA_KINDS["voc"], _check_path),
    "folder": Source(_folder, DATA_KINDS["folder"], _check_path),
    "directory": Source(_directory, DATA_KINDS["directory"], _check_path),
}


def split_source(source: str) -> tuple[str, str]:
    """("synthetic", "perlin") of "synthetic:perlin"; ("directory", PATH) of a path without a known prefix."""
    prefix, sep, rest = source.partition(":")
    if prefix in SOURCES and prefix != "directory":
        return prefix, rest
    return "directory", source


def same_place(a: str, b: str) -> bool:
    """Whether two DATA strings name the same data: equal, or of one kind with paths that lead to the
    same directory (``folder:sbd`` typed in /data and ``folder:/data/sbd``, or a path through a
    symbolic link). Relative paths are taken from the current directory."""
    if a == b:
        return True
    (kind_a, path_a), (kind_b, path_b) = split_source(a), split_source(b)
    if kind_a != kind_b or kind_a == "synthetic":
        return False
    try:
        return os.path.samefile(path_a, path_b)
    except (OSError, ValueError):  # either path gone, or not a path at all
        return False


def spelt_like(there: DataConfig | None, here: DataConfig | None) -> DataConfig | None:
    """``there`` with ``here``'s spelling of its source where both name the same data
    (:func:`same_place`), else ``there``: runs and experiments are compared by the data they read,
    not by how its path was typed."""
    if there is None or here is None or there.source == here.source or not same_place(here.source, there.source):
        return there
    return dataclasses.replace(there, source=here.source)


#: the seed of the held-out and fractional splits of training photographs: fixed, so that every run,
#: whatever its own seed, holds out the same photographs
SPLIT_SEED = 0


def split_training(n: int, holdout: float, fraction: float) -> tuple[list[int], list[int]]:
    """Which of ``n`` training pairs (in the dataset's order, by file name for a folder) a run trains
    on, and which it holds out (``holdout`` of them, at least one when above 0), from a fixed
    permutation: the same for every run, disjoint, and each sorted. ``fraction`` of the rest (at
    least one) are trained on, the first in that permutation, so a tenth is inside a fifth."""
    import numpy as np

    order = np.random.default_rng(SPLIT_SEED).permutation(n).tolist()
    held = max(1, round(n * holdout)) if holdout else 0
    rest = order[held:]
    kept = max(1, round(len(rest) * fraction))
    if held >= n or not rest:
        raise UserError(f"holding out {holdout} of {n} training pairs leaves none to train on; hold out less")
    return sorted(rest[:kept]), sorted(order[:held])


class Part(Dataset):
    """Some pairs of a dataset (``indices`` into it), with its classes and ignore index."""

    def __init__(self, ds: Dataset, indices: list[int]):
        self.ds, self.indices = ds, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        return self.ds[self.indices[i]]

    @property
    def classes(self):
        return self.ds.classes

    @property
    def ignore_index(self):
        return self.ds.ignore_index


def open_data(data: DataConfig, *, size: int, num_train: int, num_val: int, seed: int,
              augment: Augment = Augment(), resize: str = "square") -> Data:
    """Train and val datasets of ``data``: training pairs brought to ``size`` as ``resize`` says
    (see :mod:`.transforms`) and augmented, validation pairs brought to ``size`` (``square``) or
    with images rescaled to short side ``size`` and masks as they are (``short-side``). Checks
    what can be checked cheaply before any training: paths, file headers and sizes, label values
    (each dataset's ``check()``), so bad data is one line naming the file before the first step,
    not a traceback minutes in."""
    kind, arg = split_source(data.source)
    source = SOURCES[kind]
    datasets = {}
    held_out = bool(data.holdout)
    for role, split in (("train", "train"), ("val", "train" if held_out else "val")):
        request = Request(data, arg, split, size, num_train, num_val, seed)
        ds = source.open(request)
        # set once the dataset is open: crops are padded with the dataset's own ignore index
        ds.transforms = pair_transforms(size, augment, resize=resize, train=role == "train",
                                        ignore_index=int(ds.ignore_index))
        check = getattr(ds, "check", None)
        if check is not None:
            check()
        datasets[role] = ds
    if held_out or data.fraction != 1:
        trained, scored = split_training(len(datasets["train"]), data.holdout, data.fraction)
        datasets["train"] = Part(datasets["train"], trained)
        if held_out:
            datasets["val"] = Part(datasets["val"], scored)
    train, val = datasets["train"], datasets["val"]
    if len(train) == 0 or len(val) == 0:
        raise UserError(f"DATA {data.source}: the train and val splits must both be non-empty "
                        f"(have {len(train)} and {len(val)})")
    native = resize == "short-side" and kind != "synthetic"  # rendered scenes all come at the training size
    return Data(train, val, list(train.classes), int(train.ignore_index), augment, native)
