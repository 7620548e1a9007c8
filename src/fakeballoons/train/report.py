"""Reports from run directories: tables of final metrics, training curves, and the statistics of
comparisons between runs (like the report's Figures 4, 5, 9, 10 and Tables 2, 3).

Intervals: a run's own metrics carry a 95% bootstrap interval over its validation images (see
:mod:`.metrics`). A difference between arms carries two: a paired bootstrap over the same
validation images (each resample draws the same images for every run, so image difficulty
cancels), and, with two or more seeds, a Student t-interval over the seeds' differences.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import torch

from ..data import formats
from ..errors import UserError
from .metrics import COLUMNS, METRICS, TITLES, bootstrap_weights, scores_from_confusion
from .plots import curves

# Two-sided 95% Student t quantiles t(0.975, df), df = 1..30 (beyond: 1.96).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def load_run(run: str | Path) -> tuple[str, list[dict]]:
    """(name, metric lines) of a run directory."""
    run = Path(run)
    path = run / "metrics.jsonl"
    if not path.exists():
        raise UserError(f"{run} is not a run directory (no metrics.jsonl)")
    lines = list(formats.read_jsonl(path, "metrics log"))
    if not lines:
        raise UserError(f"{path} has no epochs yet")
    for n, line in enumerate(lines, start=1):
        if not isinstance(line.get("metrics"), dict) or any(m not in line["metrics"] for m in METRICS):
            raise UserError(f"{path} line {n} is not a metrics line of fakeballoons train")
    return run.name, lines


def load_confusion(run: str | Path) -> dict:
    """The per-image confusion matrices of a run's last evaluation ({"index", "confusion", ...})."""
    record = formats.load_torch(Path(run) / "val_confusion.pt", "per-image confusion file")
    if not isinstance(record, dict) or not {"index", "confusion"} <= set(record):
        raise UserError(f"{Path(run) / 'val_confusion.pt'} is not a per-image confusion file")
    return record


def _cell(v: dict) -> str:
    return f"{100 * v['value']:.1f} [{100 * v['low']:.1f}, {100 * v['high']:.1f}]"


def table(runs: list[tuple[str, list[dict]]]) -> str:
    """Markdown table of each run's last epoch: value and 95% interval, in percent."""
    head = "| run | epoch | " + " | ".join(TITLES[m] for m in COLUMNS) + " |"
    rows = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    for name, lines in runs:
        last = lines[-1]
        rows.append(f"| {name} | {last['epoch']} | " + " | ".join(_cell(last["metrics"][m]) for m in COLUMNS) + " |")
    return "\n".join(rows) + "\n"


def csv_rows(run_dirs: list[str | Path]) -> str:
    """CSV of each run's last epoch (``run,epoch`` then each metric's value, low and high, percent):
    the rows a results table is made from, generated from the run directories themselves."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["run", "epoch", *(f"{m}{part}" for m in COLUMNS for part in ("", "_low", "_high"))])
    for run in run_dirs:
        name, lines = load_run(run)
        last = lines[-1]
        writer.writerow([str(run), last["epoch"], *(f"{100 * last['metrics'][m][k]:.2f}" for m in COLUMNS
                                                    for k in ("value", "low", "high"))])
    return buf.getvalue()


def compare(arm: list[str | Path], base: list[str | Path], as_csv: bool = False) -> str:
    """Runs ``arm`` minus runs ``base``, paired by position (the same seeds in the same order, all
    evaluated on the same validation images): each metric's mean difference over seeds with a paired
    bootstrap interval over images and, with two or more seeds, a t-interval over seeds; the row an
    experiment's report gives an arm, for runs that no one experiment holds. Markdown, or CSV."""
    if len(arm) != len(base):
        raise UserError(f"--compare and --base need as many runs each, paired by seed (got {len(arm)} and "
                        f"{len(base)})")
    runs = {"arm": arm, "base": base}
    finals = {name: [load_run(p)[1][-1]["metrics"] for p in paths] for name, paths in runs.items()}
    confusions = {name: [load_confusion(p) for p in paths] for name, paths in runs.items()}
    if not as_csv:
        return "\n".join(difference_table(finals, confusions, "base")) + "\n"
    import csv
    import io

    boot = bootstrap_difference(confusions["arm"], confusions["base"])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["metric", "difference", "images_low", "images_high", "seeds_low", "seeds_high", "seeds"])
    for m in COLUMNS:
        d = [a[m]["value"] - b[m]["value"] for a, b in zip(finals["arm"], finals["base"])]
        ci = t_interval(d) or (float("nan"), float("nan"))
        writer.writerow([m, *(f"{100 * v:.2f}" for v in (statistics.fmean(d), *boot[m], *ci)), len(d)])
    return buf.getvalue()


def write_report(run_dirs: list[str], out: str | Path) -> Path:
    """Write ``report.md`` (table) and ``curves.png`` into ``out``; returns the Markdown path. A
    report already in ``out`` is refused, never replaced (it may be the only copy of an earlier one)."""
    runs = [load_run(r) for r in run_dirs]
    out = Path(out)
    there = [p.name for p in (out / "report.md", out / "curves.png") if p.exists() or p.is_symlink()]
    if there:
        raise UserError(f"{out} already holds {' and '.join(there)}; choose another --out (or move them away)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out}: {exc.strerror or exc}") from None
    curves(runs, out / "curves.png")
    md = ["# Training report", "", "Final epoch of each run; values in percent with 95% bootstrap intervals "
          "over validation images.", "", table(runs), "![curves](curves.png)", ""]
    formats.write_atomic(out / "report.md", "\n".join(md))
    return out / "report.md"


# ----------------------------------------------------------------------------- comparisons


def t_interval(values: list[float]) -> tuple[float, float] | None:
    """95% Student t-interval of the mean of ``values`` (None for fewer than two)."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    h = _T975[min(len(values) - 1, len(_T975)) - 1] * statistics.stdev(values) / len(values) ** 0.5
    return mean - h, mean + h


def same_images(arm: list[dict], base: list[dict]) -> bool:
    """Whether two arms were evaluated on the same scenes: the same image indices with the same target
    pixels per class in every image, for every seed (the same scenes rendered differently)."""
    return all(torch.equal(a["index"], b["index"]) and torch.equal(a["confusion"].sum(-1), b["confusion"].sum(-1))
               for a, b in zip(arm, base))


def bootstrap_difference(arm: list[dict], base: list[dict], paired: bool = True, resamples: int = 1000,
                         seed: int = 0) -> dict[str, tuple[float, float]]:
    """95% interval of the seed-averaged difference arm - base for each metric, resampling validation
    images: paired (the same resample of the same images for both, so image difficulty cancels) or,
    for arms evaluated on different images, each arm's images independently. ``arm`` and ``base``
    are per-image confusion records (:func:`load_confusion`) of the same seeds, in the same order."""
    if paired:
        idx = arm[0]["index"]
        for r in arm + base:
            if not torch.equal(r["index"], idx):
                raise UserError("the runs compared were evaluated on different validation images")

    def boot(r, g):
        c = r["confusion"].double()
        n = c.shape[0]
        weights = bootstrap_weights(n, resamples, g)
        return scores_from_confusion((weights @ c.reshape(n, -1)).reshape(resamples, *c.shape[1:]))

    diffs = {m: torch.zeros(resamples, dtype=torch.double) for m in METRICS}
    for a, b in zip(arm, base):
        sa = boot(a, torch.Generator().manual_seed(seed))
        sb = boot(b, torch.Generator().manual_seed(seed if paired else seed + 1))
        for m in METRICS:
            diffs[m] += (sa[m] - sb[m]) / len(arm)
    return {m: (float(torch.quantile(diffs[m], 0.025)), float(torch.quantile(diffs[m], 0.975))) for m in METRICS}


def recovered_share(ours: list[dict], reference: list[dict], scratch: list[dict], metric: str = "macro_iou",
                    resamples: int = 1000, seed: int = 0) -> dict[str, float]:
    """The share of a reference arm's gain over scratch that another arm recovers,
    ``(ours - scratch) / (reference - scratch)`` of the seed-averaged ``metric`` (SegRCDB's and
    FractalDB's way of comparing synthetic pretraining with ImageNet's), with a 95% bootstrap interval
    over images and seeds: each resample draws the validation images (the same draw for every arm
    and seed, so image difficulty cancels) and the seeds (the same draw for the three arms), with
    replacement. Each list holds one per-image confusion record (:func:`load_confusion`) per seed, in
    the same seed order, all of the same images. Returns value, low, high and the resamples whose
    reference gain was not above zero (where the share is not defined, counted, left out)."""
    runs = ours + reference + scratch
    if not (len(ours) == len(reference) == len(scratch) >= 1):
        raise UserError("the share needs the same number of seeds (one or more) in each of the three arms")
    idx = runs[0]["index"]
    if any(not torch.equal(r["index"], idx) for r in runs):
        raise UserError("the runs compared were evaluated on different validation images")
    n, seeds = idx.numel(), len(ours)
    g = torch.Generator().manual_seed(seed)
    weights = bootstrap_weights(n, resamples, g)  # (R, n), shared by every run
    seed_draw = torch.randint(0, seeds, (resamples, seeds), generator=g) if seeds > 1 else \
        torch.zeros(resamples, 1, dtype=torch.long)

    def arm_scores(arm: list[dict]) -> tuple[float, torch.Tensor]:
        point, per_seed = [], []
        for r in arm:
            c = r["confusion"].double()
            point.append(float(scores_from_confusion(c.sum(0))[metric]))
            boot = (weights @ c.reshape(n, -1)).reshape(resamples, *c.shape[1:])
            per_seed.append(scores_from_confusion(boot)[metric])
        table = torch.stack(per_seed)  # (S, R)
        return statistics.fmean(point), table.gather(0, seed_draw.T).mean(0)

    (o, ob), (ref, rb), (s, sb) = arm_scores(ours), arm_scores(reference), arm_scores(scratch)
    gain = rb - sb
    ok = gain > 0
    shares = (ob - sb)[ok] / gain[ok]
    value = (o - s) / (ref - s) if ref != s else float("nan")
    if shares.numel() == 0:
        return {"value": value, "low": float("nan"), "high": float("nan"), "undefined": resamples}
    return {"value": value, "low": float(torch.quantile(shares, 0.025)), "high": float(torch.quantile(shares, 0.975)),
            "undefined": int((~ok).sum())}


def paired_bootstrap(arm: list[dict], base: list[dict], resamples: int = 1000, seed: int = 0):
    """:func:`bootstrap_difference` of arms evaluated on the same validation images."""
    return bootstrap_difference(arm, base, True, resamples, seed)


def mean_table(arms: dict[str, list[dict]]) -> list[str]:
    """Markdown rows: each arm's final metrics averaged over seeds, with a t-interval over seeds.
    ``arms`` maps an arm's name to its runs' final metrics, one per seed."""
    rows = ["| arm | " + " | ".join(TITLES[m] for m in COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 1)]
    for arm, finals in arms.items():
        cells = []
        for m in COLUMNS:
            vals = [f[m]["value"] for f in finals]
            ci = t_interval(vals)
            interval = f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else ""
            cells.append(f"{100 * statistics.fmean(vals):.1f}{interval}")
        rows.append(f"| {arm} | " + " | ".join(cells) + " |")
    return rows


def difference_table(arms: dict[str, list[dict]], confusions: dict[str, list[dict]], reference: str,
                     pairing: dict[str, bool] | None = None) -> list[str]:
    """Markdown rows: each arm minus ``reference`` (percentage points, mean over seeds), with the
    image bootstrap interval (paired unless ``pairing`` says the arm saw other images, then a
    column says which) and, with two or more seeds, the t-interval over seeds."""
    pair_column = pairing is not None
    rows = ["| arm | " + ("images | " if pair_column else "") + " | ".join(TITLES[m] for m in COLUMNS) + " |",
            "|" + "---|" * (len(COLUMNS) + 1 + pair_column)]
    for arm, finals in arms.items():
        if arm == reference:
            continue
        paired = True if pairing is None else pairing[arm]
        boot = bootstrap_difference(confusions[arm], confusions[reference], paired)
        cells = []
        for m in COLUMNS:
            d = [f[m]["value"] - r[m]["value"] for f, r in zip(finals, arms[reference])]
            cell = f"{100 * statistics.fmean(d):+.1f}; images [{100 * boot[m][0]:+.1f}, {100 * boot[m][1]:+.1f}]"
            ci = t_interval(d)
            if ci:
                cell += f"; seeds [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"
            cells.append(cell)
        kind = ("paired | " if paired else "unpaired | ") if pair_column else ""
        rows.append(f"| {arm} | {kind}" + " | ".join(cells) + " |")
    return rows
