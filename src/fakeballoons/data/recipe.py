"""Where every file of a generated dataset lives, and the recipe in its dataset.json.

A dataset is fixed by its recipe: configuration, seed, number of samples, validation fraction,
file format and package version. Every file is a pure function of the recipe and a sample index,
so any worker, shard or resumed run writes the same bytes.

Work is cut into chunks of CHUNK_SIZE consecutive indices. A chunk is done when its record file
``parts/NNNNNN.jsonl`` and all its samples' files exist; finishing a dataset assembles the parts
into scenes.jsonl, the split lists and the COCO annotation files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .._version import __version__
from ..codec import MAX_INT, check_count, check_number, difference, shown
from ..config import SceneConfig
from ..errors import ConfigError, UserError
from ..names import FORMATS, SPLITS

FORMAT_VERSION = 1
CHUNK_SIZE = 32
VOC_SUBDIR = Path("VOCdevkit") / "VOC2012"
#: The most samples a dataset holds (generate's --num takes up to this).
MAX_NUM = 10**9


@dataclass(frozen=True)
class Recipe:
    """What defines a generated dataset."""

    config: SceneConfig
    num: int
    seed: int = 0
    val_fraction: float = 0.1
    format: str = "png"
    package_version: str = __version__

    def __post_init__(self):
        # as strict as generate's --num and --seed: a manifest is read from a file and trusted no more
        check_count("num", self.num, 1, MAX_NUM)
        check_count("seed", self.seed, 0, MAX_INT)
        check_number("val_fraction", self.val_fraction, 0.0, 1.0)
        if self.val_fraction == 1.0:
            raise ConfigError("val_fraction", f"must be in [0, 1), got {self.val_fraction}")
        if self.format not in FORMATS:
            raise ConfigError("format", f"must be one of {list(FORMATS)}, got {shown(self.format)}")
        if not isinstance(self.package_version, str):
            raise ConfigError("package_version", f"must be a string, got {shown(self.package_version)}")

    @property
    def num_val(self) -> int:
        """The last round(num * val_fraction) indices are the validation split."""
        return int(round(self.num * self.val_fraction))

    @property
    def num_train(self) -> int:
        return self.num - self.num_val

    def split_range(self, split: str) -> range:
        """The indices of ``split``: "train", "val" or "all"."""
        if split == "train":
            return range(0, self.num_train)
        if split == "val":
            return range(self.num_train, self.num)
        if split == "all":
            return range(0, self.num)
        raise UserError(f"split must be one of {list(SPLITS)}, got {split!r}")

    def split_of(self, index: int) -> str:
        return "train" if index < self.num_train else "val"

    @property
    def num_chunks(self) -> int:
        return -(-self.num // CHUNK_SIZE)

    def chunk_range(self, chunk: int) -> range:
        return range(chunk * CHUNK_SIZE, min((chunk + 1) * CHUNK_SIZE, self.num))

    def to_manifest(self) -> dict:
        """The content of dataset.json."""
        k = self.config.num_classes
        return {
            "format_version": FORMAT_VERSION,
            "package": "fakeballoons",
            "package_version": self.package_version,
            "format": self.format,
            "seed": self.seed,
            "num": self.num,
            "val_fraction": self.val_fraction,
            "counts": {"total": self.num, "train": self.num_train, "val": self.num_val},
            "splits": {"train": [0, self.num_train], "val": [self.num_train, self.num]},
            "chunk_size": CHUNK_SIZE,
            "classes": [{"id": 0, "name": "background", "colour": [0, 0, 0]}] + [
                {"id": i, "name": c.name, "colour": list(colour)}
                for i, (c, colour) in enumerate(zip(self.config.classes, self.config.label_colours), start=1)],
            "num_classes": k,
            "ignore_index": self.config.antialias.ignore_index,
            "config": self.config.to_dict(),
        }

    @classmethod
    def from_manifest(cls, data: dict, where: str = "dataset.json") -> Recipe:
        try:
            if not isinstance(data, dict):
                raise TypeError("not a JSON object")
            if data.get("format_version") != FORMAT_VERSION:
                raise UserError(f"{where}: format_version {data.get('format_version')!r} is not "
                                f"{FORMAT_VERSION}; this fakeballoons cannot read it")
            if not isinstance(data["config"], dict):  # a preset's name is for the command line, not a manifest
                raise TypeError("config: not a JSON object")
            return cls(config=SceneConfig.from_dict(data["config"]), num=data["num"], seed=data["seed"],
                       val_fraction=data["val_fraction"], format=data["format"],
                       package_version=data["package_version"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise UserError(f"{where} is not a fakeballoons manifest (missing or bad {exc})") from None
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None

    def difference(self, other: Recipe) -> str | None:
        """Where ``other`` (there) differs from this recipe (here), e.g. ``"seed is 5 there, 6 here"``."""
        return difference(self, other)


class Layout:
    """File paths of a dataset directory, per format."""

    def __init__(self, root: str | Path, recipe: Recipe):
        self.root = Path(root)
        self.recipe = recipe
        self.digits = max(6, len(str(recipe.num - 1)))

    def name(self, index: int) -> str:
        return f"{index:0{self.digits}d}"

    @property
    def manifest(self) -> Path:
        return self.root / "dataset.json"

    @property
    def scenes(self) -> Path:
        return self.root / "scenes.jsonl"

    def part(self, chunk: int) -> Path:
        return self.root / "parts" / f"{chunk:06d}.jsonl"

    def sample_files(self, index: int) -> dict[str, Path]:
        """The files of one sample, by kind: image, label and (png format) instance."""
        n = self.name(index)
        if self.recipe.format == "voc":
            voc = self.root / VOC_SUBDIR
            return {"image": voc / "JPEGImages" / f"{n}.jpg", "label": voc / "SegmentationClass" / f"{n}.png"}
        return {"image": self.root / "images" / f"{n}.png", "label": self.root / "labels" / f"{n}.png",
                "instance": self.root / "instances" / f"{n}.png"}

    def split_list(self, split: str) -> Path:
        if self.recipe.format == "voc":
            return self.root / VOC_SUBDIR / "ImageSets" / "Segmentation" / f"{split}.txt"
        return self.root / "splits" / f"{split}.txt"

    def coco(self, split: str) -> Path:
        return self.root / "annotations" / f"instances_{split}.json"

    def directories(self) -> list[Path]:
        dirs = {p.parent for p in self.sample_files(0).values()}
        dirs |= {self.part(0).parent, self.split_list("train").parent}
        if self.recipe.format == "png":
            dirs.add(self.coco("train").parent)
        return sorted(dirs)

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()
