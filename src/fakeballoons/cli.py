"""The ``fakeballoons`` command: parse, build a config, make one library call.

A mistake the user can make (bad option, bad config, missing or unwritable path) ends with exit
status 2 and one line on stderr; nothing partial is left behind. The library names a bad
configuration value by its field (``train.lr``); where one of the command's flags sets that
field, the message names the flag instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import NOISE_FUNCTIONS, SceneConfig
from .errors import ConfigError, UserError
from .render import DEVICES
from .scene import SCENE_KINDS


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


def _scale_range(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        low, high = (float(x) for x in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (two numbers), got {text!r}") from None
    if not 0 < low <= high <= 8:
        raise argparse.ArgumentTypeError(f"must be 0 < LOW <= HIGH <= 8, got {text!r}")
    return low, high


def _float_in(lo: float, hi: float, *, exclusive: bool = False):
    """A number in [lo, hi], or with ``exclusive`` in (lo, hi)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if exclusive and not lo < value < hi:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi} (exclusive), got {value}")
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be from {lo} to {hi}, got {value}")
        return value
    return parse


def load_scene(name: str | None) -> SceneConfig:
    """A scene configuration: a preset name, a JSON file (keys it omits take defaults), or the defaults."""
    if name is None:
        return SceneConfig()
    from .codec import load_preset

    return load_preset(SceneConfig, name, "scene configuration")


def _scene_from_args(args) -> SceneConfig:
    config = load_scene(args.scene)
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
    p.add_argument("--scene", metavar="NAME|FILE", help="scene configuration: a preset name or a JSON file "
                                                        "(keys it omits take the defaults: the report's scenes)")
    p.add_argument("--size", type=_int_in(1, 8192), help="square image size in pixels (default 512)")
    p.add_argument("--height", type=_int_in(1, 8192), help="image height, overrides --size")
    p.add_argument("--width", type=_int_in(1, 8192), help="image width, overrides --size")
    p.add_argument("--noise", choices=NOISE_FUNCTIONS, help="noise function (sc: sparse convolution)")


def cmd_render(args) -> int:
    from .data import formats
    from .render import render, set_threads
    from .scene import prototype_scene, sample_scene, single_object_scene

    config = _scene_from_args(args)
    outputs = [args.out] + [p for p in (args.label_out, args.instance_out, args.scene_out) if p]
    if len({str(Path(p).resolve()) for p in outputs}) != len(outputs):
        raise UserError("output paths must differ from each other")
    for path in outputs:
        formats.check_writable(path)
    if args.kind == "random":
        scene = sample_scene(config, args.seed, args.index)
    elif args.kind == "prototypes":
        scene = prototype_scene(config, random=args.random_prototypes, seed=args.seed, index=args.index)
    else:
        scene = single_object_scene(args.hue, args.elongation, args.noise_scale)
    if args.threads:
        set_threads(args.threads)
    sample = render(scene, config, device=args.device)
    encoded = formats.encode_sample(sample, config)
    files = [(args.out, encoded["image"])]
    if args.label_out:
        files.append((args.label_out, encoded["label"]))
    if args.instance_out:
        files.append((args.instance_out, encoded["instance"]))
    if args.scene_out:
        files.append((args.scene_out, formats.json_bytes(scene.to_dict(), indent=2)))
    formats.write_files_atomic(files)
    return 0


def cmd_generate(args) -> int:
    from .data.generate import generate, parse_shard, resolve_workers
    from .data.recipe import Recipe

    recipe = Recipe(_scene_from_args(args), num=args.num, seed=args.seed, val_fraction=args.val_fraction,
                    format=args.format)
    summary = generate(args.out, recipe, workers=resolve_workers(args.workers), shard=parse_shard(args.shard),
                       progress=not args.quiet)
    if not args.quiet:
        state = "complete" if summary.finalized else "shard complete; the dataset is assembled when all shards are"
        print(f"{args.out}: {summary.samples_written} pairs written this run, "
              f"{summary.chunks_skipped}/{summary.chunks_total} chunks already done; {state}", file=sys.stderr)
    return 0


def cmd_verify(args) -> int:
    from .data.verify import verify

    report = verify(args.dataset, decode=not args.no_decode)
    if not report.ok:
        n, shown = len(report.problems), report.problems[:3]
        more = f"; ... ({n - len(shown)} more)" if n > len(shown) else ""
        raise UserError(f"{args.dataset}: {n} problem{'s' if n > 1 else ''}: {'; '.join(shown)}{more}")
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
    count = min(args.count, len(ds))
    pairs = (ds[i] for i in range(count))  # streamed: one full-size pair in memory at a time
    formats.write_atomic(args.out, preview_sheet(pairs, ds.config, columns=args.columns, thumb=args.thumb,
                                                 count=count))
    return 0


def _data_config(args):
    from .data.downstream import parse_remap
    from .data.sources import DataConfig

    scene = load_scene(args.scene) if args.scene else None
    return DataConfig(args.data, scene=scene, classes=args.classes, ignore_index=args.ignore_index,
                      remap=tuple(parse_remap(args.remap).items()))


def cmd_train(args) -> int:
    from .train.loop import TrainingDiverged, train
    from .train.run import RunConfig, load_train_preset

    if args.preset is None and args.device == "cpu":
        print("fakeballoons train: warning: the default preset 'paper' is the report's GPU recipe (FCN-ResNet50 "
              "at 520x520), minutes per batch on a CPU; for a CPU use --preset quick", file=sys.stderr)
    cfg = load_train_preset(args.preset or "paper").with_changes(**{k: getattr(args, k) for k in _TRAIN_FLAGS})
    run = RunConfig(_data_config(args), cfg, init=args.init, transfer=args.transfer, device=args.device)
    try:
        train(run, args.out, resume=args.resume, progress=not args.quiet)
    except TrainingDiverged as exc:
        print(f"fakeballoons train: stopped: {exc}; the last good checkpoint (if any) is {args.out}/last.pt",
              file=sys.stderr)
        return 1
    return 0


def cmd_experiment(args) -> int:
    import dataclasses

    from .data.generate import parse_shard
    from .train.experiment import ExperimentRun, load_experiment_preset, run_experiment
    from .train.loop import TrainingDiverged

    exp = load_experiment_preset(args.preset)
    overrides = {"seeds": args.seeds, "transfer": args.transfer}
    exp = dataclasses.replace(exp, **{k: v for k, v in overrides.items() if v is not None})
    record = ExperimentRun(exp, _data_config(args) if args.data else None, device=args.device)
    log = (lambda msg: None) if args.quiet else (lambda msg: print(f"experiment: {msg}", file=sys.stderr))
    try:
        path = run_experiment(args.out, record, shard=parse_shard(args.shard), progress=not args.quiet, log=log,
                              reuse=args.reuse_pretraining)
    except TrainingDiverged as exc:
        print(f"fakeballoons experiment: stopped: {exc}; rerun the same command to retry", file=sys.stderr)
        return 1
    print(f"wrote {path}" if path else f"{args.out}: this shard's runs are done; the report is written when "
                                       f"all are (or by 'fakeballoons report {args.out}')")
    return 0


def cmd_view(args) -> int:
    from .viewer.app import serve

    serve(args.host, args.port, args.open)  # binds the port first: a busy port is one line, exit 2
    return 0


def cmd_report(args) -> int:
    if len(args.runs) == 1 and (Path(args.runs[0]) / "experiment.json").exists():
        from .train.experiment import read_experiment
        from .train.experiment_report import write_experiment_report

        if args.out and Path(args.out).resolve() != Path(args.runs[0]).resolve():
            raise UserError("an experiment's report is written into its own directory; leave out --out")
        path = write_experiment_report(args.runs[0], read_experiment(args.runs[0]))
        print(f"wrote {path}")
        return 0
    from .train.report import write_report

    if not args.out:
        raise UserError("--out DIR is needed for a report of run directories")
    path = write_report(args.runs, args.out)
    print(f"wrote {path} and {path.parent / 'curves.png'}")
    return 0


def cmd_export(args) -> int:
    from .train.export import export_backbone

    record = export_backbone(args.run, args.out)
    print(f"wrote {args.out} ({record['tensors']} tensors of torchvision's {record['torchvision_model']}) and "
          f"{Path(args.out).with_suffix('.json')}; load it with:\n  {record['load']}")
    return 0


def cmd_bench(args) -> int:
    """Hand over to the throughput scripts in ``benchmarks/`` of the source checkout (which parse
    their own options, ``--help`` included)."""
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench.py"
    if not script.is_file():
        raise UserError("fakeballoons bench runs benchmarks/bench.py of a source checkout, which this "
                        "installation lacks; install from a clone of the repository (pip install -e .)")
    spec = importlib.util.spec_from_file_location("fakeballoons_benchmarks", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(args.bench_args)


#: Flags of ``train`` that set a TrainConfig field of the same name.
_TRAIN_FLAGS = ("model", "epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "bn_momentum",
                "schedule", "size", "amp", "aux_loss", "hflip", "workers", "seed", "num_train", "num_val",
                "bootstrap", "resize", "scale", "jitter", "hue", "grayscale", "warmup_epochs")


def _add_data_options(p: argparse.ArgumentParser, what: str, required: bool = True) -> None:
    from .data.sources import SOURCES

    kinds = "; ".join(f"{s.help}" for s in SOURCES.values())
    p.add_argument("--data", required=required, metavar="DATA", help=f"{what}: {kinds}")
    p.add_argument("--scene", metavar="NAME|FILE", help="synthetic DATA: scene configuration (preset or JSON file)")
    p.add_argument("--classes", type=_int_in(1, 255), help="folder: DATA: number of classes (with background)")
    p.add_argument("--ignore-index", type=_int_in(0, 255), default=255, help="folder: DATA: ignore value")
    p.add_argument("--remap", help="folder: DATA: label values to replace, e.g. 11:255")
    p.add_argument("--device", choices=DEVICES, default="cpu")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .data.recipe import FORMATS, SPLITS
    from .data.transforms import RESIZES
    from .train.models import MODELS
    from .train.run import OPTIMIZERS, SCHEDULES
    from .train.transfer import TRANSFER_MODES

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
    p.add_argument("--kind", choices=SCENE_KINDS, default="random",
                   help="random scene (default), the class prototypes (Task 3) or one object (Task 1)")
    p.add_argument("--seed", type=_int_in(0, 2**63 - 1), default=0, help="dataset seed (default 0)")
    p.add_argument("--index", type=_int_in(0, 2**63 - 1), default=0, help="scene index (default 0)")
    p.add_argument("--random-prototypes", action="store_true",
                   help="with --kind prototypes: draw from the class priors instead of the means")
    p.add_argument("--hue", type=_float_in(0.0, 360.0), default=150.0, help="single object hue (degrees)")
    p.add_argument("--elongation", type=_float_in(0.0, 1.0, exclusive=True), default=0.5,
                   help="single object elongation, between 0 and 1 (0.5: a sphere; at 0 or 1 it is flat)")
    p.add_argument("--noise-scale", type=_float_in(1e-6, 1e6), default=25.0, help="single object noise scale")
    _add_scene_options(p)
    p.add_argument("--device", choices=DEVICES, default="cpu")
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
    p.add_argument("--format", choices=FORMATS, default="png",
                   help="png: images, label and instance maps with COCO annotations; voc: Pascal VOC 2012 layout")
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
    p.add_argument("--split", default="train", choices=SPLITS)
    p.add_argument("--count", type=_int_in(1, 1000), default=16)
    p.add_argument("--columns", type=_int_in(1, 100), default=4)
    p.add_argument("--thumb", type=_int_in(16, 1024), default=192, help="thumbnail edge in pixels (default 192)")
    p.set_defaults(func=cmd_preview)

    p = sub.add_parser("train", help="train and evaluate a segmentation model",
                       description="Train a torchvision segmentation model and evaluate it every epoch. "
                                   "Options override the preset.")
    _add_data_options(p, "training data")
    p.add_argument("--out", required=True, help="run directory (new, or with --resume an existing run)")
    p.add_argument("--preset", help="training preset: paper (default: the report's GPU recipe), quick (sized for "
                                    "a CPU), or a JSON file")
    p.add_argument("--model", choices=MODELS)
    p.add_argument("--epochs", type=_int_in(0, 100_000), help="epochs (0: evaluate only)")
    p.add_argument("--batch-size", type=_int_in(1, 100_000))
    p.add_argument("--lr", type=_float_in(1e-12, 1e12))
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--momentum", type=_float_in(0.0, 1.0))
    p.add_argument("--weight-decay", type=_float_in(0.0, 1.0))
    p.add_argument("--bn-momentum", type=_float_in(0.0, 1.0),
                   help="BatchNorm running-statistics momentum (0: the model's own; MobileNetV3 0.01)")
    p.add_argument("--schedule", choices=SCHEDULES)
    p.add_argument("--size", type=_int_in(8, 8192), help="train and evaluate at size x size")
    p.add_argument("--amp", action="store_true", default=None, help="bfloat16 autocast")
    p.add_argument("--aux-loss", action="store_true", default=None, help="torchvision's auxiliary head and loss")
    p.add_argument("--hflip", action="store_true", default=None, help="random horizontal flips")
    p.add_argument("--resize", choices=RESIZES,
                   help="square: pairs resized to size x size (default); short-side: aspect kept, random "
                        "scale (--scale) and size x size crop for training, evaluation at the masks' own size")
    p.add_argument("--scale", type=_scale_range, metavar="LOW,HIGH",
                   help="short-side: random rescale range, e.g. 0.5,2")
    p.add_argument("--jitter", type=_float_in(0.0, 1.0), help="brightness/contrast/saturation jitter")
    p.add_argument("--hue", type=_float_in(0.0, 0.5), help="hue jitter in turns")
    p.add_argument("--grayscale", type=_float_in(0.0, 1.0), help="probability of a grey training picture")
    p.add_argument("--warmup-epochs", type=_float_in(0.0, 100_000.0), help="linear learning-rate warm-up")
    p.add_argument("--workers", type=_int_in(0, 256), help="DataLoader workers")
    p.add_argument("--seed", type=_int_in(0, 2**31 - 1))
    p.add_argument("--num-train", type=_int_in(1, 10**9), help="synthetic data: training pairs")
    p.add_argument("--num-val", type=_int_in(1, 10**9), help="synthetic data: validation pairs")
    p.add_argument("--bootstrap", type=_int_in(0, 100_000), help="bootstrap resamples for intervals")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    p.add_argument("--init", metavar="CHECKPOINT", help="initialise from a checkpoint (see --transfer)")
    p.add_argument("--transfer", choices=TRANSFER_MODES, default="auto",
                   help="with --init: auto = all matching tensors but the final classifier layers "
                        "(default); all-matching = every matching tensor; backbone = backbone only")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("experiment", help="experiments over scene designs: transfer to a task, or a sweep",
                       description="A transfer experiment pretrains on each arm's scenes and trains the "
                                   "downstream task (--data) from scratch and from each pretrained model; a sweep "
                                   "trains one model per arm on its own scenes and evaluates it on every arm's. "
                                   "Seeds repeat the arms; rerun to resume; --shard spreads the runs.")
    _add_data_options(p, "downstream data (transfer experiments)", required=False)
    p.add_argument("--out", required=True, help="experiment directory")
    p.add_argument("--preset", default="quick-folder",
                   help="quick-folder (default), transfer, transfer-gpu, paper-coco, report-ablations (a sweep) "
                        "or a JSON file")
    p.add_argument("--seeds", type=_int_in(1, 1000), help="seeds per arm (overrides the preset)")
    p.add_argument("--shard", metavar="I/N",
                   help="run only runs j with j %% N == I (default: torchrun's RANK/WORLD_SIZE)")
    p.add_argument("--transfer", choices=TRANSFER_MODES, help="what pretraining carries over")
    p.add_argument("--reuse-pretraining", metavar="EXPDIR",
                   help="use the finished pretraining runs of another experiment directory where they are "
                        "identical to this experiment's (pretrain once, transfer to several datasets)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_experiment)

    p = sub.add_parser("view", help="the local web viewer (the report's four pages)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_int_in(1, 65535), default=8765)
    p.add_argument("--open", action="store_true", help="open a browser")
    p.set_defaults(func=cmd_view)

    p = sub.add_parser("report", help="tables and curves from run directories, or an experiment's report",
                       description="report RUN [RUN ...] --out DIR: a table of final metrics and curves; "
                                   "report EXPERIMENT_DIR: the experiment's report.md from its finished runs.")
    p.add_argument("runs", nargs="+", help="run directories, or one experiment directory")
    p.add_argument("--out", help="output directory for report.md and curves.png (run directories)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export", help="a run's backbone as torchvision's classification model (take-away weights)",
                       description="Write the backbone of a run (its last.pt) or of a checkpoint as the state "
                                   "dict of the torchvision classification model it was built from (resnet50, "
                                   "mobilenet_v3_large, ...), with a JSON record beside it: the scene configuration "
                                   "and recipe that made it, and the line that loads it.")
    p.add_argument("run", help="run directory (its last.pt) or checkpoint file")
    p.add_argument("--out", required=True, help="output .pt file (a .json record goes beside it)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("bench", help="throughput benchmarks (benchmarks/bench.py of a source checkout)",
                       description="Run benchmarks/bench.py: render, noise, generate, train or view; "
                                   "'fakeballoons bench render --help' lists its options.", add_help=False)
    p.add_argument("bench_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)
    return parser


def _flag_for(parser: argparse.ArgumentParser, command: str, field: str | None) -> str | None:
    """The flag of ``command`` that sets configuration field ``field`` (``train.lr`` -> ``--lr``)."""
    if not field:
        return None
    name = field.split(".", 1)[1] if field.split(".", 1)[0] in ("train", "data", "recipe") else field
    name = {"source": "data"}.get(name, name)  # DataConfig.source is set by --data
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    for action in sub._actions:
        if action.dest == name and action.option_strings:
            return action.option_strings[0]
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if argv[:1] == ["bench"]:  # everything after "bench" is the benchmark script's own
        args = argparse.Namespace(command="bench", func=cmd_bench, bench_args=argv[1:])
    else:
        args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        flag = None if exc.unknown else _flag_for(parser, args.command, exc.field)
        text = f"{flag}: {exc.problem}" if flag else str(exc)
        print(f"fakeballoons {args.command}: error: {text}", file=sys.stderr)
        return 2
    except UserError as exc:
        print(f"fakeballoons {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
