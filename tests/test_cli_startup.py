"""The command line answers --help and usage mistakes without importing NumPy, torch or numba."""

import os
import subprocess
import sys

import pytest

from fakeballoons import names

HEAVY = {"numpy", "torch", "torchvision", "numba"}
PROBE = """
import sys
from fakeballoons.cli import main
try:
    code = main({args!r})
except SystemExit as exc:
    code = exc.code
print("MODULES", sorted({{m.split(".")[0] for m in sys.modules}} & {heavy!r}), code, file=sys.stderr)
"""


def _subcommands():
    from fakeballoons.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(name for name in sub.choices if name != "bench")  # bench hands its --help to the script


@pytest.mark.parametrize("args", [["--help"], ["--version"], *[[c, "--help"] for c in _subcommands()],
                                  ["train", "--list"], ["experiment", "--list"],
                                  ["train", "--data", "x", "--out", "y", "--lr", "abc"], ["render"],
                                  ["experiment", "--seeds", "0", "--out", "e"], ["nonsense"]])
def test_help_and_usage_errors_import_nothing_heavy(args):
    run = subprocess.run([sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)], capture_output=True,
                         text=True)
    line = next(x for x in run.stderr.splitlines() if x.startswith("MODULES"))
    assert line.startswith("MODULES [] "), (args, line)
    assert line.split()[-1] in ("0", "2")


def test_the_light_names_are_the_ones_the_library_uses():
    from fakeballoons.config import NOISE_FUNCTIONS
    from fakeballoons.data.recipe import FORMATS, SPLITS
    from fakeballoons.data.sources import SOURCES
    from fakeballoons.data.transforms import RESIZES
    from fakeballoons.render import DEVICES
    from fakeballoons.scene import SCENE_KINDS
    from fakeballoons.train.models import MODELS
    from fakeballoons.train.run import OPTIMIZERS, SCHEDULES
    from fakeballoons.train.transfer import TRANSFER_MODES

    assert (NOISE_FUNCTIONS, FORMATS, SPLITS, RESIZES, DEVICES, SCENE_KINDS, MODELS, OPTIMIZERS, SCHEDULES,
            TRANSFER_MODES) == (names.NOISE_FUNCTIONS, names.FORMATS, names.SPLITS, names.RESIZES, names.DEVICES,
                                names.SCENE_KINDS, names.MODELS, names.OPTIMIZERS, names.SCHEDULES,
                                names.TRANSFER_MODES)
    assert {k: s.help for k, s in SOURCES.items()} == names.DATA_KINDS


def test_preset_names_come_from_the_preset_folders():
    from fakeballoons.codec import preset_names
    from fakeballoons.train.experiment import ExperimentConfig
    from fakeballoons.train.run import TrainConfig

    assert names.presets("experiments") == preset_names(ExperimentConfig)
    assert names.presets("train") == preset_names(TrainConfig)


CACHE_PROBE = """
import sys
from fakeballoons.render import cpu
from fakeballoons.cli import main
assert main(["render", sys.argv[1], "--size", "512"] + sys.argv[2:]) == 0
kernel = cpu.render_cpu_general if sys.argv[2:] else cpu.render_cpu
print("STATS", sum(kernel.stats.cache_hits.values()), sum(kernel.stats.cache_misses.values()))
"""


@pytest.mark.slow
def test_after_warmup_a_new_process_loads_the_kernels_from_the_cache(tmp_path):
    warm = subprocess.run([sys.executable, "-m", "fakeballoons", "warmup"], capture_output=True, text=True)
    assert warm.returncode == 0 and "general render kernel: ready" in warm.stdout, warm.stderr
    for extra in ([], ["--scene", "ground"]):
        run = subprocess.run([sys.executable, "-c", CACHE_PROBE, str(tmp_path / "x.png"), *extra],
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        hits, misses = map(int, next(x for x in run.stdout.splitlines() if x.startswith("STATS")).split()[1:])
        assert hits >= 1 and misses == 0, (extra, hits, misses)
        assert "compiling" not in run.stderr


def test_the_public_names_load_on_first_use_and_render_stays_the_function():
    code = ("import fakeballoons.render.kernels, fakeballoons.viewer.frames, fakeballoons\n"
            "from fakeballoons import render, SceneConfig, sample_scene, weights, noise\n"
            "assert callable(render) and fakeballoons.render is render, fakeballoons.render\n"
            "assert render(sample_scene(SceneConfig(height=8, width=8), 0, 0), SceneConfig(height=8, width=8))"
            ".image.shape == (8, 8, 3)\n"
            "known = set(dir(fakeballoons)) | set(fakeballoons._LAZY) | {'noise', 'weights'}\n"
            "assert set(fakeballoons.__all__) <= known")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "NUMBA_ENABLE_CUDASIM": "1"})
    assert run.returncode == 0, run.stderr


@pytest.mark.slow
def test_warm_up_compiles_side_by_side_in_processes_when_a_kernel_is_missing(monkeypatch):
    """The parallel path (taken with an empty cache) runs each kernel's first call in a process of its
    own; here the cache is full, so the processes only load, and the plumbing is what is checked."""
    from fakeballoons import render as render_function  # noqa: F401 - the kernels' package, loaded

    package = sys.modules["fakeballoons.render"]
    package.warm_up()  # the cache holds every kernel from here on
    import multiprocessing

    contexts = []
    real_context = multiprocessing.get_context
    monkeypatch.setattr(multiprocessing, "get_context", lambda method: contexts.append(method) or real_context(method))
    monkeypatch.setattr(package, "_in_cache", lambda kernel: False)
    times = package.warm_up(processes=2)
    assert contexts == ["spawn"]  # the side-by-side path was taken
    assert list(times) == list(package.WARM_KERNELS) and all(t >= 0 for t in times.values())


@pytest.mark.parametrize("command, kind", [("train", "train"), ("experiment", "experiments")])
def test_list_shows_every_preset_with_what_it_is(command, kind, capsys):
    from fakeballoons.cli import main

    with pytest.raises(SystemExit) as exit_:
        main([command, "--list"])  # no --out or --data asked for
    assert exit_.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == names.presets(kind)
    assert all(len(line.split(None, 1)) == 2 and len(line) < 160 for line in lines), lines
