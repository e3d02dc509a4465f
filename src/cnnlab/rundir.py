"""Outputs: the one policy every command that writes follows, for directories and single files.

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
- :func:`staged_run_dir` builds a folder whole under a hidden name and moves it in through
  :func:`open_run_dir` at the end (generated datasets: all or nothing, the old one kept until then).
- :func:`lock_run_dir` holds an existing run (``--resume``) the same way.

Every output has a *kind*: the command that made it (``train``, ``sweep``,
``ablation``, ``cv``, ``ensemble``, ``explain``, ``features``, ``scenes``, ``predict``,
``scratch-train`` for directories; ``explain``, ``report``, ``export``, ``preview`` for
single files). A directory records it in its marker; a file carries it inside itself
(:func:`cnnlab.fileio.file_kind`: a PNG text chunk, an HTML ``generator`` meta tag, the
export metadata of an ONNX or TorchScript file). The decision is :func:`check_out_dir`
and :func:`check_out_file`, and it is the same for every command:

- without ``overwrite`` nothing that exists is replaced (an empty folder included);
- ``overwrite`` replaces only an output *of the same kind* that cnnlab made: a marked
  directory whose marker names the kind, or a file whose mark names it;
- never one of the command's own inputs (``inputs``): the output may not be an input,
  nor a folder holding one;
- never something a run owns: a training run inside a sweep, ablation, cv or ensemble
  directory is not replaced on its own, and a file is not replaced when a marked folder
  above it has the file's kind (``RUN/explain/figure-0.png`` belongs to ``RUN/explain``).
  A run's own files (``final.pt``, ``config.yaml``, ``curves.png``) carry no output mark,
  so no command replaces them.

Markers written before kinds mattered may lack one: a marked folder with a
``config.yaml`` and a checkpoint or summary is taken as a training run, anything
else without a kind is never replaced (delete it yourself). A file without a
mark (older cnnlab versions wrote none into PNG and HTML files) is not replaced
either. A folder holding only a ``config.yaml`` (runs made before the marker
existed) can still be read, but is never deleted.

Files inside are written with :mod:`cnnlab.fileio`.

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
>>> check_out_dir(out, overwrite=False, kind="train")
>>> with open_run_dir(out, kind="train") as run:
...     sorted(p.name for p in run.iterdir())
['.cnnlab-run']
>>> is_run_dir(out), output_kind(out)
(True, 'train')
>>> try:
...     check_out_dir(out, overwrite=True, kind="sweep")
... except CnnlabError as exc:
...     print(str(exc).split(": ", 1)[1])
it is a training run (made by `cnnlab train`), not a sweep; choose another --out
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
from cnnlab.fileio import file_kind
from cnnlab.version import __version__

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


def check_name(name: str, what: str = "name") -> str:
    """A config's or sweep spec's ``name`` is a name, not a path: it becomes ``runs/<name>-<time>``.

    >>> check_name("mnist-fast")
    'mnist-fast'
    >>> try:
    ...     check_name("../../../elsewhere")
    ... except CnnlabError as exc:
    ...     print(str(exc)[:45])
    name '../../../elsewhere' is not a plain name
    """
    text = str(name)
    bad = next((c for c in ("/", "\\", "\0") if c in text), None)
    if bad is None and (text in ("", ".", "..") or text.startswith(".")):
        bad = "a leading '.'" if text else "nothing"
    elif bad is None and any(ord(c) < 32 for c in text):
        bad = "a control character"
    elif bad is None and len(text.encode("utf-8")) > 200:
        bad = f"{len(text.encode('utf-8'))} bytes (at most 200)"
    if bad is not None:
        shown = text if len(text) <= 60 else text[:57] + "..."
        shown = shown.encode("unicode_escape").decode("ascii")
        bad = repr(bad) if len(bad) == 1 else bad
        raise CnnlabError(f"{what} '{shown}' is not a plain name (it has {bad}); a name becomes the output folder "
                          "runs/<name>-<time>: use letters, digits, '-', '_' and '.', and --out to write elsewhere")
    return text


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


def _check_dotdot(path: Path, flag: str) -> None:
    """Refuse ``missing/../x``: the folder before a ``..`` must exist, or creating the output would make it
    (and ``x`` would name something other than what was checked)."""
    parts = path.parts
    for i, part in enumerate(parts):
        if part == ".." and i and not Path(*parts[:i]).is_dir():
            raise CnnlabError(f"{flag} {path} goes through {Path(*parts[:i])}, which is not a folder; "
                              f"write the path without '..'")


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

# kind -> (what it is, the command that makes it). A kind not listed (a later version's) is still
# compared by name; it is only described less well.
KINDS: dict[str, tuple[str, str]] = {
    "train": ("a training run", "cnnlab train"),
    "scratch-train": ("a from-scratch training run", "cnnlab scratch train"),
    "sweep": ("a sweep", "cnnlab sweep"),
    "ablation": ("an ablation", "cnnlab ablate"),
    "cv": ("a cross-validation", "cnnlab cv"),
    "ensemble": ("a bagging ensemble", "cnnlab ensemble --bagging"),
    "explain": ("an explanation", "cnnlab explain"),
    "features": ("a feature cache", "cnnlab features"),
    "scenes": ("a scenes dataset", "cnnlab data make-scenes"),
    "predict": ("a folder of drawn predictions", "cnnlab predict --out"),
    "report": ("a report page", "cnnlab report"),
    "export": ("an exported model", "cnnlab export"),
    "preview": ("a data preview", "cnnlab data preview"),
    "lr-find": ("a learning-rate range test", "cnnlab lr-find"),
    "video": ("an annotated video", "cnnlab predict VIDEO --out"),
    "make-video": ("a composed test video", "cnnlab data make-video"),
    "eval": ("a pretrained model's evaluation", "cnnlab eval NAME --folder DIR --out"),
    "counts": ("a counts file", "cnnlab predict VIDEO --count-line/--count-region"),
}
# Outputs made of training runs: a run inside one of these belongs to it and is not replaced alone.
COMPOSITE_KINDS = ("sweep", "ablation", "cv", "ensemble")


def describe_kind(kind: str | None) -> str:
    """``'a sweep (made by `cnnlab sweep`)'``; a marker with no kind is 'of no recorded kind'."""
    if kind is None:
        return "a cnnlab output of no recorded kind (an older version's)"
    what, command = KINDS.get(kind, (f"a '{kind}' output", ""))
    return f"{what} (made by `{command}`)" if command else what


def _what(kind: str | None) -> str:
    return KINDS[kind][0].split(" ", 1)[1] if kind in KINDS else f"'{kind}' output"


def output_kind(path: str | os.PathLike) -> str | None:
    """The kind of output a marked directory is, or None.

    Markers always name their kind; one without (hand-made, or from before kinds were
    compared) counts as a training run when it holds what every training run holds
    (``config.yaml`` and ``summary.json`` or a checkpoint), else as of no kind.
    """
    path = Path(path)
    kind = read_marker(path).get("kind")
    if isinstance(kind, str) and kind:
        return kind
    if (path / "config.yaml").is_file() and any((path / f).is_file() for f in ("summary.json", "final.pt",
                                                                                "best.pt", "last.pt")):
        return "train"
    return None


def _owner(path: Path, *, kinds: tuple[str, ...] | None = None, same_as: str | None = None) -> Path | None:
    """The nearest marked folder above ``path`` whose kind is in ``kinds`` (or equals ``same_as``)."""
    for parent in path.absolute().parents:
        if is_run_dir(parent):
            kind = output_kind(parent)
            if (kinds is not None and kind in kinds) or (same_as is not None and kind == same_as):
                return parent
    return None


def _check_not_an_input(path: Path, inputs, flag: str) -> None:
    """Refuse an output that is one of the command's inputs or a folder holding one."""
    target = path.absolute().resolve()
    for item in inputs or ():
        if item is None or str(item) == "":
            continue
        if not os.path.lexists(item):  # a preset or model name, not a path
            continue
        try:
            source = Path(item).absolute().resolve()
        except (OSError, RuntimeError):
            continue
        if source == target or target in source.parents:
            what = "is" if source == target else f"holds {item}, which is"
            raise CnnlabError(f"{flag} {path} {what} an input of this command; an output never replaces "
                              f"its own input: choose another {flag}")


def check_out_dir(path: str | os.PathLike, overwrite: bool, *, kind: str | None = None,
                  inputs=(), resumable: bool | None = None, flag: str = "--out") -> None:
    """Validate an output directory before any work: one-line errors, nothing created or deleted.

    A missing path must be creatable; an existing one is refused unless ``overwrite``, and then
    it must be an empty folder or a marked output of the same ``kind`` that no other process is
    using, not one of ``inputs`` (paths the command reads) nor a folder holding one, and not a
    training run that belongs to a sweep, ablation, cv or ensemble. Symlinks are refused.
    ``resumable`` (default: the kind has ``--resume``) lets the refusal suggest ``--resume``.
    """
    path = Path(path)
    if resumable is None:
        resumable = kind in RESUMABLE_KINDS
    _check_name_lengths(path, _nearest_existing(path))  # before any stat(), which fails on such names
    _check_dotdot(path, flag)
    if path.is_symlink():
        raise CnnlabError(f"{flag} {path} is a symbolic link (to {os.readlink(path)}); cnnlab does not write or "
                          "delete through links: name the real directory")
    if not path.exists():
        _check_can_create(path)
        return
    _check_not_an_input(path, inputs, flag)
    if not overwrite:
        resume = "--resume to continue it, " if resumable else ""
        raise CnnlabError(f"output directory {path} already exists; pass --overwrite to replace it, "
                          f"{resume}or choose another {flag}")
    if not path.is_dir():
        raise CnnlabError(f"refusing to overwrite {path}: it is a file, not a cnnlab run directory")
    if is_run_dir(path):
        found = output_kind(path)
        if found != kind:
            fix = "delete it yourself or choose another" if found is None else "choose another"
            raise CnnlabError(f"refusing to overwrite {path}: it is {describe_kind(found)}, not "
                              f"{KINDS[kind][0] if kind in KINDS else f'an output of kind {kind!r}'}; {fix} {flag}")
        owner = _owner(path, kinds=COMPOSITE_KINDS) if kind == "train" else None
        if owner is not None:
            raise CnnlabError(f"refusing to overwrite {path}: it is part of {describe_kind(output_kind(owner))} "
                              f"in {owner}; replace the whole {_what(output_kind(owner))} or choose another {flag}")
    elif not _is_empty(path):
        raise CnnlabError(f"refusing to overwrite {path}: it is not a cnnlab run directory (no {MARKER} "
                          f"marker); delete it yourself or choose another {flag}")
    holder = lock_holder(path)
    if holder is not None:
        raise _busy_error(path, holder)


def check_out_file(path: str | os.PathLike, overwrite: bool, *, kind: str, suffixes: tuple[str, ...],
                   inputs=(), flag: str = "--out") -> Path:
    """Validate a single-file output before any work (nothing is written): the same policy as directories.

    The name must end in one of ``suffixes`` (the format's extension) and lie in an existing,
    writable folder; links and folders are refused. An existing file is replaced only with
    ``overwrite``, and only when it carries cnnlab's mark of the same ``kind``
    (:func:`cnnlab.fileio.file_kind`), is not one of ``inputs``, and is not owned by a marked
    folder above it of that kind. Returns the path.

    >>> import tempfile, pathlib
    >>> page = pathlib.Path(tempfile.mkdtemp()) / "page.html"
    >>> _ = page.write_text("<html>mine</html>")
    >>> try:
    ...     check_out_file(page, True, kind="report", suffixes=(".html",))
    ... except CnnlabError as exc:
    ...     print(str(exc).split(": ", 1)[1][:48])
    it carries no cnnlab mark (a file cnnlab did not
    """
    path = Path(path)
    article = "an" if suffixes[0][1:2] in tuple("aefhilmnorsx") else "a"  # an .html, a .png
    shown = f"{article} {suffixes[0]}"
    if path.suffix.lower() not in suffixes:
        raise CnnlabError(f"{flag} {path} must name {shown} file")
    _check_name_lengths(path, _nearest_existing(path))
    _check_dotdot(path, flag)
    if path.is_symlink():
        raise CnnlabError(f"{flag} {path} is a symbolic link; cnnlab does not write through links: name a real file")
    if path.is_dir():
        raise CnnlabError(f"{flag} {path} is a folder; name {shown} file")
    if not path.parent.is_dir():
        raise CnnlabError(f"{flag} {path}: folder {path.parent} does not exist; create it first")
    if not os.access(path.parent, os.W_OK):
        raise CnnlabError(f"{flag} {path}: folder {path.parent} is not writable; choose another {flag}")
    _check_not_an_input(path, inputs, flag)
    if not os.path.lexists(path):
        return path
    if not overwrite:
        raise CnnlabError(f"{path} already exists; pass --overwrite to replace it (only {KINDS[kind][0]} that "
                          f"cnnlab wrote is replaced), or choose another {flag}")
    found = file_kind(path)
    if found != kind:
        why = ("it carries no cnnlab mark (a file cnnlab did not write, or one written before marks)"
               if found is None else f"it is {describe_kind(found)}")
        raise CnnlabError(f"refusing to overwrite {path}: {why}, not {KINDS[kind][0]}; "
                          f"delete it yourself or choose another {flag}")
    owner = _owner(path, same_as=kind)
    if owner is not None:
        raise CnnlabError(f"refusing to overwrite {path}: it belongs to {describe_kind(kind)} in {owner}; "
                          f"choose another {flag}")
    return path


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
def open_run_dir(path: str | os.PathLike, *, overwrite: bool = False, kind: str = "train",
                 inputs=(), remove_on_error: bool = False) -> Iterator[Path]:
    """Create (or, with ``overwrite``, replace a marked) run directory and hold its lock while in the block.

    Call it only once the run's inputs have loaded. The lock is released when the block ends,
    normally or not; the directory and what was written stays, unless ``remove_on_error``: then
    an error or Ctrl-C inside the block removes the directory (an output that is all or nothing).
    """
    path = Path(path)
    check_out_dir(path, overwrite, kind=kind, inputs=inputs)  # again: the world may have changed meanwhile
    try:
        fd = _take_existing(path, kind) if path.exists() else _create(path, kind)
    except OSError as exc:
        raise CnnlabError(f"cannot prepare {path}: {exc.strerror or exc}; choose another --out") from None
    try:
        yield path
    except BaseException:
        if remove_on_error:
            shutil.rmtree(path, ignore_errors=True)  # ours: marked, locked, made (or emptied) by this block
        raise
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def staged_run_dir(path: str | os.PathLike, *, overwrite: bool = False, kind: str, inputs=(),
                   last: tuple[str, ...] = ()) -> Iterator[Path]:
    """Build an output folder whole in a hidden sibling, then move it into ``path`` (opened by :func:`open_run_dir`).

    The block writes into the yielded staging folder (with :func:`cnnlab.fileio.write_staged_bytes`:
    nobody reads it meanwhile). Only when the block succeeds is ``path`` created or, with
    ``overwrite``, its old content replaced; entries named in ``last`` move in last (a manifest
    that says the folder is complete). An error or Ctrl-C removes the staging folder and leaves
    ``path`` as it was.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "scenes"
    >>> from cnnlab.fileio import write_staged_text
    >>> with staged_run_dir(out, kind="scenes", last=("scenes.json",)) as staging:
    ...     write_staged_text(staging / "scenes.json", "{}")
    ...     out.exists()
    False
    >>> sorted(p.name for p in out.iterdir())
    ['.cnnlab-run', 'scenes.json']
    """
    path = Path(path)
    check_out_dir(path, overwrite, kind=kind, inputs=inputs)  # refused before any work; open_run_dir checks again
    staging = path.parent / f".{path.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()  # exclusive: an existing name fails, so the folder removed below is always the one made here
    except OSError as exc:
        raise CnnlabError(f"cannot write next to --out {path}: {exc.strerror or exc}; choose a writable place") from None
    try:
        yield staging
        # remove_on_error: a move failing half-way leaves no half folder (the old content was ours, already cleared)
        with open_run_dir(path, overwrite=overwrite, kind=kind, inputs=inputs, remove_on_error=True) as run:
            for entry in sorted(staging.iterdir(), key=lambda p: p.name in last):
                os.rename(entry, run / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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

