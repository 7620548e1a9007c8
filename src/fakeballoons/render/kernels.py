"""Per-pixel rendering kernels: one source, compiled for the CPU and for CUDA.

``build(jit)`` defines the device functions (noise, ray-ellipsoid, Phong shading,
coverage anti-aliasing) with the given decorator and returns them. It is called
once with ``numba.njit`` (in :mod:`fakeballoons.render.cpu`) and once with
``numba.cuda.jit(device=True)`` (in :mod:`fakeballoons.render.cuda`), so both
targets run exactly the same arithmetic, and numba's CUDA simulator runs it on
machines without a GPU.

Data layout (built by :mod:`fakeballoons.render.pack`):

- ``cam``: float64 (CAM_SIZE,) camera basis, screen scales, light and ambient.
- ``objs``: float64 (n_objects, OBJ_FIELDS), one row per object of every scene in the batch.
- ``tile_start`` int64 (B * n_tiles + 1), ``tile_objs`` int64: for each screen tile of
  each scene, the objects whose projected bounding box touches it (CSR). For the report's build
  (``general=False``), ``pack.refine_tiles`` leaves out the objects that no sample ray of the tile
  can hit, and a tile that every sample ray sees one object through lists only ``-(o + 1)``.
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

import numpy as np

from .fields import (
    BBX0,
    BBX1,
    BBY0,
    BBY1,
    CLASS,
    COL_B,
    COL_G,
    COL_R,
    CX,
    CY,
    CZ,
    EYE,
    FOOT_PX,
    FOOT_PY,
    FOOT_X,
    FOOT_Y,
    FWD,
    GROUND_HIT,
    GROUND_Y,
    HB0,
    HB1,
    HB2,
    IAX,
    IAY,
    IAZ,
    INSTANCE,
    KA,
    KD,
    KS,
    LIGHT,
    MARGIN_D,
    MARGIN_HB,
    NEAR,
    NOISE_SCALE,
    NS,
    OC,
    OX,
    OY,
    OZ,
    Q0,
    Q1,
    Q2,
    Q3,
    Q4,
    Q5,
    RIGHT,
    SKY,
    SX,
    SY,
    T_MARGIN,
    UP,
)
from .general import _SHADOW_OFFSET, build_general
from .noise_device import build_noise

_NO_HIT = 1e300
_UNSETTLED = -3  # the pixel test cannot tell what a pixel's sample rays hit: cast them
_REACH_SLACK = 1e-9  # relative: NEAR and t |d| carry rounding errors near 1e-15


def build(jit, general: bool = False, scalar_jit=None, pixel_test: bool = False) -> SimpleNamespace:
    """Compile the kernel family with ``jit`` (a decorator for device functions); ``general`` adds
    the extensions beyond the report's scene model (see the module docstring). ``pixel_test`` (the
    report's CPU build) settles pixels of tiles with objects without casting where it can
    (``settle_pixel``).

    ``scalar_jit`` (default ``jit``) compiles ``noise`` and the shape intersections, which take only
    scalars. The general CPU build does not inline them: inlining them at every call site of its
    kernel made compiling it take minutes, and a call without array arguments costs no reference
    counting, only the call.
    """
    sjit = scalar_jit or jit

    noises = build_noise(jit, sjit)
    noise = noises.noise
    noise_z0 = noises.noise_z0

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
    def inverse_length(dx, dy, dz):
        """1 / |d|: hit_from_eye's ``inv`` (the report's ellipsoids ignore it)."""
        return 1.0 / math.sqrt(dx * dx + dy * dy + dz * dz)

    @jit
    def sphere_hit(ex, ey, ez, objs, o):
        """t > 0 of the first hit with the unit sphere of the ray from o's packed unit-sphere-space eye
        (OX, OY, OZ; OC = |.|^2 - 1) along (ex, ey, ez), or -1 for a miss."""
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
    def hit_ellipsoid(objs, o, dx, dy, dz):
        """Ray parameter t > 0 of the first hit of eye + t d with axis-aligned ellipsoid o, or -1."""
        return sphere_hit(dx * objs[o, IAX], dy * objs[o, IAY], dz * objs[o, IAZ], objs, o)

    @jit
    def ellipsoid_normal(objs, o, px, py, pz):
        """Unit normal of an axis-aligned ellipsoid at p: the gradient of |(p - c) / axes|^2."""
        nx = (px - objs[o, CX]) * objs[o, IAX] * objs[o, IAX]
        ny = (py - objs[o, CY]) * objs[o, IAY] * objs[o, IAY]
        nz = (pz - objs[o, CZ]) * objs[o, IAZ] * objs[o, IAZ]
        inv = 1.0 / math.sqrt(nx * nx + ny * ny + nz * nz)
        return nx * inv, ny * inv, nz * inv

    if general:
        g = build_general(jit, sjit, noise, noise_z0, hit_ellipsoid, sphere_hit, ellipsoid_normal)
        hit_from_eye, hit_ground, surface_normal = g.hit_from_eye, g.hit_ground, g.surface_normal
        surface_texture, occluded, shade_ground = g.surface_texture, g.occluded, g.shade_ground
    else:  # the report's model: axis-aligned ellipsoids, texture at the normal, no ground, no shadows
        surface_normal = ellipsoid_normal

        @jit
        def hit_from_eye(objs, o, dx, dy, dz, inv, cam):
            return hit_ellipsoid(objs, o, dx, dy, dz)

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

    if general:
        @jit
        def cast(fx, fy, width, height, cam, objs, tile_objs, lo, hi):
            """Nearest object (row index; SKY or GROUND_HIT for none) hit through pixel position (fx, fy), and its t.

            The tile lists its objects by NEAR (pack.bin_tiles), so the search stops at the first
            whose bounding sphere lies beyond the nearest hit so far (with a relative slack far above
            rounding); ties go to the lower row, so the answer is the report kernel's exactly.
            """
            dx, dy, dz = ray_dir(fx, fy, width, height, cam)
            inv = inverse_length(dx, dy, dz)
            best = SKY
            best_t = _NO_HIT
            reach = _NO_HIT
            for k in range(lo, hi):
                o = tile_objs[k]
                if objs[o, NEAR] > reach:
                    break
                if fx < objs[o, BBX0] or fx > objs[o, BBX1] or fy < objs[o, BBY0] or fy > objs[o, BBY1]:
                    continue
                t = hit_from_eye(objs, o, dx, dy, dz, inv, cam)
                if t > 0.0 and (t < best_t or (t == best_t and o < best)):
                    best = o
                    best_t = t
                    reach = t * (1.0 + _REACH_SLACK) / inv  # t |d|, the hit's distance
            return hit_ground(cam, dy, best, best_t)
    else:
        @jit
        def cast(fx, fy, width, height, cam, objs, tile_objs, lo, hi):
            """Nearest object (row index; SKY for none) hit through pixel position (fx, fy), and its t."""
            dx, dy, dz = ray_dir(fx, fy, width, height, cam)
            best = SKY
            best_t = _NO_HIT
            for k in range(lo, hi):
                o = tile_objs[k]
                if fx < objs[o, BBX0] or fx > objs[o, BBX1] or fy < objs[o, BBY0] or fy > objs[o, BBY1]:
                    continue
                t = hit_from_eye(objs, o, dx, dy, dz, 0.0, cam)  # the report's ellipsoids need no 1 / |d|
                if t > 0.0 and t < best_t:  # strict: on equal depth the earlier object wins
                    best = o
                    best_t = t
            return best, best_t

    @jit
    def settle_pixel(cx, cy, width, height, cam, objs, tile_objs, lo, hi):
        """What every sample ray of the pixel centred at (cx, cy) meets first, told without casting
        where the tile's objects allow it: the object (row) that all of them hit in front of every
        other object they may hit, SKY where all miss every object, else _UNSETTLED.

        The report's objects only (the fields pack.refine_tiles fills). The samples' normalised
        screen positions lie within (FOOT_X, FOOT_Y) of the centre's (xc, yc); over that rectangle
        an object's ray discriminant (a quadratic, fields Q*) differs from its value at the centre by
        at most the gradient's and the second-order terms' bound, and half_b (linear, HB*) by its
        gradient's. With the eye outside, a hit's t = (-half_b - sqrt(disc)) / a = OC / (-half_b +
        sqrt(disc)), so those ranges bound every sample's t. A verdict needs every bound to clear the
        margins of pack.refine_tiles (far above the kernel's rounding) and the depths to differ by
        T_MARGIN, so it is the one casting would give; a NaN anywhere gives _UNSETTLED.
        """
        xc = (2.0 * cx / width - 1.0) * cam[SX]
        yc = (1.0 - 2.0 * cy / height) * cam[SY]
        pu = cam[FOOT_PX]
        pv = cam[FOOT_PY]
        u = cam[FOOT_X]
        v = cam[FOOT_Y]
        reach = 1.0 + abs(xc) + u + abs(yc) + v  # |d| of any sample ray is at most this
        best = SKY  # the object hit by every sample with the smallest bound on its t
        best_far = _NO_HIT  # that bound
        best_near = _NO_HIT  # the least t of its hits
        others_near = _NO_HIT  # the least t of any hit of the other objects
        for k in range(lo, hi):
            o = tile_objs[k]
            if (cx + pu < objs[o, BBX0] or cx - pu > objs[o, BBX1] or cy + pv < objs[o, BBY0]
                    or cy - pv > objs[o, BBY1]):
                continue  # cast's box test turns every sample away
            q0 = objs[o, Q0]
            q1 = objs[o, Q1]
            q2 = objs[o, Q2]
            q3 = objs[o, Q3]
            q4 = objs[o, Q4]
            gx = q0 * xc + q1 * yc + q3  # half the gradient
            gy = q1 * xc + q2 * yc + q4
            disc = (gx + q3) * xc + (gy + q4) * yc + objs[o, Q5]
            spread = (2.0 * (abs(gx) * u + abs(gy) * v) + abs(q0) * u * u + 2.0 * abs(q1) * u * v
                      + abs(q2) * v * v) + objs[o, MARGIN_D] * reach * reach
            if disc + spread < 0.0:
                continue  # no sample ray meets it
            hb1 = objs[o, HB1]
            hb2 = objs[o, HB2]
            hb_spread = abs(hb1) * u + abs(hb2) * v + objs[o, MARGIN_HB] * reach
            half_b = objs[o, HB0] + hb1 * xc + hb2 * yc
            t_margin = objs[o, T_MARGIN]
            if not (half_b + hb_spread < 0.0 and spread >= 0.0 and t_margin >= 0.0):
                return _UNSETTLED  # also where a value is NaN
            oc = objs[o, OC]
            near = oc / (hb_spread - half_b + math.sqrt(disc + spread)) * (1.0 - t_margin)
            if (disc - spread > 0.0 and cx - pu >= objs[o, BBX0] and cx + pu <= objs[o, BBX1]
                    and cy - pv >= objs[o, BBY0] and cy + pv <= objs[o, BBY1]):  # every sample ray hits it
                far = oc / (-hb_spread - half_b + math.sqrt(disc - spread)) * (1.0 + t_margin)
                if far < best_far:
                    others_near = min(others_near, best_near)
                    best = o
                    best_far = far
                    best_near = near
                    continue
            others_near = min(others_near, near)
        if best == SKY:
            return SKY if others_near == _NO_HIT else _UNSETTLED
        return best if best_far < others_near else _UNSETTLED

    # -------------------------------------------------------------- shading

    @jit
    def background_point(fx, fy, width, height, scale):
        """Where the background samples its noise for pixel position (fx, fy): (r_bg x_ndc, r_bg y_ndc)."""
        xn = 2.0 * fx / width - 1.0
        yn = 1.0 - 2.0 * fy / height
        return scale * xn, scale * yn

    @jit
    def noise_grey(n):
        """A noise value n as a grey value: 0.5 n + 0.5, clamped to [0, 1]."""
        return min(max(0.5 * n + 0.5, 0.0), 1.0)

    @jit
    def background(fx, fy, width, height, scale, kind):
        """Grey value 0.5 noise(r_bg x_ndc, r_bg y_ndc, 0) + 0.5 at pixel position (fx, fy)."""
        x, y = background_point(fx, fy, width, height, scale)
        return noise_grey(noise_z0(kind, x, y))

    @jit
    def power_bound(x, n):
        """An upper bound of x ** n for 0 <= x < 1 and n >= 1 (x ** min(floor(n), 1024) by squaring, with
        a margin over its rounding and underflow), else inf: a few products in place of a pow."""
        if not (x >= 0.0 and x < 1.0 and n >= 1.0):
            return math.inf
        k = np.int64(min(n, 1024.0))
        p = 1.0
        while k > 0:
            if k & 1:
                p *= x
            x *= x
            k >>= 1
        return p * (1.0 + 1e-12) + 1e-300

    @jit
    def to_byte(v):
        return np.uint8(math.floor(v * 255.0 + 0.5))

    @jit
    def put_backdrop(b, py, px, g, image, label, instance):
        """Write a pixel of the background (sky or ground): grey ``g``, label and instance 0."""
        image[b, py, px, 0] = g
        image[b, py, px, 1] = g
        image[b, py, px, 2] = g
        label[b, py, px] = 0
        instance[b, py, px] = 0

    @jit
    def lighting(o, t, dx, dy, dz, cam, objs, kind):
        """Point p = eye + t d on object o, its normal n, Phong's max(n.l, 0) and max(n.h, 0), and the texture."""
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
        # View-space normal (x right, y up, z towards the viewer), scaled by the noise scale.
        vx = nx * cam[RIGHT] + ny * cam[RIGHT + 1] + nz * cam[RIGHT + 2]
        vy = nx * cam[UP] + ny * cam[UP + 1] + nz * cam[UP + 2]
        vz = -(nx * cam[FWD] + ny * cam[FWD + 1] + nz * cam[FWD + 2])
        texture = surface_texture(objs, o, px, py, pz, vx, vy, vz, kind)
        return px, py, pz, nx, ny, nz, diffuse, spec_cos, texture

    @jit
    def shade(o, t, dx, dy, dz, cam, objs, kind, b, scene_start):
        """Phong colour (r, g, b) in [0, 1] of object o at eye + t d; ambient only where it is in shadow."""
        px, py, pz, nx, ny, nz, diffuse, spec_cos, texture = lighting(o, t, dx, dy, dz, cam, objs, kind)
        specular = spec_cos ** objs[o, NS]
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
    def colour_bytes(objs, o, f):
        return (to_byte(min(max(objs[o, COL_R] * f, 0.0), 1.0)), to_byte(min(max(objs[o, COL_G] * f, 0.0), 1.0)),
                to_byte(min(max(objs[o, COL_B] * f, 0.0), 1.0)))

    @jit
    def shade_bytes(o, t, dx, dy, dz, cam, objs, kind, b, scene_start):
        """The bytes of shade(...)'s colour, with the pow left out wherever they cannot depend on it.

        Without shadow, f = f0 + ks s with f0 = ka + kd diffuse texture and 0 <= s = spec_cos^ns <= u
        (power_bound), and every step from f to a byte is monotonic in f (rounded sums and products,
        clamps, floor): where f0 and f0 + ks u give the same bytes, so does the true f. Where diffuse > 0
        the shadow test runs first, as in shade(); where it is 0, a shadow only drops the specular term,
        so both outcomes lie in that interval and the (side-effect free) test is skipped with the pow.
        Otherwise the colour is shade()'s, from the same lighting terms.
        """
        px, py, pz, nx, ny, nz, diffuse, spec_cos, texture = lighting(o, t, dx, dy, dz, cam, objs, kind)
        ks = objs[o, KS]
        lit = diffuse > 0.0
        if lit and occluded(px + _SHADOW_OFFSET * nx, py + _SHADOW_OFFSET * ny, pz + _SHADOW_OFFSET * nz, cam, objs,
                            b, scene_start):
            return colour_bytes(objs, o, cam[KA] + objs[o, KD] * 0.0 * texture + ks * 0.0)
        f0 = cam[KA] + objs[o, KD] * diffuse * texture
        if (lit or diffuse == 0.0) and ks >= 0.0:  # lit and not in shadow, or unlit: f lies in [f0, f0 + ks u]
            u = power_bound(spec_cos, objs[o, NS])
            if u < 1.0:
                lo = colour_bytes(objs, o, f0)
                if lo == colour_bytes(objs, o, f0 + ks * u):
                    return lo
        specular = spec_cos ** objs[o, NS]
        if not lit and specular > 0.0 and occluded(px + _SHADOW_OFFSET * nx, py + _SHADOW_OFFSET * ny,
                                                   pz + _SHADOW_OFFSET * nz, cam, objs, b, scene_start):
            return colour_bytes(objs, o, cam[KA] + objs[o, KD] * 0.0 * texture + ks * 0.0)
        return colour_bytes(objs, o, f0 + ks * specular)

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
    def render_pixel(b, py, px, height, width, tile_size, tiles_x, tiles_per_scene, cam, objs,
                     tile_start, tile_objs, bg_scales, kind, pattern, ignore_edges, ignore_index, scene_start,
                     image, label, instance):
        """Render pixel (py, px) of scene b into image/label/instance[b, py, px] (``shade_pixel`` with
        the objects of the pixel's tile)."""
        tile = b * tiles_per_scene + (py // tile_size) * tiles_x + (px // tile_size)
        shade_pixel(b, py, px, tile_start[tile], tile_start[tile + 1], height, width, cam, objs, tile_objs,
                    bg_scales, kind, pattern, ignore_edges, ignore_index, scene_start, image, label, instance)

    @jit
    def shade_pixel(b, py, px, lo, hi, height, width, cam, objs, tile_objs, bg_scales, kind, pattern,
                    ignore_edges, ignore_index, scene_start, image, label, instance):
        """Render pixel (py, px) of scene b, whose tile lists objects tile_objs[lo:hi].

        Coverage: the pattern's S samples are cast against the objects of the pixel's tile. If all
        hit the same object (or none), the pixel is interior and is shaded once, at its centre.
        Otherwise it is an edge pixel: each sample is shaded and the colours averaged; its label is
        the samples' common class, or ignore_index where they disagree (if ignore_edges); its
        instance is the object seen through the pixel centre, unless the samples agree on a class
        the centre does not see (a sub-sample gap), when it is the first sample's object. So
        wherever the label is not ignore_index it is the class of the instance.
        """
        cx = px + 0.5
        cy = py + 0.5
        bg_scale = bg_scales[b]
        n_samples = pattern.shape[0]
        first = -2
        interior = True
        if not general and lo == hi:  # no object near the tile (and no ground in this build): all sky
            first = SKY
        elif not general and tile_objs[lo] < 0:  # every sample of the tile hits one object (pack.refine_tiles)
            first = -tile_objs[lo] - 1
        else:
            settled = _UNSETTLED
            if pixel_test:
                settled = settle_pixel(cx, cy, width, height, cam, objs, tile_objs, lo, hi)
            if settled != _UNSETTLED:
                first = settled
            else:
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
                put_backdrop(b, py, px, g, image, label, instance)
                return
            # The samples surround the centre and a projected ellipsoid is convex, so the centre
            # ray hits this object too; only a rounding miss falls back to the first sample.
            fx = cx
            fy = cy
            dx, dy, dz = ray_dir(fx, fy, width, height, cam)
            t = hit_from_eye(objs, first, dx, dy, dz, inverse_length(dx, dy, dz), cam)
            if t <= 0.0:
                fx = cx + pattern[0, 0]
                fy = cy + pattern[0, 1]
                dx, dy, dz = ray_dir(fx, fy, width, height, cam)
                t = hit_from_eye(objs, first, dx, dy, dz, inverse_length(dx, dy, dz), cam)
            r, g, bl = shade_bytes(first, t, dx, dy, dz, cam, objs, kind, b, scene_start)
            image[b, py, px, 0] = r
            image[b, py, px, 1] = g
            image[b, py, px, 2] = bl
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
        perlin=noises.perlin, sparse_convolution=noises.sparse_convolution, noise=noise, ray_dir=ray_dir,
        hit_ellipsoid=hit_ellipsoid, hit_from_eye=hit_from_eye, cast=cast, background=background, shade=shade,
        settle_pixel=settle_pixel, render_pixel=render_pixel, shade_pixel=shade_pixel,
        background_point=background_point, noise_grey=noise_grey, to_byte=to_byte, put_backdrop=put_backdrop,
        perlin_z0=noises.perlin_z0, perlin_axis=noises.perlin_axis, perlin_z0_at=noises.perlin_z0_at,
    )
