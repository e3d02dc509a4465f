"""Downloading a missing standard dataset from its published mirrors, checksums verified.

This is cnnlab's one download path (urllib, no torchvision). It runs when a
dataset is found in none of the searched places and ``CNNLAB_OFFLINE`` is not
set. Each file is streamed to a temporary name beside its target, with a
progress bar on stderr, and renamed into place only after its MD5 matches the
published one: an interrupted or corrupted download never looks like data.
A mirror that sends a wrong file is reported and the next mirror is tried.

The MD5 values are the ones the datasets' authors publish (and torchvision
checks); ``../shared/datasets/README.md`` lists the MNIST and Fashion-MNIST
ones. Tests point :data:`MIRRORS` at a server on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import sys
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.fileio import atomic_path


@dataclass(frozen=True)
class Remote:
    """One published file: its name on the mirrors, its size in bytes, its MD5."""

    file: str
    size: int
    md5: str


# Base URLs tried in order; each file is fetched as mirror + file name.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/",),
    "cifar100": ("https://www.cs.toronto.edu/~kriz/",),
}

FILES: dict[str, tuple[Remote, ...]] = {
    "mnist": (
        Remote("train-images-idx3-ubyte.gz", 9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        Remote("train-labels-idx1-ubyte.gz", 28881, "d53e105ee54ea40749a09fcbcd1e9432"),
        Remote("t10k-images-idx3-ubyte.gz", 1648877, "9fb629c4189551a2d022fa330f9573f3"),
        Remote("t10k-labels-idx1-ubyte.gz", 4542, "ec29112dd5afa0611ce80d1b7f02629c"),
    ),
    "fashion-mnist": (
        Remote("train-images-idx3-ubyte.gz", 26421880, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        Remote("train-labels-idx1-ubyte.gz", 29515, "25c81989df183df01b3e8a0aad5dffbe"),
        Remote("t10k-images-idx3-ubyte.gz", 4422102, "bef4ecab320f06d8554ea6380940ec79"),
        Remote("t10k-labels-idx1-ubyte.gz", 5148, "bb300cfdad3c16e7a12a480ee83cd310"),
    ),
    # CIFAR comes as one archive holding the batch folder (cifar-10-batches-py/, cifar-100-python/).
    "cifar10": (Remote("cifar-10-python.tar.gz", 170498071, "c58f30108f718f92721af3b95e74349a"),),
    "cifar100": (Remote("cifar-100-python.tar.gz", 169001437, "eb9058c3a382ffc7106e4002c42a8d85"),),
}

TIMEOUT_S = 60  # per network operation, not per file


def downloadable(name: str) -> bool:
    """Whether cnnlab knows where to download dataset ``name`` (a canonical name)."""
    return name in FILES


def offline() -> bool:
    """True when ``CNNLAB_OFFLINE`` is set to anything but empty, 0, false or no."""
    return os.environ.get("CNNLAB_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def md5_of(path: Path) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def network_reason(exc: BaseException) -> str:
    """'HTTP Error 404: Not Found', 'Connection refused', 'timed out', ... as one short line."""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        reason = exc.reason
        return _one_line(reason) if isinstance(reason, BaseException) else str(reason)[:200]
    return _one_line(exc)


class BadDownload(Exception):
    """A server answered, but with the wrong bytes (the partial file is already removed)."""


def fetch_verified(url: str, target: Path, algorithm: str, expected, max_bytes: int, label: str) -> str:
    """Stream ``url`` into ``target`` atomically, hashing as it arrives; return the hex digest.

    ``expected`` is the published digest -- the whole hex string or, as torch hub's file names
    publish it, a prefix of it -- or a callable that reads it from the response headers (None:
    no checksum published, refused). Any mismatch, or more than ``max_bytes``, raises
    :class:`BadDownload` and leaves nothing at ``target``; network errors propagate.
    """
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, atomic_path(target) as tmp:
        name = "SHA-256" if algorithm == "sha256" else algorithm.upper()
        want = expected(response.headers) if callable(expected) else expected
        if not want:
            raise BadDownload(f"{url} publishes no {name} checksum, so its bytes cannot be checked")
        digest, received = hashlib.new(algorithm), 0
        size = int(response.headers.get("Content-Length") or 0) or None
        with open(tmp, "wb") as fh, tqdm(total=size, unit="B", unit_scale=True, desc=label,
                                          file=sys.stderr, disable=None, leave=False) as bar:
            while chunk := response.read(1 << 16):
                received += len(chunk)
                if received > max_bytes:  # a server that never stops must not fill the disk
                    raise BadDownload(f"{url} sent more than {max_bytes} bytes; removed it")
                digest.update(chunk)
                fh.write(chunk)
                bar.update(len(chunk))
        if not digest.hexdigest().startswith(want.lower()):
            # Raising inside atomic_path removes the temporary file: nothing corrupt is left behind.
            raise BadDownload(f"{url} has {name} {digest.hexdigest()} ({received} bytes), not the published "
                              f"{want}; the corrupted download was removed")
        return digest.hexdigest()


def _fetch(url: str, target: Path, remote: Remote) -> None:
    """Stream ``url`` into ``target`` (atomically); raise BadDownload or a network error."""
    fetch_verified(url, target, "md5", remote.md5, remote.size, remote.file)


def _writable_root(roots: list[Path]) -> Path:
    """The first searched root that exists and is writable, else ./data (created)."""
    for root in roots[:-1]:
        if root.is_dir() and os.access(root, os.W_OK | os.X_OK):
            return root
    fallback = roots[-1]
    try:
        fallback.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CnnlabError(f"cannot create {fallback} to download into ({_one_line(exc)}); "
                          "set CNNLAB_DATA or --data-dir to a writable folder") from None
    if not os.access(fallback, os.W_OK | os.X_OK):
        raise CnnlabError(f"{fallback} is not writable, so the dataset cannot be downloaded there; "
                          "set CNNLAB_DATA or --data-dir to a writable folder")
    return fallback


def download_dataset(name: str, folder: str, roots: list[Path]) -> Path:
    """Download dataset ``name`` into ``<first writable root>/<folder>``; return that folder.

    Files already present with the right MD5 are kept (an interrupted download
    resumes file by file). Every failure is one :class:`CnnlabError` line.
    """
    archive = FILES[name][0].file.endswith(".tar.gz")
    fallback_existed = roots[-1].exists()
    root = _writable_root(roots)
    dest = root if archive else root / folder
    # Folders this call creates are removed again (only while empty) if nothing arrives.
    made = ([] if fallback_existed or root != roots[-1] else [root]) + ([] if dest.exists() else [dest])
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CnnlabError(f"cannot create {dest} to download {name} into ({_one_line(exc)}); "
                          "set CNNLAB_DATA or --data-dir to a writable folder") from None
    print(f"cnnlab: {name} not found locally; downloading it into {dest} "
          "(set CNNLAB_OFFLINE=1 to never download)", file=sys.stderr, flush=True)
    try:
        _download_files(name, dest)
    except CnnlabError:
        for path in reversed(made):
            with contextlib.suppress(OSError):
                path.rmdir()
        raise
    if archive:
        _extract(dest / FILES[name][0].file, root / folder)
    return root / folder


def _download_files(name: str, dest: Path) -> None:
    """Fetch every file of ``name`` that ``dest`` lacks (or holds with a wrong MD5), trying each mirror."""
    for remote in FILES[name]:
        target = dest / remote.file
        if target.is_file() and md5_of(target) == remote.md5:
            continue
        errors = []
        for mirror in MIRRORS[name]:
            url = mirror + remote.file
            try:
                _fetch(url, target, remote)
                break
            except BadDownload as exc:
                errors.append(str(exc))
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
                errors.append(f"{url}: {network_reason(exc)}")
        else:
            raise CnnlabError(
                f"could not download {name}: {'; '.join(errors)}; try again, or put {remote.file} (MD5 "
                f"{remote.md5}) into {dest} yourself, or set CNNLAB_DATA / --data-dir to a folder holding {name}"
            )


def _extract(archive: Path, folder: Path) -> None:
    """Unpack a verified archive that holds ``folder.name``/ next to it, then delete the archive."""
    if folder.exists():
        raise CnnlabError(f"{folder} exists but does not hold the complete dataset; complete it or move it "
                          "away, then run again to download it afresh")
    scratch = archive.with_name(f".{archive.name}.extract{os.getpid()}")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(scratch, filter="data")  # the data filter refuses absolute paths, links out, devices
        unpacked = scratch / folder.name
        if not unpacked.is_dir():
            raise CnnlabError(f"{archive} does not contain {folder.name}/; remove it and download again")
        os.replace(unpacked, folder)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CnnlabError(f"cannot unpack {archive}: {_one_line(exc)}; remove it and download again") from None
    finally:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)  # our own scratch folder, created just above
    archive.unlink()
