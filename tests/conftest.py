"""Test set-up. Runs numba's CUDA simulator unless FAKEBALLOONS_REAL_CUDA=1 (on a GPU machine).

The variable must be set before numba is first imported, hence here.
"""

import os

if os.environ.get("FAKEBALLOONS_REAL_CUDA") != "1":
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

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
