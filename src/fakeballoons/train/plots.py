"""Figures of runs and experiments, written as PNG through the package's atomic writer: training
curves, the cross-evaluation heat map, per-class F1 bars and sheets of each arm's scenes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..data import formats
from .metrics import METRICS, TITLES


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    formats.write_atomic(path, formats.figure_png(fig))
    _pyplot().close(fig)


def curves(runs: list[tuple[str, list[dict]]], path: Path, groups: dict[str, str] | None = None) -> None:
    """One panel per metric, epochs on the x axis. Without ``groups``, each run a line with its 95%
    band. With ``groups`` (run name -> arm), one colour per arm: each run a thin line and the arm's
    mean over its runs a thick one (:func:`group_means`), the y axis fitted to the data, so that
    arms over several seeds can be told apart."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharex=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    means = group_means(runs, groups) if groups else {}
    colour = {g: colours[i % len(colours)] for i, g in enumerate(means)}
    for ax, m in zip(axes.ravel(), METRICS):
        for name, lines in runs:
            ep = [x["epoch"] for x in lines]
            values = [x["metrics"][m]["value"] for x in lines]
            if groups:
                ax.plot(ep, values, lw=0.8, alpha=0.35, color=colour[groups[name]])
                continue
            ax.plot(ep, values, marker="o", ms=3, label=name)
            ax.fill_between(ep, [x["metrics"][m]["low"] for x in lines], [x["metrics"][m]["high"] for x in lines],
                            alpha=0.2)
        for group, (ep, mean, count) in means.items():
            ax.plot(ep, mean[m], lw=2.2, color=colour[group], label=f"{group} (mean of {count})")
        ax.set_title(TITLES[m])
        if not groups:
            ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def group_means(runs: list[tuple[str, list[dict]]], groups: dict[str, str]) -> dict[str, tuple]:
    """Each group's mean curve over its runs: group -> (epochs, {metric: values}, number of runs),
    over the epochs that every run of the group has (a run still training shortens its group's)."""
    members: dict[str, list[list[dict]]] = {}
    for name, lines in runs:
        members.setdefault(groups[name], []).append(lines)
    out = {}
    for group, runs_of in members.items():
        epochs = sorted(set.intersection(*({x["epoch"] for x in lines} for lines in runs_of)))
        by_epoch = [{x["epoch"]: x for x in lines} for lines in runs_of]
        out[group] = (epochs, {m: [float(np.mean([r[e]["metrics"][m]["value"] for r in by_epoch])) for e in epochs]
                               for m in METRICS}, len(runs_of))
    return out


def heat_map(matrix: np.ndarray, rows: list[str], columns: list[str], title: str, path: Path) -> None:
    """A matrix of values in [0, 1] (NaN: not measured) as a heat map with the percentages written in."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.1 * len(columns) + 3, 0.8 * len(rows) + 2))
    image = ax.imshow(np.ma.masked_invalid(matrix), vmin=0, vmax=1, cmap="viridis")
    for i in range(len(rows)):
        for j in range(len(columns)):
            v = matrix[i, j]
            ax.text(j, i, "n/a" if np.isnan(v) else f"{100 * v:.1f}", ha="center", va="center",
                    color="white" if np.isnan(v) or v < 0.6 else "black", fontsize=9)
    ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("evaluated on the scenes of")
    ax.set_ylabel("trained on the scenes of")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    _save(fig, path)


def class_bars(values: dict[str, list[float]], classes: list[str], title: str, path: Path) -> None:
    """Grouped bars: one group per class, one bar per arm (values in [0, 1], NaN left out)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(classes) * max(1, len(values)) / 3 + 3), 4))
    width = 0.8 / max(1, len(values))
    for k, (arm, vals) in enumerate(values.items()):
        ax.bar(np.arange(len(classes)) + k * width, np.nan_to_num(vals), width, label=arm)
    ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2, classes, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    _save(fig, path)


def scene_sheets(arms: dict, path: Path, count: int = 4, size: int = 128, seed: int = 0) -> None:
    """One row per arm: its first ``count`` validation-like scenes beside their label maps."""
    from PIL import Image, ImageDraw

    from ..data.preview import preview_sheet
    from ..render import render_sampled

    rows = []
    for name, scene in arms.items():
        config = scene.replace(height=size, width=size)
        batch = render_sampled(config, seed, range(count))
        png = preview_sheet(list(zip(batch.image, batch.label)), config, columns=count, thumb=size)
        sheet = Image.open(io.BytesIO(png))
        labelled = Image.new("RGB", (sheet.width, sheet.height + 18), (32, 32, 32))
        labelled.paste(sheet, (0, 18))
        ImageDraw.Draw(labelled).text((6, 3), name, fill=(230, 230, 230))
        rows.append(np.asarray(labelled))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=32) for r in rows]
    formats.write_atomic(path, formats.encode_image(np.concatenate(rows, 0)))
