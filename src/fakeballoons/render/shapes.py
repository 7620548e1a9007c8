"""Exact ray intersection and surface normals for six shape families, as device functions.

Every shape sits in its own object space: centred at the origin, its axis (where it has one) the
local y axis, sized by up to three floats (p0, p1, p2):

==  =========  ==================================================================================
0   ellipsoid  semi-axes (p0, p1, p2) along x, y, z
1   box        half-extents (p0, p1, p2)
2   cylinder   radius p0, half-height p1: capped, from y = -p1 to y = +p1
3   cone       base radius p0, half-height p1: base disk at y = -p1 (capped), apex at y = +p1
4   capsule    radius p0 around the core segment from (0, -p1, 0) to (0, +p1, 0)
5   torus      major radius p0 (core circle in the xz plane), minor (tube) radius p1, p0 > p1 > 0
==  =========  ==================================================================================

Unused parameters are ignored. ``build_shapes(jit)`` defines ``hit`` and ``normal`` with the given
decorator, as :func:`fakeballoons.render.kernels.build` does: ``numba.njit`` for the CPU,
``numba.cuda.jit(device=True)`` for CUDA, plain float64 scalar arithmetic either way. The NumPy
helpers ``bounding_radius``, ``support`` and ``validate_params`` are for the packer.

References: Inigo Quilez, https://iquilezles.org/articles/intersectors/ and his shadertoys (box
ld23DV, capped cylinder 4lcSRn, capped cone llcfRf, capsule Xt3SzX, ellipsoid MlsSzn, torus
4sBGDy). The convex shapes are written here as clipping of the line's interval rather than iq's
per-face code, and the torus quartic is solved by Descartes' factorisation (see ``line_torus``).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

_BIG = 1e300  # an unbounded end of a line interval; also "no root"
_NEWTON_QUARTIC = 2  # Newton steps polishing each torus root (quadratic convergence: 1e-5 -> 1e-20)


def build_shapes(jit, entry=None) -> SimpleNamespace:
    """Compile ``hit`` and ``normal`` (and their helpers) with ``jit``, a decorator for device functions.

    Args:
        jit: ``numba.njit(...)`` or ``numba.cuda.jit(device=True)``.
        entry: the decorator of ``hit`` and ``normal`` themselves (default ``jit``). The CPU renderer
            inlines the helpers into them (``jit`` with ``inline="always"``) but calls the two
            entry points (plain ``njit``): inlining them at every call site makes the kernel take
            minutes to compile, and nested calls of the helpers cost more than the arithmetic.

    Returns:
        A namespace with ``hit(kind, p0, p1, p2, ox, oy, oz, dx, dy, dz) -> t`` (smallest t > 0 of
        o + t d on the surface, -1.0 for a miss; d need not be unit length) and
        ``normal(kind, p0, p1, p2, px, py, pz) -> (nx, ny, nz)`` (unit outward normal at a surface
        point), all in object space, plus the helpers they call.
    """
    big = _BIG
    n_newton = _NEWTON_QUARTIC
    entry = entry or jit

    @jit
    def quad_le0(qa, qb, qc):
        """{t : qa t^2 + 2 qb t + qc <= 0} as two intervals (lo1, hi1, lo2, hi2); empty is lo > hi."""
        if qa == 0.0:  # exactly linear (a ray parallel to a cylinder axis or a cone generator)
            if qb == 0.0:
                return (-big, big, big, -big) if qc <= 0.0 else (big, -big, big, -big)
            t0 = -0.5 * qc / qb
            return (-big, t0, big, -big) if qb > 0.0 else (t0, big, big, -big)
        disc = qb * qb - qa * qc
        if disc < 0.0:  # no real root: the sign of qa decides everything (grazing rays land here or below)
            return (big, -big, big, -big) if qa > 0.0 else (-big, big, big, -big)
        # The cancellation-free pair of roots (Numerical Recipes 5.6): q / qa and qc / q.
        q = -(qb + math.copysign(math.sqrt(disc), qb))
        if q == 0.0:  # qb == disc == 0, so qc == 0: a double root at 0
            t1 = 0.0
            t2 = 0.0
        else:
            t1 = min(q / qa, qc / q)
            t2 = max(q / qa, qc / q)
        if qa > 0.0:
            return (t1, t2, big, -big)
        return (-big, t1, t2, big)  # qa < 0: outside the roots (both nappes of a double cone)

    @jit
    def slab(o, u, h):
        """{t : |o + t u| <= h} as (lo, hi); empty is lo > hi. No division by a zero u."""
        if u == 0.0:
            return (-big, big) if abs(o) <= h else (big, -big)
        iu = 1.0 / u  # one division instead of two
        t1 = (-h - o) * iu
        t2 = (h - o) * iu
        return (min(t1, t2), max(t1, t2))

    @jit
    def hull(lo, hi, lo2, hi2):
        """Smallest interval holding [lo, hi] and [lo2, hi2], skipping empty ones."""
        if lo2 > hi2:
            return lo, hi
        if lo > hi:
            return lo2, hi2
        return min(lo, lo2), max(hi, hi2)

    @jit
    def line_ellipsoid(a, b, c, ox, oy, oz, ux, uy, uz):
        # Scaled to the unit sphere: |o / axes + t u / axes|^2 <= 1.
        ex, ey, ez, fx, fy, fz = ux / a, uy / b, uz / c, ox / a, oy / b, oz / c
        lo, hi, _, _ = quad_le0(ex * ex + ey * ey + ez * ez, fx * ex + fy * ey + fz * ez,
                                fx * fx + fy * fy + fz * fz - 1.0)
        return lo, hi

    @jit
    def line_box(a, b, c, ox, oy, oz, ux, uy, uz):
        lo, hi = slab(ox, ux, a)
        lo2, hi2 = slab(oy, uy, b)
        lo3, hi3 = slab(oz, uz, c)
        return max(max(lo, lo2), lo3), min(min(hi, hi2), hi3)

    @jit
    def line_cylinder(r, h, ox, oy, oz, ux, uy, uz):
        # Infinite cylinder x^2 + z^2 <= r^2 (qa >= 0: one interval), then the slab |y| <= h.
        lo, hi, _, _ = quad_le0(ux * ux + uz * uz, ox * ux + oz * uz, ox * ox + oz * oz - r * r)
        lo2, hi2 = slab(oy, uy, h)
        return max(lo, lo2), min(hi, hi2)

    @jit
    def line_cone(rb, h, ox, oy, oz, ux, uy, uz):
        # Double cone x^2 + z^2 <= k^2 w^2 with w = h - y, k = rb / (2h), then the slab |y| <= h. The
        # slab meets the lower nappe (w <= 0) only at the apex, so the slab-clipped pieces of the two
        # intervals are both pieces of the (convex) capped cone and their hull is the answer.
        k2 = (rb / (2.0 * h)) ** 2
        wo = h - oy
        lo1, hi1, lo2, hi2 = quad_le0(ux * ux + uz * uz - k2 * uy * uy, ox * ux + oz * uz + k2 * wo * uy,
                                      ox * ox + oz * oz - k2 * wo * wo)
        s0, s1 = slab(oy, uy, h)
        return hull(max(lo1, s0), min(hi1, s1), max(lo2, s0), min(hi2, s1))

    @jit
    def line_capsule(r, h, ox, oy, oz, ux, uy, uz):
        # The capsule is convex: the union of cylinder and end spheres meets a line in one interval,
        # the hull of the three pieces.
        lo, hi = line_cylinder(r, h, ox, oy, oz, ux, uy, uz)
        uu = ux * ux + uy * uy + uz * uz
        xz = ox * ox + oz * oz
        rr = r * r
        cy = oy - h  # top sphere
        lo2, hi2, _, _ = quad_le0(uu, ox * ux + cy * uy + oz * uz, xz + cy * cy - rr)
        lo, hi = hull(lo, hi, lo2, hi2)
        cy = oy + h  # bottom sphere
        lo2, hi2, _, _ = quad_le0(uu, ox * ux + cy * uy + oz * uz, xz + cy * cy - rr)
        return hull(lo, hi, lo2, hi2)

    @jit
    def quartic_root(t, a3, a2, a1, a0, max_step):
        """Polish a root of t^4 + a3 t^3 + a2 t^2 + a1 t + a0 by Newton steps no longer than max_step.

        The closed form is only good to ~sqrt(eps) near double roots, and its resolvent root can
        lose digits; Newton restores full precision. The step bound keeps a spurious root (a
        near-tangent complex pair reported as real) from jumping off to an unrelated place.
        """
        for _ in range(n_newton):
            f = (((t + a3) * t + a2) * t + a1) * t + a0
            fp = ((4.0 * t + 3.0 * a3) * t + 2.0 * a2) * t + a1
            if fp == 0.0:
                break
            step = f / fp
            if abs(step) > max_step:
                break
            t -= step
        return t

    @jit
    def keep_smaller(t, best, tmin):
        return t if tmin < t < best else best

    @jit
    def line_torus(big_r, small_r, ox, oy, oz, ux, uy, uz, tmin):
        """Smallest root t > tmin of the ray with the torus (unit u), or ``big``.

        Quartic (|p|^2 + R^2 - r^2)^2 = 4 R^2 (px^2 + pz^2) along p = o + t u, as in iq's iTorus but
        solved by Descartes' factorisation into two real quadratics, in units of R + r so that every
        coefficient is O(1) whatever the object size, and from an origin near the centre.
        """
        sc = 1.0 / (big_r + small_r)
        rr = small_r * sc
        big_r2 = (big_r * sc) ** 2
        ox, oy, oz, tmin = ox * sc, oy * sc, oz * sc, tmin * sc
        m = ox * ox + oy * oy + oz * oz
        n = ox * ux + oy * uy + oz * uz  # ~0: hit() starts rays at their closest point to the centre
        h = n * n - m + 1.0
        if h <= 0.0:  # the bounding sphere (radius 1 here) missed
            return big
        h = math.sqrt(h)
        if h - n <= tmin:  # ... or lies behind
            return big
        # Every point of the torus has |y| <= r and rho >= R - r: a ray whose stretch inside the
        # sphere and the slab |y| <= r misses the slab or stays in the hole (rho < R - r; rho^2 is
        # convex along the ray, so its largest value is at an end) cannot hit. Cheap, and exact.
        lo, hi = slab(oy, uy, rr)
        lo = max(max(lo, -n - h), tmin)
        hi = min(hi, h - n)
        if lo > hi:
            return big
        hole = (big_r * sc - rr) ** 2 * (1.0 - 1e-12)
        xa, za, xb, zb = ox + lo * ux, oz + lo * uz, ox + hi * ux, oz + hi * uz
        if xa * xa + za * za < hole and xb * xb + zb * zb < hole:
            return big
        k = m + big_r2 - rr * rr
        a3 = 4.0 * n
        a2 = 4.0 * n * n + 2.0 * k - 4.0 * big_r2 * (ux * ux + uz * uz)
        a1 = 4.0 * n * k - 8.0 * big_r2 * (ox * ux + oz * uz)
        a0 = k * k - 4.0 * big_r2 * (ox * ox + oz * oz)
        # Depressed quartic x^4 + p x^2 + q x + r0 in x = t + n.
        p = a2 - 6.0 * n * n
        q = a1 - 2.0 * n * a2 + 8.0 * n * n * n
        r0 = a0 - n * a1 + n * n * a2 - 3.0 * n * n * n * n
        # Descartes: x^4 + p x^2 + q x + r0 = (x^2 + a x + b)(x^2 - a x + c) with z = a^2 a root of the
        # resolvent z^3 + 2p z^2 + (p^2 - 4 r0) z - q^2. It is -q^2 <= 0 at 0, so a root z >= 0 exists,
        # and any such root gives real factors; take the largest.
        c2 = 2.0 * p
        c1 = p * p - 4.0 * r0
        c0 = -q * q
        pp = c1 - c2 * c2 / 3.0  # depressed cubic y^3 + pp y + qq, z = y - c2 / 3
        qq = (2.0 * c2 * c2 * c2 / 27.0) - c2 * c1 / 3.0 + c0
        disc = 0.25 * qq * qq + pp * pp * pp / 27.0
        if disc < 0.0:  # three real roots (pp < 0): the trigonometric form, k = 0 is the largest
            s = math.sqrt(-pp / 3.0)
            z = 2.0 * s * math.cos(math.acos(min(max(-0.5 * qq / (s * s * s), -1.0), 1.0)) / 3.0) - c2 / 3.0
        else:  # one real root (Cardano, the cube root taken where nothing cancels)
            w = -0.5 * qq - math.copysign(math.sqrt(disc), qq)
            cr = math.copysign(abs(w) ** (1.0 / 3.0), w)
            y = cr - pp / (3.0 * cr) if cr != 0.0 else 0.0
            z = y - c2 / 3.0
            if z < 0.0:  # disc ~ 0 by rounding: the root we need is the (near) double one at -y/2
                z = -0.5 * y - c2 / 3.0
        for _ in range(2):  # polish z on the resolvent, keeping only steps that reduce it
            g = ((z + c2) * z + c1) * z + c0
            gp = (3.0 * z + 2.0 * c2) * z + c1
            if gp == 0.0:
                break
            z2 = z - g / gp
            if abs(((z2 + c2) * z2 + c1) * z2 + c0) >= abs(g):
                break
            z = z2
        z = max(z, 0.0)
        a = math.sqrt(z)
        # c - b is q / a, or sign(q) sqrt(e2) with e2 = (p + z)^2 - 4 r0: the same number when z solves
        # the resolvent. z and e2 carry absolute errors ~eps, so q / a is the better conditioned when
        # z > e2 and sqrt(e2) otherwise; a ray through the axis (q = 0, z = 0) needs the latter.
        e2 = (p + z) * (p + z) - 4.0 * r0
        dlt = q / a if z > e2 else math.copysign(math.sqrt(max(e2, 0.0)), q)
        b = 0.5 * (p + z - dlt)
        c = 0.5 * (p + z + dlt)
        best = big
        max_step = 0.5 * rr
        # Each real factor's smaller root is polished first; the larger only matters when the
        # smaller lies behind the start (a ray from inside the tube, or from inside the hole).
        d1 = z - 4.0 * b
        if d1 >= 0.0:
            d1 = math.sqrt(d1)
            t = quartic_root(0.5 * (-a - d1) - n, a3, a2, a1, a0, max_step)
            if t <= tmin:
                t = quartic_root(0.5 * (-a + d1) - n, a3, a2, a1, a0, max_step)
            best = keep_smaller(t, best, tmin)
        d2 = z - 4.0 * c
        if d2 >= 0.0:
            d2 = math.sqrt(d2)
            t = quartic_root(0.5 * (a - d2) - n, a3, a2, a1, a0, max_step)
            if t <= tmin:
                t = quartic_root(0.5 * (a + d2) - n, a3, a2, a1, a0, max_step)
            best = keep_smaller(t, best, tmin)
        return best if best == big else best / sc

    @jit
    def from_closest(kind, p0, p1, p2, s, cx, cy, cz, ux, uy, uz):
        """``hit_unit``'s answer once its sphere test passed: c is the ray's point closest to the
        centre, at ray parameter s (the ray is o + t u = c + (t - s) u)."""
        if kind == 5:
            tp = line_torus(p0, p1, cx, cy, cz, ux, uy, uz, -s)
        else:
            if kind == 0:
                lo, hi = line_ellipsoid(p0, p1, p2, cx, cy, cz, ux, uy, uz)
            elif kind == 1:
                lo, hi = line_box(p0, p1, p2, cx, cy, cz, ux, uy, uz)
            elif kind == 2:
                lo, hi = line_cylinder(p0, p1, cx, cy, cz, ux, uy, uz)
            elif kind == 3:
                lo, hi = line_cone(p0, p1, cx, cy, cz, ux, uy, uz)
            else:
                lo, hi = line_capsule(p0, p1, cx, cy, cz, ux, uy, uz)
            tp = lo if lo > -s else hi  # entry, or the exit of a ray that starts inside
            if lo > hi or tp <= -s:
                tp = big
        if tp >= big:
            return -1.0
        t = tp + s
        return t if t > 0.0 else -1.0

    @jit
    def misses_sphere(s, gap):
        """The bounding-sphere test: gap = radius^2 - |c|^2 at the closest point c, at ray parameter s."""
        return gap < 0.0 or (s <= 0.0 and gap <= s * s)  # the line passes the sphere, or it lies behind

    @entry
    def hit_unit(kind, p0, p1, p2, radius, ox, oy, oz, ux, uy, uz):
        """``hit`` for a unit direction u, with the shape's bounding-sphere ``radius``: a ray that
        misses the sphere returns -1.0 before any shape's own test (the renderer's fast reject)."""
        s = -(ox * ux + oy * uy + oz * uz)
        cx, cy, cz = ox + s * ux, oy + s * uy, oz + s * uz
        if misses_sphere(s, radius * radius - (cx * cx + cy * cy + cz * cz)):
            return -1.0
        return from_closest(kind, p0, p1, p2, s, cx, cy, cz, ux, uy, uz)

    @entry
    def hit_past_sphere(kind, p0, p1, p2, s, ox, oy, oz, ux, uy, uz):
        """``hit_unit`` for a ray the caller has already passed through ``misses_sphere`` (the
        renderer does it in world space from per-object constants); s = -o.u."""
        return from_closest(kind, p0, p1, p2, s, ox + s * ux, oy + s * uy, oz + s * uz, ux, uy, uz)

    @entry
    def hit(kind, p0, p1, p2, ox, oy, oz, dx, dy, dz):
        """Smallest t > 0 with o + t d on the surface of shape ``kind``, or -1.0 for a miss.

        The ray is first rewritten with a unit direction u from c, its point closest to the centre:
        o + t d = c + t' u with t = (t' + s) / |d|, s = -o.u. Every shape then solves a well-scaled
        problem near the origin however far the camera is (measured from 100 bounding radii: worst
        relative error in t 1.5e-15 this way, 1.5e-12 for the quadrics and 1.5e-8 for the torus
        solved from the camera itself). Convex shapes give the line's interval inside the solid,
        [lo, hi]: the hit is lo, or hi for a ray that starts inside (lo <= -s < hi).
        """
        dd = math.sqrt(dx * dx + dy * dy + dz * dz)
        if not dd > 0.0:
            return -1.0
        t = hit_unit(kind, p0, p1, p2, big, ox, oy, oz, dx / dd, dy / dd, dz / dd)
        return t / dd if t > 0.0 else -1.0

    @jit
    def unit(nx, ny, nz):
        ln = math.sqrt(nx * nx + ny * ny + nz * nz)
        if ln == 0.0:  # only off the surface (the centre of an ellipsoid, a torus axis point)
            return 0.0, 1.0, 0.0
        return nx / ln, ny / ln, nz / ln

    @entry
    def normal(kind, p0, p1, p2, px, py, pz):
        """Unit outward normal of shape ``kind`` at the surface point p (object space)."""
        if kind == 0:  # gradient of |p / axes|^2
            return unit(px / (p0 * p0), py / (p1 * p1), pz / (p2 * p2))
        if kind == 1:  # the face whose |p_i| / extent_i is largest (ties: x before y before z)
            ax, ay, az = abs(px) / p0, abs(py) / p1, abs(pz) / p2
            if ax >= ay and ax >= az:
                return math.copysign(1.0, px), 0.0, 0.0
            if ay >= az:
                return 0.0, math.copysign(1.0, py), 0.0
            return 0.0, 0.0, math.copysign(1.0, pz)
        rho = math.sqrt(px * px + pz * pz)
        if kind == 2:
            # The nearer of cap and side, i.e. the face whose signed distance is larger (the SDF's
            # gradient). On the surface one of the two is 0 to rounding and the other <= 0, so this
            # is "cap where |y| is at the cap" with a tolerance of exactly the rounding error.
            if abs(py) - p1 >= rho - p0 or rho == 0.0:
                return 0.0, math.copysign(1.0, py), 0.0
            return px / rho, 0.0, pz / rho
        if kind == 3:
            # Lateral surface: the line 2h rho + R (y - h) = 0 in the (rho, y) half-plane; same rule.
            ln = math.sqrt(4.0 * p1 * p1 + p0 * p0)
            if -p1 - py >= (2.0 * p1 * rho + p0 * (py - p1)) / ln:
                return 0.0, -1.0, 0.0
            if rho == 0.0:  # the apex
                return 0.0, 1.0, 0.0
            g = 2.0 * p1 / (rho * ln)
            return px * g, p0 / ln, pz * g
        if kind == 4:  # away from the nearest point of the core segment
            return unit(px, py - min(max(py, -p1), p1), pz)
        # Torus: away from the nearest point of the core circle.
        if rho == 0.0:
            return 0.0, math.copysign(1.0, py), 0.0
        f = p0 / rho
        return unit(px - f * px, py, pz - f * pz)

    return SimpleNamespace(hit=hit, hit_unit=hit_unit, hit_past_sphere=hit_past_sphere, misses_sphere=misses_sphere,
                           normal=normal, quad_le0=quad_le0, slab=slab, line_torus=line_torus)
