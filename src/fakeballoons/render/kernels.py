"""Per-pixel rendering kernels: one source, compiled for the CPU and for CUDA.

``build(jit)`` defines the device functions (noise, ray-ellipsoid, Phong shading,
coverage anti-aliasing) with the given decorator and returns them. It is called
once with ``numba.njit`` (here, for the CPU) and once with
``numba.cuda.jit(device=True)`` (in :mod:`fakeballoons.render.cuda`), so both
targets run exactly the same arithmetic, and numba's CUDA simulator runs it on
machines without a GPU.

Data layout (built by :mod:`fakeballoons.render.pack`):

- ``cam``: float64 (CAM_SIZE,) camera basis, screen scales, light and ambient.
- ``objs``: float64 (n_objects, OBJ_FIELDS), one row per object of every scene in the batch.
- ``tile_start`` int64 (B * n_tiles + 1), ``tile_objs`` int64: for each screen tile of
  each scene, the objects whose projected bounding box touches it (CSR).
- ``pattern``: float64 (S, 2) coverage sample offsets from the pixel centre, in pixels.
- ``scene_start`` int64 (B + 1): the rows of scene b are ``scene_start[b]:scene_start[b + 1]``
  (shadow rays test every object of their scene).

``build(jit, general)`` makes two builds from this one source. The simple one (``general=False``)
is the report's scene model: axis-aligned ellipsoids textured at the view-space normal, one noise
function, no ground, no shadows; its arithmetic is what the report's scenes are pinned to. The
general one adds shape families with rotations (render/shapes.py), solid or no texture, a noise
function per object, a ground plane and hard shadows; an axis-aligned ellipsoid goes through the
very same code in both, so both render the report's scenes to the same bytes.

Lattice hashing and the noise generator use exact int64 arithmetic; geometry and
shading use float64.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numba
import numpy as np

from ..config import NOISE_FUNCTIONS
from ..noise import SC_IMPULSES
from .shapes import build_shapes

# Object row fields.
CX, CY, CZ = 0, 1, 2  # centre
IAX, IAY, IAZ = 3, 4, 5  # 1 / semi-axes
OX, OY, OZ = 6, 7, 8  # (eye - centre) / semi-axes: the ray origin in unit-sphere space
OC = 9  # |o'|^2 - 1
COL_R, COL_G, COL_B = 10, 11, 12  # radiance Le in [0, 1]
KD, KS, NS = 13, 14, 15  # Phong coefficients and exponent
NOISE_SCALE = 16
CLASS = 17  # label 1..K
INSTANCE = 18  # object index in its scene + 1
BBX0, BBY0, BBX1, BBY1 = 19, 20, 21, 22  # projected bounding box, continuous pixel coordinates
# Read by the general kernel only (zero in a batch of the report's objects):
SHAPE = 23  # shape family, an index of SHAPES
P0, P1, P2 = 24, 25, 26  # shape parameters (render/shapes.py)
ROT = 27  # 9 entries: the rotation matrix R (object -> world), row-major
ROTATED = 36  # 1 if R is not the identity
TEXTURE = 37  # texture space, an index of TEXTURES
NOISE_KIND = 38  # noise function of the texture
SCALE = 39  # s: solid texture is taken at r * p_object / s
RADIUS = 40  # bounding-sphere radius, for shadow rays
EQ = 41  # 9 entries: diag(1 / axes) R^T of a rotated ellipsoid, which maps it to the unit sphere
OBJ_FIELDS = 50
# OX, OY, OZ (and OC) of other objects: a rotated ellipsoid's eye in unit-sphere space, EQ (eye - c)
# (and its |.|^2 - 1); any other shape's eye in object space, R^T (eye - c).

# Camera fields.
EYE, RIGHT, UP, FWD = 0, 3, 6, 9  # eye position and unit basis vectors (3 each)
SX, SY = 12, 13  # tan(fov_y / 2) * aspect, tan(fov_y / 2)
LIGHT = 14  # light position (3)
KA = 17
GROUND = 18  # 1 if there is a ground plane (general kernel)
GROUND_Y, GROUND_SCALE, GROUND_ALBEDO, GROUND_KD = 19, 20, 21, 22
SHADOWS = 23  # 1 for shadow rays (general kernel)
CAM_SIZE = 24

SKY, GROUND_HIT = -1, -2  # what a ray that meets no object hits

NOISE_KINDS = {name: i for i, name in enumerate(NOISE_FUNCTIONS)}  # the kernels' noise numbering
PERLIN, SPARSE_CONVOLUTION = NOISE_KINDS["perlin"], NOISE_KINDS["sc"]

_S = SC_IMPULSES
_SC_AMPLITUDE = 0.8 * _S ** (-1.0 / 3.0)
_NO_HIT = 1e300
_SHADOW_OFFSET = 1e-6  # shadow rays start this far off the surface, against self-shadowing by rounding


def _perlin_tables():
    """pi(x mod 289) for x in [0, 578), and the gradient (SPEC section 2) of each hash pi(x)."""
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


def build(jit, general: bool = False, scalar_jit=None) -> SimpleNamespace:
    """Compile the kernel family with ``jit`` (a decorator for device functions); ``general`` adds
    the extensions beyond the report's scene model (see the module docstring).

    ``scalar_jit`` (default ``jit``) compiles ``noise`` and the shape intersections, which take only
    scalars. The general CPU build does not inline them: inlining them at every call site of its
    kernel made compiling it take minutes, and a call without array arguments costs no reference
    counting, only the call.
    """
    sjit = scalar_jit or jit

    # ---------------------------------------------------------------- noise

    perm = _PERM
    grad_x = _GRAD_X
    grad_y = _GRAD_Y
    grad_z = _GRAD_Z

    @jit
    def grad_dot(i, fx, fy, fz):
        """Gradient of lattice hash pi(i) (i in [0, 578)) dotted with the offset (fx, fy, fz)."""
        return grad_x[i] * fx + grad_y[i] * fy + grad_z[i] * fz

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

    # ------------------------------------------------------------- geometry

    @jit
    def ray_dir(fx, fy, width, height, cam):
        """Unnormalised ray direction through continuous pixel position (fx, fy); row 0 is the top."""
        xn = (2.0 * fx / width - 1.0) * cam[SX]
        yn = (1.0 - 2.0 * fy / height) * cam[SY]
        dx = cam[FWD] + xn * cam[RIGHT] + yn * cam[UP]
        dy = cam[FWD + 1] + xn * cam[RIGHT + 1] + yn * cam[UP + 1]
        dz = cam[FWD + 2] + xn * cam[RIGHT + 2] + yn * cam[UP + 2]
        return dx, dy, dz

    @jit
    def hit_ellipsoid(objs, o, dx, dy, dz):
        """Ray parameter t > 0 of the first hit of eye + t d with object o, or -1 for a miss."""
        ex = dx * objs[o, IAX]
        ey = dy * objs[o, IAY]
        ez = dz * objs[o, IAZ]
        a = ex * ex + ey * ey + ez * ez
        half_b = objs[o, OX] * ex + objs[o, OY] * ey + objs[o, OZ] * ez
        disc = half_b * half_b - a * objs[o, OC]
        if disc < 0.0:
            return -1.0
        root = math.sqrt(disc)
        t = (-half_b - root) / a
        if t <= 0.0:  # the eye is inside the ellipsoid
            t = (-half_b + root) / a
        return t if t > 0.0 else -1.0

    if general:
        shapes = build_shapes(jit, entry=sjit)
        shape_hit = shapes.hit  # device functions are closure variables; a namespace would not type
        shape_hit_unit = shapes.hit_unit
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
            ex = objs[o, EQ] * dx + objs[o, EQ + 1] * dy + objs[o, EQ + 2] * dz
            ey = objs[o, EQ + 3] * dx + objs[o, EQ + 4] * dy + objs[o, EQ + 5] * dz
            ez = objs[o, EQ + 6] * dx + objs[o, EQ + 7] * dy + objs[o, EQ + 8] * dz
            a = ex * ex + ey * ey + ez * ez
            half_b = objs[o, OX] * ex + objs[o, OY] * ey + objs[o, OZ] * ez
            disc = half_b * half_b - a * objs[o, OC]
            if disc < 0.0:
                return -1.0
            root = math.sqrt(disc)
            t = (-half_b - root) / a
            if t <= 0.0:  # the eye is inside the ellipsoid
                t = (-half_b + root) / a
            return t if t > 0.0 else -1.0

        @jit
        def hit_from_eye(objs, o, dx, dy, dz, cam):
            if objs[o, SHAPE] != 0.0:  # the eye in object space is packed in OX, OY, OZ
                inv = 1.0 / math.sqrt(dx * dx + dy * dy + dz * dz)  # R keeps lengths: u = R^T d / |d|
                ux, uy, uz = to_object(objs, o, dx * inv, dy * inv, dz * inv)
                t = shape_hit_unit(np.int64(objs[o, SHAPE]), objs[o, P0], objs[o, P1], objs[o, P2], objs[o, RADIUS],
                                   objs[o, OX], objs[o, OY], objs[o, OZ], ux, uy, uz)
                return t * inv if t > 0.0 else -1.0
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
    else:
        @jit
        def hit_from_eye(objs, o, dx, dy, dz, cam):
            return hit_ellipsoid(objs, o, dx, dy, dz)

        @jit
        def hit_ground(cam, dy, best, best_t):
            return best, best_t

    @jit
    def cast(fx, fy, width, height, cam, objs, tile_objs, lo, hi):
        """Nearest object (row index; SKY or GROUND_HIT for none) hit through pixel position (fx, fy), and its t."""
        dx, dy, dz = ray_dir(fx, fy, width, height, cam)
        best = SKY
        best_t = _NO_HIT
        for k in range(lo, hi):
            o = tile_objs[k]
            if fx < objs[o, BBX0] or fx > objs[o, BBX1] or fy < objs[o, BBY0] or fy > objs[o, BBY1]:
                continue
            t = hit_from_eye(objs, o, dx, dy, dz, cam)
            if t > 0.0 and t < best_t:  # strict: on equal depth the earlier object wins
                best = o
                best_t = t
        return hit_ground(cam, dy, best, best_t)

    # -------------------------------------------------------------- shading

    @jit
    def background(fx, fy, width, height, scale, kind):
        """Grey value 0.5 noise(r_bg x_ndc, r_bg y_ndc, 0) + 0.5 at pixel position (fx, fy)."""
        xn = 2.0 * fx / width - 1.0
        yn = 1.0 - 2.0 * fy / height
        g = 0.5 * noise(kind, scale * xn, scale * yn, 0.0) + 0.5
        return min(max(g, 0.0), 1.0)

    @jit
    def ellipsoid_normal(objs, o, px, py, pz):
        """Unit normal of an axis-aligned ellipsoid at p: the gradient of |(p - c) / axes|^2."""
        nx = (px - objs[o, CX]) * objs[o, IAX] * objs[o, IAX]
        ny = (py - objs[o, CY]) * objs[o, IAY] * objs[o, IAY]
        nz = (pz - objs[o, CZ]) * objs[o, IAZ] * objs[o, IAZ]
        inv = 1.0 / math.sqrt(nx * nx + ny * ny + nz * nz)
        return nx * inv, ny * inv, nz * inv

    if general:
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
            texture = 0.5 * noise(kind, r * px, r * pz, 0.0) + 0.5
            g = cam[GROUND_ALBEDO] * (cam[KA] + cam[GROUND_KD] * diffuse * texture)
            return min(max(g, 0.0), 1.0)
    else:
        surface_normal = ellipsoid_normal

        @jit
        def surface_texture(objs, o, px, py, pz, vx, vy, vz, kind):
            r = objs[o, NOISE_SCALE]
            return 0.5 * noise(kind, r * vx, r * vy, r * vz) + 0.5

        @jit
        def occluded(px, py, pz, cam, objs, b, scene_start):
            return False

        @jit
        def shade_ground(t, dx, dy, dz, cam, objs, kind, b, scene_start):
            return 0.0

    @jit
    def shade(o, t, dx, dy, dz, cam, objs, kind, b, scene_start):
        """Phong colour (r, g, b) in [0, 1] of object o at eye + t d; ambient only where it is in shadow."""
        px = cam[EYE] + t * dx
        py = cam[EYE + 1] + t * dy
        pz = cam[EYE + 2] + t * dz
        nx, ny, nz = surface_normal(objs, o, px, py, pz)
        ix = cam[LIGHT] - px
        iy = cam[LIGHT + 1] - py
        iz = cam[LIGHT + 2] - pz
        inv = 1.0 / math.sqrt(ix * ix + iy * iy + iz * iz)
        ix *= inv
        iy *= inv
        iz *= inv
        wx = cam[EYE] - px
        wy = cam[EYE + 1] - py
        wz = cam[EYE + 2] - pz
        inv = 1.0 / math.sqrt(wx * wx + wy * wy + wz * wz)
        hx = ix + wx * inv
        hy = iy + wy * inv
        hz = iz + wz * inv
        hlen = math.sqrt(hx * hx + hy * hy + hz * hz)
        diffuse = max(nx * ix + ny * iy + nz * iz, 0.0)
        spec_cos = max((nx * hx + ny * hy + nz * hz) / hlen, 0.0) if hlen > 0.0 else 0.0
        specular = spec_cos ** objs[o, NS]
        # View-space normal (x right, y up, z towards the viewer), scaled by the noise scale.
        vx = nx * cam[RIGHT] + ny * cam[RIGHT + 1] + nz * cam[RIGHT + 2]
        vy = nx * cam[UP] + ny * cam[UP + 1] + nz * cam[UP + 2]
        vz = -(nx * cam[FWD] + ny * cam[FWD + 1] + nz * cam[FWD + 2])
        texture = surface_texture(objs, o, px, py, pz, vx, vy, vz, kind)
        if (diffuse > 0.0 or specular > 0.0) and occluded(px + _SHADOW_OFFSET * nx, py + _SHADOW_OFFSET * ny,
                                                          pz + _SHADOW_OFFSET * nz, cam, objs, b, scene_start):
            diffuse = 0.0
            specular = 0.0
        f = cam[KA] + objs[o, KD] * diffuse * texture + objs[o, KS] * specular
        cr = min(max(objs[o, COL_R] * f, 0.0), 1.0)
        cg = min(max(objs[o, COL_G] * f, 0.0), 1.0)
        cb = min(max(objs[o, COL_B] * f, 0.0), 1.0)
        return cr, cg, cb

    @jit
    def sample_colour(o, t, fx, fy, width, height, cam, objs, bg_scale, kind, b, scene_start):
        if o < 0:
            if o == GROUND_HIT:
                dx, dy, dz = ray_dir(fx, fy, width, height, cam)
                g = shade_ground(t, dx, dy, dz, cam, objs, kind, b, scene_start)
            else:
                g = background(fx, fy, width, height, bg_scale, kind)
            return g, g, g
        dx, dy, dz = ray_dir(fx, fy, width, height, cam)
        return shade(o, t, dx, dy, dz, cam, objs, kind, b, scene_start)

    @jit
    def to_byte(v):
        return np.uint8(math.floor(v * 255.0 + 0.5))

    @jit
    def render_pixel(b, py, px, height, width, tile_size, tiles_x, tiles_per_scene, cam, objs,
                     tile_start, tile_objs, bg_scales, kind, pattern, ignore_edges, ignore_index, scene_start,
                     image, label, instance):
        """Render pixel (py, px) of scene b into image/label/instance[b, py, px].

        Coverage: the pattern's S samples are cast against the objects of the pixel's tile. If all
        hit the same object (or none), the pixel is interior and is shaded once, at its centre.
        Otherwise it is an edge pixel: each sample is shaded and the colours averaged; its label is
        the samples' common class, or ignore_index where they disagree (if ignore_edges); its
        instance is the object seen through the pixel centre, unless the samples agree on a class
        the centre does not see (a sub-sample gap), when it is the first sample's object. So
        wherever the label is not ignore_index it is the class of the instance.
        """
        tile = b * tiles_per_scene + (py // tile_size) * tiles_x + (px // tile_size)
        lo = tile_start[tile]
        hi = tile_start[tile + 1]
        cx = px + 0.5
        cy = py + 0.5
        bg_scale = bg_scales[b]
        n_samples = pattern.shape[0]
        first = -2
        interior = True
        for s in range(n_samples):
            o, t = cast(cx + pattern[s, 0], cy + pattern[s, 1], width, height, cam, objs, tile_objs, lo, hi)
            if s == 0:
                first = o
            elif o != first:
                interior = False
                break
        if interior:
            if first < 0:
                if first == GROUND_HIT:
                    dx, dy, dz = ray_dir(cx, cy, width, height, cam)
                    t = (cam[GROUND_Y] - cam[EYE + 1]) / dy
                    g = to_byte(shade_ground(t, dx, dy, dz, cam, objs, kind, b, scene_start))
                else:
                    g = to_byte(background(cx, cy, width, height, bg_scale, kind))
                image[b, py, px, 0] = g
                image[b, py, px, 1] = g
                image[b, py, px, 2] = g
                label[b, py, px] = 0
                instance[b, py, px] = 0
                return
            # The samples surround the centre and a projected ellipsoid is convex, so the centre
            # ray hits this object too; only a rounding miss falls back to the first sample.
            fx = cx
            fy = cy
            dx, dy, dz = ray_dir(fx, fy, width, height, cam)
            t = hit_from_eye(objs, first, dx, dy, dz, cam)
            if t <= 0.0:
                fx = cx + pattern[0, 0]
                fy = cy + pattern[0, 1]
                dx, dy, dz = ray_dir(fx, fy, width, height, cam)
                t = hit_from_eye(objs, first, dx, dy, dz, cam)
            r, g, bl = shade(first, t, dx, dy, dz, cam, objs, kind, b, scene_start)
            image[b, py, px, 0] = to_byte(r)
            image[b, py, px, 1] = to_byte(g)
            image[b, py, px, 2] = to_byte(bl)
            label[b, py, px] = np.uint8(objs[first, CLASS])
            instance[b, py, px] = np.uint16(objs[first, INSTANCE])
            return
        # Edge pixel.
        sr = 0.0
        sg = 0.0
        sb = 0.0
        common = -1
        agree = True
        o_first = -1
        for s in range(n_samples):
            fx = cx + pattern[s, 0]
            fy = cy + pattern[s, 1]
            o, t = cast(fx, fy, width, height, cam, objs, tile_objs, lo, hi)
            r, g, bl = sample_colour(o, t, fx, fy, width, height, cam, objs, bg_scale, kind, b, scene_start)
            sr += r
            sg += g
            sb += bl
            cls = 0 if o < 0 else np.int64(objs[o, CLASS])
            if s == 0:
                common = cls
                o_first = o
            elif cls != common:
                agree = False
        image[b, py, px, 0] = to_byte(sr / n_samples)
        image[b, py, px, 1] = to_byte(sg / n_samples)
        image[b, py, px, 2] = to_byte(sb / n_samples)
        oc, tc = cast(cx, cy, width, height, cam, objs, tile_objs, lo, hi)
        if agree and (0 if oc < 0 else np.int64(objs[oc, CLASS])) != common:
            oc = o_first  # the centre falls in a sub-sample gap: keep label and instance consistent
        instance[b, py, px] = 0 if oc < 0 else np.uint16(objs[oc, INSTANCE])
        if agree:
            label[b, py, px] = np.uint8(common)
        elif ignore_edges:
            label[b, py, px] = np.uint8(ignore_index)
        else:
            label[b, py, px] = 0 if oc < 0 else np.uint8(objs[oc, CLASS])

    return SimpleNamespace(
        perlin=perlin, sparse_convolution=sparse_convolution, noise=noise, ray_dir=ray_dir,
        hit_ellipsoid=hit_ellipsoid, hit_from_eye=hit_from_eye, cast=cast, background=background, shade=shade,
        render_pixel=render_pixel,
    )


# ------------------------------------------------------------------ CPU target

_cpu = build(numba.njit(cache=True, inline="always"))
_cpu_general = build(numba.njit(cache=True, inline="always"), general=True, scalar_jit=numba.njit(cache=True))
_render_pixel = _cpu.render_pixel
_render_pixel_general = _cpu_general.render_pixel
_noise = _cpu.noise


@numba.njit(parallel=True, cache=True)
def render_cpu(height, width, tile_size, tiles_x, tiles_per_scene, cam, objs, tile_start, tile_objs,
               bg_scales, kind, pattern, ignore_edges, ignore_index, scene_start, image, label, instance):
    """Render every pixel of every scene of a packed batch; rows run in parallel on all threads."""
    rows = bg_scales.shape[0] * height
    for row in numba.prange(rows):
        b = row // height
        py = row - b * height
        for px in range(width):
            _render_pixel(b, py, px, height, width, tile_size, tiles_x, tiles_per_scene, cam, objs,
                          tile_start, tile_objs, bg_scales, kind, pattern, ignore_edges, ignore_index, scene_start,
                          image, label, instance)


@numba.njit(parallel=True, cache=True)
def render_cpu_general(height, width, tile_size, tiles_x, tiles_per_scene, cam, objs, tile_start, tile_objs,
                       bg_scales, kind, pattern, ignore_edges, ignore_index, scene_start, image, label, instance):
    """``render_cpu`` with the general build: shapes, rotations, textures, ground and shadows."""
    rows = bg_scales.shape[0] * height
    for row in numba.prange(rows):
        b = row // height
        py = row - b * height
        for px in range(width):
            _render_pixel_general(b, py, px, height, width, tile_size, tiles_x, tiles_per_scene, cam, objs,
                                  tile_start, tile_objs, bg_scales, kind, pattern, ignore_edges, ignore_index,
                                  scene_start, image, label, instance)


@numba.njit(parallel=True, cache=True)
def noise_cpu(points, kind, out):
    """Evaluate noise ``kind`` at points (N, 3) float64 into out (N,) with the kernel's own code."""
    for i in numba.prange(points.shape[0]):
        out[i] = _noise(kind, points[i, 0], points[i, 1], points[i, 2])
