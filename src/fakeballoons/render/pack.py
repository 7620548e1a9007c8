"""Turn scenes into the flat arrays the kernels read (layout in :mod:`.kernels`).

Everything per object is computed here once, vectorised over the whole batch:
the ray origin in unit-sphere space, the colour, and the exact screen-space
bounding box of each ellipsoid's projection (from its tangent planes through the
eye), which bins objects into 16x16-pixel tiles so a pixel tests only the few
objects that can cover it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from ..config import MSAA_PATTERNS, SceneConfig
from ..scene import OBJECT_FIELDS, Scene, sample_scene_table
from . import kernels as K

TILE_SIZE = 16
_BBOX_MARGIN = 0.5  # pixels added around each exact bounding box against rounding


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
    kind: int  # kernels.PERLIN or kernels.SPARSE_CONVOLUTION
    pattern: np.ndarray  # (S, 2) float64 sample offsets in pixels
    ignore_edges: bool
    ignore_index: int

    @property
    def batch(self) -> int:
        return int(self.bg_scales.shape[0])

    def kernel_args(self) -> tuple:
        """Arguments of ``render_cpu`` / the CUDA kernel, before the output arrays."""
        return (self.height, self.width, TILE_SIZE, self.tiles_x, self.tiles_per_scene, self.cam,
                self.objs, self.tile_start, self.tile_objs, self.bg_scales, self.kind, self.pattern,
                self.ignore_edges, self.ignore_index)


def camera_basis(config: SceneConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Eye and the unit right, up and forward vectors of the configured camera."""
    cam = config.camera
    eye = np.asarray(cam.eye, dtype=np.float64)
    fwd = np.asarray(cam.target, dtype=np.float64) - eye
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, np.asarray(cam.up, dtype=np.float64))
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    return eye, right, up, fwd


def pack_camera(config: SceneConfig) -> np.ndarray:
    eye, right, up, fwd = camera_basis(config)
    cam = np.zeros(K.CAM_SIZE)
    cam[K.EYE:K.EYE + 3] = eye
    cam[K.RIGHT:K.RIGHT + 3] = right
    cam[K.UP:K.UP + 3] = up
    cam[K.FWD:K.FWD + 3] = fwd
    tan_half = math.tan(math.radians(config.camera.fov_y) / 2.0)
    cam[K.SX] = tan_half * config.width / config.height
    cam[K.SY] = tan_half
    cam[K.LIGHT:K.LIGHT + 3] = config.light.position
    cam[K.KA] = config.light.ambient
    return cam


def hsl_colours(hue: np.ndarray) -> np.ndarray:
    """:func:`~fakeballoons.config.hsl_colour` of many hues, (n, 3), bit for bit (colorsys' arithmetic)."""
    h = np.mod(hue, 360.0) / 360.0
    out = np.empty((len(h), 3))
    for channel, offset in enumerate((1.0 / 3.0, 0.0, -1.0 / 3.0)):
        t = np.mod(h + offset, 1.0)
        # colorsys._v with m1 = 0, m2 = 1: rise on [0, 1/6), 1 on [1/6, 1/2), fall on [1/2, 2/3), else 0
        out[:, channel] = np.where(t < 1.0 / 6.0, t * 6.0,
                                   np.where(t < 0.5, 1.0, np.where(t < 2.0 / 3.0, (2.0 / 3.0 - t) * 6.0, 0.0)))
    return out


def pack_tables(tables: Sequence[np.ndarray], config: SceneConfig) -> tuple[np.ndarray, np.ndarray]:
    """Object rows of all scenes (scene by scene, in object order) and the scene of each row, from
    per-scene object tables (columns of :data:`~fakeballoons.scene.OBJECT_FIELDS`)."""
    counts = np.array([len(t) for t in tables], dtype=np.int64)
    owner = np.repeat(np.arange(len(tables), dtype=np.int64), counts)
    total = int(counts.sum())
    objs = np.zeros((total, K.OBJ_FIELDS))
    if total == 0:
        return objs, owner
    table = np.concatenate(tables)
    col = {name: table[:, j] for j, name in enumerate(OBJECT_FIELDS)}
    centre = table[:, 5:8]
    rho, scale = col["elongation"], col["scale"]
    # SceneObject.semi_axes, vectorised; math.hypot, not np.hypot, which differs in the last bit
    k = math.sqrt(2.0) / np.array([math.hypot(r, 1.0 - r) for r in rho.tolist()])
    axes = np.stack([scale * rho * k, scale * (1.0 - rho) * k, scale], axis=1)
    eye = camera_basis(config)[0]
    objs[:, K.CX:K.CX + 3] = centre
    objs[:, K.IAX:K.IAX + 3] = 1.0 / axes
    origin = (eye - centre) / axes
    objs[:, K.OX:K.OX + 3] = origin
    objs[:, K.OC] = np.einsum("ij,ij->i", origin, origin) - 1.0
    objs[:, K.COL_R:K.COL_R + 3] = hsl_colours(col["hue"])
    objs[:, K.KD] = col["kd"]
    objs[:, K.KS] = col["ks"]
    objs[:, K.NS] = col["shininess"]
    objs[:, K.NOISE_SCALE] = col["noise_scale"]
    objs[:, K.CLASS] = col["class_id"]
    objs[:, K.INSTANCE] = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    objs[:, K.BBX0:K.BBY1 + 1] = projected_bbox(centre, axes, config)
    return objs, owner


def projected_bbox(centre: np.ndarray, axes: np.ndarray, config: SceneConfig) -> np.ndarray:
    """Screen bounding boxes (x0, y0, x1, y1) in continuous pixel coordinates, one row per ellipsoid.

    In camera coordinates (x right, y up, z forward) the ellipsoid {X : (X - c)^T M (X - c) <= 1}
    is touched by the plane through the eye with normal n where n^T M^-1 n = (n . c)^2. For
    n = (1, 0, -s) the plane holds the points with x / z = s, which gives a quadratic in s whose
    two roots bound x / z; likewise for y. An ellipsoid that reaches behind the eye's plane gets
    the whole screen; one entirely behind gets an empty box.
    """
    eye, right, up, fwd = camera_basis(config)
    rot = np.stack([right, up, fwd])  # world -> camera
    c = (centre - eye) @ rot.T  # (n, 3)
    # M^-1 in camera coordinates: rot diag(axes^2) rot^T.
    p = np.einsum("ai,ni,bi->nab", rot, axes ** 2, rot)
    w, h = config.width, config.height
    tan_half = math.tan(math.radians(config.camera.fov_y) / 2.0)
    scale = np.array([tan_half * w / h, tan_half])
    out = np.empty((len(c), 4))
    out[:] = (-_BBOX_MARGIN, -_BBOX_MARGIN, w + _BBOX_MARGIN, h + _BBOX_MARGIN)  # whole screen
    alpha = p[:, 2, 2] - c[:, 2] ** 2
    depth_extent = np.sqrt(p[:, 2, 2])
    in_front = (c[:, 2] > 0) & (alpha < 0)
    behind = c[:, 2] + depth_extent <= 0
    out[behind] = (1.0, 1.0, -1.0, -1.0)  # empty
    if in_front.any():
        cf, pf, af = c[in_front], p[in_front], alpha[in_front]
        bounds = []
        for axis in (0, 1):
            beta = pf[:, axis, 2] - cf[:, axis] * cf[:, 2]
            gamma = pf[:, axis, axis] - cf[:, axis] ** 2
            root = np.sqrt(np.maximum(beta * beta - af * gamma, 0.0))
            s1, s2 = (beta + root) / af, (beta - root) / af
            bounds.append((np.minimum(s1, s2) / scale[axis], np.maximum(s1, s2) / scale[axis]))
        (xn0, xn1), (yn0, yn1) = bounds
        out[in_front, 0] = (xn0 + 1.0) / 2.0 * w - _BBOX_MARGIN
        out[in_front, 2] = (xn1 + 1.0) / 2.0 * w + _BBOX_MARGIN
        out[in_front, 1] = (1.0 - yn1) / 2.0 * h - _BBOX_MARGIN  # screen y grows downwards
        out[in_front, 3] = (1.0 - yn0) / 2.0 * h + _BBOX_MARGIN
    return out


def bin_tiles(objs: np.ndarray, owner: np.ndarray, batch: int, height: int, width: int):
    """CSR lists of the objects whose bounding box touches each tile, per scene, in object order."""
    tiles_x = -(-width // TILE_SIZE)
    tiles_y = -(-height // TILE_SIZE)
    per_scene = tiles_x * tiles_y
    tile_start, tile_objs = _bin_tiles(np.ascontiguousarray(objs[:, K.BBX0:K.BBY1 + 1]), owner, batch,
                                       height, width, tiles_x, tiles_y, TILE_SIZE)
    return tiles_x, per_scene, tile_start, tile_objs


@numba.njit(cache=True)
def _tile_range(lo, hi, tile, n):
    return min(max(int(math.floor(lo / tile)), 0), n - 1), min(max(int(math.floor(hi / tile)), 0), n - 1)


@numba.njit(cache=True)
def _bin_tiles(bb, owner, batch, height, width, tiles_x, tiles_y, tile):
    """A counting sort of (tile, object) pairs: count per tile, prefix sums, then fill in object order."""
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
    for o in range(n):
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


def pack(scenes: Sequence[Scene], config: SceneConfig) -> Packed:
    """Pack a batch of scenes rendered with one configuration."""
    return pack_scene_tables([s.background_noise_scale for s in scenes], [s.object_table() for s in scenes], config)


def pack_sampled(config: SceneConfig, seed: int, indices: Sequence[int]) -> Packed:
    """Pack scenes ``indices`` of the dataset with ``seed``, as ``pack([sample_scene(...) ...])`` without
    building Scene objects (the host side of batched GPU rendering)."""
    drawn = [sample_scene_table(config, seed, i) for i in indices]
    return pack_scene_tables([d[0] for d in drawn], [d[1] for d in drawn], config)


def pack_scene_tables(backgrounds: Sequence[float], tables: Sequence[np.ndarray], config: SceneConfig) -> Packed:
    """Pack scenes given as background noise scales and object tables."""
    objs, owner = pack_tables(tables, config)
    tiles_x, per_scene, tile_start, tile_objs = bin_tiles(objs, owner, len(tables), config.height, config.width)
    pattern = np.array(MSAA_PATTERNS[config.antialias.samples], dtype=np.float64) / 16.0
    return Packed(
        height=config.height, width=config.width, tiles_x=tiles_x, tiles_per_scene=per_scene,
        cam=pack_camera(config), objs=objs, tile_start=tile_start, tile_objs=tile_objs,
        bg_scales=np.array(backgrounds, dtype=np.float64).reshape(len(tables)),
        kind=K.NOISE_KINDS[config.noise], pattern=pattern,
        ignore_edges=bool(config.antialias.ignore_edges), ignore_index=int(config.antialias.ignore_index),
    )
