"""Runs that cannot be mixed up, doubled or emptied: data recorded by the directory it resolved to,
one writer per run directory, initialisations that load the whole backbone (export's output
included), export refusing what it cannot write honestly, and a stray torchrun environment."""

import fcntl
import json
import os
import subprocess
import sys

import pytest
import torch

from experiment_toys import folder_dataset
from fakeballoons.errors import UserError
from fakeballoons.train import loop

TINY = ["--preset", "quick", "--size", "32", "--batch-size", "4", "--bootstrap", "20", "--quiet"]


def _folders(tmp_path):
    for name in ("A", "B"):
        folder_dataset(tmp_path / name / "data")
    # B's pictures differ from A's (another seed would be the same toy): darken them
    from PIL import Image
    for p in (tmp_path / "B" / "data" / "train").iterdir():
        Image.eval(Image.open(p), lambda v: v // 2).save(p)


@pytest.mark.slow
def test_a_relative_folder_is_the_directory_it_led_to_when_the_run_started(tmp_path, monkeypatch, cli):
    _folders(tmp_path)
    monkeypatch.chdir(tmp_path / "A")
    assert cli(["train", "--data", "folder:data", "--classes", "3", "--out", "../run", "--epochs", "1", *TINY])[0] == 0
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["data"]["source"]
    assert recorded == f"folder:{tmp_path / 'A' / 'data'}"
    monkeypatch.chdir(tmp_path / "B")
    code, _, err = cli(["train", "--data", "folder:data", "--classes", "3", "--out", "../run", "--epochs", "2", *TINY])
    assert code == 2 and "other settings" in err and "data.source" in err
    # the same data spelt from B is the same run
    assert cli(["train", "--data", "folder:../A/data", "--classes", "3", "--out", "../run", "--epochs", "2",
                *TINY])[0] == 0
    assert [json.loads(x)["epoch"] for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def _hold_lock(path):
    """Another process holding ``path``'s lock, as a second train or experiment would."""
    path.mkdir(parents=True, exist_ok=True)
    child = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys\n"
                              f"fd = os.open({str(path)!r}, os.O_RDONLY)\n"
                              "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\nsys.stdin.read()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    return child


def test_a_second_writer_of_a_run_directory_is_refused_in_one_line(tmp_path, cli):
    out = tmp_path / "run"
    holder = _hold_lock(out)
    try:
        code, _, err = cli(["train", "--data", "synthetic:perlin", "--num-train", "8", "--num-val", "4", "--epochs",
                            "1", "--out", out, *TINY])
    finally:
        holder.stdin.close()
        holder.wait()
    assert code == 2 and err.count("\n") == 1 and "in use by another process" in err
    assert list(out.iterdir()) == []  # nothing written by the refused one
    # once the other has ended, the directory is free
    assert cli(["train", "--data", "synthetic:perlin", "--num-train", "8", "--num-val", "4", "--epochs", "1",
                "--out", out, *TINY])[0] == 0
    fd = os.open(out, os.O_RDONLY)  # and this process let go of it when the run ended
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)


def test_a_refused_run_leaves_no_directory_behind(tmp_path, cli):
    out = tmp_path / "new"
    code, _, err = cli(["train", "--data", "synthetic:perlin", "--out", out, "--resume", "--init", tmp_path / "none.pt",
                        *TINY])
    assert code == 2 and not out.exists()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from fakeballoons.cli import main

    out = tmp_path_factory.mktemp("r") / "run"
    assert main(["train", "--data", "synthetic:perlin", "--num-train", "8", "--num-val", "4", "--epochs", "1",
                 "--out", str(out), *TINY]) == 0
    return out


@pytest.mark.slow
def test_init_takes_what_export_writes_and_loads_the_whole_backbone(run, tmp_path, cli):
    assert cli(["export", run, "--out", tmp_path / "b.pt"])[0] == 0
    out = tmp_path / "from-export"
    assert cli(["train", "--data", "synthetic:perlin", "--num-train", "8", "--num-val", "4", "--epochs", "1",
                "--init", tmp_path / "b.pt", "--out", out, *TINY])[0] == 0
    record = json.loads((out / "transfer.json").read_text())
    backbone = [k for k in torch.load(run / "last.pt", weights_only=True)["model"] if k.startswith("backbone.")]
    assert set(backbone) <= set(record["loaded"])


@pytest.mark.slow
def test_an_init_that_loads_less_than_the_backbone_is_refused(run, tmp_path, cli):
    state = torch.load(run / "last.pt", weights_only=True)["model"]
    partial = {k: v for i, (k, v) in enumerate(state.items()) if i % 2}
    torch.save(partial, tmp_path / "half.pt")
    torch.save({"something.else": torch.zeros(3)}, tmp_path / "other.pt")
    for bad in ("half.pt", "other.pt"):
        out = tmp_path / f"from-{bad}"
        code, _, err = cli(["train", "--data", "synthetic:perlin", "--num-train", "8", "--num-val", "4", "--epochs",
                            "1", "--init", tmp_path / bad, "--out", out, *TINY])
        assert code == 2 and err.count("\n") == 1 and "backbone tensors" in err, err
        assert not out.exists()


@pytest.mark.slow
def test_export_refuses_a_json_name_nan_weights_and_wrong_shapes(run, tmp_path, cli):
    code, _, err = cli(["export", run, "--out", tmp_path / "x.json"])
    assert code == 2 and err.count("\n") == 1 and not (tmp_path / "x.json").exists()
    ckpt = torch.load(run / "last.pt", weights_only=True)
    name = next(k for k in ckpt["model"] if k.startswith("backbone.") and k.endswith("weight"))
    for label, value in (("nan", torch.full_like(ckpt["model"][name], float("nan"))), ("shape", torch.zeros(3, 1))):
        bad = {**ckpt, "model": {**ckpt["model"], name: value}}
        torch.save(bad, tmp_path / f"{label}.pt")
        code, _, err = cli(["export", tmp_path / f"{label}.pt", "--out", tmp_path / f"{label}-out.pt"])
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, (label, err)
        assert not (tmp_path / f"{label}-out.pt").exists()


@pytest.mark.parametrize("environ, words", [
    ({"WORLD_SIZE": "x"}, "WORLD_SIZE='x' is not a whole number"),
    ({"LOCAL_WORLD_SIZE": "x"}, "LOCAL_WORLD_SIZE='x'"),
    ({"WORLD_SIZE": "2"}, "RANK, MASTER_ADDR, MASTER_PORT are not"),
    ({"WORLD_SIZE": "2", "RANK": "5", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}, "RANK=5 must be below"),
])
def test_a_stray_torchrun_environment_is_one_line(environ, words):
    with pytest.raises(UserError, match=words.replace("(", r"\(").replace("'", "'")):
        loop.setup_distributed("cpu", environ)


@pytest.mark.slow
def test_report_csv_and_compare_are_generated_from_run_directories(run, tmp_path, cli):
    import csv
    import io
    import shutil

    code, out, _ = cli(["report", run, "--csv"])
    rows = list(csv.DictReader(io.StringIO(out)))
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert code == 0 and len(rows) == 1 and rows[0]["run"] == str(run) and rows[0]["epoch"] == str(last["epoch"])
    assert float(rows[0]["macro_iou"]) == pytest.approx(100 * last["metrics"]["macro_iou"]["value"], abs=0.005)
    twin = tmp_path / "twin"
    shutil.copytree(run, twin)
    code, out, _ = cli(["report", "--compare", run, "--base", twin, "--csv"])
    rows = {r["metric"]: r for r in csv.DictReader(io.StringIO(out))}
    assert code == 0 and float(rows["macro_iou"]["difference"]) == 0.0  # a run against itself
    assert float(rows["macro_iou"]["images_low"]) == 0.0 == float(rows["macro_iou"]["images_high"])
    code, out, _ = cli(["report", "--compare", run, "--base", twin])
    assert code == 0 and out.startswith("| arm |") and "+0.0" in out
    code, _, err = cli(["report", "--compare", run, twin, "--base", twin])
    assert code == 2 and "as many runs" in err


def test_a_second_experiment_writing_the_same_run_is_refused_in_one_line(tmp_path, cli, monkeypatch):
    from experiment_toys import TOY
    from fakeballoons.train import experiment

    folder_dataset(tmp_path / "down")
    design = tmp_path / "toy.json"
    design.write_text(json.dumps({"pretrain": TOY, "downstream": TOY, "seeds": 1}))
    out = tmp_path / "exp"
    args = ["experiment", "--preset", design, "--data", f"folder:{tmp_path / 'down'}", "--classes", 3, "--out", out,
            "--quiet"]

    def stop(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment, "train", stop)  # the experiment directory made, no run started
    assert cli(args)[0] == 130
    monkeypatch.undo()
    holder = _hold_lock(out / "pretrain-perlin")  # as another experiment training that run would
    try:
        code, _, err = cli(args)
    finally:
        holder.stdin.close()
        holder.wait()
    assert code == 2 and err.count("\n") == 1 and "in use by another process" in err
    assert list((out / "pretrain-perlin").iterdir()) == []
