"""The command line's argument parser and value types, shared by ``fakeballoons`` and its
benchmarks (``fakeballoons bench``): light (the standard library only), so that parsing is instant."""

from __future__ import annotations

import argparse


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake prints one line (no usage block) and exits 2."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def int_in(lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be from {lo} to {hi}, got {value}")
        return value
    return parse


def scale_range(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        low, high = (float(x) for x in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (two numbers), got {text!r}") from None
    if not 0 < low <= high <= 8:
        raise argparse.ArgumentTypeError(f"must be 0 < LOW <= HIGH <= 8, got {text!r}")
    return low, high


def float_in(lo: float, hi: float, *, exclusive: bool = False, low_open: bool = False):
    """A number in [lo, hi], with ``exclusive`` in (lo, hi), with ``low_open`` in (lo, hi]."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if exclusive and not lo < value < hi:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi} (exclusive), got {value}")
        if low_open and not lo < value <= hi:
            raise argparse.ArgumentTypeError(f"must be above {lo} and at most {hi}, got {value}")
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be from {lo} to {hi}, got {value}")
        return value
    return parse
