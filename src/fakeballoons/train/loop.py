"""Training and evaluation as plain functions (in the manner of torchvision's reference scripts).

A run directory holds ``config.json`` (the ``RunConfig``), ``metrics.jsonl`` (one line per epoch:
train loss, lr, the six metrics with 95% intervals, images/s, seconds), ``last.pt`` and
``best.pt`` (model, optimizer, scheduler, epoch, config; best by macro F1), ``val_confusion.pt``
(the last evaluation's per-image confusion matrices, for paired comparisons between runs) and,
with ``init``, ``transfer.json``. Every epoch is a pure function of the checkpoint before it: the
data order and the random state are seeded by (seed, epoch), so resuming after a kill continues
exactly as an uninterrupted run would (on the CPU). Checkpoints hold tensors and plain data only
and are read without running code.

Under ``torchrun`` (WORLD_SIZE > 1) the model is wrapped in DistributedDataParallel (gloo on the
CPU, NCCL on GPUs), each process takes every world-th sample, the metrics are gathered across
processes, and only rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .._version import __version__
from ..data import formats
from ..data.loader import batches, epoch_seed
from ..data.sources import Data, open_data
from ..errors import ConfigError, Stopped, UserError, env_int
from .checkpoints import Checkpoints, Partial
from .metrics import SegmentationMetrics
from .models import IMAGENET_MEAN_STD, NORMALIZATION, build_model
from .run import RunConfig, TrainConfig
from .transfer import load_init, read_state_dict


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


#: How long a process of a torchrun job waits for the others to join (seconds).
JOIN_TIMEOUT = 600


def setup_distributed(device: str, environ=os.environ) -> Dist:
    """Join the process group torchrun describes in the environment (if WORLD_SIZE > 1). A stray or
    incomplete torchrun environment is a UserError, and the other processes are waited for at most
    ``JOIN_TIMEOUT`` seconds."""
    world = env_int("WORLD_SIZE", 1, environ)
    env_int("LOCAL_WORLD_SIZE", 1, environ)
    if world <= 1:
        return Dist()
    missing = [v for v in ("RANK", "MASTER_ADDR", "MASTER_PORT") if v not in environ]
    if missing:
        raise UserError(f"WORLD_SIZE={world} is set but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                        "not: start several processes with torchrun, or unset WORLD_SIZE for one process")
    rank = env_int("RANK", 0, environ)
    if rank >= world:
        raise UserError(f"RANK={rank} must be below WORLD_SIZE={world}")
    import datetime

    import torch.distributed as dist

    if not dist.is_initialized():
        try:
            dist.init_process_group(backend="nccl" if device == "cuda" else "gloo",
                                    timeout=datetime.timedelta(seconds=JOIN_TIMEOUT))
        except (RuntimeError, ValueError, OSError) as exc:  # torch's DistStoreError is a RuntimeError
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise UserError(f"could not join the {world} processes of WORLD_SIZE={world} at "
                            f"{environ['MASTER_ADDR']}:{environ['MASTER_PORT']} within {JOIN_TIMEOUT} s ({first}); "
                            "start all of them with torchrun, or unset WORLD_SIZE") from None
    return Dist(dist.get_rank(), dist.get_world_size(), env_int("LOCAL_RANK", 0, environ))


# ----------------------------------------------------------------------------- one step


@functools.cache
def _mean_std(device: torch.device, mean_std: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    # Made once per device: torch.tensor(..., device="cuda") copies from pageable memory, and such a
    # copy waits for all the GPU work queued before it, which made every step a full host-GPU sync.
    mean, std = mean_std
    return (torch.tensor(mean, device=device).view(1, 3, 1, 1), torch.tensor(std, device=device).view(1, 3, 1, 1))


def normalize(images: torch.Tensor, mean_std: tuple = IMAGENET_MEAN_STD) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float, minus the mean, over the std (of 0..1 values; ImageNet's by default)."""
    mean, std = _mean_std(images.device, mean_std)
    return (images.float() / 255.0 - mean) / std


def forward(model: nn.Module, images: torch.Tensor, amp: bool = False,
            mean_std: tuple = IMAGENET_MEAN_STD) -> dict[str, torch.Tensor]:
    """The model's outputs on a uint8 batch (B, 3, H, W): normalised (``models.NORMALIZATION`` of the
    model), channels_last on CUDA, and under bfloat16 autocast with ``amp``. Training, evaluation and
    ``bench train`` all call this."""
    x = normalize(images, mean_std)
    if x.is_cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        return model(x)


def compute_loss(outputs: dict[str, torch.Tensor], labels: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Cross-entropy ignoring ``ignore_index``; torchvision's auxiliary loss at weight 0.5 if present."""
    loss = F.cross_entropy(outputs["out"].float(), labels, ignore_index=ignore_index)
    if "aux" in outputs:
        loss = loss + 0.5 * F.cross_entropy(outputs["aux"].float(), labels, ignore_index=ignore_index)
    return loss


def _bar(iterable, dist: Dist, progress: bool, **kwargs):
    from tqdm import tqdm

    return tqdm(iterable, leave=False, file=sys.stderr, disable=not (progress and dist.main), dynamic_ncols=True,
                **kwargs)


def train_one_epoch(model, optimizer, scheduler, data: Data, cfg: TrainConfig, epoch: int,
                    device: torch.device, dist: Dist, progress: bool, partial: Partial | None = None,
                    checkpoints: Checkpoints | None = None, save=None) -> tuple[float, int]:
    """One pass over the training split. Returns (mean loss, images seen by this process).

    Each step's loss is read one step late: reading it at once would make the host wait for the
    GPU, while the previous step's is ready and the host can go on to queue (and render) the next
    batch. A non-finite loss is thus caught one step late, before any checkpoint of the epoch.

    ``partial``: where a checkpoint written mid-epoch left this epoch (its first ``step`` batches
    are skipped, never read). When ``checkpoints`` says one is due, ``save(partial)`` writes it;
    after a stop signal the epoch then raises :class:`Stopped`.
    """
    model.train()
    state = partial or Partial(epoch, optimizer.param_groups[0]["lr"])
    total, steps, seen, pending = state.loss_total, state.loss_steps, 0, None
    stream = batches(data.train, cfg.batch_size, train=True, seed=cfg.seed, epoch=epoch, device=device,
                     augment=data.augment, workers=cfg.workers, rank=dist.rank, world=dist.world, skip=state.step)
    bar = _bar(stream, dist, progress, total=max(1, len(data.train) // (cfg.batch_size * dist.world)),
               initial=state.step, desc=f"epoch {epoch}", unit="batch")
    for step, (images, labels, _) in enumerate(bar, start=state.step):
        loss = compute_loss(forward(model, images, cfg.amp, NORMALIZATION[cfg.model]), labels, data.ignore_index)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if pending is not None:
            total += _finite(pending[1].item(), epoch, pending[0])  # the one host-device sync of a step
            steps += 1
            bar.set_postfix(loss=f"{total / steps:.4f}")
        pending = (step, loss.detach())
        seen += images.shape[0]
        # several processes decide together, every 50 steps (a decision is a collective call)
        if checkpoints is not None and (dist.world == 1 or (step + 1) % 50 == 0) and \
                _agree(dist, checkpoints.due(step), device):
            total += _finite(pending[1].item(), epoch, pending[0])
            steps, pending = steps + 1, None
            _check_weights(model, epoch)
            save(dataclasses.replace(state, step=step + 1, loss_total=total, loss_steps=steps))
            checkpoints.written()
            if progress and dist.main:
                bar.write(f"epoch {epoch}: checkpoint written after step {step + 1}", file=sys.stderr)
            if _agree(dist, checkpoints.signum is not None, device):
                raise Stopped(checkpoints.signum or signal.SIGTERM,
                              f"in epoch {epoch} after step {step + 1}; a checkpoint was written")
    if pending is not None:
        total += _finite(pending[1].item(), epoch, pending[0])
        steps += 1
    return total / max(steps, 1), seen


def _agree(dist: Dist, flag: bool, device: torch.device) -> bool:
    """``flag`` of any process, on every process (so that all write and stop together)."""
    if dist.world == 1:
        return flag
    import torch.distributed as tdist

    box = torch.tensor([int(flag)], device=device)
    tdist.all_reduce(box, op=tdist.ReduceOp.MAX)
    return bool(box.item())


def _finite(value: float, epoch: int, step: int) -> float:
    if not math.isfinite(value):
        raise TrainingDiverged(f"loss became {value} at epoch {epoch}, step {step}")
    return value


def _check_weights(model: nn.Module, epoch: int) -> None:
    """Stop before evaluating or saving weights that are no longer finite (a finite loss can
    still take a step to infinity)."""
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    if tensors and not bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
        raise TrainingDiverged(f"weights became non-finite at epoch {epoch}")


@torch.no_grad()
def evaluate(model, data: Data, cfg: TrainConfig, device: torch.device, dist: Dist,
             progress: bool = False) -> tuple[dict[str, dict[str, float]], dict[str, torch.Tensor]]:
    """The six metrics over the whole validation split, with 95% bootstrap intervals, and the
    per-image confusion matrices behind them ({"index": (N,), "confusion": (N, C, C)})."""
    model.eval()
    metrics = SegmentationMetrics(len(data.classes), data.ignore_index, bootstrap=cfg.bootstrap,
                                  seed=cfg.seed).to(device)
    # pairs at their own sizes (resize "short-side") go one at a time; the model's scores are
    # upsampled to the mask's resolution, so masks are never resized
    stream = batches(data.val, 1 if data.native else cfg.batch_size, train=False, seed=cfg.seed, epoch=0,
                     device=device, workers=cfg.workers, rank=dist.rank, world=dist.world)
    for images, labels, index in _bar(stream, dist, progress, desc="evaluate"):
        scores = forward(model, images, cfg.amp, NORMALIZATION[cfg.model])["out"]
        if scores.shape[-2:] != labels.shape[-2:]:
            scores = F.interpolate(scores.float(), size=labels.shape[-2:], mode="bilinear", align_corners=False)
        metrics.update(scores.argmax(1), labels, index)
    with metrics.sync_context(should_sync=dist.world > 1):
        index, confusion = metrics.per_image()
        return metrics.compute_intervals(), {"index": index, "confusion": confusion}


def make_optimizer(model: nn.Module, cfg: TrainConfig):
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def lr_factor(step: int, cfg: TrainConfig, steps_per_epoch: int) -> float:
    """The learning rate at ``step`` as a fraction of ``cfg.lr``: a linear warm-up over
    ``warmup_epochs`` (from 1/W to 1), then the schedule ("poly": (1 - t / T) ** 0.9 over the
    remaining steps; "none": constant)."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = min(total - 1, int(round(cfg.warmup_epochs * steps_per_epoch)))
    if step < warm:
        return (step + 1) / warm
    if cfg.schedule != "poly":
        return 1.0
    return (1 - min(step - warm, total - warm - 1) / (total - warm)) ** 0.9


def make_scheduler(optimizer, cfg: TrainConfig, steps_per_epoch: int):
    if cfg.schedule != "poly" and cfg.warmup_epochs == 0:
        return None
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg, steps_per_epoch))


# ----------------------------------------------------------------------------- run directory


@dataclass(frozen=True)
class RunDir:
    """The files of a run directory."""

    root: Path

    def __getattr__(self, name: str) -> Path:
        files = {"config": "config.json", "metrics": "metrics.jsonl", "last": "last.pt", "best": "best.pt",
                 "confusion": "val_confusion.pt", "transfer": "transfer.json"}
        if name not in files:
            raise AttributeError(name)
        return self.root / files[name]


def read_run_config(run_dir: RunDir) -> RunConfig:
    """The RunConfig in a run directory's config.json; a corrupt one is one UserError line."""
    data = formats.read_json(run_dir.config, "run config")
    try:
        return RunConfig.from_dict(data)
    except ConfigError as exc:
        raise UserError(f"{run_dir.config} is not a fakeballoons run config ({exc})") from None


def open_run_dir(out: Path, run: RunConfig, resume: bool) -> tuple[RunDir, bool]:
    """Check ``out`` for this run and write its config.json; returns (the directory, whether a
    checkpoint is to be resumed).

    A directory that holds this run with a checkpoint is continued from it (the same command run
    again continues a stopped run; ``resume`` only insists that there is one); one that holds it
    with no checkpoint and no results (stopped before anything was saved) starts again; one with
    results but no ``last.pt``, one with another run, or a non-empty one that holds no run, is
    refused: nothing of the user's is overwritten or deleted.
    """
    run_dir = RunDir(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"cannot use {out} as a run directory: it is a file")
    if run_dir.config.exists():
        why = run.difference(read_run_config(run_dir))
        if why:
            raise UserError(f"{out} holds a run made with other settings ({why}); use the same options "
                            "or a new directory")
        has_checkpoint = run_dir.last.exists()
        results = [p.name for p in (run_dir.best, run_dir.confusion) if p.exists()]
        if run_dir.metrics.exists() and run_dir.metrics.stat().st_size > 0:
            results.insert(0, run_dir.metrics.name)
        if not has_checkpoint and results:
            raise UserError(f"{out} holds results ({', '.join(results)}) but no last.pt to continue from; "
                            "put last.pt back, or train into a new directory (nothing was changed)")
    else:
        if resume:
            raise UserError(f"--resume: {out} holds no run (no config.json) to resume")
        if out.exists() and any(out.iterdir()):
            raise UserError(f"{out} is not empty and holds no run; choose a new or empty directory")
        has_checkpoint = False
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out}: {exc.strerror or exc}") from None
    if not has_checkpoint:  # a fresh start: drop what an interrupted first epoch left
        for name in ("metrics", "best", "confusion", "transfer"):
            getattr(run_dir, name).unlink(missing_ok=True)
        write_run_config(run_dir, run)
    return run_dir, has_checkpoint


_LOCKS: dict[str, int] = {}  # directory -> open descriptor holding its lock, for the life of the process


def lock_directory(path: Path, what: str) -> bool:
    """Take the advisory lock of directory ``path`` (created if missing) for this process, or raise
    a UserError if another process holds it: one writer per run or experiment directory. The lock
    (``flock`` on the directory itself, so nothing is added to it) is released when the process
    ends, however it ends, or by :func:`release_directory`. Returns whether the directory was created."""
    import fcntl

    key = str(path.resolve())
    if key in _LOCKS:
        return False
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except NotADirectoryError:
        raise UserError(f"cannot use {path} as a {what} directory: it is a file") from None
    except OSError as exc:
        raise UserError(f"cannot create {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(f"{path} is in use by another process (a {what} writing there now); wait for it to end, "
                        "or use another directory") from None
    _LOCKS[key] = fd
    return created


def release_directory(path: Path) -> None:
    """Give up the lock of ``path`` (if this process holds it)."""
    fd = _LOCKS.pop(str(path.resolve()), None)
    if fd is not None:
        os.close(fd)


def write_run_config(run_dir: RunDir, run: RunConfig) -> None:
    """config.json; a resumed run writes it (with its new epoch count) only once its checkpoint
    has been read and accepted, so a refused --resume leaves the directory as it was."""
    formats.write_atomic(run_dir.config, formats.json_bytes(run.to_dict(), indent=2))


def _on_main(dist: Dist, fn):
    """``fn()`` on rank 0; its result, or its UserError, reaches every process."""
    if dist.world == 1:
        return fn()
    import torch.distributed as tdist

    box = [None]
    if dist.main:
        try:
            box[0] = ("ok", fn())
        except UserError as exc:
            box[0] = ("error", str(exc))
    tdist.broadcast_object_list(box, src=0)
    status, value = box[0]
    if status == "error":
        raise UserError(value)
    return value


def restore(run_dir: RunDir, model, optimizer, scheduler) -> tuple[int, float, list[dict], Partial | None]:
    """Load last.pt into model, optimizer and scheduler; returns (its last finished epoch, best macro
    F1, metric lines, and for a checkpoint written mid-epoch where that epoch stands)."""
    ckpt = formats.load_torch(run_dir.last, "checkpoint")
    try:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt.get("scheduler"):
            scheduler.load_state_dict(ckpt["scheduler"])
        epoch, best = int(ckpt["epoch"]), float(ckpt.get("best_macro_f1", -1.0))
        partial = None
        if ckpt.get("partial") is not None:
            partial = Partial(**ckpt["partial"])
            if partial.epoch != epoch + 1 or not 0 <= partial.step or not isinstance(ckpt.get("rng"), torch.Tensor):
                raise ValueError(f"a mid-epoch record of epoch {partial.epoch} after epoch {epoch}")
            torch.set_rng_state(ckpt["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{run_dir.last} is not a checkpoint of this run ({first})") from None
    lines = []
    if run_dir.metrics.exists():
        lines = [x for x in formats.read_jsonl(run_dir.metrics, "metrics log")
                 if isinstance(x.get("epoch"), int) and x["epoch"] <= epoch]
    return epoch, best, lines, partial


# ----------------------------------------------------------------------------- the run


def train(run: RunConfig, out: str | Path, *, resume: bool = False, progress: bool = True,
          checkpoints: Checkpoints | None = None) -> list[dict]:
    """Train (and evaluate each epoch) into run directory ``out``; returns the metrics lines.

    ``run.train.epochs == 0`` evaluates the initial (or ``init``) model once and writes one line.
    ``checkpoints``: when to write ``last.pt`` within an epoch as well as after it (default: every
    10 minutes); a stop signal (SIGTERM, SIGINT) then writes one and raises :class:`Stopped`.
    Resumed from such a checkpoint, the run ends as it would have without the stop (on the CPU,
    bit for bit).
    """
    checkpoints = checkpoints or Checkpoints()
    try:
        with checkpoints.watch():
            return _train(run, out, resume, progress, checkpoints)
    finally:
        release_directory(Path(out))


def _train(run: RunConfig, out: str | Path, resume: bool, progress: bool, checkpoints: Checkpoints) -> list[dict]:
    cfg = run.train
    if run.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but torch sees no CUDA GPU (use --device cpu)")
    dist = setup_distributed(run.device)
    device = torch.device(f"cuda:{dist.local_rank}" if run.device == "cuda" else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)  # also where batches are rendered: render/cuda.py follows torch's device
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its fastest convolutions
    data = open_data(run.data, size=cfg.size, num_train=cfg.num_train, num_val=cfg.num_val, seed=cfg.seed,
                     augment=cfg.augment, resize=cfg.resize)
    created = dist.main and lock_directory(Path(out), "run")  # one writer per run directory
    try:
        # the initialisation is read and loaded before anything is written (a resumed run needs none)
        torch.manual_seed(cfg.seed)
        model = build_model(cfg.model, len(data.classes), cfg.aux_loss, cfg.bn_momentum)
        record = None
        if run.init and not RunDir(Path(out)).last.exists():
            record = load_init(model, read_state_dict(run.init), run.transfer, run.init)
        run_dir, resuming = _on_main(dist, lambda: open_run_dir(Path(out), run, resume))
    except UserError:
        if created and not any(Path(out).iterdir()):  # refused: leave nothing behind
            release_directory(Path(out))
            Path(out).rmdir()
        raise
    if record is not None and dist.main:
        formats.write_atomic(run_dir.transfer, formats.json_bytes(record, indent=2))
    model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, max(1, len(data.train) // (cfg.batch_size * dist.world)))
    start, best, lines, partial = 1, -1.0, [], None
    if resuming:
        done, best, lines, partial = restore(run_dir, model, optimizer, scheduler)
        if cfg.epochs < done:
            raise UserError(f"--resume: {out} has already trained {done} epochs; --epochs must be at least that")
        start = done + 1
        if dist.main:
            write_run_config(run_dir, run)
    if dist.main:
        formats.write_atomic(run_dir.metrics, "".join(formats.json_bytes(x).decode() + "\n" for x in lines))
    net = model if dist.world == 1 else nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)

    def log(line: dict, per_image: dict) -> None:
        lines.append(line)
        if dist.main:
            formats.append_line(run_dir.metrics, formats.json_bytes(line).decode())
            formats.save_torch(run_dir.confusion, {**per_image, "epoch": line["epoch"], "classes": data.classes})

    if cfg.epochs == 0 and not resuming:
        t0 = time.perf_counter()
        metrics, per_image = evaluate(net, data, cfg, device, dist, progress)
        log({"epoch": 0, "train_loss": None, "lr": None, "metrics": metrics, "images_per_s": None,
             "seconds": round(time.perf_counter() - t0, 3)}, per_image)
        return lines
    for epoch in range(start, cfg.epochs + 1):
        if partial is None:  # else the random state is the checkpoint's, restored above
            torch.manual_seed(epoch_seed(cfg.seed, epoch))  # dropout etc.: a function of the epoch alone
        t0 = time.perf_counter()
        partial = partial or Partial(epoch, optimizer.param_groups[0]["lr"])
        lr = partial.lr

        def save(state: Partial, epoch=epoch, best=best) -> None:
            if dist.main:
                save_checkpoint(run_dir, run, model, optimizer, scheduler, epoch - 1,
                                lines[-1]["metrics"] if lines else None, best, data.classes, state)

        loss, seen = train_one_epoch(net, optimizer, scheduler, data, cfg, epoch, device, dist, progress, partial,
                                     checkpoints, save)
        partial = None
        train_seconds = time.perf_counter() - t0
        _check_weights(model, epoch)
        metrics, per_image = evaluate(net, data, cfg, device, dist, progress)
        log({"epoch": epoch, "train_loss": loss, "lr": lr, "metrics": metrics,
             "images_per_s": round(seen * dist.world / train_seconds, 2),
             "seconds": round(time.perf_counter() - t0, 3)}, per_image)
        if dist.main:
            best = save_checkpoint(run_dir, run, model, optimizer, scheduler, epoch, metrics, best, data.classes)
        if progress and dist.main:
            print(_summary(epoch, cfg.epochs, loss, metrics, lines[-1]["images_per_s"]), file=sys.stderr)
    return lines


def save_checkpoint(run_dir: RunDir, run: RunConfig, model, optimizer, scheduler, epoch: int,
                    metrics: dict | None, best: float, classes: list[str], partial: Partial | None = None) -> float:
    """Write last.pt (and best.pt when macro F1 improved); returns the best macro F1 so far.

    With ``partial`` the checkpoint is one written mid-epoch: ``epoch`` is the last finished epoch
    (with its ``metrics``), ``partial`` where the next one stands, and torch's random state is
    kept so that the rest of the epoch draws what it would have drawn."""
    macro_f1 = metrics["macro_f1"]["value"] if partial is None else -1.0
    ckpt = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler else None, "epoch": epoch,
            "config": run.to_dict(), "metrics": metrics, "best_macro_f1": max(best, macro_f1),
            "classes": classes, "package_version": __version__}
    if partial is not None:
        ckpt.update(partial=partial.to_dict(), rng=torch.get_rng_state())
    elif macro_f1 > best:
        formats.save_torch(run_dir.best, ckpt)
    formats.save_torch(run_dir.last, ckpt)
    return max(best, macro_f1)


def _summary(epoch: int, epochs: int, loss: float, m: dict, images_per_s: float) -> str:
    iou, f1, micro = m["macro_iou"], m["macro_f1"], m["micro_f1"]
    return (f"epoch {epoch}/{epochs}: loss {loss:.4f}, mean IoU {iou['value']:.3f} [{iou['low']:.3f}, "
            f"{iou['high']:.3f}], macro F1 {f1['value']:.3f}, micro F1 {micro['value']:.3f}, {images_per_s} img/s")
