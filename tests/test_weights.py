"""weights: the registry of shipped weights, its cards, checked loading, --init pretrained:NAME, and
experiments that start from shipped weights instead of pretraining.

The package's own entries are checked as shipped (every card field, the SHA-256 of the file); the
behaviour is tested on a registry made here from a tiny pretraining run (``publish``), in a
temporary folder in place of the package's.
"""

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
import torch

from experiment_toys import TOY, folder_dataset
from fakeballoons import weights
from fakeballoons.errors import UserError
from fakeballoons.train.experiment import (
    ExperimentConfig,
    ExperimentRun,
    load_experiment_preset,
    plan,
    with_shipped_weights,
)
from fakeballoons.weights import cards, publish

DESIGNS = Path(__file__).resolve().parents[1] / "docs" / "studies"  # the studies' design files

PRETRAIN = ["--data", "synthetic:perlin", "--preset", "quick", "--size", "32", "--num-train", "8", "--num-val", "4",
            "--batch-size", "4", "--bootstrap", "20", "--epochs", "1", "--quiet"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny pretraining run on the report's scenes."""
    from fakeballoons.cli import main

    run = tmp_path_factory.mktemp("pre") / "run"
    assert main(["train", *PRETRAIN, "--out", str(run)]) == 0
    return run


@pytest.fixture
def shipped(pretrained, tmp_path, monkeypatch):
    """A registry in a temporary folder holding one entry, ``tiny``, published from ``pretrained``."""
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "registry.json").write_text("[]")
    monkeypatch.setattr(cards, "_folder", lambda: folder)
    monkeypatch.setattr(publish, "_folder", lambda: folder)
    weights.registry.cache_clear()
    publish.publish("tiny", pretrained, command="fakeballoons train ...", commit="0" * 40, summary="a tiny test entry",
                    limits="none", check="made here", results=[])
    yield folder
    weights.registry.cache_clear()


def test_every_shipped_entry_has_every_field_and_its_file_matches_its_sha256():
    entries = weights.registry()
    assert entries, "the package ships weights: registry.json must list them"
    for name, card in entries.items():
        assert set(weights.CARD_FIELDS) <= set(card), (name, set(weights.CARD_FIELDS) - set(card))
        data = (cards._folder() / card["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == card["sha256"] and len(data) == card["bytes"]
        assert len(data) < 15_000_000
        for result in card["results"]:
            assert result["images"][0] <= result["difference"] <= result["images"][1]


def test_a_published_card_has_every_field_and_the_runs_own_tensors(shipped, pretrained):
    card = weights.card("tiny")
    assert set(card) == set(weights.CARD_FIELDS)
    assert card["architecture"] == "lraspp_mobilenet_v3_large" and card["torchvision_backbone"] == "mobilenet_v3_large"
    assert card["num_classes"] == 4 and card["input_size"] == 32 and card["recipe"]["epochs"] == 1
    assert card["sha256"] == hashlib.sha256((shipped / card["file"]).read_bytes()).hexdigest()
    model = torch.load(pretrained / "last.pt", weights_only=True)["model"]
    state = weights.state_dict("tiny")
    assert state.keys() == model.keys() and all(torch.equal(state[k], model[k]) for k in model)


def test_load_gives_torchvision_models(shipped):
    import torchvision

    model = weights.load("tiny")
    assert isinstance(model, torchvision.models.segmentation.LRASPP) and not model.training
    assert model(torch.zeros(1, 3, 32, 32))["out"].shape == (1, 4, 32, 32)
    assert weights.load("tiny", num_classes=7)(torch.zeros(1, 3, 32, 32))["out"].shape == (1, 7, 32, 32)
    backbone = weights.state_dict("tiny", layout="backbone")
    result = torchvision.models.mobilenet_v3_large().load_state_dict(backbone, strict=False)
    assert not result.unexpected_keys and result.missing_keys and \
        all(k.startswith("classifier.") for k in result.missing_keys)


def test_weights_command_lists_shows_and_checks(shipped, cli):
    code, out, _ = cli(["weights"])
    assert code == 0 and "tiny" in out and "lraspp_mobilenet_v3_large" in out and "a tiny test entry" in out
    code, out, _ = cli(["weights", "show", "tiny"])
    assert code == 0 and weights.card("tiny")["sha256"] in out and '"epochs": 1' in out
    assert cli(["weights", "check"])[0] == 0
    code, _, err = cli(["weights", "show", "nothing"])
    assert code == 2 and "no shipped weights named 'nothing'" in err and "tiny" in err


@pytest.mark.parametrize("damage", ["flip", "truncate", "remove"])
def test_a_damaged_file_is_refused_in_one_line(shipped, cli, tmp_path, damage):
    file = shipped / weights.card("tiny")["file"]
    data = bytearray(file.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
        file.write_bytes(bytes(data))
    elif damage == "truncate":
        file.write_bytes(bytes(data[: len(data) // 3]))
    else:
        file.unlink()
    root = tmp_path / "toy"
    folder_dataset(root)
    out = tmp_path / "run"
    code, _, err = cli(["train", "--data", f"folder:{root}", "--classes", "3", "--preset", "quick", "--size", "32",
                        "--epochs", "1", "--init", "pretrained:tiny", "--out", out, "--quiet"])
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert ("damaged or altered" if damage != "remove" else "missing") in err
    assert not out.exists()  # nothing left behind
    assert cli(["weights", "check"])[0] == 2
    with pytest.raises(UserError):
        weights.load("tiny")


def test_init_pretrained_name_trains_as_the_same_file_given_by_path(shipped, cli, tmp_path):
    root = tmp_path / "toy"
    folder_dataset(root)
    common = ["train", "--data", f"folder:{root}", "--classes", "3", "--preset", "real", "--size", "32",
              "--epochs", "1", "--bootstrap", "20", "--quiet"]
    by_name, by_path = tmp_path / "by-name", tmp_path / "by-path"
    assert cli([*common, "--init", "pretrained:tiny", "--out", by_name])[0] == 0
    assert cli([*common, "--init", shipped / "tiny.pt", "--out", by_path])[0] == 0

    def scores(run):
        return [{k: v for k, v in json.loads(x).items() if k not in ("seconds", "images_per_s")}
                for x in (run / "metrics.jsonl").read_text().splitlines()]

    assert scores(by_name) == scores(by_path)
    record = json.loads((by_name / "transfer.json").read_text())
    assert record["counts"]["loaded"] > 200  # backbone and head, all but the final layers
    assert json.loads((by_name / "config.json").read_text())["init"] == "pretrained:tiny"


def _from_plain(arms, **changes):
    from fakeballoons.codec import from_plain

    return from_plain(ExperimentConfig, {"kind": "transfer", "arms": arms, "pretrain": TOY, "downstream": TOY,
                                         "seeds": 1, **changes})


def test_an_arm_with_shipped_weights_has_no_pretraining_run(shipped, tmp_path):
    from fakeballoons.data.sources import DataConfig

    exp = _from_plain([{"name": "p", "scene": "report", "weights": "tiny"}])
    jobs = plan(ExperimentRun(exp, DataConfig(f"folder:{tmp_path}", classes=3)))
    assert [j.name for j in jobs] == ["downstream-baseline-seed0", "downstream-p-seed0"]
    assert jobs[1].run.init == "pretrained:tiny" and jobs[1].needs == ()


def test_shipped_weights_replace_exactly_the_pretraining_that_made_them(shipped, pretrained):
    from fakeballoons.train.loop import RunDir, read_run_config

    made = read_run_config(RunDir(pretrained))
    exp = dataclasses.replace(_from_plain([{"name": "p", "scene": "report"}]), pretrain=made.train)
    assert with_shipped_weights(exp).arms[0].weights == "tiny"
    other = dataclasses.replace(exp, pretrain=dataclasses.replace(made.train, lr=0.5))
    with pytest.raises(UserError, match="no shipped weights were made by arm 'p'"):
        with_shipped_weights(other)


def test_shipped_weights_match_the_pretrainings_starting_point(monkeypatch):
    """An entry pretrained from ImageNet replaces only an arm that starts from ImageNet, and an entry
    pretrained from random values only an arm that does not (the four-arm study has both)."""
    exp = load_experiment_preset(str(DESIGNS / "imagenet" / "designs" / "four-arms.json"))
    scenes, both = (a for a in exp.arms if not a.weights)
    assert both.init == "imagenet" and not scenes.init
    scene = scenes.scene.replace(height=exp.pretrain.size, width=exp.pretrain.size)  # as rendered
    card = {"scene": scene.to_dict(), "recipe": exp.pretrain.to_dict()}
    registry = {"plain": {**card, "init": None}, "from-imagenet": {**card, "init": "imagenet"}}
    monkeypatch.setattr(weights, "registry", lambda: registry)
    shipped = {a.name: a for a in with_shipped_weights(exp).arms}
    assert shipped[scenes.name].weights == "plain" and shipped[both.name].weights == "from-imagenet"
    assert not shipped[both.name].init  # the entry is where it starts: nothing left to start from
    del registry["from-imagenet"]
    with pytest.raises(UserError, match=f"no shipped weights were made by arm {both.name!r}"):
        with_shipped_weights(exp)


def test_publish_refuses_a_pretraining_that_started_from_another_checkpoint(pretrained, tmp_path):
    from fakeballoons.cli import main

    run = tmp_path / "continued"
    assert main(["train", *PRETRAIN, "--init", str(pretrained / "last.pt"), "--out", str(run)]) == 0
    with pytest.raises(UserError, match="an entry starts from nothing or from ImageNet"):
        publish.publish("x", run, command="c", commit="0" * 40, summary="s", limits="l", check="c", results=[],
                        folder=tmp_path)
    assert not (tmp_path / "x.pt").exists()


def test_the_transfer_preset_is_matched_by_an_entry_made_by_its_pretraining(monkeypatch):
    """What `experiment --preset transfer --shipped-weights` relies on: a card that records the
    preset's pretraining (scene and recipe, resolved) matches its arm."""
    exp = load_experiment_preset("transfer")
    scene = exp.arms[0].scene.replace(height=exp.pretrain.size, width=exp.pretrain.size)  # as rendered
    card = {"name": "x", "scene": scene.to_dict(), "recipe": exp.pretrain.to_dict()}
    monkeypatch.setattr(weights, "registry", lambda: {"x": card})
    assert with_shipped_weights(exp).arms[0].weights == "x"


def test_an_experiment_from_shipped_weights_trains_only_the_downstream_runs(shipped, cli, tmp_path):
    root = tmp_path / "toy"
    folder_dataset(root)
    design = tmp_path / "design.json"
    design.write_text(json.dumps({"kind": "transfer", "arms": [{"name": "p", "scene": "report", "weights": "tiny"}],
                                  "pretrain": TOY, "downstream": TOY, "seeds": 1}))
    out = tmp_path / "exp"
    code, _, err = cli(["experiment", "--preset", design, "--data", f"folder:{root}", "--classes", "3", "--out", out,
                        "--quiet"])
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["downstream-baseline-seed0", "downstream-p-seed0"]
    assert json.loads((out / "downstream-p-seed0" / "transfer.json").read_text())["counts"]["loaded"] > 200
    assert "downstream-p-seed0" in (out / "report.md").read_text()


def test_runs_from_shipped_weights_are_reused_by_a_larger_experiment(shipped, cli, tmp_path, monkeypatch):
    """--reuse takes the runs that start from a model no experiment makes (here shipped weights) as it
    takes scratch runs: an experiment with one more arm trains only that arm's runs."""
    from fakeballoons.train import experiment

    root = tmp_path / "toy"
    folder_dataset(root)
    arms = [{"name": "p", "scene": "report", "weights": "tiny"}]
    small, large = tmp_path / "small.json", tmp_path / "large.json"
    small.write_text(json.dumps({"kind": "transfer", "arms": arms, "pretrain": TOY, "downstream": TOY, "seeds": 1}))
    large.write_text(json.dumps({"kind": "transfer", "arms": [*arms, {"name": "q", "scene": "report"}],
                                 "pretrain": TOY, "downstream": TOY, "seeds": 1}))
    common = ["--data", f"folder:{root}", "--classes", "3", "--quiet"]
    assert cli(["experiment", "--preset", small, "--out", tmp_path / "a", *common])[0] == 0
    trained, real_train = [], experiment.train
    monkeypatch.setattr(experiment, "train", lambda *a, **kw: (trained.append(a[1].name), real_train(*a, **kw))[1])
    code, _, err = cli(["experiment", "--preset", large, "--out", tmp_path / "b", "--reuse", tmp_path / "a", *common])
    assert code == 0, err
    assert trained == ["pretrain-q", "downstream-q-seed0"]
    for name in ("downstream-baseline-seed0", "downstream-p-seed0"):
        assert (tmp_path / "b" / name).resolve() == (tmp_path / "a" / name).resolve() != tmp_path / "b" / name


def test_weights_check_with_an_empty_registry_says_so(tmp_path, monkeypatch, cli):
    monkeypatch.setattr(cards, "_folder", lambda: tmp_path)
    (tmp_path / "registry.json").write_text("[]")
    weights.registry.cache_clear()
    try:
        code, out, _ = cli(["weights", "check"])
    finally:
        weights.registry.cache_clear()
    assert code == 0 and "nothing to check" in out
