"""The CUDA target: the same kernel source compiled with ``numba.cuda.jit(device=True)``.

Imported lazily, on the first ``device="cuda"`` call. On a machine without a
GPU, set ``NUMBA_ENABLE_CUDASIM=1`` before anything imports numba.cuda and the
kernels run in numba's CUDA simulator (slow, for tests on tiny images).
"""

from __future__ import annotations

import functools

import numpy as np
from numba import cuda  # a module global: the simulator swaps this name inside kernels

from ..errors import UserError
from .pack import Packed


@functools.cache
def _kernels():
    if not cuda.is_available():
        raise UserError("device 'cuda' was asked for but no CUDA GPU is available "
                        "(use --device cpu, or NUMBA_ENABLE_CUDASIM=1 for the simulator)")
    from .kernels import build

    k = build(cuda.jit(device=True))
    render_pixel = k.render_pixel
    noise = k.noise

    @cuda.jit
    def render_kernel(height, width, tile_size, tiles_x, tiles_per_scene, cam, objs, tile_start,
                      tile_objs, bg_scales, kind, pattern, ignore_edges, ignore_index, image, label,
                      instance):
        px, py = cuda.grid(2)
        b = cuda.blockIdx.z
        if px < width and py < height:
            render_pixel(b, py, px, height, width, tile_size, tiles_x, tiles_per_scene, cam, objs,
                         tile_start, tile_objs, bg_scales, kind, pattern, ignore_edges, ignore_index,
                         image, label, instance)

    @cuda.jit
    def noise_kernel(points, kind, out):
        i = cuda.grid(1)
        if i < points.shape[0]:
            out[i] = noise(kind, points[i, 0], points[i, 1], points[i, 2])

    return cuda, render_kernel, noise_kernel


def simulated() -> bool:
    """True when numba's CUDA simulator stands in for a GPU."""
    from numba import config

    return bool(config.ENABLE_CUDASIM)


_BLOCK = (16, 8)


def render_packed(packed: Packed):
    """Render a packed batch on the GPU; returns device arrays (image, label, instance)."""
    cuda, render_kernel, _ = _kernels()
    b, h, w = packed.batch, packed.height, packed.width
    image = cuda.device_array((b, h, w, 3), dtype=np.uint8)
    label = cuda.device_array((b, h, w), dtype=np.uint8)
    instance = cuda.device_array((b, h, w), dtype=np.uint16)
    if b == 0:
        return image, label, instance
    args = [cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in packed.kernel_args()]
    if packed.objs.shape[0] == 0:  # numba cannot take a zero-size device array of this shape
        args[6] = cuda.to_device(np.zeros((1, packed.objs.shape[1])))
    if packed.tile_objs.shape[0] == 0:
        args[8] = cuda.to_device(np.zeros(1, dtype=np.int64))
    grid = (-(-w // _BLOCK[0]), -(-h // _BLOCK[1]), b)
    render_kernel[grid, _BLOCK](*args, image, label, instance)
    return image, label, instance


def noise_packed(points: np.ndarray, kind: int) -> np.ndarray:
    """Evaluate the kernel noise at points (N, 3) on the GPU; returns a host array (N,)."""
    cuda, _, noise_kernel = _kernels()
    n = points.shape[0]
    out = cuda.device_array(n, dtype=np.float64)
    if n:
        noise_kernel[-(-n // 128), 128](cuda.to_device(points), kind, out)
    return out.copy_to_host()
