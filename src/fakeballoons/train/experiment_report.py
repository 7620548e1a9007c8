"""``report.md`` of an experiment directory, with its figures, from whatever runs are finished.

Transfer experiments: the analogue of the report's Table 2 (pretraining), Table 3 (downstream
runs), each arm's mean over seeds, and its difference to the baseline (paired bootstrap over the
same validation images; t-interval over seeds). Sweeps: each arm on its own validation scenes,
its difference to the reference arm (paired where both arms were evaluated on the same scenes,
unpaired otherwise, and the table says which), what each removed cue is worth, the
cross-evaluation matrix (table and heat map), per-class F1 (table and bars), confusion matrices,
learning curves and a sheet of each arm's scenes.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ..data import formats
from ..names import INIT_IMAGENET
from .experiment import BASELINE, ExperimentRun, finished, plan
from .metrics import per_class_f1, scores_from_confusion
from .plots import class_bars, curves, heat_map, scene_sheets
from .report import (
    bootstrap_difference,
    difference_table,
    load_confusion,
    load_run,
    mean_table,
    recovered_share,
    same_images,
    t_interval,
    table,
)

_HEADLINE = "macro_iou"  # mean IoU, the field's headline number


def write_experiment_report(out: str | Path, record: ExperimentRun) -> Path:
    """Write ``report.md`` (and its figures) into experiment directory ``out`` from its finished runs."""
    out = Path(out)
    done = {job.name for job in plan(record) if finished(out / job.name, job.run.train.epochs)}
    md = (_transfer(out, record, done) if record.experiment.kind == "transfer" else _sweep(out, record, done))
    missing = [job.name for job in plan(record) if job.name not in done]
    if missing:
        md += ["", f"Not finished yet, so not in this report: {', '.join(missing)}.", ""]
    path = out / "report.md"
    formats.write_atomic(path, "\n".join(md) + "\n")
    return path


def _pct(v: float) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def _complete(names_by_arm: dict[str, list[str]], done: set[str]) -> dict[str, list[str]]:
    """The arms all of whose runs (one per seed) are finished."""
    return {arm: names for arm, names in names_by_arm.items() if names and all(n in done for n in names)}


def _arm_curves(runs: dict[str, list], path: Path) -> None:
    """Learning curves of every run, one colour per arm (``runs``: arm -> its runs)."""
    curves([r for rs in runs.values() for r in rs], path,
           groups={name: arm for arm, rs in runs.items() for name, _ in rs})


def _transfer(out: Path, record: ExperimentRun, done: set[str]) -> list[str]:
    exp = record.experiment
    pre = [load_run(out / f"pretrain-{a.name}") for a in exp.arms if f"pretrain-{a.name}" in done]
    arms = _complete({arm: [f"downstream-{arm}-seed{s}" for s in range(exp.seeds)] for arm in exp.downstream_arms},
                     done)
    runs = {arm: [load_run(out / n) for n in names] for arm, names in arms.items()}
    finals = {arm: [lines[-1]["metrics"] for _, lines in rs] for arm, rs in runs.items()}
    md = ["# Pretrain -> transfer experiment", "",
          f"Arms: {', '.join(exp.downstream_arms)}; {exp.seeds} seed(s) per arm; transfer mode `{exp.transfer}`. "
          "Values in percent. Image intervals: 95% bootstrap over validation images. "
          "Seed intervals: 95% t-interval over seeds (two or more seeds).", "",
          "## Pretraining on synthetic data (the report's Table 2)", "", table(pre) if pre else "(none finished)\n",
          "## Downstream runs (the report's Table 3), each seed", "",
          table([r for rs in runs.values() for r in rs]) if runs else "(none finished)\n",
          "## Downstream arms, mean over seeds", "", *mean_table(finals)]
    if BASELINE in finals and len(finals) > 1:
        confusions = {arm: [load_confusion(out / n) for n in names] for arm, names in arms.items()}
        md += ["", "## Difference to the baseline (arm - baseline, percentage points)", "",
               "Each cell: mean difference over seeds; images: paired bootstrap interval; seeds: t-interval.", "",
               *difference_table({BASELINE: finals[BASELINE], **finals}, confusions, BASELINE)]
        md += _against_imagenet(exp, finals, confusions)
    if pre:
        curves(pre, out / "pretrain_curves.png")
        md += ["", "![pretraining](pretrain_curves.png)"]
    if runs:
        _arm_curves(runs, out / "downstream_curves.png")
        md += ["", "![downstream](downstream_curves.png)"]
    pretrained = {a.name: a.scene for a in exp.arms if not a.weights}  # arms with a pretraining run
    if pretrained:
        scene_sheets(pretrained, out / "scenes.png")
        md += ["", "The pretraining scenes of each arm (image beside label map):", "", "![scenes](scenes.png)", ""]
    return md


def _against_imagenet(exp, finals: dict, confusions: dict) -> list[str]:
    """With an arm that starts from ImageNet weights: the share of ImageNet's gain over scratch that
    each other arm recovers, and each arm's difference to the ImageNet arm."""
    imagenet = next((a.name for a in exp.arms if a.weights == INIT_IMAGENET and a.name in finals), None)
    others = [a.name for a in exp.arms if a.name in finals and a.name != imagenet]
    if imagenet is None or not others:
        return []
    md = ["", f"## Share of ImageNet's gain (arm `{imagenet}`) that each arm recovers", "",
          f"(arm - baseline) / ({imagenet} - baseline) of mean IoU averaged over seeds; 95% bootstrap interval "
          "drawing the validation images (the same for every run) and the seeds (the same for the three arms). "
          "1 = all of ImageNet's gain, above 1 = more.", "",
          "| arm | share of ImageNet's gain | 95% interval | resamples where ImageNet gained nothing |",
          "|---|---|---|---|"]
    for arm in others:
        r = recovered_share(confusions[arm], confusions[imagenet], confusions[BASELINE])
        md.append(f"| {arm} | {r['value']:.2f} | [{r['low']:.2f}, {r['high']:.2f}] | {r['undefined']} |")
    md += ["", f"## Difference to `{imagenet}` (arm - {imagenet}, percentage points)", "",
           *difference_table({imagenet: finals[imagenet], **{a: finals[a] for a in others}}, confusions, imagenet)]
    return md


def _sweep(out: Path, record: ExperimentRun, done: set[str]) -> list[str]:
    exp = record.experiment
    names = [a.name for a in exp.arms]
    arms = _complete({a: [f"train-{a}-seed{s}" for s in range(exp.seeds)] for a in names}, done)
    runs = {arm: [load_run(out / n) for n in ns] for arm, ns in arms.items()}
    finals = {arm: [lines[-1]["metrics"] for _, lines in rs] for arm, rs in runs.items()}
    confusions = {arm: [load_confusion(out / n) for n in ns] for arm, ns in arms.items()}
    ref = exp.reference_arm
    md = ["# Scene-design sweep", "",
          f"Arms: {', '.join(names)}; reference arm `{ref}`; {exp.seeds} seed(s) per arm. Each arm trains a model "
          "on its own scenes, rendered on the fly, and is evaluated on its own validation scenes and on every other "
          "arm's. Values in percent. Image intervals: 95% bootstrap over validation images; seed intervals: 95% "
          "t-interval over seeds (two or more seeds).", "",
          "## Each arm on its own validation scenes, each seed", "",
          table([r for rs in runs.values() for r in rs]) if runs else "(none finished)\n",
          "## Mean over seeds", "", *mean_table(finals)]
    if ref in finals and len(finals) > 1:
        pairing = {arm: same_images(confusions[arm], confusions[ref]) for arm in finals}
        md += ["", f"## Difference to `{ref}` (arm - {ref}, percentage points)", "",
               "Paired: both arms were evaluated on the same scenes (same indices, the same target pixels per "
               "class in every image: the same scenes rendered differently), and each bootstrap resample draws the "
               "same images for both. Unpaired: the arms' scenes differ, and each arm's images are resampled on "
               "their own.", "",
               *difference_table({ref: finals[ref], **finals}, confusions, ref, pairing)]
        md += _cues(exp, finals, confusions, pairing, ref)
    md += _cross(out, exp, names, done)
    if runs:
        md += _per_class(out, exp, confusions)
        _arm_curves(runs, out / "curves.png")
        md += ["", "## Learning curves", "", "![curves](curves.png)"]
    scene_sheets({a.name: a.scene for a in exp.arms}, out / "scenes.png",
                 size=min(128, exp.pretrain.size))
    md += ["", "## The scenes of each arm", "", "Image beside label map, the first four scenes of each arm:", "",
           "![scenes](scenes.png)", ""]
    return md


class _Drop(NamedTuple):
    """A single cue whose removal clearly lowers mean IoU (sorts by ``mean``, the largest loss first)."""

    mean: float  # mean difference over seeds, a fraction
    cue: str
    has_seed_interval: bool
    images: tuple[float, float]  # the image interval of the difference


def _cues(exp, finals, confusions, pairing, ref) -> list[str]:
    """What each removed cue is worth, and which the model leans on."""
    rows, drops = [], []
    for arm in exp.arms:
        if not arm.cue or arm.name not in finals or arm.name == ref:
            continue
        d = [f[_HEADLINE]["value"] - r[_HEADLINE]["value"] for f, r in zip(finals[arm.name], finals[ref])]
        boot = bootstrap_difference(confusions[arm.name], confusions[ref], pairing[arm.name])[_HEADLINE]
        seeds = t_interval(d)
        mean = statistics.fmean(d)
        clear = boot[1] < 0 and (seeds is None or seeds[1] < 0)
        reading = ("costs mean IoU: the model uses it" if clear else
                   "no loss beyond the intervals" if boot[0] <= 0 <= boot[1] else "mean IoU changes")
        own = statistics.fmean(f[_HEADLINE]["value"] for f in finals[arm.name])
        rows.append(f"| without {arm.cue} | `{arm.name}` | {_pct(own)} "
                    f"| {100 * mean:+.1f} | [{100 * boot[0]:+.1f}, {100 * boot[1]:+.1f}] | "
                    + (f"[{100 * seeds[0]:+.1f}, {100 * seeds[1]:+.1f}]" if seeds else "one seed") + f" | {reading} |")
        if clear and "+" not in arm.cue:
            drops.append(_Drop(mean, arm.cue, seeds is not None, (boot[0], boot[1])))
    if not rows:
        return []
    lines = ["", "## What each cue is worth", "",
             f"Mean IoU of a model trained and evaluated without the cue, and its difference to `{ref}` (percentage "
             "points) with the image interval (paired or unpaired as above) and the seed interval.", "",
             "| question | arm | mean IoU | difference | images | seeds | reading |", "|---|---|---|---|---|---|---|",
             *rows, ""]
    if drops:
        worst = min(drops)
        rest = [d for d in sorted(drops) if d.cue != worst.cue]
        others = ", ".join(f"{d.cue} ({100 * d.mean:+.1f})" for d in rest)
        below = ("with both intervals below zero" if worst.has_seed_interval else
                 "with its image interval below zero (one seed: no seed interval; more seeds would give one)")
        close = [d.cue for d in rest if d.images[0] <= worst.images[1]]
        lines.append(f"The model leans most on **{worst.cue}**: taking it away costs {100 * worst.mean:+.1f} points of "
                     f"mean IoU, {below}" + (f"; it also uses {others}." if others else ".")
                     + (f" The ranking over {', '.join(close)} rests on the point estimates alone: their image "
                        "intervals overlap." if close else ""))
    else:
        lines.append("No single cue's removal lowers mean IoU beyond its intervals: the model can do without any "
                     "one of them.")
    return lines


def _cross(out: Path, exp, names: list[str], done: set[str]) -> list[str]:
    """The cross-evaluation matrix: mean IoU of each arm's model on each arm's validation scenes."""
    matrix = np.full((len(names), len(names)), np.nan)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            runs = [f"train-{a}-seed{s}" if a == b else f"cross-{a}-on-{b}-seed{s}" for s in range(exp.seeds)]
            if all(r in done for r in runs):
                matrix[i, j] = statistics.fmean(load_run(out / r)[1][-1]["metrics"][_HEADLINE]["value"] for r in runs)
    if np.isnan(matrix).all():
        return []
    heat_map(matrix, names, names, "mean IoU, mean over seeds", out / "cross_eval.png")
    head = "| trained on \\ evaluated on | " + " | ".join(f"`{n}`" for n in names) + " |"
    rows = [head, "|" + "---|" * (len(names) + 1)]
    rows += [f"| `{a}` | " + " | ".join(_pct(v) for v in matrix[i]) + " |" for i, a in enumerate(names)]
    return ["", "## Cross-evaluation (mean IoU, mean over seeds)", "",
            "Row: the scenes a model was trained on; column: the validation scenes it is evaluated on (the diagonal is "
            "each arm on its own scenes; n/a: arms with different class counts).", "", *rows, "",
            "![cross-evaluation](cross_eval.png)"]


def _per_class(out: Path, exp, confusions: dict[str, list[dict]]) -> list[str]:
    """Per-class F1 (table and bars) and the confusion matrix of every arm, summed over seeds."""
    scenes = {a.name: a.scene for a in exp.arms}
    lines = ["", "## Per-class F1 (own validation scenes, confusion summed over seeds)", ""]
    summed = {arm: torch.stack([r["confusion"].sum(0) for r in rs]).sum(0) for arm, rs in confusions.items()}
    names = {arm: ["background"] + [c.name for c in scenes[arm].classes] for arm in summed}
    f1 = {arm: per_class_f1(conf).tolist() for arm, conf in summed.items()}
    shared = next(iter(names.values()))
    if all(n == shared for n in names.values()) and len(shared) <= 16:
        lines += ["| arm | " + " | ".join(shared) + " |", "|" + "---|" * (len(shared) + 1)]
        lines += [f"| `{arm}` | " + " | ".join(_pct(v) for v in vals) + " |" for arm, vals in f1.items()]
        class_bars(f1, shared, "per-class F1 on own validation scenes", out / "per_class_f1.png")
        lines += ["", "![per-class F1](per_class_f1.png)"]
    else:  # arms with other classes, or too many for a table
        lines += [f"- `{arm}`: " + ", ".join(f"{n} {_pct(v)}" for n, v in zip(names[arm], vals))
                  for arm, vals in f1.items()]
    lines += ["", "## Confusion matrices (pixels, rows = target class, columns = predicted; summed over seeds)", ""]
    for arm, conf in summed.items():
        if conf.shape[0] > 12:
            lines.append(f"`{arm}`: {conf.shape[0]} classes, overall pixel accuracy "
                         f"{_pct(float(scores_from_confusion(conf)['micro_accuracy']))}")
            continue
        classes = ["bg"] + [c.name for c in scenes[arm].classes]
        lines += [f"`{arm}`:", "", "| target \\ predicted | " + " | ".join(classes) + " |",
                  "|" + "---|" * (len(classes) + 1)]
        lines += [f"| {classes[i]} | " + " | ".join(str(int(v)) for v in row) + " |"
                  for i, row in enumerate(conf.tolist())]
        lines.append("")
    return lines
