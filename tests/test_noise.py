"""The reference noise functions (the contract) and the kernels held to them."""

import math

import numpy as np
import pytest

from fakeballoons.noise import SC_IMPULSES, perlin, sparse_convolution
from fakeballoons.render import kernel_noise

GOLDEN_POINTS = np.array([[0.5, 0.0, 0.0], [0.3, 1.7, -2.2], [12.25, -7.5, 3.125],
                          [-41.9, 88.1, 0.77], [100.5, -100.25, 99.9]])
# Produced by:
#   np.set_printoptions(precision=17)
#   print(repr(perlin(GOLDEN_POINTS))); print(repr(sparse_convolution(GOLDEN_POINTS)))
GOLDEN_PERLIN = [0.25, 0.08893667952343026, 0.2639802545309067, -0.05563946118059417, 0.4179279609374964]
GOLDEN_SC = [-0.41410441921994595, -0.07119655317200775, 0.1438454936402529, -0.01455919702634618,
             0.00585067466184914]


# --- independent scalar versions, written from the noise definitions with Python ints ---------

def _perm(x):
    return (34 * x * x + x) % 289


def perlin_scalar(p):
    i = [math.floor(c) for c in p]
    f = [c - k for c, k in zip(p, i)]
    fade = [t * t * t * (t * (t * 6 - 15) + 10) for t in f]
    total = 0.0
    for c in [(a, b, d) for a in (0, 1) for b in (0, 1) for d in (0, 1)]:
        q = [i[a] + c[a] for a in range(3)]
        h = _perm(q[0] + _perm(q[1] + _perm(q[2])))
        k = h % 12
        s0, s1 = 1 - 2 * (k % 2), 1 - 2 * ((k // 2) % 2)
        g = (s0 if k < 8 else 0, s1 if k < 4 else (s0 if k >= 8 else 0), s1 if k >= 4 else 0)
        w = 1.0
        for a in range(3):
            w *= fade[a] if c[a] else 1 - fade[a]
        total += w * sum((f[a] - c[a]) * g[a] for a in range(3))
    return total


def sc_scalar(p):
    s = SC_IMPULSES
    amp = 0.8 * s ** (-1 / 3)
    i0 = [math.floor(c - 0.5) for c in p]
    total = 0.0
    for c in [(a, b, d) for a in (0, 1) for b in (0, 1) for d in (0, 1)]:
        q = [i0[a] + c[a] for a in range(3)]
        t = (4 * s * (q[0] + 1000 * q[1] + 576 * q[2])) % 65536
        for j in range(s):
            t = (3125 * t + 49) % 65536
            w = amp * t / 65536 * (1 if j < s / 2 else -1)
            xi = []
            for _ in range(3):
                t = (3125 * t + 49) % 65536
                xi.append(t / 65536)
            d2 = sum((q[a] + xi[a] - p[a]) ** 2 for a in range(3))
            total += w * max(0.0, 1 - 4 * d2) ** 3
    return total


# --- reference ----------------------------------------------------------------------------------

def test_golden_values():
    np.testing.assert_allclose(perlin(GOLDEN_POINTS), GOLDEN_PERLIN, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sparse_convolution(GOLDEN_POINTS), GOLDEN_SC, rtol=0, atol=1e-12)


def test_perlin_by_hand():
    # At (0.5, 0, 0) only the corners (0,0,0) and (1,0,0) have weight, 1/2 each. pi(0) = 0 gives
    # k = 0, g = (1, 1, 0), dot 0.5; pi(1) = 35 gives k = 11, g = (0, -1, -1), dot 0. Noise 0.25.
    assert perlin([0.5, 0.0, 0.0]) == pytest.approx(0.25, abs=1e-15)


def test_perlin_vanishes_on_the_lattice():
    grid = np.stack(np.meshgrid(*[np.arange(-3, 4)] * 3, indexing="ij"), -1).astype(float)
    assert np.all(perlin(grid) == 0.0)


@pytest.mark.parametrize("ref, scalar", [(perlin, perlin_scalar), (sparse_convolution, sc_scalar)])
def test_reference_equals_scalar_transcription(ref, scalar):
    pts = np.random.default_rng(1).uniform(-100, 100, (40, 3))
    np.testing.assert_allclose(ref(pts), [scalar(p) for p in pts], rtol=0, atol=1e-12)


@pytest.mark.parametrize("fn", [perlin, sparse_convolution])
def test_shapes_and_determinism(fn):
    pts = np.random.default_rng(2).uniform(-5, 5, (2, 3, 4, 3))
    out = fn(pts)
    assert out.shape == (2, 3, 4) and out.dtype == np.float64
    np.testing.assert_array_equal(out, fn(pts))
    np.testing.assert_array_equal(out.reshape(-1), fn(pts.reshape(-1, 3)))
    assert np.ndim(fn([1.5, 2.5, 3.5])) == 0
    assert fn(pts.tolist()).shape == (2, 3, 4)  # any array-like


@pytest.mark.parametrize("fn", [perlin, sparse_convolution])
@pytest.mark.parametrize("bad", [np.zeros((5, 2)), np.zeros(4), 3.0])
def test_bad_shapes(fn, bad):
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\)"):
        fn(bad)


@pytest.mark.parametrize("fn", [perlin, sparse_convolution])
def test_values_are_bounded_and_varied(fn):
    v = fn(np.random.default_rng(3).uniform(-50, 50, (20000, 3)))
    assert np.abs(v).max() < 1.5
    assert 0.1 < v.std() < 0.6


# --- kernels vs reference -------------------------------------------------------------------------

POINTS = np.random.default_rng(20221218).uniform(-100.0, 100.0, (10_000, 3))


@pytest.mark.parametrize("noise, ref", [("perlin", perlin), ("sc", sparse_convolution)])
def test_cpu_kernel_equals_reference(noise, ref):
    np.testing.assert_allclose(kernel_noise(POINTS, noise), ref(POINTS), rtol=0, atol=1e-4)


@pytest.mark.slow  # numba's CUDA simulator: seconds per kernel
@pytest.mark.parametrize("noise, ref", [("perlin", perlin), ("sc", sparse_convolution)])
def test_cuda_kernel_equals_reference(noise, ref):
    np.testing.assert_allclose(kernel_noise(POINTS, noise, device="cuda"), ref(POINTS), rtol=0, atol=1e-4)


def test_the_kernels_slice_z_0_is_perlin_at_z_0_from_its_axes():
    """perlin_z0 (backgrounds, the ground) equals perlin(x, y, 0) and so does perlin_z0_at from the
    two perlin_axis parts (the renderer's sky rows); on the lattice, halfway and far from it."""
    from fakeballoons.render import cpu

    k = cpu.report
    rng = np.random.default_rng(7)
    points = np.concatenate([rng.uniform(-300.0, 300.0, (2000, 2)), rng.integers(-600, 600, (200, 2)) / 2.0,
                             [[0.0, 0.0], [-0.0, 288.0], [289.0, -289.0], [1e-300, -1e-300], [9999.75, -9999.5]]])
    for x, y in points.tolist():
        want = k.perlin(x, y, 0.0)
        assert k.perlin_z0(x, y) == want, (x, y)
        assert k.perlin_z0_at(*k.perlin_axis(x), *k.perlin_axis(y)) == want, (x, y)


def test_kernel_noise_shapes_and_errors():
    from fakeballoons.errors import UserError

    assert kernel_noise(np.zeros((2, 5, 3)), "perlin").shape == (2, 5)
    with pytest.raises(UserError, match="noise must be one of"):
        kernel_noise(np.zeros((1, 3)), "simplex")
