"""Turn scenes into the flat arrays the kernels read (layout in :mod:`.kernels`).

Everything per object is computed here once, vectorised over the whole batch:
the ray origin in unit-sphere space, the colour, and the exact screen-space
bounding box of each ellipsoid's projection (from its tangent planes through the
eye), which bins objects into 16x16-pixel tiles so a pixel tests only the few
objects that can cover it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..config import MSAA_PATTERNS, SceneConfig, hsl_colour
from ..scene import Scene
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


def pack_objects(scenes: Sequence[Scene], config: SceneConfig) -> tuple[np.ndarray, np.ndarray]:
    """Object rows of all scenes (scene by scene, in object order) and the scene of each row."""
    rows = [(b, i, o) for b, scene in enumerate(scenes) for i, o in enumerate(scene.objects)]
    objs = np.zeros((len(rows), K.OBJ_FIELDS))
    owner = np.array([b for b, _, _ in rows], dtype=np.int64)
    if not rows:
        return objs, owner
    centre = np.array([(o.x, o.y, o.z) for _, _, o in rows])
    axes = np.array([o.semi_axes for _, _, o in rows])
    eye, right, up, fwd = camera_basis(config)
    objs[:, K.CX:K.CX + 3] = centre
    objs[:, K.IAX:K.IAX + 3] = 1.0 / axes
    origin = (eye - centre) / axes
    objs[:, K.OX:K.OX + 3] = origin
    objs[:, K.OC] = np.einsum("ij,ij->i", origin, origin) - 1.0
    objs[:, K.COL_R:K.COL_R + 3] = [hsl_colour(o.hue) for _, _, o in rows]
    objs[:, K.KD] = [o.kd for _, _, o in rows]
    objs[:, K.KS] = [o.ks for _, _, o in rows]
    objs[:, K.NS] = [o.shininess for _, _, o in rows]
    objs[:, K.NOISE_SCALE] = [o.noise_scale for _, _, o in rows]
    objs[:, K.CLASS] = [o.class_id for _, _, o in rows]
    objs[:, K.INSTANCE] = [i + 1 for _, i, _ in rows]
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
    bb = objs[:, K.BBX0:K.BBY1 + 1]
    visible = (bb[:, 2] >= 0) & (bb[:, 0] <= width) & (bb[:, 3] >= 0) & (bb[:, 1] <= height) \
        & (bb[:, 0] <= bb[:, 2]) & (bb[:, 1] <= bb[:, 3])
    idx = np.flatnonzero(visible)
    tx0 = np.clip(np.floor(bb[idx, 0] / TILE_SIZE), 0, tiles_x - 1).astype(np.int64)
    tx1 = np.clip(np.floor(bb[idx, 2] / TILE_SIZE), 0, tiles_x - 1).astype(np.int64)
    ty0 = np.clip(np.floor(bb[idx, 1] / TILE_SIZE), 0, tiles_y - 1).astype(np.int64)
    ty1 = np.clip(np.floor(bb[idx, 3] / TILE_SIZE), 0, tiles_y - 1).astype(np.int64)
    span_x = tx1 - tx0 + 1
    counts = span_x * (ty1 - ty0 + 1)
    total = int(counts.sum())
    rep = np.repeat(np.arange(len(idx)), counts)
    k = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    tile = owner[idx][rep] * per_scene + (ty0[rep] + k // span_x[rep]) * tiles_x + tx0[rep] + k % span_x[rep]
    order = np.argsort(tile, kind="stable")
    tile_objs = idx[rep][order].astype(np.int64)
    tile_start = np.zeros(batch * per_scene + 1, dtype=np.int64)
    np.cumsum(np.bincount(tile, minlength=batch * per_scene), out=tile_start[1:])
    return tiles_x, per_scene, tile_start, tile_objs


def pack(scenes: Sequence[Scene], config: SceneConfig) -> Packed:
    """Pack a batch of scenes rendered with one configuration."""
    objs, owner = pack_objects(scenes, config)
    tiles_x, per_scene, tile_start, tile_objs = bin_tiles(objs, owner, len(scenes), config.height, config.width)
    pattern = np.array(MSAA_PATTERNS[config.antialias.samples], dtype=np.float64) / 16.0
    return Packed(
        height=config.height, width=config.width, tiles_x=tiles_x, tiles_per_scene=per_scene,
        cam=pack_camera(config), objs=objs, tile_start=tile_start, tile_objs=tile_objs,
        bg_scales=np.array([s.background_noise_scale for s in scenes], dtype=np.float64),
        kind=K.NOISE_KINDS[config.noise], pattern=pattern,
        ignore_edges=bool(config.antialias.ignore_edges), ignore_index=int(config.antialias.ignore_index),
    )
