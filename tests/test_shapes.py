"""Ray intersection and normals of the six shape families (render/shapes.py).

Analytic cases with hand-computed answers, a brute-force reference for random rays (dense sampling
of an exact inside test along the ray, then bisection), exact signed distance functions for the
surface and normal checks, and the same device functions through numba's CUDA simulator (or a GPU
with FAKEBALLOONS_REAL_CUDA=1) and compiled to PTX by NVVM. The harness and the reference geometry
are in shape_reference.py; the host helpers' tests in test_shape_support.py.
"""

import json
import math
import os

import numpy as np
import pytest
from numba import cuda  # a module global: the simulator swaps this name inside kernels

import fakeballoons
from cuda_ptx import run_without_simulator
from fakeballoons.classes import SHAPES
from fakeballoons.geometry import bounding_radius
from fakeballoons.render.shapes import build_shapes
from shape_reference import (
    BOX,
    CAP,
    CONE,
    CYL,
    ELL,
    R2,
    TOR,
    brute_hit,
    cpu_hits,
    cpu_normals,
    hit,
    hit_many,
    inside,
    make_kernel,
    normal,
    normal_many,
    random_params,
    random_rays,
    sdf,
)

# ------------------------------------------------------------------ analytic cases

# (kind, params, origin, direction, expected t); directions of length 1 unless noted.
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
        f"sys.path.insert(0, {src!r})\n"
        "from numba import cuda\n"
        "from cuda_ptx import compiling_for\n"
        "import shape_reference as T\n"
        "with compiling_for((9, 0)):\n"
        "    kernel = T.make_kernel(T.build_shapes(cuda.jit(device=True)))\n"
        "    ptx = cuda.compile_ptx(kernel, T.KERNEL_SIGNATURE, cc=(9, 0))[0]\n"
        "print(json.dumps([re.findall(r'^[.]target (\\w+)', ptx, re.M),\n"
        "                  re.findall(r'^[.]visible [.]entry (\\w+)', ptx, re.M), T.__file__]))\n"
    )
    targets, entries, module = json.loads(run_without_simulator(code))
    assert targets == ["sm_90"]
    assert len(entries) == 1 and "kernel" in entries[0]
    assert os.path.samefile(module, os.path.join(here, "shape_reference.py"))
