"""sample_scene draws the scene model's distributions from a generator of (seed, index)."""

import json

import numpy as np
import pytest

from fakeballoons import (
    ClassPrior,
    SamplingConfig,
    Scene,
    SceneConfig,
    UserError,
    prototype_scene,
    sample_scene,
    single_object_scene,
)


def test_same_seed_and_index_same_scene():
    c = SceneConfig()
    assert sample_scene(c, 7, 3) == sample_scene(c, 7, 3)
    assert sample_scene(c, 7, 3) != sample_scene(c, 7, 4)
    assert sample_scene(c, 7, 3) != sample_scene(c, 8, 3)


def test_no_global_random_state():
    np.random.seed(1)
    a = sample_scene(SceneConfig(), 0, 0)
    np.random.seed(2)
    assert sample_scene(SceneConfig(), 0, 0) == a


def test_to_dict_is_json_safe_and_round_trips():
    s = sample_scene(SceneConfig(), 5, 11)
    d = json.loads(json.dumps(s.to_dict()))
    assert d["seed"] == 5 and d["index"] == 11 and len(d["objects"]) == len(s.objects)
    assert Scene.from_dict(d) == s


def test_distributions():
    c = SceneConfig()
    scenes = [sample_scene(c, 0, i) for i in range(1500)]
    counts = np.array([len(s.objects) for s in scenes])
    assert counts.min() == 1 and counts.max() == 20
    assert set(np.unique(counts)) == set(range(1, 21))
    bg = np.array([s.background_noise_scale for s in scenes])
    assert 1.0 <= bg.min() and bg.max() <= 20.0 and abs(bg.mean() - 10.5) < 0.5
    objs = [o for s in scenes for o in s.objects]
    cls = np.array([o.class_id for o in objs])
    freq = np.bincount(cls, minlength=4)[1:] / len(cls)
    np.testing.assert_allclose(freq, 1 / 3, atol=0.02)
    arr = lambda name, k=None: np.array([getattr(o, name) for o in objs if k is None or o.class_id == k])  # noqa: E731
    for lo_hi, name in [((0.1, 0.7), "scale"), ((-1.5, 1.5), "x"), ((-1.5, 1.5), "y"),
                        ((0.25, 0.75), "kd"), ((0.0, 0.5), "ks"), ((10, 100), "shininess")]:
        v = arr(name)
        assert lo_hi[0] <= v.min() and v.max() <= lo_hi[1], name
        assert abs(v.mean() - sum(lo_hi) / 2) < 0.03 * (lo_hi[1] - lo_hi[0]), name
    assert np.all(arr("z") == 0.0)
    for k, prior in enumerate(c.classes, start=1):
        rho = arr("elongation", k)
        assert abs(rho.mean() - prior.elongation) < 0.005 and abs(rho.std() - 0.05) < 0.005
        r = arr("noise_scale", k)
        assert r.min() >= 1.0
        hue = arr("hue", k)
        assert 0.0 <= hue.min() and hue.max() < 360.0
        # circular mean of the hue is the class mean
        mean = np.degrees(np.angle(np.exp(1j * np.radians(hue)).mean())) % 360
        assert abs((mean - prior.hue + 180) % 360 - 180) < 3
    # class 1 (r_k = 5, sd 5) is often clamped at 1; class 3 (r_k = 30) is not
    assert np.mean(arr("noise_scale", 1) == 1.0) > 0.1
    assert abs(arr("noise_scale", 3).mean() - 30) < 0.5


def test_hue_wraps_as_a_true_modulo():
    c = SceneConfig(classes=(ClassPrior("red", 2.0, 0.5, 5.0, hue_std=20.0),))
    hues = np.array([o.hue for i in range(200) for o in sample_scene(c, 1, i).objects])
    assert 0.0 <= hues.min() and hues.max() < 360.0
    assert np.mean(hues > 300) > 0.3  # negative draws land near 360, not below 0


def test_class_weights_and_custom_ranges():
    c = SceneConfig(classes=(ClassPrior("a", 0, 0.5, 5, weight=3.0), ClassPrior("b", 90, 0.5, 5)),
                    sampling=SamplingConfig(num_objects=(4, 4), position_z=(-0.5, 0.5)))
    objs = [o for i in range(300) for o in sample_scene(c, 2, i).objects]
    assert len(objs) == 1200
    assert abs(np.mean([o.class_id == 1 for o in objs]) - 0.75) < 0.04
    z = np.array([o.z for o in objs])
    assert -0.5 <= z.min() < -0.4 and 0.4 < z.max() <= 0.5


def test_semi_axes():
    o = single_object_scene(elongation=0.5).objects[0]
    assert o.semi_axes == pytest.approx((1.0, 1.0, 1.0))
    o = single_object_scene(elongation=0.8).objects[0]
    ax, ay, az = o.semi_axes
    assert ax / ay == pytest.approx(4.0) and ax ** 2 + ay ** 2 == pytest.approx(2.0) and az == 1.0
    assert single_object_scene(elongation=1.0).objects[0].semi_axes[1] == 0.0


def test_special_scenes():
    c = SceneConfig()
    p = prototype_scene(c)
    assert [o.x for o in p.objects] == pytest.approx([-1.2, 0.0, 1.2])
    assert [(o.class_id, o.hue, o.elongation, o.noise_scale) for o in p.objects] == [
        (1, 150, 0.55, 5), (2, 250, 0.45, 17.5), (3, 350, 0.5, 30)]
    assert {(o.scale, o.kd, o.ks, o.shininess) for o in p.objects} == {(0.5, 0.5, 0.25, 50.0)}
    r1 = prototype_scene(c, random=True, seed=1, index=0)
    assert r1 == prototype_scene(c, random=True, seed=1, index=0) != prototype_scene(c, random=True, seed=1, index=1)
    assert [o.class_id for o in r1.objects] == [1, 2, 3] and r1.objects[0].hue != 150
    s = single_object_scene(hue=400, elongation=0.3, noise_scale=12)
    assert (s.objects[0].hue, s.objects[0].x, s.objects[0].y, s.kind) == (40, 0, 0, "single")


@pytest.mark.parametrize("seed, index", [(-1, 0), (0, -3), (1.5, 0), ("a", 0)])
def test_bad_seed_or_index(seed, index):
    with pytest.raises(UserError, match="non-negative integer"):
        sample_scene(SceneConfig(), seed, index)
