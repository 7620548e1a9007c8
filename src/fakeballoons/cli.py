"""The ``fakeballoons`` command: parse, build a config, make one library call.

A mistake the user can make (bad option, bad config, missing or unwritable path) ends with exit
status 2 and one line on stderr; nothing partial is left behind. The library names a bad
configuration value by its field (``train.lr``); where one of the command's flags sets that
field, the message names the flag instead.
"""

from __future__ import annotations

import argparse
import sys

from . import commands, names
from .argtypes import Parser, float_in, int_in, scale_range
from .errors import ConfigError, Stopped, UserError
from .names import DEVICES, NOISE_FUNCTIONS, SCENE_KINDS

# The command line parses with nothing heavier than this module and ``names``: NumPy, torch and
# numba are imported by the command that runs (``commands``), so --help and a usage error are instant.


class _ListPresets(argparse.Action):
    """``--list``: each shipped preset's name and what it is, then exit (as --help does, before the
    required options are asked for)."""

    def __init__(self, option_strings, dest, kind: str, help=None):  # noqa: A002 - argparse API
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)
        self.kind = kind

    def __call__(self, parser, namespace, values, option_string=None):
        rows = names.preset_summaries(self.kind)
        width = max(len(name) for name, _ in rows)
        sys.stdout.write("".join(f"{name:<{width}}  {summary}\n" for name, summary in rows))
        parser.exit(0)


def _add_scene_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scene", metavar="NAME|FILE", help="scene configuration: a preset name or a JSON file "
                                                        "(keys it omits take the defaults: the report's scenes)")
    p.add_argument("--size", type=int_in(1, 8192), help="square image size in pixels (default 512)")
    p.add_argument("--height", type=int_in(1, 8192), help="image height, overrides --size")
    p.add_argument("--width", type=int_in(1, 8192), help="image width, overrides --size")
    p.add_argument("--noise", choices=NOISE_FUNCTIONS, help="noise function (sc: sparse convolution)")


def _add_data_options(p: argparse.ArgumentParser, what: str, required: bool = True) -> None:
    kinds = "; ".join(names.DATA_KINDS.values())
    p.add_argument("--data", required=required, metavar="DATA", help=f"{what}: {kinds}")
    p.add_argument("--scene", metavar="NAME|FILE", help="synthetic DATA: scene configuration (preset or JSON file)")
    p.add_argument("--classes", type=int_in(1, 255), help="folder: DATA: number of classes (with background)")
    p.add_argument("--ignore-index", type=int_in(0, 255), default=255, help="folder: DATA: ignore value")
    p.add_argument("--remap", help="folder: DATA: label values to replace, e.g. 11:255")
    p.add_argument("--holdout", type=float_in(0.0, 0.9), default=0.0, metavar="SHARE",
                   help="photographs: hold out this share of the training split (the same photographs for "
                        "every run) and score on it instead of val, to tune without looking at val")
    p.add_argument("--fraction", type=float_in(0.0, 1.0, low_open=True), default=1.0, metavar="SHARE",
                   help="photographs: train on this share of the (remaining) training split, e.g. 0.1")
    p.add_argument("--device", choices=DEVICES, default="cpu")


def _add_checkpoint_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint-minutes", type=float_in(0.01, 1e6), default=10.0,
                   help="also write last.pt within an epoch every this many minutes (default 10); a stop "
                        "(SIGTERM, SIGINT) writes one at once; rerunning resumes it exactly")
    p.add_argument("--checkpoint-steps", type=int_in(1, 10**9), help="and every this many steps")


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__
    from .names import FORMATS, MODELS, OPTIMIZERS, RESIZES, SCHEDULES, SPLITS, TRANSFER_MODES

    parser = Parser(prog="fakeballoons", description="Procedurally rendered segmentation data.")
    parser.add_argument("--version", action="version", version=f"fakeballoons {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("render", help="render one scene to PNG (image, label map, instance map)",
                       description="Render one scene: a random scene by seed and index, the class "
                                   "prototypes, or a single object.")
    p.add_argument("out", help="output image PNG (RGB)")
    p.add_argument("--label-out", metavar="PNG", help="also write the label map (palette PNG)")
    p.add_argument("--instance-out", metavar="PNG", help="also write the instance map (16-bit PNG)")
    p.add_argument("--scene-out", metavar="JSON", help="also write the sampled scene parameters")
    p.add_argument("--kind", choices=SCENE_KINDS, default="random",
                   help="random scene (default), the class prototypes (Task 3) or one object (Task 1)")
    p.add_argument("--seed", type=int_in(0, 2**63 - 1), default=0, help="dataset seed (default 0)")
    p.add_argument("--index", type=int_in(0, 2**63 - 1), default=0, help="scene index (default 0)")
    p.add_argument("--random-prototypes", action="store_true",
                   help="with --kind prototypes: draw from the class priors instead of the means")
    p.add_argument("--hue", type=float_in(0.0, 360.0), default=150.0, help="single object hue (degrees)")
    p.add_argument("--elongation", type=float_in(0.0, 1.0, exclusive=True), default=0.5,
                   help="single object elongation, between 0 and 1 (0.5: a sphere; at 0 or 1 it is flat)")
    p.add_argument("--noise-scale", type=float_in(1e-6, 1e6), default=25.0, help="single object noise scale")
    _add_scene_options(p)
    p.add_argument("--device", choices=DEVICES, default="cpu")
    p.add_argument("--threads", type=int_in(1, 1024), help="CPU threads (default: all cores)")
    p.set_defaults(func=commands.cmd_render)

    p = sub.add_parser("warmup", help="compile every rendering kernel into numba's cache now (once per install)",
                       description="Compile the CPU rendering kernels (the render kernel, the general one for "
                                   "shapes, ground and shadows, and the noise kernel) into numba's on-disk cache, "
                                   "so that no later command waits for the compiler; kernels already cached load "
                                   "at once.")
    p.set_defaults(func=commands.cmd_warmup)

    p = sub.add_parser("generate", help="generate a dataset directory (PNG + COCO, or Pascal VOC)",
                       description="Generate a dataset: parallel, deterministic and resumable (rerun the "
                                   "same command to complete an interrupted run).")
    p.add_argument("out", help="output directory (new, empty, or a dataset to resume)")
    p.add_argument("--num", type=int_in(1, 10**9), default=1000, help="number of pairs (default 1000)")
    p.add_argument("--seed", type=int_in(0, 2**63 - 1), default=0, help="dataset seed (default 0)")
    p.add_argument("--val-fraction", type=float_in(0.0, 0.99), default=0.1,
                   help="the last fraction of indices forms the val split (default 0.1)")
    p.add_argument("--workers", default="auto", help="worker processes, or 'auto' for all cores")
    p.add_argument("--format", choices=FORMATS, default="png",
                   help="png: images, label and instance maps with COCO annotations; voc: Pascal VOC 2012 layout")
    p.add_argument("--shard", metavar="I/N", help="generate shard I of N (default: torchrun's RANK/WORLD_SIZE)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_scene_options(p)
    p.set_defaults(func=commands.cmd_generate)

    p = sub.add_parser("verify", help="check a generated dataset against its manifest")
    p.add_argument("dataset")
    p.add_argument("--no-decode", action="store_true", help="check existence and hashes only")
    p.set_defaults(func=commands.cmd_verify)

    p = sub.add_parser("preview", help="a sheet of images beside their label maps")
    p.add_argument("dataset", help="generated directory or an original-format folder")
    p.add_argument("--out", required=True, help="output PNG")
    p.add_argument("--split", default="train", choices=SPLITS)
    p.add_argument("--count", type=int_in(1, 1000), default=16)
    p.add_argument("--columns", type=int_in(1, 100), default=4)
    p.add_argument("--thumb", type=int_in(16, 1024), default=192, help="thumbnail edge in pixels (default 192)")
    p.set_defaults(func=commands.cmd_preview)

    p = sub.add_parser("train", help="train and evaluate a segmentation model",
                       description="Train a torchvision segmentation model and evaluate it every epoch. "
                                   "Options override the preset.")
    _add_data_options(p, "training data")
    p.add_argument("--out", required=True, help="run directory (new, or with --resume an existing run)")
    p.add_argument("--preset", help=f"training preset: {', '.join(names.presets('train'))} (default paper: the "
                                    "report's GPU recipe; quick and real are sized for a CPU), or a JSON file")
    p.add_argument("--list", action=_ListPresets, kind="train", help="list the training presets and exit")
    p.add_argument("--model", choices=MODELS)
    p.add_argument("--epochs", type=int_in(0, 100_000), help="epochs (0: evaluate only)")
    p.add_argument("--batch-size", type=int_in(1, 100_000))
    p.add_argument("--lr", type=float_in(1e-12, 1e12))
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--momentum", type=float_in(0.0, 1.0))
    p.add_argument("--weight-decay", type=float_in(0.0, 1.0))
    p.add_argument("--bn-momentum", type=float_in(0.0, 1.0),
                   help="BatchNorm running-statistics momentum (0: the model's own; MobileNetV3 0.01)")
    p.add_argument("--schedule", choices=SCHEDULES)
    p.add_argument("--size", type=int_in(8, 8192), help="train and evaluate at size x size")
    p.add_argument("--amp", action="store_true", default=None, help="bfloat16 autocast")
    p.add_argument("--aux-loss", action="store_true", default=None, help="torchvision's auxiliary head and loss")
    p.add_argument("--hflip", action="store_true", default=None, help="random horizontal flips")
    p.add_argument("--resize", choices=RESIZES,
                   help="square: pairs resized to size x size (default); short-side: aspect kept, random "
                        "scale (--scale) and size x size crop for training, evaluation at the masks' own size")
    p.add_argument("--scale", type=scale_range, metavar="LOW,HIGH",
                   help="short-side: random rescale range, e.g. 0.5,2")
    p.add_argument("--jitter", type=float_in(0.0, 1.0), help="brightness/contrast/saturation jitter")
    p.add_argument("--hue", type=float_in(0.0, 0.5), help="hue jitter in turns")
    p.add_argument("--grayscale", type=float_in(0.0, 1.0), help="probability of a grey training picture")
    p.add_argument("--warmup-epochs", type=float_in(0.0, 100_000.0), help="linear learning-rate warm-up")
    p.add_argument("--workers", type=int_in(0, 256), help="DataLoader workers")
    p.add_argument("--seed", type=int_in(0, 2**31 - 1))
    p.add_argument("--num-train", type=int_in(1, 10**9), help="synthetic data: training pairs")
    p.add_argument("--num-val", type=int_in(1, 10**9), help="synthetic data: validation pairs")
    p.add_argument("--bootstrap", type=int_in(10, 100_000),
                   help="bootstrap resamples for the 95%% intervals (at least 10; default 1000)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    p.add_argument("--init", metavar="CHECKPOINT",
                   help="initialise from a checkpoint, a backbone written by export, pretrained:NAME (weights "
                        "shipped with the package: 'fakeballoons weights' lists them), or imagenet (the ImageNet "
                        "backbone of --model lraspp_efficientnet_lite0, from the imagenet extra); see --transfer")
    p.add_argument("--transfer", choices=TRANSFER_MODES, default="auto",
                   help="with --init: auto = all matching tensors but the final classifier layers "
                        "(default); all-matching = every matching tensor; backbone = backbone only")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_checkpoint_options(p)
    p.set_defaults(func=commands.cmd_train)

    p = sub.add_parser("experiment", help="experiments over scene designs: transfer to a task, or a sweep",
                       description="A transfer experiment pretrains on each arm's scenes and trains the "
                                   "downstream task (--data) from scratch and from each pretrained model; a sweep "
                                   "trains one model per arm on its own scenes and evaluates it on every arm's. "
                                   "Seeds repeat the arms; rerun to resume; --shard spreads the runs.")
    _add_data_options(p, "downstream data (transfer experiments)", required=False)
    p.add_argument("--out", required=True, help="experiment directory")
    p.add_argument("--preset", default="quick-folder",
                   help=f"{', '.join(names.presets('experiments'))} (default quick-folder), or a JSON file")
    p.add_argument("--list", action=_ListPresets, kind="experiments", help="list the experiment presets and exit")
    p.add_argument("--seeds", type=int_in(1, 1000), help="seeds per arm (overrides the preset)")
    p.add_argument("--shard", metavar="I/N",
                   help="run only runs j with j %% N == I (default: torchrun's RANK/WORLD_SIZE)")
    p.add_argument("--transfer", choices=TRANSFER_MODES, help="what pretraining carries over")
    p.add_argument("--shipped-weights", action="store_true",
                   help="take each arm's pretrained model from the weights shipped with the package that its "
                        "pretraining made ('fakeballoons weights'), instead of pretraining: only the downstream "
                        "runs are trained")
    reuse = p.add_mutually_exclusive_group()
    reuse.add_argument("--reuse-pretraining", metavar="EXPDIR",
                       help="use the finished pretraining runs of another experiment directory where they are "
                            "identical to this experiment's (pretrain once, transfer to several datasets)")
    reuse.add_argument("--reuse", metavar="EXPDIR",
                       help="likewise for every run that starts from nothing or from ImageNet's or shipped "
                            "weights: the pretraining runs, the scratch arms and the arms with 'weights' (compare "
                            "pretraining designs against runs trained once)")
    p.add_argument("--quiet", action="store_true")
    _add_checkpoint_options(p)
    p.set_defaults(func=commands.cmd_experiment)

    p = sub.add_parser("view", help="the local web viewer (the report's four pages)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int_in(1, 65535), default=8765)
    p.add_argument("--open", action="store_true", help="open a browser")
    p.set_defaults(func=commands.cmd_view)

    p = sub.add_parser("report", help="tables and curves from run directories, or an experiment's report",
                       description="report RUN [RUN ...] --out DIR: a table of final metrics and curves; "
                                   "report RUN [RUN ...] --csv: the same rows as CSV; report --compare A... --base "
                                   "B...: the difference of two arms' runs; report EXPERIMENT_DIR: the "
                                   "experiment's report.md from its finished runs.")
    p.add_argument("runs", nargs="*", help="run directories, or one experiment directory")
    p.add_argument("--out", help="output directory for report.md and curves.png (run directories)")
    p.add_argument("--csv", action="store_true",
                   help="print CSV to standard output instead: each run's last epoch (the rows of a results "
                        "table), or with --compare the differences")
    p.add_argument("--compare", nargs="+", metavar="RUN", help="runs of one arm, compared with --base's")
    p.add_argument("--base", nargs="+", metavar="RUN",
                   help="with --compare: the runs compared against, paired by position (same seeds, same order): "
                        "mean difference, paired bootstrap over images, t-interval over seeds")
    p.set_defaults(func=commands.cmd_report)

    p = sub.add_parser("export", help="a run's backbone as torchvision's classification model (take-away weights)",
                       description="Write the backbone of a run (its last.pt) or of a checkpoint as the state "
                                   "dict of the torchvision classification model it was built from (resnet50, "
                                   "mobilenet_v3_large, ...), with a JSON record beside it: the scene configuration "
                                   "and recipe that made it, and the line that loads it.")
    p.add_argument("run", help="run directory (its last.pt) or checkpoint file")
    p.add_argument("--out", required=True, help="output .pt file (a .json record goes beside it)")
    p.set_defaults(func=commands.cmd_export)

    p = sub.add_parser("weights", help="pretrained weights shipped with the package: list, show a card, check",
                       description="The weights registry: 'weights' (or 'weights list') lists the entries, "
                                   "'weights show NAME' prints one's card (what it was trained on, how, and what it "
                                   "gained), 'weights check [NAME]' checks the files' SHA-256. Use an entry with "
                                   "'train --init pretrained:NAME' or 'experiment --shipped-weights'.")
    p.add_argument("action", nargs="?", choices=("list", "show", "check"), default="list")
    p.add_argument("name", nargs="?", help="an entry's name (show, check)")
    p.set_defaults(func=commands.cmd_weights)

    p = sub.add_parser("bench", help="throughput benchmarks: render, noise, generate, train, augment or view",
                       description="Throughput benchmarks (medians): render, noise, generate, train, augment or view; "
                                   "'fakeballoons bench render --help' lists its options.", add_help=False)
    p.add_argument("bench_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=commands.cmd_bench)
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
        args = argparse.Namespace(command="bench", func=commands.cmd_bench, bench_args=argv[1:])
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
    except Stopped as exc:
        print(f"fakeballoons {args.command}: {exc}; rerun the same command to continue from it", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
