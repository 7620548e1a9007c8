"""Test helper: compile the CUDA kernels to PTX with numba-cuda's real compiler (NVVM), no GPU needed.

The simulator runs kernels as Python and would accept code CUDA cannot compile (a NumPy
allocation inside a device function, say); this catches it on machines without a GPU.
Run it in a process where NUMBA_ENABLE_CUDASIM is not set.
"""

from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

# The argument types the launchers pass: Python ints and bools, C-contiguous arrays; the instance
# map is uint16 in the simulator and its int16 view on a GPU (see fakeballoons/render/cuda.py).
RENDER_SIGNATURE = ("void(int64, int64, int64, int64, int64, float64[::1], float64[:, ::1], int64[::1], "
                    "int64[::1], float64[::1], int64, float64[:, ::1], boolean, int64, int64[::1], "
                    "uint8[:, :, :, ::1], uint8[:, :, ::1], {instance}[:, :, ::1])")
NOISE_SIGNATURE = "void(float64[:, ::1], int64, float64[::1])"


def compile_ptx(cc: tuple[int, int] = (9, 0), instance: str = "int16") -> dict[str, str]:
    """PTX of the kernels (render, its general build, noise) for compute capability ``cc``.

    numba-cuda compiles device functions for the current device's compute capability; with no
    device, that lookup is pointed at ``cc`` while this runs, on device functions built for this
    call alone.
    """
    from numba import cuda
    from numba.cuda import dispatcher

    from fakeballoons.render.cuda import _noise_kernel_source, _render_kernel_source

    signature = RENDER_SIGNATURE.format(instance=instance)
    with mock.patch.object(dispatcher, "get_current_device", lambda: SimpleNamespace(compute_capability=cc)):
        return {"render": cuda.compile_ptx(_render_kernel_source(False), signature, cc=cc)[0],
                "render_general": cuda.compile_ptx(_render_kernel_source(True), signature, cc=cc)[0],
                "noise": cuda.compile_ptx(_noise_kernel_source(), NOISE_SIGNATURE, cc=cc)[0]}
