"""Ray-ellipsoid intersection and projected bounding boxes against analytic cases."""

import math

import numba
import numpy as np
import pytest

from fakeballoons import CameraConfig, Scene, SceneConfig, SceneObject, render, single_object_scene
from fakeballoons.geometry import projected_bbox
from fakeballoons.render import cpu
from fakeballoons.render.pack import pack


def _obj(x=0.0, y=0.0, z=0.0, scale=1.0, elongation=0.5):
    return SceneObject(1, 0.0, elongation, 5.0, scale, x, y, z, 0.5, 0.2, 20.0)


_hit_ellipsoid = cpu.report.hit_ellipsoid


@numba.njit
def _hit_cpu(objs, o, dx, dy, dz):
    """The kernel's ray-ellipsoid test from the packed eye."""
    return _hit_ellipsoid(objs, o, dx, dy, dz)


def _hit(obj, direction, config=None):
    packed = pack([Scene(5.0, (obj,))], config or SceneConfig())
    return _hit_cpu(packed.objs, 0, *direction)


def test_head_on_sphere():
    # Eye (0, 0, 2), unit sphere at the origin: the ray -z hits at z = 1, t = 1.
    assert _hit(_obj(), (0.0, 0.0, -1.0)) == pytest.approx(1.0)
    # Unnormalised directions scale t inversely.
    assert _hit(_obj(), (0.0, 0.0, -4.0)) == pytest.approx(0.25)


def test_oblique_ray_hits_where_the_quadratic_says():
    d = np.array([0.3, -0.2, -1.0])
    t = _hit(_obj(scale=0.8), d)
    p = np.array([0, 0, 2.0]) + t * d
    assert np.linalg.norm(p) == pytest.approx(0.8)
    # the first of the two roots: the point faces the eye
    assert p[2] > 0


def test_ellipsoid_semi_axes():
    # elongation 0.8: semi-axes (s * 0.8 k, s * 0.2 k, s) with k = sqrt(2) / |(0.8, 0.2)|
    obj = _obj(elongation=0.8, scale=0.5)
    ax, ay, az = obj.semi_axes
    for direction in ([1, 0, 0], [0, 1, 0]):
        n = np.array(direction, dtype=float)
        extent = ax if direction[0] else ay
        # The silhouette seen from distance 2 has half-angle tangent extent / sqrt(4 - az^2)
        # along that axis: rays just inside hit, rays just outside miss.
        tan_edge = extent / math.sqrt(4.0 - az ** 2)
        assert _hit(obj, (*(n[:2] * tan_edge * 0.999), -1.0)) > 0
        assert _hit(obj, (*(n[:2] * tan_edge * 1.001), -1.0)) == -1.0


def test_miss_and_behind():
    assert _hit(_obj(x=1.0, scale=0.3), (0.0, 0.0, -1.0)) == -1.0
    assert _hit(_obj(z=5.0, scale=0.5), (0.0, 0.0, -1.0)) == -1.0  # behind the eye


def test_eye_inside_takes_the_far_root():
    obj = _obj(z=2.0, scale=0.5)
    assert _hit(obj, (0.0, 0.0, -1.0)) == pytest.approx(0.5)


def _silhouette_half_width(radius, distance):
    return radius / math.sqrt(distance ** 2 - radius ** 2)


def test_sphere_silhouette_area():
    config = SceneConfig(height=256, width=256)
    r = 0.5
    sample = render(Scene(5.0, (_obj(scale=r),)), config)
    rho = _silhouette_half_width(r, 2.0) * 128  # pixels (tan 45 = 1)
    covered = (sample.instance == 1).sum()
    assert covered == pytest.approx(math.pi * rho ** 2, rel=0.01)


def test_exact_edge_pixels_for_the_sample_pattern():
    """label 255 exactly where the four D3D sample positions straddle the analytic silhouette."""
    size = 128
    config = SceneConfig(height=size, width=size)
    r = 0.6
    sample = render(Scene(5.0, (_obj(scale=r),)), config)
    rho = _silhouette_half_width(r, 2.0)
    offsets = np.array([(-2, -6), (6, -2), (-6, 2), (2, 6)]) / 16
    py, px = np.mgrid[0:size, 0:size]
    inside = []
    for ox, oy in offsets:
        xn = 2 * (px + 0.5 + ox) / size - 1
        yn = 1 - 2 * (py + 0.5 + oy) / size
        inside.append(xn ** 2 + yn ** 2 < rho ** 2)
    inside = np.stack(inside)
    edge = inside.any(0) & ~inside.all(0)
    np.testing.assert_array_equal(sample.label == 255, edge)
    np.testing.assert_array_equal(sample.label == 1, inside.all(0))
    np.testing.assert_array_equal(sample.label == 0, ~inside.any(0))


@pytest.mark.parametrize("elongation, x, y, z", [(0.5, 0, 0, 0), (0.8, 0.9, -0.4, 0.3), (0.15, -1.4, 1.2, -0.6)])
def test_bbox_is_exact(elongation, x, y, z):
    config = SceneConfig(height=200, width=300)  # non-square: horizontal span scales with aspect
    obj = _obj(x=x, y=y, z=z, scale=0.45, elongation=elongation)
    box = projected_bbox(np.array([[x, y, z]]), np.array([obj.semi_axes]), config)[0]
    # brute force: dense rays over the screen
    ys, xs = np.mgrid[0:200:0.25, 0:300:0.25]
    xn = (2 * xs / 300 - 1) * 1.5
    yn = 1 - 2 * ys / 200
    d = np.stack([xn, yn, -np.ones_like(xn)], -1)
    axes = np.array(obj.semi_axes)
    o = (np.array([0, 0, 2.0]) - [x, y, z]) / axes
    e = d / axes
    a, b, c = (e * e).sum(-1), (o * e).sum(-1), o @ o - 1
    hit = b * b - a * c >= 0
    assert hit.any()
    margin = 0.5
    assert xs[hit].min() >= box[0] and xs[hit].max() <= box[2]
    assert ys[hit].min() >= box[1] and ys[hit].max() <= box[3]
    # tight: within the margin plus the brute-force grid step
    assert xs[hit].min() - box[0] < margin + 0.3 and box[2] - xs[hit].max() < margin + 0.3
    assert ys[hit].min() - box[1] < margin + 0.3 and box[3] - ys[hit].max() < margin + 0.3


def test_bbox_behind_and_straddling_the_camera():
    config = SceneConfig(height=64, width=64)
    boxes = projected_bbox(np.array([[0, 0, 5.0], [0, 0, 2.0]]), np.array([[0.5] * 3, [0.5] * 3]), config)
    assert boxes[0, 0] > boxes[0, 2]  # empty
    assert boxes[1, 0] < 0 and boxes[1, 2] > 64  # whole screen


def test_elongated_silhouette_aspect():
    config = SceneConfig(height=256, width=256)
    sample = render(single_object_scene(elongation=0.7, noise_scale=5, scale=0.6), config)
    ys, xs = np.nonzero(sample.instance == 1)
    width, height = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    assert width / height == pytest.approx(0.7 / 0.3, rel=0.03)


def test_other_camera():
    config = SceneConfig(height=96, width=96, camera=CameraConfig(eye=(2.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)))
    sample = render(Scene(3.0, (_obj(scale=0.5),)), config)
    ys, xs = np.nonzero(sample.instance == 1)
    assert abs(xs.mean() - 47.5) < 1 and abs(ys.mean() - 47.5) < 1
    rho = _silhouette_half_width(0.5, 2.0) * 48
    assert (sample.instance == 1).sum() == pytest.approx(math.pi * rho ** 2, rel=0.03)
