"""Writing files so that a killed process, a full disk or a concurrent writer never leaves a
half-written file under a real name: the atomic writers behind :mod:`.formats` (which re-exports
them; the rest of the package calls them from there).

The bytes go to a temporary file ``.NAME.HOST.PID.RANDOM.tmp`` beside the target, which is renamed
over it only when complete (and, with ``durable``, fsynced with its directory first); the
temporaries of dead processes can be recognised by their name and removed.
"""

from __future__ import annotations

import errno
import os
import secrets
import socket
from collections.abc import Iterable
from pathlib import Path

from ..errors import UserError


def check_writable(path: str | os.PathLike) -> Path:
    """The path, if a file can be created there; else a UserError naming what is wrong."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise UserError(f"cannot write {path}: directory {parent} does not exist (create it first)")
    if not parent.is_dir():
        raise UserError(f"cannot write {path}: {parent} is not a directory")
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a directory")
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write {path}: directory {parent} is not writable")
    return path


HOST = socket.gethostname().replace(".", "_")


def temp_name(path: Path) -> Path:
    """A temporary name beside ``path``: ``.NAME.HOST.PID.RANDOM.tmp`` (see :func:`temp_owner`)."""
    return path.with_name(f".{path.name}.{HOST}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def temp_owner(tmp: Path) -> tuple[str, int] | None:
    """(host, pid) of the process that made temporary file ``tmp``, or None if it is not one of ours."""
    parts = tmp.name.split(".")
    if len(parts) < 6 or parts[-1] != "tmp" or not parts[-3].isdigit():
        return None
    return parts[-4], int(parts[-3])


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_files_atomic(files: Iterable[tuple[str | os.PathLike, bytes | str]], *, durable: bool = False) -> None:
    """Write several files all or nothing: each goes to a temporary name, then all are renamed.

    If anything fails before the renames (a full disk, a missing directory), every temporary file
    is removed, no target is touched, and the error is a UserError naming the file. With
    ``durable``, data and directory entries are fsynced before this returns.
    """
    files = [(check_writable(p), data.encode() if isinstance(data, str) else data) for p, data in files]
    temps: list[tuple[Path, Path]] = []
    try:
        for path, data in files:
            tmp = temp_name(path)
            temps.append((tmp, path))
            with open(tmp, "xb") as fh:
                fh.write(data)
                if durable:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
    except OSError as exc:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {files[len(temps) - 1][0]}: {exc.strerror or exc}") from None
    for tmp, path in temps:
        os.replace(tmp, path)
    if durable:
        for directory in {path.parent for _, path in temps}:
            _fsync_dir(directory)


def write_atomic(path: str | os.PathLike, data: bytes | str, *, durable: bool = False) -> None:
    """Write one file atomically (see :func:`write_files_atomic`)."""
    write_files_atomic([(path, data)], durable=durable)


def create_exclusive(path: str | os.PathLike, data: bytes) -> bool:
    """Create ``path`` holding ``data`` unless it exists; return whether this call created it.

    Checking and creating are one atomic step, so of several processes racing to create the same
    file exactly one wins, and every reader sees either no file or the whole of it: the bytes go to
    a temporary file (fsynced) that is hard-linked to ``path``, which fails if ``path`` exists.
    On a file system without hard links, ``open(path, "x")`` is just as exclusive.
    """
    path = check_writable(path)
    tmp = temp_name(path)
    try:
        try:
            with open(tmp, "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            try:
                with open(path, "xb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            except FileExistsError:
                return False
        _fsync_dir(path.parent)
        return True
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def sync_paths(paths: Iterable[str | os.PathLike]) -> None:
    """fsync files already written, then their directories: after this a power loss keeps them."""
    paths = [Path(p) for p in paths]
    try:
        for path in paths:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for directory in {p.parent for p in paths}:
            _fsync_dir(directory)
    except OSError as exc:
        raise UserError(f"cannot write {exc.filename}: {exc.strerror or exc}") from None


def write_stream_atomic(path: str | os.PathLike, pieces: Iterable[bytes]) -> None:
    """Stream bytes into a temporary file beside ``path``, then rename it into place (for files too
    large to hold in memory, such as a dataset's manifests)."""
    path = check_writable(path)
    tmp = temp_name(path)
    try:
        with open(tmp, "xb") as fh:
            for piece in pieces:
                fh.write(piece)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line to a text file (a JSON-lines log) and flush it to disk."""
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line.rstrip("\n") + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
