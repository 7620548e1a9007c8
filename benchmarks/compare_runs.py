"""The difference of two arms' finished runs on the same validation images, wherever they live:
for runs that no one experiment holds (e.g. each arm at its own best learning rate, from two
experiments), the row an experiment's report would give them (report.difference_table): each
metric's mean difference over seeds, a paired bootstrap interval over images and a t-interval
over seeds.

    python benchmarks/compare_runs.py --arm A/seed0 A/seed1 A/seed2 --base B/seed0 B/seed1 B/seed2

Runs are paired by position (the same seeds, in the same order)."""

import argparse
from pathlib import Path

from fakeballoons.train.report import difference_table, load_confusion, load_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arm", nargs="+", type=Path, required=True)
    ap.add_argument("--base", nargs="+", type=Path, required=True)
    args = ap.parse_args()
    if len(args.arm) != len(args.base):
        ap.error("--arm and --base need as many runs each (paired by seed)")
    runs = {"arm": args.arm, "base": args.base}
    finals = {name: [load_run(p)[1][-1]["metrics"] for p in paths] for name, paths in runs.items()}
    confusions = {name: [load_confusion(p) for p in paths] for name, paths in runs.items()}
    print("\n".join(difference_table(finals, confusions, "base")))


if __name__ == "__main__":
    main()
