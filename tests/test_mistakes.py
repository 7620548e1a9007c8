"""A table of user mistakes, for every subcommand: each ends with exit status 2 and one line on
stderr (no traceback), and writes nothing."""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fakeballoons.data.generate import generate
from fakeballoons.data.recipe import Recipe
from fakeballoons.train import loop
from fakeballoons.train.run import RunConfig

DATA = "synthetic:perlin"
TINY = ["--preset", "quick", "--size", "32", "--num-train", "8", "--num-val", "4", "--batch-size", "4",
        "--bootstrap", "10", "--epochs", "1", "--quiet"]
SMALL = ["--size", "16", "--quiet", "--workers", "1"]


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def dataset(t: Path) -> Path:
    out = t / "ds"
    generate(out, Recipe(_scene(), num=6, seed=1, val_fraction=0.34), progress=False)
    return out


def _scene():
    from fakeballoons import SceneConfig

    return SceneConfig(height=16, width=16)


def scenes_line(t: Path, line: str) -> Path:
    """A dataset whose scenes.jsonl has ``line`` in place of its second line."""
    root = dataset(t)
    lines = (root / "scenes.jsonl").read_text().splitlines()
    lines[1] = line
    write(root / "scenes.jsonl", "\n".join(lines) + "\n")
    return root


def manifest(t: Path, text: str) -> Path:
    root = dataset(t)
    write(root / "dataset.json", text)
    return root


def train_argv(out, *more):
    return ["train", "--data", DATA, "--out", out, *TINY, *more]


def run_dir(t: Path, *, checkpoint: bool = False) -> Path:
    """A run directory of train_argv(t / "run"), as the command itself opens it (optionally with a
    real last.pt after one pretend epoch)."""
    from fakeballoons.cli import build_parser
    from fakeballoons.commands import _TRAIN_FLAGS, _data_config
    from fakeballoons.train.models import build_model
    from fakeballoons.train.run import load_train_preset

    out = t / "run"
    args = build_parser().parse_args([str(a) for a in train_argv(out)])
    cfg = load_train_preset(args.preset).with_changes(**{k: getattr(args, k) for k in _TRAIN_FLAGS})
    run = RunConfig(_data_config(args), cfg, device=args.device)
    run_dir, _ = loop.open_run_dir(out, run, resume=False)
    if checkpoint:
        model = build_model(cfg.model, 4)
        loop.save_checkpoint(run_dir, run, model, loop.make_optimizer(model, cfg), None, 1,
                             {"macro_f1": {"value": 0.5}}, -1.0, ["background", "a", "b", "c"])
        write(run_dir.metrics, '{"epoch": 1}\n')
    return out


def _saved(path: Path, obj) -> Path:
    torch.save(obj, path)
    return path


def experiment_dir(t: Path, text: str) -> Path:
    write(t / "exp" / "experiment.json", text)
    return t / "exp"


def png(path: Path, shape=(8, 8, 3)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros(shape, np.uint8)).save(path)
    return path


def folder(t: Path) -> Path:
    for split in ("train", "val"):
        png(t / "f" / split / "a.png")
        png(t / "f" / f"{split}annot" / "a.png", (8, 8))
    return t / "f"


def _reshaped(t: Path) -> Path:
    """A run's checkpoint with one backbone tensor of the wrong shape."""
    import torch

    ckpt = torch.load(run_dir(t, checkpoint=True) / "last.pt", weights_only=True)
    name = next(k for k in ckpt["model"] if k.startswith("backbone.") and k.endswith("weight"))
    return _saved(t / "x.pt", {**ckpt, "model": {**ckpt["model"], name: torch.zeros(3, 1)}})


def preset(t: Path, data: bytes | str, name="p.json") -> Path:
    return write(t / name, data)


NOT_UTF8 = b'{"noise": "\xff\xfe"}'
CORES = len(os.sched_getaffinity(0))

CASES = {
    # render
    "render: --threads above the core count": lambda t: ["render", t / "x.png", "--threads", CORES + 1],
    "render: --threads 0": lambda t: ["render", t / "x.png", "--threads", 0],
    "render: scene file not UTF-8": lambda t: ["render", t / "x.png", "--scene", preset(t, NOT_UTF8)],
    "render: scene file a JSON list": lambda t: ["render", t / "x.png", "--scene", preset(t, "[1, 2]")],
    "render: scene file a JSON string": lambda t: ["render", t / "x.png", "--scene", preset(t, '"perlin"')],
    "render: scene file not JSON": lambda t: ["render", t / "x.png", "--scene", preset(t, "{nope")],
    "render: scene file empty": lambda t: ["render", t / "x.png", "--scene", preset(t, "")],
    "render: scene file nested too deep": lambda t: ["render", t / "x.png", "--scene", preset(t, "[" * 100000)],
    "render: scene file a directory": lambda t: ["render", t / "x.png", "--scene",
                                                 (t / "d.json").mkdir() or t / "d.json"],
    "render: scene file with NaN": lambda t: ["render", t / "x.png", "--scene",
                                              preset(t, '{"camera": {"eye": [NaN, 0, 2]}}')],
    "render: scene file with a huge integer": lambda t: ["render", t / "x.png", "--scene",
                                                         preset(t, '{"height": ' + "9" * 5000 + "}")],
    "render: unknown scene preset": lambda t: ["render", t / "x.png", "--scene", "nosuchpreset"],
    "render: scene preset with a base cycle": lambda t: ["render", t / "x.png", "--scene",
                                                         preset(t, json.dumps({"base": str(t / "p.json")}))],
    "render: out is a directory": lambda t: ["render", (t / "o").mkdir() or t / "o"],
    "render: out under a file": lambda t: ["render", write(t / "f", "x") / "x.png"],
    "render: out in a missing directory": lambda t: ["render", t / "missing" / "x.png"],
    "render: label out is the image": lambda t: ["render", t / "x.png", "--label-out", t / "x.png"],
    "render: label out is the image by another name": lambda t: ["render", t / "x.png", "--label-out",
                                                                 t / "." / "x.png"],
    "render: elongation 0": lambda t: ["render", t / "x.png", "--kind", "single", "--elongation", 0],
    "render: hue out of range": lambda t: ["render", t / "x.png", "--hue", 400],
    "render: noise scale 0": lambda t: ["render", t / "x.png", "--noise-scale", 0],
    "render: unknown kind": lambda t: ["render", t / "x.png", "--kind", "cubes"],
    "render: seed not a number": lambda t: ["render", t / "x.png", "--seed", "abc"],
    "render: negative index": lambda t: ["render", t / "x.png", "--index", -1],
    "render: unknown option": lambda t: ["render", t / "x.png", "--colour", "red"],
    "render: no output": lambda t: ["render"],
    # generate
    "generate: out is a file": lambda t: ["generate", write(t / "f", "x"), "--num", 2, *SMALL],
    "generate: out holds the user's files": lambda t: ["generate", write(t / "o" / "notes.txt", "x").parent,
                                                       "--num", 2, *SMALL],
    "generate: dataset.json not JSON": lambda t: ["generate", manifest(t, "{"), "--num", 6, *SMALL],
    "generate: dataset.json a list": lambda t: ["generate", manifest(t, "[]"), "--num", 6, *SMALL],
    "generate: dataset.json not UTF-8": lambda t: ["generate", manifest(t, b"\xff{}"), "--num", 6, *SMALL],
    "generate: dataset.json of another version": lambda t: ["generate", manifest(t, '{"format_version": 99}'),
                                                            "--num", 6, *SMALL],
    "generate: dataset.json missing fields": lambda t: ["generate", manifest(t, '{"format_version": 1}'),
                                                        "--num", 6, *SMALL],
    "generate: dataset.json with a bad config": lambda t: [
        "generate", manifest(t, json.dumps({**json.loads((dataset(t / "b") / "dataset.json").read_text()),
                                            "config": {"height": -1}})), "--num", 6, *SMALL],
    "generate: another recipe": lambda t: ["generate", dataset(t), "--num", 6, "--seed", 2, *SMALL],
    "generate: workers not a number": lambda t: ["generate", t / "o", "--workers", "many"],
    "generate: shard out of range": lambda t: ["generate", t / "o", "--shard", "2/2"],
    "generate: shard zero of zero": lambda t: ["generate", t / "o", "--shard", "0/0"],
    "generate: val fraction 1": lambda t: ["generate", t / "o", "--val-fraction", 1],
    "generate: unknown format": lambda t: ["generate", t / "o", "--format", "tiff"],
    "generate: num 0": lambda t: ["generate", t / "o", "--num", 0],
    "generate: scene file a list": lambda t: ["generate", t / "o", "--scene", preset(t, "[]")],
    # verify
    "verify: no such directory": lambda t: ["verify", t / "nothing"],
    "verify: a file": lambda t: ["verify", write(t / "f", "x")],
    "verify: no dataset.json": lambda t: ["verify", (t / "e").mkdir() or t / "e"],
    "verify: dataset.json not JSON": lambda t: ["verify", manifest(t, "nope")],
    "verify: dataset.json a number": lambda t: ["verify", manifest(t, "3")],
    "verify: scenes.jsonl line not JSON": lambda t: ["verify", scenes_line(t, "{not json")],
    "verify: scenes.jsonl line a list": lambda t: ["verify", scenes_line(t, "[1]")],
    "verify: scenes.jsonl line without files": lambda t: ["verify", scenes_line(t, '{"index": 1, "split": "train"}')],
    "verify: scenes.jsonl files a string": lambda t: ["verify", scenes_line(
        t, '{"index": 1, "split": "train", "files": "x", "sha256": {}}')],
    "verify: scenes.jsonl path out of the dataset": lambda t: ["verify", scenes_line(
        t, '{"index": 1, "split": "train", "files": {"image": "../../../../etc/passwd"}, "sha256": {}}')],
    "verify: scenes.jsonl not UTF-8": lambda t: ["verify", scenes_line(t, '{"index": 1, "x": "\udcff"}'
                                                                       .encode("utf-8", "surrogateescape").decode(
                                                                           "latin-1"))],
    # preview
    "preview: no such dataset": lambda t: ["preview", t / "nothing", "--out", t / "p.png"],
    "preview: out is a directory": lambda t: ["preview", dataset(t), "--out", (t / "o").mkdir() or t / "o"],
    "preview: out in a missing directory": lambda t: ["preview", dataset(t), "--out", t / "m" / "p.png"],
    "preview: count 0": lambda t: ["preview", dataset(t), "--out", t / "p.png", "--count", 0],
    "preview: unknown split": lambda t: ["preview", dataset(t), "--out", t / "p.png", "--split", "test"],
    "preview: corrupt image": lambda t: ["preview", (lambda r: write(r / "images" / "000000.png", b"junk") and r)(
        dataset(t)), "--out", t / "p.png"],
    "preview: a folder of neither kind": lambda t: ["preview", write(t / "d" / "a.txt", "x").parent,
                                                   "--out", t / "p.png"],
    # train
    "train: preset not UTF-8": lambda t: train_argv(t / "run", "--preset", preset(t, NOT_UTF8)),
    "train: preset a JSON list": lambda t: train_argv(t / "run", "--preset", preset(t, "[]")),
    "train: preset with an unknown key": lambda t: train_argv(t / "run", "--preset", preset(t, '{"lr2": 1}')),
    "train: preset with Infinity": lambda t: train_argv(t / "run", "--preset", preset(t, '{"lr": Infinity}')),
    "train: preset with a bool for an integer": lambda t: train_argv(t / "run", "--preset",
                                                                     preset(t, '{"epochs": true}')),
    "train: out is a file": lambda t: train_argv(write(t / "f", "x")),
    "train: out under a file": lambda t: train_argv(write(t / "f", "x") / "run"),
    "train: out holds the user's files": lambda t: train_argv(write(t / "o" / "best.pt", "mine").parent),
    "train: config.json not JSON": lambda t: train_argv(write(run_dir(t) / "config.json", "{").parent),
    "train: config.json a list": lambda t: train_argv(write(run_dir(t) / "config.json", "[]").parent),
    "train: config.json not UTF-8": lambda t: train_argv(write(run_dir(t) / "config.json", b"\xff").parent),
    "train: config.json with bad values": lambda t: train_argv(
        write(run_dir(t) / "config.json", '{"data": {"source": 3}}').parent),
    "train: run of other settings": lambda t: [*train_argv(run_dir(t)), "--lr", "0.5"],
    "train: last.pt corrupt": lambda t: [*train_argv(write(run_dir(t) / "last.pt", b"junk").parent), "--resume"],
    "train: last.pt empty": lambda t: [*train_argv(write(run_dir(t) / "last.pt", b"").parent), "--resume"],
    "train: last.pt a plain list": lambda t: [*train_argv((lambda r: torch.save([1, 2], r / "last.pt") or r)(
        run_dir(t))), "--resume"],
    "train: last.pt of another model": lambda t: [*train_argv((lambda r: torch.save(
        {"model": {"w": torch.zeros(2)}, "optimizer": {}, "epoch": 1}, r / "last.pt") or r)(run_dir(t))),
        "--resume"],
    "train: metrics.jsonl corrupt": lambda t: [*train_argv(write(run_dir(t, checkpoint=True) / "metrics.jsonl",
                                                                 "{\n").parent), "--resume"],
    "train: metrics.jsonl not UTF-8": lambda t: [*train_argv(write(run_dir(t, checkpoint=True) / "metrics.jsonl",
                                                                   b"\xff\n").parent), "--resume"],
    "train: resume with fewer epochs": lambda t: [*train_argv(run_dir(t, checkpoint=True)), "--resume",
                                                  "--epochs", "0"],
    "train: resume of nothing": lambda t: [*train_argv(t / "run"), "--resume"],
    "train: init an empty path": lambda t: train_argv(t / "run", "--init", ""),
    "train: init a directory": lambda t: train_argv(t / "run", "--init", (t / "d").mkdir() or t / "d"),
    "train: init a text file": lambda t: train_argv(t / "run", "--init", write(t / "x.pt", "hello")),
    "train: init a list of numbers": lambda t: train_argv(t / "run", "--init", (
        lambda p: torch.save([1, 2, 3], p) or p)(t / "l.pt")),
    "train: folder data without classes": lambda t: ["train", "--data", f"folder:{folder(t)}", "--out", t / "run",
                                                     *TINY],
    "train: folder data missing": lambda t: ["train", "--data", f"folder:{t / 'none'}", "--classes", 2,
                                             "--out", t / "run", *TINY],
    "train: folder with a mask of another size": lambda t: [
        "train", "--data", f"folder:{(lambda f: png(f / 'valannot' / 'a.png', (8, 9)) and f)(folder(t))}",
        "--classes", 2, "--out", t / "run", *TINY],
    "train: coco root missing": lambda t: ["train", "--data", f"coco:{t / 'none'}", "--out", t / "run", *TINY],
    "train: voc root missing": lambda t: ["train", "--data", f"voc:{t / 'none'}", "--out", t / "run", *TINY],
    "train: empty prefix": lambda t: ["train", "--data", "folder:", "--classes", 2, "--out", t / "run", *TINY],
    "train: scene with folder data": lambda t: ["train", "--data", f"folder:{folder(t)}", "--classes", 2,
                                                "--scene", "report", "--out", t / "run", *TINY],
    "train: bad remap": lambda t: train_argv(t / "run", "--remap", "1-2"),
    "train: lr 0": lambda t: train_argv(t / "run", "--lr", 0),
    "train: lr nan": lambda t: train_argv(t / "run", "--lr", "nan"),
    "train: unknown model": lambda t: train_argv(t / "run", "--model", "unet"),
    "train: unknown noise": lambda t: ["train", "--data", "synthetic:simplex", "--out", t / "run", *TINY],
    "train: dataset directory unfinished": lambda t: ["train", "--data", (
        lambda r: (r / "scenes.jsonl").unlink() or (r / "parts" / "000000.jsonl").unlink() or r)(dataset(t)),
        "--out", t / "run", *TINY],
    # experiment
    "experiment: unknown preset": lambda t: ["experiment", "--out", t / "e", "--preset", "nope"],
    "experiment: preset a list": lambda t: ["experiment", "--out", t / "e", "--preset", preset(t, "[]")],
    "experiment: preset not UTF-8": lambda t: ["experiment", "--out", t / "e", "--preset", preset(t, NOT_UTF8)],
    "experiment: transfer without data": lambda t: ["experiment", "--out", t / "e", "--preset", "quick-folder"],
    "experiment: sweep with data": lambda t: ["experiment", "--out", t / "e", "--preset",
                                              preset(t, '{"kind": "sweep"}'), "--data", DATA],
    "experiment: bad transfer value in the preset": lambda t: [
        "experiment", "--out", t / "e", "--data", DATA, "--preset",
        preset(t, '{"base": "quick-folder", "transfer": "everything"}')],
    "experiment: bad arm scene": lambda t: ["experiment", "--out", t / "e", "--data", DATA, "--preset",
                                            preset(t, '{"arms": [{"name": "a", "scene": "nosuchscene"}]}')],
    "experiment: duplicate arm names": lambda t: ["experiment", "--out", t / "e", "--data", DATA, "--preset",
                                                  preset(t, '{"arms": [{"name": "a"}, {"name": "a"}]}')],
    "experiment: experiment.json not JSON": lambda t: ["experiment", "--out", experiment_dir(t, "{"),
                                                       "--data", DATA],
    "experiment: experiment.json a list": lambda t: ["experiment", "--out", experiment_dir(t, "[]"),
                                                     "--data", DATA],
    "experiment: experiment.json not UTF-8": lambda t: ["experiment", "--out", experiment_dir(t, b"\xff"),
                                                        "--data", DATA],
    "experiment: out holds the user's files": lambda t: ["experiment", "--out", write(t / "o" / "a", "x").parent,
                                                         "--data", DATA],
    "experiment: out is a file": lambda t: ["experiment", "--out", write(t / "f", "x"), "--data", DATA],
    "experiment: bad shard": lambda t: ["experiment", "--out", t / "e", "--data", DATA, "--shard", "5/2"],
    "experiment: missing downstream data": lambda t: ["experiment", "--out", t / "e", "--data", t / "none"],
    # report
    "report: no such run": lambda t: ["report", t / "none", "--out", t / "rep"],
    "report: run without --out": lambda t: ["report", run_dir(t)],
    "report: metrics.jsonl corrupt": lambda t: ["report", write(run_dir(t) / "metrics.jsonl", "{\n").parent,
                                                "--out", t / "rep"],
    "report: metrics.jsonl lines of the wrong shape": lambda t: [
        "report", write(run_dir(t) / "metrics.jsonl", '{"epoch": "one"}\n').parent, "--out", t / "rep"],
    "report: metrics.jsonl empty": lambda t: ["report", write(run_dir(t) / "metrics.jsonl", "").parent,
                                              "--out", t / "rep"],
    "report: config.json corrupt": lambda t: ["report", write(run_dir(t) / "config.json", "[").parent,
                                              "--out", t / "rep"],
    "report: out is a file": lambda t: ["report", run_dir(t), "--out", write(t / "f", "x")],
    "report: experiment.json corrupt": lambda t: ["report", experiment_dir(t, "{")],
    "report: experiment.json of the wrong shape": lambda t: ["report", experiment_dir(t, '{"experiment": 3}')],
    "report: experiment with --out elsewhere": lambda t: ["report", experiment_dir(t, "{}"), "--out", t / "r"],
    # export
    "export: no such run": lambda t: ["export", t / "none", "--out", t / "b.pt"],
    "export: run without a checkpoint": lambda t: ["export", run_dir(t), "--out", t / "b.pt"],
    "export: not a checkpoint": lambda t: ["export", write(t / "x.pt", b"junk"), "--out", t / "b.pt"],
    "export: a checkpoint of plain numbers": lambda t: ["export", _saved(t / "x.pt", {"a": 1}), "--out", t / "b.pt"],
    "export: a checkpoint with a corrupt config": lambda t: [
        "export", _saved(t / "x.pt", {"model": {}, "config": {"train": {"lr": "fast"}}}), "--out", t / "b.pt"],
    "export: would overwrite a file": lambda t: ["export", run_dir(t, checkpoint=True), "--out",
                                                 write(t / "b.pt", "x")],
    "export: no --out": lambda t: ["export", t],
    "export: --out a .json name (the record's)": lambda t: ["export", run_dir(t, checkpoint=True), "--out",
                                                           t / "b.json"],
    "train: --bootstrap 0": lambda t: train_argv(t / "run", "--bootstrap", 0),
    "train: --init pretrained: an unknown name": lambda t: train_argv(t / "run", "--init", "pretrained:nothing"),
    "train: WORLD_SIZE not a number": lambda t: ("env", {"WORLD_SIZE": "x"}, train_argv(t / "run")),
    "train: WORLD_SIZE=2 without torchrun": lambda t: ("env", {"WORLD_SIZE": "2"}, train_argv(t / "run")),
    "generate: LOCAL_WORLD_SIZE not a number (--workers auto)": lambda t: (
        "env", {"LOCAL_WORLD_SIZE": "x"}, ["generate", t / "ds", "--num", 2, "--size", "16", "--quiet",
                                           "--workers", "auto"]),
    "generate: RANK not a number": lambda t: ("env", {"RANK": "x", "WORLD_SIZE": "2"},
                                              ["generate", t / "ds", "--num", 2, *SMALL]),
    "weights: show an unknown name": lambda t: ["weights", "show", "nothing"],
    "weights: show without a name": lambda t: ["weights", "show"],
    "experiment: --shipped-weights for a sweep": lambda t: ["experiment", "--out", t / "e", "--preset",
                                                            "report-ablations", "--shipped-weights"],
    "warmup: an argument": lambda t: ["warmup", "now"],
    # what is read from files: counts, huge integers, absurd values, endless files
    "generate: a scene file with a 400-digit integer": lambda t: [
        "generate", t / "ds", "--scene", preset(t, '{"height": 1' + "0" * 400 + "}"), "--num", 1, *SMALL],
    "train: a preset with a 400-digit integer": lambda t: train_argv(
        t / "run", "--preset", preset(t, '{"base": "quick", "seed": 1' + "0" * 400 + "}")),
    "experiment: a preset with a 400-digit integer": lambda t: [
        "experiment", "--out", t / "e", "--data", "synthetic", "--preset",
        preset(t, '{"base": "quick-folder", "seeds": 1' + "0" * 400 + "}")],
    "experiment: a preset with a billion seeds": lambda t: [
        "experiment", "--out", t / "e", "--data", "synthetic", "--preset",
        preset(t, '{"base": "quick-folder", "seeds": 1000000000}')],
    "generate: position_x of +-1e308": lambda t: [
        "generate", t / "ds", "--scene", preset(t, '{"sampling": {"position_x": [-1e308, 1e308]}}'), "--num", 1,
        *SMALL],
    "generate: hue_std of 1e308": lambda t: [
        "generate", t / "ds", "--scene", preset(t, '{"classes": [{"name": "a", "hue": 0, "elongation": 0.5, '
                                                   '"noise_scale": 3, "hue_std": 1e308}]}'), "--num", 1, *SMALL],
    "generate: a scene file that is /dev/zero": lambda t: ["generate", t / "ds", "--scene", "/dev/zero", "--num", 1,
                                                          *SMALL],
    "render: a scene file that is /dev/zero": lambda t: ["render", t / "x.png", "--scene", "/dev/zero"],
    "train: a preset file that is /dev/zero": lambda t: train_argv(t / "run", "--preset", "/dev/zero"),
    "export: a checkpoint with a wrongly shaped tensor": lambda t: ["export", _reshaped(t), "--out", t / "b.pt"],
    # view (the server itself is another module's; these are the command's own options)
    "view: port 0": lambda t: ["view", "--port", 0],
    "view: port not a number": lambda t: ["view", "--port", "http"],
    # bench
    "bench: unknown benchmark": lambda t: ["bench", "everything"],
    "bench: train with an unknown model": lambda t: ["bench", "train", "--model", "foo"],
    "bench: noise with 0 points": lambda t: ["bench", "noise", "--points", 0],
    "bench: render with an unknown scene": lambda t: ["bench", "render", "--scene", "nosuchscene", "--scenes", 1],
    "bench: generate with bad workers": lambda t: ["bench", "generate", "--workers", "x", "--num", 1, "--runs", 1],
    "bench: render with too many threads": lambda t: ["bench", "noise", "--threads", CORES + 1, "--points", 10],
    # no command
    "no command": lambda t: [],
    "unknown command": lambda t: ["paint"],
}
if Path("/sys/kernel").is_dir():  # sysfs refuses new files even to root, unlike a chmod-ed directory
    CASES.update({
        "generate: out on a read-only file system": lambda t: ["generate", "/sys/fakeballoons/ds", "--num", 1,
                                                               *SMALL],
        "train: out on a read-only file system": lambda t: ["train", "--data", DATA, "--out", "/sys/fakeballoons/run",
                                                            *TINY],
        "render: out on a read-only file system": lambda t: ["render", "/sys/fakeballoons.png", "--size", 16],
        "experiment: out on a read-only file system": lambda t: ["experiment", "--out", "/sys/fakeballoons-exp",
                                                                 "--preset", "report-ablations", "--quiet"],
        "export: out on a read-only file system": lambda t: ["export", run_dir(t, checkpoint=True), "--out",
                                                             "/sys/fakeballoons.pt"],
    })
if not torch.cuda.is_available():
    CASES.update({
        "train: --device cuda without a GPU": lambda t: train_argv(t / "run", "--device", "cuda"),
        "bench: train --device cuda without a GPU": lambda t: ["bench", "train", "--device", "cuda", "--steps", 1],
        "bench: augment --device cuda without a GPU": lambda t: ["bench", "augment", "--device", "cuda", "--steps", 1],
        "experiment: --device cuda without a GPU": lambda t: ["experiment", "--out", t / "e", "--data", DATA,
                                                              "--device", "cuda"],
    })


def test_the_table_covers_every_subcommand():
    from fakeballoons.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    covered = {name.split(":")[0] for name in CASES}
    assert set(commands) <= covered and len(CASES) >= 60


@pytest.mark.parametrize("name", CASES)
def test_a_mistake_is_one_line_and_exit_2(name, tmp_path, cli, monkeypatch):
    argv = CASES[name](tmp_path)
    if isinstance(argv, tuple):  # ("env", variables, argv): a mistake in the environment
        for key, value in argv[1].items():
            monkeypatch.setenv(key, value)
        argv = argv[2]
    before = tree(tmp_path)
    code, out, err = cli(argv)
    assert code == 2, (code, err)
    assert err.count("\n") == 1 and err.strip() and "Traceback" not in err, err
    assert tree(tmp_path) == before, "something was written"
