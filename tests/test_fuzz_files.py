"""Fuzzing the configuration files the command line reads: scene, training and experiment JSON with
extreme numbers, wrong types and huge integers in random places (a seeded generator, so a failure
is reproducible by its case number). Every case ends with exit status 0 or 2, one line on error
and never a traceback, without NumPy warnings, in under 5 s. Scenes are rendered (8x8); training
and experiment files are read and checked whole, then refused for their empty DATA path, so that
no case trains."""

import json
import random
import time
import warnings

import pytest

from fakeballoons.cli import main
from fakeballoons.codec import to_plain
from fakeballoons.config import GroundConfig, SceneConfig
from fakeballoons.train.run import TrainConfig

HUGE_TEXT = "9" * 5000  # beyond Python's int <-> str limit: written into the JSON text as is
VALUES = [1e308, -1e308, 1e-308, 5e-324, 0, -1, 1, 2, 0.5, 1e6, -1e6, 179.99, 360, 1000.0, 10_000, 2**31, 2**63,
          -2**63 - 1, int("9" * 400), -int("9" * 400), float("nan"), float("inf"), -float("inf"), "__HUGE__",
          "x", "", "report", "quick", True, False, None, [], {}, [1, 2], [0, 1e308], [-1e308, 1e308], [5, 1],
          [1e308, 1e308], {"a": 1}, {"base": "quick"}, {"uniform": [0, 1e308]}, {"normal": [0, 1e308]},
          {"choice": [1e308, -1e308]}, {"choice": ["box", 3]}]


def scene_base() -> dict:
    base = to_plain(SceneConfig())
    base.update(ground=to_plain(GroundConfig()), texture="solid")
    base["sampling"].update(rotation="view", rotation_max=90.0, thickness=[0.2, 0.4], num_objects=[1, 3])
    base["classes"].append({"name": "d", "hue": {"uniform": [0, 360]}, "elongation": 0.5, "noise_scale": 8,
                            "size": {"uniform": [0.1, 0.5]}, "shape": "torus", "saturation": 0.8, "weight": 2})
    return base


def train_base() -> dict:
    base = to_plain(TrainConfig())
    base.update(resize="short-side", scale=[1.0, 2.0], jitter=0.2, hue=0.1, grayscale=0.1, warmup_epochs=1.0)
    return base


def experiment_base() -> dict:
    return {"base": "quick-folder", "kind": "transfer", "seeds": 2, "transfer": "auto",
            "arms": [{"name": "a", "scene": {"base": "report", "texture": "none"}, "cue": "texture"},
                     {"name": "b", "scene": "report", "downstream": {"base": "real", "lr": 0.01}}],
            "pretrain": {"base": "quick", "epochs": 2, "num_train": 64}, "downstream": "real"}


def leaves(data, path=()):
    """Every place a value can be put: each key and list item, nested ones included."""
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return
    for key, value in items:
        yield (*path, key)
        yield from leaves(value, (*path, key))


def mutate(data, rng: random.Random, times: int):
    data = json.loads(json.dumps(data))
    for _ in range(times):
        places = list(leaves(data))
        if not places:
            break
        *parent, key = rng.choice(places)
        holder = data
        for k in parent:
            holder = holder[k]
        holder[key] = json.loads(json.dumps(rng.choice(VALUES)))
    return data


def text(data) -> str:
    return json.dumps(data).replace('"__HUGE__"', HUGE_TEXT)


def cases():
    rng = random.Random(20240611)
    out = []
    for _ in range(45):
        out.append(("scene", text(mutate(scene_base(), rng, rng.randint(1, 3)))))
    for i in range(12):
        out.append(("train", text(mutate({"base": "quick", **train_base()} if i % 2 else train_base(), rng,
                                         rng.randint(1, 2)))))
    for _ in range(15):
        out.append(("experiment", text(mutate(experiment_base(), rng, rng.randint(1, 3)))))
    return out


def argv(kind: str, path, tmp_path) -> list[str]:
    if kind == "scene":
        return ["render", str(tmp_path / "x.png"), "--scene", str(path), "--size", "8"]
    if kind == "train":  # as below: the preset is read and checked whole, then DATA is refused
        return ["train", "--data", "folder:", "--classes", "2", "--out", str(tmp_path / "run"), "--preset", str(path),
                "--quiet"]
    # an empty DATA path is refused after the preset is read and checked: no experiment runs
    return ["experiment", "--out", str(tmp_path / "exp"), "--preset", str(path), "--data", "folder:", "--classes",
            "2", "--quiet"]


@pytest.fixture(scope="module")
def warm():
    """The kernels compiled (or loaded from numba's cache) and torch's modules imported before any
    case is timed."""
    from fakeballoons.codec import load_preset
    from fakeballoons.render import render
    from fakeballoons.scene import sample_scene
    from fakeballoons.train import experiment, loop  # noqa: F401

    for config in (SceneConfig(height=8, width=8), load_preset(SceneConfig, "ground").replace(height=8, width=8)):
        render(sample_scene(config, 0, 0), config)


def test_fuzzed_configuration_files_exit_0_or_2_in_one_line(tmp_path, capsys, warm):
    for n, (kind, body) in enumerate(cases()):
        case = tmp_path / f"case{n}"
        case.mkdir()
        path = case / f"{kind}.json"
        path.write_text(body)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                code = main(argv(kind, path, case))
            except SystemExit as exc:
                code = exc.code
            except BaseException as exc:  # noqa: BLE001 - the case's text is what a failure must show
                pytest.fail(f"case {n} ({kind}) raised {exc!r}: {body[:400]}")
        elapsed = time.perf_counter() - start
        err = capsys.readouterr().err
        numpy_warnings = [w for w in caught if issubclass(w.category, RuntimeWarning)]
        assert code in (0, 2), (n, kind, code, err, body[:400])
        if code == 2:
            assert err.count("\n") == 1 and "Traceback" not in err, (n, err, body[:400])
        assert not numpy_warnings, (n, [str(w.message) for w in numpy_warnings], body[:400])
        assert elapsed < 5, (n, kind, elapsed, body[:400])
