"""A YOLO folder whose labels are missing is refused: it trained on zero boxes and reported mAP 0."""

from __future__ import annotations

import shutil

import pytest

from tests.data.test_detection_data import write_yolo
from tests.data.test_detection_inputs import _info, _one_error_line


@pytest.mark.parametrize("split", ["train", "test"])
def test_a_yolo_split_without_its_labels_folder_is_refused(tmp_path, capsys, split):
    root = write_yolo(tmp_path / "yolo")
    shutil.rmtree(root / "labels" / split)
    code, _, err = _info(capsys, "yolo", root)
    assert code == 2 and _one_error_line(err) and f"labels/{split} is not a folder" in err, err


def test_a_yolo_split_whose_label_files_match_no_image_is_refused(tmp_path, capsys):
    root = write_yolo(tmp_path / "yolo")
    for txt in (root / "labels" / "train").glob("*.txt"):
        txt.rename(txt.with_name("other-" + txt.name))
    code, _, err = _info(capsys, "yolo", root)
    assert code == 2 and _one_error_line(err) and "has a label file" in err, err
