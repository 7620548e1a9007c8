"""The difference of two arms' finished runs on the same validation images, wherever they live:
mean IoU difference over seeds, a paired bootstrap interval over images and a t-interval over
seeds (as in an experiment's report), for runs that no one experiment holds (e.g. each arm at its
own best learning rate, from two experiments).

    python benchmarks/compare_runs.py --arm A/seed0 A/seed1 A/seed2 --base B/seed0 B/seed1 B/seed2

Runs are paired by position (the same seeds, in the same order)."""

import argparse
import json
from pathlib import Path

from fakeballoons.train.report import bootstrap_difference, load_confusion, t_interval


def final_mean_iou(run: Path) -> float:
    return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["metrics"]["macro_iou"]["value"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arm", nargs="+", type=Path, required=True)
    ap.add_argument("--base", nargs="+", type=Path, required=True)
    args = ap.parse_args()
    if len(args.arm) != len(args.base):
        ap.error("--arm and --base need as many runs each (paired by seed)")
    d = [final_mean_iou(a) - final_mean_iou(b) for a, b in zip(args.arm, args.base)]
    images = bootstrap_difference([load_confusion(p) for p in args.arm], [load_confusion(p) for p in args.base])
    lo, hi = images["macro_iou"]
    seeds = t_interval(d)
    print(f"mean IoU difference {100 * sum(d) / len(d):+.1f}, images [{100 * lo:+.1f}, {100 * hi:+.1f}]"
          + (f", seeds [{100 * seeds[0]:+.1f}, {100 * seeds[1]:+.1f}]" if seeds else ""))


if __name__ == "__main__":
    main()
