"""Datasets: on the fly equals on disk, real clients (torchvision VOC, pycocotools), original format."""

import numpy as np
import pytest
import torch
from PIL import Image

from fakeballoons import FakeBalloons, FakeBalloonsFolder, SceneConfig, UserError, render, sample_scene
from fakeballoons.data.generate import generate
from fakeballoons.data.recipe import Recipe

CONFIG = SceneConfig(height=40, width=56, noise="sc")


@pytest.fixture(scope="module")
def png_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("png") / "ds"
    generate(out, Recipe(CONFIG, num=20, seed=2), progress=False)
    return out


@pytest.fixture(scope="module")
def voc_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("voc") / "ds"
    generate(out, Recipe(CONFIG, num=20, seed=2, format="voc"), progress=False)
    return out


@pytest.mark.parametrize("split", ["train", "val"])
def test_on_the_fly_equals_on_disk(png_dir, split):
    folder = FakeBalloonsFolder(png_dir, split)
    live = FakeBalloons.like(png_dir, split)
    explicit = FakeBalloons(CONFIG, num=20, seed=2, split=split)
    assert len(folder) == len(live) == len(explicit) == (18 if split == "train" else 2)
    for i in range(len(folder)):
        (a, la), (b, lb), (c, lc) = folder[i], live[i], explicit[i]
        assert a.dtype == torch.uint8 and a.shape == (3, 40, 56)
        assert la.dtype == torch.int64 and la.shape == (40, 56)
        assert torch.equal(a, b) and torch.equal(la, lb) and torch.equal(b, c) and torch.equal(lb, lc)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.slow)])
def test_batches_equal_items(device):
    ds = FakeBalloons(SceneConfig(height=16, width=24), num=7, split="all", val_fraction=0.0)
    seen = []
    for images, labels in ds.batches(3, device=device):
        assert images.shape[1:] == (3, 16, 24) and images.dtype == torch.uint8
        assert labels.dtype == torch.int64
        seen += list(zip(images.cpu(), labels.cpu()))
    assert len(seen) == 7
    for i, (image, label) in enumerate(seen):
        ref_image, ref_label = ds[i]
        assert torch.equal(label, ref_label)
        assert (image.int() - ref_image.int()).abs().max() <= 1
    shuffled = [lab for _, lab in ds.batches(7, device="cpu", shuffle=True, seed=1)][0]
    again = [lab for _, lab in ds.batches(7, device="cpu", shuffle=True, seed=1)][0]
    assert torch.equal(shuffled, again) and not torch.equal(shuffled, torch.stack([ds[i][1] for i in range(7)]))
    assert len(list(ds.batches(3, device="cpu", drop_last=True))) == 2


def test_torchvision_voc_segmentation_loads_it(voc_dir):
    from torchvision.datasets import VOCSegmentation

    voc = VOCSegmentation(str(voc_dir), year="2012", image_set="train")
    ours = FakeBalloonsFolder(voc_dir, "train")
    assert len(voc) == len(ours) == 18
    for i in range(len(voc)):
        image, target = voc[i]
        assert image.size == (56, 40)
        expected = render(sample_scene(CONFIG, 2, i), CONFIG).label
        np.testing.assert_array_equal(np.array(target), expected)
        np.testing.assert_array_equal(ours[i][1].numpy(), expected)
    assert len(VOCSegmentation(str(voc_dir), year="2012", image_set="val")) == 2


def test_pycocotools_ann_to_mask_gives_each_instance(png_dir):
    from pycocotools.coco import COCO

    for split, indices in (("train", range(18)), ("val", range(18, 20))):
        coco = COCO(str(png_dir / "annotations" / f"instances_{split}.json"))
        assert sorted(coco.getImgIds()) == list(indices)
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["class1", "class2", "class3"]
        for image_id in indices:
            scene = sample_scene(CONFIG, 2, image_id)
            instance = render(scene, CONFIG).instance
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
            visible = sorted(set(np.unique(instance)) - {0})
            assert [a["instance"] for a in anns] == visible
            for ann in anns:
                np.testing.assert_array_equal(coco.annToMask(ann), instance == ann["instance"])
                assert ann["category_id"] == scene.objects[ann["instance"] - 1].class_id
                assert ann["area"] == (instance == ann["instance"]).sum()


def _coco_by_masks(instance, classes):
    """The annotations pycocotools writes when given one binary mask per instance (the reference)."""
    from pycocotools import mask as mask_utils

    out = []
    for inst in [int(v) for v in np.unique(instance) if v > 0]:
        rle = mask_utils.encode(np.asfortranarray((instance == inst).astype(np.uint8)))
        out.append({"instance": inst, "category_id": int(classes[inst - 1]),
                    "segmentation": {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")},
                    "area": int(mask_utils.area(rle)), "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                    "iscrowd": 0})
    return out


def test_coco_annotations_equal_pycocotools_encoding_each_mask():
    from fakeballoons.data.formats import coco_annotations

    rng = np.random.default_rng(5)
    maps = [rng.integers(0, 4, (7, 9)).astype(np.uint16),  # runs of one pixel everywhere
            np.ones((5, 6), np.uint16),  # one instance covering the picture, first to last pixel
            np.zeros((4, 4), np.uint16), np.zeros((0, 5), np.uint16), np.full((1, 7), 3, np.uint16)]
    corner = np.zeros((6, 5), np.uint16)
    corner[0, 0] = 2
    corner[-1, -1] = 1  # an instance on the first pixel, another on the last
    maps.append(corner)
    maps += [render(sample_scene(CONFIG, 2, i), CONFIG).instance for i in range(4)]
    for instance in maps:
        classes = list(range(1, 20))
        assert coco_annotations(instance, classes) == _coco_by_masks(instance, classes)


def test_original_published_format(tmp_path):
    colours = {0: (0, 0, 0), 1: (0, 255, 128), 2: (42, 0, 255), 3: (255, 0, 42)}
    rng = np.random.default_rng(0)
    expected = {}
    for n in range(10):
        label = rng.integers(0, 4, (12, 16)).astype(np.uint8)
        rgb = np.array([colours[v] for v in label.ravel()], dtype=np.uint8).reshape(12, 16, 3)
        rgb[0, 0] = (120, 100, 130)  # a blended edge colour
        label[0, 0] = 255
        alpha = np.full((12, 16, 1), 255, np.uint8)  # canvas downloads are RGBA
        Image.fromarray(np.concatenate([rgb, alpha], -1)).save(tmp_path / f"id{n:02d}.label.png")
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(tmp_path / f"id{n:02d}.png")
        expected[f"id{n:02d}"] = label
    train, val = FakeBalloonsFolder(tmp_path, "train"), FakeBalloonsFolder(tmp_path, "val")
    assert len(train) == 9 and len(val) == 1
    for ds, ids in ((train, range(9)), (val, [9])):
        for i, n in enumerate(ids):
            image, label = ds[i]
            assert image.shape == (3, 12, 16)
            np.testing.assert_array_equal(label.numpy(), expected[f"id{n:02d}"])
    assert len(FakeBalloonsFolder(tmp_path, "all")) == 10


def test_transforms_take_and_return_the_pair(png_dir):
    from torchvision.transforms import v2

    t = v2.Compose([v2.Resize((20, 28), interpolation=v2.InterpolationMode.NEAREST), v2.RandomHorizontalFlip(1.0)])
    image, label = FakeBalloonsFolder(png_dir, "train", transforms=t)[0]
    raw_image, raw_label = FakeBalloonsFolder(png_dir, "train")[0]
    assert image.shape == (3, 20, 28) and label.shape == (20, 28)
    assert set(label.unique().tolist()) <= set(raw_label.unique().tolist())
    assert torch.equal(label, raw_label[::2, ::2].flip(-1))


def test_errors(tmp_path, png_dir):
    with pytest.raises(UserError, match="not found"):
        FakeBalloonsFolder(tmp_path / "missing")
    with pytest.raises(UserError, match="neither a dataset.json"):
        FakeBalloonsFolder(tmp_path)
    with pytest.raises(UserError, match="split must be"):
        FakeBalloonsFolder(png_dir, "test")
    with pytest.raises(IndexError):
        FakeBalloons(CONFIG, num=5, split="all")[5]
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "x.png")
    (tmp_path / "x.label.png").write_bytes(b"junk")
    with pytest.raises(UserError, match="cannot read image .*x.label.png"):
        FakeBalloonsFolder(tmp_path, "all")[0]


# --- bad training data is one line before the first step -------------------------------


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    from fakeballoons.data.generate import generate
    from fakeballoons.data.recipe import Recipe

    out = tmp_path_factory.mktemp("data") / "ds"
    generate(out, Recipe(SceneConfig(height=24, width=32), num=40, seed=1, val_fraction=0.25), progress=False)
    return out


def _damage_image(root):
    (root / "images" / "000003.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)


def _damage_label_size(root):
    from PIL import Image

    Image.fromarray(np.zeros((24, 31), np.uint8), mode="L").save(root / "labels" / "000005.png")


def _unfinish(root):
    (root / "parts" / "000001.jsonl").unlink()


def _giant_header(root):
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    (root / "images" / "000007.png").write_bytes(png)


@pytest.mark.parametrize("damage, message", [
    (_damage_image, "cannot read image .*images/000003.png"),
    (_damage_label_size, r"labels/000005.png: size \(24, 31\) differs from the expected \(24, 32\)"),
    (_unfinish, "is an unfinished dataset \\(1 of 2 chunks incomplete\\); rerun the generate command"),
    (_giant_header, "refused image .*images/000007.png"),
])
def test_bad_training_data_is_found_before_the_first_step(small_dataset, tmp_path, cli, damage, message):
    import re
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(small_dataset, root)
    damage(root)
    code, _, err = cli(["train", "--data", root, "--out", tmp_path / "run", "--preset", "quick", "--quiet"])
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err and re.search(message, err), err
    assert not (tmp_path / "run").exists()


def test_an_error_in_a_loader_worker_is_one_line():
    import torch

    from fakeballoons.data.loader import batches
    from fakeballoons.errors import UserError

    class Broken(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            raise UserError(f"cannot read image /data/{i}.png: broken data stream")

    with pytest.raises(UserError) as err:
        next(batches(Broken(), 2, train=False, seed=0, epoch=0, device=torch.device("cpu"), workers=1))
    assert str(err.value) == "cannot read image /data/0.png: broken data stream"
