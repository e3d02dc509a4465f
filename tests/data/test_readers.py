"""Dataset readers against the real MNIST files and small files written in the real formats."""

import gzip
import os
import pickle

import numpy as np
import pytest
import torch

from cnnlab.config import DataConfig
from cnnlab.data.cifar import load_batch, load_cifar, write_batch
from cnnlab.data.datasets import load_dataset
from cnnlab.data.idx import read_idx, write_idx
from cnnlab.data.locate import find_dataset_dir
from cnnlab.errors import CnnlabError


def test_real_mnist_counts_match_published(mnist_root):
    data = load_dataset(DataConfig(name="mnist", data_dir=str(mnist_root)))
    assert data.train_x.shape == (60000, 1, 28, 28) and data.test_x.shape == (10000, 1, 28, 28)
    assert data.train_x.dtype == torch.uint8
    # Training label counts published with the dataset (see shared/datasets/README.md).
    assert torch.bincount(data.train_y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("x.idx3-ubyte" + (".gz" if compress else ""))
    write_idx(path, images)
    np.testing.assert_array_equal(read_idx(path), images)


def test_idx_header_by_hand(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))  # magic 2049, count 3, labels 7 8 9
    assert read_idx(path).tolist() == [7, 8, 9]


def test_truncated_idx_is_reported(tmp_path):
    path = tmp_path / "t.gz"
    write_idx(path, np.zeros((4, 5, 5), dtype=np.uint8))
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-7]))
    with pytest.raises(CnnlabError, match="truncated"):
        read_idx(path)


def test_not_idx_is_reported(tmp_path):
    path = tmp_path / "junk"
    path.write_bytes(b"hello world")
    with pytest.raises(CnnlabError, match="not an IDX file"):
        read_idx(path)


def test_idx_dataset_in_torchvision_layout(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for stem, n in (("train", 30), ("t10k", 10)):
        write_idx(raw / f"{stem}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28)))
        write_idx(raw / f"{stem}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    data = load_dataset(DataConfig(name="fashion-mnist", data_dir=str(tmp_path)))
    assert data.train_x.shape == (30, 1, 28, 28) and data.classes[0] == "T-shirt/top"


def test_missing_dataset_names_every_path(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "env"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "explicit").mkdir()
    with pytest.raises(CnnlabError) as info:
        find_dataset_dir("mnist", tmp_path / "explicit")
    message = str(info.value)
    for path in (f"{tmp_path / 'explicit'}, {tmp_path / 'env'}, data ", "(in mnist/, MNIST/raw/ or directly)"):
        assert path in message
    assert len(message) < 480  # every root named whole: nothing cut from a long path
    assert "{train,t10k}-{images-idx3,labels-idx1}-ubyte" in message and "CNNLAB_DATA" in message
    assert "unset CNNLAB_OFFLINE" in message and "\n" not in message  # both ways out, one line


def test_explicit_data_dir_that_does_not_exist_is_an_error(tmp_path, monkeypatch):
    env = tmp_path / "env" / "mnist"
    env.mkdir(parents=True)
    for stem, n in (("train", 10), ("t10k", 10)):
        write_idx(env / f"{stem}-images-idx3-ubyte", np.zeros((n, 28, 28)))
        write_idx(env / f"{stem}-labels-idx1-ubyte", np.arange(n))
    monkeypatch.setenv("CNNLAB_DATA", str(env.parent))  # holds an mnist: no silent fallback to it
    assert len(load_dataset(DataConfig(name="mnist")).train_y) == 10
    for bad in (tmp_path / "nonexistent", tmp_path / "a-file"):
        if bad.name == "a-file":
            bad.write_text("x")
        with pytest.raises(CnnlabError, match=f"data directory '{bad}' .*(does not exist|is not a folder)"):
            load_dataset(DataConfig(name="mnist", data_dir=str(bad)))


def _write_cifar(folder, n=6, classes=10):
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = {}
    for i in range(1, 6):
        images, labels = rng.integers(0, 255, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, classes, n)
        write_batch(folder / f"data_batch_{i}", images, labels)
        batches[i] = images, labels
    write_batch(folder / "test_batch", *batches[1])
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(classes)]}, fh, protocol=2)
    return batches


def test_cifar_batches_in_real_format(tmp_path):
    batches = _write_cifar(tmp_path / "cifar-10-batches-py")
    data = load_dataset(DataConfig(name="cifar10", data_dir=str(tmp_path)))
    assert data.train_x.shape == (30, 3, 32, 32) and data.test_x.shape == (6, 3, 32, 32)
    np.testing.assert_array_equal(data.train_x[:6].numpy(), batches[1][0])
    assert data.classes[3] == "c3"


def test_cifar_reader_refuses_code_in_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "data_batch_1"
    with open(path, "wb") as fh:
        pickle.dump({b"data": Evil()}, fh)
    with pytest.raises(CnnlabError, match="refusing to load"):
        load_batch(path)


def test_cifar_bad_shape(tmp_path):
    folder = tmp_path / "c"
    _write_cifar(folder)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({b"data": np.zeros((2, 10), dtype=np.uint8), b"labels": [0, 1]}, fh, protocol=2)
    with pytest.raises(CnnlabError, match=r"expected \(N, 3072\)"):
        load_cifar(folder)
