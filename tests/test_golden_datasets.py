"""The report's scenes do not move: ``generate`` output of the default configuration is pinned.

For each noise, 64 default pairs (512x512, seed 0, png format) are generated and the SHA-256 of
every file (images, labels, instance maps, scenes.jsonl, dataset.json, split lists, COCO files)
must equal the digests recorded in ``tests/golden/generate-64-{noise}.json``. The package version
is part of a recipe (it is written into dataset.json and the COCO info), so it is fixed here at
the version the digests were recorded with. The digests were first recorded at commit 3b302de,
before the architecture and scene issues changed any code, and recorded again when the RGB
images moved from libpng to the package's own writer (libdeflate), after a check that all 300 images
of 300 default pairs decode to the same pixels as before (labels, instance maps and COCO files kept
their bytes; the chunk records and scenes.jsonl hold the images' new digests), and once more when all
three kinds of PNG moved to the ISA-L writer, after the same check on all 900 files of 300 pairs (same
pixels, modes and palettes; the COCO files kept their bytes), with:

    python -c "from tests.test_golden_datasets import record; record()"

Every scene preset's rendered maps are pinned too (``tests/golden/render-presets.json``, recorded
at commit 169a05b with the kernels of that commit, before the shading shortcuts of the next one),
with ``python -c "from tests.test_golden_datasets import record_presets; record_presets()"``.
"""

import hashlib
import json
from pathlib import Path

import pytest

from fakeballoons import SceneConfig
from fakeballoons.data.generate import generate

GOLDEN = Path(__file__).parent / "golden"
PINNED_VERSION = "0.1.0"


def _recipe(noise: str):
    from fakeballoons.data.recipe import Recipe

    return Recipe(SceneConfig(noise=noise), num=64, seed=0, package_version=PINNED_VERSION)


def digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def record(out: str = "/tmp/fakeballoons-golden") -> None:
    for noise in ("perlin", "sc"):
        root = Path(out) / noise
        generate(root, _recipe(noise), workers=2, progress=False)
        (GOLDEN / f"generate-64-{noise}.json").write_text(json.dumps(digests(root), indent=1, sort_keys=True) + "\n")


@pytest.mark.slow
@pytest.mark.parametrize("noise", ["perlin", "sc"])
def test_default_scenes_are_byte_identical(tmp_path, noise):
    generate(tmp_path / "ds", _recipe(noise), workers=1, progress=False)
    expected = json.loads((GOLDEN / f"generate-64-{noise}.json").read_text())
    got = digests(tmp_path / "ds")
    assert sorted(got) == sorted(expected)
    changed = [name for name in sorted(expected) if got[name] != expected[name]]
    assert not changed, f"{len(changed)} files differ from the pinned digests, first {changed[:5]}"


def _preset_digests() -> dict[str, str]:
    """sha256 of the image, label and instance maps of six 128x96 scenes of every scene preset, both
    noises: the general kernel (shapes, ground, shadows, texture spaces) pinned as the report's is above."""
    import dataclasses

    from fakeballoons import render_batch, sample_scene
    from fakeballoons.codec import preset_names
    from fakeballoons.config import load_scene

    out = {}
    for name in preset_names(SceneConfig):
        for noise in ("perlin", "sc"):
            config = dataclasses.replace(load_scene(name), noise=noise, width=128, height=96)
            batch = render_batch([sample_scene(config, 11, i) for i in range(6)], config)
            out[f"{name}/{noise}"] = hashlib.sha256(batch.image.tobytes() + batch.label.tobytes()
                                                    + batch.instance.tobytes()).hexdigest()
    return out


def record_presets() -> None:
    (GOLDEN / "render-presets.json").write_text(json.dumps(_preset_digests(), indent=1, sort_keys=True) + "\n")


@pytest.mark.slow
def test_every_scene_preset_renders_the_pinned_pictures():
    expected = json.loads((GOLDEN / "render-presets.json").read_text())
    got = _preset_digests()
    assert sorted(got) == sorted(expected), "a scene preset was added or removed: record its digests"
    changed = [name for name in sorted(expected) if got[name] != expected[name]]
    assert not changed, f"pictures differ from the pinned digests: {changed}"
