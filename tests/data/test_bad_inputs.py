"""Broken, hostile and degenerate inputs to the data layer: one CnnlabError line, or a counted skip."""

import contextlib
import gzip
import pickle
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.config import DataConfig
from cnnlab.data import folder as folders
from cnnlab.data.cifar import load_batch, load_cifar, write_batch
from cnnlab.data.datasets import ImageData, load_dataset
from cnnlab.data.idx import read_idx, write_idx
from cnnlab.data.pipeline import make_splits
from cnnlab.data.splits import stratified_subset
from cnnlab.errors import CnnlabError
from tests.conftest import write_folder


def _cfg(root, cache_dir, **kw):
    return DataConfig(name="folder", root=str(root), cache_dir=str(cache_dir), **kw)


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message and len(message) < 500
    return message


# --- classes.tsv -----------------------------------------------------------------------------------

def test_classes_tsv_that_is_not_utf8_names_the_file_and_line(tmp_path, cache_dir):
    root = write_folder(tmp_path / "named", per_class=4)
    (root / "classes.tsv").write_bytes("hstripes\tstripes\nsquare\tcarr\u00e9\n".encode("latin-1"))
    with pytest.raises(CnnlabError) as info:
        load_dataset(_cfg(root, cache_dir))
    assert "classes.tsv line 2 is not UTF-8" in _one_line(info)


def test_classes_tsv_malformed_line_names_the_line(tmp_path, cache_dir):
    root = write_folder(tmp_path / "named", per_class=4)
    (root / "classes.tsv").write_text("hstripes\tstripes\n\nsquare a square with spaces\n")
    with pytest.raises(CnnlabError) as info:
        load_dataset(_cfg(root, cache_dir))
    assert "classes.tsv line 3 is not 'folder<TAB>name'" in _one_line(info)


# --- unreadable images -----------------------------------------------------------------------------

def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_skipped_and_counted(tmp_path, cache_dir, capsys):
    root = write_folder(tmp_path / "b", per_class=6)
    (root / "square" / "bomb.png").write_bytes(_png_claiming(30000, 30000))  # Pillow: DecompressionBombError
    data = load_dataset(_cfg(root, cache_dir))
    assert [p.rsplit("/", 1)[-1] for p in data.skipped] == ["bomb.png"]
    assert len(data.train_y) + len(data.test_y) == 18
    assert "skipped unreadable image" in capsys.readouterr().err


def test_decompression_bomb_is_fatal_when_strict(tmp_path, cache_dir):
    root = write_folder(tmp_path / "b", per_class=6)
    (root / "square" / "bomb.png").write_bytes(_png_claiming(30000, 30000))
    with pytest.raises(CnnlabError) as info:
        load_dataset(_cfg(root, cache_dir, strict=True))
    assert "cannot read image" in _one_line(info) and "bomb.png" in str(info.value)


def test_image_over_the_pixel_limit_is_skipped_not_decoded(tmp_path, cache_dir, monkeypatch):
    # Between 1x and 2x Pillow's limit Pillow only warns and would decode: cnnlab skips it too.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    root = write_folder(tmp_path / "w", per_class=6, size=16)  # 256 pixels: fine
    Image.new("L", (40, 40)).save(root / "square" / "large.png")  # 1600 pixels: warn-only in Pillow
    with _no_bomb_warning():
        data = load_dataset(_cfg(root, cache_dir))
    assert [p.rsplit("/", 1)[-1] for p in data.skipped] == ["large.png"]


@contextlib.contextmanager
def _no_bomb_warning():
    """Fail if Pillow's DecompressionBombWarning escapes (cnnlab reports the skip itself)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        yield
    assert not [w for w in seen if issubclass(w.category, Image.DecompressionBombWarning)]


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_truncated_and_random_images_are_skipped_and_counted(tmp_path, cache_dir, fmt):
    root = write_folder(tmp_path / fmt, per_class=6, size=32, fmt=fmt)
    good = (root / "square" / f"000.{fmt}").read_bytes()
    rng = np.random.default_rng(0)
    broken = {
        f"half.{fmt}": good[: len(good) // 2],
        f"header-only.{fmt}": good[:40],
        f"random.{fmt}": rng.integers(0, 256, 500, dtype=np.uint8).tobytes(),
        f"magic-then-random.{fmt}": good[:8] + rng.integers(0, 256, 500, dtype=np.uint8).tobytes(),
        f"empty.{fmt}": b"",
    }
    for name, payload in broken.items():
        (root / "hstripes" / name).write_bytes(payload)
    data = load_dataset(_cfg(root, cache_dir))
    assert sorted(p.rsplit("/", 1)[-1] for p in data.skipped) == sorted(broken)
    assert len(data.train_y) + len(data.test_y) == 18


# --- splits and classes that would make the numbers meaningless ------------------------------------

def test_one_image_per_class_is_refused(tmp_path, cache_dir):
    root = write_folder(tmp_path / "one", per_class=1)
    with pytest.raises(CnnlabError) as info:
        load_dataset(_cfg(root, cache_dir))
    message = _one_line(info)
    assert "test split is empty" in message and "3 training images in 3 classes" in message
    assert "at least 2 images" in message


def test_class_whose_images_are_all_unreadable_is_refused(tmp_path, cache_dir):
    root = write_folder(tmp_path / "u", per_class=6)
    for path in (root / "square").iterdir():
        path.write_bytes(b"not an image")
    with pytest.raises(CnnlabError) as info:
        load_dataset(_cfg(root, cache_dir))
    message = _one_line(info)
    assert "class 'square' has no readable training images" in message and "6 unreadable" in message


def test_class_missing_from_the_test_folder_is_refused(tmp_path, cache_dir):
    write_folder(tmp_path / "ds" / "train", per_class=4)
    write_folder(tmp_path / "ds" / "test", per_class=2, seed=1)
    for path in (tmp_path / "ds" / "test" / "vstripes").iterdir():
        path.unlink()
    with pytest.raises(CnnlabError) as info:
        load_dataset(_cfg(tmp_path / "ds", cache_dir))
    assert "class 'vstripes' has no test images (4 train" in _one_line(info)


def _image_data(train_labels, test_labels) -> ImageData:
    train_y, test_y = torch.tensor(train_labels), torch.tensor(test_labels)
    return ImageData("toy", torch.zeros(len(train_y), 1, 2, 2, dtype=torch.uint8), train_y,
                     torch.zeros(len(test_y), 1, 2, 2, dtype=torch.uint8), test_y, ["a", "b", "c"])


def test_empty_validation_split_is_refused():
    data = _image_data([0, 1, 2], [0, 1, 2])  # one training image per class: nothing to hold out
    with pytest.raises(CnnlabError) as info:
        make_splits(data, DataConfig(val="split"), torch.device("cpu"), seed=0)
    assert "validation split is empty" in _one_line(info) and "data.val=none" in str(info.value)
    splits = make_splits(data, DataConfig(val="none"), torch.device("cpu"), seed=0)
    assert splits.counts == {"train": 3, "val": 0, "test": 3}


def test_empty_test_split_is_refused_for_any_dataset():
    with pytest.raises(CnnlabError) as info:
        make_splits(_image_data([0, 1, 2, 0], []), DataConfig(val="none"), torch.device("cpu"), seed=0)
    assert "0 test images" in _one_line(info)


# --- limit_train ----------------------------------------------------------------------------------

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_limit_train_gives_exactly_n_images():
    labels = np.repeat(np.arange(10), MNIST_TRAIN_COUNTS)
    data = _image_data(labels.tolist(), [0, 1, 2])
    splits = make_splits(data, DataConfig(val="none", limit_train=5000), torch.device("cpu"), seed=0)
    assert splits.counts["train"] == 5000  # 5,001 before: per-class rounding overshot


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stratified_subset_is_exact_and_keeps_class_shares(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, 1000) ** 2 % 7  # uneven class sizes
    sizes = np.bincount(labels, minlength=7)
    for count in (1, 7, 333, 999, 1000):
        subset = stratified_subset(labels, count, seed=seed)
        assert len(subset) == count and len(np.unique(subset)) == count
        shares = np.bincount(labels[subset], minlength=7)
        assert np.all(np.abs(shares - count * sizes / len(labels)) < 1)  # each class within one image
    np.testing.assert_array_equal(stratified_subset(labels, 333, seed), stratified_subset(labels, 333, seed))


# --- IDX files ------------------------------------------------------------------------------------

def _damaged_versions(blob: bytes, rng: np.random.Generator):
    for cut in range(0, len(blob), max(1, len(blob) // 40)):
        yield blob[:cut]
    for _ in range(40):
        flipped = bytearray(blob)
        for pos in rng.integers(0, len(blob), 3):
            flipped[pos] ^= 0xFF
        yield bytes(flipped)
    yield rng.integers(0, 256, len(blob), dtype=np.uint8).tobytes()


@pytest.mark.parametrize("compress", [True, False])
def test_damaged_idx_files_are_one_line_errors(tmp_path, compress):
    path = tmp_path / ("x-idx3-ubyte" + (".gz" if compress else ""))
    write_idx(path, np.random.default_rng(0).integers(0, 255, (20, 8, 8)))
    good = path.read_bytes()
    kinds = set()
    for damaged in _damaged_versions(good, np.random.default_rng(1)):
        path.write_bytes(damaged)
        try:
            read_idx(path)
        except CnnlabError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)
            kinds.add("error")
        else:
            kinds.add("read")  # some flips land in pixel bytes and leave a valid file
    assert "error" in kinds


def test_idx_header_claiming_huge_dimensions_is_refused_before_allocating(tmp_path, monkeypatch):
    path = tmp_path / "huge-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 3]) + struct.pack(">3I", 4_000_000_000, 60_000, 60_000)
    path.write_bytes(gzip.compress(header + b"\0" * 100))
    monkeypatch.setattr(np, "empty", lambda *a, **k: pytest.fail("allocated for a bogus header"))
    with pytest.raises(CnnlabError, match="damaged or truncated"):
        read_idx(path)
    raw = tmp_path / "huge-idx3-ubyte"
    raw.write_bytes(header + b"\0" * 100)
    with pytest.raises(CnnlabError, match="truncated or padded"):
        read_idx(raw)


def test_idx_labels_out_of_range_are_refused(tmp_path):
    raw = tmp_path / "mnist"
    raw.mkdir()
    for stem, n in (("train", 12), ("t10k", 4)):
        write_idx(raw / f"{stem}-images-idx3-ubyte", np.zeros((n, 28, 28)))
        write_idx(raw / f"{stem}-labels-idx1-ubyte", np.full(n, 200))
    with pytest.raises(CnnlabError, match="labels go up to 200"):
        load_dataset(DataConfig(name="mnist", data_dir=str(tmp_path)))


# --- CIFAR batches --------------------------------------------------------------------------------

def test_damaged_cifar_batches_are_one_line_errors(tmp_path):
    path = tmp_path / "data_batch_1"
    rng = np.random.default_rng(0)
    write_batch(path, rng.integers(0, 255, (4, 3, 32, 32), dtype=np.uint8), [1, 2, 3, 4])
    good = path.read_bytes()
    for damaged in _damaged_versions(good, rng):
        path.write_bytes(damaged)
        try:
            load_batch(path)
        except CnnlabError as exc:
            assert "\n" not in str(exc) and len(str(exc)) < 500


def test_cifar_pickle_with_a_huge_length_field_is_refused(tmp_path):
    path = tmp_path / "data_batch_1"
    # BINBYTES8 (protocol 4) claiming 2**62 bytes: must not try to allocate them.
    path.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b"abc")
    with pytest.raises(CnnlabError, match="cannot read CIFAR batch"):
        load_batch(path)


def test_cifar_labels_out_of_range_are_refused(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    images = np.zeros((2, 3, 32, 32), dtype=np.uint8)
    for i in range(1, 6):
        write_batch(folder / f"data_batch_{i}", images, [0, 1])
    write_batch(folder / "test_batch", images, [0, 57])
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [b"x"] * 10}, fh, protocol=2)
    with pytest.raises(CnnlabError, match="classes 0..57, expected 0..9"):
        load_cifar(folder)


def test_probe_skips_a_decompression_bomb(tmp_path):
    root = write_folder(tmp_path / "p", per_class=2)
    items = folders.list_images(root, ["hstripes", "square", "vstripes"])
    (root / "hstripes" / "000.png").write_bytes(_png_claiming(30000, 30000))
    side, _ = folders.probe(items)
    assert side == 16


def test_an_idx_header_with_a_zero_dimension_and_absurd_others_is_one_line(tmp_path):
    """Found by the long fuzz run: numpy's reshape refused the shape outside the reader's checks."""
    import gzip

    from cnnlab.data.idx import read_idx
    from cnnlab.errors import CnnlabError

    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x03\x00\x00\x00\x00" + b"\xff" * 8))
    with pytest.raises(CnnlabError, match="no array can take") as info:
        read_idx(path)
    assert "\n" not in str(info.value)
