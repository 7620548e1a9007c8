"""fakeballoons: procedurally rendered segmentation data (noise-textured ellipsoids with exact labels)."""

from . import noise
from ._version import __version__  # noqa: E402
from .config import AntialiasConfig, CameraConfig, ClassPrior, LightConfig, SamplingConfig, SceneConfig
from .errors import ConfigError, UserError
from .render import Batch, Sample, render, render_batch, render_sampled, render_sampled_batches
from .scene import Scene, SceneObject, prototype_scene, sample_scene, single_object_scene

_LAZY = {  # need torch: imported on first use so that rendering alone stays light
    "FakeBalloons": "fakeballoons.data.datasets",
    "FakeBalloonsFolder": "fakeballoons.data.datasets",
    "SegmentationMetrics": "fakeballoons.train.metrics",
    "CocoVOC": "fakeballoons.data.downstream",
    "PascalVOC": "fakeballoons.data.downstream",
    "SegmentationFolder": "fakeballoons.data.downstream",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fakeballoons' has no attribute {name!r}")


__all__ = [
    "CocoVOC", "FakeBalloons", "FakeBalloonsFolder", "PascalVOC", "SegmentationFolder", "SegmentationMetrics",
    "AntialiasConfig", "Batch", "CameraConfig", "ClassPrior", "ConfigError", "LightConfig", "Sample",
    "SamplingConfig", "Scene", "SceneConfig", "SceneObject", "UserError", "__version__", "noise",
    "prototype_scene", "render", "render_batch", "render_sampled", "render_sampled_batches", "sample_scene",
    "single_object_scene",
]
