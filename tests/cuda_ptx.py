"""Test helper: compile the CUDA kernels to PTX with numba-cuda's real compiler (NVVM), no GPU needed.

The simulator runs kernels as Python and would accept code CUDA cannot compile (a NumPy
allocation inside a device function, say); this catches it on machines without a GPU.
Run it in a process where NUMBA_ENABLE_CUDASIM is not set: :func:`run_without_simulator`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from types import SimpleNamespace
from unittest import mock

# The argument types the launchers pass: Python ints and bools, C-contiguous arrays; the instance
# map is uint16 in the simulator and its int16 view on a GPU (see fakeballoons/render/cuda.py).
RENDER_SIGNATURE = ("void(int64, int64, int64, int64, int64, float64[::1], float64[:, ::1], int64[::1], "
                    "int64[::1], float64[::1], int64, float64[:, ::1], boolean, int64, int64[::1], "
                    "uint8[:, :, :, ::1], uint8[:, :, ::1], {instance}[:, :, ::1])")
NOISE_SIGNATURE = "void(float64[:, ::1], int64, float64[::1])"


def run_without_simulator(code: str) -> str:
    """Run ``code`` in a fresh Python with numba's real CUDA target (a test process runs the
    simulator) and this folder on its path; its last line of output."""
    code = f"import sys\nsys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n" + code
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def compiling_for(cc: tuple[int, int]):
    """numba-cuda compiles device functions for the current device's compute capability; with no
    device, that lookup is pointed at ``cc`` inside this block (build the device functions in it)."""
    from numba.cuda import dispatcher

    with mock.patch.object(dispatcher, "get_current_device", lambda: SimpleNamespace(compute_capability=cc)):
        yield


def compile_ptx(cc: tuple[int, int] = (9, 0), instance: str = "int16",
                names: tuple[str, ...] = ("render", "render_general", "noise")) -> dict[str, str]:
    """PTX of the kernels ``names`` (render, its general build, noise) for compute capability ``cc``,
    on device functions built for this call alone."""
    from numba import cuda

    from fakeballoons.render.cuda import _noise_kernel_source, _render_kernel_source

    signature = RENDER_SIGNATURE.format(instance=instance)
    sources = {"render": lambda: (_render_kernel_source(False), signature),
               "render_general": lambda: (_render_kernel_source(True), signature),
               "noise": lambda: (_noise_kernel_source(), NOISE_SIGNATURE)}
    with compiling_for(cc):
        return {name: cuda.compile_ptx(*sources[name](), cc=cc)[0] for name in names}
