"""Render scenes to images, label maps and instance maps on the CPU or a CUDA GPU.

``render(scene, config)`` renders one scene; ``render_batch(scenes, config,
device="cuda")`` renders many in one kernel launch and leaves the result on the
GPU (as torch tensors when torch is installed), ready for a training loop.
"""

from __future__ import annotations

import collections
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from ..config import SceneConfig
from ..errors import UserError
from ..names import DEVICES
from ..scene import Scene
from . import (
    _cache,  # noqa: F401 - first: numba's cache must know the kernels' sources before they are defined
    cpu,
)
from .fields import NOISE_KINDS
from .pack import Packed, pack, pack_sampled, pack_scene_tables, refine_tiles, sampled_tables

__all__ = ["Batch", "Sample", "kernel_noise", "render", "render_batch", "render_sampled", "render_sampled_batches"]



@dataclass(frozen=True)
class Sample:
    """One rendered scene.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        label: (H, W) uint8; 0 background, 1..K class, ignore_index (255) on disputed edges.
        instance: (H, W) uint16; 0 background, object index + 1.
    """

    image: np.ndarray
    label: np.ndarray
    instance: np.ndarray


@dataclass(frozen=True)
class Batch:
    """Rendered scenes stacked: image (B, H, W, 3) uint8, label (B, H, W) uint8, instance (B, H, W) uint16.

    On ``device="cpu"`` these are NumPy arrays. On a real GPU they stay on the device: torch CUDA
    tensors on torch's current device, written by a kernel on torch's current stream (the instance
    map's dtype is torch.uint16, which has few operations: ``.view(torch.int16)`` holds the same
    bits). Under numba's CUDA simulator they are NumPy arrays.
    """

    image: Any
    label: Any
    instance: Any

    def __len__(self) -> int:
        return int(self.image.shape[0])

    def __getitem__(self, i: int) -> Sample:
        if isinstance(self.image, np.ndarray):
            return Sample(self.image[i], self.label[i], self.instance[i])
        from .cuda import to_host

        return Sample(to_host(self.image[i]), to_host(self.label[i]), to_host(self.instance[i]))


def _check_device(device: str) -> str:
    if device not in DEVICES:
        raise UserError(f"device must be one of {list(DEVICES)}, got {device!r}")
    return device


def render_batch(scenes: Sequence[Scene], config: SceneConfig, device: str = "cpu") -> Batch:
    """Render scenes that share one configuration in a single kernel launch."""
    _check_device(device)
    return render_packed(pack(list(scenes), config), device)


def render_sampled(config: SceneConfig, seed: int, indices: Sequence[int], device: str = "cpu") -> Batch:
    """Render scenes ``indices`` of the dataset with ``seed`` in one launch.

    The same pictures as ``render_batch([sample_scene(config, seed, i) for i in indices], config)``,
    sampled and packed as arrays without building Scene objects: the fast path for training on the fly.
    """
    _check_device(device)
    return render_packed(pack_sampled(config, seed, indices), device)


def render_sampled_batches(config: SceneConfig, seed: int, batches: Iterable[Sequence[int]], device: str = "cpu",
                           workers: int = 0, ahead: int = 2) -> Iterator[Batch]:
    """``render_sampled(config, seed, indices, device)`` for each ``indices`` of ``batches``, in order.

    With ``workers`` > 0 the sampling (Python, about 0.1 ms a scene, most of the host's work) runs
    in that many processes, ``ahead`` batches per process ahead of the one being rendered, and the
    packing (compiled) stays here, so the host keeps a GPU fed: one host thread samples and packs
    fewer Perlin scenes a second than an H200 renders. The processes start (spawned: numba's
    thread pool is not fork-safe) on the first batch and end when the iterator is exhausted or
    closed. Same batches as without workers.
    """
    _check_device(device)
    for packed in packed_batches(config, seed, batches, workers, ahead):
        yield render_packed(packed, device)


def packed_batches(config: SceneConfig, seed: int, batches: Iterable[Sequence[int]], workers: int = 0,
                   ahead: int = 2) -> Iterator[Packed]:
    """``pack_sampled(config, seed, indices)`` for each ``indices`` of ``batches``, in order, with
    the sampling in ``workers`` processes (0: here) and the packing here (a packed batch of 256
    scenes at 512x512 is 5 MB, ten times its object tables, and slow to send between processes);
    see :func:`render_sampled_batches`."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise UserError(f"workers must be an integer >= 0, got {workers!r}")
    if isinstance(ahead, bool) or not isinstance(ahead, int) or ahead < 1:
        raise UserError(f"ahead must be an integer >= 1, got {ahead!r}")
    if workers == 0:
        for indices in batches:
            yield pack_sampled(config, seed, indices)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    todo = iter(batches)
    pending: collections.deque = collections.deque()
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        def submit() -> None:
            for indices in todo:
                pending.append(pool.submit(sampled_tables, config, seed, list(indices)))
                return

        for _ in range(workers * ahead):
            submit()
        while pending:
            backgrounds, tables = pending.popleft().result()
            submit()
            yield pack_scene_tables(backgrounds, tables, config)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def render_packed(packed: Packed, device: str = "cpu") -> Batch:
    """Render a packed batch (from :mod:`.pack`) on ``device``."""
    if device == "cpu":
        return render_tile_lists(refine_tiles(packed))  # the report's kernel then skips certain casts
    from . import cuda

    return Batch(*cuda.render_packed(packed))


def render_tile_lists(packed: Packed) -> Batch:
    """Render a packed batch on the CPU from its tile lists as they are (``render_packed`` refines them
    first; tests and benchmarks compare both)."""
    b, h, w = packed.batch, packed.height, packed.width
    image = np.empty((b, h, w, 3), dtype=np.uint8)
    label = np.empty((b, h, w), dtype=np.uint8)
    instance = np.empty((b, h, w), dtype=np.uint16)
    if b:
        kernel = cpu.render_cpu_general if packed.general else cpu.render_cpu
        what = "general render" if packed.general else "render"
        _first_call(kernel, what, *packed.kernel_args(), image, label, instance)
    return Batch(image, label, instance)


def render(scene: Scene, config: SceneConfig, device: str = "cpu") -> Sample:
    """Render one scene.

    Args:
        scene: from :func:`fakeballoons.sample_scene` or one of the special scenes.
        config: image size, camera, light, noise function and edge handling.
        device: "cpu" (numba, all threads) or "cuda".

    Returns:
        Sample with image (H, W, 3) uint8, label (H, W) uint8 and instance (H, W) uint16, on the host.
    """
    return render_batch([scene], config, device)[0]  # Batch.__getitem__ brings GPU results to the host


def kernel_noise(points, noise: str, device: str = "cpu") -> np.ndarray:
    """Evaluate a noise function with the rendering kernel's own code (for tests and benchmarks).

    Args:
        points: array-like (..., 3).
        noise: "perlin" or "sc".
        device: "cpu" or "cuda".

    Returns:
        float64 array (...), to be equal to :mod:`fakeballoons.noise` within float rounding.
    """
    _check_device(device)
    if noise not in NOISE_KINDS:
        raise UserError(f"noise must be one of {list(NOISE_KINDS)}, got {noise!r}")
    p = np.asarray(points, dtype=np.float64)
    flat = np.ascontiguousarray(p.reshape(-1, 3))
    kind = NOISE_KINDS[noise]
    if device == "cpu":
        out = np.empty(flat.shape[0])
        _first_call(cpu.noise_cpu, "noise", flat, kind, out)
    else:
        from . import cuda

        out = cuda.noise_packed(flat, kind)
    return out.reshape(p.shape[:-1])


def _print_notice(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


#: Told, in a line, when a kernel's first call in a process has to compile it (numba's on-disk cache
#: holds no machine code of it for this CPU), and again when the compile is done. The command line
#: prints the lines; the viewer shows them on its page.
compile_notice: Callable[[str], None] = _print_notice


def _in_cache(kernel) -> bool:
    """Whether numba's on-disk cache holds machine code of ``kernel`` for this CPU (so that its first
    call only loads it). Reads numba's cache index; a numba whose cache cannot be read so is taken
    to hold it (nothing is said)."""
    try:
        magic = kernel.targetctx.codegen().magic_tuple()
        return any(key[1] == magic for key in kernel._cache._cache_file._load_index())
    except Exception:  # noqa: BLE001 - another numba's internals: stay silent rather than fail
        return True


def _first_call(kernel, what: str, *args):
    """``kernel(*args)``, saying through :data:`compile_notice` that it compiles first, if it does."""
    if kernel.signatures or _in_cache(kernel):  # in this process already, or a load from the cache
        return kernel(*args)
    compile_notice(f"compiling the {what} kernel for this CPU (once per install and numba version; "
                   "`fakeballoons warmup` does it ahead)...")
    start = time.perf_counter()
    result = kernel(*args)
    compile_notice(f"compiled the {what} kernel in {time.perf_counter() - start:.0f} s; later runs load it from "
                   "the cache")
    return result


#: What ``warm_up`` compiles, the longest compile first.
WARM_KERNELS = ("general render", "render", "noise")


def _warm_one(what: str) -> float:
    """Compile (or load) one kernel of :data:`WARM_KERNELS` by a first call; the seconds it took."""
    from ..codec import load_preset
    from ..scene import sample_scene

    start = time.perf_counter()
    if what == "noise":
        kernel_noise(np.zeros((1, 3)), "perlin")
    else:
        config = SceneConfig(height=16, width=16)
        if what == "general render":  # shapes, ground and shadows: the general kernel
            config = load_preset(SceneConfig, "ground").replace(height=16, width=16)
        render(sample_scene(config, 0, 0), config)
    return time.perf_counter() - start


def warm_up(processes: int | None = None) -> dict[str, float]:
    """Compile (or load from numba's cache) every CPU kernel: the render kernel and the general one
    (shapes, ground, shadows) and the noise kernel. Returns the seconds each took. After it, a new
    process's first picture only loads machine code from the cache.

    Where a kernel has to be compiled and there is more than one core (``processes``, default: the
    cores), the kernels compile side by side in that many processes, each writing numba's cache
    (whose files are replaced atomically), and this process then loads them from it."""
    import os

    cached = all(_in_cache(k) for k in (cpu.render_cpu, cpu.render_cpu_general, cpu.noise_cpu))
    n = min(len(WARM_KERNELS), processes or os.cpu_count() or 1)
    if cached or n < 2:
        return {what: _warm_one(what) for what in WARM_KERNELS}
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(n) as pool:
        times = dict(zip(WARM_KERNELS, pool.map(_warm_one, WARM_KERNELS, chunksize=1)))
    for what in WARM_KERNELS:  # loads, now that the cache holds them
        _warm_one(what)
    return times


def set_threads(n: int) -> None:
    """Number of CPU threads the kernels use (numba's thread pool): 1 up to the cores numba found."""
    limit = numba.config.NUMBA_NUM_THREADS
    if not 1 <= n <= limit:
        raise UserError(f"--threads must be from 1 to {limit} (the cores numba uses here), got {n}")
    numba.set_num_threads(n)
