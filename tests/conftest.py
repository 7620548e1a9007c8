"""Test set-up. Runs numba's CUDA simulator unless FAKEBALLOONS_REAL_CUDA=1 (on a GPU machine), and
one torch thread per xdist worker.

The variables must be set before numba and torch are first imported, hence here.
"""

import os

if os.environ.get("FAKEBALLOONS_REAL_CUDA") != "1":
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers on two cores: torch's OpenMP threads spin while they wait, so two
    # threads a worker (its default here) oversubscribe the cores and a training step takes many
    # times as long. One thread a worker, in the workers and the commands they start.
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")

import pytest  # noqa: E402

from fakeballoons import SceneConfig  # noqa: E402


@pytest.fixture
def small_config():
    """A 48x64 default scene config: cheap to render, still several objects per scene."""
    return SceneConfig(height=48, width=64)


@pytest.fixture
def cli(capsys):
    """Run the fakeballoons command in-process: cli(args) -> (exit code, stdout, stderr)."""
    from fakeballoons.cli import main

    def run(args):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse
            code = exc.code
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
