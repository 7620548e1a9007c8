"""The viewer's HTTP API: pictures, scene parameters, config downloads, and 4xx for bad input."""

import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from fakeballoons import SceneConfig, prototype_scene, render, sample_scene, single_object_scene
from fakeballoons.data import formats
from fakeballoons.viewer.app import create_app


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app())


def png(resp):
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(resp.content))


def test_page_and_static(client):
    page = client.get("/")
    assert page.status_code == 200 and "fakeballoons" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/api/defaults").json()["class_colours"] == [[0, 255, 128], [42, 0, 255], [255, 0, 42]]


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
                                                 "size": 256})
    assert resp.content == formats.encode_image(single.image)


def test_class_table_and_overrides(client):
    classes = [{"name": "a", "hue": 60, "elongation": 0.9, "noise_scale": 3},
               {"name": "b", "hue": 200, "elongation": 0.2, "noise_scale": 40}]
    params = {"view": "prototypes", "size": 256, "classes": json.dumps(classes)}
    config = SceneConfig(height=256, width=256, classes=SceneConfig.from_dict({"classes": classes}).classes)
    expected = render(prototype_scene(config), config)
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
    ({"output": "depth"}, 422), ({"classes": "not json"}, 400),
    ({"classes": '[{"name": "a", "hue": 1, "elongation": 2, "noise_scale": 3}]'}, 400),
    ({"classes": json.dumps([{"name": f"c{i}", "hue": 1, "elongation": 0.5, "noise_scale": 3}
                             for i in range(13)])}, 400),
    ({"classes": '{"name": "a"}'}, 400), ({"classes": "x" * 5000}, 422),
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
