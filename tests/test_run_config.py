"""A run as one object: the codec, preset inheritance, data sources, augmentation, resume checks."""

import json
import shutil

import pytest
import torch

from fakeballoons import SceneConfig
from fakeballoons.codec import from_plain, load_preset
from fakeballoons.data.loader import batches
from fakeballoons.data.sources import SOURCES, DataConfig, open_data, split_source
from fakeballoons.data.transforms import Augment
from fakeballoons.errors import ConfigError, UserError
from fakeballoons.train.experiment import ExperimentConfig, load_experiment_preset
from fakeballoons.train.run import RunConfig, TrainConfig, load_train_preset

TINY = ["--preset", "quick", "--size", "32", "--num-train", "16", "--num-val", "8", "--batch-size", "4",
        "--bootstrap", "20", "--quiet", "--epochs", "1"]


def test_run_config_round_trips_through_json():
    run = RunConfig(DataConfig("synthetic:sc", scene=SceneConfig(height=20, width=30)),
                    TrainConfig(lr=0.5, hflip=True), init="a.pt", transfer="backbone")
    plain = json.loads(json.dumps(run.to_dict()))
    assert plain["package_version"] and RunConfig.from_dict(plain) == run
    assert RunConfig.from_dict(plain).difference(run) is None


def test_unknown_keys_fail_naming_them():
    with pytest.raises(ConfigError, match="unknown key 'lrr'"):
        TrainConfig().with_changes(lrr=0.1)
    assert TrainConfig().with_changes(lr=None, epochs=3) == TrainConfig(epochs=3)  # None leaves a field alone
    with pytest.raises(ConfigError, match="unknown key 'train.lrr'"):
        RunConfig.from_dict({"data": {"source": "synthetic"}, "train": {"lrr": 0.1}})
    with pytest.raises(ConfigError, match="'train.lr'"):
        RunConfig.from_dict({"data": {"source": "synthetic"}, "train": {"lr": -1.0}})
    with pytest.raises(ConfigError, match="'train.lr': must be a finite number"):
        from_plain(RunConfig, {"data": {"source": "synthetic"}, "train": {"lr": float("inf")}})


def test_a_preset_that_names_another_inherits_and_cannot_drift(tmp_path):
    quick = load_train_preset("quick")
    exp = load_experiment_preset("quick-folder")
    assert exp.pretrain == quick  # the experiment's recipes are the training preset, not a copy of it
    assert exp.downstream == quick.with_changes(hflip=True)
    assert exp.downstream.bn_momentum == 0.1
    child = tmp_path / "child.json"
    child.write_text(json.dumps({"base": "quick", "epochs": 3}))
    assert load_train_preset(str(child)) == quick.with_changes(epochs=3)
    grandchild = tmp_path / "grandchild.json"
    grandchild.write_text(json.dumps({"base": str(child), "lr": 0.5}))
    assert load_train_preset(str(grandchild)) == quick.with_changes(epochs=3, lr=0.5)
    nested = tmp_path / "exp.json"
    nested.write_text(json.dumps({"base": "quick-folder", "downstream": {"base": str(child)}, "seeds": 5}))
    e = load_experiment_preset(str(nested))
    assert e.seeds == 5 and e.downstream == quick.with_changes(epochs=3) and e.pretrain == quick


def test_bad_preset_bases(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"base": str(b)}))
    b.write_text(json.dumps({"base": str(a)}))
    with pytest.raises(ConfigError, match="cycle"):
        load_train_preset(str(a))
    a.write_text(json.dumps({"base": "nope"}))
    with pytest.raises(ConfigError, match=r"'base'.*unknown TrainConfig preset 'nope'"):
        load_train_preset(str(a))
    a.write_text("[1, 2]")
    with pytest.raises(UserError, match="must hold a JSON object"):
        load_preset(ExperimentConfig, str(a), "experiment preset")
    a.write_bytes(b"\xff\xfe{")
    with pytest.raises(UserError, match="not UTF-8"):
        load_train_preset(str(a))


def test_base_only_extends_configurations_that_have_presets(tmp_path):
    """"base" inside a class prior or a distribution is an unknown key, never a file read."""
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"uniform": [0, 360]}))
    for classes in ([{"base": "report"}], [{"name": "a", "hue": {"base": str(secret)}}]):
        with pytest.raises(ConfigError, match=r"unknown key 'classes\[0\]\.(hue\.)?base'"):
            from_plain(SceneConfig, {"classes": classes})
    assert from_plain(SceneConfig, {"base": "report"}) == SceneConfig()  # where presets exist, it extends one


def test_every_source_is_one_row():
    assert split_source("synthetic:perlin") == ("synthetic", "perlin")
    assert split_source("folder:/x") == ("folder", "/x")
    assert split_source("/data/ds") == ("directory", "/data/ds")
    assert split_source("C:/data") == ("directory", "C:/data")  # an unknown prefix is part of a path
    assert set(SOURCES) == {"synthetic", "coco", "voc", "folder", "directory"}
    with pytest.raises(ConfigError, match="'classes'"):
        DataConfig("folder:/x")
    with pytest.raises(ConfigError, match="'source'"):
        DataConfig("synthetic:simplex")
    with pytest.raises(ConfigError, match="'scene'"):
        DataConfig("coco:/x", scene=SceneConfig())


def _labels(augment: Augment) -> list[torch.Tensor]:
    data = open_data(DataConfig("synthetic:perlin"), size=24, num_train=8, num_val=2, seed=0, augment=augment)
    return [labels for _, labels, _ in batches(data.train, 4, train=True, seed=0, epoch=1,
                                                device=torch.device("cpu"))]


def test_hflip_changes_synthetic_training_batches():
    plain, flipped = torch.cat(_labels(Augment())), torch.cat(_labels(Augment(hflip=True)))
    torch.manual_seed(5)  # the flips are drawn inside the loader from the seeded epoch, not from here
    again = torch.cat(_labels(Augment(hflip=True)))
    assert not torch.equal(plain, flipped) and torch.equal(flipped, again)
    same = [torch.equal(a, b) for a, b in zip(plain, flipped)]
    mirrored = [torch.equal(a.flip(-1), b) for a, b in zip(plain, flipped)]
    assert all(s or m for s, m in zip(same, mirrored)) and any(mirrored)


def test_batch_augment_flips_image_and_label_together():
    images = torch.arange(2 * 3 * 4 * 5, dtype=torch.uint8).reshape(2, 3, 4, 5)
    labels = torch.arange(2 * 4 * 5).reshape(2, 4, 5)
    g = torch.Generator().manual_seed(0)
    flip = torch.rand(2, generator=torch.Generator().manual_seed(0)) < 0.5
    out_i, out_l = Augment(hflip=True).apply_batch(images, labels, g)
    for k in range(2):
        expect = images[k].flip(-1) if flip[k] else images[k]
        assert torch.equal(out_i[k], expect)
        assert torch.equal(out_l[k], labels[k].flip(-1) if flip[k] else labels[k])
    assert Augment().apply_batch(images, labels, g)[0] is images


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory):
    from fakeballoons.cli import main

    run = tmp_path_factory.mktemp("runs") / "r"
    assert main(["train", "--data", "synthetic:perlin", "--out", str(run), *TINY]) == 0
    return run


def _one_line(code, err):
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.parametrize("damage, message", [
    (lambda r: (r / "config.json").write_text("{not json"), "run config"),
    (lambda r: (r / "config.json").write_text("[1, 2]"), "does not hold a JSON dict"),
    (lambda r: (r / "config.json").write_text('{"data": {"source": "synthetic:perlin"}, "train": {"lr": "x"}}'),
     "not a fakeballoons run config"),
    (lambda r: (r / "last.pt").write_bytes(b"PK\x03\x04 truncated"), "cannot read checkpoint"),
    (lambda r: (r / "last.pt").write_bytes(b""), "cannot read checkpoint"),
    (lambda r: (r / "metrics.jsonl").write_text("{\n"), "metrics log"),
])
def test_corrupt_run_files_on_resume_exit_2(one_epoch_run, tmp_path, cli, damage, message):
    run = tmp_path / "r"
    shutil.copytree(one_epoch_run, run)
    damage(run)
    code, _, err = cli(["train", "--data", "synthetic:perlin", "--out", run, *TINY[:-1], "2", "--resume"])
    _one_line(code, err)
    assert message in err


@pytest.mark.slow
def test_a_run_from_before_an_option_resumes_end_to_end(one_epoch_run, tmp_path, cli):
    run = tmp_path / "r"
    shutil.copytree(one_epoch_run, run)
    config = json.loads((run / "config.json").read_text())
    del config["train"]["bn_momentum"], config["data"]["remap"]  # as a version before these options wrote it
    config["train"]["bn_momentum_typo"] = 1  # ...but an unknown key is not silently dropped
    (run / "config.json").write_text(json.dumps(config))
    code, _, err = cli(["train", "--data", "synthetic:perlin", "--out", run, *TINY[:-1], "2", "--resume"])
    _one_line(code, err)
    assert "unknown key 'train.bn_momentum_typo'" in err
    del config["train"]["bn_momentum_typo"]
    config["train"]["bn_momentum"] = 0.1  # quick's value; a missing key would take the default 0.0
    (run / "config.json").write_text(json.dumps(config))
    code, _, err = cli(["train", "--data", "synthetic:perlin", "--out", run, *TINY[:-1], "2", "--resume"])
    assert code == 0, err
    assert [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]


@pytest.mark.slow
def test_corrupt_experiment_record_exits_2(tmp_path, cli):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "experiment.json").write_text("{broken")
    preset = tmp_path / "p.json"
    preset.write_text(json.dumps({"pretrain": {"base": "quick"}, "downstream": {"base": "quick"}}))
    code, _, err = cli(["experiment", "--preset", preset, "--data", "synthetic:perlin", "--out", exp, "--quiet"])
    _one_line(code, err)
    assert "experiment record" in err and (exp / "experiment.json").read_text() == "{broken"
