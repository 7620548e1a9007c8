"""Toy experiment pieces shared by the experiment tests: a tiny recipe and a tiny image/mask folder."""

import numpy as np
from PIL import Image

TOY = {"model": "lraspp_mobilenet_v3_large", "epochs": 1, "batch_size": 4, "optimizer": "adamw", "lr": 0.002,
       "size": 32, "workers": 0, "num_train": 8, "num_val": 4, "bootstrap": 20}


def folder_dataset(root, n_train=8, n_val=4):
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for i in range(n):
            mask = np.zeros((24, 24), np.uint8)
            mask[4:12, 4:12] = 1 + i % 2
            image = rng.integers(0, 60, (24, 24, 3), dtype=np.uint8)
            image[mask == 1] = (200, 40, 40)
            image[mask == 2] = (40, 40, 200)
            Image.fromarray(image).save(root / split / f"{i:03d}.png")
            Image.fromarray(mask, mode="L").save(root / f"{split}annot" / f"{i:03d}.png")
