"""Downstream (real) segmentation datasets: COCO as VOC-20, Pascal VOC 2012, any image/mask folder.

Nothing is downloaded: a missing or malformed root stops with a UserError naming the missing file.
Every dataset yields ``(image, label)`` like the synthetic ones: uint8 (3, H, W) and int64 (H, W),
255 = ignore, transforms in torchvision.transforms.v2 style.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from ..errors import UserError
from . import formats
from .datasets import Transforms, apply_transforms, to_tensors

#: COCO category ids of the 20 Pascal VOC classes, in VOC order (classes 1..20), as in
#: torchvision's segmentation reference.
COCO_VOC_CATEGORIES = (5, 2, 16, 9, 44, 6, 3, 17, 62, 21, 67, 18, 19, 4, 1, 64, 20, 63, 7, 72)
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor")
MIN_TRAIN_AREA = 1000  # training images with less of the 20 classes than this (in pixels) are dropped
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


class CocoVOC(Dataset):
    """COCO 2017 reduced to the 20 Pascal VOC classes (the report's downstream task).

    Instances of the 20 categories are rasterised with pycocotools (polygons, RLE and crowd
    regions alike) and painted with their class 1..20; pixels covered by two or more instances
    become 255; everything else is background 0. Training images with none of the 20 categories,
    or under 1,000 px of them, are dropped. ``limit`` images are then sampled with ``seed``.

    Layouts: the official one (``ROOT/annotations/instances_{split}2017.json``,
    ``ROOT/{split}2017/*.jpg``) and the report's (the JSON files directly in ROOT; images in
    ``ROOT/{split}2017/`` or ROOT itself).

    Args:
        root: the COCO directory.
        split: "train" or "val".
        limit: number of images to sample (None: all).
        seed: seed of the sample.
        transforms: callable on (image, label).
    """

    def __init__(self, root: str | Path, split: str = "train", limit: int | None = None, seed: int = 0,
                 transforms: Transforms | None = None):
        from pycocotools.coco import COCO

        if split not in ("train", "val"):
            raise UserError(f"COCO split must be 'train' or 'val', got {split!r}")
        self.root = Path(root)
        self.split = split
        self.transforms = transforms
        if not self.root.is_dir():
            raise UserError(f"COCO root not found: {self.root}")
        name = f"instances_{split}2017.json"
        candidates = [self.root / "annotations" / name, self.root / name]
        ann_file = next((p for p in candidates if p.is_file()), None)
        if ann_file is None:
            raise UserError(f"COCO annotations not found: {candidates[0]} (or {candidates[1]})")
        self.image_dirs = [self.root / f"{split}2017", self.root]
        try:
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
                self.coco = COCO(str(ann_file))
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{ann_file} is not a COCO annotation file: {exc}") from None
        self.category_to_class = {c: k for k, c in enumerate(COCO_VOC_CATEGORIES, start=1)}
        ids = sorted(self.coco.getImgIds())
        if split == "train":
            ids = [i for i in ids if self._area(i) >= MIN_TRAIN_AREA]
        if limit is not None and limit < len(ids):
            rng = np.random.default_rng(seed)
            ids = sorted(rng.choice(ids, size=limit, replace=False).tolist())
        self.ids = ids
        self.classes = list(VOC_CLASSES)
        self.ignore_index = 255

    def _annotations(self, image_id: int) -> list[dict]:
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=[image_id]))
        return [a for a in anns if a["category_id"] in self.category_to_class]

    def _area(self, image_id: int) -> float:
        return sum(a.get("area", 0) for a in self._annotations(image_id))

    def label(self, image_id: int) -> np.ndarray:
        """(H, W) uint8 label map of one image."""
        from pycocotools import mask as mask_utils

        info = self.coco.loadImgs([image_id])[0]
        h, w = info["height"], info["width"]
        label = np.zeros((h, w), dtype=np.uint8)
        count = np.zeros((h, w), dtype=np.uint8)
        for ann in self._annotations(image_id):
            seg = ann["segmentation"]
            if isinstance(seg, list):  # polygons
                if not seg:
                    continue
                rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
            elif isinstance(seg.get("counts"), list):  # uncompressed RLE (crowd regions)
                rle = mask_utils.frPyObjects(seg, h, w)
            else:  # compressed RLE
                rle = seg
            m = mask_utils.decode(rle).astype(bool)
            label[m] = self.category_to_class[ann["category_id"]]
            count += m
        label[count > 1] = 255
        return label

    def _image_path(self, image_id: int) -> Path:
        name = self.coco.loadImgs([image_id])[0]["file_name"]
        for d in self.image_dirs:
            if (d / name).is_file():
                return d / name
        raise UserError(f"COCO image not found: {self.image_dirs[0] / name}")

    def __len__(self) -> int:
        return len(self.ids)

    def check(self) -> None:
        """Before training: every sampled image is there, readable and not too large."""
        for image_id in self.ids:
            formats.check_data_image(self._image_path(image_id))

    def __getitem__(self, i: int):
        image_id = self.ids[i]
        image = formats.read_image(self._image_path(image_id))
        return apply_transforms(self.transforms, *to_tensors(image, self.label(image_id)))


class PascalVOC(Dataset):
    """Pascal VOC 2012 segmentation through ``torchvision.datasets.VOCSegmentation`` (no download).

    ``root`` is the directory holding ``VOCdevkit/VOC2012``. Border pixels are 255, as VOC ships them.
    """

    def __init__(self, root: str | Path, split: str = "train", transforms: Transforms | None = None):
        from torchvision.datasets import VOCSegmentation

        try:
            self.voc = VOCSegmentation(str(root), year="2012", image_set=split, download=False)
        except (RuntimeError, ValueError, FileNotFoundError) as exc:
            missing = Path(root) / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation" / f"{split}.txt"
            raise UserError(f"Pascal VOC 2012 not found under {root} (expected {missing}): {exc}") from None
        self.transforms = transforms
        self.classes = list(VOC_CLASSES)
        self.ignore_index = 255

    def __len__(self) -> int:
        return len(self.voc)

    def check(self) -> None:
        """Before training: every listed image and mask is there, readable and not too large."""
        for path in (*self.voc.images, *self.voc.targets):
            if not Path(path).is_file():
                raise UserError(f"Pascal VOC file not found: {path}")
            formats.check_data_image(path)

    def __getitem__(self, i: int):
        image, target = self.voc[i]
        return apply_transforms(self.transforms, *to_tensors(np.asarray(image.convert("RGB")),
                                                             np.asarray(target, dtype=np.uint8)))


def parse_remap(text: str | None) -> dict[int, int]:
    """'11:255,3:1' -> {11: 255, 3: 1}."""
    if not text:
        return {}
    out = {}
    for part in text.split(","):
        try:
            a, b = (int(v) for v in part.split(":"))
        except ValueError:
            raise UserError(f"--remap must look like 11:255,3:1 (source:target pairs), got {text!r}") from None
        if not (0 <= a <= 255 and 0 <= b <= 255):
            raise UserError(f"--remap values must be in 0..255, got {part!r}")
        out[a] = b
    return out


class SegmentationFolder(Dataset):
    """Images and index-PNG masks in two folders, paired by file stem (e.g. CamVid's ``train/``
    and ``trainannot/``).

    Args:
        images: folder of images (jpg, png, ...).
        masks: folder of single-channel PNG masks with the same stems.
        num_classes: K; labels are 0..K-1.
        ignore_index: the value that marks pixels to ignore.
        remap: label values to replace before checking (e.g. {11: 255} for CamVid's void).
        class_names: optional names of the K classes.
        transforms: callable on (image, label).

    A mask value that is neither a class nor the ignore value (after ``remap``) raises a
    UserError naming the file and the value; ``check_labels()`` scans every mask up front.
    """

    def __init__(self, images: str | Path, masks: str | Path, num_classes: int, ignore_index: int = 255,
                 remap: Mapping[int, int] | None = None, class_names: Sequence[str] | None = None,
                 transforms: Transforms | None = None):
        self.images_dir, self.masks_dir = Path(images), Path(masks)
        for d in (self.images_dir, self.masks_dir):
            if not d.is_dir():
                raise UserError(f"folder not found: {d}")
        if not 1 <= num_classes <= 255:
            raise UserError(f"number of classes must be 1..255, got {num_classes}")
        masks_by_stem = {p.stem: p for p in self.masks_dir.iterdir() if p.suffix.lower() == ".png"}
        images_list = sorted(p for p in self.images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        self.items = [(p, masks_by_stem[p.stem]) for p in images_list if p.stem in masks_by_stem]
        if not self.items:
            raise UserError(f"no image in {self.images_dir} has a mask of the same name in {self.masks_dir}")
        # a file without its partner is a mistake in the data, not something to skip quietly
        paired = {p.stem for p, _ in self.items}
        unpaired = sorted([p for p in images_list if p.stem not in paired] +
                          [p for s, p in masks_by_stem.items() if s not in paired])
        if unpaired:
            first = unpaired[0]
            other = self.masks_dir if first.parent == self.images_dir else self.images_dir
            raise UserError(f"{len(unpaired)} unpaired file{'s' if len(unpaired) > 1 else ''}: {first} has no "
                            f"{'mask' if other == self.masks_dir else 'image'} of the same name in {other}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.lut = np.arange(256, dtype=np.uint8)
        for a, b in (remap or {}).items():
            self.lut[a] = b
        self.classes = list(class_names) if class_names else [f"class{k}" for k in range(num_classes)]
        if len(self.classes) != num_classes:
            raise UserError(f"{len(self.classes)} class names for {num_classes} classes")
        self.transforms = transforms

    def _label(self, path: Path) -> np.ndarray:
        label = self.lut[formats.read_label(path)]
        values = np.unique(label)
        bad = values[(values >= self.num_classes) & (values != self.ignore_index)]
        if len(bad):
            raise UserError(f"{path}: label value {int(bad[0])} is neither a class (0..{self.num_classes - 1}) "
                            f"nor the ignore value {self.ignore_index}; fix the classes, --ignore-index or --remap")
        return label

    def check_labels(self) -> None:
        for _, mask in self.items:
            self._label(mask)

    def check(self) -> None:
        """Before training: every image and mask is readable (checked whole, cheaply), not too large,
        and of one size; every mask holds only classes and the ignore value."""
        for image, mask in self.items:
            image_size, mask_size = formats.check_data_image(image), formats.check_data_image(mask)
            if image_size != mask_size:
                raise UserError(f"{mask}: mask size {mask_size} differs from its image's {image_size}")
        self.check_labels()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        image_path, mask_path = self.items[i]
        image = formats.read_image(image_path)
        label = self._label(mask_path)
        if label.shape != image.shape[:2]:
            raise UserError(f"{mask_path}: mask size {label.shape} differs from its image's {image.shape[:2]}")
        return apply_transforms(self.transforms, *to_tensors(image, label))
