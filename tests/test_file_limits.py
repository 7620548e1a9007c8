"""Numbers and files read from disk are held to the limits of the flags that set them: a count, an
integer or a physical quantity out of range, an endless or oversized file, a corrupt or huge image
is one line and exit status 2, found before anything is claimed or any long work starts."""

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakeballoons import SceneConfig
from fakeballoons.data import formats
from fakeballoons.data import generate as gen
from fakeballoons.data.downstream import SegmentationFolder
from fakeballoons.data.generate import generate
from fakeballoons.data.recipe import Recipe
from fakeballoons.errors import UserError

HUGE = int("9" * 400)


def one_line(code, err, *words):
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err


@pytest.fixture
def dataset(tmp_path):
    out = tmp_path / "ds"
    generate(out, Recipe(SceneConfig(height=16, width=16), num=6, seed=1, val_fraction=0.34), progress=False)
    return out


def set_manifest(root: Path, **changes) -> Path:
    data = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps({**data, **changes}))
    return root


def write_json(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


# ----------------------------------------------------------------------------- counts


@pytest.mark.parametrize("command", ["verify", "preview", "train"])
def test_a_count_in_dataset_json_beyond_the_flags_is_refused_at_once(dataset, tmp_path, cli, command):
    set_manifest(dataset, num=10**12)
    argv = {"verify": ["verify", dataset], "preview": ["preview", dataset, "--out", tmp_path / "p.png"],
            "train": ["train", "--data", dataset, "--out", tmp_path / "run", "--preset", "quick", "--quiet"]}[command]
    start = time.perf_counter()
    code, _, err = cli(argv)
    one_line(code, err, "num", "1000000000")
    assert time.perf_counter() - start < 30  # imports included, on a busy machine: not a walk over 10^12
    assert not (tmp_path / "p.png").exists() and not (tmp_path / "run").exists()


def test_a_legal_but_false_count_in_dataset_json_costs_no_time(dataset, tmp_path, cli):
    """num 10^9 is a count generate can make: a dataset.json that claims it over six samples is
    found incomplete without looking at 31 million chunks or listing 10^9 files."""
    set_manifest(dataset, num=10**9)
    for argv in (["verify", dataset], ["preview", dataset, "--out", tmp_path / "p.png"]):
        start = time.perf_counter()
        code, _, err = cli(argv)
        one_line(code, err)
        assert time.perf_counter() - start < 5, argv
    code, _, err = cli(["verify", dataset])
    assert "31250000 of 31250000 chunks are incomplete (first: indices 0..31)" in err  # names of 9 digits


def test_generate_with_a_billion_samples_starts_at_once(tmp_path, monkeypatch):
    class Started(Exception):
        pass

    def first_chunk(layout, chunk):
        raise Started(chunk)

    monkeypatch.setattr(gen, "run_chunk", first_chunk)
    start = time.perf_counter()
    with pytest.raises(Started) as info:
        generate(tmp_path / "d", Recipe(SceneConfig(height=8, width=8), num=10**9), progress=False)
    assert info.value.args == (0,) and time.perf_counter() - start < 5


def test_seeds_of_an_experiment_file_are_bounded_like_the_flag(tmp_path, cli):
    path = write_json(tmp_path / "e.json", {"base": "quick-folder", "seeds": 10**9})
    code, _, err = cli(["experiment", "--out", tmp_path / "e", "--preset", path, "--data", "synthetic"])
    one_line(code, err, "--seeds", "from 1 to 1000")
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("field, value, flag", [
    ("epochs", 10**6, "--epochs"), ("num_train", 10**12, "--num-train"), ("batch_size", 10**9, "--batch-size"),
    ("bootstrap", 10**9, "--bootstrap"), ("size", 10**5, "--size"), ("workers", 10**4, "--workers"),
    ("lr", 1e300, "--lr"), ("seed", 2**40, "--seed"),
])
def test_counts_of_a_training_preset_are_bounded_like_the_flags(tmp_path, cli, field, value, flag):
    path = write_json(tmp_path / "t.json", {"base": "quick", field: value})
    code, _, err = cli(["train", "--data", "synthetic", "--out", tmp_path / "run", "--preset", path, "--quiet"])
    one_line(code, err, flag)
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- huge integers and values


@pytest.mark.parametrize("kind, data", [
    ("scene", {"height": HUGE}), ("scene", {"class_table": {"count": 3, "seed": HUGE}}),
    ("scene", {"sampling": {"object_scale": [0.1, HUGE]}}), ("scene", {"antialias": {"samples": HUGE}}),
    ("scene", {"classes": [{"name": "a", "hue": HUGE, "elongation": 0.5, "noise_scale": 3}]}),
    ("train", {"base": "quick", "seed": HUGE}), ("train", {"base": "quick", "lr": HUGE}),
    ("experiment", {"base": "quick-folder", "seeds": HUGE}),
    ("experiment", {"base": "quick-folder", "pretrain": {"base": "quick", "num_val": -HUGE}}),
])
def test_a_400_digit_integer_is_one_short_line(tmp_path, cli, kind, data):
    path = write_json(tmp_path / "c.json", data)
    argv = {"scene": ["generate", tmp_path / "o", "--scene", path, "--num", 2, "--quiet"],
            "train": ["train", "--data", "synthetic", "--out", tmp_path / "o", "--preset", path, "--quiet"],
            "experiment": ["experiment", "--out", tmp_path / "o", "--preset", path, "--data", "synthetic"]}[kind]
    code, _, err = cli(argv)
    one_line(code, err)
    assert "9" * 30 not in err and len(err) < 300 and not (tmp_path / "o").exists()


@pytest.mark.parametrize("field, value, words", [
    ("sampling", {"position_x": [-1e308, 1e308]}, ["sampling.position_x", "from -1000.0 to 1000.0"]),
    ("sampling", {"shininess": [1, 1e308]}, ["sampling.shininess"]),
    ("sampling", {"background_noise_scale": [1, 1e308]}, ["sampling.background_noise_scale"]),
    ("sampling", {"specular": [0, 5]}, ["sampling.specular", "from 0.0 to 1.0"]),
    ("camera", {"eye": [0, 0, 1e308]}, ["camera.eye[2]"]),
    ("light", {"position": [1e300, 0, 0]}, ["light.position[0]"]),
    ("ground", {"noise_scale": 1e308}, ["ground.noise_scale"]),
    ("classes", [{"name": "a", "hue": 0, "elongation": 0.5, "noise_scale": 3, "hue_std": 1e308}],
     ["classes[0].hue_std", "from 0.0 to 360.0"]),
    ("classes", [{"name": "a", "hue": 0, "elongation": 0.5, "noise_scale": 3, "weight": 1e308}], ["weight"]),
    ("classes", [{"name": "a", "hue": {"normal": [0, 1e308]}, "elongation": 0.5, "noise_scale": 3}],
     ["classes[0].hue.normal[1]"]),
    ("classes", [{"name": "a", "hue": 0, "elongation": 0.5, "noise_scale": 3, "size": {"uniform": [0.1, 1e300]}}],
     ["classes[0].size.uniform[1]"]),
])
def test_an_absurd_physical_quantity_is_refused_before_out_is_claimed(tmp_path, cli, field, value, words):
    path = write_json(tmp_path / "s.json", {field: value})
    code, _, err = cli(["generate", tmp_path / "o", "--scene", path, "--num", 2, "--size", 16, "--quiet"])
    one_line(code, err, *words)
    assert not (tmp_path / "o").exists()


def test_verify_refuses_a_nan_in_scenes_jsonl(dataset, cli):
    lines = (dataset / "scenes.jsonl").read_text().splitlines()
    record = json.loads(lines[1])
    record["objects"][0]["hue"] = float("nan")
    lines[1] = json.dumps(record)  # a bare NaN, as json writes it
    (dataset / "scenes.jsonl").write_text("\n".join(lines) + "\n")
    code, _, err = cli(["verify", dataset])
    one_line(code, err, "scenes.jsonl index 1: objects[0].hue is not a finite number")


# ----------------------------------------------------------------------------- files


def test_a_scene_file_that_is_a_device_a_pipe_or_huge_is_refused_unread(tmp_path, cli):
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "pipe.json")  # opening it for reading would wait for a writer for ever
    with open(tmp_path / "big.json", "wb") as fh:
        fh.truncate(17 * 2**20)
    for name, words in (("zero.json", ["not a regular file"]), ("pipe.json", ["not a regular file"]),
                        ("big.json", ["16 MB"])):
        start = time.perf_counter()
        code, _, err = cli(["generate", tmp_path / "o", "--scene", tmp_path / name, "--num", 2, "--quiet"])
        one_line(code, err, name, *words)
        assert time.perf_counter() - start < 5 and not (tmp_path / "o").exists()
    with pytest.raises(UserError, match="not a regular file"):
        formats.read_json(tmp_path / "zero.json", "dataset manifest")


def folder(root: Path) -> Path:
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for stem in ("a", "b"):
            Image.fromarray(np.full((8, 8, 3), 40, np.uint8)).save(root / split / f"{stem}.png")
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / f"{split}annot" / f"{stem}.png")
    return root


def test_a_corrupt_image_body_is_found_when_the_folder_opens(tmp_path):
    root = folder(tmp_path / "f")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(root / "val" / "b.png")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(root / "valannot" / "b.png")
    data = bytearray((root / "val" / "b.png").read_bytes())
    data[len(data) // 2] ^= 0xFF  # the header (and size) stay readable; the pixels are not
    (root / "val" / "b.png").write_bytes(bytes(data))
    ds = SegmentationFolder(root / "val", root / "valannot", num_classes=2)
    with pytest.raises(UserError, match=r"val/b\.png: corrupt"):
        ds.check()


def test_a_huge_image_is_refused_when_the_folder_opens(tmp_path):
    root = folder(tmp_path / "f")
    Image.new("L", (4200, 4200)).save(root / "val" / "b.png")
    Image.new("L", (4200, 4200)).save(root / "valannot" / "b.png")
    ds = SegmentationFolder(root / "val", root / "valannot", num_classes=2)
    with pytest.raises(UserError, match=r"b\.png is 4200x4200 pixels, over the 16\.8 megapixels"):
        ds.check()


def test_report_never_replaces_a_report(tmp_path, cli):
    from fakeballoons.train.metrics import METRICS

    run = tmp_path / "run"
    run.mkdir()
    line = {"epoch": 1, "metrics": {m: {"value": 0.5, "low": 0.4, "high": 0.6} for m in METRICS}}
    (run / "metrics.jsonl").write_text(json.dumps(line) + "\n")
    out = tmp_path / "rep"
    out.mkdir()
    (out / "report.md").write_text("my earlier report")
    code, _, err = cli(["report", run, "--out", out])
    one_line(code, err, "report.md")
    assert (out / "report.md").read_text() == "my earlier report" and not (out / "curves.png").exists()


def test_generate_on_a_complete_dataset_writes_nothing(dataset, monkeypatch, cli):
    """As on read-only storage: any write is an error, and none is tried."""
    from fakeballoons.data import files

    def refuse(path):
        raise UserError(f"cannot write {path}: Read-only file system")

    monkeypatch.setattr(files, "check_writable", refuse)
    monkeypatch.setattr(Path, "mkdir", lambda *a, **k: refuse(a[0]))
    code, _, err = cli(["generate", dataset, "--num", 6, "--seed", 1, "--val-fraction", 0.34, "--size", 16,
                        "--quiet"])
    assert code == 0, err
