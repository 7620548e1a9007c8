"""Checks that need a real GPU; skipped elsewhere. On a GPU machine: FAKEBALLOONS_REAL_CUDA=1 pytest
tests/test_gpu.py.

A training step must never make the host wait for the GPU: building a tensor with
``torch.tensor(..., device="cuda")`` or moving one with ``.to("cuda")`` from pageable memory
waits for all the work queued before it (``normalize``'s mean and std, the loader's batch indices
and flip masks once did). torch's sync debug mode turns such a wait into an error.
"""

import os

import pytest
import torch

pytestmark = pytest.mark.skipif(os.environ.get("FAKEBALLOONS_REAL_CUDA") != "1" or not torch.cuda.is_available(),
                                reason="needs a GPU (FAKEBALLOONS_REAL_CUDA=1)")


def _no_waits(fn):
    """Run ``fn`` with every host-GPU sync that torch makes an error."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        return fn()
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_training_steps_queue_without_waiting_for_the_gpu():
    """Rendering a synthetic batch on the GPU, flipping it, the forward and backward passes and the
    optimiser step all queue work without the host waiting (the training loop's one wait is the
    loss it reads one step late)."""
    from fakeballoons.data.loader import batches
    from fakeballoons.data.sources import DataConfig, open_data
    from fakeballoons.data.transforms import Augment
    from fakeballoons.train.loop import compute_loss, forward
    from fakeballoons.train.models import build_model

    device = torch.device("cuda")
    data = open_data(DataConfig("synthetic:perlin"), size=64, num_train=12, num_val=2, seed=0,
                     augment=Augment(hflip=True))
    model = build_model("fcn_resnet50", len(data.classes)).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, weight_decay=1e-4)

    def epoch(number):
        seen = []
        for images, labels, index in batches(data.train, 4, train=True, seed=0, epoch=number, device=device,
                                             augment=data.augment):
            loss = compute_loss(forward(model, images, amp=True), labels, data.ignore_index)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen.append(index)
        return loss, seen

    epoch(0)  # warm-up: kernels compiled and loaded, the optimiser's state made
    loss, seen = _no_waits(lambda: epoch(1))
    assert torch.isfinite(loss).item()
    assert sorted(torch.cat(seen).tolist()) == list(range(12))  # the indices arrived intact


def test_rendering_a_batch_queues_without_waiting_for_the_gpu():
    """``render_sampled`` on CUDA: inputs go up through pinned memory, the kernel is queued; the
    pictures equal the CPU's."""
    import numpy as np

    from fakeballoons import SceneConfig, render_sampled

    config = SceneConfig(height=96, width=128)
    render_sampled(config, 0, range(4), device="cuda")  # warm-up: compile the kernel
    batch = _no_waits(lambda: render_sampled(config, 0, range(4, 12), device="cuda"))
    cpu = render_sampled(config, 0, range(4, 12))
    np.testing.assert_array_equal(batch.label.cpu().numpy(), cpu.label)
    assert np.abs(batch.image.cpu().numpy().astype(int) - cpu.image).max() <= 1


def test_whole_batch_augmentation_queues_without_waiting_and_matches_the_cpu():
    """The rendered batches' augmentation on CUDA (zoom crops, flips, colour jitter, grey): every
    random draw made on the host and sent up pinned; the result is the CPU's (masks exactly,
    pictures within a grey level)."""
    from fakeballoons.data.transforms import Augment, augment_batch

    aug = Augment(hflip=True, scale=(1.0, 2.0), jitter=0.4, hue=0.1, grayscale=0.3)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 64, 64), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 4, (16, 64, 64), generator=gen)
    gpu_images, gpu_labels = images.cuda(), labels.cuda()
    augment_batch(gpu_images, gpu_labels, aug, torch.Generator().manual_seed(1))  # warm-up
    out = _no_waits(lambda: augment_batch(gpu_images, gpu_labels, aug, torch.Generator().manual_seed(1)))
    cpu = augment_batch(images, labels, aug, torch.Generator().manual_seed(1))
    assert torch.equal(out[1].cpu(), cpu[1])
    assert (out[0].cpu().int() - cpu[0].int()).abs().max() <= 1
