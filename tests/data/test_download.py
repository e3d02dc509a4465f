"""The first-run download, against a local HTTP server on 127.0.0.1 (tests never reach the internet)."""

import hashlib
import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from cnnlab.cli import main
from cnnlab.config import DataConfig
from cnnlab.data import download
from cnnlab.data.cifar import write_batch
from cnnlab.data.datasets import load_dataset
from cnnlab.data.locate import find_dataset_dir
from cnnlab.errors import CnnlabError
from tests.local_http import serve


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1; yields (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    with serve(root) as url:
        yield url, root


@pytest.fixture
def online(monkeypatch, tmp_path):
    """No dataset anywhere, downloads allowed (from 127.0.0.1 only), working directory tmp_path/work.

    Tests that also use ``mnist_root`` list it first, so that it is found before the environment changes.
    """
    # Every mirror points at a closed local port unless a test names its own server: never the internet.
    monkeypatch.setattr(download, "MIRRORS", {name: ("http://127.0.0.1:9/",) for name in download.FILES})
    monkeypatch.delenv("CNNLAB_OFFLINE", raising=False)
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "no-such-folder"))  # like `make demo` without ../shared
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _mirror_of_real_mnist(mnist_root, folder):
    for remote in download.FILES["mnist"]:
        shutil.copy(mnist_root / remote.file, folder / remote.file)


def test_missing_mnist_is_downloaded_and_verified(mnist_root, server, online, monkeypatch, capsys):
    url, www = server
    (www / "mnist").mkdir()
    _mirror_of_real_mnist(mnist_root, www / "mnist")
    monkeypatch.setitem(download.MIRRORS, "mnist", (url + "mnist/",))
    folder = find_dataset_dir("mnist")
    assert folder.resolve() == (online / "data" / "mnist").resolve()
    for remote in download.FILES["mnist"]:  # the published checksums, untouched
        assert hashlib.md5((folder / remote.file).read_bytes()).hexdigest() == remote.md5
    assert sorted(p.name for p in folder.iterdir()) == sorted(r.file for r in download.FILES["mnist"])
    assert "downloading it into" in capsys.readouterr().err
    data = load_dataset(DataConfig(name="mnist"))  # found locally now: no second download
    assert data.train_x.shape == (60000, 1, 28, 28)


def test_corrupted_download_is_detected_removed_and_reported(server, online, monkeypatch):
    url, www = server
    (www / "bad").mkdir()
    for remote in download.FILES["mnist"]:
        (www / "bad" / remote.file).write_bytes(b"\x1f\x8b not the real file")
    monkeypatch.setitem(download.MIRRORS, "mnist", (url + "bad/",))
    with pytest.raises(CnnlabError) as info:
        find_dataset_dir("mnist")
    message = str(info.value)
    assert "\n" not in message and "the corrupted download was removed" in message
    assert "f68b3c2dcbeaaa9fbdd348bbdeb94873" in message  # the published MD5 it expected
    assert not (online / "data").exists()  # neither the bad file nor a temporary one nor an empty folder is left


def test_a_bad_mirror_falls_back_to_the_next(mnist_root, server, online, monkeypatch):
    url, www = server
    (www / "good").mkdir()
    _mirror_of_real_mnist(mnist_root, www / "good")
    (www / "bad").mkdir()
    for remote in download.FILES["mnist"]:  # a truncated copy on the first mirror
        (www / "bad" / remote.file).write_bytes((mnist_root / remote.file).read_bytes()[:1000])
    monkeypatch.setitem(download.MIRRORS, "mnist", (url + "missing/", url + "bad/", url + "good/"))
    folder = find_dataset_dir("mnist")
    assert all(download.md5_of(folder / r.file) == r.md5 for r in download.FILES["mnist"])


def test_unreachable_mirror_is_one_line(online, monkeypatch):
    monkeypatch.setitem(download.MIRRORS, "fashion-mnist", ("http://127.0.0.1:9/",))  # discard port: refused
    with pytest.raises(CnnlabError) as info:
        find_dataset_dir("fashion-mnist")
    message = str(info.value)
    assert message.startswith("could not download fashion-mnist: http://127.0.0.1:9/train-images-idx3-ubyte.gz")
    assert "\n" not in message and "CNNLAB_DATA" in message


def test_offline_error_names_places_files_and_both_ways_out(online, monkeypatch, tmp_path):
    monkeypatch.setenv("CNNLAB_OFFLINE", "1")
    monkeypatch.setitem(download.MIRRORS, "mnist", ("http://127.0.0.1:9/",))  # must not even be tried
    with pytest.raises(CnnlabError) as info:
        find_dataset_dir("mnist")
    message = str(info.value)
    for part in ("no-such-folder,", "data (in mnist/, MNIST/raw/ or directly)", "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]",
                 "set CNNLAB_DATA=DIR or pass --data-dir DIR", "unset CNNLAB_OFFLINE"):
        assert part in message
    assert not (online / "data").exists()


def test_download_goes_into_an_explicit_data_dir(server, online, tmp_path, monkeypatch):
    url, www = server
    files, archive = _tiny_cifar_archive(tmp_path)
    (www / archive.name).write_bytes(archive.read_bytes())
    remote = download.Remote(archive.name, archive.stat().st_size, download.md5_of(archive))
    monkeypatch.setitem(download.FILES, "cifar10", (remote,))
    monkeypatch.setitem(download.MIRRORS, "cifar10", (url,))
    target = tmp_path / "datasets"
    target.mkdir()
    data = load_dataset(DataConfig(name="cifar10", data_dir=str(target)))
    assert data.train_x.shape == (10, 3, 32, 32) and data.classes[1] == "c1"
    assert sorted(p.name for p in (target / "cifar-10-batches-py").iterdir()) == sorted(files)
    assert not (target / archive.name).exists()  # the verified archive is unpacked, then removed


def _tiny_cifar_archive(tmp_path):
    folder = tmp_path / "build" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images = np.zeros((2, 3, 32, 32), dtype=np.uint8)
    for i in range(1, 6):
        write_batch(folder / f"data_batch_{i}", images, [0, 1])
    write_batch(folder / "test_batch", images, [0, 1])
    buf = io.BytesIO()
    import pickle

    pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, buf, protocol=2)
    (folder / "batches.meta").write_bytes(buf.getvalue())
    archive = tmp_path / "build" / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return [p.name for p in folder.iterdir()], archive


def test_cli_first_run_downloads(mnist_root, server, online, monkeypatch, capsys):
    url, www = server
    (www / "m").mkdir()
    _mirror_of_real_mnist(mnist_root, www / "m")
    monkeypatch.setitem(download.MIRRORS, "mnist", (url + "m/",))
    assert main(["data", "info", "mnist", "--json"]) == 0
    out, err = capsys.readouterr()
    assert '"train": 60000' in out and "downloading it into data/mnist" in err


def test_download_false_never_downloads_and_says_how(tmp_path, monkeypatch):
    """data.download=false is an offline switch per config: the error names the way to download."""
    from cnnlab.config import load_config
    from cnnlab.data.datasets import load_dataset
    from cnnlab.errors import CnnlabError

    monkeypatch.delenv("CNNLAB_OFFLINE", raising=False)
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr("cnnlab.data.download.download_dataset", lambda *a, **k: calls.append(a))
    cfg = load_config(None, ["data.name=mnist", "data.download=false", f"data.data_dir={tmp_path}"])
    with pytest.raises(CnnlabError, match="set data.download=true to download it"):
        load_dataset(cfg.data)
    assert calls == [] and sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_same_folder_is_listed_once(tmp_path, monkeypatch):
    from cnnlab.data.locate import search_roots

    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path))
    assert search_roots(tmp_path) == [tmp_path, Path("data")]
