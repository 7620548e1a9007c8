"""generate/verify: layout, determinism across workers and shards, crash and resume, bad inputs."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fakeballoons import SceneConfig, render, sample_scene
from fakeballoons.data import formats
from fakeballoons.data.generate import PART_SIZE, generate, parse_shard, plan_parts, prepare, start_method
from fakeballoons.data.recipe import CHUNK_SIZE, Recipe
from fakeballoons.data.verify import verify
from fakeballoons.errors import UserError

CONFIG = SceneConfig(height=32, width=48)
NUM = 70  # three chunks: 32 + 32 + 6


def tree(root: Path) -> dict[str, str]:
    """SHA-256 of every file below root, by relative path; hidden (temporary) files included."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ds"
    generate(out, Recipe(CONFIG, num=NUM, seed=5), workers=1, progress=False)
    return out


def test_layout_and_manifest(reference):
    manifest = json.loads((reference / "dataset.json").read_text())
    assert manifest["counts"] == {"total": 70, "train": 63, "val": 7}
    assert manifest["seed"] == 5 and manifest["format"] == "png" and manifest["num_classes"] == 3
    assert SceneConfig.from_dict(manifest["config"]) == CONFIG
    assert [c["colour"] for c in manifest["classes"]] == [[0, 0, 0], [0, 255, 128], [42, 0, 255], [255, 0, 42]]
    lines = [json.loads(x) for x in (reference / "scenes.jsonl").read_text().splitlines()]
    assert [r["index"] for r in lines] == list(range(70))
    assert [r["split"] for r in lines] == ["train"] * 63 + ["val"] * 7
    assert lines[3]["objects"] == sample_scene(CONFIG, 5, 3).to_dict()["objects"]
    for kind, folder in (("image", "images"), ("label", "labels"), ("instance", "instances")):
        assert len(list((reference / folder).glob("*.png"))) == 70
        assert lines[0]["files"][kind] == f"{folder}/000000.png"
    assert (reference / "splits" / "val.txt").read_text().split() == [f"{i:06d}" for i in range(63, 70)]
    coco = json.loads((reference / "annotations" / "instances_val.json").read_text())
    assert [im["id"] for im in coco["images"]] == list(range(63, 70))
    assert [c["id"] for c in coco["categories"]] == [1, 2, 3]
    assert len({a["id"] for a in coco["annotations"]}) == len(coco["annotations"]) > 7
    report = verify(reference)
    assert report.ok, report.problems
    assert report.samples == 70


def test_files_equal_the_renderer(reference):
    sample = render(sample_scene(CONFIG, 5, 66), CONFIG)
    np.testing.assert_array_equal(formats.read_image(reference / "images" / "000066.png"), sample.image)
    np.testing.assert_array_equal(formats.read_label(reference / "labels" / "000066.png"), sample.label)
    np.testing.assert_array_equal(formats.read_instance(reference / "instances" / "000066.png"), sample.instance)


@pytest.mark.slow
def test_worker_counts_and_shards_give_the_same_files(reference, tmp_path):
    recipe = Recipe(CONFIG, num=NUM, seed=5)
    generate(tmp_path / "w2", recipe, workers=2, progress=False)
    assert tree(tmp_path / "w2") == tree(reference)
    for i in (2, 0, 1):  # shards in any order; the last one to finish assembles the manifests
        summary = generate(tmp_path / "sh", recipe, workers=1, shard=(i, 3), progress=False)
        assert summary.finalized == (i == 1)
    assert tree(tmp_path / "sh") == tree(reference)


def test_workers_fork_only_from_a_single_threaded_process():
    code = ("from fakeballoons import SceneConfig, render, sample_scene\n"
            "from fakeballoons.data.generate import start_method\n"
            "print(start_method())\n"
            "config = SceneConfig(height=8, width=8)\n"
            "render(sample_scene(config, 0, 0), config)\n"  # numba's thread pool starts
            "print(start_method())\n")
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert said == ["fork" if sys.platform.startswith("linux") else "spawn", "spawn"]
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert start_method() == "spawn"  # a second thread: forking could copy a lock it holds
    finally:
        stop.set()
        thread.join()


@pytest.mark.slow
def test_forked_workers_write_the_same_files(reference, tmp_path):
    """In a fresh process (what the command line runs) the workers are forked, progress bar on."""
    code = ("import sys\n"
            "from fakeballoons import SceneConfig\n"
            "from fakeballoons.data.generate import generate, start_method\n"
            "from fakeballoons.data.recipe import Recipe\n"
            "assert start_method() == 'fork' or not sys.platform.startswith('linux')\n"
            f"generate(sys.argv[1], Recipe(SceneConfig(height={CONFIG.height}, width={CONFIG.width}), num={NUM}, "
            "seed=5), workers=2, progress=True)\n"
            "assert start_method() == 'fork' or not sys.platform.startswith('linux')\n")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "forked")], check=True, capture_output=True)
    assert tree(tmp_path / "forked") == tree(reference)


@pytest.mark.parametrize("num, workers", [(300, 2), (70, 3), (4, 2), (1, 2)])
def test_parts_cover_every_sample_once_and_shrink_at_the_end(num, workers):
    recipe = Recipe(CONFIG, num=num)
    parts = list(plan_parts(recipe, iter(range(recipe.num_chunks)), num, workers))
    assert [i for _, lo, hi, _ in parts for i in range(lo, hi)] == list(range(num))
    for c, lo, hi, last in parts:
        chunk = recipe.chunk_range(c)
        assert chunk.start <= lo < hi <= chunk.stop and last == (hi == chunk.stop)
        assert hi - lo <= PART_SIZE
    sizes = [hi - lo for _, lo, hi, _ in parts]
    assert sizes[-2 * workers:] == [1] * min(len(sizes), 2 * workers)  # the last ones: a sample each
    if num >= 2 * workers:
        assert len(parts) >= workers  # as many processes as workers get a part
    if num >= 100:
        assert max(sizes) == PART_SIZE and len(parts) < num / 2  # few tasks while much is left


def test_shard_from_torchrun_environment():
    assert parse_shard(None, {"RANK": "1", "WORLD_SIZE": "4"}) == (1, 4)
    assert parse_shard("2/3", {"RANK": "1", "WORLD_SIZE": "4"}) == (2, 3)
    assert parse_shard(None, {}) == (0, 1)


def test_resume_from_every_kind_of_interruption(reference, tmp_path):
    """States a kill can leave: a sample with some files, a chunk without its record, stray
    temporaries, no assembled manifests. Rerunning completes it to the same bytes."""
    out = tmp_path / "ds"
    shutil.copytree(reference, out)
    (out / "labels" / "000040.png").unlink()  # killed between a sample's renames
    (out / "parts" / "000001.jsonl").unlink()  # killed before the chunk record
    (out / "parts" / "000002.jsonl").unlink()
    for i in range(64, 70):  # a chunk never started
        for folder in ("images", "labels", "instances"):
            (out / folder / f"{i:06d}.png").unlink()
    (out / "images" / ".000041.png.abc123.tmp").write_bytes(b"half a png")
    (out / "parts" / ".000001.jsonl.x.tmp").write_bytes(b"{")
    (out / "scenes.jsonl").unlink()
    (out / "annotations" / "instances_train.json").unlink()
    summary = generate(out, Recipe(CONFIG, num=NUM, seed=5), workers=1, progress=False)
    assert summary.chunks_skipped == 1 and summary.samples_written == 32 + 6 and summary.finalized
    assert tree(out) == tree(reference)


@pytest.mark.slow
def test_killed_process_resumes_to_identical_bytes(tmp_path):
    """kill -9 a real generate (its whole process group, workers included), rerun, compare."""
    args = [sys.executable, "-m", "fakeballoons", "generate", "--num", "256", "--size", "96", "--noise", "sc",
            "--workers", "2", "--quiet", "--seed", "3"]
    first = subprocess.Popen(args + [str(tmp_path / "killed")], start_new_session=True)
    images = tmp_path / "killed" / "images"
    deadline = time.monotonic() + 120
    while len(list(images.glob("*.png"))) < 20:  # wait for the run to be well under way
        assert first.poll() is None, "generate ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert not (tmp_path / "killed" / "scenes.jsonl").exists()
    assert subprocess.run(args + [str(tmp_path / "killed")]).returncode == 0
    assert subprocess.run(args + [str(tmp_path / "clean")]).returncode == 0
    assert tree(tmp_path / "killed") == tree(tmp_path / "clean")


def test_voc_layout(tmp_path):
    generate(tmp_path / "voc", Recipe(CONFIG, num=10, seed=1, format="voc"), progress=False)
    voc = tmp_path / "voc" / "VOCdevkit" / "VOC2012"
    assert len(list((voc / "JPEGImages").glob("*.jpg"))) == 10
    assert (voc / "ImageSets" / "Segmentation" / "trainval.txt").read_text().split() == [f"{i:06d}" for i in range(10)]
    assert verify(tmp_path / "voc").ok


# --- the command line -----------------------------------------------------------------------------



def test_generate_verify_preview_cli(tmp_path, cli):
    out = tmp_path / "ds"
    code, _, err = cli(["generate", out, "--num", 12, "--size", 32, "--noise", "sc", "--quiet",
                            "--workers", 1])
    assert code == 0, err
    code, stdout, _ = cli(["verify", out])
    assert code == 0 and "OK, 12 samples" in stdout
    assert cli(["preview", out, "--out", tmp_path / "p.png", "--count", 4])[0] == 0
    assert formats.read_image(tmp_path / "p.png").shape[1] > 4 * 2 * 100


def one_line_error(code, err):
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["--num", "-1"], "--num: must be from 1"),
    (["--shard", "3/2"], "--shard 3/2: need N >= 1 and 0 <= I < N"),
    (["--shard", "x"], "--shard must look like I/N"),
    (["--workers", "0"], "--workers must be 'auto' or a positive integer"),
    (["--size", "0"], "--size: must be from 1"),
])
def test_bad_generate_options(tmp_path, cli, args, message):
    code, _, err = cli(["generate", tmp_path / "ds", "--num", 4, *args])
    one_line_error(code, err)
    assert message in err
    assert not (tmp_path / "ds").exists()


def test_unwritable_out(tmp_path, cli):
    (tmp_path / "file").write_text("x")
    code, _, err = cli(["generate", tmp_path / "file" / "ds", "--num", 2, "--size", 8])
    one_line_error(code, err)
    assert "cannot write to" in err


def test_refuses_other_recipe_and_foreign_directory(reference, tmp_path, cli):
    out = tmp_path / "ds"
    shutil.copytree(reference, out)
    before = tree(out)
    code, _, err = cli(["generate", out, "--num", NUM, "--seed", 5, "--height", 32, "--width", 48,
                            "--noise", "sc"])
    one_line_error(code, err)
    assert "different recipe" in err and 'config.noise is "perlin" there, "sc" here' in err
    code, _, err = cli(["generate", out, "--num", NUM, "--seed", 6, "--height", 32, "--width", 48])
    one_line_error(code, err)
    assert "seed is 5 there, 6 here" in err
    assert tree(out) == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    code, _, err = cli(["generate", tmp_path / "other", "--num", 2])
    one_line_error(code, err)
    assert "not empty" in err and (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_verify_finds_corruption(reference, tmp_path, cli):
    out = tmp_path / "ds"
    shutil.copytree(reference, out)
    path = out / "labels" / "000007.png"
    path.write_bytes(path.read_bytes()[:50])
    code, _, err = cli(["verify", out])
    one_line_error(code, err)
    assert "labels/000007.png does not match the manifest" in err
    # the advice works: delete it, rerun the same command, and the dataset is whole again
    path.unlink()
    generate(out, Recipe(CONFIG, num=NUM, seed=5), progress=False)
    assert tree(out) == tree(reference)
    code, _, err = cli(["verify", tmp_path / "nothing"])
    one_line_error(code, err)


def test_verify_finds_undecodable_png_with_matching_hash(reference, tmp_path):
    out = tmp_path / "ds"
    shutil.copytree(reference, out)
    bad = b"\x89PNG\r\n\x1a\n" + b"\0" * 20
    (out / "images" / "000002.png").write_bytes(bad)
    lines = (out / "scenes.jsonl").read_text().splitlines()
    record = json.loads(lines[2])
    record["sha256"]["image"] = hashlib.sha256(bad).hexdigest()
    lines[2] = json.dumps(record, separators=(",", ":"))
    (out / "scenes.jsonl").write_text("\n".join(lines) + "\n")
    report = verify(out)
    assert not report.ok and "cannot read image" in report.problems[0]


def test_chunk_size_is_what_the_tests_assume():
    assert CHUNK_SIZE == 32


# --- concurrent runs and power loss ----------------------------------------------------

# A process that runs the fakeballoons command once per line of argv (JSON) on its stdin and answers
# each with a line {"code", "err"}: two of them, fed at once, start two runs within microseconds.
CONTENDER = """
import contextlib, io, json, sys, traceback
from fakeballoons.cli import main
for line in sys.stdin:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(json.loads(line))
        except SystemExit as exc:
            code = exc.code
        except BaseException:
            traceback.print_exc()
            code = 1
    print(json.dumps({"code": code, "err": err.getvalue()}), flush=True)
"""


@pytest.mark.slow
def test_concurrent_runs_into_one_new_directory(tmp_path):
    """Two real processes race into one new directory, 30 times: with different recipes exactly one
    wins and the other is refused (exit 2, one line); with the same recipe both succeed. Either way
    the dataset verifies and holds the winner's recipe."""
    procs = [subprocess.Popen([sys.executable, "-c", CONTENDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    base = ["generate", "--num", "3", "--size", "8", "--workers", "1", "--quiet"]
    try:
        for trial in range(30):
            same = trial % 3 == 2
            out = tmp_path / f"t{trial}"
            seeds = (7, 7) if same else (7, 8)
            for proc, seed in zip(procs, seeds):
                proc.stdin.write(json.dumps(base + ["--seed", str(seed), str(out)]) + "\n")
                proc.stdin.flush()
            results = [json.loads(proc.stdout.readline()) for proc in procs]
            assert not any("Traceback" in r["err"] for r in results), (trial, results)
            codes = [r["code"] for r in results]
            if same:
                assert codes == [0, 0], (trial, results)
            else:
                assert sorted(codes) == [0, 2], (trial, results)
                winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
                assert results[loser]["err"].count("\n") == 1 and "different recipe" in results[loser]["err"]
                assert json.loads((out / "dataset.json").read_text())["seed"] == seeds[winner]
            assert verify(out).ok, (trial, verify(out).problems)
    finally:
        for proc in procs:
            proc.stdin.close()
            proc.wait(timeout=60)


def test_the_loser_of_a_race_for_dataset_json_is_refused(tmp_path, monkeypatch):
    """Deterministic form of the race: another run creates dataset.json between this run's check
    for it and its own creation of it."""
    out = tmp_path / "ds"
    mine, theirs = Recipe(CONFIG, num=4, seed=1), Recipe(CONFIG, num=4, seed=2)
    real_mkdir = Path.mkdir

    def mkdir_then_race(self, *args, **kwargs):
        real_mkdir(self, *args, **kwargs)
        if self == out and not (out / "dataset.json").exists():
            monkeypatch.setattr(Path, "mkdir", real_mkdir)
            prepare(out, theirs)  # the other run gets there first

    monkeypatch.setattr(Path, "mkdir", mkdir_then_race)
    with pytest.raises(UserError, match="different recipe"):
        prepare(out, mine)
    assert Recipe.from_manifest(json.loads((out / "dataset.json").read_text())) == theirs
    assert not list(out.glob(".*.tmp"))


def test_temporaries_of_a_live_run_survive_another_runs_finish(reference, tmp_path):
    out = tmp_path / "ds"
    shutil.copytree(reference, out)
    live = formats.temp_name(out / "images" / "000001.png")  # this process: alive
    live.write_bytes(b"being written")
    generate(out, Recipe(CONFIG, num=NUM, seed=5), progress=False)
    assert live.exists()


def test_resume_rerenders_what_a_power_loss_left(reference, tmp_path):
    """A power loss can leave files empty or cut short, in a chunk without its record as in one with
    it. The rerun keeps only files its chunk records vouch for, and gives the clean bytes."""
    out = tmp_path / "ds"
    shutil.copytree(reference, out)
    (out / "parts" / "000001.jsonl").unlink()
    (out / "images" / "000040.png").write_bytes(b"")  # unrecorded chunk: empty file
    path = out / "labels" / "000041.png"
    path.write_bytes(path.read_bytes()[:30])  # unrecorded chunk: cut short
    (out / "instances" / "000003.png").write_bytes(b"")  # recorded chunk: empty file
    (out / "scenes.jsonl").unlink()
    summary = generate(out, Recipe(CONFIG, num=NUM, seed=5), workers=1, progress=False)
    assert summary.chunks_skipped == 1 and summary.finalized
    assert tree(out) == tree(reference)


@pytest.mark.parametrize("workers", [1, 2])
def test_sample_files_are_durable_before_their_chunk_is_recorded(tmp_path, monkeypatch, workers):
    """With worker processes, the process that writes the record syncs the files (seen here)."""
    synced, recorded_after = set(), []
    real_fsync, real_write = os.fsync, formats.write_atomic

    def fsync(fd):
        synced.add(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    def write_atomic(path, data, **kwargs):
        if Path(path).parent.name == "parts":
            recorded_after.append((set(synced), kwargs.get("durable")))
        return real_write(path, data, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(formats, "write_atomic", write_atomic)
    out = tmp_path / "ds"
    generate(out, Recipe(CONFIG, num=12, seed=1), workers=workers, progress=False)  # two parts of 8 and 4
    (before, durable), = recorded_after
    files = {str(p) for p in out.rglob("*.png")}
    assert len(files) == 36 and files <= before and str(out / "images") in before and durable


def _edit_record(out: Path, index: int, edit) -> None:
    lines = (out / "scenes.jsonl").read_text().splitlines()
    record = json.loads(lines[index])
    edit(record)
    lines[index] = json.dumps(record, separators=(",", ":"))
    (out / "scenes.jsonl").write_text("\n".join(lines) + "\n")


def test_verify_never_follows_a_path_out_of_the_dataset(reference, tmp_path, cli):
    out = tmp_path / "ds"
    shutil.copytree(reference, out)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not yours")
    _edit_record(out, 4, lambda r: r["files"].update(image="../secret.png"))
    _edit_record(out, 5, lambda r: r["files"].update(label="/etc/passwd"))
    code, _, err = cli(["verify", out])
    one_line_error(code, err)
    assert "2 problems" in err and "image file is '../secret.png', expected 'images/000004.png'" in err
    assert "'/etc/passwd'" in err and "delete" not in err


def test_verify_reports_a_count_and_the_first_problems(reference, tmp_path, cli):
    out = tmp_path / "ds"
    shutil.copytree(reference, out)
    for i in range(5):
        (out / "images" / f"{i:06d}.png").unlink()
    _edit_record(out, 9, lambda r: r.pop("files"))
    code, _, err = cli(["verify", out])
    one_line_error(code, err)
    assert "7 problems: 1 of 3 chunks are incomplete" in err and "images/000001.png is missing" in err
    assert "images/000002.png" not in err and "(4 more)" in err


def test_a_manifest_whose_config_is_a_preset_name_is_refused():
    """A preset's name is shorthand for the command line; a manifest records the whole configuration."""
    manifest = Recipe(CONFIG, num=4, seed=1).to_manifest()
    with pytest.raises(UserError, match="config"):
        Recipe.from_manifest({**manifest, "config": "report"})
    assert Recipe.from_manifest(manifest) == Recipe(CONFIG, num=4, seed=1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keep_freed_memory_stops_refaulting_large_arrays():
    """Arrays of a pair's sizes, allocated, filled and freed again and again: by default glibc hands
    the freed memory back and each round faults its pages in afresh; with the setting it is reused
    (page faults counted, not timed)."""
    code = ("import resource, sys\n"
            "import numpy as np\n"
            "from fakeballoons.data.generate import keep_freed_memory\n"
            "if sys.argv[1] == 'keep':\n"
            "    keep_freed_memory()\n"
            "sizes = (786_432, 786_432, 524_288, 524_288, 262_144, 262_144)\n"
            "for _ in range(3):\n"
            "    arrays = [np.ones(n, np.uint8) for n in sizes]; del arrays\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "for _ in range(50):\n"
            "    arrays = [np.ones(n, np.uint8) for n in sizes]; del arrays\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n")
    faults = {how: int(subprocess.run([sys.executable, "-c", code, how], capture_output=True, text=True,
                                      check=True).stdout) for how in ("default", "keep")}
    assert faults["keep"] < 200 and faults["default"] > 5000, faults
