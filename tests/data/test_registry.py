"""The dataset registry: duplicates refused, unknown names one line, every preset's dataset found,
each format file reading its fixture through the registry, and the shared decoded-image cache."""

import doctest
import importlib
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import yaml

from cnnlab.config import DataConfig, load_config, preset_names
from cnnlab.data import folder as folders
from cnnlab.data import registry
from cnnlab.data.annotations import Problems
from cnnlab.data.datasets import load_dataset
from cnnlab.data.detection import FIXED_CLASSES, read_annotations
from cnnlab.data.registry import canonical_name, dataset_names, get_dataset, register_dataset
from cnnlab.errors import CnnlabError
from tests.conftest import write_folder
from tests.data.test_detection_data import CLASSES, SPLITS, write_coco, write_voc, write_yolo


@pytest.fixture
def scratch_registry(monkeypatch):
    """A copy of the registry that a test may add to; the real one is left as it was."""
    dataset_names()  # the built-in readers registered first
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))


def test_the_built_in_datasets_by_task():
    assert dataset_names("detect") == ("coco", "mnist-scenes", "raccoon", "voc", "yolo")
    assert dataset_names("classify") == ("cifar10", "cifar10-jpeg", "cifar100", "fashion-mnist", "folder",
                                         "imagenette-160", "mnist")
    assert set(dataset_names()) == set(dataset_names("detect")) | set(dataset_names("classify"))
    assert FIXED_CLASSES == {"raccoon": ["raccoon"], "mnist-scenes": [str(d) for d in range(10)]}


@pytest.mark.parametrize("alias, name", [("fashion", "fashion-mnist"), ("fashion_mnist", "fashion-mnist"),
                                         ("imagenette", "imagenette-160"), ("cifar-10", "cifar10"),
                                         ("cifar-100", "cifar100"), ("cifar10_jpeg", "cifar10-jpeg"),
                                         ("voc", "voc")])
def test_aliases_resolve_to_the_registered_name(alias, name):
    assert canonical_name(alias) == name and get_dataset(alias).name == name


@pytest.mark.usefixtures("scratch_registry")
@pytest.mark.parametrize("name, aliases", [("voc", ()), ("mnist", ()), ("fashion", ()), ("new-set", ("coco",)),
                                           ("new-set", ("imagenette",))])
def test_a_taken_name_or_alias_is_refused(name, aliases):
    before = dict(registry._REGISTRY)
    with pytest.raises(CnnlabError, match="already registered; pick another name") as err:
        register_dataset(name, task="detect", aliases=aliases)(lambda cfg, problems: None)
    assert "\n" not in str(err.value)
    assert registry._REGISTRY == before  # nothing half-added


@pytest.mark.usefixtures("scratch_registry")
def test_a_new_dataset_registers_once_and_its_task_must_be_known():
    def reader(cfg, problems):
        return {}, [], Path(".")

    assert register_dataset("my-boxes", task="detect", aliases=("mine",))(reader) is reader
    assert get_dataset("mine").load is reader and "my-boxes" in dataset_names("detect")
    assert "my-boxes" not in dataset_names("classify")
    with pytest.raises(CnnlabError, match="already registered"):
        register_dataset("my-boxes", task="detect")(reader)
    with pytest.raises(CnnlabError, match="names task 'segment'; give one of classify, detect"):
        register_dataset("masks", task="segment")


@pytest.mark.parametrize("lookup", [
    lambda name: get_dataset(name),
    lambda name: load_dataset(DataConfig(name=name)),
    lambda name: read_annotations(DataConfig(name=name)),
])
def test_an_unknown_name_is_one_line_with_the_nearest(lookup):
    with pytest.raises(CnnlabError) as err:
        lookup("vco")
    assert str(err.value) == "unknown dataset 'vco'; did you mean 'voc'?"


def test_a_name_of_the_other_task_is_refused_with_what_to_do():
    with pytest.raises(CnnlabError, match="'voc' is an object-detection dataset .* set task=detect"):
        load_dataset(DataConfig(name="voc"))
    with pytest.raises(CnnlabError) as err:
        read_annotations(DataConfig(name="mnist"))
    assert str(err.value) == ("'mnist' is not a detection dataset; task=detect reads coco, mnist-scenes, raccoon, "
                              "voc or yolo (data.name)")


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_names_a_registered_dataset_of_its_task(preset):
    cfg = load_config(preset)
    spec = get_dataset(cfg.data.name)
    assert spec.task == cfg.task, f"{preset}: data.name={cfg.data.name} is a {spec.task} dataset"


def _data_names(node):
    """Every value given to ``data.name`` anywhere in a parsed YAML tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "data.name":
                yield from (value if isinstance(value, list) else [value])
            yield from _data_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from _data_names(item)


@pytest.mark.parametrize("sweep", sorted((resources.files("cnnlab") / "presets" / "sweeps").iterdir(),
                                         key=lambda p: p.name), ids=lambda p: p.name)
def test_every_dataset_a_sweep_preset_names_is_registered(sweep):
    for name in _data_names(yaml.safe_load(sweep.read_text())):
        assert get_dataset(name).name == name


@pytest.mark.parametrize("fmt, write", [("voc", write_voc), ("coco", write_coco), ("yolo", write_yolo)])
def test_each_format_reads_its_fixture_through_the_registry(tmp_path, fmt, write):
    root = write(tmp_path / fmt)
    cfg = DataConfig(name=fmt, root=str(root))
    problems = Problems(strict=True)
    anns, classes, found = get_dataset(fmt).load(cfg, problems)
    assert classes == CLASSES and Path(found) == root and problems.counts == {}
    for split in ("train", "test"):
        assert sorted(a.image.name for a in anns[split]) == sorted(s[0] for s in SPLITS[split])
        by_name = {a.image.name: a for a in anns[split]}
        for file, _, _, objects in SPLITS[split]:
            assert by_name[file].labels.tolist() == [CLASSES.index(o[0]) for o in objects]
    assert read_annotations(cfg)[1:3] == (classes, str(root))  # the same reader behind the detection loader


@pytest.mark.parametrize("fmt", ["voc", "coco", "yolo"])
def test_a_format_without_its_root_names_its_layout(fmt):
    layout = importlib.import_module(f"cnnlab.data.formats.{fmt}").LAYOUT
    with pytest.raises(CnnlabError) as err:
        read_annotations(DataConfig(name=fmt))
    assert str(err.value) == f"data.name={fmt} needs data.root=PATH, the dataset folder ({layout})"


def test_a_folder_cache_written_before_the_shared_cache_is_still_read(tmp_path, monkeypatch):
    """The cache file keeps its place and its arrays: one saved the old way is read back, not decoded."""
    root = write_folder(tmp_path / "ds", per_class=4)
    classes = folders.list_classes(root)
    items = folders.list_images(root, classes)
    options = {"size": 16, "policy": "resize", "mode": "RGB", "classes": ",".join(classes)}
    path = tmp_path / "cache" / "folders" / f"{folders.listing_key(items, root, options)}.npz"
    path.parent.mkdir(parents=True)
    images = np.full((len(items), 3, 16, 16), 7, dtype=np.uint8)
    labels = np.array([label for _, label in items], dtype=np.int64)
    with open(path, "wb") as fh:  # what load_folder_split wrote before data/cache.py
        np.savez(fh, images=images, labels=labels, skipped=np.array([], dtype=str))
    monkeypatch.setattr(folders, "decode_all", lambda *a, **k: pytest.fail("decoded although cached"))
    split = folders.load_folder_split(root, classes, 16, "resize", "RGB", False, tmp_path / "cache")
    assert (split.images == 7).all() and split.labels.tolist() == labels.tolist() and split.skipped == []


def test_a_damaged_cache_is_decoded_again_and_rewritten(tmp_path):
    root = write_folder(tmp_path / "ds", per_class=4)
    classes = folders.list_classes(root)
    first = folders.load_folder_split(root, classes, 16, "resize", "RGB", False, tmp_path / "cache")
    (path,) = (tmp_path / "cache" / "folders").glob("*.npz")
    path.write_bytes(b"not a zip file")
    again = folders.load_folder_split(root, classes, 16, "resize", "RGB", False, tmp_path / "cache")
    assert np.array_equal(first.images, again.images) and path.stat().st_size > 100


@pytest.mark.parametrize("name", ["cnnlab.data.registry", "cnnlab.data.cache", "cnnlab.data.annotations",
                                  "cnnlab.data.formats.voc"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
