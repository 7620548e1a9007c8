"""The CUDA target: the same kernel source compiled with ``numba.cuda.jit(device=True)``.

Imported lazily, on the first ``device="cuda"`` call. On a machine without a
GPU, set ``NUMBA_ENABLE_CUDASIM=1`` before anything imports numba.cuda and the
kernels run in numba's CUDA simulator (slow, for tests on tiny images).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

# numba-cuda (0.30.4 and earlier) registers an overload of np.row_stack when it compiles its first
# kernel; NumPy 2.5 removed that alias of np.vstack, so every compile failed with an AttributeError
# (seen on a GPU machine with numpy 2.5.2). Give it back the alias it expects, before numba.cuda loads.
if not hasattr(np, "row_stack"):
    np.row_stack = np.vstack

from numba import cuda  # noqa: E402  (after the alias above) a module global: the simulator swaps this name inside kernels
from numba.core.errors import NumbaPerformanceWarning

from ..errors import UserError
from .pack import Packed


def _render_kernel_source(general: bool):
    """The render kernel as a Python function calling a fresh CUDA build of the device functions."""
    from .kernels import build

    render_pixel = build(cuda.jit(device=True), general=general).render_pixel

    def render_kernel(height, width, tile_size, tiles_x, tiles_per_scene, cam, objs, tile_start,
                      tile_objs, bg_scales, kind, pattern, ignore_edges, ignore_index, scene_start, image, label,
                      instance):
        px, py = cuda.grid(2)
        b = cuda.blockIdx.z
        if px < width and py < height:
            render_pixel(b, py, px, height, width, tile_size, tiles_x, tiles_per_scene, cam, objs,
                         tile_start, tile_objs, bg_scales, kind, pattern, ignore_edges, ignore_index, scene_start,
                         image, label, instance)

    return render_kernel


def _noise_kernel_source():
    from .kernels import build

    noise = build(cuda.jit(device=True)).noise

    def noise_kernel(points, kind, out):
        i = cuda.grid(1)
        if i < points.shape[0]:
            out[i] = noise(kind, points[i, 0], points[i, 1], points[i, 2])

    return noise_kernel


def _available() -> None:
    if not cuda.is_available():
        raise UserError("device 'cuda' was asked for but no CUDA GPU is available "
                        "(use --device cpu, or NUMBA_ENABLE_CUDASIM=1 for the simulator)")


@functools.cache
def _render_kernel(general: bool):
    _available()
    return cuda.jit(_render_kernel_source(general))


@functools.cache
def _noise_kernel():
    _available()
    return cuda.jit(_noise_kernel_source())


def simulated() -> bool:
    """True when numba's CUDA simulator stands in for a GPU."""
    from numba import config

    return bool(config.ENABLE_CUDASIM)


_BLOCK = (16, 8)
_MAX_GRID_Z = 65535  # CUDA's limit on gridDim.z: one block layer per scene


def _host_inputs(packed: Packed) -> list:
    """The kernel's input arguments; numba cannot take a zero-size device array of these shapes."""
    args = list(packed.kernel_args())
    if packed.objs.shape[0] == 0:
        args[6] = np.zeros((1, packed.objs.shape[1]))
    if packed.tile_objs.shape[0] == 0:
        args[8] = np.zeros(1, dtype=np.int64)
    return args


def _launch(render_kernel, packed: Packed, inputs: list, image, label, instance, stream=0) -> None:
    grid = (-(-packed.width // _BLOCK[0]), -(-packed.height // _BLOCK[1]), packed.batch)
    render_kernel[grid, _BLOCK, stream](*inputs, image, label, instance)


def render_packed(packed: Packed):
    """Render a packed batch on the GPU: (image, label, instance), (B, H, W, 3) uint8, (B, H, W) uint8
    and (B, H, W) uint16.

    On a GPU these are torch CUDA tensors on torch's current device, filled by a kernel queued on
    torch's current stream: nothing waits for the GPU, inputs go up through pinned memory, and the
    memory comes from torch's caching allocator, so the next batch's sampling and packing overlap
    this one's rendering, and ``torch.cuda.set_device(LOCAL_RANK)`` picks the GPU under torchrun.
    Both are per thread: a thread that never set its device renders on GPU 0, and a consumer on
    another stream must ``wait_stream`` the rendering one. Under numba's CUDA simulator they are
    NumPy arrays.
    """
    render_kernel = _render_kernel(packed.general)
    b, h, w = packed.batch, packed.height, packed.width
    if b > _MAX_GRID_Z:
        raise UserError(f"a CUDA launch renders at most {_MAX_GRID_Z} scenes (grid z), got {b}; "
                        "render in smaller batches")
    if simulated():
        image = cuda.device_array((b, h, w, 3), dtype=np.uint8)
        label = cuda.device_array((b, h, w), dtype=np.uint8)
        instance = cuda.device_array((b, h, w), dtype=np.uint16)
        if b:
            _launch(render_kernel, packed, [cuda.to_device(a) if isinstance(a, np.ndarray) else a
                                            for a in _host_inputs(packed)], image, label, instance)
        return image.copy_to_host(), label.copy_to_host(), instance.copy_to_host()

    import torch

    device = torch.device("cuda", torch.cuda.current_device())
    image = torch.empty((b, h, w, 3), dtype=torch.uint8, device=device)
    label = torch.empty((b, h, w), dtype=torch.uint8, device=device)
    instance = torch.empty((b, h, w), dtype=torch.uint16, device=device)
    if b == 0:
        return image, label, instance
    stream = torch.cuda.current_stream(device)
    with cuda.gpus[device.index]:  # numba's context on torch's device, not numba's default device 0
        view = lambda t: cuda.as_cuda_array(t, sync=False)  # noqa: E731 - zero-copy
        inputs = [view(torch.from_numpy(a).pin_memory().to(device, non_blocking=True))
                  if isinstance(a, np.ndarray) else a for a in _host_inputs(packed)]
        numba_stream = cuda.external_stream(stream.cuda_stream) if stream.cuda_stream else cuda.default_stream()
        # The instance map goes in as int16, the same bits: torch versions differ in whether
        # uint16 tensors export __cuda_array_interface__.
        with warnings.catch_warnings():  # small images make grids under 128 blocks, by design
            warnings.simplefilter("ignore", NumbaPerformanceWarning)
            _launch(render_kernel, packed, inputs, view(image), view(label), view(instance.view(torch.int16)),
                    numba_stream)
    return image, label, instance


def to_host(array) -> np.ndarray:
    """A result of :func:`render_packed` as a NumPy array."""
    if isinstance(array, np.ndarray):
        return array
    import torch

    if array.dtype == torch.uint16:  # few operations on uint16 tensors; the int16 view holds the same bits
        return array.view(torch.int16).cpu().numpy().view(np.uint16)
    return array.cpu().numpy()


def noise_packed(points: np.ndarray, kind: int) -> np.ndarray:
    """Evaluate the kernel noise at points (N, 3) on the GPU; returns a host array (N,)."""
    noise_kernel = _noise_kernel()
    n = points.shape[0]
    out = cuda.device_array(n, dtype=np.float64)
    if n:
        noise_kernel[-(-n // 128), 128](cuda.to_device(points), kind, out)
    return out.copy_to_host()
