"""Training configuration: a frozen dataclass whose defaults are the report's recipe (SPEC.md section 5).

Presets are JSON files in ``fakeballoons/configs/`` holding only what differs from the defaults:
``paper`` (the report exactly) and ``quick`` (sized for a 2-core CPU).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from importlib import resources
from typing import Any

from ..config import from_plain, to_plain
from ..errors import ConfigError, UserError

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("none", "poly")


@dataclass(frozen=True)
class TrainConfig:
    """How to train and evaluate. Defaults: FCN-ResNet50, SGD lr 0.01, wd 1e-4, no momentum, no
    schedule, batch 8, 10 epochs, 520x520 images, ImageNet normalisation, cross-entropy ignoring 255."""

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
    num_train: int = 9000  # synthetic data: training pairs
    num_val: int = 1000  # synthetic data: validation pairs (the last indices)
    bootstrap: int = 1000  # bootstrap resamples for the 95% intervals

    def __post_init__(self):
        from .models import MODELS

        if self.model not in MODELS:
            raise UserError(f"unknown model {self.model!r}; choose from {', '.join(MODELS)}")
        for name in ("epochs", "workers", "bootstrap"):
            if getattr(self, name) < 0:
                raise UserError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        for name in ("batch_size", "size", "num_train", "num_val"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise UserError(f"--lr must be > 0, got {self.lr}")
        if not 0.0 <= self.bn_momentum <= 1.0:
            raise UserError(f"--bn-momentum must be in [0, 1] (0 keeps the model's own), got {self.bn_momentum}")
        if self.momentum < 0 or self.weight_decay < 0:
            raise UserError("momentum and weight decay must be >= 0")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise UserError(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return from_plain(cls, data, "")

    def with_changes(self, **changes) -> TrainConfig:
        known = {f.name for f in fields(self)}
        return replace(self, **{k: v for k, v in changes.items() if k in known and v is not None})


def preset_names(subdir: str = "") -> list[str]:
    folder = resources.files("fakeballoons.configs")
    if subdir:
        folder = folder / subdir
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def load_json_preset(name: str, cls, subdir: str = "", what: str = "preset"):
    """Build ``cls`` from a named preset in ``fakeballoons/configs/{subdir}`` or from a JSON file path.

    Keys the JSON leaves out take ``cls``'s defaults; a "description" key is ignored.
    """
    if name.endswith(".json"):
        try:
            text = open(name).read()
        except OSError as exc:
            raise UserError(f"cannot read {what} {name}: {exc.strerror or exc}") from None
    else:
        folder = resources.files("fakeballoons.configs")
        path = (folder / subdir if subdir else folder) / f"{name}.json"
        if not path.is_file():
            raise UserError(f"unknown {what} {name!r}; choose from {', '.join(preset_names(subdir))} or a .json file")
        text = path.read_text()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UserError(f"{what} {name} is not valid JSON: {exc}") from None
    data.pop("description", None)
    try:
        return from_plain(cls, data, "")
    except ConfigError as exc:
        raise UserError(f"{what} {name}: {exc}") from None


def load_preset(name: str) -> TrainConfig:
    """A training preset by name (``paper``, ``quick``, ...) or a path to a JSON file of the same form."""
    return load_json_preset(name, TrainConfig)
