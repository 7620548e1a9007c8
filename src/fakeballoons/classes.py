"""Object classes: the distribution of every attribute of a class's objects, and generated class tables.

A class (``ClassPrior``) sets how its objects look. The report's classes differ by Gaussian priors
over hue, elongation and noise scale; here every attribute may be a distribution (``Dist``):

- a plain number: for hue, elongation and noise scale the mean of the report's normal prior (with
  ``hue_std`` etc.), for any other attribute a fixed value;
- ``{"normal": [mean, std]}``, ``{"uniform": [low, high]}`` or ``{"choice": [a, b, ...]}`` (with
  optional ``"weights"``), in JSON as in Python.

After drawing, the report's rules apply: hue modulo 360, elongation clamped to [0, 1], noise scale
clamped to at least ``sampling.min_noise_scale``. "Classes by shape only" is then one hue
distribution for every class, ``{"uniform": [0, 360]}``. ``ClassTable`` generates K classes (up to
254) whose attribute means are drawn from stated distributions with their own seed, each with a
distinct label colour.
"""

from __future__ import annotations

import colorsys
import functools
import math
import statistics
from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

import numpy as np

from .codec import check_number, extension, shown
from .errors import ConfigError
from .names import NOISE_FUNCTIONS

__all__ = ["SHAPES", "TEXTURES", "ClassPrior", "ClassTable", "Dist", "distinct_colours", "hsl_colour", "label_colour"]

#: Shape families, in the kernels' numbering (see render/shapes.py for their parameters).
SHAPES = ("ellipsoid", "box", "cylinder", "cone", "capsule", "torus")
#: Each shape family's code in packed object rows and the kernels: its index in SHAPES.
ELLIPSOID, BOX, CYLINDER, CONE, CAPSULE, TORUS = range(len(SHAPES))
#: The meaningful ranges of a class's attributes (a finite but absurd value such as 1e308 is refused
#: with its range): hue in degrees (taken modulo 360; a range may wrap, e.g. uniform 300 to 420),
#: noise scale (as the scene's), size (as the scene's object scale), relative weights.
HUE_RANGE = (-360.0, 720.0)
MAX_HUE_STD = 360.0
MAX_NOISE_SCALE = 10_000.0
MAX_SIZE = 100.0
MAX_WEIGHT = 1e6

#: Where an object's texture is evaluated: the view-space unit normal (the report's), the
#: object-space surface point (solid texture, for flat faces), or nowhere (t = 1).
TEXTURES = ("normal", "solid", "none")


def hsl_colour(hue: float, saturation: float = 1.0, lightness: float = 0.5) -> tuple[float, float, float]:
    """RGB in [0, 1] of HSL(hue, saturation, lightness), hue in degrees (taken modulo 360)."""
    return colorsys.hls_to_rgb((hue % 360.0) / 360.0, lightness, saturation)


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


@functools.lru_cache(maxsize=8)
def distinct_colours(count: int) -> tuple[tuple[int, int, int], ...]:
    """``count`` (<= 254) label colours, all different from each other, from black (background) and
    from white (ignore): hues a golden angle apart, cycling through three lightnesses and two
    saturations, so neighbouring class indices differ strongly."""
    out: list[tuple[int, int, int]] = []
    seen = {(0, 0, 0), (255, 255, 255)}
    k = 0
    while len(out) < count:
        hue = (k * 137.50776405003785) % 360.0
        lightness = (0.5, 0.35, 0.65)[(k // 3) % 3]
        saturation = (1.0, 0.6)[(k // 9) % 2]
        rgb = tuple(int(math.floor(c * 255 + 0.5)) for c in hsl_colour(hue, saturation, lightness))
        if rgb not in seen:
            seen.add(rgb)
            out.append(rgb)  # type: ignore[arg-type]
        k += 1
    return tuple(out)


@dataclass(frozen=True)
class Dist:
    """A distribution of one attribute: exactly one of ``normal`` (mean, std), ``uniform`` (low,
    high) or ``choice`` (values, with optional ``weights``)."""

    normal: tuple[float, float] | None = extension(None)
    uniform: tuple[float, float] | None = extension(None)
    choice: tuple[float | str, ...] | None = extension(None)
    weights: tuple[float, ...] | None = extension(None)

    def validate(self, path: str, lo: float | None = None, hi: float | None = None,
                 names: tuple[str, ...] | None = None) -> None:
        """Check the parameters; ``names``: the allowed choices of a categorical attribute."""
        given = [k for k in ("normal", "uniform", "choice") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ConfigError(path, "a distribution needs exactly one of normal, uniform, choice; "
                                    f"got {given or 'none'}")
        if names is not None and self.choice is None:
            raise ConfigError(path, f"must be one of {list(names)} or a choice of them, got {given[0]}")
        if self.normal is not None:
            check_number(f"{path}.normal[0]", self.normal[0], lo, hi)
            # a spread wider than the attribute's whole range is no spread the draws can show
            check_number(f"{path}.normal[1]", self.normal[1], 0.0, None if lo is None or hi is None else hi - lo)
        if self.uniform is not None:
            a, b = self.uniform
            check_number(f"{path}.uniform[0]", a, lo, hi)
            check_number(f"{path}.uniform[1]", b, lo, hi)
            if a > b:
                raise ConfigError(f"{path}.uniform", f"lower bound {a} is above upper bound {b}")
        if self.choice is not None:
            if not self.choice:
                raise ConfigError(f"{path}.choice", "must list at least one value")
            for i, v in enumerate(self.choice):
                if names is not None:
                    if v not in names:
                        raise ConfigError(f"{path}.choice[{i}]", f"must be one of {list(names)}, got {v!r}")
                elif isinstance(v, str):
                    raise ConfigError(f"{path}.choice[{i}]", f"must be a number, got {v!r}")
                else:
                    check_number(f"{path}.choice[{i}]", v, lo, hi)
        if self.weights is not None:
            if self.choice is None or len(self.weights) != len(self.choice):
                raise ConfigError(f"{path}.weights", "needs a choice with as many values")
            for i, w in enumerate(self.weights):
                check_number(f"{path}.weights[{i}]", w, 0.0, MAX_WEIGHT)
            if sum(self.weights) <= 0:
                raise ConfigError(f"{path}.weights", "must not all be zero")

    @property
    def mean(self) -> float | None:
        """The mean of a normal or uniform distribution (None for a choice)."""
        if self.normal is not None:
            return float(self.normal[0])
        if self.uniform is not None:
            return 0.5 * (self.uniform[0] + self.uniform[1])
        return None

    def indices(self, u: np.ndarray) -> np.ndarray:
        """Index into ``choice`` of each uniform draw u in [0, 1) (inverse transform sampling)."""
        w = np.ones(len(self.choice)) if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        cdf = np.cumsum(w) / w.sum()
        return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)

    def from_uniform(self, u: np.ndarray) -> np.ndarray:
        """Values of a numeric distribution from uniform draws u in [0, 1) (inverse transform)."""
        u = np.asarray(u, dtype=np.float64)
        if self.uniform is not None:
            return self.uniform[0] + (self.uniform[1] - self.uniform[0]) * u
        if self.normal is not None:
            inv = statistics.NormalDist().inv_cdf
            z = np.array([inv(min(max(x, 2.0 ** -60), 1.0 - 2.0 ** -53)) for x in u.ravel()]).reshape(u.shape)
            return self.normal[0] + self.normal[1] * z
        return np.asarray(self.choice, dtype=np.float64)[self.indices(u)]

    def from_normal(self, z: np.ndarray) -> np.ndarray:
        """Values from standard normal draws z (a normal directly, others through u = Phi(z))."""
        z = np.asarray(z, dtype=np.float64)
        if self.normal is not None:
            return self.normal[0] + self.normal[1] * z
        erfc = np.vectorize(math.erfc, otypes=[np.float64])
        return self.from_uniform(0.5 * erfc(-z / math.sqrt(2.0)))


def _categorical(path: str, value, names: tuple[str, ...], optional: bool) -> None:
    if value is None and optional:
        return
    if isinstance(value, Dist):
        value.validate(path, names=names)
    elif value not in names:
        raise ConfigError(path, f"must be one of {list(names)} or a choice of them, got {value!r}")


def _check_spreads(path: str, prior) -> None:
    """The normal priors' spreads (``hue_std`` etc.) of a class or a class table, within their ranges."""
    for name, top in (("hue_std", MAX_HUE_STD), ("elongation_std", 1.0), ("noise_scale_std", MAX_NOISE_SCALE)):
        check_number(f"{path}.{name}", getattr(prior, name), 0.0, top)


def _numeric(path: str, value, lo: float | None = None, hi: float | None = None, strict_lo: bool = False) -> None:
    if isinstance(value, Dist):
        value.validate(path, lo, hi)
    else:
        check_number(path, value, lo, hi, strict_lo)


@dataclass(frozen=True)
class ClassPrior:
    """How the objects of one class look: a distribution per attribute (see the module docstring).

    Hue (degrees), elongation and noise scale given as numbers are the means of the report's normal
    priors with ``*_std`` spreads. The other attributes are extensions, fixed unless given as
    distributions: shape family, size (the object scale; default the scene's uniform range),
    noise function and texture space (default the scene's), saturation and lightness of the colour
    HSL(h, s, l), and the label colour (default HSL(hue, 1, 0.5) of a hue given as a number).
    """

    name: str
    hue: float | Dist
    elongation: float | Dist
    noise_scale: float | Dist
    hue_std: float = 50.0
    elongation_std: float = 0.05
    noise_scale_std: float = 5.0
    weight: float = 1.0  # relative probability of the class
    shape: str | Dist = extension("ellipsoid")
    size: Dist | None = extension(None)
    noise: str | Dist | None = extension(None)
    texture: str | None = extension(None)
    saturation: float | Dist = extension(1.0)
    lightness: float | Dist = extension(0.5)
    label_colour: tuple[int, int, int] | None = extension(None)

    #: The attributes drawn per object with the report's normal rule when given as numbers.
    NORMAL_ATTRIBUTES: ClassVar[tuple[str, ...]] = ("hue", "elongation", "noise_scale")

    @property
    def colour(self) -> tuple[int, int, int] | None:
        """Label colour: ``label_colour`` if given, else HSL(hue, 1, 0.5) of a hue given as a number
        (the report's colours, exact and rounded half to even); None for a hue distribution, whose
        class then gets a distinct colour by its index (``SceneConfig.label_colours``)."""
        if self.label_colour is not None:
            return tuple(self.label_colour)  # type: ignore[return-value]
        return None if isinstance(self.hue, Dist) else label_colour(self.hue)

    def distribution(self, name: str) -> Dist:
        """The distribution of hue, elongation or noise scale (numbers: the report's normal prior)."""
        value = getattr(self, name)
        return value if isinstance(value, Dist) else Dist(normal=(value, getattr(self, f"{name}_std")))

    @property
    def plain(self) -> bool:
        """True for a class of the report's kind: normal priors, one ellipsoid look, scene defaults."""
        return (not any(isinstance(getattr(self, n), Dist) for n in self.NORMAL_ATTRIBUTES)
                and self.shape == "ellipsoid" and self.size is None and self.noise is None and self.texture is None
                and self.saturation == 1.0 and self.lightness == 0.5)

    def validate(self, path: str) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"{path}.name", "must be a non-empty string")
        _numeric(f"{path}.hue", self.hue, *HUE_RANGE)
        _numeric(f"{path}.elongation", self.elongation, 0.0, 1.0)
        _numeric(f"{path}.noise_scale", self.noise_scale, 0.0, MAX_NOISE_SCALE,
                 strict_lo=not isinstance(self.noise_scale, Dist))
        _check_spreads(path, self)
        check_number(f"{path}.weight", self.weight, 0.0, MAX_WEIGHT, strict_lo=True)
        _categorical(f"{path}.shape", self.shape, SHAPES, optional=False)
        if self.size is not None:
            self.size.validate(f"{path}.size", 0.0, MAX_SIZE)
        _categorical(f"{path}.noise", self.noise, NOISE_FUNCTIONS, optional=True)
        _categorical(f"{path}.texture", self.texture, TEXTURES, optional=True)
        if isinstance(self.texture, Dist):
            raise ConfigError(f"{path}.texture", "must be one texture space, not a distribution")
        _numeric(f"{path}.saturation", self.saturation, 0.0, 1.0)
        _numeric(f"{path}.lightness", self.lightness, 0.0, 1.0)
        if self.label_colour is not None and not all(0 <= c <= 255 for c in self.label_colour):
            raise ConfigError(f"{path}.label_colour", f"must be 8-bit RGB, got {shown(list(self.label_colour))}")


DEFAULT_CLASSES = (
    ClassPrior("class1", 150.0, 0.55, 5.0),
    ClassPrior("class2", 250.0, 0.45, 17.5),
    ClassPrior("class3", 350.0, 0.50, 30.0),
)


@dataclass(frozen=True)
class ClassTable:
    """K generated classes: each class's shape and attribute means are drawn, with ``seed``, from
    the distributions below; within a class, objects spread around its means by the ``*_std``.

    Attributes named in ``nuisance`` are not class cues: every class draws them, per object, from
    the table's distribution itself (e.g. ``["hue", "noise_scale"]`` with the default uniform
    ranges: colour and texture as random nuisances, classes told apart by shape and elongation).
    """

    count: int
    seed: int = 0
    shape: Dist = Dist(choice=SHAPES)
    hue: Dist = Dist(uniform=(0.0, 360.0))
    elongation: Dist = Dist(uniform=(0.25, 0.75))
    noise_scale: Dist = Dist(uniform=(2.0, 40.0))
    hue_std: float = 15.0
    elongation_std: float = 0.03
    noise_scale_std: float = 3.0
    nuisance: tuple[str, ...] = ()

    def validate(self, path: str = "class_table") -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or not 1 <= self.count <= 254:
            raise ConfigError(f"{path}.count", f"must be an integer from 1 to 254 (label 255 is ignore), "
                                               f"got {shown(self.count)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ConfigError(f"{path}.seed", f"must be an integer from 0 to {2**63 - 1}, got {shown(self.seed)}")
        self.shape.validate(f"{path}.shape", names=SHAPES)
        self.hue.validate(f"{path}.hue", *HUE_RANGE)
        self.elongation.validate(f"{path}.elongation", 0.0, 1.0)
        self.noise_scale.validate(f"{path}.noise_scale", 0.0, MAX_NOISE_SCALE)
        _check_spreads(path, self)
        for i, name in enumerate(self.nuisance):
            if name not in ClassPrior.NORMAL_ATTRIBUTES:
                raise ConfigError(f"{path}.nuisance[{i}]", f"must be one of {list(ClassPrior.NORMAL_ATTRIBUTES)}, "
                                                           f"got {name!r}")

    def generate(self) -> tuple[ClassPrior, ...]:
        """The K classes: a pure function of this table (its seed included)."""
        rng = np.random.default_rng(np.random.SeedSequence(self.seed))
        u = rng.random((self.count, 4))  # shape, hue, elongation, noise scale of each class
        shapes = self.shape.indices(u[:, 0])
        means = {name: getattr(self, name).from_uniform(u[:, j])
                 for j, name in enumerate(ClassPrior.NORMAL_ATTRIBUTES, start=1)}
        means["hue"] = np.mod(means["hue"], 360.0)
        means["elongation"] = np.clip(means["elongation"], 0.0, 1.0)
        means["noise_scale"] = np.maximum(means["noise_scale"], 1e-3)
        colours = distinct_colours(self.count)
        classes = []
        for k in range(self.count):
            attrs = {name: (getattr(self, name) if name in self.nuisance else float(means[name][k]))
                     for name in ClassPrior.NORMAL_ATTRIBUTES}
            classes.append(ClassPrior(
                f"class{k + 1}", **attrs, hue_std=self.hue_std, elongation_std=self.elongation_std,
                noise_scale_std=self.noise_scale_std, shape=str(self.shape.choice[int(shapes[k])]),
                label_colour=colours[k]))
        return tuple(classes)
