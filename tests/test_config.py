"""SceneConfig: the report's defaults, JSON round trip, validation that names the field."""

import dataclasses
import json

import numpy as np
import pytest

from fakeballoons import ClassPrior, ConfigError, SamplingConfig, SceneConfig


def test_defaults_are_the_reports_scenes():
    c = SceneConfig()
    assert (c.height, c.width, c.noise) == (512, 512, "perlin")
    assert c.camera.eye == (0.0, 0.0, 2.0) and c.camera.fov_y == 90.0
    assert c.light.position == (0.0, 0.0, 2.0) and c.light.ambient == 0.1
    s = c.sampling
    assert s.num_objects == (1, 20) and s.background_noise_scale == (1.0, 20.0)
    assert s.object_scale == (0.1, 0.7) and s.position_x == s.position_y == (-1.5, 1.5)
    assert (s.diffuse, s.specular, s.shininess) == ((0.25, 0.75), (0.0, 0.5), (10.0, 100.0))
    assert [(p.hue, p.elongation, p.noise_scale) for p in c.classes] == [
        (150, 0.55, 5), (250, 0.45, 17.5), (350, 0.5, 30)]
    assert {(p.hue_std, p.elongation_std, p.noise_scale_std) for p in c.classes} == {(50, 0.05, 5)}
    assert c.antialias.samples >= 4 and c.antialias.ignore_index == 255


def test_label_colours_are_the_reports():
    assert [p.colour for p in SceneConfig().classes] == [(0, 255, 128), (42, 0, 255), (255, 0, 42)]


def test_json_round_trip():
    c = SceneConfig(height=100, width=60, noise="sc",
                    classes=(ClassPrior("a", 10, 0.2, 3, hue_std=1.5), ClassPrior("b", 200, 0.8, 40)))
    text = c.to_json()
    assert SceneConfig.from_json(text) == c
    assert json.loads(text)["classes"][0]["hue_std"] == 1.5


def test_partial_json_takes_defaults():
    c = SceneConfig.from_dict({"noise": "sc", "sampling": {"num_objects": [2, 3]}})
    assert c.noise == "sc" and c.sampling.num_objects == (2, 3)
    assert c.sampling.object_scale == SamplingConfig().object_scale


def test_noise_aliases():
    assert SceneConfig(noise="sparse_convolution").noise == "sc"
    assert SceneConfig(noise="Perlin").noise == "perlin"


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        SceneConfig().height = 3


@pytest.mark.parametrize("data, field", [
    ({"foo": 1}, "'foo'"),
    ({"sampling": {"object_scal": [0.1, 0.2]}}, "'sampling.object_scal'"),
    ({"classes": [{"name": "a", "hue": 1, "elongation": 0.5, "noise_scale": 2, "colour": 3}]},
     "'classes[0].colour'"),
    ({"classes": [{"name": "a", "hue": 1, "elongation": 0.5, "noise_scale": 2, "hue_std": -1}]},
     "'classes[0].hue_std'"),
    ({"classes": [{"name": "a", "hue": 1, "elongation": 0.5}]}, "'classes[0]'"),
    ({"height": 0}, "'height'"),
    ({"height": 12.5}, "'height'"),
    ({"noise": "foo"}, "'noise'"),
    ({"sampling": {"object_scale": [0.7, 0.1]}}, "'sampling.object_scale'"),
    ({"sampling": {"object_scale": [0.0, 0.1]}}, "'sampling.object_scale'"),
    ({"sampling": {"num_objects": [1]}}, "'sampling.num_objects'"),
    ({"sampling": {"num_objects": "many"}}, "'sampling.num_objects'"),
    ({"sampling": {"diffuse": [-0.1, 0.5]}}, "'sampling.diffuse'"),
    ({"camera": {"fov_y": 0}}, "'camera.fov_y'"),
    ({"camera": {"target": [0, 0, 2]}}, "'camera.target'"),
    ({"camera": {"up": [0, 0, 1]}}, "'camera.up'"),
    ({"antialias": {"samples": 2}}, "'antialias.samples'"),
    ({"antialias": {"ignore_index": 2}}, "'antialias.ignore_index'"),
    ({"antialias": {"ignore_edges": "yes"}}, "'antialias.ignore_edges'"),
    ({"classes": []}, "'classes'"),
    ([], "'config'"),
    ({"camera": {"eye": [float("nan"), 0, 2]}}, "'camera.eye[0]': must be a finite number"),
    ({"light": {"position": [0, float("inf"), 0]}}, "'light.position[1]': must be a finite number"),
    ({"classes": [{"name": "a", "hue": 1, "elongation": 0.5, "noise_scale": 2, "hue_std": 1e308 * 10}]},
     "'classes[0].hue_std': must be a finite number"),
])
def test_validation_names_the_field(data, field):
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")) as err:
        SceneConfig.from_dict(data)
    assert "\n" not in str(err.value)


def test_invalid_json_text():
    with pytest.raises(ConfigError, match="not valid JSON"):
        SceneConfig.from_json("{nope")


def test_constructor_validates_too():
    with pytest.raises(ConfigError, match="'sampling.shininess'"):
        SceneConfig(sampling=SamplingConfig(shininess=(5.0, 1.0)))


def test_label_colour_agrees_with_float_hsl():
    import colorsys

    from fakeballoons.config import label_colour

    for hue in np.linspace(0, 359.9, 997):
        ref = [c * 255 for c in colorsys.hls_to_rgb(hue / 360, 0.5, 1.0)]
        got = label_colour(float(hue))
        assert all(abs(g - r) <= 0.5 + 1e-9 for g, r in zip(got, ref)), hue
    assert label_colour(360.0) == label_colour(0.0) == (255, 0, 0)
    assert label_colour(-10.0) == label_colour(350.0)


def test_an_override_of_a_preset_given_by_name_extends_that_preset(tmp_path):
    """In a preset, "downstream": "real" stands for {"base": "real"}: an experiment that extends it
    and sets one value of its downstream recipe keeps the rest of the real recipe."""
    from fakeballoons.train.experiment import load_experiment_preset
    from fakeballoons.train.run import load_train_preset

    path = tmp_path / "exp.json"
    path.write_text(json.dumps({"base": "transfer-20k", "downstream": {"lr": 0.004}}))
    exp = load_experiment_preset(str(path))
    assert exp.downstream == dataclasses.replace(load_train_preset("real"), lr=0.004)
    assert exp.downstream.model == "lraspp_mobilenet_v3_large" and exp.downstream.epochs == 30
    assert exp.pretrain == load_experiment_preset("transfer-20k").pretrain
    # and the other way round: a name over an object replaces it
    path.write_text(json.dumps({"base": "transfer-20k", "pretrain": "quick"}))
    assert load_experiment_preset(str(path)).pretrain == load_train_preset("quick")
