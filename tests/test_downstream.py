"""Downstream datasets: COCO as VOC-20 (both layouts), Pascal VOC, image/mask folders."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from fakeballoons import SceneConfig, UserError
from fakeballoons.data.downstream import COCO_VOC_CATEGORIES, CocoVOC, PascalVOC, SegmentationFolder, parse_remap
from fakeballoons.data.generate import generate
from fakeballoons.data.recipe import Recipe

H, W = 50, 80
PERSON, DOG, CAR, BIRD, TOOTHBRUSH = 1, 18, 3, 16, 90  # COCO ids; toothbrush is not a VOC class
CLASS = {c: k for k, c in enumerate(COCO_VOC_CATEGORIES, start=1)}


def rect(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def poly_mask(poly):
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(poly, H, W))).astype(bool)


def disk(cy, cx, r):
    yy, xx = np.mgrid[0:H, 0:W]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def uncompressed_rle(mask):
    """COCO's crowd format: column-major run lengths starting with zeros."""
    flat = mask.T.ravel().astype(np.uint8)
    counts, current, run = [], 0, 0
    for v in flat:
        if v == current:
            run += 1
        else:
            counts.append(run)
            current, run = v, 1
    counts.append(run)
    return {"size": [H, W], "counts": counts}


def compressed_rle(mask):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def build(root, layout):
    """A tiny COCO with every case; returns the expected label maps by (split, image id)."""
    expected = {}
    anns = {"train": [], "val": []}
    images = {"train": [], "val": []}
    aid = 0

    def add(split, image_id, cat, seg, mask, crowd=0):
        nonlocal aid
        aid += 1
        anns[split].append({"id": aid, "image_id": image_id, "category_id": cat, "segmentation": seg,
                            "area": float(mask.sum()), "bbox": [0, 0, 1, 1], "iscrowd": crowd})

    # 1: polygons, overlapping person and dog, a toothbrush that is not a VOC class
    p1, p2, p3 = rect(2, 3, 40, 30), rect(30, 10, 70, 45), rect(60, 2, 78, 8)
    m1, m2 = poly_mask(p1), poly_mask(p2)
    add("train", 1, PERSON, p1, m1)
    add("train", 1, DOG, p2, m2)
    add("train", 1, TOOTHBRUSH, p3, poly_mask(p3))
    lab = np.zeros((H, W), np.uint8)
    lab[m1] = CLASS[PERSON]
    lab[m2] = CLASS[DOG]
    lab[m1 & m2] = 255
    expected[("train", 1)] = lab
    # 2: a car as compressed RLE and a crowd of persons as uncompressed RLE, not overlapping
    car, crowd = disk(25, 20, 15), disk(25, 60, 12)
    add("train", 2, CAR, compressed_rle(car), car)
    add("train", 2, PERSON, uncompressed_rle(crowd), crowd, crowd=1)
    lab = np.zeros((H, W), np.uint8)
    lab[car] = CLASS[CAR]
    lab[crowd] = CLASS[PERSON]
    expected[("train", 2)] = lab
    # 3: only a toothbrush (dropped from train); 4: a bird under 1000 px (dropped from train)
    add("train", 3, TOOTHBRUSH, rect(5, 5, 60, 40), poly_mask(rect(5, 5, 60, 40)))
    add("train", 4, BIRD, rect(5, 5, 20, 20), poly_mask(rect(5, 5, 20, 20)))
    # val: 5 with a bird, 6 with nothing (kept: the 1000 px rule is for training)
    add("val", 5, BIRD, rect(10, 10, 60, 40), poly_mask(rect(10, 10, 60, 40)))
    lab = np.zeros((H, W), np.uint8)
    lab[poly_mask(rect(10, 10, 60, 40))] = CLASS[BIRD]
    expected[("val", 5)] = lab
    expected[("val", 6)] = np.zeros((H, W), np.uint8)
    for split, ids in (("train", (1, 2, 3, 4)), ("val", (5, 6))):
        for i in ids:
            images[split].append({"id": i, "file_name": f"{i:012d}.jpg", "height": H, "width": W})
    cats = [{"id": c, "name": f"c{c}", "supercategory": "x"} for c in (*COCO_VOC_CATEGORIES, TOOTHBRUSH)]
    ann_dir = root / "annotations" if layout == "official" else root
    ann_dir.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        (ann_dir / f"instances_{split}2017.json").write_text(
            json.dumps({"images": images[split], "annotations": anns[split], "categories": cats}))
        (root / f"{split}2017").mkdir(exist_ok=True)
        for im in images[split]:
            Image.fromarray(np.full((H, W, 3), im["id"] * 20, np.uint8)).save(root / f"{split}2017" / im["file_name"])
    return expected


@pytest.mark.parametrize("layout", ["official", "report"])
def test_coco_voc_label_maps(tmp_path, layout):
    expected = build(tmp_path, layout)
    train = CocoVOC(tmp_path, "train")
    assert train.ids == [1, 2]  # 3 has none of the 20 classes, 4 has under 1000 px of them
    for i, image_id in enumerate(train.ids):
        image, label = train[i]
        assert image.shape == (3, H, W) and label.dtype.is_floating_point is False
        np.testing.assert_array_equal(label.numpy(), expected[("train", image_id)])
    val = CocoVOC(tmp_path, "val")
    assert val.ids == [5, 6]
    for i, image_id in enumerate(val.ids):
        np.testing.assert_array_equal(val[i][1].numpy(), expected[("val", image_id)])
    assert len(train.classes) == 21 and train.classes[15] == "person"


def test_coco_limit_and_seed(tmp_path):
    build(tmp_path, "official")
    a = CocoVOC(tmp_path, "val", limit=1, seed=3)
    assert len(a) == 1 and a.ids == CocoVOC(tmp_path, "val", limit=1, seed=3).ids
    assert {tuple(CocoVOC(tmp_path, "val", limit=1, seed=s).ids) for s in range(10)} == {(5,), (6,)}


def test_coco_missing_files(tmp_path):
    with pytest.raises(UserError, match="COCO root not found"):
        CocoVOC(tmp_path / "nope", "train")
    with pytest.raises(UserError, match=r"annotations not found: .*annotations/instances_train2017.json"):
        CocoVOC(tmp_path, "train")
    build(tmp_path, "official")
    (tmp_path / "train2017" / "000000000002.jpg").unlink()
    ds = CocoVOC(tmp_path, "train")
    with pytest.raises(UserError, match="000000000002.jpg"):
        ds[1]
    (tmp_path / "annotations" / "instances_val2017.json").write_text("{broken")
    with pytest.raises(UserError):
        CocoVOC(tmp_path, "val")


def test_pascal_voc(tmp_path):
    config = SceneConfig(height=24, width=32)
    generate(tmp_path / "voc", Recipe(config, num=6, format="voc"), progress=False)
    ds = PascalVOC(tmp_path / "voc", "train")
    assert len(ds) == 5
    image, label = ds[0]
    assert image.shape == (3, 24, 32) and label.shape == (24, 32)
    with pytest.raises(UserError, match="Pascal VOC 2012 not found"):
        PascalVOC(tmp_path / "nothing", "train")


def _folder(tmp_path, values):
    (tmp_path / "train").mkdir(parents=True)
    (tmp_path / "trainannot").mkdir()
    for n, v in enumerate(values):
        Image.fromarray(np.full((6, 8, 3), 10 * n, np.uint8)).save(tmp_path / "train" / f"f{n}.png")
        mask = np.zeros((6, 8), np.uint8)
        mask[1:3, 2:5] = v
        mask[5, 7] = 255
        Image.fromarray(mask, mode="L").save(tmp_path / "trainannot" / f"f{n}.png")


def test_segmentation_folder(tmp_path):
    _folder(tmp_path, [1, 2, 0])
    ds = SegmentationFolder(tmp_path / "train", tmp_path / "trainannot", num_classes=3)
    assert len(ds) == 3
    image, label = ds[1]
    assert image.shape == (3, 6, 8) and label[1, 2] == 2 and label[5, 7] == 255 and label[0, 0] == 0
    ds.check()


@pytest.mark.parametrize("stray, named", [("train/unpaired.png", "train/unpaired.png has no mask"),
                                          ("trainannot/f9.png", "trainannot/f9.png has no image")])
def test_segmentation_folder_refuses_unpaired_files(tmp_path, stray, named):
    _folder(tmp_path, [1, 2, 0])
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(tmp_path / stray)
    with pytest.raises(UserError, match=f"1 unpaired file: .*{named}"):
        SegmentationFolder(tmp_path / "train", tmp_path / "trainannot", num_classes=3)


def test_segmentation_folder_check_finds_a_mask_of_another_size(tmp_path):
    _folder(tmp_path, [1, 2, 0])
    Image.fromarray(np.zeros((5, 8), np.uint8)).save(tmp_path / "trainannot" / "f2.png")
    ds = SegmentationFolder(tmp_path / "train", tmp_path / "trainannot", num_classes=3)
    with pytest.raises(UserError, match=r"f2.png: mask size \(5, 8\) differs from its image's \(6, 8\)"):
        ds.check()


def test_segmentation_folder_bad_label_names_the_file(tmp_path):
    _folder(tmp_path, [1, 7])
    ds = SegmentationFolder(tmp_path / "train", tmp_path / "trainannot", num_classes=3)
    with pytest.raises(UserError, match=r"f1.png: label value 7 is neither a class \(0..2\) nor the ignore value 255"):
        ds.check_labels()
    with pytest.raises(UserError, match="f1.png"):
        ds[1]
    fixed = SegmentationFolder(tmp_path / "train", tmp_path / "trainannot", num_classes=3, remap=parse_remap("7:255"))
    fixed.check_labels()
    assert fixed[1][1][1, 2] == 255


def test_folder_errors(tmp_path):
    with pytest.raises(UserError, match="folder not found"):
        SegmentationFolder(tmp_path / "a", tmp_path / "b", num_classes=2)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(UserError, match="no image"):
        SegmentationFolder(tmp_path / "a", tmp_path / "b", num_classes=2)
    with pytest.raises(UserError, match="--remap must look like"):
        parse_remap("7-255")
    assert parse_remap("11:255,3:1") == {11: 255, 3: 1}
    shutil.rmtree(tmp_path / "a")


@pytest.mark.slow
def test_train_on_coco_and_folder(tmp_path, cli):
    build(tmp_path / "coco", "official")
    tiny = ["--preset", "quick", "--size", "32", "--batch-size", "2", "--epochs", "1", "--bootstrap", "20", "--quiet"]
    code, _, err = cli(["train", "--data", f"coco:{tmp_path / 'coco'}", "--out", tmp_path / "run", *tiny])
    assert code == 0, err
    line = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert line["epoch"] == 1
    _folder(tmp_path / "f", [1, 2, 1, 2])
    shutil.copytree(tmp_path / "f" / "train", tmp_path / "f" / "val")
    shutil.copytree(tmp_path / "f" / "trainannot", tmp_path / "f" / "valannot")
    folder = f"folder:{tmp_path / 'f'}"
    code, _, err = cli(["train", "--data", folder, "--classes", "3", "--out", tmp_path / "r2", *tiny])
    assert code == 0, err
    code, _, err = cli(["train", "--data", folder, "--classes", "2", "--out", tmp_path / "r3", *tiny])
    assert code == 2 and "label value 2 is neither a class (0..1)" in err and err.count("\n") == 1
    assert not (tmp_path / "r3").exists()
