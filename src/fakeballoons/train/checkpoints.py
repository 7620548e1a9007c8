"""When a training run writes checkpoints within an epoch, and what such a checkpoint records.

A checkpoint written mid-epoch (``last.pt`` with ``partial``) lets a run stopped anywhere continue
exactly where it stood: the training loop (:mod:`.loop`) skips the finished batches without reading
them and restores the loss sum, the epoch's learning rate and torch's random state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import time
from dataclasses import dataclass


@dataclass
class Partial:
    """Where a training epoch stands after ``step`` steps: what a mid-epoch checkpoint carries."""

    epoch: int
    lr: float  # the learning rate the epoch started at (its metrics line's)
    step: int = 0
    loss_total: float = 0.0  # the sum of the finished steps' losses, in step order
    loss_steps: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class Checkpoints:
    """When to write a checkpoint within an epoch: every ``minutes`` of wall time or every ``steps``
    steps (whichever comes first; None: never), and at once when a stop signal has arrived.

    ``watch()`` turns SIGTERM (what schedulers send before a time limit) and SIGINT into a request
    to stop that the training loop honours after its current step, writing a checkpoint first.
    """

    def __init__(self, minutes: float | None = 10.0, steps: int | None = None):
        self.minutes, self.steps = minutes, steps
        self.signum: int | None = None
        self._since = time.monotonic()

    def due(self, step: int) -> bool:
        """Whether to write one after (zero-based) ``step``."""
        if self.signum is not None:
            return True
        if self.steps and (step + 1) % self.steps == 0:
            return True
        return self.minutes is not None and time.monotonic() - self._since >= 60 * self.minutes

    def written(self) -> None:
        self._since = time.monotonic()

    @contextlib.contextmanager
    def watch(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        def on_signal(signum, frame):  # noqa: ARG001 - signal API
            self.signum = signum
        old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
