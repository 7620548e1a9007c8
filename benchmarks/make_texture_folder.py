"""Make a CamVid-style image/mask folder for downstream experiments (no download needed).

The task differs from the pretraining data on purpose: three classes with the same (uniform) hue
distribution that differ only in texture (noise scale) and elongation, sparse-convolution noise.

    python benchmarks/make_texture_folder.py OUT [--train 300] [--val 100] [--size 128]

writes OUT/{train,trainannot,val,valannot}/NNNNNN.png (masks: 0 background, 1..3, 255 ignore),
ready for ``fakeballoons experiment --data folder:OUT --classes 4``.
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from fakeballoons import ClassPrior, SceneConfig
from fakeballoons.data.generate import generate
from fakeballoons.data.recipe import Layout, Recipe


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--train", type=int, default=300)
    p.add_argument("--val", type=int, default=100)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    uniform_hue = dict(hue=180.0, hue_std=1e4)  # mod 360 of a very wide normal: hue carries no class information
    classes = (ClassPrior("smooth-wide", elongation=0.65, noise_scale=4.0, noise_scale_std=1.0, **uniform_hue),
               ClassPrior("medium-round", elongation=0.5, noise_scale=15.0, noise_scale_std=2.0, **uniform_hue),
               ClassPrior("rough-tall", elongation=0.35, noise_scale=40.0, noise_scale_std=4.0, **uniform_hue))
    config = SceneConfig(height=args.size, width=args.size, noise="sc", classes=classes)
    num = args.train + args.val
    recipe = Recipe(config, num=num, seed=args.seed, val_fraction=args.val / num)
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp) / "ds", recipe, workers=2, progress=True)
        layout = Layout(Path(tmp) / "ds", recipe)
        for split in ("train", "val"):
            (out / split).mkdir(parents=True, exist_ok=True)
            (out / f"{split}annot").mkdir(exist_ok=True)
            for i in recipe.split_range(split):
                files = layout.sample_files(i)
                shutil.copy(files["image"], out / split / f"{layout.name(i)}.png")
                shutil.copy(files["label"], out / f"{split}annot" / f"{layout.name(i)}.png")
    print(f"wrote {args.train} + {args.val} pairs to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
