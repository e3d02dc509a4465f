"""The sub-commands ``cnnlab explain filters|activations|neurons|predictions`` as library calls.

Each writes one PNG (default inside the run directory, atomically) and returns
what ``--json`` prints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from cnnlab.errors import CnnlabError
from cnnlab.explain.filters import activations_figure, filters_figure
from cnnlab.explain.layers import conv_layer_names, get_layer
from cnnlab.explain.neurons import neurons_figure, parse_channels
from cnnlab.explain.predictions import predictions_figure
from cnnlab.explain.workflow import holding_run, load_image_files, load_run_data, model_inputs, predict_logits
from cnnlab.rundir import check_out_file
from cnnlab.runs import load_run

VIEWS = ("filters", "activations", "neurons", "predictions")


def check_png_out(path: str | os.PathLike, overwrite: bool = False, inputs=()) -> Path:
    """An output PNG under the one output policy (:func:`cnnlab.rundir.check_out_file`); nothing is written yet."""
    return check_out_file(path, overwrite, kind="explain", suffixes=(".png",), inputs=inputs)


def _safe(name: str) -> str:
    return name.replace("/", "_").replace(".", "-")


def run_view(view: str, run_dir: str | os.PathLike, *, out: str | os.PathLike | None = None,
             overwrite: bool = False, layer: str | None = None, image: str | None = None,
             index: int | None = None, data_dir: str | None = None, rows: int = 10, cols: int = 3,
             seed: int = 0, count: int | None = None, channels: str | None = None,
             images: int = 2000) -> dict[str, Any]:
    """Draw ``view`` (one of :data:`VIEWS`) for the run in ``run_dir``; return what ``--json`` prints.

    ``out`` defaults to a PNG inside the run (``filters.png``, ``activations-LAYER.png``, ...); once the
    run has loaded, it is locked while a figure is written into it. ``layer`` names the conv layer
    (required by activations and neurons); ``image`` (a file) or ``index`` (a test image) is the image
    of activations, and the one image neurons explain instead of searching ``images`` test images;
    neurons shows ``channels`` (``"3,17,42"``) or the first ``count`` (10); predictions draws a
    ``rows`` x ``cols`` grid of test images picked with ``seed``.
    """
    if view not in VIEWS:
        raise CnnlabError(f"unknown view {view}; one of {', '.join(VIEWS)}")
    if not Path(run_dir).is_dir():
        raise CnnlabError(f"run directory {run_dir} does not exist")
    target = check_png_out(out, overwrite, [run_dir, image]) if out else None
    run = load_run(run_dir)  # a folder that is not a run fails here, before any lock is taken
    run_dir = Path(run_dir)
    with holding_run(run_dir, target or run_dir / "x.png"):
        if view in ("activations", "neurons"):
            if not layer:  # one line naming the choices, not argparse's usage
                names = conv_layer_names(run.model)
                raise CnnlabError(f"explain {view} needs --layer NAME, a conv layer of the run: "
                                  + ", ".join(names[:40]) + (" ..." if len(names) > 40 else ""))
            get_layer(run.model, layer)  # checked first: the default file name is made from it
        default = {"filters": "filters.png", "activations": f"activations-{_safe(layer or '')}.png",
                   "neurons": f"neurons-{_safe(layer or '')}.png", "predictions": "predictions.png"}[view]
        target = target or check_png_out(run_dir / default, overwrite, [image])
        if view == "filters":
            return {"run_dir": str(run_dir), **filters_figure(run.model, layer, target)}
        if view == "activations":
            return {"run_dir": str(run_dir), **_activations(run, layer, image, index, data_dir, target)}
        if view == "neurons":
            return {"run_dir": str(run_dir), **_neurons(run, layer, target, channels=channels, count=count,
                                                        image=image, index=index, images=images, data_dir=data_dir)}
        return {"run_dir": str(run_dir), **_predictions(run, rows, cols, seed, data_dir, target)}


def _activations(run, layer: str, image: str | None, index: int | None, data_dir: str | None, out: Path) -> dict:
    """``explain activations``: the layer's feature maps for one image (a file, or a test image by index)."""
    if (image is None) == (index is None):
        raise CnnlabError("give one image: a file, or --index I for a test image")
    if image is not None:
        x_uint8 = load_image_files(run, [image])
        caption = f"{image}: "
    else:
        data = load_run_data(run, data_dir)
        if not 0 <= index < len(data.test_y):
            raise CnnlabError(f"--index {index} is out of range; the test set has {len(data.test_y)} images")
        x_uint8 = data.test_x[index:index + 1]
        caption = f"test #{index}: "
    return activations_figure(run.model, layer, model_inputs(run, x_uint8), x_uint8[0], out, caption)


def _predictions(run, rows: int, cols: int, seed: int, data_dir: str | None, out: Path) -> dict:
    """``explain predictions``: a seeded draw of test images with their true and predicted classes."""
    if rows < 1 or cols < 1 or rows * cols > 400:
        raise CnnlabError(f"--rows and --cols must be at least 1 with at most 400 images, got {rows}x{cols}")
    data = load_run_data(run, data_dir)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(data.test_y), generator=g)[:rows * cols]
    x_uint8 = data.test_x[pick]
    probs = predict_logits(run, x_uint8).softmax(1)
    return predictions_figure(x_uint8, data.test_y[pick], probs, run.classes, rows, cols, out, pick.tolist())


def _neurons(run, layer: str, out: Path, *, channels: str | None, count: int | None, image: str | None,
             index: int | None, images: int, data_dir: str | None) -> dict:
    """``explain neurons``: ``channels`` (or the first ``count``), searched over test images or shown on one image."""
    if channels is not None and count is not None:
        raise CnnlabError("give --channels C1,C2,... or --count N, not both")
    picked = parse_channels(channels) if channels is not None else (10 if count is None else count)
    if image is not None and index is not None:
        raise CnnlabError("give one image: --image PATH or --index I, not both")
    model = run.model
    if image is not None:  # every channel explained on this one image
        x_uint8 = load_image_files(run, [image])
        return neurons_figure(model, layer, model_inputs(run, x_uint8), x_uint8, picked, out,
                              caption=f"{Path(image).name}", image_name=Path(image).name[:24])
    data = load_run_data(run, data_dir)
    if index is not None:
        if not 0 <= index < len(data.test_y):
            raise CnnlabError(f"--index {index} is out of range; the test set has {len(data.test_y)} images")
        x_uint8 = data.test_x[index:index + 1]
        return neurons_figure(model, layer, model_inputs(run, x_uint8), x_uint8, picked, out, indices=[index],
                              caption=f"test image #{index}")
    if images < 1:
        raise CnnlabError(f"--images must be at least 1, got {images}")
    x_uint8 = data.test_x[:images]
    return neurons_figure(model, layer, model_inputs(run, x_uint8), x_uint8, picked, out)
