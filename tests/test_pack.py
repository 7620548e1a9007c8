"""The host side of batched rendering: array sampling and packing equal the Scene-object path."""

import colorsys
import dataclasses
import math

import numpy as np
import pytest

from fakeballoons import ClassPrior, Scene, SceneConfig, sample_scene, single_object_scene
from fakeballoons.config import hsl_colour
from fakeballoons.render import fields as K
from fakeballoons.render import render_batch, render_sampled
from fakeballoons.render.pack import CPU_TILE_SIZE, TILE_SIZE, bin_tiles, hsl_colours, pack, pack_sampled
from fakeballoons.scene import OBJECT_FIELDS, sample_scene_table

WEIGHTED = SceneConfig(classes=(ClassPrior("a", 10, 0.3, 20, weight=0.2), ClassPrior("b", 100, 0.6, 5, weight=3.0),
                                ClassPrior("c", 355, 0.5, 5, hue_std=80), ClassPrior("d", 300, 0.9, 50, weight=0.01)))


def _reference_scene(config, seed, index):
    """The scene model's draws written out with Generator.choice, independently of the library."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
    s = config.sampling
    n = int(rng.integers(s.num_objects[0], s.num_objects[1] + 1))
    background = float(rng.uniform(*s.background_noise_scale))
    weights = np.array([p.weight for p in config.classes])
    classes = rng.choice(len(weights), size=n, p=weights / weights.sum())
    prior = [config.classes[k] for k in classes]
    draws = rng.normal([[p.hue, p.elongation, p.noise_scale] for p in prior],
                       [[p.hue_std, p.elongation_std, p.noise_scale_std] for p in prior]).reshape(n, 3)
    hue = [h % 360.0 if h % 360.0 < 360.0 else 0.0 for h in draws[:, 0].tolist()]
    rho = np.clip(draws[:, 1], 0.0, 1.0)
    r = np.maximum(draws[:, 2], s.min_noise_scale)
    rest = [rng.uniform(*b, size=n) for b in (s.object_scale, s.position_x, s.position_y, s.position_z,
                                               s.diffuse, s.specular, s.shininess)]
    rows = [[classes[i] + 1, hue[i], rho[i], r[i]] + [c[i] for c in rest] for i in range(n)]
    return background, np.array(rows, dtype=np.float64).reshape(n, 11)


@pytest.mark.parametrize("config", [SceneConfig(), WEIGHTED], ids=["report", "weighted"])
def test_sampling_equals_the_reference_draws(config):
    for index in range(300):
        background, table = _reference_scene(config, 11, index)
        got_background, got_table = sample_scene_table(config, 11, index)
        scene = sample_scene(config, 11, index)
        assert got_background == background == scene.background_noise_scale
        np.testing.assert_array_equal(got_table[:, :11], table)  # the report's columns
        np.testing.assert_array_equal(scene.object_table(), got_table)
        # the extension columns hold their defaults: ellipsoid, no rotation, the scene's noise and texture
        defaults = [0, 1, 0, 0, 0, 0, -1, -1, 1.0, 0.5]
        np.testing.assert_array_equal(got_table[:, 11:], np.tile(defaults, (len(table), 1)))
        assert all(type(o.class_id) is int and type(o.hue) is float for o in scene.objects)
    assert OBJECT_FIELDS[:4] == ("class_id", "hue", "elongation", "noise_scale")


def test_vectorised_colours_equal_colorsys_bit_for_bit():
    edges = [0.0, 60.0, 120.0, 180.0, 240.0, 300.0, 360.0, 720.0, -1e-17, 1e-300, 359.99999999999994,
             math.nextafter(60.0, 0.0), math.nextafter(240.0, 360.0), -360.0, -0.0]
    hues = np.concatenate([np.random.default_rng(0).uniform(-1000, 1000, 20_000), np.arange(0, 360, 1 / 64), edges])
    expected = np.array([colorsys.hls_to_rgb((h % 360.0) / 360.0, 0.5, 1.0) for h in hues.tolist()])
    np.testing.assert_array_equal(hsl_colours(hues), expected)
    assert tuple(hsl_colours(np.array([350.0]))[0]) == hsl_colour(350.0)


def _numpy_bin_tiles(objs, owner, batch, height, width):
    """A sort-based binning (the earlier implementation): the reference for the counting sort."""
    tiles_x, tiles_y = -(-width // TILE_SIZE), -(-height // TILE_SIZE)
    per_scene = tiles_x * tiles_y
    bb = objs[:, K.BBX0:K.BBY1 + 1]
    visible = (bb[:, 2] >= 0) & (bb[:, 0] <= width) & (bb[:, 3] >= 0) & (bb[:, 1] <= height) \
        & (bb[:, 0] <= bb[:, 2]) & (bb[:, 1] <= bb[:, 3])
    pairs = []
    for o in np.flatnonzero(visible):
        tx0, tx1 = (int(np.clip(np.floor(v / TILE_SIZE), 0, tiles_x - 1)) for v in (bb[o, 0], bb[o, 2]))
        ty0, ty1 = (int(np.clip(np.floor(v / TILE_SIZE), 0, tiles_y - 1)) for v in (bb[o, 1], bb[o, 3]))
        pairs += [(owner[o] * per_scene + ty * tiles_x + tx, o) for ty in range(ty0, ty1 + 1)
                  for tx in range(tx0, tx1 + 1)]
    pairs.sort()  # by tile, then object: object order within a tile
    start = np.zeros(batch * per_scene + 1, dtype=np.int64)
    np.cumsum(np.bincount([t for t, _ in pairs], minlength=batch * per_scene), out=start[1:])
    return start, np.array([o for _, o in pairs], dtype=np.int64)


@pytest.mark.parametrize("size", [(48, 64), (17, 5), (200, 333)])
def test_tile_lists_equal_a_sort_based_binning(size):
    config = SceneConfig(height=size[0], width=size[1])
    scenes = [sample_scene(config, 2, i) for i in range(40)] + [Scene(1.0, ()), single_object_scene()]
    packed = pack(scenes, config)
    owner = np.repeat(np.arange(len(scenes)), [len(s.objects) for s in scenes])
    start, objs = _numpy_bin_tiles(packed.objs, owner, len(scenes), *size)
    tiles_x, per_scene, got_start, got_objs = bin_tiles(packed.objs, owner, len(scenes), *size)
    assert (tiles_x, per_scene) == (-(-size[1] // TILE_SIZE), tiles_x * -(-size[0] // TILE_SIZE))
    np.testing.assert_array_equal(got_start, start)
    np.testing.assert_array_equal(got_objs, objs)
    assert got_start.dtype == got_objs.dtype == np.int64


@pytest.mark.parametrize("config", [SceneConfig(height=48, width=64), WEIGHTED], ids=["small", "weighted"])
def test_pack_sampled_equals_packing_scene_objects(config):
    indices = [5, 0, 77, 3, 3]
    a = pack_sampled(config, 4, indices)
    b = pack([sample_scene(config, 4, i) for i in indices], config)
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y, err_msg=field.name)
        else:
            assert x == y, field.name
    assert pack_sampled(config, 4, []).batch == 0


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_render_sampled_equals_render_batch(device):
    config = SceneConfig(height=24, width=32)
    expected = render_batch([sample_scene(config, 6, i) for i in (4, 1)], config)
    got = render_sampled(config, 6, [4, 1], device)
    for i in range(2):
        image = got[i].image.astype(int)
        assert np.abs(image - expected.image[i]).max() <= (0 if device == "cpu" else 1)
        np.testing.assert_array_equal(got[i].label, expected.label[i])
        np.testing.assert_array_equal(got[i].instance, expected.instance[i])


def test_cuda_launch_refuses_more_scenes_than_grid_z_allows():
    from fakeballoons import UserError
    from fakeballoons.render import render_packed

    config = SceneConfig(height=16, width=16)
    too_many = dataclasses.replace(pack([], config), bg_scales=np.zeros(65536))
    with pytest.raises(UserError, match="at most 65535 scenes"):
        render_packed(too_many, "cuda")


@pytest.mark.parametrize("preset", ["shapes", "ground", "many-classes"])
def test_general_tiles_list_objects_by_depth_and_the_early_exit_changes_no_pixel(preset):
    from fakeballoons.config import load_scene
    from fakeballoons.render import render_packed

    config = load_scene(preset).replace(height=96, width=128)
    packed = pack_sampled(config, 3, range(12))
    assert packed.general
    near = packed.objs[:, K.NEAR]
    for t in range(len(packed.tile_start) - 1):  # each tile's list: NEAR ascending, ties in object order
        rows = packed.tile_objs[packed.tile_start[t]:packed.tile_start[t + 1]]
        assert all((near[a], a) < (near[b], b) for a, b in zip(rows[:-1], rows[1:]))
    # NEAR is a true lower bound: no object point nearer the eye than it.
    eye = np.asarray(config.camera.eye)
    gap = np.linalg.norm(packed.objs[:, K.CX:K.CZ + 1] - eye, axis=1) - packed.objs[:, K.RADIUS]
    np.testing.assert_allclose(near, gap, rtol=0, atol=1e-12)
    fast = render_packed(packed)
    no_exit = dataclasses.replace(packed, objs=packed.objs.copy())
    no_exit.objs[:, K.NEAR] = -np.inf  # every ray then tests every object of its tile
    slow = render_packed(no_exit)
    for a, b in ((fast.image, slow.image), (fast.label, slow.label), (fast.instance, slow.instance)):
        np.testing.assert_array_equal(a, b)


def test_clamped_elongation_discs_pack_without_warnings_and_render_invisible():
    import warnings

    # elongations at the ends of their range: every object a flat disc (a spread beyond the range
    # is refused now; the draws the clamp used to make are these)
    config = SceneConfig(height=32, width=32, classes=(ClassPrior("a", 10, 0.0, 5, elongation_std=0.0),
                                                       ClassPrior("b", 200, 1.0, 5, elongation_std=0.0)))
    scenes = [sample_scene(config, 0, i) for i in range(6)]
    assert {o.elongation for s in scenes for o in s.objects} <= {0.0, 1.0}  # every object a disc
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batch = render_batch(scenes, config)
    assert batch.label.max() == 0  # the report's camera sees every such disc edge-on


def test_batches_sampled_in_worker_processes_are_the_same_batches_in_order(small_config):
    """render_sampled_batches with sampling processes gives render_sampled's batches, in order, on
    the CPU and in the CUDA simulator; the processes end when the stream is closed early."""
    import multiprocessing

    from fakeballoons.render import render_sampled_batches

    batches = [range(0, 3), [7, 1], range(9, 12), [20], range(3, 5)]
    tiny = dataclasses.replace(small_config, height=12, width=16)  # the simulator runs each pixel in Python
    for device, config, todo in (("cpu", small_config, batches), ("cuda", tiny, batches[:2])):
        for workers in (0, 2):
            got = list(render_sampled_batches(config, 3, iter(todo), device, workers=workers))
            assert len(got) == len(todo)
            for indices, batch in zip(todo, got):
                want = render_sampled(config, 3, indices, device)
                for name in ("image", "label", "instance"):
                    np.testing.assert_array_equal(getattr(batch, name), getattr(want, name),
                                                  err_msg=f"{device} {workers} {list(indices)} {name}")
    stream = render_sampled_batches(small_config, 3, (range(i, i + 2) for i in range(0, 10**6, 2)), workers=2)
    first = next(stream)
    stream.close()
    np.testing.assert_array_equal(first.image, render_sampled(small_config, 3, range(2)).image)
    for _ in range(10):  # a process the pool started as the stream closed may appear after a listing
        for child in multiprocessing.active_children():
            child.join(timeout=60)
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("workers, ahead", [(-1, 2), (1.5, 2), (True, 2), (1, 0)])
def test_bad_sampling_processes_are_refused(small_config, workers, ahead):
    from fakeballoons.errors import UserError
    from fakeballoons.render import render_sampled_batches

    with pytest.raises(UserError, match="workers|ahead"):
        next(render_sampled_batches(small_config, 0, [range(2)], workers=workers, ahead=ahead))


def _render_lists(packed):
    """The pictures from ``packed``'s tile lists as they are (render_packed refines them)."""
    from fakeballoons.render import render_tile_lists

    batch = render_tile_lists(packed)
    return batch.image, batch.label, batch.instance


def _odd_scenes():
    """Objects that cover the whole view, hold the eye, sit behind it, cross its plane, are discs
    (a zero semi-axis), are tiny, or overlap exactly."""
    from fakeballoons.scene import SceneObject

    def obj(scale, x, y, z, elongation=0.5, class_id=1):
        return SceneObject(class_id, 40.0 * class_id, elongation, 10.0, scale, x, y, z, 0.5, 0.25, 20.0)

    return [Scene(3.0, (obj(5.0, 0, 0, 0),)),  # the eye (0, 0, 2) inside
            Scene(3.0, (obj(1.9, 0, 0, 0), obj(0.3, 0.2, 0.1, 1.2, class_id=2))),  # fills the view, one in front
            Scene(3.0, (obj(0.5, 0, 0, 3.0), obj(1.0, 0.5, 0, 2.0, class_id=2))),  # behind the eye, through its plane
            Scene(3.0, (obj(0.8, 0, 0, 0, elongation=0.0), obj(0.8, 0.3, 0, 0, elongation=1.0, class_id=2))),
            Scene(3.0, (obj(0.004, 0.1, 0.1, 0), obj(0.6, -0.5, 0.4, -1.0, class_id=2),
                        obj(0.6, -0.5, 0.4, -1.0, class_id=3)))]


@pytest.mark.parametrize("size, samples, ignore", [((64, 96), 4, True), ((17, 5), 8, False), ((80, 48), 16, True)])
def test_refined_tile_lists_render_the_pixels_of_the_full_lists(size, samples, ignore):
    from fakeballoons.config import AntialiasConfig
    from fakeballoons.render.pack import refine_tiles

    config = SceneConfig(height=size[0], width=size[1], antialias=AntialiasConfig(samples=samples, ignore_edges=ignore))
    scenes = [sample_scene(config, 8, i) for i in range(30)] + _odd_scenes() + [Scene(1.0, ()), single_object_scene()]
    packed = pack(scenes, config)
    want = _render_lists(packed)
    for tile in (TILE_SIZE, CPU_TILE_SIZE, 4):  # as binned, and binned again (what render_packed does)
        refined = refine_tiles(packed, tile)
        assert refined.tile_size == tile and (refined.tiles_x, refined.tiles_per_scene) != (0, 0)
        for got, expected in zip(_render_lists(refined), want):
            np.testing.assert_array_equal(got, expected)
        assert (refined.tile_objs < 0).sum() > 0  # tiles settled to one object
    # At the same tile size: objects left out of tiles, and a settled object is one of the tile's own.
    refined = refine_tiles(packed, TILE_SIZE)
    assert len(refined.tile_objs) < len(packed.tile_objs)
    for t in np.flatnonzero(np.diff(refined.tile_start) == 1):
        o = refined.tile_objs[refined.tile_start[t]]
        if o < 0:
            assert -o - 1 in packed.tile_objs[packed.tile_start[t]:packed.tile_start[t + 1]]


@pytest.mark.parametrize("noise", ["perlin", "sc"])
def test_tiles_without_objects_show_each_pixels_background(noise):
    """The report CPU kernel draws a tile with no object from the Perlin noise's row and column parts
    (sparse convolution: pixel by pixel): every pixel is background() at its centre, label and
    instance 0; odd sizes leave partial tiles at the right and bottom."""
    from fakeballoons.render import cpu, render_tile_lists

    config = SceneConfig(height=21, width=37, noise=noise)
    scenes = [Scene(scale, ()) for scale in (1.0, 7.3, 19.9)] + [sample_scene(config, 3, 0)]
    packed = pack(scenes, config)
    sky = dataclasses.replace(packed, tile_start=np.zeros_like(packed.tile_start), tile_objs=packed.tile_objs[:0])
    out = render_tile_lists(sky)
    k = cpu.report
    for b, scene in enumerate(scenes):
        want = np.array([[k.to_byte(k.background(px + 0.5, py + 0.5, config.width, config.height,
                                                 scene.background_noise_scale, packed.kind))
                          for px in range(config.width)] for py in range(config.height)], dtype=np.uint8)
        assert np.ptp(want) > 0
        for c in range(3):
            np.testing.assert_array_equal(out.image[b, :, :, c], want)
    assert not out.label.any() and not out.instance.any()


def test_refining_leaves_the_general_kernels_lists_and_empty_batches_alone():
    from fakeballoons.config import load_scene
    from fakeballoons.render.pack import refine_tiles

    config = load_scene("shapes").replace(height=32, width=48)
    packed = pack_sampled(config, 1, range(3))
    assert packed.general and refine_tiles(packed) is packed
    empty = pack([Scene(1.0, ())], SceneConfig(height=16, width=16))
    assert refine_tiles(empty) is empty


def test_pixel_test_settles_what_casting_finds_and_leaves_edges_to_it():
    """settle_pixel (the report CPU kernel's pixel test, fields from refine_tiles) on every pixel of a
    scene with an object partly in front of another: a verdict is what the renderer shows there;
    silhouettes stay unsettled; without refine_tiles' fields nothing is settled."""
    from fakeballoons.render import cpu, kernels, render_tile_lists
    from fakeballoons.render.pack import refine_tiles
    from fakeballoons.scene import SceneObject

    def obj(scale, x, y, z, class_id):
        return SceneObject(class_id, 60.0 * class_id, 0.5, 10.0, scale, x, y, z, 0.5, 0.25, 20.0)

    config = SceneConfig(height=48, width=64)
    packed_objects = (obj(1.0, 0.0, 0.0, 0.0, 1), obj(0.3, 0.45, 0.1, 0.8, 2))
    packed = pack([Scene(3.0, packed_objects)], config)
    refined = refine_tiles(packed)
    instance = render_tile_lists(refined).instance[0]
    everything = np.arange(len(packed.objs), dtype=np.int64)
    settle = cpu.report.settle_pixel
    verdicts = {}
    front = []
    for py in range(config.height):
        for px in range(config.width):
            v = settle(px + 0.5, py + 0.5, config.width, config.height, refined.cam, refined.objs, everything, 0, 2)
            verdicts[v] = verdicts.get(v, 0) + 1
            if v == 1:
                front.append((py, px))
            if v != kernels._UNSETTLED:
                assert instance[py, px] == (0 if v == K.SKY else refined.objs[v, K.INSTANCE]), (py, px, v)
            assert settle(px + 0.5, py + 0.5, config.width, config.height, packed.cam, packed.objs, everything,
                          0, 2) == kernels._UNSETTLED  # no footprint: no verdict
    assert set(verdicts) == {K.SKY, 0, 1, kernels._UNSETTLED}, verdicts
    behind = render_tile_lists(refine_tiles(pack([Scene(3.0, packed_objects[:1])], config))).instance[0]
    assert sum(behind[p] == 1 for p in front) > 20  # the front object was settled where it hides the other
    assert verdicts[kernels._UNSETTLED] < 0.1 * config.height * config.width
