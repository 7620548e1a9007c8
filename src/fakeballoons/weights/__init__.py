"""Pretrained weights that ship with the package: a model pretrained on our scenes, one line away.

The registry is one table, ``registry.json`` beside this module: one *card* per entry, naming its
file (in this folder, installed with the package, never downloaded), the file's SHA-256, the
architecture, the synthetic classes, the input normalisation and size it was trained at, the
scene configuration and training recipe that made it (resolved, as JSON), the command and commit
that made it, how the file was checked against that run, and its measured transfer results with
intervals. Cards are written by :mod:`fakeballoons.weights.publish` from run directories, never by
hand.

Using an entry::

    from fakeballoons import weights

    weights.names()                                  # the registered entries
    model = weights.load(NAME)                       # torchvision's LR-ASPP, every tensor loaded
    model = weights.load(NAME, num_classes=8)        # the same with fresh final layers for 8 classes
    sd = weights.state_dict(NAME, layout="backbone")  # torchvision.models.mobilenet_v3_large's keys
    torchvision.models.mobilenet_v3_large().load_state_dict(sd, strict=False)  # all but `classifier.*`

and on the command line ``fakeballoons train ... --init pretrained:NAME``, ``fakeballoons
experiment --preset transfer ... --shipped-weights`` (each arm whose pretraining an entry was made by
takes that entry instead of pretraining), ``fakeballoons weights`` (the list) and ``fakeballoons
weights show NAME`` (the card). Every load checks the file's SHA-256 first and reads it with
``weights_only=True``; a missing, truncated or altered file is a :class:`~fakeballoons.UserError`.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import UserError
from ..names import INIT_IMAGENET
from .cards import CARD_FIELDS, PREFIX, card, names, path, registry, resolve


def state_dict(name: str, layout: str = "segmentation") -> dict:
    """The tensors of entry ``name`` (file checked, read with ``weights_only=True``).

    ``layout``: ``"segmentation"`` (default), the keys of the torchvision segmentation model
    (``backbone.*``, ``classifier.*``: :func:`load` builds it); ``"backbone"``, the backbone alone
    with the keys of the torchvision classification model it was built from
    (``torchvision.models.mobilenet_v3_large``: ``features.*``), which loads it with
    ``strict=False`` leaving only its ``classifier.*`` at their initial values.
    """
    from ..data import formats

    if layout not in ("segmentation", "backbone"):
        raise UserError(f"layout must be 'segmentation' or 'backbone', got {layout!r}")
    file = path(name)
    state = formats.load_torch(file, "weights file")
    if layout == "segmentation":
        return state
    from ..train.export import backbone_state

    return backbone_state(state, card(name)["architecture"])


def load(name: str, num_classes: int | None = None):
    """A ready torchvision segmentation model with entry ``name``'s weights, in eval mode.

    Without ``num_classes`` every tensor is loaded (strictly): the model answers in the synthetic
    classes it was pretrained on. With ``num_classes``, the model has that many classes and every
    tensor but the final classifier layers is loaded (the transfer the package's experiments use):
    ready to fine-tune.
    """
    from ..train.models import build_model
    from ..train.transfer import load_init

    entry = card(name)
    state = state_dict(name)
    if num_classes is None:
        model = build_model(entry["architecture"], entry["num_classes"])
        model.load_state_dict(state)
    else:
        model = build_model(entry["architecture"], num_classes)
        load_init(model, state, "auto", PREFIX + name)
    return model.eval()


def describe(entry: dict[str, Any]) -> str:
    """The card as text for a terminal (``fakeballoons weights show``)."""
    lines = [f"{entry['name']}: {entry['summary']}", ""]
    size = entry["input_size"]
    norm = entry["normalization"]
    lines += [
        f"  architecture   {entry['architecture']} (backbone: {_library(entry['torchvision_backbone'])}'s "
        f"{entry['torchvision_backbone']})",
        f"  classes        {entry['num_classes']} synthetic: {', '.join(entry['classes'])}",
        f"  input          {size}x{size} ({entry['resize']}), normalised with mean {norm['mean']}, std {norm['std']}",
        f"  file           {entry['file']} ({entry['bytes']:,} bytes, float32)",
        f"  sha256         {entry['sha256']}",
        f"  started from   {_start(entry.get('init'))}",
        f"  made by        {entry['command']}",
        f"  at commit      {entry['commit']}",
        f"  checked        {entry['check']}",
        "",
        "  transfer results (mean IoU, percent; 95% intervals over validation images and over seeds):",
    ]
    for r in entry["results"]:
        lines.append(f"    {r['data']}: scratch {r['scratch']:.1f}, pretrained {r['pretrained']:.1f}, "
                     f"{r['difference']:+.1f} images [{r['images'][0]:+.1f}, {r['images'][1]:+.1f}] "
                     f"seeds [{r['seeds'][0]:+.1f}, {r['seeds'][1]:+.1f}] ({r['seeds_run']} seeds; {r['command']})")
    lines += ["", f"  limits         {entry['limits']}", "",
              "  scene configuration (resolved):", _indent(entry["scene"]),
              "  training recipe (resolved):", _indent(entry["recipe"])]
    return "\n".join(lines)


def _start(init: str | None) -> str:
    """What the pretraining started from, in words."""
    return "random values" if not init else ("the backbone's ImageNet weights" if init == INIT_IMAGENET else init)


def _library(backbone: str) -> str:
    """Whose classification model a backbone is: timm's TensorFlow-ported ones, else torchvision's."""
    return "timm" if backbone.startswith("tf_") else "torchvision"


def _indent(obj: Any) -> str:
    return "\n".join("    " + line for line in json.dumps(obj, indent=2).splitlines())


__all__ = ["CARD_FIELDS", "PREFIX", "card", "describe", "load", "names", "path", "registry", "resolve", "state_dict"]
