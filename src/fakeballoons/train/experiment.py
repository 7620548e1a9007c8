"""Experiments over scene designs: each arm a named scene configuration, in one of two designs.

- ``transfer`` (the report's design): pretrain a model on each arm's scenes (``pretrain-{arm}``,
  seed 0), then train the downstream task from random initialisation (``baseline``) and from each
  pretrained model, every downstream arm repeated for seeds 0..S-1 (``downstream-{arm}-seed{s}``).
  An arm may continue an earlier arm's pretraining (``continues``: that model trained on, on new
  scenes), so that one experiment holds a shorter and a longer pretraining.
- ``sweep`` (synthetic tasks, no downstream): train one model per arm on its own scenes rendered
  on the fly (``train-{arm}-seed{s}``), then evaluate it on every other arm's validation scenes
  (``cross-{a}-on-{b}-seed{s}``): what does a model trained without texture do on textured
  scenes, and the reverse.

Every run is a ``RunConfig`` in its own directory, so an interrupted experiment continues where it
stopped (finished runs are skipped, started ones resumed), and ``shard=(i, n)`` runs only the runs
j with j % n == i, for a scheduler's array job; a run whose inputs (a pretrained or trained model)
are not finished yet waits for a later call. ``report`` gathers whatever is finished. Presets live
in ``fakeballoons/configs/experiments/``; an arm's ``scene`` is a scene preset name, a JSON file or
inline overrides of a preset (``{"base": "report", "texture": "none"}``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .. import weights
from .._version import __version__
from ..codec import difference, extension, from_plain, load_preset, to_plain
from ..config import SceneConfig
from ..data import formats
from ..data.sources import DataConfig, open_data, spelt_like, synthetic_scene
from ..errors import ConfigError, UserError
from ..names import INIT_IMAGENET
from .loop import RunDir, read_run_config, train
from .run import RunConfig, TrainConfig
from .transfer import TRANSFER_MODES

EXPERIMENT_KINDS = ("transfer", "sweep")
BASELINE = "baseline"
MAX_SEEDS, MAX_ARMS = 1000, 1000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@dataclass(frozen=True)
class Arm:
    """One scene design: its name, its scenes, the cue it removes (for reports), its own recipe."""

    name: str
    scene: SceneConfig = field(default_factory=SceneConfig)
    cue: str = ""  # e.g. "texture": what this arm takes away from the reference's scenes
    train: TrainConfig | None = None  # default: the experiment's pretrain recipe
    downstream: TrainConfig | None = None  # transfer: its pretrained arm's downstream recipe (default:
    # the experiment's, which the scratch arm uses), e.g. a fine-tuning learning rate of its own
    continues: str = ""  # transfer: an earlier arm whose pretrained model this arm's pretraining starts
    # from (every matching tensor), on this arm's scenes with that arm's pretraining seed + 1 (new scenes)
    weights: str = extension("")  # transfer: shipped weights (fakeballoons.weights) that are this arm's
    # pretrained model, instead of a pretraining run; "imagenet": the backbone's ImageNet weights
    init: str = extension("")  # transfer: what this arm's pretraining starts from instead of random values:
    # "imagenet" (the backbone's ImageNet weights, then trained on this arm's scenes)


_REPORT_ARMS = (Arm("perlin", SceneConfig(noise="perlin")), Arm("sc", SceneConfig(noise="sc")))


@dataclass(frozen=True)
class ExperimentConfig:
    """The design: its kind, its arms, how to train them (and downstream), how many seeds."""

    PRESETS: ClassVar[str] = "experiments"

    kind: str = "transfer"  # one of EXPERIMENT_KINDS
    arms: tuple[Arm, ...] = _REPORT_ARMS
    pretrain: TrainConfig = field(default_factory=TrainConfig)  # the recipe of every arm's synthetic training
    downstream: TrainConfig = field(default_factory=TrainConfig)  # transfer: the downstream recipe
    seeds: int = 1
    transfer: str = "auto"  # transfer: what a pretrained model carries over
    reference: str = ""  # sweep: the arm differences are taken against (default: the first)

    def __post_init__(self):
        if self.kind not in EXPERIMENT_KINDS:
            raise ConfigError("kind", f"must be one of {list(EXPERIMENT_KINDS)}, got {self.kind!r}")
        if not self.arms:
            raise ConfigError("arms", "must list at least one arm")
        seen, shipped = set(), {a.name for a in self.arms if a.weights}
        for i, arm in enumerate(self.arms):
            if not isinstance(arm.name, str) or not _NAME.match(arm.name):
                raise ConfigError(f"arms[{i}].name", "must be letters, digits and . _ + - (it names directories), "
                                                     f"got {arm.name!r}")
            if arm.name in seen:
                raise ConfigError(f"arms[{i}].name", f"duplicate arm name {arm.name!r}")
            if arm.name == BASELINE:
                raise ConfigError(f"arms[{i}].name", f"{BASELINE!r} is the arm without pretraining; "
                                                     "choose another name")
            if arm.downstream is not None and self.kind != "transfer":
                raise ConfigError(f"arms[{i}].downstream", "only a transfer experiment trains downstream; "
                                                           "remove it")
            if arm.continues and self.kind != "transfer":
                raise ConfigError(f"arms[{i}].continues", "only a transfer experiment continues a pretraining; "
                                                          "remove it")
            if arm.weights and self.kind != "transfer":
                raise ConfigError(f"arms[{i}].weights", "only a transfer experiment starts from shipped weights; "
                                                        "remove it")
            if arm.weights and arm.continues:
                raise ConfigError(f"arms[{i}].weights", "an arm takes shipped weights or continues another arm's "
                                                        "pretraining, not both")
            if arm.init and arm.init != INIT_IMAGENET:
                raise ConfigError(f"arms[{i}].init", f"must be {INIT_IMAGENET!r} (the backbone's ImageNet weights) "
                                                     f"or left out, got {arm.init!r}")
            if arm.init and (arm.weights or arm.continues or self.kind != "transfer"):
                raise ConfigError(f"arms[{i}].init", "starts a transfer experiment's pretraining; an arm that takes "
                                                     "weights or continues another arm's pretraining has none")
            if arm.continues and arm.continues in shipped:
                raise ConfigError(f"arms[{i}].continues", f"{arm.continues!r} has no pretraining run to continue "
                                                          "(it takes shipped weights)")
            if arm.continues and arm.continues not in seen:
                raise ConfigError(f"arms[{i}].continues", f"must name an arm listed before it, one of "
                                                          f"{sorted(seen)}; got {arm.continues!r}")
            seen.add(arm.name)
        if not 1 <= self.seeds <= MAX_SEEDS:  # as --seeds: a count from a file is bounded like the flag
            raise ConfigError("seeds", f"must be from 1 to {MAX_SEEDS}, got {self.seeds}")
        if len(self.arms) > MAX_ARMS:
            raise ConfigError("arms", f"at most {MAX_ARMS} arms, got {len(self.arms)}")
        if self.transfer not in TRANSFER_MODES:
            raise ConfigError("transfer", f"must be one of {list(TRANSFER_MODES)}, got {self.transfer!r}")
        if self.reference and self.reference not in seen:
            raise ConfigError("reference", f"must name an arm, one of {sorted(seen)}; got {self.reference!r}")

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    def recipe(self, arm: Arm) -> TrainConfig:
        return arm.train or self.pretrain

    def downstream_recipe(self, name: str) -> TrainConfig:
        """The downstream recipe of a downstream arm (``baseline`` or an arm's name)."""
        arm = next((a for a in self.arms if a.name == name), None)
        return (arm.downstream if arm is not None else None) or self.downstream

    @property
    def reference_arm(self) -> str:
        return self.reference or self.arms[0].name

    @property
    def downstream_arms(self) -> list[str]:
        return [BASELINE, *(a.name for a in self.arms)]


@dataclass(frozen=True)
class ExperimentRun:
    """Everything that defines an experiment directory: the design, the downstream data, the device."""

    experiment: ExperimentConfig
    downstream: DataConfig | None = None  # transfer experiments only
    device: str = "cpu"

    def __post_init__(self):
        if self.experiment.kind == "transfer" and self.downstream is None:
            raise ConfigError("downstream", "a transfer experiment needs downstream data (--data DATA)")
        if self.experiment.kind == "sweep" and self.downstream is not None:
            raise ConfigError("downstream", "a sweep trains on its arms' scenes only; give no --data")

    def to_dict(self) -> dict[str, Any]:
        return {"package_version": __version__, **to_plain(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentRun:
        return from_plain(cls, {k: v for k, v in data.items() if k != "package_version"})


def with_shipped_weights(exp: ExperimentConfig) -> ExperimentConfig:
    """The design with each arm's pretraining replaced by the shipped weights that exactly that
    pretraining made (the same scenes, recipe and starting point: nothing, or ImageNet); an arm no
    entry was made by is a UserError."""
    arms = []
    for arm in exp.arms:
        if arm.weights:
            arms.append(arm)
            continue
        recipe = exp.recipe(arm)
        scene = synthetic_scene(DataConfig("synthetic", scene=arm.scene), recipe.size)  # as rendered
        match = None if arm.continues else next(
            (name for name, card in weights.registry().items()
             if card.get("init") == (arm.init or None)
             and difference(SceneConfig.from_dict(card["scene"]), scene) is None
             and difference(TrainConfig.from_dict(card["recipe"]), recipe) is None), None)
        if match is None:
            raise UserError(f"--shipped-weights: no shipped weights were made by arm {arm.name!r}'s pretraining "
                            f"(fakeballoons weights lists them); leave out --shipped-weights to pretrain it")
        arms.append(dataclasses.replace(arm, weights=match, init=""))  # the entry is the model it started
    return dataclasses.replace(exp, arms=tuple(arms))


def load_experiment_preset(name: str) -> ExperimentConfig:
    """An experiment preset (``paper-coco``, ``quick-folder``, ``report-ablations``) or a JSON file."""
    return load_preset(ExperimentConfig, name, "experiment preset")


# ----------------------------------------------------------------------------- the runs


@dataclass(frozen=True)
class Job:
    """One run of an experiment: its directory name, its configuration, the runs it needs first."""

    name: str
    run: RunConfig
    needs: tuple[str, ...] = ()


def plan(record: ExperimentRun) -> list[Job]:
    """Every run of the experiment, in the order they are run (inputs before the runs that need them)."""
    exp, device = record.experiment, record.device
    jobs = []
    if exp.kind == "transfer":
        seeds = {}
        for arm in exp.arms:
            if arm.weights:  # its pretrained model ships with the package: no pretraining run
                continue
            cfg, init, needs = exp.recipe(arm), arm.init or None, ()
            if arm.continues:  # the earlier arm's model, trained on, never on a scene it has seen
                cfg = dataclasses.replace(cfg, seed=seeds[arm.continues] + 1)
                init, needs = f"pretrain-{arm.continues}/last.pt", (f"pretrain-{arm.continues}",)
            seeds[arm.name] = cfg.seed
            jobs.append(Job(f"pretrain-{arm.name}", RunConfig(DataConfig("synthetic", scene=arm.scene), cfg, init=init,
                                                              transfer="all-matching" if init else "auto",
                                                              device=device), needs))
        shipped = {a.name: a.weights for a in exp.arms if a.weights}
        for seed in range(exp.seeds):
            for name in exp.downstream_arms:
                cfg = dataclasses.replace(exp.downstream_recipe(name), seed=seed)
                init = None if name == BASELINE else f"pretrain-{name}/last.pt"
                if name in shipped:
                    init = shipped[name] if shipped[name] == INIT_IMAGENET else f"{weights.PREFIX}{shipped[name]}"
                jobs.append(Job(f"downstream-{name}-seed{seed}",
                                RunConfig(record.downstream, cfg, init=init, transfer=exp.transfer, device=device),
                                () if init is None or name in shipped else (f"pretrain-{name}",)))
        return jobs
    for seed in range(exp.seeds):
        for arm in exp.arms:
            cfg = dataclasses.replace(exp.recipe(arm), seed=seed)
            jobs.append(Job(f"train-{arm.name}-seed{seed}", RunConfig(DataConfig("synthetic", scene=arm.scene), cfg,
                                                                      device=device)))
    for seed in range(exp.seeds):
        for a in exp.arms:
            for b in exp.arms:
                if a is b or a.scene.num_classes != b.scene.num_classes:
                    continue  # a model answers in its own classes: only arms with as many can be compared
                cfg = dataclasses.replace(exp.recipe(a), seed=seed, epochs=0, num_train=exp.recipe(b).num_train,
                                          num_val=exp.recipe(b).num_val, size=exp.recipe(b).size)
                jobs.append(Job(f"cross-{a.name}-on-{b.name}-seed{seed}",
                                RunConfig(DataConfig("synthetic", scene=b.scene), cfg,
                                          init=f"train-{a.name}-seed{seed}/last.pt", transfer="all-matching",
                                          device=device),
                                (f"train-{a.name}-seed{seed}",)))
    return jobs


def finished(path: Path, epochs: int, model: bool = False) -> bool:
    """Whether the run in ``path`` has done ``epochs`` epochs (an evaluation-only run: evaluated).

    A run whose checkpoint was deleted once it had finished (to save space, or to keep only its
    records) still counts: its metrics log reached ``epochs`` and its last evaluation's per-image
    confusions are there, which is all a report reads. With ``model`` its ``last.pt`` must be there
    too: another run starts from it."""
    if epochs == 0:
        return (path / "val_confusion.pt").exists() and (path / "metrics.jsonl").exists()
    ckpt = path / "last.pt"
    if not ckpt.exists():
        return not model and _recorded(path, epochs)
    # mmap: only the pickled record is read, not the weights (about 140 MB for FCN-ResNet50)
    record = formats.load_torch(ckpt, "checkpoint", mmap=True)
    return isinstance(record, dict) and isinstance(record.get("epoch"), int) and record["epoch"] >= epochs


def _recorded(path: Path, epochs: int) -> bool:
    """Whether the records of a run without a checkpoint say that it finished ``epochs`` epochs."""
    if not (path / "val_confusion.pt").is_file() or not (path / "metrics.jsonl").is_file():
        return False
    try:
        lines = list(formats.read_jsonl(path / "metrics.jsonl", "metrics log"))
    except UserError:
        return False
    return bool(lines) and isinstance(lines[-1].get("epoch"), int) and lines[-1]["epoch"] >= epochs


def _open_experiment_dir(out: Path, record: ExperimentRun) -> None:
    path = out / "experiment.json"
    if path.exists():
        try:
            old = ExperimentRun.from_dict(formats.read_json(path, "experiment record"))
        except ConfigError as exc:
            raise UserError(f"{path} is not a fakeballoons experiment record ({exc})") from None
        old = dataclasses.replace(old, downstream=spelt_like(old.downstream, record.downstream))
        # more seeds than before add runs (the finished ones stay valid); fewer would orphan runs
        more_seeds = record.experiment.seeds >= old.experiment.seeds
        why = difference(record, old, ignore=("experiment.seeds",) if more_seeds else ())
        if why:
            raise UserError(f"{out} holds an experiment with other settings ({why}); use the same options "
                            "or a new directory")
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} is not empty and holds no experiment.json; choose a new or empty directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out}: {exc.strerror or exc}") from None
    formats.write_atomic(path, formats.json_bytes(record.to_dict(), indent=2))


def read_experiment(out: str | Path) -> ExperimentRun:
    """The ExperimentRun of an experiment directory."""
    path = Path(out) / "experiment.json"
    try:
        return ExperimentRun.from_dict(formats.read_json(path, "experiment record"))
    except ConfigError as exc:
        raise UserError(f"{path} is not a fakeballoons experiment record ({exc})") from None


def check_experiment(record: ExperimentRun) -> list[Job]:
    """Everything that can be checked before any work, so a mistake costs seconds, not a pretraining:
    the device, every run's configuration (built by :func:`plan`), and the downstream data (opened
    and checked as its runs will open it). Returns the plan."""
    if record.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError("--device cuda was asked for but torch sees no CUDA GPU (use --device cpu)")
    jobs = plan(record)
    for arm in record.experiment.arms:
        if INIT_IMAGENET in (arm.weights, arm.init):
            from .imagenet import backbone_state

            backbone_state()  # installed, and every tensor in place
        elif arm.weights:
            weights.path(arm.weights)  # registered, there, and its SHA-256 the card's
    if record.downstream is not None:
        ds = record.experiment.downstream
        open_data(record.downstream, size=ds.size, num_train=ds.num_train, num_val=ds.num_val, seed=ds.seed)
    return jobs


def reuse_runs(out: Path, jobs: list[Job], source: Path, log=print, *, scratch: bool = False) -> None:
    """Link ``out/NAME`` to ``source/NAME`` for every run that ``source`` (another experiment
    directory) has finished with exactly this run's configuration: its pretraining runs, and with
    ``scratch`` also every other run that starts from nothing (the scratch arms of a transfer
    experiment, the training runs of a sweep) or from a model named outside any experiment (the
    backbone's ImageNet weights, shipped weights: arms with ``weights``), so that a run is done once
    and shared by experiments that differ elsewhere (another downstream dataset, another pretraining
    length, other arms). A run that starts from a model of an experiment (a pretrained arm, a
    cross-evaluation) is never taken: its model is this experiment's own; except a pretraining that
    continues another arm's (``continues``), taken where the run it continues is the source's too
    (linked just before it)."""
    for job in jobs:
        if job.run.init is None or (not job.needs and _named_model(job.run.init)):
            if not (scratch or job.name.startswith("pretrain-")):
                continue
        elif not (job.name.startswith("pretrain-")
                  and all((out / n).resolve() == (source / n).resolve() for n in job.needs)):
            continue
        _drop_dangling_link(out / job.name, log)
        if (out / job.name).exists() or (out / job.name).is_symlink():
            continue
        there = source / job.name
        if not finished(there, job.run.train.epochs, model=any(job.name in j.needs for j in jobs)):
            log(f"{job.name}: not finished in {source}; not linked (this experiment trains its own)")
            continue
        theirs = read_run_config(RunDir(there))
        if job.run.init is not None and theirs.init is not None and \
                Path(theirs.init).parts[-2:] == Path(job.run.init).parts:
            theirs = dataclasses.replace(theirs, init=job.run.init)  # recorded as spelt when it ran
        # Every field counts, the number of epochs too (a longer run is not this one: its schedule
        # differs); `transfer` is the same for every run that starts from no model (RunConfig).
        theirs = dataclasses.replace(theirs, data=spelt_like(theirs.data, job.run.data))
        why = difference(job.run, theirs)
        if why:
            log(f"{job.name}: {source}'s differs ({why}); not linked (this experiment trains its own)")
            continue
        link, target = out / job.name, there.resolve()
        try:
            link.symlink_to(target, target_is_directory=True)
        except FileExistsError:  # a shard started beside this one got there first
            if not (link.is_symlink() and link.resolve() == target):
                log(f"{job.name}: already in {out}, not linked")
                continue
        log(f"{job.name}: reused from {there}")


def _named_model(init: str) -> bool:
    """Whether ``init`` names a model that no experiment makes: ImageNet's, or shipped weights."""
    return init == INIT_IMAGENET or init.startswith(weights.PREFIX)


def _drop_dangling_link(path: Path, log) -> None:
    """Remove ``path`` where it is a link (made by ``reuse_runs``) to a run that no longer exists, so
    that the run is linked again or trained here instead of failing to be created; a link removed
    by another shard meanwhile is fine."""
    if path.is_symlink() and not path.exists():
        try:
            target = os.readlink(path)
        except OSError:  # another shard removed it meanwhile
            return
        log(f"{path.name}: its link to {target} leads nowhere (that run was removed); removed the link")
        path.unlink(missing_ok=True)


def run_experiment(out: str | Path, record: ExperimentRun, *, shard: tuple[int, int] = (0, 1),
                   progress: bool = True, log=print, reuse: str | Path | None = None,
                   reuse_scratch: bool = False, checkpoints=None) -> bool:
    """Run (or finish) this shard's runs of the experiment in ``out``; return whether every run of the
    experiment is finished (then its report can be written: :mod:`.experiment_report`; else other
    shards, or a later call, finish it).
    ``reuse``: another experiment directory whose finished, identical pretraining runs (with
    ``reuse_scratch``, also runs from scratch) are used (:func:`reuse_runs`). ``checkpoints``: when
    a run writes checkpoints within an epoch (:class:`~fakeballoons.train.loop.Checkpoints`)."""
    out = Path(out)
    jobs = check_experiment(record)
    if reuse is not None and not (Path(reuse) / "experiment.json").is_file():
        flag = "--reuse" if reuse_scratch else "--reuse-pretraining"
        raise UserError(f"{flag} {reuse}: not an experiment directory (no experiment.json)")
    _open_experiment_dir(out, record)
    if reuse is not None:
        reuse_runs(out, jobs, Path(reuse), log, scratch=reuse_scratch)
    index, count = shard
    for j, job in enumerate(jobs):
        if j % count != index:
            continue
        path = out / job.name
        _drop_dangling_link(path, log)
        if finished(path, job.run.train.epochs):
            log(f"{job.name}: finished, skipped")
            continue
        waiting = [n for n in job.needs if not finished(out / n, _epochs(jobs, n))]
        gone = [n for n in job.needs if n not in waiting and not (out / n / "last.pt").exists()]
        if gone:
            raise UserError(f"{job.name} starts from {gone[0]}, which finished but whose checkpoint "
                            f"{out / gone[0] / 'last.pt'} was removed; remove {out / gone[0]} to train it again")
        if waiting:
            log(f"{job.name}: waits for {', '.join(waiting)} (another shard, or a later call)")
            continue
        # an init that is another run of this experiment (one it needs) is a path inside ``out``
        run = dataclasses.replace(job.run, init=str(out / job.run.init)) if job.needs else job.run
        resume = (path / "last.pt").exists()
        log(f"{job.name}: {'resuming' if resume else 'training' if job.run.train.epochs else 'evaluating'}")
        train(run, path, resume=resume, progress=progress, checkpoints=checkpoints)
    return all(finished(out / job.name, job.run.train.epochs) for job in jobs)


def _epochs(jobs: list[Job], name: str) -> int:
    return next(j.run.train.epochs for j in jobs if j.name == name)


__all__ = ["Arm", "EXPERIMENT_KINDS", "check_experiment", "ExperimentConfig", "ExperimentRun", "Job", "finished",
           "load_experiment_preset", "plan", "read_experiment", "run_experiment", "with_shipped_weights"]
