"""The viewer's HTTP API: frames and pictures, scene parameters, config downloads, and 4xx for bad input.

The hostile inputs (nesting, huge numbers, NaN, long strings, bad Host) are in test_viewer_hostile.py.
"""

import base64
import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from fakeballoons import SceneConfig, prototype_scene, render, sample_scene, single_object_scene
from fakeballoons.codec import load_preset
from fakeballoons.data import formats
from fakeballoons.scene import sample_scene_table
from fakeballoons.viewer import frames
from fakeballoons.viewer.app import create_app
from fakeballoons.viewer.settings import PRESETS


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), base_url="http://127.0.0.1")


def png(resp):
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(resp.content))


def test_page_and_static(client):
    page = client.get("/")
    assert page.status_code == 200 and "fakeballoons" in page.text
    assert client.get("/static/app.js").status_code == 200
    defaults = client.get("/api/defaults").json()
    assert defaults["class_colours"] == [[0, 255, 128], [42, 0, 255], [255, 0, 42]]
    assert set(defaults["presets"]) == {"report", "shapes", "ground", "many-classes", "no-texture", "one-colour",
                                        "fixed-elongation"}
    assert defaults["presets"]["ground"]["ground"] and not defaults["presets"]["report"]["ground"]
    assert defaults["presets"]["many-classes"]["class_table"] and defaults["presets"]["many-classes"]["classes"] is None


@pytest.mark.parametrize("view", ["single", "random", "prototypes"])
@pytest.mark.parametrize("output, mode", [("image", "RGB"), ("label", "P"), ("overlay", "RGB")])
def test_every_view_and_output(client, view, output, mode):
    img = png(client.get("/api/render.png", params={"view": view, "output": output, "size": 256}))
    assert img.size == (256, 256) and img.mode == mode


def test_bytes_equal_the_cli_encoders(client):
    config = SceneConfig(height=256, width=256, noise="sc")
    sample = render(sample_scene(config, 4, 9), config)
    resp = client.get("/api/render.png", params={"seed": 4, "index": 9, "size": 256, "noise": "sc"})
    assert resp.content == formats.encode_image(sample.image)
    resp = client.get("/api/render.png", params={"seed": 4, "index": 9, "size": 256, "noise": "sc", "output": "label"})
    palette = formats.label_palette(config)
    assert resp.content == formats.encode_label(sample.label, palette)
    single = render(single_object_scene(40.0, 0.8, 12.0), config.replace(noise="perlin"))
    resp = client.get("/api/render.png", params={"view": "single", "hue": 40, "elongation": 0.8, "noise_scale": 12,
                                                 "size": 256, "kd": 0.5, "ks": 0.25})
    assert resp.content == formats.encode_image(single.image)


def test_frame_is_one_render_of_picture_label_and_scene(client, monkeypatch):
    calls = []
    monkeypatch.setattr(frames, "render", lambda *a: calls.append(1) or render(*a))
    params = {"seed": 11, "index": 5, "size": 256}
    d = client.get("/api/frame", params={**params, "label": "true"}).json()
    config = SceneConfig(height=256, width=256)
    sample = render(sample_scene(config, 11, 5), config)
    assert base64.b64decode(d["image"]) == formats.encode_image(sample.image)
    assert base64.b64decode(d["label"]) == formats.encode_label(sample.label, formats.label_palette(config))
    assert d["scene"] == sample_scene(config, 11, 5).to_dict() and (d["width"], d["height"]) == (256, 256)
    legend = d["legend"]
    counts = np.bincount(sample.label.ravel(), minlength=256)
    assert legend["background"] == counts[0] and legend["ignore"] == {"label": 255, "pixels": int(counts[255])}
    assert [c["pixels"] for c in legend["classes"]] == counts[1:4].tolist()
    # the downloads of what is on screen come from the same render
    assert client.get("/api/render.png", params=params).content == base64.b64decode(d["image"])
    assert client.get("/api/render.png", params={**params, "output": "label"}).content == base64.b64decode(d["label"])
    assert len(calls) == 1
    # a preview is the same scene at 128 pixels
    small = client.get("/api/frame", params={**params, "size": 128}).json()
    assert small["width"] == 128 and small["scene"] == d["scene"] and small["label"] is None and len(calls) == 2


def test_single_object_is_the_2022_page(client):
    """Task 1: the picked colour as HSL (grey included), and the page's lighting kd 0.8, ks 0.3."""
    frame = client.get("/api/frame", params={"view": "single", "size": 128}).json()
    assert frame["scene"]["objects"][0]["kd"] == 0.8 and frame["scene"]["objects"][0]["ks"] == 0.3
    grey = png(client.get("/api/render.png", params={"view": "single", "size": 128, "saturation": 0,
                                                     "lightness": 0.5}))
    inst = render(single_object_scene(kd=0.8, ks=0.3), SceneConfig(height=128, width=128)).instance
    pixels = np.asarray(grey)[inst == 1].astype(int)
    assert (pixels[:, 0] == pixels[:, 1]).all() and (pixels[:, 1] == pixels[:, 2]).all() and pixels.max() > 60
    red = np.asarray(png(client.get("/api/render.png", params={"view": "single", "size": 128})))[inst == 1]
    assert (red[:, 0] > red[:, 1]).mean() > 0.99  # hue 0: red
    lit = np.asarray(png(client.get("/api/render.png", params={"view": "single", "size": 128, "kd": 0.5,
                                                               "ks": 0.25})))[inst == 1]
    assert red[:, 0].mean() > 1.2 * lit[:, 0].mean()  # the 2022 page's object is brighter than the prototypes'
    turned = client.get("/api/frame", params={"view": "single", "size": 64, "shape": "torus", "thickness": 0.3,
                                              "yaw": 30, "pitch": -40, "roll": 10}).json()["scene"]["objects"][0]
    assert turned["shape"] == "torus" and turned["thickness"] == 0.3
    assert abs(sum(q * q for q in turned["rotation"]) - 1) < 1e-12 and turned["rotation"][0] < 1


def test_task2_one_look_for_all_objects(client):
    params = {"seed": 3, "index": 1, "size": 64}
    plain = client.get("/api/scene.json", params=params).json()["scene"]["objects"]
    look = {"hue": 30, "saturation": 0.5, "lightness": 0.4, "elongation": 0.7, "noise_scale": 9, "shape": "box"}
    shared = client.get("/api/scene.json", params={**params, **look, "shared": "true"}).json()["scene"]["objects"]
    assert len(shared) == len(plain) > 1
    for a, b in zip(plain, shared):
        assert (a["x"], a["y"], a["scale"], a["kd"], a["ks"], a["class_id"]) == \
            (b["x"], b["y"], b["scale"], b["kd"], b["ks"], b["class_id"])
        assert (b["hue"], b["saturation"], b["lightness"], b["elongation"], b["noise_scale"], b["shape"]) == \
            (30, 0.5, 0.4, 0.7, 9, "box")


def test_task3_background_changes_with_the_scene(client):
    backgrounds = {client.get("/api/scene.json", params={"view": "prototypes", "index": i}).json()["scene"]
                   ["background_noise_scale"] for i in range(3)}
    assert len(backgrounds) == 3
    config = SceneConfig()
    assert sample_scene_table(config, 0, 2)[0] in backgrounds


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("view", ["random", "prototypes"])
def test_every_preset_renders(client, preset, view):
    d = client.get("/api/frame", params={"preset": preset, "view": view, "size": 64, "label": "true"})
    assert d.status_code == 200, d.text
    config = load_preset(SceneConfig, preset)
    assert len(d.json()["legend"]["classes"]) == config.num_classes


def test_preset_knobs(client):
    base = {"preset": "ground", "size": 64, "seed": 2}
    with_ground = client.get("/api/config.json", params=base).json()
    assert with_ground["ground"] and with_ground["light"]["shadows"]
    without = client.get("/api/config.json", params={**base, "ground": "false", "shadows": "false"}).json()
    assert "ground" not in without and "shadows" not in without["light"]
    assert client.get("/api/config.json", params={"rotation": "uniform"}).json()["sampling"]["rotation"] == "uniform"
    pictures = {client.get("/api/render.png", params={**base, **extra}).content
                for extra in ({}, {"ground": "false"}, {"shadows": "false"})}
    assert len(pictures) == 3


def test_class_table_with_distributions(client):
    classes = [{"name": "ring", "shape": "torus", "hue": {"uniform": [0, 360]}, "elongation": 0.5, "noise_scale": 5},
               {"name": "boxes", "shape": {"choice": ["box", "cone"], "weights": [1, 3]}, "hue": 100,
                "elongation": {"normal": [0.5, 0.1]}, "noise_scale": {"choice": [5, 30]}}]
    params = {"classes": json.dumps(classes), "size": 64, "seed": 1}
    config = SceneConfig.from_json(client.get("/api/config.json", params=params).text)
    assert config.classes[0].shape == "torus" and config.classes[1].shape.choice == ("box", "cone")
    assert client.get("/api/frame", params=params).status_code == 200
    many = client.get("/api/config.json", params={**params, "preset": "many-classes"}).json()
    assert "class_table" not in many and len(many["classes"]) == 2  # the page's table replaces a generated one


def test_class_table_and_overrides(client):
    classes = [{"name": "a", "hue": 60, "elongation": 0.9, "noise_scale": 3},
               {"name": "b", "hue": 200, "elongation": 0.2, "noise_scale": 40}]
    params = {"view": "prototypes", "size": 256, "classes": json.dumps(classes)}
    config = SceneConfig(height=256, width=256, classes=SceneConfig.from_dict({"classes": classes}).classes)
    expected = render(prototype_scene(config, background_noise_scale=sample_scene_table(config, 0, 0)[0]), config)
    assert client.get("/api/render.png", params=params).content == formats.encode_image(expected.image)
    data = client.get("/api/scene.json", params={"num_objects": 7, "background_noise_scale": 3.5, "seed": 2}).json()
    assert len(data["scene"]["objects"]) == 7 and data["scene"]["background_noise_scale"] == 3.5


def test_saved_config_is_what_generate_reads(client):
    classes = [{"name": "x", "hue": 10, "elongation": 0.5, "noise_scale": 8, "hue_std": 5}]
    resp = client.get("/api/config.json", params={"noise": "sc", "size": 256, "num_objects": 3,
                                                  "classes": json.dumps(classes)})
    assert resp.status_code == 200 and "attachment" in resp.headers["content-disposition"]
    config = SceneConfig.from_json(resp.text)
    assert config.noise == "sc" and config.height == 256 and config.sampling.num_objects == (3, 3)
    assert config.classes[0].hue_std == 5


@pytest.mark.parametrize("params, status", [
    ({"size": 1024}, 422), ({"size": 100}, 422), ({"hue": 400, "view": "single"}, 422),
    ({"elongation": 0.99}, 422), ({"noise_scale": 0.5}, 422), ({"seed": -1}, 422), ({"view": "foo"}, 422),
    ({"noise": "simplex"}, 422), ({"num_objects": 21}, 422), ({"background_noise_scale": 0}, 422),
    ({"output": "depth"}, 422), ({"classes": "not json"}, 400), ({"preset": "nope"}, 422),
    ({"shape": "sphere", "view": "single"}, 422), ({"kd": 2, "view": "single"}, 422), ({"size": 96}, 422),
    ({"classes": '[{"name": "a", "hue": 1, "elongation": 2, "noise_scale": 3}]'}, 400),
    ({"classes": json.dumps([{"name": f"c{i}", "hue": 1, "elongation": 0.5, "noise_scale": 3}
                             for i in range(13)])}, 400),
    ({"classes": '{"name": "a"}'}, 400), ({"classes": "x" * 9000}, 422),
])
def test_bad_parameters_are_4xx_with_a_message(client, params, status):
    resp = client.get("/api/render.png", params=params)
    assert resp.status_code == status
    assert resp.json()["detail"]


def test_no_paths_from_the_client(client):
    assert client.get("/static/../../__init__.py").status_code == 404
    assert client.get("/api/render.png", params={"output": "/etc/passwd"}).status_code == 422


def test_overlay_blends_labels(client):
    base = np.asarray(png(client.get("/api/render.png", params={"size": 256, "seed": 1})))
    over = np.asarray(png(client.get("/api/render.png", params={"size": 256, "seed": 1, "output": "overlay"})))
    label = np.asarray(png(client.get("/api/render.png", params={"size": 256, "seed": 1, "output": "label"})))
    assert (over[label == 0] == base[label == 0]).all() and (over[label > 0] != base[label > 0]).any()


def test_errors_count_classes_from_one(client):
    classes = [{"name": "a", "hue": 1, "elongation": 0.5, "noise_scale": 3},
               {"name": "b", "hue": 1, "elongation": 3, "noise_scale": 3}]
    resp = client.get("/api/frame", params={"classes": json.dumps(classes)})
    assert resp.status_code == 400 and resp.json()["detail"].startswith("class 2 elongation: must be <= 1")
