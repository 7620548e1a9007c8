"""The experiment runner end to end at toy size: every arm reported, interruption resumed."""

import dataclasses
import json
import re

import numpy as np
import pytest
from PIL import Image

from fakeballoons.errors import UserError
from fakeballoons.train import experiment

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


@pytest.fixture
def toy_preset(tmp_path):
    path = tmp_path / "toy.json"
    path.write_text(json.dumps({"pretrain": TOY, "downstream": TOY, "seeds": 2}))
    return path


@pytest.mark.slow
def test_experiment_end_to_end_and_resume(tmp_path, toy_preset, cli, monkeypatch):
    folder_dataset(tmp_path / "down")
    args = ["experiment", "--preset", toy_preset, "--data", f"folder:{tmp_path / 'down'}", "--classes", 3,
            "--out", tmp_path / "exp", "--quiet"]
    calls = []
    real_train = experiment.train

    def interrupted(*a, **kw):
        calls.append(a[1].name)
        if len(calls) == 4:
            raise KeyboardInterrupt  # stopped in the middle of the fourth run
        return real_train(*a, **kw)

    monkeypatch.setattr(experiment, "train", interrupted)
    assert cli(args)[0] == 130
    monkeypatch.setattr(experiment, "train", real_train)
    log = []
    monkeypatch.setattr(experiment, "train", lambda *a, **kw: (log.append(a[1].name), real_train(*a, **kw))[1])
    code, out, err = cli(args)
    assert code == 0, err
    # the three finished runs were skipped; the interrupted one and the rest were run
    assert calls[:3] == ["pretrain-perlin", "pretrain-sc", "downstream-baseline-seed0"]
    assert log == ["downstream-perlin-seed0", "downstream-sc-seed0", "downstream-baseline-seed1",
                   "downstream-perlin-seed1", "downstream-sc-seed1"]
    exp = tmp_path / "exp"
    report = (exp / "report.md").read_text()
    for name in ("pretrain-perlin", "pretrain-sc", *(f"downstream-{a}-seed{s}" for a in ("baseline", "perlin", "sc")
                                                      for s in (0, 1))):
        assert f"| {name} |" in report
    for arm in ("baseline", "perlin", "sc"):
        assert f"| {arm} |" in report
    assert report.count("images [") == 2 * 6 and report.count("seeds [") == 2 * 6
    transfer = json.loads((exp / "downstream-sc-seed1" / "transfer.json").read_text())
    assert transfer["checkpoint"].endswith("pretrain-sc/last.pt") and transfer["counts"]["loaded"] > 0
    assert (exp / "downstream_curves.png").exists() and (exp / "pretrain_curves.png").exists()
    # a finished experiment reruns as a no-op that rewrites its report
    log.clear()
    assert cli(args)[0] == 0 and log == []


@pytest.mark.slow
def test_experiment_refuses_other_settings_and_bad_inputs(tmp_path, toy_preset, cli):
    folder_dataset(tmp_path / "down")
    base = ["experiment", "--preset", toy_preset, "--out", tmp_path / "exp", "--quiet"]
    down = f"folder:{tmp_path / 'down'}"
    code, _, err = cli([*base, "--data", down, "--classes", 3, "--seeds", 1])
    assert code == 0, err
    code, _, err = cli([*base, "--data", down, "--classes", 3, "--seeds", 1, "--transfer", "backbone"])
    assert code == 2 and "other settings" in err and "transfer" in err and err.count("\n") == 1
    # made by a version before --bn-momentum existed: the same settings, and finished
    record = json.loads((tmp_path / "exp" / "experiment.json").read_text())
    for arm in ("pretrain", "downstream"):
        del record["experiment"][arm]["bn_momentum"]
    (tmp_path / "exp" / "experiment.json").write_text(json.dumps(record))
    code, out, err = cli([*base, "--data", down, "--classes", 3, "--seeds", 1])
    assert code == 0 and "other settings" not in err, err
    # more seeds grow the experiment in place: only the new seed's runs are trained
    seed0 = sorted(p.name for p in (tmp_path / "exp").iterdir() if p.name.endswith("-seed0"))
    mtimes = {n: (tmp_path / "exp" / n / "last.pt").stat().st_mtime_ns for n in seed0}
    code, _, err = cli([*base, "--data", down, "--classes", 3, "--seeds", 2])
    assert code == 0, err
    assert {n: (tmp_path / "exp" / n / "last.pt").stat().st_mtime_ns for n in seed0} == mtimes
    assert all((tmp_path / "exp" / n.replace("seed0", "seed1") / "last.pt").exists() for n in seed0)
    assert "-seed1 |" in (tmp_path / "exp" / "report.md").read_text()
    # fewer seeds than the directory holds would leave runs out of its report: refused
    code, _, err = cli([*base, "--data", down, "--classes", 3, "--seeds", 1])
    assert code == 2 and "seeds is 2 there, 1 here" in err and err.count("\n") == 1
    code, _, err = cli(["experiment", "--out", tmp_path / "e2", "--data", f"coco:{tmp_path / 'missing'}", "--quiet",
                        "--preset", toy_preset])
    assert code == 2 and "COCO root not found" in err
    assert not (tmp_path / "e2").exists()  # checked before any pretraining
    code, _, err = cli(["experiment", "--out", tmp_path / "e3", "--quiet"])
    assert code == 2 and "needs downstream data" in err
    code, _, err = cli(["experiment", "--out", tmp_path / "e4", "--preset", "nope", "--data", f"coco:{tmp_path}"])
    assert code == 2 and "unknown experiment preset 'nope'" in err


def test_t_interval_and_presets():
    from fakeballoons.train.report import t_interval

    lo, hi = t_interval([1.0, 2.0, 3.0])
    assert (lo + hi) / 2 == pytest.approx(2.0) and hi - lo == pytest.approx(2 * 4.303 * 1.0 / 3 ** 0.5)
    assert t_interval([1.0]) is None
    assert experiment.load_experiment_preset("quick-folder").seeds == 2
    assert experiment.load_experiment_preset("paper-coco").downstream.num_train == 1000
    short, long, longer = (experiment.load_experiment_preset(n) for n in ("transfer", "transfer-80k", "transfer-160k"))
    assert (short.pretrain.num_train, long.pretrain.num_train, longer.pretrain.num_train) == (20000, 80000, 160000)
    assert dataclasses.replace(long, pretrain=short.pretrain) == short  # nothing else differs
    assert dataclasses.replace(longer, pretrain=short.pretrain) == short


def test_a_pretrained_arm_may_have_its_own_downstream_recipe(tmp_path):
    """An arm's "downstream" (e.g. its own fine-tuning learning rate) is its pretrained arm's recipe
    at every seed; the scratch arm keeps the experiment's; other arms are untouched."""
    from fakeballoons.data.sources import DataConfig

    preset = tmp_path / "own-lr.json"
    preset.write_text(json.dumps({"base": "transfer", "arms": [
        {"name": "fast", "scene": "report", "downstream": {"base": "real", "lr": 0.016, "warmup_epochs": 1.0}},
        {"name": "plain", "scene": "report"}]}))
    exp = experiment.load_experiment_preset(str(preset))
    jobs = {j.name: j.run.train for j in experiment.plan(experiment.ExperimentRun(exp, DataConfig("synthetic")))}
    real = experiment.load_experiment_preset("transfer").downstream
    for seed in range(3):
        assert jobs[f"downstream-fast-seed{seed}"] == dataclasses.replace(real, lr=0.016, warmup_epochs=1.0,
                                                                           seed=seed)
        assert jobs[f"downstream-baseline-seed{seed}"] == jobs[f"downstream-plain-seed{seed}"]
        assert jobs[f"downstream-baseline-seed{seed}"] == dataclasses.replace(real, seed=seed)


SWEEP = {"kind": "sweep", "pretrain": {**TOY, "epochs": 2}, "seeds": 2, "reference": "plain",
         "arms": [{"name": "plain", "scene": "report"},
                  {"name": "flat", "scene": {"base": "report", "texture": "none"}, "cue": "texture"},
                  {"name": "round", "scene": "fixed-elongation", "cue": "elongation"}]}


@pytest.mark.slow
def test_sweep_end_to_end_interrupted_resumed_and_sharded(tmp_path, cli, monkeypatch):
    preset = tmp_path / "sweep.json"
    preset.write_text(json.dumps(SWEEP))
    args = ["experiment", "--preset", preset, "--out", tmp_path / "sw", "--quiet"]
    calls, real_train = [], experiment.train

    def interrupted(*a, **kw):
        calls.append(a[1].name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_train(*a, **kw)

    monkeypatch.setattr(experiment, "train", interrupted)
    assert cli(args)[0] == 130
    monkeypatch.setattr(experiment, "train", real_train)
    # shard 1 of 2 first: it runs its share, skips what waits for shard 0, and writes no report
    code, out, err = cli([*args, "--shard", "1/2"])
    assert code == 0, err
    # of 18 runs (6 trained, 12 cross-evaluations): 2 before the interruption, then shard 1's odd-numbered
    # runs whose model is there (train runs 3, 5; cross runs 7, 9, 13, 17; 11 and 15 wait)
    done = re.search(r"(\d+) of 18 runs finished \(the others are other shards'", out)
    assert done and int(done.group(1)) == 8, out
    assert not (tmp_path / "sw" / "report.md").exists()
    code, out, err = cli([*args, "--shard", "0/2"])
    assert code == 0, err
    code, out, err = cli([*args, "--shard", "1/2"])  # what waited for shard 0's models
    assert code == 0 and "wrote" in out, err
    sw = tmp_path / "sw"
    names = ("plain", "flat", "round")
    for a in names:
        for s in (0, 1):
            assert (sw / f"train-{a}-seed{s}" / "last.pt").exists()
            for b in names:
                if a != b:
                    assert (sw / f"cross-{a}-on-{b}-seed{s}" / "val_confusion.pt").exists()
    report = (sw / "report.md").read_text()
    for a in names:
        assert f"| `{a}` |" in report and f"| {a} |" in report
    assert "| flat | paired |" in report and "| round | unpaired |" in report  # same scenes / other geometry
    assert report.count("images [") == 2 * 6 and report.count("seeds [") == 2 * 6
    assert "## Cross-evaluation" in report and "| n/a" not in report
    assert "without texture" in report and "without elongation" in report
    assert "The model leans most on" in report or "can do without any" in report
    for png in ("cross_eval.png", "per_class_f1.png", "curves.png", "scenes.png"):
        assert (sw / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the report can be rewritten on its own, from the finished runs
    (sw / "report.md").unlink()
    code, out, _ = cli(["report", sw])
    assert code == 0 and (sw / "report.md").read_text() == report


@pytest.mark.slow
def test_the_reports_design_with_named_arms_gives_the_same_runs(tmp_path, cli):
    """pretrain-perlin of the arms design equals `train --data synthetic:perlin` with the same recipe."""
    from fakeballoons.data.sources import DataConfig, synthetic_scene
    from fakeballoons.train.experiment import ExperimentRun, plan

    preset = tmp_path / "p.json"
    preset.write_text(json.dumps({"pretrain": TOY, "downstream": TOY, "seeds": 1}))
    folder_dataset(tmp_path / "down")
    record = ExperimentRun(experiment.load_experiment_preset(str(preset)),
                           DataConfig(f"folder:{tmp_path / 'down'}", classes=3))
    jobs = {j.name: j for j in plan(record)}
    for noise in ("perlin", "sc"):
        job = jobs[f"pretrain-{noise}"]
        assert synthetic_scene(job.run.data, 32) == synthetic_scene(DataConfig(f"synthetic:{noise}"), 32)
    assert cli(["experiment", "--preset", preset, "--data", f"folder:{tmp_path / 'down'}", "--classes", 3,
                "--out", tmp_path / "exp", "--quiet"])[0] == 0
    flags = ["--model", TOY["model"], "--epochs", TOY["epochs"], "--batch-size", TOY["batch_size"], "--optimizer",
             "adamw", "--lr", TOY["lr"], "--size", TOY["size"], "--workers", 0, "--num-train", TOY["num_train"],
             "--num-val", TOY["num_val"], "--bootstrap", TOY["bootstrap"], "--quiet"]
    assert cli(["train", "--data", "synthetic:perlin", "--out", tmp_path / "direct", *flags])[0] == 0
    exp_line = json.loads((tmp_path / "exp" / "pretrain-perlin" / "metrics.jsonl").read_text().splitlines()[-1])
    direct = json.loads((tmp_path / "direct" / "metrics.jsonl").read_text().splitlines()[-1])
    assert exp_line["metrics"] == direct["metrics"] and exp_line["train_loss"] == direct["train_loss"]


@pytest.mark.parametrize("change, message", [
    ({"arms": [{"name": "a", "scene": "nosuchpreset"}]}, "unknown SceneConfig preset 'nosuchpreset'"),
    ({"arms": [{"name": "a"}, {"name": "a"}]}, "duplicate arm name 'a'"),
    ({"arms": []}, "'arms': must list at least one arm"),
    ({"arms": [{"name": "../x"}]}, "'arms[0].name'"),
    ({"arms": [{"name": "baseline"}]}, "'baseline' is the arm without pretraining"),
    ({"reference": "nope"}, "'reference': must name an arm"),
    ({"kind": "grid"}, "'kind': must be one of"),
    ({"arms": [{"name": "a", "downstream": {"lr": 0.01}}]}, "'arms[0].downstream': only a transfer experiment"),
])
def test_bad_sweep_presets_exit_2_naming_the_problem(tmp_path, cli, change, message):
    preset = tmp_path / "bad.json"
    preset.write_text(json.dumps({**SWEEP, **change}))
    code, _, err = cli(["experiment", "--preset", preset, "--out", tmp_path / "x", "--quiet"])
    assert code == 2 and err.count("\n") == 1 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "x").exists()


def test_a_sweep_takes_no_data_and_a_transfer_experiment_needs_it(tmp_path, cli):
    preset = tmp_path / "s.json"
    preset.write_text(json.dumps(SWEEP))
    code, _, err = cli(["experiment", "--preset", preset, "--out", tmp_path / "x", "--data", "synthetic", "--quiet"])
    assert code == 2 and "give no --data" in err
    code, _, err = cli(["experiment", "--preset", "quick-folder", "--out", tmp_path / "y", "--quiet"])
    assert code == 2 and "needs downstream data" in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.slow
def test_pretraining_is_reused_across_downstream_datasets(tmp_path, cli, monkeypatch):
    """The transfer preset's recipes at toy size (nuisance-augmented pretraining, the real recipe
    downstream), then a second dataset that reuses the first experiment's pretraining."""
    toy_real = {**TOY, "resize": "short-side", "scale": [0.5, 2.0], "hflip": True, "jitter": 0.3, "hue": 0.05}
    toy_pre = {**TOY, "resize": "short-side", "scale": [1.0, 2.0], "hflip": True, "jitter": 0.4, "hue": 0.1,
               "grayscale": 0.3, "warmup_epochs": 0.5}
    preset = tmp_path / "toy.json"
    preset.write_text(json.dumps({"base": "transfer", "pretrain": toy_pre, "downstream": toy_real, "seeds": 1}))
    folder_dataset(tmp_path / "a")
    folder_dataset(tmp_path / "b", n_train=6)
    log = []
    real_train = experiment.train
    monkeypatch.setattr(experiment, "train", lambda *a, **kw: (log.append(a[1].name), real_train(*a, **kw))[1])
    first = ["experiment", "--preset", preset, "--data", f"folder:{tmp_path / 'a'}", "--classes", 3,
             "--out", tmp_path / "ea", "--quiet"]
    assert cli(first)[0] == 0
    assert log == ["pretrain-perlin-nuisance", "downstream-baseline-seed0", "downstream-perlin-nuisance-seed0"]
    log.clear()
    second = ["experiment", "--preset", preset, "--data", f"folder:{tmp_path / 'b'}", "--classes", 3,
              "--out", tmp_path / "eb", "--quiet", "--reuse-pretraining", tmp_path / "ea"]
    code, _, err = cli(second)
    assert code == 0, err
    assert log == ["downstream-baseline-seed0", "downstream-perlin-nuisance-seed0"]  # no pretraining
    assert (tmp_path / "eb" / "pretrain-perlin-nuisance").resolve() == (tmp_path / "ea" / "pretrain-perlin-nuisance")
    assert "| arm | Mean IoU |" in (tmp_path / "eb" / "report.md").read_text()  # the headline comes first
    # another recipe is not reused: it pretrains itself
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"base": "transfer", "pretrain": {**toy_pre, "lr": 0.004}, "downstream": toy_real,
                                 "seeds": 1}))
    log.clear()
    third = ["experiment", "--preset", other, "--data", f"folder:{tmp_path / 'b'}", "--classes", 3,
             "--out", tmp_path / "ec", "--quiet", "--reuse-pretraining", tmp_path / "ea"]
    code, _, err = cli(third)
    assert code == 0, err
    assert log[0] == "pretrain-perlin-nuisance" and not (tmp_path / "ec" / "pretrain-perlin-nuisance").is_symlink()
    code, _, err = cli([*third[:-1], tmp_path / "b"])
    assert code == 2 and "not an experiment directory" in err
    # --reuse takes eb's scratch arm too: another experiment on b trains only its pretrained arm
    log.clear()
    fourth = [*second[:second.index("--out") + 1], tmp_path / "ed", "--quiet", "--reuse", tmp_path / "eb"]
    code, _, err = cli(fourth)
    assert code == 0, err
    assert log == ["downstream-perlin-nuisance-seed0"]
    assert (tmp_path / "ed" / "downstream-baseline-seed0").resolve() == (tmp_path / "eb" / "downstream-baseline-seed0")
    code, _, err = cli([*fourth, "--reuse-pretraining", tmp_path / "ea"])
    assert code == 2 and "not allowed with" in err


def test_shards_started_together_both_reuse_the_pretraining(tmp_path, monkeypatch):
    """Two shards of one experiment started at once with --reuse-pretraining both see no link and
    both make it: the one that loses the race finds the other's link and goes on, no traceback."""
    import torch

    from fakeballoons.data.sources import DataConfig

    design = experiment.ExperimentConfig(kind="transfer", seeds=1, arms=(experiment.Arm("a"),))
    record = experiment.ExperimentRun(design, downstream=DataConfig("synthetic"))
    jobs = experiment.plan(record)
    source, out = tmp_path / "source", tmp_path / "out"
    (source / "pretrain-a").mkdir(parents=True)
    torch.save({"epoch": jobs[0].run.train.epochs}, source / "pretrain-a" / "last.pt")
    out.mkdir()

    def other_shard_links_it_meanwhile(run_dir):  # read between this shard's check and its link
        if not (out / "pretrain-a").is_symlink():
            (out / "pretrain-a").symlink_to(source / "pretrain-a", target_is_directory=True)
        return jobs[0].run

    monkeypatch.setattr(experiment, "read_run_config", other_shard_links_it_meanwhile)
    log = []
    experiment.reuse_runs(out, jobs, source, log.append)
    assert (out / "pretrain-a").resolve() == (source / "pretrain-a").resolve()
    assert log == [f"pretrain-a: reused from {source / 'pretrain-a'}"]
    # A run directory of its own (not a link) in the way is left alone and said so.
    (out / "pretrain-a").unlink()
    monkeypatch.setattr(experiment, "read_run_config",
                        lambda run_dir: ((out / "pretrain-a").mkdir(exist_ok=True), jobs[0].run)[1])
    log.clear()
    experiment.reuse_runs(out, jobs, source, log.append)
    assert not (out / "pretrain-a").is_symlink() and log == [f"pretrain-a: already in {out}, not linked"]


def _finished_source(tmp_path, jobs, epochs=None):
    """An experiment directory whose runs that start from nothing are finished (checkpoint and
    config, as train writes them), with ``epochs`` instead of each run's own where given."""
    import torch

    from fakeballoons.train.loop import RunDir, write_run_config

    source = tmp_path / "source"
    for job in jobs:
        if job.run.init is None:
            run = job.run if epochs is None else dataclasses.replace(
                job.run, train=dataclasses.replace(job.run.train, epochs=epochs))
            (source / job.name).mkdir(parents=True)
            torch.save({"epoch": run.train.epochs}, source / job.name / "last.pt")
            write_run_config(RunDir(source / job.name), run)
    return source


def test_reuse_takes_scratch_arms_too_and_never_a_pretrained_arm(tmp_path):
    """--reuse links the finished scratch arms as well as the pretraining; --reuse-pretraining only
    the pretraining; a pretrained arm is never linked (its model is this experiment's own), and a
    scratch arm is taken whatever the transfer mode (it carries nothing over)."""
    from fakeballoons.data.sources import DataConfig

    design = experiment.ExperimentConfig(kind="transfer", seeds=2, arms=(experiment.Arm("a"),))
    record = experiment.ExperimentRun(design, downstream=DataConfig("synthetic"))
    jobs = experiment.plan(record)
    source = _finished_source(tmp_path, jobs)
    for job in jobs:  # the pretrained arms are finished there too, and still not taken
        if job.run.init is not None:
            (source / job.name).mkdir()
    names = {j.name for j in jobs}
    scratch = {"downstream-baseline-seed0", "downstream-baseline-seed1"}
    out = tmp_path / "out"
    out.mkdir()
    experiment.reuse_runs(out, jobs, source, lambda msg: None)
    assert {p.name for p in out.iterdir()} == {"pretrain-a"}
    experiment.reuse_runs(out, jobs, source, lambda msg: None, scratch=True)
    assert {p.name for p in out.iterdir()} == {"pretrain-a"} | scratch
    assert all((out / n).resolve() == (source / n).resolve() for n in {"pretrain-a"} | scratch)
    assert names - {"pretrain-a"} - scratch == {"downstream-a-seed0", "downstream-a-seed1"}
    backbone = experiment.plan(dataclasses.replace(record, experiment=dataclasses.replace(design, transfer="backbone")))
    out2 = tmp_path / "out2"
    out2.mkdir()
    experiment.reuse_runs(out2, backbone, source, lambda msg: None, scratch=True)
    assert {p.name for p in out2.iterdir()} == {"pretrain-a"} | scratch
    assert {j.run.transfer for j in backbone if j.run.init is None} == {"auto"}  # one spelling for no model
    assert {j.run.transfer for j in backbone if j.run.init is not None} == {"backbone"}
    # a scratch run recorded by an older version with the experiment's transfer mode is still this run
    for name in scratch:
        config = source / name / "config.json"
        config.write_text(config.read_text().replace('"transfer": "auto"', '"transfer": "backbone"'))
        assert '"transfer": "backbone"' in config.read_text()
    out3 = tmp_path / "out3"
    out3.mkdir()
    experiment.reuse_runs(out3, jobs, source, lambda msg: None, scratch=True)
    assert {p.name for p in out3.iterdir()} == {"pretrain-a"} | scratch


def test_a_longer_run_is_not_reused_as_a_shorter_one(tmp_path):
    """A finished run with more epochs than this experiment's is another schedule, not this run
    done: it is trained here, and the log says why."""
    from fakeballoons.data.sources import DataConfig

    design = experiment.ExperimentConfig(kind="transfer", seeds=1, arms=(experiment.Arm("a"),))
    jobs = experiment.plan(experiment.ExperimentRun(design, downstream=DataConfig("synthetic")))
    source = _finished_source(tmp_path, jobs, epochs=jobs[0].run.train.epochs + 5)
    out = tmp_path / "out"
    out.mkdir()
    log = []
    experiment.reuse_runs(out, jobs, source, log.append, scratch=True)
    assert not any(out.iterdir())
    assert log and all("differs" in line and "epochs" in line and "not linked" in line for line in log), log


def test_a_mismatch_names_the_differing_field(tmp_path):
    from fakeballoons.train.experiment import ExperimentConfig, ExperimentRun, _open_experiment_dir

    _open_experiment_dir(tmp_path / "exp", ExperimentRun(ExperimentConfig(kind="sweep", seeds=3)))
    with pytest.raises(UserError, match="experiment.seeds is 3 there, 1 here"):
        _open_experiment_dir(tmp_path / "exp", ExperimentRun(ExperimentConfig(kind="sweep", seeds=1)))
    with pytest.raises(UserError, match='experiment.reference is "" there, "sc" here'):
        _open_experiment_dir(tmp_path / "exp", ExperimentRun(ExperimentConfig(kind="sweep", seeds=3, reference="sc")))
    _open_experiment_dir(tmp_path / "exp", ExperimentRun(ExperimentConfig(kind="sweep", seeds=4)))  # grows


def test_nothing_is_written_before_the_whole_experiment_is_checked(tmp_path, cli):
    """A downstream dataset that would fail in its first step stops the experiment before any
    pretraining, and before its directory exists (so the corrected rerun is not refused)."""
    for split in ("train", "val"):
        for folder, shape in ((split, (8, 8, 3)), (f"{split}annot", (8, 8) if split == "train" else (8, 9))):
            (tmp_path / "down" / folder).mkdir(parents=True)
            Image.fromarray(np.zeros(shape, np.uint8)).save(tmp_path / "down" / folder / "a.png")
    code, _, err = cli(["experiment", "--out", tmp_path / "exp", "--data", f"folder:{tmp_path / 'down'}",
                        "--classes", 2, "--quiet"])
    assert code == 2 and err.count("\n") == 1 and "valannot/a.png: mask size (8, 9)" in err
    assert not (tmp_path / "exp").exists()


def test_the_configurations_in_docs_transfer_still_load():
    """docs/transfer.md gives commands with these files: each must stay a valid experiment or scene."""
    from pathlib import Path

    from fakeballoons.codec import load_preset
    from fakeballoons.config import SceneConfig

    files = sorted((Path(__file__).resolve().parents[1] / "docs" / "transfer").glob("*.json"))
    assert len(files) >= 3
    for path in files:
        if "arms" in json.loads(path.read_text()) or path.name.startswith("transfer"):
            exp = experiment.load_experiment_preset(str(path))
            assert exp.kind == "transfer" and exp.seeds >= 1, path.name
        else:
            assert load_preset(SceneConfig, str(path), "scene").num_classes >= 2, path.name
    many = experiment.load_experiment_preset(str(files[0].parent / "transfer-80k-many.json"))
    t80 = experiment.load_experiment_preset("transfer-80k")
    assert many.arms[0].scene.num_classes == 64 and dataclasses.replace(many, arms=t80.arms) == t80
    for name in ("80k", "160k"):  # the 64x64 pretraining differs from its preset in the scenes' size only
        small = experiment.load_experiment_preset(str(files[0].parent / f"transfer-{name}-64px.json"))
        big = experiment.load_experiment_preset(f"transfer-{name}")
        assert (small.pretrain.size, big.pretrain.size) == (64, 128)
        assert dataclasses.replace(small, pretrain=dataclasses.replace(small.pretrain, size=128)) == big
    # smaller pretraining batches (more steps over the same 80,000 scenes), nothing else different
    steps = experiment.load_experiment_preset(str(files[0].parent / "transfer-80k-steps.json"))
    assert [arm.train.batch_size for arm in steps.arms] == [16, 8] and steps.downstream.lr == 0.004
    for arm in steps.arms:
        assert dataclasses.replace(arm.train, batch_size=32) == t80.pretrain and arm.downstream is None
    assert dataclasses.replace(steps, arms=t80.arms, downstream=dataclasses.replace(steps.downstream, lr=0.008)) \
        == t80


def test_a_link_to_a_removed_run_is_replaced(tmp_path, monkeypatch):
    """A reused run whose directory was removed from the other experiment leaves a link leading
    nowhere: the next call removes it and links the run again from a source that has it, or trains
    it here (it used to stay, and training into it failed)."""
    from fakeballoons.data.sources import DataConfig

    design = experiment.ExperimentConfig(kind="transfer", seeds=1, arms=(experiment.Arm("a"),))
    record = experiment.ExperimentRun(design, downstream=DataConfig("synthetic"))
    jobs = experiment.plan(record)
    source = _finished_source(tmp_path, jobs)
    out = tmp_path / "out"
    out.mkdir()
    experiment.reuse_runs(out, jobs, source, lambda msg: None)
    assert (out / "pretrain-a").is_symlink() and (out / "pretrain-a").exists()
    moved = source.rename(tmp_path / "moved")
    assert (out / "pretrain-a").is_symlink() and not (out / "pretrain-a").exists()
    log = []
    experiment.reuse_runs(out, jobs, moved, log.append)
    assert (out / "pretrain-a").resolve() == (moved / "pretrain-a").resolve()
    assert log[0].startswith("pretrain-a: its link to ") and log[0].endswith("removed the link"), log
    assert log[1] == f"pretrain-a: reused from {moved / 'pretrain-a'}"
    # Without a source to link it from, the run loop removes the link and trains the run itself.
    moved.rename(tmp_path / "gone")
    trained = []
    monkeypatch.setattr(experiment, "_open_experiment_dir", lambda out, record: None)
    monkeypatch.setattr(experiment, "train", lambda run, path, **kw: trained.append(path.is_symlink() or path.name))
    log.clear()
    experiment.run_experiment(out, record, shard=(0, len(jobs)), log=log.append)
    assert trained == ["pretrain-a"] and not (out / "pretrain-a").is_symlink(), (trained, log)
    assert "removed the link" in log[0] and log[1] == "pretrain-a: training", log


def test_an_arm_continues_an_earlier_arms_pretraining(tmp_path, cli, monkeypatch):
    """``continues``: the arm's pretraining starts from the earlier arm's model (every matching
    tensor, the classifier too) on new scenes (that arm's seed + 1) and waits for it; its downstream
    arm starts from the continued model. Toy size, end to end."""
    toy_pre = {**TOY, "seed": 3}
    preset = tmp_path / "chain.json"
    preset.write_text(json.dumps({"base": "transfer", "downstream": TOY, "seeds": 1, "pretrain": toy_pre, "arms": [
        {"name": "short", "scene": "report"},
        {"name": "long", "scene": "report", "continues": "short", "train": {**toy_pre, "num_train": 12}}]}))
    from fakeballoons.data.sources import DataConfig

    exp = experiment.load_experiment_preset(str(preset))
    jobs = {j.name: j for j in experiment.plan(experiment.ExperimentRun(exp, DataConfig("synthetic")))}
    first, second = jobs["pretrain-short"].run, jobs["pretrain-long"].run
    assert (first.init, first.transfer, first.train.seed, jobs["pretrain-short"].needs) == (None, "auto", 3, ())
    assert (second.init, second.transfer, second.train.seed, jobs["pretrain-long"].needs) == (
        "pretrain-short/last.pt", "all-matching", 4, ("pretrain-short",))
    assert (second.train.num_train, first.train.num_train) == (12, 8)  # the arm's own recipe
    assert jobs["downstream-long-seed0"].run.init == "pretrain-long/last.pt"
    folder_dataset(tmp_path / "down")
    log = []
    real_train = experiment.train
    monkeypatch.setattr(experiment, "train", lambda *a, **kw: (log.append(a[1].name), real_train(*a, **kw))[1])
    args = ["experiment", "--preset", preset, "--data", f"folder:{tmp_path / 'down'}", "--classes", 3,
            "--out", tmp_path / "exp", "--quiet"]
    code, _, err = cli([*args, "--shard", "1/5"])  # pretrain-long alone: its input is not there yet
    assert code == 0 and log == [], err
    code, _, err = cli(args)
    assert code == 0, err
    assert log == ["pretrain-short", "pretrain-long", "downstream-baseline-seed0", "downstream-short-seed0",
                   "downstream-long-seed0"]
    record = json.loads((tmp_path / "exp" / "pretrain-long" / "transfer.json").read_text())
    assert record["checkpoint"].endswith("pretrain-short/last.pt")
    assert record["mode"] == "all-matching" and record["not_loaded"] == {} and record["counts"]["loaded"] > 0
    assert "| long |" in (tmp_path / "exp" / "report.md").read_text()


@pytest.mark.parametrize("arms, message", [
    ([{"name": "a", "continues": "b"}, {"name": "b"}], "must name an arm listed before it"),
    ([{"name": "a", "continues": "a"}], "must name an arm listed before it"),
])
def test_continues_must_name_an_earlier_arm(arms, message):
    from fakeballoons.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        experiment.ExperimentConfig(kind="transfer", arms=tuple(experiment.Arm(**a) for a in arms))
    with pytest.raises(ConfigError, match="only a transfer experiment continues"):
        experiment.ExperimentConfig(kind="sweep", arms=(experiment.Arm("a"), experiment.Arm("b", continues="a")))


def test_a_continued_pretraining_is_reused_only_with_the_run_it_continues(tmp_path):
    """--reuse-pretraining links a continued pretraining when the run it continued is the source's
    too (whatever path the source's run recorded for its init); where this experiment trains the
    first pretraining itself, the continued one is its own as well."""
    import torch

    from fakeballoons.data.sources import DataConfig
    from fakeballoons.train.loop import RunDir, write_run_config

    design = experiment.ExperimentConfig(kind="transfer", seeds=1, arms=(
        experiment.Arm("a"), experiment.Arm("b", continues="a")))
    jobs = experiment.plan(experiment.ExperimentRun(design, downstream=DataConfig("synthetic")))
    source = _finished_source(tmp_path, jobs)
    cont = next(j for j in jobs if j.name == "pretrain-b")
    (source / "pretrain-b").mkdir()
    torch.save({"epoch": cont.run.train.epochs}, source / "pretrain-b" / "last.pt")
    write_run_config(RunDir(source / "pretrain-b"), dataclasses.replace(cont.run, init=f"{source}/pretrain-a/last.pt"))
    out = tmp_path / "out"
    out.mkdir()
    experiment.reuse_runs(out, jobs, source, lambda msg: None)
    assert {p.name for p in out.iterdir()} == {"pretrain-a", "pretrain-b"}
    assert (out / "pretrain-b").resolve() == (source / "pretrain-b").resolve()
    own = tmp_path / "own"
    (own / "pretrain-a").mkdir(parents=True)  # trained here: pretrain-b continues another model
    experiment.reuse_runs(own, jobs, source, lambda msg: None)
    assert {p.name for p in own.iterdir()} == {"pretrain-a"} and not (own / "pretrain-a").is_symlink()
    # a source whose continued run started from another model is not this run
    write_run_config(RunDir(source / "pretrain-b"), dataclasses.replace(cont.run, init="elsewhere/model.pt"))
    other, log = tmp_path / "other", []
    other.mkdir()
    experiment.reuse_runs(other, jobs, source, log.append)
    assert {p.name for p in other.iterdir()} == {"pretrain-a"} and any("init" in m and "not linked" in m for m in log)


def test_the_240k_preset_is_the_160k_pretraining_continued_and_nothing_else():
    """transfer-240k: transfer-160k's pretraining, then 80,000 more scenes with the same recipe
    (seed 1: new scenes), both pretrained arms fine-tuned at 4e-3, the scratch arm as before."""
    from fakeballoons.data.sources import DataConfig

    t160, t240 = (experiment.load_experiment_preset(n) for n in ("transfer-160k", "transfer-240k"))
    assert dataclasses.replace(t240, arms=t160.arms) == t160  # the scratch arm, seeds, pretraining unchanged
    first, second = t240.arms
    assert (first.name, first.scene, first.continues) == (t160.arms[0].name, t160.arms[0].scene, "")
    assert (second.continues, second.scene) == (first.name, first.scene)
    assert t240.recipe(second) == dataclasses.replace(t160.pretrain, num_train=80000)
    for arm in t240.arms:
        assert t240.downstream_recipe(arm.name) == dataclasses.replace(t160.downstream, lr=0.004)
    jobs = {j.name: j.run for j in experiment.plan(experiment.ExperimentRun(t240, DataConfig("synthetic")))}
    assert jobs["pretrain-perlin-nuisance-240k"].train.seed == jobs["pretrain-perlin-nuisance"].train.seed + 1


def test_data_compare_by_the_directory_their_paths_lead_to(tmp_path, monkeypatch):
    """`folder:sbd` typed in its parent, `folder:/that/parent/sbd` and a path through a symbolic
    link are one dataset: an experiment made with one spelling is resumed with another, its runs
    compare equal and its finished runs are reused; another directory, or a path that is gone, is
    other data."""
    from fakeballoons.data.sources import DataConfig, same_place, spelt_like
    from fakeballoons.train.experiment import ExperimentConfig, ExperimentRun, _open_experiment_dir

    (tmp_path / "sbd").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "sbd", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    absolute = f"folder:{tmp_path / 'sbd'}"
    assert same_place("folder:sbd", absolute) and same_place("folder:link", "folder:./sbd/")
    assert not same_place("folder:sbd", "folder:other") and not same_place("folder:sbd", f"voc:{tmp_path / 'sbd'}")
    assert not same_place("folder:gone", "folder:gone/.") and not same_place("synthetic", "synthetic:perlin")
    typed, full = DataConfig("folder:sbd", classes=3), DataConfig(absolute, classes=3)
    assert spelt_like(typed, full) == full and spelt_like(DataConfig("folder:other", classes=3), full).source \
        == "folder:other"

    design = ExperimentConfig(kind="transfer", seeds=1, arms=(experiment.Arm("a"),))
    _open_experiment_dir(tmp_path / "exp", ExperimentRun(design, downstream=typed))
    _open_experiment_dir(tmp_path / "exp", ExperimentRun(design, downstream=DataConfig("folder:link", classes=3)))
    with pytest.raises(UserError, match="other settings"):
        _open_experiment_dir(tmp_path / "exp", ExperimentRun(design, downstream=DataConfig("folder:other", classes=3)))
    with pytest.raises(UserError, match="other settings"):  # the same directory, other options
        _open_experiment_dir(tmp_path / "exp", ExperimentRun(design, downstream=DataConfig(absolute, classes=4)))

    jobs = experiment.plan(ExperimentRun(design, downstream=typed))
    source = _finished_source(tmp_path, jobs)  # its scratch arm recorded as folder:sbd
    scratch = next(j for j in jobs if j.name.startswith("downstream-baseline"))
    assert scratch.run.difference(dataclasses.replace(scratch.run, data=full)) is None
    assert scratch.run.difference(dataclasses.replace(scratch.run, data=DataConfig("folder:other", classes=3)))
    mine = experiment.plan(ExperimentRun(design, downstream=full))
    out = tmp_path / "out"
    out.mkdir()
    experiment.reuse_runs(out, mine, source, lambda msg: None, scratch=True)
    assert (out / scratch.name).resolve() == (source / scratch.name).resolve()
