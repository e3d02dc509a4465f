"""Hostile metadata in checkpoints and ONNX files, rare image modes, and counts at their bounds (issue 21).

- ``metadata.checkpoint``: the sandbox run's ``final.pt`` with ``input_size``, ``classes``, ``mean`` and
  ``std`` replaced by values at and past the bounds of user input (sides 4096/4097, 10**20, NaN, 1e30,
  class lists too short or too long), then every command that reads it, ``model.weights=run`` among them;
- ``metadata.onnx``: a real ONNX graph whose ``cnnlab`` metadata is generated, through ``predict``;
- ``images.modes``: one picture in 16-bit greyscale, 16-bit RGB(A), palette, bilevel, grey + alpha,
  RGBA and BMP decodes exactly like its 8-bit reference, at any size and resize policy, in either mode;
- ``bounds.counts``: ``data.limit_train``, ``-k``, ``--top``, ``--index``, ``--techniques`` at and around
  their bounds, each through the command that reads it.

The CLI targets keep test_cli_fuzz's properties (run_cli_case); the image target asserts equality.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz import harness
from tests.fuzz.cli_cases import run_cli_case
from tests.fuzz.harness import examples
from tests.fuzz.world import TINY_TRAIN

SIDES = [0, 1, 2, 3, 8, 16, 4096, 4097, 65536, 65537, 2 ** 31, 10 ** 20, -1]
NUMBERS = [0.0, 0.5, 1.0, -1.0, 1000.0, 1000.5, -1000.5, 1e30, -1e30, float("nan"), float("inf"), 1e-30, 0, True]


def sizes() -> st.SearchStrategy:
    side = st.sampled_from(SIDES)
    return st.one_of(st.tuples(side, side, side).map(list), st.lists(side, max_size=4),
                     st.sampled_from([None, "3x16x16", [3, 16.0, 16], [3, "16", 16], {"c": 3}]))


def class_lists() -> st.SearchStrategy:
    name = st.sampled_from(["a", "b", "", "x" * 1001, "héllo", "../etc"])
    return st.one_of(st.lists(name, max_size=6), st.sampled_from([None, "abc", [1, 2, 3], [None], ["a"] * 3000]))


def stats() -> st.SearchStrategy:
    return st.one_of(st.none(), st.lists(st.sampled_from(NUMBERS), max_size=4), st.sampled_from(["nan", {}, [[0.5]]]))


METADATA = st.fixed_dictionaries({}, optional={"input_size": sizes(), "classes": class_lists(), "mean": stats(),
                                               "std": stats()})

CHECKPOINT_READERS = [
    ["eval", "run"], ["predict", "run", "img.png"], ["profile", "run", "--no-timing"],
    ["explain", "run", "--index", "0", "--methods", "saliency", "--out", "ex"],
    ["train", "tiny.yaml", "model.weights=run", *TINY_TRAIN, "--out", "new", "--quiet"],
    ["features", "run", "--data", "tiny.yaml", "--out", "feats"],
]


@examples(30)
@given(fields=METADATA, argv=st.sampled_from(CHECKPOINT_READERS))
@example(fields={"input_size": [3, 100000, 100000]}, argv=CHECKPOINT_READERS[4])  # a 1.8e15-byte allocation
@example(fields={"mean": [float("nan")] * 3}, argv=CHECKPOINT_READERS[4])  # NaN loss at step 1
@example(fields={"input_size": [3, 4096, 4096]}, argv=CHECKPOINT_READERS[0])  # at the bound: still one line
def test_checkpoint_metadata(template, fields, argv):
    def damage(sandbox: Path) -> None:
        import torch

        path = sandbox / "run" / "final.pt"
        record = torch.load(path, weights_only=True)
        record.update(fields)
        torch.save(record, path)

    run_cli_case(template, argv, "metadata.checkpoint", prepare=damage)


def _tiny_onnx(path: Path, meta_text: str, outputs: int) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.linspace(-1, 1, 3 * 16 * 16 * outputs, dtype=np.float32).reshape(-1, outputs),
                                     "w")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["image"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["logits"])],
        "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", outputs])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key, entry.value = "cnnlab", meta_text
    onnx.save(model, str(path))


def _meta_text(fields: dict, resize) -> str:
    meta = {"format": "cnnlab-export", "version": 1, "input_size": [3, 16, 16], "classes": ["a", "b", "c"],
            "resize": "resize", **fields}
    if resize is not None:
        meta["resize"] = resize
    return json.dumps(meta, default=str, allow_nan=True)


@examples(25)
@given(fields=METADATA, resize=st.sampled_from([None, "pad", "center_crop", "bogus", 7]),
       outputs=st.sampled_from([1, 3, 4]), k=st.sampled_from(["1", "3", "100"]),
       raw=st.sampled_from([None, "", "[1, 2]", "{", "null", '{"input_size": [3, 16, 16]}']))
@example(fields={"classes": ["a"]}, resize=None, outputs=3, k="3", raw=None)  # IndexError before
@example(fields={"input_size": [3, 32, 32]}, resize=None, outputs=3, k="3", raw=None)  # onnxruntime's traceback
def test_onnx_metadata(template, fields, resize, outputs, k, raw):
    text = raw if raw is not None else _meta_text(fields, resize)
    run_cli_case(template, ["predict", "model.onnx", "img.png", "img.jpg", "-k", k], "metadata.onnx",
                 prepare=lambda sandbox: _tiny_onnx(sandbox / "model.onnx", text, outputs))


# ----------------------------------------------------------------------------- image modes


@examples(30)
@given(side=st.integers(1, 24), seed=st.integers(0, 2 ** 16), size=st.integers(1, 32),
       policy=st.sampled_from(["resize", "center_crop", "pad"]), mode=st.sampled_from(["L", "RGB"]))
def test_rare_image_modes_decode_like_their_8bit_reference(tmp_path_factory, side, seed, size, policy, mode):
    from cnnlab.data.folder import decode_image
    from tests.image_modes import mode_copies, write_png

    harness.count("images.modes")
    folder = tmp_path_factory.mktemp("modes")
    rng = np.random.default_rng(seed)
    grey = rng.integers(0, 256, (side, side + seed % 3), dtype=np.uint8)
    for name, (path, reference) in mode_copies(grey, folder).items():
        want = decode_image(write_png(folder / f"ref-{name}.png", reference, 8), size, policy, mode)
        got = decode_image(path, size, policy, mode)
        assert got.dtype == np.uint8 and np.array_equal(got, want), f"{name}: {side}x{side + seed % 3} -> {size}"
    wide = rng.integers(0, 65536, grey.shape, dtype=np.uint16)  # any 16-bit value keeps its high byte
    got = decode_image(write_png(folder / "wide.png", wide, 16), size, policy, mode)
    want = decode_image(write_png(folder / "wide-ref.png", (wide >> 8).astype(np.uint8), 8), size, policy, mode)
    assert np.array_equal(got, want)


# ----------------------------------------------------------------------------- counts at the bounds

BOUNDS = [-1, 0, 1, 2, 3, 4, 5, 11, 12, 13, 255, 256, 257, 10 ** 9, 10 ** 9 + 1, 2 ** 63]
TECHNIQUES = [",", "", " , ", ",adam", "adam,,", "adam,adam", "nope", "ADAM"]


def bounded_argv(command: str, value: int, techniques: str) -> list[str]:
    v = str(value)
    return {
        "train": ["train", "tiny.yaml", *TINY_TRAIN, f"data.limit_train={v}", "--out", "o", "--quiet"],
        "features": ["features", "run", "--data", "tiny.yaml", f"data.limit_train={v}", "--out", "f"],
        "cv": ["cv", "tiny.yaml", *TINY_TRAIN, f"data.limit_train={v}", "--folds", "2", "--out", "o", "--quiet"],
        "predict": ["predict", "run", "img.png", "-k", v],
        "eval": ["eval", "run", "--top", v],
        "explain": ["explain", "run", "--index", v, "--methods", "saliency", "--out", "e"],
        "ablate": ["ablate", "tiny.yaml", *TINY_TRAIN, "--techniques", techniques, "--out", "a", "--quiet"],
    }[command]


@examples(30)
@given(command=st.sampled_from(["train", "features", "cv", "predict", "eval", "explain", "ablate"]),
       value=st.sampled_from(BOUNDS), techniques=st.sampled_from(TECHNIQUES))
@example(command="train", value=2, techniques=",")  # fewer images than classes: a class never learned
@example(command="features", value=5, techniques=",")  # was ignored
@example(command="ablate", value=1, techniques=",")  # ran every technique
def test_counts_at_their_bounds(template, command, value, techniques):
    assert not math.isnan(value)
    run_cli_case(template, bounded_argv(command, value, techniques), "bounds.counts")
