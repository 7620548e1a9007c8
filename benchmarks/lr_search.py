"""A local learning-rate search by held-out mean IoU, as the ImageNet study tunes each arm.

    python benchmarks/lr_search.py run DIR ARM [--init INIT] -- TRAIN-OPTIONS...
    python benchmarks/lr_search.py next DIR ARM
    python benchmarks/lr_search.py table DIR...
    python benchmarks/lr_search.py keep DIR RECORDS

``run`` trains ``fakeballoons train TRAIN-OPTIONS --lr X --seed 0 --out DIR/ARM-lrX [--init INIT]``
for one rate after another until the search stops; rerun it to go on (an unfinished run resumes).
The TRAIN-OPTIONS must score on held-out training photographs (``--holdout``), never on val.

The rule, on the grid 0.001 x 2^k (k = 0..5): an unfinished run first; with no run, 0.004; otherwise
an untried neighbour of the best finished rate (the larger first); stop when both neighbours of the
best have run (or lie off the grid). ``table`` prints each arm's held-out mean IoU per rate, with
its 95% interval, from the run directories (their ``metrics.jsonl``), the best rate of each arm bold.
``keep`` copies the records of every finished run (``config.json``, ``metrics.jsonl``: all that
``next`` and ``table`` read) into RECORDS, where a search can go on from them on another machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

GRID = tuple(0.001 * 2 ** k for k in range(6))
START = 0.004


def rate_name(lr: float) -> str:
    return f"{lr:g}"


def runs(root: Path, arm: str) -> dict[float, Path]:
    """The arm's run directories by rate."""
    out = {}
    for lr in GRID:
        path = root / f"{arm}-lr{rate_name(lr)}"
        if path.exists():
            out[lr] = path
    return out


def last_line(path: Path) -> dict | None:
    try:
        lines = [json.loads(x) for x in (path / "metrics.jsonl").read_text().splitlines() if x.strip()]
    except FileNotFoundError:
        return None
    return lines[-1] if lines else None


def epochs_wanted(path: Path) -> int:
    return json.loads((path / "config.json").read_text())["train"]["epochs"]


def is_finished(path: Path) -> bool:
    last = last_line(path)
    return last is not None and (path / "config.json").exists() and last["epoch"] >= epochs_wanted(path)


def score(path: Path) -> float:
    return last_line(path)["metrics"]["macro_iou"]["value"]


def next_rate(root: Path, arm: str) -> tuple[float | None, bool]:
    """(the next rate to run or None to stop, whether that run resumes)."""
    have = runs(root, arm)
    for lr, path in have.items():
        if not is_finished(path):
            return lr, True
    done = {lr: score(p) for lr, p in have.items()}
    if not done:
        return START, False
    best = max(done, key=done.get)
    k = GRID.index(best)
    for j in (k + 1, k - 1):
        if 0 <= j < len(GRID) and GRID[j] not in done:
            return GRID[j], False
    return None, False


def cmd_run(a: argparse.Namespace) -> int:
    root = Path(a.dir)
    root.mkdir(parents=True, exist_ok=True)
    while True:
        lr, resume = next_rate(root, a.arm)
        if lr is None:
            print(f"{a.arm}: search done", flush=True)
            return 0
        out = root / f"{a.arm}-lr{rate_name(lr)}"
        cmd = [sys.executable, "-m", "fakeballoons", "train", *a.train, "--lr", str(lr), "--seed", "0",
               "--out", str(out), "--quiet"]
        if a.init:
            cmd += ["--init", a.init]
        if resume:
            cmd.append("--resume")
        print(" ".join(cmd), flush=True)
        rc = subprocess.call(cmd)
        if rc != 0:
            print(f"{a.arm}: training stopped with status {rc}", flush=True)
            return rc


def cmd_next(a: argparse.Namespace) -> int:
    lr, resume = next_rate(Path(a.dir), a.arm)
    print("done" if lr is None else f"{rate_name(lr)}{' (resume)' if resume else ''}")
    return 0


def cmd_table(a: argparse.Namespace) -> int:
    cells: dict[str, dict[float, tuple[str, float | None]]] = {}  # arm -> rate -> (cell, score if finished)
    for root in map(Path, a.dirs):
        for path in sorted(root.glob("*-lr*")):
            arm, _, rate = path.name.rpartition("-lr")
            last = last_line(path)
            if last is None:
                continue
            m, wanted = last["metrics"]["macro_iou"], epochs_wanted(path)
            if last["epoch"] >= wanted:
                cell = (f"{100 * m['value']:.1f} [{100 * m['low']:.1f}, {100 * m['high']:.1f}]", m["value"])
            else:
                cell = (f"(epoch {last['epoch']} of {wanted})", None)
            cells.setdefault(arm, {})[float(rate)] = cell
    order = [a for a in ("scratch", "imagenet", "scenes", "imagenet-scenes") if a in cells]
    order += sorted(set(cells) - set(order))
    print("| arm | " + " | ".join(rate_name(lr) for lr in GRID) + " |")
    print("|---|" + "---|" * len(GRID))
    for arm in order:
        scored = {lr: v for lr, (_, v) in cells[arm].items() if v is not None}
        best = max(scored, key=scored.get) if scored else None
        row = []
        for lr in GRID:
            cell = cells[arm].get(lr, ("", None))[0]
            row.append(f"**{cell}**" if lr == best else cell)
        print(f"| {arm} | " + " | ".join(row) + " |")
    return 0


def cmd_keep(a: argparse.Namespace) -> int:
    kept = 0
    for path in sorted(Path(a.dir).glob("*-lr*")):
        if is_finished(path):
            (Path(a.records) / path.name).mkdir(parents=True, exist_ok=True)
            for name in ("config.json", "metrics.jsonl"):
                shutil.copyfile(path / name, Path(a.records) / path.name / name)
            kept += 1
    print(f"kept the records of {kept} finished runs in {a.records}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(required=True)
    r = sub.add_parser("run")
    r.add_argument("dir")
    r.add_argument("arm")
    r.add_argument("--init")
    r.set_defaults(func=cmd_run)
    n = sub.add_parser("next")
    n.add_argument("dir")
    n.add_argument("arm")
    n.set_defaults(func=cmd_next)
    t = sub.add_parser("table")
    t.add_argument("dirs", nargs="+")
    t.set_defaults(func=cmd_table)
    k = sub.add_parser("keep")
    k.add_argument("dir")
    k.add_argument("records")
    k.set_defaults(func=cmd_keep)
    argv = sys.argv[1:] if argv is None else list(argv)
    train = argv[argv.index("--") + 1:] if "--" in argv else []
    a = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    a.train = train
    return a.func(a)


if __name__ == "__main__":
    sys.exit(main())
