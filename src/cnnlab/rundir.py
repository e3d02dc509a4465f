"""Output directories: the one policy every command that writes a run follows.

A run directory is marked by a ``.cnnlab-run`` file (JSON: run id, kind,
creation time, the PID of the process holding it, cnnlab version) that is in
place before anything else is written there, and is held under an exclusive
``flock`` on that file for the run's lifetime. The rules:

- :func:`check_out_dir` validates ``--out`` before any work (no data loaded, nothing
  created): an existing path is refused unless ``overwrite``, and ``overwrite``
  only ever replaces a *marked* directory; a symlink, a path under a file, an
  unwritable place or a too-long name are one-line errors.
- :func:`open_run_dir` is called once the inputs have loaded. It creates the
  directory with its marker already inside (built under a temporary name, then
  renamed), or empties a marked one while holding its lock, and keeps the lock
  until the ``with`` block ends. A second process gets a one-line error naming
  the PID that holds it.
- :func:`lock_run_dir` holds an existing run (``--resume``) the same way.

Files inside are written with :mod:`cnnlab.fileio`. A folder holding only a
``config.yaml`` (runs made before the marker existed) can still be read, but
is never deleted.

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
>>> check_out_dir(out, overwrite=False)
>>> with open_run_dir(out, kind="doc") as run:
...     sorted(p.name for p in run.iterdir())
['.cnnlab-run']
>>> is_run_dir(out)
True
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

from cnnlab.errors import CnnlabError

MARKER = ".cnnlab-run"


def is_run_dir(path: str | os.PathLike) -> bool:
    """True for a real (not symlinked) directory holding a ``.cnnlab-run`` marker."""
    path = Path(path)
    return path.is_dir() and not path.is_symlink() and (path / MARKER).is_file()


def read_marker(path: str | os.PathLike) -> dict:
    """The marker's JSON (``{}`` when it is missing or unreadable)."""
    try:
        data = json.loads((Path(path) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# ---------------------------------------------------------------- validation


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(".")


def _check_name_lengths(path: Path, anchor: Path) -> None:
    try:
        name_max = os.pathconf(anchor if anchor.is_dir() else anchor.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > name_max:
            shown = part if len(part) <= 40 else part[:37] + "..."
            raise CnnlabError(f"--out name '{shown}' is {size} bytes long; the file system allows at most "
                              f"{name_max}; choose a shorter --out")
    if len(os.fsencode(str(path.absolute()))) >= 4096:
        raise CnnlabError("--out path is longer than the 4096 bytes a path may have; choose a shorter --out")


def _check_can_create(path: Path) -> None:
    """Refuse a path that cannot be created: under a file, or in a place that takes no new folders."""
    anchor = _nearest_existing(path.parent if path.parent != path else path)
    if not anchor.is_dir():
        raise CnnlabError(f"cannot create {path}: {anchor} is a file, not a folder; choose another --out")
    # A probe folder, removed at once, is the only reliable test (root ignores permission bits,
    # /proc refuses new entries whatever they say).
    try:
        probe = tempfile.mkdtemp(prefix=".cnnlab-probe-", dir=anchor)
    except OSError as exc:
        raise CnnlabError(f"cannot create {path}: {anchor} is not writable ({exc.strerror}); "
                          "choose another --out") from None
    os.rmdir(probe)


def _is_empty(folder: Path) -> bool:
    try:
        return not any(folder.iterdir())
    except OSError:  # unreadable: treat as holding something
        return False


def lock_holder(path: str | os.PathLike) -> int | None:
    """The PID holding the run directory's lock, or None when it is free (or not a run)."""
    marker = Path(path) / MARKER
    try:
        fd = os.open(marker, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return int(read_marker(path).get("pid") or 0)
    finally:
        os.close(fd)  # closing drops the probe lock
    return None


def _busy_error(path: Path, pid: int | None) -> CnnlabError:
    who = f"PID {pid}" if pid else "another process"
    return CnnlabError(f"{path} is in use by another cnnlab process ({who}); wait for it to finish "
                       "or choose another --out")


RESUMABLE_KINDS = ("train", "sweep")  # the commands that have a --resume to suggest


def check_out_dir(path: str | os.PathLike, overwrite: bool, *, resumable: bool = False) -> None:
    """Validate an output directory before any work: one-line errors, nothing created or deleted.

    A missing path must be creatable; an existing one is refused unless ``overwrite``, and then
    it must be a marked run directory that no other process is using. Symlinks are refused.
    ``resumable`` says the calling command has ``--resume``, so the refusal may suggest it.
    """
    path = Path(path)
    _check_name_lengths(path, _nearest_existing(path))  # before any stat(), which fails on such names
    if path.is_symlink():
        raise CnnlabError(f"--out {path} is a symbolic link (to {os.readlink(path)}); cnnlab does not write or "
                          "delete through links: name the real directory")
    if not path.exists():
        _check_can_create(path)
        return
    if not overwrite:
        resume = "--resume to continue it, " if resumable else ""
        raise CnnlabError(f"output directory {path} already exists; pass --overwrite to replace it, "
                          f"{resume}or choose another --out")
    if not path.is_dir():
        raise CnnlabError(f"refusing to overwrite {path}: it is a file, not a cnnlab run directory")
    if not is_run_dir(path) and not _is_empty(path):
        raise CnnlabError(f"refusing to overwrite {path}: it is not a cnnlab run directory (no {MARKER} marker); "
                          "delete it yourself or choose another --out")
    holder = lock_holder(path)
    if holder is not None:
        raise _busy_error(path, holder)


def check_resumable(path: str | os.PathLike) -> None:
    """Validate a run directory for ``--resume``: it exists, has ``last.pt`` and nobody holds it."""
    path = Path(path)
    if not path.is_dir():  # a link to a run is fine here: resuming deletes nothing
        raise CnnlabError(f"cannot resume {path}: it is not a run directory")
    if not (path / "last.pt").is_file():
        raise CnnlabError(f"cannot resume {path}: it has no last.pt checkpoint (the run saved none; "
                          "train it again with --overwrite)")
    holder = lock_holder(path)
    if holder is not None:
        raise _busy_error(path, holder)


# ---------------------------------------------------------------- creating and holding


def _marker_record(kind: str) -> dict:
    from cnnlab import __version__

    return {"cnnlab_run": 1, "run_id": uuid.uuid4().hex, "kind": kind,
            "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "pid": os.getpid(), "cnnlab_version": __version__}


def _rewrite_locked(fd: int, record: dict) -> None:
    """Replace the marker's content in place (the lock belongs to this inode, so no rename)."""
    data = (json.dumps(record, indent=2) + "\n").encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


def _lock(fd: int, path: Path) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise _busy_error(path, int(read_marker(path).get("pid") or 0)) from None


def _clear_except_marker(path: Path) -> None:
    """Delete everything in a locked, marked run directory but its marker (links are removed, not followed)."""
    for entry in path.iterdir():
        if entry.name == MARKER:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _take_existing(path: Path, kind: str) -> int:
    """Lock a marked run directory (or an empty folder) and empty it: the fd of its locked marker."""
    if is_run_dir(path):
        fd = os.open(path / MARKER, os.O_RDWR)
    else:  # an empty folder: it holds nothing, so it is simply taken
        fd = os.open(path / MARKER, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    _lock(fd, path)
    try:
        _clear_except_marker(path)
        _rewrite_locked(fd, _marker_record(kind))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _create(path: Path, kind: str) -> int:
    """Create ``path`` with its marker locked inside: the fd of the marker."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Built under a temporary name with the marker locked inside, then renamed: the
    # directory never exists without its marker.
    tmp = path.parent / f".cnnlab-new-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    fd = -1
    try:
        fd = os.open(tmp / MARKER, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        _rewrite_locked(fd, _marker_record(kind))
        os.rename(tmp, path)  # replaces nothing but an empty folder made meanwhile
    except BaseException as exc:
        if fd >= 0:
            os.close(fd)
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
            holder = lock_holder(path)
            if holder is not None:
                raise _busy_error(path, holder) from None
            raise CnnlabError(f"{path} appeared while the inputs loaded; choose another --out") from None
        raise
    return fd


@contextlib.contextmanager
def open_run_dir(path: str | os.PathLike, *, overwrite: bool = False, kind: str = "train") -> Iterator[Path]:
    """Create (or, with ``overwrite``, replace a marked) run directory and hold its lock while in the block.

    Call it only once the run's inputs have loaded. The lock is released when the block ends,
    normally or not; the directory and what was written stays.
    """
    path = Path(path)
    check_out_dir(path, overwrite, resumable=kind in RESUMABLE_KINDS)  # again: the world may have changed meanwhile
    try:
        fd = _take_existing(path, kind) if path.exists() else _create(path, kind)
    except OSError as exc:
        raise CnnlabError(f"cannot prepare {path}: {exc.strerror or exc}; choose another --out") from None
    try:
        yield path
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def lock_run_dir(path: str | os.PathLike, kind: str = "train") -> Iterator[Path]:
    """Hold an existing run directory (``--resume``) for the block; runs made before the marker get one."""
    path = Path(path)
    if not path.is_dir():
        raise CnnlabError(f"{path} is not a run directory")
    previous = read_marker(path)
    try:
        fd = os.open(path / MARKER, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise CnnlabError(f"cannot lock {path}: {exc.strerror}") from None
    _lock(fd, path)
    try:
        record = {**_marker_record(kind),
                  **{k: v for k, v in previous.items() if k in ("run_id", "kind", "created")}}
        record["pid"] = os.getpid()
        _rewrite_locked(fd, record)
        yield path
    finally:
        os.close(fd)



def check_out_file(path: str | os.PathLike, overwrite: bool, is_ours, option: str = "--out") -> None:
    """Validate an output *file* before any work, by the same rules as a run directory.

    A missing path must be creatable; an existing one is refused unless ``overwrite``, and then
    ``is_ours(path)`` must say cnnlab wrote it (a video carries a "written by cnnlab" comment, a JSON
    file a ``cnnlab`` key). Symlinks and directories are refused. The file itself is later written
    with :mod:`cnnlab.fileio` (a temporary name, renamed on success).
    """
    path = Path(path)
    _check_name_lengths(path, _nearest_existing(path))
    if path.is_symlink():
        raise CnnlabError(f"{option} {path} is a symbolic link (to {os.readlink(path)}); cnnlab does not write "
                          "through links: name the real file")
    if not path.exists():
        _check_can_create(path)
        return
    if path.is_dir():
        raise CnnlabError(f"{option} {path} is a folder; name a file to write")
    if not overwrite:
        raise CnnlabError(f"output file {path} already exists; pass --overwrite to replace it, or choose another {option}")
    if not is_ours(path):
        raise CnnlabError(f"refusing to overwrite {path}: cnnlab did not write it; delete it yourself or choose "
                          f"another {option}")
