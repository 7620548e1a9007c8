"""``python benchmarks/bench.py WHAT [options]``: the same as ``fakeballoons bench WHAT`` (the
benchmarks live in the package, :mod:`fakeballoons.bench`, so that they run from an installed one)."""

import sys

from fakeballoons.bench import main

if __name__ == "__main__":
    sys.exit(main())
