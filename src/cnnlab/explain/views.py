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


def check_png_out(path: str | os.PathLike, overwrite: bool = False, inputs=()) -> Path:
    """An output PNG under the one output policy (:func:`cnnlab.rundir.check_out_file`); nothing is written yet."""
    from cnnlab.rundir import check_out_file

    return check_out_file(path, overwrite, kind="explain", suffixes=(".png",), inputs=inputs)


def _safe(name: str) -> str:
    return name.replace("/", "_").replace(".", "-")


def run_view(view: str, args) -> dict[str, Any]:
    """Draw ``view`` for ``args.run_dir``; once the run has loaded, it is locked while a figure is written into it."""
    from cnnlab.explain.workflow import holding_run
    from cnnlab.runs import load_run

    if not Path(args.run_dir).is_dir():
        raise CnnlabError(f"run directory {args.run_dir} does not exist")
    inputs = [args.run_dir, getattr(args, "image", None)]
    out = check_png_out(args.out, args.overwrite, inputs) if args.out else None
    run = load_run(args.run_dir)  # a folder that is not a run fails here, before any lock is taken
    with holding_run(args.run_dir, out or Path(args.run_dir) / "x.png"):
        return _run_view(view, args, run, out)


def _run_view(view: str, args, run, out: Path | None) -> dict[str, Any]:
    from cnnlab.explain.workflow import load_image_files, load_run_data, model_inputs, predict_logits

    run_dir = Path(args.run_dir)
    if view in ("activations", "neurons"):
        from cnnlab.explain.layers import conv_layer_names, get_layer

        if not args.layer:  # one line naming the choices, not argparse's usage
            names = conv_layer_names(run.model)
            raise CnnlabError(f"explain {view} needs --layer NAME, a conv layer of the run: "
                              + ", ".join(names[:40]) + (" ..." if len(names) > 40 else ""))
        get_layer(run.model, args.layer)  # checked first: the default file name is made from it
    default = {"filters": "filters.png", "activations": f"activations-{_safe(getattr(args, 'layer', '') or '')}.png",
               "neurons": f"neurons-{_safe(getattr(args, 'layer', '') or '')}.png",
               "predictions": "predictions.png"}[view]
    out = out or check_png_out(run_dir / default, args.overwrite, [getattr(args, "image", None)])
    model = run.model
    if view == "filters":
        from cnnlab.explain.filters import filters_figure

        return {"run_dir": str(run_dir), **filters_figure(model, args.layer, out)}
    if view == "activations":
        from cnnlab.explain.filters import activations_figure
        from cnnlab.explain.layers import get_layer

        get_layer(model, args.layer)  # the name is checked before any data is read
        if (args.image is None) == (args.index is None):
            raise CnnlabError("give one image: a file, or --index I for a test image")
        if args.image is not None:
            images = load_image_files(run, [args.image])
            caption = f"{args.image}: "
        else:
            data = load_run_data(run, args.data_dir)
            if not 0 <= args.index < len(data.test_y):
                raise CnnlabError(f"--index {args.index} is out of range; the test set has {len(data.test_y)} images")
            images = data.test_x[args.index:args.index + 1]
            caption = f"test #{args.index}: "
        return {"run_dir": str(run_dir), **activations_figure(model, args.layer, model_inputs(run, images), images[0],
                                                             out, caption)}
    if view == "neurons":
        from cnnlab.explain.layers import get_layer
        from cnnlab.explain.neurons import neurons_figure

        get_layer(model, args.layer)
        return {"run_dir": str(run_dir), **_neurons(run, model, args, out)}
    if view == "predictions":
        from cnnlab.explain.predictions import predictions_figure

        if args.rows < 1 or args.cols < 1 or args.rows * args.cols > 400:
            raise CnnlabError(f"--rows and --cols must be at least 1 with at most 400 images, got {args.rows}x{args.cols}")
        data = load_run_data(run, args.data_dir)
        g = torch.Generator().manual_seed(args.seed)
        pick = torch.randperm(len(data.test_y), generator=g)[:args.rows * args.cols]
        images = data.test_x[pick]
        probs = predict_logits(run, images).softmax(1)
        return {"run_dir": str(run_dir), **predictions_figure(images, data.test_y[pick], probs, run.classes,
                                                              args.rows, args.cols, out, pick.tolist())}
    raise CnnlabError(f"unknown view {view}")


def _neurons(run, model, args, out: Path) -> dict:
    """``explain neurons``: --channels (or the first --count), searched over test images or shown on one image."""
    from cnnlab.explain.neurons import neurons_figure, parse_channels
    from cnnlab.explain.workflow import load_image_files, load_run_data, model_inputs

    channels = getattr(args, "channels", None)
    count = getattr(args, "count", None)
    if channels is not None and count is not None:
        raise CnnlabError("give --channels C1,C2,... or --count N, not both")
    picked = parse_channels(channels) if channels is not None else (10 if count is None else count)
    image, index = getattr(args, "image", None), getattr(args, "index", None)
    if image is not None and index is not None:
        raise CnnlabError("give one image: --image PATH or --index I, not both")
    if image is not None:  # every channel explained on this one image
        x_uint8 = load_image_files(run, [image])
        return neurons_figure(model, args.layer, model_inputs(run, x_uint8), x_uint8, picked, out,
                              caption=f"{Path(image).name}", image_name=Path(image).name[:24])
    data = load_run_data(run, args.data_dir)
    if index is not None:
        if not 0 <= index < len(data.test_y):
            raise CnnlabError(f"--index {index} is out of range; the test set has {len(data.test_y)} images")
        x_uint8 = data.test_x[index:index + 1]
        return neurons_figure(model, args.layer, model_inputs(run, x_uint8), x_uint8, picked, out, indices=[index],
                              caption=f"test image #{index}")
    if args.images < 1:
        raise CnnlabError(f"--images must be at least 1, got {args.images}")
    x_uint8 = data.test_x[:args.images]
    return neurons_figure(model, args.layer, model_inputs(run, x_uint8), x_uint8, picked, out)
