"""The general kernel's device functions: shapes with rotations, texture spaces, a noise function per
object, the ground plane and hard shadows (see :func:`fakeballoons.render.kernels.build`).

``build_general`` takes the pieces of the report's model it builds on (the noises, the ray-ellipsoid
test and its unit-sphere solve, the ellipsoid normal) so that an axis-aligned ellipsoid goes through
the very same code in the general kernel as in the report's.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from .fields import (
    CE,
    CX,
    CY,
    CZ,
    EQ,
    EYE,
    GROUND,
    GROUND_ALBEDO,
    GROUND_HIT,
    GROUND_KD,
    GROUND_SCALE,
    GROUND_Y,
    KA,
    LIGHT,
    NOISE_KIND,
    NOISE_SCALE,
    OX,
    OY,
    OZ,
    P0,
    P1,
    P2,
    R2,
    RADIUS,
    ROT,
    ROTATED,
    SCALE,
    SHADOWS,
    SHAPE,
    TEXTURE,
    W2,
)
from .shapes import build_shapes

_SHADOW_OFFSET = 1e-6  # shadow rays start this far off the surface, against self-shadowing by rounding


def build_general(jit, sjit, noise, noise_z0, hit_ellipsoid, sphere_hit, ellipsoid_normal) -> SimpleNamespace:
    """The general build's device functions, compiled with ``jit`` (shape entry points with ``sjit``)."""
    shapes = build_shapes(jit, entry=sjit)
    shape_hit = shapes.hit  # device functions are closure variables; a namespace would not type
    shape_hit_past_sphere = shapes.hit_past_sphere
    misses_sphere = shapes.misses_sphere
    shape_normal = shapes.normal

    @jit
    def to_object(objs, o, x, y, z):
        """R^T (x, y, z): a world vector in object o's frame."""
        return (objs[o, ROT] * x + objs[o, ROT + 3] * y + objs[o, ROT + 6] * z,
                objs[o, ROT + 1] * x + objs[o, ROT + 4] * y + objs[o, ROT + 7] * z,
                objs[o, ROT + 2] * x + objs[o, ROT + 5] * y + objs[o, ROT + 8] * z)

    @jit
    def hit_object(objs, o, ox, oy, oz, dx, dy, dz):
        """t > 0 of the first hit of the ray o + t d (any origin) with object o, or -1."""
        lx, ly, lz = to_object(objs, o, ox - objs[o, CX], oy - objs[o, CY], oz - objs[o, CZ])
        ux, uy, uz = to_object(objs, o, dx, dy, dz)
        return shape_hit(np.int64(objs[o, SHAPE]), objs[o, P0], objs[o, P1], objs[o, P2], lx, ly, lz, ux, uy, uz)

    @jit
    def hit_rotated_ellipsoid(objs, o, dx, dy, dz):
        """hit_ellipsoid with the full map EQ to the unit sphere in place of the diagonal one."""
        return sphere_hit(objs[o, EQ] * dx + objs[o, EQ + 1] * dy + objs[o, EQ + 2] * dz,
                          objs[o, EQ + 3] * dx + objs[o, EQ + 4] * dy + objs[o, EQ + 5] * dz,
                          objs[o, EQ + 6] * dx + objs[o, EQ + 7] * dy + objs[o, EQ + 8] * dz, objs, o)

    @jit
    def hit_from_eye(objs, o, dx, dy, dz, inv, cam):
        """t > 0 of the first hit of eye + t d with object o, or -1; ``inv`` is 1 / |d|."""
        if objs[o, SHAPE] != 0.0:  # the eye in object space is packed in OX, OY, OZ
            # The bounding-sphere test first, in world space from the packed c - eye, |c - eye|^2
            # and radius^2 (R keeps lengths and dot products, so these are hit_unit's s and gap):
            # a third of the rays that reach here miss, and this saves them the rotation and the call.
            s = (objs[o, CE] * dx + objs[o, CE + 1] * dy + objs[o, CE + 2] * dz) * inv
            if misses_sphere(s, objs[o, R2] - (objs[o, W2] - s * s)):
                return -1.0
            ux, uy, uz = to_object(objs, o, dx * inv, dy * inv, dz * inv)
            t = shape_hit_past_sphere(np.int64(objs[o, SHAPE]), objs[o, P0], objs[o, P1], objs[o, P2], s,
                                      objs[o, OX], objs[o, OY], objs[o, OZ], ux, uy, uz)
            return t * inv if t > 0.0 else -1.0  # R keeps lengths: u = R^T d / |d|
        if objs[o, ROTATED] != 0.0:
            return hit_rotated_ellipsoid(objs, o, dx, dy, dz)
        return hit_ellipsoid(objs, o, dx, dy, dz)

    @jit
    def hit_ground(cam, dy, best, best_t):
        """The ground plane y = GROUND_Y in place of (best, best_t) if it is nearer."""
        if cam[GROUND] != 0.0 and dy != 0.0:
            t = (cam[GROUND_Y] - cam[EYE + 1]) / dy
            if t > 0.0 and t < best_t:
                return GROUND_HIT, t
        return best, best_t
    @jit
    def surface_normal(objs, o, px, py, pz):
        if objs[o, SHAPE] == 0.0 and objs[o, ROTATED] != 0.0:  # EQ^T EQ (p - c): the quadric's gradient
            rx = px - objs[o, CX]
            ry = py - objs[o, CY]
            rz = pz - objs[o, CZ]
            qx = objs[o, EQ] * rx + objs[o, EQ + 1] * ry + objs[o, EQ + 2] * rz
            qy = objs[o, EQ + 3] * rx + objs[o, EQ + 4] * ry + objs[o, EQ + 5] * rz
            qz = objs[o, EQ + 6] * rx + objs[o, EQ + 7] * ry + objs[o, EQ + 8] * rz
            nx = objs[o, EQ] * qx + objs[o, EQ + 3] * qy + objs[o, EQ + 6] * qz
            ny = objs[o, EQ + 1] * qx + objs[o, EQ + 4] * qy + objs[o, EQ + 7] * qz
            nz = objs[o, EQ + 2] * qx + objs[o, EQ + 5] * qy + objs[o, EQ + 8] * qz
            inv = 1.0 / math.sqrt(nx * nx + ny * ny + nz * nz)
            return nx * inv, ny * inv, nz * inv
        if objs[o, SHAPE] != 0.0:
            lx, ly, lz = to_object(objs, o, px - objs[o, CX], py - objs[o, CY], pz - objs[o, CZ])
            mx, my, mz = shape_normal(np.int64(objs[o, SHAPE]), objs[o, P0], objs[o, P1], objs[o, P2], lx, ly, lz)
            return (objs[o, ROT] * mx + objs[o, ROT + 1] * my + objs[o, ROT + 2] * mz,
                    objs[o, ROT + 3] * mx + objs[o, ROT + 4] * my + objs[o, ROT + 5] * mz,
                    objs[o, ROT + 6] * mx + objs[o, ROT + 7] * my + objs[o, ROT + 8] * mz)
        return ellipsoid_normal(objs, o, px, py, pz)

    @jit
    def surface_texture(objs, o, px, py, pz, vx, vy, vz, kind):
        """Texture t of object o at p: at r times the view-space normal v (the report's), at the
        object-space point (solid), or 1 (none); its own noise function."""
        mode = objs[o, TEXTURE]
        if mode == 2.0:
            return 1.0
        own = np.int64(objs[o, NOISE_KIND])
        r = objs[o, NOISE_SCALE]
        if mode == 1.0:
            lx, ly, lz = to_object(objs, o, px - objs[o, CX], py - objs[o, CY], pz - objs[o, CZ])
            q = r / objs[o, SCALE]
            return 0.5 * noise(own, q * lx, q * ly, q * lz) + 0.5
        return 0.5 * noise(own, r * vx, r * vy, r * vz) + 0.5

    @jit
    def occluded(px, py, pz, cam, objs, b, scene_start):
        """True if an object of scene b lies between p and the light (hard shadows)."""
        if cam[SHADOWS] == 0.0:
            return False
        dx = cam[LIGHT] - px
        dy = cam[LIGHT + 1] - py
        dz = cam[LIGHT + 2] - pz
        dd = dx * dx + dy * dy + dz * dz
        for j in range(scene_start[b], scene_start[b + 1]):
            # Bounding sphere against the segment p -> light first: most objects are far from it.
            cx = objs[j, CX] - px
            cy = objs[j, CY] - py
            cz = objs[j, CZ] - pz
            s = min(max((cx * dx + cy * dy + cz * dz) / dd, 0.0), 1.0)
            ex = cx - s * dx
            ey = cy - s * dy
            ez = cz - s * dz
            if ex * ex + ey * ey + ez * ez > objs[j, RADIUS] * objs[j, RADIUS]:
                continue
            t = hit_object(objs, j, px, py, pz, dx, dy, dz)
            if t > 0.0 and t < 1.0:
                return True
        return False

    @jit
    def shade_ground(t, dx, dy, dz, cam, objs, kind, b, scene_start):
        """Grey level of the ground at eye + t d: albedo (ka + kd max(n.l, 0) t_ground), n = +y."""
        px = cam[EYE] + t * dx
        py = cam[EYE + 1] + t * dy
        pz = cam[EYE + 2] + t * dz
        ix = cam[LIGHT] - px
        iy = cam[LIGHT + 1] - py
        iz = cam[LIGHT + 2] - pz
        diffuse = max(iy / math.sqrt(ix * ix + iy * iy + iz * iz), 0.0)
        if diffuse > 0.0 and occluded(px, py + _SHADOW_OFFSET, pz, cam, objs, b, scene_start):
            diffuse = 0.0
        r = cam[GROUND_SCALE]
        texture = 0.5 * noise_z0(kind, r * px, r * pz) + 0.5
        g = cam[GROUND_ALBEDO] * (cam[KA] + cam[GROUND_KD] * diffuse * texture)
        return min(max(g, 0.0), 1.0)
    return SimpleNamespace(hit_from_eye=hit_from_eye, hit_ground=hit_ground, surface_normal=surface_normal,
                           surface_texture=surface_texture, occluded=occluded, shade_ground=shade_ground)
