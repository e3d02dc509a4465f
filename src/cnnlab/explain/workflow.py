"""``cnnlab explain RUN_DIR ...`` as a library call: pick images, attribute, draw, save.

>>> result = explain_run("runs/mnist-fast", indices=[0, 1], methods=["gradcam", "occlusion"],
...                      save_maps=True)  # doctest: +SKIP
>>> result["figures"][0]  # doctest: +SKIP
'runs/mnist-fast/explain/test-00000.png'

Images come from files (decoded and converted to the run's channels and size,
with a notice when a conversion happened) or from the run's test set: by index,
by class, or the N most confident mistakes. Each method runs on model inputs
normalised as in training; the colours the baselines need (black, the mean
colour) are expressed in that space from the run's own normalisation, and
gradient SHAP draws its baselines from the run's training images.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from cnnlab.data.datasets import load_dataset
from cnnlab.data.folder import WIDE_GREY_MODES
from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.explain import DEFAULT_METHODS, METHODS, METHOD_NAMES, get_method, method_class
from cnnlab.explain.figures import explanation_figure
from cnnlab.explain.layers import get_layer, last_conv_layer
from cnnlab.fileio import atomic_path, write_json_atomic
from cnnlab.predict import load_images
from cnnlab.rundir import check_out_dir, lock_run_dir, open_run_dir
from cnnlab.runs import load_run
from cnnlab.transfer.pretrained import is_pretrained_name

Say = Callable[[str], None]

# Figures one `cnnlab explain` draws at most: each is a multi-panel figure (about 0.2-1 s and 50-200 kB).
MAX_IMAGES = 1000


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Selection:
    """The images to explain: uint8 (N, C, H, W), true labels (-1 when unknown) and where each came from."""

    images: torch.Tensor
    labels: torch.Tensor
    indices: list[int] = field(default_factory=list)  # test-set index, -1 for a file
    paths: list[str] = field(default_factory=list)  # file path, "" for a test image

    def name(self, i: int) -> str:
        return self.paths[i] if self.paths[i] else f"test #{self.indices[i]}"


# ------------------------------------------------------------------ data of a run


def holding_run(run_dir, target):
    """Lock the run directory while writing ``target`` into it (as ``eval`` and a training hold it);
    a target elsewhere needs no lock. A training still writing there refuses us, in one line."""
    import contextlib

    if is_pretrained_name(run_dir):  # a model by name: no directory of its own to hold
        return contextlib.nullcontext()
    run_dir, target = Path(run_dir), Path(target)
    if not (run_dir / "config.yaml").is_file():  # only ever a run directory (the caller loaded it)
        raise CnnlabError(f"{run_dir} is not a cnnlab run directory (no config.yaml)")
    try:
        inside = target.absolute().parent.resolve() == run_dir.resolve()
    except OSError:
        inside = False
    return lock_run_dir(run_dir, kind="train") if inside else contextlib.nullcontext()


def load_run_data(run, data_dir: str | None = None):
    """The run's dataset (train and test images as uint8), checked against the checkpoint."""
    cfg = run.config
    if data_dir:
        cfg.data.data_dir = data_dir
    data = load_dataset(cfg.data)
    if tuple(data.input_size) != tuple(run.input_size) or data.num_classes != run.num_classes:
        raise CnnlabError(f"the dataset now has images of {'x'.join(map(str, data.input_size))} and "
                          f"{data.num_classes} classes, but the run was trained on "
                          f"{'x'.join(map(str, run.input_size))} and {run.num_classes}")
    return data


def model_inputs(run, images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> the float inputs the model was trained on."""
    return run.normalize(images_uint8.float() / 255.0)


@torch.no_grad()
def predict_logits(run, images_uint8: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Logits (N, K) in eval mode, in batches (the model's mode is restored)."""
    was_training = run.model.training
    run.model.eval()
    try:
        out = [run.model(model_inputs(run, images_uint8[i:i + batch_size])) for i in range(0, len(images_uint8),
                                                                                            batch_size)]
    finally:
        run.model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, run.num_classes)


def class_index(run, value: str | int, what: str) -> int:
    """A class given by name (``cat``) or index (``3``); out of range names the valid range."""
    text = str(value)
    if text in run.classes:
        return run.classes.index(text)
    try:
        index = int(text)
    except ValueError:
        raise CnnlabError(f"{what} '{text}' is not a class of this run; {did_you_mean(text, run.classes)}") from None
    if not 0 <= index < run.num_classes:
        raise CnnlabError(f"{what} {index} is out of range; valid classes are 0..{run.num_classes - 1} "
                          f"({run.classes[0]} .. {run.classes[-1]})")
    return index


def load_image_files(run, paths: Sequence[str], say: Say = _stderr) -> torch.Tensor:
    """Decode image files to the run's (C, H, W), with a one-line notice for each file that was converted."""
    from PIL import Image

    c, h, w = run.input_size
    for path in paths:
        if not Path(path).is_file():
            raise CnnlabError(f"image file {path} does not exist")
        try:
            with Image.open(path) as img:
                size, mode = img.size, img.mode
        except Exception as exc:  # Pillow raises many types for a broken file
            raise CnnlabError(f"cannot read image {path}: {' '.join(str(exc).split())}") from None
        channels = 1 if mode in ("L", "1", "LA", "F", *WIDE_GREY_MODES) else 3
        if size != (w, h) or channels != c:
            say(f"notice: {path} is {size[0]}x{size[1]} with {channels} channel(s); converted to {w}x{h} with "
                f"{c} channel(s) (data.resize={run.config.data.resize}) as the run's images are")
    return load_images(list(paths), run.input_size, run.config.data.resize, getattr(run, "pretrained_cfg", None))


def select_images(run, *, files: Sequence[str] = (), indices: Sequence[int] = (), cls: str | None = None,
                  count: int = 4, mistakes: int | None = None, data=None, say: Say = _stderr) -> Selection:
    """The images named by the options (files first, then test images), in the order given."""
    parts: list[Selection] = []
    if files:
        images = load_image_files(run, files, say)
        parts.append(Selection(images, torch.full((len(files),), -1), [-1] * len(files), list(files)))
    test_x, test_y = (data.test_x, data.test_y) if data is not None else (None, None)
    wanted: list[int] = []
    for i in indices:
        if not 0 <= i < len(test_y):
            raise CnnlabError(f"--index {i} is out of range; the test set has {len(test_y)} images (0..{len(test_y) - 1})")
        wanted.append(int(i))
    if cls is not None:
        c = class_index(run, cls, "--class")
        found = torch.nonzero(test_y == c).flatten()[:count].tolist()
        if not found:
            raise CnnlabError(f"the test set has no image of class {run.classes[c]}")
        wanted += found
    if mistakes is not None:
        if mistakes < 1:
            raise CnnlabError(f"--mistakes must be at least 1, got {mistakes}")
        probs = predict_logits(run, test_x).softmax(1)
        conf, pred = probs.max(1)
        wrong = torch.nonzero(pred != test_y).flatten()
        if len(wrong) == 0:
            say("notice: the model classifies every test image correctly; there is no mistake to show")
        order = wrong[conf[wrong].argsort(descending=True)][:mistakes]  # most confident mistakes first
        wanted += order.tolist()
    if not files and not wanted and mistakes is None:
        wanted = list(range(min(count, len(test_y))))  # nothing named: the first test images
    if wanted:
        idx = torch.tensor(wanted)
        parts.append(Selection(test_x[idx], test_y[idx], wanted, [""] * len(wanted)))
    if not parts:
        raise CnnlabError("no image to explain")
    return Selection(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]),
                     sum((p.indices for p in parts), []), sum((p.paths for p in parts), []))


# ------------------------------------------------------------------ method options from the run


def run_method_options(run, method, data=None, seed: int = 0, shap_baselines: int = 16) -> dict[str, Any]:
    """The options a method needs that come from the run: baseline colours, gradient SHAP's training images."""
    c = run.input_size[0]
    options: dict[str, Any] = {}
    defaults = method.defaults
    black = model_inputs(run, torch.zeros(1, c, 1, 1, dtype=torch.uint8)).flatten()  # (C,)
    if "black" in defaults:
        options["black"] = black
    if "mean_colour" in defaults:
        if run.mean is not None:
            options["mean_colour"] = torch.zeros(c)  # normalised by the training mean: the mean colour is 0
        elif data is not None:
            options["mean_colour"] = data.train_x.float().mean(dim=(0, 2, 3)) / 255.0
    if "baselines" in defaults and data is not None:
        g = torch.Generator().manual_seed(seed)
        pick = torch.randperm(len(data.train_x), generator=g)[:shap_baselines]
        options["baselines"] = model_inputs(run, data.train_x[pick])
    return options


def attribute_run(run, name: str, x: torch.Tensor, targets: torch.Tensor, layer: str | None = None, data=None,
                  options: dict[str, Any] | None = None, batch_size: int | None = None) -> torch.Tensor:
    """Attribution maps (N, H, W) of the method ``name`` for model inputs ``x`` of ``run`` towards ``targets``.

    The method gets what the run provides (:func:`run_method_options`: baseline colours in the run's
    normalisation, gradient SHAP's training images from ``data``), ``layer`` when it is a layer method
    (Grad-CAM), then ``options`` (a user's ``--set``), which win. ``batch_size`` None keeps the method's own.
    """
    method = get_method(name)
    kwargs = run_method_options(run, method, data)
    if method.uses_layer:
        kwargs["layer"] = layer
    kwargs.update(options or {})
    if batch_size is not None:
        kwargs["batch_size"] = batch_size
    return method.attribute(run.model, x, targets, **kwargs)


def parse_settings(settings: Sequence[str], methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["integrated_gradients.steps=64", "occlusion.window=7"]`` -> options per method (values read as YAML)."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for item in settings:
        key, eq, value = item.partition("=")
        method, dot, option = key.partition(".")
        if not eq or not dot or not option:
            raise CnnlabError(f"--set takes METHOD.OPTION=VALUE (e.g. integrated_gradients.steps=64), got '{item}'")
        if method not in methods:
            raise CnnlabError(f"--set {item}: '{method}' is not among the methods run; {did_you_mean(method, methods)}")
        try:
            out.setdefault(method, {})[option] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise CnnlabError(f"--set {item}: the value is not valid YAML") from None
    return out


def parse_methods(methods: Sequence[str] | None) -> list[str]:
    """Method names from ``--methods a,b c`` (commas or spaces), checked; ``all`` means every method."""
    names = [n.strip() for item in (methods or DEFAULT_METHODS) for n in str(item).split(",") if n.strip()]
    if names == ["all"]:
        return list(METHODS)
    for n in names:
        get_method(n)  # an unknown name is an error naming the nearest
    return list(dict.fromkeys(names))


# ------------------------------------------------------------------ the command


def explain_run(run_dir, *, files: Sequence[str] = (), indices: Sequence[int] = (), cls: str | None = None,
                count: int = 4, mistakes: int | None = None, methods: Sequence[str] | None = None,
                target: str | None = None, layer: str | None = None, out: str | None = None,
                overwrite: bool = False, save_maps: bool = False, settings: Sequence[str] = (),
                data_dir: str | None = None, batch_size: int = 256, say: Say = _stderr) -> dict[str, Any]:
    """Explain images of a run: one figure per image in ``out`` (default RUN_DIR/explain), ``maps.npz`` on request.

    Returns what ``--json`` prints: per image its source, true and predicted class with probability,
    the target explained, and the figure's path; plus the methods, layer and output paths.
    """
    names = parse_methods(methods)
    per_method = parse_settings(settings, names)
    for n, opts in per_method.items():
        unknown = sorted(set(opts) - set(get_method(n).defaults))
        if unknown:
            valid = ", ".join(sorted(get_method(n).defaults)) or "none"
            raise CnnlabError(f"--set: {n} has no option '{unknown[0]}'; its options: {valid}")
    if count < 1:
        raise CnnlabError(f"--count must be at least 1, got {count}")
    for flag, n in (("--count", count if cls is not None or not (files or indices or mistakes) else 0),
                    ("--mistakes", mistakes or 0), ("--index", len(indices)), ("image files", len(files))):
        if n > MAX_IMAGES:
            raise CnnlabError(f"{flag} asks for {n} figures; one run of explain draws at most {MAX_IMAGES} "
                              "(each is a figure with every method); explain fewer images at a time")
    pretrained = is_pretrained_name(run_dir)  # efficientnet_lite0.in1k: photos given as --files only
    if pretrained and (not out or not files or indices or cls is not None or mistakes is not None):
        raise CnnlabError(f"{run_dir} is a pretrained model, not a run: it has no test set or directory of its own; "
                          "give image files (--files) and --out DIR")
    if not pretrained and not Path(run_dir).is_dir():
        raise CnnlabError(f"run directory {run_dir} does not exist")
    out_dir = Path(out) if out else Path(run_dir) / "explain"
    # before any work: nothing is created if it is refused; never the run itself or a file explained
    check_out_dir(out_dir, overwrite, kind="explain", inputs=[run_dir, *files])
    run = load_run(run_dir)
    model = run.model
    layer_name = None
    if layer and not any(get_method(n).uses_layer for n in names):  # it would change nothing
        users = [m for m in METHOD_NAMES if method_class(m).uses_layer]
        raise CnnlabError(f"--layer {layer} applies to {', '.join(users)} only, and none of the methods asked for "
                          f"({', '.join(names)}) uses a layer; add one of them to --methods or drop --layer")
    if any(get_method(n).uses_layer for n in names):
        layer_name = layer or last_conv_layer(model, run.input_size)
        get_layer(model, layer_name)  # an unknown name lists the conv layers
    target_index = class_index(run, target, "--target") if target is not None else None
    needs_data = not pretrained and (bool(indices) or cls is not None or mistakes is not None or not files
                                     or "gradient_shap" in names)  # a pretrained model's SHAP baselines: black
    data = load_run_data(run, data_dir) if needs_data else None
    sel = select_images(run, files=files, indices=indices, cls=cls, count=count, mistakes=mistakes, data=data,
                        say=say)
    x = model_inputs(run, sel.images)  # (N, C, H, W) float
    logits = predict_logits(run, sel.images)
    probs = logits.softmax(1)
    preds = probs.argmax(1)
    targets = torch.full_like(preds, target_index) if target_index is not None else preds.clone()
    maps: dict[str, torch.Tensor] = {}
    for n in names:
        say(f"{n}: {len(x)} image(s)")
        maps[n] = attribute_run(run, n, x, targets, layer_name, data, per_method.get(n), batch_size)  # (N, H, W)
    signed = {n: get_method(n).signed for n in names}

    items = []
    # Stopped or failed part-way, the folder is removed: no half-written explanation is left.
    with holding_run(run_dir, out_dir), open_run_dir(out_dir, overwrite=overwrite, kind="explain",
                                                     inputs=[run_dir, *files], remove_on_error=True):
        used: set[str] = set()
        step = -(-len(x) // 10)  # progress about every 10 %
        for i in range(len(x)):
            if len(x) > 8 and (i % step == 0 or i == len(x) - 1):
                say(f"figure {i + 1}/{len(x)}")
            stem = f"test-{sel.indices[i]:05d}" if not sel.paths[i] else "file-" + Path(sel.paths[i]).stem
            name, k = stem, 1
            while name in used:
                k += 1
                name = f"{stem}-{k}"
            used.add(name)
            true = int(sel.labels[i])
            caption = [sel.name(i)[-22:],
                       f"true  {run.classes[true] if true >= 0 else '?'}",
                       f"pred  {run.classes[int(preds[i])]} {float(probs[i, preds[i]]):.3f}",
                       f"target {run.classes[int(targets[i])]} {float(probs[i, targets[i]]):.3f}"]
            if layer_name:
                caption.append(f"layer {layer_name}")
            path = explanation_figure(sel.images[i], caption, {n: maps[n][i] for n in names}, signed,
                                      out_dir / f"{name}.png")
            items.append({
                "image": sel.paths[i] or None, "index": sel.indices[i] if sel.indices[i] >= 0 else None,
                "true": run.classes[true] if true >= 0 else None,
                "predicted": run.classes[int(preds[i])], "probability": round(float(probs[i, preds[i]]), 4),
                "target": run.classes[int(targets[i])], "target_probability": round(float(probs[i, targets[i]]), 4),
                "correct": (true == int(preds[i])) if true >= 0 else None, "figure": str(path)})
        result: dict[str, Any] = {"run_dir": str(run_dir), "out": str(out_dir), "methods": names,
                                  "layer": layer_name, "images": items, "maps": None}
        if save_maps:
            arrays = {n: m.numpy().astype(np.float32) for n, m in maps.items()}  # (N, H, W) each
            arrays.update(indices=np.array(sel.indices, dtype=np.int64), paths=np.array(sel.paths, dtype=str),
                          targets=targets.numpy(), labels=sel.labels.numpy(), logits=logits.numpy(),
                          classes=np.array(run.classes, dtype=str))
            with atomic_path(out_dir / "maps.npz") as tmp:
                np.savez(tmp, **arrays)
            result["maps"] = str(out_dir / "maps.npz")
        write_json_atomic(out_dir / "explain.json", result)
    result["figures"] = [item["figure"] for item in items]
    return result
