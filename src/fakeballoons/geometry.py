"""Host-side geometry of scene objects (NumPy, and numba where it is hot): shape parameters,
rotations, support functions and bounding spheres, and exact screen bounding boxes.

It sits below the scene model and the renderer, which both use it: scene sampling to rest objects on
the ground, the packer (:mod:`fakeballoons.render.pack`) to fill the kernels' object rows. The
device-side ray intersections are in :mod:`fakeballoons.render.shapes`.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np

from .classes import BOX, CAPSULE, CONE, CYLINDER, ELLIPSOID, SHAPES, TORUS
from .config import SceneConfig

_BBOX_MARGIN = 0.5  # pixels added around each exact bounding box against rounding


def camera_basis(config: SceneConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Eye and the unit right, up and forward vectors of the configured camera (read-only arrays)."""
    cam = config.camera
    return _camera_basis(*(tuple(float(x) for x in v) for v in (cam.eye, cam.target, cam.up)))


@functools.lru_cache(maxsize=64)
def _camera_basis(eye, target, up_hint) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # Cached: packing asks for it several times per batch, and np.cross costs tens of microseconds.
    eye = np.asarray(eye, dtype=np.float64)
    fwd = np.asarray(target, dtype=np.float64) - eye
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, np.asarray(up_hint, dtype=np.float64))
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    for v in (eye, right, up, fwd):
        v.flags.writeable = False
    return eye, right, up, fwd


# The parameters each family reads, by name.
_NAMES = (("semi-axis p0", "semi-axis p1", "semi-axis p2"), ("half-extent p0", "half-extent p1", "half-extent p2"),
          ("radius p0", "half-height p1"), ("base radius p0", "half-height p1"),
          ("radius p0", "half-length p1"), ("major radius p0", "minor radius p1"))


def _kinds(kind) -> np.ndarray:
    k = np.asarray(kind)
    if k.dtype.kind not in "iu" or np.any((k < 0) | (k >= len(SHAPES))):
        raise ValueError(f"shape kind must be an integer in 0..{len(SHAPES) - 1} ({', '.join(SHAPES)}), got {kind!r}")
    return k


def _select(kind, values):
    """values[kind] elementwise; a float for scalar arguments."""
    k = _kinds(kind)
    out = np.select([k == i for i in range(len(SHAPES))], np.broadcast_arrays(*values, k)[:-1])
    return out[()] if out.ndim == 0 else out


def bounding_radius(kind, p0, p1, p2):
    """Radius of the smallest origin-centred sphere holding the shape.

    Args:
        kind: shape id(s), 0..5; every argument broadcasts against the others.
        p0, p1, p2: the family's parameters (see the module docstring).

    Returns:
        float64 array of the broadcast shape, a NumPy scalar for scalar arguments.
    """
    p0, p1, p2 = (np.asarray(p, dtype=np.float64) for p in (p0, p1, p2))
    return _select(kind, (
        np.maximum(np.maximum(p0, p1), p2),  # the longest semi-axis
        np.sqrt(p0 * p0 + p1 * p1 + p2 * p2),  # a corner
        np.hypot(p0, p1),  # the rim
        np.hypot(p0, p1),  # the base rim (never nearer than the apex, at distance p1)
        p1 + p0,  # the poles
        p0 + p1,  # the outer equator
    ))


@numba.njit(cache=True)
def support_one(kind, p0, p1, p2, ux, uy, uz):
    """:func:`support` of one shape along one direction (for compiled host code such as the packer's
    bounding boxes)."""
    uxz = math.hypot(ux, uz)  # = sqrt(1 - uy^2) for unit u, without its cancellation near the poles
    un = math.sqrt(ux * ux + uy * uy + uz * uz)
    if kind == ELLIPSOID:
        return math.sqrt((p0 * ux) ** 2 + (p1 * uy) ** 2 + (p2 * uz) ** 2)
    if kind == BOX:
        return p0 * abs(ux) + p1 * abs(uy) + p2 * abs(uz)
    if kind == CYLINDER:
        return p0 * uxz + p1 * abs(uy)
    if kind == CONE:
        return max(p1 * uy, p0 * uxz - p1 * uy)  # the apex, or the base rim point along u
    if kind == CAPSULE:
        return p1 * abs(uy) + p0 * un
    return p0 * uxz + p1 * un  # torus


@numba.njit(cache=True)
def _support_all(kind, p0, p1, p2, ux, uy, uz, out):
    for i in range(out.shape[0]):
        out[i] = support_one(kind[i], p0[i], p1[i], p2[i], ux[i], uy[i], uz[i])


def support(kind, p0, p1, p2, ux, uy, uz):
    """Support function max over points x of the shape of x.u, exact for every family.

    For unit u, how far the shape reaches along u (to rest a rotated object on the ground). Every
    formula is positively homogeneous in u, so u need not be unit.

    Args:
        kind: shape id(s), 0..5; every argument broadcasts against the others.
        p0, p1, p2: the family's parameters.
        ux, uy, uz: direction(s) in object space.

    Returns:
        float64 array of the broadcast shape, a NumPy scalar for scalar arguments.
    """
    k = _kinds(kind)
    args = np.broadcast_arrays(k, *(np.asarray(v, dtype=np.float64) for v in (p0, p1, p2, ux, uy, uz)))
    flat = [np.ascontiguousarray(a.ravel()) for a in args]
    out = np.empty(flat[0].shape[0])
    _support_all(flat[0].astype(np.int64), *flat[1:], out)
    out = out.reshape(args[0].shape)
    return out[()] if out.ndim == 0 else out


def validate_params(kind, p0, p1, p2) -> None:
    """Raise ValueError unless (p0, p1, p2) describe a real shape of family ``kind``.

    Vectorised like ``bounding_radius``. The sizes a family uses must be finite and > 0, and a
    torus needs p1 < p0 (a thicker tube closes the hole and the surface self-intersects).
    Parameters a family does not use are ignored.
    """
    k, p0, p1, p2 = np.broadcast_arrays(_kinds(kind), *(np.asarray(p, dtype=np.float64) for p in (p0, p1, p2)))
    for fam, name in enumerate(SHAPES):
        sel = k == fam
        if not sel.any():
            continue
        for label, p in zip(_NAMES[fam], (p0, p1, p2)):
            v = p[sel]
            bad = ~(np.isfinite(v) & (v > 0.0))
            if bad.any():
                raise ValueError(f"{name} {label} must be finite and > 0, got {v[bad][0]!r}")
        if fam == TORUS:
            bad = p1[sel] >= p0[sel]
            if bad.any():
                raise ValueError(f"torus minor radius p1 must be smaller than major radius p0, got "
                                 f"p0={p0[sel][bad][0]!r}, p1={p1[sel][bad][0]!r}")


# ------------------------------------------------------------------ the scene model's shapes (NumPy)


def object_params(kind, scale, elongation, thickness) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shape parameters (p0, p1, p2) of scene objects from their scale s, elongation rho and thickness.

    Every family fills the box of the report's ellipsoid, half-sizes w = s rho k (x), h = s (1 - rho) k
    (y) and d = s (z) with k = sqrt(2) / |(rho, 1 - rho)|, so elongation means "wider than tall" for
    all of them: the ellipsoid and the box have half-sizes (w, h, d); cylinder and cone radius
    (w + d) / 2 and half-height h; the capsule half-height h with radius thickness * min(h, (w + d) / 2);
    the torus outer radius (w + d) / 2 with tube radius thickness times its major radius.
    """
    kind = np.asarray(kind)
    scale, rho, tau = (np.asarray(v, dtype=np.float64) for v in (scale, elongation, thickness))
    k = math.sqrt(2.0) / np.array([math.hypot(r, 1.0 - r) for r in np.ravel(rho).tolist()]).reshape(rho.shape)
    w, h, d = scale * rho * k, scale * (1.0 - rho) * k, scale
    w, h = np.maximum(w, 1e-6 * scale), np.maximum(h, 1e-6 * scale)  # rho = 0 or 1: a flat disk, not nothing
    radius = 0.5 * (w + d)
    cap_r = tau * np.minimum(h, radius)
    ring = radius / (1.0 + tau)
    p0 = _select(kind, (w, w, radius, radius, cap_r, ring))
    p1 = _select(kind, (h, h, h, h, np.maximum(h - cap_r, 1e-6 * scale), tau * ring))
    p2 = _select(kind, (d, d, d, d, d, d))
    return p0, p1, p2


def quaternion_matrices(q) -> np.ndarray:
    """(n, 3, 3) rotation matrices (object -> world) of unit quaternions q (n, 4) = (w, x, y, z)."""
    q = np.asarray(q, dtype=np.float64).reshape(-1, 4)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], 1)


# ------------------------------------------------------------------ screen bounding boxes


def projected_bbox(centre: np.ndarray, axes: np.ndarray, config: SceneConfig,
                   rotation: np.ndarray | None = None) -> np.ndarray:
    """Screen bounding boxes (x0, y0, x1, y1) in continuous pixel coordinates, one row per ellipsoid
    (rotated by ``rotation``, (n, 3, 3) object -> world, if given).

    In camera coordinates (x right, y up, z forward) the ellipsoid {X : (X - c)^T M (X - c) <= 1}
    is touched by the plane through the eye with normal n where n^T M^-1 n = (n . c)^2. For
    n = (1, 0, -s) the plane holds the points with x / z = s, which gives a quadratic in s whose
    two roots bound x / z; likewise for y. An ellipsoid that reaches behind the eye's plane gets
    the whole screen; one entirely behind gets an empty box.
    """
    eye, right, up, fwd = camera_basis(config)
    rot = np.stack([right, up, fwd])  # world -> camera
    c = (centre - eye) @ rot.T  # (n, 3)
    # M^-1 in camera coordinates: rot diag(axes^2) rot^T, or rot R diag(axes^2) R^T rot^T.
    if rotation is None:
        p = np.einsum("ai,ni,bi->nab", rot, axes ** 2, rot)
    else:
        to_camera = np.einsum("ai,nij->naj", rot, rotation)
        p = np.einsum("naj,nj,nbj->nab", to_camera, axes ** 2, to_camera)
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


def projected_bbox_support(centre: np.ndarray, shape: np.ndarray, params: list[np.ndarray], rotation: np.ndarray,
                           radius: np.ndarray, config: SceneConfig, tolerance: float = 0.01) -> np.ndarray:
    """Screen bounding boxes of rotated shapes of any family, exact up to bisection, like
    :func:`projected_bbox`.

    In camera coordinates the plane through the eye with normal (1, 0, -s) holds the points with
    x / z = s; it touches the shape where g(s) = h(1, 0, -s) + c_x - s c_z = 0, h the shape's
    support function (exact for every family, render/shapes.py). For a shape in front of the eye g
    decreases in s, so its root, the largest x / z, is found by bisection between the centre's
    ratio and a bound from the bounding sphere, to ``tolerance`` pixels, keeping the outer end (so
    the box never cuts the shape); likewise the smallest, and for y. Shapes that reach behind the
    eye's plane get the whole screen; those entirely behind, an empty box.
    """
    eye, right, up, fwd = camera_basis(config)
    rot = np.stack([right, up, fwd])  # world -> camera
    c = (centre - eye) @ rot.T
    to_object = np.einsum("nji,aj->nia", rotation, rot)  # R^T rot^T: camera directions into object space

    def h(direction):  # support of each shape along camera-space directions (n, 3)
        u = np.einsum("nia,na->ni", to_object, direction)
        return support(shape, *params, u[:, 0], u[:, 1], u[:, 2])

    w, ht = config.width, config.height
    tan_half = math.tan(math.radians(config.camera.fov_y) / 2.0)
    scale = (tan_half * w / ht, tan_half)
    out = np.empty((len(c), 4))
    out[:] = (-_BBOX_MARGIN, -_BBOX_MARGIN, w + _BBOX_MARGIN, ht + _BBOX_MARGIN)  # whole screen
    e_z = np.tile([0.0, 0.0, 1.0], (len(c), 1))
    near = c[:, 2] - h(-e_z)  # the smallest depth of each shape
    out[c[:, 2] + h(e_z) <= 0] = (1.0, 1.0, -1.0, -1.0)  # entirely behind the eye
    front = near > 1e-9 * np.maximum(radius, 1e-300)
    if not front.any():
        return out
    cf, ratio = c[front], c[front, :2] / c[front, 2:3]
    reach = (np.abs(cf[:, :2]) + radius[front, None]) / near[front, None]  # |x / z| of the sphere, at most
    # The four bounds (x max, x min, y max, y min) of every shape, solved together: g(s) = h(n) + n.c
    # with n = sign (e_axis - s e_z); g >= 0 on the inner side of the root, < 0 on the outer side.
    m = len(cf)
    axis = np.repeat([[0, 0, 1, 1]], m, axis=0).ravel()
    sign = np.repeat([[1.0, -1.0, 1.0, -1.0]], m, axis=0).ravel()
    item = np.repeat(np.arange(m), 4)
    inner = ratio[item, axis]
    outer = inner + sign * np.maximum(sign * (sign * reach[item, axis] - inner), 0.0)
    to_obj, kinds = to_object[front][item], shape[front][item]
    prm = [v[front][item] for v in params]
    cc = cf[item]
    pixel = min(2.0 * scale[0] / w, 2.0 * scale[1] / ht)  # one pixel in units of x / z
    iterations = int(np.clip(np.ceil(np.log2(np.max(np.abs(outer - inner)) / (tolerance * pixel) + 1.0)), 1, 60))
    _bisect_silhouettes(np.ascontiguousarray(to_obj), kinds.astype(np.int64), *prm, np.ascontiguousarray(cc),
                        axis, sign, inner, outer, iterations)
    found = outer.reshape(m, 4)
    bounds = [(found[:, 1] / scale[0], found[:, 0] / scale[0]), (found[:, 3] / scale[1], found[:, 2] / scale[1])]
    (xn0, xn1), (yn0, yn1) = bounds
    out[front, 0] = (xn0 + 1.0) / 2.0 * w - _BBOX_MARGIN
    out[front, 2] = (xn1 + 1.0) / 2.0 * w + _BBOX_MARGIN
    out[front, 1] = (1.0 - yn1) / 2.0 * ht - _BBOX_MARGIN
    out[front, 3] = (1.0 - yn0) / 2.0 * ht + _BBOX_MARGIN
    return out


@numba.njit(cache=True)
def _bisect_silhouettes(to_obj, kinds, p0, p1, p2, c, axis, sign, inner, outer, iterations):
    """Bisection of g(s) = h(n) + n.c, n = sign (e_axis - s e_z), for each row, in place, keeping
    g(inner) >= 0 > g(outer) (see :func:`projected_bbox_support`)."""
    for i in range(inner.shape[0]):
        n0 = sign[i] if axis[i] == 0 else 0.0
        n1 = sign[i] if axis[i] == 1 else 0.0
        lo, hi = inner[i], outer[i]
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            n2 = -sign[i] * mid
            ux = to_obj[i, 0, 0] * n0 + to_obj[i, 0, 1] * n1 + to_obj[i, 0, 2] * n2
            uy = to_obj[i, 1, 0] * n0 + to_obj[i, 1, 1] * n1 + to_obj[i, 1, 2] * n2
            uz = to_obj[i, 2, 0] * n0 + to_obj[i, 2, 1] * n1 + to_obj[i, 2, 2] * n2
            g = support_one(kinds[i], p0[i], p1[i], p2[i], ux, uy, uz) + n0 * c[i, 0] + n1 * c[i, 1] + n2 * c[i, 2]
            if g >= 0.0:
                lo = mid
            else:
                hi = mid
        inner[i] = lo
        outer[i] = hi
