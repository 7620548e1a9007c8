"""Pretrain -> transfer experiments: does pretraining on synthetic scenes help a downstream task?

One command runs the whole design in an experiment directory:

1. ``pretrain-{noise}``: a model trained on synthetic data of each noise function (seed 0);
2. ``downstream-{arm}-seed{s}``: the downstream task trained from random initialisation
   (``baseline``) and from each pretrained model (``perlin``, ``sc``; ``--transfer`` says what
   is carried over), each arm repeated for seeds 0..S-1;
3. ``report.md`` and curves: the analogue of the report's Table 2 (pretraining), of its Table 3
   (downstream arms), and each arm's difference to the baseline with two intervals: a paired
   bootstrap over the same validation images (averaged over seeds) and, with two or more seeds,
   a t-interval over seeds.

Pretraining is done once per noise function; the seeds repeat the downstream arms, whose
variation is what the comparison is about. A finished run is skipped and a started one resumed,
so an interrupted experiment continues where it stopped.
"""

from __future__ import annotations

import json
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import from_plain, to_plain
from ..errors import UserError
from .config import TrainConfig, load_json_preset
from .data import FolderOptions, build_data
from .loop import train
from .metrics import METRICS, scores_from_confusion
from .report import TITLES, curves, load_run, table

# Two-sided 95% Student t quantiles t(0.975, df), df = 1..30 (beyond: 1.96).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


@dataclass(frozen=True)
class ExperimentConfig:
    """The design: how to pretrain, how to train downstream, which noises, how many seeds."""

    pretrain: TrainConfig = field(default_factory=TrainConfig)
    downstream: TrainConfig = field(default_factory=TrainConfig)
    noises: tuple[str, ...] = ("perlin", "sc")
    seeds: int = 1
    transfer: str = "auto"

    def __post_init__(self):
        if self.seeds < 1:
            raise UserError(f"--seeds must be >= 1, got {self.seeds}")
        if not self.noises or any(n not in ("perlin", "sc") for n in self.noises):
            raise UserError(f"noises must be a non-empty list of perlin and sc, got {list(self.noises)}")

    def to_dict(self):
        return to_plain(self)

    @property
    def arms(self) -> list[str]:
        return ["baseline", *self.noises]


def load_experiment_preset(name: str) -> ExperimentConfig:
    """An experiment preset (``paper-coco``, ``quick-folder``) or a JSON file of the same form."""
    return load_json_preset(name, ExperimentConfig, "experiments", "experiment preset")


def _finished(run: Path, epochs: int) -> bool:
    ckpt = run / "last.pt"
    if not ckpt.exists():
        return False
    # mmap: only the pickled record is read, not the weights (about 140 MB for FCN-ResNet50)
    return torch.load(ckpt, map_location="cpu", weights_only=False, mmap=True)["epoch"] >= epochs


def _run(name: str, out: Path, data: str, cfg: TrainConfig, log, **kwargs) -> Path:
    run = out / name
    if _finished(run, cfg.epochs):
        log(f"{name}: finished, skipped")
        return run
    resume = (run / "last.pt").exists()
    if run.exists() and not resume:
        shutil.rmtree(run)  # stopped before its first checkpoint: nothing to keep
    log(f"{name}: {'resuming' if resume else 'training'}")
    train(data, run, cfg, resume=resume, **kwargs)
    return run


def run_experiment(out: str | Path, downstream: str, exp: ExperimentConfig, *, device: str = "cpu",
                   folder: FolderOptions = FolderOptions(), progress: bool = True, log=print) -> Path:
    """Run (or finish) the whole experiment in ``out``; returns the report's path."""
    out = Path(out)
    record = {"downstream": downstream, "experiment": exp.to_dict(), "device": device,
              "folder": vars(folder) if downstream.startswith("folder:") else None}
    config_path = out / "experiment.json"
    if config_path.exists():
        old = json.loads(config_path.read_text())
        try:  # options added since the experiment was made take their defaults
            old["experiment"] = from_plain(ExperimentConfig, old["experiment"], "experiment").to_dict()
        except (UserError, KeyError, TypeError):
            pass  # not comparable: reported as other settings below
        if json.loads(json.dumps(old)) != json.loads(json.dumps(record)):
            raise UserError(f"{out} holds an experiment with other settings; use the same options or a new directory")
    elif out.exists() and any(out.iterdir()):
        raise UserError(f"{out} is not empty and holds no experiment.json; choose a new or empty directory")
    build_data(downstream, exp.downstream, folder=folder)  # a missing or broken dataset fails before pretraining
    out.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(record, indent=2) + "\n")
    pretrained = {}
    for noise in exp.noises:
        pretrained[noise] = _run(f"pretrain-{noise}", out, f"synthetic:{noise}", exp.pretrain, log,
                                 device=device, progress=progress)
    for seed in range(exp.seeds):
        cfg = exp.downstream.with_changes(seed=seed)
        for arm in exp.arms:
            init = None if arm == "baseline" else str(pretrained[arm] / "last.pt")
            _run(f"downstream-{arm}-seed{seed}", out, downstream, cfg, log, device=device, progress=progress,
                 init=init, transfer=exp.transfer, folder=folder)
    return write_experiment_report(out, exp)


# ----------------------------------------------------------------------------- report


def _t_interval(values: list[float]) -> tuple[float, float] | None:
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    h = _T975[min(len(values) - 1, len(_T975)) - 1] * statistics.stdev(values) / len(values) ** 0.5
    return mean - h, mean + h


def _paired_bootstrap(arm: list[dict], base: list[dict], resamples: int = 1000, seed: int = 0):
    """95% interval of the seed-averaged difference arm - baseline, resampling validation images
    (the same resample for every run, so the comparison is paired)."""
    idx = arm[0]["index"]
    for r in arm + base:
        if not torch.equal(r["index"], idx):
            raise UserError("runs of an experiment were evaluated on different validation images")
    n = len(idx)
    g = torch.Generator().manual_seed(seed)
    draws = torch.randint(0, n, (resamples, n), generator=g)
    weights = torch.zeros(resamples, n, dtype=torch.double).scatter_add_(1, draws, torch.ones(resamples, n, dtype=torch.double))

    def boot(r):
        c = r["confusion"].double()
        conf = (weights @ c.reshape(n, -1)).reshape(resamples, *c.shape[1:])
        return scores_from_confusion(conf)

    diffs = {m: torch.zeros(resamples, dtype=torch.double) for m in METRICS}
    for a, b in zip(arm, base):
        sa, sb = boot(a), boot(b)
        for m in METRICS:
            diffs[m] += (sa[m] - sb[m]) / len(arm)
    return {m: (float(torch.quantile(diffs[m], 0.025)), float(torch.quantile(diffs[m], 0.975))) for m in METRICS}


def write_experiment_report(out: Path, exp: ExperimentConfig) -> Path:
    pre = [load_run(out / f"pretrain-{n}") for n in exp.noises]
    runs = {(arm, s): load_run(out / f"downstream-{arm}-seed{s}") for arm in exp.arms for s in range(exp.seeds)}
    conf = {key: torch.load(out / f"downstream-{key[0]}-seed{key[1]}" / "val_confusion.pt", weights_only=False)
            for key in runs}
    md = ["# Pretrain -> transfer experiment", "",
          f"Arms: {', '.join(exp.arms)}; {exp.seeds} seed(s) per arm; transfer mode `{exp.transfer}`. "
          "Values in percent. Image intervals: 95% bootstrap over validation images. "
          "Seed intervals: 95% t-interval over seeds (two or more seeds).", "",
          "## Pretraining on synthetic data (the report's Table 2)", "", table(pre),
          "## Downstream runs (the report's Table 3), each seed", "", table(list(runs.values())),
          "## Downstream arms, mean over seeds", ""]
    head = "| arm | " + " | ".join(TITLES[m] for m in METRICS) + " |"
    md += [head, "|" + "---|" * (len(METRICS) + 1)]
    finals = {key: lines[-1]["metrics"] for key, (_, lines) in runs.items()}
    for arm in exp.arms:
        cells = []
        for m in METRICS:
            vals = [finals[(arm, s)][m]["value"] for s in range(exp.seeds)]
            ci = _t_interval(vals)
            cells.append(f"{100 * statistics.fmean(vals):.1f}" + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else ""))
        md.append(f"| {arm} | " + " | ".join(cells) + " |")
    md += ["", "## Difference to the baseline (arm - baseline, percentage points)", "",
           "Each cell: mean difference over seeds; images: paired bootstrap interval; seeds: t-interval.", "",
           "| arm | " + " | ".join(TITLES[m] for m in METRICS) + " |", "|" + "---|" * (len(METRICS) + 1)]
    for arm in exp.arms[1:]:
        boot = _paired_bootstrap([conf[(arm, s)] for s in range(exp.seeds)],
                                 [conf[("baseline", s)] for s in range(exp.seeds)])
        cells = []
        for m in METRICS:
            d = [finals[(arm, s)][m]["value"] - finals[("baseline", s)][m]["value"] for s in range(exp.seeds)]
            cell = f"{100 * statistics.fmean(d):+.1f}; images [{100 * boot[m][0]:+.1f}, {100 * boot[m][1]:+.1f}]"
            ci = _t_interval(d)
            if ci:
                cell += f"; seeds [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"
            cells.append(cell)
        md.append(f"| {arm} | " + " | ".join(cells) + " |")
    curves(pre, out / "pretrain_curves.png")
    curves([(f"{a}-seed{s}", lines) for (a, s), (_, lines) in runs.items()], out / "downstream_curves.png")
    md += ["", "![pretraining](pretrain_curves.png)", "", "![downstream](downstream_curves.png)", ""]
    path = out / "report.md"
    path.write_text("\n".join(md))
    return path


__all__ = ["ExperimentConfig", "load_experiment_preset", "run_experiment", "write_experiment_report"]
