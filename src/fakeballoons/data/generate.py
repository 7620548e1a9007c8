"""Generate a dataset directory: parallel, deterministic, resumable, shardable.

``generate(out, recipe, workers=..., shard=(i, n))`` writes the layout of the README's "Dataset layout".
Work is cut into chunks of consecutive indices (:mod:`.recipe`); shard i of n takes the chunks
c with c % n == i, and worker processes take parts of chunks from a queue. Every file is written under a
temporary name and renamed, and a chunk's record file is written only after all its samples, so
a run killed at any moment is completed by running the same command again, and the result is
byte-identical to an uninterrupted run. Whichever run completes the last chunk assembles
scenes.jsonl, the split lists and the COCO files by streaming the chunk records, so memory does
not grow with the number of samples.
"""

from __future__ import annotations

import collections
import ctypes
import itertools
import multiprocessing
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import UserError, env_int
from ..scene import sample_scene
from . import formats
from .recipe import CHUNK_SIZE, Layout, Recipe


@dataclass(frozen=True)
class Summary:
    """What one generate call did."""

    chunks_total: int  # chunks of this shard
    chunks_skipped: int  # already complete before the call
    samples_written: int  # samples of this shard processed in this call
    finalized: bool  # the whole dataset is complete and its manifests were assembled


# ----------------------------------------------------------------------------- set-up


def parse_shard(text: str | None, environ=os.environ) -> tuple[int, int]:
    """Shard (i, n) from ``--shard I/N``, else from torchrun's RANK/WORLD_SIZE, else (0, 1)."""
    if text is None:
        if "RANK" in environ and "WORLD_SIZE" in environ:
            text = f"{env_int('RANK', 0, environ)}/{env_int('WORLD_SIZE', 1, environ)}"
        else:
            return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UserError(f"--shard must look like I/N (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard {text}: need N >= 1 and 0 <= I < N")
    return i, n


def resolve_workers(workers: str | int, environ=os.environ) -> int:
    """'auto' = the usable cores, divided among torchrun's local processes; else a positive int."""
    if workers == "auto":
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            cores = os.cpu_count() or 1
        return max(1, cores // max(1, env_int("LOCAL_WORLD_SIZE", 1, environ)))
    try:
        n = int(workers)
    except (TypeError, ValueError):
        raise UserError(f"--workers must be 'auto' or a positive integer, got {workers!r}") from None
    if n < 1:
        raise UserError(f"--workers must be 'auto' or a positive integer, got {workers!r}")
    return n


def prepare(out: str | Path, recipe: Recipe) -> Layout:
    """Check OUT, create dataset.json (or check the one there), create the directories.

    dataset.json is created in one atomic step (:func:`formats.create_exclusive`): of two runs
    racing into one new directory exactly one writes its recipe, and the other then compares its
    own against it like any resumed run, so a different recipe is refused and the same one joins in.
    """
    root = Path(out)
    layout = Layout(root, recipe)
    if root.exists() and not root.is_dir():
        raise UserError(f"cannot generate into {root}: it is a file, not a directory")
    # Listed before dataset.json is looked for: a run racing into the same directory creates
    # dataset.json before anything else but its temporary files, so entries listed here without a
    # dataset.json afterwards are not a dataset's.
    try:
        foreign = [p for p in root.iterdir() if formats.temp_owner(p) is None] if root.is_dir() else []
    except OSError as exc:
        raise UserError(f"cannot read {root}: {exc.strerror or exc}") from None
    if foreign and not layout.manifest.exists():
        raise UserError(f"{root} is not empty and holds no dataset.json; choose a new or empty directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write to {root}: {exc.strerror or exc}") from None
    if not formats.create_exclusive(layout.manifest, formats.json_bytes(recipe.to_manifest(), indent=2)):
        existing = Recipe.from_manifest(formats.read_json(layout.manifest, "dataset manifest"),
                                        str(layout.manifest))
        diff = recipe.difference(existing)
        if diff:
            raise UserError(f"{root} holds a dataset made with a different recipe ({diff}); "
                            "use a new directory, or the same options to resume it")
    try:
        for d in layout.directories():
            d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write to {root}: {exc.strerror or exc}") from None
    return layout


# ----------------------------------------------------------------------------- samples


def produce_sample(layout: Layout, index: int, recorded: dict | None = None) -> dict:
    """Render and write sample ``index``; return its record.

    The record holds the split, the sampled scene, the files with their SHA-256 and (png format)
    the COCO annotations of every visible object. Files already there are kept only if
    ``recorded`` (the sample's record in its chunk's record file) vouches for them by hash: files
    of a chunk that was never recorded may be what a crash or power loss left (empty, or cut short).
    """
    recipe = layout.recipe
    config = recipe.config
    scene = sample_scene(config, recipe.seed, index)
    paths = layout.sample_files(index)
    data = _kept_files(paths, recorded)
    if data is not None:
        instance = formats.read_instance(paths["instance"]) if "instance" in paths else None
    else:
        from ..render import render  # here, not at the top: with worker processes the parent never renders

        sample = render(scene, config)
        data = formats.encode_sample(sample, config, "jpeg" if recipe.format == "voc" else "png")
        formats.write_files_atomic([(paths[kind], data[kind]) for kind in paths])
        instance = sample.instance
    scene_dict = scene.to_dict()
    del scene_dict["index"]
    record = {"index": index, "split": recipe.split_of(index), **scene_dict,
              "files": {kind: layout.relative(p) for kind, p in paths.items()},
              "sha256": {kind: formats.sha256(data[kind]) for kind in paths}}
    if instance is not None:
        record["annotations"] = formats.coco_annotations(instance, [o.class_id for o in scene.objects])
    return record


def _kept_files(paths: dict[str, Path], recorded: dict | None) -> dict[str, bytes] | None:
    """The bytes of a sample's files if all are there and match ``recorded``'s hashes, else None."""
    if not recorded or not isinstance(recorded.get("sha256"), dict):
        return None
    try:
        data = {kind: p.read_bytes() for kind, p in paths.items()}
    except OSError:
        return None
    if any(formats.sha256(data[kind]) != recorded["sha256"].get(kind) for kind in paths):
        return None
    return data


def chunk_done(layout: Layout, chunk: int) -> bool:
    """Whether the chunk's record file and all its samples' files are there (and none is empty)."""
    samples = [p for i in layout.recipe.chunk_range(chunk) for p in layout.sample_files(i).values()]
    paths = [layout.part(chunk), *samples]
    try:
        return all(p.stat().st_size > 0 for p in paths)
    except FileNotFoundError:
        return False


def _recorded(layout: Layout, chunk: int) -> dict[int, dict]:
    """The chunk's records by index, from its record file if there is a readable one."""
    try:
        return {r["index"]: r for r in formats.read_jsonl(layout.part(chunk), "chunk record")
                if isinstance(r.get("index"), int)}
    except UserError:
        return {}


def produce_part(layout: Layout, chunk: int, indices: range, durable: bool = True) -> list[bytes]:
    """Produce samples ``indices`` of a chunk and (``durable``) make their files durable; their record
    lines. (Worker processes leave the syncing to the process that writes the chunk's record.)"""
    recorded = _recorded(layout, chunk)
    lines = [formats.json_bytes(produce_sample(layout, i, recorded.get(i))) + b"\n" for i in indices]
    if durable:
        sync_samples(layout, indices)
    return lines


def sync_samples(layout: Layout, indices: range) -> None:
    """Make the files of samples ``indices`` durable (fsync them and their directories)."""
    formats.sync_paths(p for i in indices for p in layout.sample_files(i).values())


def write_record(layout: Layout, chunk: int, lines: list[bytes]) -> None:
    """Write a chunk's record file (durably): after all its samples' files are durable."""
    formats.write_atomic(layout.part(chunk), b"".join(lines), durable=True)


def run_chunk(layout: Layout, chunk: int) -> int:
    """Produce every sample of a chunk, make its files durable, then write its record file (also
    durably). Returns the sample count."""
    lines = produce_part(layout, chunk, layout.recipe.chunk_range(chunk))
    write_record(layout, chunk, lines)
    return len(lines)


def keep_freed_memory() -> None:
    """Ask glibc to take large blocks from the heap and to keep what is freed (mallopt: an mmap
    threshold of 32 MB, its upper limit, and a trim threshold of 512 MB), as the variables
    MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ would. Each pair allocates arrays of 0.3-0.8 MB
    and frees them; by default glibc maps fresh pages for them and the process faults every page in
    again, pair after pair (about 1,100 page faults a pair, 440 with this). Only in the processes
    that generate: the command and its workers. Without glibc's mallopt it does nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - a C library without mallopt
        return
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)
    mallopt(_M_TRIM_THRESHOLD, 512 << 20)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h

_WORKER_LAYOUT: Layout | None = None


def _init_worker(root: str, manifest: dict) -> None:
    global _WORKER_LAYOUT
    from ..render import set_threads

    set_threads(1)  # one process per core; numba threads would oversubscribe
    keep_freed_memory()
    _WORKER_LAYOUT = Layout(root, Recipe.from_manifest(manifest))


def _worker_part(chunk: int, start: int, stop: int) -> list[bytes]:
    assert _WORKER_LAYOUT is not None
    return produce_part(_WORKER_LAYOUT, chunk, range(start, stop), durable=False)


def start_method() -> str:
    """How worker processes start: "fork" on Linux where it is safe, else "spawn".

    A forked worker begins with this process's imports instead of a new interpreter's (a spawned
    one starts Python and imports NumPy and the package again before it renders). Forking is
    unsafe once a thread pool that does not survive it has started here: numba's (after a
    parallel kernel ran or loaded), torch's, or a Python thread that might hold a lock. The
    generate command starts none before its workers (it never renders in this process, and its
    progress bar runs without tqdm's monitor thread); a program that rendered or imported torch
    first gets "spawn". NumPy's OpenBLAS threads handle a fork themselves.
    """
    if not sys.platform.startswith("linux") or threading.active_count() > 1 or "torch" in sys.modules:
        return "spawn"
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    if parallel is not None and getattr(parallel, "_is_initialized", True):
        return "spawn"
    return "fork"


def _progress_bar(**kwargs):
    """A tqdm bar without tqdm's monitor thread (see :func:`start_method`)."""
    from tqdm import tqdm

    class Bar(tqdm):
        monitor_interval = 0

    return Bar(**kwargs)


#: Samples per task handed to a worker process, at most: a chunk is cut into parts so that the
#: processes end together (chunks alone would leave one idle while another renders the last whole
#: chunk; :func:`plan_parts` makes the last parts smaller still).
PART_SIZE = 8


# ----------------------------------------------------------------------------- driver


def generate(out: str | Path, recipe: Recipe, *, workers: int = 1, shard: tuple[int, int] = (0, 1),
             progress: bool = True) -> Summary:
    """Generate (or complete) this shard of the dataset in ``out``; finalize if all shards are done.

    Nothing here is proportional to the number of samples before the first chunk is rendered:
    chunks are looked at (done or not) as the work reaches them. A complete dataset of the same
    recipe is left as it is, without a single write (it may be on read-only storage)."""
    sample_scene(recipe.config, recipe.seed, 0)  # a configuration that cannot draw fails before OUT is claimed
    index, count = shard
    mine = range(index, recipe.num_chunks, count)
    last = recipe.num_chunks - 1  # the one chunk that may hold fewer than CHUNK_SIZE samples
    total = len(mine) * CHUNK_SIZE - (CHUNK_SIZE - len(recipe.chunk_range(last)) if last in mine else 0)
    if _complete_dataset(out, recipe):
        return Summary(len(mine), len(mine), 0, True)
    layout = prepare(out, recipe)
    written = skipped = 0
    with _progress_bar(total=total, unit="pair", disable=not progress, file=sys.stderr,
                       desc=f"generate {recipe.config.noise}" + (f" shard {index}/{count}" if count > 1 else ""),
                       dynamic_ncols=True) as bar:
        def pending():
            nonlocal skipped
            for c in mine:
                if chunk_done(layout, c):
                    skipped += 1
                    bar.update(len(recipe.chunk_range(c)))
                else:
                    yield c

        for n in _run_chunks(layout, pending(), workers, total):
            written += n
            bar.update(n)
    finalized = False
    if all(chunk_done(layout, c) for c in range(recipe.num_chunks)):
        finalize(layout)
        finalized = True
    return Summary(len(mine), skipped, written, finalized)


def _complete_dataset(out: str | Path, recipe: Recipe) -> bool:
    """Whether ``out`` already holds the whole dataset of ``recipe`` (every chunk and every file
    that finishing it writes), found without writing; a different recipe there is a UserError."""
    layout = Layout(out, recipe)
    try:
        if not layout.manifest.is_file():
            return False
    except OSError:
        return False
    existing = Recipe.from_manifest(formats.read_json(layout.manifest, "dataset manifest"), str(layout.manifest))
    diff = recipe.difference(existing)
    if diff:
        raise UserError(f"{out} holds a dataset made with a different recipe ({diff}); "
                        "use a new directory, or the same options to resume it")
    finals = [layout.scenes, *(layout.split_list(s) for s in ("train", "val"))]
    finals += [layout.split_list("trainval")] if recipe.format == "voc" else [layout.coco(s) for s in ("train", "val")]
    # stops at the first file or chunk missing
    return all(p.is_file() for p in finals) and all(chunk_done(layout, c) for c in range(recipe.num_chunks))


def plan_parts(recipe: Recipe, chunks: Iterator[int], total: int, workers: int
               ) -> Iterator[tuple[int, int, int, bool]]:
    """The tasks for worker processes: (chunk, first index, stop, whether it is the chunk's last part),
    in order, covering ``chunks`` (taken as needed). A part holds at most :data:`PART_SIZE` samples
    and about 1 / (2 workers) of the samples left (``total`` of them at the start, an upper bound:
    chunks found done are skipped), so the parts shrink to single samples at the end and the
    processes finish together instead of one waiting on another's last part."""
    left = total
    for c in chunks:
        indices = recipe.chunk_range(c)
        lo = indices.start
        while lo < indices.stop:
            hi = min(lo + max(1, min(PART_SIZE, left // (2 * workers))), indices.stop)
            yield c, lo, hi, hi == indices.stop
            left -= hi - lo
            lo = hi


def _run_chunks(layout: Layout, chunks: Iterator[int], workers: int, total: int) -> Iterator[int]:
    """Run ``chunks`` (taken from the iterator only as workers need them; ``total`` samples at most),
    yielding sample counts.

    With worker processes the tasks are parts of chunks (:func:`plan_parts`); once all parts of a
    chunk are back, this process makes their files durable and writes the chunk's record (the
    workers render on meanwhile: waiting for the disk is off their path)."""
    if workers == 1:
        for c in chunks:
            yield run_chunk(layout, c)
        return
    recipe = layout.recipe

    parts = plan_parts(recipe, chunks, total, workers)
    start = list(itertools.islice(parts, workers))  # no more processes than parts to run
    if not start:
        return
    parts = itertools.chain(start, parts)
    ctx = multiprocessing.get_context(start_method())
    with ctx.Pool(len(start), initializer=_init_worker,
                  initargs=(str(layout.root), recipe.to_manifest())) as pool:
        waiting: collections.deque = collections.deque()
        lines: dict[int, list[bytes]] = {}  # record lines of the chunks under way, in index order

        def collect():
            c, last, result = waiting.popleft()
            part = result.get()
            lines.setdefault(c, []).extend(part)
            if last:  # parts come back in order: the chunk is complete
                sync_samples(layout, recipe.chunk_range(c))
                write_record(layout, c, lines.pop(c))
            return len(part)

        for c, lo, hi, last in parts:  # a few parts queued per worker, never the whole list
            waiting.append((c, last, pool.apply_async(_worker_part, (c, lo, hi))))
            if len(waiting) >= 3 * workers:
                yield collect()
        while waiting:
            yield collect()


# ----------------------------------------------------------------------------- finalize


def _records(layout: Layout) -> Iterator[dict]:
    for c in range(layout.recipe.num_chunks):
        yield from formats.read_jsonl(layout.part(c), "chunk record")


def _remove_stale_temps(layout: Layout) -> None:
    """Delete temporary files that killed runs left behind.

    Called when every chunk is done. A live process on this host may still be writing any of them
    (another run of the same recipe, or another shard finalizing at the same moment), so its
    temporaries stay. In sample and chunk-record directories, temporaries of other hosts and
    unrecognised ones go too (their chunks are done); elsewhere only those of dead processes here.
    """
    samples = {p.parent for p in layout.sample_files(0).values()} | {layout.part(0).parent}
    for d in {layout.root, *layout.directories()}:
        for tmp in d.glob(".*.tmp"):
            owner = formats.temp_owner(tmp)
            if owner is not None and owner[0] == formats.HOST and _alive(owner[1]):
                continue
            if d not in samples and (owner is None or owner[0] != formats.HOST):
                continue
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _coco_header(layout: Layout, split: str) -> bytes:
    recipe = layout.recipe
    header = {
        "info": {"description": f"fakeballoons {recipe.config.noise} dataset, split {split}",
                 "version": recipe.package_version, "seed": recipe.seed},
        "licenses": [],
        "categories": [{"id": i, "name": c.name, "supercategory": "balloon"}
                       for i, c in enumerate(recipe.config.classes, start=1)],
    }
    return formats.json_bytes(header)[:-1] + b',"images":['


def _file_pieces(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while piece := fh.read(size):
            yield piece


def finalize(layout: Layout) -> None:
    """Assemble scenes.jsonl, the split lists and (png format) the COCO files from the chunk records.

    One pass reads the records (each parsed once): it streams scenes.jsonl and spools each COCO
    file's image and annotation entries into two temporary files beside it, which are then joined
    into the COCO file. Memory stays the same for any number of samples."""
    recipe = layout.recipe
    coco_splits = ("train", "val") if recipe.format == "png" else ()
    spools: dict[tuple[str, str], Path] = {}
    handles: dict[tuple[str, str], BinaryIO] = {}
    try:
        for split in coco_splits:
            for part in ("images", "annotations"):
                spools[split, part] = formats.temp_name(layout.coco(split))
                handles[split, part] = open(spools[split, part], "xb")  # noqa: SIM115 - closed below
        ann_ids = dict.fromkeys(coco_splits, 0)
        images_seen = dict.fromkeys(coco_splits, 0)

        def scene_lines():
            for r in _records(layout):
                annotations = r.pop("annotations", None)
                split = r["split"]
                if split in ann_ids:
                    image = {"id": r["index"], "file_name": r["files"]["image"],
                             "height": recipe.config.height, "width": recipe.config.width}
                    handles[split, "images"].write((b"," if images_seen[split] else b"") + formats.json_bytes(image))
                    images_seen[split] += 1
                    for a in annotations:
                        ann_ids[split] += 1
                        ann = {"id": ann_ids[split], "image_id": r["index"], **a}
                        handles[split, "annotations"].write((b"," if ann_ids[split] > 1 else b"")
                                                            + formats.json_bytes(ann))
                yield formats.json_bytes(r) + b"\n"

        formats.write_stream_atomic(layout.scenes, scene_lines())
        for handle in handles.values():
            handle.close()
        for split in coco_splits:
            formats.write_stream_atomic(layout.coco(split), itertools.chain(
                [_coco_header(layout, split)], _file_pieces(spools[split, "images"]), [b'],"annotations":['],
                _file_pieces(spools[split, "annotations"]), [b"]}\n"]))
    except OSError as exc:
        raise UserError(f"cannot write {layout.root}: {exc.strerror or exc}") from None
    finally:
        for handle in handles.values():
            handle.close()
        for path in spools.values():
            path.unlink(missing_ok=True)
    splits = ("train", "val", "trainval") if recipe.format == "voc" else ("train", "val")
    for split in splits:
        indices = recipe.split_range("all" if split == "trainval" else split)
        formats.write_stream_atomic(layout.split_list(split), (f"{layout.name(i)}\n".encode() for i in indices))
    _remove_stale_temps(layout)
