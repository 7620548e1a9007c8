"""Render scenes to images, label maps and instance maps on the CPU or a CUDA GPU.

``render(scene, config)`` renders one scene; ``render_batch(scenes, config,
device="cuda")`` renders many in one kernel launch and leaves the result on the
GPU (as torch tensors when torch is installed), ready for a training loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numba
import numpy as np

from ..config import SceneConfig
from ..errors import UserError
from ..scene import Scene
from . import kernels
from .pack import pack

__all__ = ["Batch", "Sample", "kernel_noise", "render", "render_batch"]

DEVICES = ("cpu", "cuda")


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
    tensors sharing the kernel's memory (numba device arrays if torch is not installed). Under
    numba's CUDA simulator they are NumPy arrays.
    """

    image: Any
    label: Any
    instance: Any

    def __len__(self) -> int:
        return int(self.image.shape[0])

    def __getitem__(self, i: int) -> Sample:
        return Sample(np.asarray(self.image[i]), np.asarray(self.label[i]), np.asarray(self.instance[i]))


def _check_device(device: str) -> str:
    if device not in DEVICES:
        raise UserError(f"device must be one of {list(DEVICES)}, got {device!r}")
    return device


def render_batch(scenes: Sequence[Scene], config: SceneConfig, device: str = "cpu") -> Batch:
    """Render scenes that share one configuration in a single kernel launch."""
    _check_device(device)
    packed = pack(list(scenes), config)
    b, h, w = packed.batch, packed.height, packed.width
    if device == "cpu":
        image = np.empty((b, h, w, 3), dtype=np.uint8)
        label = np.empty((b, h, w), dtype=np.uint8)
        instance = np.empty((b, h, w), dtype=np.uint16)
        if b:
            kernels.render_cpu(*packed.kernel_args(), image, label, instance)
        return Batch(image, label, instance)
    from . import cuda

    image, label, instance = cuda.render_packed(packed)
    if cuda.simulated():
        return Batch(image.copy_to_host(), label.copy_to_host(), instance.copy_to_host())
    try:
        import torch
    except ImportError:
        return Batch(image, label, instance)
    # uint16 has no torch dtype before torch 2.3; the instance map then stays a numba array.
    as_torch = lambda a: torch.as_tensor(a, device="cuda")  # noqa: E731 - zero-copy via __cuda_array_interface__
    try:
        inst = as_torch(instance)
    except (TypeError, RuntimeError):
        inst = instance
    return Batch(as_torch(image), as_torch(label), inst)


def render(scene: Scene, config: SceneConfig, device: str = "cpu") -> Sample:
    """Render one scene.

    Args:
        scene: from :func:`fakeballoons.sample_scene` or one of the special scenes.
        config: image size, camera, light, noise function and edge handling.
        device: "cpu" (numba, all threads) or "cuda".

    Returns:
        Sample with image (H, W, 3) uint8, label (H, W) uint8 and instance (H, W) uint16, on the host.
    """
    batch = render_batch([scene], config, device)
    if device == "cuda" and not isinstance(batch.image, np.ndarray):
        host = lambda a: a.cpu().numpy() if hasattr(a, "cpu") else a.copy_to_host()  # noqa: E731
        return Sample(host(batch.image)[0], host(batch.label)[0], host(batch.instance)[0])
    return batch[0]


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
    if noise not in kernels.NOISE_KINDS:
        raise UserError(f"noise must be one of {list(kernels.NOISE_KINDS)}, got {noise!r}")
    p = np.asarray(points, dtype=np.float64)
    flat = np.ascontiguousarray(p.reshape(-1, 3))
    kind = kernels.NOISE_KINDS[noise]
    if device == "cpu":
        out = np.empty(flat.shape[0])
        kernels.noise_cpu(flat, kind, out)
    else:
        from . import cuda

        out = cuda.noise_packed(flat, kind)
    return out.reshape(p.shape[:-1])


def set_threads(n: int) -> None:
    """Number of CPU threads the kernels use (numba's thread pool)."""
    numba.set_num_threads(n)
