"""Throughput benchmarks: ``fakeballoons bench WHAT [options]`` (never timed assertions in tests).

Every figure is a median over repeated runs, printed with the exact settings that produced it, so
README numbers can be re-measured with one command.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np

from .config import NOISE_FUNCTIONS, SceneConfig
from .errors import UserError
from .render import (
    DEVICES,
    kernel_noise,
    packed_batches,
    render,
    render_packed,
    render_sampled_batches,
    set_threads,
)
from .render.pack import pack_sampled
from .scene import sample_scene


def _median_seconds(fn: Callable[[int], object], runs: int) -> tuple[float, list[float]]:
    times = []
    for i in range(runs):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def _restoring_threads(fn):
    """Run a benchmark on its own thread count, then give numba back the one it had."""
    def wrapped(*args, **kwargs):
        before = numba.get_num_threads()
        try:
            return fn(*args, **kwargs)
        finally:
            set_threads(before)
    wrapped.__doc__ = fn.__doc__
    wrapped.__name__ = fn.__name__
    return wrapped


@_restoring_threads
def bench_render(size: int = 512, scenes: int = 30, threads: int = 1, noises=NOISE_FUNCTIONS,
                 seed: int = 0, device: str = "cpu", batch: int = 64, scene: str | None = None,
                 workers: int = 0) -> list[dict]:
    """Rendering throughput, per noise function.

    - ``pack_sampled`` (every device): sampling and packing ``batch`` scenes on one CPU thread, the
      host side of batched GPU rendering; median over runs.
    - ``packed_batches`` (every device, ``workers`` > 0): the same with the sampling in ``workers``
      processes and the packing here, batch after batch (start-up excluded); scenes/s over the runs.
    - ``render`` (cpu): the median wall time of one ``render`` call per default scene (scenes
      0..scenes-1 of ``seed``) on ``threads`` threads, after a warm-up call that compiles or loads
      the kernels.
    - ``render_kernel`` (cuda): one launch of an already packed batch, synchronised; median.
    - ``render_end_to_end`` (cuda): ``render_sampled_batches`` batch after batch, as a training loop
      calls it, the host preparing the next batch while the GPU renders this one; synchronised once
      per run of four batches; median. With no sampling processes, and with ``workers`` of them when
      ``workers`` > 0 (a second row). Its scenes/s is the headline figure.
    """
    results = []
    from fakeballoons.config import load_scene

    for noise in noises:
        config = load_scene(scene).replace(height=size, width=size, noise=noise)
        runs = max(scenes // batch, 5)
        batch_indices = lambda j: range(j * batch, (j + 1) * batch)  # noqa: E731
        pack_sampled(config, seed, batch_indices(0))  # warm-up: compile or load the packer
        med, _ = _median_seconds(lambda j: pack_sampled(config, seed, batch_indices(j)), runs)
        results.append({"what": "pack_sampled", "scene": scene or "report", "device": "cpu", "noise": noise,
                        "size": size,
                        "batch": batch, "runs": runs, "median_batch_ms": round(med * 1e3, 2),
                        "scenes_per_s": round(batch / med, 1)})
        if workers:
            stream = packed_batches(config, seed, (batch_indices(j) for j in itertools.count(runs)), workers)
            next(stream)  # start-up: the processes spawn and import
            start = time.perf_counter()
            for _ in range(runs):
                next(stream)
            took = time.perf_counter() - start
            stream.close()
            results.append({"what": "packed_batches", "scene": scene or "report", "device": "cpu", "noise": noise,
                            "size": size, "batch": batch, "workers": workers, "runs": runs,
                            "mean_batch_ms": round(took / runs * 1e3, 2),
                            "scenes_per_s": round(batch * runs / took, 1)})
        if device == "cpu":
            set_threads(threads)
            render(sample_scene(config, seed, 0), config)  # warm-up: compile or load cache
            all_scenes = [sample_scene(config, seed, i) for i in range(scenes)]
            med, times = _median_seconds(lambda i: render(all_scenes[i], config), scenes)
            results.append({
                "what": "render", "scene": scene or "report", "device": "cpu", "threads": threads, "noise": noise,
                "size": size,
                "scenes": scenes, "median_ms": round(med * 1e3, 2),
                "min_ms": round(min(times) * 1e3, 2), "max_ms": round(max(times) * 1e3, 2),
                "scenes_per_s": round(1.0 / med, 2),
            })
            continue
        import torch  # the CUDA path hands back torch tensors; timing needs synchronisation

        packed = pack_sampled(config, seed, batch_indices(0))
        render_packed(packed, "cuda")  # warm-up: compile the kernel
        torch.cuda.synchronize()

        def kernel(_):
            render_packed(packed, "cuda")
            torch.cuda.synchronize()

        med, _ = _median_seconds(kernel, runs)
        results.append({"what": "render_kernel", "device": "cuda", "noise": noise, "size": size,
                        "batch": batch, "runs": runs, "median_batch_ms": round(med * 1e3, 2),
                        "scenes_per_s": round(batch / med, 1)})

        per_run = 4
        for procs in sorted({0, workers}):
            stream = render_sampled_batches(config, seed, (batch_indices(j) for j in itertools.count(1)), "cuda",
                                            workers=procs)
            next(stream)  # start-up: the processes spawn and import
            torch.cuda.synchronize()
            host = []

            def end_to_end(_):
                start = time.perf_counter()
                for _ in range(per_run):
                    next(stream)
                host.append(time.perf_counter() - start)
                torch.cuda.synchronize()

            med, _ = _median_seconds(end_to_end, runs)
            stream.close()
            # The host's part alone: if launches queue without waiting, about the packing's time; if
            # something in the launch waits for the GPU, about the packing's plus render_kernel's.
            results.append({"what": "render_end_to_end", "device": "cuda", "noise": noise, "size": size,
                            "batch": batch, "workers": procs, "runs": runs,
                            "median_batch_ms": round(med / per_run * 1e3, 2),
                            "median_host_batch_ms": round(statistics.median(host) / per_run * 1e3, 2),
                            "scenes_per_s": round(batch * per_run / med, 1)})
    return results


@_restoring_threads
def bench_noise(points: int = 262_144, threads: int = 1, runs: int = 7) -> list[dict]:
    """Median time of the kernels' noise functions alone on ``points`` random points in [-20, 20]^3."""
    set_threads(threads)
    p = np.random.default_rng(0).uniform(-20.0, 20.0, (points, 3))
    results = []
    for noise in NOISE_FUNCTIONS:
        kernel_noise(p[:16], noise)
        med, _ = _median_seconds(lambda i: kernel_noise(p, noise), runs)
        results.append({"what": "noise", "device": "cpu", "threads": threads, "noise": noise,
                        "points": points, "median_ms": round(med * 1e3, 2)})
    return results


def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version()}


def print_results(results: list[dict], as_json: bool = False) -> None:
    if as_json:
        print(json.dumps({"machine": machine(), "results": results}, indent=2))
        return
    for r in results:
        fields = "  ".join(f"{k}={v}" for k, v in r.items())
        print(fields)


def bench_generate(num: int = 256, size: int = 512, runs: int = 3, noises=NOISE_FUNCTIONS,
                   workers: str | int = "auto") -> list[dict]:
    """End-to-end generation throughput: ``generate`` of ``num`` PNG pairs into a fresh temporary
    directory, ``runs`` times per noise; the median pairs/s, and peak memory.

    Worker start-up (spawn, loading the cached kernels) is included. Peak worker memory is
    ``getrusage(RUSAGE_CHILDREN).ru_maxrss``, the largest resident set of any finished child.
    """
    import resource
    import shutil
    import tempfile

    from fakeballoons.data.generate import generate, resolve_workers
    from fakeballoons.data.recipe import Recipe

    n_workers = resolve_workers(workers)
    results = []
    for noise in noises:
        recipe = Recipe(SceneConfig(height=size, width=size, noise=noise), num=num)
        rates = []
        for _ in range(runs):
            out = tempfile.mkdtemp(prefix="fakeballoons-bench-")
            try:
                start = time.perf_counter()
                generate(Path(out) / "ds", recipe, workers=n_workers, progress=False)
                rates.append(num / (time.perf_counter() - start))
            finally:
                shutil.rmtree(out, ignore_errors=True)
        results.append({
            "what": "generate", "noise": noise, "size": size, "num": num, "workers": n_workers,
            "runs": runs, "median_pairs_per_s": round(statistics.median(rates), 2),
            "min_pairs_per_s": round(min(rates), 2), "max_pairs_per_s": round(max(rates), 2),
            "peak_worker_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
            "main_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        })
    return results


def bench_train(model: str = "lraspp_mobilenet_v3_large", size: int = 128, batch: int = 16, steps: int = 10,
                device: str = "cpu", amp: bool = False, threads: int | None = None) -> list[dict]:
    """Training throughput: median time of one optimisation step (forward, loss, backward, SGD step)
    on a batch of rendered Perlin scenes, as images/s. Two warm-up steps are not timed.

    On the CPU every step reuses one batch rendered beforehand (in training, DataLoader workers
    render in parallel with the model). On CUDA each step renders its own batch on the GPU
    (``FakeBalloons.render_indices``), as training on synthetic data does, and the figure includes
    it; the model is channels_last, cuDNN autotunes its convolutions, ``amp`` is bfloat16
    autocast, and each step is synchronised before it is timed.
    """
    import torch

    from fakeballoons.data.datasets import FakeBalloons
    from fakeballoons.train.loop import compute_loss, forward
    from fakeballoons.train.models import NORMALIZATION, build_model

    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but torch sees no CUDA GPU (use --device cpu)")
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    ds = FakeBalloons(SceneConfig(height=size, width=size), num=batch * (steps + 2), split="all",
                      val_fraction=0.0)
    fixed = None if cuda else ds.render_indices(list(range(batch)), device="cpu")
    torch.manual_seed(0)
    net = build_model(model, 4).to(dev)
    if cuda:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    net.train()

    def step(i):
        images, labels = fixed or ds.render_indices(list(range(i * batch, (i + 1) * batch)), device="cuda")
        loss = compute_loss(forward(net, images, amp, NORMALIZATION[model]), labels, 255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()

    step(steps)
    step(steps + 1)
    med, times = _median_seconds(step, steps)
    return [{"what": "train", "model": model, "device": device, "amp": amp, "size": size, "batch": batch,
             "steps": steps, "threads": torch.get_num_threads() if dev.type == "cpu" else None,
             "median_step_ms": round(med * 1e3, 1), "images_per_s": round(batch / med, 2)}]


def bench_augment(size: int = 320, batch: int = 32, steps: int = 10, device: str = "cpu",
                  threads: int | None = None) -> list[dict]:
    """The augmentation of a rendered training batch (the presets' pretraining recipe: flips, zoom
    crops x1-2, colour jitter 0.4, hue 0.1, grey 30%), picture by picture through torchvision (the
    path before whole-batch augmentation) and as whole batches (``augment_batch``, what
    ``Augment.apply_batch`` now does): median milliseconds per batch, and the ratio. On CUDA each
    call is synchronised before it is timed."""
    import torch

    from fakeballoons.data.transforms import Augment, augment_batch, pair_transforms

    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but torch sees no CUDA GPU (use --device cpu)")
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    aug = Augment(hflip=True, scale=(1.0, 2.0), jitter=0.4, hue=0.1, grayscale=0.3)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen).to(dev)
    labels = torch.randint(0, 4, (batch, size, size), generator=gen).to(dev)
    pipeline = pair_transforms(size, aug, resize="short-side")

    def per_picture(_):
        from torchvision import tv_tensors

        out = [pipeline(tv_tensors.Image(x), tv_tensors.Mask(y)) for x, y in zip(images, labels)]
        torch.stack([x for x, _ in out]), torch.stack([y for _, y in out])
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def whole(_):
        augment_batch(images, labels, aug, gen)
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def aten_ops(fn) -> int:
        """torch operator calls in one batch (nested ones included), by torch's profiler (CPU side)."""
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fn(0)
        return sum(e.count for e in prof.key_averages() if e.key.startswith("aten::"))

    rows = []
    for name, fn in (("per_picture", per_picture), ("whole_batch", whole)):
        fn(0)  # warm-up
        med, _ = _median_seconds(fn, steps)
        rows.append({"what": "augment", "path": name, "device": device, "size": size, "batch": batch,
                     "threads": torch.get_num_threads() if dev.type == "cpu" else None,
                     "median_batch_ms": round(med * 1e3, 1), "images_per_s": round(batch / med, 1),
                     "aten_ops": aten_ops(fn)})
    rows[1]["speedup"] = round(rows[0]["median_batch_ms"] / rows[1]["median_batch_ms"], 1)
    return rows


#: The slider each view's benchmark drags, and what is set first so that it acts.
VIEW_SLIDERS = {"single": ("#elongation", None), "full": ("#bg-scale", "#fix-bg")}

_VIEW_CLOCK = """(id) => {
  // Times in the page (performance.now()): the drag's first input event and the first preview frame
  // shown after it; the release's change event and the full frame shown after it.
  const el = document.querySelector(id);
  const first = (name) => () => { const t = window.__t; if (t && t[name] === undefined) t[name] = performance.now(); };
  el.addEventListener('input', first('input'));
  el.addEventListener('change', first('change'));
  document.addEventListener('fb-frame', (e) => {
    const t = window.__t, now = performance.now();
    if (!t) return;
    if (e.detail.preview && t.input !== undefined && t.first === undefined) t.first = now;
    if (!e.detail.preview && t.change !== undefined && t.full === undefined) t.full = now;
  });
}"""


def bench_view(drags: int = 10, size: int = 512, noise: str = "perlin", view: str = "full") -> list[dict]:
    """Drag-to-first-frame and release-to-full-frame latency of the viewer in headless Chromium, and
    the preview size the page chose from its measured frame times (median over the drags, and last).

    A real mouse drags one slider (single: elongation; full: the background noise scale, with its
    override ticked): press on the track (the first input event), move, wait for the first preview
    frame on screen, move twice more, release (the change event) and wait for the full-size frame
    of the released value. Each drag starts elsewhere on the track so no frame comes from the
    viewer's cache. One drag warms up; the medians are over ``drags`` more.
    """
    import shutil

    from playwright.sync_api import TimeoutError as PageTimeout

    from fakeballoons.viewer.settings import SIZES

    full_sizes = [s for s in SIZES if s > 128]
    if size not in full_sizes:
        raise UserError(f"bench view --size must be one of {full_sizes} (the page's picture sizes), got {size}")
    chromium = shutil.which("chromium")
    if chromium is None:
        raise UserError("bench view needs Debian's chromium (apt-get install chromium)")
    try:
        return _drag_latencies(chromium, drags, size, noise, view)
    except PageTimeout as exc:
        first = str(exc).splitlines()[0] if str(exc) else "timed out"
        raise UserError(f"view: the viewer page did not answer in time ({first}); on a saturated machine "
                        "rerun it when the machine is idle") from None


def _drag_latencies(chromium: str, drags: int, size: int, noise: str, view: str) -> list[dict]:
    """``bench_view``'s measurement in the browser (see there)."""
    from playwright.sync_api import sync_playwright

    from fakeballoons.viewer.app import HEADLESS_CHROMIUM_FLAGS, running_server

    slider, tick = VIEW_SLIDERS[view]
    firsts, fulls, previews = [], [], []
    with running_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=list(HEADLESS_CHROMIUM_FLAGS))
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url + "/")
        page.wait_for_function("Number(document.body.dataset.rendered || 0) >= 1", timeout=120_000)
        page.click(f"[data-view={view}]")
        page.select_option("#noise", noise)
        page.select_option("#size", str(size))
        if tick:
            page.check(tick)
        page.wait_for_function("document.getElementById('loading').hidden", timeout=120_000)
        page.evaluate(_VIEW_CLOCK, slider)
        box = page.locator(slider).bounding_box()
        y, left, room = box["y"] + box["height"] / 2, box["x"] + 8, box["width"] - 16 - 36
        for i in range(drags + 1):
            x = left + (i * 7) % room
            page.evaluate("window.__t = {}")
            page.mouse.move(x, y)
            page.mouse.down()
            page.mouse.move(x + 12, y)
            page.wait_for_function("window.__t.first !== undefined", timeout=120_000)
            page.mouse.move(x + 24, y)
            page.mouse.move(x + 36, y)
            page.mouse.up()
            page.wait_for_function("window.__t.full !== undefined", timeout=120_000)
            t = page.evaluate("window.__t")
            preview = page.evaluate("Number(document.body.dataset.previewSize || 0)")
            if i > 0:
                firsts.append(t["first"] - t["input"])
                fulls.append(t["full"] - t["change"])
                previews.append(preview)
        browser.close()
    return [{"what": "view", "view": view, "noise": noise, "size": size, "drags": drags,
             "drag_to_first_frame_ms": round(statistics.median(firsts), 1), "first_max_ms": round(max(firsts), 1),
             "release_to_full_frame_ms": round(statistics.median(fulls), 1), "full_max_ms": round(max(fulls), 1),
             "preview_px_median": statistics.median(previews), "preview_px_last": previews[-1]}]


def _parser():
    from fakeballoons.argtypes import Parser, int_in
    from fakeballoons.train.models import MODELS

    p = Parser(prog="fakeballoons bench", description="Throughput benchmarks; prints medians.")
    p.add_argument("what", choices=("render", "noise", "generate", "train", "view", "augment"))
    p.add_argument("--model", choices=MODELS, default="lraspp_mobilenet_v3_large", help="model (train)")
    p.add_argument("--steps", type=int_in(1, 10_000), default=10, help="timed steps (train) or batches (augment)")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast (train)")
    p.add_argument("--num", type=int_in(1, 10**7), default=256, help="pairs per run (generate)")
    p.add_argument("--runs", type=int_in(1, 100), default=3, help="runs to take the median of (generate)")
    p.add_argument("--workers", default="auto",
                   help="worker processes (generate; render: sampling processes beside the one-thread figures, "
                        "default none)")
    p.add_argument("--size", type=int_in(1, 8192), default=None, help="picture side (default 512; augment 320)")
    p.add_argument("--scenes", type=int_in(1, 100_000), default=None,
                   help="scenes to time (render, default 30) or slider drags (view, default 10)")
    p.add_argument("--view", choices=tuple(VIEW_SLIDERS), action="append", help="view (repeatable; default both)")
    p.add_argument("--points", type=int_in(1, 10**8), default=262_144, help="points to time (noise)")
    p.add_argument("--threads", type=int_in(1, 1024), default=1, help="CPU threads (default 1)")
    p.add_argument("--noise", choices=NOISE_FUNCTIONS, action="append", help="repeatable; default both")
    p.add_argument("--device", choices=DEVICES, default="cpu")
    p.add_argument("--batch", type=int_in(1, 100_000), default=None,
                   help="scenes per launch (render on cuda, default 64) or per step (train, default 16)")
    p.add_argument("--scene", metavar="NAME|FILE", help="scene preset or JSON file (render; default: the report's)")
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def _render_workers(text: str) -> int:
    if text == "auto":
        return 0
    if not text.isdigit() or int(text) > 256:
        raise UserError(f"--workers must be auto or an integer from 0 to 256 for render, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run one benchmark; a user's mistake is one line and exit status 2."""
    args = _parser().parse_args(argv)
    try:
        if args.what == "view":
            results = []
            for view in args.view or tuple(VIEW_SLIDERS):
                for noise in args.noise or NOISE_FUNCTIONS:
                    results += bench_view(drags=args.scenes or 10, size=args.size or 512, noise=noise, view=view)
        elif args.what == "train":
            results = bench_train(model=args.model, size=args.size or 512, batch=args.batch or 16, steps=args.steps,
                                  device=args.device, amp=args.amp)
        elif args.what == "augment":
            results = bench_augment(size=args.size or 320, batch=args.batch or 32,
                                    steps=args.steps, device=args.device, threads=args.threads)
        elif args.what == "generate":
            results = bench_generate(num=args.num, size=args.size or 512, runs=args.runs,
                                     noises=args.noise or NOISE_FUNCTIONS, workers=args.workers)
        elif args.what == "render":
            results = bench_render(size=args.size or 512, scenes=args.scenes or 30, threads=args.threads,
                                   noises=args.noise or NOISE_FUNCTIONS, device=args.device, batch=args.batch or 64,
                                   scene=args.scene, workers=_render_workers(args.workers))
        else:
            results = bench_noise(points=args.points, threads=args.threads)
    except UserError as exc:
        print(f"fakeballoons bench: error: {exc}", file=sys.stderr)
        return 2
    print_results(results, as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
