"""Training and evaluation as plain functions (in the manner of torchvision's reference scripts).

A run directory holds ``config.json`` (everything that defines the run), ``metrics.jsonl`` (one
line per epoch: train loss, lr, the six metrics with 95% intervals, images/s, seconds),
``last.pt`` and ``best.pt`` (model, optimizer, scheduler, epoch, config; best by macro F1),
``val_confusion.pt`` (the last evaluation's per-image confusion matrices, for paired comparisons
between runs) and, with ``--init``, ``transfer.json``. Every epoch is a pure function of the checkpoint before it:
the data order and the random state are seeded by (seed, epoch), so ``--resume`` after a kill
continues exactly as an uninterrupted run would (on the CPU).

Under ``torchrun`` (WORLD_SIZE > 1) the model is wrapped in DistributedDataParallel (gloo on the
CPU, NCCL on GPUs), each process takes every world-th sample, the metrics are gathered across
processes, and only rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._version import __version__
from ..config import SceneConfig
from ..data import formats
from ..errors import UserError
from .config import TrainConfig
from .data import Data, FolderOptions, batches, build_data
from .metrics import SegmentationMetrics
from .models import build_model
from .transfer import load_init

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


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


def setup_distributed(device: str) -> Dist:
    """Join the process group torchrun describes in the environment (if WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float, ImageNet mean/std."""
    mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def compute_loss(outputs: dict[str, torch.Tensor], labels: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Cross-entropy ignoring ``ignore_index``; torchvision's auxiliary loss at weight 0.5 if present."""
    loss = F.cross_entropy(outputs["out"].float(), labels, ignore_index=ignore_index)
    if "aux" in outputs:
        loss = loss + 0.5 * F.cross_entropy(outputs["aux"].float(), labels, ignore_index=ignore_index)
    return loss


def _autocast(device: torch.device, enabled: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def train_one_epoch(model, optimizer, scheduler, data: Data, cfg: TrainConfig, epoch: int,
                    device: torch.device, dist: Dist, progress: bool) -> tuple[float, int]:
    """One pass over the training split. Returns (mean loss, images seen by this process)."""
    from tqdm import tqdm

    model.train()
    total, steps, images_seen = 0.0, 0, 0
    n_batches = max(1, len(data.train) // (cfg.batch_size * dist.world))
    bar = tqdm(batches(data.train, cfg, train=True, epoch=epoch, device=device, rank=dist.rank, world=dist.world),
               total=n_batches, desc=f"epoch {epoch}", unit="batch", leave=False, file=sys.stderr,
               disable=not (progress and dist.main), dynamic_ncols=True)
    pending = None  # (step, loss) of the previous step, read one step late so the GPU never waits

    def settle() -> None:
        nonlocal total, steps
        at, loss_value = pending
        value = loss_value.item()  # on CUDA the one host-device synchronisation of a step
        if not math.isfinite(value):
            raise TrainingDiverged(f"loss became {value} at epoch {epoch}, step {at}")
        total += value
        steps += 1
        bar.set_postfix(loss=f"{total / steps:.4f}")

    for step, (images, labels, _) in enumerate(bar):
        x = normalize(images)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, cfg.amp):
            outputs = model(x)
        loss = compute_loss(outputs, labels, data.ignore_index)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        # Reading this step's loss now would make the host wait for the GPU to finish it; the
        # previous step's is ready, and the host can go on to queue (and render) the next batch.
        # A non-finite loss is thus caught one step late: no checkpoint is written in the epoch.
        if pending is not None:
            settle()
        pending = (step, loss.detach())
        images_seen += images.shape[0]
    if pending is not None:
        settle()
    return total / max(steps, 1), images_seen


@torch.no_grad()
def evaluate(model, data: Data, cfg: TrainConfig, device: torch.device, dist: Dist,
             progress: bool = False) -> tuple[dict[str, dict[str, float]], dict[str, torch.Tensor]]:
    """The six metrics over the whole validation split, with 95% bootstrap intervals, and the
    per-image confusion matrices behind them ({"index": (N,), "confusion": (N, C, C)})."""
    from tqdm import tqdm

    model.eval()
    metrics = SegmentationMetrics(len(data.classes), data.ignore_index, bootstrap=cfg.bootstrap,
                                  seed=cfg.seed).to(device)
    for images, labels, index in tqdm(batches(data.val, cfg, train=False, epoch=0, device=device,
                                              rank=dist.rank, world=dist.world),
                                      desc="evaluate", leave=False, file=sys.stderr,
                                      disable=not (progress and dist.main), dynamic_ncols=True):
        x = normalize(images)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, cfg.amp):
            pred = model(x)["out"].argmax(1)
        metrics.update(pred, labels, index)
    with metrics.sync_context(should_sync=dist.world > 1):
        index, confusion = metrics.per_image()
        return metrics.compute_intervals(), {"index": index, "confusion": confusion}


def _optimizer(model: nn.Module, cfg: TrainConfig):
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _scheduler(optimizer, cfg: TrainConfig, steps_per_epoch: int):
    if cfg.schedule != "poly":
        return None
    total = max(1, cfg.epochs * steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (1 - min(step, total - 1) / total) ** 0.9)


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_text(path: Path, text: str) -> None:
    formats.write_files_atomic([(path, text.encode())])


def run_config(data_spec: str, cfg: TrainConfig, scene: SceneConfig | None, init: str | None,
               transfer: str, device: str, folder: FolderOptions = FolderOptions()) -> dict[str, Any]:
    """What config.json records: everything that defines the run."""
    return {"package_version": __version__, "data": data_spec, "train": cfg.to_dict(),
            "folder": dataclasses.asdict(folder) if data_spec.startswith("folder:") else None,
            "scene": scene.to_dict() if scene is not None else None,
            "init": init, "transfer": transfer if init else None, "device": device}


def _same_run(a: dict, b: dict) -> str | None:
    """Why two run configs may not share a directory (epochs may grow on resume), or None."""
    defaults = TrainConfig().to_dict()  # options added since a run was made take their defaults
    a = json.loads(json.dumps(a))
    b = json.loads(json.dumps(b))
    for run in (a, b):
        run["train"] = {**defaults, **run["train"]}
        run["train"].pop("epochs")
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            if key == "train":
                diff = sorted(k for k in a["train"] if a["train"][k] != b["train"].get(k))
                return f"training option {diff[0]} differs"
            return f"{key} differs"
    return None


def train(data_spec: str, out: str | Path, cfg: TrainConfig, *, device: str = "cpu",
          scene: SceneConfig | None = None, resume: bool = False, init: str | None = None,
          transfer: str = "auto", progress: bool = True, folder: FolderOptions = FolderOptions()) -> list[dict]:
    """Train (and evaluate each epoch) into run directory ``out``; returns the metrics lines.

    ``cfg.epochs == 0`` evaluates the initial (or ``init``) model once and writes one line.
    """
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but torch sees no CUDA GPU (use --device cpu)")
    dist = setup_distributed(device)
    dev = torch.device(f"cuda:{dist.local_rank}" if device == "cuda" else "cpu")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)  # also where batches are rendered: render/cuda.py follows torch's device
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its fastest convolutions
    out = Path(out)
    config = run_config(data_spec, cfg, scene, init, transfer, device, folder)
    config_path, metrics_path = out / "config.json", out / "metrics.jsonl"
    if resume:
        if not (out / "last.pt").exists():
            raise UserError(f"--resume: {out} has no last.pt to resume from")
        old = json.loads(config_path.read_text())
        why = _same_run(old, config)
        if why:
            raise UserError(f"--resume: {out} was made with other settings ({why}); use the same options")
    elif config_path.exists():
        raise UserError(f"{out} already holds a run; use --resume to continue it, or a new directory")
    data = build_data(data_spec, cfg, scene, folder)

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, len(data.classes), cfg.aux_loss, cfg.bn_momentum)
    transfer_record = load_init(model, init, transfer) if init and not resume else None
    model.to(dev)
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = _optimizer(model, cfg)
    steps_per_epoch = max(1, len(data.train) // (cfg.batch_size * dist.world))
    scheduler = _scheduler(optimizer, cfg, steps_per_epoch)
    start, best = 1, -1.0
    lines: list[dict] = []
    if resume:
        ckpt = torch.load(out / "last.pt", map_location=dev, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt.get("scheduler"):
            scheduler.load_state_dict(ckpt["scheduler"])
        start, best = ckpt["epoch"] + 1, ckpt.get("best_macro_f1", -1.0)
        if metrics_path.exists():
            lines = [json.loads(x) for x in metrics_path.read_text().splitlines()]
            lines = [x for x in lines if x["epoch"] <= ckpt["epoch"]]
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        _atomic_text(config_path, json.dumps(config, indent=2) + "\n")
        _atomic_text(metrics_path, "".join(json.dumps(x) + "\n" for x in lines))
        if transfer_record is not None:
            _atomic_text(out / "transfer.json", json.dumps(transfer_record, indent=2) + "\n")
    net = model
    if dist.world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)

    def write(line: dict) -> None:
        lines.append(line)
        if dist.main:
            with open(metrics_path, "a") as fh:
                fh.write(json.dumps(line) + "\n")

    def save_confusion(per_image: dict, epoch: int) -> None:
        if dist.main:  # for paired comparisons between runs on the same validation images
            _atomic_save({**per_image, "epoch": epoch, "classes": data.classes}, out / "val_confusion.pt")

    if cfg.epochs == 0 and not resume:
        t0 = time.perf_counter()
        metrics, per_image = evaluate(net, data, cfg, dev, dist, progress)
        write({"epoch": 0, "train_loss": None, "lr": None, "metrics": metrics, "images_per_s": None,
               "seconds": round(time.perf_counter() - t0, 3)})
        save_confusion(per_image, 0)
        return lines
    for epoch in range(start, cfg.epochs + 1):
        torch.manual_seed(cfg.seed * 1_000_003 + epoch)  # dropout etc.: a function of the epoch alone
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        loss, seen = train_one_epoch(net, optimizer, scheduler, data, cfg, epoch, dev, dist, progress)
        train_seconds = time.perf_counter() - t0
        metrics, per_image = evaluate(net, data, cfg, dev, dist, progress)
        line = {"epoch": epoch, "train_loss": loss, "lr": lr, "metrics": metrics,
                "images_per_s": round(seen * dist.world / train_seconds, 2),
                "seconds": round(time.perf_counter() - t0, 3)}
        write(line)
        if dist.main:
            macro_f1 = metrics["macro_f1"]["value"]
            ckpt = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler else None, "scaler": None,
                    "epoch": epoch, "config": config, "metrics": metrics,
                    "best_macro_f1": max(best, macro_f1), "classes": data.classes}
            if macro_f1 > best:
                best = macro_f1
                _atomic_save(ckpt, out / "best.pt")
            save_confusion(per_image, epoch)
            _atomic_save(ckpt, out / "last.pt")
        if progress and dist.main:
            m = metrics
            print(f"epoch {epoch}/{cfg.epochs}: loss {loss:.4f}, macro F1 {m['macro_f1']['value']:.3f} "
                  f"[{m['macro_f1']['low']:.3f}, {m['macro_f1']['high']:.3f}], micro F1 "
                  f"{m['micro_f1']['value']:.3f}, {line['images_per_s']} img/s", file=sys.stderr)
    return lines

