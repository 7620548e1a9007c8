"""Scene configuration: frozen dataclasses whose defaults are the 2022 report's scenes.

A configuration is data. ``SceneConfig.to_json()`` / ``SceneConfig.from_json()``
round-trip it exactly; ``from_dict`` rejects unknown keys and wrong types and
every check names the offending field (``sampling.object_scale``,
``classes[1].hue_std``), so a bad config file fails with one clear line.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from dataclasses import dataclass, field
from typing import Any

from .classes import (
    DEFAULT_CLASSES,
    SHAPES,
    TEXTURES,
    ClassPrior,
    ClassTable,
    distinct_colours,
    hsl_colour,
    label_colour,
)
from .codec import check_number, check_range, extension, from_plain, load_preset, parse_json, shown, to_plain
from .errors import ConfigError
from .names import NOISE_FUNCTIONS

__all__ = [
    "ROTATIONS",
    "AntialiasConfig",
    "CameraConfig",
    "ClassPrior",
    "ClassTable",
    "GroundConfig",
    "LightConfig",
    "NOISE_FUNCTIONS",
    "canonical_noise",
    "SamplingConfig",
    "SceneConfig",
    "hsl_colour",
    "label_colour",
]

#: Object orientations: none (the report's axis-aligned objects), uniform over all rotations, or a
#: rotation by up to ``rotation_max`` degrees about the camera's viewing axis (in the image plane)
#: or about the vertical (world y).
ROTATIONS = ("none", "uniform", "view", "vertical")

#: Spellings of the noise names (NOISE_FUNCTIONS, in the kernels' numbering; "sc" is sparse convolution).
_NOISE_ALIASES = {"perlin": "perlin", "pn": "perlin", "sc": "sc", "sparse_convolution": "sc"}


def canonical_noise(name: str) -> str | None:
    """The canonical name of a noise function ("Perlin", "pn", "sparse_convolution", ...), or None."""
    return _NOISE_ALIASES.get(name.lower()) if isinstance(name, str) else None

#: Sample patterns for coverage anti-aliasing (the Direct3D standard MSAA positions, in 1/16 pixel).
MSAA_PATTERNS = {
    4: ((-2, -6), (6, -2), (-6, 2), (2, 6)),
    8: ((1, -3), (-1, 3), (5, 1), (-3, -5), (-5, 5), (-7, -1), (3, 7), (7, -7)),
    16: (
        (1, 1), (-1, -3), (-3, 2), (4, -1), (-5, -2), (2, 5), (5, 3), (3, -5),
        (-2, 6), (0, -7), (-4, -6), (-6, 4), (-8, 0), (7, -4), (6, 7), (-7, -8),
    ),
}


#: The meaningful ranges of the scene's physical quantities (the report's values are well inside):
#: a finite but absurd value (1e308) is refused with its range, never rendered into NaN pictures.
MAX_COORDINATE = 1000.0  # world units: camera, light, object positions, ground (the view spans about 4)
MAX_NOISE_SCALE = 10_000.0  # noise frequencies (the report's: 1 to 51); beyond it a pixel is pure noise
MAX_OBJECT_SCALE = 100.0  # object sizes (the report's: 0.1 to 0.7)
MAX_SHININESS = 10_000.0  # Phong exponents (the report's: 10 to 100)


def _fail(path: str, message: str) -> typing.NoReturn:
    raise ConfigError(path, message)


_check_range = check_range
_check_number = check_number


@dataclass(frozen=True)
class CameraConfig:
    """Perspective camera. Default: eye at (0, 0, 2) looking at the origin, 90 degree vertical FOV."""

    eye: tuple[float, float, float] = (0.0, 0.0, 2.0)
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    up: tuple[float, float, float] = (0.0, 1.0, 0.0)
    fov_y: float = 90.0  # vertical field of view, degrees

    def validate(self, path: str = "camera") -> None:
        for name in ("eye", "target", "up"):
            for i, v in enumerate(getattr(self, name)):
                _check_number(f"{path}.{name}[{i}]", v, -MAX_COORDINATE, MAX_COORDINATE)
        _check_number(f"{path}.fov_y", self.fov_y, 0.0, 179.0, strict_lo=True)
        fwd = [t - e for t, e in zip(self.target, self.eye)]
        if math.hypot(*fwd) == 0.0:
            _fail(f"{path}.target", "must differ from camera.eye")
        cross = (fwd[1] * self.up[2] - fwd[2] * self.up[1], fwd[2] * self.up[0] - fwd[0] * self.up[2],
                 fwd[0] * self.up[1] - fwd[1] * self.up[0])
        if math.hypot(*cross) < 1e-9 * max(1.0, math.hypot(*fwd) * math.hypot(*self.up)):
            _fail(f"{path}.up", "must not be parallel to the viewing direction")


@dataclass(frozen=True)
class LightConfig:
    """One point light; its radiance is each object's own colour. Default: at the eye, ka = 0.1."""

    position: tuple[float, float, float] = (0.0, 0.0, 2.0)
    ambient: float = 0.1  # ka
    shadows: bool = extension(False)  # hard shadows: shadow rays against every object (and the ground)

    def validate(self, path: str = "light") -> None:
        for i, v in enumerate(self.position):
            _check_number(f"{path}.position[{i}]", v, -MAX_COORDINATE, MAX_COORDINATE)
        _check_number(f"{path}.ambient", self.ambient, 0.0, 1.0)


@dataclass(frozen=True)
class SamplingConfig:
    """Uniform ranges (inclusive) of the per-scene and per-object random variables."""

    num_objects: tuple[int, int] = (1, 20)
    background_noise_scale: tuple[float, float] = (1.0, 20.0)
    object_scale: tuple[float, float] = (0.1, 0.7)
    position_x: tuple[float, float] = (-1.5, 1.5)
    position_y: tuple[float, float] = (-1.5, 1.5)
    position_z: tuple[float, float] = (0.0, 0.0)
    diffuse: tuple[float, float] = (0.25, 0.75)  # kd
    specular: tuple[float, float] = (0.0, 0.5)  # ks
    shininess: tuple[float, float] = (10.0, 100.0)
    min_noise_scale: float = 1.0  # noise scales are clamped to at least this
    rotation: str = extension("none")  # object orientations: one of ROTATIONS
    rotation_max: float = extension(180.0)  # degrees: the largest angle of "view" and "vertical" rotations
    thickness: tuple[float, float] = extension((0.25, 0.5))  # torus tube / capsule radius, as a fraction

    def validate(self, path: str = "sampling") -> None:
        _check_range(f"{path}.num_objects", self.num_objects, 0, 10_000)
        _check_range(f"{path}.background_noise_scale", self.background_noise_scale, 0.0, MAX_NOISE_SCALE)
        _check_range(f"{path}.object_scale", self.object_scale, 0.0, MAX_OBJECT_SCALE)
        if self.object_scale[0] <= 0.0:
            _fail(f"{path}.object_scale", f"must be > 0, got {list(self.object_scale)}")
        for name in ("position_x", "position_y", "position_z"):
            _check_range(f"{path}.{name}", getattr(self, name), -MAX_COORDINATE, MAX_COORDINATE)
        _check_range(f"{path}.diffuse", self.diffuse, 0.0, 1.0)
        _check_range(f"{path}.specular", self.specular, 0.0, 1.0)
        _check_range(f"{path}.shininess", self.shininess, 0.0, MAX_SHININESS)
        _check_number(f"{path}.min_noise_scale", self.min_noise_scale, 0.0, MAX_NOISE_SCALE)
        if self.rotation not in ROTATIONS:
            _fail(f"{path}.rotation", f"must be one of {list(ROTATIONS)}, got {self.rotation!r}")
        _check_number(f"{path}.rotation_max", self.rotation_max, 0.0, 180.0)
        _check_range(f"{path}.thickness", self.thickness, 0.0, 0.95)
        if self.thickness[0] <= 0.0:
            _fail(f"{path}.thickness", f"must be > 0, got {list(self.thickness)}")


@dataclass(frozen=True)
class GroundConfig:
    """A horizontal ground plane y = ``height`` under the objects: grey, noise-textured, lit by the
    light and receiving shadows, label 0 (background). Objects rest on it, or float above it by a
    distance drawn from ``lift``; their x and z come from the sampling ranges."""

    height: float = -1.0
    noise_scale: float = 4.0  # texture t = 0.5 noise(r (x, z, 0)) + 0.5 at the world point (x, y, z)
    albedo: float = 0.7  # grey level of the lit ground
    diffuse: float = 0.8  # kd of the ground
    lift: tuple[float, float] = (0.0, 0.0)

    def validate(self, path: str = "ground") -> None:
        _check_number(f"{path}.height", self.height, -MAX_COORDINATE, MAX_COORDINATE)
        _check_number(f"{path}.noise_scale", self.noise_scale, 0.0, MAX_NOISE_SCALE)
        _check_number(f"{path}.albedo", self.albedo, 0.0, 1.0)
        _check_number(f"{path}.diffuse", self.diffuse, 0.0, 1.0)
        _check_range(f"{path}.lift", self.lift, 0.0, MAX_COORDINATE)


@dataclass(frozen=True)
class AntialiasConfig:
    """Edge handling: coverage samples per pixel and the ignore label on object borders."""

    samples: int = 4  # 4, 8 or 16 coverage samples (Direct3D MSAA positions)
    ignore_edges: bool = True  # label pixels whose samples disagree as ignore_index
    ignore_index: int = 255

    def validate(self, path: str = "antialias") -> None:
        if self.samples not in MSAA_PATTERNS:
            _fail(f"{path}.samples", f"must be one of {sorted(MSAA_PATTERNS)}, got {shown(self.samples)}")
        _check_number(f"{path}.ignore_index", self.ignore_index, 0, 255)


@dataclass(frozen=True)
class SceneConfig:
    """Everything that defines the distribution of scenes and how they are rendered.

    Scene presets are JSON files in ``fakeballoons/configs/scenes/`` (``report`` is the default
    configuration); a preset or a configuration file may extend another with ``"base": NAME``.
    """

    PRESETS: typing.ClassVar[str] = "scenes"

    height: int = 512
    width: int = 512
    noise: str = "perlin"  # "perlin" or "sc" (sparse convolution)
    camera: CameraConfig = field(default_factory=CameraConfig)
    light: LightConfig = field(default_factory=LightConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    classes: tuple[ClassPrior, ...] = DEFAULT_CLASSES
    antialias: AntialiasConfig = field(default_factory=AntialiasConfig)
    # Extensions beyond the report (off by default, and then left out of the JSON):
    class_table: ClassTable | None = extension(None)  # generated classes, in place of ``classes``
    texture: str = extension("normal")  # where objects are textured: one of TEXTURES (classes may override)
    ground: GroundConfig | None = extension(None)

    def __post_init__(self):
        if canonical_noise(self.noise):
            object.__setattr__(self, "noise", canonical_noise(self.noise))
        if self.class_table is not None:
            self.class_table.validate()
            if self.classes != DEFAULT_CLASSES and self.classes != _generated(self.class_table):
                _fail("class_table", "give either classes or class_table, not both")
            object.__setattr__(self, "classes", _generated(self.class_table))
        self.validate()

    @property
    def num_classes(self) -> int:
        """K, the number of object classes (labels 1..K; 0 is background)."""
        return len(self.classes)

    def validate(self) -> None:
        for name in ("height", "width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 8192:
                _fail(name, f"must be an integer from 1 to 8192, got {shown(value)}")
        if self.noise not in NOISE_FUNCTIONS:
            _fail("noise", f"must be one of {list(NOISE_FUNCTIONS)}, got {self.noise!r}")
        self.camera.validate()
        self.light.validate()
        self.sampling.validate()
        if not 1 <= len(self.classes) <= 254:
            _fail("classes", f"must list 1 to 254 classes, got {len(self.classes)}")
        for k, prior in enumerate(self.classes):
            prior.validate(f"classes[{k}]")
        self.antialias.validate()
        if 0 <= self.antialias.ignore_index <= self.num_classes:
            _fail("antialias.ignore_index",
                  f"{self.antialias.ignore_index} collides with a label (0..{self.num_classes})")
        if self.texture not in TEXTURES:
            _fail("texture", f"must be one of {list(TEXTURES)}, got {self.texture!r}")
        if self.ground is not None:
            self.ground.validate()

    @functools.cached_property
    def label_colours(self) -> tuple[tuple[int, int, int], ...]:
        """The label colour of each class (1..K): its own, or HSL(mean hue, 1, 0.5); a class whose
        hue has no mean gets a distinct colour by its index. Computed once per configuration (in
        exact fractions: a few milliseconds, which every written label map would otherwise pay)."""
        fallback = distinct_colours(self.num_classes)
        return tuple(c.colour or fallback[k] for k, c in enumerate(self.classes))

    @functools.cached_property
    def extended(self) -> bool:
        """True when any extension beyond the report's scene model is in use (then scenes draw
        the extension attributes too, and render with the general kernel)."""
        s = self.sampling
        return (self.class_table is not None or self.texture != "normal" or self.ground is not None
                or self.light.shadows or s.rotation != "none" or not all(c.plain for c in self.classes))

    def replace(self, **changes) -> SceneConfig:
        """A copy with some top-level fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = to_plain(self)
        if self.class_table is not None:
            del data["classes"]  # generated from the table
        return data

    def to_json(self, indent: int | None = 2) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SceneConfig:
        """Build from plain data; missing keys take defaults, unknown keys are errors."""
        return from_plain(cls, data)

    @classmethod
    def from_json(cls, text: str) -> SceneConfig:
        return cls.from_dict(parse_json(text, "config"))


@functools.lru_cache(maxsize=16)
def load_scene(name: str | None) -> SceneConfig:
    """A scene configuration: a preset name (``configs/scenes/``), a JSON file (keys it omits take
    defaults, ``"base"`` extends a preset), or the defaults (the report's scenes) for None."""
    if name is None:
        return SceneConfig()
    return load_preset(SceneConfig, name, "scene configuration")


def _generated(table: ClassTable) -> tuple[ClassPrior, ...]:
    return table.generate()


__all__ += ["SHAPES", "TEXTURES", "distinct_colours", "hsl_colour", "label_colour"]
