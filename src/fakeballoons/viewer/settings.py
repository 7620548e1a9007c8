"""The viewer's settings: query parameters -> (scene configuration, scene), validated for hostile input.

Every parameter is bounded: numbers by range (NaN and infinities refused), strings by length and by
a fixed set of choices, and the class table (JSON) by length, nesting depth and the magnitude of
every number and string in it, before the configuration's own validation sees it. A bad value is a 4xx with a
message naming it, never a 500, and no setting can make a render larger than 512x512.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from typing import Literal

import numpy as np
from fastapi import Depends, HTTPException, Query

from ..classes import SHAPES, TEXTURES, ClassPrior
from ..codec import BASE, load_preset, preset_names
from ..config import NOISE_FUNCTIONS, ROTATIONS, SceneConfig
from ..errors import ConfigError, UserError
from ..scene import SCENE_KINDS, Scene, prototype_scene, sample_scene, sample_scene_table, single_object_scene

__all__ = ["MAX_CLASSES", "PRESETS", "SIZES", "config_settings", "human_message", "parse_classes",
           "preset_config", "scene_settings"]

#: Image sizes: 256 and 512 for pictures and downloads, 64 and 128 for the previews shown while a
#: control moves.
SIZES = (64, 128, 256, 512)
MAX_CLASSES = 12
MAX_CLASSES_CHARS = 8000  # the class table as JSON
MAX_DEPTH = 6  # [ {"hue": {"choice": [ ... ]} } ] is 4 deep
MAX_MAGNITUDE = 1e6  # every number in the class table
MAX_STRING = 100  # every string in the class table (names show in the legend and in messages)
PRESETS = tuple(preset_names(SceneConfig))

View = Literal[SCENE_KINDS]  # type: ignore[valid-type]
Noise = Literal[NOISE_FUNCTIONS]  # type: ignore[valid-type]
Preset = Literal[PRESETS]  # type: ignore[valid-type]
Rotation = Literal[ROTATIONS]  # type: ignore[valid-type]
Shape = Literal[SHAPES]  # type: ignore[valid-type]
Texture = Literal[TEXTURES]  # type: ignore[valid-type]


def _number(default, lo, hi, description=None):
    return Query(default, ge=lo, le=hi, allow_inf_nan=False, description=description)


def _depth(text: str) -> int:
    """The deepest nesting of JSON arrays and objects in ``text`` (brackets inside strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str):
    raise UserError(f"classes: {name} is not a number the viewer accepts")


def _check_values(value, path: str = "classes") -> None:
    """Every number finite and at most MAX_MAGNITUDE in magnitude, every string at most MAX_STRING
    characters, no ``"base"`` key (iterative: depth is capped anyway)."""
    stack = [(value, path)]
    while stack:
        v, p = stack.pop()
        if isinstance(v, str):
            if len(v) > MAX_STRING:
                raise UserError(f"{human_field(p)}: at most {MAX_STRING} characters, got {len(v)}")
            continue
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, (int, float)):
            if not (isinstance(v, float) and math.isfinite(v) or isinstance(v, int)) or abs(v) > MAX_MAGNITUDE:
                shown = f"{str(v)[:12]}... ({len(str(v))} digits)" if isinstance(v, int) and abs(v) > 10**15 else v
                raise UserError(f"{human_field(p)}: must be a number from {-MAX_MAGNITUDE:g} to {MAX_MAGNITUDE:g}, "
                                f"got {shown}")
        elif isinstance(v, list):
            stack.extend((x, f"{p}[{i}]") for i, x in enumerate(v))
        elif isinstance(v, dict):
            if BASE in v:  # the codec would read the preset or JSON file it names: no paths from clients
                raise UserError(f"{human_field(p)}: '{BASE}' is not accepted by the viewer")
            stack.extend((x, f"{p}.{k}") for k, x in v.items())


def parse_classes(text: str) -> list:
    """The class table of the ``classes`` parameter: a JSON list of 1 to MAX_CLASSES class objects,
    nested at most MAX_DEPTH deep, every number finite and at most MAX_MAGNITUDE in magnitude, every
    string at most MAX_STRING characters."""
    if _depth(text) > MAX_DEPTH:
        raise UserError(f"classes: nested more than {MAX_DEPTH} deep")
    try:
        rows = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise UserError(f"classes is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_CLASSES:
        raise UserError(f"classes must be a list of 1 to {MAX_CLASSES} class priors")
    _check_values(rows)
    return rows


_CLASS_PATH = re.compile(r"classes\[(\d+)\]\.?")


def human_field(path: str) -> str:
    """``classes[1].elongation`` -> ``class 2 elongation``: classes count from 1, as in the table."""
    return _CLASS_PATH.sub(lambda m: f"class {int(m.group(1)) + 1} ", path).strip()


def human_message(exc: UserError) -> str:
    """A message for the page: configuration fields named as the table names them."""
    if isinstance(exc, ConfigError) and exc.field and not exc.unknown:
        return f"{human_field(exc.field)}: {exc.problem}"
    return human_field(str(exc))


def preset_config(name: str) -> SceneConfig:
    return load_preset(SceneConfig, name)


def build_config(noise: str = "perlin", size: int = 512, classes: str | None = None,
                 background_noise_scale: float | None = None, num_objects: int | None = None,
                 preset: str = "report", rotation: str | None = None, ground: bool | None = None,
                 shadows: bool | None = None, texture: str | None = None) -> SceneConfig:
    """The scene configuration of a set of viewer settings (what "save config" downloads): a preset,
    with the page's class table and overrides on top."""
    base = preset_config(preset)
    changes: dict = {"height": size, "width": size, "noise": noise}
    if classes:
        data = {**base.to_dict(), "classes": parse_classes(classes)}
        data.pop("class_table", None)  # the page's table replaces a generated one
        config = SceneConfig.from_dict(data)
        changes["classes"], changes["class_table"] = config.classes, None
    sampling = base.sampling
    if background_noise_scale is not None:
        fixed = (background_noise_scale, background_noise_scale)
        sampling = dataclasses.replace(sampling, background_noise_scale=fixed)
    if num_objects is not None:
        sampling = dataclasses.replace(sampling, num_objects=(num_objects, num_objects))
    if rotation is not None:
        sampling = dataclasses.replace(sampling, rotation=rotation)
    if ground is False:
        changes["ground"] = None
    if shadows is not None:
        changes["light"] = dataclasses.replace(base.light, shadows=shadows)
    if texture is not None:
        changes["texture"] = texture
    return base.replace(sampling=sampling, **changes)


def config_settings(size: int = Query(512, description="64, 128, 256 or 512"), noise: Noise = "perlin",
                    preset: Preset = "report",
                    background_noise_scale: float | None = _number(None, 1.0, 20.0),
                    num_objects: int | None = Query(None, ge=0, le=20),
                    classes: str | None = Query(None, max_length=MAX_CLASSES_CHARS),
                    rotation: Rotation | None = None, ground: bool | None = None, shadows: bool | None = None,
                    texture: Texture | None = None) -> SceneConfig:
    """The configuration part of the query: what "save config" writes and ``generate`` reads."""
    if size not in SIZES:  # a Literal of ints would not accept the query string "512"
        raise HTTPException(422, f"size must be one of {list(SIZES)}, got {size}")
    return build_config(noise, size, classes, background_noise_scale, num_objects, preset, rotation, ground,
                        shadows, texture)


@dataclasses.dataclass(frozen=True)
class Look:
    """One object's appearance: Task 1's object, and Task 2's look shared by every object."""

    hue: float = 0.0
    saturation: float = 1.0
    lightness: float = 0.5
    elongation: float = 0.5
    noise_scale: float = 25.0
    shape: str = "ellipsoid"
    thickness: float = 0.35


def look_settings(hue: float = _number(0.0, 0.0, 360.0), saturation: float = _number(1.0, 0.0, 1.0),
                  lightness: float = _number(0.5, 0.0, 1.0), elongation: float = _number(0.5, 0.05, 0.95),
                  noise_scale: float = _number(25.0, 1.0, 51.0), shape: Shape = "ellipsoid",
                  thickness: float = _number(0.35, 0.1, 0.9)) -> Look:
    return Look(hue, saturation, lightness, elongation, noise_scale, shape, thickness)


def _quaternion(yaw: float, pitch: float, roll: float) -> tuple[float, float, float, float]:
    """The rotation that turns by ``yaw`` about the vertical (y), then tilts by ``pitch`` about x,
    then rolls by ``roll`` about the viewing axis (z); degrees, as a unit quaternion (w, x, y, z)."""
    def about(axis: int, degrees: float) -> np.ndarray:
        q = np.zeros(4)
        q[0], q[1 + axis] = math.cos(math.radians(degrees) / 2), math.sin(math.radians(degrees) / 2)
        return q

    def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        w1, x1, y1, z1 = a
        w2, x2, y2, z2 = b
        return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                         w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])

    q = mul(about(2, roll), mul(about(0, pitch), about(1, yaw)))
    return tuple(float(v) for v in q / np.linalg.norm(q))  # type: ignore[return-value]


def shared_look_config(config: SceneConfig, look: Look) -> SceneConfig:
    """``config`` with every class drawing the one look (no spread): Task 2's page, where colour,
    elongation and noise scale are the user's for all objects. Class choice, label colours and every
    other draw stay as they were, so the objects keep their places and lighting."""
    colours = config.label_colours
    one = [ClassPrior(c.name, look.hue, look.elongation, look.noise_scale, hue_std=0.0, elongation_std=0.0,
                      noise_scale_std=0.0, weight=c.weight, shape=look.shape, size=c.size, noise=c.noise,
                      texture=c.texture, saturation=look.saturation, lightness=look.lightness,
                      label_colour=colours[k]) for k, c in enumerate(config.classes)]
    sampling = config.sampling
    if look.shape in ("torus", "capsule"):
        sampling = dataclasses.replace(sampling, thickness=(look.thickness, look.thickness))
    return dataclasses.replace(config, classes=tuple(one), class_table=None, sampling=sampling)


def build_scene(view: str, config: SceneConfig, seed: int = 0, index: int = 0, look: Look = Look(),
                random: bool = False, shared: bool = False, kd: float = 0.8, ks: float = 0.3,
                shininess: float = 50.0, yaw: float = 0.0, pitch: float = 0.0,
                roll: float = 0.0) -> tuple[SceneConfig, Scene]:
    """The scene of a view, and the configuration it renders with.

    ``single``: Task 1's object at the origin with its own look and lighting (the 2022 page's kd 0.8,
    ks 0.3 by default). ``random``: scene ``index`` of the dataset with ``seed``, with ``shared`` every
    object in ``look`` (Task 2). ``prototypes``: one object per class (Task 3), at the class means or
    drawn from the priors, in front of the background of scene (seed, index), so "New scene" changes
    it as the 2022 page did.
    """
    if view == "single":
        thickness = look.thickness if look.shape in ("torus", "capsule") else 0.0
        return config, single_object_scene(look.hue, look.elongation, look.noise_scale, saturation=look.saturation,
                                           lightness=look.lightness, shape=look.shape, thickness=thickness,
                                           kd=kd, ks=ks, shininess=shininess,
                                           rotation=_quaternion(yaw, pitch, roll))
    if view == "prototypes":
        background, _ = sample_scene_table(config, seed, index)
        return config, prototype_scene(config, random=random, seed=seed, index=index,
                                       background_noise_scale=background)
    if shared:
        config = shared_look_config(config, look)
    return config, sample_scene(config, seed, index)


def scene_settings(view: View = "random", seed: int = Query(0, ge=0, le=2**63 - 1),
                   index: int = Query(0, ge=0, le=2**63 - 1), random: bool = False, shared: bool = False,
                   kd: float = _number(0.8, 0.0, 1.0), ks: float = _number(0.3, 0.0, 1.0),
                   shininess: float = _number(50.0, 1.0, 200.0), yaw: float = _number(0.0, -180.0, 180.0),
                   pitch: float = _number(0.0, -180.0, 180.0), roll: float = _number(0.0, -180.0, 180.0),
                   look: Look = Depends(look_settings),
                   config: SceneConfig = Depends(config_settings)) -> tuple[SceneConfig, Scene]:
    return build_scene(view, config, seed, index, look, random, shared, kd, ks, shininess, yaw, pitch, roll)
