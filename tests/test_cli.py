"""The render and bench commands, and their one-line exit-2 errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fakeballoons import SceneConfig, render, sample_scene
from fakeballoons.data import formats


def test_render_writes_all_outputs(tmp_path, cli):
    code, _, err = cli(["render", tmp_path / "a.png", "--size", 64, "--seed", 3, "--index", 2,
                            "--label-out", tmp_path / "a.label.png", "--instance-out", tmp_path / "a.inst.png",
                            "--scene-out", tmp_path / "a.json"])
    assert code == 0, err
    config = SceneConfig(height=64, width=64)
    expected = render(sample_scene(config, 3, 2), config)
    np.testing.assert_array_equal(formats.read_image(tmp_path / "a.png"), expected.image)
    np.testing.assert_array_equal(formats.read_label(tmp_path / "a.label.png"), expected.label)
    np.testing.assert_array_equal(formats.read_instance(tmp_path / "a.inst.png"), expected.instance)
    assert json.loads((tmp_path / "a.json").read_text()) == sample_scene(config, 3, 2).to_dict()
    assert sorted(os.listdir(tmp_path)) == ["a.inst.png", "a.json", "a.label.png", "a.png"]


def test_render_same_bytes_twice(tmp_path, cli):
    for name in ("x.png", "y.png"):
        assert cli(["render", tmp_path / name, "--size", 40, "--noise", "sc"])[0] == 0
    assert (tmp_path / "x.png").read_bytes() == (tmp_path / "y.png").read_bytes()


def test_special_scenes_and_config_file(tmp_path, cli):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"noise": "sc", "height": 32, "width": 48}))
    assert cli(["render", tmp_path / "p.png", "--kind", "prototypes", "--scene", cfg,
                    "--label-out", tmp_path / "p.l.png"])[0] == 0
    label = formats.read_label(tmp_path / "p.l.png")
    assert label.shape == (32, 48) and {1, 2, 3} <= set(np.unique(label))
    assert cli(["render", tmp_path / "s.png", "--kind", "single", "--hue", 90, "--elongation", 0.8,
                    "--size", 32])[0] == 0
    assert cli(["render", tmp_path / "r.png", "--kind", "prototypes", "--random-prototypes",
                    "--size", 32])[0] == 0


def _bad_config(tmp_path, data):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return ["--scene", path]


@pytest.mark.parametrize("make_args, message", [
    (lambda t: ["--size", 0], "--size: must be from 1 to 8192, got 0"),
    (lambda t: ["--noise", "foo"], "invalid choice: 'foo'"),
    (lambda t: _bad_config(t, {"sampling": {"colour": 1}}), "unknown key 'sampling.colour'"),
    (lambda t: _bad_config(t, {"classes": [{"name": "a", "hue": 1, "elongation": 0.5, "noise_scale": 5,
                                             "hue_std": -2}]}), "'classes[0].hue_std': must be >= 0"),
    (lambda t: ["--scene", t / "missing.json"], "scene configuration not found"),
    (lambda t: ["--label-out", t / "nodir" / "l.png"], "does not exist"),
    (lambda t: ["--elongation", 2], "--elongation: must be between 0.0 and 1.0 (exclusive)"),
])
def test_user_errors_exit_2_with_one_line(tmp_path, cli, make_args, message):
    code, out, err = cli(["render", tmp_path / "out.png", *make_args(tmp_path)])
    assert code == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".png") or p.endswith(".tmp")]


@pytest.mark.slow
def test_output_in_missing_directory_subprocess(tmp_path):
    """The installed console script, end to end: exit 2, one line, nothing written."""
    exe = os.path.join(os.path.dirname(sys.executable), "fakeballoons")
    proc = subprocess.run([exe, "render", str(tmp_path / "missing" / "x.png"), "--size", "8"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "does not exist" in proc.stderr
    assert os.listdir(tmp_path) == []


def test_bench_noise_runs(cli):
    code, out, _ = cli(["bench", "noise", "--points", 1000, "--json"])
    assert code == 0
    results = json.loads(out)["results"]
    assert {r["noise"] for r in results} == {"perlin", "sc"} and all(r["median_ms"] > 0 for r in results)


def test_bench_augment_runs(cli):
    code, out, _ = cli(["bench", "augment", "--size", 16, "--batch", 4, "--steps", 2, "--json"])
    assert code == 0, out
    rows = json.loads(out)["results"]
    assert [r["path"] for r in rows] == ["per_picture", "whole_batch"] and all(r["median_batch_ms"] > 0 for r in rows)
    assert rows[1]["speedup"] > 0 and rows[0]["size"] == 16
