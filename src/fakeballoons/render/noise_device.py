"""The two noise functions as device functions, for the rendering kernels (one source, CPU and CUDA).

They compute :mod:`fakeballoons.noise` (the reference definitions) with exact int64 lattice
hashing and generator arithmetic; tests hold them to it.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from ..noise import SC_IMPULSES

_S = SC_IMPULSES
_SC_AMPLITUDE = 0.8 * _S ** (-1.0 / 3.0)


def _perlin_tables():
    """pi(x mod 289) for x in [0, 578), and the gradient of each hash pi(x) (as in noise.py)."""
    x = np.arange(578, dtype=np.int64) % 289
    perm = (34 * x * x + x) % 289
    k = perm % 12
    s0 = 1.0 - 2.0 * (k % 2)
    s1 = 1.0 - 2.0 * ((k // 2) % 2)
    gx = np.where(k < 8, s0, 0.0)
    gy = np.where(k < 4, s1, np.where(k >= 8, s0, 0.0))
    gz = np.where(k >= 4, s1, 0.0)
    return perm, gx, gy, gz


_PERM, _GRAD_X, _GRAD_Y, _GRAD_Z = _perlin_tables()


def build_noise(jit, sjit) -> SimpleNamespace:
    """``perlin``, ``perlin_z0`` (and its parts ``perlin_axis`` and ``perlin_z0_at``), ``sparse_convolution``,
    ``noise(kind, x, y, z)`` and ``noise_z0(kind, x, y)`` (the slice z = 0); the two ``noise`` functions
    are compiled with ``sjit`` (see :func:`fakeballoons.render.kernels.build`), the others with ``jit``."""
    perm = _PERM
    grad_x = _GRAD_X
    grad_y = _GRAD_Y
    grad_z = _GRAD_Z

    @jit
    def grad_dot(i, fx, fy, fz):
        """Gradient of lattice hash pi(i) (i in [0, 578)) dotted with the offset (fx, fy, fz)."""
        return grad_x[i] * fx + grad_y[i] * fy + grad_z[i] * fz

    @jit
    def grad_dot_xy(i, fx, fy):
        """grad_dot(i, fx, fy, 0.0) but for the sign of a zero: the z term, +-0, is left out."""
        return grad_x[i] * fx + grad_y[i] * fy

    @jit
    def fade(t):
        return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)

    @jit
    def perlin(x, y, z):
        fx0 = math.floor(x)
        fy0 = math.floor(y)
        fz0 = math.floor(z)
        # pi(a + b) only depends on (a + b) mod 289: reduce each coordinate once, then every
        # argument below is in [0, 578) and the permutation is a table lookup (exact integers).
        ix = np.int64(fx0) % 289
        iy = np.int64(fy0) % 289
        iz = np.int64(fz0) % 289
        fx = x - fx0
        fy = y - fy0
        fz = z - fz0
        # Hashes shared between corners: 2 + 4 + 8 permutations instead of 24.
        pz0 = perm[iz]
        pz1 = perm[iz + 1]
        p00 = perm[iy + pz0]
        p01 = perm[iy + pz1]
        p10 = perm[iy + 1 + pz0]
        p11 = perm[iy + 1 + pz1]
        n000 = grad_dot(ix + p00, fx, fy, fz)
        n001 = grad_dot(ix + p01, fx, fy, fz - 1.0)
        n010 = grad_dot(ix + p10, fx, fy - 1.0, fz)
        n011 = grad_dot(ix + p11, fx, fy - 1.0, fz - 1.0)
        n100 = grad_dot(ix + 1 + p00, fx - 1.0, fy, fz)
        n101 = grad_dot(ix + 1 + p01, fx - 1.0, fy, fz - 1.0)
        n110 = grad_dot(ix + 1 + p10, fx - 1.0, fy - 1.0, fz)
        n111 = grad_dot(ix + 1 + p11, fx - 1.0, fy - 1.0, fz - 1.0)
        ux = fade(fx)
        uy = fade(fy)
        uz = fade(fz)
        vx = 1.0 - ux
        vy = 1.0 - uy
        vz = 1.0 - uz
        return (vx * (vy * (vz * n000 + uz * n001) + uy * (vz * n010 + uz * n011))
                + ux * (vy * (vz * n100 + uz * n101) + uy * (vz * n110 + uz * n111)))

    @jit
    def perlin_axis(v):
        """One coordinate's part of perlin_z0: floor(v) mod 289, the fraction v - floor(v) and its fade."""
        v0 = math.floor(v)
        f = v - v0
        return np.int64(v0) % 289, f, fade(f)

    @jit
    def perlin_z0_at(ix, fx, ux, iy, fy, uy):
        """perlin_z0 from its two axes (``perlin_axis`` of x and of y): a renderer that walks a row
        computes the y axis once a row and the x axis once a column."""
        pz0 = perm[0]
        p00 = perm[iy + pz0]
        p10 = perm[iy + 1 + pz0]
        n000 = grad_dot_xy(ix + p00, fx, fy)
        n010 = grad_dot_xy(ix + p10, fx, fy - 1.0)
        n100 = grad_dot_xy(ix + 1 + p00, fx - 1.0, fy)
        n110 = grad_dot_xy(ix + 1 + p10, fx - 1.0, fy - 1.0)
        vx = 1.0 - ux
        vy = 1.0 - uy
        return vx * (vy * n000 + uy * n010) + ux * (vy * n100 + uy * n110)

    @jit
    def perlin_z0(x, y):
        """perlin(x, y, 0.0) without its four corners at z = 1, whose weight fade(0) is exactly 0, and
        without the z terms (+-0) of the other four: the same value, but for the sign of a zero (which
        no picture can show: 0.5 n + 0.5 is 0.5 either way). Backgrounds and the ground are such slices."""
        ix, fx, ux = perlin_axis(x)
        iy, fy, uy = perlin_axis(y)
        return perlin_z0_at(ix, fx, ux, iy, fy, uy)

    @jit
    def sparse_convolution(x, y, z):
        bx = np.int64(math.floor(x - 0.5))
        by = np.int64(math.floor(y - 0.5))
        bz = np.int64(math.floor(z - 0.5))
        total = 0.0
        for cx in range(2):
            qx = bx + cx
            dx = max(max(qx - x, x - (qx + 1.0)), 0.0)
            for cy in range(2):
                qy = by + cy
                dy = max(max(qy - y, y - (qy + 1.0)), 0.0)
                for cz in range(2):
                    qz = bz + cz
                    dz = max(max(qz - z, z - (qz + 1.0)), 0.0)
                    # Impulses of a cell lie inside it and the kernel vanishes beyond 0.5, so a
                    # cell farther than 0.5 from p adds exactly zero and is skipped.
                    if dx * dx + dy * dy + dz * dz >= 0.25:
                        continue
                    # True modulo: the seed is non-negative, so each step below may use a mask.
                    t = (4 * _S * (qx + 1000 * qy + 576 * qz)) % 65536
                    for j in range(_S):
                        t = (3125 * t + 49) & 65535
                        w = _SC_AMPLITUDE * (t / 65536.0)
                        if j >= _S // 2:
                            w = -w
                        t = (3125 * t + 49) & 65535
                        vx = (qx + t / 65536.0) - x
                        t = (3125 * t + 49) & 65535
                        vy = (qy + t / 65536.0) - y
                        t = (3125 * t + 49) & 65535
                        vz = (qz + t / 65536.0) - z
                        d2 = vx * vx + vy * vy + vz * vz
                        if d2 < 0.25:
                            k = 1.0 - 4.0 * d2
                            total += w * (k * k * k)
        return total

    @sjit
    def noise(kind, x, y, z):
        if kind == 0:
            return perlin(x, y, z)
        return sparse_convolution(x, y, z)

    @sjit
    def noise_z0(kind, x, y):
        """noise(kind, x, y, 0.0), with perlin_z0 for Perlin noise."""
        if kind == 0:
            return perlin_z0(x, y)
        return sparse_convolution(x, y, 0.0)

    return SimpleNamespace(perlin=perlin, perlin_z0=perlin_z0, perlin_axis=perlin_axis, perlin_z0_at=perlin_z0_at,
                           sparse_convolution=sparse_convolution, noise=noise, noise_z0=noise_z0)
