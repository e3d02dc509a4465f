"""Image folders: formats, colour modes, resize policies, broken files, and the decode cache."""

import numpy as np
import pytest
from PIL import Image

from cnnlab.config import DataConfig
from cnnlab.data import folder as folders
from cnnlab.data.datasets import load_dataset
from cnnlab.errors import CnnlabError
from tests.conftest import write_folder


def _cfg(root, cache_dir, **kw):
    return DataConfig(name="folder", root=str(root), cache_dir=str(cache_dir), **kw)


@pytest.mark.parametrize("fmt", ["png", "jpg", "bmp"])
def test_formats_decode_to_uint8_tensors(tmp_path, cache_dir, fmt):
    root = write_folder(tmp_path / "img", per_class=10, size=16, fmt=fmt)
    data = load_dataset(_cfg(root, cache_dir))
    assert data.classes == ["hstripes", "square", "vstripes"]  # sorted folder names
    assert str(data.train_x.dtype) == "torch.uint8"
    assert len(data.train_y) + len(data.test_y) == 30
    assert data.input_size == (3, 16, 16)

def test_greyscale_folder_gives_one_channel_and_rgb_three(tmp_path, cache_dir):
    grey = load_dataset(_cfg(write_folder(tmp_path / "g", colour=False), cache_dir))
    rgb = load_dataset(_cfg(write_folder(tmp_path / "c", colour=True), cache_dir))
    assert grey.input_size[0] == 1 and rgb.input_size[0] == 3
    forced = load_dataset(_cfg(tmp_path / "c", cache_dir, channels=1))
    assert forced.input_size[0] == 1


def test_pixels_survive_png_round_trip(tmp_path, cache_dir):
    root = write_folder(tmp_path / "p", per_class=4, size=8, colour=False)
    data = load_dataset(_cfg(root, cache_dir, test_fraction=0.25))
    original = np.asarray(Image.open(root / "hstripes" / "000.png"))
    matches = [np.array_equal(img[0].numpy(), original) for img in data.train_x] + \
              [np.array_equal(img[0].numpy(), original) for img in data.test_x]
    assert sum(matches) == 1


@pytest.mark.parametrize("policy, expected", [
    # A 40x20 image (wide): every policy yields size x size.
    ("resize", (3, 10, 10)), ("center_crop", (3, 10, 10)), ("pad", (3, 10, 10))])
def test_resize_policies(tmp_path, policy, expected):
    path = tmp_path / "wide.png"
    array = np.zeros((20, 40, 3), dtype=np.uint8)
    array[:, :20] = 255  # left half white
    Image.fromarray(array).save(path)
    out = folders.decode_image(path, 10, policy, "RGB")
    assert out.shape == expected
    if policy == "pad":  # scaled to 10x5 and centred: black bands above and below
        assert out[:, 0].max() == 0 and out[:, -1].max() == 0
    if policy == "center_crop":  # the central 20x20 of the 40x20 image is half white, half black
        assert out[0, 5, 1] > 200 and out[0, 5, 8] < 50


def test_train_test_subfolders_are_used(tmp_path, cache_dir):
    write_folder(tmp_path / "ds" / "train", per_class=6)
    write_folder(tmp_path / "ds" / "test", per_class=2, seed=1)
    data = load_dataset(_cfg(tmp_path / "ds", cache_dir))
    assert len(data.train_y) == 18 and len(data.test_y) == 6


def test_unreadable_image_is_skipped_and_counted(tmp_path, cache_dir):
    root = write_folder(tmp_path / "b", per_class=6)
    (root / "square" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    data = load_dataset(_cfg(root, cache_dir))
    assert len(data.skipped) == 1 and data.skipped[0].endswith("broken.png")
    assert len(data.train_y) + len(data.test_y) == 18


def test_unreadable_image_is_fatal_when_strict(tmp_path, cache_dir):
    root = write_folder(tmp_path / "s", per_class=6)
    (root / "square" / "broken.jpg").write_bytes(b"\xff\xd8\xff truncated")
    with pytest.raises(CnnlabError, match="cannot read image .*broken.jpg.*data.strict=false"):
        load_dataset(_cfg(root, cache_dir, strict=True))


def test_cache_is_reused_and_invalidated(tmp_path, cache_dir, monkeypatch):
    root = write_folder(tmp_path / "c", per_class=5)
    first = load_dataset(_cfg(root, cache_dir))
    calls = []
    original = folders.decode_all
    monkeypatch.setattr(folders, "decode_all", lambda *a, **k: calls.append(1) or original(*a, **k))
    again = load_dataset(_cfg(root, cache_dir))
    assert calls == [] and np.array_equal(first.train_x.numpy(), again.train_x.numpy())
    write_folder(tmp_path / "c", per_class=6, seed=3)  # adds a file per class and rewrites the rest
    changed = load_dataset(_cfg(root, cache_dir))
    assert calls == [1] and len(changed.train_y) + len(changed.test_y) == 18


def test_too_few_classes(tmp_path, cache_dir):
    (tmp_path / "one" / "only").mkdir(parents=True)
    Image.new("L", (8, 8)).save(tmp_path / "one" / "only" / "a.png")
    with pytest.raises(CnnlabError, match="at least 2"):
        load_dataset(_cfg(tmp_path / "one", cache_dir))


def test_missing_root(tmp_path, cache_dir):
    with pytest.raises(CnnlabError, match="does not exist"):
        load_dataset(_cfg(tmp_path / "nope", cache_dir))


def test_classes_tsv_names_the_folders(tmp_path, cache_dir):
    root = write_folder(tmp_path / "named", per_class=4)
    (root / "classes.tsv").write_text("hstripes\tHorizontal stripes\nsquare\tA square\n")
    data = load_dataset(_cfg(root, cache_dir))
    assert data.classes == ["Horizontal stripes", "A square", "vstripes"]
