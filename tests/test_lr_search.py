"""benchmarks/lr_search.py, the ImageNet study's learning-rate search: which rate comes next, when it
stops, and the table it prints from run directories."""

import importlib.util
import json
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "lr_search.py"
_SPEC = importlib.util.spec_from_file_location("lr_search", _PATH)
lr_search = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(lr_search)


def fake_run(root: Path, arm: str, lr: float, iou: float, epochs: int = 3, done: int = 3) -> None:
    """A run directory as fakeballoons train leaves it, reduced to what the search reads."""
    run = root / f"{arm}-lr{lr:g}"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"train": {"epochs": epochs, "lr": lr}}))
    lines = [{"epoch": e, "metrics": {"macro_iou": {"value": iou, "low": iou - 0.03, "high": iou + 0.03}}}
             for e in range(1, done + 1)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_the_search_starts_at_0_004_and_climbs_while_it_gains(tmp_path):
    assert lr_search.next_rate(tmp_path, "a") == (0.004, False)
    fake_run(tmp_path, "a", 0.004, 0.50)
    assert lr_search.next_rate(tmp_path, "a") == (0.008, False)  # the larger neighbour first
    fake_run(tmp_path, "a", 0.008, 0.55)
    assert lr_search.next_rate(tmp_path, "a") == (0.016, False)
    fake_run(tmp_path, "a", 0.016, 0.52)
    assert lr_search.next_rate(tmp_path, "a") == (None, False)  # both neighbours of 0.008 have run
    assert lr_search.next_rate(tmp_path, "b") == (0.004, False)  # arms are searched apart


def test_the_search_goes_down_when_the_larger_rate_loses_and_stops_at_the_grids_end(tmp_path):
    fake_run(tmp_path, "a", 0.004, 0.50)
    fake_run(tmp_path, "a", 0.008, 0.45)
    assert lr_search.next_rate(tmp_path, "a") == (0.002, False)
    fake_run(tmp_path, "a", 0.002, 0.52)
    assert lr_search.next_rate(tmp_path, "a") == (0.001, False)
    fake_run(tmp_path, "a", 0.001, 0.53)
    assert lr_search.next_rate(tmp_path, "a") == (None, False)  # 0.0005 is off the grid


def test_an_unfinished_run_is_resumed_first(tmp_path):
    fake_run(tmp_path, "a", 0.004, 0.50)
    fake_run(tmp_path, "a", 0.008, 0.40, epochs=3, done=1)
    assert lr_search.next_rate(tmp_path, "a") == (0.008, True)


def test_the_table_marks_each_arms_best_rate_and_unfinished_runs(tmp_path, capsys):
    fake_run(tmp_path, "scratch", 0.004, 0.50)
    fake_run(tmp_path, "scratch", 0.008, 0.55)
    fake_run(tmp_path, "imagenet", 0.002, 0.601, done=2)
    assert lr_search.main(["table", str(tmp_path)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == "| arm | 0.001 | 0.002 | 0.004 | 0.008 | 0.016 | 0.032 |"
    assert rows[2] == "| scratch |  |  | 50.0 [47.0, 53.0] | **55.0 [52.0, 58.0]** |  |  |"
    assert rows[3] == "| imagenet |  | (epoch 2 of 3) |  |  |  |  |"


@pytest.mark.parametrize("rate", [0.001, 0.002, 0.004, 0.008, 0.016, 0.032])
def test_run_names_read_back_as_their_rate(rate):
    assert float(lr_search.rate_name(rate)) == rate


def test_run_takes_its_own_options_before_the_separator_and_trains_with_the_rest(tmp_path, monkeypatch):
    calls = []

    def train(cmd):
        calls.append(cmd)
        fake_run(tmp_path, "scenes", float(cmd[cmd.index("--lr") + 1]), 0.5 - len(calls) / 100)
        return 0

    monkeypatch.setattr(lr_search.subprocess, "call", train)
    assert lr_search.main(["run", str(tmp_path), "scenes", "--init", "pretrained:x", "--", "--data", "folder:d",
                           "--holdout", "0.2"]) == 0
    assert [c[c.index("--lr") + 1] for c in calls] == ["0.004", "0.008", "0.002"]
    for cmd in calls:
        assert cmd[3:8] == ["train", "--data", "folder:d", "--holdout", "0.2"]
        assert cmd[-2:] == ["--init", "pretrained:x"] and "--resume" not in cmd


def test_keep_copies_the_records_of_finished_runs_and_the_search_goes_on_from_them(tmp_path):
    runs, records = tmp_path / "runs", tmp_path / "records"
    fake_run(runs, "a", 0.004, 0.50)
    fake_run(runs, "a", 0.008, 0.55)
    fake_run(runs, "a", 0.016, 0.40, done=1)  # unfinished: not kept
    (runs / "a-lr0.004" / "last.pt").write_bytes(b"weights")  # not a record
    assert lr_search.main(["keep", str(runs), str(records)]) == 0
    assert sorted(p.name for p in records.iterdir()) == ["a-lr0.004", "a-lr0.008"]
    assert sorted(p.name for p in (records / "a-lr0.004").iterdir()) == ["config.json", "metrics.jsonl"]
    assert lr_search.next_rate(records, "a") == (0.016, False)
