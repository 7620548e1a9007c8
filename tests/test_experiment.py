"""The experiment runner end to end at toy size: every arm reported, interruption resumed."""

import json

import numpy as np
import pytest
from PIL import Image

from fakeballoons.train import experiment

TOY = {"model": "lraspp_mobilenet_v3_large", "epochs": 1, "batch_size": 4, "optimizer": "adamw", "lr": 0.002,
       "size": 32, "workers": 0, "num_train": 8, "num_val": 4, "bootstrap": 20}


def folder_dataset(root, n_train=8, n_val=4):
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for i in range(n):
            mask = np.zeros((24, 24), np.uint8)
            mask[4:12, 4:12] = 1 + i % 2
            image = rng.integers(0, 60, (24, 24, 3), dtype=np.uint8)
            image[mask == 1] = (200, 40, 40)
            image[mask == 2] = (40, 40, 200)
            Image.fromarray(image).save(root / split / f"{i:03d}.png")
            Image.fromarray(mask, mode="L").save(root / f"{split}annot" / f"{i:03d}.png")


@pytest.fixture
def toy_preset(tmp_path):
    path = tmp_path / "toy.json"
    path.write_text(json.dumps({"pretrain": TOY, "downstream": TOY, "seeds": 2}))
    return path


@pytest.mark.slow
def test_experiment_end_to_end_and_resume(tmp_path, toy_preset, cli, monkeypatch):
    folder_dataset(tmp_path / "down")
    args = ["experiment", "--preset", toy_preset, "--data", f"folder:{tmp_path / 'down'}", "--classes", 3,
            "--out", tmp_path / "exp", "--quiet"]
    calls = []
    real_train = experiment.train

    def interrupted(*a, **kw):
        calls.append(a[1].name)
        if len(calls) == 4:
            raise KeyboardInterrupt  # stopped in the middle of the fourth run
        return real_train(*a, **kw)

    monkeypatch.setattr(experiment, "train", interrupted)
    assert cli(args)[0] == 130
    monkeypatch.setattr(experiment, "train", real_train)
    log = []
    monkeypatch.setattr(experiment, "train", lambda *a, **kw: (log.append(a[1].name), real_train(*a, **kw))[1])
    code, out, err = cli(args)
    assert code == 0, err
    # the three finished runs were skipped; the interrupted one and the rest were run
    assert calls[:3] == ["pretrain-perlin", "pretrain-sc", "downstream-baseline-seed0"]
    assert log == ["downstream-perlin-seed0", "downstream-sc-seed0", "downstream-baseline-seed1",
                   "downstream-perlin-seed1", "downstream-sc-seed1"]
    exp = tmp_path / "exp"
    report = (exp / "report.md").read_text()
    for name in ("pretrain-perlin", "pretrain-sc", *(f"downstream-{a}-seed{s}" for a in ("baseline", "perlin", "sc")
                                                      for s in (0, 1))):
        assert f"| {name} |" in report
    for arm in ("baseline", "perlin", "sc"):
        assert f"| {arm} |" in report
    assert report.count("images [") == 2 * 6 and report.count("seeds [") == 2 * 6
    transfer = json.loads((exp / "downstream-sc-seed1" / "transfer.json").read_text())
    assert transfer["checkpoint"].endswith("pretrain-sc/last.pt") and transfer["counts"]["loaded"] > 0
    assert (exp / "downstream_curves.png").exists() and (exp / "pretrain_curves.png").exists()
    # a finished experiment reruns as a no-op that rewrites its report
    log.clear()
    assert cli(args)[0] == 0 and log == []


@pytest.mark.slow
def test_experiment_refuses_other_settings_and_bad_inputs(tmp_path, toy_preset, cli):
    folder_dataset(tmp_path / "down")
    base = ["experiment", "--preset", toy_preset, "--out", tmp_path / "exp", "--quiet"]
    down = f"folder:{tmp_path / 'down'}"
    code, _, err = cli([*base, "--data", down, "--classes", 3, "--seeds", 1])
    assert code == 0, err
    code, _, err = cli([*base, "--data", down, "--classes", 3, "--seeds", 3])
    assert code == 2 and "other settings" in err and err.count("\n") == 1
    # made by a version before --bn-momentum existed: the same settings, and finished
    record = json.loads((tmp_path / "exp" / "experiment.json").read_text())
    for arm in ("pretrain", "downstream"):
        del record["experiment"][arm]["bn_momentum"]
    (tmp_path / "exp" / "experiment.json").write_text(json.dumps(record))
    code, out, err = cli([*base, "--data", down, "--classes", 3, "--seeds", 1])
    assert code == 0 and "other settings" not in err, err
    code, _, err = cli(["experiment", "--out", tmp_path / "e2", "--data", f"coco:{tmp_path / 'missing'}", "--quiet",
                        "--preset", toy_preset])
    assert code == 2 and "COCO root not found" in err
    assert not (tmp_path / "e2").exists()  # checked before any pretraining
    code, _, err = cli(["experiment", "--out", tmp_path / "e3", "--quiet"])
    assert code == 2 and "the following arguments are required: --data" in err
    code, _, err = cli(["experiment", "--out", tmp_path / "e4", "--preset", "nope", "--data", f"coco:{tmp_path}"])
    assert code == 2 and "unknown experiment preset 'nope'" in err


def test_t_interval_and_presets():
    from fakeballoons.train.report import t_interval

    lo, hi = t_interval([1.0, 2.0, 3.0])
    assert (lo + hi) / 2 == pytest.approx(2.0) and hi - lo == pytest.approx(2 * 4.303 * 1.0 / 3 ** 0.5)
    assert t_interval([1.0]) is None
    assert experiment.load_experiment_preset("quick-folder").seeds == 2
    assert experiment.load_experiment_preset("paper-coco").downstream.num_train == 1000
