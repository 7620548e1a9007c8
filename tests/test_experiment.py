"""The experiment runner end to end at toy size: every arm reported, interruption resumed, sweeps,
bad inputs refused."""

import dataclasses
import json
import re

import numpy as np
import pytest
from PIL import Image

from experiment_toys import TOY, folder_dataset
from fakeballoons.train import experiment


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
    # ... also when its downstream runs' checkpoints were deleted (their records are what a report reads)
    for run in exp.glob("downstream-*"):
        (run / "last.pt").unlink()
        (run / "best.pt").unlink(missing_ok=True)
    (exp / "report.md").unlink()
    assert cli(args)[0] == 0 and log == []
    assert (exp / "report.md").read_text() == report
    # a run that starts from a finished run whose checkpoint is gone is refused, naming it
    (exp / "pretrain-sc" / "last.pt").unlink()
    code, _, err = cli([*args, "--seeds", 3])
    assert code == 2 and "downstream-sc-seed2 starts from pretrain-sc" in err and "was removed" in err
    assert log == ["downstream-baseline-seed2", "downstream-perlin-seed2"]


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


SWEEP = {"kind": "sweep", "pretrain": TOY, "seeds": 2, "reference": "plain",
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
