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

from .classes import SHAPES, TEXTURES, ClassPrior, Dist
from .codec import extension, to_plain
from .config import NOISE_FUNCTIONS, SceneConfig, hsl_colour
from .errors import UserError
from .names import SCENE_KINDS

__all__ = ["OBJECT_FIELDS", "SCENE_KINDS", "Scene", "SceneObject", "prototype_scene", "sample_scene",
           "sample_scene_table",
           "single_object_scene"]


# SCENE_KINDS: a random scene of a dataset (Task 2/4), the class prototypes side by side (Task 3,
# Figure 2), and one object at the origin (Task 1).


@dataclass(frozen=True)
class SceneObject:
    """One object: a shape of ``scale`` s and ``elongation`` rho at (x, y, z), rotated by ``rotation``.

    The report's objects are ellipsoids, a unit sphere scaled to semi-axes s (a_x, a_y, 1). The
    fields after ``shininess`` are extensions, left out of ``Scene.to_dict()`` at their defaults.
    """

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
    shape: str = extension("ellipsoid")  # one of SHAPES
    rotation: tuple[float, float, float, float] = extension((1.0, 0.0, 0.0, 0.0))  # unit quaternion (w, x, y, z)
    thickness: float = extension(0.0)  # torus tube / capsule radius fraction (0: the shape has none)
    noise: str = extension("")  # noise function of its texture; "": the scene's
    texture: str = extension("")  # texture space, one of TEXTURES; "": the scene's
    saturation: float = extension(1.0)  # colour HSL(hue, saturation, lightness)
    lightness: float = extension(0.5)

    @property
    def semi_axes(self) -> tuple[float, float, float]:
        """s * (a_x, a_y, 1) with a_x = rho k, a_y = (1 - rho) k, k = sqrt(2) / |(rho, 1 - rho)|."""
        rho = self.elongation
        k = math.sqrt(2.0) / math.hypot(rho, 1.0 - rho)
        return (self.scale * rho * k, self.scale * (1.0 - rho) * k, self.scale)

    @property
    def colour(self) -> tuple[float, float, float]:
        """Emitted radiance Le: HSL(hue, saturation, lightness) as RGB in [0, 1]."""
        return hsl_colour(self.hue, self.saturation, self.lightness)


@dataclass(frozen=True)
class Scene:
    """Everything sampled for one image. ``to_dict()`` is JSON-safe; ``from_dict`` inverts it."""

    background_noise_scale: float
    objects: tuple[SceneObject, ...]
    seed: int | None = None
    index: int | None = None
    kind: str = "random"  # one of SCENE_KINDS

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scene:
        objects = tuple(SceneObject(**{**o, **({"rotation": tuple(o["rotation"])} if "rotation" in o else {})})
                        for o in data["objects"])
        return cls(**{**data, "objects": objects})

    def object_table(self) -> np.ndarray:
        """The objects as a float64 array (n, len(OBJECT_FIELDS)), one column per :data:`OBJECT_FIELDS`."""
        rows = [[o.class_id, o.hue, o.elongation, o.noise_scale, o.scale, o.x, o.y, o.z, o.kd, o.ks, o.shininess,
                 SHAPES.index(o.shape), *o.rotation, o.thickness, _id(NOISE_FUNCTIONS, o.noise),
                 _id(TEXTURES, o.texture), o.saturation, o.lightness] for o in self.objects]
        return np.array(rows, dtype=np.float64).reshape(len(self.objects), len(OBJECT_FIELDS))


def _id(names: tuple[str, ...], name: str) -> int:
    return names.index(name) if name else -1


#: Columns of an object table: the SceneObject fields, with the names of shape, noise and texture as
#: their index in SHAPES, NOISE_FUNCTIONS and TEXTURES (-1 for the scene's) and the rotation as 4.
OBJECT_FIELDS = ("class_id", "hue", "elongation", "noise_scale", "scale", "x", "y", "z", "kd", "ks", "shininess",
                 "shape", "qw", "qx", "qy", "qz", "thickness", "noise", "texture", "saturation", "lightness")
_COLUMN = {name: j for j, name in enumerate(OBJECT_FIELDS)}
_DEFAULTS = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, -1, -1, 1.0, 0.5], dtype=np.float64)


def _object(row: list[float]) -> SceneObject:
    c = _COLUMN
    return SceneObject(int(row[0]), *row[1:11], shape=SHAPES[int(row[c["shape"]])],
                       rotation=tuple(row[c["qw"]:c["qz"] + 1]), thickness=row[c["thickness"]],
                       noise=NOISE_FUNCTIONS[int(row[c["noise"]])] if row[c["noise"]] >= 0 else "",
                       texture=TEXTURES[int(row[c["texture"]])] if row[c["texture"]] >= 0 else "",
                       saturation=row[c["saturation"]], lightness=row[c["lightness"]])


def _rng(seed: int, index: int) -> np.random.Generator:
    for name, value in (("seed", seed), ("index", index)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise UserError(f"{name} must be a non-negative integer, got {value!r}")
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(index),)))


@functools.lru_cache(maxsize=64)
def _prior_arrays(classes: tuple[ClassPrior, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cumulative class distribution, and the prior means and spreads of (hue, elongation, noise
    scale), (K, 3); the means are NaN where a class gives a distribution instead."""
    weights = np.array([p.weight for p in classes])
    cdf = (weights / weights.sum()).cumsum()
    cdf /= cdf[-1]
    names = ClassPrior.NORMAL_ATTRIBUTES
    mean = np.array([[np.nan if isinstance(getattr(p, a), Dist) else getattr(p, a) for a in names] for p in classes],
                    dtype=np.float64)
    std = np.array([[p.hue_std, p.elongation_std, p.noise_scale_std] for p in classes])
    return cdf, mean, std


def _draw_class_attributes(rng: np.random.Generator, config: SceneConfig, classes: np.ndarray):
    """Hue, elongation and noise scale of objects of the given classes (0-based), from the priors.

    h ~ N(h_k, sd_h^2) mod 360 (a true modulo), rho ~ N(rho_k, sd_rho^2) clamped to [0, 1],
    r ~ N(r_k, sd_r^2) clamped to >= min_noise_scale. A class that gives an attribute as a
    distribution transforms the same standard normal draw into it (through its quantile function),
    so each object always consumes three draws here, whatever the distributions.
    """
    _, mean, std = _prior_arrays(config.classes)
    if len(classes) == 0:
        draws = np.zeros((0, 3))
    elif not np.isnan(mean).any():
        draws = rng.normal(mean[classes], std[classes])
    else:
        draws = rng.standard_normal((len(classes), 3))
        for k in np.unique(classes).tolist():
            sel = classes == k
            for j, name in enumerate(ClassPrior.NORMAL_ATTRIBUTES):
                draws[sel, j] = config.classes[k].distribution(name).from_normal(draws[sel, j])
    hue = np.mod(draws[:, 0], 360.0)
    hue = np.where(hue >= 360.0, 0.0, hue)  # -1e-17 mod 360 rounds to 360.0
    rho = np.minimum(np.maximum(draws[:, 1], 0.0), 1.0)
    r = np.maximum(draws[:, 2], config.sampling.min_noise_scale)
    return hue, rho, r


def sample_scene_table(config: SceneConfig, seed: int, index: int) -> tuple[float, np.ndarray]:
    """Scene ``index`` of the dataset with ``seed`` as arrays: (background noise scale, object table).

    The object table is float64 (n, len(OBJECT_FIELDS)). This is what :func:`sample_scene` draws,
    without building Python objects: batched renderers use it. The report's draws come first, in
    the order of the report's scenes; the extensions draw one block after them, and only when the
    configuration uses any, so the report's scenes never move.
    """
    rng = _rng(seed, index)
    s = config.sampling
    n = int(rng.integers(s.num_objects[0], s.num_objects[1] + 1))
    background = float(rng.uniform(*s.background_noise_scale))
    # rng.choice(K, size=n, p=weights / weights.sum()) draws exactly this (the same cdf, the same
    # n uniforms), without its argument checks, which cost more than the draw.
    classes = np.searchsorted(_prior_arrays(config.classes)[0], rng.random(n), side="right")
    table = np.empty((n, len(OBJECT_FIELDS)))
    table[:] = _DEFAULTS
    table[:, 0] = classes + 1
    table[:, 1], table[:, 2], table[:, 3] = _draw_class_attributes(rng, config, classes)
    for column, bounds in enumerate((s.object_scale, s.position_x, s.position_y, s.position_z, s.diffuse,
                                     s.specular, s.shininess), start=4):
        if column == 4 and any(c.size is not None for c in config.classes):
            table[:, 4] = _sizes(config, classes, rng.random(n))  # the same n uniforms, per-class sizes
        else:
            table[:, column] = rng.uniform(*bounds, size=n)
    if config.extended:
        _draw_extensions(rng.random((n, 10)), config, classes, table)
    return background, table


def _sizes(config: SceneConfig, classes: np.ndarray, u: np.ndarray) -> np.ndarray:
    lo, hi = config.sampling.object_scale
    out = lo + (hi - lo) * u
    for k in np.unique(classes).tolist():
        size = config.classes[k].size
        if size is not None:
            sel = classes == k
            out[sel] = size.from_uniform(u[sel])
    return np.maximum(out, 1e-3)


def _categorical(value, names: tuple[str, ...], u: np.ndarray) -> np.ndarray:
    """Index into ``names`` of a fixed name or a Dist choice, per uniform draw u; -1 for None."""
    if value is None:
        return np.full(len(u), -1.0)
    if isinstance(value, Dist):
        return np.array([names.index(value.choice[i]) for i in value.indices(u)], dtype=np.float64)
    return np.full(len(u), float(names.index(value)))


def _numeric(value, u: np.ndarray) -> np.ndarray:
    return value.from_uniform(u) if isinstance(value, Dist) else np.full(len(u), float(value))


def _draw_extensions(u: np.ndarray, config: SceneConfig, classes: np.ndarray, table: np.ndarray) -> None:
    """Fill the extension columns from one block of uniforms u (n, 10): shape, noise, (unused),
    rotation (3), thickness, lift, saturation, lightness; then rest objects on the ground."""
    from .geometry import object_params, quaternion_matrices, support  # numba: imported when first needed

    c = _COLUMN
    for k in np.unique(classes).tolist():
        sel, prior = classes == k, config.classes[k]
        table[sel, c["shape"]] = _categorical(prior.shape, SHAPES, u[sel, 0])
        table[sel, c["noise"]] = _categorical(prior.noise, NOISE_FUNCTIONS, u[sel, 1])
        table[sel, c["texture"]] = _categorical(prior.texture, TEXTURES, u[sel, 2])
        table[sel, c["saturation"]] = np.clip(_numeric(prior.saturation, u[sel, 8]), 0.0, 1.0)
        table[sel, c["lightness"]] = np.clip(_numeric(prior.lightness, u[sel, 9]), 0.0, 1.0)
    table[:, c["qw"]:c["qz"] + 1] = _rotations(config, u[:, 3:6])
    lo, hi = config.sampling.thickness
    table[:, c["thickness"]] = lo + (hi - lo) * u[:, 6]
    ground = config.ground
    if ground is not None and len(table):
        # Rest each object on the ground: its lowest point, the support along -y in object space.
        p = object_params(table[:, c["shape"]].astype(np.int64), table[:, c["scale"]], table[:, c["elongation"]],
                          table[:, c["thickness"]])
        down = quaternion_matrices(table[:, c["qw"]:c["qz"] + 1])[:, 1, :]  # R^T (0, -1, 0) = -(row 1 of R)
        reach = support(table[:, c["shape"]].astype(np.int64), *p, -down[:, 0], -down[:, 1], -down[:, 2])
        table[:, c["y"]] = ground.height + reach + ground.lift[0] + (ground.lift[1] - ground.lift[0]) * u[:, 7]


def _rotations(config: SceneConfig, u: np.ndarray) -> np.ndarray:
    """Unit quaternions (n, 4) = (w, x, y, z) of the configured rotation, from uniforms u (n, 3)."""
    s = config.sampling
    q = np.zeros((len(u), 4))
    if s.rotation == "none":
        q[:, 0] = 1.0
    elif s.rotation == "uniform":  # Shoemake's subgroup algorithm: uniform over SO(3)
        a, b = np.sqrt(1.0 - u[:, 0]), np.sqrt(u[:, 0])
        t1, t2 = 2.0 * np.pi * u[:, 1], 2.0 * np.pi * u[:, 2]
        q[:] = np.stack([b * np.cos(t2), a * np.sin(t1), a * np.cos(t1), b * np.sin(t2)], axis=1)
    else:
        if s.rotation == "view":
            eye = np.asarray(config.camera.eye, dtype=np.float64)
            axis = np.asarray(config.camera.target, dtype=np.float64) - eye
            axis /= np.linalg.norm(axis)
        else:
            axis = np.array([0.0, 1.0, 0.0])
        half = np.radians(s.rotation_max) * (2.0 * u[:, 0] - 1.0) / 2.0
        q[:, 0] = np.cos(half)
        q[:, 1:] = np.sin(half)[:, None] * axis
    return q


def sample_scene(config: SceneConfig, seed: int, index: int) -> Scene:
    """Draw scene ``index`` of the dataset with ``seed`` from the configured distributions."""
    background, table = sample_scene_table(config, seed, index)
    objects = tuple(_object(row) for row in table.tolist())
    return Scene(background, objects, seed=int(seed), index=int(index), kind="random")


def single_object_scene(hue: float = 150.0, elongation: float = 0.5, noise_scale: float = 25.0, *,
                        scale: float = 1.0, kd: float = 0.5, ks: float = 0.25, shininess: float = 50.0,
                        background_noise_scale: float = 10.0, class_id: int = 1, saturation: float = 1.0,
                        lightness: float = 0.5, shape: str = "ellipsoid", thickness: float = 0.0,
                        rotation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)) -> Scene:
    """The report's Task 1 scene: one object at the origin with the given colour, elongation and texture."""
    obj = SceneObject(class_id, float(hue) % 360.0, float(elongation), float(noise_scale), float(scale),
                      0.0, 0.0, 0.0, float(kd), float(ks), float(shininess), shape=shape,
                      rotation=tuple(float(v) for v in rotation), thickness=float(thickness),
                      saturation=float(saturation), lightness=float(lightness))
    return Scene(float(background_noise_scale), (obj,), kind="single")


def _typical(prior: ClassPrior, name: str) -> float:
    """A class's attribute at its centre: the number, a distribution's mean, or a choice's first value."""
    value = getattr(prior, name)
    if isinstance(value, Dist):
        return value.mean if value.mean is not None else float(value.choice[0])
    return float(value)


def prototype_scene(config: SceneConfig, *, random: bool = False, seed: int = 0, index: int = 0,
                    spacing: float = 1.2, scale: float = 0.5, kd: float = 0.5, ks: float = 0.25,
                    shininess: float = 50.0, background_noise_scale: float = 10.0) -> Scene:
    """The report's Task 3 scene (Figure 2): one object per class side by side.

    Objects sit at x = spacing * (k - (K - 1) / 2), so at -1.2, 0, 1.2 for three classes; more than
    four classes fill a square grid over the view instead. With ``random=False`` each has its
    class's mean hue, elongation and noise scale (and its shape, noise and texture); with
    ``random=True`` they are drawn from the priors with the generator of (seed, index).
    """
    k = config.num_classes
    classes = np.arange(k)
    if random:
        rng = _rng(seed, index)
        hue, rho, r = _draw_class_attributes(rng, config, classes)
        u = rng.random((k, 10)) if config.extended else None
    else:
        hue = np.array([_typical(p, "hue") % 360.0 for p in config.classes])
        rho = np.array([_typical(p, "elongation") for p in config.classes])
        r = np.array([max(_typical(p, "noise_scale"), config.sampling.min_noise_scale) for p in config.classes])
        u = np.full((k, 10), 0.5) if config.extended else None  # the median of every distribution
    if k <= 4:
        places = [(spacing * (i - (k - 1) / 2.0), 0.0) for i in range(k)]
    else:
        side = math.ceil(math.sqrt(k))
        step = 3.6 / side
        scale = min(scale, 0.4 * step)
        places = [(step * (i % side - (side - 1) / 2.0), -step * (i // side - (side - 1) / 2.0)) for i in range(k)]
    table = np.empty((k, len(OBJECT_FIELDS)))
    table[:] = _DEFAULTS
    table[:, 0] = classes + 1
    table[:, 1], table[:, 2], table[:, 3] = hue, rho, r
    table[:, 4] = scale
    table[:, 5:8] = [(x, y, 0.0) for x, y in places]
    table[:, 8:11] = (kd, ks, shininess)
    if u is not None:
        _draw_extensions(u, dataclasses.replace(config, ground=None, sampling=dataclasses.replace(
            config.sampling, rotation="none")), classes, table)
    objects = tuple(_object(row) for row in table.tolist())
    return Scene(float(background_noise_scale), objects, seed=seed if random else None,
                 index=index if random else None, kind="prototypes")
