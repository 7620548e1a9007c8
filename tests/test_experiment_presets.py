"""The shipped experiment presets and the transfer study's design files: each differs from the
one it is compared with in what it says, and nothing else."""

import dataclasses
import json
from pathlib import Path

import pytest

from fakeballoons.codec import preset_names
from fakeballoons.train import experiment

DOCS = Path(__file__).resolve().parents[1] / "docs" / "studies" / "transfer" / "designs"  # the study's designs


def test_t_interval_and_presets():
    from fakeballoons.train.report import t_interval

    lo, hi = t_interval([1.0, 2.0, 3.0])
    assert (lo + hi) / 2 == pytest.approx(2.0) and hi - lo == pytest.approx(2 * 4.303 * 1.0 / 3 ** 0.5)
    assert t_interval([1.0]) is None
    assert experiment.load_experiment_preset("quick-folder").seeds == 2
    assert experiment.load_experiment_preset("paper-coco").downstream.num_train == 1000
    names = ("transfer-20k", "transfer-80k", "transfer-160k")
    short, long, longer = (experiment.load_experiment_preset(n) for n in names)
    assert (short.pretrain.num_train, long.pretrain.num_train, longer.pretrain.num_train) == (20000, 80000, 160000)
    assert dataclasses.replace(long, pretrain=short.pretrain) == short  # nothing else differs
    assert dataclasses.replace(longer, pretrain=short.pretrain) == short


def test_the_transfer_preset_is_transfer_160k_in_batches_of_8_fine_tuned_at_4e_3():
    """`transfer`, the design that reached +3 mean IoU: transfer-160k's scenes and recipe with pretraining
    batches of 8 (the batch-8 arm of docs/studies/transfer/designs/transfer-80k-steps.json, twice the scenes) and both
    arms fine-tuned at 4e-3; nothing else differs."""
    t, t160 = (experiment.load_experiment_preset(n) for n in ("transfer", "transfer-160k"))
    assert (t.pretrain.num_train, t.pretrain.batch_size, t.downstream.lr, t.seeds) == (160000, 8, 0.004, 3)
    assert dataclasses.replace(t, pretrain=dataclasses.replace(t.pretrain, batch_size=32),
                               downstream=dataclasses.replace(t.downstream, lr=0.008)) == t160
    b8 = experiment.load_experiment_preset(str(DOCS / "transfer-80k-steps.json")).arms[1].train
    assert b8.batch_size == 8 and dataclasses.replace(t.pretrain, num_train=80000) == b8
    # the file its runs were made with: the preset but for the arm's name
    made = experiment.load_experiment_preset(str(DOCS / "transfer-160k-b8.json"))
    assert made.arms[0].name != t.arms[0].name and made.recipe(made.arms[0]) == t.pretrain
    assert dataclasses.replace(made, arms=t.arms, pretrain=t.pretrain) == t  # its arm carries its own recipe


def test_the_configurations_in_docs_transfer_still_load():
    """The transfer study gives commands with these files: each must stay a valid experiment or scene."""
    from fakeballoons.codec import load_preset
    from fakeballoons.config import SceneConfig

    files = sorted(DOCS.glob("*.json"))
    assert len(files) >= 3
    for path in files:
        if "arms" in json.loads(path.read_text()) or path.name.startswith("transfer"):
            exp = experiment.load_experiment_preset(str(path))
            assert exp.kind == "transfer" and exp.seeds >= 1, path.name
        else:
            assert load_preset(SceneConfig, str(path), "scene").num_classes >= 2, path.name
    many = experiment.load_experiment_preset(str(DOCS / "transfer-80k-many.json"))
    t80 = experiment.load_experiment_preset("transfer-80k")
    assert many.arms[0].scene.num_classes == 64 and dataclasses.replace(many, arms=t80.arms) == t80
    for name in ("80k", "160k"):  # the 64x64 pretraining differs from its preset in the scenes' size only
        small = experiment.load_experiment_preset(str(DOCS / f"transfer-{name}-64px.json"))
        big = experiment.load_experiment_preset(f"transfer-{name}")
        assert (small.pretrain.size, big.pretrain.size) == (64, 128)
        assert dataclasses.replace(small, pretrain=dataclasses.replace(small.pretrain, size=128)) == big
    # smaller pretraining batches (more steps over the same 80,000 scenes), nothing else different
    steps = experiment.load_experiment_preset(str(DOCS / "transfer-80k-steps.json"))
    assert [arm.train.batch_size for arm in steps.arms] == [16, 8] and steps.downstream.lr == 0.004
    for arm in steps.arms:
        assert dataclasses.replace(arm.train, batch_size=32) == t80.pretrain and arm.downstream is None
    assert dataclasses.replace(steps, arms=t80.arms, downstream=dataclasses.replace(steps.downstream, lr=0.008)) \
        == t80


def test_the_240k_preset_is_the_160k_pretraining_continued_and_nothing_else():
    """transfer-240k: transfer-160k's pretraining, then 80,000 more scenes with the same recipe
    (seed 1: new scenes), both pretrained arms fine-tuned at 4e-3, the scratch arm as before."""
    from fakeballoons.data.sources import DataConfig

    t160, t240 = (experiment.load_experiment_preset(n) for n in ("transfer-160k", "transfer-240k"))
    assert dataclasses.replace(t240, arms=t160.arms) == t160  # the scratch arm, seeds, pretraining unchanged
    first, second = t240.arms
    assert (first.name, first.scene, first.continues) == (t160.arms[0].name, t160.arms[0].scene, "")
    assert (second.continues, second.scene) == (first.name, first.scene)
    assert t240.recipe(second) == dataclasses.replace(t160.pretrain, num_train=80000)
    for arm in t240.arms:
        assert t240.downstream_recipe(arm.name) == dataclasses.replace(t160.downstream, lr=0.004)
    jobs = {j.name: j.run for j in experiment.plan(experiment.ExperimentRun(t240, DataConfig("synthetic")))}
    assert jobs["pretrain-perlin-nuisance-240k"].train.seed == jobs["pretrain-perlin-nuisance"].train.seed + 1


def _study_designs():
    return sorted(p for p in DOCS.glob("*.json") if "kind" in json.loads(p.read_text()) or
                  json.loads(p.read_text()).get("base", "").startswith(("transfer", "quick", "paper", "report-")))


@pytest.mark.parametrize("name", [*preset_names(experiment.ExperimentConfig),
                                  *(str(p) for p in _study_designs())])
def test_every_preset_and_study_design_loads_and_plans(name, tmp_path):
    from fakeballoons.data.sources import DataConfig

    exp = experiment.load_experiment_preset(name)
    data = DataConfig(f"folder:{tmp_path}", classes=3) if exp.kind == "transfer" else None
    jobs = experiment.plan(experiment.ExperimentRun(exp, data))
    assert jobs and len({j.name for j in jobs}) == len(jobs)


def test_no_preset_spells_the_pretraining_recipe_out():
    """The transfer presets and designs take their pretraining from the one shared recipe
    (configs/train/pretrain.json) and say only what differs."""
    presets = Path(experiment.__file__).resolve().parents[1] / "configs" / "experiments"
    for path in [*presets.glob("*.json"), *DOCS.glob("*.json")]:
        text = path.read_text()
        assert '"grayscale"' not in text and '"warmup_epochs"' not in text, path.name
