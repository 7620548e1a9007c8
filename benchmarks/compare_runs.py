"""``python benchmarks/compare_runs.py --arm A0 A1 A2 --base B0 B1 B2``: the same as
``fakeballoons report --compare A0 A1 A2 --base B0 B1 B2`` (kept for the commands in the studies'
notebooks)."""

import sys

from fakeballoons.cli import main

if __name__ == "__main__":
    argv = ["--compare" if a == "--arm" else a for a in sys.argv[1:]]
    sys.exit(main(["report", *argv]))
