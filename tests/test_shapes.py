"""Ray intersection and normals of the six shape families (render/shapes.py).

Analytic cases with hand-computed answers, a brute-force reference for random rays (dense sampling
of an exact inside test along the ray, then bisection), exact signed distance functions for the
surface and normal checks, the same device functions through numba's CUDA simulator (or a GPU with
FAKEBALLOONS_REAL_CUDA=1) and compiled to PTX by NVVM, and the host helpers.
"""

import json
import math
import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from numba import cuda  # a module global: the simulator swaps this name inside kernels

import fakeballoons
from fakeballoons.render import shapes as S
from fakeballoons.render.geometry import bounding_radius, support, validate_params
from fakeballoons.render.shapes import SHAPES, build_shapes

# Plain njit for the array harnesses: inlining hit into a caller with inline="always" (as the
# renderer's kernels do) costs ~10 s of compilation; INLINE checks that build on the scalar cases.
CPU = build_shapes(numba.njit)
INLINE = build_shapes(numba.njit(inline="always"))
_hit = CPU.hit
_normal = CPU.normal

ELL, BOX, CYL, CONE, CAP, TOR = range(6)


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


# ------------------------------------------------------------------ analytic cases

# (kind, params, origin, direction, expected t); directions of length 1 unless noted.
R2 = math.sqrt(2.0)
ANALYTIC = [
    # ellipsoid (1, 2, 3): the three axis ends
    (ELL, (1, 2, 3), (5, 0, 0), (-1, 0, 0), 4.0),
    (ELL, (1, 2, 3), (0, -7, 0), (0, 1, 0), 5.0),
    (ELL, (1, 2, 3), (0, 0, 10), (0, 0, -1), 7.0),
    (ELL, (1, 2, 3), (0, 0, 10), (0, 0, 1), -1.0),  # pointing away
    (ELL, (1, 2, 3), (0, 1.5, 5), (0, 0, -1), 5.0 - 3.0 * math.sqrt(1 - 0.75 ** 2)),
    # box (1, 2, 3): each face, an oblique hit at a known point
    (BOX, (1, 2, 3), (4, 0.5, -0.5), (-1, 0, 0), 3.0),
    (BOX, (1, 2, 3), (0.5, -6, 2.9), (0, 1, 0), 4.0),
    (BOX, (1, 2, 3), (-0.9, 1.9, 9), (0, 0, -1), 6.0),
    (BOX, (1, 2, 3), (3, 4, 0), (-1, -1, 0), 2.0),  # oblique, onto the edge (1, 2, z)
    (BOX, (1, 2, 3), (1.5, 0, 0), (0, 1, 0), -1.0),  # parallel to the x face, outside it
    # cylinder r=1, h=2: side, cap, along the axis
    (CYL, (1, 2, 0), (5, 0, 0), (-1, 0, 0), 4.0),
    (CYL, (1, 2, 0), (0.5, 7, 0.5), (0, -1, 0), 5.0),
    (CYL, (1, 2, 0), (0, -3, 0), (0, 1, 0), 1.0),
    (CYL, (1, 2, 0), (5, 2.5, 0), (-1, 0, 0), -1.0),  # above the cap, parallel to it
    (CYL, (1, 2, 0), (3, 3, 0), (-1, -1, 0), 2.0),  # oblique: the side at (1, 1, 0)
    # cone R=1, h=2 (base y=-2, apex y=2): apex, base, lateral at y=0 (radius 1/2)
    (CONE, (1, 2, 0), (0, 6, 0), (0, -1, 0), 4.0),
    (CONE, (1, 2, 0), (0, -6, 0), (0, 1, 0), 4.0),
    (CONE, (1, 2, 0), (0.9, -6, 0), (0, 1, 0), 4.0),
    (CONE, (1, 2, 0), (-5, 0, 0), (1, 0, 0), 4.5),
    (CONE, (1, 2, 0), (0, 0, -5), (0, 0, 1), 4.5),
    (CONE, (1, 2, 0), (5, -1, 0), (-1, 0, 0), 4.25),  # radius 3/4 at y=-1
    (CONE, (1, 2, 0), (0.6, 6, 0), (0, -1, 0), 6.4),  # lateral: radius (2 - y) / 4 = 0.6 at y = -0.4
    (CONE, (1, 2, 0), (0, 2.5, 0), (1, 0, 0), -1.0),  # above the apex
    # capsule r=1, h=2: hemisphere pole, side, hemisphere off-axis
    (CAP, (1, 2, 0), (0, 8, 0), (0, -1, 0), 5.0),
    (CAP, (1, 2, 0), (0, -8, 0), (0, 1, 0), 5.0),
    (CAP, (1, 2, 0), (5, 1.5, 0), (-1, 0, 0), 4.0),
    (CAP, (1, 2, 0), (5, 2.6, 0), (-1, 0, 0), 4.2),  # top sphere: x = sqrt(1 - 0.6^2) = 0.8
    (CAP, (1, 2, 0), (0.6, 8, 0), (0, -1, 0), 5.2),  # top sphere: y = 2 + 0.8
    (CAP, (1, 2, 0), (1.01, 8, 0), (0, -1, 0), -1.0),
    # torus R=2, r=0.5: in the xz plane both tube crossings, down the tube, the hole
    (TOR, (2, 0.5, 0), (10, 0, 0), (-1, 0, 0), 7.5),
    (TOR, (2, 0.5, 0), (0, 0, -10), (0, 0, 1), 7.5),
    (TOR, (2, 0.5, 0), (0, 0, 0), (1, 0, 0), 1.5),  # from the centre of the hole
    (TOR, (2, 0.5, 0), (2, 5, 0), (0, -1, 0), 4.5),
    (TOR, (2, 0.5, 0), (2.3, -5, 0), (0, 1, 0), 4.6),  # tube: y = -sqrt(0.25 - 0.3^2) = -0.4
    (TOR, (2, 0.5, 0), (0, 5, 0), (0, -1, 0), -1.0),  # down the axis, through the hole
    # the first of four roots: at y = 0.3 the tube spans rho in 2 +- 0.4; rho = 2.4 at z = 1
    (TOR, (2, 0.5, 0), (-10, 0.3, 1.0), (1, 0, 0), 10 - math.sqrt(2.4 ** 2 - 1)),
    (TOR, (2, 0.5, 0), (2.4, 0, 0), (0, 0, 1), 0.7),  # from inside the tube: out at rho = 2.5
]


@pytest.mark.parametrize("kind, params, origin, direction, expected", ANALYTIC,
                         ids=[f"{SHAPES[c[0]]}-{i}" for i, c in enumerate(ANALYTIC)])
def test_analytic_hits(kind, params, origin, direction, expected):
    t = hit(kind, params, origin, direction)
    assert t == pytest.approx(expected, rel=1e-12, abs=1e-12)
    if expected > 0:
        # an unnormalised direction: same point, t scaled by the inverse length
        for scale in (1e-3, 0.37, 250.0):
            ts = hit(kind, params, origin, np.multiply(direction, scale))
            assert ts * scale == pytest.approx(expected, rel=1e-12)
        p = np.add(origin, np.multiply(direction, t))
        assert abs(sdf(kind, np.array(params, float), p)) < 1e-12


def test_analytic_normals():
    cases = [
        (ELL, (1, 2, 3), (1, 0, 0), (1, 0, 0)),
        (ELL, (2, 2, 2), (0, -2, 0), (0, -1, 0)),
        (ELL, (1, 2, 1), (0, math.sqrt(2), 1 / R2), (0, 1 / R2 / 2, 1 / R2) / np.linalg.norm((0, 1 / R2 / 2, 1 / R2))),
        (BOX, (1, 2, 3), (1, 0.5, -2), (1, 0, 0)),
        (BOX, (1, 2, 3), (0.5, -2, 2.9), (0, -1, 0)),
        (BOX, (1, 2, 3), (0.9, 1.9, -3), (0, 0, -1)),
        (CYL, (1, 2, 0), (0.6, 2, 0.3), (0, 1, 0)),
        (CYL, (1, 2, 0), (0, -2, 0), (0, -1, 0)),
        (CYL, (1, 2, 0), (0.6, 1.5, -0.8), (0.6, 0, -0.8)),
        (CONE, (1, 2, 0), (0.3, -2, 0.2), (0, -1, 0)),
        (CONE, (1, 2, 0), (0.5, 0, 0), np.array((4, 1, 0)) / math.sqrt(17)),
        (CONE, (1, 2, 0), (0, 0, -0.5), np.array((0, 1, -4)) / math.sqrt(17)),
        (CONE, (1, 2, 0), (0, 2, 0), (0, 1, 0)),  # the apex
        (CAP, (1, 2, 0), (0, 3, 0), (0, 1, 0)),
        (CAP, (1, 2, 0), (0.6, -2.8, 0), (0.6, -0.8, 0)),
        (CAP, (1, 2, 0), (0, 0.5, 1), (0, 0, 1)),
        (TOR, (2, 0.5, 0), (2.5, 0, 0), (1, 0, 0)),
        (TOR, (2, 0.5, 0), (0, 0, -1.5), (0, 0, 1)),
        (TOR, (2, 0.5, 0), (0, 0.5, 2), (0, 1, 0)),
        (TOR, (2, 0.5, 0), (2.3, -0.4, 0), (0.6, -0.8, 0)),
    ]
    for kind, params, point, expected in cases:
        n = normal(kind, params, point)
        np.testing.assert_allclose(n, expected, atol=1e-14, err_msg=f"{SHAPES[kind]} at {point}")


@pytest.mark.parametrize("kind", range(6), ids=SHAPES)
def test_rays_from_inside_exit(kind):
    params = {ELL: (1, 2, 3), BOX: (1, 2, 3), CYL: (1, 2, 0), CONE: (1, 2, 0), CAP: (1, 2, 0), TOR: (2, 0.5, 0)}[kind]
    start = (2.0, 0.0, 0.0) if kind == TOR else (0.0, -0.5, 0.0)
    rng = np.random.default_rng(kind)
    for d in rng.normal(size=(50, 3)):
        t = hit(kind, params, start, d)
        assert t > 0.0
        p = np.array(start) + t * d
        assert abs(sdf(kind, np.array(params, float), p)) < 1e-12
        # the exit point, not a later one: every point before it is inside
        between = np.array(start) + np.linspace(0.0, t, 200)[:-1, None] * d
        assert inside(kind, np.array(params, float), between).all()


def test_grazing_rays_and_near_misses():
    eps = 1e-9
    tangent = [  # (kind, params, origin, direction): touching the surface at a point or along a line
        (ELL, (1, 1, 1), (-5, 1, 0), (1, 0, 0)),
        (ELL, (1, 2, 3), (-5, 0, 3), (1, 0, 0)),
        (CYL, (1, 2, 0), (-5, 0, 1), (1, 0, 0)),
        (CYL, (1, 2, 0), (1, -5, 0), (0, 1, 0)),  # along the side
        (CYL, (1, 2, 0), (-5, 2, 0), (1, 0, 0)),  # along the cap
        (BOX, (1, 2, 3), (-5, 2, 3), (1, 0, 0)),  # along an edge
        (CONE, (1, 2, 0), (-1, 6, 0), (0.25, -1, 0)),  # along the generator x = (2 - y) / 4
        (CONE, (1, 2, 0), (-5, 2, 0), (1, 0, 0)),  # through the apex
        (CAP, (1, 2, 0), (-5, 0, 1), (1, 0, 0)),
        (CAP, (1, 2, 0), (-5, 3, 0), (1, 0, 0)),  # the pole
        (TOR, (2, 0.5, 0), (-5, 0.5, 0), (1, 0, 0)),  # the top of the tube, twice
        (TOR, (2, 0.5, 0), (-5, 0, 2.5), (1, 0, 0)),  # the outer equator
        (TOR, (2, 0.5, 0), (-5, 0, 1.5), (1, 0, 0)),  # the inner equator, twice
        (TOR, (2, 0.5, 0), (2.5, -5, 0), (0, 1, 0)),  # along the outer equator's vertical tangent
        (TOR, (2, 0.5, 0), (-5, 0.5, 2), (1, 0, 0)),  # the top circle, once
    ]
    for kind, params, origin, direction in tangent:
        for scale in (1.0, 1e-3, 1e3):
            t = hit(kind, params, origin, np.multiply(direction, scale))
            assert math.isfinite(t) and (t > 0 or t == -1.0), (SHAPES[kind], origin, t)
            if t > 0:  # a touch reported as a hit is on the surface
                p = np.add(origin, t * np.multiply(direction, scale))
                assert abs(sdf(kind, np.array(params, float), p)) < 1e-9, (SHAPES[kind], origin, t)
    near_miss = [  # just outside the silhouette: always -1
        (ELL, (1, 1, 1), (-5, 1 + eps, 0), (1, 0, 0)),
        (ELL, (1, 2, 3), (-5, 0, 3 + eps), (1, 0, 0)),
        (BOX, (1, 2, 3), (-5, 2 + eps, 0), (1, 0, 0)),
        (CYL, (1, 2, 0), (-5, 0, 1 + eps), (1, 0, 0)),
        (CYL, (1, 2, 0), (1 + eps, -5, 0), (0, 1, 0)),
        (CYL, (1, 2, 0), (-5, 2 + eps, 0), (1, 0, 0)),
        (CONE, (1, 2, 0), (-5, 2 + eps, 0), (1, 0, 0)),
        (CONE, (1, 2, 0), (-5, -2 - eps, 0), (1, 0, 0)),
        (CAP, (1, 2, 0), (-5, 3 + eps, 0), (1, 0, 0)),
        (CAP, (1, 2, 0), (-5, 0, 1 + eps), (1, 0, 0)),
        (TOR, (2, 0.5, 0), (-5, 0.5 + eps, 0), (1, 0, 0)),
        (TOR, (2, 0.5, 0), (-5, 0, 2.5 + eps), (1, 0, 0)),
        (TOR, (2, 0.5, 0), (2.5 + eps, -5, 0), (0, 1, 0)),
        (TOR, (2, 0.5, 0), (1.5 - eps, -5, 0), (0, 1, 0)),
    ]
    for kind, params, origin, direction in near_miss:
        for scale in (1.0, 1e-3, 1e3):
            assert hit(kind, params, origin, np.multiply(direction, scale)) == -1.0, (SHAPES[kind], origin)


def test_torus_graze_before_a_crossing():
    """A ray (in the plane z = 0) tangent to the near tube, then through the far tube's centre.
    Tangent at T = (-2 + 0.5 sin a, 0.5 cos a) on the near tube circle (centre (-2, 0), r = 0.5),
    direction D = (cos a, -sin a); with sin a = 1/8 the line passes through (2, 0) at s = 4 cos a
    past T, and enters the far tube half a radius before. Moved by +-1e-9 along the normal it
    misses the near tube, or enters it near T: the first hit is always the right one."""
    a = math.asin(0.125)
    tangent_point = np.array([-2.0 + 0.5 * math.sin(a), 0.5 * math.cos(a), 0.0])
    d = np.array([math.cos(a), -math.sin(a), 0.0])
    nrm = np.array([math.sin(a), math.cos(a), 0.0])
    params = (2.0, 0.5, 0.0)
    o = tangent_point - 5.0 * d
    far = 5.0 + 4.0 * math.cos(a) - 0.5
    assert hit(TOR, params, o + 1e-9 * nrm, d) == pytest.approx(far, rel=1e-8)
    t_in = hit(TOR, params, o - 1e-9 * nrm, d)
    assert 5.0 - 1e-4 < t_in < 5.0  # enters near T, chord 2 sqrt(2 r 1e-9) ~ 6e-5
    assert hit(TOR, params, o - 1e-9 * nrm, 3.0 * d) == pytest.approx(t_in / 3.0, rel=1e-9)
    t0 = hit(TOR, params, o, d)
    assert t0 == pytest.approx(5.0, abs=1e-6) or t0 == pytest.approx(far, rel=1e-8)
    # and the same ray from 100 sizes away
    assert hit(TOR, params, o + 1e-9 * nrm - 250.0 * d, d) == pytest.approx(far + 250.0, rel=1e-9)


def test_degenerate_directions():
    assert hit(BOX, (1, 1, 1), (0, 0, 5), (0, 0, 0)) == -1.0
    # axis-parallel rays exercise the exactly-linear branches (no division by zero on the CPU)
    assert hit(CYL, (1, 2, 0), (0.5, 5, 0), (0, -1, 0)) == pytest.approx(3.0)
    # parallel to a generator (the cone's quadratic term is 0 here): the line x = -y / 4 meets
    # the other generator, x = -(2 - y) / 4, at y = 1
    assert hit(CONE, (1, 2, 0), (-1.25, 5, 0), (0.25, -1, 0)) == pytest.approx(4.0, rel=1e-14)
    assert hit(CONE, (1, 2, 0), (0.25, -3, 0), (-0.25, 1, 0)) == pytest.approx(1.0, rel=1e-14)  # base first


def test_far_camera_and_small_objects():
    """Scaling the whole scene (object sizes 0.05 and 0.001) leaves t unchanged, and moving the
    origin back along the ray to 100 bounding radii leaves the hit point unchanged."""
    rng = np.random.default_rng(7)
    for kind in range(6):
        P = random_params(kind, 300, rng)
        o, d = random_rays(kind, P, rng, inside_share=0.0)
        size = bounding_radius(kind, P[:, 0], P[:, 1], P[:, 2])
        o = o / np.linalg.norm(o, axis=1)[:, None] * 2.0 * size[:, None]  # near: 2 radii away
        t = cpu_hits(kind, P, o, d)
        got = t > 0
        assert got.mean() > 0.3
        for s in (0.05, 1e-3):
            ts = cpu_hits(kind, P * s, o * s, d)
            np.testing.assert_array_equal(ts > 0, got)
            np.testing.assert_allclose(ts[got] / s, t[got], rtol=1e-12)
        back = 98.0 * size / np.linalg.norm(d, axis=1)  # |far| ~ 100 radii
        far = o - back[:, None] * d
        tf = cpu_hits(kind, P, far, d)
        np.testing.assert_array_equal(tf > 0, got)
        err = np.linalg.norm((far + tf[:, None] * d) - (o + t[:, None] * d), axis=1)[got] / size[got]
        assert err.max() < 1e-12, (SHAPES[kind], err.max())


# ------------------------------------------------------------------ random rays vs brute force

N_RANDOM = 10_000 // 6 + 1  # per family: 10,000 rays in all


@pytest.mark.parametrize("kind", range(6), ids=SHAPES)
def test_random_rays_against_brute_force(kind):
    rng = np.random.default_rng(100 + kind)
    P = random_params(kind, N_RANDOM, rng)
    o, d = random_rays(kind, P, rng)
    hits = check_against_brute_force(kind, P, o, d)
    assert hits > 0.4 * N_RANDOM


def check_against_brute_force(kind, P, o, d, samples=2000):
    """t within 1e-9 (relative) of the brute-force reference, hit points on the surface, normals
    along the SDF gradient; returns the number of hits."""
    t = cpu_hits(kind, P, o, d)
    assert np.isfinite(t).all() and ((t > 0) | (t == -1.0)).all()
    ref, step = brute_hit(kind, P, o, d, samples)
    both = (t > 0) & (ref > 0)
    rel = np.abs(t - ref)[both] / ref[both]
    assert rel.max() < 1e-9, (SHAPES[kind], rel.max())
    size = bounding_radius(kind, P[:, 0], P[:, 1], P[:, 2])

    # Disagreements on hit/miss: only grazes the sampling can step over. Where the kernel reports a
    # hit the reference missed, the ray must go no deeper than one sample step into the solid.
    only_kernel = np.nonzero((t > 0) & (ref < 0))[0]
    assert len(only_kernel) <= len(P) // 500
    for i in only_kernel:
        ts = t[i] + np.linspace(-2.0, 2.0, 4001) * step[i] / np.linalg.norm(d[i])
        depth = -sdf(kind, np.broadcast_to(P[i], (len(ts), 3)), o[i] + ts[:, None] * d[i]).min()
        assert depth < step[i], (SHAPES[kind], i, depth, step[i])
    assert not ((t < 0) & (ref > 0)).any()

    # Hit points lie on the surface.
    got = t > 0
    p = o[got] + t[got, None] * d[got]
    on = np.abs(sdf(kind, P[got], p)) / size[got]
    assert on.max() < 1e-12

    # Normals: unit, outward, along the SDF's finite-difference gradient away from edges and rims.
    n = cpu_normals(kind, P[got], p)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-14)
    h = 1e-7 * size[got]
    grad = np.stack([(sdf(kind, P[got], p + h[:, None] * e) - sdf(kind, P[got], p - h[:, None] * e)) / (2 * h)
                     for e in np.eye(3)], -1)
    grad /= np.linalg.norm(grad, axis=1)[:, None]
    smooth = _away_from_edges(kind, P[got], p, 1e-5 * size[got])
    assert smooth.mean() > 0.9
    err = np.linalg.norm(n - grad, axis=1)[smooth]
    assert err.max() < 1e-6, (SHAPES[kind], err.max())
    return got.sum()


@pytest.mark.parametrize("tube", [(0.001, 0.05), (0.9, 0.999)], ids=["thin", "fat"])
@pytest.mark.parametrize("rays", ["horizontal", "vertical"])
def test_torus_hard_rays_against_brute_force(tube, rays):
    """The quartic's awkward cases: rays in a horizontal plane (after centring, the depressed
    quartic's odd term and the resolvent root vanish together), rays nearly along the axis
    (the resolvent's roots nearly coincide), tubes 0.001 and 0.999 of the ring radius."""
    rng = np.random.default_rng(len(rays) + int(10 * tube[0]))
    n = 300
    big_r = rng.uniform(0.05, 1.0, n)
    small_r = big_r * rng.uniform(*tube, n)
    P = np.stack([big_r, small_r, np.zeros(n)], 1)
    size = big_r + small_r
    far = size * 10.0 ** rng.uniform(0.02, 2.0, n)
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    if rays == "horizontal":
        y = rng.uniform(-1.0, 1.0, n) * small_r
        o = np.stack([far * np.cos(angle), y, far * np.sin(angle)], 1)
        target = np.stack([rng.uniform(-1.0, 1.0, n) * size, y, rng.uniform(-1.0, 1.0, n) * size], 1)
        d = target - o
    else:
        rho = big_r + rng.uniform(-1.2, 1.2, n) * small_r
        o = np.stack([rho * np.cos(angle), far, rho * np.sin(angle)], 1)
        tilt = rng.normal(size=(n, 2)) * (1e-3 * small_r / size)[:, None]
        d = np.stack([tilt[:, 0], -np.ones(n), tilt[:, 1]], 1)
    d *= (10.0 ** rng.uniform(-2.0, 2.0, n))[:, None]
    assert check_against_brute_force(TOR, P, o, d, samples=8000) > 0.5 * n


def _away_from_edges(kind, P, p, margin):
    """Surface points farther than ``margin`` from every crease (box edges, rims, the apex)."""
    if kind in (ELL, CAP, TOR):
        return np.ones(len(p), bool)
    if kind == BOX:
        gap = np.sort(np.abs(p) - P, axis=1)  # the face has gap ~0; the next must be well inside
        return gap[:, 1] < -margin
    rho = np.hypot(p[:, 0], p[:, 2])
    if kind == CYL:
        return np.maximum(P[:, 0] - rho, P[:, 1] - np.abs(p[:, 1])) > margin  # the other face well inside
    base = p[:, 1] + P[:, 1]
    lateral = (P[:, 0] * (P[:, 1] - p[:, 1]) - 2 * P[:, 1] * rho) / np.hypot(P[:, 0], 2 * P[:, 1])
    apex = np.hypot(rho, p[:, 1] - P[:, 1])
    return (np.maximum(base, lateral) > margin) & (apex > margin)


# ------------------------------------------------------------------ CUDA: simulator (or GPU) and NVVM

def test_cuda_build_matches_cpu():
    """The same source through cuda.jit(device=True): numba's simulator here, a GPU with
    FAKEBALLOONS_REAL_CUDA=1. Few rays: the simulator runs each thread in Python."""
    kernel = cuda.jit(make_kernel(build_shapes(cuda.jit(device=True))))
    rng = np.random.default_rng(11)
    kinds, params, rays = [], [], []
    for kind in range(6):
        P = random_params(kind, 50, rng)
        o, d = random_rays(kind, P, rng)
        kinds.append(np.full(50, kind))
        params.append(P)
        rays.append(np.hstack([o, d]))
    kinds = np.concatenate(kinds).astype(np.int64)
    params = np.ascontiguousarray(np.concatenate(params))
    rays = np.ascontiguousarray(np.concatenate(rays))
    n = len(kinds)
    t_dev = cuda.device_array(n, dtype=np.float64)
    n_dev = cuda.device_array((n, 3), dtype=np.float64)
    kernel[-(-n // 64), 64](cuda.to_device(kinds), cuda.to_device(params), cuda.to_device(rays), t_dev, n_dev)
    t_gpu = t_dev.copy_to_host()
    n_gpu = n_dev.copy_to_host()

    t_cpu = np.empty(n)
    hit_many(kinds, params, rays, t_cpu)
    np.testing.assert_array_equal(t_gpu > 0, t_cpu > 0)
    assert (t_cpu > 0).sum() > 100
    got = t_cpu > 0
    # Not bit-identical in general: the CPU build may contract a * b + c into FMAs differently, and
    # the simulator calls Python's math library.
    np.testing.assert_allclose(t_gpu[got], t_cpu[got], rtol=1e-12)
    n_cpu = np.empty((n, 3))
    normal_many(kinds, params, rays[:, :3] + t_cpu[:, None] * rays[:, 3:], n_cpu)
    np.testing.assert_allclose(n_gpu[got], n_cpu[got], atol=1e-9)


@pytest.mark.slow
def test_cuda_kernel_compiles_to_ptx_with_nvvm():
    """numba-cuda's real compiler (NVVM, no simulator) accepts hit and normal for an H100 (sm_90).
    Needs no GPU; runs in a subprocess because this process may run the simulator."""
    here = os.path.dirname(os.path.abspath(__file__))
    src = os.path.dirname(os.path.dirname(os.path.abspath(fakeballoons.__file__)))
    code = (
        "import json, re, sys\n"
        f"sys.path[:0] = [{src!r}, {here!r}]\n"
        "from types import SimpleNamespace\n"
        "from unittest import mock\n"
        "from numba import cuda\n"
        "from numba.cuda import dispatcher\n"
        "import test_shapes as T\n"
        "device = SimpleNamespace(compute_capability=(9, 0))\n"
        "with mock.patch.object(dispatcher, 'get_current_device', lambda: device):\n"
        "    kernel = T.make_kernel(T.build_shapes(cuda.jit(device=True)))\n"
        "    ptx = cuda.compile_ptx(kernel, T.KERNEL_SIGNATURE, cc=(9, 0))[0]\n"
        "print(json.dumps([re.findall(r'^[.]target (\\w+)', ptx, re.M),\n"
        "                  re.findall(r'^[.]visible [.]entry (\\w+)', ptx, re.M), T.__file__]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    targets, entries, module = json.loads(done.stdout.strip().splitlines()[-1])
    assert targets == ["sm_90"]
    assert len(entries) == 1 and "kernel" in entries[0]
    assert os.path.samefile(module, __file__)


# ------------------------------------------------------------------ host helpers

def surface_samples(kind, p0, p1, p2, n=91):
    """Dense points on the surface, including every extremal point (axis ends, corners, rims,
    poles, the outer equator): angle grids hold multiples of pi / 4."""
    u = np.linspace(0.0, 2.0 * np.pi, 4 * (n - 1) + 1)  # azimuth
    v = np.linspace(0.0, np.pi, 2 * (n - 1) + 1)  # polar
    U, V = np.meshgrid(u, v)
    s = np.linspace(-1.0, 1.0, n)
    if kind == ELL:
        pts = [p0 * np.sin(V) * np.cos(U), p1 * np.cos(V), p2 * np.sin(V) * np.sin(U)]
    elif kind == BOX:
        A, B = np.meshgrid(s, s)
        faces = []
        for axis in range(3):
            for sign in (-1.0, 1.0):
                f = [None, None, None]
                others = [i for i in range(3) if i != axis]
                f[axis] = np.full_like(A, sign)
                f[others[0]], f[others[1]] = A, B
                faces.append(np.stack(f, -1).reshape(-1, 3) * (p0, p1, p2))
        return np.concatenate(faces)
    elif kind in (CYL, CONE):
        Uc, Y = np.meshgrid(u, s * p1)
        rad = p0 if kind == CYL else p0 * (p1 - Y) / (2 * p1)
        side = np.stack([rad * np.cos(Uc), Y, rad * np.sin(Uc)], -1).reshape(-1, 3)
        Uc, Rr = np.meshgrid(u, (s + 1) / 2 * p0)
        caps = [np.stack([Rr * np.cos(Uc), np.full_like(Rr, y), Rr * np.sin(Uc)], -1).reshape(-1, 3)
                for y in ((-p1, p1) if kind == CYL else (-p1,))]
        return np.concatenate([side] + caps)
    elif kind == CAP:
        Uc, Y = np.meshgrid(u, s * p1)
        side = np.stack([p0 * np.cos(Uc), Y, p0 * np.sin(Uc)], -1).reshape(-1, 3)
        Uh, Vh = np.meshgrid(u, v[: n])  # polar angles 0..pi/2: a hemisphere
        caps = [np.stack([p0 * np.sin(Vh) * np.cos(Uh), sgn * (p1 + p0 * np.cos(Vh)), p0 * np.sin(Vh) * np.sin(Uh)],
                         -1).reshape(-1, 3) for sgn in (-1.0, 1.0)]
        return np.concatenate([side] + caps)
    else:
        W = 2 * V  # tube angle over the full circle
        pts = [(p0 + p1 * np.cos(W)) * np.cos(U), p1 * np.sin(W), (p0 + p1 * np.cos(W)) * np.sin(U)]
    return np.stack(pts, -1).reshape(-1, 3)


FAMILY_PARAMS = [(ELL, (0.3, 0.9, 0.5)), (BOX, (0.3, 0.9, 0.5)), (CYL, (0.3, 0.9, 0)), (CONE, (0.3, 0.9, 0)),
                 (CONE, (0.9, 0.1, 0)), (CAP, (0.3, 0.9, 0)), (TOR, (0.7, 0.2, 0))]


@pytest.mark.parametrize("kind, params", FAMILY_PARAMS, ids=[SHAPES[k] for k, _ in FAMILY_PARAMS])
def test_support_and_bounding_radius_against_surface_samples(kind, params):
    pts = surface_samples(kind, *params)
    assert np.abs(sdf(kind, np.array(params, float), pts)).max() < 1e-12  # the samples are on the surface
    r = bounding_radius(kind, *params)
    norms = np.linalg.norm(pts, axis=1)
    assert r >= norms.max() - 1e-15 * r
    assert r - norms.max() < 1e-9 * r
    rng = np.random.default_rng(kind)
    u = rng.normal(size=(300, 3))
    u = np.concatenate([u / np.linalg.norm(u, axis=1)[:, None], np.eye(3), -np.eye(3)])
    h = support(kind, *params, u[:, 0], u[:, 1], u[:, 2])
    brute = (pts @ u.T).max(0)
    assert (h >= brute - 1e-12).all()  # an upper bound of every surface point ...
    assert (h - brute).max() < 2e-4 * r  # ... and attained, to the sampling's resolution
    np.testing.assert_allclose(h[-6:], brute[-6:], rtol=1e-12, atol=1e-15)  # axis directions: sampled exactly


def test_support_golden_values():
    assert support(CONE, 1.0, 2.0, 0.0, 0.0, 1.0, 0.0) == pytest.approx(2.0)  # apex
    assert support(CONE, 1.0, 2.0, 0.0, 0.0, -1.0, 0.0) == pytest.approx(2.0)  # base
    assert support(CONE, 1.0, 2.0, 0.0, 1.0, 0.0, 0.0) == pytest.approx(1.0)  # rim
    # along (1, -1)/sqrt 2 the rim point (1, -2) wins: (1 + 2) / sqrt 2
    assert support(CONE, 1.0, 2.0, 0.0, 1 / R2, -1 / R2, 0.0) == pytest.approx(3 / R2)
    assert support(TOR, 2.0, 0.5, 0.0, 0.0, 1.0, 0.0) == pytest.approx(0.5)
    assert support(TOR, 2.0, 0.5, 0.0, 0.6, 0.8, 0.0) == pytest.approx(2.0 * 0.6 + 0.5)
    assert support(CAP, 1.0, 2.0, 0.0, 0.0, -1.0, 0.0) == pytest.approx(3.0)
    assert support(BOX, 1.0, 2.0, 3.0, 0.6, -0.8, 0.0) == pytest.approx(0.6 + 1.6)
    assert support(ELL, 1.0, 2.0, 3.0, 0.0, 0.0, -1.0) == pytest.approx(3.0)
    assert support(CYL, 1.0, 2.0, 0.0, 0.6, 0.8, 0.0) == pytest.approx(0.6 + 1.6)
    # vectorised over kinds and directions, broadcasting
    h = support(np.arange(6), 1.0, 0.5, 0.25, 0.0, -1.0, 0.0)
    np.testing.assert_allclose(h, [0.5, 0.5, 0.5, 0.5, 1.5, 0.5])
    np.testing.assert_allclose(bounding_radius(np.arange(6), 1.0, 0.5, 0.25),
                               [1.0, math.sqrt(1.3125), math.sqrt(1.25), math.sqrt(1.25), 1.5, 1.5])
    assert isinstance(bounding_radius(TOR, 2.0, 0.5, 0.0), float)


def test_validate_params():
    for kind, params in FAMILY_PARAMS:
        validate_params(kind, *params)
    validate_params(np.arange(6), [1, 1, 1, 1, 1, 1], 0.5, [1, 1, np.nan, -1, 0, 0])  # unused p2 ignored
    bad = [
        (ELL, (1, 0, 1), "ellipsoid semi-axis p1"),
        (BOX, (1, 1, -2), "box half-extent p2"),
        (CYL, (0, 1, 0), "cylinder radius p0"),
        (CYL, (1, np.inf, 0), "cylinder half-height p1"),
        (CONE, (1, np.nan, 0), "cone half-height p1"),
        (CAP, (1, -0.1, 0), "capsule half-length p1"),
        (CAP, (1, 0, 0), "capsule half-length p1"),
        (CAP, (0, 1, 0), "capsule radius p0"),
        (TOR, (1, 1, 0), "torus minor radius p1 must be smaller"),
        (TOR, (1, 2, 0), "torus minor radius p1 must be smaller"),
        (TOR, (1, 0, 0), "torus minor radius p1 must be finite"),
    ]
    for kind, params, message in bad:
        with pytest.raises(ValueError, match=message):
            validate_params(kind, *params)
    with pytest.raises(ValueError, match="torus"):
        validate_params(np.array([0, 5]), 1.0, [0.5, 1.5], 1.0)
    for kind in (6, -1, 1.0, "box"):
        with pytest.raises(ValueError, match="shape kind"):
            validate_params(kind, 1, 1, 1)
    with pytest.raises(ValueError, match="shape kind"):
        bounding_radius(7, 1, 1, 1)


def test_module_constants():
    assert SHAPES == ("ellipsoid", "box", "cylinder", "cone", "capsule", "torus")
    assert (S.ELLIPSOID, S.BOX, S.CYLINDER, S.CONE, S.CAPSULE, S.TORUS) == tuple(range(6))
