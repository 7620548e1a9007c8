"""The CPU target of the render kernels: :func:`~fakeballoons.render.kernels.build` compiled with
``numba.njit`` (the report's build and the general one), and the row loops that run them over a
packed batch on numba's threads. The CUDA target is :mod:`fakeballoons.render.cuda`.

``report`` and ``general`` are the two builds' device functions (see ``kernels.build``), callable
from Python as well, which the tests use to hold single functions to their references.
"""

from __future__ import annotations

import numba
import numpy as np

from .kernels import build

report = build(numba.njit(cache=True, inline="always"), pixel_test=True)
general = build(numba.njit(cache=True, inline="always"), general=True, scalar_jit=numba.njit(cache=True))

_shade_pixel = report.shade_pixel
_shade_pixel_general = general.shade_pixel
_noise = report.noise
_background_point = report.background_point
_noise_grey = report.noise_grey
_to_byte = report.to_byte
_put_backdrop = report.put_backdrop
_perlin_axis = report.perlin_axis
_perlin_z0_at = report.perlin_z0_at


@numba.njit(cache=True)
def _sky_columns(width, height, bg_scales, kind):
    """The x axis of each scene's Perlin background (``perlin_axis`` at every column's pixel centre),
    for the rows that ``render_cpu`` walks: the lattice cell, the fraction and its fade, each (B, W)
    (for the sparse-convolution noise, which has no such parts, (0, W))."""
    n = bg_scales.shape[0] if kind == 0 else 0
    cell = np.empty((n, width), np.int64)
    frac = np.empty((n, width), np.float64)
    fade = np.empty((n, width), np.float64)
    for b in range(n):
        for px in range(width):
            x, _ = _background_point(px + 0.5, 0.5, width, height, bg_scales[b])
            cell[b, px], frac[b, px], fade[b, px] = _perlin_axis(x)
    return cell, frac, fade


@numba.njit(parallel=True, cache=True)
def render_cpu(height, width, tile_size, tiles_x, tiles_per_scene, cam, objs, tile_start, tile_objs,
               bg_scales, kind, pattern, ignore_edges, ignore_index, scene_start, image, label, instance):
    """Render every pixel of every scene of a packed batch; rows run in parallel on all threads, and
    each row tile by tile (render_pixel's pixels, without a division per pixel to find the tile).

    A tile with no object is all background, and with Perlin noise its pixels take the noise's x axis
    from ``_sky_columns`` and its y axis from the row: the same arithmetic as ``background``, without
    the division, floor and fade that each of its pixels would repeat."""
    rows = bg_scales.shape[0] * height
    cell, frac, fade = _sky_columns(width, height, bg_scales, kind)
    for row in numba.prange(rows):
        b = row // height
        py = row - b * height
        first_tile = b * tiles_per_scene + (py // tile_size) * tiles_x
        iy, fy, uy = 0, 0.0, 0.0
        if kind == 0:
            _, y = _background_point(0.5, py + 0.5, width, height, bg_scales[b])
            iy, fy, uy = _perlin_axis(y)
        for tx in range(tiles_x):
            lo = tile_start[first_tile + tx]
            hi = tile_start[first_tile + tx + 1]
            if lo == hi and kind == 0:
                for px in range(tx * tile_size, min((tx + 1) * tile_size, width)):
                    g = _to_byte(_noise_grey(_perlin_z0_at(cell[b, px], frac[b, px], fade[b, px], iy, fy, uy)))
                    _put_backdrop(b, py, px, g, image, label, instance)
                continue
            for px in range(tx * tile_size, min((tx + 1) * tile_size, width)):
                _shade_pixel(b, py, px, lo, hi, height, width, cam, objs, tile_objs, bg_scales, kind, pattern,
                             ignore_edges, ignore_index, scene_start, image, label, instance)


@numba.njit(parallel=True, cache=True)
def render_cpu_general(height, width, tile_size, tiles_x, tiles_per_scene, cam, objs, tile_start, tile_objs,
                       bg_scales, kind, pattern, ignore_edges, ignore_index, scene_start, image, label, instance):
    """``render_cpu`` with the general build: shapes, rotations, textures, ground and shadows."""
    rows = bg_scales.shape[0] * height
    for row in numba.prange(rows):
        b = row // height
        py = row - b * height
        first_tile = b * tiles_per_scene + (py // tile_size) * tiles_x
        for tx in range(tiles_x):
            lo = tile_start[first_tile + tx]
            hi = tile_start[first_tile + tx + 1]
            for px in range(tx * tile_size, min((tx + 1) * tile_size, width)):
                _shade_pixel_general(b, py, px, lo, hi, height, width, cam, objs, tile_objs, bg_scales, kind,
                                     pattern, ignore_edges, ignore_index, scene_start, image, label, instance)


@numba.njit(parallel=True, cache=True)
def noise_cpu(points, kind, out):
    """Evaluate noise ``kind`` at points (N, 3) float64 into out (N,) with the kernel's own code."""
    for i in numba.prange(points.shape[0]):
        out[i] = _noise(kind, points[i, 0], points[i, 1], points[i, 2])
