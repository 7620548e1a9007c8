"""fakeballoons: procedurally rendered segmentation data (noise-textured ellipsoids with exact labels)."""

import sys
import types

from ._version import __version__
from .errors import ConfigError, UserError

_LAZY = {  # imported on first use, so that `import fakeballoons` (and the command line) stays light
    "AntialiasConfig": "fakeballoons.config",
    "CameraConfig": "fakeballoons.config",
    "ClassPrior": "fakeballoons.config",
    "LightConfig": "fakeballoons.config",
    "SamplingConfig": "fakeballoons.config",
    "SceneConfig": "fakeballoons.config",
    "Batch": "fakeballoons.render",
    "Sample": "fakeballoons.render",
    "render": "fakeballoons.render",
    "render_batch": "fakeballoons.render",
    "render_sampled": "fakeballoons.render",
    "render_sampled_batches": "fakeballoons.render",
    "Scene": "fakeballoons.scene",
    "SceneObject": "fakeballoons.scene",
    "prototype_scene": "fakeballoons.scene",
    "sample_scene": "fakeballoons.scene",
    "single_object_scene": "fakeballoons.scene",
    "FakeBalloons": "fakeballoons.data.datasets",
    "FakeBalloonsFolder": "fakeballoons.data.datasets",
    "SegmentationMetrics": "fakeballoons.train.metrics",
    "CocoVOC": "fakeballoons.data.downstream",
    "PascalVOC": "fakeballoons.data.downstream",
    "SegmentationFolder": "fakeballoons.data.downstream",
}


class _Package(types.ModuleType):
    """The package module. Its function ``render`` shares its name with the subpackage
    ``fakeballoons.render``: Python sets a subpackage as an attribute of its parent when it is
    first imported, which would hide the function; that one assignment is ignored, so
    ``fakeballoons.render`` is always the function (loaded on first use like the rest)."""

    def __setattr__(self, name, value):
        if name == "render" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in ("noise", "weights"):
        return importlib.import_module(f"fakeballoons.{name}")
    raise AttributeError(f"module 'fakeballoons' has no attribute {name!r}")


__all__ = [
    "CocoVOC", "FakeBalloons", "FakeBalloonsFolder", "PascalVOC", "SegmentationFolder", "SegmentationMetrics",
    "AntialiasConfig", "Batch", "CameraConfig", "ClassPrior", "ConfigError", "LightConfig", "Sample",
    "SamplingConfig", "Scene", "SceneConfig", "SceneObject", "UserError", "__version__", "noise",
    "prototype_scene", "render", "render_batch", "render_sampled", "render_sampled_batches", "sample_scene",
    "single_object_scene", "weights",
]
