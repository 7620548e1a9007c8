"""The ``fakeballoons`` command: parse, build a config, make one library call.

A mistake the user can make (bad option, bad config, missing or unwritable path)
ends with exit status 2 and one line on stderr; nothing partial is left behind.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from .config import NOISE_FUNCTIONS, SceneConfig
from .errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake prints one line (no usage block) and exits 2."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _int_in(lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be from {lo} to {hi}, got {value}")
        return value
    return parse


def _float_in(lo: float, hi: float):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be from {lo} to {hi}, got {value}")
        return value
    return parse


def load_config(path: str | None) -> SceneConfig:
    """The config in a JSON file (keys it omits take defaults), or the defaults."""
    if path is None:
        return SceneConfig()
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        return SceneConfig.from_json(text)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None


def _config_from_args(args) -> SceneConfig:
    config = load_config(args.config)
    changes = {}
    if args.size is not None:
        changes.update(height=args.size, width=args.size)
    if args.height is not None:
        changes["height"] = args.height
    if args.width is not None:
        changes["width"] = args.width
    if args.noise is not None:
        changes["noise"] = args.noise
    return config.replace(**changes) if changes else config


def _add_scene_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="scene config JSON (keys it omits take defaults)")
    p.add_argument("--size", type=_int_in(1, 8192), help="square image size in pixels (default 512)")
    p.add_argument("--height", type=_int_in(1, 8192), help="image height, overrides --size")
    p.add_argument("--width", type=_int_in(1, 8192), help="image width, overrides --size")
    p.add_argument("--noise", choices=NOISE_FUNCTIONS, help="noise function: perlin or sc (sparse convolution)")


def cmd_render(args) -> int:
    from .data import formats
    from .render import render, set_threads
    from .scene import prototype_scene, sample_scene, single_object_scene

    config = _config_from_args(args)
    outputs = [args.out] + [p for p in (args.label_out, args.instance_out, args.scene_out) if p]
    if len(set(map(str, outputs))) != len(outputs):
        raise UserError("output paths must differ from each other")
    for path in outputs:
        formats.check_writable(path)
    if args.scene == "random":
        scene = sample_scene(config, args.seed, args.index)
    elif args.scene == "prototypes":
        scene = prototype_scene(config, random=args.random_prototypes, seed=args.seed, index=args.index)
    else:
        scene = single_object_scene(args.hue, args.elongation, args.noise_scale)
    if args.threads:
        set_threads(args.threads)
    sample = render(scene, config, device=args.device)
    files = [(args.out, formats.encode_image(sample.image))]
    if args.label_out:
        palette = formats.label_palette([c.colour for c in config.classes], config.antialias.ignore_index)
        files.append((args.label_out, formats.encode_label(sample.label, palette)))
    if args.instance_out:
        files.append((args.instance_out, formats.encode_instance(sample.instance)))
    if args.scene_out:
        files.append((args.scene_out, (json.dumps(scene.to_dict(), indent=2) + "\n").encode()))
    formats.write_files_atomic(files)
    return 0


def cmd_generate(args) -> int:
    from .data.generate import generate, parse_shard, resolve_workers
    from .data.layout import Recipe

    config = _config_from_args(args)
    recipe = Recipe(config, num=args.num, seed=args.seed, val_fraction=args.val_fraction, format=args.format)
    shard = parse_shard(args.shard)
    workers = resolve_workers(args.workers)
    summary = generate(args.out, recipe, workers=workers, shard=shard, progress=not args.quiet)
    if not args.quiet:
        state = "complete" if summary.finalized else "shard complete; the dataset is assembled when all shards are"
        print(f"{args.out}: {summary.samples_written} pairs written this run, "
              f"{summary.chunks_skipped}/{summary.chunks_total} chunks already done; {state}", file=sys.stderr)
    return 0


def cmd_verify(args) -> int:
    from .data.verify import verify

    report = verify(args.dataset, decode=not args.no_decode)
    if not report.ok:
        more = f" ({len(report.problems) - 1} more problems)" if len(report.problems) > 1 else ""
        raise UserError(f"{args.dataset}: {report.problems[0]}{more}")
    print(f"{args.dataset}: OK, {report.samples} samples verified")
    return 0


def cmd_preview(args) -> int:
    from .data import formats
    from .data.datasets import FakeBalloonsFolder
    from .data.preview import preview_sheet

    formats.check_writable(args.out)
    ds = FakeBalloonsFolder(args.dataset, split=args.split)
    if len(ds) == 0:
        raise UserError(f"{args.dataset}: split {args.split!r} is empty")
    manifest = Path(args.dataset) / "dataset.json"
    if manifest.exists():
        data = formats.read_json(manifest, "dataset manifest")
        colours = [tuple(c["colour"]) for c in data["classes"][1:]]
        ignore = data["ignore_index"]
    else:
        colours, ignore = ds.colours, 255
    pairs = [ds[i] for i in range(min(args.count, len(ds)))]
    formats.write_files_atomic([(args.out, preview_sheet(pairs, colours, ignore, columns=args.columns))])
    return 0


def cmd_train(args) -> int:
    from .train.config import load_preset
    from .train.data import FolderOptions
    from .train.loop import TrainingDiverged, train

    cfg = load_preset(args.preset)
    cfg = cfg.with_changes(model=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                           size=args.size, amp=args.amp or None, workers=args.workers, seed=args.seed,
                           num_train=args.num_train, num_val=args.num_val, optimizer=args.optimizer,
                           momentum=args.momentum, weight_decay=args.weight_decay, schedule=args.schedule,
                           aux_loss=args.aux_loss or None, hflip=args.hflip or None, bootstrap=args.bootstrap,
                           bn_momentum=args.bn_momentum)
    scene = load_config(args.scene_config) if args.scene_config else None
    try:
        train(args.data, args.out, cfg, device=args.device, scene=scene, resume=args.resume, init=args.init,
              transfer=args.transfer, progress=not args.quiet,
              folder=FolderOptions(args.classes, args.ignore_index, args.remap))
    except TrainingDiverged as exc:
        print(f"fakeballoons train: stopped: {exc}; the last good checkpoint (if any) is {args.out}/last.pt",
              file=sys.stderr)
        return 1
    return 0


def _downstream_spec(args) -> str:
    if bool(args.coco) == bool(args.downstream):
        raise UserError("give exactly one of --coco ROOT and --downstream DIR|SPEC")
    if args.coco:
        return f"coco:{args.coco}"
    spec = args.downstream
    if spec.split(":", 1)[0] in ("coco", "voc", "folder", "synthetic"):
        return spec
    if (Path(spec) / "trainannot").is_dir():
        return f"folder:{spec}"
    return spec  # a generated dataset directory


def cmd_experiment(args) -> int:
    from .train.data import FolderOptions
    from .train.experiment import load_experiment_preset, run_experiment
    from .train.loop import TrainingDiverged

    exp = load_experiment_preset(args.preset)
    overrides = {"seeds": args.seeds, "transfer": args.transfer}
    exp = dataclasses.replace(exp, **{k: v for k, v in overrides.items() if v is not None})
    spec = _downstream_spec(args)
    log = (lambda msg: None) if args.quiet else (lambda msg: print(f"experiment: {msg}", file=sys.stderr))
    try:
        path = run_experiment(args.out, spec, exp, device=args.device, progress=not args.quiet, log=log,
                              folder=FolderOptions(args.classes, args.ignore_index, args.remap))
    except TrainingDiverged as exc:
        print(f"fakeballoons experiment: stopped: {exc}; rerun the same command to retry", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def cmd_view(args) -> int:
    from .viewer.app import serve

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"fakeballoons view: warning: serving on {args.host}, reachable from other machines", file=sys.stderr)
    print(f"fakeballoons viewer on http://{args.host}:{args.port}/ (Ctrl-C to stop)", file=sys.stderr)
    serve(args.host, args.port, args.open)
    return 0


def cmd_report(args) -> int:
    from .train.report import write_report

    path = write_report(args.runs, args.out)
    print(f"wrote {path} and {path.parent / 'curves.png'}")
    return 0


def cmd_bench(args) -> int:
    from . import bench

    if args.what == "view":
        results = []
        for noise in args.noise or ("perlin",):
            results += bench.bench_view(clicks=args.scenes, size=args.size, noise=noise)
    elif args.what == "train":
        results = bench.bench_train(model=args.model, size=args.size, batch=args.batch or 16, steps=args.steps,
                                    device=args.device, amp=args.amp)
    elif args.what == "generate":
        results = bench.bench_generate(num=args.num, size=args.size, runs=args.runs,
                                       noises=args.noise or NOISE_FUNCTIONS, workers=args.workers)
    elif args.what == "render":
        results = bench.bench_render(size=args.size, scenes=args.scenes, threads=args.threads,
                                     noises=args.noise or NOISE_FUNCTIONS, device=args.device,
                                     batch=args.batch or 64)
    else:
        results = bench.bench_noise(points=args.points, threads=args.threads)
    bench.print_results(results, as_json=args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="fakeballoons", description="Procedurally rendered segmentation data.")
    parser.add_argument("--version", action="version", version=f"fakeballoons {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("render", help="render one scene to PNG (image, label map, instance map)",
                       description="Render one scene: a random scene by seed and index, the class "
                                   "prototypes, or a single object.")
    p.add_argument("out", help="output image PNG (RGB)")
    p.add_argument("--label-out", metavar="PNG", help="also write the label map (palette PNG)")
    p.add_argument("--instance-out", metavar="PNG", help="also write the instance map (16-bit PNG)")
    p.add_argument("--scene-out", metavar="JSON", help="also write the sampled scene parameters")
    p.add_argument("--scene", choices=("random", "prototypes", "single"), default="random",
                   help="random scene (default), the class prototypes (Task 3) or one object (Task 1)")
    p.add_argument("--seed", type=_int_in(0, 2**63 - 1), default=0, help="dataset seed (default 0)")
    p.add_argument("--index", type=_int_in(0, 2**63 - 1), default=0, help="scene index (default 0)")
    p.add_argument("--random-prototypes", action="store_true",
                   help="with --scene prototypes: draw from the class priors instead of the means")
    p.add_argument("--hue", type=_float_in(0.0, 360.0), default=150.0, help="single object hue (degrees)")
    p.add_argument("--elongation", type=_float_in(0.0, 1.0), default=0.5, help="single object elongation")
    p.add_argument("--noise-scale", type=_float_in(1e-6, 1e6), default=25.0, help="single object noise scale")
    _add_scene_options(p)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=_int_in(1, 1024), help="CPU threads (default: all cores)")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("generate", help="generate a dataset directory (PNG + COCO, or Pascal VOC)",
                       description="Generate a dataset: parallel, deterministic and resumable (rerun the "
                                   "same command to complete an interrupted run).")
    p.add_argument("out", help="output directory (new, empty, or a dataset to resume)")
    p.add_argument("--num", type=_int_in(1, 10**9), default=1000, help="number of pairs (default 1000)")
    p.add_argument("--seed", type=_int_in(0, 2**63 - 1), default=0, help="dataset seed (default 0)")
    p.add_argument("--val-fraction", type=_float_in(0.0, 0.99), default=0.1,
                   help="the last fraction of indices forms the val split (default 0.1)")
    p.add_argument("--workers", default="auto", help="worker processes, or 'auto' for all cores")
    p.add_argument("--format", choices=("png", "voc"), default="png",
                   help="png: SPEC layout with COCO annotations; voc: Pascal VOC 2012 layout")
    p.add_argument("--shard", metavar="I/N", help="generate shard I of N (default: torchrun's RANK/WORLD_SIZE)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_scene_options(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("verify", help="check a generated dataset against its manifest")
    p.add_argument("dataset")
    p.add_argument("--no-decode", action="store_true", help="check existence and hashes only")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("preview", help="a sheet of images beside their label maps")
    p.add_argument("dataset", help="generated directory or an original-format folder")
    p.add_argument("--out", required=True, help="output PNG")
    p.add_argument("--split", default="train", choices=("train", "val", "all"))
    p.add_argument("--count", type=_int_in(1, 1000), default=16)
    p.add_argument("--columns", type=_int_in(1, 100), default=4)
    p.set_defaults(func=cmd_preview)

    p = sub.add_parser("train", help="train and evaluate a segmentation model",
                       description="Train a torchvision segmentation model and evaluate it every epoch. "
                                   "Options override the preset.")
    p.add_argument("--data", required=True,
                   help="a dataset directory, synthetic:perlin|sc (rendered on the fly), coco:ROOT, voc:ROOT "
                        "or folder:ROOT (ROOT/{train,trainannot,val,valannot})")
    p.add_argument("--classes", type=_int_in(1, 255), help="folder: data: number of classes (with background)")
    p.add_argument("--ignore-index", type=_int_in(0, 255), default=255, help="folder: data: ignore value")
    p.add_argument("--remap", help="folder: data: label values to replace, e.g. 11:255")
    p.add_argument("--out", required=True, help="run directory (new, or with --resume an existing run)")
    p.add_argument("--preset", default="paper", help="paper (default), quick, or a JSON file")
    p.add_argument("--model", help="fcn_resnet50|fcn_resnet101|deeplabv3_resnet50|deeplabv3_resnet101|"
                                   "deeplabv3_mobilenet_v3_large|lraspp_mobilenet_v3_large")
    p.add_argument("--epochs", type=_int_in(0, 100_000), help="epochs (0: evaluate only)")
    p.add_argument("--batch-size", type=_int_in(1, 100_000))
    p.add_argument("--lr", type=_float_in(1e-12, 1e12))
    p.add_argument("--optimizer", choices=("sgd", "adamw"))
    p.add_argument("--momentum", type=_float_in(0.0, 1.0))
    p.add_argument("--weight-decay", type=_float_in(0.0, 1.0))
    p.add_argument("--bn-momentum", type=_float_in(0.0, 1.0),
                   help="BatchNorm running-statistics momentum (0: the model's own; MobileNetV3 0.01)")
    p.add_argument("--schedule", choices=("none", "poly"))
    p.add_argument("--size", type=_int_in(8, 8192), help="train and evaluate at size x size")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    p.add_argument("--aux-loss", action="store_true", help="torchvision's auxiliary head and loss")
    p.add_argument("--hflip", action="store_true", help="random horizontal flips")
    p.add_argument("--workers", type=_int_in(0, 256), help="DataLoader workers")
    p.add_argument("--seed", type=_int_in(0, 2**31 - 1))
    p.add_argument("--num-train", type=_int_in(1, 10**9), help="synthetic data: training pairs")
    p.add_argument("--num-val", type=_int_in(1, 10**9), help="synthetic data: validation pairs")
    p.add_argument("--bootstrap", type=_int_in(0, 100_000), help="bootstrap resamples for intervals")
    p.add_argument("--scene-config", metavar="FILE", help="scene config JSON for synthetic data")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    p.add_argument("--init", metavar="CHECKPOINT", help="initialise from a checkpoint (see --transfer)")
    p.add_argument("--transfer", choices=("auto", "all-matching", "backbone"), default="auto",
                   help="with --init: auto = all matching tensors but the final classifier layers "
                        "(default); all-matching = every matching tensor; backbone = backbone only")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("experiment", help="pretrain on synthetic data, transfer to a downstream task, compare",
                       description="Pretrain on Perlin and sparse-convolution scenes, train the downstream "
                                   "task from scratch and from each pretrained model over several seeds, "
                                   "and report each arm against the baseline. Rerun to resume.")
    p.add_argument("--out", required=True, help="experiment directory")
    p.add_argument("--preset", default="quick-folder", help="paper-coco, quick-folder (default) or a JSON file")
    p.add_argument("--coco", metavar="ROOT", help="downstream: COCO 2017 as VOC-20")
    p.add_argument("--downstream", metavar="DIR|SPEC",
                   help="downstream: an image/mask folder (DIR/{train,trainannot,val,valannot}), a generated "
                        "dataset, or a DATA spec (voc:ROOT, ...)")
    p.add_argument("--classes", type=_int_in(1, 255), help="folder: number of classes (with background)")
    p.add_argument("--ignore-index", type=_int_in(0, 255), default=255, help="folder: ignore value")
    p.add_argument("--remap", help="folder: label values to replace, e.g. 11:255")
    p.add_argument("--seeds", type=_int_in(1, 1000), help="seeds per downstream arm (overrides the preset)")
    p.add_argument("--transfer", choices=("auto", "all-matching", "backbone"), help="what pretraining carries over")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_experiment)

    p = sub.add_parser("view", help="the local web viewer (the report's four pages)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_int_in(1, 65535), default=8765)
    p.add_argument("--open", action="store_true", help="open a browser")
    p.set_defaults(func=cmd_view)

    p = sub.add_parser("report", help="curves and a table of final metrics from run directories")
    p.add_argument("runs", nargs="+", help="run directories")
    p.add_argument("--out", required=True, help="output directory for report.md and curves.png")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("bench", help="throughput benchmarks (medians)",
                       description="Measure rendering or generation throughput; prints medians.")
    p.add_argument("what", choices=("render", "noise", "generate", "train", "view"))
    p.add_argument("--model", default="lraspp_mobilenet_v3_large", help="model (train)")
    p.add_argument("--steps", type=_int_in(1, 10_000), default=10, help="timed steps (train)")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast (train)")
    p.add_argument("--num", type=_int_in(1, 10**7), default=256, help="pairs per run (generate)")
    p.add_argument("--runs", type=_int_in(1, 100), default=3, help="runs to take the median of (generate)")
    p.add_argument("--workers", default="auto", help="worker processes (generate)")
    p.add_argument("--size", type=_int_in(1, 8192), default=512)
    p.add_argument("--scenes", type=_int_in(1, 100_000), default=30, help="scenes to time (render) or clicks (view)")
    p.add_argument("--points", type=_int_in(1, 10**8), default=262_144, help="points to time (noise)")
    p.add_argument("--threads", type=_int_in(1, 1024), default=1, help="CPU threads (default 1)")
    p.add_argument("--noise", choices=NOISE_FUNCTIONS, action="append", help="repeatable; default both")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch", type=_int_in(1, 100_000), default=None,
                   help="scenes per launch (render on cuda, default 64) or per step (train, default 16)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"fakeballoons {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
