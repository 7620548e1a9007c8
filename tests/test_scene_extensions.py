"""Scenes beyond the report: shapes and poses, textures, distributions, class tables, ground, shadows."""

import dataclasses
import json
import math

import numpy as np
import pytest

from fakeballoons import Scene, SceneConfig, SceneObject, render, sample_scene
from fakeballoons.classes import SHAPES, ClassPrior, ClassTable, Dist, distinct_colours
from fakeballoons.codec import load_preset, preset_names
from fakeballoons.config import GroundConfig, LightConfig
from fakeballoons.errors import ConfigError
from fakeballoons.render import render_packed
from fakeballoons.render.pack import pack

SMALL = SceneConfig(height=48, width=64)


def _scene(*objects, background=5.0):
    return Scene(background, tuple(objects))


def _obj(shape="ellipsoid", rotation=(1.0, 0.0, 0.0, 0.0), x=0.0, y=0.0, z=0.0, scale=0.8, elongation=0.5,
         thickness=0.3, hue=200.0, kd=0.6, ks=0.2, class_id=1, **kw):
    return SceneObject(class_id, hue, elongation, 5.0, scale, x, y, z, kd, ks, 20.0, shape=shape, rotation=rotation,
                       thickness=thickness, **kw)


def _about(axis, degrees):
    half = math.radians(degrees) / 2.0
    return (math.cos(half), *(math.sin(half) * np.asarray(axis, dtype=np.float64)))


def test_the_general_kernel_renders_the_reports_scenes_to_the_same_bytes():
    for noise in ("perlin", "sc"):
        config = SMALL.replace(noise=noise)
        scenes = [sample_scene(config, 3, i) for i in range(4)]
        simple, general = pack(scenes, config), pack(scenes, config, general=True)
        assert not simple.general and general.general
        a, b = render_packed(simple), render_packed(general)
        for x, y in zip((a.image, a.label, a.instance), (b.image, b.label, b.instance)):
            np.testing.assert_array_equal(x, y)


def test_a_rotated_object_equals_the_turned_object():
    """A quarter turn about the view axis swaps width and height: rho -> 1 - rho for the ellipsoid
    (the fast rotated-ellipsoid path) and the box (the general shape path)."""
    config = SceneConfig(height=64, width=64)
    for shape in ("ellipsoid", "box"):
        turned = render(_scene(_obj(shape, _about((0, 0, 1), 90.0), elongation=0.7)), config)
        plain = render(_scene(_obj(shape, elongation=0.3)), config)
        np.testing.assert_array_equal(turned.label, plain.label)
        assert (turned.label == 1).sum() > 300


def test_a_cube_turned_45_degrees_about_the_view_axis_is_a_diamond():
    config = SceneConfig(height=101, width=101)
    half = 0.5  # box half-extents s (a_x, a_y, 1) with s = 0.5, rho = 0.5: a cube of side 1
    label = render(_scene(_obj("box", _about((0, 0, 1), 45.0), scale=half)), config).label
    # The front face is at z = 0.5, seen from z = 2: a diamond of half-diagonal 0.5 sqrt(2) / 1.5 in
    # view-plane units (tan 45 = 1 spans 50.5 pixels from the centre).
    r = half * math.sqrt(2.0) / 1.5 * 50.5
    yy, xx = np.mgrid[0:101, 0:101] + 0.5
    d = np.abs(xx - 50.5) + np.abs(yy - 50.5)
    assert (label[d < r - 1.5] == 1).all() and (label[d > r + 1.5] == 0).all()


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_renders_with_consistent_labels(shape):
    config = SceneConfig(height=64, width=64)
    sample = render(_scene(_obj(shape, _about((1, 1, 0) / np.sqrt(2), 30.0))), config)
    assert (sample.label == 1).sum() > 100
    assert set(np.unique(sample.label)) <= {0, 1, 255}
    inside = sample.label != 255
    np.testing.assert_array_equal(sample.label[inside] > 0, sample.instance[inside] > 0)


def test_texture_spaces_and_per_object_noise():
    config = SceneConfig(height=64, width=64)
    base = dict(shape="box", rotation=_about((1, 0, 0), 20.0))
    flat = render(_scene(_obj(**base, texture="none")), config)
    solid = render(_scene(_obj(**base, texture="solid")), config)
    normal = render(_scene(_obj(**base)), config)
    sc = render(_scene(_obj(**base, texture="solid", noise="sc")), config)
    np.testing.assert_array_equal(flat.label, solid.label)
    face = flat.label == 1
    # a flat face with no texture is one colour; with solid texture it varies across the face
    assert np.ptp(flat.image[face][:, 2]) < np.ptp(solid.image[face][:, 2])
    assert not np.array_equal(solid.image, normal.image) and not np.array_equal(solid.image, sc.image)


def _lit(light=(0.0, 5.0, 0.0), shadows=True, ambient=0.2, **ground):
    return SceneConfig(height=64, width=64, camera=dataclasses.replace(SceneConfig().camera, eye=(0.0, 3.0, 3.0),
                                                                       target=(0.0, -1.0, 0.0)),
                       light=LightConfig(position=light, ambient=ambient, shadows=shadows),
                       ground=GroundConfig(height=-1.0, albedo=0.8, diffuse=0.9, **ground))


def test_a_pixel_in_shadow_is_the_shading_formula_without_diffuse_and_specular():
    # A wide flat box floats above the ground; the light straight above it.
    shade = _obj("box", x=0.0, y=0.5, z=0.0, scale=1.0, elongation=0.9)
    config = _lit()
    sample = render(_scene(shade), config)
    packed = pack([_scene(shade)], config)
    # The ground point below the box centre, (0, -1, 0), in pixel coordinates.
    from fakeballoons.render import fields as K

    eye, cam = np.array(config.camera.eye), packed.cam
    right, up, fwd = cam[K.RIGHT:K.RIGHT + 3], cam[K.UP:K.UP + 3], cam[K.FWD:K.FWD + 3]
    rel = np.array([0.0, -1.0, 0.0]) - eye
    xn, yn = rel @ right / (rel @ fwd) / cam[K.SX], rel @ up / (rel @ fwd) / cam[K.SY]
    # That point is the camera's target: the image centre, a corner of four pixels. Rounding takes the
    # pixel below it whatever the last bit of the projection (int() took the box's pixel above it
    # when yn came out +9e-17, as it does with some NumPy builds and CPUs).
    px, py = round((xn + 1) / 2 * 64), round((1 - yn) / 2 * 64)
    assert (px, py) == (32, 32)
    assert sample.label[py, px] == 0  # the ground, not the box
    expected = math.floor(0.8 * 0.2 * 255 + 0.5)  # albedo ka, no diffuse term
    assert (sample.image[py, px] == expected).all()
    lit = render(_scene(shade), dataclasses.replace(config, light=dataclasses.replace(config.light, shadows=False)))
    assert lit.image[py, px, 0] > expected + 20
    # An object in the shadow of another: its colour is Le ka exactly.
    below = _obj("box", x=0.0, y=-0.7, z=0.7, scale=0.3, hue=120.0, ks=0.0)  # in front: in view, yet in shadow
    sample = render(_scene(shade, below), config)
    interior = (sample.instance == 2) & (sample.label == 1)
    assert interior.sum() >= 10, "the shadowed object must be seen for the test to test anything"
    colour = np.floor(np.array([0.0, 1.0, 0.0]) * 0.2 * 255 + 0.5)
    assert (sample.image[interior] == colour).all()
    unshadowed = render(_scene(shade, below), dataclasses.replace(config, light=dataclasses.replace(config.light,
                                                                                                 shadows=False)))
    assert (unshadowed.image[interior] != colour).any(axis=1).sum() >= 10  # lit, the top faces are brighter


def test_lighting_and_shadows_never_change_labels():
    config = load_preset(SceneConfig, "ground").replace(height=64, width=64)
    variants = [config, dataclasses.replace(config, light=LightConfig(position=(2.0, 1.0, 0.0), ambient=0.6)),
                dataclasses.replace(config, light=dataclasses.replace(config.light, shadows=False))]
    for index in range(3):
        scene = sample_scene(config, 1, index)
        samples = [render(scene, c) for c in variants]
        for s in samples[1:]:
            np.testing.assert_array_equal(s.label, samples[0].label)
            np.testing.assert_array_equal(s.instance, samples[0].instance)
        assert not np.array_equal(samples[0].image, samples[1].image)


def test_objects_rest_on_the_ground():
    from fakeballoons.geometry import object_params, quaternion_matrices, support

    config = load_preset(SceneConfig, "ground")
    for index in range(5):
        for o in sample_scene(config, 2, index).objects:
            kind = SHAPES.index(o.shape)
            p = object_params(kind, o.scale, o.elongation, o.thickness)
            down = -quaternion_matrices([o.rotation])[0].T @ np.array([0.0, -1.0, 0.0])
            assert o.y - support(kind, *p, *-down) == pytest.approx(config.ground.height, abs=1e-12)


def _attributes(config, n_scenes=400):
    rows = np.concatenate([sample_scene(config, 7, i).object_table() for i in range(n_scenes)])
    return rows


def test_every_distribution_samples_what_it_says():
    classes = (
        ClassPrior("u", Dist(uniform=(10.0, 70.0)), Dist(normal=(0.3, 0.05)), Dist(choice=(2.0, 8.0), weights=(3, 1)),
                   shape=Dist(choice=("box", "torus")), size=Dist(uniform=(0.2, 0.4)),
                   saturation=Dist(uniform=(0.2, 0.6))),
        ClassPrior("n", 200.0, 0.6, 20.0, hue_std=10.0, elongation_std=0.02, noise_scale_std=2.0,
                   noise=Dist(choice=("perlin", "sc"))),
    )
    rows = _attributes(SceneConfig(classes=classes))
    u, n = rows[rows[:, 0] == 1], rows[rows[:, 0] == 2]
    assert len(u) > 1000 and len(n) > 1000
    assert u[:, 1].mean() == pytest.approx(40.0, abs=1.5) and u[:, 1].var() == pytest.approx(60 ** 2 / 12, rel=0.1)
    assert 10.0 <= u[:, 1].min() and u[:, 1].max() <= 70.0
    assert u[:, 2].mean() == pytest.approx(0.3, abs=0.005) and u[:, 2].std() == pytest.approx(0.05, rel=0.1)
    assert set(np.unique(u[:, 3])) == {2.0, 8.0} and (u[:, 3] == 2.0).mean() == pytest.approx(0.75, abs=0.04)
    assert set(np.unique(u[:, 11])) == {1.0, 5.0} and (u[:, 11] == 1.0).mean() == pytest.approx(0.5, abs=0.05)
    assert u[:, 4].mean() == pytest.approx(0.3, abs=0.01) and 0.2 <= u[:, 4].min() and u[:, 4].max() <= 0.4
    assert u[:, 19].mean() == pytest.approx(0.4, abs=0.01)
    assert n[:, 1].mean() == pytest.approx(200.0, abs=1.0) and n[:, 1].std() == pytest.approx(10.0, rel=0.1)
    assert set(np.unique(n[:, 17])) == {0.0, 1.0}  # perlin and sc, per object


def test_uniform_rotations_are_uniform():
    d = SceneConfig().to_dict()
    config = SceneConfig.from_dict({**d, "sampling": {**d["sampling"], "rotation": "uniform"}})
    q = _attributes(config, 300)[:, 12:16]
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0)
    from fakeballoons.geometry import quaternion_matrices

    z = quaternion_matrices(q)[:, :, 2]  # where each object's z axis points: uniform on the sphere
    assert np.abs(z.mean(0)).max() < 0.05 and np.allclose((z ** 2).mean(0), 1 / 3, atol=0.03)


def test_a_generated_254_class_table_is_deterministic_and_labels_stay_in_range():
    table = ClassTable(count=254, seed=4)
    a, b = SceneConfig(class_table=table), SceneConfig(class_table=ClassTable(count=254, seed=4))
    assert a == b and a.classes == b.classes and a.num_classes == 254
    assert SceneConfig(class_table=ClassTable(count=254, seed=5)).classes != a.classes
    assert len(set(a.label_colours)) == 254 and (0, 0, 0) not in a.label_colours
    assert len(set(distinct_colours(254))) == 254
    config = a.replace(height=48, width=48, sampling=dataclasses.replace(a.sampling, num_objects=(30, 40)))
    seen = set()
    for index in range(6):
        sample = render(sample_scene(config, 0, index), config)
        seen |= set(np.unique(sample.label).tolist())
    assert seen - {0, 255} and all(1 <= v <= 254 for v in seen - {0, 255})
    assert SceneConfig.from_dict(json.loads(json.dumps(a.to_dict()))) == a
    assert "classes" not in a.to_dict()  # generated from the table


@pytest.mark.parametrize("name", preset_names(SceneConfig))
def test_presets_round_trip_through_json(name):
    config = load_preset(SceneConfig, name)
    assert SceneConfig.from_json(config.to_json()) == config
    assert SceneConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_the_reports_configuration_writes_no_extension_key():
    text = SceneConfig().to_json()
    for key in ("class_table", "texture", "ground", "rotation", "shadows", "shape", "label_colour"):
        assert f'"{key}"' not in text
    assert load_preset(SceneConfig, "report") == SceneConfig()


@pytest.mark.parametrize("data, field", [
    ({"classes": [{"name": "a", "hue": 1, "elongation": 0.5, "noise_scale": 2, "shape": "sphere"}]},
     "'classes[0].shape'"),
    ({"sampling": {"thickness": [-0.2, 0.3]}}, "'sampling.thickness'"),
    ({"class_table": {"count": 255}}, "'class_table.count'"),
    ({"classes": [{"name": "a", "hue": {"normal": [1]}, "elongation": 0.5, "noise_scale": 2}]},
     "'classes[0].hue.normal'"),
    ({"classes": [{"name": "a", "hue": {}, "elongation": 0.5, "noise_scale": 2}]}, "'classes[0].hue'"),
    ({"classes": [{"name": "a", "hue": {"uniform": [5, 1]}, "elongation": 0.5, "noise_scale": 2}]},
     "'classes[0].hue.uniform'"),
    ({"classes": [{"name": "a", "hue": 1, "elongation": 0.5, "noise_scale": 2, "texture": "wood"}]},
     "'classes[0].texture'"),
    ({"sampling": {"rotation": "random"}}, "'sampling.rotation'"),
    ({"ground": {"albedo": 2}}, "'ground.albedo'"),
    ({"light": {"position": [0, float("nan"), 2]}}, "'light.position[1]'"),
    ({"camera": {"eye": [0, 0, float("inf")]}}, "'camera.eye[2]'"),
])
def test_bad_scene_configs_name_the_field(data, field):
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        SceneConfig.from_dict(data)


def test_bad_scene_config_file_exits_2_naming_the_field(tmp_path, cli):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"classes": [{"name": "a", "hue": 1, "elongation": 0.5, "noise_scale": 2,
                                             "shape": "sphere"}]}))
    code, _, err = cli(["render", tmp_path / "x.png", "--scene", path, "--size", 8])
    assert code == 2 and err.count("\n") == 1 and "'classes[0].shape'" in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", preset_names(SceneConfig))
def test_generate_every_preset_verify_and_load_in_pycocotools_and_torchvision(tmp_path, name):
    from pycocotools.coco import COCO
    from torchvision.datasets import VOCSegmentation

    from fakeballoons.data.generate import generate
    from fakeballoons.data.recipe import Recipe
    from fakeballoons.data.verify import verify

    config = load_preset(SceneConfig, name).replace(height=40, width=40)
    generate(tmp_path / "png", Recipe(config, num=8, seed=1, val_fraction=0.25), progress=False)
    assert verify(tmp_path / "png").ok
    coco = COCO(str(tmp_path / "png" / "annotations" / "instances_train.json"))
    records = [json.loads(x) for x in (tmp_path / "png" / "scenes.jsonl").read_text().splitlines()]
    for image_id in range(6):
        instance = render(sample_scene(config, 1, image_id), config).instance
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image_id])):
            np.testing.assert_array_equal(coco.annToMask(ann), instance == ann["instance"])
        assert Scene.from_dict({k: v for k, v in records[image_id].items()
                                if k in ("background_noise_scale", "objects", "seed", "kind")}) \
            == dataclasses.replace(sample_scene(config, 1, image_id), index=None)
    generate(tmp_path / "voc", Recipe(config, num=8, seed=1, val_fraction=0.25, format="voc"), progress=False)
    assert verify(tmp_path / "voc").ok
    voc = VOCSegmentation(str(tmp_path / "voc"), year="2012", image_set="train")
    assert len(voc) == 6 and np.asarray(voc[0][1]).shape == (40, 40)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["shapes", "ground"])
def test_cuda_build_of_the_general_kernel_equals_the_cpu(name):
    config = load_preset(SceneConfig, name).replace(height=24, width=32)
    scenes = [sample_scene(config, 0, i) for i in range(2)]
    cpu = render_packed(pack(scenes, config), "cpu")
    sim = render_packed(pack(scenes, config), "cuda")
    np.testing.assert_array_equal(np.asarray(sim.label), cpu.label)
    np.testing.assert_array_equal(np.asarray(sim.instance), cpu.instance)
    assert np.abs(np.asarray(sim.image).astype(int) - cpu.image).max() <= 1
