"""train/report: run files, resume equality, --init, DDP with gloo, NaN stop, bad inputs."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from fakeballoons.cli import main
from fakeballoons.data import files, formats
from fakeballoons.data.sources import DataConfig
from fakeballoons.errors import ConfigError
from fakeballoons.train import loop
from fakeballoons.train.models import build_model, final_layers
from fakeballoons.train.run import RunConfig, TrainConfig, load_train_preset

TINY = ["--preset", "quick", "--size", "32", "--num-train", "16", "--num-val", "8", "--batch-size", "4",
        "--bootstrap", "50", "--quiet"]
DATA = "synthetic:perlin"




def lines(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A two-epoch tiny run, shared by several tests."""
    run = tmp_path_factory.mktemp("runs") / "a"
    assert main(["train", "--data", DATA, "--out", str(run), "--epochs", "2", *TINY]) == 0
    return run


@pytest.mark.slow
def test_run_writes_all_files(trained):
    assert sorted(os.listdir(trained)) == ["best.pt", "config.json", "last.pt", "metrics.jsonl", "val_confusion.pt"]
    per_image = torch.load(trained / "val_confusion.pt", weights_only=True)
    assert per_image["index"].tolist() == list(range(8)) and per_image["confusion"].shape == (8, 4, 4)
    assert per_image["epoch"] == 2
    config = json.loads((trained / "config.json").read_text())
    assert config["data"]["source"] == DATA and config["train"]["model"] == "lraspp_mobilenet_v3_large"
    assert config["train"]["size"] == 32 and config["train"]["epochs"] == 2
    ls = lines(trained)
    assert [x["epoch"] for x in ls] == [1, 2]
    for x in ls:
        assert set(x) == {"epoch", "train_loss", "lr", "metrics", "images_per_s", "seconds"}
        assert set(x["metrics"]) == {"micro_accuracy", "macro_accuracy", "micro_iou", "macro_iou", "micro_f1",
                                     "macro_f1"}
        for v in x["metrics"].values():
            assert 0 <= v["low"] <= v["value"] <= v["high"] <= 1
        assert x["images_per_s"] > 0 and x["train_loss"] > 0
    ckpt = torch.load(trained / "last.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "epoch", "config"} <= set(ckpt)
    assert ckpt["epoch"] == 2 and ckpt["config"] == config


@pytest.mark.slow
def test_resume_gives_the_same_next_epoch(trained, tmp_path, monkeypatch, cli):
    run = tmp_path / "b"
    real_save = formats.save_torch

    def save_then_die(path, obj):
        real_save(path, obj)
        if path.name == "last.pt" and obj["epoch"] == 1:
            raise KeyboardInterrupt  # the process is stopped right after epoch 1's checkpoint

    monkeypatch.setattr(formats, "save_torch", save_then_die)
    assert cli(["train", "--data", DATA, "--out", run, "--epochs", "2", *TINY])[0] == 130
    monkeypatch.setattr(formats, "save_torch", real_save)
    # as if killed after writing epoch 2's metrics line but before its checkpoint
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({**lines(run)[0], "epoch": 2}) + "\n")
    assert cli(["train", "--data", DATA, "--out", run, "--epochs", "2", "--resume", *TINY])[0] == 0
    a, b = lines(trained), lines(run)
    assert [x["epoch"] for x in b] == [1, 2]
    for x, y in zip(a, b):
        assert x["train_loss"] == y["train_loss"] and x["metrics"] == y["metrics"] and x["lr"] == y["lr"]
    wa = torch.load(trained / "last.pt", weights_only=True)["model"]
    wb = torch.load(run / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_init_reproduces_evaluation(trained, tmp_path, cli):
    run = tmp_path / "eval"
    code, _, err = cli(["train", "--data", DATA, "--out", run, "--epochs", "0", "--init", trained / "best.pt",
                            "--transfer", "all-matching", *TINY])
    assert code == 0, err
    best = torch.load(trained / "best.pt", weights_only=True)
    assert lines(run)[0]["metrics"] == best["metrics"]
    record = json.loads((run / "transfer.json").read_text())
    assert record["counts"]["not_loaded"] == 0 and record["mode"] == "all-matching"


def test_transfer_without_init_warns_and_records_auto(tmp_path, cli):
    """--transfer means nothing to a run from random weights: the user is told, and the run records
    'auto' (so it equals any other run from scratch, e.g. a scratch arm of another experiment)."""
    run = tmp_path / "scratch"
    code, _, err = cli(["train", "--data", DATA, "--out", run, "--epochs", "0", "--transfer", "backbone", *TINY])
    assert code == 0 and "--transfer backbone does nothing without --init" in err, err
    assert json.loads((run / "config.json").read_text())["transfer"] == "auto"


@pytest.mark.slow
def test_transfer_auto_reinitialises_the_final_layers(trained):
    from fakeballoons.train.transfer import load_init

    source = torch.load(trained / "best.pt", weights_only=True)["model"]
    torch.manual_seed(123)
    model = build_model("lraspp_mobilenet_v3_large", 4)
    record = load_init(model, str(trained / "best.pt"), "auto")
    final = set(final_layers(model))
    assert final == {"classifier.low_classifier.weight", "classifier.low_classifier.bias",
                     "classifier.high_classifier.weight", "classifier.high_classifier.bias"}
    state = model.state_dict()
    assert set(record["loaded"]) == set(source) - final  # every tensor but the final layers
    for name in record["loaded"]:
        assert torch.equal(state[name], source[name])
    for name in final:
        assert name in record["not_loaded"] and not torch.equal(state[name], source[name])
    # a model with other classes: the final layers differ in shape and are re-initialised too
    other = build_model("lraspp_mobilenet_v3_large", 7)
    rec = load_init(other, str(trained / "best.pt"), "all-matching")
    assert "shape" in rec["not_loaded"]["classifier.high_classifier.weight"]
    backbone = load_init(build_model("lraspp_mobilenet_v3_large", 4), str(trained / "best.pt"), "backbone")
    assert backbone["loaded"] and all(n.startswith("backbone.") for n in backbone["loaded"])
    assert len(backbone["loaded"]) == sum(n.startswith("backbone.") for n in source)


def test_fcn_final_layers_include_aux():
    names = final_layers(build_model("fcn_resnet50", 3, aux_loss=True))
    assert names == ["classifier.4.weight", "classifier.4.bias", "aux_classifier.4.weight", "aux_classifier.4.bias"]


def _torchrun(args, nproc):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "fakeballoons", *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_ddp_two_processes_same_metrics_as_one(trained, tmp_path):
    common = ["train", "--data", DATA, "--epochs", "0", "--init", trained / "best.pt", "--transfer", "all-matching",
              *TINY]
    two = _torchrun([*common, "--out", tmp_path / "ddp"], 2)
    assert two.returncode == 0, two.stderr[-2000:]
    one = _torchrun([*common, "--out", tmp_path / "one"], 1)
    assert one.returncode == 0, one.stderr[-2000:]
    assert lines(tmp_path / "ddp")[0]["metrics"] == lines(tmp_path / "one")[0]["metrics"]
    # and DDP training runs end to end, rank 0 alone writing
    proc = _torchrun(["train", "--data", DATA, "--epochs", "1", "--out", tmp_path / "ddp-train", *TINY], 2)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [x["epoch"] for x in lines(tmp_path / "ddp-train")] == [1]


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, cli):
    real = loop.compute_loss
    state = {"epoch": 0}
    real_train_one = loop.train_one_epoch

    def spy_train_one(*args, **kwargs):
        state["epoch"] = args[5]
        return real_train_one(*args, **kwargs)

    def poisoned(outputs, labels, ignore_index):
        loss = real(outputs, labels, ignore_index)
        return loss * float("nan") if state["epoch"] == 2 else loss

    monkeypatch.setattr(loop, "compute_loss", poisoned)
    monkeypatch.setattr(loop, "train_one_epoch", spy_train_one)
    run = tmp_path / "nan"
    code, _, err = cli(["train", "--data", DATA, "--out", run, "--epochs", "3", *TINY])
    assert code == 1
    assert err.count("\n") == 1 and "loss became nan at epoch 2" in err and "Traceback" not in err
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 1
    assert [x["epoch"] for x in lines(run)] == [1]


@pytest.mark.slow
def test_folder_data(tmp_path, cli):
    assert cli(["generate", tmp_path / "ds", "--num", 12, "--size", 40, "--quiet", "--workers", 1,
                    "--val-fraction", 0.25])[0] == 0
    code, _, err = cli(["train", "--data", tmp_path / "ds", "--out", tmp_path / "run", "--epochs", "1",
                            *TINY])
    assert code == 0, err
    assert lines(tmp_path / "run")[0]["epoch"] == 1


@pytest.mark.slow
def test_report(trained, tmp_path, cli):
    code, out, _ = cli(["report", trained, trained, "--out", tmp_path / "rep"])
    assert code == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert md.count(f"| {trained.name} | 2 |") == 2 and "Macro F1" in md
    assert (tmp_path / "rep" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, message", [
    (["--data", "/nonexistent/dir"], "does not exist"),
    (["--data", "synthetic:simplex"], "--data: synthetic:NOISE takes a noise function"),
    (["--model", "resnet9000"], "invalid choice: 'resnet9000'"),
    (["--batch-size", "0"], "--batch-size: must be from 1"),
    (["--resume"], "holds no run (no config.json) to resume"),
    (["--init", "/nonexistent.pt"], "checkpoint not found"),
    (["--preset", "fast"], "unknown training preset 'fast'"),
    (["--bn-momentum", "1.5"], "--bn-momentum: must be from 0"),
])
def test_bad_inputs(tmp_path, cli, args, message):
    argv = ["train", "--out", tmp_path / "run", *TINY, *args]
    if "--data" not in args:
        argv += ["--data", DATA]
    code, _, err = cli(argv)
    assert code == 2, err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_bn_momentum_sets_every_batchnorm():
    def momenta(model):
        return {m.momentum for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}

    assert 0.01 in momenta(build_model("lraspp_mobilenet_v3_large", 4))  # torchvision's MobileNetV3 backbone
    assert momenta(build_model("lraspp_mobilenet_v3_large", 4, bn_momentum=0.1)) == {0.1}
    assert momenta(build_model("fcn_resnet50", 3, bn_momentum=0.0)) == {0.1}  # 0 keeps the model's own
    with pytest.raises(ConfigError, match="bn_momentum"):
        TrainConfig(bn_momentum=-0.5)


def test_a_run_from_before_a_new_option_still_resumes():
    """config.json of a run made before an option existed lacks it: it counts as the default."""
    new = RunConfig(DataConfig(DATA), TrainConfig())
    plain = new.to_dict()
    del plain["train"]["bn_momentum"]
    old = RunConfig.from_dict(plain)
    assert old.difference(new) is None and new.difference(old) is None
    changed = RunConfig(DataConfig(DATA), TrainConfig(bn_momentum=0.1, epochs=99))
    assert old.difference(changed) == "train.bn_momentum is 0.1 there, 0.0 here"
    # epochs may grow on resume
    assert old.difference(RunConfig(DataConfig(DATA), TrainConfig(epochs=99))) is None


@pytest.mark.slow
def test_the_same_command_again_continues_a_run_and_leaves_a_finished_one_as_it_was(trained, tmp_path, cli):
    run = tmp_path / "again"
    shutil.copytree(trained, run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.name != "config.json"}
    assert cli(["train", "--data", DATA, "--out", run, "--epochs", "2", *TINY])[0] == 0  # finished: nothing to do
    assert lines(run) == lines(trained)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.name != "config.json"} == before
    code, _, err = cli(["train", "--data", DATA, "--out", run, "--epochs", "2", *TINY, "--lr", "0.5"])
    assert code == 2 and "other settings" in err


@pytest.mark.slow
@pytest.mark.parametrize("resume", [[], ["--resume"]])
def test_a_run_with_results_but_no_last_pt_is_refused_and_nothing_deleted(trained, tmp_path, cli, resume):
    run = tmp_path / "lost"
    shutil.copytree(trained, run)
    (run / "last.pt").unlink()
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    code, _, err = cli(["train", "--data", DATA, "--out", run, "--epochs", "2", *TINY, *resume])
    assert code == 2 and err.count("\n") == 1 and "no last.pt" in err and "metrics.jsonl" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_presets():
    assert load_train_preset("paper") == TrainConfig()  # the report's recipe is the default
    quick = load_train_preset("quick")
    assert quick.model == "lraspp_mobilenet_v3_large" and quick.size < 520


def test_export_backbone_loads_into_torchvision_by_name(trained, tmp_path, cli):
    import torchvision

    from fakeballoons.train.export import load_line

    out = tmp_path / "backbone.pt"
    code, _, err = cli(["export", str(trained), "--out", str(out)])
    assert code == 0, err
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["torchvision_model"] == "mobilenet_v3_large"
    assert record["run"]["data"]["source"] == DATA and record["run"]["train"]["model"] == "lraspp_mobilenet_v3_large"
    assert record["load"] == load_line("backbone.pt", "mobilenet_v3_large")
    model = torchvision.models.mobilenet_v3_large()
    result = model.load_state_dict(torch.load(out, weights_only=True), strict=False)
    assert not result.unexpected_keys and result.missing_keys
    assert all(k.startswith("classifier.") for k in result.missing_keys)
    seg = torch.load(trained / "last.pt", weights_only=True)["model"]
    for k, v in model.features.state_dict().items():
        assert torch.equal(v, seg[f"backbone.{k}"]), k
    # never overwrites, and refuses what is not a checkpoint: exit 2, one line
    code, _, err = cli(["export", str(trained), "--out", str(out)])
    assert code == 2 and "exists" in err and len(err.strip().splitlines()) == 1
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    code, _, err = cli(["export", str(junk), "--out", str(tmp_path / "b2.pt")])
    assert code == 2 and not (tmp_path / "b2.pt").exists() and not (tmp_path / "b2.json").exists()
    code, _, err = cli(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "b3.pt")])
    assert code == 2 and "does not exist" in err


def test_export_records_the_runs_a_model_was_trained_on_from(trained, tmp_path):
    """A model initialised from another checkpoint (a continued pretraining) exports with the runs
    before it (``made_from``), found where recorded or as a sibling run directory; a chain whose
    checkpoint is gone ends with the path and why, and a garbled one does not stop the export."""
    from fakeballoons.train.export import export_backbone

    ckpt = torch.load(trained / "last.pt", weights_only=True)
    root = tmp_path / "exp"

    def run_from(name, init):
        (root / name).mkdir(parents=True)
        torch.save({**ckpt, "config": {**ckpt["config"], "init": init, "transfer": "all-matching"}},
                   root / name / "last.pt")
        return root / name

    shutil.copytree(trained, root / "first")
    second = run_from("second", str(root / "first" / "last.pt"))  # recorded where it is
    third = run_from("third", "elsewhere/second/last.pt")  # recorded relative to another directory
    record = export_backbone(third, tmp_path / "b3.pt")
    assert [m["checkpoint"] for m in record["made_from"]] == [str(second / "last.pt"), str(root / "first" / "last.pt")]
    assert record["made_from"][1]["run"]["init"] is None and record["made_from"][1]["epoch"] == 2
    assert json.loads((tmp_path / "b3.json").read_text())["made_from"] == record["made_from"]
    gone = run_from("gone", str(tmp_path / "removed" / "last.pt"))
    assert export_backbone(gone, tmp_path / "b4.pt")["made_from"] == [
        {"checkpoint": str(tmp_path / "removed" / "last.pt"), "missing": "not found (moved or removed)"}]
    (root / "bad").mkdir()
    (root / "bad" / "last.pt").write_bytes(b"garbage")
    chain = export_backbone(run_from("after-bad", str(root / "bad" / "last.pt")), tmp_path / "b5.pt")["made_from"]
    assert len(chain) == 1 and chain[0]["missing"].startswith("unreadable")
    torch.save({"config": {"not": "a run"}}, root / "bad" / "last.pt")  # reads, but holds no run config
    chain = export_backbone(root / "after-bad", tmp_path / "b7.pt")["made_from"]
    assert len(chain) == 1 and chain[0]["missing"].startswith("unreadable (")
    assert export_backbone(trained, tmp_path / "b6.pt")["made_from"] == []


# --- faults and hostile input ----------------------------------------------------------


class _RunsCode:
    """Pickles as a call of os.system: what a crafted checkpoint would run on an unsafe load."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_crafted_checkpoint_runs_no_code(tmp_path, cli):
    marker, evil = tmp_path / "ran", tmp_path / "evil.pt"
    torch.save({"model": _RunsCode(marker)}, evil)
    code, _, err = cli(["train", "--data", DATA, "--out", tmp_path / "run", *TINY, "--init", evil])
    assert code == 2 and err.count("\n") == 1 and "refused to load it" in err
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_a_run_stopped_before_its_first_checkpoint_restarts(tmp_path):
    run = RunConfig(DataConfig(DATA), TrainConfig(epochs=1))
    out = tmp_path / "run"
    loop.open_run_dir(out, run, resume=False)
    for resume in (False, True):  # the same command, or --resume: both start it again
        (out / "metrics.jsonl").write_text("")  # what an interrupted first epoch leaves
        run_dir, resuming = loop.open_run_dir(out, run, resume=resume)
        assert not resuming and not run_dir.metrics.exists()


def test_refuses_a_directory_of_the_users_files(tmp_path, cli):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "best.pt").write_bytes(b"my model")
    (out / "metrics.jsonl").write_text("my notes\n")
    code, _, err = cli(["train", "--data", DATA, "--out", out, *TINY])
    assert code == 2 and "not empty and holds no run" in err
    assert (out / "best.pt").read_bytes() == b"my model" and sorted(os.listdir(out)) == ["best.pt", "metrics.jsonl"]


def test_an_infinite_learning_rate_in_a_preset_is_refused(tmp_path, cli):
    preset = tmp_path / "p.json"
    preset.write_text('{"base": "quick", "lr": Infinity}')
    code, _, err = cli(["train", "--data", DATA, "--out", tmp_path / "run", "--preset", preset, "--quiet"])
    assert code == 2 and err.count("\n") == 1 and "--lr: must be a finite number" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_full_disk_is_one_line_leaves_no_temporary_and_the_run_restarts(tmp_path, monkeypatch, cli):
    """The disk fills while the first checkpoint is written: one line, exit 2, no temporary file
    left; with space again, the same command says the epoch's results have no checkpoint (nothing
    of a run with results is deleted) and, once they are moved away, starts the run afresh."""
    import builtins
    import errno

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            self.fh.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    def filling_open(path, mode="r", *args, **kwargs):
        fh = builtins.open(path, mode, *args, **kwargs)
        return Full(fh) if ".pt." in str(path) and str(path).endswith(".tmp") else fh

    monkeypatch.setattr(files, "open", filling_open, raising=False)  # the atomic writers live in data.files
    run = tmp_path / "run"
    argv = ["train", "--data", DATA, "--out", run, "--epochs", "1", *TINY]
    code, _, err = cli(argv)
    assert code == 2 and err.count("\n") == 1 and "No space left on device" in err and "Traceback" not in err
    assert not [p.name for p in run.iterdir() if p.name.startswith(".") or p.name in ("last.pt", "best.pt")]
    monkeypatch.undo()
    code, _, err = cli(argv)
    assert code == 2 and err.count("\n") == 1 and "no last.pt" in err
    for name in ("metrics.jsonl", "val_confusion.pt"):
        (run / name).unlink(missing_ok=True)
    code, _, err = cli(argv)
    assert code == 0, err
    assert [x["epoch"] for x in lines(run)] == [1]


def test_a_checkpoint_with_non_finite_weights_is_refused(tmp_path, cli):
    state = build_model("lraspp_mobilenet_v3_large", 4).state_dict()
    name = next(k for k, v in state.items() if v.is_floating_point() and k.startswith("backbone."))
    state[name].view(-1)[0] = float("nan")
    torch.save({"model": state}, tmp_path / "nan.pt")
    code, _, err = cli(["train", "--data", DATA, "--out", tmp_path / "run", *TINY, "--epochs", "0",
                        "--init", tmp_path / "nan.pt"])
    assert code == 2 and err.count("\n") == 1 and f"non-finite values in {name}" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_non_finite_weights_stop_the_run(tmp_path, monkeypatch, cli):
    """Weights can become NaN while the loss that made them was finite (a huge step): the run
    stops before it evaluates or saves them."""
    real_train_one = loop.train_one_epoch

    def poisoning(model, *args, **kwargs):
        result = real_train_one(model, *args, **kwargs)
        if args[4] == 2:
            with torch.no_grad():
                next(model.parameters()).view(-1)[0] = float("inf")
        return result

    monkeypatch.setattr(loop, "train_one_epoch", poisoning)
    run = tmp_path / "inf"
    code, _, err = cli(["train", "--data", DATA, "--out", run, "--epochs", "3", *TINY])
    assert code == 1 and err.count("\n") == 1 and "weights became non-finite at epoch 2" in err
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 1
    assert [x["epoch"] for x in lines(run)] == [1]


@pytest.mark.parametrize("extra, warned", [([], True), (["--preset", "paper"], False), (["--preset", "quick"], False),
                                           (["--device", "cuda"], False)])
def test_the_gpu_recipe_on_a_cpu_is_pointed_to_the_quick_preset(tmp_path, monkeypatch, cli, extra, warned):
    calls = []
    monkeypatch.setattr(loop, "train", lambda run, out, **kw: calls.append(run))
    code, _, err = cli(["train", "--data", DATA, "--out", tmp_path / "run", *extra])
    assert code == 0 and len(calls) == 1
    assert calls[0].train == load_train_preset("quick" if "quick" in extra else "paper")
    assert err == ("fakeballoons train: warning: the default preset 'paper' is the report's GPU recipe "
                   "(FCN-ResNet50 at 520x520), minutes per batch on a CPU; for a CPU use --preset quick\n"
                   if warned else "")


def test_group_means_average_each_arm_over_the_epochs_all_its_runs_have():
    from fakeballoons.train.metrics import METRICS
    from fakeballoons.train.plots import group_means

    def run(values):
        return [{"epoch": e + 1, "metrics": {m: {"value": v, "low": v, "high": v} for m in METRICS}}
                for e, v in enumerate(values)]

    runs = [("a0", run([0.1, 0.3, 0.5])), ("a1", run([0.3, 0.5])), ("b0", run([0.2, 0.4, 0.6]))]
    means = group_means(runs, {"a0": "a", "a1": "a", "b0": "b"})
    epochs, mean, count = means["a"]
    assert epochs == [1, 2] and count == 2 and mean["macro_iou"] == pytest.approx([0.2, 0.4])
    assert means["b"][0] == [1, 2, 3] and means["b"][1]["micro_f1"] == pytest.approx([0.2, 0.4, 0.6])
    assert list(means) == ["a", "b"]
