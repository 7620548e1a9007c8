"""Test helper for the shape tests: the shape device functions compiled for arrays of rays, a CUDA
kernel calling them, and exact NumPy reference geometry (inside tests, signed distances, a
brute-force first hit) with random shapes and rays.

Imported by tests/test_shapes.py and tests/test_shape_support.py, and, in a subprocess that compiles
PTX with NVVM, by name.
"""

import math

import numba
import numpy as np
from numba import cuda  # a module global: the simulator swaps this name inside kernels

from fakeballoons.geometry import bounding_radius
from fakeballoons.render.shapes import build_shapes

# Plain njit for the array harnesses: inlining hit into a caller with inline="always" (as the
# renderer's kernels do) costs ~10 s of compilation; INLINE checks that build on the scalar cases.
CPU = build_shapes(numba.njit)
INLINE = build_shapes(numba.njit(inline="always"))
_hit = CPU.hit
_normal = CPU.normal

ELL, BOX, CYL, CONE, CAP, TOR = range(6)
R2 = math.sqrt(2.0)


@numba.njit
def hit_many(kinds, params, rays, out):
    for i in range(kinds.shape[0]):
        out[i] = _hit(kinds[i], params[i, 0], params[i, 1], params[i, 2],
                      rays[i, 0], rays[i, 1], rays[i, 2], rays[i, 3], rays[i, 4], rays[i, 5])


@numba.njit
def normal_many(kinds, params, points, out):
    for i in range(kinds.shape[0]):
        out[i, 0], out[i, 1], out[i, 2] = _normal(kinds[i], params[i, 0], params[i, 1], params[i, 2],
                                                  points[i, 0], points[i, 1], points[i, 2])


def hit(kind, params, origin, direction):
    """t from the inline="always" build, checked against the plain one."""
    args = (kind, *map(float, params), *map(float, origin), *map(float, direction))
    t = INLINE.hit(*args)
    assert t == CPU.hit(*args)
    return t


def normal(kind, params, point):
    args = (kind, *map(float, params), *map(float, point))
    n = INLINE.normal(*args)
    assert n == CPU.normal(*args)
    return np.array(n)


def make_kernel(dev):
    """A kernel calling ``hit`` and then ``normal`` at the hit point, one ray per thread."""
    shape_hit = dev.hit
    shape_normal = dev.normal

    def kernel(kinds, params, rays, t_out, n_out):
        i = cuda.grid(1)
        if i < kinds.shape[0]:
            k = kinds[i]
            p0 = params[i, 0]
            p1 = params[i, 1]
            p2 = params[i, 2]
            t = shape_hit(k, p0, p1, p2, rays[i, 0], rays[i, 1], rays[i, 2], rays[i, 3], rays[i, 4], rays[i, 5])
            t_out[i] = t
            nx = 0.0
            ny = 0.0
            nz = 0.0
            if t > 0.0:
                nx, ny, nz = shape_normal(k, p0, p1, p2, rays[i, 0] + t * rays[i, 3], rays[i, 1] + t * rays[i, 4],
                                          rays[i, 2] + t * rays[i, 5])
            n_out[i, 0] = nx
            n_out[i, 1] = ny
            n_out[i, 2] = nz

    return kernel


KERNEL_SIGNATURE = "void(int64[::1], float64[:, ::1], float64[:, ::1], float64[::1], float64[:, ::1])"


# ------------------------------------------------------------------ reference geometry (NumPy)

def inside(kind, P, p):
    """Exact closed-set membership of points p (..., 3) in shapes P (..., 3)."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    a, b, c = P[..., 0], P[..., 1], P[..., 2]
    if kind == ELL:
        return (x / a) ** 2 + (y / b) ** 2 + (z / c) ** 2 <= 1.0
    if kind == BOX:
        return (np.abs(x) <= a) & (np.abs(y) <= b) & (np.abs(z) <= c)
    rho = np.hypot(x, z)
    if kind == CYL:
        return (rho <= a) & (np.abs(y) <= b)
    if kind == CONE:
        return (np.abs(y) <= b) & (2.0 * b * rho <= a * (b - y))
    if kind == CAP:
        return np.hypot(rho, y - np.clip(y, -b, b)) <= a
    return np.hypot(rho - a, y) <= b


def _box2(q, half):
    """Exact signed distance to a box (any dimension) of half-extents ``half``, last axis."""
    d = np.abs(q) - half
    return np.linalg.norm(np.maximum(d, 0.0), axis=-1) + np.minimum(d.max(-1), 0.0)


def sdf(kind, P, p):
    """Exact signed distance (negative inside); for the ellipsoid, which has no closed form, the
    implicit |p / axes| - 1 (same zero set, gradient along the normal)."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    a, b, c = P[..., 0], P[..., 1], P[..., 2]
    if kind == ELL:
        return np.sqrt((x / a) ** 2 + (y / b) ** 2 + (z / c) ** 2) - 1.0
    if kind == BOX:
        return _box2(p, P)
    rho = np.hypot(x, z)
    if kind == CYL:
        return _box2(np.stack([rho, y], -1), np.stack([a, b], -1))
    if kind == CONE:
        # The cross-section in the (rho, y) plane, mirrored: the triangle (-R, -h), (R, -h), (0, h).
        q = np.stack([rho, y], -1)
        corners = [np.stack([-a, -b], -1), np.stack([a, -b], -1), np.stack([0.0 * a, b], -1)]
        d = np.inf
        for i in range(3):
            e = corners[(i + 1) % 3] - corners[i]
            w = q - corners[i]
            s = np.clip((w * e).sum(-1) / (e * e).sum(-1), 0.0, 1.0)
            d = np.minimum(d, np.linalg.norm(w - e * s[..., None], axis=-1))
        return np.where(inside(CONE, P, p), -d, d)
    if kind == CAP:
        return np.hypot(rho, y - np.clip(y, -b, b)) - a
    return np.hypot(rho - a, y) - b


def brute_hit(kind, P, o, d, samples=2000, bisections=64):
    """First boundary crossing t > 0 of o + t d by dense sampling of ``inside`` over the bounding
    sphere's chord, then bisection to the last bit; -1 where no sample changes side. Chords shorter
    than a sample step (corner grazes) are missed: see ``test_random_rays_against_brute_force``."""
    radius = bounding_radius(kind, P[:, 0], P[:, 1], P[:, 2]) * (1.0 + 1e-9)
    dd = (d * d).sum(-1)
    nb = (o * d).sum(-1)
    disc = nb * nb - dd * ((o * o).sum(-1) - radius * radius)
    root = np.sqrt(np.maximum(disc, 0.0))
    t0 = np.maximum((-nb - root) / dd, 0.0)
    t1 = (-nb + root) / dd
    t = np.full(len(o), -1.0)
    todo = np.nonzero((disc > 0.0) & (t1 > 0.0))[0]
    frac = np.linspace(0.0, 1.0, samples)
    for rows in np.array_split(todo, max(1, len(todo) // 250)):
        ts = t0[rows, None] + (t1 - t0)[rows, None] * frac
        side = inside(kind, P[rows, None, :], o[rows, None, :] + ts[..., None] * d[rows, None, :])
        change = side != side[:, :1]
        found = np.nonzero(change.any(1))[0]
        j = np.argmax(change[found], 1)
        lo = ts[found, j - 1]
        hi = ts[found, j]
        start = side[found, 0]
        r = rows[found]
        for _ in range(bisections):
            mid = 0.5 * (lo + hi)
            same = inside(kind, P[r], o[r] + mid[:, None] * d[r]) == start
            lo = np.where(same, mid, lo)
            hi = np.where(same, hi, mid)
        t[r] = 0.5 * (lo + hi)
    return t, (t1 - t0) * np.sqrt(dd) / (samples - 1)


def random_params(kind, n, rng):
    P = rng.uniform(0.05, 1.0, (n, 3))
    if kind == TOR:
        P[:, 1] = P[:, 0] * rng.uniform(0.02, 0.98, n)
    return P


def random_rays(kind, P, rng, inside_share=0.25):
    """Rays from 1.05 to 100 bounding radii away aimed into the bounding sphere, and a share from
    points within it in random directions; direction lengths from 0.01 to 100."""
    n = len(P)
    radius = bounding_radius(kind, P[:, 0], P[:, 1], P[:, 2])

    def unit(v):
        return v / np.linalg.norm(v, axis=1)[:, None]

    o = unit(rng.normal(size=(n, 3))) * (radius * 10.0 ** rng.uniform(math.log10(1.05), 2.0, n))[:, None]
    target = unit(rng.normal(size=(n, 3))) * (1.1 * radius * rng.uniform(0.0, 1.0, n) ** (1 / 3))[:, None]
    d = target - o
    near = rng.uniform(size=n) < inside_share
    o[near] = (unit(rng.normal(size=(n, 3))) * (radius * rng.uniform(0.0, 1.0, n))[:, None])[near]
    d[near] = rng.normal(size=(n, 3))[near]
    return o, d * (10.0 ** rng.uniform(-2.0, 2.0, n))[:, None]


def cpu_hits(kind, P, o, d):
    t = np.empty(len(P))
    hit_many(np.full(len(P), kind, dtype=np.int64), np.ascontiguousarray(P), np.ascontiguousarray(np.hstack([o, d])), t)
    return t


def cpu_normals(kind, P, p):
    out = np.empty((len(P), 3))
    normal_many(np.full(len(P), kind, dtype=np.int64), np.ascontiguousarray(P), np.ascontiguousarray(p), out)
    return out
