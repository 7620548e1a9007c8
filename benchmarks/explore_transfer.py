"""Exploration of the training-recipe levers of synthetic -> real transfer (README, "Transfer to real
photographs": the exploration table was measured with this script).

Two subcommands, one thread each (the machine is shared):

  pretrain   LR-ASPP (or another torchvision model) trained on the report's synthetic scenes
             rendered on the fly, each scene seen once (indices 0..N-1 of seed 0), evaluated on
             256 held-out scenes (seed 1). Writes OUT/model.pt, OUT/log.jsonl, OUT/summary.json.
  finetune   a real image/mask folder (SBD, Weizmann Horse) trained the way the field does it:
             aspect-preserving random resize (short side S*U[0.5,2]), random crop SxS (mask padded
             with 255), hflip, photometric jitter; evaluation at short side S, logits upsampled
             bilinearly to the native label size, argmax there. From scratch or from a
             pretrained checkpoint (transfer auto/backbone, BN stats keep/reset). Writes
             OUT/log.jsonl (per evaluated epoch), OUT/final_confusion.pt (per-image confusion of
             the last epoch, for paired comparisons), OUT/summary.json.

The real datasets are folders ROOT/{train,trainannot,val,valannot} under --data-root (default
$FAKEBALLOONS_DATA or ../shared/data): stanford-background (8 classes) and weizmann-horse (2).

Example:
  python benchmarks/explore_transfer.py finetune --data sbd --lr 4e-3 --seed 0 --out runs/ft/scratch-lr4e-3-s0
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)
torch.set_num_interop_threads(1)

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from fakeballoons import SceneConfig  # noqa: E402
from fakeballoons.render import set_threads  # noqa: E402

set_threads(1)

from fakeballoons.data.datasets import FakeBalloons  # noqa: E402
from fakeballoons.data.downstream import SegmentationFolder  # noqa: E402
from fakeballoons.train.loop import normalize  # noqa: E402
from fakeballoons.train.metrics import SegmentationMetrics  # noqa: E402
from fakeballoons.train.models import build_model  # noqa: E402
from fakeballoons.train.transfer import load_init  # noqa: E402

DATA = {"sbd": ("stanford-background", 8), "horse": ("weizmann-horse", 2)}


def log_line(path: Path, obj: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(obj) + "\n")


def start_run(a) -> Path | None:
    """The run directory a.out, emptied of an unfinished run's log, with args.json; None if finished."""
    out = Path(a.out)
    if (out / "summary.json").exists():
        print(f"{out} finished already", file=sys.stderr)
        return None
    out.mkdir(parents=True, exist_ok=True)
    (out / "log.jsonl").unlink(missing_ok=True)
    (out / "args.json").write_text(json.dumps(vars(a), indent=2) + "\n")
    return out


def schedule(total: int, warmup: int, power: float = 0.9):
    """Linear warm-up over `warmup` steps, then poly decay to 0 at `total`."""
    def f(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return (1 - min(t, 1.0)) ** power
    return f


# ----------------------------------------------------------------------------- real data

class Cached(torch.utils.data.Dataset):
    """A SegmentationFolder decoded once into memory, with transforms applied per access."""

    def __init__(self, folder: SegmentationFolder, transforms=None):
        self.items = [folder[i] for i in range(len(folder))]  # folder has no transforms: raw tensors
        self.transforms = transforms

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        from torchvision import tv_tensors

        image, label = self.items[i]
        if self.transforms is None:
            return image, label
        im, lb = self.transforms(tv_tensors.Image(image), tv_tensors.Mask(label))
        return im.as_subclass(torch.Tensor), lb.as_subclass(torch.Tensor)


def train_transforms(size: int, scale=(0.5, 2.0), jitter: float = 0.3, hue: float = 0.05):
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    steps = [v2.RandomResize(int(size * scale[0]), int(size * scale[1]) + 1, antialias=True),
             v2.RandomCrop(size, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: 255}),
             v2.RandomHorizontalFlip()]
    if jitter > 0:
        steps.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter, hue=hue))
    return v2.Compose(steps)


@torch.no_grad()
def evaluate_real(model, val_items, size: int, num_classes: int, bootstrap: int = 1000):
    """Each image resized to short side `size`, logits upsampled to the native label size."""
    from torchvision.transforms.v2 import functional as TF

    model.eval()
    metrics = SegmentationMetrics(num_classes, 255, bootstrap=bootstrap, seed=0)
    for i, (image, label) in enumerate(val_items):
        x = TF.resize(image, [size], antialias=True)
        logits = model(normalize(x[None]))["out"]
        logits = F.interpolate(logits, size=label.shape, mode="bilinear", align_corners=False)
        metrics.update(logits.argmax(1), label[None], torch.tensor([i]))
    iv = metrics.compute_intervals()
    index, conf = metrics.per_image()
    return iv, {"index": index, "confusion": conf}


def reset_bn(model: nn.Module) -> int:
    n = 0
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            n += 1
    return n


def finetune(a) -> None:
    out = start_run(a)
    if out is None:
        return
    root, k = DATA[a.data]
    root = Path(a.data_root) / root
    t_load = time.perf_counter()
    train_set = Cached(SegmentationFolder(root / "train", root / "trainannot", k),
                       train_transforms(a.size, (a.scale_min, a.scale_max), a.jitter))
    val_items = Cached(SegmentationFolder(root / "val", root / "valannot", k)).items
    t_load = time.perf_counter() - t_load

    torch.manual_seed(a.seed)
    model = build_model(a.model, k, bn_momentum=a.bn_momentum)
    record = None
    if a.init:
        record = load_init(model, a.init, a.transfer)
        (out / "transfer.json").write_text(json.dumps(record["counts"]) + "\n")
        if a.bn == "reset":
            reset_bn(model)
    # data order and augmentation draw from the same global RNG in every arm of one seed
    g = torch.Generator().manual_seed(a.seed * 1000 + 7)
    loader = torch.utils.data.DataLoader(train_set, batch_size=a.batch, shuffle=True, drop_last=True,
                                         num_workers=0, generator=g)
    head, body = [], []
    for n, p in model.named_parameters():
        (body if n.startswith("backbone.") else head).append(p)
    if a.probe:  # frozen backbone weights (BN statistics still adapt in train mode): feature quality
        for p_ in body:
            p_.requires_grad_(False)
        groups = [{"params": head, "lr": a.lr}]
    else:
        groups = [{"params": body, "lr": a.lr * a.backbone_lr_mult}, {"params": head, "lr": a.lr}]
    opt = torch.optim.AdamW(groups, lr=a.lr, weight_decay=a.wd)
    steps_per_epoch = len(loader)
    total = a.epochs * steps_per_epoch
    warm = int(round(a.warmup_epochs * steps_per_epoch))
    base = schedule(total, warm)
    freeze_steps = int(round(a.freeze_epochs * steps_per_epoch))

    def body_lambda(step):
        return 0.0 if step < freeze_steps else base(step)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, [base] if a.probe else [body_lambda, base])

    step, seen, t_train, t_eval = 0, 0, 0.0, 0.0
    best = (-1.0, 0)
    for epoch in range(1, a.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        tot, nb = 0.0, 0
        for images, labels in loader:
            outputs = model(normalize(images))
            loss = F.cross_entropy(outputs["out"], labels, ignore_index=255, label_smoothing=a.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            seen += images.shape[0]
            tot += loss.item()
            nb += 1
            if not math.isfinite(loss.item()):
                raise RuntimeError(f"loss {loss.item()} at step {step}")
        t_train += time.perf_counter() - t0
        if epoch % a.eval_every == 0 or epoch == a.epochs:
            t1 = time.perf_counter()
            iv, per_image = evaluate_real(model, val_items, a.size, k)
            t_eval += time.perf_counter() - t1
            miou = iv["macro_iou"]
            if miou["value"] > best[0]:
                best = (miou["value"], epoch)
            log_line(out / "log.jsonl", {"epoch": epoch, "loss": tot / nb, "macro_iou": miou,
                                          "micro_accuracy": iv["micro_accuracy"]["value"],
                                          "train_s": round(t_train, 1), "eval_s": round(t_eval, 1)})
            print(f"epoch {epoch}: loss {tot / nb:.4f} mIoU {100 * miou['value']:.1f} "
                  f"[{100 * miou['low']:.1f}, {100 * miou['high']:.1f}] ({t_train:.0f}s train)", file=sys.stderr,
                  flush=True)
    torch.save(per_image, out / "final_confusion.pt")
    if a.save_model:
        torch.save({"model": model.state_dict()}, out / "model.pt")
    summary = {"final_macro_iou": iv["macro_iou"], "final_micro_accuracy": iv["micro_accuracy"],
               "best_macro_iou": best[0], "best_epoch": best[1], "images_seen": seen,
               "train_s": round(t_train, 1), "eval_s": round(t_eval, 1), "load_s": round(t_load, 1),
               "images_per_s": round(seen / t_train, 2), "steps": step, "transfer": record and record["counts"],
               "args": vars(a)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


# ----------------------------------------------------------------------------- synthetic pretraining

def synth_augment(images: torch.Tensor, labels: torch.Tensor, a, gen: torch.Generator):
    """Optional per-image augmentation of rendered scenes, tokens joined by '+':
    flip (hflip), crop (random resized crop, area 0.25-1), jitter (brightness/contrast/saturation 0.4),
    hue (hue jitter 0.1 on top of jitter: the classes are defined by hue, so this makes hue a partial
    nuisance), gray (random grayscale p=0.3: colour becomes useless, texture and shape must carry the class)."""
    raw = [] if a.pre_aug == "none" else a.pre_aug.split("+")
    if not raw:
        return images, labels
    # a token may carry a number: hue0.5 (hue jitter up to 0.5 = any hue), gray0.5 (grayscale probability)
    tokens, value = set(), {}
    for tok in raw:
        name = tok.rstrip("0123456789.")
        tokens.add(name)
        if name != tok:
            value[name] = float(tok[len(name):])
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    t = []
    if "flip" in tokens:
        t.append(v2.RandomHorizontalFlip())
    if "crop" in tokens:
        t.append(v2.RandomResizedCrop(a.size, scale=(0.25, 1.0), antialias=True))
    if "jitter" in tokens or "hue" in tokens:
        t.append(v2.ColorJitter(0.4, 0.4, 0.4, value.get("hue", 0.1) if "hue" in tokens else 0.0))
    if "gray" in tokens:
        t.append(v2.RandomGrayscale(value.get("gray", 0.3)))
    t = v2.Compose(t)
    ims, lbs = [], []
    for im, lb in zip(images, labels):
        x, y = t(tv_tensors.Image(im), tv_tensors.Mask(lb))
        ims.append(x.as_subclass(torch.Tensor))
        lbs.append(y.as_subclass(torch.Tensor))
    return torch.stack(ims), torch.stack(lbs)


@torch.no_grad()
def evaluate_synth(model, val: FakeBalloons, n_classes: int, batch: int = 32):
    model.eval()
    metrics = SegmentationMetrics(n_classes, 255, bootstrap=200, seed=0)
    for s in range(0, len(val), batch):
        idx = list(range(s, min(len(val), s + batch)))
        x, y = val.render_indices(idx, device="cpu")
        metrics.update(model(normalize(x))["out"].argmax(1), y, torch.tensor(idx))
    return metrics.compute_intervals()


def pretrain(a) -> None:
    out = start_run(a)
    if out is None:
        return
    if a.scene:
        from fakeballoons.commands import load_scene
        config = load_scene(a.scene).replace(height=a.render_size, width=a.render_size, noise=a.noise)
    else:
        config = SceneConfig(height=a.render_size, width=a.render_size, noise=a.noise)
    train = FakeBalloons(config, num=a.scenes, seed=0, split="all")
    val = FakeBalloons(config.replace(height=a.size, width=a.size), num=256, seed=1, split="all")
    n_classes = len(train.classes)
    torch.manual_seed(a.seed)
    model = build_model(a.model, n_classes, bn_momentum=a.bn_momentum)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.wd)
    total = a.scenes // a.batch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule(total, int(a.warmup_frac * total)))
    gen = torch.Generator().manual_seed(a.seed)
    t_render = t_train = 0.0
    tot = nb = 0
    for step in range(total):
        model.train()
        t0 = time.perf_counter()
        x, y = train.render_indices(list(range(step * a.batch, (step + 1) * a.batch)), device="cpu")
        x, y = synth_augment(x, y, a, gen)
        t1 = time.perf_counter()
        out_ = model(normalize(x))["out"]
        loss = F.cross_entropy(out_, y, ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        t_render += t1 - t0
        t_train += time.perf_counter() - t1
        tot += loss.item()
        nb += 1
        if (step + 1) % a.log_every == 0 or step + 1 == total:
            line = {"step": step + 1, "scenes": (step + 1) * a.batch, "loss": tot / nb,
                    "render_s": round(t_render, 1), "train_s": round(t_train, 1)}
            if (step + 1) % (a.log_every * a.eval_every_logs) == 0 or step + 1 == total:
                iv = evaluate_synth(model, val, n_classes)
                line["val_macro_iou"] = iv["macro_iou"]
            log_line(out / "log.jsonl", line)
            print(json.dumps(line), file=sys.stderr, flush=True)
            tot = nb = 0
        if step + 1 in a.snapshots_at:
            torch.save({"model": model.state_dict()}, out / f"model-step{step + 1}.pt")
    torch.save({"model": model.state_dict()}, out / "model.pt")
    iv = evaluate_synth(model, val, n_classes)
    summary = {"val_macro_iou": iv["macro_iou"], "scenes": total * a.batch, "steps": total,
               "render_s": round(t_render, 1), "train_s": round(t_train, 1),
               "images_per_s": round(total * a.batch / (t_render + t_train), 2), "args": vars(a)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def table(root: Path) -> str:
    """Markdown tables of every finished run under ROOT/pre and ROOT/ft (read from their summary.json)."""
    rows = ["| pretraining run | scenes | augmentation | synthetic val mIoU [95%] | wall (render + train) | command |",
            "|---|---|---|---|---|---|"]
    for d in sorted((root / "pre").glob("*/summary.json")):
        s = json.loads(d.read_text())
        a, iou = s["args"], s["val_macro_iou"]
        cmd = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in a.items()
                       if k in ("scene", "noise", "scenes", "batch", "lr", "pre_aug") and v is not None)
        rows.append(f"| {d.parent.name} | {s['scenes']} | {a['pre_aug']} | {100 * iou['value']:.1f} "
                    f"[{100 * iou['low']:.1f}, {100 * iou['high']:.1f}] | {s['render_s'] + s['train_s']:.0f} s "
                    f"({s['render_s']:.0f} + {s['train_s']:.0f}) | `pretrain {cmd}` |")
    rows += ["", "| fine-tuning run | data | init | LR | other | seed | final mIoU [95% images] | command |",
             "|---|---|---|---|---|---|---|---|"]
    keys = ("backbone_lr_mult", "warmup_epochs", "epochs", "probe")
    defaults = {"backbone_lr_mult": 1.0, "warmup_epochs": 0.0, "epochs": 30, "probe": False}
    for d in sorted((root / "ft").glob("*/summary.json")):
        s = json.loads(d.read_text())
        a, iou = s["args"], s["final_macro_iou"]
        init = Path(a["init"]).parent.name if a.get("init") else "scratch"
        other = ", ".join(f"{k}={a[k]}" for k in keys if a.get(k, defaults[k]) != defaults[k]) or "-"
        flags = " ".join(f"--{k.replace('_', '-')}" + ("" if a[k] is True else f" {a[k]}") for k in keys
                         if a.get(k, defaults[k]) != defaults[k])
        cmd = (f"finetune --data {a['data']} --lr {a['lr']} --seed {a['seed']} {flags}"
               + (f" --init pre/{init}/model.pt" if a.get("init") else "")).replace("  ", " ").strip()
        rows.append(f"| {d.parent.name} | {a['data']} | {init} | {a['lr']} | {other} | {a['seed']} | "
                    f"{100 * iou['value']:.1f} [{100 * iou['low']:.1f}, {100 * iou['high']:.1f}] | `{cmd}` |")
    return "\n".join(rows)


def main(argv=None):
    if argv is None and sys.argv[1:2] == ["table"]:  # python explore_transfer.py table ROOT
        print(table(Path(sys.argv[2] if len(sys.argv) > 2 else ".")))
        return
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("finetune")
    f.add_argument("--data", default="sbd", choices=sorted(DATA))
    f.add_argument("--data-root", default=os.environ.get("FAKEBALLOONS_DATA", "../shared/data"))
    f.add_argument("--out", required=True)
    f.add_argument("--model", default="lraspp_mobilenet_v3_large")
    f.add_argument("--bn-momentum", type=float, default=0.1)
    f.add_argument("--lr", type=float, default=2e-3)
    f.add_argument("--backbone-lr-mult", type=float, default=1.0)
    f.add_argument("--wd", type=float, default=1e-4)
    f.add_argument("--epochs", type=int, default=30)
    f.add_argument("--batch", type=int, default=16)
    f.add_argument("--size", type=int, default=128)
    f.add_argument("--scale-min", type=float, default=0.5)
    f.add_argument("--scale-max", type=float, default=2.0)
    f.add_argument("--jitter", type=float, default=0.3)
    f.add_argument("--warmup-epochs", type=float, default=0.0)
    f.add_argument("--freeze-epochs", type=float, default=0.0)
    f.add_argument("--label-smoothing", type=float, default=0.0)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--init", default=None)
    f.add_argument("--transfer", default="auto", choices=["auto", "backbone", "all-matching"])
    f.add_argument("--bn", default="keep", choices=["keep", "reset"])
    f.add_argument("--eval-every", type=int, default=3)
    f.add_argument("--save-model", action="store_true")
    f.add_argument("--probe", action="store_true", help="freeze the backbone's weights; train the head only")
    q = sub.add_parser("pretrain")
    q.add_argument("--out", required=True)
    q.add_argument("--model", default="lraspp_mobilenet_v3_large")
    q.add_argument("--bn-momentum", type=float, default=0.1)
    q.add_argument("--noise", default="perlin", choices=["perlin", "sc"])
    q.add_argument("--scene", default=None, help="a scene preset name or JSON file (main's package)")
    q.add_argument("--scenes", type=int, default=20000)
    q.add_argument("--batch", type=int, default=32)
    q.add_argument("--lr", type=float, default=2e-3)
    q.add_argument("--wd", type=float, default=1e-4)
    q.add_argument("--warmup-frac", type=float, default=0.02)
    q.add_argument("--size", type=int, default=128)
    q.add_argument("--render-size", type=int, default=128)
    q.add_argument("--pre-aug", default="none", help="none or tokens flip, crop, jitter, hue, gray joined by +")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--log-every", type=int, default=50)
    q.add_argument("--eval-every-logs", type=int, default=5)
    q.add_argument("--snapshots-at", type=int, nargs="*", default=[])
    a = p.parse_args(argv)
    if a.cmd == "finetune":
        finetune(a)
    else:
        pretrain(a)


if __name__ == "__main__":
    main()
