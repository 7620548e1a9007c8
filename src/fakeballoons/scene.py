"""Scenes as plain data, and the only place they are drawn at random.

A scene is a pure function of (configuration, seed, index): ``sample_scene``
derives its generator from ``numpy.random.SeedSequence(seed, spawn_key=(index,))``
and touches no global random state, so scene ``index`` is the same whether it
is rendered alone, on the fly in a Dataset, or by any worker of ``generate``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import ClassPrior, SceneConfig, hsl_colour
from .errors import UserError

__all__ = ["OBJECT_FIELDS", "SCENE_KINDS", "Scene", "SceneObject", "prototype_scene", "sample_scene",
           "sample_scene_table",
           "single_object_scene"]


#: The kinds of scene: a random scene of a dataset (Task 2/4), the class prototypes side by side
#: (Task 3, Figure 2), and one object at the origin (Task 1).
SCENE_KINDS = ("random", "prototypes", "single")


@dataclass(frozen=True)
class SceneObject:
    """One ellipsoid: a unit sphere scaled by ``scale``, elongated by ``elongation``, moved to (x, y, z)."""

    class_id: int  # 1..K; the label drawn for this object
    hue: float  # degrees in [0, 360)
    elongation: float  # rho in [0, 1]; 0.5 is a sphere, larger is wider
    noise_scale: float  # r, texture noise is taken at r * unit normal
    scale: float  # s
    x: float
    y: float
    z: float
    kd: float  # diffuse coefficient
    ks: float  # specular coefficient
    shininess: float  # Phong exponent

    @property
    def semi_axes(self) -> tuple[float, float, float]:
        """s * (a_x, a_y, 1) with a_x = rho k, a_y = (1 - rho) k, k = sqrt(2) / |(rho, 1 - rho)|."""
        rho = self.elongation
        k = math.sqrt(2.0) / math.hypot(rho, 1.0 - rho)
        return (self.scale * rho * k, self.scale * (1.0 - rho) * k, self.scale)

    @property
    def colour(self) -> tuple[float, float, float]:
        """Emitted radiance Le: HSL(hue, 1, 0.5) as RGB in [0, 1]."""
        return hsl_colour(self.hue)


@dataclass(frozen=True)
class Scene:
    """Everything sampled for one image. ``to_dict()`` is JSON-safe; ``from_dict`` inverts it."""

    background_noise_scale: float
    objects: tuple[SceneObject, ...]
    seed: int | None = None
    index: int | None = None
    kind: str = "random"  # one of SCENE_KINDS

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["objects"] = [dataclasses.asdict(o) for o in self.objects]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scene:
        objects = tuple(SceneObject(**o) for o in data["objects"])
        return cls(**{**data, "objects": objects})

    def object_table(self) -> np.ndarray:
        """The objects as a float64 array (n, 11), one column per field of :data:`OBJECT_FIELDS`."""
        table = np.array([[getattr(o, f) for f in OBJECT_FIELDS] for o in self.objects], dtype=np.float64)
        return table.reshape(len(self.objects), len(OBJECT_FIELDS))


OBJECT_FIELDS = tuple(f.name for f in dataclasses.fields(SceneObject))
"""Columns of an object table: class_id, hue, elongation, noise_scale, scale, x, y, z, kd, ks, shininess."""


def _rng(seed: int, index: int) -> np.random.Generator:
    for name, value in (("seed", seed), ("index", index)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise UserError(f"{name} must be a non-negative integer, got {value!r}")
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(index),)))


@functools.lru_cache(maxsize=64)
def _prior_arrays(classes: tuple[ClassPrior, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cumulative class distribution, and the prior means and spreads of (hue, elongation, noise
    scale), (K, 3)."""
    weights = np.array([p.weight for p in classes])
    cdf = (weights / weights.sum()).cumsum()
    cdf /= cdf[-1]
    mean = np.array([[p.hue, p.elongation, p.noise_scale] for p in classes])
    std = np.array([[p.hue_std, p.elongation_std, p.noise_scale_std] for p in classes])
    return cdf, mean, std


def _draw_class_attributes(rng: np.random.Generator, config: SceneConfig, classes: np.ndarray):
    """Hue, elongation and noise scale of objects of the given classes (0-based), from the priors.

    h ~ N(h_k, sd_h^2) mod 360 (a true modulo), rho ~ N(rho_k, sd_rho^2) clamped to [0, 1],
    r ~ N(r_k, sd_r^2) clamped to >= min_noise_scale.
    """
    _, mean, std = _prior_arrays(config.classes)
    draws = rng.normal(mean[classes], std[classes]) if len(classes) else np.zeros((0, 3))
    hue = np.mod(draws[:, 0], 360.0)
    hue = np.where(hue >= 360.0, 0.0, hue)  # -1e-17 mod 360 rounds to 360.0
    rho = np.minimum(np.maximum(draws[:, 1], 0.0), 1.0)
    r = np.maximum(draws[:, 2], config.sampling.min_noise_scale)
    return hue, rho, r


def sample_scene_table(config: SceneConfig, seed: int, index: int) -> tuple[float, np.ndarray]:
    """Scene ``index`` of the dataset with ``seed`` as arrays: (background noise scale, object table).

    The object table is float64 (n, 11) with the columns of :data:`OBJECT_FIELDS`. This is what
    :func:`sample_scene` draws, without building Python objects: batched renderers use it.
    """
    rng = _rng(seed, index)
    s = config.sampling
    n = int(rng.integers(s.num_objects[0], s.num_objects[1] + 1))
    background = float(rng.uniform(*s.background_noise_scale))
    # rng.choice(K, size=n, p=weights / weights.sum()) draws exactly this (the same cdf, the same
    # n uniforms), without its argument checks, which cost more than the draw.
    classes = np.searchsorted(_prior_arrays(config.classes)[0], rng.random(n), side="right")
    table = np.empty((n, len(OBJECT_FIELDS)))
    table[:, 0] = classes + 1
    table[:, 1], table[:, 2], table[:, 3] = _draw_class_attributes(rng, config, classes)
    for column, bounds in enumerate((s.object_scale, s.position_x, s.position_y, s.position_z, s.diffuse,
                                     s.specular, s.shininess), start=4):
        table[:, column] = rng.uniform(*bounds, size=n)
    return background, table


def sample_scene(config: SceneConfig, seed: int, index: int) -> Scene:
    """Draw scene ``index`` of the dataset with ``seed`` from the distributions of SPEC.md section 1."""
    background, table = sample_scene_table(config, seed, index)
    objects = tuple(SceneObject(int(row[0]), *row[1:]) for row in table.tolist())
    return Scene(background, objects, seed=int(seed), index=int(index), kind="random")


def single_object_scene(hue: float = 150.0, elongation: float = 0.5, noise_scale: float = 25.0, *,
                        scale: float = 1.0, kd: float = 0.5, ks: float = 0.25, shininess: float = 50.0,
                        background_noise_scale: float = 10.0, class_id: int = 1) -> Scene:
    """The report's Task 1 scene: one object at the origin with the given colour, elongation and texture."""
    obj = SceneObject(class_id, float(hue) % 360.0, float(elongation), float(noise_scale), float(scale),
                      0.0, 0.0, 0.0, float(kd), float(ks), float(shininess))
    return Scene(float(background_noise_scale), (obj,), kind="single")


def prototype_scene(config: SceneConfig, *, random: bool = False, seed: int = 0, index: int = 0,
                    spacing: float = 1.2, scale: float = 0.5, kd: float = 0.5, ks: float = 0.25,
                    shininess: float = 50.0, background_noise_scale: float = 10.0) -> Scene:
    """The report's Task 3 scene (Figure 2): one object per class side by side.

    Objects sit at x = spacing * (k - (K - 1) / 2), so at -1.2, 0, 1.2 for three classes. With
    ``random=False`` each has its class's mean hue, elongation and noise scale; with ``random=True``
    they are drawn from the priors with the generator of (seed, index).
    """
    k = config.num_classes
    classes = np.arange(k)
    if random:
        hue, rho, r = _draw_class_attributes(_rng(seed, index), config, classes)
    else:
        hue = np.array([p.hue % 360.0 for p in config.classes])
        rho = np.array([p.elongation for p in config.classes])
        r = np.array([max(p.noise_scale, config.sampling.min_noise_scale) for p in config.classes])
    objects = tuple(
        SceneObject(i + 1, float(hue[i]), float(rho[i]), float(r[i]), scale,
                    spacing * (i - (k - 1) / 2.0), 0.0, 0.0, kd, ks, shininess)
        for i in range(k)
    )
    return Scene(float(background_noise_scale), objects, seed=seed if random else None,
                 index=index if random else None, kind="prototypes")
