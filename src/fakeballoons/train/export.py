"""Pretrained backbones users can take away: a run's backbone as torchvision's classification model.

``export_backbone(run, out)`` reads a training checkpoint (a run directory's ``last.pt``, or a
``.pt`` file), takes the backbone of its segmentation model and renames its tensors to those of
the torchvision classification model the backbone was built from (``resnet50``,
``mobilenet_v3_large``, ...; timm's ``tf_efficientnet_lite0`` for ``lraspp_efficientnet_lite0``), so that

    torchvision.models.mobilenet_v3_large().load_state_dict(torch.load("backbone.pt"), strict=False)

loads every backbone tensor and leaves only the classification head (``fc`` or ``classifier``)
at its initial values. The export checks exactly that before it writes. Beside ``OUT`` goes
``OUT`` with suffix ``.json``: the torchvision model, the line that loads it, the source
checkpoint, and the run that made it (data with its scene configuration, training recipe), and,
for a model trained on from another checkpoint (``init``: a pretraining continued, a fine-tuned
model), the runs before it as far as their checkpoints can still be read (``made_from``).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch

from ..data import formats
from ..errors import UserError
from .imagenet import BACKBONE_PREFIX, HEAD, SEGMENTATION_MODEL, TIMM_MODEL
from .run import RunConfig

#: segmentation model -> (torchvision classification model, prefix of the backbone's tensors there)
BACKBONES = {
    "fcn_resnet50": ("resnet50", ""),
    "fcn_resnet101": ("resnet101", ""),
    "deeplabv3_resnet50": ("resnet50", ""),
    "deeplabv3_resnet101": ("resnet101", ""),
    "deeplabv3_mobilenet_v3_large": ("mobilenet_v3_large", "features."),
    "lraspp_mobilenet_v3_large": ("mobilenet_v3_large", "features."),
    SEGMENTATION_MODEL: (TIMM_MODEL, ""),  # timm's model (the imagenet extra)
}
#: the prefix of the backbone's tensors in the segmentation model: ``backbone.``, or for a backbone
#: from timm ``backbone.body.`` (its feature extractor, wrapped as LR-ASPP takes it)
SEGMENTATION_PREFIX = {SEGMENTATION_MODEL: BACKBONE_PREFIX}
#: the classification head of each classification model (not part of the backbone)
HEADS = {"resnet50": ("fc.",), "resnet101": ("fc.",), "mobilenet_v3_large": ("classifier.",), TIMM_MODEL: HEAD}


def _classification_model(name: str):
    """The classification model a backbone export is checked against (torchvision's, or timm's)."""
    if name == TIMM_MODEL:
        from .imagenet import import_timm

        return import_timm().create_model(name, pretrained=False)
    import torchvision

    return getattr(torchvision.models, name)()


def _checkpoint_path(source: Path) -> Path:
    if source.is_dir():
        path = source / "last.pt"
        if not path.is_file():
            raise UserError(f"{source} holds no last.pt: give a run directory with a checkpoint, or a .pt file")
        return path
    if not source.is_file():
        raise UserError(f"{source} does not exist: give a run directory or a checkpoint file")
    return source


def state_bytes(state: dict[str, torch.Tensor]) -> bytes:
    """A state dict's file bytes, each tensor contiguous on the CPU, as ``torch.save`` writes them."""
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, buf)
    return buf.getvalue()


def backbone_state(state: dict[str, torch.Tensor], model: str) -> dict[str, torch.Tensor]:
    """The backbone tensors of a segmentation model's state dict, named as in the classification model."""
    _, prefix = BACKBONES[model]
    source = SEGMENTATION_PREFIX.get(model, "backbone.")
    return {prefix + k[len(source):]: v for k, v in state.items() if k.startswith(source)}


def load_line(path: str, classification_model: str) -> str:
    build = (f'timm.create_model("{classification_model}")' if classification_model == TIMM_MODEL
             else f"torchvision.models.{classification_model}()")
    return f'{build}.load_state_dict(torch.load("{path}", weights_only=True), strict=False)'


def _made_from(init: str | None, source: Path, depth: int = 8) -> list[dict]:
    """The chain of runs a model was initialised from, newest first: each checkpoint's path and run
    config, read from the checkpoint (looked for where its run recorded it, then as a sibling run
    directory of ``source``'s, the layout of an experiment); a link that can no longer be read ends
    the chain with the path and why."""
    chain: list[dict] = []
    while init and len(chain) < depth:
        recorded = Path(init)
        candidates = [recorded, source.parent.parent / recorded.parent.name / recorded.name]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            chain.append({"checkpoint": init, "missing": "not found (moved or removed)"})
            break
        try:
            ckpt = formats.load_torch(found, "checkpoint", mmap=True)
            run = RunConfig.from_dict(ckpt["config"])
        except Exception as exc:  # noqa: BLE001 - untrusted: whatever is wrong with it ends the chain, said so
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            chain.append({"checkpoint": str(found), "missing": f"unreadable ({why})"})
            break
        chain.append({"checkpoint": str(found), "epoch": ckpt.get("epoch"), "run": run.to_dict()})
        init, source = run.init, found
    return chain


def export_backbone(source: str | Path, out: str | Path) -> dict:
    """Write the backbone of checkpoint ``source`` to ``out`` (and its record to ``out`` .json);
    returns the record."""
    path = _checkpoint_path(Path(source))
    out = Path(out)
    record_path = out.with_suffix(".json")
    if out.suffix.lower() == ".json":
        raise UserError(f"--out {out}: the weights need a name of their own (the record goes beside them as "
                        f"{record_path.name}); use e.g. {out.with_suffix('.pt')}")
    for p in (out, record_path):
        if p.exists():
            raise UserError(f"{p} exists; choose another --out (an export never overwrites a file)")
    ckpt = formats.load_torch(path, "checkpoint")
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict) or "config" not in ckpt or \
            not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in ckpt["model"].items()):
        raise UserError(f"{path} is not a fakeballoons training checkpoint (it needs the model and its run config)")
    try:
        run = RunConfig.from_dict(ckpt["config"])
    except Exception as exc:  # an untrusted file: any malformed config is the user's input error
        raise UserError(f"{path}: its run config cannot be read ({exc})") from None
    name = run.train.model
    tv_name, _ = BACKBONES[name]
    state = backbone_state(ckpt["model"], name)
    if not state:
        raise UserError(f"{path} holds no backbone tensors")
    bad = next((k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if bad is not None:
        raise UserError(f"{path} holds non-finite values in {bad}; refused to export it")
    target = _classification_model(tv_name)
    try:
        result = target.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of the wrong shape
        first = next((ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln), str(exc).splitlines()[0])
        raise UserError(f"{path}: the backbone does not match the classification model {tv_name} "
                        f"({first[:200]})") from None
    head = HEADS[tv_name]
    if result.unexpected_keys or any(not k.startswith(head) for k in result.missing_keys):
        raise UserError(f"{path}: the backbone does not match the classification model {tv_name} "
                        f"({len(result.unexpected_keys)} unexpected, {len(result.missing_keys)} missing tensors)")
    weights = state_bytes(state)
    record = {
        "torchvision_model": tv_name,
        "load": load_line(out.name, tv_name),
        "not_loaded": sorted(result.missing_keys),  # the classification head, left at its initial values
        "tensors": len(state),
        "sha256": hashlib.sha256(weights).hexdigest(),
        "segmentation_model": name,
        "source": str(path),
        "epoch": ckpt.get("epoch"),
        "classes": ckpt.get("classes"),
        "run": run.to_dict(),
        "made_from": _made_from(run.init, path),
    }
    # both files or neither: no weights without their record
    formats.write_files_atomic([(out, weights), (record_path, formats.json_bytes(record, indent=2))])
    return record
