"""The shape module's host helpers (geometry.py): support functions and bounding radii against
dense samples of each surface, golden values, parameter validation, and the module's constants."""

import math

import numpy as np
import pytest

from fakeballoons.classes import SHAPES
from fakeballoons.geometry import bounding_radius, support, validate_params
from shape_reference import BOX, CAP, CONE, CYL, ELL, R2, TOR, sdf


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
    from fakeballoons import classes

    assert (classes.ELLIPSOID, classes.BOX, classes.CYLINDER, classes.CONE, classes.CAPSULE,
            classes.TORUS) == tuple(range(6))
