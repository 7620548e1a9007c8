"""Runs linked from other experiment directories (--reuse, --reuse-pretraining): what is reused and
what never is, shards started together, links to removed runs, data compared by directory."""

import dataclasses
import json

import pytest

from experiment_toys import TOY, folder_dataset
from fakeballoons.errors import UserError
from fakeballoons.train import experiment


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
