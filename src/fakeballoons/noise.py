"""Reference definitions of the two noise functions (as the 2022 report defines them).

These NumPy functions are the contract: simple, float64, with exact integer
arithmetic for the lattice hash and the random generator. The rendering
kernels in :mod:`fakeballoons.render.kernels` compute the same functions and
the tests hold them to these definitions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["perlin", "sparse_convolution", "SC_IMPULSES"]

#: Impulses per unit cell of sparse convolution noise (Frisvad & Wyvill's S).
SC_IMPULSES = 30


def _as_points(points) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim == 0 or p.shape[-1] != 3:
        raise ValueError(f"points must have shape (..., 3), got {p.shape}")
    return p


def _permute(x: np.ndarray) -> np.ndarray:
    """Permutation polynomial (34 x^2 + x) mod 289 on int64, non-negative result."""
    x = np.mod(x, 289)  # reduce first so 34 x^2 cannot overflow
    return np.mod(34 * x * x + x, 289)


def _fade(t: np.ndarray) -> np.ndarray:
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def perlin(points) -> np.ndarray:
    """Improved Perlin noise after McEwan, Sheets, Richardson & Gustavson (2012).

    Args:
        points: array-like of shape (..., 3).

    Returns:
        float64 array of shape (...), values roughly in [-1, 1].
    """
    p = _as_points(points)
    i = np.floor(p)
    f = p - i
    i = i.astype(np.int64)
    u = _fade(f)
    total = np.zeros(p.shape[:-1])
    for cx in (0, 1):
        for cy in (0, 1):
            for cz in (0, 1):
                c = (cx, cy, cz)
                q = [i[..., a] + c[a] for a in range(3)]
                h = _permute(q[0] + _permute(q[1] + _permute(q[2])))
                k = h % 12
                s0 = 1.0 - 2.0 * (k % 2)
                s1 = 1.0 - 2.0 * ((k // 2) % 2)
                gx = np.where(k < 8, s0, 0.0)
                gy = np.where(k < 4, s1, np.where(k >= 8, s0, 0.0))
                gz = np.where(k >= 4, s1, 0.0)
                dot = (f[..., 0] - cx) * gx + (f[..., 1] - cy) * gy + (f[..., 2] - cz) * gz
                weight = np.ones_like(total)
                for a in range(3):
                    weight = weight * (u[..., a] if c[a] else 1.0 - u[..., a])
                total = total + weight * dot
    return total


def _lcg(t: np.ndarray) -> np.ndarray:
    return (3125 * t + 49) % 65536


def sparse_convolution(points) -> np.ndarray:
    """Sparse convolution noise after Frisvad & Wyvill (2007), S = 30 impulses per cell.

    Args:
        points: array-like of shape (..., 3).

    Returns:
        float64 array of shape (...).
    """
    p = _as_points(points)
    s = SC_IMPULSES
    a = 0.8 * s ** (-1.0 / 3.0)
    i0 = np.floor(p - 0.5).astype(np.int64)
    total = np.zeros(p.shape[:-1])
    for cx in (0, 1):
        for cy in (0, 1):
            for cz in (0, 1):
                q = i0 + np.array([cx, cy, cz], dtype=np.int64)
                t = (4 * s * (q[..., 0] + 1000 * q[..., 1] + 576 * q[..., 2])) % 65536
                for j in range(s):
                    t = _lcg(t)
                    w = a * (t / 65536.0) * (1.0 if j < s // 2 else -1.0)
                    xi = []
                    for _ in range(3):
                        t = _lcg(t)
                        xi.append(t / 65536.0)
                    d2 = sum((q[..., ax] + xi[ax] - p[..., ax]) ** 2 for ax in range(3))
                    total = total + w * np.maximum(0.0, 1.0 - 4.0 * d2) ** 3
    return total
