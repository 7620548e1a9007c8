"""The registry's cards, read from ``registry.json`` beside this module, and the files they name,
checked against their SHA-256: what every user of shipped weights looks up first. Light (no torch),
and below the training code, which resolves ``pretrained:NAME`` through it; the package
(:mod:`fakeballoons.weights`) builds models from the files on top of both."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import UserError

#: The prefix that names a registered entry wherever a checkpoint path is taken (``--init``).
PREFIX = "pretrained:"

#: Every card has every one of these fields (a test holds the registry to it).
CARD_FIELDS = (
    "name", "summary", "file", "sha256", "bytes", "architecture", "torchvision_backbone", "num_classes",
    "classes", "input_size", "resize", "normalization", "scene", "recipe", "init", "command", "commit", "check",
    "results", "limits",
)


def _folder() -> Path:
    return Path(str(resources.files(__package__)))


@cache
def registry() -> dict[str, dict[str, Any]]:
    """Every card of the registry, by name (read once from ``registry.json``)."""
    path = _folder() / "registry.json"
    try:
        cards = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"the weights registry {path} cannot be read ({exc}); reinstall fakeballoons") from None
    return {card["name"]: card for card in cards}


def names() -> list[str]:
    """The names of the registered weights."""
    return list(registry())


def card(name: str) -> dict[str, Any]:
    """The card of entry ``name``; an unknown name is a UserError listing the known ones."""
    cards = registry()
    if name not in cards:
        known = ", ".join(cards) or "none"
        raise UserError(f"no shipped weights named {name!r}; the package has: {known} "
                        "(fakeballoons weights lists them)")
    return cards[name]


def path(name: str) -> Path:
    """The file of entry ``name``, after checking that it is there and that its SHA-256 is the card's."""
    entry = card(name)
    file = _folder() / entry["file"]
    if not file.is_file():
        raise UserError(f"the weights file of {name} is missing ({file}); reinstall fakeballoons")
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    if digest != entry["sha256"]:
        raise UserError(f"the weights file of {name} ({file}) is damaged or altered: its SHA-256 is {digest[:16]}..., "
                        f"the registry's {entry['sha256'][:16]}...; reinstall fakeballoons")
    return file


def resolve(spec: str) -> tuple[str, str] | None:
    """``(name, file)`` for a checkpoint given as ``pretrained:NAME`` (checked), else None."""
    if not spec.startswith(PREFIX):
        return None
    name = spec[len(PREFIX):]
    return name, str(path(name))
