"""Detection data from the CLI: mnist-scenes generation (determinism, test digits only, the cache)
and every bad input of issue 11 (one line and a non-zero exit, or a counted warning printed once;
nothing half-written)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli import main
from cnnlab.config import load_config
from cnnlab.data.detection import load_detection_data, read_detection_dataset
from tests.data.test_detection_data import write_coco, write_voc, write_yolo


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Decoded-image caches and generated scenes go to the test's own folder, never ~/.cache."""
    monkeypatch.setattr("cnnlab.data.folder.default_cache_dir", lambda: tmp_path / "home-cache")


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> bool:
    return err.startswith("cnnlab: error:") and err.count("\n") == 1


def _info(capsys, fmt, root, *extra):
    return _run(capsys, "data", "info", fmt, f"data.root={root}", "data.image_size=32", *extra, "--json")


# ----------------------------------------------------------------------------- mnist-scenes


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".cnnlab-run"}


SMALL = ["--size", "64", "--train", "6", "--test", "4", "--digits", "2-4"]


def test_make_scenes_is_deterministic(mnist_root, tmp_path, capsys):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        code, _, err = _run(capsys, "data", "make-scenes", "mnist", "--out", tmp_path / name, *SMALL, "--seed", seed,
                            "--data-dir", mnist_root, "--json")
        assert code == 0, err
    a, b, c = (_files(tmp_path / n) for n in "abc")
    assert len(a) == 6 + 4 + 6 + 4 + 2 + 2  # PNGs, XMLs, classes.txt + scenes.json, the two split files
    assert a == b  # byte-identical
    assert a.keys() == c.keys() and a["JPEGImages/train-000000.png"] != c["JPEGImages/train-000000.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]  # no staging folder left behind


def test_scene_objects_are_the_recorded_mnist_digits_and_test_uses_test_digits(mnist_root, tmp_path, capsys):
    from cnnlab.data.locate import load_idx_dataset

    out = tmp_path / "scenes"
    code, _, err = _run(capsys, "data", "make-scenes", "mnist", "--out", out, *SMALL, "--clutter",
                        "--data-dir", mnist_root)
    assert code == 0, err
    train_x, train_y, test_x, test_y = load_idx_dataset("mnist", mnist_root)
    manifest = json.loads((out / "scenes.json").read_text())
    data = read_detection_dataset(load_config(None, ["task=detect", "data.name=mnist-scenes", f"data.root={out}"]).data)
    loaded = {Path(p).stem: (b, lab) for split in data[:2] for p, b, lab in zip(split.paths, split.boxes, split.labels)}
    fits_train_digit = 0
    n_test = 0
    for image_id, objects in manifest["images"].items():
        split = image_id.split("-")[0]
        pool, labels = (test_x, test_y) if split == "test" else (train_x, train_y)
        scene = np.asarray(Image.open(out / "JPEGImages" / f"{image_id}.png"))
        boxes, ids = loaded[image_id]
        assert boxes.tolist() == [o["box"] for o in objects] and ids.tolist() == [o["label"] for o in objects]
        for o in objects:
            assert o["split"] == split and o["label"] == labels[o["index"]]

            def fits(digit):
                render = np.asarray(Image.fromarray(digit).resize((o["side"], o["side"]), Image.BILINEAR))
                canvas = np.zeros((64 + 2 * 64, 64 + 2 * 64), dtype=np.uint8)  # room for hanging margins
                x, y = o["at"]
                canvas[y + 64:y + 64 + o["side"], x + 64:x + 64 + o["side"]] = render
                canvas = canvas[64:128, 64:128]
                ys, xs = np.nonzero(canvas)
                tight = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
                # the scene is the pixel-wise max of its digits: it is at least this digit everywhere
                return tight == o["box"] and bool((scene >= canvas).all())

            assert fits(pool[o["index"]])
            if split == "test":
                n_test += 1
                fits_train_digit += fits(train_x[o["index"]])
    assert n_test > 0 and fits_train_digit < n_test  # the check tells a test digit from a training digit


def test_coco_and_voc_scenes_hold_the_same_boxes(mnist_root, tmp_path, capsys):
    for fmt in ("voc", "coco"):
        code, _, err = _run(capsys, "data", "make-scenes", "mnist", "--out", tmp_path / fmt, *SMALL,
                            "--format", fmt, "--data-dir", mnist_root)
        assert code == 0, err
    voc, coco = (read_detection_dataset(load_config(None, ["task=detect", "data.name=mnist-scenes",
                                                           f"data.root={tmp_path / f}"]).data) for f in ("voc", "coco"))
    for a, b in zip(voc[:2], coco[:2]):
        assert torch.equal(a.images, b.images)
        assert all(torch.equal(x, y) for x, y in zip(a.boxes, b.boxes))
        assert all(torch.equal(x, y) for x, y in zip(a.labels, b.labels))
    assert voc[2] == coco[2] == [str(d) for d in range(10)]


def test_mnist_scenes_without_a_root_are_generated_once_into_the_cache(mnist_root, tmp_path, capsys):
    cache = tmp_path / "cache"
    overrides = ["task=detect", "data.name=mnist-scenes", f"data.cache_dir={cache}", f"data.data_dir={mnist_root}",
                 "data.scenes.size=64", "data.scenes.train=10", "data.scenes.test=5", "data.val=none"]
    first = load_detection_data(load_config(None, overrides))
    assert "generating mnist-scenes" in capsys.readouterr().err
    (folder,) = (cache / "scenes").iterdir()  # one keyed folder, no temporary one left
    assert (folder / "scenes.json").is_file() and not folder.name.startswith(".")
    second = load_detection_data(load_config(None, overrides))
    assert "generating" not in capsys.readouterr().err
    assert torch.equal(first.train.images, second.train.images) and first.train.images.shape == (10, 1, 64, 64)
    load_detection_data(load_config(None, overrides + ["data.scenes.seed=1"]))
    assert len(list((cache / "scenes").iterdir())) == 2  # other parameters, another key


@pytest.mark.parametrize("args, message", [
    (["--digits", "0-3"], "digits per scene '0-3' is not valid"),
    (["--digits", "6-1"], "is not valid"),
    (["--digits", "x"], "is not valid"),
    (["--size", "40"], "smaller than the largest digit"),
    (["--train", "0"], "--train 0 is out of range"),
])
def test_make_scenes_bad_options(tmp_path, capsys, args, message):
    code, _, err = _run(capsys, "data", "make-scenes", "mnist", "--out", tmp_path / "out", *args)
    assert code == 2 and _one_error_line(err) and message in err
    assert list(tmp_path.iterdir()) == []


def test_make_scenes_refuses_an_existing_folder_and_missing_mnist(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CNNLAB_DATA", raising=False)  # so MNIST is looked for only in --data-dir and ./data
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    code, _, err = _run(capsys, "data", "make-scenes", "mnist", "--out", mine, "--overwrite")
    assert code == 2 and _one_error_line(err) and "not a cnnlab run directory" in err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _run(capsys, "data", "make-scenes", "mnist", "--out", tmp_path / "out", "--data-dir", empty)
    assert code == 2 and _one_error_line(err) and "'mnist' not found" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "mine"]  # nothing half-written


# ----------------------------------------------------------------------------- bad input in the readers


def _edit_xml(root: Path, image_id: str, objects: str) -> None:
    path = root / "Annotations" / f"{image_id}.xml"
    path.write_text(path.read_text().replace("</annotation>", objects + "</annotation>"))


def _obj(name, x1, y1, x2, y2):
    return (f"<object><name>{name}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>"
            f"<ymax>{y2}</ymax></bndbox></object>")


def test_good_voc_folder_reports_its_negative_image_and_no_warning(tmp_path, capsys):
    code, out, err = _info(capsys, "voc", write_voc(tmp_path / "voc"))
    info = json.loads(out)
    assert code == 0 and err == ""
    assert info["problems"] == {"images_without_boxes": 1}  # c.png: a valid negative, counted, not warned
    assert (info["train"], info["test"], info["train_boxes"], info["test_boxes"]) == (3, 2, 3, 3)


def test_bad_boxes_are_clipped_or_dropped_with_counts_or_refused_when_strict(tmp_path, capsys):
    root = write_voc(tmp_path / "voc")
    # a.png is 40x30: one box reaching outside, one wholly outside, two with no area
    _edit_xml(root, "a", _obj("cat", 30, 20, 60, 29) + _obj("dog", 50, 1, 60, 10) + _obj("cat", 20, 5, 10, 9)
              + _obj("cat", 5, 6, 9, 4))
    code, out, err = _info(capsys, "voc", root)
    counts = json.loads(out)["problems"]
    assert code == 0
    assert counts == {"boxes_clipped": 1, "boxes_outside": 1, "boxes_invalid": 2, "images_without_boxes": 1}
    lines = err.strip().splitlines()  # one warning per kind, each with its count and first example
    assert len(lines) == 3 and all(line.startswith("cnnlab: warning: voc: ") for line in lines)
    assert any("2 boxes with x2 <= x1" in line and "a.xml box 5" in line for line in lines)
    train, *_ = read_detection_dataset(load_config(None, ["task=detect", "data.name=voc", f"data.root={root}",
                                                          "data.image_size=40"]).data)
    i = [Path(p).name for p in train.paths].index("a.png")
    assert train.boxes[i][2].tolist() == [29.0, 24.0, 40.0, 34.0]  # clipped to x2=40 (40x30 at pad_y 5)
    capsys.readouterr()
    code, _, err = _info(capsys, "voc", root, "data.strict=true")
    assert code == 2 and _one_error_line(err) and "a.xml box 3" in err and "data.strict=false" in err
    assert re.search(r"box \[[0-9.]+, [0-9.]+, [0-9.]+, [0-9.]+\] ", err), err  # plain numbers, not np.float64(...)


def test_missing_image_and_unknown_class(tmp_path, capsys):
    root = write_voc(tmp_path / "voc")
    (root / "JPEGImages" / "b.png").unlink()
    _edit_xml(root, "d", _obj("bird", 2, 2, 9, 9))
    code, out, err = _info(capsys, "voc", root)
    info = json.loads(out)
    assert code == 0 and info["train"] == 2
    assert info["problems"] == {"unknown_classes": 1, "missing_images": 1, "images_without_boxes": 1}
    assert err.count("\n") == 2 and "'bird' is not in the class list" in err and "b.png" in err
    code, _, err = _info(capsys, "voc", root, "data.strict=true")
    assert code == 2 and _one_error_line(err) and "bird" in err
    (root / "Annotations" / "d.xml").write_text((root / "Annotations" / "d.xml").read_text().replace("bird", "cat"))
    code, _, err = _info(capsys, "voc", root, "data.strict=true")
    assert code == 2 and _one_error_line(err) and "b.png" in err and "does not exist" in err


def test_without_a_class_list_the_names_found_are_the_classes(tmp_path, capsys):
    root = write_voc(tmp_path / "voc", classes_file=False)
    _edit_xml(root, "d", _obj("bird", 2, 2, 9, 9))
    code, out, err = _info(capsys, "voc", root)
    assert code == 0 and err == "" and json.loads(out)["classes"] == ["bird", "cat", "dog"]


def _coco_file_name(root, name):
    path = root / "annotations" / "instances_test.json"
    doc = json.loads(path.read_text())
    doc["images"][0]["file_name"] = name
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("break_it, message", [
    (lambda r: (r / "annotations" / "instances_train.json").write_text('{"images": [}'), "is not valid JSON"),
    (lambda r: (r / "annotations" / "instances_test.json").write_text("[1, 2]"), "needs top-level 'images'"),
    (lambda r: (r / "annotations" / "instances_test.json").unlink(), "has no instances_test.json"),
    (lambda r: _coco_file_name(r, "../outside.png"), "leaves the dataset folder"),  # was read from outside
    (lambda r: _coco_file_name(r, "/etc/hostname"), "leaves the dataset folder"),
])
def test_broken_coco_files_are_one_line(tmp_path, capsys, break_it, message):
    root = write_coco(tmp_path / "coco")
    break_it(root)
    code, out, err = _info(capsys, "coco", root)
    assert code == 2 and out == "" and _one_error_line(err) and message in err


def test_coco_unknown_category_and_missing_image_are_counted(tmp_path, capsys):
    root = write_coco(tmp_path / "coco")
    path = root / "annotations" / "instances_train.json"
    doc = json.loads(path.read_text())
    doc["annotations"].append({"id": 99, "image_id": 100, "category_id": 42, "bbox": [1, 1, 5, 5]})
    doc["images"].append({"id": 200, "file_name": "gone.png", "width": 10, "height": 10})
    path.write_text(json.dumps(doc))
    code, out, err = _info(capsys, "coco", root)
    assert code == 0
    assert json.loads(out)["problems"] == {"unknown_classes": 1, "missing_images": 1, "images_without_boxes": 1}
    assert "category_id 42" in err and "gone.png" in err


def test_xml_with_a_dtd_is_refused(tmp_path, capsys):
    root = write_voc(tmp_path / "voc")
    bomb = '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxx">]><annotation>&x;</annotation>'
    (root / "Annotations" / "a.xml").write_text(bomb)
    code, _, err = _info(capsys, "voc", root)
    assert code == 2 and _one_error_line(err) and "DTD" in err
    (root / "Annotations" / "a.xml").write_text("<annotation><object>")
    code, _, err = _info(capsys, "voc", root)
    assert code == 2 and _one_error_line(err) and "not valid XML" in err


def test_yolo_bad_lines(tmp_path, capsys):
    root = write_yolo(tmp_path / "yolo")
    label = root / "labels" / "train" / "a.txt"
    label.write_text(label.read_text() + "5 0.5 0.5 0.1 0.1\n")  # class 5 of 2
    code, out, err = _info(capsys, "yolo", root)
    assert code == 0 and json.loads(out)["problems"]["unknown_classes"] == 1 and "class id 5" in err
    label.write_text("0 0.5 0.5 0.1\n")
    code, _, err = _info(capsys, "yolo", root)
    assert code == 2 and _one_error_line(err) and "a.txt line 1" in err and "class cx cy w h" in err
    (root / "classes.txt").unlink()
    code, _, err = _info(capsys, "yolo", root)
    assert code == 2 and _one_error_line(err) and "classes.txt" in err


def test_detection_dataset_names_need_their_root_and_task(tmp_path, capsys):
    code, _, err = _run(capsys, "data", "info", "voc")
    assert code == 2 and _one_error_line(err) and "needs data.root" in err
    code, _, err = _run(capsys, "data", "info", "voc", f"data.root={tmp_path / 'nowhere'}")
    assert code == 2 and _one_error_line(err) and "does not exist" in err
    from cnnlab.data.datasets import load_dataset
    from cnnlab.errors import CnnlabError

    with pytest.raises(CnnlabError, match="object-detection dataset"):
        load_dataset(load_config(None, ["data.name=raccoon"]).data)


def test_preview_draws_a_detection_dataset(tmp_path, capsys):
    root = write_voc(tmp_path / "voc")
    out = tmp_path / "boxes.png"
    code, _, err = _run(capsys, "data", "preview", "voc", f"data.root={root}", "data.image_size=32",
                        "data.augment.scale=0.3", "data.augment.hflip=0.5", "--augment", "--count", "3", "--out", out)
    assert code == 0, err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out_text, _ = _run(capsys, "data", "info", "voc", f"data.root={root}", "data.image_size=32")
    assert code == 0 and "3 train images (3 boxes)" in out_text and "images_without_boxes: 1" in out_text


def test_split_ids_that_are_paths_and_repeated_coco_ids_are_refused(tmp_path, capsys):
    root = write_voc(tmp_path / "voc")
    (root / "ImageSets" / "Main" / "test.txt").write_text("../../etc/passwd\n")
    code, _, err = _info(capsys, "voc", root)
    assert code == 2 and _one_error_line(err) and "is a path, not an image id" in err
    root = write_coco(tmp_path / "coco")
    path = root / "annotations" / "instances_test.json"
    doc = json.loads(path.read_text())
    doc["images"][1]["id"] = doc["images"][0]["id"]
    path.write_text(json.dumps(doc))
    code, _, err = _info(capsys, "coco", root)
    assert code == 2 and _one_error_line(err) and "repeats image id 100" in err


def test_coco_2017_style_names_are_found(tmp_path, capsys):
    root = write_coco(tmp_path / "coco")
    for split, year_split in (("train", "train2017"), ("test", "val2017")):
        (root / "annotations" / f"instances_{split}.json").rename(root / "annotations" / f"instances_{year_split}.json")
        (root / split).rename(root / year_split)
    code, out, err = _info(capsys, "coco", root)
    assert code == 0 and err == "" and (json.loads(out)["train"], json.loads(out)["test"]) == (3, 2)
