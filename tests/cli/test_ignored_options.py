"""Options that were accepted and silently ignored, and usage errors that printed argparse's usage:
each is now one ``cnnlab: error:`` line (exit 2) that says what applies, and nothing is written."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from tests.cli_checks import cli, one_line


def test_ablate_techniques_that_name_nothing_are_refused(tmp_path, capsys):
    for text in (",", "", " , "):
        code, _, err = cli(capsys, "ablate", "mnist-fast", "--techniques", text, "--out", tmp_path / "a")
        one_line(code, err, "names no technique", "leave --techniques out")
    assert not (tmp_path / "a").exists()


def test_top_k_on_a_detection_run_is_refused(tmp_path, capsys):
    run = tmp_path / "det"
    run.mkdir()
    (run / "config.yaml").write_text("task: detect\ndata:\n  name: voc\n")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "x.png")
    code, _, err = cli(capsys, "predict", run, tmp_path / "x.png", "-k", "5")
    one_line(code, err, "-k/--top-k 5 applies to classification runs", "--max-detections")


def test_explain_layer_without_a_method_that_uses_one_is_refused(mnist_run, tmp_path, capsys):
    code, _, err = cli(capsys, "explain", mnist_run, "--index", "0", "--methods", "saliency", "occlusion",
                       "--layer", "features.2.0", "--out", tmp_path / "e")
    one_line(code, err, "--layer features.2.0 applies to gradcam, guided_gradcam only", "(saliency, occlusion)")
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("view", ["activations", "neurons"])
def test_a_view_without_its_layer_is_one_line_naming_the_layers(mnist_run, tmp_path, capsys, view):
    code, out, err = cli(capsys, "explain", view, mnist_run, "--index", "0", "--out", tmp_path / "v.png") \
        if view == "activations" else cli(capsys, "explain", view, mnist_run, "--out", tmp_path / "v.png")
    one_line(code, err, f"explain {view} needs --layer NAME", "features.0.0")
    assert "usage:" not in out + err and not (tmp_path / "v.png").exists()


def test_torchscript_dynamic_batch_is_refused(mnist_run, tmp_path, capsys):
    code, _, err = cli(capsys, "export", mnist_run, "--format", "torchscript", "--dynamic-batch",
                       "--out", tmp_path / "m.pt")
    one_line(code, err, "--dynamic-batch applies to --format onnx")
    assert not (tmp_path / "m.pt").exists()


def test_an_ensemble_naming_one_run_twice_is_refused(mnist_run, tmp_path, capsys):
    link = tmp_path / "link"
    link.symlink_to(mnist_run)
    for members in ([mnist_run, mnist_run], [mnist_run, link]):
        code, _, err = cli(capsys, "ensemble", *members)
        one_line(code, err, "is named twice", "distinct runs")


def test_an_ensemble_of_other_data_names_the_key_not_a_tuple(mnist_run, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(mnist_run, other)
    config = other / "config.yaml"
    config.write_text(config.read_text().replace("name: mnist\n", "name: fashion-mnist\n", 1))
    code, _, err = cli(capsys, "ensemble", mnist_run, other)
    one_line(code, err, "(data.name=fashion-mnist vs mnist)")
    assert "('" not in err and "None" not in err, err  # was a Python tuple: ('fashion-mnist', None, None, ...)
