"""Check a generated dataset against its manifest: every file exists, decodes and matches."""

from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from . import formats
from .generate import chunk_done
from .recipe import Layout, Recipe


@dataclass
class Report:
    samples: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(root: str | Path, decode: bool = True) -> Report:
    """Verify a dataset directory.

    Checks: dataset.json parses; every chunk is complete; scenes.jsonl has one line per index
    in order, with the right split; every file named there exists with the recorded SHA-256 and
    (if ``decode``) decodes to the configured size with label values in {0..K, ignore}; the split
    lists and COCO files agree with the manifest.
    """
    root = Path(root)
    manifest = root / "dataset.json"
    if not manifest.exists():
        raise UserError(f"{root} is not a fakeballoons dataset (no dataset.json)")
    recipe = Recipe.from_manifest(formats.read_json(manifest, "dataset manifest"), str(manifest))
    layout = Layout(root, recipe)
    report = Report()
    problem = report.problems.append
    missing, first = incomplete_chunks(layout)
    if missing:
        problem(f"{missing} of {recipe.num_chunks} chunks are incomplete (first: indices "
                f"{recipe.chunk_range(first).start}..{recipe.chunk_range(first).stop - 1}); "
                "rerun the generate command to finish them")
    if not layout.scenes.exists():
        problem("scenes.jsonl is missing; rerun the generate command to finish the dataset")
        return report
    config = recipe.config
    valid_labels = set(range(config.num_classes + 1)) | {config.antialias.ignore_index}
    expected = 0
    for record in formats.read_jsonl(layout.scenes, "scene list"):
        if record.get("index") != expected:
            problem(f"scenes.jsonl line {expected + 1} has index {record.get('index')!r}, expected {expected}")
            return report
        if record.get("split") != recipe.split_of(expected):
            problem(f"scenes.jsonl index {expected}: split {record.get('split')!r} does not match the manifest")
        bad = _non_finite(record)
        if bad:
            problem(f"scenes.jsonl index {expected}: {bad} is not a finite number; the scene is not one "
                    "fakeballoons draws")
        _check_files(layout, expected, record, decode, valid_labels, problem)
        expected += 1
        report.samples += 1
    if expected != recipe.num:
        problem(f"scenes.jsonl has {expected} samples, the manifest says {recipe.num}")
    for split in ("train", "val"):
        path = layout.split_list(split)
        if not _lists(path, (layout.name(i) for i in recipe.split_range(split))):
            problem(f"{layout.relative(path)} is missing or does not list the {split} split")
    if recipe.format == "png":
        for split in ("train", "val"):
            path = layout.coco(split)
            try:
                coco = json.loads(path.read_bytes())
                ids = [im["id"] for im in coco["images"]]
            except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
                problem(f"{layout.relative(path)} is missing or unreadable ({exc})")
                continue
            want = recipe.split_range(split)
            if len(ids) != len(want) or any(a != b for a, b in zip(ids, want)):
                problem(f"{layout.relative(path)} does not list the {split} images")
    return report


def incomplete_chunks(layout: Layout) -> tuple[int, int | None]:
    """(how many chunks are incomplete, the first of them or None), in time proportional to the
    files there rather than to the number of samples the manifest claims: only chunks whose record
    file exists are looked at one by one."""
    recipe = layout.recipe
    try:
        names = [e.name for e in os.scandir(layout.part(0).parent)]
    except OSError:
        names = []
    recorded = sorted({int(n[:-6]) for n in names if n.endswith(".jsonl") and n[:-6].isdigit()
                       and int(n[:-6]) < recipe.num_chunks})
    broken = [c for c in recorded if not chunk_done(layout, c)]
    unrecorded = next((c for c, r in enumerate([*recorded, recipe.num_chunks]) if c != r), None)
    first = min([*broken, *([unrecorded] if unrecorded is not None and unrecorded < recipe.num_chunks else [])],
                default=None)
    return recipe.num_chunks - len(recorded) + len(broken), first


def _non_finite(value, path: str = "") -> str | None:
    """The path of the first NaN or infinity in a JSON record, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "the record"
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((f"[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for key, v in items:
        found = _non_finite(v, f"{path}{key}" if key.startswith("[") else (f"{path}.{key}" if path else key))
        if found:
            return found
    return None


def _lists(path: Path, names) -> bool:
    """Whether the split list at ``path`` holds exactly ``names``, one a line (read line by line)."""
    try:
        with open(path, encoding="utf-8") as fh:
            listed = (word for line in fh for word in line.split())
            return all(a == b for a, b in itertools.zip_longest(listed, names))
    except (OSError, ValueError):
        return False


def _check_files(layout: Layout, index: int, record: dict, decode: bool, valid_labels: set[int], problem) -> None:
    """Check the files of one sample against its record. Only the files the layout puts there are
    opened: a path in the record is compared with the layout's, never followed (a manifest is
    untrusted and could name ``../../etc/passwd``)."""
    files, hashes = record.get("files"), record.get("sha256")
    if not isinstance(files, dict) or not isinstance(hashes, dict):
        problem(f"scenes.jsonl index {index}: no 'files' and 'sha256' objects")
        return
    for kind, path in layout.sample_files(index).items():
        rel = layout.relative(path)
        if files.get(kind) != rel:
            problem(f"scenes.jsonl index {index}: {kind} file is {files.get(kind)!r}, expected {rel!r}")
            continue
        if not path.is_file():
            problem(f"{rel} is missing; rerun the generate command to restore it")
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            problem(f"cannot read {rel}: {exc.strerror or exc}")
            continue
        if formats.sha256(data) != hashes.get(kind):
            problem(f"{rel} does not match the manifest (SHA-256 differs): corrupt or modified; "
                    "delete it and rerun the generate command to restore it")
            continue
        if decode:
            _check_decodes(path, kind, layout.recipe.config, valid_labels, problem)


def _check_decodes(path: Path, kind: str, config, valid_labels: set[int], problem) -> None:
    try:
        if kind == "image":
            arr = formats.read_image(path)
            shape = arr.shape[:2]
        elif kind == "label":
            arr = formats.read_label(path)
            shape = arr.shape
            bad = set(np.unique(arr).tolist()) - valid_labels
            if bad:
                problem(f"{path.name}: label values {sorted(bad)} are not classes or the ignore value")
        else:
            shape = formats.read_instance(path).shape
    except UserError as exc:
        problem(f"{exc}")
        return
    if tuple(shape) != (config.height, config.width):
        problem(f"{path.name}: size {shape} differs from the configured {(config.height, config.width)}")
