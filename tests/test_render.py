"""Rendering: shading formula, labels and instances, determinism, special scenes, CPU vs CUDA."""

import colorsys
import math

import numpy as np
import pytest

from cuda_ptx import run_without_simulator
from fakeballoons import (
    AntialiasConfig,
    Scene,
    SceneConfig,
    SceneObject,
    prototype_scene,
    render,
    render_batch,
    sample_scene,
    single_object_scene,
)
from fakeballoons.data.formats import encode_image, encode_instance
from fakeballoons.noise import perlin, sparse_convolution
from fakeballoons.render import set_threads

REF = {"perlin": perlin, "sc": sparse_convolution}


def _normalize(v):
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("noise", ["perlin", "sc"])
def test_one_pixel_against_the_shading_formula(noise):
    """colour = ka Le + kd Le max(n.wi, 0) t + ks Le max(n.wh, 0)^ns, t = 0.5 noise(r n) + 0.5."""
    size = 128
    config = SceneConfig(height=size, width=size, noise=noise)
    obj = SceneObject(2, 200.0, 0.7, 13.0, 0.9, 0.1, -0.05, 0.2, 0.6, 0.4, 12.0)
    sample = render(Scene(4.0, (obj,)), config)
    py, px = 50, 70  # inside the object, away from its edge
    assert sample.label[py, px] == 2 and sample.instance[py, px] == 1
    eye = np.array([0.0, 0.0, 2.0])
    d = np.array([2 * (px + 0.5) / size - 1, 1 - 2 * (py + 0.5) / size, -1.0])
    c, axes = np.array([obj.x, obj.y, obj.z]), np.array(obj.semi_axes)
    o, e = (eye - c) / axes, d / axes
    a, b, cc = e @ e, 2 * o @ e, o @ o - 1
    t = (-b - math.sqrt(b * b - 4 * a * cc)) / (2 * a)
    p = eye + t * d
    n = _normalize((p - c) / axes ** 2)
    wi = _normalize(np.array([0.0, 0.0, 2.0]) - p)
    wo = _normalize(eye - p)
    wh = _normalize(wi + wo)
    le = np.array(colorsys.hls_to_rgb(200 / 360, 0.5, 1.0))
    tex = 0.5 * REF[noise](13.0 * n) + 0.5
    colour = 0.1 * le + 0.6 * le * max(n @ wi, 0) * tex + 0.4 * le * max(n @ wh, 0) ** 12.0
    expected = np.round(np.clip(colour, 0, 1) * 255)
    assert np.abs(sample.image[py, px].astype(int) - expected).max() <= 1


@pytest.mark.parametrize("noise", ["perlin", "sc"])
def test_background_pixels(noise):
    config = SceneConfig(height=40, width=60, noise=noise)
    sample = render(Scene(7.5, ()), config)
    py, px = np.mgrid[0:40, 0:60]
    xn, yn = 2 * (px + 0.5) / 60 - 1, 1 - 2 * (py + 0.5) / 40
    g = 0.5 * REF[noise](np.stack([7.5 * xn, 7.5 * yn, np.zeros_like(xn)], -1)) + 0.5
    expected = np.round(np.clip(g, 0, 1) * 255)
    assert np.abs(sample.image[..., 0].astype(int) - expected).max() <= 1
    assert (sample.image[..., 0] == sample.image[..., 1]).all() and (sample.image[..., 1] == sample.image[..., 2]).all()
    assert not sample.label.any() and not sample.instance.any()


def test_output_types_and_shapes(small_config):
    s = render(sample_scene(small_config, 0, 0), small_config)
    assert s.image.shape == (48, 64, 3) and s.image.dtype == np.uint8
    assert s.label.shape == (48, 64) and s.label.dtype == np.uint8
    assert s.instance.shape == (48, 64) and s.instance.dtype == np.uint16


def test_label_and_instance_values():
    config = SceneConfig(height=160, width=160)
    for index in range(4):
        scene = sample_scene(config, 3, index)
        s = render(scene, config)
        classes = np.array([0] + [o.class_id for o in scene.objects])
        assert set(np.unique(s.label)) <= {0, 1, 2, 3, 255}
        assert s.instance.max() <= len(scene.objects)
        known = s.label != 255
        # every labelled pixel carries the class of the object seen through its centre
        np.testing.assert_array_equal(s.label[known], classes[s.instance[known]])
        assert 0 < (s.label == 255).mean() < 0.1
        # ignore pixels are borders: each touches (8-neighbourhood) a pixel of another instance
        pad = np.pad(s.instance.astype(int), 1, constant_values=-1)
        h, w = s.instance.shape
        neighbours = np.stack([pad[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
                               for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
        differs = ((neighbours != s.instance) & (neighbours >= 0)).any(0)
        assert differs[s.label == 255].all()


def test_edges_unlabelled_when_configured():
    config = SceneConfig(height=128, width=128, antialias=AntialiasConfig(ignore_edges=False))
    scene = sample_scene(config, 3, 0)
    s = render(scene, config)
    classes = np.array([0] + [o.class_id for o in scene.objects])
    assert 255 not in s.label
    np.testing.assert_array_equal(s.label, classes[s.instance])


def test_more_samples_blend_edges_more_finely():
    scene = single_object_scene(noise_scale=5.0, scale=0.8)
    edges = {}
    for n in (4, 8, 16):
        config = SceneConfig(height=96, width=96, antialias=AntialiasConfig(samples=n))
        s = render(scene, config)
        edges[n] = s.label == 255
        grey = np.unique(s.image[edges[n]].reshape(-1, 3), axis=0)
        assert len(grey) > 10
    assert edges[4].sum() <= edges[8].sum() <= edges[16].sum()


def test_interior_pixels_are_shaded_once_at_the_centre():
    """An interior pixel's colour does not depend on the sample pattern."""
    scene = single_object_scene(noise_scale=20.0, scale=0.8)
    a = render(scene, SceneConfig(height=64, width=64, antialias=AntialiasConfig(samples=4)))
    b = render(scene, SceneConfig(height=64, width=64, antialias=AntialiasConfig(samples=16)))
    both = (a.label == 1) & (b.label == 1)
    np.testing.assert_array_equal(a.image[both], b.image[both])


def test_determinism_bytes(small_config):
    one = render(sample_scene(small_config, 11, 5), small_config)
    two = render(sample_scene(small_config, 11, 5), small_config)
    assert encode_image(one.image) == encode_image(two.image)
    assert encode_instance(one.instance) == encode_instance(two.instance)
    np.testing.assert_array_equal(one.label, two.label)
    other = render(sample_scene(small_config, 11, 6), small_config)
    assert encode_image(one.image) != encode_image(other.image)


def test_thread_count_does_not_change_pixels():
    config = SceneConfig(height=96, width=96, noise="sc")
    scene = sample_scene(config, 1, 2)
    try:
        set_threads(1)
        one = render(scene, config)
        set_threads(2)
        two = render(scene, config)
    finally:
        set_threads(2)
    np.testing.assert_array_equal(one.image, two.image)
    np.testing.assert_array_equal(one.label, two.label)


def test_batch_equals_single_renders(small_config):
    scenes = [sample_scene(small_config, 4, i) for i in range(5)] + [Scene(3.0, ())]
    batch = render_batch(scenes, small_config)
    assert batch.image.shape == (6, 48, 64, 3) and len(batch) == 6
    for i, scene in enumerate(scenes):
        single = render(scene, small_config)
        np.testing.assert_array_equal(batch.image[i], single.image)
        np.testing.assert_array_equal(batch.label[i], single.label)
        np.testing.assert_array_equal(batch.instance[i], single.instance)
    assert render_batch([], small_config).image.shape == (0, 48, 64, 3)


@pytest.mark.slow  # numba's CUDA simulator: seconds per kernel
@pytest.mark.parametrize("noise", ["perlin", "sc"])
def test_cuda_kernel_equals_cpu(noise):
    from fakeballoons.render.cuda import to_host

    """The CUDA build of the same kernel source (simulated without a GPU) gives the same pixels."""
    config = SceneConfig(height=24, width=32, noise=noise)
    scenes = [sample_scene(config, 9, i) for i in range(2)] + [Scene(2.0, ())]
    gpu = render_batch(scenes, config, device="cuda")
    cpu = render_batch(scenes, config, device="cpu")
    image = to_host(gpu.image)  # torch CUDA tensors on a GPU, NumPy arrays in the simulator
    assert np.abs(image.astype(int) - cpu.image).max() <= 1
    np.testing.assert_array_equal(to_host(gpu.label), cpu.label)
    np.testing.assert_array_equal(to_host(gpu.instance), cpu.instance)
    assert to_host(gpu.instance).dtype == np.uint16
    one = render(scenes[0], config, device="cuda")
    np.testing.assert_array_equal(one.label, cpu.label[0])


def test_unknown_device(small_config):
    from fakeballoons import UserError

    with pytest.raises(UserError, match="device must be one of"):
        render(Scene(1.0, ()), small_config, device="tpu")


def test_prototype_scene():
    size = 256
    config = SceneConfig(height=size, width=size)
    s = render(prototype_scene(config), config)
    for k, (x, prior) in enumerate(zip((-1.2, 0.0, 1.2), config.classes), start=1):
        ys, xs = np.nonzero(s.label == k)
        # object at (x, 0, 0), 2 units from the eye: its centre projects to x_ndc = x / 2; off
        # axis, perspective moves the silhouette's centroid a few pixels outwards from there.
        centre = (x / 2 + 1) / 2 * size
        assert xs.mean() + 0.5 == pytest.approx(centre, abs=0.5 if x == 0 else 8)
        assert xs.min() < centre < xs.max()
        assert ys.mean() + 0.5 == pytest.approx(size / 2, abs=1.0)
        rgb = s.image[s.instance == k].astype(float).mean(0) / 255
        hue = colorsys.rgb_to_hls(*rgb)[0] * 360
        assert abs((hue - prior.hue + 180) % 360 - 180) < 4
    # the class elongations show: class 1 (0.55) wider than tall, class 2 (0.45) taller than wide
    for k, wider in ((1, True), (2, False)):
        ys, xs = np.nonzero(s.label == k)
        assert ((xs.max() - xs.min()) > (ys.max() - ys.min())) == wider


def test_single_object_scene_colour_and_texture():
    config = SceneConfig(height=128, width=128)
    smooth = render(single_object_scene(hue=60, noise_scale=1.0), config)
    rough = render(single_object_scene(hue=60, noise_scale=50.0), config)
    for s in (smooth, rough):
        assert (s.instance == 1).sum() > 0.15 * 128 * 128
        rgb = s.image[s.label == 1].astype(float).mean(0)
        assert rgb[0] == pytest.approx(rgb[1], rel=0.02) and rgb[2] < 0.05 * rgb[0]  # yellow
    # higher noise scale: more high-frequency texture between neighbouring pixels
    def roughness(s):
        inner = s.label[:, 1:] == 1
        inner &= s.label[:, :-1] == 1
        return np.abs(np.diff(s.image[..., 0].astype(float), axis=1))[inner].mean()
    assert roughness(rough) > 3 * roughness(smooth)


@pytest.mark.slow
def test_kernels_compile_for_a_real_gpu():
    """numba-cuda's real compiler (NVVM, no simulator) accepts the kernel source, both builds: PTX for
    an H100 (sm_90) and an older sm_75, for the int16 instance view a GPU launch passes and the uint16 one.
    Needs no GPU; runs in a subprocess because this process runs the simulator."""
    code = ("import json, re\n"
            "from cuda_ptx import compile_ptx\n"
            "out = {}\n"
            "for cc, inst in [((9, 0), 'int16'), ((7, 5), 'uint16')]:\n"
            "    for name, ptx in compile_ptx(cc, inst).items():\n"
            "        out[f'{cc[0]}{cc[1]}-{name}'] = [re.findall(r'^[.]target (\\w+)', ptx, re.M),\n"
            "                                       re.findall(r'^[.]visible [.]entry (\\w+)', ptx, re.M)]\n"
            "print(json.dumps(out))\n")
    import json

    found = json.loads(run_without_simulator(code))
    assert sorted(found) == ["75-noise", "75-render", "75-render_general", "90-noise", "90-render",
                             "90-render_general"]
    for key, (targets, entries) in found.items():
        assert targets == ["sm_" + key.split("-")[0]], (key, targets)
        assert len(entries) == 1 and key.split("-")[1].split("_")[0] + "_kernel" in entries[0], (key, entries)


@pytest.mark.slow
def test_kernels_compile_where_numpy_lacks_row_stack():
    """NumPy 2.5 removed ``np.row_stack``, which numba-cuda 0.30 still registers an overload of on its
    first compile: every kernel compile failed with an AttributeError on a GPU machine with numpy
    2.5.2. Removing the alias here stands in for that NumPy; the CUDA module must still compile.
    Needs no GPU; a subprocess, because this process runs the simulator."""
    code = ("import numpy as np\n"
            "if hasattr(np, 'row_stack'):\n"
            "    del np.row_stack\n"
            "from cuda_ptx import compile_ptx\n"
            "print('.target sm_90' in compile_ptx((9, 0), names=('noise',))['noise'])\n")
    assert run_without_simulator(code) == "True"

