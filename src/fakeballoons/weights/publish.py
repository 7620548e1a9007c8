"""Write a weights entry (file and card) into the registry from run directories, never by hand.

    python -m fakeballoons.weights.publish NAME --run EXP/pretrain-ARM \\
        --command "fakeballoons experiment ..." --commit SHA --summary "..." --limits "..." --check "..." \\
        --result "LABEL|EXPDIR|COMMAND" [--result ...]

takes the model of the pretraining run's ``last.pt`` (every tensor, float32, torchvision's
segmentation key layout), writes it beside this module with its SHA-256, and writes the card: the
run's resolved scene configuration and recipe, the classes and input it was trained at, and for
each ``--result`` the transfer experiment's scratch arm against its pretrained arm on the final
epoch (mean IoU over seeds, the difference with its paired bootstrap interval over validation
images and its t-interval over seeds), computed by the same functions as the experiment's
``report.md``. A maintainer's tool: it writes into the package folder of a source checkout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
from pathlib import Path

from ..data import formats
from ..data.sources import synthetic_scene
from ..errors import UserError
from ..names import INIT_IMAGENET
from ..train.experiment import BASELINE, read_experiment
from ..train.export import BACKBONES, state_bytes
from ..train.models import NORMALIZATION
from ..train.report import bootstrap_difference, load_confusion, load_run, t_interval
from ..train.run import RunConfig
from .cards import CARD_FIELDS, _folder, registry

_METRIC = "macro_iou"


def transfer_result(label: str, exp_dir: Path, command: str) -> dict:
    """Scratch against the pretrained arm of a finished transfer experiment, final epochs, percent."""
    record = read_experiment(exp_dir)
    arms = [a.name for a in record.experiment.arms]
    if len(arms) != 1:
        raise UserError(f"{exp_dir}: a result needs one pretrained arm, found {arms}")
    seeds = range(record.experiment.seeds)
    runs = {arm: [exp_dir / f"downstream-{arm}-seed{s}" for s in seeds] for arm in (BASELINE, arms[0])}
    finals = {arm: [load_run(p)[1][-1]["metrics"][_METRIC]["value"] for p in ps] for arm, ps in runs.items()}
    confusions = {arm: [load_confusion(p) for p in ps] for arm, ps in runs.items()}
    images = bootstrap_difference(confusions[arms[0]], confusions[BASELINE])[_METRIC]
    diffs = [a - b for a, b in zip(finals[arms[0]], finals[BASELINE])]
    seeds_ci = t_interval(diffs) or (float("nan"), float("nan"))
    pct = lambda v: round(100 * v, 2)  # noqa: E731
    return {"data": label, "classes": record.downstream.classes, "recipe": record.experiment.downstream.to_dict(),
            "seeds_run": len(diffs), "scratch": pct(statistics.fmean(finals[BASELINE])),
            "pretrained": pct(statistics.fmean(finals[arms[0]])), "difference": pct(statistics.fmean(diffs)),
            "images": [pct(images[0]), pct(images[1])], "seeds": [pct(seeds_ci[0]), pct(seeds_ci[1])],
            "per_seed": {"scratch": [pct(v) for v in finals[BASELINE]],
                         "pretrained": [pct(v) for v in finals[arms[0]]]},
            "command": command}


def publish(name: str, run_dir: Path, *, command: str, commit: str, summary: str, limits: str, check: str,
            results: list[tuple[str, Path, str]], folder: Path | None = None) -> dict:
    """Write ``NAME.pt`` and its card into ``folder`` (default: the package's weights folder)."""
    folder = folder or _folder()
    ckpt = formats.load_torch(run_dir / "last.pt", "checkpoint")
    run = RunConfig.from_dict(ckpt["config"])
    if run.data.kind != "synthetic":
        raise UserError(f"{run_dir} did not train on synthetic scenes")
    if run.init is not None and run.init != INIT_IMAGENET:
        raise UserError(f"{run_dir} started from {run.init}: an entry starts from nothing or from ImageNet "
                        "(a card cannot vouch for another checkpoint)")
    if run.train.epochs != ckpt["epoch"]:
        raise UserError(f"{run_dir} is not finished ({ckpt['epoch']} of {run.train.epochs} epochs)")
    data = state_bytes(ckpt["model"])
    file = f"{name}.pt"
    mean, std = NORMALIZATION[run.train.model]
    card = {
        "name": name, "summary": summary, "file": file, "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data), "architecture": run.train.model, "torchvision_backbone": BACKBONES[run.train.model][0],
        "num_classes": len(ckpt["classes"]), "classes": list(ckpt["classes"]), "input_size": run.train.size,
        "resize": run.train.resize, "normalization": {"mean": list(mean), "std": list(std)},
        "scene": synthetic_scene(run.data, run.train.size).to_dict(), "recipe": run.train.to_dict(),
        "init": run.init, "command": command, "commit": commit,
        "check": check, "results": [transfer_result(*r) for r in results], "limits": limits,
    }
    assert set(card) == set(CARD_FIELDS), set(card) ^ set(CARD_FIELDS)
    cards = [c for c in registry().values() if c["name"] != name] + [card]
    formats.write_files_atomic([(folder / file, data),
                                (folder / "registry.json", json.dumps(cards, indent=2) + "\n")])
    registry.cache_clear()
    return card


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fakeballoons.weights.publish", description=__doc__.split("\n")[0])
    p.add_argument("name")
    p.add_argument("--run", required=True, type=Path, help="the pretraining run directory")
    for flag in ("command", "commit", "summary", "limits", "check"):
        p.add_argument(f"--{flag}", required=True)
    p.add_argument("--result", action="append", default=[], metavar="LABEL|EXPDIR|COMMAND")
    args = p.parse_args(argv)
    results = []
    for text in args.result:
        label, exp_dir, command = text.split("|", 2)
        results.append((label, Path(exp_dir), command))
    try:
        card = publish(args.name, args.run, command=args.command, commit=args.commit, summary=args.summary,
                       limits=args.limits, check=args.check, results=results)
    except UserError as exc:
        print(f"publish: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {card['file']} ({card['bytes']:,} bytes, sha256 {card['sha256']}) and its card")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
