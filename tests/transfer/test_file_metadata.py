"""Sizes, classes and statistics read from checkpoints and ONNX files are checked as user input is.

Each hostile file here went through before (an allocation of 1.8e15 bytes, a NaN loss at step 1,
an IndexError); now each is one ``cnnlab: error:`` line naming the file and the key.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnnlab.checkpoint import load_checkpoint, save_checkpoint
from tests.cli_checks import cli, one_line


def tiny_onnx(path: Path, meta: dict | str | None, outputs: int = 3, side: int = 8, channels: int = 1) -> Path:
    """A real ONNX graph (Flatten -> MatMul to ``outputs`` logits) carrying ``meta`` as its cnnlab metadata."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(
        np.linspace(-1, 1, channels * side * side * outputs, dtype=np.float32).reshape(-1, outputs), "w")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["image"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["logits"])],
        "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", channels, side, side])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", outputs])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if meta is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = "cnnlab", meta if isinstance(meta, str) else json.dumps(meta)
    onnx.save(model, str(path))
    return path


def good_meta(**changes) -> dict:
    meta = {"format": "cnnlab-export", "version": 1, "classes": ["a", "b", "c"], "input_size": [1, 8, 8],
            "resize": "resize", "mean": [0.5], "std": [0.25]}
    return {**meta, **changes}


def grey_png(path: Path, side: int = 8) -> Path:
    from PIL import Image

    Image.fromarray(np.arange(side * side, dtype=np.uint8).reshape(side, side) * 3).save(path)
    return path


def test_a_well_formed_tiny_onnx_file_predicts(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    model = tiny_onnx(tmp_path / "m.onnx", good_meta())
    code, out, err = cli(capsys, "predict", model, grey_png(tmp_path / "x.png"), "--json")
    assert code == 0, err
    top = json.loads(out)["predictions"][0]["top"]
    assert [t["class"] for t in top] and {t["class"] for t in top} <= {"a", "b", "c"}


@pytest.mark.parametrize("meta, outputs, needles", [
    (good_meta(classes=["a"]), 3, ("3 outputs", "names 1 classes")),  # was IndexError
    (good_meta(classes=["a", "b", "c", "d"]), 3, ("3 outputs", "names 4 classes")),
    (good_meta(input_size=[1, 100000, 100000]), 3, ("'input_size'", "[1, 4,096]")),  # was a hang
    (good_meta(input_size=[1, 8]), 3, ("'input_size'",)),
    (good_meta(input_size=[1, 8.5, 8]), 3, ("'input_size'",)),
    (good_meta(classes=[1, 2, 3]), 3, ("'classes'",)),
    (good_meta(classes=[]), 3, ("'classes'",)),
    (good_meta(resize="../../x"), 3, ("'resize'",)),
    ("[1, 2]", 3, ("not a mapping",)),
    ("{not json", 3, ("not JSON",)),
])
def test_hostile_onnx_metadata_is_one_line(tmp_path, capsys, meta, outputs, needles):
    pytest.importorskip("onnxruntime")
    model = tiny_onnx(tmp_path / "m.onnx", meta, outputs=outputs)
    code, _, err = cli(capsys, "predict", model, grey_png(tmp_path / "x.png"))
    one_line(code, err, str(model), *needles)


@pytest.mark.parametrize("key, value", [
    ("input_size", [1, 100000, 100000]), ("input_size", [1, 65536, 65536]), ("input_size", [0, 28, 28]),
    ("mean", [float("nan")]), ("std", [float("inf")]), ("mean", [1e30]), ("classes", ["x" * 5000] * 10),
])
def test_hostile_checkpoint_metadata_is_one_line(mnist_run, tmp_path, capsys, key, value):
    """eval reads the run's checkpoint; ``model.weights=RUN`` reads it as weights for a new run."""
    import shutil

    run = tmp_path / "hostile"
    shutil.copytree(mnist_run, run)
    state = load_checkpoint(run / "final.pt")
    state[key] = value
    save_checkpoint(run / "final.pt", state)
    code, _, err = cli(capsys, "eval", run, "--weights", "final.pt")
    one_line(code, err, f"'{key}'", "final.pt")
    code, _, err = cli(capsys, "train", "mnist-fast", f"model.weights={run}", "data.limit_train=64",
                       "train.epochs=1", "train.plots=false", "--out", tmp_path / "new", "--quiet")
    one_line(code, err, f"'{key}'", "final.pt")
    assert not (tmp_path / "new").exists()


def test_metadata_that_disagrees_with_the_graph_is_one_line(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    model = tiny_onnx(tmp_path / "m.onnx", good_meta(input_size=[1, 16, 16]), side=8)  # was an onnxruntime traceback
    code, _, err = cli(capsys, "predict", model, grey_png(tmp_path / "x.png"))
    one_line(code, err, "the graph takes 1x8x8 images but its metadata says 1x16x16")
