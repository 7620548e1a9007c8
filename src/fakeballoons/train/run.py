"""A training run as one frozen object, written to ``config.json`` and compared on resume in one place.

``RunConfig`` is everything that defines a run: its data (``DataConfig``: source, scene
configuration, folder options), how to train (``TrainConfig``, whose defaults are the report's
recipe), what to initialise from and how (``init``, ``transfer``), and the device. It goes to and
from JSON through the package's one codec (:mod:`fakeballoons.codec`), so a run written before an
option existed reads back with that option's default, and ``RunConfig.difference`` is the only
"is this the same run?" check.

Training presets are JSON files in ``fakeballoons/configs/train/`` holding only what differs from
the defaults, or from the preset they name as ``"base"``: ``paper`` (the report exactly) and
``quick`` (sized for a 2-core CPU).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .._version import __version__
from ..codec import check_count, check_number, difference, extension, from_plain, load_preset, to_plain
from ..data.sources import DataConfig, spelt_like
from ..data.transforms import RESIZES, Augment
from ..errors import ConfigError
from ..names import OPTIMIZERS, SCHEDULES
from ..render import DEVICES
from .models import MODELS
from .transfer import TRANSFER_MODES

#: The range of each count of a recipe, as the train command's flags take them.
COUNT_RANGES = {"epochs": (0, 100_000), "batch_size": (1, 100_000), "size": (8, 8192), "workers": (0, 256),
                "seed": (0, 2**31 - 1), "num_train": (1, 10**9), "num_val": (1, 10**9), "bootstrap": (10, 100_000)}
LR_RANGE = (1e-12, 1e12)


def _check(ok: bool, name: str, problem: str) -> None:
    if not ok:
        raise ConfigError(name, problem)


@dataclass(frozen=True)
class TrainConfig:
    """How to train and evaluate. Defaults: FCN-ResNet50, SGD lr 0.01, wd 1e-4, no momentum, no
    schedule, batch 8, 10 epochs, 520x520 images, ImageNet normalisation, cross-entropy ignoring 255."""

    PRESETS: ClassVar[str] = "train"

    model: str = "fcn_resnet50"
    aux_loss: bool = False  # torchvision's auxiliary head and loss (weight 0.5)
    bn_momentum: float = 0.0  # BatchNorm running-statistics momentum; 0 keeps the model's own
    epochs: int = 10
    batch_size: int = 8
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 1e-4
    schedule: str = "none"  # "poly": lr * (1 - step / steps) ** 0.9, per step
    size: int = 520  # images (and label maps, nearest) resized to size x size
    hflip: bool = False  # random horizontal flips of training pairs
    amp: bool = False  # bfloat16 autocast
    workers: int = 2  # DataLoader worker processes
    seed: int = 0
    num_train: int = 9000  # synthetic data: training pairs; COCO: training images sampled
    num_val: int = 1000  # synthetic data: validation pairs (after the training ones); COCO: images sampled
    bootstrap: int = 1000  # bootstrap resamples for the 95% intervals
    # real-data training the field's way (see fakeballoons.data.transforms); defaults: the report's
    resize: str = extension("square")  # "square", or "short-side": aspect kept, random scale + crop, native eval
    scale: tuple[float, float] = extension((1.0, 1.0))  # short-side: random rescale factor range
    jitter: float = extension(0.0)  # photometric jitter of brightness, contrast and saturation
    hue: float = extension(0.0)  # hue jitter, in turns (at most 0.5)
    grayscale: float = extension(0.0)  # probability of a grey training picture
    warmup_epochs: float = extension(0.0)  # linear learning-rate warm-up before the schedule

    @property
    def augment(self) -> Augment:
        """The random augmentation of training pairs this recipe asks for."""
        return Augment(hflip=self.hflip, scale=tuple(self.scale), jitter=self.jitter, hue=self.hue,
                       grayscale=self.grayscale)

    def __post_init__(self):
        _check(self.model in MODELS, "model", f"unknown model {self.model!r}; choose from {', '.join(MODELS)}")
        for name, (lo, hi) in COUNT_RANGES.items():  # as strict as the train command's flags
            check_count(name, getattr(self, name), lo, hi)
        check_number("lr", self.lr, *LR_RANGE)
        check_number("bn_momentum", self.bn_momentum, 0.0, 1.0)
        check_number("momentum", self.momentum, 0.0, 1.0)
        check_number("weight_decay", self.weight_decay, 0.0, 1.0)
        _check(self.optimizer in OPTIMIZERS, "optimizer", f"must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        _check(self.schedule in SCHEDULES, "schedule", f"must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        _check(self.resize in RESIZES, "resize", f"must be one of {list(RESIZES)}, got {self.resize!r}")
        _check(len(self.scale) == 2 and all(math.isfinite(v) for v in self.scale)
               and 0 < self.scale[0] <= self.scale[1] <= 8, "scale",
               f"must be two numbers 0 < low <= high <= 8, got {list(self.scale)}")
        _check(self.scale == (1.0, 1.0) or self.resize == "short-side", "scale",
               "a random scale needs resize \"short-side\"")
        for name, top in (("jitter", 1.0), ("hue", 0.5), ("grayscale", 1.0)):
            value = getattr(self, name)
            check_number(name, value, 0.0, top)
        check_number("warmup_epochs", self.warmup_epochs, 0.0)
        _check(self.warmup_epochs <= self.epochs, "warmup_epochs",
               f"must be from 0 to the number of epochs ({self.epochs}), got {self.warmup_epochs}")

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return from_plain(cls, data)

    def with_changes(self, **changes) -> TrainConfig:
        """A copy with some fields changed; a value of None leaves its field as it is, and an
        unknown field is an error naming it (a misspelt option must not silently do nothing)."""
        known = {f.name for f in dataclasses.fields(self)}
        for key in changes:
            if key not in known:
                raise ConfigError(key, f"known keys here: {', '.join(sorted(known))}", unknown=True)
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def load_train_preset(name: str) -> TrainConfig:
    """A training preset by name (``paper``, ``quick``, ...) or a path to a JSON file of the same form."""
    return load_preset(TrainConfig, name, "training preset")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run."""

    data: DataConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    init: str | None = None  # checkpoint to initialise from
    transfer: str = "auto"  # with init: what is carried over (see train/transfer.py); without, always "auto"
    # (so dataclasses.replace(run_without_init, init=X) needs transfer=... given too)
    device: str = "cpu"

    #: Fields that may change when a run is resumed: more epochs continue it.
    RESUMABLE: ClassVar[tuple[str, ...]] = ("train.epochs",)

    def __post_init__(self):
        _check(self.transfer in TRANSFER_MODES, "transfer",
               f"must be one of {list(TRANSFER_MODES)}, got {self.transfer!r}")
        if not self.init:  # what a model carries over means nothing to a run that starts from none:
            object.__setattr__(self, "transfer", "auto")  # one spelling, so such runs compare equal
        _check(self.device in DEVICES, "device", f"must be one of {list(DEVICES)}, got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        """What ``config.json`` holds: the run, and the package version that made it."""
        return {"package_version": __version__, **to_plain(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Read back :meth:`to_dict` (any package version); missing options take their defaults."""
        if not isinstance(data, dict):
            raise ConfigError("", f"must be an object, got {type(data).__name__}")
        return from_plain(cls, {k: v for k, v in data.items() if k != "package_version"})

    def difference(self, other: RunConfig) -> str | None:
        """Why ``other`` (there) and this run (here) may not share a run directory, or None. The
        data compare by the directory their paths lead to, not by spelling (``spelt_like``)."""
        other = dataclasses.replace(other, data=spelt_like(other.data, self.data))
        return difference(self, other, ignore=self.RESUMABLE)


__all__ = ["OPTIMIZERS", "SCHEDULES", "RunConfig", "TrainConfig", "load_train_preset"]
