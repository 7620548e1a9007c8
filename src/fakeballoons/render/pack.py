"""Turn scenes into the flat arrays the kernels read (layout in :mod:`.kernels`).

Everything per object is computed here once, vectorised over the whole batch:
the ray origin in unit-sphere space, the colour, and the exact screen-space
bounding box of each ellipsoid's projection (from its tangent planes through the
eye), which bins objects into 16x16-pixel tiles so a pixel tests only the few
objects that can cover it (the CPU renderer bins them again into 8x8 tiles, refine_tiles).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from ..config import MSAA_PATTERNS, TEXTURES, SceneConfig
from ..geometry import (
    bounding_radius,
    camera_basis,
    object_params,
    projected_bbox,
    projected_bbox_support,
    quaternion_matrices,
)
from ..scene import OBJECT_FIELDS, Scene, sample_scene_table
from . import fields as K

TILE_SIZE = 16
#: The CPU renderer's tiles (refine_tiles bins the report kernel's objects again at this size): finer
#: tiles settle more pixels without casting, and a CPU host packs one scene at a time.
CPU_TILE_SIZE = 8


@dataclass(frozen=True)
class Packed:
    """A batch of scenes as kernel inputs."""

    height: int
    width: int
    tiles_x: int
    tiles_per_scene: int
    cam: np.ndarray  # (CAM_SIZE,) float64
    objs: np.ndarray  # (n_objects, OBJ_FIELDS) float64
    tile_start: np.ndarray  # (B * tiles_per_scene + 1,) int64
    tile_objs: np.ndarray  # (entries,) int64
    bg_scales: np.ndarray  # (B,) float64
    kind: int  # the scene noise, an index of NOISE_FUNCTIONS (fields.NOISE_KINDS)
    pattern: np.ndarray  # (S, 2) float64 sample offsets in pixels
    ignore_edges: bool
    ignore_index: int
    scene_start: np.ndarray  # (B + 1,) int64: the rows of scene b are scene_start[b]:scene_start[b + 1]
    general: bool  # render with the general kernel (shapes, rotations, textures, ground, shadows)
    tile_size: int = TILE_SIZE  # pixels a side of a screen tile

    @property
    def batch(self) -> int:
        return int(self.bg_scales.shape[0])

    def kernel_args(self) -> tuple:
        """Arguments of ``render_cpu`` / the CUDA kernel, before the output arrays."""
        return (self.height, self.width, self.tile_size, self.tiles_x, self.tiles_per_scene, self.cam,
                self.objs, self.tile_start, self.tile_objs, self.bg_scales, self.kind, self.pattern,
                self.ignore_edges, self.ignore_index, self.scene_start)


def pack_camera(config: SceneConfig) -> np.ndarray:
    eye, right, up, fwd = camera_basis(config)
    cam = np.zeros(K.CAM_SIZE)
    cam[K.FOOT_PX:K.FOOT_Y + 1] = np.nan  # no pixel test until refine_tiles fills its fields
    cam[K.EYE:K.EYE + 3] = eye
    cam[K.RIGHT:K.RIGHT + 3] = right
    cam[K.UP:K.UP + 3] = up
    cam[K.FWD:K.FWD + 3] = fwd
    tan_half = math.tan(math.radians(config.camera.fov_y) / 2.0)
    cam[K.SX] = tan_half * config.width / config.height
    cam[K.SY] = tan_half
    cam[K.LIGHT:K.LIGHT + 3] = config.light.position
    cam[K.KA] = config.light.ambient
    ground = config.ground
    if ground is not None:
        cam[K.GROUND] = 1.0
        cam[K.GROUND_Y], cam[K.GROUND_SCALE] = ground.height, ground.noise_scale
        cam[K.GROUND_ALBEDO], cam[K.GROUND_KD] = ground.albedo, ground.diffuse
    cam[K.SHADOWS] = float(config.light.shadows)
    return cam


def hsl_colours(hue: np.ndarray, saturation: np.ndarray | None = None,
                lightness: np.ndarray | None = None) -> np.ndarray:
    """:func:`~fakeballoons.config.hsl_colour` of many hues, (n, 3), bit for bit (colorsys' arithmetic);
    saturation and lightness default to 1 and 0.5 (the report's colours)."""
    h = np.mod(hue, 360.0) / 360.0
    out = np.empty((len(h), 3))
    if saturation is None and lightness is None:
        for channel, offset in enumerate((1.0 / 3.0, 0.0, -1.0 / 3.0)):
            t = np.mod(h + offset, 1.0)
            # colorsys._v with m1 = 0, m2 = 1: rise on [0, 1/6), 1 on [1/6, 1/2), fall on [1/2, 2/3), else 0
            out[:, channel] = np.where(t < 1.0 / 6.0, t * 6.0,
                                       np.where(t < 0.5, 1.0, np.where(t < 2.0 / 3.0, (2.0 / 3.0 - t) * 6.0, 0.0)))
        return out
    s = np.ones(len(h)) if saturation is None else np.asarray(saturation, dtype=np.float64)
    lum = np.full(len(h), 0.5) if lightness is None else np.asarray(lightness, dtype=np.float64)
    m2 = np.where(lum <= 0.5, lum * (1.0 + s), lum + s - lum * s)
    m1 = 2.0 * lum - m2
    for channel, offset in enumerate((1.0 / 3.0, 0.0, -1.0 / 3.0)):
        t = np.mod(h + offset, 1.0)
        out[:, channel] = np.where(t < 1.0 / 6.0, m1 + (m2 - m1) * t * 6.0,
                                   np.where(t < 0.5, m2, np.where(t < 2.0 / 3.0, m1 + (m2 - m1) * (2.0 / 3.0 - t) * 6.0,
                                                                  m1)))
    grey = s == 0.0
    out[grey] = lum[grey, None]
    return out


def needs_general(table: np.ndarray, config: SceneConfig) -> bool:
    """Whether the configuration or the objects (a table of all of them) need the general kernel: a
    ground, shadows, another texture space, or an object that is not an axis-aligned ellipsoid
    textured at its normal with the scene's noise."""
    if config.ground is not None or config.light.shadows or config.texture != "normal":
        return True
    col = {name: table[:, j] for j, name in enumerate(OBJECT_FIELDS)}
    noise = col["noise"]
    return bool(np.any(col["shape"] != 0) or np.any(col["qw"] != 1.0)
                or np.any((noise != -1) & (noise != K.NOISE_KINDS[config.noise]))
                or np.any(col["texture"] > 0))


def pack_tables(tables: Sequence[np.ndarray], config: SceneConfig,
                general: bool | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
    """Object rows of all scenes (scene by scene, in object order), the scene of each row, and whether
    they need the general kernel, from per-scene object tables (columns of
    :data:`~fakeballoons.scene.OBJECT_FIELDS`)."""
    counts = np.array([len(t) for t in tables], dtype=np.int64)
    owner = np.repeat(np.arange(len(tables), dtype=np.int64), counts)
    total = int(counts.sum())
    objs = np.zeros((total, K.OBJ_FIELDS))
    table = np.concatenate(tables) if total else np.zeros((0, len(OBJECT_FIELDS)))
    general = needs_general(table, config) if general is None else general
    if total == 0:
        return objs, owner, general
    col = {name: table[:, j] for j, name in enumerate(OBJECT_FIELDS)}
    centre = table[:, 5:8]
    rho, scale = col["elongation"], col["scale"]
    # SceneObject.semi_axes, vectorised; math.hypot, not np.hypot, which differs in the last bit
    k = math.sqrt(2.0) / np.array([math.hypot(r, 1.0 - r) for r in rho.tolist()])
    axes = np.stack([scale * rho * k, scale * (1.0 - rho) * k, scale], axis=1)
    eye = camera_basis(config)[0]
    objs[:, K.CX:K.CX + 3] = centre
    # rho clamped to 0 or 1 (the report's rule) makes a disc with a zero semi-axis: 1 / 0 = inf makes
    # every ray miss it (NaN fails the kernel's comparisons), as it should from the report's camera,
    # which sees such a disc edge-on. Not a fault to warn about.
    with np.errstate(divide="ignore", invalid="ignore"):
        objs[:, K.IAX:K.IAX + 3] = 1.0 / axes
        origin = (eye - centre) / axes
    objs[:, K.OX:K.OX + 3] = origin
    objs[:, K.OC] = np.einsum("ij,ij->i", origin, origin) - 1.0
    plain_colour = np.all(col["saturation"] == 1.0) and np.all(col["lightness"] == 0.5)
    objs[:, K.COL_R:K.COL_R + 3] = (hsl_colours(col["hue"]) if plain_colour else
                                     hsl_colours(col["hue"], col["saturation"], col["lightness"]))
    objs[:, K.KD] = col["kd"]
    objs[:, K.KS] = col["ks"]
    objs[:, K.NS] = col["shininess"]
    objs[:, K.NOISE_SCALE] = col["noise_scale"]
    objs[:, K.CLASS] = col["class_id"]
    objs[:, K.INSTANCE] = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    objs[:, K.BBX0:K.BBY1 + 1] = projected_bbox(centre, axes, config)
    if general:
        _pack_general(objs, col, config)
    return objs, owner, general


def _pack_general(objs: np.ndarray, col: dict[str, np.ndarray], config: SceneConfig) -> None:
    """The fields only the general kernel reads: shape, parameters, rotation, texture, noise, radius.
    Objects other than axis-aligned ellipsoids get the projected box of their bounding sphere."""
    shape = col["shape"].astype(np.int64)
    p = object_params(shape, col["scale"], col["elongation"], col["thickness"])
    quaternion = np.stack([col["qw"], col["qx"], col["qy"], col["qz"]], axis=1)
    rotation = quaternion_matrices(quaternion / np.linalg.norm(quaternion, axis=1, keepdims=True))
    rotated = np.any(quaternion != (1.0, 0.0, 0.0, 0.0), axis=1)
    objs[:, K.SHAPE] = shape
    objs[:, K.P0], objs[:, K.P1], objs[:, K.P2] = p
    objs[:, K.ROT:K.ROT + 9] = rotation.reshape(-1, 9)
    objs[:, K.ROTATED] = rotated
    scene_texture = TEXTURES.index(config.texture)
    objs[:, K.TEXTURE] = np.where(col["texture"] >= 0, col["texture"], scene_texture)
    objs[:, K.NOISE_KIND] = np.where(col["noise"] >= 0, col["noise"], K.NOISE_KINDS[config.noise])
    objs[:, K.SCALE] = col["scale"]
    objs[:, K.RADIUS] = bounding_radius(shape, *p)
    eye = camera_basis(config)[0]
    centre = objs[:, K.CX:K.CX + 3]
    ellipsoid = (shape == 0) & rotated
    if ellipsoid.any():  # diag(1 / axes) R^T and the eye through it, as the axis-aligned ellipsoids have
        eq = rotation[ellipsoid].transpose(0, 2, 1) / np.stack(p, axis=1)[ellipsoid, :, None]
        objs[ellipsoid, K.EQ:K.EQ + 9] = eq.reshape(-1, 9)
        origin = np.einsum("nij,nj->ni", eq, eye - centre[ellipsoid])
        objs[ellipsoid, K.OX:K.OX + 3] = origin
        objs[ellipsoid, K.OC] = np.einsum("ij,ij->i", origin, origin) - 1.0
    other = shape != 0
    if other.any():  # the eye in object space, R^T (eye - c)
        objs[other, K.OX:K.OX + 3] = np.einsum("nji,nj->ni", rotation[other], eye - centre[other])
    if ellipsoid.any():
        objs[ellipsoid, K.BBX0:K.BBY1 + 1] = projected_bbox(centre[ellipsoid], np.stack(p, axis=1)[ellipsoid], config,
                                                            rotation[ellipsoid])
    if other.any():
        objs[other, K.BBX0:K.BBY1 + 1] = projected_bbox_support(
            centre[other], shape[other], [v[other] for v in p], rotation[other], objs[other, K.RADIUS], config)
    to_centre = centre - eye
    objs[:, K.CE:K.CE + 3] = to_centre
    objs[:, K.W2] = np.einsum("ij,ij->i", to_centre, to_centre)
    objs[:, K.R2] = objs[:, K.RADIUS] * objs[:, K.RADIUS]
    objs[:, K.NEAR] = np.sqrt(objs[:, K.W2]) - objs[:, K.RADIUS]


def bin_tiles(objs: np.ndarray, owner: np.ndarray, batch: int, height: int, width: int, by_depth: bool = False,
              tile: int = TILE_SIZE):
    """CSR lists of the objects whose bounding box touches each tile, per scene, in object order, or
    (``by_depth``, for the general kernel, which stops a ray's search at the first object whose NEAR
    is beyond its nearest hit so far) in order of NEAR, ties in object order."""
    tiles_x = -(-width // tile)
    tiles_y = -(-height // tile)
    per_scene = tiles_x * tiles_y
    order = (np.argsort(objs[:, K.NEAR], kind="stable") if by_depth else np.arange(len(objs))).astype(np.int64)
    tile_start, tile_objs = _bin_tiles(np.ascontiguousarray(objs[:, K.BBX0:K.BBY1 + 1]), owner, batch,
                                       height, width, tiles_x, tiles_y, tile, order)
    return tiles_x, per_scene, tile_start, tile_objs


@numba.njit(cache=True)
def _tile_range(lo, hi, tile, n):
    return min(max(int(math.floor(lo / tile)), 0), n - 1), min(max(int(math.floor(hi / tile)), 0), n - 1)


@numba.njit(cache=True)
def _bin_tiles(bb, owner, batch, height, width, tiles_x, tiles_y, tile, order):
    """A counting sort of (tile, object) pairs: count per tile, prefix sums, then fill in ``order``."""
    per_scene = tiles_x * tiles_y
    tile_start = np.zeros(batch * per_scene + 1, dtype=np.int64)
    n = bb.shape[0]
    visible = np.zeros(n, dtype=np.bool_)
    for o in range(n):
        x0, y0, x1, y1 = bb[o, 0], bb[o, 1], bb[o, 2], bb[o, 3]
        if x1 >= 0 and x0 <= width and y1 >= 0 and y0 <= height and x0 <= x1 and y0 <= y1:
            visible[o] = True
            tx0, tx1 = _tile_range(x0, x1, tile, tiles_x)
            ty0, ty1 = _tile_range(y0, y1, tile, tiles_y)
            base = owner[o] * per_scene
            for ty in range(ty0, ty1 + 1):
                for tx in range(tx0, tx1 + 1):
                    tile_start[base + ty * tiles_x + tx + 1] += 1
    for t in range(batch * per_scene):
        tile_start[t + 1] += tile_start[t]
    fill = tile_start[:-1].copy()
    tile_objs = np.empty(tile_start[-1], dtype=np.int64)
    for o in order:
        if visible[o]:
            tx0, tx1 = _tile_range(bb[o, 0], bb[o, 2], tile, tiles_x)
            ty0, ty1 = _tile_range(bb[o, 1], bb[o, 3], tile, tiles_y)
            base = owner[o] * per_scene
            for ty in range(ty0, ty1 + 1):
                for tx in range(tx0, tx1 + 1):
                    t = base + ty * tiles_x + tx
                    tile_objs[fill[t]] = o
                    fill[t] += 1
    return tile_start, tile_objs


#: Relative margin of refine_tiles' tests, far above the kernels' rounding (about 1e-15 of the
#: same scale) and far below any discriminant that decides a pixel in practice.
_REFINE_MARGIN = 1e-8


#: Relative margin between two objects' ray parameters for the pixel test to say which is in front.
_T_MARGIN = 1e-6


def refine_tiles(packed: Packed, tile: int = CPU_TILE_SIZE) -> Packed:
    """``packed`` with the report kernel's tile lists binned again at ``tile`` pixels and refined: what
    casting would find anyway is settled here, once per tile (the CPU renderer does it; the GPU's
    host feeds thousands of scenes a second and does not, and its kernel reads both forms alike).

    Every sample position of a tile (its pixel centres plus the pattern's offsets) lies in one
    rectangle. Over it, an axis-aligned ellipsoid's ray discriminant is a quadratic in the position
    and its ray's ``half_b`` is linear, so their extremes over the rectangle are exact to find.
    An object whose discriminant is below zero by a margin everywhere there (far beyond rounding)
    misses every sample ray, and leaves the tile's list; a tile left with no object is all sky,
    as before. A tile left with one object that every sample ray hits in front of the eye (the
    discriminant above the margin, ``half_b`` below it, the eye outside it, the rectangle inside its
    box) holds it as ``-(o + 1)``: each of its pixels is interior to ``o``, which the kernel takes
    without casting the samples. Both give the pixels the kernel computes from the full lists. The
    general kernel's lists are returned as they are.
    """
    if packed.general or packed.tile_objs.shape[0] == 0:
        return packed
    tiles_x, per_scene = packed.tiles_x, packed.tiles_per_scene
    tile_start, tile_objs = packed.tile_start, packed.tile_objs
    if tile != packed.tile_size:
        owner = np.repeat(np.arange(packed.batch, dtype=np.int64), np.diff(packed.scene_start))
        tiles_x, per_scene, tile_start, tile_objs = bin_tiles(packed.objs, owner, packed.batch, packed.height,
                                                              packed.width, tile=tile)
    offsets_x = np.append(packed.pattern[:, 0], 0.0)
    offsets_y = np.append(packed.pattern[:, 1], 0.0)
    tile_start, tile_objs = _refine_tiles(
        tile_start, tile_objs, packed.cam, packed.objs, tiles_x, per_scene, packed.height, packed.width, tile,
        float(offsets_x.min()), float(offsets_x.max()), float(offsets_y.min()), float(offsets_y.max()))
    cam, objs = _pixel_test_fields(packed)
    return dataclasses.replace(packed, cam=cam, objs=objs, tile_start=tile_start, tile_objs=tile_objs,
                               tiles_x=tiles_x, tiles_per_scene=per_scene, tile_size=tile)


def _pixel_test_fields(packed: Packed) -> tuple[np.ndarray, np.ndarray]:
    """Copies of ``packed``'s camera and object rows with the fields of the CPU kernel's pixel test
    (``settle_pixel`` in :mod:`.kernels`, fields.Q0 and on) filled: the samples' footprint, and per
    object the discriminant's and half_b's coefficients over normalised screen position and the
    margins of :func:`_verdict`, without its bound on the screen position (the kernel supplies it)."""
    cam, objs = packed.cam.copy(), packed.objs.copy()
    foot_x, foot_y = np.abs(packed.pattern).max(axis=0)
    cam[K.FOOT_PX], cam[K.FOOT_PY] = foot_x, foot_y
    cam[K.FOOT_X] = 2.0 * foot_x / packed.width * cam[K.SX]
    cam[K.FOOT_Y] = 2.0 * foot_y / packed.height * cam[K.SY]
    inverse_axes = objs[:, K.IAX:K.IAZ + 1]
    origin, oc = objs[:, K.OX:K.OZ + 1], objs[:, K.OC]
    with np.errstate(invalid="ignore", over="ignore"):  # a disc's infinite 1 / axis: NaN, and no verdict
        e0, e1, e2 = (cam[i:i + 3] * inverse_axes for i in (K.FWD, K.RIGHT, K.UP))
        b0, b1, b2 = (np.einsum("ij,ij->i", origin, e) for e in (e0, e1, e2))
        q = [bi * bj - oc * np.einsum("ij,ij->i", ei, ej)
             for (bi, ei), (bj, ej) in (((b1, e1), (b1, e1)), ((b1, e1), (b2, e2)), ((b2, e2), (b2, e2)),
                                        ((b1, e1), (b0, e0)), ((b2, e2), (b0, e0)), ((b0, e0), (b0, e0)))]
        o2 = np.einsum("ij,ij->i", origin, origin)
        inverse_axis = np.abs(inverse_axes).max(axis=1)
        margin_d = _REFINE_MARGIN * (o2 + np.abs(oc)) * inverse_axis * inverse_axis
        margin_hb = np.where(oc > _REFINE_MARGIN * o2, _REFINE_MARGIN * np.sqrt(o2) * inverse_axis, np.inf)
    values = np.stack([*q, b0, b1, b2, margin_d], axis=1)
    finite = np.all(np.isfinite(values), axis=1)
    objs[:, K.Q0:K.Q5 + 1] = np.stack(q, axis=1)
    objs[:, K.HB0], objs[:, K.HB1], objs[:, K.HB2] = b0, b1, b2
    objs[:, K.MARGIN_D] = np.where(finite, margin_d, np.nan)
    objs[:, K.MARGIN_HB] = margin_hb
    # With the eye well outside (OC > o2 / 100), the kernel's t loses at most a factor 2 o2 / OC (200)
    # of float64 accuracy to cancellation: 1e-6 is far above that.
    objs[:, K.T_MARGIN] = np.where(finite & (oc > 1e-2 * o2), _T_MARGIN, np.nan)
    return cam, objs


@numba.njit(cache=True)
def _quadratic(q0, q1, q2, q3, q4, q5, x, y):
    return q0 * x * x + 2.0 * q1 * x * y + q2 * y * y + 2.0 * q3 * x + 2.0 * q4 * y + q5


@numba.njit(cache=True)
def _quadratic_range(q0, q1, q2, q3, q4, q5, xa, xb, ya, yb):
    """Minimum and maximum of the quadratic ``_quadratic(q..., x, y)`` over [xa, xb] x [ya, yb]: at a
    corner, at a stationary point of an edge or at the stationary point inside."""
    lo = math.inf
    hi = -math.inf
    for x in (xa, xb):
        for y in (ya, yb):
            v = _quadratic(q0, q1, q2, q3, q4, q5, x, y)
            lo = min(lo, v)
            hi = max(hi, v)
        if q2 != 0.0:  # along x = const: stationary where q2 y + q1 x + q4 = 0
            y = -(q1 * x + q4) / q2
            if ya < y < yb:
                v = _quadratic(q0, q1, q2, q3, q4, q5, x, y)
                lo = min(lo, v)
                hi = max(hi, v)
    for y in (ya, yb):
        if q0 != 0.0:
            x = -(q1 * y + q3) / q0
            if xa < x < xb:
                v = _quadratic(q0, q1, q2, q3, q4, q5, x, y)
                lo = min(lo, v)
                hi = max(hi, v)
    det = q0 * q2 - q1 * q1
    if det != 0.0:
        x = (q1 * q4 - q2 * q3) / det
        y = (q1 * q3 - q0 * q4) / det
        if xa < x < xb and ya < y < yb:
            v = _quadratic(q0, q1, q2, q3, q4, q5, x, y)
            lo = min(lo, v)
            hi = max(hi, v)
    return lo, hi


@numba.njit(cache=True)
def _verdict(cam, objs, o, fx0, fx1, fy0, fy1, width, height):
    """0: no sample ray in [fx0, fx1] x [fy0, fy1] (continuous pixel positions) hits object o; 1: every
    one hits it, in front of the eye; 2: either may happen (or a value is not finite)."""
    if fx1 < objs[o, K.BBX0] or fx0 > objs[o, K.BBX1] or fy1 < objs[o, K.BBY0] or fy0 > objs[o, K.BBY1]:
        return 0  # the kernel's box test turns every sample away
    # Normalised screen coordinates, as ray_dir computes them (rounding is monotonic, so every sample's
    # lie in these ranges); the ray is d = FWD + xn RIGHT + yn UP, in unit-sphere space e = d / axes =
    # e0 + xn e1 + yn e2, and the discriminant half_b^2 - a OC = e^T (O O^T - OC I) e.
    xa = (2.0 * fx0 / width - 1.0) * cam[K.SX]
    xb = (2.0 * fx1 / width - 1.0) * cam[K.SX]
    ya = (1.0 - 2.0 * fy1 / height) * cam[K.SY]
    yb = (1.0 - 2.0 * fy0 / height) * cam[K.SY]
    iax, iay, iaz = objs[o, K.IAX], objs[o, K.IAY], objs[o, K.IAZ]
    e0x, e0y, e0z = cam[K.FWD] * iax, cam[K.FWD + 1] * iay, cam[K.FWD + 2] * iaz
    e1x, e1y, e1z = cam[K.RIGHT] * iax, cam[K.RIGHT + 1] * iay, cam[K.RIGHT + 2] * iaz
    e2x, e2y, e2z = cam[K.UP] * iax, cam[K.UP + 1] * iay, cam[K.UP + 2] * iaz
    ox, oy, oz, oc = objs[o, K.OX], objs[o, K.OY], objs[o, K.OZ], objs[o, K.OC]
    b0 = ox * e0x + oy * e0y + oz * e0z  # O . e_i
    b1 = ox * e1x + oy * e1y + oz * e1z
    b2 = ox * e2x + oy * e2y + oz * e2z
    q0 = b1 * b1 - oc * (e1x * e1x + e1y * e1y + e1z * e1z)
    q1 = b1 * b2 - oc * (e1x * e2x + e1y * e2y + e1z * e2z)
    q2 = b2 * b2 - oc * (e2x * e2x + e2y * e2y + e2z * e2z)
    q3 = b1 * b0 - oc * (e1x * e0x + e1y * e0y + e1z * e0z)
    q4 = b2 * b0 - oc * (e2x * e0x + e2y * e0y + e2z * e0z)
    q5 = b0 * b0 - oc * (e0x * e0x + e0y * e0y + e0z * e0z)
    lo, hi = _quadratic_range(q0, q1, q2, q3, q4, q5, xa, xb, ya, yb)
    reach = 1.0 + max(abs(xa), abs(xb)) + max(abs(ya), abs(yb))  # |d| <= this: FWD, RIGHT, UP are unit
    e_max = max(abs(iax), abs(iay), abs(iaz)) * reach  # |e| <= this
    o2 = ox * ox + oy * oy + oz * oz
    margin = _REFINE_MARGIN * (o2 + abs(oc)) * e_max * e_max
    half_b_max = b0 + max(xa * b1, xb * b1) + max(ya * b2, yb * b2)  # half_b = O . e is linear
    if not (math.isfinite(lo) and math.isfinite(hi) and math.isfinite(margin) and math.isfinite(half_b_max)):
        return 2
    if hi < -margin:
        return 0
    inside_box = (fx0 >= objs[o, K.BBX0] and fx1 <= objs[o, K.BBX1] and fy0 >= objs[o, K.BBY0]
                  and fy1 <= objs[o, K.BBY1])
    if (lo > margin and inside_box and oc > _REFINE_MARGIN * o2
            and half_b_max < -_REFINE_MARGIN * math.sqrt(o2) * e_max):
        return 1
    return 2


@numba.njit(cache=True)
def _refine_tiles(tile_start, tile_objs, cam, objs, tiles_x, per_scene, height, width, tile, dx0, dx1, dy0, dy1):
    n_tiles = tile_start.shape[0] - 1
    start = np.zeros(n_tiles + 1, dtype=np.int64)
    out = np.empty(tile_objs.shape[0], dtype=np.int64)
    k = 0
    for t in range(n_tiles):
        start[t] = k
        local = t % per_scene
        ty = local // tiles_x
        tx = local - ty * tiles_x
        fx0 = tx * tile + 0.5 + dx0
        fx1 = min((tx + 1) * tile, width) - 0.5 + dx1
        fy0 = ty * tile + 0.5 + dy0
        fy1 = min((ty + 1) * tile, height) - 0.5 + dy1
        full = -1
        for j in range(tile_start[t], tile_start[t + 1]):
            o = tile_objs[j]
            v = _verdict(cam, objs, o, fx0, fx1, fy0, fy1, width, height)
            if v == 0:
                continue
            out[k] = o
            k += 1
            if v == 1:
                full = o
        if k - start[t] == 1 and full >= 0:
            out[k - 1] = -(full + 1)
    start[n_tiles] = k
    return start, out[:k].copy()


def pack(scenes: Sequence[Scene], config: SceneConfig, general: bool | None = None) -> Packed:
    """Pack a batch of scenes rendered with one configuration (``general=True`` forces the general
    kernel, which renders the report's scenes to the same bytes: a test holds it to that)."""
    return pack_scene_tables([s.background_noise_scale for s in scenes], [s.object_table() for s in scenes], config,
                             general)


def pack_sampled(config: SceneConfig, seed: int, indices: Sequence[int]) -> Packed:
    """Pack scenes ``indices`` of the dataset with ``seed``, as ``pack([sample_scene(...) ...])`` without
    building Scene objects (the host side of batched GPU rendering)."""
    return pack_scene_tables(*sampled_tables(config, seed, indices), config)


def sampled_tables(config: SceneConfig, seed: int, indices: Sequence[int]) -> tuple[list[float], list[np.ndarray]]:
    """The background noise scales and object tables of scenes ``indices``: the sampling half of
    :func:`pack_sampled` (Python, most of its time), a tenth of the bytes of the packed batch."""
    drawn = [sample_scene_table(config, seed, i) for i in indices]
    return [d[0] for d in drawn], [d[1] for d in drawn]


def pack_scene_tables(backgrounds: Sequence[float], tables: Sequence[np.ndarray], config: SceneConfig,
                      general: bool | None = None) -> Packed:
    """Pack scenes given as background noise scales and object tables."""
    objs, owner, general = pack_tables(tables, config, general)
    tiles_x, per_scene, tile_start, tile_objs = bin_tiles(objs, owner, len(tables), config.height, config.width,
                                                          by_depth=general)
    scene_start = np.zeros(len(tables) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in tables], out=scene_start[1:])
    pattern = np.array(MSAA_PATTERNS[config.antialias.samples], dtype=np.float64) / 16.0
    return Packed(
        height=config.height, width=config.width, tiles_x=tiles_x, tiles_per_scene=per_scene,
        cam=pack_camera(config), objs=objs, tile_start=tile_start, tile_objs=tile_objs,
        bg_scales=np.array(backgrounds, dtype=np.float64).reshape(len(tables)),
        kind=K.NOISE_KINDS[config.noise], pattern=pattern,
        ignore_edges=bool(config.antialias.ignore_edges), ignore_index=int(config.antialias.ignore_index),
        scene_start=scene_start, general=general,
    )
