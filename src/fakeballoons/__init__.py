"""fakeballoons: procedurally rendered segmentation data (noise-textured ellipsoids with exact labels)."""

from . import noise
from .config import AntialiasConfig, CameraConfig, ClassPrior, LightConfig, SamplingConfig, SceneConfig
from .errors import ConfigError, UserError
from .render import Batch, Sample, render, render_batch
from .scene import Scene, SceneObject, prototype_scene, sample_scene, single_object_scene

__version__ = "0.1.0"

__all__ = [
    "AntialiasConfig", "Batch", "CameraConfig", "ClassPrior", "ConfigError", "LightConfig", "Sample",
    "SamplingConfig", "Scene", "SceneConfig", "SceneObject", "UserError", "__version__", "noise",
    "prototype_scene", "render", "render_batch", "sample_scene", "single_object_scene",
]
