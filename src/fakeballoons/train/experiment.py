"""Pretrain -> transfer experiments: does pretraining on synthetic scenes help a downstream task?

One command runs the whole design in an experiment directory:

1. ``pretrain-{noise}``: a model trained on synthetic data of each noise function (seed 0);
2. ``downstream-{arm}-seed{s}``: the downstream task trained from random initialisation
   (``baseline``) and from each pretrained model (``perlin``, ``sc``; ``transfer`` says what
   is carried over), each arm repeated for seeds 0..S-1;
3. ``report.md`` and curves: the analogue of the report's Table 2 (pretraining), of its Table 3
   (downstream arms), and each arm's difference to the baseline with two intervals
   (:mod:`.report`).

Pretraining is done once per noise function; the seeds repeat the downstream arms, whose
variation is what the comparison is about. A finished run is skipped and a started one resumed,
so an interrupted experiment continues where it stopped. Experiment presets live in
``fakeballoons/configs/experiments/`` and may extend another (``"base"``); their ``pretrain`` and
``downstream`` recipes may extend training presets the same way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .._version import __version__
from ..codec import difference, from_plain, load_preset, to_plain
from ..config import NOISE_FUNCTIONS
from ..data import formats
from ..data.sources import DataConfig, open_data
from ..errors import ConfigError, UserError
from .loop import train
from .report import curves, difference_table, load_confusion, load_run, mean_table, table
from .run import RunConfig, TrainConfig
from .transfer import TRANSFER_MODES


@dataclass(frozen=True)
class ExperimentConfig:
    """The design: how to pretrain, how to train downstream, which noises, how many seeds."""

    PRESETS: ClassVar[str] = "experiments"

    pretrain: TrainConfig = field(default_factory=TrainConfig)
    downstream: TrainConfig = field(default_factory=TrainConfig)
    noises: tuple[str, ...] = NOISE_FUNCTIONS
    seeds: int = 1
    transfer: str = "auto"

    def __post_init__(self):
        if self.seeds < 1:
            raise ConfigError("seeds", f"must be >= 1, got {self.seeds}")
        if not self.noises or any(n not in NOISE_FUNCTIONS for n in self.noises):
            raise ConfigError("noises", f"must be a non-empty list of {' and '.join(NOISE_FUNCTIONS)}, "
                                        f"got {list(self.noises)}")
        if self.transfer not in TRANSFER_MODES:
            raise ConfigError("transfer", f"must be one of {list(TRANSFER_MODES)}, got {self.transfer!r}")

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @property
    def arms(self) -> list[str]:
        return ["baseline", *self.noises]


@dataclass(frozen=True)
class ExperimentRun:
    """Everything that defines an experiment directory: the design, the downstream data, the device."""

    experiment: ExperimentConfig
    downstream: DataConfig
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        return {"package_version": __version__, **to_plain(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentRun:
        return from_plain(cls, {k: v for k, v in data.items() if k != "package_version"})


def load_experiment_preset(name: str) -> ExperimentConfig:
    """An experiment preset (``paper-coco``, ``quick-folder``) or a JSON file of the same form."""
    return load_preset(ExperimentConfig, name, "experiment preset")


def _finished(run: Path, epochs: int) -> bool:
    ckpt = run / "last.pt"
    if not ckpt.exists():
        return False
    # mmap: only the pickled record is read, not the weights (about 140 MB for FCN-ResNet50)
    record = formats.load_torch(ckpt, "checkpoint", mmap=True)
    return isinstance(record, dict) and isinstance(record.get("epoch"), int) and record["epoch"] >= epochs


def _run(name: str, out: Path, run: RunConfig, log, progress: bool) -> Path:
    path = out / name
    if _finished(path, run.train.epochs):
        log(f"{name}: finished, skipped")
        return path
    resume = (path / "last.pt").exists()
    log(f"{name}: {'resuming' if resume else 'training'}")
    train(run, path, resume=resume, progress=progress)
    return path


def _open_experiment_dir(out: Path, record: ExperimentRun) -> None:
    path = out / "experiment.json"
    if path.exists():
        try:
            old = ExperimentRun.from_dict(formats.read_json(path, "experiment record"))
        except ConfigError as exc:
            raise UserError(f"{path} is not a fakeballoons experiment record ({exc})") from None
        why = difference(record, old)
        if why:
            raise UserError(f"{out} holds an experiment with other settings ({why}); use the same options "
                            "or a new directory")
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} is not empty and holds no experiment.json; choose a new or empty directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out}: {exc.strerror or exc}") from None
    formats.write_atomic(path, formats.json_bytes(record.to_dict(), indent=2))


def run_experiment(out: str | Path, record: ExperimentRun, *, progress: bool = True, log=print) -> Path:
    """Run (or finish) the whole experiment in ``out``; returns the report's path."""
    out, exp = Path(out), record.experiment
    ds = exp.downstream
    # a missing or broken downstream dataset fails before any pretraining
    open_data(record.downstream, size=ds.size, num_train=ds.num_train, num_val=ds.num_val, seed=ds.seed)
    _open_experiment_dir(out, record)
    pretrained = {noise: _run(f"pretrain-{noise}", out, RunConfig(DataConfig(f"synthetic:{noise}"), exp.pretrain,
                                                                   device=record.device), log, progress)
                  for noise in exp.noises}
    for seed in range(exp.seeds):
        cfg = dataclasses.replace(exp.downstream, seed=seed)
        for arm in exp.arms:
            init = None if arm == "baseline" else str(pretrained[arm] / "last.pt")
            _run(f"downstream-{arm}-seed{seed}", out,
                 RunConfig(record.downstream, cfg, init=init, transfer=exp.transfer, device=record.device),
                 log, progress)
    return write_experiment_report(out, exp)


def write_experiment_report(out: Path, exp: ExperimentConfig) -> Path:
    pre = [load_run(out / f"pretrain-{n}") for n in exp.noises]
    runs = {arm: [load_run(out / f"downstream-{arm}-seed{s}") for s in range(exp.seeds)] for arm in exp.arms}
    finals = {arm: [lines[-1]["metrics"] for _, lines in rs] for arm, rs in runs.items()}
    confusions = {arm: [load_confusion(out / f"downstream-{arm}-seed{s}") for s in range(exp.seeds)]
                  for arm in exp.arms}
    md = ["# Pretrain -> transfer experiment", "",
          f"Arms: {', '.join(exp.arms)}; {exp.seeds} seed(s) per arm; transfer mode `{exp.transfer}`. "
          "Values in percent. Image intervals: 95% bootstrap over validation images. "
          "Seed intervals: 95% t-interval over seeds (two or more seeds).", "",
          "## Pretraining on synthetic data (the report's Table 2)", "", table(pre),
          "## Downstream runs (the report's Table 3), each seed", "", table([r for rs in runs.values() for r in rs]),
          "## Downstream arms, mean over seeds", "", *mean_table(finals),
          "", "## Difference to the baseline (arm - baseline, percentage points)", "",
          "Each cell: mean difference over seeds; images: paired bootstrap interval; seeds: t-interval.", "",
          *difference_table(finals, confusions, "baseline")]
    curves(pre, out / "pretrain_curves.png")
    curves([r for rs in runs.values() for r in rs], out / "downstream_curves.png")
    md += ["", "![pretraining](pretrain_curves.png)", "", "![downstream](downstream_curves.png)", ""]
    path = out / "report.md"
    formats.write_atomic(path, "\n".join(md))
    return path


__all__ = ["ExperimentConfig", "ExperimentRun", "load_experiment_preset", "run_experiment",
           "write_experiment_report"]
