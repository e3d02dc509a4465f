"""Writing files atomically, and the mark that says which cnnlab output a file is.

A file is written to a temporary name in the same folder, flushed to disk,
then renamed over the target. A crash, a full disk or Ctrl-C leaves either the
old file or the new one, never half of one, and the temporary file is removed.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_json_atomic(folder / "summary.json", {"test_accuracy": 0.99})
>>> (folder / "summary.json").read_text()
'{\\n  "test_accuracy": 0.99\\n}\\n'
>>> with atomic_path(folder / "plot.png") as tmp:   # for writers that want a path
...     _ = tmp.write_bytes(b"png bytes")
>>> sorted(p.name for p in folder.iterdir())
['plot.png', 'summary.json']
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import struct
import zipfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    Use it with writers that take a file name (``fig.savefig``, ``np.savez``, ``torch.save``).
    The temporary name keeps the suffix, since some writers choose the format by it.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # the writer may not have flushed to disk
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON plus a newline (non-JSON values via ``str``)."""
    write_text_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


# Files of a folder that is being built whole under a hidden name (rundir.staged_run_dir, a cache
# folder renamed into place) need no temporary name nor fsync each: nobody reads the folder before
# it is moved in, and a failure removes it. Skipping 14,000 fsyncs took make-scenes' default 7,000
# scenes from 74 s to ~8 s here. Anywhere else, use the atomic writers above.
def write_staged_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Create ``path`` holding ``data`` inside a staging folder (see above: not atomic on its own).

    The file must not exist (``FileExistsError``): a staging folder is new, so a staged write never
    replaces anything, even if handed a wrong path.
    """
    with open(path, "xb") as fh:
        fh.write(data)


def write_staged_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` inside a staging folder (see above)."""
    write_staged_bytes(path, text.encode("utf-8"))


# ---------------------------------------------------------------- marks: which cnnlab output a file is

MARK_KEY = "cnnlab"  # PNG text chunk keyword; HTML <meta name="generator" content="cnnlab KIND">
_HTML_MARK = re.compile(rb"""<meta\s+name=["']generator["']\s+content=["']cnnlab ([a-z-]+)["']""", re.I)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_metadata(kind: str) -> dict[str, str]:
    """The ``savefig(metadata=...)`` that marks a PNG as cnnlab's output of ``kind``."""
    return {MARK_KEY: kind}


def html_mark(kind: str) -> str:
    """The ``<meta>`` tag that marks an HTML page as cnnlab's output of ``kind`` (put it in ``<head>``)."""
    return f'<meta name="generator" content="cnnlab {kind}">'


def _png_kind(fh) -> str | None:
    if fh.read(8) != _PNG_SIGNATURE:
        return None
    for _ in range(64):  # text chunks come before the image data; a few dozen chunks at most
        head = fh.read(8)
        if len(head) < 8:
            return None
        size, ctype = struct.unpack(">I4s", head)
        if ctype in (b"IDAT", b"IEND") or size > 1 << 20:
            return None
        body = fh.read(size)
        fh.read(4)  # CRC
        if ctype == b"tEXt":
            key, _, value = body.partition(b"\0")
            if key == MARK_KEY.encode():
                return value.decode("latin-1") or None
    return None


def _export_kind(path: Path) -> str | None:
    """``'export'`` for an ONNX or TorchScript file whose metadata says ``format: cnnlab-export``."""
    meta = None
    if zipfile.is_zipfile(path):  # TorchScript: an extra file, read without unpickling anything
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("extra/cnnlab.json")]
            if names and archive.getinfo(names[0]).file_size < 1 << 20:
                meta = archive.read(names[0])
    else:
        try:
            import onnx

            proto = onnx.load(str(path), load_external_data=False)
            meta = next((p.value for p in proto.metadata_props if p.key == MARK_KEY), None)
        except Exception:  # noqa: BLE001 -- not ONNX, or onnx missing: no mark can be read
            return None
    try:
        return "export" if meta and json.loads(meta).get("format") == "cnnlab-export" else None
    except (ValueError, AttributeError):
        return None


def file_kind(path: str | os.PathLike) -> str | None:
    """The kind of cnnlab output a file says it is (``'explain'``, ``'report'``, ``'export'``, ...), or None.

    Read from the file itself, never by unpickling: a PNG's ``cnnlab`` text chunk, an HTML
    page's generator tag, an export's metadata. A file cnnlab did not write has none.

    >>> import tempfile, pathlib
    >>> page = pathlib.Path(tempfile.mkdtemp()) / "r.html"
    >>> _ = page.write_text(f"<html><head>{html_mark('report')}</head></html>")
    >>> file_kind(page), file_kind(page.parent)
    ('report', None)
    """
    path = Path(path)
    if not path.is_file() or path.is_symlink():
        return None
    suffix = path.suffix.lower()
    try:
        if suffix == ".png":
            with open(path, "rb") as fh:
                return _png_kind(fh)
        if suffix in (".html", ".htm"):
            with open(path, "rb") as fh:
                found = _HTML_MARK.search(fh.read(4096))
            return found.group(1).decode() if found else None
        if suffix in (".onnx", ".pt"):
            return _export_kind(path)
        if suffix in VIDEO_SUFFIXES:
            return "video" if video_written_by_cnnlab(path) else None
        if suffix == ".json":  # a counts file of `cnnlab predict VIDEO --count-*` says what it is
            with open(path, "rb") as fh:
                head = fh.read(1 << 20)
            data = json.loads(head.decode("utf-8"))
            return data["kind"] if isinstance(data, dict) and "cnnlab" in data and isinstance(data.get("kind"), str) \
                else None
    except (OSError, zipfile.BadZipFile, struct.error, UnicodeDecodeError, ValueError):
        return None
    return None


VIDEO_TAG = "written by cnnlab"  # the start of the "comment" metadata of every video cnnlab encodes
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm")


def video_written_by_cnnlab(path: str | os.PathLike) -> bool:
    """Whether a video file's ``comment`` metadata says cnnlab encoded it (read with PyAV; False without it)."""
    try:
        import av
    except ImportError:
        return False
    try:
        with av.open(str(path)) as container:
            comment = {k.lower(): v for k, v in container.metadata.items()}.get("comment", "")
            return str(comment).startswith(VIDEO_TAG)
    except Exception:  # noqa: BLE001 -- not a readable video: not ours
        return False
