"""Segmentation models from torchvision, built without pretrained weights (nothing is downloaded)."""

from __future__ import annotations

from torch import nn
from torchvision.models import segmentation

from ..errors import ConfigError
from ..names import MODELS


def build_model(name: str, num_classes: int, aux_loss: bool = False, bn_momentum: float = 0.0) -> nn.Module:
    """A randomly initialised torchvision segmentation model; ``model(x)["out"]`` is (B, C, H, W).

    ``aux_loss`` adds torchvision's auxiliary FCN head (``model(x)["aux"]``); LR-ASPP has none.
    ``bn_momentum`` > 0 sets every BatchNorm's running-statistics momentum. torchvision's
    MobileNetV3 uses 0.01, so a short run from scratch evaluates with statistics hundreds of steps
    old; the ResNets use 0.1.
    """
    if name not in MODELS:
        raise ConfigError("model", f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    builder = getattr(segmentation, name)
    kwargs = dict(weights=None, weights_backbone=None, num_classes=num_classes)
    if not name.startswith("lraspp"):
        kwargs["aux_loss"] = aux_loss
    model = builder(**kwargs)
    if bn_momentum > 0:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = bn_momentum
    return model


def final_layers(model: nn.Module) -> list[str]:
    """Names of the parameters and buffers of the final classifier layers, main and auxiliary.

    These are the layers whose shape depends on the number of classes: the last convolution of
    ``classifier`` (FCN, DeepLabV3) or LR-ASPP's low and high classifiers, and the last
    convolution of ``aux_classifier``.
    """
    names = []
    for head in ("classifier", "aux_classifier"):
        module = getattr(model, head, None)
        if module is None:
            continue
        convs = [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Conv2d)]
        if isinstance(model, segmentation.LRASPP) and head == "classifier":
            last = [(n, m) for n, m in convs if n in ("low_classifier", "high_classifier")]
        else:
            last = convs[-1:]
        for n, m in last:
            names += [f"{head}.{n}.{p}" for p, _ in m.named_parameters(recurse=False)]
    return names
