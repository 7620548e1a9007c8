"""The subcommands of the ``fakeballoons`` command: each builds a configuration from its parsed
options and makes one library call (the parser and the error handling are in :mod:`.cli`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UserError

if TYPE_CHECKING:
    from .config import SceneConfig


def _scene_from_args(args) -> SceneConfig:
    from .config import load_scene

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


def cmd_warmup(args) -> int:
    from .render import warm_up

    for what, seconds in warm_up().items():
        print(f"{what} kernel: ready in {seconds:.1f} s")
    print("kernels are in numba's cache: later processes load them at once")
    return 0


def cmd_generate(args) -> int:
    from .data.generate import generate, keep_freed_memory, parse_shard, resolve_workers
    from .data.recipe import Recipe

    keep_freed_memory()  # this process renders too with --workers 1, and forked workers inherit it

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
    from .config import load_scene
    from .data.downstream import parse_remap
    from .data.sources import DataConfig

    scene = load_scene(args.scene) if args.scene else None
    return DataConfig(absolute_source(args.data), scene=scene, classes=args.classes, ignore_index=args.ignore_index,
                      remap=tuple(parse_remap(args.remap).items()), holdout=args.holdout, fraction=args.fraction)


def absolute_source(source: str) -> str:
    """DATA with a relative path made absolute from the current directory: a run records the
    directory its data was when it started, so that a rerun from elsewhere cannot read other data."""
    import os

    from .data.sources import split_source

    kind, arg = split_source(source)
    if kind == "synthetic" or not arg or os.path.isabs(arg):
        return source
    path = os.path.abspath(arg)
    return path if kind == "directory" else f"{kind}:{path}"


def _checkpoints(args):
    from .train.loop import Checkpoints

    return Checkpoints(minutes=args.checkpoint_minutes, steps=args.checkpoint_steps)


def cmd_train(args) -> int:
    from .train.loop import TrainingDiverged, train
    from .train.run import RunConfig, load_train_preset

    if args.preset is None and args.device == "cpu":
        print("fakeballoons train: warning: the default preset 'paper' is the report's GPU recipe (FCN-ResNet50 "
              "at 520x520), minutes per batch on a CPU; for a CPU use --preset quick", file=sys.stderr)
    cfg = load_train_preset(args.preset or "paper").with_changes(**{k: getattr(args, k) for k in _TRAIN_FLAGS})
    if args.init is not None and not args.init.strip():
        raise UserError("--init: empty path; give the checkpoint to start from, or leave --init out to start "
                        "from random weights")
    if args.init is None and args.transfer != "auto":
        print(f"fakeballoons train: warning: --transfer {args.transfer} does nothing without --init (the run starts "
              f"from random weights)", file=sys.stderr)
    run = RunConfig(_data_config(args), cfg, init=args.init, transfer=args.transfer, device=args.device)
    try:
        train(run, args.out, resume=args.resume, progress=not args.quiet, checkpoints=_checkpoints(args))
    except TrainingDiverged as exc:
        print(f"fakeballoons train: stopped: {exc}; the last good checkpoint (if any) is {args.out}/last.pt",
              file=sys.stderr)
        return 1
    return 0


def cmd_experiment(args) -> int:
    import dataclasses

    from .data.generate import parse_shard
    from .train.experiment import (
        ExperimentRun,
        finished,
        load_experiment_preset,
        plan,
        run_experiment,
        with_shipped_weights,
    )
    from .train.loop import TrainingDiverged

    exp = load_experiment_preset(args.preset)
    overrides = {"seeds": args.seeds, "transfer": args.transfer}
    exp = dataclasses.replace(exp, **{k: v for k, v in overrides.items() if v is not None})
    if args.shipped_weights:
        if exp.kind != "transfer":
            raise UserError("--shipped-weights: only a transfer experiment pretrains; a sweep has nothing to replace")
        exp = with_shipped_weights(exp)
    record = ExperimentRun(exp, _data_config(args) if args.data else None, device=args.device)
    log = (lambda msg: None) if args.quiet else (lambda msg: print(f"experiment: {msg}", file=sys.stderr))
    try:
        complete = run_experiment(args.out, record, shard=parse_shard(args.shard), progress=not args.quiet, log=log,
                                  reuse=args.reuse or args.reuse_pretraining, reuse_scratch=args.reuse is not None,
                                  checkpoints=_checkpoints(args))
    except TrainingDiverged as exc:
        print(f"fakeballoons experiment: stopped: {exc}; rerun the same command to retry", file=sys.stderr)
        return 1
    if complete:
        from .train.experiment_report import write_experiment_report

        print(f"wrote {write_experiment_report(args.out, record)}")
    else:  # say how far the whole experiment is: the rest is other shards' or waits for their models
        jobs = plan(record)
        try:
            done = f"{sum(finished(Path(args.out) / j.name, j.run.train.epochs) for j in jobs)} of {len(jobs)}"
        except (UserError, OSError):  # another shard's checkpoint being written, or unreadable: that shard's to say
            done = "not all"
        print(f"{args.out}: {done} runs finished (the others are other shards' or wait for a model not trained "
              f"yet); the report is written when all are (or by 'fakeballoons report {args.out}')")
    return 0


def cmd_view(args) -> int:
    from .viewer.app import serve

    serve(args.host, args.port, args.open)  # binds the port first: a busy port is one line, exit 2
    return 0


def cmd_report(args) -> int:
    if args.compare or args.base:
        from .train.report import compare

        if not (args.compare and args.base) or args.runs or args.out:
            raise UserError("--compare A... --base B... compares two arms' runs; give both, and no other runs "
                            "or --out")
        print(compare(args.compare, args.base, as_csv=args.csv), end="")
        return 0
    if not args.runs:
        raise UserError("give run directories (or one experiment directory), or --compare A... --base B...")
    if args.csv:
        from .train.report import csv_rows

        if args.out:
            raise UserError("--csv prints to standard output; leave out --out (or redirect: > table.csv)")
        print(csv_rows(args.runs), end="")
        return 0
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


def cmd_weights(args) -> int:
    from . import weights

    if args.action == "list":
        if args.name:
            raise UserError(f"'weights list' takes no name (got {args.name!r}); 'weights show NAME' prints a card")
        cards = weights.registry()
        if not cards:
            print("no weights are registered in this installation")
            return 0
        rows = [(c["name"], c["architecture"], f"{c['input_size']} px, {c['bytes'] / 1e6:.1f} MB", c["summary"])
                for c in cards.values()]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for r in rows:
            print("  ".join(x.ljust(w) for x, w in zip(r, widths)) + "  " + r[3])
        return 0
    if args.action == "show":
        if not args.name:
            raise UserError("'weights show' needs a NAME ('fakeballoons weights' lists them)")
        print(weights.describe(weights.card(args.name)))
        return 0
    if not args.name and not weights.names():  # check, with nothing to check
        print("no weights are registered in this installation: nothing to check")
        return 0
    for name in ([args.name] if args.name else weights.names()):  # check
        print(f"{name}: {weights.path(name)} OK (sha256 {weights.card(name)['sha256'][:16]}...)")
    return 0


def cmd_export(args) -> int:
    from .train.export import export_backbone

    record = export_backbone(args.run, args.out)
    print(f"wrote {args.out} ({record['tensors']} tensors of {record['torchvision_model']}) and "
          f"{Path(args.out).with_suffix('.json')}; load it with:\n  {record['load']}")
    return 0


def cmd_bench(args) -> int:
    """Hand over to the throughput benchmarks (:mod:`fakeballoons.bench`, which parse their own
    options, ``--help`` included)."""
    from .bench import main

    return main(args.bench_args)


#: Flags of ``train`` that set a TrainConfig field of the same name.
_TRAIN_FLAGS = ("model", "epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "bn_momentum",
                "schedule", "size", "amp", "aux_loss", "hflip", "workers", "seed", "num_train", "num_val",
                "bootstrap", "resize", "scale", "jitter", "hue", "grayscale", "warmup_epochs")
