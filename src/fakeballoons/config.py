"""Scene configuration: frozen dataclasses whose defaults are the report's scenes (SPEC.md section 1).

A configuration is data. ``SceneConfig.to_json()`` / ``SceneConfig.from_json()``
round-trip it exactly; ``from_dict`` rejects unknown keys and wrong types and
every check names the offending field (``sampling.object_scale``,
``classes[1].hue_std``), so a bad config file fails with one clear line.
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
import typing
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .codec import from_plain, parse_json, to_plain
from .errors import ConfigError

__all__ = [
    "AntialiasConfig",
    "CameraConfig",
    "ClassPrior",
    "LightConfig",
    "NOISE_FUNCTIONS",
    "canonical_noise",
    "SamplingConfig",
    "SceneConfig",
    "hsl_colour",
    "label_colour",
]

#: Canonical noise names, in the kernels' numbering; "sc" is sparse convolution noise.
NOISE_FUNCTIONS = ("perlin", "sc")
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


def hsl_colour(hue: float) -> tuple[float, float, float]:
    """RGB in [0, 1] of HSL(hue, 1, 0.5), hue in degrees (taken modulo 360)."""
    return colorsys.hls_to_rgb((hue % 360.0) / 360.0, 0.5, 1.0)


def label_colour(hue: float) -> tuple[int, int, int]:
    """8-bit RGB of HSL(hue, 1, 0.5), computed exactly and rounded half to even.

    Exact arithmetic matters: for hue 350 the blue channel is exactly 42.5, which floating point
    evaluates to 42.50000000000008 and rounds to 43; the report's label files hold 42.
    """
    h = Fraction(hue) % 360 / 60
    x = 1 - abs(h % 2 - 1)  # the second-largest channel; the largest is 1, the smallest 0
    sector = int(h)
    rgb = [(1, x, 0), (x, 1, 0), (0, 1, x), (0, x, 1), (x, 0, 1), (1, 0, x)][sector]
    return tuple(round(Fraction(c) * 255) for c in rgb)  # type: ignore[return-value]


def _fail(path: str, message: str) -> typing.NoReturn:
    raise ConfigError(path, message)


def _check_range(path: str, value: tuple[float, float], lo: float | None = None, hi: float | None = None):
    a, b = value
    if not (math.isfinite(a) and math.isfinite(b)):
        _fail(path, f"must be finite, got {list(value)}")
    if a > b:
        _fail(path, f"lower bound {a} is above upper bound {b}")
    if lo is not None and a < lo:
        _fail(path, f"must be >= {lo}, got {list(value)}")
    if hi is not None and b > hi:
        _fail(path, f"must be <= {hi}, got {list(value)}")


def _check_number(path: str, value: float, lo: float | None = None, hi: float | None = None,
                  strict_lo: bool = False):
    if not math.isfinite(value):
        _fail(path, f"must be finite, got {value}")
    if lo is not None and (value < lo or (strict_lo and value == lo)):
        _fail(path, f"must be {'>' if strict_lo else '>='} {lo}, got {value}")
    if hi is not None and value > hi:
        _fail(path, f"must be <= {hi}, got {value}")


@dataclass(frozen=True)
class CameraConfig:
    """Perspective camera. Default: eye at (0, 0, 2) looking at the origin, 90 degree vertical FOV."""

    eye: tuple[float, float, float] = (0.0, 0.0, 2.0)
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    up: tuple[float, float, float] = (0.0, 1.0, 0.0)
    fov_y: float = 90.0  # vertical field of view, degrees

    def validate(self, path: str = "camera") -> None:
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

    def validate(self, path: str = "light") -> None:
        _check_number(f"{path}.ambient", self.ambient, 0.0, 1.0)


@dataclass(frozen=True)
class ClassPrior:
    """Gaussian prior of one object class over hue (degrees), elongation and noise scale."""

    name: str
    hue: float
    elongation: float
    noise_scale: float
    hue_std: float = 50.0
    elongation_std: float = 0.05
    noise_scale_std: float = 5.0
    weight: float = 1.0  # relative probability of the class

    @property
    def colour(self) -> tuple[int, int, int]:
        """Label colour: HSL(hue, 1, 0.5) as 8-bit RGB, exact and rounded half to even (SPEC table)."""
        return label_colour(self.hue)

    def validate(self, path: str) -> None:
        if not self.name:
            _fail(f"{path}.name", "must be a non-empty string")
        _check_number(f"{path}.hue", self.hue)
        _check_number(f"{path}.elongation", self.elongation, 0.0, 1.0)
        _check_number(f"{path}.noise_scale", self.noise_scale, 0.0, strict_lo=True)
        for name in ("hue_std", "elongation_std", "noise_scale_std"):
            _check_number(f"{path}.{name}", getattr(self, name), 0.0)
        _check_number(f"{path}.weight", self.weight, 0.0, strict_lo=True)


DEFAULT_CLASSES = (
    ClassPrior("class1", 150.0, 0.55, 5.0),
    ClassPrior("class2", 250.0, 0.45, 17.5),
    ClassPrior("class3", 350.0, 0.50, 30.0),
)


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

    def validate(self, path: str = "sampling") -> None:
        _check_range(f"{path}.num_objects", self.num_objects, 0, 10_000)
        _check_range(f"{path}.background_noise_scale", self.background_noise_scale, 0.0)
        _check_range(f"{path}.object_scale", self.object_scale, 0.0)
        if self.object_scale[0] <= 0.0:
            _fail(f"{path}.object_scale", f"must be > 0, got {list(self.object_scale)}")
        for name in ("position_x", "position_y", "position_z"):
            _check_range(f"{path}.{name}", getattr(self, name))
        _check_range(f"{path}.diffuse", self.diffuse, 0.0)
        _check_range(f"{path}.specular", self.specular, 0.0)
        _check_range(f"{path}.shininess", self.shininess, 0.0)
        _check_number(f"{path}.min_noise_scale", self.min_noise_scale, 0.0)


@dataclass(frozen=True)
class AntialiasConfig:
    """Edge handling: coverage samples per pixel and the ignore label on object borders."""

    samples: int = 4  # 4, 8 or 16 coverage samples (Direct3D MSAA positions)
    ignore_edges: bool = True  # label pixels whose samples disagree as ignore_index
    ignore_index: int = 255

    def validate(self, path: str = "antialias") -> None:
        if self.samples not in MSAA_PATTERNS:
            _fail(f"{path}.samples", f"must be one of {sorted(MSAA_PATTERNS)}, got {self.samples}")
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

    def __post_init__(self):
        if canonical_noise(self.noise):
            object.__setattr__(self, "noise", canonical_noise(self.noise))
        self.validate()

    @property
    def num_classes(self) -> int:
        """K, the number of object classes (labels 1..K; 0 is background)."""
        return len(self.classes)

    def validate(self) -> None:
        for name in ("height", "width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 8192:
                _fail(name, f"must be an integer from 1 to 8192, got {value!r}")
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

    def replace(self, **changes) -> SceneConfig:
        """A copy with some top-level fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

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
