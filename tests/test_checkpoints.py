"""Checkpoints within an epoch: a run stopped mid-epoch (SIGKILL, SIGTERM) and run again ends
bit-identical to one that never stopped; SIGTERM writes a checkpoint and exits non-zero."""

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from fakeballoons.cli import main

# 20 training pairs in batches of 4: 5 steps an epoch, a checkpoint every 2 steps (mid-epoch, and
# out of step with the epochs, so that a resume lands mid-epoch in either epoch)
TINY = ["--data", "synthetic:perlin", "--preset", "quick", "--size", "32", "--num-train", "20", "--num-val", "8",
        "--batch-size", "4", "--bootstrap", "50", "--epochs", "2", "--checkpoint-steps", "2"]


def _metrics(run):
    return [{k: v for k, v in json.loads(x).items() if k not in ("seconds", "images_per_s")}
            for x in (run / "metrics.jsonl").read_text().splitlines()]


def _same_weights(a, b):
    sa = torch.load(a / "last.pt", weights_only=True)["model"]
    sb = torch.load(b / "last.pt", weights_only=True)["model"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run = tmp_path_factory.mktemp("ckpt") / "whole"
    assert main(["train", *TINY, "--out", str(run), "--quiet"]) == 0
    return run


def _start(run):
    """The same training in a child process; returns it once it has written a mid-epoch checkpoint."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-m", "fakeballoons", "train", *TINY, "--out", str(run)],
                             stderr=subprocess.PIPE, text=True, env=env)
    for line in child.stderr:  # waits on the child's own word, never on a clock
        if "checkpoint written" in line:
            return child
    raise AssertionError(f"the child ended without a checkpoint: exit {child.wait()}")


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_stopped_mid_epoch_and_run_again_ends_bit_identical(uninterrupted, tmp_path, how):
    run = tmp_path / "stopped"
    child = _start(run)
    child.send_signal(how)
    rest = child.stderr.read()
    code = child.wait()
    assert code != 0
    ckpt = torch.load(run / "last.pt", weights_only=True)
    if how == signal.SIGTERM:
        assert code == 128 + signal.SIGTERM and "stopped by SIGTERM" in rest and "checkpoint was written" in rest
        assert "Traceback" not in rest and rest.count("stopped by") == 1, rest
    if ckpt.get("partial") is not None:
        assert ckpt["partial"]["step"] % 2 == 0 or how == signal.SIGTERM
    # the same command again continues where the checkpoint left off
    assert main(["train", *TINY, "--out", str(run), "--quiet"]) == 0
    assert _metrics(run) == _metrics(uninterrupted)
    assert _same_weights(run, uninterrupted)


@pytest.mark.slow
def test_a_mid_epoch_checkpoint_says_where_the_epoch_stands(tmp_path):
    run = tmp_path / "r"
    child = _start(run)
    child.send_signal(signal.SIGTERM)
    child.stderr.read()
    assert child.wait() == 128 + signal.SIGTERM
    ckpt = torch.load(run / "last.pt", weights_only=True)
    partial = ckpt["partial"]
    assert ckpt["epoch"] == partial["epoch"] - 1 and 1 <= partial["step"] <= 5
    assert partial["loss_steps"] == partial["step"] % 5 or partial["loss_steps"] == partial["step"]
    assert isinstance(ckpt["rng"], torch.Tensor)
