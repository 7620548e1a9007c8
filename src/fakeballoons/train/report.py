"""Training curves and a table of final metrics from run directories (like the report's
Figures 4, 5, 9, 10 and Tables 2, 3)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from .metrics import METRICS

TITLES = {"micro_accuracy": "Micro accuracy", "macro_accuracy": "Macro accuracy", "micro_iou": "Micro IoU",
          "macro_iou": "Macro IoU", "micro_f1": "Micro F1", "macro_f1": "Macro F1"}


def load_run(run: str | Path) -> tuple[str, list[dict]]:
    run = Path(run)
    path = run / "metrics.jsonl"
    if not path.exists():
        raise UserError(f"{run} is not a run directory (no metrics.jsonl)")
    try:
        lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    except ValueError as exc:
        raise UserError(f"{path} is not valid JSON lines: {exc}") from None
    if not lines:
        raise UserError(f"{path} has no epochs yet")
    return run.name, lines


def table(runs: list[tuple[str, list[dict]]]) -> str:
    """Markdown table of each run's last epoch: value and 95% interval, in percent."""
    head = "| run | epoch | " + " | ".join(TITLES[m] for m in METRICS) + " |"
    rows = [head, "|" + "---|" * (len(METRICS) + 2)]
    for name, lines in runs:
        last = lines[-1]
        cells = []
        for m in METRICS:
            v = last["metrics"][m]
            cells.append(f"{100 * v['value']:.1f} [{100 * v['low']:.1f}, {100 * v['high']:.1f}]")
        rows.append(f"| {name} | {last['epoch']} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def curves(runs: list[tuple[str, list[dict]]], path: Path) -> None:
    """One panel per metric, each run a line with its 95% band, epochs on the x axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharex=True)
    for ax, m in zip(axes.ravel(), METRICS):
        for name, lines in runs:
            ep = [x["epoch"] for x in lines]
            ax.plot(ep, [x["metrics"][m]["value"] for x in lines], marker="o", ms=3, label=name)
            ax.fill_between(ep, [x["metrics"][m]["low"] for x in lines], [x["metrics"][m]["high"] for x in lines],
                            alpha=0.2)
        ax.set_title(TITLES[m])
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(run_dirs: list[str], out: str | Path) -> Path:
    """Write ``report.md`` (table) and ``curves.png`` into ``out``; returns the Markdown path."""
    runs = [load_run(r) for r in run_dirs]
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out}: {exc.strerror or exc}") from None
    curves(runs, out / "curves.png")
    md = ["# Training report", "", "Final epoch of each run; values in percent with 95% bootstrap intervals "
          "over validation images.", "", table(runs), "![curves](curves.png)", ""]
    (out / "report.md").write_text("\n".join(md))
    return out / "report.md"
